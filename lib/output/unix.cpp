// `driver = "unix"`: one datagram per event on a unix datagram socket (as OpenWEC's UnixDatagram
// output), for a local agent (Vector, Fluent Bit, a custom reader).
//
// Keys: `path` (required; the receiver's socket), `timeout_ms` (default 10000: how long a batch
// may wait while the receiver's queue is full).
//
// Each datagram is one event in the subscription's format, without a line break. A batch is
// accepted once every datagram was queued on the receiver's socket. An event longer than 65507
// bytes is cut (at a UTF-8 character boundary), counted and logged (at most once a minute). A
// receiver that is not there (no socket, connection refused) or that does not read before the
// timeout refuses the batch (503); when its socket was re-created (the receiver restarted) the
// driver reconnects at once. A batch refused midway may have been partly delivered: the source
// sends it again, so the receiver may see duplicates.
#include "output/drivers_internal.hpp"
#include "output/net_internal.hpp"

#include <vector>

namespace wec::output {
namespace net = detail::net;
namespace {

class UnixDriver final : public Driver {
public:
    UnixDriver(net::Target target, std::chrono::milliseconds timeout, Logger* log)
        : name_("unix:" + target.path), sender_(std::move(target), timeout, log, name_) {}

    void write(const BatchInfo&, std::string_view lines) override {
        if (lines.empty()) return;
        std::vector<std::string_view> messages;
        for (std::string_view rest = lines; !rest.empty();) {
            auto nl = rest.find('\n');
            std::string_view line = rest.substr(0, nl);
            rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
            if (line.size() > net::kMaxDatagram) {
                std::size_t keep = net::utf8_prefix(line, net::kMaxDatagram);
                sender_.state().truncated(line.size(), keep);
                line = line.substr(0, keep);
            }
            messages.push_back(line);
        }
        sender_.send(messages);
    }
    void reopen() override { sender_.reopen(); }
    std::string describe() const override { return name_; }
    DriverStats stats() const override { return sender_.state().stats(); }

private:
    std::string name_;
    net::DatagramSender sender_;
};

} // namespace

std::unique_ptr<Driver> detail::make_unix_driver(const Settings& settings, Logger* log) {
    detail::SettingsReader r("unix", settings);
    net::Target target;
    target.kind = net::Target::Kind::Unix;
    target.path = r.required_string("path");
    if (target.path.size() >= 108) r.fail("path", "is longer than 107 bytes (a socket path)");
    auto timeout = net::read_timeout(r);
    r.finish();
    return std::make_unique<UnixDriver>(std::move(target), timeout, log);
}

} // namespace wec::output

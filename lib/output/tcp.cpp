// `driver = "tcp"`: one line per event on a TCP connection (optionally TLS), e.g. to Logstash's or
// Vector's tcp input.
//
// Keys: `address = "HOST:PORT"` (required), `tls = false`, with TLS `ca`, `cert` + `key`,
// `server_name` (see net::TlsOptions), `timeout_ms` (default 10000: connect + handshake, and the
// write of one batch, including the wait for the batch written before it).
//
// The connection is opened on the first batch and kept. A batch is accepted once all of it was
// written to the socket (TLS: once SSL_write returned for all of it), batches never interleave.
// Before each batch the connection is checked: one the peer closed meanwhile is replaced at once.
// A failure (connect, handshake, write, timeout) refuses the batch; the connection is closed (a
// batch cut midway leaves a partial last line at the receiver, and the source sends the whole
// batch again, so the receiver may see duplicates); later batches are refused at once until the
// reconnect backoff (250 ms doubling to 5 s) has passed.
#include "output/drivers_internal.hpp"
#include "output/net_internal.hpp"

namespace wec::output {
namespace net = detail::net;
namespace {

class TcpDriver final : public Driver {
public:
    TcpDriver(net::Target target, std::chrono::milliseconds timeout, Logger* log)
        : name_("tcp:" + target.address.text() + (target.tls ? " (tls)" : "")),
          sender_(std::move(target), timeout, log, name_) {}

    void write(const BatchInfo&, std::string_view lines) override {
        if (lines.empty()) return;
        sender_.send(lines);
    }
    void reopen() override { sender_.reopen(); }
    std::string describe() const override { return name_; }
    DriverStats stats() const override { return sender_.state().stats(); }

private:
    std::string name_;
    net::StreamSender sender_;
};

} // namespace

std::unique_ptr<Driver> detail::make_tcp_driver(const Settings& settings, Logger* log) {
    detail::SettingsReader r("tcp", settings);
    net::Target target;
    target.kind = net::Target::Kind::Tcp;
    auto address = r.required_string("address");
    try {
        target.address = net::parse_host_port(address);
    } catch (const OutputError& e) {
        r.fail("address", std::string("is invalid: ") + e.what());
    }
    bool tls = r.boolean("tls").value_or(false);
    target.tls = net::read_tls(r, tls, "with tls = true");
    auto timeout = net::read_timeout(r);
    r.finish();
    return std::make_unique<TcpDriver>(std::move(target), timeout, log);
}

} // namespace wec::output

// `driver = "syslog"`: one RFC 5424 message per event, to rsyslog, syslog-ng, a SIEM's syslog
// input, or the local /dev/log.
//
// Keys: `address` (required): "udp://HOST[:PORT]" (514), "tcp://HOST[:PORT]" (514),
// "tls://HOST[:PORT]" (6514) or "unix:PATH" (a datagram socket such as /dev/log); `facility`
// (default "local0"); `app_name` (default "wec"); `framing` = "octet-counting" (default, RFC 6587
// section 3.4.1) or "lf" (a line feed after each message), for tcp:// and tls:// only; for tls://
// `ca`, `cert` + `key`, `server_name` as for the tcp driver; `timeout_ms` (default 10000).
//
// Message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID - MSG`, where PRI = facility * 8 + the
// severity of the event's Level (1 Critical -> 2 crit, 2 OutputError -> 3 err, 3 Warning -> 4
// warning, 4 Information -> 6 info, 5 Verbose -> 7 debug; 0 LogAlways (audit events), a missing
// Level -> 6 info; above 5 -> 7 debug), TIMESTAMP = the event's System/TimeCreated/@SystemTime (at
// most 6 fractional digits; "-" when absent or not RFC 3339), HOSTNAME = System/Computer (else the
// sender's MachineID, else "-"; bytes outside printable ASCII become '_', at most 255), MSGID = the
// EventID ("-" when the XML cannot be read), no structured data, MSG = the event in the
// subscription's format (no BOM). The fields come from each event's XML (BatchInfo::events),
// parsed with lib/event's parser, so they are the same whatever the output format.
//
// Datagram transports (udp, unix) send one datagram per event, at most 65507 bytes: a longer
// message has its MSG cut (at a UTF-8 character boundary), counted, and logged (at most once a
// minute). Stream transports send the whole batch in one write; acceptance, failures and
// reconnection are those of the tcp driver. A batch refused midway may have been partly delivered:
// the source sends it again, so the receiver may see duplicates.
#include "event/event.hpp"
#include "output/drivers_internal.hpp"
#include "output/net_internal.hpp"

#include <array>
#include <charconv>
#include <vector>

namespace wec::output {
namespace net = detail::net;
namespace {

enum class Transport { Udp, Tcp, Tls, Unix };

struct Facility {
    std::string_view name;
    int code;
};

constexpr std::array<Facility, 24> kFacilities{{
    {"kern", 0},      {"user", 1},    {"mail", 2},    {"daemon", 3},    {"auth", 4},
    {"syslog", 5},    {"lpr", 6},     {"news", 7},    {"uucp", 8},      {"cron", 9},
    {"authpriv", 10}, {"ftp", 11},    {"ntp", 12},    {"security", 13}, {"console", 14},
    {"clock", 15},    {"local0", 16}, {"local1", 17}, {"local2", 18},   {"local3", 19},
    {"local4", 20},   {"local5", 21}, {"local6", 22}, {"local7", 23},
}};

// Windows event level -> syslog severity.
int severity_of(std::optional<std::uint8_t> level) {
    if (!level) return 6;
    switch (*level) {
    case 0: // LogAlways (audit events)
        return 6;
    case 1: // Critical
        return 2;
    case 2: // OutputError
        return 3;
    case 3: // Warning
        return 4;
    case 4: // Information
        return 6;
    default: // Verbose (5) and provider-defined levels
        return 7;
    }
}

bool digits(std::string_view s, std::size_t at, std::size_t n) {
    if (at + n > s.size()) return false;
    for (std::size_t i = at; i < at + n; ++i)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

// RFC 3339 SystemTime ("2022-12-14T16:07:03.3244302Z") as an RFC 5424 TIMESTAMP (at most 6
// fractional digits, the rest dropped); "-" when it is not one.
void append_timestamp(std::string& out, std::string_view t) {
    // YYYY-MM-DDThh:mm:ss
    bool ok = t.size() >= 20 && digits(t, 0, 4) && t[4] == '-' && digits(t, 5, 2) && t[7] == '-' &&
              digits(t, 8, 2) && (t[10] == 'T' || t[10] == 't') && digits(t, 11, 2) &&
              t[13] == ':' && digits(t, 14, 2) && t[16] == ':' && digits(t, 17, 2);
    std::size_t pos = 19;
    std::size_t frac_begin = 0, frac_len = 0;
    if (ok && t[pos] == '.') {
        frac_begin = ++pos;
        while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9')
            ++pos;
        frac_len = pos - frac_begin;
        ok = frac_len > 0;
    }
    std::string_view zone = ok ? t.substr(pos) : std::string_view{};
    ok = ok && (zone == "Z" || zone == "z" ||
                (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && digits(zone, 1, 2) &&
                 zone[3] == ':' && digits(zone, 4, 2)));
    if (!ok) {
        out += '-';
        return;
    }
    out.append(t.substr(0, 10));
    out += 'T';
    out.append(t.substr(11, 8));
    if (frac_len > 0) {
        out += '.';
        out.append(t.substr(frac_begin, std::min<std::size_t>(frac_len, 6)));
    }
    if (zone == "z")
        out += 'Z';
    else
        out.append(zone);
}

void append_hostname(std::string& out, std::string_view name) {
    if (name.empty()) {
        out += '-';
        return;
    }
    name = name.substr(0, 255);
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        out += (u >= 33 && u <= 126) ? c : '_';
    }
}

class SyslogDriver final : public Driver {
public:
    SyslogDriver(Transport transport, net::Target target, std::string address, int facility,
                 std::string app_name, bool octet_counting, std::chrono::milliseconds timeout,
                 Logger* log)
        : name_("syslog:" + address), facility_(facility), app_name_(std::move(app_name)),
          octet_counting_(octet_counting) {
        if (transport == Transport::Udp || transport == Transport::Unix)
            datagrams_.emplace(std::move(target), timeout, log, name_);
        else
            stream_.emplace(std::move(target), timeout, log, name_);
    }

    void write(const BatchInfo& batch, std::string_view lines) override {
        if (lines.empty()) return;
        std::size_t count = 0;
        for (char c : lines)
            count += c == '\n';
        if (!lines.empty() && lines.back() != '\n') ++count;
        // The fields of event i come from events[i] when the caller gave one XML per line.
        const bool have_xml = batch.events.size() == count;

        std::string buffer;
        buffer.reserve(lines.size() + count * 128);
        std::vector<std::pair<std::size_t, std::size_t>> spans; // datagrams: offset, length
        if (datagrams_) spans.reserve(count);
        std::string header;
        event::Event parsed;
        std::size_t index = 0;
        for (std::string_view rest = lines; !rest.empty(); ++index) {
            auto nl = rest.find('\n');
            std::string_view line = rest.substr(0, nl);
            rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);

            const event::System* system = nullptr;
            if (have_xml) {
                event::parse(batch.events[index], parsed);
                if (parsed.system) system = &*parsed.system;
            }
            build_header(header, system, batch);
            if (datagrams_) {
                std::size_t keep = line.size();
                if (header.size() + line.size() > net::kMaxDatagram) {
                    keep = net::utf8_prefix(line, net::kMaxDatagram - header.size());
                    datagrams_->state().truncated(header.size() + line.size(),
                                                  header.size() + keep);
                }
                spans.emplace_back(buffer.size(), header.size() + keep);
                buffer += header;
                buffer.append(line.substr(0, keep));
            } else if (octet_counting_) {
                char digits_buf[24];
                auto [end, ec] = std::to_chars(digits_buf, digits_buf + sizeof digits_buf,
                                               header.size() + line.size());
                buffer.append(digits_buf, end);
                buffer += ' ';
                buffer += header;
                buffer += line;
            } else {
                buffer += header;
                buffer += line;
                buffer += '\n';
            }
        }
        if (stream_) {
            stream_->send(buffer);
            return;
        }
        std::vector<std::string_view> messages;
        messages.reserve(spans.size());
        for (auto [offset, length] : spans)
            messages.emplace_back(buffer.data() + offset, length);
        datagrams_->send(messages);
    }

    void reopen() override {
        if (stream_) stream_->reopen();
        if (datagrams_) datagrams_->reopen();
    }
    std::string describe() const override { return name_; }
    DriverStats stats() const override {
        return stream_ ? stream_->state().stats() : datagrams_->state().stats();
    }

private:
    // "<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID - "
    void build_header(std::string& out, const event::System* system, const BatchInfo& batch) {
        out.clear();
        int severity = severity_of(system ? system->level : std::nullopt);
        out += '<';
        out += std::to_string(facility_ * 8 + severity);
        out += ">1 ";
        if (system && system->time_created)
            append_timestamp(out, *system->time_created);
        else
            out += '-';
        out += ' ';
        append_hostname(out,
                        system && !system->computer.empty() ? system->computer : batch.machine);
        out += ' ';
        out += app_name_;
        out += " - ";
        if (system)
            out += std::to_string(system->event_id);
        else
            out += '-';
        out += " - ";
    }

    std::string name_;
    int facility_;
    std::string app_name_;
    bool octet_counting_;
    std::optional<net::StreamSender> stream_;
    std::optional<net::DatagramSender> datagrams_;
};

} // namespace

std::unique_ptr<Driver> detail::make_syslog_driver(const Settings& settings, Logger* log) {
    detail::SettingsReader r("syslog", settings);
    const std::string address = r.required_string("address");
    auto invalid = [&](const std::string& why) {
        r.fail("address", "is invalid: '" + address + "' " + why +
                              " (expected udp://HOST:PORT, tcp://HOST:PORT, tls://HOST:PORT or "
                              "unix:PATH)");
    };
    Transport transport = Transport::Tcp;
    net::Target target;
    std::string_view rest = address;
    std::uint16_t default_port = 514;
    if (rest.starts_with("udp://")) {
        transport = Transport::Udp;
        target.kind = net::Target::Kind::Udp;
    } else if (rest.starts_with("tcp://")) {
        transport = Transport::Tcp;
    } else if (rest.starts_with("tls://")) {
        transport = Transport::Tls;
        default_port = 6514;
    } else if (rest.starts_with("unix:")) {
        transport = Transport::Unix;
        target.kind = net::Target::Kind::Unix;
    } else {
        invalid("has no known scheme");
    }
    if (transport == Transport::Unix) {
        target.path = std::string(rest.substr(5));
        if (target.path.empty()) invalid("has no path");
        if (target.path.size() >= 108) invalid("has a path longer than 107 bytes");
    } else {
        try {
            target.address = net::parse_host_port(rest.substr(6), default_port);
        } catch (const OutputError& e) {
            invalid(std::string("has a bad HOST:PORT: ") + e.what());
        }
    }
    int facility = 16;
    if (auto name = r.string("facility")) {
        facility = -1;
        for (const auto& f : kFacilities)
            if (f.name == *name) facility = f.code;
        if (facility < 0) {
            std::string known;
            for (const auto& f : kFacilities)
                known += (known.empty() ? "" : ", ") + std::string(f.name);
            r.fail("facility", "is unknown: '" + *name + "' (known: " + known + ")");
        }
    }
    std::string app_name = r.string("app_name").value_or("wec");
    if (app_name.size() > 48) r.fail("app_name", "is longer than 48 characters (RFC 5424)");
    for (char c : app_name) {
        auto u = static_cast<unsigned char>(c);
        if (u < 33 || u > 126)
            r.fail("app_name", "must be printable ASCII without spaces (RFC 5424)");
    }
    bool stream = transport == Transport::Tcp || transport == Transport::Tls;
    bool octet_counting = true;
    if (auto framing = r.string("framing")) {
        if (!stream) r.fail("framing", "is only valid with tcp:// and tls:// addresses");
        if (*framing == "lf")
            octet_counting = false;
        else if (*framing != "octet-counting")
            r.fail("framing", "must be \"octet-counting\" or \"lf\", not '" + *framing + "'");
    }
    target.tls = net::read_tls(r, transport == Transport::Tls, "with a tls:// address");
    auto timeout = net::read_timeout(r);
    r.finish();
    return std::make_unique<SyslogDriver>(transport, std::move(target), address, facility,
                                          std::move(app_name), octet_counting, timeout, log);
}

} // namespace wec::output

// `ecs`: Elastic Common Schema with the winlog.* fields as Winlogbeat writes them.
#include "event/event.hpp"
#include "event/json_writer_internal.hpp"

#include <charconv>
#include <cstdint>
#include <iterator>
#include <optional>

namespace wec::event {
namespace {

using namespace detail;

// Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's algorithms).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// An RFC 3339 date-time ("2022-12-14T16:06:51.0643605Z", "...+02:00"), checked as Go's
// time.Parse(RFC3339Nano) checks it (digits beyond the 9th are dropped).
std::optional<UtcTime> parse_rfc3339(sv s) {
    auto digits = [&](std::size_t at, std::size_t n, int& v) {
        if (at + n > s.size()) return false;
        v = 0;
        for (std::size_t i = at; i < at + n; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
            v = v * 10 + (s[i] - '0');
        }
        return true;
    };
    int y, mo, d, h, mi, se;
    if (!digits(0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(5, 2, mo) || s[7] != '-' ||
        !digits(8, 2, d) || s[10] != 'T' || !digits(11, 2, h) || s[13] != ':' ||
        !digits(14, 2, mi) || s[16] != ':' || !digits(17, 2, se))
        return std::nullopt;
    static constexpr int kMonthDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > kMonthDays[mo - 1] || h > 23 || mi > 59 || se > 59)
        return std::nullopt;
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap) return std::nullopt;
    std::size_t pos = 19;
    std::uint32_t nanos = 0;
    if (s[pos] == '.') {
        ++pos;
        int n = 0;
        for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos, ++n)
            if (n < 9) nanos = nanos * 10 + static_cast<std::uint32_t>(s[pos] - '0');
        if (n == 0) return std::nullopt;
        for (; n < 9; ++n)
            nanos *= 10;
    }
    std::int64_t offset = 0;
    if (pos < s.size() && s[pos] == 'Z') {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        int oh, om;
        if (!digits(pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
            !digits(pos + 4, 2, om) || oh > 23 || om > 59)
            return std::nullopt;
        offset = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;
    std::int64_t secs =
        days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 +
        mi * 60 + se - offset;
    return UtcTime{secs, nanos};
}

} // namespace

// ---- ECS (Winlogbeat) ---------------------------------------------------------------------------
// What Winlogbeat 8 does (winlogbeat/sys/winevent/event.go Fields(), eventlog.go ToEvent()):
// - names of level, task, opcode and keywords come from RenderingInfo; without it, from the
//   names every Windows shares (winmeta.xml, Winlogbeat's defaultWinMeta); a provider's own names
//   need its manifest on a Windows machine and are left out;
// - optional values that are zero or empty are left out (AddOptional);
// - event_data/user_data: key = Name attribute, else the element name, "Data" -> "param<N>"
//   (N = position among the children); empty values are dropped; trailing line feeds trimmed.
namespace {

constexpr std::uint64_t kKeywordAuditFailure = 0x10000000000000;
constexpr std::uint64_t kKeywordAuditSuccess = 0x20000000000000;

struct KeywordName {
    std::uint64_t mask;
    sv name;
};
constexpr KeywordName kWinMetaKeywords[] = {
    {0x1000000000000, "Response Time"},
    {0x4000000000000, "WDI Diag"},
    {0x8000000000000, "SQM"},
    {kKeywordAuditFailure, "Audit Failure"},
    {kKeywordAuditSuccess, "Audit Success"},
    {0x40000000000000, "Correlation Hint"},
    {0x80000000000000, "Classic"},
};
constexpr sv kWinMetaOpcodes[] = {"Info",      "Start", "Stop",   "DCStart", "DCStop",
                                  "Extension", "Reply", "Resume", "Suspend", "Send"};
// Level 0 is "Log Always"; Winlogbeat, as the Event Viewer, names it Information.
constexpr sv kWinMetaLevels[] = {"Information", "Critical",    "Error",
                                 "Warning",     "Information", "Verbose"};

sv non_empty(const std::optional<sv>& v) {
    return v ? *v : sv();
}

// The trailing line breaks Winlogbeat's RemoveWindowsLineEndings drops (LF, and CR LF once made
// LF); the CR LF inside are written as LF by Writer::field_lf.
sv trim_line_feeds(sv v) {
    while (!v.empty() && v.back() == '\n') {
        v.remove_suffix(1);
        if (!v.empty() && v.back() == '\r') v.remove_suffix(1);
    }
    return v;
}

void lower_ascii(std::span<char> s) {
    for (char& c : s)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
}

// One winlog.event_data / winlog.user_data object, opened on its first value.
class PairsObject {
public:
    PairsObject(Writer& w, sv key) : w_(w), key_(key) {}
    void add(sv name, sv value) {
        if (value.empty() || name.empty()) return;
        open();
        w_.field_lf(name, trim_line_feeds(value));
    }
    void add_param(std::uint32_t position, sv value) {
        if (value.empty()) return;
        char buf[16] = "param";
        auto [ptr, ec] = std::to_chars(buf + 5, buf + sizeof buf, position);
        (void)ec;
        add(sv(buf, static_cast<std::size_t>(ptr - buf)), value);
    }
    bool opened() const { return open_; }
    void close() {
        if (open_) w_.end_object();
    }

private:
    void open() {
        if (open_) return;
        w_.key(key_);
        w_.begin_object();
        open_ = true;
    }
    Writer& w_;
    sv key_;
    bool open_ = false;
};

void write_ecs_event_data(Writer& w, const EventData& ed) {
    PairsObject o(w, "event_data");
    for (const auto& nd : ed.named)
        o.add(nd.name, nd.value);
    for (std::size_t i = 0; i < ed.data.size(); ++i)
        o.add_param(i < ed.data_position.size() ? ed.data_position[i]
                                                : static_cast<std::uint32_t>(i + 1),
                    ed.data[i]);
    if (ed.binary) o.add("Binary", *ed.binary);
    o.close();
}

void write_ecs_user_data(Writer& w, const Event& ev) {
    PairsObject o(w, "user_data");
    for (const auto& f : ev.user_data_fields) {
        if (f.name == "Data")
            o.add_param(f.position, f.value);
        else
            o.add(f.name, f.value);
    }
    if (o.opened()) w.field("xml_name", ev.user_data_element);
    o.close();
}

} // namespace

namespace {

void write_ecs(Writer& w, const Event& ev, const Metadata& md) {
    const System* s = ev.system ? &*ev.system : nullptr;
    const RenderingInfo* ri = ev.rendering_info ? &*ev.rendering_info : nullptr;

    // Names: RenderingInfo first, then Windows' common names.
    sv task, opcode, level, message;
    std::optional<std::uint64_t> keywords_raw;
    char event_id_buf[16];
    sv event_id;
    if (s) {
        auto [ptr, ec] =
            std::to_chars(event_id_buf, event_id_buf + sizeof event_id_buf, s->event_id);
        (void)ec;
        event_id = sv(event_id_buf, static_cast<std::size_t>(ptr - event_id_buf));
        if (auto k = parse_keywords(s->keywords)) keywords_raw = static_cast<std::uint64_t>(*k);
        task = ri ? non_empty(ri->task) : sv();
        if (task.empty() && s->task.value_or(0) == 0) task = "None";
        opcode = ri ? non_empty(ri->opcode) : sv();
        if (opcode.empty() && s->opcode && *s->opcode < std::size(kWinMetaOpcodes))
            opcode = kWinMetaOpcodes[*s->opcode];
        level = ri ? non_empty(ri->level) : sv();
        if (level.empty() && s->level.value_or(0) < std::size(kWinMetaLevels))
            level = kWinMetaLevels[s->level.value_or(0)];
    }
    if (ri) message = trim_line_feeds(non_empty(ri->message));
    sv outcome;
    if (keywords_raw && (*keywords_raw & kKeywordAuditFailure))
        outcome = "failure";
    else if (keywords_raw && (*keywords_raw & kKeywordAuditSuccess))
        outcome = "success";

    w.begin_object();
    std::optional<UtcTime> created;
    if (s && s->time_created) created = parse_rfc3339(*s->time_created);
    const UtcTime received = utc_of(md.time_received);
    w.utc_field("@timestamp", created ? *created : received);

    w.key("event");
    w.begin_object();
    w.field("kind", "event");
    if (s) {
        w.field("code", event_id);
        w.field("provider", non_empty(s->provider.name));
        if (!task.empty()) w.field("action", task);
    }
    if (!outcome.empty()) w.field("outcome", outcome);
    w.utc_field("created", received);
    if (ev.error) w.field("original", ev.original_content);
    w.end_object();

    if (!level.empty()) {
        w.key("log");
        w.begin_object();
        w.key("level");
        const std::size_t at = w.size();
        w.value(level);
        lower_ascii(w.written(at));
        w.end_object();
    }
    if (!message.empty()) w.field_lf("message", message);
    if (s && !s->computer.empty()) {
        w.key("host");
        w.begin_object();
        w.field("name", s->computer);
        w.end_object();
    }

    const bool has_data = ev.data_kind == DataKind::EventData || ev.data_kind == DataKind::UserData;
    if (s || has_data) {
        w.key("winlog");
        w.begin_object();
        w.field("api", "wineventlog");
        if (s) {
            auto opt = [&](sv k, sv v) {
                if (!v.empty()) w.field(k, v);
            };
            opt("channel", non_empty(s->channel));
            opt("computer_name", s->computer);
            w.field("event_id", event_id);
            opt("provider_name", non_empty(s->provider.name));
            opt("provider_guid", non_empty(s->provider.guid));
            if (s->event_record_id.value_or(0) != 0) w.num_field("record_id", *s->event_record_id);
            opt("task", task);
            opt("opcode", opcode);
            if (ri && ri->keywords && !ri->keywords->empty()) {
                w.key("keywords");
                w.begin_array();
                for (sv k : *ri->keywords)
                    w.value(k);
                w.end_array();
            } else if (keywords_raw) {
                bool open = false;
                for (const auto& k : kWinMetaKeywords) {
                    if (!(*keywords_raw & k.mask)) continue;
                    if (!open) {
                        w.key("keywords");
                        w.begin_array();
                        open = true;
                    }
                    w.value(k.name);
                }
                if (open) w.end_array();
            }
            if (s->version.value_or(0) != 0) w.num_field("version", *s->version);
            if (s->correlation) {
                opt("activity_id", non_empty(s->correlation->activity_id));
                opt("related_activity_id", non_empty(s->correlation->related_activity_id));
            }
            if (s->user_id && !s->user_id->empty()) {
                w.key("user");
                w.begin_object();
                w.field("identifier", *s->user_id);
                w.end_object();
            }
            if (const Execution* e = s->execution ? &*s->execution : nullptr) {
                if (e->process_id != 0 || e->thread_id != 0) {
                    w.key("process");
                    w.begin_object();
                    if (e->process_id != 0) w.num_field("pid", e->process_id);
                    if (e->thread_id != 0) {
                        w.key("thread");
                        w.begin_object();
                        w.num_field("id", e->thread_id);
                        w.end_object();
                    }
                    w.end_object();
                }
                auto nonzero = [&](sv k, const auto& v) {
                    if (v.value_or(0) != 0) w.num_field(k, *v);
                };
                nonzero("processor_id", e->processor_id);
                nonzero("session_id", e->session_id);
                nonzero("kernel_time", e->kernel_time);
                nonzero("user_time", e->user_time);
                nonzero("processor_time", e->processor_time);
            }
        }
        if (ev.data_kind == DataKind::EventData)
            write_ecs_event_data(w, ev.event_data);
        else if (ev.data_kind == DataKind::UserData)
            write_ecs_user_data(w, ev);
        w.end_object();
    }

    const bool error_code =
        ev.data_kind == DataKind::ProcessingErrorData && ev.processing_error_data.error_code != 0;
    if (error_code || ev.error) {
        w.key("error");
        w.begin_object();
        if (error_code) w.num_field("code", ev.processing_error_data.error_code);
        if (ev.error) {
            w.field("type", to_string(ev.error->type));
            w.field("message", ev.error->message);
        }
        w.end_object();
    }

    w.key("ecs");
    w.begin_object();
    w.field("version", "8.0.0");
    w.end_object();

    w.key("wec");
    w.begin_object();
    w.field("ip_address", md.ip_address);
    w.field("client", md.client);
    if (md.node) w.field("node", *md.node);
    w.key("subscription");
    w.begin_object();
    w.field("uuid", md.subscription_uuid);
    w.field("version", md.subscription_version);
    w.field("name", md.subscription_name);
    if (md.subscription_uri) w.field("uri", *md.subscription_uri);
    if (md.subscription_client_revision)
        w.field("client_revision", *md.subscription_client_revision);
    if (md.subscription_server_revision)
        w.field("server_revision", *md.subscription_server_revision);
    w.end_object();
    w.end_object();

    w.end_object();
}

} // namespace

void format_ecs(const Event& event, const Metadata& metadata, std::string& out) {
    Writer w(out);
    write_ecs(w, event, metadata);
}

void detail::format_ecs(const Event& event, const Metadata& metadata, FormatBuffer& out) {
    Writer w(out);
    write_ecs(w, event, metadata);
}

} // namespace wec::event

// Formatters: OpenWEC `Raw`, `Json`, `RawJson` and `Nxlog` (server/src/formats/*.rs) rendered by
// hand into a caller-owned string: no intermediate DOM, no per-event allocation once `out` has
// capacity. ECS is in ecs.cpp.
//
// Key order follows OpenWEC's serde structs. Like serde's `flatten`, a key may appear twice when
// event data names collide with other keys (e.g. Nxlog: EventData "Message" and the rendered
// Message); parsers keeping the last occurrence see what they would see with OpenWEC.
#include "event/event.hpp"
#include "event/json_writer_internal.hpp"
#include "text/ascii.hpp"

#include <bit>
#include <charconv>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace wec::event {
namespace detail {

// The collector's metadata: the OpenWEC block of Json and Nxlog, the meta of RawJson.
void write_metadata_fields(Writer& w, const Metadata& md) {
    w.field("IpAddress", md.ip_address);
    w.time_field("TimeReceived", md.time_received);
    w.field("Principal", md.client);
    w.field("Client", md.client);
    if (!md.mechanism.empty()) w.field("Mechanism", md.mechanism);
    w.key("Subscription");
    w.begin_object();
    w.field("Uuid", md.subscription_uuid);
    w.field("Version", md.subscription_version);
    w.field("Name", md.subscription_name);
    if (md.subscription_uri) w.field("Uri", *md.subscription_uri);
    if (md.subscription_client_revision)
        w.field("ClientRevision", *md.subscription_client_revision);
    if (md.subscription_server_revision)
        w.field("ServerRevision", *md.subscription_server_revision);
    w.end_object();
    if (md.node) w.field("Node", *md.node);
}

} // namespace detail

namespace {

using namespace detail;

void append_upper(std::string& tmp, sv s) {
    tmp.assign(s);
    for (char& c : tmp)
        c = text::ascii_upper(c);
}

void write_openwec(Writer& w, const Event& ev, const Metadata& md) {
    w.key("OpenWEC");
    w.begin_object();
    write_metadata_fields(w, md);
    if (ev.error) {
        w.key("Error");
        w.begin_object();
        w.field("OriginalContent", ev.original_content);
        w.field("Type", to_string(ev.error->type));
        w.field("Message", ev.error->message);
        w.end_object();
    }
    w.end_object();
}

void write_event_data_fields(Writer& w, const EventData& ed) {
    for (const auto& nd : ed.named)
        w.field(nd.name, nd.value);
    if (!ed.data.empty()) {
        w.key("Data");
        w.begin_array();
        for (sv d : ed.data)
            w.value(d);
        w.end_array();
    }
    w.field("Binary", ed.binary);
}

void write_debug_data_fields(Writer& w, const DebugData& dd) {
    w.num_field("SequenceNumber", dd.sequence_number);
    w.field("FlagsName", dd.flags_name);
    w.field("LevelName", dd.level_name);
    w.field("Component", dd.component);
    w.field("SubComponent", dd.sub_component);
    w.field("FileLine", dd.file_line);
    w.field("Function", dd.function);
    w.field("Message", dd.message);
}

void write_processing_error_fields(Writer& w, const ProcessingErrorData& pd) {
    w.num_field("ErrorCode", pd.error_code);
    w.field("DataItemName", pd.data_item_name);
    w.field("EventPayload", pd.event_payload);
}

struct NxlogType {
    sv event_type;
    sv severity;
    int severity_value;
};

std::optional<NxlogType> nxlog_type(const System& sys, std::optional<std::int64_t> keywords) {
    constexpr std::int64_t kAuditSuccess = 0x20000000000000; // 9007199254740992
    constexpr std::int64_t kAuditFailure = 0x10000000000000; // 4503599627370496
    if (!sys.channel) return std::nullopt;
    if (*sys.channel == "Security") {
        if (!keywords) return std::nullopt;
        if (*keywords & kAuditSuccess) return NxlogType{"AUDIT_SUCCESS", "INFO", 2};
        if (*keywords & kAuditFailure) return NxlogType{"AUDIT_FAILURE", "ERROR", 4};
        return std::nullopt;
    }
    if (!sys.level) return std::nullopt;
    switch (*sys.level) {
    case 1:
        return NxlogType{"CRITICAL", "CRITICAL", 5};
    case 2:
        return NxlogType{"ERROR", "ERROR", 4};
    case 3:
        return NxlogType{"WARNING", "WARNING", 3};
    case 4:
        return NxlogType{"INFO", "INFO", 2};
    case 5:
        return NxlogType{"VERBOSE", "DEBUG", 1};
    default:
        return std::nullopt;
    }
}

template <class Out>
void append_escaped_nl(Out& out, bool in_cdata) {
    if (in_cdata)
        out.append("]]>&#10;<![CDATA[");
    else
        out.append("&#10;");
}

// The first index >= i of a line break or of a, b or c in s[0, n) (n when there is none, also when
// i >= n).
inline std::size_t find_stop(const char* s, std::size_t i, std::size_t n, char a, char b, char c) {
#if defined(__SSE2__)
    const __m128i va = _mm_set1_epi8(a);
    const __m128i vb = _mm_set1_epi8(b);
    const __m128i vc = _mm_set1_epi8(c);
    const __m128i cr = _mm_set1_epi8('\r');
    const __m128i lf = _mm_set1_epi8('\n');
    while (i + 16 <= n) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
        const __m128i hit =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, va), _mm_cmpeq_epi8(v, vb)),
                         _mm_or_si128(_mm_cmpeq_epi8(v, vc),
                                      _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf))));
        if (const auto m = static_cast<unsigned>(_mm_movemask_epi8(hit)); m != 0)
            return i + static_cast<std::size_t>(std::countr_zero(m));
        i += 16;
    }
#endif
    for (; i < n; ++i) {
        const char x = s[i];
        if (x == '\r' || x == '\n' || x == a || x == b || x == c) return i;
    }
    return n;
}

// The index of the last CR or LF in s[0, n), n when there is none.
inline std::size_t find_last_line_break(const char* s, std::size_t n) {
    std::size_t i = n;
#if defined(__SSE2__)
    const __m128i cr = _mm_set1_epi8('\r');
    const __m128i lf = _mm_set1_epi8('\n');
    while (i >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i - 16));
        const auto m = static_cast<unsigned>(
            _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf))));
        if (m != 0) return i - 16 + static_cast<std::size_t>(std::bit_width(m) - 1);
        i -= 16;
    }
#endif
    while (i > 0) {
        --i;
        if (s[i] == '\r' || s[i] == '\n') return i;
    }
    return n;
}

// Whether the start tag ending with the '>' at s[i] is self-closing: its last character outside
// attribute values, ignoring whitespace (TAB, space, CR, LF), is '/'. The tag's '<' (or a closing
// quote) stops the look-back.
inline bool self_closing(const char* s, std::size_t i) {
    while (i > 0) {
        const char x = s[--i];
        if (x != ' ' && x != '\t' && x != '\r' && x != '\n') return x == '/';
    }
    return false;
}

} // namespace

void format_time(std::chrono::system_clock::time_point tp, std::string& out) {
    append_utc(utc_of(tp), TimeStyle::Chrono, out);
}

namespace {

template <class Out>
void raw_into(std::string_view xml, Out& out) {
    // Only line breaks are rewritten, and the state machine only decides how: after the last one
    // the rest is copied as is. Windows events often break a line in the first tag only.
    const char* const s = xml.data();
    const std::size_t n = xml.size();
    const std::size_t last_break = find_last_line_break(s, n);
    if (last_break == n) {
        out.append(xml);
        return;
    }
    const std::size_t limit = last_break + 1; // the state machine runs on [0, limit)
    // It changes state on a few characters per state: jump from one to the next (and to line
    // breaks) instead of looking at every byte, and append whole runs.
    enum class St { Text, Tag, Quote, Comment, CData, PI, Doctype };
    St st = St::Text;
    char quote = 0;
    int depth = 0;
    int bracket = 0; // DOCTYPE internal subset
    bool end_tag = false;
    std::size_t run = 0;
    std::size_t i = 0;
    for (;;) {
        switch (st) {
        case St::Text:
            i = find_stop(s, i, limit, '<', '<', '<');
            break;
        case St::Tag:
            i = find_stop(s, i, limit, '"', '\'', '>');
            break;
        case St::Quote:
            i = find_stop(s, i, limit, quote, quote, quote);
            break;
        case St::Comment:
        case St::CData:
        case St::PI:
            i = find_stop(s, i, limit, '>', '>', '>');
            break;
        case St::Doctype:
            i = find_stop(s, i, limit, '[', ']', '>');
            break;
        }
        if (i >= limit) break;
        const char c = s[i];
        if (c == '\r' || c == '\n') {
            out.append(s + run, i - run);
            if (c == '\r' && i + 1 < n && s[i + 1] == '\n') ++i; // CRLF is one line break
            switch (st) {
            case St::Text:
                if (depth > 0) append_escaped_nl(out, false);
                break;
            case St::CData:
                append_escaped_nl(out, true);
                break;
            default:
                out.push_back(' '); // inside markup a line break is whitespace
                break;
            }
            run = ++i;
            continue;
        }
        switch (st) {
        case St::Text: { // c == '<'
            const sv rest = xml.substr(i);
            if (rest.substr(0, 4) == "<!--") {
                st = St::Comment;
            } else if (rest.substr(0, 9) == "<![CDATA[") {
                st = St::CData;
                i += 8;
            } else if (rest.substr(0, 2) == "<?") {
                st = St::PI;
            } else if (rest.substr(0, 2) == "<!") {
                st = St::Doctype;
                bracket = 0;
            } else {
                st = St::Tag;
                end_tag = rest.substr(0, 2) == "</";
            }
            break;
        }
        case St::Tag:
            if (c == '>') {
                if (end_tag)
                    depth = depth > 0 ? depth - 1 : 0;
                else if (!self_closing(s, i))
                    ++depth;
                st = St::Text;
            } else { // a quote
                quote = c;
                st = St::Quote;
            }
            break;
        case St::Quote: // the closing quote
            st = St::Tag;
            break;
        case St::Comment:
            if (i >= 2 && s[i - 1] == '-' && s[i - 2] == '-') st = St::Text;
            break;
        case St::CData:
            if (i >= 2 && s[i - 1] == ']' && s[i - 2] == ']') st = St::Text;
            break;
        case St::PI:
            if (s[i - 1] == '?') st = St::Text;
            break;
        case St::Doctype:
            if (c == '[')
                ++bracket;
            else if (c == ']')
                --bracket;
            else if (bracket <= 0)
                st = St::Text;
            break;
        }
        ++i;
    }
    out.append(s + run, n - run);
}

void write_json(Writer& w, const Event& ev, const Metadata& md) {
    w.begin_object();
    if (ev.system) {
        const System& s = *ev.system;
        w.key("System");
        w.begin_object();
        w.key("Provider");
        w.begin_object();
        w.field("Name", s.provider.name);
        w.field("Guid", s.provider.guid);
        w.field("EventSourceName", s.provider.event_source_name);
        w.end_object();
        w.num_field("EventID", s.event_id);
        w.num_field("EventIDQualifiers", s.event_id_qualifiers);
        w.num_field("Version", s.version);
        w.num_field("Level", s.level);
        w.num_field("Task", s.task);
        w.num_field("Opcode", s.opcode);
        w.field("Keywords", s.keywords);
        w.field("TimeCreated", s.time_created);
        w.num_field("EventRecordID", s.event_record_id);
        if (s.correlation) {
            w.key("Correlation");
            w.begin_object();
            w.field("ActivityID", s.correlation->activity_id);
            w.field("RelatedActivityID", s.correlation->related_activity_id);
            w.end_object();
        }
        if (s.execution) {
            const Execution& e = *s.execution;
            w.key("Execution");
            w.begin_object();
            w.num_field("ProcessID", e.process_id);
            w.num_field("ThreadID", e.thread_id);
            w.num_field("ProcessorID", e.processor_id);
            w.num_field("SessionID", e.session_id);
            w.num_field("KernelTime", e.kernel_time);
            w.num_field("UserTime", e.user_time);
            w.num_field("ProcessorTime", e.processor_time);
            w.end_object();
        }
        w.field("Channel", s.channel);
        w.field("Computer", s.computer);
        w.field("Container", s.container);
        w.field("UserID", s.user_id);
        w.end_object();
    }
    switch (ev.data_kind) {
    case DataKind::None:
        break;
    case DataKind::EventData:
        w.key("EventData");
        w.begin_object();
        write_event_data_fields(w, ev.event_data);
        w.end_object();
        break;
    case DataKind::UserData:
        w.field("UserData", ev.user_data);
        break;
    case DataKind::DebugData:
        w.key("DebugData");
        w.begin_object();
        write_debug_data_fields(w, ev.debug_data);
        w.end_object();
        break;
    case DataKind::ProcessingErrorData:
        w.key("ProcessingErrorData");
        w.begin_object();
        write_processing_error_fields(w, ev.processing_error_data);
        w.end_object();
        break;
    case DataKind::BinaryEventData:
        w.field("BinaryEventData", ev.binary_event_data);
        break;
    }
    if (ev.rendering_info) {
        const RenderingInfo& r = *ev.rendering_info;
        w.key("RenderingInfo");
        w.begin_object();
        w.field("Message", r.message);
        w.field("Level", r.level);
        w.field("Task", r.task);
        w.field("Opcode", r.opcode);
        w.field("Channel", r.channel);
        w.field("Provider", r.provider);
        if (r.keywords) {
            w.key("Keywords");
            w.begin_array();
            for (sv k : *r.keywords)
                w.value(k);
            w.end_array();
        }
        w.field("Culture", r.culture);
        w.end_object();
    }
    write_openwec(w, ev, md);
    w.end_object();
}

void write_nxlog(Writer& w, const Event& ev, const Metadata& md) {
    w.begin_object();
    if (ev.system) {
        const System& s = *ev.system;
        std::string upper; // GUIDs are short: stays in the SSO buffer, no allocation
        w.field("SourceName", s.provider.name);
        if (s.provider.guid) {
            append_upper(upper, *s.provider.guid);
            w.field("ProviderGuid", upper);
        }
        w.num_field("EventID", s.event_id);
        w.num_field("Version", s.version);
        w.num_field("Task", s.task);
        w.num_field("OpcodeValue", s.opcode);
        auto keywords = parse_keywords(s.keywords);
        w.num_field("Keywords", keywords);
        w.field("EventTime", s.time_created);
        w.num_field("RecordNumber", s.event_record_id);
        if (s.correlation) {
            if (s.correlation->activity_id) {
                append_upper(upper, *s.correlation->activity_id);
                w.field("ActivityID", upper);
            }
            if (s.correlation->related_activity_id) {
                append_upper(upper, *s.correlation->related_activity_id);
                w.field("RelatedActivityID", upper);
            }
        }
        if (s.execution) {
            w.num_field("ProcessID", s.execution->process_id);
            w.num_field("ThreadID", s.execution->thread_id);
        }
        w.field("Channel", s.channel);
        w.field("Hostname", s.computer);
        w.field("UserID", s.user_id);
        if (auto t = nxlog_type(s, keywords)) {
            w.field("EventType", t->event_type);
            w.field("Severity", t->severity);
            w.num_field("SeverityValue", t->severity_value);
        }
    }
    switch (ev.data_kind) {
    case DataKind::None:
        break;
    case DataKind::EventData:
        write_event_data_fields(w, ev.event_data);
        break;
    case DataKind::UserData:
        w.field("UserData", ev.user_data);
        break;
    case DataKind::DebugData:
        write_debug_data_fields(w, ev.debug_data);
        break;
    case DataKind::ProcessingErrorData:
        write_processing_error_fields(w, ev.processing_error_data);
        break;
    case DataKind::BinaryEventData:
        w.field("BinaryEventData", ev.binary_event_data);
        break;
    }
    if (ev.rendering_info) {
        w.field("Message", ev.rendering_info->message);
        w.field("Category", ev.rendering_info->task);
        w.field("Opcode", ev.rendering_info->opcode);
    }
    write_openwec(w, ev, md);
    w.time_field("EventReceivedTime", md.time_received);
    w.end_object();
}

void write_raw_json(Writer& w, std::string_view xml, const Metadata& md) {
    w.begin_object();
    w.key("meta");
    w.begin_object();
    write_metadata_fields(w, md);
    w.end_object();
    w.field("data", xml);
    w.end_object();
}

} // namespace

void format_raw(std::string_view xml, std::string& out) {
    raw_into(xml, out);
}

void format_json(const Event& event, const Metadata& metadata, std::string& out) {
    Writer w(out);
    write_json(w, event, metadata);
}

void format_nxlog(const Event& event, const Metadata& metadata, std::string& out) {
    Writer w(out);
    write_nxlog(w, event, metadata);
}

void format_raw_json(std::string_view xml, const Metadata& metadata, std::string& out) {
    Writer w(out);
    write_raw_json(w, xml, metadata);
}

void detail::format_raw(std::string_view xml, FormatBuffer& out) {
    raw_into(xml, out);
}

void detail::format_json(const Event& event, const Metadata& metadata, FormatBuffer& out) {
    Writer w(out);
    write_json(w, event, metadata);
}

void detail::format_nxlog(const Event& event, const Metadata& metadata, FormatBuffer& out) {
    Writer w(out);
    write_nxlog(w, event, metadata);
}

void detail::format_raw_json(std::string_view xml, const Metadata& metadata, FormatBuffer& out) {
    Writer w(out);
    write_raw_json(w, xml, metadata);
}

} // namespace wec::event

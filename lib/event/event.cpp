// Parsing of one forwarded Windows event.
//
// Behaviour follows OpenWEC (server/src/event.rs) so that the outputs are interchangeable:
// - the document is parsed; on success the event is "fed" from the children of the root element
//   (System, EventData | UserData | BinaryEventData | DebugData | ProcessingErrorData,
//   RenderingInfo; SubscriptionBookmarkEvent and unknown nodes are ignored);
// - feeding fails when System lacks Computer or a valid EventID, TimeCreated lacks SystemTime,
//   Execution lacks a valid ProcessID/ThreadID, or ProcessingErrorData has a non-numeric
//   ErrorCode: ErrorType::FailedToFeedEvent, message "Could not feed event from document:
//   Parsing failure in <Node>"; what was fed before the failing node is kept;
// - when the XML is invalid (typically Windows truncated RenderingInfo), the text is cut at the
//   last "<RenderingInfo", "</Event>" appended and parsed again: RawContentRecovered (everything
//   but RenderingInfo kept), FailedToRecoverRawContent (nothing kept) or, without any
//   "<RenderingInfo", Unrecoverable (nothing kept). The original text is kept for
//   OpenWEC.Error.OriginalContent.
// Differences: the XML parser is pugixml, which is more lenient than roxmltree (characters XML
// forbids, unknown entities, undeclared prefixes are accepted rather than fatal), and the inner
// parser messages differ ("Failed to parse event XML (<pugixml description> at offset N) ...").
#include "event/event.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <deque>
#include <limits>
#include <pugixml.hpp>
#include <unordered_map>

namespace wec::event {
namespace detail {

struct Storage {
    pugi::xml_document doc;
    std::string buf;               // mutable copy parsed in place by pugixml
    std::string original;          // the input, kept when an error is recorded
    std::deque<std::string> arena; // strings that exist in no buffer (joined text, UserData)
    std::unordered_map<std::string_view, std::size_t> index; // named-data dedup (large events)
};

} // namespace detail

namespace {

using detail::Storage;
using sv = std::string_view;

constexpr unsigned kParseOptions =
    pugi::parse_cdata | pugi::parse_escapes | pugi::parse_eol | pugi::parse_wconv_attribute |
    pugi::parse_ws_pcdata; // keep whitespace-only text: <Data> </Data> is " ", as in OpenWEC

// One pass over the (short) qualified name: cheaper than strlen followed by a search for ':'.
sv local_name(const char* name) {
    const char* start = name;
    const char* p = name;
    for (; *p != '\0'; ++p)
        if (*p == ':') start = p + 1;
    return sv(start, static_cast<std::size_t>(p - start));
}

bool is_text(const pugi::xml_node& n) {
    auto t = n.type();
    return t == pugi::node_pcdata || t == pugi::node_cdata;
}

// roxmltree's Node::text(): the first child if it is text (adjacent text and CDATA merged).
std::optional<sv> text(const pugi::xml_node& node, Storage& st) {
    pugi::xml_node c = node.first_child();
    if (!c || !is_text(c)) return std::nullopt;
    pugi::xml_node next = c.next_sibling();
    if (!next || !is_text(next)) return sv(c.value());
    std::string& joined = st.arena.emplace_back(c.value());
    for (; next && is_text(next); next = next.next_sibling())
        joined += next.value();
    return sv(joined);
}

std::optional<sv> attr(const pugi::xml_node& node, sv name) {
    for (pugi::xml_attribute a = node.first_attribute(); a; a = a.next_attribute()) {
        if (local_name(a.name()) == name) return sv(a.value());
    }
    return std::nullopt;
}

// Rust's str::parse::<unsigned>(): optional '+', then one or more ASCII digits, no overflow.
template <typename T>
std::optional<T> parse_uint(std::optional<sv> s) {
    if (!s) return std::nullopt;
    sv v = *s;
    if (!v.empty() && v.front() == '+') v.remove_prefix(1);
    if (v.empty()) return std::nullopt;
    T value = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
    if (ec != std::errc() || ptr != v.data() + v.size()) return std::nullopt;
    return value;
}

struct FeedError {
    const char* node; // "System", "ProcessingErrorData", ...
};

bool parse_system(const pugi::xml_node& system_node, Storage& st, System& sys) {
    std::optional<sv> computer;
    std::optional<std::uint32_t> event_id;
    for (pugi::xml_node n = system_node.first_child(); n; n = n.next_sibling()) {
        if (n.type() != pugi::node_element) continue;
        sv tag = local_name(n.name());
        if (tag == "Provider") {
            sys.provider = Provider{attr(n, "Name"), attr(n, "Guid"), attr(n, "EventSourceName")};
        } else if (tag == "EventID") {
            event_id = parse_uint<std::uint32_t>(text(n, st));
            sys.event_id_qualifiers = parse_uint<std::uint16_t>(attr(n, "Qualifiers"));
        } else if (tag == "Version") {
            sys.version = parse_uint<std::uint8_t>(text(n, st));
        } else if (tag == "Level") {
            sys.level = parse_uint<std::uint8_t>(text(n, st));
        } else if (tag == "Task") {
            sys.task = parse_uint<std::uint16_t>(text(n, st));
        } else if (tag == "Opcode") {
            sys.opcode = parse_uint<std::uint8_t>(text(n, st));
        } else if (tag == "Keywords") {
            sys.keywords = text(n, st);
        } else if (tag == "TimeCreated") {
            auto t = attr(n, "SystemTime");
            if (!t) return false;
            sys.time_created = t;
        } else if (tag == "EventRecordID") {
            sys.event_record_id = parse_uint<std::uint64_t>(text(n, st));
        } else if (tag == "Correlation") {
            sys.correlation = Correlation{attr(n, "ActivityID"), attr(n, "RelatedActivityID")};
        } else if (tag == "Execution") {
            auto pid = parse_uint<std::uint32_t>(attr(n, "ProcessID"));
            auto tid = parse_uint<std::uint32_t>(attr(n, "ThreadID"));
            if (!pid || !tid) return false;
            Execution e;
            e.process_id = *pid;
            e.thread_id = *tid;
            e.processor_id = parse_uint<std::uint8_t>(attr(n, "ProcessorID"));
            e.session_id = parse_uint<std::uint32_t>(attr(n, "SessionID"));
            e.kernel_time = parse_uint<std::uint32_t>(attr(n, "KernelTime"));
            e.user_time = parse_uint<std::uint32_t>(attr(n, "UserTime"));
            e.processor_time = parse_uint<std::uint32_t>(attr(n, "ProcessorTime"));
            sys.execution = e;
        } else if (tag == "Channel") {
            sys.channel = text(n, st);
        } else if (tag == "Computer") {
            computer = text(n, st);
        } else if (tag == "Container") {
            sys.container = text(n, st);
        } else if (tag == "Security") {
            sys.user_id = attr(n, "UserID");
        }
    }
    if (!computer || !event_id) return false;
    sys.computer = *computer;
    sys.event_id = *event_id;
    return true;
}

void parse_event_data(const pugi::xml_node& node, Storage& st, EventData& ed) {
    ed.named.clear();
    ed.data.clear();
    ed.data_position.clear();
    ed.binary.reset();
    st.index.clear();
    std::uint32_t position = 0; // of the child element (Winlogbeat's paramN)
    for (pugi::xml_node n = node.first_child(); n; n = n.next_sibling()) {
        if (n.type() != pugi::node_element) continue;
        ++position;
        sv tag = local_name(n.name());
        if (tag == "Data") {
            sv value = text(n, st).value_or(sv());
            if (auto name = attr(n, "Name")) {
                // HashMap semantics: one entry per name, the last value wins.
                if (ed.named.size() < 16) {
                    bool found = false;
                    for (auto& nd : ed.named) {
                        if (nd.name == *name) {
                            nd.value = value;
                            found = true;
                            break;
                        }
                    }
                    if (!found) ed.named.push_back({*name, value});
                } else {
                    if (st.index.empty()) {
                        for (std::size_t i = 0; i < ed.named.size(); ++i)
                            st.index.emplace(ed.named[i].name, i);
                    }
                    auto [it, inserted] = st.index.emplace(*name, ed.named.size());
                    if (inserted)
                        ed.named.push_back({*name, value});
                    else
                        ed.named[it->second].value = value;
                }
            } else if (!value.empty()) {
                ed.data.push_back(value);
                ed.data_position.push_back(position);
            }
        } else if (tag == "Binary") {
            ed.binary = text(n, st);
        }
    }
}

void parse_debug_data(const pugi::xml_node& node, Storage& st, DebugData& dd) {
    dd = DebugData{};
    for (pugi::xml_node n = node.first_child(); n; n = n.next_sibling()) {
        if (n.type() != pugi::node_element) continue;
        sv tag = local_name(n.name());
        if (tag == "SequenceNumber") {
            dd.sequence_number = parse_uint<std::uint32_t>(text(n, st));
        } else if (tag == "FlagsName") {
            dd.flags_name = text(n, st);
        } else if (tag == "LevelName") {
            dd.level_name = text(n, st);
        } else if (tag == "Component") {
            dd.component = text(n, st).value_or(sv());
        } else if (tag == "SubComponent") {
            dd.sub_component = text(n, st);
        } else if (tag == "FileLine") {
            dd.file_line = text(n, st);
        } else if (tag == "Function") {
            dd.function = text(n, st);
        } else if (tag == "Message") {
            dd.message = text(n, st).value_or(sv());
        }
    }
}

bool parse_processing_error_data(const pugi::xml_node& node, Storage& st, ProcessingErrorData& pd) {
    ProcessingErrorData result;
    for (pugi::xml_node n = node.first_child(); n; n = n.next_sibling()) {
        if (n.type() != pugi::node_element) continue;
        sv tag = local_name(n.name());
        if (tag == "ErrorCode") {
            auto code = parse_uint<std::uint32_t>(text(n, st).value_or(sv()));
            if (!code) return false;
            result.error_code = *code;
        } else if (tag == "DataItemName") {
            result.data_item_name = text(n, st).value_or(sv());
        } else if (tag == "EventPayload") {
            result.event_payload = text(n, st).value_or(sv());
        }
    }
    pd = result;
    return true;
}

RenderingInfo parse_rendering_info(const pugi::xml_node& node, Storage& st) {
    RenderingInfo ri;
    ri.culture = attr(node, "Culture").value_or(sv());
    for (pugi::xml_node n = node.first_child(); n; n = n.next_sibling()) {
        if (n.type() != pugi::node_element) continue;
        sv tag = local_name(n.name());
        if (tag == "Message") {
            ri.message = text(n, st);
        } else if (tag == "Level") {
            ri.level = text(n, st);
        } else if (tag == "Task") {
            ri.task = text(n, st);
        } else if (tag == "Opcode") {
            ri.opcode = text(n, st);
        } else if (tag == "Channel") {
            ri.channel = text(n, st);
        } else if (tag == "Provider") {
            ri.provider = text(n, st);
        } else if (tag == "Keywords") {
            std::vector<sv> keywords;
            for (pugi::xml_node k = n.first_child(); k; k = k.next_sibling()) {
                if (k.type() != pugi::node_element || local_name(k.name()) != "Keyword") continue;
                if (auto t = text(k, st)) keywords.push_back(*t);
            }
            ri.keywords = std::move(keywords);
        }
    }
    return ri;
}

// Skips a start tag beginning at `pos` (just after its name); returns the index of its '>' or
// npos. Quote-aware.
std::size_t find_tag_end(sv src, std::size_t pos) {
    char quote = 0;
    for (; pos < src.size(); ++pos) {
        char c = src[pos];
        if (quote) {
            if (c == quote) quote = 0;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '>') {
            return pos;
        }
    }
    return sv::npos;
}

bool is_name_end(char c) {
    return c == '>' || c == '/' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// The source text between <UserData ...> and its </UserData>, verbatim (as OpenWEC keeps it).
sv user_data_raw(const pugi::xml_node& node, sv src, Storage& st) {
    std::ptrdiff_t off = node.offset_debug();
    if (off < 0 || static_cast<std::size_t>(off) >= src.size()) return {};
    sv qname(node.name());
    std::size_t gt = find_tag_end(src, static_cast<std::size_t>(off) + qname.size());
    if (gt == sv::npos || src[gt - 1] == '/') return {};
    std::size_t inner = gt + 1;
    int depth = 1;
    std::size_t pos = inner;
    while (pos < src.size()) {
        std::size_t lt = src.find('<', pos);
        if (lt == sv::npos) break;
        bool closing = lt + 1 < src.size() && src[lt + 1] == '/';
        std::size_t name_at = lt + (closing ? 2 : 1);
        if (src.compare(name_at, qname.size(), qname) == 0 && name_at + qname.size() < src.size() &&
            is_name_end(src[name_at + qname.size()])) {
            std::size_t end = find_tag_end(src, name_at + qname.size());
            if (end == sv::npos) break;
            if (closing) {
                if (--depth == 0) {
                    return st.arena.emplace_back(src.substr(inner, lt - inner));
                }
            } else if (src[end - 1] != '/') {
                ++depth;
            }
            pos = end + 1;
        } else {
            pos = lt + 1;
        }
    }
    return st.arena.emplace_back(src.substr(inner));
}

// Winlogbeat's reading of UserData: the children of its first element, each keyed by its Name
// attribute (when not empty) or its local name.
void parse_user_data_fields(const pugi::xml_node& node, Storage& st, Event& ev) {
    pugi::xml_node first = node.first_child();
    while (first && first.type() != pugi::node_element)
        first = first.next_sibling();
    if (!first) return;
    ev.user_data_element = local_name(first.name());
    auto& fields = ev.user_data_fields;
    st.index.clear();
    std::uint32_t position = 0;
    for (pugi::xml_node n = first.first_child(); n; n = n.next_sibling()) {
        if (n.type() != pugi::node_element) continue;
        ++position;
        sv name = attr(n, "Name").value_or(sv());
        if (name.empty()) name = local_name(n.name());
        sv value = text(n, st).value_or(sv());
        // Winlogbeat keeps the first non-empty value of a name ("Data" become param<N>).
        if (value.empty()) continue;
        if (name != "Data") {
            if (fields.size() < 16) {
                if (std::any_of(fields.begin(), fields.end(),
                                [&](const UserDataField& f) { return f.name == name; }))
                    continue;
            } else {
                if (st.index.empty())
                    for (std::size_t i = 0; i < fields.size(); ++i)
                        st.index.emplace(fields[i].name, i);
                if (!st.index.emplace(name, fields.size()).second) continue;
            }
        }
        fields.push_back({name, value, position});
    }
}

// Feeds `ev` from the root element; returns the failing node's name or nullptr.
const char* feed(Event& ev, const pugi::xml_node& root, sv src, Storage& st) {
    for (pugi::xml_node n = root.first_child(); n; n = n.next_sibling()) {
        if (n.type() != pugi::node_element) continue;
        sv tag = local_name(n.name());
        if (tag == "System") {
            System sys;
            if (!parse_system(n, st, sys)) return "System";
            ev.system = std::move(sys);
        } else if (tag == "EventData") {
            parse_event_data(n, st, ev.event_data);
            ev.data_kind = DataKind::EventData;
        } else if (tag == "UserData") {
            ev.user_data = user_data_raw(n, src, st);
            ev.user_data_element = {};
            ev.user_data_fields.clear();
            parse_user_data_fields(n, st, ev);
            ev.data_kind = DataKind::UserData;
        } else if (tag == "BinaryEventData") {
            ev.binary_event_data = text(n, st).value_or(sv());
            ev.data_kind = DataKind::BinaryEventData;
        } else if (tag == "DebugData") {
            parse_debug_data(n, st, ev.debug_data);
            ev.data_kind = DataKind::DebugData;
        } else if (tag == "ProcessingErrorData") {
            if (!parse_processing_error_data(n, st, ev.processing_error_data))
                return "ProcessingErrorData";
            ev.data_kind = DataKind::ProcessingErrorData;
        } else if (tag == "RenderingInfo") {
            ev.rendering_info = parse_rendering_info(n, st);
        }
        // SubscriptionBookmarkEvent (event 111) and unknown nodes: nothing to do.
    }
    return nullptr;
}

// Parses st.buf in place; returns an empty string on success or a description of the failure.
std::string load(Storage& st) {
    pugi::xml_parse_result r = st.doc.load_buffer_inplace(st.buf.data(), st.buf.size(),
                                                          kParseOptions, pugi::encoding_utf8);
    if (r && st.doc.document_element()) return {};
    std::string msg = r ? "No document element found" : r.description();
    msg += " at offset ";
    msg += std::to_string(r.offset);
    return msg;
}

void set_error(Event& ev, Storage& st, sv xml, ErrorType type, std::string message) {
    st.original.assign(xml);
    ev.original_content = st.original;
    ev.error = ParseError{type, std::move(message)};
}

} // namespace

std::string_view to_string(ErrorType type) {
    switch (type) {
    case ErrorType::RawContentRecovered:
        return "RawContentRecovered";
    case ErrorType::FailedToRecoverRawContent:
        return "FailedToRecoverRawContent";
    case ErrorType::Unrecoverable:
        return "Unrecoverable";
    case ErrorType::FailedToFeedEvent:
        return "FailedToFeedEvent";
    }
    return "Unknown";
}

Event::Event() : storage_(std::make_unique<detail::Storage>()) {}
Event::~Event() = default;
Event::Event(Event&&) noexcept = default;
Event& Event::operator=(Event&&) noexcept = default;

void Event::clear() {
    system.reset();
    data_kind = DataKind::None;
    event_data.named.clear();
    event_data.data.clear();
    event_data.data_position.clear();
    event_data.binary.reset();
    user_data = {};
    user_data_element = {};
    user_data_fields.clear();
    debug_data = DebugData{};
    processing_error_data = ProcessingErrorData{};
    binary_event_data = {};
    rendering_info.reset();
    error.reset();
    original_content = {};
    if (storage_) {
        storage_->arena.clear();
        storage_->original.clear();
    }
}

void parse(std::string_view xml, Event& out) {
    out.clear();
    if (!out.storage_) out.storage_ = std::make_unique<detail::Storage>();
    Storage& st = *out.storage_;

    st.buf.assign(xml);
    std::string initial_error = load(st);
    if (initial_error.empty()) {
        if (const char* failed = feed(out, st.doc.document_element(), xml, st)) {
            set_error(out, st, xml, ErrorType::FailedToFeedEvent,
                      std::string("Could not feed event from document: Parsing failure in ") +
                          failed);
        }
        return;
    }

    // Windows sometimes truncates RenderingInfo: drop it and try again (as OpenWEC does).
    std::size_t cut = xml.rfind("<RenderingInfo");
    if (cut == sv::npos) {
        set_error(out, st, xml, ErrorType::Unrecoverable,
                  "Failed to parse event XML: " + initial_error);
        return;
    }
    st.buf.assign(xml.substr(0, cut));
    st.buf += "</Event>";
    std::string recover_error = load(st);
    if (!recover_error.empty()) {
        set_error(out, st, xml, ErrorType::FailedToRecoverRawContent,
                  "Failed to parse event XML (" + initial_error +
                      ") and Raw content recovering failed (" + recover_error + ")");
        return;
    }
    if (const char* failed = feed(out, st.doc.document_element(), xml.substr(0, cut), st)) {
        set_error(out, st, xml, ErrorType::FailedToFeedEvent,
                  std::string("Could not feed event from document: Parsing failure in ") + failed);
        return;
    }
    set_error(out, st, xml, ErrorType::RawContentRecovered,
              "Failed to parse event XML (" + initial_error +
                  ") but Raw content could be recovered.");
}

Event parse(std::string_view xml) {
    Event ev;
    parse(xml, ev);
    return ev;
}

} // namespace wec::event

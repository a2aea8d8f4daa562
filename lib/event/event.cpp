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

#include "event/word_copy.hpp"
#include "text/ascii.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <limits>
#include <pugixml.hpp>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace wec::event {
namespace detail {

struct Attr {
    std::string_view local; // the name without its prefix
    std::string_view value;
};

// n bytes of a and b equal: 8 or 4 bytes at a time, the last chunk overlapping (short names: no
// memcmp call).
[[gnu::always_inline]] inline bool same_bytes(const char* a, const char* b, std::size_t n) {
    if (n >= 8) {
        const char* const a_last = a + n - 8;
        const char* const b_last = b + n - 8;
        for (; a < a_last; a += 8, b += 8)
            if (std::memcmp(a, b, 8) != 0) return false;
        return std::memcmp(a_last, b_last, 8) == 0;
    }
    if (n >= 4) return std::memcmp(a, b, 4) == 0 && std::memcmp(a + n - 4, b + n - 4, 4) == 0;
    for (std::size_t i = 0; i < n; ++i)
        if (a[i] != b[i]) return false;
    return true;
}

[[gnu::always_inline]] inline bool same(std::string_view a, std::string_view b) {
    return a.size() == b.size() && same_bytes(a.data(), b.data(), a.size());
}

// A hash of a name 8 (or 4) bytes at a time, the last chunk overlapping: every byte counts (a
// name of up to 16 bytes is its first and last 8), without a multiply per byte.
[[gnu::always_inline]] inline std::uint64_t name_key(std::string_view name) {
    const std::size_t n = name.size();
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    if (n >= 8) {
        std::memcpy(&a, name.data(), 8);
        std::memcpy(&b, name.data() + n - 8, 8);
        for (std::size_t i = 8; i + 8 < n; i += 8) { // the middle of a longer name
            std::uint64_t c;
            std::memcpy(&c, name.data() + i, 8);
            a = (a ^ c) * 0xFF51AFD7ED558CCDULL;
            a ^= a >> 31;
        }
    } else if (n >= 4) {
        std::uint32_t x;
        std::uint32_t y;
        std::memcpy(&x, name.data(), 4);
        std::memcpy(&y, name.data() + n - 4, 4);
        a = x;
        b = y;
    } else {
        for (char c : name)
            a = (a << 8) | static_cast<unsigned char>(c);
    }
    std::uint64_t h = (a ^ n) * 0x9E3779B97F4A7C15ULL;
    h ^= (b + (h >> 29)) * 0xC2B2AE3D27D4EB4FULL;
    return h ^ (h >> 32);
}

// Name -> position, for the names of large EventData/UserData (HashMap semantics: the first
// entry of a name stays). Open addressing in one reused array: no allocation per event.
class NameIndex {
public:
    bool empty() const { return used_ == 0; }
    void clear() {
        if (used_ == 0) return;
        if (slots_.size() > kKeep) {
            slots_.assign(kKeep, Slot{}); // after a huge event, do not clear a huge table each time
        } else {
            std::fill(slots_.begin(), slots_.end(), Slot{});
        }
        used_ = 0;
    }
    // The position of `name`, inserting `position` when it is new (second: whether inserted).
    std::pair<std::size_t, bool> emplace(std::string_view name, std::size_t position) {
        if ((used_ + 1) * 2 > slots_.size()) grow();
        Slot& slot = find(name);
        if (slot.position != 0) return {slot.position - 1, false};
        slot = Slot{name, position + 1};
        ++used_;
        return {position, true};
    }

private:
    struct Slot {
        std::string_view name;
        std::size_t position = 0; // + 1; 0: empty
    };
    static constexpr std::size_t kKeep = 64;

    static std::size_t hash(std::string_view name) {
        return static_cast<std::size_t>(name_key(name));
    }
    Slot& find(std::string_view name) {
        const std::size_t mask = slots_.size() - 1;
        for (std::size_t i = hash(name) & mask;; i = (i + 1) & mask) {
            Slot& slot = slots_[i];
            if (slot.position == 0 || same(slot.name, name)) return slot;
        }
    }
    void grow() {
        std::vector<Slot> old;
        old.swap(slots_);
        slots_.assign(std::max<std::size_t>(64, old.size() * 2), Slot{});
        for (const Slot& slot : old)
            if (slot.position != 0) find(slot.name) = slot;
    }

    std::vector<Slot> slots_;
    std::size_t used_ = 0;
};

// Names seen so far in one EventData, as bits of a 256-bit set: a name whose bit is not set is
// new (no search); a set bit only means "maybe" (the caller then searches).
class NameFilter {
public:
    void clear() { bits_ = {}; }
    // Whether `name` may have been added before; adds it.
    [[gnu::always_inline]] bool test_and_add(std::string_view name) {
        const std::size_t n = name.size();
        std::uint32_t a = 0;
        std::uint32_t b = 0;
        if (n >= 4) {
            std::memcpy(&a, name.data(), 4);
            std::memcpy(&b, name.data() + n - 4, 4);
        } else {
            for (char c : name)
                a = (a << 8) | static_cast<unsigned char>(c);
        }
        const std::uint64_t h =
            (((static_cast<std::uint64_t>(a) << 32) | b) ^ n) * 0x9E3779B97F4A7C15ULL;
        const auto bit = static_cast<unsigned>(h >> 56);
        std::uint64_t& word = bits_[bit >> 6];
        const std::uint64_t mask = std::uint64_t{1} << (bit & 63);
        const bool maybe = (word & mask) != 0;
        word |= mask;
        return maybe;
    }

private:
    std::array<std::uint64_t, 4> bits_{};
};

struct Storage {
    pugi::xml_document doc;
    std::vector<Attr> attrs;       // the one pass: the attributes of the last start tag
    std::string buf;               // mutable copy parsed in place by pugixml
    std::string original;          // the input, kept when an error is recorded
    std::deque<std::string> arena; // strings that exist in no buffer (joined text, UserData)
    NameIndex index;               // named-data dedup (large events)
    NameFilter seen;               // named-data dedup (the others)
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
    for (char c : v) {
        const auto d = static_cast<unsigned char>(c - '0');
        if (d > 9) return std::nullopt;
        if (__builtin_mul_overflow(value, T{10}, &value) ||
            __builtin_add_overflow(value, static_cast<T>(d), &value))
            return std::nullopt;
    }
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

// HashMap semantics: one entry per name, the last value wins (first-seen order kept).
// Up to kLinearNames names, a name whose bit is not in `st.seen` is new; only a maybe is searched.
constexpr std::size_t kLinearNames = 32;

void add_named_data(EventData& ed, Storage& st, sv name, sv value) {
    if (ed.named.size() < kLinearNames) {
        if (st.seen.test_and_add(name)) {
            for (auto& nd : ed.named) {
                if (detail::same(nd.name, name)) {
                    nd.value = value;
                    return;
                }
            }
        }
        ed.named.push_back({name, value});
        return;
    }
    if (st.index.empty()) {
        for (std::size_t i = 0; i < ed.named.size(); ++i)
            st.index.emplace(ed.named[i].name, i);
    }
    auto [position, inserted] = st.index.emplace(name, ed.named.size());
    if (inserted)
        ed.named.push_back({name, value});
    else
        ed.named[position].value = value;
}

void reset_event_data(EventData& ed, Storage& st) {
    ed.named.clear();
    ed.data.clear();
    ed.data_position.clear();
    ed.binary.reset();
    st.index.clear();
    st.seen.clear();
}

// One <Data> of EventData at child `position`: named, or unnamed and kept when not empty.
void add_data(EventData& ed, Storage& st, std::optional<sv> name, sv value,
              std::uint32_t position) {
    if (name) {
        add_named_data(ed, st, *name, value);
    } else if (!value.empty()) {
        ed.data.push_back(value);
        ed.data_position.push_back(position);
    }
}

void parse_event_data(const pugi::xml_node& node, Storage& st, EventData& ed) {
    reset_event_data(ed, st);
    std::uint32_t position = 0; // of the child element (Winlogbeat's paramN)
    for (pugi::xml_node n = node.first_child(); n; n = n.next_sibling()) {
        if (n.type() != pugi::node_element) continue;
        ++position;
        sv tag = local_name(n.name());
        if (tag == "Data") {
            sv value = text(n, st).value_or(sv());
            add_data(ed, st, attr(n, "Name"), value, position);
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
    return c == '>' || c == '/' || text::is_xml_space(c);
}

// The source text between <UserData ...> and its </UserData>, verbatim (as OpenWEC keeps it);
// `name_at`: the offset of the element's name in `src`.
sv user_data_raw(sv src, std::size_t name_at, sv qname, Storage& st) {
    if (name_at >= src.size()) return {};
    std::size_t gt = find_tag_end(src, name_at + qname.size());
    if (gt == sv::npos || src[gt - 1] == '/') return {};
    std::size_t inner = gt + 1;
    int depth = 1;
    std::size_t pos = inner;
    while (pos < src.size()) {
        std::size_t lt = src.find('<', pos);
        if (lt == sv::npos) break;
        bool closing = lt + 1 < src.size() && src[lt + 1] == '/';
        std::size_t name_pos = lt + (closing ? 2 : 1);
        if (src.compare(name_pos, qname.size(), qname) == 0 &&
            name_pos + qname.size() < src.size() && is_name_end(src[name_pos + qname.size()])) {
            std::size_t end = find_tag_end(src, name_pos + qname.size());
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

sv user_data_raw(const pugi::xml_node& node, sv src, Storage& st) {
    std::ptrdiff_t off = node.offset_debug();
    if (off < 0) return {};
    return user_data_raw(src, static_cast<std::size_t>(off), sv(node.name()), st);
}

// Winlogbeat keeps the first non-empty value of a name ("Data" are all kept: param<N>).
void add_user_data_field(Event& ev, Storage& st, sv name, sv value, std::uint32_t position) {
    auto& fields = ev.user_data_fields;
    if (value.empty()) return;
    if (name != "Data") {
        if (fields.size() < 16) {
            if (std::any_of(fields.begin(), fields.end(),
                            [&](const UserDataField& f) { return detail::same(f.name, name); }))
                return;
        } else {
            if (st.index.empty())
                for (std::size_t i = 0; i < fields.size(); ++i)
                    st.index.emplace(fields[i].name, i);
            if (!st.index.emplace(name, fields.size()).second) return;
        }
    }
    fields.push_back({name, value, position});
}

// Winlogbeat's reading of UserData: the children of its first element, each keyed by its Name
// attribute (when not empty) or its local name.
void parse_user_data_fields(const pugi::xml_node& node, Storage& st, Event& ev) {
    pugi::xml_node first = node.first_child();
    while (first && first.type() != pugi::node_element)
        first = first.next_sibling();
    if (!first) return;
    ev.user_data_element = local_name(first.name());
    st.index.clear();
    std::uint32_t position = 0;
    for (pugi::xml_node n = first.first_child(); n; n = n.next_sibling()) {
        if (n.type() != pugi::node_element) continue;
        ++position;
        sv name = attr(n, "Name").value_or(sv());
        if (name.empty()) name = local_name(n.name());
        add_user_data_field(ev, st, name, text(n, st).value_or(sv()), position);
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

// ---- The one pass ---------------------------------------------------------------------------
// Reads the event XML once, straight into the Event (no DOM). It accepts a subset of what
// pugixml accepts and gives, for that subset, exactly what the DOM path above gives: text and
// attribute values decoded as pugixml decodes them (the five entities and character references,
// CR LF and lone CR as LF in text and CDATA, TAB/LF/CR as a space in attribute values, CR LF as
// one space), decoded in place in `Storage::buf` (a value never grows). It gives up (and `parse`
// runs the DOM path) on anything else: malformed markup, NUL bytes, comments, processing
// instructions, DOCTYPE, a name with bytes outside [A-Za-z0-9_:.-], a reference to U+0000 or
// beyond U+10FFFF, nesting deeper than kMaxDepth, a failing mandatory field.

constexpr int kMaxDepth = 64;

// A local name against one of ours: a compare of known length, inlined (no memcmp call).
template <std::size_t N>
[[gnu::always_inline]] inline bool is(sv name, const char (&literal)[N]) {
    return name.size() == N - 1 && __builtin_memcmp(name.data(), literal, N - 1) == 0;
}

struct Tag {
    sv name;                 // qualified
    sv local;                // without its prefix
    std::size_t name_at = 0; // offset of the name in the input
    bool empty = false;      // <name .../>
};

inline bool is_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

// 1: a name character ([A-Za-z0-9_:.-]), 3: ':' (the end of a prefix).
constexpr std::array<std::uint8_t, 256> kNameChars = [] {
    std::array<std::uint8_t, 256> t{};
    for (int c = 0; c < 256; ++c) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '-' || c == '.')
            t[static_cast<std::size_t>(c)] = 1;
    }
    t[':'] = 3;
    return t;
}();

// Scans a name from p (at a name start character): returns its end, sets its local part.
// 16 bytes at a time with SSE2 (a name character: a letter, a digit or one of _ - . :).
[[gnu::always_inline]] inline char* scan_name(char* p, char* end, sv& local) {
    char* local_start = p;
#if defined(__SSE2__)
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        // Signed compares: bytes >= 0x80 are negative, never in a range below.
        const __m128i lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
        const __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(lower, _mm_set1_epi8('a' - 1)),
                                             _mm_cmplt_epi8(lower, _mm_set1_epi8('z' + 1)));
        const __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                            _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1)));
        const __m128i colon = _mm_cmpeq_epi8(v, _mm_set1_epi8(':'));
        const __m128i other =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('_')),
                                      _mm_cmpeq_epi8(v, _mm_set1_epi8('-'))),
                         _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('.')), colon));
        const auto ok = static_cast<unsigned>(
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(letter, digit), other)));
        auto colons = static_cast<unsigned>(_mm_movemask_epi8(colon));
        const unsigned stop = ~ok & 0xFFFFu;
        if (stop != 0) {
            const int k = __builtin_ctz(stop);
            colons &= (1u << k) - 1;
            if (colons != 0) local_start = p + (31 - __builtin_clz(colons)) + 1;
            p += k;
            local = sv(local_start, static_cast<std::size_t>(p - local_start));
            return p;
        }
        if (colons != 0) local_start = p + (31 - __builtin_clz(colons)) + 1;
        p += 16;
    }
#endif
    for (; p < end; ++p) {
        const std::uint8_t k = kNameChars[static_cast<unsigned char>(*p)];
        if (k == 0) break;
        if (k == 3) local_start = p + 1;
    }
    local = sv(local_start, static_cast<std::size_t>(p - local_start));
    return p;
}

// pugixml's UTF-8 writer for a character reference (any value below 0x110000, surrogates too).
char* put_utf8(char* w, std::uint32_t c) {
    if (c < 0x80) {
        *w++ = static_cast<char>(c);
    } else if (c < 0x800) {
        *w++ = static_cast<char>(0xC0 | (c >> 6));
        *w++ = static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        *w++ = static_cast<char>(0xE0 | (c >> 12));
        *w++ = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        *w++ = static_cast<char>(0x80 | (c & 0x3F));
    } else {
        *w++ = static_cast<char>(0xF0 | (c >> 18));
        *w++ = static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        *w++ = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        *w++ = static_cast<char>(0x80 | (c & 0x3F));
    }
    return w;
}

// k < 16 bytes from p down to o (o < p, the ranges may overlap): two overlapping words, both
// read before either is stored, instead of a byte loop.
[[gnu::always_inline]] inline void copy_down(char* o, const char* p, std::size_t k) {
    if (k >= 8) {
        detail::move_ends<std::uint64_t>(o, p, k);
    } else if (k >= 4) {
        detail::move_ends<std::uint32_t>(o, p, k);
    } else {
        for (std::size_t i = 0; i < k; ++i)
            o[i] = p[i];
    }
}

// The first of `a`, `b`, `c` in [p, end), or end.
[[gnu::always_inline]] inline char* find3(char* p, char* end, char a, char b, char c) {
#if defined(__SSE2__)
    const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b), vc = _mm_set1_epi8(c);
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const int mask = _mm_movemask_epi8(_mm_or_si128(
            _mm_cmpeq_epi8(v, va), _mm_or_si128(_mm_cmpeq_epi8(v, vb), _mm_cmpeq_epi8(v, vc))));
        if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
        p += 16;
    }
#endif
    for (; p < end; ++p)
        if (*p == a || *p == b || *p == c) return p;
    return end;
}

// The previous sibling's start tag up to its first attribute value's opening quote (`size`
// bytes at `at`, never rewritten: values and text are decoded after it): where its name ends,
// where its local name and that attribute's local name are. size 0: none; the other members
// are only read when it is not (left uninitialised).
struct Hint {
    std::size_t size = 0;
    const char* at;
    std::size_t name_size;
    std::size_t local_at;
    std::size_t attr_at;
    std::size_t attr_size;
};

class Reader {
public:
    Reader(char* begin, char* end, sv src, Storage& st)
        : begin_(begin), p_(begin), end_(end), src_(src), st_(st) {}

    // Optional whitespace, '<', the root's start tag.
    bool root(Tag& t) {
        while (p_ < end_ && text::is_xml_space(*p_))
            ++p_;
        if (p_ == end_ || *p_ != '<') return false;
        ++p_;
        return start_tag(t);
    }
    // After the root element: whitespace only.
    bool at_end() {
        while (p_ < end_ && text::is_xml_space(*p_))
            ++p_;
        return p_ == end_;
    }

    // The attribute of the last start tag read whose local name is `name` (the first one).
    template <std::size_t N>
    [[gnu::always_inline]] std::optional<sv> attr(const char (&name)[N]) const {
        for (const detail::Attr& a : st_.attrs)
            if (is(a.local, name)) return a.value;
        return std::nullopt;
    }

    sv source() const { return src_; }

    // The content of `t` up to its end tag: each child element's start tag is passed to
    // `child(Tag&)`, which must consume the element (children(), text() or skip()); when `text`
    // is given, the text and CDATA before the first child element (roxmltree's Node::text()).
    template <typename Child>
    bool content(const Tag& t, std::optional<sv>* text, Child&& child, bool hinted = false) {
        if (text != nullptr) text->reset();
        if (t.empty) return true;
        if (++depth_ > kMaxDepth) return false;
        bool collecting = text != nullptr;
        bool have_text = false;
        char* text_start = p_;
        char* w = p_;
        Hint hint;
        Hint* const siblings = hinted ? &hint : nullptr;
        for (;;) {
            if (collecting) {
                if (p_ < end_ && *p_ != '<') {
                    have_text = true;
                    if (!pcdata(w)) return false;
                }
            } else {
                if (p_ == end_) return false;
                if (*p_ != '<') {
                    p_ = static_cast<char*>(
                        std::memchr(p_, '<', static_cast<std::size_t>(end_ - p_)));
                    if (p_ == nullptr) return false;
                }
            }
            if (end_ - p_ < 2) return false;
            const char c = p_[1];
            if (c == '/') {
                p_ += 2;
                if (static_cast<std::size_t>(end_ - p_) < t.name.size()) return false;
                if (!detail::same_bytes(p_, t.name.data(), t.name.size())) return false;
                p_ += t.name.size();
                while (p_ < end_ && text::is_xml_space(*p_))
                    ++p_;
                if (p_ == end_ || *p_ != '>') return false; // also a longer name: mismatch
                ++p_;
                if (collecting && have_text)
                    *text = sv(text_start, static_cast<std::size_t>(w - text_start));
                --depth_;
                return true;
            }
            if (c == '!') {
                if (end_ - p_ < 9 || std::memcmp(p_, "<![CDATA[", 9) != 0) return false;
                p_ += 9;
                if (collecting) {
                    have_text = true;
                    if (!cdata(w)) return false;
                } else {
                    sv rest(p_, static_cast<std::size_t>(end_ - p_));
                    std::size_t close = rest.find("]]>");
                    if (close == sv::npos) return false;
                    p_ += close + 3;
                }
                continue;
            }
            if (!is_name_start(c)) return false; // '<?', stray '<'
            if (collecting) {
                if (have_text) *text = sv(text_start, static_cast<std::size_t>(w - text_start));
                collecting = false;
            }
            ++p_;
            Tag ct;
            if (!start_tag(ct, siblings)) return false;
            if (!child(ct)) return false;
        }
    }

    bool skip(const Tag& t) {
        return content(t, nullptr, [this](const Tag& c) { return skip(c); });
    }
    bool text(const Tag& t, std::optional<sv>& out) {
        return content(t, &out, [this](const Tag& c) { return skip(c); });
    }
    template <typename Child>
    bool children(const Tag& t, Child&& child) {
        return content(t, nullptr, std::forward<Child>(child));
    }
    // Same, for children that often share their first bytes (<Data Name='…'>): see Hint.
    template <typename Child>
    bool similar_children(const Tag& t, Child&& child) {
        return content(t, nullptr, std::forward<Child>(child), true);
    }

private:
    // p_ just after '<', at a name start character. With a `hint` (siblings), a start tag that
    // begins with the same bytes as the previous sibling's up to its first attribute value (e.g.
    // `Data Name='`) takes its name and that attribute's name from it; otherwise it is read and
    // recorded in the hint.
    bool start_tag(Tag& t, Hint* hint = nullptr) {
        char* name = p_;
        st_.attrs.clear();
        if (hint != nullptr && hint->size != 0 &&
            static_cast<std::size_t>(end_ - p_) > hint->size &&
            detail::same_bytes(p_, hint->at, hint->size)) {
            // The same bytes read as the previous sibling's: the same name, attribute and quote.
            t.name = sv(name, hint->name_size);
            t.local = sv(name + hint->local_at, hint->name_size - hint->local_at);
            t.name_at = static_cast<std::size_t>(name - begin_);
            hint->at = name;
            p_ += hint->size;
            if (!attribute(sv(name + hint->attr_at, hint->attr_size), p_[-1])) return false;
            hint = nullptr; // nothing to record
        } else {
            if (p_ == end_ || !is_name_start(*p_)) return false;
            p_ = scan_name(p_, end_, t.local);
            if (p_ == end_) return false;
            t.name = sv(name, static_cast<std::size_t>(p_ - name));
            t.name_at = static_cast<std::size_t>(name - begin_);
            if (hint != nullptr) hint->size = 0;
        }
        // Attributes, '>' or "/>"; the first attribute is recorded in `hint` when given.
        for (;;) {
            char c = *p_;
            if (c == '>') {
                ++p_;
                t.empty = false;
                return true;
            }
            if (c == '/') {
                if (end_ - p_ < 2 || p_[1] != '>') return false;
                p_ += 2;
                t.empty = true;
                return true;
            }
            if (!text::is_xml_space(c)) return false;
            while (p_ < end_ && text::is_xml_space(*p_))
                ++p_;
            if (p_ == end_) return false;
            c = *p_;
            if (c == '>' || c == '/') continue;
            if (!is_name_start(c)) return false;
            sv alocal;
            p_ = scan_name(p_, end_, alocal);
            while (p_ < end_ && text::is_xml_space(*p_))
                ++p_;
            if (p_ == end_ || *p_ != '=') return false;
            ++p_;
            while (p_ < end_ && text::is_xml_space(*p_))
                ++p_;
            if (p_ == end_ || (*p_ != '"' && *p_ != '\'')) return false;
            const char quote = *p_++;
            if (hint != nullptr) { // the first attribute
                hint->at = name;
                hint->size = static_cast<std::size_t>(p_ - name);
                hint->name_size = t.name.size();
                hint->local_at = static_cast<std::size_t>(t.local.data() - name);
                hint->attr_at = static_cast<std::size_t>(alocal.data() - name);
                hint->attr_size = alocal.size();
                hint = nullptr;
            }
            if (!attribute(alocal, quote)) return false;
        }
    }

    // An attribute's value (p_ after its opening quote), added to the attributes.
    [[gnu::always_inline]] bool attribute(sv local, char quote) {
        char* w = p_;
        char* value = p_;
        if (!attribute_value(quote, w)) return false;
        st_.attrs.push_back({local, sv(value, static_cast<std::size_t>(w - value))});
        return p_ != end_;
    }

    // A reference at p_ ('&'): decoded to w as pugixml does (unknown ones are kept as text).
    bool reference(char*& w) {
        char* s = p_ + 1;
        auto rest = [&](sv word) {
            return static_cast<std::size_t>(end_ - s) >= word.size() &&
                   std::memcmp(s, word.data(), word.size()) == 0;
        };
        if (s < end_ && *s == '#') {
            ++s;
            const bool hex = s < end_ && *s == 'x';
            if (hex) ++s;
            std::uint32_t value = 0;
            int digits = 0;
            for (; s < end_; ++s) {
                const char c = *s;
                std::uint32_t d;
                if (c >= '0' && c <= '9')
                    d = static_cast<std::uint32_t>(c - '0');
                else if (hex && (c | ' ') >= 'a' && (c | ' ') <= 'f')
                    d = static_cast<std::uint32_t>((c | ' ') - 'a' + 10);
                else
                    break;
                if (++digits > 8) return false;
                value = value * (hex ? 16 : 10) + d;
            }
            if (digits > 0 && s < end_ && *s == ';') {
                if (value == 0 || value > 0x10FFFF) return false;
                w = put_utf8(w, value);
                p_ = s + 1;
                return true;
            }
        } else if (rest("amp;")) {
            *w++ = '&';
            p_ += 5;
            return true;
        } else if (rest("lt;")) {
            *w++ = '<';
            p_ += 4;
            return true;
        } else if (rest("gt;")) {
            *w++ = '>';
            p_ += 4;
            return true;
        } else if (rest("quot;")) {
            *w++ = '"';
            p_ += 6;
            return true;
        } else if (rest("apos;")) {
            *w++ = '\'';
            p_ += 6;
            return true;
        }
        *w++ = '&'; // not a reference pugixml decodes: kept as it is
        ++p_;
        return true;
    }

    // Character data up to '<' (left at p_), decoded to w.
    bool pcdata(char*& w) {
        for (;;) {
            if (w == p_) {
                p_ = w = find3(p_, end_, '<', '&', '\r');
            } else {
                move_until_stop(w);
            }
            if (p_ == end_) return false;
            if (*p_ == '<') return true;
            if (*p_ == '\r') {
                *w++ = '\n';
                ++p_;
                if (p_ < end_ && *p_ == '\n') ++p_;
            } else if (!reference(w)) {
                return false;
            }
        }
    }

    // Once something was decoded, the text moves down (w < p_): moved 16 bytes at a time as they
    // are scanned for '<', '&' or CR (a whole store at w only reaches bytes already read), up to
    // the first of them (p_ left there) or the end.
    [[gnu::always_inline]] void move_until_stop(char*& w) {
        char* p = p_;
        char* o = w;
        char* const e = end_;
#if defined(__SSE2__)
        while (e - p >= 16) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
            const int mask =
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('<')),
                                                            _mm_cmpeq_epi8(v, _mm_set1_epi8('&'))),
                                               _mm_cmpeq_epi8(v, _mm_set1_epi8('\r'))));
            if (mask != 0) {
                // Not all 16: a store would overwrite bytes from the stop on, not read yet.
                const int k = __builtin_ctz(static_cast<unsigned>(mask));
                copy_down(o, p, static_cast<std::size_t>(k));
                p_ = p + k;
                w = o + k;
                return;
            }
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o), v);
            p += 16;
            o += 16;
        }
#endif
        for (; p < e; ++p, ++o) {
            const char c = *p;
            if (c == '<' || c == '&' || c == '\r') break;
            *o = c;
        }
        p_ = p;
        w = o;
    }

    // A CDATA section's content (p_ after "<![CDATA["), to w; p_ left after "]]>".
    bool cdata(char*& w) {
        for (;;) {
            char* stop = find3(p_, end_, ']', '\r', '\r');
            if (w != p_) std::memmove(w, p_, static_cast<std::size_t>(stop - p_));
            w += stop - p_;
            p_ = stop;
            if (p_ == end_) return false;
            if (*p_ == '\r') {
                *w++ = '\n';
                ++p_;
                if (p_ < end_ && *p_ == '\n') ++p_;
            } else if (end_ - p_ >= 3 && p_[1] == ']' && p_[2] == '>') {
                p_ += 3;
                return true;
            } else {
                *w++ = *p_++;
            }
        }
    }

    // An attribute value up to `quote` (p_ left after it), decoded to w.
    bool attribute_value(char quote, char*& w) {
        // Most values have nothing to decode: find the quote, leave the bytes where they are.
        {
            char* p = p_;
            char* const e = end_;
#if defined(__SSE2__)
            const __m128i vq = _mm_set1_epi8(quote);
            while (e - p >= 16) {
                const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
                const __m128i hit = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, vq), _mm_cmpeq_epi8(v, _mm_set1_epi8('&'))),
                    _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r')),
                                              _mm_cmpeq_epi8(v, _mm_set1_epi8('\t'))),
                                 _mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))));
                const int mask = _mm_movemask_epi8(hit);
                if (mask != 0) {
                    p += __builtin_ctz(static_cast<unsigned>(mask));
                    break;
                }
                p += 16;
            }
#endif
            for (; p < e; ++p) {
                const char c = *p;
                if (c == quote) {
                    w = p;
                    p_ = p + 1;
                    return true;
                }
                if (c == '&' || c == '\r' || c == '\t' || c == '\n') break;
            }
            w = p;
            p_ = p;
        }
        for (;;) {
            if (p_ == end_) return false;
            const char c = *p_;
            if (c == quote) {
                ++p_;
                return true;
            }
            if (c == '&') {
                if (!reference(w)) return false;
            } else if (c == '\r') {
                *w++ = ' ';
                ++p_;
                if (p_ < end_ && *p_ == '\n') ++p_;
            } else {
                *w++ = (c == '\t' || c == '\n') ? ' ' : c;
                ++p_;
            }
        }
    }

    char* begin_;
    char* p_;
    char* end_;
    sv src_;
    Storage& st_;
    int depth_ = 0;
};

template <typename T>
std::optional<T> text_uint(Reader& r, const Tag& t, bool& ok) {
    std::optional<sv> s;
    ok = r.text(t, s);
    return parse_uint<T>(s);
}

// Not inlined into the root's loop: g++ then keeps the per-child lambda inlined here.
[[gnu::noinline]] bool one_pass_system(Reader& r, const Tag& system, System& sys) {
    std::optional<sv> computer;
    std::optional<std::uint32_t> event_id;
    bool fed = true; // false: a mandatory field failed (the DOM path then reports it)
    bool ok = r.children(system, [&](const Tag& n) {
        sv tag = n.local;
        bool good = true;
        if (is(tag, "Provider")) {
            sys.provider = Provider{r.attr("Name"), r.attr("Guid"), r.attr("EventSourceName")};
            return r.skip(n);
        } else if (is(tag, "EventID")) {
            auto qualifiers = r.attr("Qualifiers");
            event_id = text_uint<std::uint32_t>(r, n, good);
            sys.event_id_qualifiers = parse_uint<std::uint16_t>(qualifiers);
        } else if (is(tag, "Version")) {
            sys.version = text_uint<std::uint8_t>(r, n, good);
        } else if (is(tag, "Level")) {
            sys.level = text_uint<std::uint8_t>(r, n, good);
        } else if (is(tag, "Task")) {
            sys.task = text_uint<std::uint16_t>(r, n, good);
        } else if (is(tag, "Opcode")) {
            sys.opcode = text_uint<std::uint8_t>(r, n, good);
        } else if (is(tag, "Keywords")) {
            good = r.text(n, sys.keywords);
        } else if (is(tag, "TimeCreated")) {
            auto t = r.attr("SystemTime");
            if (!t) fed = false;
            sys.time_created = t;
            return fed && r.skip(n);
        } else if (is(tag, "EventRecordID")) {
            sys.event_record_id = text_uint<std::uint64_t>(r, n, good);
        } else if (is(tag, "Correlation")) {
            sys.correlation = Correlation{r.attr("ActivityID"), r.attr("RelatedActivityID")};
            return r.skip(n);
        } else if (is(tag, "Execution")) {
            auto pid = parse_uint<std::uint32_t>(r.attr("ProcessID"));
            auto tid = parse_uint<std::uint32_t>(r.attr("ThreadID"));
            if (!pid || !tid) {
                fed = false;
                return false;
            }
            Execution e;
            e.process_id = *pid;
            e.thread_id = *tid;
            e.processor_id = parse_uint<std::uint8_t>(r.attr("ProcessorID"));
            e.session_id = parse_uint<std::uint32_t>(r.attr("SessionID"));
            e.kernel_time = parse_uint<std::uint32_t>(r.attr("KernelTime"));
            e.user_time = parse_uint<std::uint32_t>(r.attr("UserTime"));
            e.processor_time = parse_uint<std::uint32_t>(r.attr("ProcessorTime"));
            sys.execution = e;
            return r.skip(n);
        } else if (is(tag, "Channel")) {
            good = r.text(n, sys.channel);
        } else if (is(tag, "Computer")) {
            good = r.text(n, computer);
        } else if (is(tag, "Container")) {
            good = r.text(n, sys.container);
        } else if (is(tag, "Security")) {
            sys.user_id = r.attr("UserID");
            return r.skip(n);
        } else {
            return r.skip(n);
        }
        return good;
    });
    if (!ok || !fed || !computer || !event_id) return false;
    sys.computer = *computer;
    sys.event_id = *event_id;
    return true;
}

bool one_pass_event_data(Reader& r, const Tag& node, Storage& st, EventData& ed) {
    reset_event_data(ed, st);
    std::uint32_t position = 0;
    return r.similar_children(node, [&](const Tag& n) {
        ++position;
        sv tag = n.local;
        if (is(tag, "Data")) {
            auto name = r.attr("Name");
            std::optional<sv> value;
            if (!r.text(n, value)) return false;
            add_data(ed, st, name, value.value_or(sv()), position);
            return true;
        }
        if (is(tag, "Binary")) return r.text(n, ed.binary);
        return r.skip(n);
    });
}

bool one_pass_user_data(Reader& r, const Tag& node, Storage& st, Event& ev) {
    ev.user_data = user_data_raw(r.source(), node.name_at, node.name, st);
    ev.user_data_element = {};
    ev.user_data_fields.clear();
    bool first = true;
    return r.children(node, [&](const Tag& element) {
        if (!first) return r.skip(element);
        first = false;
        ev.user_data_element = element.local;
        st.index.clear();
        std::uint32_t position = 0;
        return r.similar_children(element, [&](const Tag& n) {
            ++position;
            sv name = r.attr("Name").value_or(sv());
            if (name.empty()) name = n.local;
            std::optional<sv> value;
            if (!r.text(n, value)) return false;
            add_user_data_field(ev, st, name, value.value_or(sv()), position);
            return true;
        });
    });
}

bool one_pass_debug_data(Reader& r, const Tag& node, DebugData& dd) {
    dd = DebugData{};
    return r.children(node, [&](const Tag& n) {
        sv tag = n.local;
        std::optional<sv> value;
        bool good = true;
        if (is(tag, "SequenceNumber")) {
            dd.sequence_number = text_uint<std::uint32_t>(r, n, good);
        } else if (is(tag, "FlagsName")) {
            good = r.text(n, dd.flags_name);
        } else if (is(tag, "LevelName")) {
            good = r.text(n, dd.level_name);
        } else if (is(tag, "Component")) {
            good = r.text(n, value);
            dd.component = value.value_or(sv());
        } else if (is(tag, "SubComponent")) {
            good = r.text(n, dd.sub_component);
        } else if (is(tag, "FileLine")) {
            good = r.text(n, dd.file_line);
        } else if (is(tag, "Function")) {
            good = r.text(n, dd.function);
        } else if (is(tag, "Message")) {
            good = r.text(n, value);
            dd.message = value.value_or(sv());
        } else {
            return r.skip(n);
        }
        return good;
    });
}

bool one_pass_processing_error_data(Reader& r, const Tag& node, ProcessingErrorData& pd) {
    ProcessingErrorData result;
    bool ok = r.children(node, [&](const Tag& n) {
        sv tag = n.local;
        std::optional<sv> value;
        if (is(tag, "ErrorCode")) {
            if (!r.text(n, value)) return false;
            auto code = parse_uint<std::uint32_t>(value.value_or(sv()));
            if (!code) return false; // a feed failure: the DOM path reports it
            result.error_code = *code;
        } else if (is(tag, "DataItemName")) {
            if (!r.text(n, value)) return false;
            result.data_item_name = value.value_or(sv());
        } else if (is(tag, "EventPayload")) {
            if (!r.text(n, value)) return false;
            result.event_payload = value.value_or(sv());
        } else {
            return r.skip(n);
        }
        return true;
    });
    if (!ok) return false;
    pd = result;
    return true;
}

bool one_pass_rendering_info(Reader& r, const Tag& node, RenderingInfo& ri) {
    ri.culture = r.attr("Culture").value_or(sv());
    return r.children(node, [&](const Tag& n) {
        sv tag = n.local;
        if (is(tag, "Message")) return r.text(n, ri.message);
        if (is(tag, "Level")) return r.text(n, ri.level);
        if (is(tag, "Task")) return r.text(n, ri.task);
        if (is(tag, "Opcode")) return r.text(n, ri.opcode);
        if (is(tag, "Channel")) return r.text(n, ri.channel);
        if (is(tag, "Provider")) return r.text(n, ri.provider);
        if (is(tag, "Keywords")) {
            std::vector<sv> keywords;
            bool ok = r.children(n, [&](const Tag& k) {
                if (!is(k.local, "Keyword")) return r.skip(k);
                std::optional<sv> t;
                if (!r.text(k, t)) return false;
                if (t) keywords.push_back(*t);
                return true;
            });
            ri.keywords = std::move(keywords);
            return ok;
        }
        return r.skip(n);
    });
}

// The whole event in one pass; false: use the DOM path (`ev` is then cleared by it).
bool one_pass(sv xml, Event& ev, Storage& st) {
    if (xml.empty() || std::memchr(xml.data(), '\0', xml.size()) != nullptr) return false;
    st.buf.assign(xml);
    Reader r(st.buf.data(), st.buf.data() + st.buf.size(), xml, st);
    Tag root;
    if (!r.root(root)) return false;
    bool ok = r.children(root, [&](const Tag& n) {
        sv tag = n.local;
        if (is(tag, "System")) {
            System sys;
            if (!one_pass_system(r, n, sys)) return false;
            ev.system = std::move(sys);
            return true;
        }
        if (is(tag, "EventData")) {
            ev.data_kind = DataKind::EventData;
            return one_pass_event_data(r, n, st, ev.event_data);
        }
        if (is(tag, "UserData")) {
            ev.data_kind = DataKind::UserData;
            return one_pass_user_data(r, n, st, ev);
        }
        if (is(tag, "BinaryEventData")) {
            std::optional<sv> value;
            if (!r.text(n, value)) return false;
            ev.binary_event_data = value.value_or(sv());
            ev.data_kind = DataKind::BinaryEventData;
            return true;
        }
        if (is(tag, "DebugData")) {
            ev.data_kind = DataKind::DebugData;
            return one_pass_debug_data(r, n, ev.debug_data);
        }
        if (is(tag, "ProcessingErrorData")) {
            ev.data_kind = DataKind::ProcessingErrorData;
            return one_pass_processing_error_data(r, n, ev.processing_error_data);
        }
        if (is(tag, "RenderingInfo")) {
            RenderingInfo ri;
            if (!one_pass_rendering_info(r, n, ri)) return false;
            ev.rendering_info = std::move(ri);
            return true;
        }
        return r.skip(n); // SubscriptionBookmarkEvent (event 111) and unknown nodes
    });
    return ok && r.at_end();
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

void parse_dom(std::string_view xml, Event& out) {
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

void parse(std::string_view xml, Event& out) {
    out.clear();
    if (!out.storage_) out.storage_ = std::make_unique<detail::Storage>();
    if (one_pass(xml, out, *out.storage_)) return;
    parse_dom(xml, out);
}

bool parse_one_pass(std::string_view xml, Event& out) {
    out.clear();
    if (!out.storage_) out.storage_ = std::make_unique<detail::Storage>();
    return one_pass(xml, out, *out.storage_);
}

Event parse(std::string_view xml) {
    Event ev;
    parse(xml, ev);
    return ev;
}

} // namespace wec::event

// One Windows event (the XML a Windows source forwards), parsed once and rendered in the output
// formats of OpenWEC: `Raw` (the XML, here on one line), `Json`, `RawJson` and `Nxlog`, and in
// Elastic Common Schema as Winlogbeat writes it (`ecs`).
//
// Parsing never throws and never drops an event: whatever cannot be parsed is recorded in
// `Event::error` exactly the way OpenWEC does it (see docs in event.cpp), and the formatters emit
// what was recovered plus an `OpenWEC.Error` object {OriginalContent, Type, Message}.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::event {

// What the collector knows about the request that carried the event (rendered in the `OpenWEC`
// block). Built once per request/batch and shared by all its events.
struct Metadata {
    std::string ip_address; // "IpAddress": client IP (no port)
    std::string client;     // "Client" and (deprecated alias) "Principal": principal or cert CN
    std::chrono::system_clock::time_point time_received;     // "TimeReceived", RFC 3339 in UTC
    std::string subscription_uuid;                           // "Subscription.Uuid"
    std::string subscription_version;                        // "Subscription.Version"
    std::string subscription_name;                           // "Subscription.Name"
    std::optional<std::string> subscription_uri;             // "Subscription.Uri"
    std::optional<std::string> subscription_client_revision; // "Subscription.ClientRevision"
    std::optional<std::string> subscription_server_revision; // "Subscription.ServerRevision"
    std::optional<std::string> node;                         // "Node"
    // "Mechanism": how the client authenticated ("Kerberos", "NTLM", "TLS"); empty: not written.
    std::string mechanism;
};

// All string views below point into storage owned by the Event (valid while it lives and until
// it is parsed into again). Text is as decoded by the XML parser; the formatters replace invalid
// UTF-8 and characters XML forbids (C0 controls other than TAB/LF/CR) with U+FFFD.

struct Provider {
    std::optional<std::string_view> name;
    std::optional<std::string_view> guid;
    std::optional<std::string_view> event_source_name;
};

struct Correlation {
    std::optional<std::string_view> activity_id;
    std::optional<std::string_view> related_activity_id;
};

struct Execution {
    std::uint32_t process_id = 0;
    std::uint32_t thread_id = 0;
    std::optional<std::uint8_t> processor_id;
    std::optional<std::uint32_t> session_id;
    std::optional<std::uint32_t> kernel_time;
    std::optional<std::uint32_t> user_time;
    std::optional<std::uint32_t> processor_time;
};

struct System {
    Provider provider;
    std::uint32_t event_id = 0;
    std::optional<std::uint16_t> event_id_qualifiers;
    std::optional<std::uint8_t> version;
    std::optional<std::uint8_t> level;
    std::optional<std::uint16_t> task;
    std::optional<std::uint8_t> opcode;
    std::optional<std::string_view> keywords;     // verbatim, e.g. "0x8020000000000000"
    std::optional<std::string_view> time_created; // SystemTime verbatim
    std::optional<std::uint64_t> event_record_id;
    std::optional<Correlation> correlation;
    std::optional<Execution> execution;
    std::optional<std::string_view> channel;
    std::string_view computer;
    std::optional<std::string_view> container;
    std::optional<std::string_view> user_id; // Security@UserID
};

struct NamedData {
    std::string_view name;
    std::string_view value;
};

struct EventData {
    std::vector<NamedData> named;       // unique names (last value wins), first-seen order
    std::vector<std::string_view> data; // unnamed, non-empty <Data>
    // For each `data` entry, its 1-based position among EventData's child elements (Winlogbeat
    // names an unnamed <Data> "param<position>").
    std::vector<std::uint32_t> data_position;
    std::optional<std::string_view> binary;
};

// One child of UserData's first element, as Winlogbeat reads it (winlog.user_data.*): the Name
// attribute or else the element's local name, its text (not empty; the first of a name wins,
// but every "Data" is kept), its 1-based position among the children.
struct UserDataField {
    std::string_view name;
    std::string_view value;
    std::uint32_t position = 0;
};

struct DebugData {
    std::optional<std::uint32_t> sequence_number;
    std::optional<std::string_view> flags_name;
    std::optional<std::string_view> level_name;
    std::string_view component;
    std::optional<std::string_view> sub_component;
    std::optional<std::string_view> file_line;
    std::optional<std::string_view> function;
    std::string_view message;
};

struct ProcessingErrorData {
    std::uint32_t error_code = 0;
    std::string_view data_item_name;
    std::string_view event_payload;
};

enum class DataKind { None, EventData, UserData, DebugData, ProcessingErrorData, BinaryEventData };

struct RenderingInfo {
    std::optional<std::string_view> message;
    std::optional<std::string_view> level;
    std::optional<std::string_view> task;
    std::optional<std::string_view> opcode;
    std::optional<std::string_view> channel;
    std::optional<std::string_view> provider;
    std::optional<std::vector<std::string_view>> keywords;
    std::string_view culture;
};

// OpenWEC's ErrorType names (rendered as OpenWEC.Error.Type).
enum class ErrorType {
    RawContentRecovered,       // XML invalid; cut at the last <RenderingInfo, the rest parsed
    FailedToRecoverRawContent, // XML invalid and still invalid once RenderingInfo was cut
    Unrecoverable,             // XML invalid and no <RenderingInfo to cut
    FailedToFeedEvent,         // XML parsed but a mandatory field was missing/invalid
};
std::string_view to_string(ErrorType type);

struct ParseError {
    ErrorType type = ErrorType::Unrecoverable;
    std::string message;
};

namespace detail {
struct Storage;
}

class Event {
public:
    Event();
    ~Event();
    Event(Event&&) noexcept;
    Event& operator=(Event&&) noexcept;
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    std::optional<System> system;
    DataKind data_kind = DataKind::None;
    EventData event_data;                        // when data_kind == EventData
    std::string_view user_data;                  // when UserData: the raw inner XML, verbatim
    std::string_view user_data_element;          // when UserData: local name of its first element
    std::vector<UserDataField> user_data_fields; // when UserData: that element's children
    DebugData debug_data;                        // when DebugData
    ProcessingErrorData processing_error_data;   // when ProcessingErrorData
    std::string_view binary_event_data;          // when BinaryEventData
    std::optional<RenderingInfo> rendering_info;
    std::optional<ParseError> error;   // set when anything went wrong
    std::string_view original_content; // the input, kept only when `error` is set

    // Clears every field (keeps allocated capacity for reuse).
    void clear();

private:
    friend void parse(std::string_view xml, Event& out);
    friend void parse_dom(std::string_view xml, Event& out);
    // The one pass alone: true when it took the input (`out` is then what `parse_dom` gives), false
    // when it leaves it to `parse_dom` (`out` is then unspecified). For the tests and benchmarks.
    bool parse_one_pass(std::string_view xml, Event& out);
    friend bool parse_one_pass(std::string_view xml, Event& out);
    std::unique_ptr<detail::Storage> storage_;
};

// Parses one event. Never throws on bad input (only std::bad_alloc).
Event parse(std::string_view xml);
// Same, reusing `out`'s buffers (the hot path: one Event per worker, parsed into repeatedly).
// One pass over the XML straight into the fields above (no DOM); any input that pass does not
// take as it is (invalid XML, a mandatory field missing or invalid, a comment, a processing
// instruction, a DOCTYPE, a character reference to U+0000, nesting deeper than 64) goes to
// `parse_dom`, so that the result is always `parse_dom`'s.
void parse(std::string_view xml, Event& out);
// The reference: the event read through pugixml's DOM (the parser before the one pass). The
// oracle of the differential tests and fuzzer; `parse` gives the same Event, faster.
void parse_dom(std::string_view xml, Event& out);
// The one pass alone: true when it took the input (`out` is then what `parse_dom` gives), false
// when it leaves it to `parse_dom` (`out` is then unspecified). For the tests and benchmarks.
bool parse_one_pass(std::string_view xml, Event& out);

// Formatters append to `out` (they never clear it) and add no trailing newline.

// OpenWEC `Raw`: the event XML. OpenWEC emits it verbatim; we make it one line with a
// lossless rewrite: CR/LF in text content become "&#10;", in CDATA "]]>&#10;<![CDATA[", inside
// tags/comments/PIs a space, outside the root element nothing. Input without CR/LF is copied as is.
void format_raw(std::string_view xml, std::string& out);

// OpenWEC `Json`.
void format_json(const Event& event, const Metadata& metadata, std::string& out);

// OpenWEC `Nxlog` (flat JSON mimicking NXLog's im_msvistalog).
void format_nxlog(const Event& event, const Metadata& metadata, std::string& out);

// OpenWEC `RawJson`: {"meta": <the OpenWEC block of `Json`, without Error>, "data": "<Event…>"},
// the XML verbatim as a JSON string. Needs no parsing.
void format_raw_json(std::string_view xml, const Metadata& metadata, std::string& out);

// Elastic Common Schema with the `winlog.*` fields as Winlogbeat writes them (docs/subscriptions.md
// lists the fields), plus the collector's metadata under `wec`.
void format_ecs(const Event& event, const Metadata& metadata, std::string& out);

// The output formats, by their names in subscriptions and on the command line.
enum class Format { Raw, Json, RawJson, Nxlog, Ecs };
inline constexpr std::size_t kFormatCount = 5;
inline constexpr std::string_view kFormatNames[kFormatCount] = {"raw", "json", "raw_json", "nxlog",
                                                                "ecs"};
std::string_view to_string(Format format);
std::optional<Format> parse_format(std::string_view name); // exact, lowercase names
// Whether the format needs the event parsed (all but raw and raw_json).
bool needs_parse(Format format);

// One event in `format` (no trailing newline). `parsed` is `xml` parsed (unused by raw and
// raw_json, which only read `xml`).
void format_event(Format format, std::string_view xml, const Event& parsed,
                  const Metadata& metadata, std::string& out);

// A growable byte buffer for formatted events. Unlike std::string, the room it grows by is not
// zero-filled: the formatters write through a cursor into room reserved ahead (a few KB per
// event) and keep what they wrote; a std::string would zero-fill that room for every event.
class FormatBuffer {
public:
    FormatBuffer() = default;
    FormatBuffer(FormatBuffer&&) noexcept = default;
    FormatBuffer& operator=(FormatBuffer&&) noexcept = default;

    const char* data() const { return data_.get(); }
    char* data() { return data_.get(); }
    std::size_t size() const { return size_; }
    std::size_t capacity() const { return capacity_; }
    bool empty() const { return size_ == 0; }
    std::string_view view() const { return {data_.get(), size_}; }
    void clear() { size_ = 0; }
    // Capacity for n bytes in all (what is held is kept; new room is not initialised).
    void reserve(std::size_t n) {
        if (n > capacity_) reallocate(n);
    }
    // The size is now n (<= capacity()): bytes written into the room up to n are kept.
    void set_size(std::size_t n) { size_ = n; }
    void append(std::string_view s) {
        reserve_more(s.size());
        if (!s.empty()) std::char_traits<char>::copy(data_.get() + size_, s.data(), s.size());
        size_ += s.size();
    }
    void append(const char* s, std::size_t n) { append(std::string_view(s, n)); }
    void push_back(char c) {
        reserve_more(1);
        data_[size_++] = c;
    }

private:
    void reserve_more(std::size_t n) {
        if (capacity_ - size_ < n) reallocate(std::max(size_ + n, 2 * capacity_));
    }
    void reallocate(std::size_t n);

    std::unique_ptr<char[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

// The same as format_event into a FormatBuffer (appended; no trailing newline).
void format_event(Format format, std::string_view xml, const Event& parsed,
                  const Metadata& metadata, FormatBuffer& out);

// Formats a batch of events into one buffer per format needed, one line per event ('\n'
// terminated), parsing each event at most once whatever the number of formats. Reused buffers:
// no allocation per event once they have grown.
class BatchFormatter {
public:
    explicit BatchFormatter(std::span<const Format> formats);
    // Reserves room for `events` events of `xml_bytes` bytes in total.
    void reserve(std::size_t xml_bytes, std::size_t events);
    void add(std::string_view xml, const Metadata& metadata);
    // The lines of `format` (empty if it was not asked for).
    std::string_view lines(Format format) const;
    void clear();

private:
    std::array<FormatBuffer, kFormatCount> out_;
    std::array<bool, kFormatCount> wanted_{};
    bool parse_ = false;
    Event event_;
};

// RFC 3339 in UTC as chrono's to_rfc3339() prints it: "2022-12-14T16:07:03.324+00:00" (0, 3, 6 or
// 9 fractional digits).
void format_time(std::chrono::system_clock::time_point tp, std::string& out);

} // namespace wec::event

// Typed WS-Management (SOAP 1.2) messages of source-initiated Windows Event Forwarding: parse what
// sources send, build what a collector answers (and what a source sends, for the client/emulator).
// Elements are matched by namespace URI + local name: prefixes differ between clients.
#pragma once

#include "common/error.hpp"
#include "wsman/subscription.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::wsman {

enum class Action {
    Enumerate,
    EnumerateResponse,
    Subscribe,
    Events,
    Heartbeat,
    Ack,
    End,
    SubscriptionEnd,
    Unknown
};

std::string_view action_uri(Action action); // empty for Unknown
Action action_from_uri(std::string_view uri);
std::string_view to_string(Action action); // "Enumerate", ...

enum class ErrorCode {
    NotXml,           // not well-formed; offset() and description() say where and why
    NotEnvelope,      // the root is not a SOAP 1.2 s:Envelope
    MissingHeader,    // no s:Header
    MissingBody,      // no s:Body
    MissingAction,    // no (or empty) a:Action
    MissingMessageId, // no (or empty) a:MessageID
    MissingElement    // a body element the action needs; element() names it
};

std::string_view to_string(ErrorCode code);

// Malformed SOAP. what() names what is missing (or the XML error and its offset).
class ParseError : public wec::Error {
public:
    ParseError(ErrorCode code, std::string message, std::string element = {},
               std::size_t offset = 0);
    ErrorCode code() const noexcept { return code_; }
    const std::string& element() const noexcept { return element_; } // e.g. "w:Events"
    std::size_t offset() const noexcept { return offset_; } // NotXml: byte offset in the UTF-8 text

private:
    ErrorCode code_;
    std::string element_;
    std::size_t offset_;
};

// A header element the parser does not model (e.g. a reference parameter echoed by the source),
// kept so that it can be logged or echoed.
struct HeaderElement {
    std::string ns;   // namespace URI
    std::string name; // local name
    std::string xml;  // the element serialized compactly, with the namespaces it uses declared
};

// One forwarded event. The views point into storage owned by the Message (no copy per event).
struct Event {
    std::string_view xml;    // the CDATA/text content of w:Event: one <Event> document
    std::string_view action; // the Action attribute (…/wsman/Event)
};

struct EnumerateBody {
    bool optimize_enumeration = false;
    std::optional<std::uint32_t> max_elements;
};

struct WsmanFault {
    std::string code;    // e.g. "1717"
    std::string machine; // the Machine attribute
    std::string message; // the text of f:Message (whitespace-trimmed)
};

struct SubscriptionEndBody {
    std::string manager_address;    // e:SubscriptionManager/a:Address
    std::string manager_identifier; // its e:Identifier reference property/parameter
    std::string status;             // e:Status URI, e.g. …/eventing/SourceCancelling
    std::optional<WsmanFault> fault;
};

struct EnumerateResponseBody {
    std::string enumeration_context; // must be empty for WEF (else Windows switches to Pull)
    bool end_of_sequence = false;
    std::vector<Subscription> subscriptions;
};

struct Message {
    Action action = Action::Unknown;
    std::string action_uri; // as received (trimmed)

    std::string to;
    std::string message_id; // byte for byte: RelatesTo of a reply must repeat it exactly
    std::string relates_to;
    std::string reply_to; // a:ReplyTo/a:Address
    std::string resource_uri;
    std::string machine_id; // m:MachineID, trimmed (the source's FQDN)
    std::optional<std::uint32_t> max_envelope_size;
    std::string locale;      // xml:lang of w:Locale
    std::string data_locale; // xml:lang of p:DataLocale
    std::string session_id;
    std::string operation_id;
    std::string sequence_id;
    std::string operation_timeout; // e.g. "PT60.000S"
    bool ack_requested = false;

    std::string identifier; // e:Identifier echoed as a header (trimmed)
    std::vector<HeaderElement> other_headers;
    std::string bookmark; // w:Bookmark: the <BookmarkList>…</BookmarkList> XML, compact

    std::optional<EnumerateBody> enumerate;                  // Action::Enumerate
    std::optional<EnumerateResponseBody> enumerate_response; // Action::EnumerateResponse
    std::optional<Subscription> subscribe;                   // Action::Subscribe
    std::vector<Event> events;                               // Events (empty for Heartbeat)
    std::optional<SubscriptionEndBody> subscription_end;     // Action::SubscriptionEnd
    std::size_t replaced_chars = 0; // characters XML forbids that were replaced by U+FFFD

    // Owns the parsed text that `events` point into. Shared so that a Message can be copied.
    std::shared_ptr<const void> storage;
};

// Parses one SOAP envelope given as UTF-8. Forbidden XML characters and invalid UTF-8 are replaced
// by U+FFFD first (counted in replaced_chars). Throws ParseError, nothing else for bad input.
Message parse(std::string_view utf8_xml);
// Same, taking over the text (no copy: the collector decodes a body once and hands it over).
// `xml_clean`: the caller knows the text holds no character XML forbids and is valid UTF-8
// (text::Decoded::xml_clean, wsman::Text::xml_clean): the replacing pass is skipped.
Message parse_owned(std::string&& utf8_xml, bool xml_clean = false);

// Parses an HTTP body in any encoding (see text::decode_body; `charset` may be empty).
Message parse_body(std::span<const std::uint8_t> body, std::string_view charset = {});

namespace detail {
// parse() without its fast path for long CDATA sections (the whole text through pugixml): the
// reference that fast path is tested and fuzzed against.
Message parse_whole(std::string_view utf8_xml);
} // namespace detail

// "uuid:" + a random UPPERCASE UUID (version 4), from a per-thread random engine.
std::string new_message_id();

// --- What a collector answers ---------------------------------------------------------------

// Ack of an Events/Heartbeat message: RelatesTo repeats the request MessageID byte for byte;
// OperationID and SequenceId are echoed when present.
std::string build_ack(const Message& request);

// EnumerateResponse listing the subscriptions the client may see (one m:Subscription each).
std::string build_enumerate_response(const Message& request,
                                     std::span<const SubscriptionSpec> subscriptions);

// --- What a source sends (client / emulator) -------------------------------------------------

// Header values common to the messages a source sends. Empty strings are left out.
struct SourceHeaders {
    std::string to;
    std::string machine_id;
    std::string message_id; // empty: a new one
    std::string session_id;
    std::string operation_id; // empty: a new one
    std::string sequence_id = "1";
    std::uint32_t max_envelope_size = 512000;
    std::string locale = "en-US";
    std::string data_locale = "en-US";
    std::string operation_timeout = "PT60.000S";
    std::string identifier;               // e:Identifier (Events, Heartbeat, SubscriptionEnd)
    std::vector<std::string> raw_headers; // other reference parameters, inserted as XML
};

// The content of one Events message as recorded, to be sent again: a capture's Events request
// read back (decode::EventsBatchReader) or events read from files (`wec replay --evtx/--xml`),
// replayed by client::replay_batches.
struct EventsBatch {
    std::uint64_t line = 0;          // where it comes from (1-based line, record...), 0 = unknown
    std::vector<std::string> events; // each one <Event> document, sent as it is
    std::string bookmark;            // the <BookmarkList> (compact), "" when absent
    std::string machine;             // the m:MachineID, "" when unknown
};

std::string build_enumerate(const SourceHeaders& headers, std::uint32_t max_elements = 32000);
std::string build_heartbeat(const SourceHeaders& headers);
// Events in CDATA ("]]>" inside an event is split across sections); `bookmark` is a BookmarkList.
std::string build_events(const SourceHeaders& headers, std::span<const std::string_view> events,
                         std::string_view bookmark);
std::string build_end(const SourceHeaders& headers);
std::string build_subscription_end(const SourceHeaders& headers, const SubscriptionEndBody& body);

} // namespace wec::wsman

// Offline decoding of WEF / WinRM traffic: capture -> TCP conversations -> HTTP messages ->
// Kerberos session recovery (service keytab) -> unwrapped, decompressed, decoded SOAP -> events.
// The same building blocks as the collector (http, sldc, text, wsman, event) are used, without any
// side effect: nothing is stored, nothing is answered.
//
// Streaming: a Decoder reads its inputs packet by packet and hands one Record per HTTP message to
// a Sink. Per-connection state (session keys, pending requests) is dropped together with the
// connection (least recently active first, as capture::Limits says), so memory is bounded by the
// open connections, never by the size of the capture.
//
// The JSON Lines form of a Record (format_json) is a stable schema, documented in docs/decode.md,
// that `wec replay` reads back.
#pragma once

#include "capture/capture.hpp"
#include "common/error.hpp"
#include "event/event.hpp"
#include "krb/krb.hpp"
#include "wsman/wsman.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wec::decode {

// An input that cannot be read or is neither a capture nor a message body (exit code 2).
class InputError : public wec::Error {
public:
    using wec::Error::Error;
};

// Version of the JSON Lines schema written by format_json ("v" field of every record).
inline constexpr int kSchemaVersion = 1;

enum class AuthStep {
    None,      // no authentication header
    ApReq,     // request with Authorization: Kerberos|Negotiate <AP-REQ>
    ApRep,     // response with WWW-Authenticate: Kerberos|Negotiate <AP-REP>
    Challenge, // response with WWW-Authenticate: Kerberos|Negotiate without a token (401)
    Other,     // another scheme (Basic, NTLM...) or an unusable token
};
std::string_view to_string(AuthStep step); // "none", "ap-req", "ap-rep", "challenge", "other"

enum class Encryption {
    None,          // no body
    Plain,         // the body was sent in the clear
    Decrypted,     // multipart/encrypted, unwrapped with the connection's session keys
    Undecryptable, // multipart/encrypted, could not be unwrapped (see reason)
};
std::string_view to_string(Encryption e); // "none", "plain", "decrypted", "undecryptable"

// What the decoder knows about a subscription (from the NotifyTo path, EnumerateResponses and the
// e:Identifier of Events messages).
struct SubscriptionInfo {
    std::string uuid;    // uppercase, from /wsman/subscriptions/<uuid>
    std::string name;    // SubscriptionName of an EnumerateResponse seen earlier (else empty)
    std::string version; // bare version uuid (m:Version without "uuid:", or the e:Identifier)
};

// One decoded HTTP message. Spans are valid only during Sink::on_record.
struct Record {
    std::string input;             // file name ("-" for stdin)
    std::uint64_t connection = 0;  // unique over all inputs; 0 for a lone body file
    std::uint64_t index = 0;       // 0-based index of the message in its direction
    bool is_request = true;        // client -> server
    bool from_capture = true;      // false: a lone body file (no HTTP, no tuple)
    capture::FourTuple tuple;      // src = sender of this message
    capture::TimeNs time = 0;      // first packet of the message
    capture::TimeNs last_time = 0; // last packet of the message
    std::string start_line, method, target;
    int status = 0;
    std::optional<std::uint64_t> request_index; // responses: index of the request answered
    std::vector<std::pair<std::string, std::string>> headers;
    bool after_gap = false; // bytes were missing before this message (or a mid-stream start)
    bool truncated = false; // body cut by the end of the capture

    // Authentication
    AuthStep auth_step = AuthStep::None;
    std::string auth_scheme;    // "Kerberos" or "Negotiate" (as written)
    std::string auth_error;     // why the AP-REQ/AP-REP could not be used ("" if fine)
    std::string auth_reason;    // krb::reason_name() of that error
    std::string client;         // initiator principal of the connection (once known)
    std::string mechanism;      // "Kerberos" or "NTLM" (once known)
    std::string service;        // service principal of the ticket
    std::string ticket_enctype; // e.g. "aes256-cts-hmac-sha1-96"
    std::optional<std::uint32_t> kvno;

    // Body
    std::uint64_t body_bytes = 0; // on the wire (de-chunked)
    Encryption encryption = Encryption::None;
    std::string protocol;               // multipart protocol (…/HTTP-Kerberos-session-encrypted)
    bool mime_tab = false;              // TAB before the MIME part headers
    std::string reason;                 // undecryptable: "no-session", "no-key", "wrong-key", ...
    std::string reason_message;         // undecryptable: the details
    std::string content_type;           // original Content-Type of the cleartext
    std::string content_encoding;       // Content-Encoding header ("SLDC")
    bool decompressed = false;          // an SLDC record was decompressed
    std::uint64_t compressed_bytes = 0; // cleartext size before decompression
    std::span<const std::uint8_t> content; // decrypted + decompressed body (what export writes)
    std::string text_encoding;             // "UTF-16LE", "UTF-8", ... (when decoded as text)
    std::string soap;                      // the body as UTF-8 text

    // SOAP (when the body parsed as a WS-Management envelope)
    std::optional<wsman::Message> message;
    SubscriptionInfo subscription; // from the request target (requests and their responses)

    std::vector<std::string> errors; // everything that went wrong with this message

    // True when the message could not be decoded completely (undecryptable, unparsable, cut).
    bool failed() const;
    // Name of the SOAP action ("Events", ...) or "" when not parsed.
    std::string_view action() const;
    std::size_t event_count() const { return message ? message->events.size() : 0; }
};

struct Stats {
    std::uint64_t inputs = 0, capture_bytes = 0, packets = 0;
    std::uint64_t connections = 0; // connections with at least one HTTP message
    std::uint64_t messages = 0, requests = 0, responses = 0;
    std::uint64_t plain = 0, decrypted = 0, undecryptable = 0;
    std::uint64_t failed = 0; // messages for which Record::failed() (includes undecryptable)
    std::uint64_t events = 0;
    std::uint64_t gaps = 0, gap_bytes = 0, errors = 0; // capture-level problems
    // Damage of the capture files (docs/decode.md, DAMAGED CAPTURES): damage reports of records,
    // blocks and gzip data, bytes passed over, packets cut by the snapshot length (and the TCP
    // payload bytes they lack), packets shorter than their own headers.
    std::uint64_t damaged = 0, skipped_bytes = 0, cut_packets = 0, cut_bytes = 0, short_packets = 0;

    // Something could not be decoded or was missing (`wec decode` exits with 1).
    bool partial() const {
        return failed > 0 || gaps > 0 || errors > 0 || damaged > 0 || cut_packets > 0 ||
               short_packets > 0;
    }
};

class Sink {
public:
    virtual ~Sink() = default;
    virtual void on_record(const Record&) {}
    // Gaps, parse errors, warnings and damage of the capture layer (input = file name).
    virtual void on_note(const std::string& /*input*/, const capture::Note&) {}
    // Called now and then while a capture is read (for progress bars).
    virtual void on_progress(std::uint64_t /*bytes_read*/, std::uint64_t /*total_bytes*/) {}
};

struct Options {
    capture::Limits limits;                         // capture layer limits
    std::size_t max_body_bytes = 64u * 1024 * 1024; // after decompression
    bool parse_soap = true;                         // parse bodies as WS-Management
    // Keep Record::soap (the body text) next to the parsed message. A sink that only reads the
    // parsed message (events) sets false: the text is then parsed in place, without a copy.
    bool keep_soap_text = true;
    // NTLM sessions: account secrets (NT hashes), tried on each AUTHENTICATE whose user matches
    // `user` (case-insensitive; empty matches any). See auth/ntlm_keys.hpp.
    struct NtlmSecret {
        std::string user;
        std::array<std::uint8_t, 16> nt_hash{};
    };
    std::vector<NtlmSecret> ntlm_secrets;
};

class Decoder {
public:
    Decoder(const krb::KeySet& keys, Sink& sink, Options options = {});
    ~Decoder();
    Decoder(const Decoder&) = delete;
    Decoder& operator=(const Decoder&) = delete;

    // Decodes one input: a pcap/pcapng capture (plain or gzip), or a lone message body (SOAP in
    // UTF-8/UTF-16, an SLDC record, a multipart/encrypted body), detected from its first bytes.
    // "-" reads standard input. Throws InputError when it is neither or cannot be read.
    void decode(const std::string& path);
    // The same over bytes already in memory (fuzzing, tests).
    void decode_memory(std::span<const std::uint8_t> data, const std::string& name);

    const Stats& stats() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

// --- Output ----------------------------------------------------------------------------------

// One JSON object (JSON Lines schema v1, see docs/decode.md), without a trailing newline.
void format_json(const Record& record, std::string& out);

struct TextOptions {
    bool verbose = false; // pretty-printed SOAP after each message
    bool color = false;   // ANSI colours
};
// A few human-readable lines describing the message (each ending with '\n').
void format_text(const Record& record, const TextOptions& options, std::string& out);

// raw, json, raw_json, nxlog, ecs: the collector's formats (`format =` of an output).
using EventFormat = event::Format;
// The collector's metadata for the events of a request: client address, principal,
// subscription, capture time as TimeReceived.
event::Metadata metadata_of(const Record& record);
// The events of an Events request, one per line, formatted exactly as `wec serve` writes them.
// Returns the number of events appended.
std::size_t append_events(const Record& record, EventFormat format, std::string& out);
// The same into a FormatBuffer (grown without zero-filling: what `wec decode --events` uses).
std::size_t append_events(const Record& record, EventFormat format, event::FormatBuffer& out);

// Writes record.content to DIR/<name> (see export_name); returns the path written, or "" when
// the message has no content. Throws wec::Error when the file cannot be written.
std::string export_body(const Record& record, const std::string& dir);
// "c000003-0001-request-Events.xml": connection, index, direction, action.
std::string export_name(const Record& record);

// RFC 3339 UTC time with nanoseconds as the JSON schema writes it.
std::string format_time(capture::TimeNs time);

} // namespace wec::decode

// Capture reading for offline decoding: pcap/pcapng (plain or gzip, damage reported and skipped),
// link/IP/TCP decoding, TCP reassembly per connection and direction, and HTTP/1.1 message
// extraction.
//
// Streaming: CaptureReader yields packets; decode_packet() turns one into a TCP segment;
// TcpReassembler orders the segments of each connection and feeds one HttpStreamParser per
// direction; extract_http() ties them together. Memory is bounded by the open connections
// (Limits), never by the size of the capture.
#pragma once

#include "common/error.hpp"

#include <array>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::capture {

// Unreadable or corrupt capture file; what() names the file and the problem.
class CaptureError : public wec::Error {
public:
    using wec::Error::Error;
};

using TimeNs = std::int64_t; // nanoseconds since the Unix epoch

// ---------------------------------------------------------------------------------------------
// Packets

struct Packet {
    TimeNs time = 0;
    int linktype = 0;                   // LINKTYPE_* value of the capture (of its interface)
    std::span<const std::uint8_t> data; // captured bytes (valid until the next call to next())
    std::uint32_t original_length = 0;  // length on the wire
    std::uint64_t index = 0;            // 1-based packet number in the file
    std::uint64_t offset = 0;           // file offset of its record or block (after gunzip)
};

// What is wrong with a damaged capture (see Note::damage).
enum class DamageKind {
    None,
    BadMagic,        // the file header's magic number is damaged (the rest was readable)
    TruncatedHeader, // the file ends inside a file, record or block header
    TruncatedRecord, // the file ends inside a record's (block's) data: the last packet is cut
    BadLength,       // a record or block length is invalid: skipped up to the next valid record
    BadBlock,        // a pcapng block whose framing is sound but whose content is invalid
    Gzip,            // the compressed data is corrupt or cut (the capture ends there)
    CutPacket,       // a packet cut short by the snapshot length: TCP payload bytes missing
    ShortPacket,     // a packet shorter than its own link/IP/TCP headers (skipped)
};
// "bad-magic", "truncated-header", "truncated-record", "bad-length", "bad-block", "gzip",
// "cut-packet", "short-packet" ("none").
std::string_view to_string(DamageKind kind);

struct Note;

// Reads pcap (microsecond or nanosecond, either byte order) and pcapng (every section and
// interface, each with its link type and timestamp resolution) files, plain or gzip-compressed
// (concatenated members too), with bounded memory. "-" reads standard input.
//
// Damage does not stop the reader: a record or block with an invalid length is reported and the
// reader resynchronises on the next offset where a chain of valid records (blocks) starts; a file
// that ends inside a record is reported as cut. Each problem is queued as a Note of kind
// NoteKind::Damage (file offset, record or block number, bytes skipped) for take_damage().
class CaptureReader {
public:
    static CaptureReader open(const std::string& path);
    // Takes ownership of an open FILE* (closed by the reader). name is used in messages. `head`:
    // bytes already read from the start of `file` (to tell its kind), read again first.
    static CaptureReader from_file(std::FILE* file, std::string name,
                                   std::vector<std::uint8_t> head = {});

    CaptureReader(CaptureReader&&) noexcept;
    CaptureReader& operator=(CaptureReader&&) noexcept;
    ~CaptureReader();

    // The next packet; false at the end of the file (or of what could be read of it). Throws
    // CaptureError on a read error of the underlying file.
    bool next(Packet& out);
    // The oldest damage report not yet taken (kind NoteKind::Damage); false when none is queued.
    bool take_damage(Note& out);

    int linktype() const; // of the file (pcap) or of its first interface (pcapng)
    const std::string& name() const;
    std::uint64_t bytes_read() const;    // capture bytes consumed so far (after gunzip)
    std::uint64_t damage_count() const;  // damage reports so far (taken or not)
    std::uint64_t skipped_bytes() const; // bytes passed over by resynchronisation

private:
    struct Impl;
    explicit CaptureReader(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Link, IP and TCP decoding

struct Endpoint {
    std::array<std::uint8_t, 16> address{}; // IPv4 in the first 4 bytes
    std::uint8_t family = 4;                // 4 or 6
    std::uint16_t port = 0;

    std::string address_string() const; // "192.0.2.1" or "2001:db8::1"
    std::string to_string() const;      // "192.0.2.1:5985" or "[2001:db8::1]:5985"
    friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

struct FourTuple {
    Endpoint src, dst;
    friend bool operator==(const FourTuple&, const FourTuple&) = default;
};

namespace tcp_flags {
inline constexpr std::uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
}

struct TcpSegment {
    TimeNs time = 0;
    FourTuple tuple;
    std::uint32_t seq = 0, ack = 0;
    std::uint8_t flags = 0;
    std::span<const std::uint8_t> payload; // points into the packet data
    std::uint64_t packet_index = 0;
    std::uint32_t missing = 0; // TcpCut: payload bytes the capture does not hold (snaplen)
};

enum class DecodeStatus {
    Tcp,             // segment filled
    NotTcp,          // another protocol (UDP, ARP, ...)
    Fragment,        // an IP fragment (not reassembled: skipped)
    TcpCut,          // segment filled with the captured part of a payload cut by the snaplen
    Truncated,       // packet shorter than its link/IP/TCP headers (snaplen or corruption)
    UnsupportedLink, // unknown link type
};

// Decodes Ethernet (802.1Q/QinQ), Linux SLL/SLL2, raw IP, BSD null/loop, then IPv4/IPv6 (IPv6
// extension headers skipped) and TCP. The payload is trimmed to the IP total length.
DecodeStatus decode_packet(const Packet& packet, TcpSegment& out);

// The IP packet inside a link-layer frame (from the IP header on), empty if not IPv4/IPv6.
std::span<const std::uint8_t> ip_packet_of(const Packet& packet);

// Reassembles IPv4 fragments (bounded: at most 256 pending datagrams, 30 s of capture time).
class Ipv4Reassembler {
public:
    Ipv4Reassembler();
    ~Ipv4Reassembler();
    // Adds one fragment (an IPv4 packet with MF set or a non-zero offset). Returns the whole
    // datagram once complete (valid until the next call), else an empty span.
    std::span<const std::uint8_t> add(std::span<const std::uint8_t> ip, TimeNs time);
    std::size_t pending() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// HTTP messages

enum class Direction { ClientToServer, ServerToClient };

struct Header {
    std::string_view name, value;
};

// One HTTP message. Views and spans are valid only during the on_message callback (they point
// into buffers the parser owns for the current message; the fields that do not apply to the kind
// of message, e.g. method for a response, are empty).
struct HttpMessage {
    std::uint64_t connection_id = 0;
    std::uint64_t index = 0; // order of the message within its direction (0-based)
    Direction direction = Direction::ClientToServer; // requests: client->server
    bool is_request = true;
    FourTuple tuple;                          // src = sender of this message
    TimeNs first_time = 0, last_time = 0;     // first and last packet of the message
    std::string_view start_line;              // without CRLF
    std::string_view method, target, version; // requests
    int status = 0;                           // responses
    std::string_view reason;                  // responses
    std::vector<Header> headers;
    std::span<const std::uint8_t> body; // de-chunked
    bool chunked = false;
    bool after_gap = false; // first message after a gap or a mid-stream start
    bool truncated = false; // body cut by the end of the stream (connection closed early)
    std::optional<std::uint64_t> request_index; // responses: index of the request it answers

    // First header of that name (case-insensitive).
    std::optional<std::string_view> header(std::string_view name) const;
};

enum class NoteKind { Gap, Error, Warning, Damage };

// A gap (missing bytes), a parse error (e.g. oversized headers), a capture-level warning, or
// damage of the capture file itself (Damage: what and where in the file).
struct Note {
    NoteKind kind = NoteKind::Error;
    std::uint64_t connection_id = 0; // 0: capture-level
    FourTuple tuple;                 // src = sender of the affected stream
    TimeNs time = 0;
    std::uint64_t bytes = 0; // gap: missing byte count; error, damage: bytes skipped
    std::string text; // Damage: "<where>: <what>" ("record 3 at offset 114: ..."), without the
                      // file name
    DamageKind damage = DamageKind::None; // Damage: what is wrong
    std::uint64_t offset = 0;             // Damage: file offset (after gunzip) of the problem
    std::uint64_t record = 0; // Damage: 1-based record (pcap) or block (pcapng) number, or
                              // packet number (cut-packet, short-packet); gap: the packet at
                              // which the bytes were found missing (0: at the end)
};

struct Limits {
    std::size_t max_header_bytes = 64 * 1024;             // start line + headers of one message
    std::size_t max_body_bytes = 64 * 1024 * 1024;        // one (de-chunked) body
    std::size_t max_out_of_order_bytes = 4 * 1024 * 1024; // buffered ahead, per direction
    std::size_t max_connections = 65536;                  // oldest (least recently active) evicted
    TimeNs idle_timeout = 600LL * 1000000000LL;           // capture time without packets
};

// Receives the output of the parsers. Default implementations do nothing.
class HttpSink {
public:
    virtual ~HttpSink() = default;
    virtual void on_message(const HttpMessage&) {}
    virtual void on_note(const Note&) {}
};

// Parses the HTTP/1.1 messages of one direction of one connection from a byte stream, pushed in
// pieces of any size. Resynchronises (after a gap or at a mid-stream start) on the next
// recognisable request or status line.
class HttpStreamParser {
public:
    // Answers questions the parser cannot: did the request this response answers use HEAD?
    class Context {
    public:
        virtual ~Context() = default;
        virtual bool next_response_is_to_head() { return false; }
    };

    HttpStreamParser(HttpSink& sink, const Limits& limits, Context* context = nullptr);
    ~HttpStreamParser();
    HttpStreamParser(const HttpStreamParser&) = delete;
    HttpStreamParser& operator=(const HttpStreamParser&) = delete;

    // Identification copied into messages and notes.
    void set_identity(std::uint64_t connection_id, const FourTuple& tuple);
    // Called just before on_message for a fully parsed message (to fill pairing fields).
    std::function<void(HttpMessage&)> on_complete;

    void feed(std::span<const std::uint8_t> data, TimeNs time);
    // `bytes` of the stream are missing: drop the current message and resynchronise.
    void gap(std::uint64_t bytes, TimeNs time);
    // End of the stream: completes a read-until-close body, reports a cut message.
    void finish(TimeNs time);

    std::uint64_t messages() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// TCP reassembly

struct Stats {
    std::uint64_t packets = 0, capture_bytes = 0, tcp_segments = 0, non_tcp = 0, ip_fragments = 0,
                  ip_reassembled = 0, truncated_packets = 0, unsupported_link = 0;
    std::uint64_t damaged = 0, skipped_bytes = 0; // damage reports of the file (records, blocks,
                                                  // gzip data), bytes passed over
    std::uint64_t cut_packets = 0, cut_bytes = 0; // TcpCut segments, payload bytes they lack
    // truncated_packets: shorter than their own headers (DecodeStatus::Truncated), skipped.
    std::uint64_t connections = 0, retransmitted_bytes = 0, gaps = 0, gap_bytes = 0,
                  evicted_connections = 0;
    std::uint64_t requests = 0, responses = 0, errors = 0;
};

// Orders the segments of every TCP connection and drives one HttpStreamParser per direction.
class TcpReassembler {
public:
    TcpReassembler(HttpSink& sink, const Limits& limits = {});
    ~TcpReassembler();
    TcpReassembler(const TcpReassembler&) = delete;
    TcpReassembler& operator=(const TcpReassembler&) = delete;

    void add(const TcpSegment& segment);
    // Closes every open connection (flushing buffered data, reporting gaps). Call at the end.
    void finish();

    std::size_t open_connections() const;
    const Stats& stats() const; // connection, gap and message counters

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Top level

struct Callbacks {
    std::function<void(const HttpMessage&)> on_message;
    std::function<void(const Note&)> on_gap;   // NoteKind::Gap
    std::function<void(const Note&)> on_error; // NoteKind::Error, Warning and Damage
};

// Reads a capture (path or "-") and reports every HTTP message found in it.
// Throws CaptureError if the file cannot be opened or is not a capture.
Stats extract_http(const std::string& path, const Callbacks& callbacks, const Limits& limits = {});
Stats extract_http(CaptureReader& reader, const Callbacks& callbacks, const Limits& limits = {});

// ---------------------------------------------------------------------------------------------
// Single-file detection (for `wec decode body.bin`)

enum class FileKind { Pcap, Pcapng, Gzip, Sldc, Utf16Xml, Utf8Xml, MultipartEncrypted, Unknown };

// Classifies the first bytes of a file (a few hundred bytes are enough).
FileKind detect_file_kind(std::span<const std::uint8_t> head);
std::string_view to_string(FileKind kind);

} // namespace wec::capture

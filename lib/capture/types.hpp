// The vocabulary shared by the layers of lib/capture: the error, times, endpoints, the notes the
// layers report (gaps, parse errors, damage of the file) and the memory limits.
// Endpoint's functions are in link.cpp, to_string(DamageKind) in file.cpp.
#pragma once

#include "common/error.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wec::capture {

// Unreadable or corrupt capture file; what() names the file and the problem.
class CaptureError : public wec::Error {
public:
    using wec::Error::Error;
};

using TimeNs = std::int64_t; // nanoseconds since the Unix epoch

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

} // namespace wec::capture

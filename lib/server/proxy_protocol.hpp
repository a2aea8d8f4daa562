// The PROXY protocol (HAProxy, versions 1 and 2): the header a load balancer sends first on each
// connection it forwards, naming the real client's address. A listener with `proxy_protocol =
// true` reads it before anything else (before the TLS handshake) and refuses a connection that
// does not start with one. Spec: https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace wec::server::proxy {

// A version 1 header is at most 107 bytes with its CRLF; a version 2 header is 16 bytes plus its
// length field. Longer version 2 headers (TLVs of several KiB) are refused: no balancer sends them
// for TCP and they would let a peer make us buffer 64 KiB before anything is authenticated.
inline constexpr std::size_t kMaxV1Bytes = 107;
inline constexpr std::size_t kMaxV2Bytes = 16 + 4096;

struct Header {
    int version = 0; // 1 or 2
    // No address: v2 LOCAL (the balancer's own connection, e.g. a health check), v1 UNKNOWN, or a
    // v2 family we do not map (UNSPEC, unix sockets). The connection's own address stays.
    bool local = false;
    std::string source_address; // the real client: "192.0.2.1", "2001:db8::1"
    std::uint16_t source_port = 0;
    std::string destination_address;
    std::uint16_t destination_port = 0;
};

enum class Status {
    Incomplete, // a valid beginning: read more (the header is never longer than kMaxV2Bytes)
    Complete,   // `length` bytes are the header; what follows belongs to the connection
    Invalid,    // not a PROXY header, or a malformed one: close the connection (`error` says why)
};

struct Result {
    Status status = Status::Incomplete;
    std::size_t length = 0;
    Header header;
    std::string error;
};

// Parses the first bytes received on a connection. Never reads past `data`.
Result parse(std::span<const std::uint8_t> data);

} // namespace wec::server::proxy

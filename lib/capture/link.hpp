// The link layer (link.cpp): Ethernet, SLL, raw IP, BSD loopback, then IPv4/IPv6 and TCP headers;
// IPv4 fragment reassembly.
#pragma once

#include "capture/file.hpp"
#include "capture/types.hpp"

#include <cstdint>
#include <memory>
#include <span>

namespace wec::capture {

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

} // namespace wec::capture

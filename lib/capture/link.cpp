// Link/IP/TCP decoding and IPv4 reassembly.
#include "capture/link.hpp"

#include "common/bytes.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cstdint>
#include <cstring>
#include <map>

namespace wec::capture {
namespace {

constexpr int kDltNull = 0, kDltEthernet = 1, kDltRaw = 12, kDltRawOpenBsd = 14, kLinktypeRaw = 101,
              kDltLoop = 108, kDltSll = 113, kDltIpv4 = 228, kDltIpv6 = 229, kDltSll2 = 276;

// n: bytes captured of the TCP segment; whole: its length according to the IP header (more when
// the snapshot length cut it: the captured part of the payload is kept, the rest is `missing`).
DecodeStatus decode_tcp(const std::uint8_t* p, std::size_t n, std::size_t whole, TcpSegment& out) {
    out.missing = 0;
    if (n < 20) return DecodeStatus::Truncated;
    std::size_t off = static_cast<std::size_t>(p[12] >> 4) * 4;
    if (off < 20 || off > n) return DecodeStatus::Truncated;
    out.tuple.src.port = load_be16(p);
    out.tuple.dst.port = load_be16(p + 2);
    out.seq = load_be32(p + 4);
    out.ack = load_be32(p + 8);
    out.flags = p[13];
    out.payload = std::span<const std::uint8_t>(p + off, n - off);
    if (whole > n) {
        out.missing = static_cast<std::uint32_t>(whole - n);
        return DecodeStatus::TcpCut;
    }
    return DecodeStatus::Tcp;
}

DecodeStatus decode_ipv4(const std::uint8_t* p, std::size_t n, TcpSegment& out) {
    if (n < 20) return DecodeStatus::Truncated;
    if ((p[0] >> 4) != 4) return DecodeStatus::NotTcp;
    std::size_t ihl = static_cast<std::size_t>(p[0] & 15) * 4;
    std::size_t total = load_be16(p + 2);
    if (total == 0) total = n; // TCP segmentation offload on the capturing host
    if (ihl < 20 || ihl > n || total < ihl) return DecodeStatus::Truncated;
    bool fragment = (load_be16(p + 6) & 0x3fff) != 0;
    if (total > n && fragment) return DecodeStatus::Truncated;
    if (fragment) return DecodeStatus::Fragment;
    if (p[9] != 6) return DecodeStatus::NotTcp;
    out.tuple.src.family = out.tuple.dst.family = 4;
    out.tuple.src.address = {};
    out.tuple.dst.address = {};
    std::memcpy(out.tuple.src.address.data(), p + 12, 4);
    std::memcpy(out.tuple.dst.address.data(), p + 16, 4);
    return decode_tcp(p + ihl, std::min(total, n) - ihl, total - ihl, out);
}

DecodeStatus decode_ipv6(const std::uint8_t* p, std::size_t n, TcpSegment& out) {
    if (n < 40) return DecodeStatus::Truncated;
    if ((p[0] >> 4) != 6) return DecodeStatus::NotTcp;
    std::size_t payload = load_be16(p + 4);
    std::size_t whole = payload == 0 ? n : 40 + payload; // 0: jumbogram / offload
    std::size_t end = std::min(whole, n);                // what the capture holds
    std::uint8_t next = p[6];
    std::size_t off = 40;
    for (int guard = 0; guard < 16; ++guard) {
        switch (next) {
        case 6: {
            out.tuple.src.family = out.tuple.dst.family = 6;
            std::memcpy(out.tuple.src.address.data(), p + 8, 16);
            std::memcpy(out.tuple.dst.address.data(), p + 24, 16);
            return decode_tcp(p + off, end - off, whole - off, out);
        }
        case 0:   // hop-by-hop
        case 43:  // routing
        case 60:  // destination options
        case 135: // mobility
        case 139: // HIP
        case 140: // shim6
            if (off + 8 > end) return DecodeStatus::Truncated;
            next = p[off];
            off += (static_cast<std::size_t>(p[off + 1]) + 1) * 8;
            break;
        case 51: // authentication header
            if (off + 8 > end) return DecodeStatus::Truncated;
            next = p[off];
            off += (static_cast<std::size_t>(p[off + 1]) + 2) * 4;
            break;
        case 44: // fragment
            if (off + 8 > end) return DecodeStatus::Truncated;
            if ((load_be16(p + off + 2) & 0xfff9) != 0) return DecodeStatus::Fragment;
            next = p[off];
            off += 8;
            break;
        default:
            return DecodeStatus::NotTcp;
        }
        if (off > end) return DecodeStatus::Truncated;
    }
    return DecodeStatus::NotTcp;
}

DecodeStatus decode_ethertype(std::uint16_t type, const std::uint8_t* p, std::size_t n,
                              TcpSegment& out) {
    if (type == 0x0800) return decode_ipv4(p, n, out);
    if (type == 0x86dd) return decode_ipv6(p, n, out);
    return DecodeStatus::NotTcp;
}

DecodeStatus decode_raw_ip(const std::uint8_t* p, std::size_t n, TcpSegment& out) {
    if (n < 1) return DecodeStatus::Truncated;
    if ((p[0] >> 4) == 4) return decode_ipv4(p, n, out);
    if ((p[0] >> 4) == 6) return decode_ipv6(p, n, out);
    return DecodeStatus::NotTcp;
}

DecodeStatus decode_null_family(std::uint32_t family, const std::uint8_t* p, std::size_t n,
                                TcpSegment& out) {
    if (family == 2) return decode_ipv4(p, n, out);
    if (family == 10 || family == 24 || family == 28 || family == 30) return decode_ipv6(p, n, out);
    return DecodeStatus::NotTcp;
}

} // namespace

// ---------------------------------------------------------------------------------------------

DecodeStatus decode_packet(const Packet& packet, TcpSegment& out) {
    const std::uint8_t* p = packet.data.data();
    std::size_t n = packet.data.size();
    out.time = packet.time;
    out.packet_index = packet.index;
    switch (packet.linktype) {
    case kDltEthernet: {
        if (n < 14) return DecodeStatus::Truncated;
        std::size_t off = 12;
        std::uint16_t type = load_be16(p + off);
        while (type == 0x8100 || type == 0x88a8 || type == 0x9100 || type == 0x9200) {
            off += 4;
            if (off + 2 > n) return DecodeStatus::Truncated;
            type = load_be16(p + off);
        }
        off += 2;
        return decode_ethertype(type, p + off, n - off, out);
    }
    case kDltSll:
        if (n < 16) return DecodeStatus::Truncated;
        return decode_ethertype(load_be16(p + 14), p + 16, n - 16, out);
    case kDltSll2:
        if (n < 20) return DecodeStatus::Truncated;
        return decode_ethertype(load_be16(p), p + 20, n - 20, out);
    case kDltRaw:
    case kDltRawOpenBsd:
    case kLinktypeRaw:
        return decode_raw_ip(p, n, out);
    case kDltIpv4:
        return decode_ipv4(p, n, out);
    case kDltIpv6:
        return decode_ipv6(p, n, out);
    case kDltNull: {
        if (n < 4) return DecodeStatus::Truncated;
        std::uint32_t family = load_le32(p);
        if (family > 0xffff) family = load_be32(p); // written by a big-endian host
        return decode_null_family(family, p + 4, n - 4, out);
    }
    case kDltLoop:
        if (n < 4) return DecodeStatus::Truncated;
        return decode_null_family(load_be32(p), p + 4, n - 4, out);
    default:
        return DecodeStatus::UnsupportedLink;
    }
}

std::span<const std::uint8_t> ip_packet_of(const Packet& packet) {
    const std::uint8_t* p = packet.data.data();
    std::size_t n = packet.data.size();
    std::size_t off = 0;
    switch (packet.linktype) {
    case kDltEthernet: {
        if (n < 14) return {};
        off = 12;
        std::uint16_t type = load_be16(p + off);
        while (type == 0x8100 || type == 0x88a8 || type == 0x9100 || type == 0x9200) {
            off += 4;
            if (off + 2 > n) return {};
            type = load_be16(p + off);
        }
        off += 2;
        if (type != 0x0800 && type != 0x86dd) return {};
        break;
    }
    case kDltSll:
        if (n < 16 || (load_be16(p + 14) != 0x0800 && load_be16(p + 14) != 0x86dd)) return {};
        off = 16;
        break;
    case kDltSll2:
        if (n < 20 || (load_be16(p) != 0x0800 && load_be16(p) != 0x86dd)) return {};
        off = 20;
        break;
    case kDltRaw:
    case kDltRawOpenBsd:
    case kLinktypeRaw:
    case kDltIpv4:
    case kDltIpv6:
        break;
    case kDltNull:
    case kDltLoop:
        if (n < 4) return {};
        off = 4;
        break;
    default:
        return {};
    }
    if (off >= n) return {};
    std::uint8_t v = p[off] >> 4;
    if (v != 4 && v != 6) return {};
    return packet.data.subspan(off);
}

struct Ipv4Reassembler::Impl {
    struct Datagram {
        std::vector<std::uint8_t> header; // IP header of the first fragment
        std::vector<std::uint8_t> data;   // payload so far
        std::vector<bool> blocks;         // 8-byte blocks received
        std::size_t total = 0;            // payload length once the last fragment is seen
        bool have_last = false;
        TimeNs first_seen = 0;
    };
    std::map<std::array<std::uint8_t, 11>, Datagram> table;
    std::vector<std::uint8_t> out;

    std::span<const std::uint8_t> add(std::span<const std::uint8_t> ip, TimeNs time) {
        constexpr std::size_t kMaxPending = 256;
        constexpr TimeNs kTimeout = 30LL * 1000000000LL;
        if (ip.size() < 20 || (ip[0] >> 4) != 4) return {};
        std::size_t ihl = static_cast<std::size_t>(ip[0] & 15) * 4;
        std::size_t total_len = load_be16(ip.data() + 2);
        if (ihl < 20 || total_len < ihl || total_len > ip.size()) return {};
        std::uint16_t frag = load_be16(ip.data() + 6);
        bool more = (frag & 0x2000) != 0;
        std::size_t offset = static_cast<std::size_t>(frag & 0x1fff) * 8;
        std::size_t len = total_len - ihl;
        if (offset + len > 65535 || (more && len % 8 != 0)) return {};
        std::array<std::uint8_t, 11> key{};
        std::memcpy(key.data(), ip.data() + 12, 8);    // source and destination
        std::memcpy(key.data() + 8, ip.data() + 4, 2); // identification
        key[10] = ip[9];                               // protocol
        for (auto it = table.begin(); it != table.end();) {
            if (time - it->second.first_seen > kTimeout) {
                it = table.erase(it);
            } else {
                ++it;
            }
        }
        auto it = table.find(key);
        if (it == table.end()) {
            if (table.size() >= kMaxPending) {
                auto oldest = table.begin();
                for (auto j = table.begin(); j != table.end(); ++j) {
                    if (j->second.first_seen < oldest->second.first_seen) oldest = j;
                }
                table.erase(oldest);
            }
            it = table.emplace(key, Datagram{}).first;
            it->second.first_seen = time;
        }
        Datagram& d = it->second;
        if (offset == 0) d.header.assign(ip.begin(), ip.begin() + static_cast<std::ptrdiff_t>(ihl));
        if (!more) {
            d.have_last = true;
            d.total = offset + len;
        }
        if (d.data.size() < offset + len) d.data.resize(offset + len);
        std::memcpy(d.data.data() + offset, ip.data() + ihl, len);
        std::size_t first_block = offset / 8, last_block = (offset + len + 7) / 8;
        if (d.blocks.size() < last_block) d.blocks.resize(last_block, false);
        for (std::size_t b = first_block; b < last_block; ++b)
            d.blocks[b] = true;
        if (!d.have_last || d.header.empty()) return {};
        std::size_t need = (d.total + 7) / 8;
        if (d.blocks.size() < need) return {};
        for (std::size_t b = 0; b < need; ++b) {
            if (!d.blocks[b]) return {};
        }
        out.assign(d.header.begin(), d.header.end());
        out.insert(out.end(), d.data.begin(),
                   d.data.begin() + static_cast<std::ptrdiff_t>(d.total));
        std::size_t whole = out.size();
        if (whole > 65535) {
            table.erase(it);
            return {};
        }
        out[2] = static_cast<std::uint8_t>(whole >> 8);
        out[3] = static_cast<std::uint8_t>(whole);
        out[6] &= 0x40; // keep DF, clear MF and the offset
        out[7] = 0;
        table.erase(it);
        return out;
    }
};

Ipv4Reassembler::Ipv4Reassembler() : impl_(std::make_unique<Impl>()) {}
Ipv4Reassembler::~Ipv4Reassembler() = default;
std::span<const std::uint8_t> Ipv4Reassembler::add(std::span<const std::uint8_t> ip, TimeNs time) {
    return impl_->add(ip, time);
}
std::size_t Ipv4Reassembler::pending() const {
    return impl_->table.size();
}

std::string Endpoint::address_string() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(family == 6 ? AF_INET6 : AF_INET, address.data(), buf, sizeof buf);
    return buf;
}

std::string Endpoint::to_string() const {
    std::string a = address_string();
    return (family == 6 ? "[" + a + "]" : a) + ":" + std::to_string(port);
}

} // namespace wec::capture

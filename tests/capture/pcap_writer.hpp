// Test helper: synthesizes TCP conversations and writes them as pcap files with various link
// types, so that reassembly cases (reordering, loss, overlap...) can be produced exactly.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace wec::test {

using Bytes = std::vector<std::uint8_t>;

inline Bytes to_bytes(std::string_view s) {
    return {s.begin(), s.end()};
}

enum class Link { Ethernet, EthernetQinQ, Sll, Sll2, Raw, RawIpv4, RawIpv6, Null, Loop };

inline std::uint32_t linktype_of(Link l) {
    switch (l) {
    case Link::Ethernet:
    case Link::EthernetQinQ:
        return 1;
    case Link::Sll:
        return 113;
    case Link::Sll2:
        return 276;
    case Link::Raw:
        return 101;
    case Link::RawIpv4:
        return 228;
    case Link::RawIpv6:
        return 229;
    case Link::Null:
        return 0;
    case Link::Loop:
        return 108;
    }
    return 1;
}

struct Seg {
    bool from_client = true;
    std::uint32_t seq = 0, ack = 0;
    std::uint8_t flags = 0;
    Bytes payload;
    std::int64_t time_ns = 0;
};

constexpr std::uint8_t kFin = 1, kSyn = 2, kRst = 4, kPsh = 8, kAck = 16;

// A TCP conversation between a client and a server, as a list of segments.
class Conversation {
public:
    Conversation(std::uint16_t client_port, std::uint16_t server_port, bool ipv6 = false,
                 std::uint32_t client_isn = 1000, std::uint32_t server_isn = 0xfffff000u)
        : cport_(client_port), sport_(server_port), ipv6_(ipv6), cseq_(client_isn),
          sseq_(server_isn) {}

    std::vector<Seg> segs;
    std::int64_t time = 1700000000LL * 1000000000LL;

    void handshake() {
        push(true, kSyn, {});
        cseq_ += 1;
        push(false, kSyn | kAck, {});
        sseq_ += 1;
        push(true, kAck, {});
    }
    // Sends data in segments of at most mss bytes, then the peer acknowledges.
    void send(bool from_client, const Bytes& data, std::size_t mss = 1400) {
        for (std::size_t off = 0; off < data.size(); off += mss) {
            std::size_t n = std::min(mss, data.size() - off);
            push(from_client, kAck | kPsh, Bytes(data.begin() + off, data.begin() + off + n));
            (from_client ? cseq_ : sseq_) += static_cast<std::uint32_t>(n);
        }
        push(!from_client, kAck, {});
    }
    void close() {
        push(true, kFin | kAck, {});
        cseq_ += 1;
        push(false, kFin | kAck, {});
        sseq_ += 1;
        push(true, kAck, {});
    }
    void rst(bool from_client) { push(from_client, kRst | kAck, {}); }

    std::uint16_t client_port() const { return cport_; }
    std::uint16_t server_port() const { return sport_; }
    bool ipv6() const { return ipv6_; }

private:
    void push(bool from_client, std::uint8_t flags, Bytes payload) {
        Seg s;
        s.from_client = from_client;
        s.seq = from_client ? cseq_ : sseq_;
        s.ack = from_client ? sseq_ : cseq_;
        s.flags = flags;
        s.payload = std::move(payload);
        s.time_ns = (time += 1000);
        segs.push_back(std::move(s));
    }
    std::uint16_t cport_, sport_;
    bool ipv6_;
    std::uint32_t cseq_, sseq_;
};

inline void put16(Bytes& b, std::uint16_t v) {
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
}
inline void put32(Bytes& b, std::uint32_t v) {
    put16(b, static_cast<std::uint16_t>(v >> 16));
    put16(b, static_cast<std::uint16_t>(v));
}
inline void put32le(Bytes& b, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

// The IP packet (with TCP) of one segment. IPv6 packets carry a hop-by-hop and a destination
// options extension header to exercise header skipping.
inline Bytes ip_packet(const Conversation& c, const Seg& s, std::uint16_t ip_flags_frag = 0x4000) {
    Bytes tcp;
    put16(tcp, s.from_client ? c.client_port() : c.server_port());
    put16(tcp, s.from_client ? c.server_port() : c.client_port());
    put32(tcp, s.seq);
    put32(tcp, s.ack);
    tcp.push_back(0x80); // data offset 8 words: 12 bytes of options
    tcp.push_back(s.flags);
    put16(tcp, 65535);
    put16(tcp, 0); // checksum (not verified)
    put16(tcp, 0);
    const std::uint8_t opts[12] = {1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}; // NOP NOP timestamps
    tcp.insert(tcp.end(), opts, opts + 12);
    tcp.insert(tcp.end(), s.payload.begin(), s.payload.end());

    Bytes ip;
    if (!c.ipv6()) {
        ip.push_back(0x45);
        ip.push_back(0);
        put16(ip, static_cast<std::uint16_t>(20 + tcp.size()));
        put16(ip, 1);
        put16(ip, ip_flags_frag);
        ip.push_back(64);
        ip.push_back(6);
        put16(ip, 0);
        const std::uint8_t cl[4] = {10, 0, 0, 1}, sv[4] = {10, 0, 0, 2};
        ip.insert(ip.end(), s.from_client ? cl : sv, (s.from_client ? cl : sv) + 4);
        ip.insert(ip.end(), s.from_client ? sv : cl, (s.from_client ? sv : cl) + 4);
    } else {
        ip.push_back(0x60);
        ip.push_back(0);
        put16(ip, 0);
        put16(ip, static_cast<std::uint16_t>(16 + tcp.size()));
        ip.push_back(0); // next: hop-by-hop
        ip.push_back(64);
        std::uint8_t cl[16] = {0x20, 0x01, 0x0d, 0xb8}, sv[16] = {0x20, 0x01, 0x0d, 0xb8};
        cl[15] = 1;
        sv[15] = 2;
        ip.insert(ip.end(), s.from_client ? cl : sv, (s.from_client ? cl : sv) + 16);
        ip.insert(ip.end(), s.from_client ? sv : cl, (s.from_client ? sv : cl) + 16);
        const std::uint8_t hbh[8] = {60, 0, 1, 4, 0, 0, 0, 0}; // -> destination options
        const std::uint8_t dst[8] = {6, 0, 1, 4, 0, 0, 0, 0};  // -> TCP
        ip.insert(ip.end(), hbh, hbh + 8);
        ip.insert(ip.end(), dst, dst + 8);
    }
    ip.insert(ip.end(), tcp.begin(), tcp.end());
    return ip;
}

inline Bytes frame(Link link, const Conversation& c, const Seg& s) {
    Bytes ip = ip_packet(c, s);
    std::uint16_t ethertype = c.ipv6() ? 0x86dd : 0x0800;
    Bytes f;
    switch (link) {
    case Link::Ethernet:
    case Link::EthernetQinQ: {
        const std::uint8_t a[6] = {2, 0, 0, 0, 0, 1}, b[6] = {2, 0, 0, 0, 0, 2};
        f.insert(f.end(), s.from_client ? b : a, (s.from_client ? b : a) + 6);
        f.insert(f.end(), s.from_client ? a : b, (s.from_client ? a : b) + 6);
        if (link == Link::EthernetQinQ) {
            put16(f, 0x88a8);
            put16(f, 100);
            put16(f, 0x8100);
            put16(f, 200);
        }
        put16(f, ethertype);
        break;
    }
    case Link::Sll:
        put16(f, s.from_client ? 4 : 0);
        put16(f, 772);
        put16(f, 6);
        for (int i = 0; i < 8; ++i)
            f.push_back(0);
        put16(f, ethertype);
        break;
    case Link::Sll2:
        put16(f, ethertype);
        put16(f, 0);
        put32(f, 1);
        put16(f, 772);
        f.push_back(s.from_client ? 4 : 0);
        f.push_back(6);
        for (int i = 0; i < 8; ++i)
            f.push_back(0);
        break;
    case Link::Raw:
    case Link::RawIpv4:
    case Link::RawIpv6:
        break;
    case Link::Null:
        put32le(f, c.ipv6() ? 30 : 2);
        break;
    case Link::Loop:
        put32(f, c.ipv6() ? 24 : 2);
        break;
    }
    f.insert(f.end(), ip.begin(), ip.end());
    if (link == Link::Ethernet) {
        while (f.size() < 60)
            f.push_back(0); // Ethernet padding must be ignored
    }
    return f;
}

// A classic pcap file writer (microsecond timestamps, little-endian).
class PcapWriter {
public:
    PcapWriter(const std::string& path, std::uint32_t linktype) {
        f_ = std::fopen(path.c_str(), "wb");
        if (f_ == nullptr) throw std::runtime_error("cannot create " + path);
        Bytes h;
        put32le(h, 0xa1b2c3d4);
        h.push_back(2);
        h.push_back(0);
        h.push_back(4);
        h.push_back(0);
        put32le(h, 0);
        put32le(h, 0);
        put32le(h, 262144);
        put32le(h, linktype);
        std::fwrite(h.data(), 1, h.size(), f_);
    }
    ~PcapWriter() {
        if (f_ != nullptr) std::fclose(f_);
    }
    PcapWriter(const PcapWriter&) = delete;
    PcapWriter& operator=(const PcapWriter&) = delete;

    void write(std::int64_t time_ns, const Bytes& data) { write(time_ns, data, data.size()); }
    void write(std::int64_t time_ns, const Bytes& data, std::size_t orig_len) {
        Bytes h;
        put32le(h, static_cast<std::uint32_t>(time_ns / 1000000000LL));
        put32le(h, static_cast<std::uint32_t>((time_ns % 1000000000LL) / 1000));
        put32le(h, static_cast<std::uint32_t>(data.size()));
        put32le(h, static_cast<std::uint32_t>(orig_len));
        std::fwrite(h.data(), 1, h.size(), f_);
        std::fwrite(data.data(), 1, data.size(), f_);
    }

private:
    std::FILE* f_ = nullptr;
};

inline void write_conversation(const std::string& path, Link link, const Conversation& c,
                               const std::vector<Seg>& segs) {
    PcapWriter w(path, linktype_of(link));
    for (const auto& s : segs)
        w.write(s.time_ns, frame(link, c, s));
}

} // namespace wec::test

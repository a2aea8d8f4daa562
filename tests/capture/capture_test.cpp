// Capture reading, TCP reassembly and HTTP extraction on synthesized captures.
#include "capture/capture.hpp"
#include "capture_util.hpp"
#include "common/files.hpp"
#include "pcap_writer.hpp"

#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <unistd.h>
#include <zlib.h>

using namespace wec::test;
namespace cap = wec::capture;

namespace {

struct Exchange {
    std::vector<std::string> requests, responses;
};

Exchange make_exchange(int count, std::size_t base_size, unsigned seed) {
    Exchange e;
    for (int i = 0; i < count; ++i) {
        e.requests.push_back(random_body(base_size + static_cast<std::size_t>(i) * 977,
                                         seed + static_cast<unsigned>(i)));
        e.responses.push_back(random_body(300 + static_cast<std::size_t>(i) * 13,
                                          seed + 100 + static_cast<unsigned>(i)));
    }
    return e;
}

// One keep-alive connection carrying the exchange.
Conversation conversation(const Exchange& e, bool ipv6 = false, std::uint16_t cport = 49152,
                          std::size_t mss = 1400, bool with_close = true) {
    Conversation c(cport, 5985, ipv6);
    c.handshake();
    for (std::size_t i = 0; i < e.requests.size(); ++i) {
        c.send(true, to_bytes(post(e.requests[i])), mss);
        c.send(false, to_bytes(response(e.responses[i])), mss);
    }
    if (with_close) c.close();
    return c;
}

void expect_exchange(const Result& r, const Exchange& e) {
    ASSERT_EQ(r.bodies(true), e.requests) << r.error_text();
    ASSERT_EQ(r.bodies(false), e.responses) << r.error_text();
}

// Indices of segments that carry data, per direction.
std::vector<std::size_t> data_segments(const std::vector<Seg>& segs, bool from_client) {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < segs.size(); ++i) {
        if (!segs[i].payload.empty() && segs[i].from_client == from_client) out.push_back(i);
    }
    return out;
}

} // namespace

TEST(Capture, KeepAliveExchangeOverEthernet) {
    TempDir dir;
    auto e = make_exchange(4, 5000, 1);
    auto c = conversation(e);
    write_conversation(dir.file("a.pcap"), Link::Ethernet, c, c.segs);
    auto r = extract(dir.file("a.pcap"));
    expect_exchange(r, e);
    EXPECT_TRUE(r.errors.empty()) << r.error_text();
    EXPECT_TRUE(r.gaps.empty());
    EXPECT_EQ(r.stats.connections, 1u);
    EXPECT_EQ(r.stats.requests, 4u);
    EXPECT_EQ(r.stats.responses, 4u);
    EXPECT_EQ(r.stats.packets, c.segs.size());
    // Order, pairing, direction, tuple and times.
    ASSERT_EQ(r.messages.size(), 8u);
    for (std::size_t i = 0; i < 8; ++i) {
        const auto& m = r.messages[i];
        EXPECT_EQ(m.request, i % 2 == 0);
        EXPECT_EQ(m.index, i / 2);
        if (m.request) {
            EXPECT_EQ(m.direction, cap::Direction::ClientToServer);
            EXPECT_EQ(m.tuple.src.port, 49152);
            EXPECT_EQ(m.tuple.dst.port, 5985);
            EXPECT_EQ(m.tuple.src.to_string(), "10.0.0.1:49152");
            EXPECT_EQ(m.start_line, "POST /wsman HTTP/1.1");
        } else {
            EXPECT_EQ(m.direction, cap::Direction::ServerToClient);
            ASSERT_TRUE(m.request_index);
            EXPECT_EQ(*m.request_index, i / 2);
            EXPECT_EQ(m.tuple.src.to_string(), "10.0.0.2:5985");
            EXPECT_EQ(m.start_line, "HTTP/1.1 200 OK");
        }
        if (m.request) {
            EXPECT_LT(m.first, m.last); // several segments each
        } else {
            EXPECT_LE(m.first, m.last);
        }
        EXPECT_FALSE(m.after_gap);
        EXPECT_EQ(m.connection, r.messages[0].connection);
    }
    // Case-insensitive header lookup on the live message.
    bool checked = false;
    cap::Callbacks cb;
    cb.on_message = [&](const cap::HttpMessage& m) {
        if (!m.is_request || checked) return;
        checked = true;
        EXPECT_EQ(m.header("content-TYPE").value_or(""), "application/soap+xml;charset=UTF-16");
        EXPECT_EQ(m.method, "POST");
        EXPECT_EQ(m.target, "/wsman");
        EXPECT_EQ(m.version, "HTTP/1.1");
        EXPECT_FALSE(m.header("X-Missing"));
    };
    cap::extract_http(dir.file("a.pcap"), cb);
    EXPECT_TRUE(checked);
}

TEST(Capture, AllLinkTypesAndIpv6) {
    TempDir dir;
    auto e = make_exchange(3, 3000, 7);
    struct Case {
        Link link;
        bool ipv6;
    };
    const Case cases[] = {
        {Link::Ethernet, false},    {Link::Ethernet, true}, {Link::EthernetQinQ, false},
        {Link::EthernetQinQ, true}, {Link::Sll, false},     {Link::Sll2, false},
        {Link::Sll2, true},         {Link::Raw, false},     {Link::Raw, true},
        {Link::RawIpv4, false},     {Link::RawIpv6, true},  {Link::Null, false},
        {Link::Null, true},         {Link::Loop, false},    {Link::Loop, true}};
    int n = 0;
    for (const auto& k : cases) {
        SCOPED_TRACE("case " + std::to_string(n));
        auto c = conversation(e, k.ipv6);
        std::string path = dir.file("l" + std::to_string(n++) + ".pcap");
        write_conversation(path, k.link, c, c.segs);
        auto r = extract(path);
        expect_exchange(r, e);
        EXPECT_TRUE(r.errors.empty()) << r.error_text();
        ASSERT_FALSE(r.messages.empty());
        EXPECT_EQ(r.messages[0].tuple.src.family, k.ipv6 ? 6 : 4);
        if (k.ipv6) {
            EXPECT_EQ(r.messages[0].tuple.src.to_string(), "[2001:db8::1]:49152");
        }
    }
}

TEST(Capture, OutOfOrderSegments) {
    TempDir dir;
    auto e = make_exchange(3, 20000, 11);
    auto c = conversation(e, false, 40000, 1000);
    auto segs = c.segs;
    // Swap neighbouring data segments and move one segment several positions later.
    auto cd = data_segments(segs, true);
    for (std::size_t k = 0; k + 1 < cd.size(); k += 4) {
        if (cd[k] + 1 == cd[k + 1]) std::swap(segs[cd[k]], segs[cd[k + 1]]);
    }
    auto sd = data_segments(segs, false);
    ASSERT_GE(sd.size(), 2u);
    std::rotate(segs.begin() + static_cast<std::ptrdiff_t>(sd[0]),
                segs.begin() + static_cast<std::ptrdiff_t>(sd[0]) + 1,
                segs.begin() + static_cast<std::ptrdiff_t>(sd[0]) + 2);
    write_conversation(dir.file("o.pcap"), Link::Ethernet, c, segs);
    auto r = extract(dir.file("o.pcap"));
    expect_exchange(r, e);
    EXPECT_TRUE(r.gaps.empty()) << r.error_text();
    EXPECT_TRUE(r.errors.empty()) << r.error_text();
}

TEST(Capture, RetransmissionsAndOverlaps) {
    TempDir dir;
    auto e = make_exchange(3, 15000, 21);
    auto c = conversation(e, false, 40001, 1000);
    std::vector<Seg> segs;
    auto cd = data_segments(c.segs, true);
    for (std::size_t i = 0; i < c.segs.size(); ++i) {
        segs.push_back(c.segs[i]);
        const Seg& s = c.segs[i];
        if (s.payload.empty()) continue;
        if (i % 3 == 0) segs.push_back(s); // exact duplicate right away
        if (i % 5 == 0 && i + 1 < c.segs.size() && c.segs[i + 1].from_client == s.from_client &&
            !c.segs[i + 1].payload.empty()) {
            // Overlap: second half of this segment + first half of the next one.
            const Seg& next = c.segs[i + 1];
            Seg o = s;
            std::size_t h1 = s.payload.size() / 2, h2 = next.payload.size() / 2;
            o.seq = s.seq + static_cast<std::uint32_t>(h1);
            o.payload.assign(s.payload.begin() + static_cast<std::ptrdiff_t>(h1), s.payload.end());
            o.payload.insert(o.payload.end(), next.payload.begin(),
                             next.payload.begin() + static_cast<std::ptrdiff_t>(h2));
            segs.push_back(o);
        }
    }
    // A late retransmission of an early segment (after the FIN exchange started: ignored).
    segs.insert(segs.end() - 3, c.segs[cd[1]]);
    write_conversation(dir.file("r.pcap"), Link::Ethernet, c, segs);
    auto r = extract(dir.file("r.pcap"));
    expect_exchange(r, e);
    EXPECT_TRUE(r.gaps.empty()) << r.error_text();
    EXPECT_TRUE(r.errors.empty()) << r.error_text();
    EXPECT_GT(r.stats.retransmitted_bytes, 0u);
}

TEST(Capture, MissingSegmentIsReportedAndNextMessageParsed) {
    TempDir dir;
    auto e = make_exchange(3, 8000, 31);
    auto c = conversation(e, false, 40002, 1000);
    auto segs = c.segs;
    // Drop a segment in the middle of the second request's body.
    auto cd = data_segments(segs, true);
    std::size_t per = (post(e.requests[0]).size() + 999) / 1000;
    std::size_t victim = cd[per + 3];
    std::size_t lost = segs[victim].payload.size();
    segs.erase(segs.begin() + static_cast<std::ptrdiff_t>(victim));
    write_conversation(dir.file("g.pcap"), Link::Ethernet, c, segs);
    auto r = extract(dir.file("g.pcap"));
    ASSERT_EQ(r.gaps.size(), 1u) << r.error_text();
    EXPECT_EQ(r.gaps[0].bytes, lost);
    EXPECT_EQ(r.gaps[0].tuple.src.port, 40002);
    EXPECT_EQ(r.stats.gap_bytes, lost);
    // Request 2 is lost (reported), requests 1 and 3 and every response are intact.
    EXPECT_EQ(r.bodies(true), (std::vector<std::string>{e.requests[0], e.requests[2]}));
    EXPECT_EQ(r.bodies(false), e.responses);
    ASSERT_FALSE(r.errors.empty());
    EXPECT_NE(r.errors[0].text.find("dropped"), std::string::npos) << r.error_text();
    for (const auto& m : r.messages) {
        if (m.request && m.body == e.requests[2]) {
            EXPECT_TRUE(m.after_gap);
        }
    }
}

TEST(Capture, MissingHeaderSegmentResynchronises) {
    TempDir dir;
    auto e = make_exchange(3, 3000, 41);
    // Small segments so that a request's header block spans several of them.
    auto c = conversation(e, false, 40003, 64);
    auto segs = c.segs;
    auto cd = data_segments(segs, true);
    std::size_t per = (post(e.requests[0]).size() + 63) / 64;
    std::size_t victim = cd[per + 1]; // second segment of request 2 (inside its headers)
    segs.erase(segs.begin() + static_cast<std::ptrdiff_t>(victim));
    write_conversation(dir.file("h.pcap"), Link::Ethernet, c, segs);
    auto r = extract(dir.file("h.pcap"));
    ASSERT_EQ(r.gaps.size(), 1u);
    EXPECT_EQ(r.gaps[0].bytes, 64u);
    EXPECT_EQ(r.bodies(true), (std::vector<std::string>{e.requests[0], e.requests[2]}))
        << r.error_text();
    EXPECT_EQ(r.bodies(false), e.responses);
}

TEST(Capture, CaptureStartingMidConnection) {
    TempDir dir;
    auto e = make_exchange(4, 6000, 51);
    auto c = conversation(e, false, 40004, 1000);
    // Cut: start in the middle of the first request's body (no SYN).
    auto cd = data_segments(c.segs, true);
    std::vector<Seg> segs(c.segs.begin() + static_cast<std::ptrdiff_t>(cd[3]), c.segs.end());
    write_conversation(dir.file("m.pcap"), Link::Ethernet, c, segs);
    auto r = extract(dir.file("m.pcap"));
    EXPECT_EQ(r.bodies(true),
              (std::vector<std::string>{e.requests[1], e.requests[2], e.requests[3]}))
        << r.error_text();
    EXPECT_EQ(r.bodies(false), e.responses); // the first response is complete
    ASSERT_FALSE(r.messages.empty());
    EXPECT_TRUE(r.messages[0].after_gap);
    EXPECT_TRUE(r.gaps.empty());
}

TEST(Capture, ChunkedPipelinedHeadAndContinue) {
    TempDir dir;
    Conversation c(40005, 8080);
    c.handshake();
    std::string b1 = random_body(5000, 61), b2 = random_body(100, 62), b3 = "third";
    std::string chunked = "POST /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    chunked += "1000;ext=1\r\n" + b1.substr(0, 4096) + "\r\n";
    char hex[16];
    std::snprintf(hex, sizeof hex, "%zx", b1.size() - 4096);
    chunked += std::string(hex) + "\r\n" + b1.substr(4096) + "\r\n0\r\nX-Trailer: 1\r\n\r\n";
    // Two requests in one segment (pipelining), then a HEAD.
    std::string pipelined = post(b2, "/p1") + post(b3, "/p2") + "HEAD /h HTTP/1.1\r\n\r\n";
    c.send(true, to_bytes(chunked + pipelined), 700);
    std::string responses = "HTTP/1.1 100 Continue\r\n\r\n" + response("r1") + response("r2") +
                            response("r3") + "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n" +
                            "HTTP/1.1 204 No Content\r\n\r\n";
    c.send(false, to_bytes(responses), 50);
    c.send(true, to_bytes("GET /last HTTP/1.1\r\n\r\n"));
    c.send(false, to_bytes("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close"));
    c.close();
    write_conversation(dir.file("c.pcap"), Link::Sll2, c, c.segs);
    auto r = extract(dir.file("c.pcap"));
    EXPECT_TRUE(r.errors.empty()) << r.error_text();
    EXPECT_EQ(r.bodies(true), (std::vector<std::string>{b1, b2, b3, "", ""}));
    EXPECT_EQ(r.bodies(false),
              (std::vector<std::string>{"", "r1", "r2", "r3", "", "", "until close"}));
    ASSERT_EQ(r.messages.size(), 12u);
    EXPECT_TRUE(r.messages[0].chunked);
    std::vector<std::string> pairs;
    for (const auto& m : r.messages) {
        if (!m.request) pairs.push_back(std::to_string(m.request_index.value_or(99)));
    }
    // 100 Continue answers request 0 without consuming it; HEAD (3) gets a body-less 200; the
    // 204 has no request left to answer.
    EXPECT_EQ(pairs, (std::vector<std::string>{"0", "0", "1", "2", "3", "99", "4"}))
        << "responses paired in order";
}

TEST(Capture, InterleavedConnectionsAndPortReuse) {
    TempDir dir;
    auto e1 = make_exchange(3, 4000, 71), e2 = make_exchange(3, 4500, 81);
    auto c1 = conversation(e1, false, 50001), c2 = conversation(e2, false, 50002);
    {
        PcapWriter w(dir.file("i.pcap"), 1);
        std::size_t n = std::max(c1.segs.size(), c2.segs.size());
        for (std::size_t i = 0; i < n; ++i) {
            if (i < c1.segs.size())
                w.write(c1.segs[i].time_ns, frame(Link::Ethernet, c1, c1.segs[i]));
            if (i < c2.segs.size())
                w.write(c2.segs[i].time_ns, frame(Link::Ethernet, c2, c2.segs[i]));
        }
        // The same 4-tuple again with a new ISN after the first connection closed.
        Conversation c3(50001, 5985, false, 77777);
        c3.handshake();
        c3.send(true, to_bytes(post("again")));
        c3.send(false, to_bytes(response("ok")));
        c3.rst(true);
        for (const auto& s : c3.segs)
            w.write(s.time_ns, frame(Link::Ethernet, c3, s));
    }
    auto r = extract(dir.file("i.pcap"));
    EXPECT_TRUE(r.errors.empty()) << r.error_text();
    EXPECT_EQ(r.stats.connections, 3u);
    std::map<std::uint16_t, std::vector<std::string>> by_port;
    for (const auto& m : r.messages) {
        if (m.request) by_port[m.tuple.src.port].push_back(m.body);
    }
    auto want1 = e1.requests;
    want1.push_back("again");
    EXPECT_EQ(by_port[50001], want1);
    EXPECT_EQ(by_port[50002], e2.requests);
}

TEST(Capture, LimitsOversizedBodyAndHeaders) {
    TempDir dir;
    Conversation c(40006, 5985);
    c.handshake();
    std::string big = random_body(50000, 91);
    c.send(true, to_bytes(post(big) + post("small")));
    c.send(false, to_bytes(response("a") + response("b")));
    std::string huge_header =
        "POST /x HTTP/1.1\r\nX-Big: " + std::string(5000, 'a') + "\r\nContent-Length: 0\r\n\r\n";
    c.send(true, to_bytes(huge_header + post("after")));
    c.close();
    write_conversation(dir.file("b.pcap"), Link::Ethernet, c, c.segs);
    cap::Limits limits;
    limits.max_body_bytes = 10000;
    limits.max_header_bytes = 2000;
    auto r = extract(dir.file("b.pcap"), limits);
    EXPECT_EQ(r.bodies(true), (std::vector<std::string>{"small", "after"})) << r.error_text();
    EXPECT_EQ(r.bodies(false), (std::vector<std::string>{"a", "b"}));
    ASSERT_GE(r.errors.size(), 2u);
    EXPECT_NE(r.errors[0].text.find("exceeds the limit of 10000"), std::string::npos);
    EXPECT_NE(r.error_text().find("headers exceed the limit of 2000"), std::string::npos);
}

TEST(Capture, NonHttpConnectionIsIgnored) {
    TempDir dir;
    Conversation c(40007, 443);
    c.handshake();
    c.send(true, to_bytes(random_body(20000, 5) + "\r\n\r\n"));
    c.send(false, to_bytes(random_body(20000, 6)));
    c.close();
    write_conversation(dir.file("n.pcap"), Link::Ethernet, c, c.segs);
    auto r = extract(dir.file("n.pcap"));
    EXPECT_TRUE(r.messages.empty());
    EXPECT_TRUE(r.errors.empty()) << r.error_text();
    EXPECT_EQ(r.stats.connections, 1u);
}

TEST(Capture, GzipPcapngTruncatedAndStdin) {
    TempDir dir;
    auto e = make_exchange(3, 7000, 101);
    auto c = conversation(e);
    std::string plain = dir.file("p.pcap");
    write_conversation(plain, Link::Ethernet, c, c.segs);
    std::ifstream in(plain, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

    gzFile gz = gzopen(dir.file("p.pcap.gz").c_str(), "wb");
    ASSERT_NE(gz, nullptr);
    ASSERT_EQ(gzwrite(gz, data.data(), static_cast<unsigned>(data.size())),
              static_cast<int>(data.size()));
    gzclose(gz);
    expect_exchange(extract(dir.file("p.pcap.gz")), e);

    // pcapng (converted with editcap when available).
    if (std::system(
            ("editcap -F pcapng " + plain + " " + dir.file("p.pcapng") + " 2>/dev/null").c_str()) ==
        0) {
        auto r = extract(dir.file("p.pcapng"));
        expect_exchange(r, e);
    } else {
        ADD_FAILURE() << "editcap not available to produce a pcapng file";
    }

    // Cut 70 bytes before the end (inside a record header): reported as damage with its offset,
    // earlier messages still there.
    std::ofstream(dir.file("t.pcap"), std::ios::binary) << data.substr(0, data.size() - 70);
    auto r = extract(dir.file("t.pcap"));
    EXPECT_EQ(r.bodies(true), e.requests);
    ASSERT_EQ(r.errors.size(), 1u) << r.error_text();
    EXPECT_EQ(r.errors[0].kind, cap::NoteKind::Damage);
    EXPECT_EQ(r.errors[0].damage, cap::DamageKind::TruncatedHeader) << r.error_text();
    // The header starts at `offset`; `bytes` of it are in the file, up to its end.
    EXPECT_EQ(r.errors[0].offset + r.errors[0].bytes, data.size() - 70);
    EXPECT_NE(r.error_text().find("the file ends inside its header"), std::string::npos);
    EXPECT_EQ(r.stats.damaged, 1u);

    // Standard input, gzip-compressed and plain.
    for (const char* name : {"p.pcap.gz", "p.pcap"}) {
        SCOPED_TRACE(name);
        int saved = dup(0);
        int fd = open(dir.file(name).c_str(), O_RDONLY);
        ASSERT_GE(fd, 0);
        dup2(fd, 0);
        close(fd);
        Result rs;
        rs.stats = cap::extract_http("-", collect(rs));
        dup2(saved, 0);
        close(saved);
        expect_exchange(rs, e);
    }

    EXPECT_THROW(extract(dir.file("missing.pcap")), cap::CaptureError);
    std::ofstream(dir.file("junk.bin"), std::ios::binary) << "this is not a capture at all";
    EXPECT_THROW(extract(dir.file("junk.bin")), cap::CaptureError);
}

namespace {

// Splits an IPv4 packet (20-byte header) into fragments of `piece` payload bytes.
std::vector<Bytes> fragment(const Bytes& ip, std::size_t piece) {
    std::vector<Bytes> out;
    std::size_t payload = ip.size() - 20;
    for (std::size_t off = 0; off < payload; off += piece) {
        std::size_t n = std::min(piece, payload - off);
        Bytes f(ip.begin(), ip.begin() + 20);
        f.insert(f.end(), ip.begin() + 20 + static_cast<std::ptrdiff_t>(off),
                 ip.begin() + 20 + static_cast<std::ptrdiff_t>(off + n));
        f[2] = static_cast<std::uint8_t>(f.size() >> 8);
        f[3] = static_cast<std::uint8_t>(f.size());
        std::uint16_t frag = static_cast<std::uint16_t>(off / 8) | (off + n < payload ? 0x2000 : 0);
        f[6] = static_cast<std::uint8_t>(frag >> 8);
        f[7] = static_cast<std::uint8_t>(frag);
        out.push_back(std::move(f));
    }
    return out;
}

} // namespace

TEST(Capture, Ipv4FragmentsAreReassembled) {
    TempDir dir;
    std::string body = random_body(3000, 77);
    {
        PcapWriter w(dir.file("f.pcap"), 101);
        Conversation c(40010, 5985);
        c.handshake();
        c.send(true, to_bytes(post(body)), 4000); // one 3.2 KB segment
        c.send(false, to_bytes(response("ok")));
        c.close();
        for (const auto& s : c.segs) {
            Bytes ip = ip_packet(c, s);
            if (s.payload.size() < 1000) {
                w.write(s.time_ns, ip);
                continue;
            }
            auto frags = fragment(ip, 1000);
            ASSERT_EQ(frags.size(), 4u);
            std::swap(frags[1], frags[3]); // out of order
            for (const auto& f : frags)
                w.write(s.time_ns, f);
        }
        // A datagram whose other fragments never come.
        Conversation lone(1, 2);
        lone.handshake();
        lone.send(true, to_bytes(post(random_body(2000, 78))), 4000);
        w.write(lone.segs[3].time_ns, fragment(ip_packet(lone, lone.segs[3]), 1000)[0]);
    }
    auto r = extract(dir.file("f.pcap"));
    EXPECT_EQ(r.bodies(true), std::vector<std::string>{body}) << r.error_text();
    EXPECT_EQ(r.bodies(false), std::vector<std::string>{"ok"});
    EXPECT_EQ(r.stats.ip_fragments, 5u);
    EXPECT_EQ(r.stats.ip_reassembled, 1u);
    EXPECT_NE(r.error_text().find("1 IPv4 datagrams were left incomplete"), std::string::npos)
        << r.error_text();
}

TEST(Capture, ConnectionsAreBounded) {
    TempDir dir;
    {
        PcapWriter w(dir.file("many.pcap"), 101);
        // Many connections, each leaving one request: with max_connections = 10, evictions
        // happen and every request still comes out.
        for (std::uint16_t p = 0; p < 50; ++p) {
            Conversation c(static_cast<std::uint16_t>(20000 + p), 80);
            c.handshake();
            c.send(true, to_bytes(post("body" + std::to_string(p))));
            for (const auto& s : c.segs)
                w.write(s.time_ns, ip_packet(c, s));
        }
    }
    cap::Limits limits;
    limits.max_connections = 10;
    auto r = extract(dir.file("many.pcap"), limits);
    EXPECT_EQ(r.stats.connections, 50u);
    EXPECT_EQ(r.stats.evicted_connections, 40u);
    EXPECT_EQ(r.stats.requests, 50u);
}

TEST(Capture, StreamParserDirectFeedByteByByte) {
    struct Sink : cap::HttpSink {
        std::vector<std::string> bodies;
        std::vector<std::string> notes;
        void on_message(const cap::HttpMessage& m) override {
            bodies.emplace_back(m.body.begin(), m.body.end());
        }
        void on_note(const cap::Note& n) override { notes.push_back(n.text); }
    } sink;
    cap::Limits limits;
    cap::HttpStreamParser p(sink, limits);
    std::string stream = post("one") + "\r\n" + post(random_body(3000, 3)) + post("three");
    for (char ch : stream) {
        auto b = static_cast<std::uint8_t>(ch);
        p.feed(std::span<const std::uint8_t>(&b, 1), 0);
    }
    p.finish(0);
    ASSERT_EQ(sink.bodies.size(), 3u);
    EXPECT_EQ(sink.bodies[0], "one");
    EXPECT_EQ(sink.bodies[1], random_body(3000, 3));
    EXPECT_EQ(sink.bodies[2], "three");
    EXPECT_TRUE(sink.notes.empty());

    // After a gap inside a body with a known length, the next message is found without search.
    cap::HttpStreamParser q(sink, limits);
    std::string m1 = post(std::string(1000, 'x'));
    std::string m2 = post("next");
    q.feed(wec::as_bytes(std::string_view(m1).substr(0, 400)), 0);
    q.gap(100, 0);
    q.feed(wec::as_bytes(std::string_view(m1).substr(500)), 0);
    q.feed(wec::as_bytes(m2), 0);
    EXPECT_EQ(sink.bodies.back(), "next");
}

// A kept-alive connection gives back the storage of its body and header block after each
// message (http_stream.cpp, emit): the next messages, large or small, fed in one piece
// or in segments, still come out whole with their own headers.
TEST(Capture, StreamParserReleasesBuffersBetweenMessages) {
    struct Sink : cap::HttpSink {
        std::vector<std::string> bodies, agents;
        std::vector<std::string> notes;
        void on_message(const cap::HttpMessage& m) override {
            bodies.emplace_back(m.body.begin(), m.body.end());
            agents.emplace_back(m.header("X-Agent").value_or(""));
        }
        void on_note(const cap::Note& n) override { notes.push_back(n.text); }
    };
    auto with_agent = [](std::string message, const std::string& agent) {
        return message.insert(message.find("\r\n") + 2, "X-Agent: " + agent + "\r\n");
    };
    const std::string big_header(6000, 'h');
    const std::vector<std::string> bodies = {
        random_body(200000, 1), "small", random_body(5000, 2), "", random_body(70000, 3), "last"};
    const std::vector<std::string> agents = {"a", big_header, "c", big_header, "e", "f"};
    std::string stream;
    for (std::size_t i = 0; i < bodies.size(); ++i)
        stream += with_agent(post(bodies[i]), agents[i]);
    // Chunked, after the large bodies: the body grows from released storage.
    stream += with_agent("POST /wsman HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "1000\r\n" +
                             std::string(4096, 'c') + "\r\n3\r\nend\r\n0\r\n\r\n",
                         "chunked");
    for (std::size_t piece : {stream.size(), std::size_t{1448}, std::size_t{7}}) {
        SCOPED_TRACE(piece);
        Sink sink;
        cap::Limits limits;
        cap::HttpStreamParser p(sink, limits);
        for (std::size_t off = 0; off < stream.size(); off += piece)
            p.feed(wec::as_bytes(std::string_view(stream).substr(off, piece)), 0);
        p.finish(0);
        ASSERT_EQ(sink.bodies.size(), bodies.size() + 1);
        for (std::size_t i = 0; i < bodies.size(); ++i) {
            EXPECT_EQ(sink.bodies[i], bodies[i]) << i;
            EXPECT_EQ(sink.agents[i], agents[i]) << i;
        }
        EXPECT_EQ(sink.bodies.back(), std::string(4096, 'c') + "end");
        EXPECT_EQ(sink.agents.back(), "chunked");
        EXPECT_TRUE(sink.notes.empty());
    }
}

TEST(Capture, DetectFileKind) {
    auto kind = [](std::string_view s) { return cap::detect_file_kind(wec::as_bytes(s)); };
    EXPECT_EQ(kind(std::string_view("\xd4\xc3\xb2\xa1\x02\x00", 6)), cap::FileKind::Pcap);
    EXPECT_EQ(kind(std::string_view("\x4d\x3c\xb2\xa1", 4)), cap::FileKind::Pcap);
    EXPECT_EQ(kind(std::string_view("\x0a\x0d\x0d\x0a\x1c\x00", 6)), cap::FileKind::Pcapng);
    EXPECT_EQ(kind("\x1f\x8b\x08"), cap::FileKind::Gzip);
    EXPECT_EQ(kind("\xff\xa8\x12\x34"), cap::FileKind::Sldc); // Reset 1
    EXPECT_EQ(kind(std::string_view("\xff\xfe<\0s\0:\0", 8)), cap::FileKind::Utf16Xml);
    EXPECT_EQ(kind(std::string_view("<\0?\0x\0", 6)), cap::FileKind::Utf16Xml);
    EXPECT_EQ(kind("\xef\xbb\xbf<?xml version=\"1.0\"?>"), cap::FileKind::Utf8Xml);
    EXPECT_EQ(kind("  \r\n<s:Envelope>"), cap::FileKind::Utf8Xml);
    EXPECT_EQ(kind("--Encrypted Boundary\r\n"), cap::FileKind::MultipartEncrypted);
    // Damaged magic numbers: still a capture, told by the pcap version or the pcapng byte order.
    EXPECT_EQ(kind(std::string_view("\xd4\xc3\x00\xa1\x02\x00\x04\x00", 8)), cap::FileKind::Pcap);
    EXPECT_EQ(kind(std::string_view("\x0b\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a", 12)),
              cap::FileKind::Pcapng);
    EXPECT_EQ(kind("hello"), cap::FileKind::Unknown);
    EXPECT_EQ(kind(""), cap::FileKind::Unknown);
    EXPECT_EQ(cap::to_string(cap::FileKind::Utf16Xml), "utf16-xml");

    // The repository's SLDC sample is detected as SLDC.
    std::ifstream in(std::string(WEC_SOURCE_DIR) + "/tests/fuzz/sldc/corpus/heartbeat.sldc",
                     std::ios::binary);
    if (in) {
        std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        EXPECT_EQ(kind(s), cap::FileKind::Sldc);
    }
}

namespace {

// A pcapng writer: sections of either byte order, interfaces with their own link type, timestamp
// resolution and offset, enhanced and simple packet blocks, and blocks a reader must skip.
class PcapngWriter {
public:
    Bytes out;
    std::vector<std::size_t> blocks; // offset of each block

    void section(bool big) {
        big_ = big;
        Bytes b;
        u32(b, 0x1A2B3C4D);
        u16(b, 1);
        u16(b, 0);
        u32(b, 0xffffffff);
        u32(b, 0xffffffff);
        block(0x0A0D0D0A, b);
    }
    // tsresol: the if_tsresol byte (-1: none, microseconds); tsoffset in seconds (0: none).
    void interface(std::uint16_t linktype, int tsresol = -1, std::int64_t tsoffset = 0) {
        Bytes b;
        u16(b, linktype);
        u16(b, 0);
        u32(b, 262144);
        if (tsresol >= 0) {
            u16(b, 9);
            u16(b, 1);
            b.push_back(static_cast<std::uint8_t>(tsresol));
            b.insert(b.end(), 3, 0);
        }
        if (tsoffset != 0) {
            u16(b, 14);
            u16(b, 8);
            auto v = static_cast<std::uint64_t>(tsoffset);
            if (big_) {
                u32(b, static_cast<std::uint32_t>(v >> 32));
                u32(b, static_cast<std::uint32_t>(v));
            } else {
                u32(b, static_cast<std::uint32_t>(v));
                u32(b, static_cast<std::uint32_t>(v >> 32));
            }
        }
        u16(b, 0); // opt_endofopt
        u16(b, 0);
        block(1, b);
    }
    void packet(std::uint32_t iface, std::uint64_t ticks, const Bytes& data) {
        Bytes b;
        u32(b, iface);
        u32(b, static_cast<std::uint32_t>(ticks >> 32));
        u32(b, static_cast<std::uint32_t>(ticks));
        u32(b, static_cast<std::uint32_t>(data.size()));
        u32(b, static_cast<std::uint32_t>(data.size()));
        b.insert(b.end(), data.begin(), data.end());
        b.insert(b.end(), (4 - data.size() % 4) % 4, 0);
        block(6, b);
    }
    void simple(const Bytes& data) {
        Bytes b;
        u32(b, static_cast<std::uint32_t>(data.size()));
        b.insert(b.end(), data.begin(), data.end());
        b.insert(b.end(), (4 - data.size() % 4) % 4, 0);
        block(3, b);
    }
    void other(std::uint32_t type, std::size_t size) { block(type, Bytes(size, 0x5a)); }
    void save(const std::string& path) const {
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(out.data()),
                   static_cast<std::streamsize>(out.size()));
    }

private:
    void u16(Bytes& b, std::uint16_t v) const {
        if (big_) {
            put16(b, v);
        } else {
            b.push_back(static_cast<std::uint8_t>(v));
            b.push_back(static_cast<std::uint8_t>(v >> 8));
        }
    }
    void u32(Bytes& b, std::uint32_t v) const {
        if (big_) {
            put32(b, v);
        } else {
            put32le(b, v);
        }
    }
    void block(std::uint32_t type, const Bytes& body) {
        blocks.push_back(out.size());
        auto len = static_cast<std::uint32_t>(12 + body.size());
        u32(out, type);
        u32(out, len);
        out.insert(out.end(), body.begin(), body.end());
        u32(out, len);
    }
    bool big_ = false;
};

} // namespace

// pcapng as libpcap could not read it: two sections of opposite byte orders, interfaces with
// different link types, nanosecond resolution and a timestamp offset, simple packet blocks and
// blocks to skip. Every message is found, with the time of its packets.
TEST(Capture, PcapngSectionsInterfacesAndResolutions) {
    TempDir dir;
    auto e1 = make_exchange(2, 3000, 31);
    auto c1 = conversation(e1);
    auto e2 = make_exchange(2, 2000, 41);
    auto c2 = conversation(e2, true, 50000);
    constexpr std::int64_t kOffset = 1600000000; // seconds (if_tsoffset of interface 1)
    PcapngWriter w;
    w.section(false);
    w.interface(1);               // 0: Ethernet, microseconds
    w.interface(228, 9, kOffset); // 1: raw IPv4, nanoseconds, offset
    w.other(4, 16);               // name resolution block: skipped
    for (const auto& seg : c1.segs) {
        if (seg.from_client) {
            w.packet(0, static_cast<std::uint64_t>(seg.time_ns / 1000),
                     frame(Link::Ethernet, c1, seg));
        } else {
            w.packet(1, static_cast<std::uint64_t>(seg.time_ns - kOffset * 1000000000LL),
                     ip_packet(c1, seg));
        }
    }
    w.other(0x40000BAD, 20);     // custom block: skipped
    w.section(true);             // big-endian section: interfaces start again
    w.interface(276, 0x80 | 20); // SLL2, 2^-20 s
    for (std::size_t i = 0; i < c2.segs.size(); ++i) {
        const auto& seg = c2.segs[i];
        auto sec = static_cast<std::uint64_t>(seg.time_ns / 1000000000LL);
        auto ns = static_cast<std::uint64_t>(seg.time_ns % 1000000000LL);
        std::uint64_t ticks = (sec << 20) + (ns << 20) / 1000000000ULL;
        if (i == 0) {
            w.simple(frame(Link::Sll2, c2, seg)); // no timestamp of its own
        } else {
            w.packet(0, ticks, frame(Link::Sll2, c2, seg));
        }
    }
    w.save(dir.file("multi.pcapng"));

    auto reader = cap::CaptureReader::open(dir.file("multi.pcapng"));
    EXPECT_EQ(reader.linktype(), 1); // of the first interface
    auto r = extract(dir.file("multi.pcapng"));
    EXPECT_TRUE(r.errors.empty()) << r.error_text();
    EXPECT_TRUE(r.gaps.empty()) << r.error_text();
    EXPECT_EQ(r.stats.damaged, 0u);
    EXPECT_EQ(r.stats.packets, c1.segs.size() + c2.segs.size());
    std::vector<std::string> requests, responses;
    for (const auto& m : r.messages)
        (m.request ? requests : responses).push_back(m.body);
    std::vector<std::string> want_req = e1.requests, want_resp = e1.responses;
    want_req.insert(want_req.end(), e2.requests.begin(), e2.requests.end());
    want_resp.insert(want_resp.end(), e2.responses.begin(), e2.responses.end());
    EXPECT_EQ(requests, want_req);
    EXPECT_EQ(responses, want_resp);
    // Times: interface 0 in microseconds, interface 1 in nanoseconds plus its offset.
    auto first_response = data_segments(c1.segs, false).front();
    auto first_request = data_segments(c1.segs, true).front();
    for (const auto& m : r.messages) {
        if (m.connection != 1 || m.index != 0) continue;
        EXPECT_EQ(m.first,
                  m.request ? c1.segs[first_request].time_ns : c1.segs[first_response].time_ns);
    }
}

// Damage the reader reports itself (file offset, record number) and resynchronises past.
TEST(Capture, DamagedPcapIsReportedAndResynchronised) {
    TempDir dir;
    auto e = make_exchange(3, 5000, 51);
    auto c = conversation(e);
    write_conversation(dir.file("p.pcap"), Link::Ethernet, c, c.segs);
    std::ifstream in(dir.file("p.pcap"), std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Offsets of the records.
    std::vector<std::size_t> offsets;
    for (std::size_t off = 24; off + 16 <= data.size();) {
        offsets.push_back(off);
        auto caplen = static_cast<std::uint32_t>(static_cast<std::uint8_t>(data[off + 8])) |
                      static_cast<std::uint32_t>(static_cast<std::uint8_t>(data[off + 9])) << 8 |
                      static_cast<std::uint32_t>(static_cast<std::uint8_t>(data[off + 10])) << 16;
        off += 16 + caplen;
    }
    // Garbage inserted before the first record of the second request: the length of record N
    // (the one before) now leads into it.
    std::size_t n = data_segments(c.segs, true)[5]; // a data segment in the middle
    std::string junk(1000, '\x99');
    std::string bad = data.substr(0, offsets[n]) + junk + data.substr(offsets[n]);
    std::ofstream(dir.file("bad.pcap"), std::ios::binary) << bad;
    auto r = extract(dir.file("bad.pcap"));
    ASSERT_EQ(r.errors.size(), 1u) << r.error_text();
    const auto& d = r.errors[0];
    EXPECT_EQ(d.kind, cap::NoteKind::Damage);
    EXPECT_EQ(d.damage, cap::DamageKind::BadLength);
    EXPECT_EQ(d.offset, offsets[n]);
    EXPECT_EQ(d.record, n + 1);
    EXPECT_EQ(d.bytes, junk.size());
    EXPECT_NE(d.text.find("resynchronised at offset " + std::to_string(offsets[n] + junk.size())),
              std::string::npos)
        << d.text;
    EXPECT_EQ(r.stats.damaged, 1u);
    EXPECT_EQ(r.stats.skipped_bytes, junk.size());
    expect_exchange(r, e); // nothing lost: the junk was between two records

    // Nothing valid after a bad length: the rest is reported unreadable.
    std::string tail = data.substr(0, offsets[n]) + std::string(5000, '\xee');
    std::ofstream(dir.file("tail.pcap"), std::ios::binary) << tail;
    auto t = extract(dir.file("tail.pcap"));
    std::vector<cap::Note> damage;
    for (const auto& note : t.errors)
        if (note.kind == cap::NoteKind::Damage) damage.push_back(note);
    ASSERT_EQ(damage.size(), 1u) << t.error_text();
    EXPECT_EQ(damage[0].damage, cap::DamageKind::BadLength);
    EXPECT_EQ(damage[0].offset, offsets[n]);
    EXPECT_NE(damage[0].text.find("the remaining 5000 bytes are unreadable"), std::string::npos)
        << damage[0].text;
    EXPECT_EQ(t.stats.skipped_bytes, 5000u);
}

// Regression (decode fuzzer): the views of a message (start line, method, target, reason, headers)
// must point at the message's own header text. A response parsed after a request and a resync
// whose window grew (reallocated) used to carry the request's method and target as views into the
// freed window.
TEST(Capture, MessageViewsSurviveResyncAndBufferGrowth) {
    struct Seen {
        std::string start_line, method, target, version, reason;
        int status = 0;
        std::vector<std::pair<std::string, std::string>> headers;
        std::string body;
        bool after_gap = false;
    };
    struct Sink : cap::HttpSink {
        std::vector<Seen> seen;
        std::vector<std::string> notes;
        void on_message(const cap::HttpMessage& m) override {
            Seen s; // copies every view: ASan reports any that points into freed memory
            s.start_line = std::string(m.start_line);
            s.method = std::string(m.method);
            s.target = std::string(m.target);
            s.version = std::string(m.version);
            s.reason = std::string(m.reason);
            s.status = m.status;
            for (const auto& h : m.headers)
                s.headers.emplace_back(h.name, h.value);
            s.body.assign(m.body.begin(), m.body.end());
            s.after_gap = m.after_gap;
            seen.push_back(std::move(s));
        }
        void on_note(const cap::Note& n) override { notes.push_back(n.text); }
    } sink;
    cap::Limits limits;
    cap::HttpStreamParser p(sink, limits);
    auto feed = [&p](std::string_view s, std::size_t piece) {
        for (std::size_t i = 0; i < s.size(); i += piece)
            p.feed(wec::as_bytes(s.substr(i, piece)), 0);
    };
    using Headers = std::vector<std::pair<std::string, std::string>>;

    // A request, then a request with a broken header line: resynchronise.
    feed("GET /first/target HTTP/1.1\r\nHost: a\r\n\r\n", 7);
    feed("POST /broken HTTP/1.1\r\nno colon here\r\n\r\n", 5);
    // Noise grows the resync window well past its first allocation (it is reallocated).
    std::string noise;
    while (noise.size() < 40000)
        noise += "noise that is not HTTP " + std::to_string(noise.size()) + "\r\n";
    feed(noise, 1000);
    // The response found by the resync has a body fed in small pieces (the body buffer grows).
    std::string body = random_body(5000, 8);
    feed("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\nX-Kept: intact value\r\n\r\n" + body,
         37);
    // A request after a response must not inherit the response's reason phrase (and vice versa).
    feed("HTTP/1.1 404 Not Found Here\r\nContent-Length: 0\r\n\r\n", 3);
    feed("PUT /" + std::string(3000, 'p') +
             " HTTP/1.1\r\nContent-Length: 2\r\nX-Big: " + std::string(5000, 'h') + "\r\n\r\nok",
         11);
    p.finish(0);

    ASSERT_EQ(sink.seen.size(), 4u);
    const Seen& get = sink.seen[0];
    EXPECT_EQ(get.start_line, "GET /first/target HTTP/1.1");
    EXPECT_EQ(get.method, "GET");
    EXPECT_EQ(get.target, "/first/target");
    EXPECT_EQ(get.headers, (Headers{{"Host", "a"}}));

    const Seen& ok = sink.seen[1];
    EXPECT_TRUE(ok.after_gap);
    EXPECT_EQ(ok.start_line, "HTTP/1.1 200 OK");
    EXPECT_EQ(ok.version, "HTTP/1.1");
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.reason, "OK");
    EXPECT_EQ(ok.method, "");
    EXPECT_EQ(ok.target, "");
    EXPECT_EQ(ok.headers, (Headers{{"Content-Length", std::to_string(body.size())},
                                   {"X-Kept", "intact value"}}));
    EXPECT_EQ(ok.body, body);

    const Seen& not_found = sink.seen[2];
    EXPECT_EQ(not_found.start_line, "HTTP/1.1 404 Not Found Here");
    EXPECT_EQ(not_found.reason, "Not Found Here");
    EXPECT_EQ(not_found.method, "");

    const Seen& put = sink.seen[3];
    EXPECT_EQ(put.start_line, "PUT /" + std::string(3000, 'p') + " HTTP/1.1");
    EXPECT_EQ(put.method, "PUT");
    EXPECT_EQ(put.target, "/" + std::string(3000, 'p'));
    EXPECT_EQ(put.status, 0);
    EXPECT_EQ(put.reason, "");
    EXPECT_EQ(put.headers, (Headers{{"Content-Length", "2"}, {"X-Big", std::string(5000, 'h')}}));
    EXPECT_EQ(put.body, "ok");

    bool resynced = false;
    for (const auto& n : sink.notes)
        resynced = resynced || n.find("resynchronised") != std::string::npos;
    EXPECT_TRUE(resynced);
}

// The PROXY protocol header parser: the examples of HAProxy's specification (versions 1 and 2),
// headers cut at every byte (Incomplete until whole), and the malformed ones a listener refuses.
#include "server/proxy_protocol.hpp"

#include <gtest/gtest.h>
#include <string>

namespace proxy = wec::server::proxy;

namespace {

proxy::Result parse(const std::string& bytes) {
    return proxy::parse({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
}

const std::string kSig("\r\n\r\n\0\r\nQUIT\n", 12);

TEST(ProxyProtocol, V1Tcp4AndTcp6) {
    auto r = parse("PROXY TCP4 192.0.2.7 10.0.0.1 51000 5985\r\nGET / HTTP/1.1\r\n");
    ASSERT_EQ(r.status, proxy::Status::Complete) << r.error;
    EXPECT_EQ(r.length, 42u);
    EXPECT_EQ(r.header.version, 1);
    EXPECT_FALSE(r.header.local);
    EXPECT_EQ(r.header.source_address, "192.0.2.7");
    EXPECT_EQ(r.header.source_port, 51000);
    EXPECT_EQ(r.header.destination_address, "10.0.0.1");
    EXPECT_EQ(r.header.destination_port, 5985);

    r = parse("PROXY TCP6 2001:DB8:0:0::1 2001:db8::2 65535 1\r\n");
    ASSERT_EQ(r.status, proxy::Status::Complete) << r.error;
    EXPECT_EQ(r.header.source_address, "2001:db8::1") << "canonical form";
    EXPECT_EQ(r.header.source_port, 65535);

    // The longest v1 header (107 bytes with its CRLF), and the longest with addresses.
    const std::string longest = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    ASSERT_EQ(longest.size(), proxy::kMaxV1Bytes);
    EXPECT_EQ(parse(longest).status, proxy::Status::Complete);
    EXPECT_EQ(parse("PROXY TCP6" + longest.substr(13)).status, proxy::Status::Complete);
}

TEST(ProxyProtocol, V1UnknownKeepsTheConnectionsAddress) {
    for (const char* h : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"}) {
        auto r = parse(h);
        ASSERT_EQ(r.status, proxy::Status::Complete) << h;
        EXPECT_TRUE(r.header.local);
        EXPECT_TRUE(r.header.source_address.empty());
    }
}

TEST(ProxyProtocol, V2Tcp4Tcp6LocalAndTlvs) {
    std::string v4 = kSig + std::string("\x21\x11\x00\x0c", 4) +
                     std::string("\xc0\x00\x02\x07\x0a\x00\x00\x01\xc7\x38\x17\x5d", 12);
    auto r = parse(v4 + "rest");
    ASSERT_EQ(r.status, proxy::Status::Complete) << r.error;
    EXPECT_EQ(r.length, 28u);
    EXPECT_EQ(r.header.version, 2);
    EXPECT_EQ(r.header.source_address, "192.0.2.7");
    EXPECT_EQ(r.header.source_port, 51000);
    EXPECT_EQ(r.header.destination_address, "10.0.0.1");
    EXPECT_EQ(r.header.destination_port, 5981);

    std::string v6 = kSig + std::string("\x21\x21\x00\x2b", 4) +
                     std::string("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x42", 16) +
                     std::string("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16) +
                     std::string("\x01\xbb\x17\x5d", 4) + std::string("\x05\x00\x04", 3) + "abcd";
    r = parse(v6);
    ASSERT_EQ(r.status, proxy::Status::Complete) << r.error;
    EXPECT_EQ(r.length, v6.size()) << "TLVs are part of the header";
    EXPECT_EQ(r.header.source_address, "2001:db8::42");
    EXPECT_EQ(r.header.source_port, 443);

    r = parse(kSig + std::string("\x20\x00\x00\x00", 4));
    ASSERT_EQ(r.status, proxy::Status::Complete);
    EXPECT_TRUE(r.header.local) << "LOCAL: a health check of the balancer";
    // LOCAL with an address block: skipped, still local.
    r = parse(kSig + std::string("\x20\x11\x00\x0c", 4) + std::string(12, '\x01'));
    ASSERT_EQ(r.status, proxy::Status::Complete);
    EXPECT_TRUE(r.header.local);
    EXPECT_EQ(r.length, 28u);
    // AF_UNIX: no address we can use.
    r = parse(kSig + std::string("\x21\x31\x00\xd8", 4) + std::string(216, 'u'));
    ASSERT_EQ(r.status, proxy::Status::Complete);
    EXPECT_TRUE(r.header.local);
}

TEST(ProxyProtocol, EveryPrefixOfAHeaderIsIncomplete) {
    const std::string headers[] = {
        "PROXY TCP4 192.0.2.7 10.0.0.1 51000 5985\r\n",
        kSig + std::string("\x21\x11\x00\x0c", 4) + std::string(12, '\x07'),
    };
    for (const auto& h : headers)
        for (std::size_t n = 0; n < h.size(); ++n)
            EXPECT_EQ(parse(h.substr(0, n)).status, proxy::Status::Incomplete) << n;
}

TEST(ProxyProtocol, MalformedHeadersAreInvalidWithAReason) {
    const std::string bad[] = {
        "POST /wsman HTTP/1.1\r\n",                       // no header at all
        std::string("\x16\x03\x01\x02\x00", 5),           // a TLS ClientHello
        "PROXY TCP4 192.0.2.7 10.0.0.1 51000\r\n",        // 4 fields
        "PROXY TCP4 192.0.2.7 10.0.0.1 51000 5985 9\r\n", // 6 fields
        "PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n",        // v6 address under TCP4
        "PROXY TCP4 192.0.2.7 10.0.0.1 051000 5985\r\n",  // leading zero
        "PROXY TCP4 192.0.2.7 10.0.0.1 65536 5985\r\n",   // port out of range
        "PROXY UDP4 192.0.2.7 10.0.0.1 1 2\r\n",          // not TCP
        "PROXY TCP4 192.0.2.7\n",                         // LF without CR
        "PROXY " + std::string(120, 'x'),                 // longer than 107 without CRLF
        kSig + std::string("\x11\x11\x00\x0c", 4),        // version 1 in a v2 header
        kSig + std::string("\x22\x11\x00\x0c", 4),        // command 2
        kSig + std::string("\x21\x12\x00\x0c", 4) + std::string(12, 'x'), // UDP
        kSig + std::string("\x21\x11\x00\x04", 4) + "abcd", // IPv4 without room for addresses
        kSig + std::string("\x21\x11\xff\xff", 4),          // 64 KiB of TLVs
        std::string("\r\n\r\n\0\r\nQUAT\n", 12),            // almost the signature
    };
    for (const auto& b : bad) {
        auto r = parse(b);
        EXPECT_EQ(r.status, proxy::Status::Invalid) << b;
        EXPECT_FALSE(r.error.empty()) << b;
    }
    EXPECT_NE(parse("GET / HTTP/1.1\r\n").error.find("does not start with a PROXY"),
              std::string::npos);
}

} // namespace

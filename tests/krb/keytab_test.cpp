// Keytab parsing: a keytab written by kadmin ktadd (two principals, kvno 1 and 2, aes256/aes128),
// hand-built version 1 and 2 files, holes, 32-bit kvnos, and every truncation.
#include "krb/keytab.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

namespace wec::krb {
namespace {

using test::data_path;
using test::slurp;
using test::unhex;
using Bytes = std::vector<std::uint8_t>;

TEST(Keytab, ParsesKtaddOutput) {
    // klist -kte -K tests/data/krb/http-multi.keytab
    const auto entries = read_keytab(data_path("http-multi.keytab"));
    ASSERT_EQ(entries.size(), 6u);
    EXPECT_EQ(entries[0].principal.to_string(), "HTTP/srv.windomain.local@WINDOMAIN.LOCAL");
    EXPECT_EQ(entries[0].principal.name_type, 1);
    EXPECT_EQ(entries[0].kvno, 1u);
    EXPECT_EQ(entries[0].enctype, 18);
    EXPECT_EQ(entries[0].key,
              unhex("3801b58db706d91ff7b1e51da91961236a05071b535b30fb42fc48cc18cd73c2"));
    EXPECT_EQ(entries[1].enctype, 17);
    EXPECT_EQ(entries[1].key, unhex("33951bb6b7d388ba4a23e7f2a845cef0"));
    EXPECT_EQ(entries[2].principal.to_string(), "HOST/srv.windomain.local@WINDOMAIN.LOCAL");
    EXPECT_EQ(entries[4].kvno, 2u);
    EXPECT_EQ(entries[4].enctype, 18);
    EXPECT_EQ(entries[4].key,
              unhex("de1df9e921f2a7a98b4a6fea4ca9931afdb7b33951b1f180dbd84a6bc6adb0d9"));
    EXPECT_EQ(entries[5].kvno, 2u);
    EXPECT_EQ(entries[5].enctype, 17);
    for (const auto& e : entries)
        EXPECT_NE(e.timestamp, 0u);
}

void put16(Bytes& b, std::uint16_t v, bool big = true) {
    if (big) {
        b.push_back(static_cast<std::uint8_t>(v >> 8));
        b.push_back(static_cast<std::uint8_t>(v));
    } else {
        b.push_back(static_cast<std::uint8_t>(v));
        b.push_back(static_cast<std::uint8_t>(v >> 8));
    }
}
void put32(Bytes& b, std::uint32_t v, bool big = true) {
    if (big) {
        put16(b, static_cast<std::uint16_t>(v >> 16));
        put16(b, static_cast<std::uint16_t>(v));
    } else {
        put16(b, static_cast<std::uint16_t>(v), false);
        put16(b, static_cast<std::uint16_t>(v >> 16), false);
    }
}
void put_string(Bytes& b, const std::string& s, bool big = true) {
    put16(b, static_cast<std::uint16_t>(s.size()), big);
    b.insert(b.end(), s.begin(), s.end());
}

// One version-2 entry; kvno32 < 0 leaves the trailing 32-bit kvno out.
Bytes entry(const std::vector<std::string>& comps, std::uint8_t kvno8, long long kvno32,
            std::uint16_t enctype, const Bytes& key) {
    Bytes e;
    put16(e, static_cast<std::uint16_t>(comps.size()));
    put_string(e, "EXAMPLE.ORG");
    for (const auto& c : comps)
        put_string(e, c);
    put32(e, 1);          // name type
    put32(e, 0x5f000000); // timestamp
    e.push_back(kvno8);
    put16(e, enctype);
    put16(e, static_cast<std::uint16_t>(key.size()));
    e.insert(e.end(), key.begin(), key.end());
    if (kvno32 >= 0) put32(e, static_cast<std::uint32_t>(kvno32));
    Bytes out;
    put32(out, static_cast<std::uint32_t>(e.size()));
    out.insert(out.end(), e.begin(), e.end());
    return out;
}

Bytes sample_v2() {
    Bytes kt = {0x05, 0x02};
    const Bytes k1(32, 0xaa), k2(16, 0xbb), k3(32, 0xcc);
    auto e1 = entry({"HTTP", "wec.example.org"}, 3, -1, 18, k1);
    auto e2 = entry({"HTTP", "wec.example.org"}, 44, 300, 17, k2); // 32-bit kvno wins
    auto e3 = entry({"HOST", "wec.example.org"}, 7, 0, 18, k3);    // zero 32-bit kvno: use 8-bit
    kt.insert(kt.end(), e1.begin(), e1.end());
    put32(kt, static_cast<std::uint32_t>(-12)); // a hole of 12 bytes
    kt.resize(kt.size() + 12, 0);
    kt.insert(kt.end(), e2.begin(), e2.end());
    kt.insert(kt.end(), e3.begin(), e3.end());
    return kt;
}

TEST(Keytab, HandBuiltVersion2) {
    const auto entries = parse_keytab(sample_v2());
    ASSERT_EQ(entries.size(), 3u);
    EXPECT_EQ(entries[0].principal.to_string(), "HTTP/wec.example.org@EXAMPLE.ORG");
    EXPECT_EQ(entries[0].kvno, 3u);
    EXPECT_EQ(entries[0].timestamp, 0x5f000000u);
    EXPECT_EQ(entries[1].kvno, 300u);
    EXPECT_EQ(entries[1].enctype, 17);
    EXPECT_EQ(entries[1].key, Bytes(16, 0xbb));
    EXPECT_EQ(entries[2].kvno, 7u);
}

TEST(Keytab, Version1IsNativeEndianAndCountsTheRealm) {
    Bytes e;
    put16(e, 3, false); // 2 components + realm
    put_string(e, "EXAMPLE.ORG", false);
    put_string(e, "HTTP", false);
    put_string(e, "wec", false);
    put32(e, 1234, false);
    e.push_back(5);
    put16(e, 18, false);
    put16(e, 32, false);
    e.resize(e.size() + 32, 0x42);
    Bytes kt = {0x05, 0x01};
    put32(kt, static_cast<std::uint32_t>(e.size()), false);
    kt.insert(kt.end(), e.begin(), e.end());
    const auto entries = parse_keytab(kt);
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0].principal.to_string(), "HTTP/wec@EXAMPLE.ORG");
    EXPECT_EQ(entries[0].kvno, 5u);
    EXPECT_EQ(entries[0].enctype, 18);
    EXPECT_EQ(entries[0].timestamp, 1234u);
}

TEST(Keytab, EmptyAndZeroTerminated) {
    EXPECT_TRUE(parse_keytab(Bytes{0x05, 0x02}).empty());
    Bytes kt = sample_v2();
    put32(kt, 0);
    kt.push_back(0x99); // garbage after the terminating zero size is ignored
    EXPECT_EQ(parse_keytab(kt).size(), 3u);
}

TEST(Keytab, BadHeader) {
    EXPECT_THROW(parse_keytab(Bytes{}), KeytabError);
    EXPECT_THROW(parse_keytab(Bytes{0x05}), KeytabError);
    EXPECT_THROW(parse_keytab(Bytes{0x04, 0x02}), KeytabError);
    EXPECT_THROW(parse_keytab(Bytes{0x05, 0x03}), KeytabError);
}

TEST(Keytab, EveryTruncationIsATypedError) {
    const Bytes kt = sample_v2();
    std::size_t errors = 0;
    for (std::size_t len = 0; len < kt.size(); ++len) {
        const Bytes cut(kt.begin(), kt.begin() + static_cast<std::ptrdiff_t>(len));
        try {
            parse_keytab(cut, "cut.keytab");
        } catch (const KeytabError& e) {
            ++errors;
            EXPECT_NE(std::string(e.what()).find("cut.keytab"), std::string::npos);
            EXPECT_LE(e.offset(), len);
        }
    }
    // Cuts exactly at an entry boundary (or inside the last size field) parse fine.
    EXPECT_GE(errors, kt.size() - 16);
}

TEST(Keytab, FieldsLongerThanTheEntry) {
    Bytes kt = {0x05, 0x02};
    auto e = entry({"HTTP", "x"}, 1, -1, 18, Bytes(32, 1));
    e[6] = 0xff; // realm length (after size(4) + count(2)), high byte: far beyond the entry
    kt.insert(kt.end(), e.begin(), e.end());
    try {
        parse_keytab(kt);
        FAIL();
    } catch (const KeytabError& err) {
        EXPECT_NE(std::string(err.what()).find("realm"), std::string::npos) << err.what();
    }
    Bytes big = {0x05, 0x02, 0x7f, 0xff, 0xff, 0xff, 0x00};
    EXPECT_THROW(parse_keytab(big), KeytabError);
    Bytes hole = {0x05, 0x02, 0x80, 0x00, 0x00, 0x00};
    EXPECT_THROW(parse_keytab(hole), KeytabError);
}

TEST(Keytab, MissingFile) {
    EXPECT_THROW(read_keytab("/nonexistent/x.keytab"), wec::Error);
}

TEST(KeySet, CandidatesOrder) {
    KeySet keys;
    keys.add_keytab(data_path("http-multi.keytab"));
    keys.add_keytab(data_path("http-kvno1.keytab")); // duplicates are dropped
    EXPECT_EQ(keys.size(), 6u);
    const auto http = Principal::parse("HTTP/srv.windomain.local@WINDOMAIN.LOCAL");
    auto c = keys.candidates(http, 18, 2u);
    ASSERT_EQ(c.size(), 3u); // kvno 2, kvno 1 of HTTP, then HOST's aes256 key
    EXPECT_EQ(c[0]->kvno, 2u);
    EXPECT_EQ(c[1]->kvno, 1u);
    EXPECT_EQ(c[2]->principal.components[0], "HOST");
    const auto upper = Principal::parse("HTTP/SRV.WINDOMAIN.LOCAL@windomain.local");
    c = keys.candidates(upper, 17, std::nullopt);
    ASSERT_EQ(c.size(), 3u);
    EXPECT_EQ(c[0]->principal.components[0], "HTTP");
    EXPECT_TRUE(keys.candidates(http, 23, 1u).empty());
    EXPECT_EQ(keys.for_principal(upper).size(), 4u);
}

TEST(Principal, ParseAndPrint) {
    const auto p = Principal::parse("HTTP/srv.windomain.local@WINDOMAIN.LOCAL");
    ASSERT_EQ(p.components.size(), 2u);
    EXPECT_EQ(p.realm, "WINDOMAIN.LOCAL");
    EXPECT_EQ(p.to_string(), "HTTP/srv.windomain.local@WINDOMAIN.LOCAL");
    EXPECT_EQ(Principal::parse("WIN10$").to_string(), "WIN10$");
    EXPECT_EQ(enctype_name(18), "aes256-cts-hmac-sha1-96");
    EXPECT_EQ(enctype_name(99), "enctype 99");
}

} // namespace
} // namespace wec::krb

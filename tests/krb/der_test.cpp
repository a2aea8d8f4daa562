// DER reader edge cases: long lengths, indefinite length, truncation, tags, depth, integers.
#include "krb/der.hpp"
#include "krb/krb.hpp"

#include <gtest/gtest.h>
#include <vector>

namespace wec::krb {
namespace {

using Bytes = std::vector<std::uint8_t>;

Reason reason_of(const Bytes& data) {
    try {
        der::walk(data);
    } catch (const DecryptError& e) {
        return e.reason();
    }
    ADD_FAILURE() << "no error";
    return Reason::NoKey;
}

std::size_t offset_of(const Bytes& data) {
    try {
        der::walk(data);
    } catch (const DecryptError& e) {
        return e.offset();
    }
    ADD_FAILURE() << "no error";
    return 0;
}

TEST(Der, ShortForm) {
    const Bytes data = {0x04, 0x03, 'a', 'b', 'c'};
    der::Reader r(data);
    const auto tlv = r.next();
    EXPECT_TRUE(tlv.is(der::Class::Universal, der::kOctetString));
    EXPECT_FALSE(tlv.constructed);
    EXPECT_EQ(tlv.value.size(), 3u);
    EXPECT_EQ(tlv.value_offset, 2u);
    EXPECT_TRUE(r.empty());
}

TEST(Der, LongFormLengths) {
    for (int bytes = 1; bytes <= 4; ++bytes) {
        const std::size_t n = 300;
        Bytes data = {0x04, static_cast<std::uint8_t>(0x80 | bytes)};
        for (int i = bytes - 1; i >= 0; --i)
            data.push_back(static_cast<std::uint8_t>(i >= 4 ? 0 : (n >> (8 * i)) & 0xff));
        data.resize(data.size() + n, 0x5a);
        if (bytes == 1) { // 300 does not fit in one byte: use 200
            data = {0x04, 0x81, 200};
            data.resize(3 + 200, 0x5a);
        }
        der::Reader r(data);
        const auto tlv = r.next();
        EXPECT_EQ(tlv.value.size(), bytes == 1 ? 200u : 300u) << bytes;
        EXPECT_EQ(tlv.value_offset, 2u + bytes);
        EXPECT_TRUE(r.empty());
    }
}

TEST(Der, NonMinimalLongLengthAccepted) {
    const Bytes data = {0x04, 0x82, 0x00, 0x02, 'h', 'i'}; // BER-style, seen from some encoders
    der::Reader r(data);
    EXPECT_EQ(r.next().value.size(), 2u);
}

TEST(Der, IndefiniteLengthRejected) {
    const Bytes data = {0x30, 0x80, 0x04, 0x00, 0x00, 0x00};
    EXPECT_EQ(reason_of(data), Reason::Malformed);
    EXPECT_EQ(offset_of(data), 1u);
}

TEST(Der, FiveLengthBytesRejected) {
    const Bytes data = {0x04, 0x85, 0, 0, 0, 0, 1, 0};
    EXPECT_EQ(reason_of(data), Reason::Malformed);
}

TEST(Der, HugeLengthDoesNotAllocate) {
    const Bytes data = {0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 0};
    EXPECT_EQ(reason_of(data), Reason::Malformed);
    EXPECT_EQ(offset_of(data), 0u);
}

TEST(Der, TruncationEverywhereIsAnError) {
    // SEQUENCE { [0] { INTEGER 5 }, [1] { OCTET STRING (130 bytes) } }
    Bytes inner = {0xa0, 0x03, 0x02, 0x01, 0x05, 0xa1, 0x81, 0x85, 0x04, 0x81, 0x82};
    inner.resize(inner.size() + 130, 0x11);
    Bytes data = {0x30, 0x81, static_cast<std::uint8_t>(inner.size())};
    data.insert(data.end(), inner.begin(), inner.end());
    EXPECT_EQ(der::walk(data), 5u);
    for (std::size_t len = 1; len < data.size(); ++len) {
        const Bytes cut(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(len));
        EXPECT_EQ(reason_of(cut), Reason::Malformed) << len;
    }
    EXPECT_EQ(reason_of(Bytes{0x30}), Reason::Malformed);
}

TEST(Der, HighTagNumbers) {
    const Bytes ok = {0x7f, 0x81, 0x00, 0x00}; // [APPLICATION 128], empty
    der::Reader r(ok);
    const auto tlv = r.next();
    EXPECT_EQ(tlv.cls, der::Class::Application);
    EXPECT_EQ(tlv.tag, 128u);
    const Bytes too_long = {0x1f, 0x81, 0x81, 0x81, 0x81, 0x01, 0x00};
    EXPECT_EQ(reason_of(too_long), Reason::Malformed);
    const Bytes truncated = {0x1f, 0x81};
    EXPECT_EQ(reason_of(truncated), Reason::Malformed);
}

TEST(Der, DepthIsBounded) {
    Bytes data;
    const int depth = 40;
    for (int i = 0; i < depth; ++i) {
        Bytes outer = {0x30, static_cast<std::uint8_t>(data.size())};
        outer.insert(outer.end(), data.begin(), data.end());
        data = outer;
    }
    ASSERT_LT(data.size(), 128u);
    EXPECT_EQ(reason_of(data), Reason::Malformed);
    Bytes shallow;
    for (int i = 0; i < 10; ++i) {
        Bytes outer = {0x30, static_cast<std::uint8_t>(shallow.size())};
        outer.insert(outer.end(), shallow.begin(), shallow.end());
        shallow = outer;
    }
    EXPECT_EQ(der::walk(shallow), 10u);
}

TEST(Der, Integers) {
    auto integer = [](Bytes value) {
        Bytes data = {0x02, static_cast<std::uint8_t>(value.size())};
        data.insert(data.end(), value.begin(), value.end());
        der::Reader r(data);
        return der::integer(r.next(), "test");
    };
    EXPECT_EQ(integer({0x05}), 5);
    EXPECT_EQ(integer({0xff}), -1);
    EXPECT_EQ(integer({0x00, 0xff}), 255);
    EXPECT_EQ(integer({0x80, 0x00, 0x00, 0x00}), -2147483648LL);
    EXPECT_EQ(integer({0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}), INT64_MAX);
    EXPECT_THROW(integer({}), DecryptError);
    EXPECT_THROW(integer({1, 2, 3, 4, 5, 6, 7, 8, 9}), DecryptError);
    // Windows' negative sequence numbers wrap to UInt32.
    const Bytes neg = {0x02, 0x01, 0xfe};
    der::Reader r(neg);
    EXPECT_EQ(der::uint32_lenient(r.next(), "seq"), 0xfffffffeu);
}

TEST(Der, TypedAccessorsCheckTheTag) {
    const Bytes data = {0x04, 0x01, 0x41, 0x1b, 0x01, 0x42, 0x02, 0x01, 0x01};
    der::Reader r(data);
    const auto octet = r.next();
    const auto general = r.next();
    const auto integer = r.next();
    EXPECT_EQ(der::octets(octet, "o").size(), 1u);
    EXPECT_EQ(der::string(general, "s"), "B");
    EXPECT_THROW(der::string(octet, "s"), DecryptError);
    EXPECT_THROW(der::octets(integer, "o"), DecryptError);
    EXPECT_THROW(der::integer(octet, "i"), DecryptError);
}

TEST(Der, ExpectReportsTheOffset) {
    const Bytes data = {0x04, 0x00, 0x30, 0x00};
    der::Reader r(data);
    r.next();
    try {
        r.expect(der::Class::Context, 1, true, "field");
        FAIL();
    } catch (const DecryptError& e) {
        EXPECT_EQ(e.reason(), Reason::Malformed);
        EXPECT_EQ(e.offset(), 2u);
        EXPECT_NE(std::string(e.what()).find("offset 2"), std::string::npos) << e.what();
    }
}

} // namespace
} // namespace wec::krb

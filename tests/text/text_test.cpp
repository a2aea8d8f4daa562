#include "text/text.hpp"

#include <gtest/gtest.h>
#include <random>

namespace wt = wec::text;

namespace {

std::vector<std::uint8_t> bytes(std::initializer_list<int> v) {
    std::vector<std::uint8_t> out;
    for (int b : v)
        out.push_back(static_cast<std::uint8_t>(b));
    return out;
}

// Reference encoder of code points to UTF-16LE (no validation).
std::vector<std::uint8_t> utf16le(const std::u32string& s) {
    std::vector<std::uint8_t> out;
    auto put = [&](unsigned u) {
        out.push_back(static_cast<std::uint8_t>(u));
        out.push_back(static_cast<std::uint8_t>(u >> 8));
    };
    for (char32_t c : s) {
        if (c >= 0x10000) {
            put(0xD800 + ((c - 0x10000) >> 10));
            put(0xDC00 + ((c - 0x10000) & 0x3FF));
        } else {
            put(c);
        }
    }
    return out;
}

const std::string kFFFD = "\xEF\xBF\xBD";

} // namespace

TEST(Text, AsciiWithAndWithoutBom) {
    EXPECT_EQ(wt::utf16_to_utf8(bytes({'<', 0, 'a', 0, '>', 0})), "<a>");
    EXPECT_EQ(wt::utf16_to_utf8(bytes({0xFF, 0xFE, '<', 0, 'a', 0, '>', 0})), "<a>");
    EXPECT_EQ(wt::utf16_to_utf8(bytes({0xFE, 0xFF, 0, '<', 0, 'a', 0, '>'})), "<a>");
    EXPECT_EQ(wt::utf16_to_utf8({}), "");
    EXPECT_EQ(wt::utf16_to_utf8(bytes({0xFF, 0xFE})), "");
}

TEST(Text, LongAsciiUsesFastPathCorrectly) {
    std::string s;
    for (int i = 0; i < 1000; ++i)
        s += static_cast<char>('a' + i % 26);
    s += "\xC3\xA9"; // é breaks the fast path
    s += "tail";
    const auto u16 = wt::utf8_to_utf16le(s, true);
    EXPECT_EQ(u16.size(), 2 + 2 * (1000 + 1 + 4));
    EXPECT_EQ(wt::utf16_to_utf8(u16), s);
}

TEST(Text, BmpAndSurrogatePairs) {
    const std::u32string cps = {U'e', 0xE9, 0x20AC, 0x1F600, 0x10FFFF, 0x10000};
    EXPECT_EQ(wt::utf16_to_utf8(utf16le(cps)),
              "e\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF\xF0\x90\x80\x80");
}

TEST(Text, LoneSurrogatesBecomeReplacement) {
    // lone high, lone low, high followed by a non-surrogate, high at the very end
    EXPECT_EQ(wt::utf16_to_utf8(bytes({0x00, 0xD8, 'a', 0})), kFFFD + "a");
    EXPECT_EQ(wt::utf16_to_utf8(bytes({0x00, 0xDC, 'a', 0})), kFFFD + "a");
    EXPECT_EQ(wt::utf16_to_utf8(bytes({0x00, 0xD8, 0x00, 0xD8, 0x00, 0xDC})),
              kFFFD + "\xF0\x90\x80\x80");
    EXPECT_EQ(wt::utf16_to_utf8(bytes({'a', 0, 0x3D, 0xD8})), "a" + kFFFD);
}

TEST(Text, OddTrailingByte) {
    EXPECT_EQ(wt::utf16_to_utf8(bytes({'a', 0, 'b'})), "a" + kFFFD);
    EXPECT_EQ(wt::utf16_to_utf8(bytes({'a'})), kFFFD);
}

TEST(Text, AppendKeepsPrefixAndReusesCapacity) {
    std::string out = "prefix:";
    out.reserve(1024);
    const auto* data = out.data();
    wt::append_utf16_to_utf8(bytes({0xFF, 0xFE, 'x', 0}), out);
    EXPECT_EQ(out, "prefix:x");
    EXPECT_EQ(out.data(), data); // no reallocation
    std::vector<std::uint8_t> v = {1, 2};
    wt::append_utf8_to_utf16le("A", v, true);
    EXPECT_EQ(v, bytes({1, 2, 0xFF, 0xFE, 'A', 0}));
}

TEST(Text, InvalidUtf8BecomesReplacement) {
    auto roundtrip = [](std::string_view s) { return wt::utf16_to_utf8(wt::utf8_to_utf16le(s)); };
    EXPECT_EQ(roundtrip("a\xFF"
                        "b"),
              "a" + kFFFD + "b");
    EXPECT_EQ(roundtrip("\xC0\xAF"), kFFFD + kFFFD);                         // overlong
    EXPECT_EQ(roundtrip("\xED\xA0\x80"), kFFFD + kFFFD + kFFFD);             // encoded surrogate
    EXPECT_EQ(roundtrip("\xF4\x90\x80\x80"), kFFFD + kFFFD + kFFFD + kFFFD); // > U+10FFFF
    EXPECT_EQ(roundtrip("\xE2\x82"), kFFFD); // truncated: one maximal subpart
    EXPECT_EQ(roundtrip("\xE2\x82x"), kFFFD + "x");
    std::string out;
    EXPECT_EQ(wt::append_valid_utf8("ok\x80ok", out), 1u);
    EXPECT_EQ(out, "ok" + kFFFD + "ok");
}

TEST(Text, RandomValidStringsRoundTrip) {
    std::mt19937 rng(1234);
    for (int iter = 0; iter < 2000; ++iter) {
        std::u32string cps;
        const int n = static_cast<int>(rng() % 64);
        for (int i = 0; i < n; ++i) {
            char32_t c;
            switch (rng() % 4) {
            case 0:
                c = 0x20 + rng() % 0x5F;
                break;
            case 1:
                c = 0x80 + rng() % 0x780;
                break;
            case 2:
                c = 0x800 + rng() % (0xD800 - 0x800);
                break;
            default:
                c = 0x10000 + rng() % 0x100000;
                break;
            }
            cps.push_back(c);
        }
        const auto u16 = utf16le(cps);
        const std::string u8 = wt::utf16_to_utf8(u16);
        EXPECT_EQ(wt::utf8_to_utf16le(u8), u16);
        std::string valid;
        EXPECT_EQ(wt::append_valid_utf8(u8, valid), 0u);
        EXPECT_EQ(valid, u8);
    }
}

TEST(Text, DecodeBodyChoosesEncoding) {
    std::string out;
    auto d = wt::decode_body(bytes({0xFF, 0xFE, '<', 0, 'a', 0, '/', 0, '>', 0}), "UTF-8", out);
    EXPECT_EQ(d.encoding, wt::Encoding::Utf16LE); // BOM wins over the charset
    EXPECT_TRUE(d.bom);
    EXPECT_EQ(out, "<a/>");

    out.clear();
    d = wt::decode_body(bytes({'<', 0, 'a', 0, '/', 0, '>', 0}), "\"utf-16\"", out);
    EXPECT_EQ(d.encoding, wt::Encoding::Utf16LE);
    EXPECT_FALSE(d.bom);
    EXPECT_EQ(out, "<a/>");

    out.clear();
    d = wt::decode_body(bytes({'<', 0, 'a', 0, '/', 0, '>', 0}), "", out); // heuristic
    EXPECT_EQ(d.encoding, wt::Encoding::Utf16LE);
    EXPECT_EQ(out, "<a/>");

    out.clear();
    d = wt::decode_body(bytes({'<', 'a', '/', '>'}), "", out);
    EXPECT_EQ(d.encoding, wt::Encoding::Utf8);
    EXPECT_EQ(out, "<a/>");

    out.clear();
    d = wt::decode_body(bytes({0xEF, 0xBB, 0xBF, '<', 'a', '/', '>'}), "utf-16", out);
    EXPECT_EQ(d.encoding, wt::Encoding::Utf8);
    EXPECT_TRUE(d.bom);
    EXPECT_EQ(out, "<a/>");

    out.clear();
    d = wt::decode_body(bytes({0xFE, 0xFF, 0, '<', 0, 'b', 0, '>'}), "", out);
    EXPECT_EQ(d.encoding, wt::Encoding::Utf16BE);
    EXPECT_EQ(out, "<b>");
}

TEST(Text, EncodeBodyMatchesClientEncoding) {
    std::vector<std::uint8_t> out;
    wt::encode_body("<a/>", wt::Encoding::Utf16LE, out);
    EXPECT_EQ(out, bytes({0xFF, 0xFE, '<', 0, 'a', 0, '/', 0, '>', 0}));
    out.clear();
    wt::encode_body("<a/>", wt::Encoding::Utf16BE, out);
    EXPECT_EQ(out, bytes({0xFE, 0xFF, 0, '<', 0, 'a', 0, '/', 0, '>'}));
    EXPECT_EQ(wt::utf16_to_utf8(out), "<a/>");
    out.clear();
    wt::encode_body("<a/>", wt::Encoding::Utf8, out);
    EXPECT_EQ(out, bytes({'<', 'a', '/', '>'}));
}

TEST(Text, SanitizeXmlChars) {
    std::string clean = "tab\tlf\ncr\r \xC3\xA9\xF0\x9F\x98\x80";
    const std::string before = clean;
    EXPECT_EQ(wt::sanitize_xml_chars(clean), 0u);
    EXPECT_EQ(clean, before);

    std::string s = std::string("a\x05") + "b" + std::string(1, '\0') + "c\xEF\xBF\xBE" +
                    "\xEF\xBF\xBF" + "\x1F" + "\xFF" + "end";
    EXPECT_EQ(wt::sanitize_xml_chars(s), 6u);
    EXPECT_EQ(s, "a" + kFFFD + "b" + kFFFD + "c" + kFFFD + kFFFD + kFFFD + kFFFD + "end");

    std::string only = "\x05";
    EXPECT_EQ(wt::sanitize_xml_chars(only), 1u);
    EXPECT_EQ(only, kFFFD);
}

TEST(Text, EncodingNames) {
    EXPECT_EQ(wt::to_string(wt::Encoding::Utf16LE), "UTF-16LE");
    EXPECT_EQ(wt::to_string(wt::Encoding::Utf8), "UTF-8");
}

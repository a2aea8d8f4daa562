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

namespace {

// Unit-at-a-time reference of the UTF-16 -> UTF-8 conversion (lone surrogates -> U+FFFD).
std::string reference_utf16_to_utf8(const std::vector<std::uint16_t>& units) {
    std::string out;
    auto put = [&out](char32_t c) {
        if (c < 0x80) {
            out += static_cast<char>(c);
        } else if (c < 0x800) {
            out += static_cast<char>(0xC0 | (c >> 6));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out += static_cast<char>(0xE0 | (c >> 12));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (c >> 18));
            out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (c & 0x3F));
        }
    };
    for (std::size_t i = 0; i < units.size(); ++i) {
        const unsigned u = units[i];
        if (u >= 0xD800 && u <= 0xDBFF && i + 1 < units.size() && units[i + 1] >= 0xDC00 &&
            units[i + 1] <= 0xDFFF) {
            put(0x10000 + ((u - 0xD800) << 10) + (units[i + 1] - 0xDC00u));
            ++i;
        } else {
            put(u >= 0xD800 && u <= 0xDFFF ? 0xFFFD : u);
        }
    }
    return out;
}

std::vector<std::uint8_t> units_to_bytes(const std::vector<std::uint16_t>& units, bool big_endian) {
    std::vector<std::uint8_t> out;
    for (unsigned u : units) {
        const auto hi = static_cast<std::uint8_t>(u >> 8), lo = static_cast<std::uint8_t>(u);
        out.push_back(big_endian ? hi : lo);
        out.push_back(big_endian ? lo : hi);
    }
    return out;
}

// Checks both byte orders, with and without BOM, and with an odd trailing byte.
void expect_converts(const std::vector<std::uint16_t>& units) {
    const std::string expected = reference_utf16_to_utf8(units);
    for (bool be : {false, true}) {
        auto b = units_to_bytes(units, be);
        std::string out = "pre";
        if (be)
            wt::append_utf16be_to_utf8(b, out);
        else
            wt::append_utf16le_to_utf8(b, out);
        ASSERT_EQ(out, "pre" + expected) << "big endian " << be << ", " << units.size() << " units";
        b.insert(b.begin(), {static_cast<std::uint8_t>(be ? 0xFE : 0xFF),
                             static_cast<std::uint8_t>(be ? 0xFF : 0xFE)});
        b.push_back('z');
        ASSERT_EQ(wt::utf16_to_utf8(b), expected + kFFFD);
    }
}

// One-byte-at-a-time reference of sanitize_xml_chars.
std::string reference_sanitize(const std::string& s, std::size_t& replaced) {
    std::string out;
    replaced = 0;
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            const bool bad = c < 0x20 && c != '\t' && c != '\n' && c != '\r';
            out += bad ? kFFFD : std::string(1, static_cast<char>(c));
            replaced += bad;
            ++i;
            continue;
        }
        // The test inputs only hold valid 2/3-byte sequences besides ASCII.
        const std::size_t len = c < 0xE0 ? 2 : 3;
        const std::string seq = s.substr(i, len);
        const bool bad = seq == "\xEF\xBF\xBE" || seq == "\xEF\xBF\xBF";
        out += bad ? kFFFD : seq;
        replaced += bad;
        i += len;
    }
    return out;
}

} // namespace

// The ASCII fast path works on blocks of code units: a non-ASCII unit, a surrogate pair or a lone
// surrogate at every position relative to a block, after and before ASCII runs of every length.
TEST(Text, Utf16AsciiRunBoundaries) {
    const std::vector<std::vector<std::uint16_t>> specials = {
        {0xE9},   {0x20AC}, {0x100},
        {0x80},   {0x7F},   {0xD83D, 0xDE00},
        {0xD800}, {0xDC00}, {0xD800, 0xD800, 0xDC00},
        {0xFEFF}, {0xFFFF}, {0x0005},
        {0x0000}};
    for (const auto& special : specials) {
        for (std::size_t before = 0; before <= 40; ++before) {
            for (std::size_t after :
                 {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{15},
                  std::size_t{17}, std::size_t{33}}) {
                std::vector<std::uint16_t> units;
                for (std::size_t i = 0; i < before; ++i)
                    units.push_back(static_cast<std::uint16_t>('a' + i % 26));
                units.insert(units.end(), special.begin(), special.end());
                for (std::size_t i = 0; i < after; ++i)
                    units.push_back(static_cast<std::uint16_t>('A' + i % 26));
                expect_converts(units);
            }
        }
    }
}

// Long inputs are converted in chunks of a few thousand units: surrogate pairs, lone surrogates
// and 3-byte characters right at (and around) every possible chunk boundary.
TEST(Text, Utf16ChunkBoundaries) {
    for (std::size_t at = 2030; at < 2070; ++at) {
        for (const std::vector<std::uint16_t>& special :
             {std::vector<std::uint16_t>{0xD83D, 0xDE00}, std::vector<std::uint16_t>{0xDBFF},
              std::vector<std::uint16_t>{0xDC00}, std::vector<std::uint16_t>{0x20AC}}) {
            std::vector<std::uint16_t> units(at, 'x');
            units.insert(units.end(), special.begin(), special.end());
            units.resize(units.size() + 2100, 'y');
            expect_converts(units);
            std::vector<std::uint16_t> ending(at, 'x');
            ending.insert(ending.end(), special.begin(), special.end());
            expect_converts(ending);
        }
    }
    // All non-ASCII: every unit takes 3 bytes, the worst case for the chunk buffer.
    expect_converts(std::vector<std::uint16_t>(10000, 0x20AC));
    std::vector<std::uint16_t> pairs;
    for (int i = 0; i < 5001; ++i)
        pairs.insert(pairs.end(), {0xD83D, 0xDE00});
    expect_converts(pairs);
}

TEST(Text, Utf16RandomMixMatchesReference) {
    std::mt19937 rng(99);
    for (int iter = 0; iter < 300; ++iter) {
        std::vector<std::uint16_t> units;
        const auto pieces = rng() % 40;
        for (unsigned k = 0; k < pieces; ++k) {
            switch (rng() % 5) {
            case 0: // a long ASCII run
                units.resize(units.size() + rng() % 300,
                             static_cast<std::uint16_t>('a' + rng() % 26));
                break;
            case 1:
                units.push_back(static_cast<std::uint16_t>(0x80 + rng() % 0x780));
                break;
            case 2:
                units.push_back(static_cast<std::uint16_t>(0xD800 + rng() % 0x800)); // surrogate
                break;
            case 3:
                units.push_back(static_cast<std::uint16_t>(rng()));
                break;
            default:
                units.push_back(static_cast<std::uint16_t>(rng() % 0x80));
                break;
            }
        }
        expect_converts(units);
    }
}

// The sanitizer skips allowed ASCII (including TAB, LF, CR) a block at a time: forbidden
// characters at every position relative to a block, between runs of every length.
TEST(Text, SanitizeXmlCharsBlockBoundaries) {
    const std::vector<std::string> inserts = {
        "\x05", std::string(1, '\0'), "\x1F",         "\x7F",         "\t",           "\n",
        "\r",   "\xC3\xA9",           "\xEF\xBF\xBE", "\xEF\xBF\xBF", "\xEF\xBF\xBD", "\x01\x02"};
    for (const auto& ins : inserts) {
        for (std::size_t before = 0; before <= 40; ++before) {
            for (std::size_t after : {0, 1, 15, 16, 17, 40}) {
                std::string s;
                for (std::size_t i = 0; i < before; ++i)
                    s += static_cast<char>(i % 3 == 2 ? '\n' : 'a' + i % 26);
                s += ins;
                for (std::size_t i = 0; i < after; ++i)
                    s += static_cast<char>(i % 5 == 4 ? '\t' : 'A' + i % 26);
                std::size_t expected_count = 0;
                const std::string expected = reference_sanitize(s, expected_count);
                std::string got = s;
                EXPECT_EQ(wt::sanitize_xml_chars(got), expected_count) << before << " " << after;
                EXPECT_EQ(got, expected) << before << " " << after;
            }
        }
    }
}

TEST(Text, SanitizeXmlCharsTwoBadCharsInOneBlock) {
    std::string s = std::string(20, 'a') + "\x05" + "bc" + "\x06" + std::string(20, 'd') + "\x07";
    EXPECT_EQ(wt::sanitize_xml_chars(s), 3u);
    EXPECT_EQ(s, std::string(20, 'a') + kFFFD + "bc" + kFFFD + std::string(20, 'd') + kFFFD);
}

TEST(XmlEscape, AllFourByDefaultAndOnlyTheGivenSetOtherwise) {
    EXPECT_EQ(wec::text::xml_escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e'f");
    EXPECT_EQ(wec::text::xml_escape("a&b<c>d\"e", "&<>"), "a&amp;b&lt;c&gt;d\"e");
    EXPECT_EQ(wec::text::xml_escape("a&b<c>d\"e", "&<\""), "a&amp;b&lt;c>d&quot;e");
    EXPECT_EQ(wec::text::xml_escape(""), "");
    EXPECT_EQ(wec::text::xml_escape("plain"), "plain");
    // CR, LF and TAB only when asked (attribute values, text whose CR must survive a reader).
    EXPECT_EQ(wec::text::xml_escape("a\r\nb\tc"), "a\r\nb\tc");
    EXPECT_EQ(wec::text::xml_escape("a\r\nb\tc", "\r"), "a&#13;\nb\tc");
    EXPECT_EQ(wec::text::xml_escape("a\r\nb\tc", "\r\n\t"), "a&#13;&#10;b&#9;c");
}

// ---- BodyDecoder: decode_body in pieces ----------------------------------------------------

namespace {

struct Whole {
    std::string out;
    wt::Decoded decoded;
};

Whole whole(const std::vector<std::uint8_t>& body, std::string_view charset) {
    Whole w;
    w.out = "prefix:"; // both append
    w.decoded = wt::decode_body(body, charset, w.out);
    return w;
}

// `body` cut at `cuts` (ascending offsets), fed piece by piece.
Whole in_pieces(const std::vector<std::uint8_t>& body, std::string_view charset,
                const std::vector<std::size_t>& cuts) {
    Whole w;
    w.out = "prefix:";
    wt::BodyDecoder decoder(charset, w.out);
    std::size_t from = 0;
    for (std::size_t cut : cuts) {
        decoder.append(std::span<const std::uint8_t>(body).subspan(from, cut - from));
        from = cut;
    }
    decoder.append(std::span<const std::uint8_t>(body).subspan(from));
    w.decoded = decoder.finish();
    return w;
}

void expect_same(const std::vector<std::uint8_t>& body, std::string_view charset,
                 const std::vector<std::size_t>& cuts) {
    const Whole want = whole(body, charset);
    const Whole got = in_pieces(body, charset, cuts);
    std::string where =
        "charset '" + std::string(charset) + "', size " + std::to_string(body.size()) + ", cuts";
    for (auto c : cuts)
        where += " " + std::to_string(c);
    EXPECT_EQ(got.out, want.out) << where;
    EXPECT_EQ(got.decoded.encoding, want.decoded.encoding) << where;
    EXPECT_EQ(got.decoded.bom, want.decoded.bom) << where;
    EXPECT_EQ(got.decoded.xml_clean, want.decoded.xml_clean) << where;
    if (got.decoded.xml_clean) {
        std::string copy = got.out;
        EXPECT_EQ(wt::sanitize_xml_chars(copy), 0u) << where;
    }
}

// Bodies whose every split matters: BOMs, surrogate pairs, lone surrogates, odd lengths, ASCII
// runs long enough for the SSE2 blocks, and each encoding decode_body can choose.
std::vector<std::vector<std::uint8_t>> tricky_bodies() {
    std::vector<std::vector<std::uint8_t>> out;
    const std::u32string text =
        U"<a>x\U0001F600y\u00E9\u4E2D" + std::u32string(40, U'b') + U"\U00010000\U0010FFFF</a>";
    auto le = utf16le(text);
    std::vector<std::uint8_t> le_bom = {0xFF, 0xFE};
    le_bom.insert(le_bom.end(), le.begin(), le.end());
    out.push_back(le_bom);
    out.push_back(le); // no BOM: charset or heuristic
    std::vector<std::uint8_t> be = {0xFE, 0xFF};
    for (std::size_t i = 0; i + 1 < le.size(); i += 2) {
        be.push_back(le[i + 1]);
        be.push_back(le[i]);
    }
    out.push_back(be);
    // Lone and reversed surrogates, a high one last, then an odd trailing byte.
    auto bad = le_bom;
    for (int u : {0xDC00, 0xD800, 0x0041, 0xDBFF, 0xDBFF, 0xDFFF, 0xD800})
        bad.insert(bad.end(), {static_cast<std::uint8_t>(u), static_cast<std::uint8_t>(u >> 8)});
    out.push_back(bad);
    bad.push_back(0x3C);
    out.push_back(bad);
    auto odd = le_bom;
    odd.push_back(0x42);
    out.push_back(odd);
    out.push_back(bytes({0xEF, 0xBB, 0xBF, '<', 'a', 0xC3, 0xA9, 0xFF, '/', '>'}));
    out.push_back(bytes({'<', 'a', 0xE2, 0x82, '/', '>'}));
    for (auto tiny : {bytes({}), bytes({0xFF}), bytes({0xFF, 0xFE}), bytes({0xFE, 0xFF}),
                      bytes({0xFF, 0xFE, 0x41}), bytes({0xEF, 0xBB}), bytes({0xEF, 0xBB, 0xBF}),
                      bytes({'<', 0}), bytes({0, '<'}), bytes({0x3D, 0xD8, 0x00})})
        out.push_back(tiny);
    return out;
}

const std::vector<std::string_view> kCharsets = {"",         "UTF-16", "utf-16le", "\"ucs-2\"",
                                                 "utf-16be", "utf-8",  "latin1"};

} // namespace

TEST(BodyDecoder, OnePieceIsDecodeBody) {
    for (const auto& body : tricky_bodies())
        for (auto cs : kCharsets)
            expect_same(body, cs, {});
}

TEST(BodyDecoder, TwoPiecesCutAtEveryOffset) {
    for (const auto& body : tricky_bodies())
        for (auto cs : kCharsets)
            for (std::size_t cut = 0; cut <= body.size(); ++cut)
                expect_same(body, cs, {cut});
}

TEST(BodyDecoder, ThreePiecesCutAtEveryPairOfOffsets) {
    // Covers a unit or pair completed across three pieces (a 1-byte middle piece) and the BOM cut
    // before and after its decision.
    for (const auto& body : tricky_bodies()) {
        if (body.size() > 64) continue;
        for (auto cs :
             {std::string_view(""), std::string_view("utf-16"), std::string_view("utf-16be")})
            for (std::size_t a = 0; a <= body.size(); ++a)
                for (std::size_t b = a; b <= body.size(); ++b)
                    expect_same(body, cs, {a, b});
    }
}

TEST(BodyDecoder, OneBytePiecesAndRandomCuts) {
    std::mt19937 rng(15);
    for (const auto& body : tricky_bodies()) {
        std::vector<std::size_t> every;
        for (std::size_t i = 1; i < body.size(); ++i)
            every.push_back(i);
        expect_same(body, "", every);
        expect_same(body, "utf-16", every);
    }
    // Random UTF-16 units (surrogates often) with a BOM, cut at random.
    for (int round = 0; round < 300; ++round) {
        std::vector<std::uint8_t> body = {0xFF, 0xFE};
        const std::size_t units = rng() % 200;
        for (std::size_t i = 0; i < units; ++i) {
            const unsigned pick = rng() % 6;
            const unsigned u = pick == 0   ? 0xD800 + rng() % 0x400
                               : pick == 1 ? 0xDC00 + rng() % 0x400
                               : pick == 2 ? rng() % 0x10000
                                           : 0x20 + rng() % 0x5F;
            body.push_back(static_cast<std::uint8_t>(u));
            body.push_back(static_cast<std::uint8_t>(u >> 8));
        }
        if (rng() % 2) body.push_back(static_cast<std::uint8_t>(rng()));
        if (rng() % 3 == 0) std::swap(body[0], body[1]); // FE FF: big-endian
        std::vector<std::size_t> cuts;
        for (std::size_t i = 0; i < body.size(); ++i)
            if (rng() % 7 == 0) cuts.push_back(i);
        expect_same(body, "", cuts);
    }
}

namespace {

// decode_body's xml_clean against sanitize_xml_chars on what it wrote: the same answer (UTF-16
// text is checked as it is converted, so that the collector skips the second pass).
void expect_clean_flag(const std::vector<std::uint16_t>& units, const std::string& where) {
    for (bool be : {false, true}) {
        std::vector<std::uint8_t> body = be ? bytes({0xFE, 0xFF}) : bytes({0xFF, 0xFE});
        for (auto u : units) {
            const auto hi = static_cast<std::uint8_t>(u >> 8), lo = static_cast<std::uint8_t>(u);
            body.insert(body.end(), be ? std::initializer_list<std::uint8_t>{hi, lo}
                                       : std::initializer_list<std::uint8_t>{lo, hi});
        }
        std::string out;
        const wt::Decoded d = wt::decode_body(body, "", out);
        std::string copy = out;
        const bool clean = wt::sanitize_xml_chars(copy) == 0;
        ASSERT_EQ(d.xml_clean, clean) << where << (be ? ", big-endian" : ", little-endian");
        // The same through the streaming decoder, cut in the middle.
        std::string streamed;
        wt::BodyDecoder dec("", streamed);
        dec.append(std::span<const std::uint8_t>(body).first(body.size() / 2 + 1));
        dec.append(std::span<const std::uint8_t>(body).subspan(body.size() / 2 + 1));
        ASSERT_EQ(dec.finish().xml_clean, clean) << where << ", in two pieces";
        ASSERT_EQ(streamed, out) << where;
    }
}

} // namespace

// Every unit that matters (the C0 controls, TAB/LF/CR among them, DEL, the first non-ASCII
// units, U+FFFD..U+FFFF, surrogates) at every position of ASCII text of every length up to 80
// units: in the 16-unit blocks, the 8-unit prefix and the unit-by-unit tail in turn.
TEST(Text, XmlCleanIsWhatSanitizeFindsAtEveryPosition) {
    std::vector<std::uint16_t> specials;
    for (std::uint16_t u = 0; u < 0x20; ++u)
        specials.push_back(u);
    for (std::uint16_t u : {0x7F, 0x80, 0x85, 0x7FF, 0x800, 0xD800, 0xDC00, 0xFFFD, 0xFFFE, 0xFFFF})
        specials.push_back(u);
    int forbidden_seen = 0;
    for (std::size_t len = 0; len <= 80; ++len) {
        for (std::size_t at = 0; at <= len; ++at) {
            for (auto sp : specials) {
                std::vector<std::uint16_t> units(len, 'a');
                units.insert(units.begin() + static_cast<std::ptrdiff_t>(at), sp);
                expect_clean_flag(units, "length " + std::to_string(len) + ", unit " +
                                             std::to_string(sp) + " at " + std::to_string(at));
                if (sp < 0x20 && sp != 9 && sp != 10 && sp != 13) ++forbidden_seen;
            }
        }
    }
    EXPECT_EQ(forbidden_seen, 29 * (81 * 82 / 2));
}

TEST(Text, XmlCleanIsWhatSanitizeFindsOnRandomText) {
    std::mt19937 rng(2026);
    int clean = 0, dirty = 0;
    for (int iter = 0; iter < 3000; ++iter) {
        std::vector<std::uint16_t> units;
        const auto n = rng() % 200;
        for (unsigned k = 0; k < n; ++k) {
            const unsigned pick = rng() % 100;
            units.push_back(static_cast<std::uint16_t>(pick < 80   ? 0x20 + rng() % 0x5F
                                                       : pick < 90 ? (rng() % 2 ? '\r' : '\n')
                                                       : pick < 93 ? rng() % 0x20
                                                       : pick < 95 ? 0xFFFE + rng() % 2
                                                                   : rng()));
        }
        expect_clean_flag(units, "iteration " + std::to_string(iter));
        std::vector<std::uint8_t> body = {0xFF, 0xFE};
        for (auto u : units)
            body.insert(body.end(),
                        {static_cast<std::uint8_t>(u), static_cast<std::uint8_t>(u >> 8)});
        std::string out;
        ++(wt::decode_body(body, "", out).xml_clean ? clean : dirty);
    }
    EXPECT_GT(clean, 300); // both kinds were tried
    EXPECT_GT(dirty, 300);
}

// UTF-8 bodies are not checked while decoded: never reported clean.
TEST(Text, XmlCleanIsFalseForUtf8Bodies) {
    std::string out;
    EXPECT_FALSE(wt::decode_body(bytes({'<', 'a', '/', '>'}), "utf-8", out).xml_clean);
    EXPECT_FALSE(wt::decode_body(bytes({0xEF, 0xBB, 0xBF, '<', 'a', '/', '>'}), "", out).xml_clean);
    EXPECT_TRUE(wt::decode_body(bytes({0xFF, 0xFE, '<', 0, '/', 0}), "", out).xml_clean);
    EXPECT_FALSE(wt::decode_body(bytes({0xFF, 0xFE, '<', 0, 1, 0}), "", out).xml_clean);
}

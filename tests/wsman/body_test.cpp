// The WinRM body step shared by the collector, `wec decode` and the client (wsman/body.hpp):
// Content-Encoding with the SLDC fallback, the limit, the charset, and the errors.
#include "common/files.hpp"
#include "sldc/sldc.hpp"
#include "text/text.hpp"
#include "wsman/body.hpp"

#include <gtest/gtest.h>
#include <random>
#include <string>
#include <vector>

namespace ws = wec::wsman;

namespace {

std::vector<std::uint8_t> data(const std::string& name) {
    return wec::read_file(std::string(WEC_TEST_DATA) + "/wsman/" + name);
}

template <typename F>
std::string body_error(F&& fn, ws::BodyError::Reason reason) {
    try {
        fn();
    } catch (const ws::BodyError& e) {
        EXPECT_EQ(e.reason(), reason) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "no BodyError";
    return {};
}

TEST(WsmanBody, NoContentEncodingIsTheBodyItself) {
    auto body = data("heartbeat.utf16");
    std::vector<std::uint8_t> scratch;
    auto c = ws::decode_content("", body, 1 << 20, scratch);
    EXPECT_FALSE(c.decompressed);
    EXPECT_EQ(c.bytes.data(), body.data());
    EXPECT_EQ(c.bytes.size(), body.size());
    c = ws::decode_content(" \t", body, 1 << 20, scratch);
    EXPECT_EQ(c.bytes.data(), body.data());
}

TEST(WsmanBody, SldcIsDecompressedWhateverItsCase) {
    auto compressed = data("heartbeat.sldc");
    auto expected = wec::sldc::decompress(compressed, 1 << 20);
    for (const char* name : {"SLDC", "sldc", " Sldc "}) {
        std::vector<std::uint8_t> scratch{1, 2, 3}; // cleared first
        auto c = ws::decode_content(name, compressed, 1 << 20, scratch);
        EXPECT_TRUE(c.decompressed) << name;
        EXPECT_EQ(std::vector<std::uint8_t>(c.bytes.begin(), c.bytes.end()), expected) << name;
    }
}

TEST(WsmanBody, SldcIntoUninitialisedBufferGivesTheSameBytes) {
    // The server's path: an sldc::Buffer (no zero-fill), reused from request to request.
    wec::sldc::Buffer scratch{9, 9, 9}; // cleared first
    for (const char* name : {"heartbeat", "enumerate"}) {
        const auto original = data(std::string(name) + ".utf16");
        for (const auto level : {wec::sldc::Level::Best, wec::sldc::Level::Fast}) {
            const auto compressed = wec::sldc::compress(original, level);
            auto c = ws::decode_content("SLDC", compressed, 1 << 20, scratch);
            EXPECT_TRUE(c.decompressed) << name;
            EXPECT_EQ(std::vector<std::uint8_t>(c.bytes.begin(), c.bytes.end()), original) << name;
        }
    }
    const auto compressed = data("heartbeat.sldc");
    const auto size = wec::sldc::decompress(compressed, 1 << 20).size();
    EXPECT_THROW(ws::decode_content("SLDC", compressed, size - 1, scratch), ws::BodyError);
    const std::string xml = "<s:Envelope/>";
    auto c = ws::decode_content("SLDC", wec::as_bytes(xml), 1 << 20, scratch);
    EXPECT_FALSE(c.decompressed);
    EXPECT_EQ(std::string(c.bytes.begin(), c.bytes.end()), xml);
}

TEST(WsmanBody, AnnouncedSldcOnABodyThatIsNotSldcIsTakenAsIs) {
    // Windows sends `Content-Encoding: SLDC` on every request of a subscription, also when it did
    // not compress the body; XML text is not an SLDC record (a data symbol before any scheme).
    const std::string xml = "<s:Envelope/>";
    std::vector<std::uint8_t> scratch;
    auto c = ws::decode_content("SLDC", wec::as_bytes(xml), 1 << 20, scratch);
    EXPECT_FALSE(c.decompressed);
    EXPECT_EQ(std::string(c.bytes.begin(), c.bytes.end()), xml);
    c = ws::decode_content("SLDC", {}, 1 << 20, scratch);
    EXPECT_TRUE(c.bytes.empty());
    EXPECT_FALSE(c.decompressed);
}

TEST(WsmanBody, MoreThanTheLimitOnceDecompressedIsRefused) {
    auto compressed = data("heartbeat.sldc");
    auto size = wec::sldc::decompress(compressed, 1 << 20).size();
    std::vector<std::uint8_t> scratch;
    auto what = body_error([&] { ws::decode_content("SLDC", compressed, size - 1, scratch); },
                           ws::BodyError::Reason::TooLarge);
    EXPECT_EQ(what, "body larger than " + std::to_string(size - 1) + " bytes after decompression");
    EXPECT_NO_THROW(ws::decode_content("SLDC", compressed, size, scratch));
    EXPECT_THROW(ws::decode_body("", "SLDC", compressed, size - 1), ws::BodyError);
}

TEST(WsmanBody, OtherEncodingsAreRefusedNamingAtMost64BytesOfTheValue) {
    std::vector<std::uint8_t> scratch;
    auto body = data("heartbeat.utf16");
    auto what = body_error([&] { ws::decode_content("gzip", body, 1 << 20, scratch); },
                           ws::BodyError::Reason::UnsupportedEncoding);
    EXPECT_EQ(what, "unsupported Content-Encoding 'gzip' (only SLDC is accepted)");
    const std::string long_value(200, 'x');
    what = body_error([&] { ws::decode_content(long_value, body, 1 << 20, scratch); },
                      ws::BodyError::Reason::UnsupportedEncoding);
    EXPECT_EQ(what, "unsupported Content-Encoding '" + std::string(64, 'x') +
                        "' (only SLDC is accepted)");
}

TEST(WsmanBody, CharsetComesFromTheContentTypeOrIsEmpty) {
    EXPECT_EQ(ws::charset_of("application/soap+xml;charset=UTF-16"), "UTF-16");
    EXPECT_EQ(ws::charset_of("application/soap+xml; charset=\"utf-8\""), "utf-8");
    EXPECT_EQ(ws::charset_of("application/soap+xml"), "");
    EXPECT_EQ(ws::charset_of(""), "");
    EXPECT_EQ(ws::charset_of(";;=\"unterminated"), "");
}

TEST(WsmanBody, DecodeBodyRunsEveryStep) {
    auto compressed = data("heartbeat.sldc");
    auto b = ws::decode_body("application/soap+xml;charset=UTF-16", "SLDC", compressed, 1 << 20);
    EXPECT_EQ(b.message.action, ws::Action::Heartbeat);
    EXPECT_EQ(b.encoding, wec::text::Encoding::Utf16LE);
    EXPECT_EQ(b.content_bytes, wec::sldc::decompress(compressed, 1 << 20).size());

    auto plain = data("heartbeat.xml");
    b = ws::decode_body("application/soap+xml;charset=UTF-8", "", plain, 1 << 20);
    EXPECT_EQ(b.message.action, ws::Action::Heartbeat);
    EXPECT_EQ(b.encoding, wec::text::Encoding::Utf8);
    EXPECT_EQ(b.content_bytes, plain.size());

    const std::string noise = "not a SOAP envelope";
    EXPECT_THROW(ws::decode_body("text/plain", "", wec::as_bytes(noise), 1 << 20), ws::ParseError);
}

// ---- decode_text: the fused steps 1 to 3 against decode_content + text::decode_body ---------

struct Reference {
    std::string utf8;
    wec::text::Encoding encoding = wec::text::Encoding::Utf8;
    std::size_t content_bytes = 0;
    bool decompressed = false;
    bool xml_clean = false;
    std::string error; // BodyError's what()
};

Reference two_passes(std::string_view encoding, std::span<const std::uint8_t> body,
                     std::string_view charset, std::size_t limit) {
    Reference r;
    try {
        std::vector<std::uint8_t> scratch;
        auto c = ws::decode_content(encoding, body, limit, scratch);
        r.content_bytes = c.bytes.size();
        r.decompressed = c.decompressed;
        const auto d = wec::text::decode_body(c.bytes, charset, r.utf8);
        r.encoding = d.encoding;
        r.xml_clean = d.xml_clean;
    } catch (const ws::BodyError& e) {
        r.error = e.what();
    }
    return r;
}

void expect_fused_same(std::string_view encoding, std::span<const std::uint8_t> body,
                       std::string_view charset, std::size_t limit, const std::string& what) {
    const Reference want = two_passes(encoding, body, charset, limit);
    Reference got;
    try {
        auto t = ws::decode_text(encoding, body, charset, limit);
        got.utf8 = std::move(t.utf8);
        got.encoding = t.encoding;
        got.content_bytes = t.content_bytes;
        got.decompressed = t.decompressed;
        got.xml_clean = t.xml_clean;
    } catch (const ws::BodyError& e) {
        got.error = e.what();
    }
    EXPECT_EQ(got.error, want.error) << what;
    EXPECT_TRUE(got.utf8 == want.utf8)
        << what << ": " << got.utf8.size() << " vs " << want.utf8.size() << " bytes";
    EXPECT_EQ(got.encoding, want.encoding) << what;
    EXPECT_EQ(got.content_bytes, want.content_bytes) << what;
    EXPECT_EQ(got.decompressed, want.decompressed) << what;
    EXPECT_EQ(got.xml_clean, want.xml_clean) << what;
    if (got.xml_clean) { // then the skipped sanitizing pass would have replaced nothing
        std::string copy = got.utf8;
        EXPECT_EQ(wec::text::sanitize_xml_chars(copy), 0u) << what;
    }
}

std::vector<std::uint8_t> with_bom(std::span<const std::uint8_t> utf16le, bool big_endian) {
    std::vector<std::uint8_t> out =
        big_endian ? std::vector<std::uint8_t>{0xFE, 0xFF} : std::vector<std::uint8_t>{0xFF, 0xFE};
    for (std::size_t i = 0; i + 1 < utf16le.size(); i += 2) {
        out.push_back(utf16le[i + (big_endian ? 1 : 0)]);
        out.push_back(utf16le[i + (big_endian ? 0 : 1)]);
    }
    if (utf16le.size() % 2) out.push_back(utf16le.back());
    return out;
}

// Decompressed bodies of several kTextPiece pieces whose cuts fall inside units and surrogate
// pairs: text of 4-byte pairs, 2-byte units and a lone surrogate, repeated with a shift.
std::vector<std::uint8_t> surrogate_text(std::size_t bytes) {
    std::vector<std::uint8_t> out;
    unsigned k = 0;
    while (out.size() < bytes) {
        const unsigned cp = 0x10000 + (k * 7919) % 0xFFFFF;
        const unsigned hi = 0xD800 + ((cp - 0x10000) >> 10), lo = 0xDC00 + ((cp - 0x10000) & 0x3FF);
        for (unsigned u : {hi, lo, 0x3Cu, 0x4E2Du + k % 50})
            out.insert(out.end(),
                       {static_cast<std::uint8_t>(u), static_cast<std::uint8_t>(u >> 8)});
        if (k % 97 == 0) out.insert(out.end(), {0x00, 0xD8}); // a lone high surrogate
        ++k;
    }
    return out;
}

TEST(WsmanDecodeText, SameAsTheTwoPassesOnRealAndShapedBodies) {
    std::vector<std::string> names;
    std::vector<std::vector<std::uint8_t>> bodies;
    const auto add = [&](std::string name, std::vector<std::uint8_t> body) {
        names.push_back(std::move(name));
        bodies.push_back(std::move(body));
    };
    add("heartbeat.utf16", data("heartbeat.utf16"));
    add("enumerate.utf16", data("enumerate.utf16"));
    add("events.utf16", wec::read_file(std::string(WEC_TEST_DATA) + "/sldc/events.utf16"));
    add("events.xml (UTF-8)", data("events.xml"));
    {
        // Larger than several pieces, in both byte orders.
        std::string xml;
        const auto events = data("events.xml");
        for (int i = 0; i < 4; ++i)
            xml.append(events.begin(), events.end());
        const auto le = wec::text::utf8_to_utf16le(xml);
        add("4 x events.xml, UTF-16LE + BOM", with_bom(le, false));
        add("4 x events.xml, UTF-16BE + BOM", with_bom(le, true));
        add("4 x events.xml, UTF-16LE, no BOM", le);
    }
    for (std::size_t extra : {0, 1}) {
        auto s = surrogate_text(5 * ws::kTextPiece + extra);
        add("surrogates + " + std::to_string(extra), with_bom(s, false));
        add("surrogates BE + " + std::to_string(extra), with_bom(s, true));
        if (extra) s.push_back(0x41); // odd length
        add("surrogates, no BOM, odd " + std::to_string(extra), s);
    }
    for (std::size_t i = 0; i < bodies.size(); ++i) {
        const std::string& name = names[i];
        const auto& original = bodies[i];
        for (const auto level : {wec::sldc::Level::Best, wec::sldc::Level::Fast}) {
            const auto compressed = wec::sldc::compress(original, level);
            for (std::string_view cs : {"UTF-16", "", "utf-16be", "utf-8"}) {
                const std::string what = name + ", charset '" + std::string(cs) + "'";
                expect_fused_same("SLDC", compressed, cs, 1 << 22, what);
                expect_fused_same("", original, cs, 1 << 22, what + ", not compressed");
            }
        }
    }
}

TEST(WsmanDecodeText, LimitAndErrorsAsBefore) {
    const auto original = wec::read_file(std::string(WEC_TEST_DATA) + "/sldc/events.utf16");
    const auto compressed = wec::sldc::compress(original);
    const std::size_t size = original.size();
    // The limit: at the size, one below (after pieces were converted), and small.
    for (std::size_t limit :
         {size + 1, size, size - 1, ws::kTextPiece + 5, std::size_t{100}, std::size_t{0}})
        expect_fused_same("SLDC", compressed, "UTF-16", limit, "limit " + std::to_string(limit));
    auto what = body_error([&] { ws::decode_text("SLDC", compressed, "UTF-16", size - 1); },
                           ws::BodyError::Reason::TooLarge);
    EXPECT_EQ(what, "body larger than " + std::to_string(size - 1) + " bytes after decompression");
    // Not SLDC, or cut after several pieces were decoded and converted: the body as is.
    const std::string xml = "<s:Envelope/>";
    expect_fused_same("SLDC", wec::as_bytes(xml), "", 1 << 20, "XML announced as SLDC");
    expect_fused_same("SLDC", original, "UTF-16", 1 << 20, "UTF-16 announced as SLDC");
    for (std::size_t cut : {compressed.size() / 2, compressed.size() - 8, std::size_t{3}}) {
        std::vector<std::uint8_t> truncated(compressed.begin(),
                                            compressed.begin() + static_cast<std::ptrdiff_t>(cut));
        expect_fused_same("SLDC", truncated, "UTF-16", 1 << 20, "cut at " + std::to_string(cut));
        const auto t = ws::decode_text("SLDC", truncated, "UTF-16", 1 << 20);
        EXPECT_FALSE(t.decompressed);
        EXPECT_EQ(t.content_bytes, cut);
    }
    expect_fused_same("SLDC", {}, "", 1 << 20, "empty");
    expect_fused_same(" sldc\t", compressed, "UTF-16", 1 << 20, "case and blanks");
    // Other encodings: the same sentence.
    expect_fused_same("gzip", compressed, "", 1 << 20, "gzip");
    expect_fused_same(std::string(200, 'x'), compressed, "", 1 << 20, "long value");
    what = body_error([&] { ws::decode_text("gzip", compressed, "", 1 << 20); },
                      ws::BodyError::Reason::UnsupportedEncoding);
    EXPECT_EQ(what, "unsupported Content-Encoding 'gzip' (only SLDC is accepted)");
}

TEST(WsmanDecodeText, RandomTextDifferential) {
    std::mt19937 rng(1515);
    for (int round = 0; round < 40; ++round) {
        std::vector<std::uint8_t> body;
        if (round % 2 == 0) body = {0xFF, 0xFE};
        const std::size_t units = rng() % (3 * ws::kTextPiece);
        for (std::size_t i = 0; i < units; ++i) {
            const unsigned pick = rng() % 8;
            const unsigned u = pick == 0   ? 0xD800 + rng() % 0x400
                               : pick == 1 ? 0xDC00 + rng() % 0x400
                               : pick == 2 ? rng() % 0x10000
                                           : "<a b='c'>d</a>\n"[rng() % 15];
            body.push_back(static_cast<std::uint8_t>(u));
            body.push_back(static_cast<std::uint8_t>(u >> 8));
        }
        if (rng() % 2) body.push_back(static_cast<std::uint8_t>(rng()));
        const auto compressed =
            wec::sldc::compress(body, round % 3 ? wec::sldc::Level::Fast : wec::sldc::Level::Best);
        const std::size_t limit = round % 5 == 0 ? rng() % (body.size() + 2) : 1 << 22;
        expect_fused_same("SLDC", compressed, round % 4 ? "utf-16" : "", limit,
                          "round " + std::to_string(round));
    }
}

} // namespace

// The collector's path: decode_text, then parse_owned told whether the text is xml_clean (the
// replacing pass skipped when it is): the same message as parse_owned checking the text itself,
// the real Windows body and the same body with a character XML forbids in an event's CDATA.
TEST(WsmanDecodeText, XmlCleanTextParsesAsTheSanitizedText) {
    const auto events = data("events.xml");
    std::string xml(events.begin(), events.end());
    std::string dirty = xml;
    const auto cdata = dirty.find("<![CDATA[");
    ASSERT_NE(cdata, std::string::npos);
    dirty.insert(cdata + 9, "\x05");
    for (const std::string* text : {&xml, &dirty}) {
        const auto body = with_bom(wec::text::utf8_to_utf16le(*text), false);
        const auto compressed = wec::sldc::compress(body, wec::sldc::Level::Fast);
        auto t = ws::decode_text("SLDC", compressed, "UTF-16", 1 << 22);
        EXPECT_EQ(t.xml_clean, text == &xml);
        std::string copy = t.utf8;
        const auto fused = ws::parse_owned(std::move(t.utf8), t.xml_clean);
        const auto checked = ws::parse_owned(std::move(copy));
        EXPECT_EQ(fused.replaced_chars, text == &xml ? 0u : 1u);
        EXPECT_EQ(fused.replaced_chars, checked.replaced_chars);
        ASSERT_EQ(fused.events.size(), checked.events.size());
        ASSERT_FALSE(fused.events.empty());
        for (std::size_t i = 0; i < fused.events.size(); ++i)
            EXPECT_EQ(fused.events[i].xml, checked.events[i].xml) << i;
        EXPECT_EQ(fused.bookmark, checked.bookmark);
    }
}

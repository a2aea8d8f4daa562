// The WinRM body step shared by the collector, `wec decode` and the client (wsman/body.hpp):
// Content-Encoding with the SLDC fallback, the limit, the charset, and the errors.
#include "common/files.hpp"
#include "sldc/sldc.hpp"
#include "wsman/body.hpp"

#include <gtest/gtest.h>
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

} // namespace

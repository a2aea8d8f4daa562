#include "http/http.hpp"

#include <gtest/gtest.h>
#include <string>
#include <vector>

using namespace wec::http;

namespace {

std::vector<std::uint8_t> bytes(std::string_view s) {
    return {s.begin(), s.end()};
}
std::string str(std::span<const std::uint8_t> b) {
    return {b.begin(), b.end()};
}

std::vector<std::uint8_t> token_header() {
    std::vector<std::uint8_t> h(60);
    for (std::size_t i = 0; i < h.size(); ++i)
        h[i] = static_cast<std::uint8_t>(i * 7 + 1);
    h[0] = 0x05;
    h[1] = 0x04;
    return h;
}

// Ciphertext that contains CRLFs, boundary-like text and NULs.
std::vector<std::uint8_t> ciphertext() {
    static const char raw[] = "\r\n--Encrypted Boundary\r\n\x00\xff--Encrypted Boundary--x\x00\x0d";
    return bytes(std::string_view(raw, sizeof raw - 1));
}

const char kWindowsKerberos[] =
    "--Encrypted Boundary\r\n"
    "Content-Type: application/HTTP-Kerberos-session-encrypted\r\n"
    "OriginalContent: type=application/soap+xml;charset=UTF-16;Length=51\r\n"
    "--Encrypted Boundary\r\n"
    "Content-Type: application/octet-stream\r\n";

} // namespace

TEST(Http, WindowsKerberosFormIsByteExact) {
    auto hdr = token_header();
    auto ct = ciphertext();
    ASSERT_EQ(ct.size(), 51u);
    auto out = build_encrypted(kKerberosProtocol, kDefaultOriginalType, ct.size(), hdr, ct, false);
    EXPECT_EQ(out.content_type,
              "multipart/encrypted;protocol=\"application/"
              "HTTP-Kerberos-session-encrypted\";boundary=\"Encrypted Boundary\"");
    std::string expected = kWindowsKerberos;
    expected += std::string("\x3c\x00\x00\x00", 4);
    expected += str(hdr) + str(ct) + "--Encrypted Boundary--\r\n";
    EXPECT_EQ(str(out.body), expected);
}

// encrypted_frame (the client seals straight into the body between its head and tail) gives
// build_encrypted's bytes around the token, for every form, and the same errors.
TEST(Http, EncryptedFrameSurroundsTheTokenAsBuildEncryptedDoes) {
    auto hdr = token_header();
    auto ct = ciphertext();
    for (auto proto : {kKerberosProtocol, kSpnegoProtocol}) {
        for (bool tab : {false, true}) {
            auto out = build_encrypted(proto, kDefaultOriginalType, ct.size(), hdr, ct, tab);
            auto frame = encrypted_frame(proto, kDefaultOriginalType, ct.size(), tab);
            EXPECT_EQ(frame.content_type, out.content_type);
            std::string expected = frame.head;
            expected += std::string("\x3c\x00\x00\x00", 4);
            expected += str(hdr) + str(ct) + frame.tail;
            EXPECT_EQ(str(out.body), expected);
            EXPECT_EQ(frame.tail, "--Encrypted Boundary--\r\n");
        }
    }
    EXPECT_EQ(encrypted_frame(kKerberosProtocol, kDefaultOriginalType, 51, false).head,
              kWindowsKerberos);
    EXPECT_THROW(encrypted_frame("application/x", kDefaultOriginalType, 0, false), FramingError);
    EXPECT_THROW(encrypted_frame(kKerberosProtocol, kDefaultOriginalType, 0, false, ""),
                 FramingError);
}

TEST(Http, BuildThenParseAllForms) {
    auto hdr = token_header();
    auto ct = ciphertext();
    for (auto proto : {kKerberosProtocol, kSpnegoProtocol}) {
        for (bool tab : {false, true}) {
            auto out =
                build_encrypted(proto, "application/soap+xml;charset=UTF-8", 1234, hdr, ct, tab);
            std::string text = str(out.body);
            EXPECT_EQ(text.find("\tContent-Type: ") != std::string::npos, tab);
            EXPECT_EQ(text.find(std::string("Content-Type: ") + std::string(proto) + "\r\n") !=
                          std::string::npos,
                      true);
            auto p = parse_encrypted(out.body, out.content_type);
            EXPECT_EQ(p.protocol, proto);
            EXPECT_EQ(p.tab_before_headers, tab);
            EXPECT_EQ(p.length, 1234u);
            EXPECT_EQ(p.original_type, "application/soap+xml;charset=UTF-8");
            EXPECT_EQ(p.boundary, "Encrypted Boundary");
            EXPECT_EQ(str(p.header), str(hdr));
            EXPECT_EQ(str(p.ciphertext), str(ct));
            // Spans point into the body (no copies).
            EXPECT_GE(p.header.data(), out.body.data());
            EXPECT_LE(p.ciphertext.data() + p.ciphertext.size(), out.body.data() + out.body.size());
        }
    }
}

TEST(Http, ParsesPywinrmTabFormWithUnquotedBoundaryAndNoFinalCrlf) {
    std::string body = "--Encrypted Boundary\r\n"
                       "\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
                       "\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=3\r\n"
                       "--Encrypted Boundary\r\n"
                       "\tContent-Type: application/octet-stream\r\n";
    body += std::string("\x02\x00\x00\x00", 4) + "HHabc--Encrypted Boundary--";
    // The spans of an EncryptedPart point into the body: it must outlive them.
    const auto data = bytes(body);
    auto p = parse_encrypted(data, "Multipart/Encrypted; protocol=\"application/"
                                   "HTTP-SPNEGO-session-encrypted\"; boundary=\"Encrypted "
                                   "Boundary\"");
    EXPECT_EQ(p.protocol, kSpnegoProtocol);
    EXPECT_TRUE(p.tab_before_headers);
    EXPECT_EQ(str(p.header), "HH");
    EXPECT_EQ(str(p.ciphertext), "abc");

    std::string b2 = "--XYZ\r\nContent-Type: application/HTTP-Kerberos-session-encrypted\r\n"
                     "OriginalContent: type=application/soap+xml;charset=UTF-16;Length=1\r\n"
                     "--XYZ\r\nContent-Type: application/octet-stream\r\n";
    b2 += std::string("\x00\x00\x00\x00", 4) + "Z--XYZ--\r\n";
    const auto data2 = bytes(b2);
    auto p2 = parse_encrypted(data2, "multipart/encrypted;boundary=XYZ");
    EXPECT_EQ(p2.header.size(), 0u);
    EXPECT_EQ(str(p2.ciphertext), "Z");
    EXPECT_FALSE(p2.tab_before_headers);
}

namespace {

std::string valid_body() {
    auto out = build_encrypted(kKerberosProtocol, kDefaultOriginalType, 51, token_header(),
                               ciphertext(), false);
    return str(out.body);
}
const std::string kCt = "multipart/encrypted;protocol=\"application/HTTP-Kerberos-session-"
                        "encrypted\";boundary=\"Encrypted Boundary\"";

std::string error_of(const std::string& body, const std::string& ct = kCt) {
    try {
        parse_encrypted(bytes(body), ct);
    } catch (const FramingError& e) {
        return e.what();
    }
    return "no error";
}

} // namespace

TEST(Http, MalformedFramingErrors) {
    std::string good = valid_body();
    ASSERT_EQ(error_of(good), "no error");
    EXPECT_NE(error_of(good, "multipart/encrypted;protocol=x").find("no boundary parameter"),
              std::string::npos);
    EXPECT_NE(error_of(good, "application/soap+xml").find("not multipart/encrypted"),
              std::string::npos);
    EXPECT_NE(error_of(good, "multipart/encrypted;boundary=\"Other\"").find("opening boundary"),
              std::string::npos);
    EXPECT_NE(
        error_of(good, "multipart/encrypted;boundary=\"Encrypted Boundary").find("unterminated"),
        std::string::npos);
    EXPECT_NE(error_of(good, "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-"
                             "encrypted\";boundary=\"Encrypted Boundary\"")
                  .find("differs"),
              std::string::npos);
    EXPECT_NE(error_of("").find("opening boundary"), std::string::npos);

    // Header length larger than the rest of the body.
    std::string big = good;
    auto lpos = std::string(kWindowsKerberos).size();
    big[lpos] = '\xff';
    big[lpos + 1] = '\xff';
    std::string e = error_of(big);
    EXPECT_NE(e.find("header length 65535 exceeds"), std::string::npos) << e;
    EXPECT_NE(e.find("offset " + std::to_string(lpos)), std::string::npos) << e;

    // Truncated inside the 4-byte length.
    EXPECT_NE(error_of(good.substr(0, lpos + 2)).find("inside the 4-byte header length"),
              std::string::npos);
    // Closing boundary missing.
    EXPECT_NE(error_of(good.substr(0, good.size() - 10)).find("no closing boundary"),
              std::string::npos);
    // Closing boundary right after a too-long header.
    std::string overlap = std::string(kWindowsKerberos) + std::string("\x08\x00\x00\x00", 4) +
                          "abcdefgh--Encrypted Boundary--\r\n";
    EXPECT_EQ(error_of(overlap), "no error");
    overlap[lpos] = '\x10';
    EXPECT_NE(error_of(overlap).find("overlaps"), std::string::npos) << error_of(overlap);
    // Blank line after the part headers.
    std::string blank = good;
    blank.insert(blank.find("--Encrypted Boundary\r\nContent-Type: application/octet"), "\r\n");
    EXPECT_NE(error_of(blank).find("blank line"), std::string::npos) << error_of(blank);
    // Wrong second part type.
    std::string wrong = good;
    wrong.replace(wrong.find("application/octet-stream"), 24, "text/plain");
    EXPECT_NE(error_of(wrong).find("application/octet-stream"), std::string::npos);
    // Unknown protocol in the part.
    std::string proto = good;
    proto.replace(proto.find("HTTP-Kerberos"), 13, "HTTP-Xerberos");
    EXPECT_NE(error_of(proto, "multipart/encrypted;boundary=\"Encrypted Boundary\"")
                  .find("unknown protocol"),
              std::string::npos);
    // No OriginalContent / bad Length.
    std::string noorig = good;
    noorig.replace(noorig.find("OriginalContent"), 15, "OriginalKontent");
    EXPECT_NE(error_of(noorig).find("no OriginalContent"), std::string::npos);
    std::string badlen = good;
    badlen.replace(badlen.find("Length=51"), 9, "Length=5x");
    EXPECT_NE(error_of(badlen).find("not a decimal number"), std::string::npos);
    // Unterminated part header line.
    EXPECT_NE(error_of("--Encrypted Boundary\r\nContent-Type: abc").find("unterminated"),
              std::string::npos);
    // Every truncation fails cleanly.
    for (std::size_t n = 0; n < good.size() - 2; ++n) {
        std::string cut = good.substr(0, n);
        // A ciphertext that itself contains the closing delimiter cannot be told from the end.
        if (cut.ends_with("--Encrypted Boundary--")) continue;
        EXPECT_NE(error_of(cut), "no error") << n;
    }
    EXPECT_THROW(build_encrypted("application/x", kDefaultOriginalType, 0, {}, {}, false),
                 FramingError);
}

TEST(Http, ContentTypeHelpers) {
    auto mt = parse_media_type("Application/SOAP+XML ; CharSet=\"UTF-16\";action=\"a\\\"b\"");
    EXPECT_EQ(mt.type, "application/soap+xml");
    EXPECT_TRUE(mt.is("application/soap+xml"));
    ASSERT_TRUE(mt.charset());
    EXPECT_EQ(*mt.charset(), "UTF-16");
    EXPECT_EQ(*mt.param("ACTION"), "a\"b");
    EXPECT_FALSE(mt.boundary());
    EXPECT_THROW(parse_media_type("  ;charset=x"), FramingError);

    auto oc = parse_original_content("type=application/soap+xml;charset=UTF-16;Length=12345");
    EXPECT_EQ(oc.type, "application/soap+xml");
    EXPECT_EQ(oc.charset, "UTF-16");
    EXPECT_EQ(oc.length, 12345u);
    EXPECT_EQ(oc.content_type(), "application/soap+xml;charset=UTF-16");
    auto oc2 = parse_original_content("TYPE=text/xml; length=0");
    EXPECT_EQ(oc2.type, "text/xml");
    EXPECT_EQ(oc2.length, 0u);
    EXPECT_THROW(parse_original_content("charset=UTF-16;Length=1"), FramingError);
    EXPECT_THROW(parse_original_content("type=a;Length=-1"), FramingError);
    EXPECT_THROW(parse_original_content("type=a;Length=99999999999999999999999"), FramingError);

    EXPECT_TRUE(is_multipart_encrypted("Multipart/Encrypted;boundary=x"));
    EXPECT_FALSE(is_multipart_encrypted("multipart/encryptedx"));
    EXPECT_TRUE(iequals("Content-LENGTH", "content-length"));
    EXPECT_EQ(trim(" \tab \t"), "ab");
}

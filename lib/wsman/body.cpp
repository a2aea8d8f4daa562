#include "wsman/body.hpp"

#include "http/http.hpp"
#include "sldc/sldc.hpp"

#include <algorithm>

namespace wec::wsman {

namespace {

[[noreturn]] void unsupported(std::string_view encoding) {
    throw BodyError(BodyError::Reason::UnsupportedEncoding,
                    "unsupported Content-Encoding '" + std::string(encoding.substr(0, 64)) +
                        "' (only SLDC is accepted)");
}

[[noreturn]] void too_large(std::size_t limit) {
    throw BodyError(BodyError::Reason::TooLarge,
                    "body larger than " + std::to_string(limit) + " bytes after decompression");
}

template <class Vec>
Content decode_into(std::string_view content_encoding, std::span<const std::uint8_t> body,
                    std::size_t limit, Vec& scratch) {
    auto encoding = http::trim(content_encoding);
    if (encoding.empty()) return {body, false};
    if (!http::iequals(encoding, "SLDC")) unsupported(encoding);
    if (body.empty()) return {body, false};
    scratch.clear();
    // Windows compresses SOAP about 3:1; reserving that avoids most regrowth.
    scratch.reserve(std::min(limit, body.size() * 4 + 1024));
    try {
        sldc::decompress(body, scratch, limit);
    } catch (const sldc::SldcError& e) {
        if (e.code() == sldc::ErrorCode::OutputLimit) too_large(limit);
        return {body, false}; // not an SLDC record: announced but not applied
    }
    return {scratch, true};
}

} // namespace

Content decode_content(std::string_view content_encoding, std::span<const std::uint8_t> body,
                       std::size_t limit, std::vector<std::uint8_t>& scratch) {
    return decode_into(content_encoding, body, limit, scratch);
}

Content decode_content(std::string_view content_encoding, std::span<const std::uint8_t> body,
                       std::size_t limit, sldc::Buffer& scratch) {
    return decode_into(content_encoding, body, limit, scratch);
}

Text decode_text(std::string_view content_encoding, std::span<const std::uint8_t> body,
                 std::string_view charset, std::size_t limit) {
    Text t;
    const auto as_is = [&] {
        t.utf8.clear();
        const text::Decoded d = text::decode_body(body, charset, t.utf8);
        t.encoding = d.encoding;
        t.xml_clean = d.xml_clean;
        t.content_bytes = body.size();
        t.decompressed = false;
        return std::move(t);
    };
    auto encoding = http::trim(content_encoding);
    if (encoding.empty()) return as_is();
    if (!http::iequals(encoding, "SLDC")) unsupported(encoding);
    if (body.empty()) return as_is();
    // Room for the UTF-8 once: the record's output size as sldc::decompress sizes it (Windows'
    // uncompressed length when plausible), and UTF-16 markup is ASCII (half as many bytes in
    // UTF-8).
    t.utf8.reserve(sldc::output_size_hint(body, limit) / 2 + 16);
    text::BodyDecoder decoder(charset, t.utf8);
    std::size_t total = 0;
    try {
        sldc::decompress(
            body,
            [&](std::span<const std::uint8_t> piece) {
                total += piece.size();
                decoder.append(piece);
            },
            limit, kTextPiece);
    } catch (const sldc::SldcError& e) {
        if (e.code() == sldc::ErrorCode::OutputLimit) too_large(limit);
        return as_is(); // not an SLDC record: announced but not applied
    }
    const text::Decoded d = decoder.finish();
    t.encoding = d.encoding;
    t.xml_clean = d.xml_clean;
    t.content_bytes = total;
    t.decompressed = true;
    return t;
}

std::string charset_of(std::string_view content_type) {
    if (content_type.empty()) return {};
    try {
        auto media = http::parse_media_type(content_type); // charset() points into it
        if (auto cs = media.charset()) return std::string(*cs);
    } catch (const http::FramingError&) {
    }
    return {};
}

Message parse_content(std::span<const std::uint8_t> content, std::string_view charset,
                      text::Encoding& encoding) {
    std::string utf8;
    const text::Decoded d = text::decode_body(content, charset, utf8);
    encoding = d.encoding;
    return parse_owned(std::move(utf8), d.xml_clean);
}

Body decode_body(std::string_view content_type, std::string_view content_encoding,
                 std::span<const std::uint8_t> body, std::size_t limit) {
    std::vector<std::uint8_t> scratch;
    auto content = decode_content(content_encoding, body, limit, scratch);
    Body b;
    b.content_bytes = content.bytes.size();
    b.message = parse_content(content.bytes, charset_of(content_type), b.encoding);
    return b;
}

} // namespace wec::wsman

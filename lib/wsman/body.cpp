#include "wsman/body.hpp"

#include "http/http.hpp"
#include "sldc/sldc.hpp"

#include <algorithm>

namespace wec::wsman {

namespace {

template <class Vec>
Content decode_into(std::string_view content_encoding, std::span<const std::uint8_t> body,
                    std::size_t limit, Vec& scratch) {
    auto encoding = http::trim(content_encoding);
    if (encoding.empty()) return {body, false};
    if (!http::iequals(encoding, "SLDC"))
        throw BodyError(BodyError::Reason::UnsupportedEncoding,
                        "unsupported Content-Encoding '" + std::string(encoding.substr(0, 64)) +
                            "' (only SLDC is accepted)");
    if (body.empty()) return {body, false};
    scratch.clear();
    // Windows compresses SOAP about 3:1; reserving that avoids most regrowth.
    scratch.reserve(std::min(limit, body.size() * 4 + 1024));
    try {
        sldc::decompress(body, scratch, limit);
    } catch (const sldc::SldcError& e) {
        if (e.code() == sldc::ErrorCode::OutputLimit)
            throw BodyError(BodyError::Reason::TooLarge, "body larger than " +
                                                             std::to_string(limit) +
                                                             " bytes after decompression");
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
    encoding = text::decode_body(content, charset, utf8).encoding;
    return parse_owned(std::move(utf8));
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

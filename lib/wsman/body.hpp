// The WinRM body step, shared by the collector (lib/server), the offline decoder (lib/decode) and
// the client (lib/client): Content-Encoding (SLDC, with its fallback) -> charset -> UTF-8 ->
// WS-Man. One set of rules, one limit, one set of errors (docs/protocol.md, "Bodies").
#pragma once

#include "common/error.hpp"
#include "sldc/sldc.hpp"
#include "text/text.hpp"
#include "wsman/wsman.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::wsman {

// A body that cannot be read: an encoding other than SLDC, or more than the limit once
// decompressed. what() is the sentence the collector logs and answers with its 400.
class BodyError : public wec::Error {
public:
    enum class Reason { UnsupportedEncoding, TooLarge };
    BodyError(Reason reason, std::string message)
        : wec::Error(std::move(message)), reason_(reason) {}
    Reason reason() const noexcept { return reason_; }

private:
    Reason reason_;
};

// Bytes after the Content-Encoding step: `body` itself, or the decompressed bytes in `scratch`.
struct Content {
    std::span<const std::uint8_t> bytes;
    bool decompressed = false;
};

// Step 1, Content-Encoding. None (empty): `body` as is. "SLDC" (any case, surrounding blanks
// ignored): `body` decompressed into `scratch` (cleared first), at most `limit` bytes, or
// BodyError TooLarge. Windows announces SLDC on every request of a subscription, even for bodies it
// did not compress, so a body that is not a valid SLDC record (and an empty body) is taken as is.
// Any other encoding: BodyError UnsupportedEncoding (its value cut to 64 bytes in the message).
Content decode_content(std::string_view content_encoding, std::span<const std::uint8_t> body,
                       std::size_t limit, std::vector<std::uint8_t>& scratch);
// The same into an sldc::Buffer, which is not zero-filled before the output is decoded into it.
Content decode_content(std::string_view content_encoding, std::span<const std::uint8_t> body,
                       std::size_t limit, sldc::Buffer& scratch);

// Step 2, charset: the charset parameter of a Content-Type; empty when there is none or when the
// header cannot be parsed (text::decode_body then goes by BOM and heuristic).
std::string charset_of(std::string_view content_type);

// Steps 3 and 4: the text (BOM, else `charset`, else a heuristic: text::decode_body) as UTF-8,
// then the envelope (wsman::parse_owned). `encoding` receives the text encoding found. Throws
// ParseError.
Message parse_content(std::span<const std::uint8_t> content, std::string_view charset,
                      text::Encoding& encoding);

// Steps 1 to 3 in one pass: the body's text as UTF-8.
struct Text {
    std::string utf8;
    text::Encoding encoding = text::Encoding::Utf8;
    std::size_t content_bytes = 0; // after the Content-Encoding step
    bool decompressed = false;
    bool xml_clean = false; // text::Decoded::xml_clean: for parse_owned
};

// decode_content then text::decode_body (`charset` from charset_of), with the same result,
// errors and limit, but an SLDC body is decoded a piece at a time (kTextPiece bytes) and each
// piece converted to UTF-8 while it is in cache: the decompressed body (~4.5 KB of UTF-16 an
// event, more than L2 for a batch) is never written out whole and read back. Throws BodyError.
Text decode_text(std::string_view content_encoding, std::span<const std::uint8_t> body,
                 std::string_view charset, std::size_t limit);
inline constexpr std::size_t kTextPiece = std::size_t{16} << 10;

// A parsed body and the text encoding the client used (to answer in the same one).
struct Body {
    Message message;
    text::Encoding encoding = text::Encoding::Utf8;
    std::size_t content_bytes = 0; // after the Content-Encoding step
};

// Steps 1 to 4: decode_content, charset_of(content_type), parse_content.
// Throws BodyError, or ParseError for a body that is not a WS-Management envelope.
Body decode_body(std::string_view content_type, std::string_view content_encoding,
                 std::span<const std::uint8_t> body, std::size_t limit);

} // namespace wec::wsman

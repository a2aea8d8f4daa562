// HTTP helpers for WinRM/WEF: Content-Type parsing and the multipart/encrypted framing that
// carries Kerberos/SPNEGO-sealed bodies (docs/protocol.md section 2).
#pragma once

#include "common/error.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wec::http {

// Malformed multipart/encrypted framing or header value; what() names the problem and byte offset.
class FramingError : public wec::Error {
public:
    using wec::Error::Error;
};

inline constexpr std::string_view kKerberosProtocol = "application/HTTP-Kerberos-session-encrypted";
inline constexpr std::string_view kSpnegoProtocol = "application/HTTP-SPNEGO-session-encrypted";
inline constexpr std::string_view kEncryptedBoundary = "Encrypted Boundary";
inline constexpr std::string_view kDefaultOriginalType = "application/soap+xml;charset=UTF-16";

// ASCII case-insensitive comparison (header names, media types, parameter names).
bool iequals(std::string_view a, std::string_view b) noexcept;
// Strips spaces and tabs on both ends.
std::string_view trim(std::string_view s) noexcept;

// A media type with its parameters: `type/subtype; name=value; name="quoted value"`.
struct MediaType {
    std::string type;                                        // lower-cased "type/subtype"
    std::vector<std::pair<std::string, std::string>> params; // names lower-cased, values unquoted

    // First parameter of that name (case-insensitive), if present. The view points into this
    // object, so calling these on a temporary does not compile (it would dangle).
    std::optional<std::string_view> param(std::string_view name) const&;
    std::optional<std::string_view> charset() const& { return param("charset"); }
    std::optional<std::string_view> boundary() const& { return param("boundary"); }
    std::optional<std::string_view> protocol() const& { return param("protocol"); }
    std::optional<std::string_view> param(std::string_view name) const&& = delete;
    std::optional<std::string_view> charset() const&& = delete;
    std::optional<std::string_view> boundary() const&& = delete;
    std::optional<std::string_view> protocol() const&& = delete;
    bool is(std::string_view media) const { return iequals(type, media); }
};

// Parses a Content-Type value. Throws FramingError for an empty type or an unterminated quote.
MediaType parse_media_type(std::string_view value);

// `OriginalContent: type=application/soap+xml;charset=UTF-16;Length=N`.
struct OriginalContent {
    std::string type;    // "application/soap+xml" (as written)
    std::string charset; // "UTF-16" (empty if absent)
    std::optional<std::uint64_t> length;
    // The original Content-Type value: type plus charset ("application/soap+xml;charset=UTF-16").
    std::string content_type() const;
};
// Throws FramingError if there is no type= or Length is not a decimal number.
OriginalContent parse_original_content(std::string_view value);

// True for `multipart/encrypted` (any parameters).
bool is_multipart_encrypted(std::string_view content_type);

// One parsed multipart/encrypted body. The spans point into the body passed to parse_encrypted.
struct EncryptedPart {
    std::string protocol;      // kKerberosProtocol or kSpnegoProtocol (as written in the body)
    std::string boundary;      // from the Content-Type parameter
    std::string original_type; // original Content-Type ("application/soap+xml;charset=UTF-16")
    std::uint64_t length = 0;  // declared cleartext length N
    bool tab_before_headers = false;
    std::span<const std::uint8_t> header;     // the L bytes of GSS wrap token header
    std::span<const std::uint8_t> ciphertext; // the rest, up to the closing boundary
};

// Parses a multipart/encrypted body given the request/response Content-Type value.
// Throws FramingError (with byte offsets) on any deviation from the framing.
EncryptedPart parse_encrypted(std::span<const std::uint8_t> body, std::string_view content_type);

struct EncryptedBody {
    std::vector<std::uint8_t> body;
    std::string content_type; // value of the Content-Type header to send with it
};

// What build_encrypted puts around the sealed token ([32-bit length][header][ciphertext]): the
// text before it (both parts' headers), after it (the closing boundary) and the Content-Type,
// for a caller that seals straight into the body (auth::seal_append). Same arguments and errors.
struct EncryptedFrame {
    std::string head, tail, content_type;
};
EncryptedFrame encrypted_frame(std::string_view protocol, std::string_view original_type,
                               std::uint64_t plaintext_length, bool tab_form,
                               std::string_view boundary = kEncryptedBoundary);

// Builds a multipart/encrypted body the way the client does (tab_form: TAB before part headers).
// protocol must be kKerberosProtocol or kSpnegoProtocol (throws FramingError otherwise).
EncryptedBody build_encrypted(std::string_view protocol, std::string_view original_type,
                              std::uint64_t plaintext_length, std::span<const std::uint8_t> header,
                              std::span<const std::uint8_t> ciphertext, bool tab_form,
                              std::string_view boundary = kEncryptedBoundary);

} // namespace wec::http

// base64 (RFC 4648 section 4: the standard alphabet, '=' padding) for the tokens of the
// Authorization and WWW-Authenticate headers. One strict decoder for the collector, the client and
// the offline decoder, so that all three accept and refuse the same tokens.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::text {

// Canonical, padded encoding.
std::string base64_encode(std::span<const std::uint8_t> data);

// Strict decoding: the length is a multiple of 4, only the standard alphabet, '=' only as the last
// one or two characters of the text, and the bits the padding leaves unused are zero (so that one
// byte string has one accepted text). No whitespace anywhere: callers trim header values first.
// std::nullopt for anything else. The empty text is valid (no bytes).
std::optional<std::vector<std::uint8_t>> base64_decode(std::string_view text);

} // namespace wec::text

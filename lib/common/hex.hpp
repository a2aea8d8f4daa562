// Hexadecimal text of bytes (thumbprints, UUIDs, digests).
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace wec {

// Two upper-case digits per byte, no separator ("0A1B..."), appended to `out`.
inline void append_hex_upper(std::span<const std::uint8_t> bytes, std::string& out) {
    static constexpr char kDigits[] = "0123456789ABCDEF";
    out.reserve(out.size() + bytes.size() * 2);
    for (std::uint8_t b : bytes) {
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 15]);
    }
}

inline std::string hex_upper(std::span<const std::uint8_t> bytes) {
    std::string out;
    append_hex_upper(bytes, out);
    return out;
}

} // namespace wec

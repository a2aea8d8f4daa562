// Fixed-width integers read from bytes in a given order (file formats and wire protocols: EVTX and
// pcap are little-endian, IP/TCP and Kerberos framing big-endian). The caller has checked the size.
#pragma once

#include <cstdint>

namespace wec {

constexpr std::uint16_t load_le16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] | p[1] << 8);
}
constexpr std::uint32_t load_le32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
           std::uint32_t{p[3]} << 24;
}
constexpr std::uint64_t load_le64(const std::uint8_t* p) {
    return load_le32(p) | std::uint64_t{load_le32(p + 4)} << 32;
}
constexpr std::uint16_t load_be16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}
constexpr std::uint32_t load_be32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

} // namespace wec

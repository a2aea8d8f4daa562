// Internal constants of the SLDC (ECMA-321) bit format shared by the encoder and the decoder.
#pragma once

#include <cstddef>
#include <cstdint>

namespace wec::sldc::detail {

inline constexpr std::size_t kHistorySize = 1024; // bytes in the circular history buffer
inline constexpr unsigned kDisplacementBits = 10;
inline constexpr unsigned kMinMatch = 2;
inline constexpr unsigned kMaxMatch = 271; // 32 + 0xEF; 0xF0..0xFF would form a control symbol

// A control symbol is nine 1-bits followed by a 4-bit code.
inline constexpr std::uint32_t kControlPrefix = 0x1FF;
inline constexpr unsigned kControlBits = 13;

enum Control : std::uint32_t {
    kFlush = 0x0,
    kScheme1 = 0x1,
    kScheme2 = 0x2,
    kFileMark = 0x3,
    kEndOfRecord = 0x4,
    kReset1 = 0x5,
    kReset2 = 0x6,
    kEndMarker = 0xF,
};

} // namespace wec::sldc::detail

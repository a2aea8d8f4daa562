// A straightforward SLDC (ECMA-321) decoder for differential tests and fuzzing of the fast one in
// lib/sldc/decompress.cpp: it reads one bit at a time and keeps the real 1024-byte circular
// history (copy pointers read it byte by byte from their absolute displacement), shares no code
// with the library, and is slow on purpose. It gives what sldc::decompress() promises: the output
// up to the fault, the error code and the bit offset of the symbol where it was found.
#pragma once

#include "sldc/sldc.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace wec::sldc::reference {

struct Result {
    std::vector<std::uint8_t> out;
    std::optional<ErrorCode> error; // none: an End of Record was reached
    std::size_t bit = 0;            // the bit offset of the faulty symbol
    bool operator==(const Result&) const = default;
};

inline Result decode(std::span<const std::uint8_t> in, std::size_t max_output) {
    Result r;
    const std::size_t total = in.size() * 8;
    std::size_t pos = 0;
    // Bits past the end read as zero; a symbol that ends past the end is a truncated input.
    const auto bit_at = [&](std::size_t p) -> unsigned {
        return p < total ? (in[p / 8] >> (7 - p % 8)) & 1 : 0;
    };
    const auto peek = [&](unsigned n) {
        std::uint32_t v = 0;
        for (unsigned k = 0; k < n; ++k)
            v = v << 1 | bit_at(pos + k);
        return v;
    };
    const auto take = [&](unsigned n) {
        const std::uint32_t v = peek(n);
        pos += n;
        return v;
    };
    std::array<std::uint8_t, 1024> history{};
    std::size_t written = 0; // bytes written to the history since the last Reset
    int scheme = 0;
    const auto emit = [&](std::uint8_t b) {
        r.out.push_back(b);
        history[written % 1024] = b;
        ++written;
    };
    const auto fail = [&](ErrorCode code, std::size_t bit) {
        r.error = code;
        r.bit = bit;
        return r;
    };

    for (;;) {
        const std::size_t start = pos;
        if (start >= total) return fail(ErrorCode::Truncated, start);
        if (peek(9) == 0x1FF) {
            take(9);
            const std::uint32_t code = take(4);
            if (pos > total) return fail(ErrorCode::Truncated, start);
            switch (code) {
            case 0x0: // Flush: 0-bits up to the next 32-bit boundary
                pos = (pos + 31) / 32 * 32;
                break;
            case 0x1:
            case 0x2:
                scheme = static_cast<int>(code);
                break;
            case 0x3:
            case 0xF:
                break;
            case 0x4:
                return r;
            case 0x5:
            case 0x6:
                written = 0;
                scheme = code == 0x5 ? 1 : 2;
                break;
            default:
                return fail(ErrorCode::ReservedSymbol, start);
            }
            continue;
        }
        if (scheme == 0) {
            return fail(start + 9 > total ? ErrorCode::Truncated : ErrorCode::NoScheme, start);
        }
        if (scheme == 2) {
            const auto b = static_cast<std::uint8_t>(take(8));
            if (b == 0xFF) take(1);
            if (pos > total) return fail(ErrorCode::Truncated, start);
            if (r.out.size() + 1 > max_output) return fail(ErrorCode::OutputLimit, start);
            emit(b);
            continue;
        }
        if (take(1) == 0) {
            const auto b = static_cast<std::uint8_t>(take(8));
            if (pos > total) return fail(ErrorCode::Truncated, start);
            if (r.out.size() + 1 > max_output) return fail(ErrorCode::OutputLimit, start);
            emit(b);
            continue;
        }
        // Match count: 0x -> 2..3, 10xx -> 4..7, 110xxx -> 8..15, 1110xxxx -> 16..31,
        // 1111xxxxxxxx -> 32..271.
        std::size_t len;
        if (take(1) == 0) {
            len = 2 + take(1);
        } else if (take(1) == 0) {
            len = 4 + take(2);
        } else if (take(1) == 0) {
            len = 8 + take(3);
        } else if (take(1) == 0) {
            len = 16 + take(4);
        } else {
            len = 32 + take(8);
        }
        std::size_t disp = take(10);
        if (pos > total) return fail(ErrorCode::Truncated, start);
        if (written < 1024 && disp >= written) return fail(ErrorCode::UnwrittenHistory, start);
        if (len > max_output - r.out.size()) return fail(ErrorCode::OutputLimit, start);
        for (std::size_t k = 0; k < len; ++k) {
            emit(history[disp]);
            disp = (disp + 1) % 1024;
        }
    }
}

} // namespace wec::sldc::reference

// Fuzzes the SLDC decoder (only sldc::SldcError may escape, never more output than the limit) and
// the encoder (compress then decompress gives the input back).
#include "sldc/sldc.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);

    constexpr std::size_t kLimit = 1u << 20;
    std::vector<std::uint8_t> out;
    try {
        wec::sldc::decompress(in, out, kLimit);
    } catch (const wec::sldc::SldcError& e) {
        if (e.bit_offset() > size * 8 + 64) std::abort();
    }
    if (out.size() > kLimit) std::abort();

    const std::vector<std::uint8_t> packed = wec::sldc::compress(in);
    const std::vector<std::uint8_t> back = wec::sldc::decompress(packed, size);
    if (back.size() != size || !std::equal(back.begin(), back.end(), data)) std::abort();
    return 0;
}

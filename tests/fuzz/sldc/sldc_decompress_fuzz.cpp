// Fuzzes the SLDC decoder (only sldc::SldcError may escape, never more output than the limit; the
// same output and error into an sldc::Buffer; the same output, error code and bit offset as the
// plain reference decoder of tests/sldc, with a large limit, one taken from the first byte and one
// just under the output's size) and the encoder at both levels (compress then decompress gives the
// input back).
#include "../../sldc/reference_decoder.hpp"
#include "sldc/sldc.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);

    constexpr std::size_t kLimit = 1u << 20;
    std::vector<std::uint8_t> out;
    std::size_t bit = 0;
    try {
        wec::sldc::decompress(in, out, kLimit);
    } catch (const wec::sldc::SldcError& e) {
        if (e.bit_offset() > size * 8 + 64) std::abort();
        bit = e.bit_offset() + 1;
    }
    if (out.size() > kLimit) std::abort();
    wec::sldc::Buffer buffer;
    std::size_t buffer_bit = 0;
    try {
        wec::sldc::decompress(in, buffer, kLimit);
    } catch (const wec::sldc::SldcError& e) {
        buffer_bit = e.bit_offset() + 1;
    }
    if (buffer_bit != bit || buffer.size() != out.size() ||
        !std::equal(buffer.begin(), buffer.end(), out.begin()))
        std::abort();

    // Differential: the fast decoder against the reference one (output, error code, bit offset),
    // with a large limit, one from the first byte, and one up to 255 bytes under what the input
    // decodes to (where the fast loop must hand the symbols that could pass it to the checked
    // path).
    const std::size_t near_end =
        size > 1 ? out.size() - std::min<std::size_t>(out.size(), data[1]) : 0;
    for (const std::size_t limit : {kLimit, size > 0 ? std::size_t{data[0]} * 37 : 0, near_end}) {
        wec::sldc::reference::Result got;
        try {
            wec::sldc::decompress(in, got.out, limit);
        } catch (const wec::sldc::SldcError& e) {
            got.error = e.code();
            got.bit = e.bit_offset();
        }
        if (!(got == wec::sldc::reference::decode(in, limit))) std::abort();
    }

    for (const auto level : {wec::sldc::Level::Best, wec::sldc::Level::Fast}) {
        const std::vector<std::uint8_t> packed = wec::sldc::compress(in, level);
        const std::vector<std::uint8_t> back = wec::sldc::decompress(packed, size);
        if (back.size() != size || !std::equal(back.begin(), back.end(), data)) std::abort();
    }
    return 0;
}

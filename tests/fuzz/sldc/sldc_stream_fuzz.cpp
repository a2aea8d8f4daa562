// Differential fuzzing of streaming SLDC decompression against the one-shot decoder: the same
// output, error code and bit offset, with the input in memory and read in pieces whose sizes come
// from the input itself (so that it shares sldc_decompress_fuzz's corpus of SLDC records), with a
// large output limit and one taken from the first byte.
#include "sldc/sldc.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <vector>

namespace {

struct Outcome {
    std::vector<std::uint8_t> out;
    std::optional<wec::sldc::ErrorCode> code;
    std::size_t bit = 0;
    bool operator==(const Outcome&) const = default;
};

template <class F>
Outcome run(F&& f) {
    Outcome o;
    try {
        f(o.out);
    } catch (const wec::sldc::SldcError& e) {
        o.code = e.code();
        o.bit = e.bit_offset();
    }
    return o;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);
    const std::uint8_t pattern = size > 0 ? data[size / 2] : 0;
    for (const std::size_t limit :
         {std::size_t{1} << 20, size > 0 ? std::size_t{data[0]} * 997 + 1 : 0}) {
        const Outcome want =
            run([&](std::vector<std::uint8_t>& out) { wec::sldc::decompress(in, out, limit); });
        const Outcome in_memory = run([&](std::vector<std::uint8_t>& out) {
            wec::sldc::decompress(
                in,
                [&](std::span<const std::uint8_t> piece) {
                    out.insert(out.end(), piece.begin(), piece.end());
                },
                limit);
        });
        std::size_t pos = 0, call = 0;
        const Outcome streamed = run([&](std::vector<std::uint8_t>& out) {
            wec::sldc::decompress(
                [&](std::span<std::uint8_t> buffer) {
                    // Piece sizes 1..8 or whatever fits, by the bits of `pattern`.
                    const bool small = (pattern >> (call++ % 8)) & 1;
                    const std::size_t n =
                        std::min({buffer.size(), in.size() - pos,
                                  small ? std::size_t{1} + (pattern & 7) : buffer.size()});
                    std::copy_n(in.begin() + static_cast<std::ptrdiff_t>(pos), n, buffer.begin());
                    pos += n;
                    return n;
                },
                [&](std::span<const std::uint8_t> piece) {
                    out.insert(out.end(), piece.begin(), piece.end());
                },
                limit);
        });
        if (!(in_memory == want) || !(streamed == want)) std::abort();
    }
    return 0;
}

// SLDC (ECMA-321 Streaming Lossless Data Compression): the compression Windows sources apply to
// WS-Management bodies (`Content-Encoding: SLDC`). One HTTP body is one SLDC record.
#pragma once

#include "common/error.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wec::sldc {

enum class ErrorCode {
    Truncated,        // the input ended before an End of Record control symbol
    ReservedSymbol,   // a reserved control symbol (nine 1-bits + a reserved code)
    NoScheme,         // a data symbol before any Scheme/Reset control symbol
    UnwrittenHistory, // a copy pointer refers to history not written since the last reset
    OutputLimit,      // the output would exceed the caller's limit (decompression bomb)
};

const char* to_string(ErrorCode code) noexcept;

// A decompression error: what went wrong and the bit offset (from the start of the input) of the
// symbol where it was found.
class SldcError : public wec::Error {
public:
    SldcError(ErrorCode code, std::size_t bit_offset);
    ErrorCode code() const noexcept { return code_; }
    std::size_t bit_offset() const noexcept { return bit_offset_; }

private:
    ErrorCode code_;
    std::size_t bit_offset_;
};

namespace detail {
// An allocator whose value-initialisation (vector::resize) leaves bytes uninitialised: the decoder
// writes every byte it keeps, so zero-filling its output first is wasted work.
template <class T>
struct UninitializedAllocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = UninitializedAllocator<U>;
    };
    template <class U>
    void construct(U* p) noexcept {
        ::new (static_cast<void*>(p)) U; // default-initialisation: no zero-fill
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};
} // namespace detail

// A byte vector that grows without zero-filling: the fastest output for decompress().
using Buffer = std::vector<std::uint8_t, detail::UninitializedAllocator<std::uint8_t>>;

// Decompresses one SLDC record and appends the result to `out`. Stops at End of Record and ignores
// whatever follows (Windows appends padding and the uncompressed length). Throws sldc::SldcError;
// on error `out` holds what was decoded before the fault. Never writes more than `max_output`
// bytes.
void decompress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out,
                std::size_t max_output);
// The same into a Buffer: the output is not zero-filled before it is decoded into.
void decompress(std::span<const std::uint8_t> in, Buffer& out, std::size_t max_output);
std::vector<std::uint8_t> decompress(std::span<const std::uint8_t> in, std::size_t max_output);

// The output size to reserve for decompressing `in`: the uncompressed length Windows appends to a
// record when it is within `max_output` and what `in` could describe, else a guess (~4x, at most
// `max_output`).
std::size_t output_size_hint(std::span<const std::uint8_t> in, std::size_t max_output);

// Streaming decompression, with fixed buffers whatever the sizes (about 64 KB of input and a
// 1 KB history + 256 KB output window): the same output, errors and bit offsets as decompress().
// `write` receives the output in pieces as it is decoded (on error: everything decoded before the
// fault, then sldc::SldcError is thrown); exceptions from `write` or `read` propagate.
using WriteFn = std::function<void(std::span<const std::uint8_t>)>;
// Reads up to `buffer.size()` bytes of input into `buffer`; returns how many, 0 at the end.
using ReadFn = std::function<std::size_t(std::span<std::uint8_t> buffer)>;
// The input in memory, the output streamed. `piece`: the most bytes decoded between two writes
// (kept within 4 KB..256 KB; 0: up to 256 KB as the input suggests). A small piece (tens of KB)
// keeps the window in L1/L2 for a caller that converts each piece at once (wsman::decode_text).
void decompress(std::span<const std::uint8_t> in, const WriteFn& write, std::size_t max_output,
                std::size_t piece = 0);
// Both streamed: reads until End of Record (not further than the piece that holds it) or the end.
void decompress(const ReadFn& read, const WriteFn& write, std::size_t max_output);

// How hard the compressor looks for matches. Both give valid records of the same layout.
enum class Level {
    // Hash chains and an optimal parse: the smallest output (what `wec sldc compress` and the
    // client write by default).
    Best,
    // Greedy: one hash probe on 4 bytes (then one on 2), the first match taken, bounded work per
    // byte. Several times faster, output a little larger (for load generators).
    Fast,
};

// The levels' names on command lines and in reports: "fast" and "best" (in that order).
std::vector<std::string> level_names();
std::string level_name(Level level);
// The level named `name`, or nothing for another name.
std::optional<Level> level_named(std::string_view name);

// Compresses `in` as Windows does: Reset 1, scheme 1 (literals and copy pointers), End of Record,
// zero padding to a 16-bit boundary, then the uncompressed length as a 4-byte little-endian
// integer. A Compressor keeps its work buffers between calls, so reusing one avoids allocations on
// hot paths.
class Compressor {
public:
    explicit Compressor(Level level = Level::Best);
    ~Compressor();
    Compressor(const Compressor&) = delete;
    Compressor& operator=(const Compressor&) = delete;
    Compressor(Compressor&&) noexcept;
    Compressor& operator=(Compressor&&) noexcept;

    // Replaces the contents of `out` with the compressed record.
    void compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out);
    // The same into a Buffer: reused from call to call, it is never zero-filled as it grows back
    // to the worst-case size the compressor writes into.
    void compress(std::span<const std::uint8_t> in, Buffer& out);
    std::vector<std::uint8_t> compress(std::span<const std::uint8_t> in);

    Level level() const noexcept { return level_; }

private:
    struct State;
    std::unique_ptr<State> state_;
    Level level_;
};

std::vector<std::uint8_t> compress(std::span<const std::uint8_t> in, Level level = Level::Best);

} // namespace wec::sldc

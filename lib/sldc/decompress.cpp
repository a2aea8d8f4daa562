// SLDC decompression (ECMA-321).
//
// The history buffer is never materialised: every output byte is appended to the history, so since
// the last Reset the history is exactly the tail of the output. A copy pointer names an absolute
// history position D; the most recent byte written there lies `distance` bytes back in the output,
// where distance = (write position - D) mod 1024 (1024 when D is the position about to be
// overwritten). Copying forward from out[len - distance] reproduces the circular semantics,
// including overlapping copies (distance < length) and copies that wrap past position 1023.
//
// Speed: all decoder state lives in locals (a store through a byte pointer may alias any member,
// which would make the compiler reload and store members around every output byte); the input is
// read through a 64-bit bit buffer refilled 8 bytes at a time; and a fast loop decodes literals and
// copy pointers without bounds checks while at least 8 input bytes remain (so every buffered bit
// is real input) and the output has room for a longest copy. It leaves the next symbol to the
// checked path when that is a control symbol or a bound is near; the checked path handles one
// symbol with every check and then returns to the fast loop. The output vector is sized once
// (from Windows' uncompressed length trailer when plausible) and copies move 8 or 16 bytes at a
// time. decompress() into a Buffer does not zero-fill the output before decoding into it.
#include "sldc/format_internal.hpp"
#include "sldc/sldc.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <utility>

namespace wec::sldc {
namespace {

using namespace detail;

// Bytes a copy may write past its end: it moves whole 8- or 16-byte chunks. Those bytes land in
// room that later symbols overwrite or the final resize drops.
constexpr std::size_t kOverwrite = 16;
// Output room the fast loop needs for one symbol with no further check.
constexpr std::size_t kFastRoom = kMaxMatch + kOverwrite;
// Longest copy pointer: 1 + 4-bit count prefix + 8 count bits + 10 displacement bits.
constexpr unsigned kMaxCopyBits = 23;
// Most output bytes one input byte can describe (a 23-bit copy pointer writes 271 bytes).
constexpr std::size_t kMaxExpansion = kMaxMatch * 8 / kMaxCopyBits + 1;

// The width of a copy pointer's match count field by its first 4 bits, one nibble each:
// 0xxx -> 2, 10xx -> 4, 110x -> 6, 1110 -> 8, 1111 -> 12 bits. Fewer steps than a table lookup,
// which matters as the next symbol's position waits for it.
constexpr std::uint64_t kWidthNibbles = 0xC866444422222222;

// The match count of a copy pointer, indexed by the 12 bits that follow its leading 1-bit:
// 0x -> 2..3, 10xx -> 4..7, 110xxx -> 8..15, 1110xxxx -> 16..31, 1111xxxxxxxx -> 32..271.
constexpr std::array<std::uint16_t, 4096> kCountTable = [] {
    std::array<std::uint16_t, 4096> t{};
    constexpr unsigned kPrefix[5] = {1, 2, 3, 4, 4};
    constexpr unsigned kExtra[5] = {1, 2, 3, 4, 8};
    constexpr unsigned kBase[5] = {2, 4, 8, 16, 32};
    for (unsigned v = 0; v < 4096; ++v) {
        unsigned ones = 0;
        while (ones < 4 && ((v >> (11 - ones)) & 1) != 0)
            ++ones;
        const unsigned width = kPrefix[ones] + kExtra[ones];
        t[v] = static_cast<std::uint16_t>(kBase[ones] +
                                          ((v >> (12 - width)) & ((1u << kExtra[ones]) - 1)));
    }
    return t;
}();

// A copy pointer (1 + match count field + 10-bit absolute displacement) at the top of `buf`.
struct CopyPointer {
    std::size_t len;
    std::size_t disp;
    unsigned width; // of the match count field
};

inline CopyPointer copy_pointer(std::uint64_t buf) {
    const auto width = static_cast<unsigned>((kWidthNibbles >> ((buf >> 57) & 0x3C)) & 0xF);
    return {kCountTable[(buf >> 51) & 0xFFF],
            static_cast<std::size_t>((buf << (1 + width)) >> (64 - kDisplacementBits)), width};
}

// For a copy whose distance d is below 8: a whole number of periods (d * ceil(8 / d)), at least 8,
// so an 8-byte chunk read that far back consists of bytes already written and equal to the ones
// due.
constexpr std::uint8_t kPeriodStep[8] = {0, 8, 8, 9, 8, 10, 12, 14};

inline std::uint64_t load_be64(const std::uint8_t* p) {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
    return v;
}

inline std::size_t saturating_add(std::size_t a, std::size_t b) {
    return a > std::numeric_limits<std::size_t>::max() - b ? std::numeric_limits<std::size_t>::max()
                                                           : a + b;
}

// Copies `len` bytes from `distance` bytes back (1..1024, within the output) to `d`, with the
// result of a forward byte loop (an overlapping source repeats its period), but in 8- or 16-byte
// chunks, each of which reads only bytes before those it writes. Writes up to kOverwrite bytes
// past d + len.
inline void copy_match(std::uint8_t* d, std::size_t distance, std::size_t len) {
    const std::uint8_t* s = d - distance;
    if (distance >= 16) {
        std::memcpy(d, s, 16);
        for (std::size_t k = 16; k < len; k += 16)
            std::memcpy(d + k, s + k, 16);
    } else if (distance >= 8) {
        std::memcpy(d, s, 8);
        for (std::size_t k = 8; k < len; k += 8)
            std::memcpy(d + k, s + k, 8);
    } else {
        // The first 8 bytes one by one (each reads an earlier one), then chunks that read a whole
        // number of periods back.
        for (std::size_t k = 0; k < 8; ++k)
            d[k] = s[k];
        const std::size_t step = kPeriodStep[distance];
        for (std::size_t k = 8; k < len; k += 8)
            std::memcpy(d + k, d + k - step, 8);
    }
}

// Streaming mode (decode<true>): where the input comes from and the output goes.
struct Stream {
    const ReadFn* read = nullptr; // null: the whole input is the span given
    const WriteFn* write = nullptr;
    std::vector<std::uint8_t> input; // the input buffer when `read` is set
    std::size_t flushed = 0;         // bytes of the output window already written
    std::size_t piece = 0;           // in-memory input: most bytes between writes (0: default)
};

// Input bytes read at a time, and output bytes decoded between writes, in streaming mode.
constexpr std::size_t kStreamInput = std::size_t{64} << 10;
constexpr std::size_t kStreamOutput = std::size_t{256} << 10;
constexpr std::size_t kMinStreamOutput = std::size_t{4} << 10;

// The streaming window: grows without zero-filling (every byte is written before it is read or
// written out).
using Window = Buffer;

// Writes the window's bytes not yet written (streaming mode).
template <class Vec>
void flush(Stream& stream, const Vec& out, std::size_t op) {
    if (op > stream.flushed)
        (*stream.write)(
            std::span<const std::uint8_t>(out.data() + stream.flushed, op - stream.flushed));
    stream.flushed = op;
}

template <class Vec>
[[noreturn, gnu::cold, gnu::noinline]] void fail(Vec& out, std::size_t op, ErrorCode code,
                                                 std::uint64_t bit, Stream* stream = nullptr) {
    if (stream != nullptr) {
        flush(*stream, out, op);
    } else {
        out.resize(op);
    }
    throw SldcError(code, static_cast<std::size_t>(bit));
}

// Streaming mode: writes the decoded bytes and slides the window so that it keeps the last
// kHistorySize of them (every copy pointer reaches at most that far back). Indices into the window
// (op, reset, limit) move down by the same amount, so that op - reset and limit - op keep their
// meaning (reset may wrap around: only differences are used).
template <class Vec>
[[gnu::noinline]] std::size_t drain(Stream& stream, Vec& out, std::size_t op) {
    flush(stream, out, op);
    const std::size_t keep = std::min(op, kHistorySize);
    const std::size_t delta = op - keep;
    if (delta != 0) std::memmove(out.data(), out.data() + delta, keep);
    stream.flushed = keep;
    return delta;
}

// Grows `out` geometrically to at least `need` bytes but never past `cap` (need <= cap).
template <class Vec>
[[gnu::noinline]] void grow(Vec& out, std::size_t need, std::size_t cap) {
    out.resize(std::min(std::max(need, out.size() * 2), cap));
}

// One-shot (kStream = false): the output is appended to `out`, grown as needed. Streaming
// (kStream = true): `out` is a fixed window that drain() writes out and slides; with
// stream.read set (kRead, a separate instantiation so that the in-memory loop keeps its state in
// registers), the input is read in pieces into stream.input, and bit offsets are counted from the
// start of the whole input (base_bits).
template <bool kStream, class Vec, bool kRead = false>
void decode(std::span<const std::uint8_t> input, Vec& out, std::size_t max_output,
            Stream* stream = nullptr) {
    const std::uint8_t* in = input.data();
    std::size_t size = input.size();
    std::uint64_t total_bits = static_cast<std::uint64_t>(size) * 8;
    std::uint64_t base_bits = 0; // input bits before `in` (streamed input)
    bool more_input = false;     // streamed input not read yet
    if constexpr (kRead) {
        stream->input.resize(kStreamInput);
        size = 0;
        do {
            const std::size_t n = (*stream->read)(
                std::span<std::uint8_t>(stream->input.data() + size, kStreamInput - size));
            if (n == 0) break;
            size += n;
        } while (size < kStreamInput);
        more_input = size == kStreamInput;
        in = stream->input.data();
        total_bits = static_cast<std::uint64_t>(size) * 8;
    }

    std::size_t op = kStream ? 0 : out.size(); // write index in out
    std::size_t reset = op; // index in out of history position 0 (the last Reset)
    std::size_t limit = saturating_add(op, max_output); // out may not hold more
    // out may be allocated this far: the limit plus room for the fast loop's unchecked writes.
    const std::size_t cap = saturating_add(limit, kFastRoom);

    // Size the output once when possible (output_size_hint), else grow geometrically.
    const std::size_t guess = output_size_hint({in, size}, max_output);
    if constexpr (kStream) {
        // A fixed window: the history, what is decoded between writes (no more than the output
        // is likely to be when the whole input is at hand), and the fast loop's room.
        const std::size_t between =
            kRead ? kStreamOutput
                  : std::clamp(stream->piece != 0 ? std::min(stream->piece, guess) : guess,
                               kMinStreamOutput, kStreamOutput);
        out.resize(kHistorySize + between + kFastRoom);
    } else {
        out.resize(std::min(saturating_add(op, saturating_add(guess, kFastRoom)), cap));
    }
    std::uint8_t* dst = out.data();
    std::size_t end = out.size();

    std::size_t ip = 0;    // next input byte to load into the bit buffer
    std::uint64_t buf = 0; // bits not yet consumed, most significant first
    unsigned nbits = 0;    // valid bits in buf
    int scheme = 0;

    const auto position = [&] { return static_cast<std::uint64_t>(ip) * 8 - nbits; };
    const auto consume = [&](unsigned n) {
        buf <<= n;
        nbits -= n;
    };
    // Tops the bit buffer up to at least 56 valid bits from 8 bytes at ip (ip + 8 <= size).
    const auto refill_fast = [&] {
        buf |= load_be64(in + ip) >> nbits;
        ip += (63 - nbits) >> 3;
        nbits |= 56;
    };
    // The same anywhere: bits past the end of the input read as zero; the caller detects
    // truncation by comparing position() with total_bits.
    const auto refill = [&] {
        if (ip + 8 <= size) {
            refill_fast();
        } else {
            while (nbits <= 56) {
                const std::uint64_t byte = ip < size ? in[ip] : 0;
                buf |= byte << (56 - nbits);
                ++ip;
                nbits += 8;
            }
        }
    };
    // Distance back in the output to the byte last written at history position `disp`; `bit` is
    // where the copy pointer starts.
    // distance = (written - disp) mod 1024 in 1..1024; it exceeds `written` exactly when fewer
    // than 1024 bytes were written since the Reset and disp >= written (a position not written).
    const auto distance_of = [&](std::size_t disp, std::uint64_t bit) -> std::size_t {
        const std::size_t written = op - reset;
        const std::size_t distance = ((written - disp - 1) & (kHistorySize - 1)) + 1;
        if (distance > written) fail(out, op, ErrorCode::UnwrittenHistory, base_bits + bit, stream);
        return distance;
    };
    // Ensures room for `n` more output bytes (plus chunk over-writes) within the limit. At the cap
    // (limit + kFastRoom) there is room for anything the limit allows.
    const auto reserve = [&](std::size_t n, std::uint64_t bit) {
        if (n > limit - op) fail(out, op, ErrorCode::OutputLimit, base_bits + bit, stream);
        if constexpr (kStream) {
            // Room for this symbol and for the fast loop: write out and slide the window.
            if (end - op < kFastRoom) {
                const std::size_t delta = drain(*stream, out, op);
                op -= delta;
                reset -= delta;
                limit -= delta;
            }
        } else {
            // Room for this symbol and, unless out is at its cap, for the fast loop.
            if (end - op < kFastRoom && end < cap) {
                grow(out, std::min(op + kFastRoom, cap), cap);
                dst = out.data();
                end = out.size();
            }
        }
    };

    for (;;) {
        // Fast loop (scheme 1): every buffered bit is real input, so no symbol can be truncated;
        // and below `stop` out has room for a longest copy and the caller's limit allows one, so
        // no symbol needs a bound check. A control symbol reads as a copy pointer of more than
        // kMaxMatch bytes: only copy pointers look for it. Anything else is the checked path's.
        if (scheme == 1) {
            const std::size_t room_stop = end >= kFastRoom ? end - kFastRoom + 1 : 0;
            const std::size_t limit_stop = limit >= kMaxMatch ? limit - kMaxMatch + 1 : 0;
            const std::size_t stop = std::min(room_stop, limit_stop);
            while (ip + 8 <= size && op < stop) {
                refill_fast(); // >= 56 bits: at least two symbols of at most 23 bits each
                do {
                    if ((buf >> 63) == 0) { // literal: 0 + 8 bits
                        dst[op++] = static_cast<std::uint8_t>(buf >> 55);
                        consume(9);
                        continue;
                    }
                    const CopyPointer c = copy_pointer(buf);
                    if (c.len > kMaxMatch) goto checked; // a control symbol
                    const std::size_t distance = distance_of(c.disp, position());
                    // Two shifts, so that the first one does not wait for the width.
                    buf = (buf << (1 + kDisplacementBits)) << c.width;
                    nbits -= 1 + kDisplacementBits + c.width;
                    copy_match(dst + op, distance, c.len);
                    op += c.len;
                } while (nbits >= kMaxCopyBits && op < stop);
            }
        }

    checked:
        if constexpr (kRead) {
            // Streamed input: keep at least 8 bytes ahead (any symbol, with a Flush's padding)
            // while more can be read; move the unread bytes to the front and read more.
            if (more_input && total_bits - position() < 64) {
                const std::uint64_t at = position();
                const auto from = static_cast<std::size_t>(at / 8);
                std::size_t kept = size - from;
                std::memmove(stream->input.data(), stream->input.data() + from, kept);
                while (kept < kStreamInput) {
                    const std::size_t n = (*stream->read)(
                        std::span<std::uint8_t>(stream->input.data() + kept, kStreamInput - kept));
                    if (n == 0) {
                        more_input = false;
                        break;
                    }
                    kept += n;
                }
                size = kept;
                base_bits += static_cast<std::uint64_t>(from) * 8;
                total_bits = static_cast<std::uint64_t>(size) * 8;
                ip = 0;
                buf = 0;
                nbits = 0;
                refill();
                consume(static_cast<unsigned>(at % 8));
                continue;
            }
        }
        refill();
        const std::uint64_t start = position();
        if (start >= total_bits) fail(out, op, ErrorCode::Truncated, base_bits + start, stream);

        if ((buf >> 55) == kControlPrefix) {
            const auto code = static_cast<std::uint32_t>(buf >> 51) & 0xF;
            consume(kControlBits);
            if (position() > total_bits)
                fail(out, op, ErrorCode::Truncated, base_bits + start, stream);
            switch (code) {
            case kFlush: {
                // ECMA-321: a Flush control symbol is followed by 0-bits up to the next 32-bit
                // boundary, counted from the start of the input. Skip them.
                const auto pad = static_cast<unsigned>((32 - (base_bits + position()) % 32) % 32);
                consume(pad);
                break;
            }
            case kScheme1:
                scheme = 1;
                break;
            case kScheme2:
                scheme = 2;
                break;
            case kFileMark:
            case kEndMarker:
                break; // nothing to do inside one record
            case kEndOfRecord:
                // Whatever follows (padding, Windows' length field) is ignored.
                if constexpr (kStream) {
                    flush(*stream, out, op);
                } else {
                    out.resize(op);
                }
                return;
            case kReset1:
            case kReset2:
                reset = op;
                scheme = code == kReset1 ? 1 : 2;
                break;
            default:
                fail(out, op, ErrorCode::ReservedSymbol, base_bits + start, stream);
            }
            continue;
        }

        if (scheme == 1) {
            if ((buf >> 63) == 0) { // literal: 0 + 8 bits
                const auto byte = static_cast<std::uint8_t>(buf >> 55);
                consume(9);
                if (position() > total_bits)
                    fail(out, op, ErrorCode::Truncated, base_bits + start, stream);
                reserve(1, start);
                dst[op++] = byte;
                continue;
            }
            const CopyPointer c = copy_pointer(buf);
            consume(1 + c.width + kDisplacementBits);
            if (position() > total_bits)
                fail(out, op, ErrorCode::Truncated, base_bits + start, stream);
            const std::size_t distance = distance_of(c.disp, start);
            reserve(c.len, start);
            copy_match(dst + op, distance, c.len);
            op += c.len;
            continue;
        }

        if (scheme == 2) { // 8 bits per byte; a 0xFF byte is followed by one 0-bit
            const auto byte = static_cast<std::uint8_t>(buf >> 56);
            consume(byte == 0xFF ? 9 : 8);
            if (position() > total_bits)
                fail(out, op, ErrorCode::Truncated, base_bits + start, stream);
            reserve(1, start);
            dst[op++] = byte;
            continue;
        }

        // No scheme yet. Fewer bits than any symbol needs is a cut input rather than bad data.
        fail(out, op, start + 9 > total_bits ? ErrorCode::Truncated : ErrorCode::NoScheme,
             base_bits + start, stream);
    }
}

} // namespace

std::size_t output_size_hint(std::span<const std::uint8_t> in, std::size_t max_output) {
    // Windows ends a record with the uncompressed length (4 bytes, little-endian). Trust it only
    // within the caller's limit and as far as the input could describe that much (so no more than
    // a valid input of this size could make us allocate anyway); otherwise guess (SLDC rarely
    // expands text more than ~4x).
    const std::size_t size = in.size();
    std::size_t guess = std::min<std::size_t>(max_output, size * 4 + 1024);
    if (size >= 4) {
        const std::size_t hint = std::size_t{in[size - 4]} | std::size_t{in[size - 3]} << 8 |
                                 std::size_t{in[size - 2]} << 16 | std::size_t{in[size - 1]} << 24;
        if (hint <= max_output && hint / kMaxExpansion <= size) guess = hint;
    }
    return guess;
}

void decompress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out,
                std::size_t max_output) {
    decode<false>(in, out, max_output);
}

void decompress(std::span<const std::uint8_t> in, const WriteFn& write, std::size_t max_output,
                std::size_t piece) {
    Stream stream;
    stream.write = &write;
    stream.piece = piece;
    Window window;
    decode<true>(in, window, max_output, &stream);
}

void decompress(const ReadFn& read, const WriteFn& write, std::size_t max_output) {
    Stream stream;
    stream.read = &read;
    stream.write = &write;
    Window window;
    decode<true, Window, true>({}, window, max_output, &stream);
}

void decompress(std::span<const std::uint8_t> in, Buffer& out, std::size_t max_output) {
    decode<false>(in, out, max_output);
}

std::vector<std::uint8_t> decompress(std::span<const std::uint8_t> in, std::size_t max_output) {
    std::vector<std::uint8_t> out;
    decompress(in, out, max_output);
    return out;
}

} // namespace wec::sldc

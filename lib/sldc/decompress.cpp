// SLDC decompression (ECMA-321).
//
// The history buffer is never materialised: every output byte is appended to the history, so since
// the last Reset the history is exactly the tail of the output. A copy pointer names an absolute
// history position D; the most recent byte written there lies `distance` bytes back in the output,
// where distance = (write position - D) mod 1024 (1024 when D is the position about to be
// overwritten). Copying forward byte after byte from out[len - distance] reproduces the circular
// semantics, including overlapping copies (distance < length) and copies that wrap past position
// 1023.
#include "sldc/format.hpp"
#include "sldc/sldc.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

namespace wec::sldc {
namespace {

using namespace detail;

// Slack kept beyond the write position so that a whole copy plus an 8-byte over-write fits.
constexpr std::size_t kSlack = kMaxMatch + 8;

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

class Decoder {
public:
    Decoder(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out,
            std::size_t max_output)
        : in_(in.data()), size_(in.size()), total_bits_(static_cast<std::uint64_t>(in.size()) * 8),
          out_(out), op_(out.size()), reset_(out.size()),
          limit_(saturating_add(out.size(), max_output)) {
        // Start with a guess (SLDC rarely expands text more than ~4x) and grow geometrically.
        const std::size_t guess = std::min<std::size_t>(max_output, in.size() * 4 + 1024);
        grow(saturating_add(op_, guess));
    }

    void run();

private:
    [[noreturn]] void fail(ErrorCode code, std::uint64_t bit) {
        out_.resize(op_);
        throw Error(code, static_cast<std::size_t>(bit));
    }

    std::uint64_t position() const { return static_cast<std::uint64_t>(ip_) * 8 - nbits_; }

    // Tops the bit buffer up to at least 56 valid bits. Bits past the end of the input read as
    // zero; the caller detects truncation by comparing position() with total_bits_.
    void refill() {
        if (ip_ + 8 <= size_) {
            buf_ |= load_be64(in_ + ip_) >> nbits_;
            ip_ += (63 - nbits_) >> 3;
            nbits_ |= 56;
        } else {
            while (nbits_ <= 56) {
                const std::uint64_t byte = ip_ < size_ ? in_[ip_] : 0;
                buf_ |= byte << (56 - nbits_);
                ++ip_;
                nbits_ += 8;
            }
        }
    }

    void consume(unsigned n) {
        buf_ <<= n;
        nbits_ -= n;
    }

    // Ensures room for `n` more output bytes plus slack, within the caller's limit.
    void reserve(std::size_t n, std::uint64_t bit) {
        if (n > limit_ - op_) fail(ErrorCode::OutputLimit, bit);
        if (op_ + n + 8 > end_) {
            const std::size_t want = std::max(saturating_add(op_, kSlack), out_.size() * 2);
            grow(want);
        }
    }

    void grow(std::size_t want) {
        const std::size_t cap = saturating_add(limit_, kSlack);
        want = std::min(std::max(want, saturating_add(op_, kSlack)), cap);
        if (want > out_.size()) out_.resize(want);
        end_ = out_.size();
        dst_ = out_.data();
    }

    void copy(std::size_t distance, std::size_t len) {
        std::uint8_t* d = dst_ + op_;
        const std::uint8_t* s = d - distance;
        if (distance >= 8) {
            // Each 8-byte chunk reads only bytes already written; may over-write up to 7 bytes of
            // slack past the copy, which later symbols overwrite or the final resize drops.
            for (std::size_t k = 0; k < len; k += 8)
                std::memcpy(d + k, s + k, 8);
        } else if (distance == 1) {
            std::memset(d, *s, len);
        } else {
            for (std::size_t k = 0; k < len; ++k)
                d[k] = s[k];
        }
        op_ += len;
    }

    const std::uint8_t* in_;
    std::size_t size_;
    std::uint64_t total_bits_;
    std::size_t ip_ = 0;
    std::uint64_t buf_ = 0;
    unsigned nbits_ = 0;

    std::vector<std::uint8_t>& out_;
    std::size_t op_;    // write index in out_
    std::size_t reset_; // index in out_ of history position 0 (the last Reset)
    std::size_t limit_; // out_ may not grow past this index
    std::size_t end_ = 0;
    std::uint8_t* dst_ = nullptr;
};

void Decoder::run() {
    int scheme = 0;
    for (;;) {
        refill();
        const std::uint64_t start = position();
        if (start >= total_bits_) fail(ErrorCode::Truncated, start);

        if ((buf_ >> 55) == kControlPrefix) {
            const auto code = static_cast<std::uint32_t>(buf_ >> 51) & 0xF;
            consume(kControlBits);
            if (position() > total_bits_) fail(ErrorCode::Truncated, start);
            switch (code) {
            case kFlush: {
                // ECMA-321: a Flush control symbol is followed by 0-bits up to the next 32-bit
                // boundary, counted from the start of the input. Skip them.
                const auto pad = static_cast<unsigned>((32 - position() % 32) % 32);
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
                out_.resize(op_);
                return; // whatever follows (padding, Windows' length field) is ignored
            case kReset1:
            case kReset2:
                reset_ = op_;
                scheme = code == kReset1 ? 1 : 2;
                break;
            default:
                fail(ErrorCode::ReservedSymbol, start);
            }
            continue;
        }

        if (scheme == 1) {
            if ((buf_ >> 63) == 0) { // literal: 0 + 8 bits
                const auto byte = static_cast<std::uint8_t>(buf_ >> 55);
                consume(9);
                if (position() > total_bits_) fail(ErrorCode::Truncated, start);
                reserve(1, start);
                dst_[op_++] = byte;
                continue;
            }
            // Copy pointer: 1 + match count field + 10-bit absolute displacement.
            static constexpr unsigned kPrefix[5] = {1, 2, 3, 4, 4};
            static constexpr unsigned kExtra[5] = {1, 2, 3, 4, 8};
            static constexpr unsigned kBase[5] = {2, 4, 8, 16, 32};
            const std::uint64_t t = buf_ << 1;
            // Leading 1-bits of the count field, at most 4.
            const auto ones = static_cast<unsigned>(
                std::countl_zero((~t & 0xF000000000000000ULL) | 0x0800000000000000ULL));
            const std::uint64_t field = t << kPrefix[ones];
            const auto len = kBase[ones] + static_cast<std::size_t>(field >> (64 - kExtra[ones]));
            const auto disp =
                static_cast<std::size_t>((field << kExtra[ones]) >> (64 - kDisplacementBits));
            consume(1 + kPrefix[ones] + kExtra[ones] + kDisplacementBits);
            if (position() > total_bits_) fail(ErrorCode::Truncated, start);

            const std::size_t written = op_ - reset_;
            if (written < kHistorySize && disp >= written) fail(ErrorCode::UnwrittenHistory, start);
            std::size_t distance = ((written & (kHistorySize - 1)) - disp) & (kHistorySize - 1);
            if (distance == 0) distance = kHistorySize;
            reserve(len, start);
            copy(distance, len);
            continue;
        }

        if (scheme == 2) { // 8 bits per byte; a 0xFF byte is followed by one 0-bit
            const auto byte = static_cast<std::uint8_t>(buf_ >> 56);
            consume(byte == 0xFF ? 9 : 8);
            if (position() > total_bits_) fail(ErrorCode::Truncated, start);
            reserve(1, start);
            dst_[op_++] = byte;
            continue;
        }

        // No scheme yet. Fewer bits than any symbol needs is a cut input rather than bad data.
        fail(start + 9 > total_bits_ ? ErrorCode::Truncated : ErrorCode::NoScheme, start);
    }
}

} // namespace

void decompress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out,
                std::size_t max_output) {
    Decoder decoder(in, out, max_output);
    decoder.run();
}

std::vector<std::uint8_t> decompress(std::span<const std::uint8_t> in, std::size_t max_output) {
    std::vector<std::uint8_t> out;
    decompress(in, out, max_output);
    return out;
}

} // namespace wec::sldc

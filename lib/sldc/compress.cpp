// SLDC compression (ECMA-321), scheme 1 only: optimally parsed (Level::Best) or greedy
// (Level::Fast, see Compressor::State::compress_fast).
//
// Level::Best:
// Every copy pointer costs the same 10 displacement bits wherever its source lies, so the cost of a
// match depends only on its length bucket: 13 bits for 2-3 bytes, 15 for 4-7, 17 for 8-15, 19 for
// 16-31 and 23 for 32-271; a literal costs 9. Any prefix of a match is itself a match from the
// same source, so knowing the longest match at each position is enough. A forward pass finds it:
// hash chains on 4-byte keys over the window (depth-limited), the most recent occurrence of the
// leading 2 bytes for short matches, and the previous position's match one byte shorter, which
// alone is used where it is long (no search inside long matches). A backward dynamic programme
// picks the cheapest parse, trying per position only the top length of each bucket below the
// longest, and the longest (see parse()); a forward pass emits it. Copies reach back at most 1023
// bytes.
#include "sldc/format_internal.hpp"
#include "sldc/sldc.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <string>

namespace wec::sldc {
namespace {

using namespace detail;

constexpr unsigned kHash4Bits = 12;
constexpr unsigned kHash2Bits = 12;
constexpr unsigned kChainDepth = 16; // candidates examined per position
constexpr unsigned kNiceLength = 64; // stop searching once a match is this long
constexpr unsigned kSkipLength = 6;  // a carried-over match this long is not searched past
// Copies reach at most 1023 bytes back: distance 1024 (the byte about to be overwritten) decodes
// per ECMA-321 but is not known to be accepted by Windows.
constexpr std::uint32_t kMaxDistance = kHistorySize - 1;
constexpr std::uint32_t kBaseStart = kHistorySize; // see Compressor::State::base

// Hashes of the first 4 and 2 bytes at a position, given as a little-endian integer.
inline std::uint32_t hash4(std::uint32_t v) {
    return (v * 2654435761u) >> (32 - kHash4Bits);
}

inline std::uint32_t hash2(std::uint32_t v) {
    return (v * 2654435761u) >> (32 - kHash2Bits);
}

// Length of the common prefix of a and b, at most `max`.
inline unsigned match_length(const std::uint8_t* a, const std::uint8_t* b, unsigned max) {
    unsigned n = 0;
    if constexpr (std::endian::native == std::endian::little) {
        while (n + 8 <= max) {
            std::uint64_t x, y;
            std::memcpy(&x, a + n, 8);
            std::memcpy(&y, b + n, 8);
            if (const std::uint64_t d = x ^ y) return n + (std::countr_zero(d) >> 3);
            n += 8;
        }
    }
    while (n < max && a[n] == b[n])
        ++n;
    return n;
}

constexpr unsigned match_cost(unsigned len) {
    // flag + count field + displacement
    if (len <= 3) return 1 + 2 + kDisplacementBits;
    if (len <= 7) return 1 + 4 + kDisplacementBits;
    if (len <= 15) return 1 + 6 + kDisplacementBits;
    if (len <= 31) return 1 + 8 + kDisplacementBits;
    return 1 + 12 + kDisplacementBits;
}
constexpr unsigned kLiteralCost = 9;
// Copy cost indexed by length (0 and 1 are no copies).
constexpr auto kLengthCost = [] {
    std::array<std::uint8_t, kMaxMatch + 1> t{};
    t[0] = t[1] = 0xFF;
    for (unsigned len = kMinMatch; len <= kMaxMatch; ++len)
        t[len] = static_cast<std::uint8_t>(match_cost(len));
    return t;
}();
constexpr std::size_t kMaxInput = (std::size_t{1} << 31) - kHistorySize;

// MSB-first bit writer into a buffer sized in advance.
class BitWriter {
public:
    explicit BitWriter(std::uint8_t* out) : out_(out) {}

    // Appends the low `n` bits of `v` (n <= 32).
    void put(std::uint32_t v, unsigned n) {
        acc_ = (acc_ << n) | v;
        nacc_ += n;
        if (nacc_ >= 32) {
            nacc_ -= 32;
            const auto word = static_cast<std::uint32_t>(acc_ >> nacc_);
            out_[pos_] = static_cast<std::uint8_t>(word >> 24);
            out_[pos_ + 1] = static_cast<std::uint8_t>(word >> 16);
            out_[pos_ + 2] = static_cast<std::uint8_t>(word >> 8);
            out_[pos_ + 3] = static_cast<std::uint8_t>(word);
            pos_ += 4;
        }
    }

    void control(std::uint32_t code) { put((kControlPrefix << 4) | code, kControlBits); }

    // Zero bits up to the next 16-bit boundary, then flushes whole bytes; returns the byte count.
    std::size_t finish16() {
        const unsigned pad = (16 - nacc_ % 16) % 16;
        put(0, pad);
        while (nacc_ >= 8) {
            nacc_ -= 8;
            out_[pos_++] = static_cast<std::uint8_t>(acc_ >> nacc_);
        }
        return pos_;
    }

private:
    std::uint8_t* out_;
    std::size_t pos_ = 0;
    std::uint64_t acc_ = 0;
    unsigned nacc_ = 0;
};

// The same bits as BitWriter, without a branch per symbol (Level::Fast): the pending bits are kept
// left-aligned in a 64-bit word that is stored whole (8 bytes, big-endian) after every symbol, the
// position advancing by the bytes completed. Needs 8 bytes of slack after the output.
class FastBitWriter {
public:
    explicit FastBitWriter(std::uint8_t* out) : out_(out) {}

    // Appends the low `n` bits of `v` (1 <= n <= 32 - 7).
    void put(std::uint32_t v, unsigned n) {
        nacc_ += n; // at most 7 + 25 bits pending
        acc_ |= static_cast<std::uint64_t>(v) << (64 - nacc_);
        const std::uint64_t word = to_big_endian(acc_);
        std::memcpy(out_ + pos_, &word, sizeof word);
        const unsigned bytes = nacc_ >> 3;
        pos_ += bytes;
        acc_ <<= bytes * 8;
        nacc_ &= 7;
    }

    void control(std::uint32_t code) { put((kControlPrefix << 4) | code, kControlBits); }

    // Zero bits up to the next 16-bit boundary, then flushes; returns the byte count.
    std::size_t finish16() {
        if (const unsigned pad = (16 - (pos_ * 8 + nacc_) % 16) % 16; pad > 0) put(0, pad);
        if (nacc_ > 0) out_[pos_++] = static_cast<std::uint8_t>(acc_ >> 56); // 8 bits, padded
        nacc_ = 0;
        return pos_;
    }

private:
    static std::uint64_t to_big_endian(std::uint64_t v) {
        if constexpr (std::endian::native == std::endian::little) return __builtin_bswap64(v);
        return v;
    }
    std::uint8_t* out_;
    std::size_t pos_ = 0;
    std::uint64_t acc_ = 0;
    unsigned nacc_ = 0;
};

// A copy pointer of `len` bytes (2..kMaxMatch) from absolute history position `disp`.
inline void put_copy(BitWriter& w, std::uint32_t disp, unsigned len) {
    std::uint32_t field;
    unsigned bits;
    if (len <= 3) {
        field = len - 2;
        bits = 2;
    } else if (len <= 7) {
        field = 0x8 | (len - 4);
        bits = 4;
    } else if (len <= 15) {
        field = 0x30 | (len - 8);
        bits = 6;
    } else if (len <= 31) {
        field = 0xE0 | (len - 16);
        bits = 8;
    } else {
        field = 0xF00 | (len - 32); // at most 0xEF: never a control symbol
        bits = 12;
    }
    w.put((((1u << bits) | field) << kDisplacementBits) | disp, 1 + bits + kDisplacementBits);
}

// put_copy's symbol by length, displacement bits zero (Level::Fast: a lookup, no branches).
struct CopyCode {
    std::uint32_t code;
    std::uint32_t bits;
};
constexpr auto kCopyCodes = [] {
    std::array<CopyCode, kMaxMatch + 1> t{};
    for (unsigned len = kMinMatch; len <= kMaxMatch; ++len) {
        const unsigned count_bits = len <= 3    ? 2
                                    : len <= 7  ? 4
                                    : len <= 15 ? 6
                                    : len <= 31 ? 8
                                                : 12;
        const std::uint32_t field = len <= 3    ? len - 2
                                    : len <= 7  ? 0x8 | (len - 4)
                                    : len <= 15 ? 0x30 | (len - 8)
                                    : len <= 31 ? 0xE0 | (len - 16)
                                                : 0xF00 | (len - 32);
        t[len] = {((1u << count_bits) | field) << kDisplacementBits,
                  1 + count_bits + kDisplacementBits};
    }
    return t;
}();

// Worst case output: Reset 1, all literals, End of Record, padding, 4-byte length, writer slack.
inline std::size_t max_output_size(std::size_t n) {
    return (2 * kControlBits + kLiteralCost * n) / 8 + 2 + 4 + 8;
}

// End of Record, padding and Windows' length trailer; trims `out` to the record.
template <class Writer, class Out>
inline void finish(Writer& w, std::size_t n, Out& out) {
    w.control(kEndOfRecord);
    std::size_t size = w.finish16();
    const auto total = static_cast<std::uint32_t>(n); // as Windows writes it: 32 bits
    for (int k = 0; k < 4; ++k)
        out[size++] = static_cast<std::uint8_t>(total >> (8 * k));
    out.resize(size);
}

inline std::uint32_t load32(const std::uint8_t* p) {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
    return v;
}

} // namespace

struct Compressor::State {
    // Hash heads and chain links hold positions offset by `base`, which grows from call to call,
    // so entries left by earlier calls fall below the window and the tables need no clearing.
    std::vector<std::uint32_t> head4 = std::vector<std::uint32_t>(std::size_t{1} << kHash4Bits);
    std::vector<std::uint32_t> head2 = std::vector<std::uint32_t>(std::size_t{1} << kHash2Bits);
    std::array<std::uint32_t, kHistorySize> prev{};
    std::uint32_t base = kBaseStart;
    std::vector<std::uint16_t> length;   // longest match found at each position (< 2: none)
    std::vector<std::uint16_t> distance; // how far back that match starts (1..kMaxDistance)
    std::vector<std::uint32_t> cost;     // bits from each position to the end (backward DP)
    std::vector<std::uint16_t> choice;   // 1 = literal, else match length

    void rebase(std::size_t n);
    void find_matches(const std::uint8_t* p, std::size_t n);
    void parse(std::size_t n);
    template <class Out>
    void emit(const std::uint8_t* p, std::size_t n, Out& out);
    template <class Out>
    void compress_fast(const std::uint8_t* p, std::size_t n, Out& out);
    template <class Out>
    void compress(std::span<const std::uint8_t> in, Level level, Out& out);
};

// Clears the tables when positions of an input of `n` bytes would overflow 32 bits.
void Compressor::State::rebase(std::size_t n) {
    if (base > std::numeric_limits<std::uint32_t>::max() - kBaseStart - n) {
        std::fill(head4.begin(), head4.end(), 0);
        std::fill(head2.begin(), head2.end(), 0);
        prev.fill(0);
        base = kBaseStart;
    }
}

void Compressor::State::find_matches(const std::uint8_t* p, std::size_t n) {
    length.resize(n + 1);
    distance.resize(n + 1);
    length[n] = 0;
    if (n < 2) {
        if (n == 1) length[0] = 0;
        base += static_cast<std::uint32_t>(n) + kBaseStart;
        return;
    }

    const std::uint32_t b = base;
    std::uint32_t* const h4 = head4.data();
    std::uint32_t* const h2 = head2.data();
    std::uint32_t* const links = prev.data();
    std::uint16_t* const lens = length.data();
    std::uint16_t* const dists = distance.data();
    const auto end = static_cast<std::uint32_t>(n);
    unsigned carry = 0; // the previous position's match, one byte shorter (0 = none)
    std::uint32_t carry_dist = 0;

    // One position. `v` holds the bytes from i on, little-endian (as far as they exist).
    auto position = [&](std::uint32_t i, std::uint32_t v) __attribute__((always_inline)) {
        const unsigned max = std::min<std::uint32_t>(kMaxMatch, end - i);
        const std::uint32_t here = b + i;
        // Entries before `lowest` are out of reach or left by an earlier call (see `base`).
        const std::uint32_t lowest = here - kMaxDistance;
        unsigned best = carry;
        std::uint32_t best_dist = carry_dist;
        // The carried match stopped at a mismatch unless it was capped at kMaxMatch.
        if (best == kMaxMatch - 1 && best < max && p[i + best - best_dist] == p[i + best]) ++best;
        if (max >= 4) {
            const std::uint32_t h = hash4(v);
            if (best < kSkipLength && best < max) {
                std::uint32_t cand = h4[h];
                unsigned depth = kChainDepth;
                while (cand >= lowest && depth-- > 0) {
                    const std::uint32_t d = here - cand;
                    if (p[i + best - d] == p[i + best]) {
                        const unsigned len = match_length(p + i - d, p + i, max);
                        if (len > best) {
                            best = len;
                            best_dist = d;
                            if (len >= kNiceLength || len == max) break;
                        }
                    }
                    cand = links[cand & (kHistorySize - 1)];
                }
            }
            links[here & (kHistorySize - 1)] = h4[h];
            h4[h] = here;
        }
        const std::uint32_t g = hash2(v & 0xFFFF);
        if (best < 2) {
            const std::uint32_t cand = h2[g];
            if (cand >= lowest) {
                const std::uint32_t d = here - cand;
                if (p[i - d] == p[i] && p[i + 1 - d] == p[i + 1]) {
                    best = 2 + match_length(p + i + 2 - d, p + i + 2, max - 2);
                    best_dist = d;
                }
            }
        }
        h2[g] = here;
        lens[i] = static_cast<std::uint16_t>(best);
        dists[i] = static_cast<std::uint16_t>(best_dist);
        carry = best > 0 ? best - 1 : 0;
        carry_dist = best_dist;
    };

    auto load = [p](std::uint32_t i) {
        std::uint32_t v;
        std::memcpy(&v, p + i, sizeof v);
        if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
        return v;
    };
    static_assert(kSkipLength >= 4);
    std::uint32_t i = 0;
    for (; i + 4 <= end; ++i) { // v has a fourth byte
        position(i, load(i));
        if (carry >= kSkipLength && carry + 1 < kMaxMatch) {
            // Positions whose carried match is at least kSkipLength long are not searched: only
            // hashed, and given the carried match. (A match capped at kMaxMatch goes the slow way,
            // which may extend it.) They end kSkipLength - 1 bytes before the match does, so no
            // further than end - 4.
            const std::uint32_t last = i + carry + 1 - kSkipLength;
            std::uint32_t len = carry;
            for (std::uint32_t j = i + 1; j <= last; ++j, --len) {
                const std::uint32_t v = load(j);
                const std::uint32_t here = b + j;
                const std::uint32_t h = hash4(v);
                links[here & (kHistorySize - 1)] = h4[h];
                h4[h] = here;
                h2[hash2(v & 0xFFFF)] = here;
                lens[j] = static_cast<std::uint16_t>(len);
                dists[j] = static_cast<std::uint16_t>(carry_dist);
            }
            i = last;
            carry = kSkipLength - 1;
        }
    }
    for (; i + 1 < end; ++i) {
        std::uint32_t v = p[i] | (p[i + 1] << 8);
        if (i + 2 < end) v |= p[i + 2] << 16;
        position(i, v);
    }
    lens[end - 1] = 0;
    base += end + kBaseStart;
}

// Backward dynamic programme over the longest match at each position. A copy of any length up to
// the longest is available (a prefix of a match is a match), and its cost depends only on its
// length bucket. Per bucket only its top length (or the longest, if smaller) need be tried: if an
// optimal parse used a shorter one, lengthening it by a byte and starting the next symbol a byte
// later (a literal vanishes; a match keeps its distance, one byte shorter, never in a dearer
// bucket) costs no more. The finder guarantees that the longest match at i + 1 is at least the
// longest at i minus one, so those shifted matches are known to the programme.
void Compressor::State::parse(std::size_t n) {
    // 9 bits a byte would overflow 32 bits past ~477 MB: every kRebase positions the costs still
    // to be read (the next kMaxMatch) are lowered by their minimum.
    constexpr std::size_t kRebase = std::size_t{1} << 24;
    cost.resize(n + 1);
    choice.resize(n + 1);
    std::uint32_t* const c = cost.data();
    std::uint16_t* const pick = choice.data();
    const std::uint16_t* const lens = length.data();
    c[n] = 0;
    for (std::size_t i = n; i > 0;) {
        const std::size_t stop = i > kRebase ? i - kRebase : 0;
        if (stop > 0) {
            const std::size_t top = std::min(n, i + kMaxMatch);
            const std::uint32_t low = *std::min_element(c + i, c + top + 1);
            for (std::size_t j = i; j <= top; ++j)
                c[j] -= low;
        }
        while (i-- > stop) {
            std::uint32_t best = c[i + 1] + kLiteralCost;
            unsigned chosen = 1;
            const unsigned longest = lens[i];
            if (longest >= kMinMatch) {
                // Ascending lengths, so that on a tie the longer copy (fewer symbols) wins.
                auto consider = [&](unsigned len, unsigned bits) {
                    const std::uint32_t v = c[i + len] + bits;
                    if (v <= best) {
                        best = v;
                        chosen = len;
                    }
                };
                switch (std::bit_width(longest)) {
                default: // 32..271
                    consider(3, match_cost(3));
                    consider(7, match_cost(7));
                    consider(15, match_cost(15));
                    consider(31, match_cost(31));
                    break;
                case 5: // 16..31
                    consider(3, match_cost(3));
                    consider(7, match_cost(7));
                    consider(15, match_cost(15));
                    break;
                case 4: // 8..15
                    consider(3, match_cost(3));
                    consider(7, match_cost(7));
                    break;
                case 3: // 4..7
                    consider(3, match_cost(3));
                    break;
                case 2: // 2..3
                    break;
                }
                consider(longest, kLengthCost[longest]);
            }
            c[i] = best;
            pick[i] = static_cast<std::uint16_t>(chosen);
        }
        i = stop;
    }
}

template <class Out>
void Compressor::State::emit(const std::uint8_t* p, std::size_t n, Out& out) {
    out.resize(max_output_size(n));
    BitWriter w(out.data());
    w.control(kReset1);
    for (std::size_t i = 0; i < n;) {
        const unsigned len = choice[i];
        if (len == 1) {
            w.put(p[i], kLiteralCost);
            ++i;
            continue;
        }
        // Reset 1 put history position 0 at input offset 0, so the absolute displacement of the
        // source is its offset mod 1024.
        put_copy(w, static_cast<std::uint32_t>(i - distance[i]) & (kHistorySize - 1), len);
        i += len;
    }
    finish(w, n, out);
}

// Level::Fast: one pass, greedy. At each position one probe of the 4-byte hash (the most recent
// position with that hash), else one probe of the 2-byte hash; a match is taken whole and its
// positions are put in the 4-byte table (only its first and last kFastInsert of a long one), so the
// work per byte is bounded; symbols
// are written without branches (FastBitWriter, kCopyCodes). The same tables and `base` as
// Level::Best, so stale entries are never in reach.
template <class Out>
void Compressor::State::compress_fast(const std::uint8_t* p, std::size_t n, Out& out) {
    constexpr std::uint32_t kFastInsert = 8;
    rebase(n);
    out.resize(max_output_size(n));
    FastBitWriter w(out.data());
    w.control(kReset1);
    const std::uint32_t b = base;
    std::uint32_t* const h4 = head4.data();
    std::uint32_t* const h2 = head2.data();
    const auto end = static_cast<std::uint32_t>(n);
    // Hashes position j (j + 4 <= end) inside a match: the 4-byte table only.
    auto insert = [&](std::uint32_t j) __attribute__((always_inline)) {
        h4[hash4(load32(p + j))] = b + j;
    };
    std::uint32_t i = 0;
    while (i + 4 <= end) {
        const std::uint32_t v = load32(p + i);
        const std::uint32_t here = b + i;
        const std::uint32_t lowest = here - kMaxDistance; // see State::base
        const unsigned max = std::min<std::uint32_t>(kMaxMatch, end - i);
        const std::uint32_t h = hash4(v);
        const std::uint32_t g = hash2(v & 0xFFFF);
        const std::uint32_t cand = h4[h];
        const std::uint32_t cand2 = h2[g];
        h4[h] = here;
        h2[g] = here;
        unsigned len = 0;
        std::uint32_t dist = 0;
        if (cand >= lowest) {
            dist = here - cand;
            if (load32(p + i - dist) == v)
                len = 4 + match_length(p + i + 4 - dist, p + i + 4, max - 4);
        }
        if (len == 0 && cand2 >= lowest) {
            dist = here - cand2;
            if (p[i - dist] == p[i] && p[i + 1 - dist] == p[i + 1])
                len = 2 + match_length(p + i + 2 - dist, p + i + 2, max - 2);
        }
        if (len < kMinMatch) {
            w.put(p[i], kLiteralCost);
            ++i;
            continue;
        }
        // Reset 1 put history position 0 at input offset 0: the displacement is the offset mod
        // 1024.
        const CopyCode copy = kCopyCodes[len];
        w.put(copy.code | ((i - dist) & (kHistorySize - 1)), copy.bits);
        const std::uint32_t stop = std::min(i + len, end - 3); // positions that have 4 bytes
        if (len <= 2 * kFastInsert) {
            for (std::uint32_t j = i + 1; j < stop; ++j)
                insert(j);
        } else {
            for (std::uint32_t j = i + 1; j < i + kFastInsert; ++j)
                insert(j);
            for (std::uint32_t j = std::max(i + kFastInsert, stop - std::min(stop, kFastInsert));
                 j < stop; ++j)
                insert(j);
        }
        i += len;
    }
    for (; i < end; ++i)
        w.put(p[i], kLiteralCost);
    base += end + kBaseStart;
    finish(w, n, out);
}

Compressor::Compressor(Level level) : state_(std::make_unique<State>()), level_(level) {}
Compressor::~Compressor() = default;
Compressor::Compressor(Compressor&&) noexcept = default;
Compressor& Compressor::operator=(Compressor&&) noexcept = default;

template <class Out>
void Compressor::State::compress(std::span<const std::uint8_t> in, Level level, Out& out) {
    const std::size_t n = in.size();
    // Positions are 32-bit, and so is the length field Windows appends.
    if (n > kMaxInput)
        throw wec::Error("SLDC: cannot compress " + std::to_string(n) +
                         " bytes in one record (the limit is 2 GiB)");
    if (level == Level::Fast) {
        compress_fast(in.data(), n, out);
        return;
    }
    rebase(n);
    find_matches(in.data(), n);
    parse(n);
    emit(in.data(), n, out);
}

void Compressor::compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) {
    if (!state_) state_ = std::make_unique<State>(); // a moved-from Compressor stays usable
    state_->compress(in, level_, out);
}

void Compressor::compress(std::span<const std::uint8_t> in, Buffer& out) {
    if (!state_) state_ = std::make_unique<State>();
    state_->compress(in, level_, out);
}

std::vector<std::uint8_t> Compressor::compress(std::span<const std::uint8_t> in) {
    std::vector<std::uint8_t> out;
    compress(in, out);
    return out;
}

std::vector<std::uint8_t> compress(std::span<const std::uint8_t> in, Level level) {
    Compressor c(level);
    return c.compress(in);
}

std::vector<std::string> level_names() {
    return {"fast", "best"};
}

std::string level_name(Level level) {
    return level == Level::Fast ? "fast" : "best";
}

std::optional<Level> level_named(std::string_view name) {
    if (name == "fast") return Level::Fast;
    if (name == "best") return Level::Best;
    return std::nullopt;
}

} // namespace wec::sldc

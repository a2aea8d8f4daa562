// SLDC compression (ECMA-321), scheme 1 only, optimally parsed.
//
// Every copy pointer costs the same 10 displacement bits wherever its source lies, so the cost of a
// match depends only on its length bucket: 13 bits for 2-3 bytes, 15 for 4-7, 17 for 8-15, 19 for
// 16-31 and 23 for 32-271; a literal costs 9. Any prefix of a match is itself a match from the
// same source, so knowing the longest match at each position is enough. A forward pass finds it
// (hash chains on 4-byte keys over the 1024-byte window, depth-limited, plus the most recent
// occurrence of the leading 3 and 2 bytes for short matches); a backward dynamic programme picks
// the cheapest parse over every length 2..longest (range minima per length bucket); a forward pass
// emits it.
#include "sldc/format.hpp"
#include "sldc/sldc.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <string>

namespace wec::sldc {
namespace {

using namespace detail;

constexpr unsigned kHash4Bits = 13;
constexpr unsigned kHash3Bits = 12;
constexpr unsigned kHash2Bits = 12;
constexpr unsigned kChainDepth = 16; // candidates examined per position
constexpr unsigned kNiceLength = 96; // stop searching once a match is this long
constexpr unsigned kSkipLength = 96; // after a match this long, follow it instead of searching

inline std::uint32_t hash3(const std::uint8_t* p) {
    const std::uint32_t v = p[0] | (p[1] << 8) | (p[2] << 16);
    return (v * 2654435761u) >> (32 - kHash3Bits);
}

inline std::uint32_t hash4(const std::uint8_t* p) {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return (v * 2654435761u) >> (32 - kHash4Bits);
}

inline std::uint32_t hash2(const std::uint8_t* p) {
    const std::uint32_t v = p[0] | (p[1] << 8);
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

} // namespace

struct Compressor::State {
    std::vector<std::int32_t> head4 = std::vector<std::int32_t>(std::size_t{1} << kHash4Bits);
    std::vector<std::int32_t> head3 = std::vector<std::int32_t>(std::size_t{1} << kHash3Bits);
    std::vector<std::int32_t> head2 = std::vector<std::int32_t>(std::size_t{1} << kHash2Bits);
    std::array<std::int32_t, kHistorySize> prev{};
    std::vector<std::uint16_t> length;   // longest match at each position (0 = none)
    std::vector<std::uint16_t> distance; // how far back that match starts (1..1024)
    // Range-minimum sparse table over the last kRing positions of the DP (see parse()).
    static constexpr std::size_t kRing = 512;
    static constexpr unsigned kLevels = 8; // spans up to 128 >= half the widest bucket
    std::array<std::array<std::uint64_t, kLevels>, kRing> ring; // [position][level]
    std::vector<std::uint16_t> choice;                          // 1 = literal, else match length

    void find_matches(const std::uint8_t* p, std::size_t n);
    void parse(std::size_t n);
    void emit(const std::uint8_t* p, std::size_t n, std::vector<std::uint8_t>& out);
};

void Compressor::State::find_matches(const std::uint8_t* p, std::size_t n) {
    std::fill(head4.begin(), head4.end(), -1);
    std::fill(head3.begin(), head3.end(), -1);
    std::fill(head2.begin(), head2.end(), -1);
    length.assign(n, 0);
    distance.resize(n);

    const auto end = static_cast<std::int32_t>(n);
    for (std::int32_t i = 0; i + 1 < end; ++i) {
        const auto max = static_cast<unsigned>(std::min<std::int32_t>(kMaxMatch, end - i));
        const std::int32_t lowest = i - static_cast<std::int32_t>(kHistorySize);
        unsigned best = 0;
        std::int32_t best_pos = 0; // meaningful when best >= 2

        if (i > 0 && length[i - 1] >= kSkipLength) {
            // Inside a long match: its tail, extended if possible, is (nearly always) the longest
            // match here too. Extending keeps long runs at full 271-byte matches.
            best_pos = i - distance[i - 1];
            best = length[i - 1] - 1u;
            while (best < max && p[best_pos + best] == p[i + best])
                ++best;
        } else if (max >= 4) {
            // Chains link positions with the same 4-byte hash (2 characters of UTF-16 text).
            std::int32_t cand = head4[hash4(p + i)];
            unsigned depth = kChainDepth;
            while (cand >= lowest && cand >= 0 && depth-- > 0) {
                if (p[cand + best] == p[i + best]) {
                    const unsigned len = match_length(p + cand, p + i, max);
                    if (len > best) {
                        best = len;
                        best_pos = cand;
                        if (len >= kNiceLength || len == max) break; // p[i + max] is past the end
                    }
                }
                const std::int32_t next = prev[static_cast<std::size_t>(cand) & (kHistorySize - 1)];
                if (next >= cand) break;
                cand = next;
            }
        }
        // Shorter matches: the most recent occurrence of the 3 and 2 leading bytes.
        if (best < 3 && max >= 3) {
            const std::int32_t cand = head3[hash3(p + i)];
            if (cand >= lowest && cand >= 0) {
                const unsigned len = match_length(p + cand, p + i, max);
                if (len > best) {
                    best = len;
                    best_pos = cand;
                }
            }
        }
        if (best < 2) {
            const std::int32_t cand = head2[hash2(p + i)];
            if (cand >= lowest && cand >= 0 && p[cand] == p[i] && p[cand + 1] == p[i + 1]) {
                best = match_length(p + cand, p + i, max);
                best_pos = cand;
            }
        }
        if (best >= kMinMatch) {
            length[i] = static_cast<std::uint16_t>(best);
            distance[i] = static_cast<std::uint16_t>(i - best_pos);
        }

        head2[hash2(p + i)] = i;
        if (max >= 3) head3[hash3(p + i)] = i;
        if (max >= 4) {
            const std::uint32_t h = hash4(p + i);
            prev[static_cast<std::size_t>(i) & (kHistorySize - 1)] = head4[h];
            head4[h] = i;
        }
    }
}

// The backward DP needs, for each length bucket, the cheapest position to continue from among
// i+lo .. i+min(hi, longest). A sparse table of range minima over a ring of the last positions
// answers each bucket with two lookups, so every match length is considered at constant cost.
// Entries pack (cost << 24) | (0xFFFFFF - (j mod 2^24)): the minimum is the cheapest position and,
// on a tie, the farther one (the longer match, fewer symbols).
void Compressor::State::parse(std::size_t n) {
    constexpr std::uint64_t kNone = ~std::uint64_t{0};
    constexpr unsigned kPosBits = 24;
    constexpr std::uint64_t kPosMask = (std::uint64_t{1} << kPosBits) - 1;
    auto pack = [](std::uint64_t cost, std::size_t j) {
        return (cost << kPosBits) | (kPosMask - (j & kPosMask));
    };
    auto& st = ring;
    auto at = [](std::size_t j) { return j & (kRing - 1); };
    auto range_min = [&](std::size_t a, std::size_t b) { // inclusive, a <= b
        const unsigned k = static_cast<unsigned>(std::bit_width(b - a + 1)) - 1;
        return std::min(st[at(a)][k], st[at(b - (std::size_t{1} << k) + 1)][k]);
    };
    struct Bucket {
        unsigned lo, hi, cost;
    };
    static constexpr Bucket kBuckets[] = {{2, 3, match_cost(2)},
                                          {4, 7, match_cost(4)},
                                          {8, 15, match_cost(8)},
                                          {16, 31, match_cost(16)},
                                          {32, kMaxMatch, match_cost(32)}};

    choice.resize(n);
    // Positions past the end are never a minimum.
    for (std::size_t j = n + 1; j <= n + (std::size_t{1} << (kLevels - 1)); ++j)
        st[at(j)].fill(kNone);
    std::uint64_t next_cost = 0; // cost from position i + 1
    for (std::size_t i = n + 1; i-- > 0;) {
        std::uint64_t cost = 0;
        if (i < n) {
            cost = next_cost + kLiteralCost;
            unsigned pick = 1;
            const unsigned longest = length[i];
            for (const Bucket& b : kBuckets) {
                if (longest < b.lo) break;
                const std::uint64_t m = range_min(i + b.lo, i + std::min(b.hi, longest));
                const std::uint64_t c = (m >> kPosBits) + b.cost;
                if (c <= cost) {
                    cost = c;
                    pick = static_cast<unsigned>(((kPosMask - (m & kPosMask)) - i) & kPosMask);
                }
            }
            choice[i] = static_cast<std::uint16_t>(pick);
        }
        next_cost = cost;
        std::uint64_t v = pack(cost, i);
        auto& row = st[at(i)];
        row[0] = v;
        for (unsigned k = 1; k < kLevels; ++k) {
            v = std::min(v, st[at(i + (std::size_t{1} << (k - 1)))][k - 1]);
            row[k] = v;
        }
    }
}

void Compressor::State::emit(const std::uint8_t* p, std::size_t n, std::vector<std::uint8_t>& out) {
    // Worst case: Reset 1, all literals, End of Record, padding, 4-byte length, writer slack.
    const std::size_t max_bits = 2 * kControlBits + kLiteralCost * n;
    out.resize(max_bits / 8 + 2 + 4 + 8);
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
        const auto disp = static_cast<std::uint32_t>(i - distance[i]) & (kHistorySize - 1);
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
        i += len;
    }
    w.control(kEndOfRecord);
    std::size_t size = w.finish16();
    const auto total = static_cast<std::uint32_t>(n); // as Windows writes it: 32 bits
    for (int k = 0; k < 4; ++k)
        out[size++] = static_cast<std::uint8_t>(total >> (8 * k));
    out.resize(size);
}

Compressor::Compressor() : state_(std::make_unique<State>()) {}
Compressor::~Compressor() = default;
Compressor::Compressor(Compressor&&) noexcept = default;
Compressor& Compressor::operator=(Compressor&&) noexcept = default;

void Compressor::compress(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) {
    if (!state_) state_ = std::make_unique<State>(); // a moved-from Compressor stays usable
    State& s = *state_;
    const std::size_t n = in.size();
    // Positions are 32-bit, and so is the length field Windows appends.
    if (n > kMaxInput)
        throw wec::Error("SLDC: cannot compress " + std::to_string(n) +
                         " bytes in one record (the limit is 2 GiB)");
    s.find_matches(in.data(), n);
    s.parse(n);
    s.emit(in.data(), n, out);
}

std::vector<std::uint8_t> Compressor::compress(std::span<const std::uint8_t> in) {
    std::vector<std::uint8_t> out;
    compress(in, out);
    return out;
}

std::vector<std::uint8_t> compress(std::span<const std::uint8_t> in) {
    Compressor c;
    return c.compress(in);
}

} // namespace wec::sldc

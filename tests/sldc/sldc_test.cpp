// Tests of the SLDC (ECMA-321) codec: Windows samples, hand-built bitstreams for every symbol,
// errors, and round trips.
#include "common/files.hpp"
#include "sldc/sldc.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <gtest/gtest.h>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace {

using wec::sldc::ErrorCode;
using Bytes = std::vector<std::uint8_t>;

constexpr std::size_t kLimit = 64u << 20;

Bytes data(const std::string& name) {
    return wec::read_file(std::string(WEC_TEST_DATA) + "/sldc/" + name);
}

Bytes bytes_of(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

// Control codes.
enum : unsigned {
    kFlush = 0x0,
    kScheme1 = 0x1,
    kScheme2 = 0x2,
    kFileMark = 0x3,
    kEndOfRecord = 0x4,
    kReset1 = 0x5,
    kReset2 = 0x6,
    kEndMarker = 0xF,
};

// Builds an SLDC bitstream symbol by symbol and, independently of the library, models the
// circular 1024-byte history to compute the expected output.
class Stream {
public:
    // Raw bits, most significant first.
    Stream& bits(std::uint32_t v, unsigned n) {
        for (unsigned k = n; k-- > 0;)
            bits_.push_back((v >> k) & 1);
        return *this;
    }
    std::size_t bit_count() const { return bits_.size(); }

    Stream& control(unsigned code) {
        bits(0x1FF, 9).bits(code, 4);
        if (code == kReset1 || code == kReset2) {
            written_ = 0;
            hist_.fill(0);
        }
        if (code == kFlush) bits(0, (32 - bits_.size() % 32) % 32);
        return *this;
    }
    Stream& literal(std::uint8_t b) {
        bits(0, 1).bits(b, 8);
        append(b);
        return *this;
    }
    Stream& literals(std::string_view s) {
        for (char c : s)
            literal(static_cast<std::uint8_t>(c));
        return *this;
    }
    // A scheme-2 byte.
    Stream& raw(std::uint8_t b) {
        bits(b, 8);
        if (b == 0xFF) bits(0, 1);
        append(b);
        return *this;
    }
    // A scheme-1 copy pointer; `model` = false when the pointer is invalid (errors).
    Stream& copy(unsigned len, unsigned disp, bool model = true) {
        bits(1, 1);
        if (len <= 3)
            bits(0, 1).bits(len - 2, 1);
        else if (len <= 7)
            bits(0b10, 2).bits(len - 4, 2);
        else if (len <= 15)
            bits(0b110, 3).bits(len - 8, 3);
        else if (len <= 31)
            bits(0b1110, 4).bits(len - 16, 4);
        else
            bits(0b1111, 4).bits(len - 32, 8);
        bits(disp, 10);
        if (model)
            for (unsigned k = 0; k < len; ++k)
                append(hist_[(disp + k) % 1024]);
        return *this;
    }

    // The bytes (zero-padded to a whole byte) and what a decoder must produce.
    Bytes bytes() const {
        Bytes out((bits_.size() + 7) / 8, 0);
        for (std::size_t i = 0; i < bits_.size(); ++i)
            if (bits_[i]) out[i / 8] |= static_cast<std::uint8_t>(0x80 >> (i % 8));
        return out;
    }
    const Bytes& expected() const { return expected_; }

private:
    void append(std::uint8_t b) {
        hist_[written_ % 1024] = b;
        ++written_;
        expected_.push_back(b);
    }

    std::vector<bool> bits_;
    std::array<std::uint8_t, 1024> hist_{};
    std::size_t written_ = 0;
    Bytes expected_;
};

// Decompresses and expects a typed error; returns it.
wec::sldc::SldcError expect_error(const Bytes& in, std::size_t limit = kLimit) {
    try {
        (void)wec::sldc::decompress(in, limit);
    } catch (const wec::sldc::SldcError& e) {
        return e;
    }
    ADD_FAILURE() << "no error";
    return wec::sldc::SldcError(ErrorCode::Truncated, 0);
}

// Same through the appending overload: `out` keeps what was decoded before the error.
wec::sldc::SldcError expect_error(std::span<const std::uint8_t> in, Bytes& out,
                                  std::size_t limit = kLimit) {
    try {
        wec::sldc::decompress(in, out, limit);
    } catch (const wec::sldc::SldcError& e) {
        return e;
    }
    ADD_FAILURE() << "no error";
    return wec::sldc::SldcError(ErrorCode::Truncated, 0);
}

void expect_decodes(const Stream& s) {
    EXPECT_EQ(wec::sldc::decompress(s.bytes(), kLimit), s.expected());
}

// Both levels: each output decodes back to the input and is never worse than all literals.
void expect_round_trip(const Bytes& in) {
    for (const auto level : {wec::sldc::Level::Best, wec::sldc::Level::Fast}) {
        SCOPED_TRACE(level == wec::sldc::Level::Best ? "best" : "fast");
        const Bytes packed = wec::sldc::compress(in, level);
        // Never worse than all literals (9 bits a byte) plus framing.
        EXPECT_LE(packed.size(), (in.size() * 9 + 26 + 15) / 16 * 2 + 4);
        const Bytes back = wec::sldc::decompress(packed, in.size());
        ASSERT_EQ(back.size(), in.size());
        EXPECT_TRUE(back == in);
    }
}

// ---- Windows samples -----------------------------------------------------------------------

TEST(SldcSamples, Scheme2TestString) {
    const Bytes out = wec::sldc::decompress(data("test-string.sldc"), kLimit);
    EXPECT_EQ(out, bytes_of("test string"));
    EXPECT_EQ(out, data("test-string.out"));
}

TEST(SldcSamples, WindowsHeartbeatDecompresses) {
    EXPECT_EQ(wec::sldc::decompress(data("heartbeat.sldc"), kLimit), data("heartbeat.utf16"));
}

TEST(SldcSamples, WindowsHeartbeatLengthTrailer) {
    const Bytes in = data("heartbeat.sldc");
    ASSERT_GE(in.size(), 4u);
    const std::uint32_t len = in[in.size() - 4] | (in[in.size() - 3] << 8) |
                              (in[in.size() - 2] << 16) |
                              (static_cast<std::uint32_t>(in[in.size() - 1]) << 24);
    EXPECT_EQ(len, data("heartbeat.utf16").size());
}

TEST(SldcSamples, HeartbeatCompressesAsWellAsWindows) {
    const Bytes in = data("heartbeat.utf16");
    ASSERT_EQ(in.size(), 3042u);
    const Bytes packed = wec::sldc::compress(in);
    std::printf("heartbeat: %zu -> %zu bytes (Windows: 1006)\n", in.size(), packed.size());
    EXPECT_LE(packed.size(), 1006u);
    EXPECT_EQ(wec::sldc::decompress(packed, kLimit), in);
}

TEST(SldcSamples, RealMessagesRoundTrip) {
    for (const char* name : {"heartbeat.utf16", "enumerate.utf16", "events.utf16"}) {
        SCOPED_TRACE(name);
        const Bytes in = data(name);
        const Bytes packed = wec::sldc::compress(in);
        std::printf("%s: %zu -> %zu bytes\n", name, in.size(), packed.size());
        EXPECT_LT(packed.size(), in.size() / 2);
        EXPECT_EQ(wec::sldc::decompress(packed, in.size()), in);
    }
}

// ---- Compressed format -----------------------------------------------------------------------

// An independent scheme-1 walker: checks that a compressor output is Reset 1, scheme-1 symbols,
// End of Record, zero bits to a 16-bit boundary, then the 32-bit LE length.
// Also checks that no copy reaches back 1024 bytes, and reports the farthest in `max_distance`.
void check_format(const Bytes& packed, std::size_t uncompressed,
                  std::size_t* max_distance = nullptr) {
    std::size_t pos = 0;
    auto bit = [&]() -> unsigned {
        if (pos / 8 >= packed.size()) throw std::out_of_range("past the end");
        const unsigned b = (packed[pos / 8] >> (7 - pos % 8)) & 1;
        ++pos;
        return b;
    };
    auto take = [&](unsigned n) {
        std::uint32_t v = 0;
        for (unsigned k = 0; k < n; ++k)
            v = (v << 1) | bit();
        return v;
    };
    ASSERT_EQ(take(13), 0x1FF5u) << "must start with Reset 1";
    std::size_t produced = 0;
    for (;;) {
        const std::size_t at = pos;
        if (take(9) == 0x1FF) {
            ASSERT_EQ(take(4), static_cast<std::uint32_t>(kEndOfRecord)) << "at bit " << at;
            break;
        }
        pos = at;
        if (take(1) == 0) {
            take(8);
            ++produced;
            continue;
        }
        unsigned ones = 0;
        while (ones < 4 && bit() == 1)
            ++ones;
        static constexpr unsigned kExtra[5] = {1, 2, 3, 4, 8};
        static constexpr unsigned kBase[5] = {2, 4, 8, 16, 32};
        const unsigned value = take(kExtra[ones]);
        if (ones == 4) {
            ASSERT_LE(value, 0xEFu) << "at bit " << at;
        }
        const unsigned disp = take(10);
        ASSERT_LT(disp, std::max<std::size_t>(produced, 1024)) << "unwritten history at bit " << at;
        ASSERT_TRUE(produced >= 1024 || disp < produced);
        // How far back the source lies: 1..1024, 1024 when it is the byte about to be overwritten.
        // Valid, but not known to be accepted by Windows, so the compressor never emits it.
        const std::size_t distance =
            (produced - disp) % 1024 == 0 ? 1024 : (produced - disp) % 1024;
        ASSERT_LT(distance, 1024u) << "copy from 1024 bytes back at bit " << at;
        if (max_distance) *max_distance = std::max(*max_distance, distance);
        produced += kBase[ones] + value;
    }
    EXPECT_EQ(produced, uncompressed);
    while (pos % 16 != 0)
        EXPECT_EQ(bit(), 0u) << "padding bit " << pos;
    ASSERT_EQ(pos / 8 + 4, packed.size()) << "4-byte length must follow the 16-bit padding";
    const std::size_t n = packed.size();
    const std::uint32_t len = packed[n - 4] | (packed[n - 3] << 8) | (packed[n - 2] << 16) |
                              (static_cast<std::uint32_t>(packed[n - 1]) << 24);
    EXPECT_EQ(len, uncompressed);
}

TEST(SldcCompress, FormatOfRealMessages) {
    for (const char* name : {"heartbeat.utf16", "enumerate.utf16", "events.utf16"}) {
        SCOPED_TRACE(name);
        const Bytes in = data(name);
        check_format(wec::sldc::compress(in), in.size());
    }
}

TEST(SldcCompress, FormatOfRandomAndRuns) {
    std::mt19937 rng(7);
    Bytes random(5000), zeros(5000, 0);
    for (auto& b : random)
        b = static_cast<std::uint8_t>(rng());
    check_format(wec::sldc::compress(random), random.size());
    check_format(wec::sldc::compress(zeros), zeros.size());
    const Bytes ff(3000, 0xFF);
    check_format(wec::sldc::compress(ff), ff.size());
}

TEST(SldcCompress, NoCopyReachesBack1024Bytes) {
    // Data repeating every 1024 bytes: the obvious source of every byte after the first period is
    // exactly 1024 bytes back, the history position about to be overwritten. ECMA-321 allows it
    // (the decoder accepts it) but whether Windows does is unverified, so it is never emitted.
    std::mt19937 rng(1024);
    Bytes unit(1024);
    for (auto& b : unit)
        b = static_cast<std::uint8_t>(rng());
    Bytes in;
    for (int k = 0; k < 6; ++k)
        in.insert(in.end(), unit.begin(), unit.end());
    std::size_t farthest = 0;
    check_format(wec::sldc::compress(in), in.size(), &farthest);
    EXPECT_LT(farthest, 1024u);
    EXPECT_EQ(wec::sldc::decompress(wec::sldc::compress(in), in.size()), in);

    // The same with a repeated 1023-byte unit: distance 1023 is the farthest used, and used.
    in.clear();
    unit.pop_back();
    for (int k = 0; k < 6; ++k)
        in.insert(in.end(), unit.begin(), unit.end());
    farthest = 0;
    const Bytes packed = wec::sldc::compress(in);
    check_format(packed, in.size(), &farthest);
    EXPECT_EQ(farthest, 1023u);
    EXPECT_LT(packed.size(), 1023u + 200);

    // And on every kind of input the other tests use.
    for (const char* name : {"heartbeat.utf16", "enumerate.utf16", "events.utf16"}) {
        SCOPED_TRACE(name);
        const Bytes msg = data(name);
        farthest = 0;
        check_format(wec::sldc::compress(msg), msg.size(), &farthest);
        EXPECT_GT(farthest, 900u); // the window is used
    }
}

TEST(SldcCompress, EmptyInput) {
    // Reset 1 (1111111110101), End of Record (1111111110100), 6 pad bits, length 0.
    const Bytes expected = {0xFF, 0xAF, 0xFD, 0x00, 0x00, 0x00, 0x00, 0x00};
    EXPECT_EQ(wec::sldc::compress(Bytes{}), expected);
    EXPECT_TRUE(wec::sldc::decompress(expected, kLimit).empty());
}

TEST(SldcCompress, OneByte) {
    // Reset 1, literal 'A' (0 01000001), End of Record, 3 pad bits, length 1.
    const Bytes expected = {0xFF, 0xA9, 0x07, 0xFE, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00};
    EXPECT_EQ(wec::sldc::compress(bytes_of("A")), expected);
}

TEST(SldcCompress, ReusedCompressorGivesSameOutput) {
    wec::sldc::Compressor c;
    const Bytes a = data("events.utf16"), b = data("heartbeat.utf16");
    const Bytes ca = c.compress(a);
    Bytes cb;
    c.compress(b, cb);
    EXPECT_EQ(ca, wec::sldc::compress(a));
    EXPECT_EQ(cb, wec::sldc::compress(b));
    EXPECT_EQ(c.compress(a), ca);
    wec::sldc::Compressor moved = std::move(c);
    EXPECT_EQ(moved.compress(b), cb);
}

TEST(SldcCompress, LongRunUsesLongestMatches) {
    const Bytes zeros(271 * 10 + 1, 0);
    const Bytes packed = wec::sldc::compress(zeros);
    // One literal and ten 271-byte copies: 13 + 9 + 10*23 + 13 bits -> 265, padded to 272.
    EXPECT_EQ(packed.size(), 272u / 8 + 4);
    EXPECT_EQ(wec::sldc::decompress(packed, zeros.size()), zeros);
}

// ---- Hand-built bitstreams ---------------------------------------------------------------------

TEST(SldcDecode, LiteralsAndEveryControlSymbol) {
    Stream s;
    s.control(kReset1).literals("ab");
    s.control(kFileMark).literal('c');
    s.control(kFlush).literal('d');
    s.control(kEndMarker).literal('e');
    s.control(kScheme2).raw('f').raw(0xFF).raw('g');
    s.control(kScheme1).literal('h');
    s.control(kReset2).raw('i');
    s.control(kReset1).literal('j');
    s.control(kEndOfRecord);
    EXPECT_EQ(s.expected(), bytes_of("abcdef\xFFghij"));
    expect_decodes(s);
}

TEST(SldcDecode, SchemeSwitchKeepsHistory) {
    Stream s;
    s.control(kReset2).raw('x').raw('y').raw(0xFF).raw('z');
    s.control(kScheme1).copy(4, 0).literal('!');
    s.control(kScheme2).raw(0xFF).raw(0xFF);
    s.control(kScheme1).copy(3, 2);
    s.control(kEndOfRecord);
    EXPECT_EQ(s.expected(), bytes_of("xy\xFFzxy\xFFz!\xFF\xFF\xFFzx"));
    expect_decodes(s);
}

TEST(SldcDecode, Scheme2FFEscape) {
    Stream s;
    s.control(kReset2);
    for (int k = 0; k < 10; ++k)
        s.raw(0xFF);
    s.raw(0x7F).raw(0xFE).raw(0xFF).raw(0x00).control(kEndOfRecord);
    expect_decodes(s);
    EXPECT_EQ(s.expected().size(), 14u);
}

TEST(SldcDecode, EveryMatchCountBucket) {
    for (unsigned len : {2u, 3u, 4u, 5u, 7u, 8u, 15u, 16u, 31u, 32u, 33u, 100u, 270u, 271u}) {
        SCOPED_TRACE(len);
        Stream s;
        s.control(kReset1).literals("0123456789");
        s.copy(len, 3).copy(len, 0).control(kEndOfRecord);
        expect_decodes(s);
        EXPECT_EQ(s.expected().size(), 10 + 2 * len);
    }
}

TEST(SldcDecode, OverlappingCopyRepeatsBytes) {
    Stream s;
    s.control(kReset1).literal('A').copy(271, 0).copy(9, 100).control(kEndOfRecord);
    EXPECT_EQ(s.expected(), Bytes(281, 'A'));
    expect_decodes(s);

    Stream t; // distance 2 and 3 overlaps
    t.control(kReset1).literals("ab").copy(20, 0).literals("xyz").copy(17, 22).control(
        kEndOfRecord);
    expect_decodes(t);
    EXPECT_EQ(std::string(t.expected().begin(), t.expected().begin() + 6), "ababab");
}

TEST(SldcDecode, CopyWrapsAcrossHistoryEnd) {
    Stream s;
    s.control(kReset1);
    for (int k = 0; k < 1030; ++k)
        s.literal(static_cast<std::uint8_t>(k * 7 + k / 256));
    // Reads positions 1020..1023 then 0..5 (the latter overwritten by bytes 1024..1029).
    s.copy(10, 1020);
    // Source at the write position (distance 1024) and a copy overlapping its own output.
    s.copy(40, 1040 % 1024);
    s.copy(271, 1000);
    s.control(kEndOfRecord);
    expect_decodes(s);
    const Bytes& e = s.expected();
    EXPECT_EQ(e[1030], e[1020]);
    EXPECT_EQ(e[1034], e[1024]);
}

TEST(SldcDecode, AbsoluteDisplacementAfterManyBytes) {
    Stream s;
    s.control(kReset1);
    for (int k = 0; k < 1500; ++k)
        s.literal(static_cast<std::uint8_t>(k % 251));
    s.copy(5, 100); // the bytes last written at position 100: output 1124..1128
    s.control(kEndOfRecord);
    const Bytes out = wec::sldc::decompress(s.bytes(), kLimit);
    ASSERT_EQ(out.size(), 1505u);
    for (int k = 0; k < 5; ++k)
        EXPECT_EQ(out[1500 + k], (1124 + k) % 251);
    EXPECT_EQ(out, s.expected());
}

TEST(SldcDecode, FlushPadsToThirtyTwoBits) {
    Stream s;
    s.control(kReset1).literal('a').control(kFlush); // 13 + 9 + 13 = 35 -> 29 pad bits
    EXPECT_EQ(s.bit_count(), 64u);
    s.literal('b').control(kFlush); // 64 + 9 + 13 = 86 -> 10 pad bits
    EXPECT_EQ(s.bit_count(), 96u);
    s.literals("cd").control(kEndOfRecord);
    EXPECT_EQ(s.expected(), bytes_of("abcd"));
    expect_decodes(s);

    // The padding is skipped, not decoded: here it would swallow 'b' and End of Record (bits 35
    // to 56), so the input ends at bit 64 without an End of Record.
    Stream t;
    t.control(kReset1).literal('a').bits(0x1FF0, 13).literal('b').control(kEndOfRecord);
    const auto e = expect_error(t.bytes());
    EXPECT_EQ(e.code(), ErrorCode::Truncated);
    EXPECT_EQ(e.bit_offset(), 64u);
}

TEST(SldcDecode, FlushOnBoundaryHasNoPadding) {
    // Reset 2 (13) + two bytes (16) + six 0xFF bytes (6 * 9) = 83; the Flush ends at bit 96.
    Stream s;
    s.control(kReset2).raw('a').raw('b');
    for (int k = 0; k < 6; ++k)
        s.raw(0xFF);
    s.control(kFlush);
    EXPECT_EQ(s.bit_count(), 96u);
    s.raw('z').control(kEndOfRecord);
    EXPECT_EQ(s.expected(), bytes_of("ab\xFF\xFF\xFF\xFF\xFF\xFFz"));
    expect_decodes(s);
}

TEST(SldcDecode, FileMarkAndEndMarkerContinue) {
    Stream s;
    s.control(kReset1).literals("ab").control(kFileMark).copy(2, 0).control(kEndMarker);
    s.control(kEndMarker).control(kFileMark).literal('c').control(kEndOfRecord);
    EXPECT_EQ(s.expected(), bytes_of("ababc"));
    expect_decodes(s);
}

TEST(SldcDecode, IgnoresEverythingAfterEndOfRecord) {
    Stream s;
    s.control(kReset1).literals("ok").control(kEndOfRecord);
    s.bits(0x1FF, 9).bits(0x7, 4); // a reserved symbol after the end is not looked at
    s.bits(0xDEADBEEF, 32);
    expect_decodes(s);
}

TEST(SldcDecode, AppendsToExistingOutputWithFreshHistory) {
    Bytes out = bytes_of("prefix");
    Stream s;
    s.control(kReset1).literals("ab").copy(4, 0).control(kEndOfRecord);
    wec::sldc::decompress(s.bytes(), out, kLimit);
    EXPECT_EQ(out, bytes_of("prefixababab"));

    // History is only what this record wrote: position 2 is unwritten even though `out` is not
    // empty. `out` keeps what was decoded before the fault.
    Bytes out2 = bytes_of("prefix");
    Stream t;
    t.control(kReset1).literals("ab").copy(2, 2, false).control(kEndOfRecord);
    EXPECT_EQ(expect_error(t.bytes(), out2).code(), ErrorCode::UnwrittenHistory);
    EXPECT_EQ(out2, bytes_of("prefixab"));
}

TEST(SldcDecode, IntoBufferSameAsIntoVector) {
    // sldc::Buffer is not zero-filled: the same bytes, appended the same way, with the same
    // partial output on error.
    for (const char* name : {"heartbeat.utf16", "events.utf16"}) {
        SCOPED_TRACE(name);
        const Bytes in = data(name);
        for (const auto level : {wec::sldc::Level::Best, wec::sldc::Level::Fast}) {
            const Bytes packed = wec::sldc::compress(in, level);
            wec::sldc::Buffer out{'x', 'y'};
            wec::sldc::decompress(packed, out, in.size());
            ASSERT_EQ(out.size(), in.size() + 2);
            EXPECT_TRUE(std::equal(in.begin(), in.end(), out.begin() + 2));
            out.clear();
            EXPECT_THROW(wec::sldc::decompress(packed, out, in.size() - 1), wec::sldc::SldcError);
            EXPECT_LE(out.size(), in.size() - 1);
            EXPECT_TRUE(std::equal(out.begin(), out.end(), in.begin()));
        }
    }
    Stream t;
    t.control(kReset1).literals("ab").copy(2, 2, false).control(kEndOfRecord);
    wec::sldc::Buffer out2{'p'};
    EXPECT_THROW(wec::sldc::decompress(t.bytes(), out2, kLimit), wec::sldc::SldcError);
    EXPECT_EQ(Bytes(out2.begin(), out2.end()), bytes_of("pab"));
}

TEST(SldcDecode, OutputLimitIsExact) {
    Stream s;
    s.control(kReset1).literal('a').copy(99, 0).control(kEndOfRecord);
    EXPECT_EQ(wec::sldc::decompress(s.bytes(), 100).size(), 100u);
    EXPECT_EQ(expect_error(s.bytes(), 99).code(), ErrorCode::OutputLimit);
    EXPECT_EQ(expect_error(s.bytes(), 0).code(), ErrorCode::OutputLimit);
}

// ---- Errors
// ---------------------------------------------------------------------------------------

TEST(SldcErrors, TruncatedWithoutEndOfRecord) {
    Stream s;
    s.control(kReset1).literals("abc");
    const auto e = expect_error(s.bytes()); // 13 + 27 = 40 bits: ends exactly on a byte
    EXPECT_EQ(e.code(), ErrorCode::Truncated);
    EXPECT_EQ(e.bit_offset(), 40u);
    EXPECT_NE(std::string(e.what()).find("at bit 40"), std::string::npos) << e.what();

    // Cut inside a copy pointer: the error names the start of that symbol.
    Stream t;
    t.control(kReset1).literals("ab").copy(100, 0);
    Bytes cut = t.bytes();
    cut.pop_back();
    const auto f = expect_error(cut);
    EXPECT_EQ(f.code(), ErrorCode::Truncated);
    EXPECT_EQ(f.bit_offset(), 31u);

    EXPECT_EQ(expect_error(Bytes{}).code(), ErrorCode::Truncated);
    EXPECT_EQ(expect_error(Bytes{0xFF}).code(), ErrorCode::Truncated);
    // The whole heartbeat minus its End of Record.
    Bytes hb = data("heartbeat.sldc");
    hb.resize(hb.size() - 8);
    EXPECT_EQ(expect_error(hb).code(), ErrorCode::Truncated);
}

TEST(SldcErrors, ReservedControlSymbols) {
    for (unsigned code = 0x7; code <= 0xE; ++code) {
        SCOPED_TRACE(code);
        Stream s;
        s.control(kReset1).literal('a').bits(0x1FF, 9).bits(code, 4).control(kEndOfRecord);
        const auto e = expect_error(s.bytes());
        EXPECT_EQ(e.code(), ErrorCode::ReservedSymbol);
        EXPECT_EQ(e.bit_offset(), 22u);
    }
}

TEST(SldcErrors, DataBeforeAnyScheme) {
    Stream s;
    s.literal('a').control(kEndOfRecord);
    const auto e = expect_error(s.bytes());
    EXPECT_EQ(e.code(), ErrorCode::NoScheme);
    EXPECT_EQ(e.bit_offset(), 0u);

    Stream t; // a control symbol that does not set a scheme does not help
    t.control(kFileMark).control(kFlush).bits(0, 8).control(kEndOfRecord);
    const auto f = expect_error(t.bytes());
    EXPECT_EQ(f.code(), ErrorCode::NoScheme);
    EXPECT_EQ(f.bit_offset(), 32u);
}

TEST(SldcErrors, UnwrittenHistory) {
    Stream s;
    s.control(kReset1).literals("abc").copy(2, 3, false).control(kEndOfRecord);
    const auto e = expect_error(s.bytes());
    EXPECT_EQ(e.code(), ErrorCode::UnwrittenHistory);
    EXPECT_EQ(e.bit_offset(), 40u);
    EXPECT_EQ(std::string(e.what()), "SLDC: copy pointer refers to unwritten history at bit 40");

    // After a Reset, old history is gone.
    Stream t;
    t.control(kReset1).literals("abcdef").control(kReset1).literal('x').copy(2, 1, false);
    t.control(kEndOfRecord);
    const auto f = expect_error(t.bytes());
    EXPECT_EQ(f.code(), ErrorCode::UnwrittenHistory);
    EXPECT_EQ(f.bit_offset(), 13u + 54 + 13 + 9);

    // Once 1024 bytes have been written every position is valid.
    Stream u;
    u.control(kReset1);
    for (int k = 0; k < 1023; ++k)
        u.literal('q');
    const Bytes before = Stream(u).copy(2, 1023, false).control(kEndOfRecord).bytes();
    EXPECT_EQ(expect_error(before).code(), ErrorCode::UnwrittenHistory);
    u.literal('r').copy(2, 1023).control(kEndOfRecord);
    expect_decodes(u);
}

TEST(SldcErrors, DecompressionBombStopsAtLimit) {
    Stream s;
    s.control(kReset1).literal(0);
    for (int k = 0; k < 20000; ++k)
        s.copy(271, 0, false);
    s.control(kEndOfRecord);
    const Bytes bomb = s.bytes(); // ~57 KB expanding to ~5.4 MB
    Bytes out;
    EXPECT_EQ(expect_error(bomb, out, 1'000'000).code(), ErrorCode::OutputLimit);
    EXPECT_LE(out.size(), 1'000'000u);
    EXPECT_GT(out.size(), 1'000'000u - 271);
    EXPECT_LE(out.capacity(), 2'000'000u);
    EXPECT_EQ(wec::sldc::decompress(bomb, 10'000'000).size(), 1 + 20000u * 271);
}

TEST(SldcErrors, ErrorCodeNames) {
    for (auto code : {ErrorCode::Truncated, ErrorCode::ReservedSymbol, ErrorCode::NoScheme,
                      ErrorCode::UnwrittenHistory, ErrorCode::OutputLimit}) {
        const std::string name = wec::sldc::to_string(code);
        EXPECT_FALSE(name.empty());
        const wec::sldc::SldcError e(code, 77);
        EXPECT_EQ(std::string(e.what()), "SLDC: " + name + " at bit 77");
        EXPECT_EQ(e.code(), code);
        EXPECT_EQ(e.bit_offset(), 77u);
        const wec::Error& base = e; // catchable as the library-wide error
        EXPECT_STREQ(base.what(), e.what());
    }
}

// ---- Long random streams (the decoder's unchecked fast loop) --------------------------------

// A random valid scheme-1 stream long enough for the decoder's fast loop, with every kind of copy
// pointer and, unless `plain`, interleaved control symbols and scheme-2 stretches. Records where
// each symbol starts and ends and how much output precedes it, to predict errors.
struct RandomStream {
    struct Symbol {
        std::size_t start, end, out_before;
    };
    Stream s;
    std::vector<Symbol> symbols;
    std::size_t since_reset = 0;

    template <class F>
    void add(F&& f) {
        const std::size_t start = s.bit_count(), before = s.expected().size();
        f(s);
        since_reset += s.expected().size() - before;
        symbols.push_back({start, s.bit_count(), before});
    }

    void random_symbols(std::mt19937& rng, int count, bool plain) {
        for (int k = 0; k < count; ++k) {
            const unsigned pick = rng() % 100;
            if (pick < 40 || since_reset == 0) {
                const auto b =
                    static_cast<std::uint8_t>(rng() % 4 ? "<a b=\"0\">"[rng() % 9] : rng());
                add([&](Stream& t) { t.literal(b); });
            } else if (pick < 94 || plain) {
                static const unsigned lens[] = {2,  3,  4,  5,  7,  8,  9,   15,  16,
                                                17, 31, 32, 33, 64, 99, 200, 270, 271};
                const unsigned len = rng() % 3 ? 2 + rng() % 14 : lens[rng() % 18];
                // Mostly recent bytes (short and overlapping distances), sometimes anywhere.
                const std::size_t avail = std::min<std::size_t>(since_reset, 1024);
                const std::size_t back =
                    rng() % 2 ? 1 + rng() % std::min<std::size_t>(avail, 20) : 1 + rng() % avail;
                const auto disp = static_cast<unsigned>((since_reset - back) % 1024);
                add([&](Stream& t) { t.copy(len, disp); });
            } else {
                switch (rng() % 5) {
                case 0:
                    add([](Stream& t) { t.control(kFileMark); });
                    break;
                case 1:
                    add([](Stream& t) { t.control(kEndMarker); });
                    break;
                case 2:
                    add([](Stream& t) { t.control(kFlush); });
                    break;
                case 3:
                    add([](Stream& t) { t.control(kScheme2); });
                    for (int n = static_cast<int>(rng() % 20); n-- > 0;) {
                        const auto b = static_cast<std::uint8_t>(rng() % 3 ? rng() : 0xFF);
                        add([&](Stream& t) { t.raw(b); });
                    }
                    add([](Stream& t) { t.control(kScheme1); });
                    break;
                default:
                    add([](Stream& t) { t.control(kReset1); });
                    since_reset = 0;
                    break;
                }
            }
        }
    }
};

RandomStream random_stream(std::mt19937& rng, int count, bool plain) {
    RandomStream r;
    r.add([](Stream& t) { t.control(kReset1); });
    r.random_symbols(rng, count, plain);
    return r;
}

// End of Record, then Windows' padding and uncompressed length (or a wrong length: only a hint).
Bytes finish(RandomStream& r, std::uint32_t trailer) {
    r.add([](Stream& t) { t.control(kEndOfRecord); });
    Bytes in = r.s.bytes();
    if (in.size() % 2) in.push_back(0);
    for (int k = 0; k < 4; ++k)
        in.push_back(static_cast<std::uint8_t>(trailer >> (8 * k)));
    return in;
}

TEST(SldcLongStreams, DecodeLikeTheModel) {
    std::mt19937 rng(321);
    for (int iter = 0; iter < 300; ++iter) {
        SCOPED_TRACE(iter);
        RandomStream r = random_stream(rng, 1 + static_cast<int>(rng() % 3000), false);
        const auto size = static_cast<std::uint32_t>(r.s.expected().size());
        const std::uint32_t trailers[] = {size,     0,          size / 2,
                                          size + 1, 0xFFFFFFFF, static_cast<std::uint32_t>(rng())};
        const Bytes in = finish(r, trailers[iter % 6]);
        EXPECT_EQ(wec::sldc::decompress(in, kLimit), r.s.expected());
        EXPECT_EQ(wec::sldc::decompress(in, size), r.s.expected());
        Bytes out = bytes_of("x");
        wec::sldc::decompress(in, out, size);
        ASSERT_EQ(out.size(), size + 1u);
        EXPECT_TRUE(std::equal(out.begin() + 1, out.end(), r.s.expected().begin()));
    }
}

TEST(SldcLongStreams, FaultsAnywhereAreFoundAtTheirSymbol) {
    std::mt19937 rng(654);
    for (int iter = 0; iter < 600; ++iter) {
        SCOPED_TRACE(iter);
        RandomStream r = random_stream(rng, static_cast<int>(rng() % 2000), false);
        const std::size_t at = r.s.bit_count();
        const Bytes good = r.s.expected();
        ErrorCode want;
        if (iter % 2) {
            r.add([&](Stream& t) { t.bits(0x1FF, 9).bits(0x7 + rng() % 8, 4); });
            want = ErrorCode::ReservedSymbol;
        } else {
            r.add([](Stream& t) { t.control(kReset1).literal('r').copy(2, 1, false); });
            want = ErrorCode::UnwrittenHistory;
        }
        r.random_symbols(rng, static_cast<int>(rng() % 50), true);
        const Bytes in = finish(r, 0);
        Bytes out;
        {
            const auto e = expect_error(in, out);
            EXPECT_EQ(e.code(), want);
            if (want == ErrorCode::ReservedSymbol) {
                EXPECT_EQ(e.bit_offset(), at);
                EXPECT_EQ(out, good);
            } else {
                EXPECT_EQ(e.bit_offset(), at + 13 + 9);
                ASSERT_EQ(out.size(), good.size() + 1);
                EXPECT_TRUE(std::equal(good.begin(), good.end(), out.begin()));
            }
        }
    }
}

TEST(SldcLongStreams, OutputLimitAndTruncationStopAtTheRightSymbol) {
    std::mt19937 rng(987);
    for (int iter = 0; iter < 300; ++iter) {
        SCOPED_TRACE(iter);
        RandomStream r = random_stream(rng, 1 + static_cast<int>(rng() % 2000), true);
        const Bytes& expected = r.s.expected();
        const Bytes in = finish(r, static_cast<std::uint32_t>(expected.size()));

        // The first symbol whose output would pass the limit fails; out holds all before it.
        const std::size_t limit = rng() % expected.size();
        const auto over = std::find_if(r.symbols.begin(), r.symbols.end(), [&](const auto& sym) {
            return sym.out_before <= limit && sym.out_before < expected.size() &&
                   (&sym == &r.symbols.back() ? expected.size() : (&sym + 1)->out_before) > limit;
        });
        ASSERT_NE(over, r.symbols.end());
        Bytes out;
        {
            const auto e = expect_error(in, out, limit);
            EXPECT_EQ(e.code(), ErrorCode::OutputLimit);
            EXPECT_EQ(e.bit_offset(), over->start);
            EXPECT_TRUE(out == Bytes(expected.begin(),
                                     expected.begin() + static_cast<long>(over->out_before)));
        }

        // Cut at any byte: the first symbol that does not fit is Truncated, at its start.
        const std::size_t cut = rng() % (r.symbols.back().end / 8);
        const auto cut_sym = std::find_if(r.symbols.begin(), r.symbols.end(),
                                          [&](const auto& sym) { return sym.end > cut * 8; });
        ASSERT_NE(cut_sym, r.symbols.end());
        out.clear();
        {
            const auto e = expect_error(std::span(in).first(cut), out);
            EXPECT_EQ(e.code(), ErrorCode::Truncated);
            EXPECT_EQ(e.bit_offset(), cut_sym->start);
            EXPECT_TRUE(out == Bytes(expected.begin(),
                                     expected.begin() + static_cast<long>(cut_sym->out_before)));
        }
    }
}

// ---- Round trips and robustness ---------------------------------------------------------------

TEST(SldcRoundTrip, RandomData) {
    std::mt19937 rng(12345);
    const std::size_t sizes[] = {0, 1, 2, 3, 4, 31, 32, 271, 272, 1023, 1024, 1025, 2049, 100000};
    for (std::size_t n : sizes) {
        SCOPED_TRACE(n);
        Bytes random(n), low(n), binary(n), runs(n), text(n);
        for (auto& b : random)
            b = static_cast<std::uint8_t>(rng());
        for (auto& b : low)
            b = "acgt"[rng() % 4];
        for (auto& b : binary)
            b = static_cast<std::uint8_t>(rng() % 2 ? 0xFF : 0x00);
        for (std::size_t i = 0; i < n;) {
            const std::size_t run = 1 + rng() % 600;
            const auto b = static_cast<std::uint8_t>(rng() % 3 == 0 ? 0xFF : rng());
            for (std::size_t k = 0; k < run && i < n; ++k)
                runs[i++] = b;
        }
        // UTF-16-like text from a small vocabulary, with repetition far beyond the window.
        static const char* words[] = {"<Event ",
                                      "xmlns=",
                                      "\"http://schemas",
                                      ".microsoft.com/",
                                      "win/2004/08/events/event\"",
                                      "><System>",
                                      "</System>",
                                      "EventID",
                                      "Level",
                                      "4624",
                                      " ",
                                      "\n"};
        for (std::size_t i = 0; i < n;) {
            for (const char* w = words[rng() % 12]; *w && i < n; ++w) {
                text[i++] = static_cast<std::uint8_t>(*w);
                if (i < n) text[i++] = 0;
            }
        }
        expect_round_trip(random);
        expect_round_trip(low);
        expect_round_trip(binary);
        expect_round_trip(runs);
        expect_round_trip(text);
        expect_round_trip(Bytes(n, 0));
    }
}

TEST(SldcRoundTrip, EveryShortLength) {
    // Matches that reach the end of the input (found by the fuzzer: a read one past the end).
    std::mt19937 rng(5);
    for (std::size_t n = 0; n <= 300; ++n) {
        SCOPED_TRACE(n);
        Bytes in(n);
        for (auto& b : in)
            b = static_cast<std::uint8_t>("ab"[rng() % 2]);
        expect_round_trip(in);
        for (std::size_t k = 0; k < n; ++k)
            in[k] = static_cast<std::uint8_t>(k % 5);
        expect_round_trip(in);
    }
    const Bytes fuzz = {0xFF, 0xB3, 0xA3, 0x2B, 0x9B, 0xA1, 0x03, 0xFF, 0xB3, 0xA3, 0x2B,
                        0x73, 0xA3, 0x2B, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    expect_round_trip(fuzz);
}

TEST(SldcRoundTrip, PeriodicDataAtWindowSizes) {
    // Periods around the window size exercise distances 1023, 1024 and beyond (not used).
    std::mt19937 rng(99);
    for (std::size_t period : {1u, 2u, 7u, 1000u, 1023u, 1024u, 1025u, 1500u}) {
        SCOPED_TRACE(period);
        Bytes unit(period);
        for (auto& b : unit)
            b = static_cast<std::uint8_t>(rng());
        Bytes in;
        while (in.size() < 10000)
            in.insert(in.end(), unit.begin(), unit.end());
        expect_round_trip(in);
        const Bytes packed = wec::sldc::compress(in);
        check_format(packed, in.size());
        // A period of 1024 would need copies from exactly 1024 bytes back, which the compressor
        // does not emit (see NoCopyReachesBack1024Bytes).
        if (period < 1024) {
            EXPECT_LT(packed.size(), period + 1000) << "period " << period;
        }
    }
}

TEST(SldcRobustness, RandomGarbageOnlyThrowsSldcErrors) {
    std::mt19937 rng(2024);
    const Bytes heartbeat = data("heartbeat.sldc");
    constexpr std::size_t limit = 4096;
    int ok = 0, errors = 0;
    for (int iter = 0; iter < 4000; ++iter) {
        Bytes in;
        switch (iter % 4) {
        case 0: // pure noise
            in.resize(rng() % 200);
            for (auto& b : in)
                b = static_cast<std::uint8_t>(rng());
            break;
        case 1: // noise after a valid Reset 1 / Reset 2
            in.resize(2 + rng() % 400);
            for (auto& b : in)
                b = static_cast<std::uint8_t>(rng());
            in[0] = 0xFF;
            in[1] = static_cast<std::uint8_t>((iter & 4 ? 0xA8 : 0xB0) | (in[1] & 7));
            break;
        case 2: // the heartbeat with a few bits flipped
            in = heartbeat;
            for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k)
                in[rng() % in.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
            break;
        default: // the heartbeat cut short
            in.assign(heartbeat.begin(), heartbeat.begin() + static_cast<long>(rng() % 1000));
            break;
        }
        Bytes out;
        try {
            wec::sldc::decompress(in, out, limit);
            ++ok;
        } catch (const wec::sldc::SldcError& e) {
            ++errors;
            EXPECT_LE(e.bit_offset(), in.size() * 8) << "iteration " << iter;
        } catch (const std::exception& e) {
            FAIL() << "iteration " << iter << ": unexpected exception " << e.what();
        }
        ASSERT_LE(out.size(), limit) << "iteration " << iter;
    }
    EXPECT_GT(errors, 1000);
    std::printf("garbage: %d decoded, %d rejected\n", ok, errors);
}

// ---- Streaming decompression, differentially against the one-shot decoder --------------------

struct Outcome {
    Bytes out;
    bool failed = false;
    ErrorCode code = ErrorCode::Truncated;
    std::size_t bit = 0;
    bool operator==(const Outcome&) const = default;
};

Outcome one_shot(std::span<const std::uint8_t> in, std::size_t limit) {
    Outcome o;
    try {
        wec::sldc::decompress(in, o.out, limit);
    } catch (const wec::sldc::SldcError& e) {
        o.failed = true;
        o.code = e.code();
        o.bit = e.bit_offset();
    }
    return o;
}

// `chunk` = 0: the input in memory; otherwise read() hands out at most `chunk` bytes a call
// (a varying amount when `chunk` is 3: 1..3 bytes, or 1..64K).
Outcome streamed(std::span<const std::uint8_t> in, std::size_t limit, std::size_t chunk,
                 std::mt19937& rng) {
    Outcome o;
    std::size_t pos = 0;
    std::size_t writes = 0;
    const wec::sldc::WriteFn write = [&](std::span<const std::uint8_t> piece) {
        EXPECT_FALSE(piece.empty());
        ++writes;
        o.out.insert(o.out.end(), piece.begin(), piece.end());
    };
    const wec::sldc::ReadFn read = [&](std::span<std::uint8_t> buffer) {
        std::size_t n = std::min(buffer.size(), in.size() - pos);
        if (chunk == 3)
            n = std::min<std::size_t>(n, 1 + rng() % (rng() % 2 ? 3 : 65536));
        else
            n = std::min(n, chunk);
        std::copy_n(in.begin() + static_cast<long>(pos), n, buffer.begin());
        pos += n;
        return n;
    };
    try {
        if (chunk == 0)
            wec::sldc::decompress(in, write, limit);
        else
            wec::sldc::decompress(read, write, limit);
    } catch (const wec::sldc::SldcError& e) {
        o.failed = true;
        o.code = e.code();
        o.bit = e.bit_offset();
    }
    return o;
}

void expect_same_streamed(std::span<const std::uint8_t> in, std::size_t limit, std::mt19937& rng) {
    const Outcome want = one_shot(in, limit);
    for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{4096},
                              std::size_t{1} << 20}) {
        const Outcome got = streamed(in, limit, chunk, rng);
        ASSERT_EQ(got.failed, want.failed) << "chunk " << chunk;
        EXPECT_EQ(got.code, want.code) << "chunk " << chunk;
        EXPECT_EQ(got.bit, want.bit) << "chunk " << chunk;
        ASSERT_EQ(got.out.size(), want.out.size()) << "chunk " << chunk;
        EXPECT_TRUE(got.out == want.out) << "chunk " << chunk;
    }
}

TEST(SldcStream, SameAsOneShotOnRealAndLongStreams) {
    std::mt19937 rng(4121);
    for (const char* name : {"heartbeat.sldc"})
        expect_same_streamed(data(name), kLimit, rng);
    for (const char* name : {"heartbeat.utf16", "enumerate.utf16", "events.utf16"})
        expect_same_streamed(wec::sldc::compress(data(name)), kLimit, rng);
    // Several MB of output and more than one input buffer (64 KB), so that the window slides
    // many times and symbols straddle input pieces.
    Bytes big;
    const Bytes events = data("events.utf16");
    while (big.size() < (3u << 20))
        big.insert(big.end(), events.begin(), events.end());
    const Bytes packed = wec::sldc::compress(big);
    ASSERT_GT(packed.size(), 3u * 65536);
    const Outcome want = one_shot(packed, kLimit);
    ASSERT_FALSE(want.failed);
    ASSERT_TRUE(want.out == big);
    for (std::size_t chunk : {std::size_t{0}, std::size_t{3}, std::size_t{65536}}) {
        const Outcome got = streamed(packed, kLimit, chunk, rng);
        EXPECT_FALSE(got.failed);
        EXPECT_TRUE(got.out == big) << chunk;
    }
    // Output limits anywhere in it, and cuts.
    for (std::size_t limit :
         {std::size_t{0}, std::size_t{1}, std::size_t{1024}, std::size_t{262143},
          std::size_t{262144}, std::size_t{262145}, big.size() - 1, big.size()})
        expect_same_streamed(packed, limit, rng);
    for (std::size_t cut : {std::size_t{65535}, std::size_t{65536}, std::size_t{65537},
                            packed.size() / 2, packed.size() - 7})
        expect_same_streamed(std::span(packed).first(cut), kLimit, rng);
}

TEST(SldcStream, SameAsOneShotOnModelStreamsWithFaults) {
    std::mt19937 rng(1964);
    for (int iter = 0; iter < 150; ++iter) {
        SCOPED_TRACE(iter);
        // Long streams with Flush symbols (their padding counts from the start of the whole
        // input, across input pieces), scheme switches, resets.
        RandomStream r = random_stream(rng, 1 + static_cast<int>(rng() % 60000), false);
        if (iter % 3 == 1) r.add([&](Stream& t) { t.bits(0x1FF, 9).bits(0x7 + rng() % 8, 4); });
        if (iter % 3 == 2)
            r.add([](Stream& t) { t.control(kReset1).literal('r').copy(2, 1, false); });
        r.random_symbols(rng, static_cast<int>(rng() % 50), false);
        const Bytes in = finish(r, static_cast<std::uint32_t>(rng()));
        const std::size_t total = r.s.expected().size();
        expect_same_streamed(in, kLimit, rng);
        expect_same_streamed(in, rng() % (total + 1), rng);
        expect_same_streamed(std::span(in).first(rng() % in.size()), kLimit, rng);
    }
}

TEST(SldcStream, SameAsOneShotOnGarbage) {
    std::mt19937 rng(2025);
    const Bytes heartbeat = data("heartbeat.sldc");
    for (int iter = 0; iter < 1000; ++iter) {
        Bytes in;
        if (iter % 2) {
            in.resize(rng() % 400);
            for (auto& b : in)
                b = static_cast<std::uint8_t>(rng());
            if (in.size() >= 2) {
                in[0] = 0xFF;
                in[1] = static_cast<std::uint8_t>(0xA8 | (in[1] & 7));
            }
        } else {
            in = heartbeat;
            for (int k = 0; k < 1 + static_cast<int>(rng() % 4); ++k)
                in[rng() % in.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
        }
        SCOPED_TRACE(iter);
        expect_same_streamed(in, 1 + rng() % 8192, rng);
    }
}

// ---- Levels (differential) ---------------------------------------------------------------------

// Event batches as the replay generator sends them: UTF-16LE SOAP envelopes of rendered events
// whose fields vary from event to event.
std::vector<Bytes> event_batches() {
    std::vector<Bytes> batches;
    std::mt19937 rng(2024);
    for (const std::size_t events : {1u, 5u, 20u, 100u}) {
        std::string xml =
            "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>";
        for (std::size_t k = 0; k < events; ++k) {
            xml += "<Event xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\"><System>"
                   "<Provider Name=\"Microsoft-Windows-Security-Auditing\"/><EventID>" +
                   std::to_string(4600 + rng() % 100) +
                   "</EventID><TimeCreated SystemTime=\"2026-" + std::to_string(rng() % 100000000) +
                   "Z\"/><EventRecordID>" + std::to_string(rng()) +
                   "</EventRecordID><Computer>host" + std::to_string(rng() % 1000) +
                   ".example.com</Computer></System><EventData><Data Name=\"TargetUserName\">user" +
                   std::to_string(rng() % 50) + "</Data></EventData></Event>";
        }
        xml += "</s:Body></s:Envelope>";
        Bytes utf16;
        for (const char c : xml) {
            utf16.push_back(static_cast<std::uint8_t>(c));
            utf16.push_back(0);
        }
        batches.push_back(std::move(utf16));
    }
    return batches;
}

// Every uncompressed SLDC vector and generated event batches, compressed at each level: valid
// records that both decode (one-shot and streamed) to the input. Fast output may be larger (by
// ~15% on real Windows messages, ~45% on the very repetitive generated batches), not more.
TEST(SldcLevels, BothLevelsRoundTripVectorsAndEventBatches) {
    std::vector<std::pair<std::string, Bytes>> inputs;
    for (const char* name :
         {"heartbeat.utf16", "enumerate.utf16", "events.utf16", "test-string.out"})
        inputs.emplace_back(name, data(name));
    inputs.emplace_back("heartbeat.sldc decoded",
                        wec::sldc::decompress(data("heartbeat.sldc"), kLimit));
    int k = 0;
    for (auto& batch : event_batches())
        inputs.emplace_back("batch " + std::to_string(k++), std::move(batch));
    wec::sldc::Compressor fast(wec::sldc::Level::Fast); // reused, as the generator does
    for (const auto& [name, in] : inputs) {
        SCOPED_TRACE(name);
        const Bytes best = wec::sldc::compress(in, wec::sldc::Level::Best);
        const Bytes quick = fast.compress(in);
        check_format(best, in.size());
        check_format(quick, in.size());
        EXPECT_EQ(wec::sldc::decompress(best, in.size()), in);
        EXPECT_EQ(wec::sldc::decompress(quick, in.size()), in);
        Bytes streamed;
        wec::sldc::decompress(
            quick,
            [&](std::span<const std::uint8_t> piece) {
                streamed.insert(streamed.end(), piece.begin(), piece.end());
            },
            in.size());
        EXPECT_EQ(streamed, in);
        EXPECT_LE(best.size(), quick.size());
        if (in.size() >= 1000) {
            EXPECT_LT(quick.size(), in.size() / 2);
            EXPECT_LT(quick.size(), best.size() * 3 / 2) << "fast level lost too much ratio";
        }
        std::printf("%s: %zu bytes -> best %zu, fast %zu\n", name.c_str(), in.size(), best.size(),
                    quick.size());
    }
}

// The names the command lines and reports use, both ways; nothing else is a level.
TEST(SldcLevels, NamesMapToLevelsAndBack) {
    EXPECT_EQ(wec::sldc::level_names(), (std::vector<std::string>{"fast", "best"}));
    for (const auto& name : wec::sldc::level_names())
        EXPECT_EQ(wec::sldc::level_name(*wec::sldc::level_named(name)), name);
    EXPECT_EQ(wec::sldc::level_named("fast"), wec::sldc::Level::Fast);
    EXPECT_EQ(wec::sldc::level_named("best"), wec::sldc::Level::Best);
    EXPECT_EQ(wec::sldc::level_named("Best"), std::nullopt);
    EXPECT_EQ(wec::sldc::level_named(""), std::nullopt);
}

// Into a reused sldc::Buffer (as the generator compresses, growing back without zero-fill): the
// same records as into a vector, at both levels, whatever was compressed into it before.
TEST(SldcLevels, IntoBufferSameAsIntoVector) {
    for (const auto level : {wec::sldc::Level::Fast, wec::sldc::Level::Best}) {
        wec::sldc::Compressor into_vector(level), into_buffer(level);
        wec::sldc::Buffer out;
        for (const char* name :
             {"events.utf16", "heartbeat.utf16", "test-string.out", "events.utf16"}) {
            SCOPED_TRACE(name);
            const Bytes in = data(name);
            into_buffer.compress(in, out);
            const Bytes expected = into_vector.compress(in);
            EXPECT_EQ(Bytes(out.begin(), out.end()), expected);
            EXPECT_EQ(wec::sldc::decompress(Bytes(out.begin(), out.end()), in.size()), in);
        }
    }
}

TEST(SldcLevels, FastCompressorKeepsItsLevelAndGivesSameOutputWhenReused) {
    const Bytes in = data("events.utf16");
    wec::sldc::Compressor fast(wec::sldc::Level::Fast);
    EXPECT_EQ(fast.level(), wec::sldc::Level::Fast);
    EXPECT_EQ(wec::sldc::Compressor().level(), wec::sldc::Level::Best);
    const Bytes first = fast.compress(in);
    fast.compress(data("heartbeat.utf16"));
    EXPECT_EQ(fast.compress(in), first);
    EXPECT_EQ(wec::sldc::compress(in, wec::sldc::Level::Fast), first);
    wec::sldc::Compressor moved(std::move(fast));
    EXPECT_EQ(moved.compress(in), first);
}

TEST(SldcLevels, FastNeverCopiesFrom1024BytesBack) {
    // Periods around the window size, where the most recent occurrence is out of reach.
    for (const std::size_t period : {1022u, 1023u, 1024u, 1025u, 2048u}) {
        SCOPED_TRACE(period);
        std::mt19937 rng(static_cast<unsigned>(period));
        Bytes unit(period);
        for (auto& b : unit)
            b = static_cast<std::uint8_t>(rng());
        Bytes in;
        for (int k = 0; k < 4; ++k)
            in.insert(in.end(), unit.begin(), unit.end());
        const Bytes packed = wec::sldc::compress(in, wec::sldc::Level::Fast);
        check_format(packed, in.size());
        EXPECT_EQ(wec::sldc::decompress(packed, in.size()), in);
    }
}

} // namespace

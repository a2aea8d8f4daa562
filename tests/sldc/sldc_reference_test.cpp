// Differential tests of the fast SLDC decoder (every entry point: into a vector, into a Buffer,
// streamed from memory, streamed in pieces) against the plain reference decoder of
// reference_decoder.hpp: the same output, error code and bit offset on the Windows vectors, on
// records compressed at both levels, on every truncation of them, on random symbol streams (valid
// and damaged) and on random bytes, with output limits around the output size.
#include "common/files.hpp"
#include "reference_decoder.hpp"
#include "sldc/sldc.hpp"

#include <algorithm>
#include <cstdint>
#include <gtest/gtest.h>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace {

using wec::sldc::ErrorCode;
using wec::sldc::reference::Result;
using Bytes = std::vector<std::uint8_t>;

Bytes data(const std::string& name) {
    return wec::read_file(std::string(WEC_TEST_DATA) + "/sldc/" + name);
}

template <class F>
Result run(F&& f) {
    Result r;
    try {
        f(r.out);
    } catch (const wec::sldc::SldcError& e) {
        r.error = e.code();
        r.bit = e.bit_offset();
    }
    return r;
}

// Every entry point of the library against the reference; returns the reference's result.
Result expect_same(std::span<const std::uint8_t> in, std::size_t limit) {
    const Result want = wec::sldc::reference::decode(in, limit);
    const Result vec = run([&](Bytes& out) { wec::sldc::decompress(in, out, limit); });
    EXPECT_EQ(vec, want) << "vector, limit " << limit << ", " << in.size() << " bytes";
    const Result buf = run([&](Bytes& out) {
        wec::sldc::Buffer b;
        try {
            wec::sldc::decompress(in, b, limit);
        } catch (...) {
            out.assign(b.begin(), b.end());
            throw;
        }
        out.assign(b.begin(), b.end());
    });
    EXPECT_EQ(buf, want) << "Buffer, limit " << limit;
    const auto append = [](Bytes& out) {
        return [&out](std::span<const std::uint8_t> piece) {
            out.insert(out.end(), piece.begin(), piece.end());
        };
    };
    const Result streamed = run([&](Bytes& out) { wec::sldc::decompress(in, append(out), limit); });
    EXPECT_EQ(streamed, want) << "streamed, limit " << limit;
    std::size_t pos = 0;
    const Result pieces = run([&](Bytes& out) {
        wec::sldc::decompress(
            [&](std::span<std::uint8_t> buffer) {
                const std::size_t n = std::min({buffer.size(), in.size() - pos, std::size_t{7}});
                std::copy_n(in.begin() + static_cast<std::ptrdiff_t>(pos), n, buffer.begin());
                pos += n;
                return n;
            },
            append(out), limit);
    });
    EXPECT_EQ(pieces, want) << "read in pieces, limit " << limit;
    return want;
}

// An SLDC bitstream written symbol by symbol (no model of the output: the reference is the model).
class Bits {
public:
    Bits& put(std::uint32_t v, unsigned n) {
        for (unsigned k = n; k-- > 0;)
            bits_.push_back((v >> k) & 1);
        return *this;
    }
    Bits& control(unsigned code) {
        put(0x1FF, 9).put(code, 4);
        if (code == 0x0) put(0, static_cast<unsigned>((32 - bits_.size() % 32) % 32)); // Flush
        return *this;
    }
    Bits& copy(unsigned len, unsigned disp) {
        put(1, 1);
        if (len <= 3)
            put(0, 1).put(len - 2, 1);
        else if (len <= 7)
            put(0b10, 2).put(len - 4, 2);
        else if (len <= 15)
            put(0b110, 3).put(len - 8, 3);
        else if (len <= 31)
            put(0b1110, 4).put(len - 16, 4);
        else
            put(0b1111, 4).put(len - 32, 8);
        return put(disp, 10);
    }
    Bytes bytes() const {
        Bytes out((bits_.size() + 7) / 8, 0);
        for (std::size_t i = 0; i < bits_.size(); ++i)
            if (bits_[i]) out[i / 8] |= static_cast<std::uint8_t>(0x80 >> (i % 8));
        return out;
    }

private:
    std::vector<bool> bits_;
};

// Random symbols after a Reset 1: mostly literals and copy pointers of every length and distance
// (short and overlapping ones often, displacements into unwritten history sometimes when `faults`),
// some control symbols, scheme-2 stretches, then End of Record and a length trailer.
Bytes random_record(std::mt19937& rng, int symbols, bool faults) {
    Bits b;
    b.control(0x5);
    std::size_t written = 0; // since the last Reset (an estimate once a copy may have failed)
    bool scheme2 = false;
    for (int k = 0; k < symbols; ++k) {
        const unsigned pick = rng() % 100;
        if (scheme2) {
            if (pick < 10) {
                b.control(0x1);
                scheme2 = false;
            } else {
                const auto byte = static_cast<std::uint8_t>(rng() % 4 ? rng() : 0xFF);
                b.put(byte, 8);
                if (byte == 0xFF) b.put(0, 1);
                ++written;
            }
        } else if (pick < 40 || written == 0) {
            b.put(0, 1).put(rng() % 4 ? "<a b=\"0\">\0"[rng() % 10] : rng() & 0xFF, 8);
            ++written;
        } else if (pick < 95) {
            static const unsigned kLens[] = {2,  3,  4,  7,  8,  15, 16,  17,  31,
                                             32, 33, 47, 48, 64, 99, 200, 270, 271};
            const unsigned len = rng() % 3 ? 2 + rng() % 15 : kLens[rng() % 18];
            const std::size_t avail = std::min<std::size_t>(written, 1024);
            const unsigned r = rng() % 8;
            const std::size_t back = r < 3   ? 1 + rng() % std::min<std::size_t>(avail, 16)
                                     : r < 5 ? 1 + rng() % std::min<std::size_t>(avail, 64)
                                             : 1 + rng() % avail;
            auto disp = static_cast<unsigned>((written - back) % 1024);
            if (faults && rng() % 200 == 0) disp = static_cast<unsigned>(rng() % 1024);
            b.copy(len, disp);
            written += len;
        } else {
            const unsigned codes[] = {0x0, 0x2, 0x3, 0xF, 0x5, 0x6};
            unsigned code = codes[rng() % 6];
            if (faults && rng() % 10 == 0) code = 0x7 + rng() % 8; // reserved
            b.control(code);
            if (code == 0x2 || code == 0x6) scheme2 = true;
            if (code == 0x5 || code == 0x6) written = 0;
        }
    }
    b.control(0x4);
    Bytes in = b.bytes();
    for (int k = 0; k < 6; ++k)
        in.push_back(static_cast<std::uint8_t>(rng()));
    return in;
}

TEST(SldcReference, ReferenceDecodesTheWindowsVectors) {
    const Result s = wec::sldc::reference::decode(data("test-string.sldc"), 1u << 20);
    EXPECT_FALSE(s.error);
    EXPECT_EQ(s.out, data("test-string.out"));
    const Result h = wec::sldc::reference::decode(data("heartbeat.sldc"), 1u << 20);
    EXPECT_FALSE(h.error);
    EXPECT_EQ(h.out, data("heartbeat.utf16"));
}

TEST(SldcReference, SameOnVectorsCompressedSamplesAndEveryTruncation) {
    std::vector<std::pair<std::string, Bytes>> records = {
        {"test-string.sldc", data("test-string.sldc")}, {"heartbeat.sldc", data("heartbeat.sldc")}};
    for (const char* name : {"heartbeat.utf16", "enumerate.utf16", "events.utf16"}) {
        records.emplace_back(std::string(name) + " best", wec::sldc::compress(data(name)));
        records.emplace_back(std::string(name) + " fast",
                             wec::sldc::compress(data(name), wec::sldc::Level::Fast));
    }
    for (const auto& [name, in] : records) {
        SCOPED_TRACE(name);
        const Result whole = expect_same(in, 1u << 20);
        ASSERT_FALSE(whole.error);
        const std::size_t n = whole.out.size();
        for (const std::size_t limit : {n, n + 1, n - 1, n / 2, std::size_t{17}, std::size_t{0}})
            expect_same(in, limit);
        // Every truncation (each prefix, plus every 97th for the long ones), with the trailer
        // gone, so that the decoder's checked path meets the end everywhere.
        const std::size_t step = in.size() > 4000 ? 97 : 1;
        for (std::size_t cut = 0; cut < in.size(); cut += step) {
            const Result r = expect_same(std::span(in).first(cut), 1u << 20);
            if (cut + 5 < in.size()) {
                ASSERT_TRUE(r.error) << cut;
                EXPECT_EQ(*r.error, ErrorCode::Truncated) << cut;
            }
        }
    }
}

TEST(SldcReference, SameOnRandomSymbolStreams) {
    std::mt19937 rng(1515);
    int faults_seen = 0;
    for (int iter = 0; iter < 400; ++iter) {
        SCOPED_TRACE(iter);
        const bool faults = iter % 2 == 1;
        const Bytes in = random_record(rng, 1 + static_cast<int>(rng() % 4000), faults);
        const Result r = expect_same(in, 1u << 22);
        if (!faults) {
            EXPECT_FALSE(r.error); // valid streams decode to the end
        } else if (r.error) {
            ++faults_seen;
        }
        if (!r.out.empty()) {
            expect_same(in, r.out.size() - 1);
            expect_same(in, rng() % r.out.size());
        }
    }
    EXPECT_GT(faults_seen, 50); // damaged streams did reach their faults
}

TEST(SldcReference, SameOnRandomBytesAfterAReset) {
    std::mt19937 rng(15);
    std::set<ErrorCode> codes;
    std::size_t decoded = 0;
    for (int iter = 0; iter < 3000; ++iter) {
        Bytes in(1 + rng() % 600);
        for (auto& b : in)
            b = static_cast<std::uint8_t>(rng());
        // Mostly after a Reset 1 (1111 1111 1010 1...), so that the garbage is decoded as symbols.
        if (iter % 4 != 0 && in.size() > 2) {
            in[0] = 0xFF;
            in[1] = static_cast<std::uint8_t>(0xA8 | (in[1] & 0x07));
        }
        const Result r = expect_same(in, iter % 3 == 0 ? 1u << 20 : rng() % 2000);
        if (r.error) codes.insert(*r.error);
        decoded += r.out.size();
    }
    // The garbage reached every kind of fault, and symbols were decoded before them.
    EXPECT_EQ(codes.size(), 5u);
    EXPECT_GT(decoded, 1000u);
}

// Streams shaped like what the fast loop meets (issue 15): after a Reset 1, (0) literal runs,
// (1) short copy pointers (2-7 bytes, a third of them less than 16 back), (2) long ones (16-271
// bytes), (3) a mix of all three with control symbols (Flush, Reset, File Mark) in the middle, so
// that the fast loop finds them among copy pointers. A Reset followed by a copy pointer into the
// history it emptied (unwritten history) in the middle of a long stream when `fault`.
Bytes shaped_record(std::mt19937& rng, int shape, int symbols, bool fault) {
    Bits b;
    b.control(0x5);
    std::size_t written = 0;
    const int fault_at = fault ? symbols / 2 + static_cast<int>(rng() % 8) : -1;
    for (int k = 0; k < symbols; ++k) {
        if (k == fault_at) {
            b.control(0x5);
            written = 0;
            if (rng() % 2 != 0) {
                b.put(0, 1).put(rng() & 0xFF, 8);
                ++written;
            }
            b.copy(2 + rng() % 6, static_cast<unsigned>(written + rng() % 300));
            continue;
        }
        const unsigned pick = rng() % 100;
        const int kind = shape < 3 ? shape : pick < 30 ? 0 : pick < 70 ? 1 : pick < 95 ? 2 : 3;
        if (kind == 0 || written < 2) {
            const int run = shape == 0 ? 1 + static_cast<int>(rng() % 12) : 1;
            for (int r = 0; r < run; ++r)
                b.put(0, 1).put(static_cast<std::uint8_t>(rng()), 8);
            written += static_cast<std::size_t>(run);
        } else if (kind == 3) {
            const unsigned codes[] = {0x0, 0x3, 0x5, 0xF};
            const unsigned code = codes[rng() % 4];
            b.control(code);
            if (code == 0x5) written = 0;
        } else {
            const unsigned len = kind == 1 ? 2 + rng() % 6 : 16 + rng() % 256;
            const std::size_t avail = std::min<std::size_t>(written, 1024);
            const std::size_t back =
                rng() % 3 == 0 ? 1 + rng() % std::min<std::size_t>(avail, 15) : 1 + rng() % avail;
            b.copy(len, static_cast<unsigned>((written - back) % 1024));
            written += len;
        }
    }
    b.control(0x4);
    return b.bytes();
}

TEST(SldcReference, SameOnShapedStreamsAtEveryLimitNearTheEndAndEveryCut) {
    std::mt19937 rng(2026);
    int faults_seen = 0;
    for (int iter = 0; iter < 24; ++iter) {
        const int shape = iter % 4;
        const bool fault = iter % 8 >= 4;
        SCOPED_TRACE(testing::Message() << "iter " << iter << " shape " << shape);
        const Bytes in = shaped_record(rng, shape, 200 + static_cast<int>(rng() % 400), fault);
        const Result whole = expect_same(in, 1u << 22);
        if (!fault) {
            ASSERT_FALSE(whole.error);
        } else if (whole.error) {
            EXPECT_EQ(*whole.error, ErrorCode::UnwrittenHistory);
            ++faults_seen;
        }
        // Every limit within two longest copies of the output's end (the fast loop hands the
        // symbols that could pass the limit to the checked path), every cut of the input.
        const std::size_t n = whole.out.size();
        for (std::size_t limit = n > 600 ? n - 600 : 0; limit <= n + 1; ++limit)
            expect_same(in, limit);
        for (std::size_t cut = 0; cut < in.size(); ++cut)
            expect_same(std::span(in).first(cut), 1u << 22);
    }
    EXPECT_GT(faults_seen, 5);
}

TEST(SldcReference, SameOnRoundTripsOfRandomAndRepetitiveData) {
    std::mt19937 rng(99);
    for (int iter = 0; iter < 200; ++iter) {
        Bytes plain(rng() % 5000);
        const unsigned period = 1 + rng() % 40;
        for (std::size_t k = 0; k < plain.size(); ++k)
            plain[k] = static_cast<std::uint8_t>(iter % 3 == 0   ? rng()
                                                 : iter % 3 == 1 ? k % period
                                                                 : "<Event>\0a\0"[rng() % 10]);
        for (const auto level : {wec::sldc::Level::Best, wec::sldc::Level::Fast}) {
            const Result r = expect_same(wec::sldc::compress(plain, level), plain.size());
            EXPECT_FALSE(r.error);
            EXPECT_EQ(r.out, plain);
        }
    }
}

} // namespace

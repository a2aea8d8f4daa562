// Symbol statistics of SLDC records (issue 15): what the decoder's fast loop sees on the load
// generator's batches (100 generated events, SLDC Level::Fast) and the same batch compressed with
// Level::Best, and on the files named as arguments (raw records, e.g. Windows' heartbeat.sldc).
// Walks the bit stream itself: literals, literal-run lengths, copy lengths and distances.
#include "client/client.hpp"
#include "common/files.hpp"
#include "sldc/sldc.hpp"
#include "text/text.hpp"
#include "wsman/body.hpp"
#include "wsman/wsman.hpp"

#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Stats {
    std::uint64_t literals = 0, copies = 0, controls = 0, out = 0;
    std::uint64_t copy_bytes = 0, literal_bits = 0, copy_bits = 0;
    std::map<std::uint64_t, std::uint64_t> runs; // literal-run length -> count
    std::array<std::uint64_t, 5> len_class{};    // 2-3, 4-7, 8-15, 16-31, 32+
    std::array<std::uint64_t, 3> dist_class{};   // <8, <16, >=16
    std::uint64_t len_le16_far = 0;              // len <= 16 and distance >= 16
    std::uint64_t pairs_ll = 0, pairs_lc = 0, pairs_cl = 0, pairs_cc = 0;
};

Stats walk(const std::vector<std::uint8_t>& in) {
    Stats s;
    std::uint64_t pos = 0;
    const std::uint64_t total = in.size() * 8ull;
    const auto bits = [&](unsigned n) {
        std::uint32_t v = 0;
        for (unsigned i = 0; i < n; ++i, ++pos) {
            const unsigned b = pos < total ? (in[pos / 8] >> (7 - pos % 8)) & 1 : 0;
            v = v << 1 | b;
        }
        return v;
    };
    const auto peek = [&](unsigned n) {
        const std::uint64_t save = pos;
        const auto v = bits(n);
        pos = save;
        return v;
    };
    std::uint64_t run = 0, written = 0;
    int prev = -1; // 0 literal, 1 copy
    const auto kind = [&](int k) {
        if (prev == 0 && k == 0) ++s.pairs_ll;
        if (prev == 0 && k == 1) ++s.pairs_lc;
        if (prev == 1 && k == 0) ++s.pairs_cl;
        if (prev == 1 && k == 1) ++s.pairs_cc;
        prev = k;
    };
    while (pos + 9 <= total) {
        if (peek(9) == 0x1FF) {
            bits(9);
            const auto code = bits(4);
            ++s.controls;
            if (run != 0) ++s.runs[run];
            run = 0;
            prev = -1;
            if (code == 4) break; // End of Record
            if (code == 0) pos = (pos + 31) / 32 * 32;
            if (code == 5 || code == 6) written = 0;
            continue;
        }
        if (bits(1) == 0) {
            bits(8);
            ++s.literals;
            ++s.out;
            ++written;
            ++run;
            s.literal_bits += 9;
            kind(0);
            continue;
        }
        if (run != 0) ++s.runs[run];
        run = 0;
        kind(1);
        const std::uint64_t start = pos - 1;
        unsigned ones = 0;
        while (ones < 4 && bits(1) == 1)
            ++ones;
        static constexpr unsigned kExtra[5] = {1, 2, 3, 4, 8};
        static constexpr unsigned kBase[5] = {2, 4, 8, 16, 32};
        const unsigned len = kBase[ones] + bits(kExtra[ones]);
        const unsigned disp = bits(10);
        const std::uint64_t w = written % 1024;
        std::uint64_t dist = (w + 1024 - disp) % 1024;
        if (dist == 0) dist = 1024;
        ++s.copies;
        s.copy_bytes += len;
        s.out += len;
        written += len;
        s.copy_bits += pos - start;
        ++s.len_class[ones];
        ++s.dist_class[dist < 8 ? 0 : dist < 16 ? 1 : 2];
        if (len <= 16 && dist >= 16) ++s.len_le16_far;
    }
    if (run != 0) ++s.runs[run];
    return s;
}

void print(const char* name, const std::vector<std::uint8_t>& plain,
           const std::vector<std::uint8_t>& packed) {
    const Stats s = walk(packed);
    const double sym = static_cast<double>(s.literals + s.copies);
    const auto pct = [&](std::uint64_t n, double of) {
        return 100.0 * static_cast<double>(n) / of;
    };
    std::printf("%s: %zu -> %zu bytes, %llu symbols (%.1f bytes/symbol), %llu controls\n", name,
                plain.size(), packed.size(), static_cast<unsigned long long>(s.literals + s.copies),
                static_cast<double>(s.out) / sym, static_cast<unsigned long long>(s.controls));
    std::printf("  literals %llu (%.1f %% of symbols), copies %llu, mean copy %.2f bytes, "
                "%.1f bits/copy\n",
                static_cast<unsigned long long>(s.literals), pct(s.literals, sym),
                static_cast<unsigned long long>(s.copies),
                static_cast<double>(s.copy_bytes) / static_cast<double>(s.copies),
                static_cast<double>(s.copy_bits) / static_cast<double>(s.copies));
    std::printf("  next symbol: lit->lit %.1f %%, lit->copy %.1f %%, copy->lit %.1f %%, copy->copy "
                "%.1f %%\n",
                pct(s.pairs_ll, sym), pct(s.pairs_lc, sym), pct(s.pairs_cl, sym),
                pct(s.pairs_cc, sym));
    std::uint64_t nruns = 0;
    std::array<std::uint64_t, 5> rc{}; // runs of 1, 2, 3-5, 6-10, 11+; literals in runs >= 2
    std::uint64_t lit_in_long = 0;
    for (const auto& [len, n] : s.runs) {
        nruns += n;
        rc[len == 1 ? 0 : len == 2 ? 1 : len <= 5 ? 2 : len <= 10 ? 3 : 4] += n;
        if (len >= 2) lit_in_long += len * n;
    }
    const auto runs = static_cast<double>(nruns);
    std::printf("  literal runs %llu: 1: %.1f %%, 2: %.1f %%, 3-5: %.1f %%, 6-10: %.1f %%, 11+: "
                "%.1f %%; literals in runs >= 2: %.1f %%\n",
                static_cast<unsigned long long>(nruns), pct(rc[0], runs), pct(rc[1], runs),
                pct(rc[2], runs), pct(rc[3], runs), pct(rc[4], runs),
                pct(lit_in_long, static_cast<double>(s.literals)));
    const auto c = static_cast<double>(s.copies);
    std::printf("  copy lengths 2-3: %.1f %%, 4-7: %.1f %%, 8-15: %.1f %%, 16-31: %.1f %%, 32+: "
                "%.1f %%\n",
                pct(s.len_class[0], c), pct(s.len_class[1], c), pct(s.len_class[2], c),
                pct(s.len_class[3], c), pct(s.len_class[4], c));
    std::printf("  copy distances <8: %.1f %%, 8-15: %.1f %%, >=16: %.1f %%; length <= 16 and "
                "distance >= 16 (one 16-byte move): %.1f %%\n",
                pct(s.dist_class[0], c), pct(s.dist_class[1], c), pct(s.dist_class[2], c),
                pct(s.len_le16_far, c));
}

int run(int argc, char** argv) {
    if (argc > 1 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
        std::printf("usage: sldc_stats [--write DIR] [FILE.sldc ...]\n"
                    "Symbol statistics of the load generator's batch (Fast and Best) and of the\n"
                    "raw SLDC records named; --write DIR saves the batch and its two records.\n");
        return 0;
    }
    wec::client::EventGenerator gen("host-1.windomain.local", 7);
    std::vector<std::string> texts;
    for (int i = 0; i < 100; ++i)
        texts.push_back(gen.next());
    std::vector<std::string_view> views(texts.begin(), texts.end());
    wec::wsman::SourceHeaders headers;
    headers.to = "http://collector:5985/wsman/SubscriptionManager/WEC";
    headers.machine_id = "host-1.windomain.local";
    const auto utf16 =
        wec::text::utf8_to_utf16le(wec::wsman::build_events(headers, views, gen.bookmark()), true);
    const auto fast = wec::sldc::Compressor(wec::sldc::Level::Fast).compress(utf16);
    const auto best = wec::sldc::Compressor(wec::sldc::Level::Best).compress(utf16);
    print("batch of 100 generated events, Fast", utf16, fast);
    print("batch of 100 generated events, Best", utf16, best);
    int first = 1;
    if (argc > 2 && std::string_view(argv[1]) == "--write") {
        const std::string dir = argv[2];
        wec::write_file(dir + "/batch.utf16", utf16);
        wec::write_file(dir + "/batch-fast.sldc", fast);
        wec::write_file(dir + "/batch-best.sldc", best);
        first = 3;
    }
    for (int i = first; i < argc; ++i) {
        const auto packed = wec::read_file(argv[i]);
        print(argv[i], wec::sldc::decompress(packed, std::size_t{64} << 20), packed);
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sldc_stats: %s\n", e.what());
        return 1;
    }
}

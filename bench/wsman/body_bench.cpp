// The collector's body step on an Events message as the load generator sends it (generated
// Security events, UTF-16LE with a BOM, SLDC-compressed greedily): SLDC -> UTF-16 -> UTF-8, in two
// passes (the whole UTF-16 body decompressed, then converted) or fused (wsman::decode_text, a
// cache-sized piece at a time), with and without the SOAP parse that follows. Rates are of
// decompressed (UTF-16) bytes; "events" counts events per second.
#include "client/client.hpp"
#include "sldc/sldc.hpp"
#include "text/text.hpp"
#include "wsman/body.hpp"
#include "wsman/wsman.hpp"

#include <benchmark/benchmark.h>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t kLimit = std::size_t{64} << 20;

struct Batch {
    std::vector<std::uint8_t> utf16;
    std::vector<std::uint8_t> sldc;
};

// One Events message of `events` generated events.
const Batch& batch(std::size_t events) {
    static std::vector<std::pair<std::size_t, Batch>> cache;
    for (const auto& [n, b] : cache)
        if (n == events) return b;
    wec::client::EventGenerator gen("host-1.windomain.local", 7);
    std::vector<std::string> texts;
    for (std::size_t i = 0; i < events; ++i)
        texts.push_back(gen.next());
    std::vector<std::string_view> views(texts.begin(), texts.end());
    wec::wsman::SourceHeaders headers;
    headers.to = "http://collector:5985/wsman/SubscriptionManager/WEC";
    headers.machine_id = "host-1.windomain.local";
    Batch b;
    b.utf16 =
        wec::text::utf8_to_utf16le(wec::wsman::build_events(headers, views, gen.bookmark()), true);
    b.sldc = wec::sldc::Compressor(wec::sldc::Level::Fast).compress(b.utf16);
    cache.emplace_back(events, std::move(b));
    return cache.back().second;
}

void finish(benchmark::State& state, const Batch& b) {
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * b.utf16.size()));
    state.counters["events"] = benchmark::Counter(
        static_cast<double>(state.iterations() * static_cast<std::uint64_t>(state.range(0))),
        benchmark::Counter::kIsRate);
    state.counters["utf16_bytes"] = static_cast<double>(b.utf16.size());
}

// Today's collector before the fusion: the decompressed body in a fresh sldc::Buffer, then
// converted (parse = false) or converted and parsed (parse_content).
void BM_TwoPass(benchmark::State& state, bool parse) {
    const Batch& b = batch(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        wec::sldc::Buffer scratch;
        auto content = wec::wsman::decode_content("SLDC", b.sldc, kLimit, scratch);
        if (parse) {
            wec::text::Encoding enc;
            auto m = wec::wsman::parse_content(content.bytes, "UTF-16", enc);
            benchmark::DoNotOptimize(m.events.size());
        } else {
            std::string utf8;
            wec::text::decode_body(content.bytes, "UTF-16", utf8);
            benchmark::DoNotOptimize(utf8.data());
        }
    }
    finish(state, b);
}

void BM_Fused(benchmark::State& state, bool parse) {
    const Batch& b = batch(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        auto t = wec::wsman::decode_text("SLDC", b.sldc, "UTF-16", kLimit);
        if (parse) {
            auto m = wec::wsman::parse_owned(std::move(t.utf8), t.xml_clean); // as the collector
            benchmark::DoNotOptimize(m.events.size());
        } else {
            benchmark::DoNotOptimize(t.utf8.data());
        }
    }
    finish(state, b);
}

// The fused step with other piece sizes (range(1), bytes): sldc's streaming decoder feeding a
// text::BodyDecoder, as decode_text does with wsman::kTextPiece.
void BM_FusedPiece(benchmark::State& state) {
    const Batch& b = batch(static_cast<std::size_t>(state.range(0)));
    const auto piece = static_cast<std::size_t>(state.range(1));
    for (auto _ : state) {
        std::string utf8;
        utf8.reserve(b.utf16.size() / 2 + 16);
        wec::text::BodyDecoder decoder("UTF-16", utf8);
        wec::sldc::decompress(
            b.sldc, [&](std::span<const std::uint8_t> p) { decoder.append(p); }, kLimit, piece);
        decoder.finish();
        benchmark::DoNotOptimize(utf8.data());
    }
    finish(state, b);
}

// The two halves of the two-pass step on their own.
void BM_DecompressOnly(benchmark::State& state) {
    const Batch& b = batch(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        wec::sldc::Buffer scratch;
        wec::sldc::decompress(b.sldc, scratch, kLimit);
        benchmark::DoNotOptimize(scratch.data());
    }
    finish(state, b);
}

// The streaming decoder alone, pieces of range(1) bytes handed to a write that only sums them.
void BM_StreamOnly(benchmark::State& state) {
    const Batch& b = batch(static_cast<std::size_t>(state.range(0)));
    const auto piece = static_cast<std::size_t>(state.range(1));
    std::size_t total = 0;
    for (auto _ : state) {
        wec::sldc::decompress(
            b.sldc, [&](std::span<const std::uint8_t> p) { total += p.size(); }, kLimit, piece);
    }
    benchmark::DoNotOptimize(total);
    finish(state, b);
}

// The decompression of the same batch compressed greedily (range(1) = 0, as the load generator
// does) or with the optimal parse (1, as `wec sldc compress` and the client by default): the
// decoder's speed goes by symbols, not bytes.
void BM_DecompressLevel(benchmark::State& state) {
    const Batch& b = batch(static_cast<std::size_t>(state.range(0)));
    const auto packed = wec::sldc::compress(b.utf16, state.range(1) == 0 ? wec::sldc::Level::Fast
                                                                         : wec::sldc::Level::Best);
    for (auto _ : state) {
        wec::sldc::Buffer scratch;
        wec::sldc::decompress(packed, scratch, kLimit);
        benchmark::DoNotOptimize(scratch.data());
    }
    finish(state, b);
    state.counters["ratio"] =
        static_cast<double>(b.utf16.size()) / static_cast<double>(packed.size());
}

void BM_ConvertOnly(benchmark::State& state) {
    const Batch& b = batch(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        std::string utf8;
        wec::text::decode_body(b.utf16, "UTF-16", utf8);
        benchmark::DoNotOptimize(utf8.data());
    }
    finish(state, b);
}

} // namespace

BENCHMARK_CAPTURE(BM_TwoPass, convert, false)->Arg(10)->Arg(100);
BENCHMARK_CAPTURE(BM_Fused, convert, false)->Arg(10)->Arg(100);
BENCHMARK_CAPTURE(BM_TwoPass, parse, true)->Arg(100);
BENCHMARK_CAPTURE(BM_Fused, parse, true)->Arg(100);
BENCHMARK(BM_FusedPiece)->ArgsProduct({{100}, {4096, 8192, 16384, 32768, 65536, 262144}});
BENCHMARK(BM_DecompressOnly)->Arg(10)->Arg(100);
BENCHMARK(BM_StreamOnly)->ArgsProduct({{10, 100}, {16384, 262144}});
BENCHMARK(BM_DecompressLevel)->ArgsProduct({{10, 100}, {0, 1}});
BENCHMARK(BM_ConvertOnly)->Arg(100);

BENCHMARK_MAIN();

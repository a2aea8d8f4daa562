// SLDC throughput on real Windows Event Forwarding bodies (UTF-16). Rates are of uncompressed
// bytes in both directions.
#include "common/files.hpp"
#include "sldc/sldc.hpp"

#include <benchmark/benchmark.h>
#include <cstdint>
#include <string>
#include <vector>

namespace {

std::vector<std::uint8_t> load(const char* name) {
    return wec::read_file(std::string(WEC_TEST_DATA) + "/sldc/" + name);
}

void BM_Compress(benchmark::State& state, const char* name) {
    const auto in = load(name);
    wec::sldc::Compressor compressor;
    std::vector<std::uint8_t> out;
    for (auto _ : state) {
        compressor.compress(in, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
    state.counters["ratio"] = static_cast<double>(in.size()) / static_cast<double>(out.size());
}

void BM_Decompress(benchmark::State& state, const char* name) {
    const auto in = load(name);
    const auto packed = wec::sldc::compress(in);
    std::vector<std::uint8_t> out;
    for (auto _ : state) {
        out.clear();
        wec::sldc::decompress(packed, out, in.size());
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
}

// The record Windows itself produced.
void BM_DecompressWindowsHeartbeat(benchmark::State& state) {
    const auto packed = load("heartbeat.sldc");
    std::vector<std::uint8_t> out;
    for (auto _ : state) {
        out.clear();
        wec::sldc::decompress(packed, out, 1u << 20);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}

BENCHMARK_CAPTURE(BM_Compress, heartbeat, "heartbeat.utf16");
BENCHMARK_CAPTURE(BM_Compress, enumerate, "enumerate.utf16");
BENCHMARK_CAPTURE(BM_Compress, events, "events.utf16");
BENCHMARK_CAPTURE(BM_Decompress, heartbeat, "heartbeat.utf16");
BENCHMARK_CAPTURE(BM_Decompress, enumerate, "enumerate.utf16");
BENCHMARK_CAPTURE(BM_Decompress, events, "events.utf16");
BENCHMARK(BM_DecompressWindowsHeartbeat);

} // namespace

BENCHMARK_MAIN();

// SLDC throughput on real Windows Event Forwarding bodies (UTF-16). Rates are of uncompressed
// bytes in both directions.
#include "common/files.hpp"
#include "sldc/sldc.hpp"

#include <algorithm>
#include <benchmark/benchmark.h>
#include <cstdint>
#include <string>
#include <vector>

namespace {

std::vector<std::uint8_t> load(const char* name) {
    return wec::read_file(std::string(WEC_TEST_DATA) + "/sldc/" + name);
}

void BM_Compress(benchmark::State& state, const char* name, wec::sldc::Level level) {
    const auto in = load(name);
    wec::sldc::Compressor compressor(level);
    std::vector<std::uint8_t> out;
    for (auto _ : state) {
        compressor.compress(in, out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
    state.counters["ratio"] = static_cast<double>(in.size()) / static_cast<double>(out.size());
}

// Into a std::vector (zero-filled as it grows) or an sldc::Buffer (not), cleared each time as the
// server's per-request buffer is fresh.
template <class Vec>
void decompress_into(benchmark::State& state, const char* name) {
    const auto in = load(name);
    const auto packed = wec::sldc::compress(in);
    for (auto _ : state) {
        Vec out;
        wec::sldc::decompress(packed, out, in.size());
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
}

void BM_Decompress(benchmark::State& state, const char* name) {
    decompress_into<std::vector<std::uint8_t>>(state, name);
}

void BM_DecompressBuffer(benchmark::State& state, const char* name) {
    decompress_into<wec::sldc::Buffer>(state, name);
}

// Streaming (the output handed out in pieces, here only summed), the input in memory (as
// `wec decode` uses it) or read 64 KB at a time (as `wec sldc decompress` does).
void BM_DecompressStream(benchmark::State& state, const char* name, bool read_in_pieces) {
    const auto in = load(name);
    const auto packed = wec::sldc::compress(in);
    std::size_t total = 0;
    const wec::sldc::WriteFn write = [&](std::span<const std::uint8_t> piece) {
        total += piece.size();
        benchmark::DoNotOptimize(piece.data());
    };
    for (auto _ : state) {
        if (read_in_pieces) {
            std::size_t pos = 0;
            wec::sldc::decompress(
                [&](std::span<std::uint8_t> buffer) {
                    const std::size_t n = std::min(buffer.size(), packed.size() - pos);
                    std::copy_n(packed.begin() + static_cast<std::ptrdiff_t>(pos), n,
                                buffer.begin());
                    pos += n;
                    return n;
                },
                write, in.size());
        } else {
            wec::sldc::decompress(packed, write, in.size());
        }
    }
    benchmark::DoNotOptimize(total);
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

using wec::sldc::Level;
BENCHMARK_CAPTURE(BM_Compress, heartbeat, "heartbeat.utf16", Level::Best);
BENCHMARK_CAPTURE(BM_Compress, enumerate, "enumerate.utf16", Level::Best);
BENCHMARK_CAPTURE(BM_Compress, events, "events.utf16", Level::Best);
BENCHMARK_CAPTURE(BM_Compress, heartbeat_fast, "heartbeat.utf16", Level::Fast);
BENCHMARK_CAPTURE(BM_Compress, enumerate_fast, "enumerate.utf16", Level::Fast);
BENCHMARK_CAPTURE(BM_Compress, events_fast, "events.utf16", Level::Fast);
BENCHMARK_CAPTURE(BM_Decompress, heartbeat, "heartbeat.utf16");
BENCHMARK_CAPTURE(BM_Decompress, enumerate, "enumerate.utf16");
BENCHMARK_CAPTURE(BM_Decompress, events, "events.utf16");
BENCHMARK_CAPTURE(BM_DecompressBuffer, heartbeat, "heartbeat.utf16");
BENCHMARK_CAPTURE(BM_DecompressBuffer, enumerate, "enumerate.utf16");
BENCHMARK_CAPTURE(BM_DecompressBuffer, events, "events.utf16");
BENCHMARK(BM_DecompressWindowsHeartbeat);
BENCHMARK_CAPTURE(BM_DecompressStream, events_in_memory, "events.utf16", false);
BENCHMARK_CAPTURE(BM_DecompressStream, events_read, "events.utf16", true);

} // namespace

BENCHMARK_MAIN();

// evtx::Reader over the real logs of tests/data/evtx: records/s and MB/s (of the file) on one
// core, whole files (open, every record read and rendered into Windows' XML), for both readers:
// our own (Engine::native, the default) and libevtx followed by normalize_xml (Engine::libevtx);
// and the rewrite alone (evtx::normalize_xml over every record's XML, kept in memory).
#include "evtx/evtx.hpp"

#include <benchmark/benchmark.h>
#include <filesystem>
#include <string>
#include <vector>

namespace {

const std::filesystem::path kData = std::filesystem::path(WEC_TEST_DATA) / "evtx";

void read_file(benchmark::State& state, const char* name, wec::evtx::Engine engine) {
    const auto file = kData / name;
    const auto bytes = std::filesystem::file_size(file);
    std::uint64_t records = 0;
    wec::evtx::Record record;
    for (auto _ : state) {
        wec::evtx::Reader reader(file, {}, engine);
        while (reader.next(record)) {
            benchmark::DoNotOptimize(record.xml.data());
            ++records;
        }
    }
    state.counters["records/s"] =
        benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

void BM_NativeSecurity(benchmark::State& state) {
    read_file(state, "security.evtx", wec::evtx::Engine::native);
}
void BM_NativeSystem(benchmark::State& state) {
    read_file(state, "system.evtx", wec::evtx::Engine::native);
}
void BM_LibevtxSecurity(benchmark::State& state) {
    read_file(state, "security.evtx", wec::evtx::Engine::libevtx);
}
void BM_LibevtxSystem(benchmark::State& state) {
    read_file(state, "system.evtx", wec::evtx::Engine::libevtx);
}

void BM_NormalizeOnly(benchmark::State& state) {
    // normalize_xml is idempotent, so its cost on its own output is the scan cost.
    std::vector<std::string> xml;
    wec::evtx::Reader reader(kData / "security.evtx");
    wec::evtx::Record record;
    while (reader.next(record))
        xml.push_back(record.xml);
    std::uint64_t records = 0;
    for (auto _ : state) {
        for (const auto& x : xml) {
            auto out = wec::evtx::normalize_xml(x);
            benchmark::DoNotOptimize(out.data());
        }
        records += xml.size();
    }
    state.counters["records/s"] =
        benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
}

BENCHMARK(BM_NativeSecurity)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_NativeSystem)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LibevtxSecurity)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LibevtxSystem)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_NormalizeOnly)->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();

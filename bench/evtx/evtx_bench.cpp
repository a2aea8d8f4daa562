// evtx::Reader over the real logs of tests/data/evtx: records/s and MB/s (of the file) on one
// core, whole files (open, every record read, rendered by libevtx and rewritten), and the
// rewrite alone (evtx::normalize_xml over libevtx's XML of every record, kept in memory).
#include "evtx/evtx.hpp"

#include <benchmark/benchmark.h>
#include <filesystem>
#include <string>
#include <vector>

namespace {

const std::filesystem::path kData = std::filesystem::path(WEC_TEST_DATA) / "evtx";

void read_file(benchmark::State& state, const char* name) {
    const auto file = kData / name;
    const auto bytes = std::filesystem::file_size(file);
    std::uint64_t records = 0;
    for (auto _ : state) {
        wec::evtx::Reader reader(file);
        wec::evtx::Record record;
        while (reader.next(record)) {
            benchmark::DoNotOptimize(record.xml.data());
            ++records;
        }
    }
    state.counters["records/s"] =
        benchmark::Counter(static_cast<double>(records), benchmark::Counter::kIsRate);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

void BM_ReadSecurity(benchmark::State& state) {
    read_file(state, "security.evtx");
}
void BM_ReadSystem(benchmark::State& state) {
    read_file(state, "system.evtx");
}

void BM_NormalizeOnly(benchmark::State& state) {
    // libevtx's own XML, re-created from our output by indenting it the way libevtx does is not
    // needed: normalize_xml is idempotent, so its cost on its own output is the scan cost.
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

BENCHMARK(BM_ReadSecurity)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReadSystem)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_NormalizeOnly)->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();

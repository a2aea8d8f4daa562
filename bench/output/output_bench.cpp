// The `files` output with `fsync = true`: batches per second for 1, 8 and 32 concurrent writers,
// each to its own file or all to one file. Every write() returns only once its batch is on disk,
// like a collector worker waiting for its Ack. The files go to a new directory under
// $WEC_BENCH_DIR (default: the system temp directory); on tmpfs fdatasync costs nothing, so run it
// on the disk the output would use.
#include "output/output.hpp"

#include <benchmark/benchmark.h>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

constexpr int kLines = 50;      // events per batch
constexpr int kLineBytes = 600; // bytes per event line, '\n' included

std::string make_batch() {
    std::string line(kLineBytes - 1, 'x');
    line.replace(0, 9, "{\"event\":");
    line += '\n';
    std::string batch;
    for (int i = 0; i < kLines; ++i)
        batch += line;
    return batch;
}

struct Shared {
    fs::path dir;
    std::unique_ptr<wec::output::Driver> driver;
    std::string batch = make_batch();

    Shared() {
        const char* base = std::getenv("WEC_BENCH_DIR");
        std::string tmpl =
            (fs::path(base ? base : fs::temp_directory_path().c_str()) / "wec-output-bench-XXXXXX")
                .string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed in " + tmpl);
        dir = tmpl;
        driver = wec::output::make_driver(
            "files", {{"path", (dir / "{client}.log").string()}, {"fsync", true}});
    }
    ~Shared() {
        driver.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

// range(0): 1 = one file per writer, 0 = every writer appends to the same file.
void BM_FsyncedBatches(benchmark::State& state) {
    static std::unique_ptr<Shared> shared;
    if (state.thread_index() == 0) shared = std::make_unique<Shared>();
    const std::string client =
        state.range(0) ? "host" + std::to_string(state.thread_index()) : std::string("host");
    for (auto _ : state) {
        wec::output::BatchInfo info;
        info.client = client;
        shared->driver->write(info, shared->batch);
    }
    state.SetItemsProcessed(state.iterations());
    state.SetBytesProcessed(state.iterations() * std::int64_t{kLines} * kLineBytes);
    if (state.thread_index() == 0) {
        // Every thread has left the loop (the library waits for all of them at its end) and no
        // thread touches `shared` after it.
        shared.reset();
    }
}

BENCHMARK(BM_FsyncedBatches)
    ->ArgName("distinct_files")
    ->Arg(1)
    ->Arg(0)
    ->Threads(1)
    ->Threads(8)
    ->Threads(32)
    ->UseRealTime()
    ->MinTime(3.0);

} // namespace

BENCHMARK_MAIN();

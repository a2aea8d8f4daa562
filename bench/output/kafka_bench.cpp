// Events per second through the `kafka` output into librdkafka's mock cluster (3 brokers of this
// process on 127.0.0.1, sharing the machine's cores with the writers): batches of 100 events of
// about 1 KB each, every write() returning once every delivery report of its batch arrived (the
// collector's view), for 1, 4 and 16 concurrent writers (one machine, i.e. one message key, each)
// and `linger.ms` 0, 5 (librdkafka's default) and 20. The same batches through the `files` output
// (no fsync) are the reference.
#include "common/handle.hpp"
#include "output/output.hpp"

#include <benchmark/benchmark.h>
#include <cstdlib>
#include <filesystem>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <memory>
#include <stdexcept>
#include <string>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

constexpr int kLines = 100;      // events per batch
constexpr int kLineBytes = 1024; // bytes per event line, '\n' included

std::string make_batch() {
    std::string line(kLineBytes - 1, 'x');
    line.replace(0, 9, "{\"event\":");
    line += '\n';
    std::string batch;
    for (int i = 0; i < kLines; ++i)
        batch += line;
    return batch;
}

void quiet(const rd_kafka_t*, int, const char*, const char*) {}

// Three mock brokers, owned by a handle of their own.
class Cluster {
public:
    Cluster() {
        wec::Handle<rd_kafka_conf_t, rd_kafka_conf_destroy> conf(rd_kafka_conf_new());
        rd_kafka_conf_set_log_cb(conf.get(), &quiet);
        char error[512];
        rk_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), error, sizeof error));
        if (!rk_) throw std::runtime_error(error);
        (void)conf.release();
        mock_.reset(rd_kafka_mock_cluster_new(rk_.get(), 3));
        if (!mock_) throw std::runtime_error("rd_kafka_mock_cluster_new failed");
    }
    ~Cluster() { mock_.reset(); }
    std::string brokers() const { return rd_kafka_mock_cluster_bootstraps(mock_.get()); }

private:
    wec::Handle<rd_kafka_t, rd_kafka_destroy> rk_;
    wec::Handle<rd_kafka_mock_cluster_t, rd_kafka_mock_cluster_destroy> mock_;
};

struct Shared {
    Cluster cluster;
    std::unique_ptr<wec::output::Driver> driver;
    std::string batch = make_batch();

    explicit Shared(std::int64_t linger_ms) {
        driver = wec::output::make_driver("kafka", {{"brokers", cluster.brokers()},
                                                    {"topic", "wec-{subscription}"},
                                                    {"options.linger.ms", linger_ms}});
    }
};

// range(0): linger.ms.
void BM_Kafka(benchmark::State& state) {
    static std::unique_ptr<Shared> shared;
    if (state.thread_index() == 0) shared = std::make_unique<Shared>(state.range(0));
    const std::string machine = "host" + std::to_string(state.thread_index());
    wec::output::BatchInfo info;
    info.machine = machine;
    info.subscription_name = "bench";
    for (auto _ : state)
        shared->driver->write(info, shared->batch);
    state.SetItemsProcessed(state.iterations() * kLines);
    state.SetBytesProcessed(state.iterations() * std::int64_t{kLines} * kLineBytes);
    if (state.thread_index() == 0) {
        // Every thread has left the loop (the library waits for all of them at its end).
        shared.reset();
    }
}

void BM_FilesReference(benchmark::State& state) {
    std::string tmpl = (fs::temp_directory_path() / "wec-kafka-bench-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    const fs::path dir = tmpl;
    {
        auto d = wec::output::make_driver("files", {{"path", (dir / "{client}.log").string()}});
        const std::string batch = make_batch();
        wec::output::BatchInfo info;
        info.client = "host";
        for (auto _ : state)
            d->write(info, batch);
        state.SetItemsProcessed(state.iterations() * kLines);
        state.SetBytesProcessed(state.iterations() * std::int64_t{kLines} * kLineBytes);
    }
    fs::remove_all(dir);
}

BENCHMARK(BM_Kafka)
    ->ArgName("linger_ms")
    ->Arg(0)
    ->Arg(1)
    ->Arg(5)
    ->Threads(1)
    ->Threads(4)
    ->Threads(16)
    ->UseRealTime()
    ->MinTime(2.0);
BENCHMARK(BM_FilesReference)->UseRealTime()->MinTime(2.0);

} // namespace

BENCHMARK_MAIN();

// Crash consistency of `wec serve` (issue 9): under a load of several HTTPS sources, the collector
// is killed with SIGKILL at random moments and restarted on the same store and output directory
// each time. The sources behave as Windows does: on any failure they reconnect, Enumerate again
// and resume after the bookmark the collector offers them, resending what was not acknowledged.
// At the end every event a source saw acknowledged is in the output (duplicates are allowed and
// counted), and the stored bookmark of each source is the last one acknowledged. The same run is
// made for every output driver, each into a real receiver that outlives the collector: files, a
// TCP listener, a real rsyslogd (TCP, octet counting), a unix datagram reader and a real
// redis-server (a list).
//
// WEC_CRASH_KILLS (default 5) and WEC_CRASH_SEED (default: from the clock) override the run; the
// seed is printed so that a failing schedule can be replayed.
#include "client/client.hpp"
#include "store/store.hpp"
#include "support/files.hpp"
#include "support/kafka_mock.hpp"
#include "support/line_receiver.hpp"
#include "support/pki_suite.hpp"
#include "support/process.hpp"
#include "support/redis.hpp"
#include "support/rsyslog.hpp"
#include "support/windows_sources.hpp"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace client = wec::client;

const std::string kHost = "srv.windomain.local";
constexpr std::size_t kSources = 4;

std::string source_name(std::size_t i) {
    return "host-" + std::to_string(i + 1) + ".windomain.local";
}

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::stoull(v) : fallback;
}

// Where the collector's events go, and how the test reads them back. Every sink outlives the
// collector's incarnations, as a real SIEM input does.
class Sink {
public:
    virtual ~Sink() = default;
    // The [[outputs]] table of the subscription (format json).
    virtual std::string output_toml() = 0;
    // Every event received, one JSON text each, once the receiver has settled.
    virtual std::vector<std::string> events() = 0;
    // A pause of each source after each acknowledged batch (0: as fast as it can).
    virtual std::chrono::milliseconds pace() const { return std::chrono::milliseconds(0); }
};

class FilesSink final : public Sink {
public:
    explicit FilesSink(fs::path dir) : dir_(std::move(dir)) {}
    std::string output_toml() override {
        return "[[outputs]]\ndriver = \"files\"\npath = \"" +
               (dir_ / "events" / "{client}.json").string() + "\"\nformat = \"json\"\n";
    }
    std::vector<std::string> events() override {
        std::vector<std::string> out;
        if (!fs::exists(dir_ / "events")) return out;
        for (const auto& f : fs::directory_iterator(dir_ / "events"))
            for (auto& line : lines_of(slurp(f.path())))
                out.push_back(std::move(line));
        return out;
    }

private:
    fs::path dir_;
};

// A TCP input (tests/support/line_receiver.hpp).
class TcpLinesSink final : public Sink {
public:
    std::string output_toml() override {
        return "[[outputs]]\ndriver = \"tcp\"\naddress = \"127.0.0.1:" +
               std::to_string(receiver_.port()) + "\"\nformat = \"json\"\n";
    }
    std::vector<std::string> events() override { return receiver_.lines(); }

private:
    TcpLineReceiver receiver_;
};

// A real rsyslogd, its TCP input (RFC 6587 octet counting), MSG of each message.
class SyslogSink final : public Sink {
public:
    explicit SyslogSink(const fs::path& dir) : rsyslog_(make_dir(dir)) { rsyslog_.start(); }
    std::string output_toml() override {
        return "[[outputs]]\ndriver = \"syslog\"\naddress = \"tcp://127.0.0.1:" +
               std::to_string(rsyslog_.tcp()) + "\"\nformat = \"json\"\n";
    }
    std::vector<std::string> events() override {
        return settled([this] {
            std::vector<std::string> out;
            for (auto& m : rsyslog_.messages("tcp", 0))
                out.push_back(std::move(m.msg));
            return out;
        });
    }

private:
    static fs::path make_dir(const fs::path& dir) {
        fs::create_directories(dir / "rsyslog");
        return dir / "rsyslog";
    }
    Rsyslog rsyslog_;
};

// A unix datagram reader (a local agent): one event per datagram.
class UnixSink final : public Sink {
public:
    explicit UnixSink(fs::path path) : path_(std::move(path)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("cannot bind " + path_.string());
        reader_ = std::thread([this] {
            std::string buf(256 * 1024, '\0');
            for (;;) {
                ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
                if (n <= 0) return; // shut down
                std::lock_guard lock(mutex_);
                if (buf.compare(0, 4, "stop") == 0 && n == 4) return;
                events_.emplace_back(buf.data(), static_cast<std::size_t>(n));
            }
        });
    }
    ~UnixSink() override {
        // Wake the reader with a datagram of our own.
        int s = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
        ::sendto(s, "stop", 4, 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::close(s);
        reader_.join();
        ::close(fd_);
    }
    std::string output_toml() override {
        return "[[outputs]]\ndriver = \"unix\"\npath = \"" + path_.string() +
               "\"\nformat = \"json\"\n";
    }
    std::vector<std::string> events() override {
        return settled([this] {
            std::lock_guard lock(mutex_);
            return events_;
        });
    }

private:
    fs::path path_;
    int fd_ = -1;
    std::thread reader_;
    std::mutex mutex_;
    std::vector<std::string> events_;
};

// A real redis-server: the list, read back with redis-cli, one event per element.
class RedisSink final : public Sink {
public:
    explicit RedisSink(const fs::path& dir) : redis_(make_dir(dir)) {}
    std::string output_toml() override {
        return "[[outputs]]\ndriver = \"redis\"\naddress = \"" + redis_.address() +
               "\"\nlist = \"wec:{subscription}\"\nformat = \"json\"\n";
    }
    std::vector<std::string> events() override {
        // json lines hold no line break: one element per line of redis-cli --raw.
        auto r = redis_.cli({"--raw", "LRANGE", "wec:security", "0", "-1"});
        if (r.exit_code != 0) throw std::runtime_error("redis-cli LRANGE failed: " + r.output);
        std::vector<std::string> out;
        for (auto& line : lines_of(r.output))
            if (!line.empty()) out.push_back(std::move(line));
        return out;
    }

private:
    static fs::path make_dir(const fs::path& dir) {
        fs::create_directories(dir / "redis");
        return dir / "redis";
    }
    RedisServer redis_;
};

// librdkafka's mock cluster in this process (it outlives the collector): the topic is read by a
// consumer all along, since the mock brokers keep only the last 5 MB of each partition. A gap in
// a partition's offsets (messages dropped by the mock before they were read) is reported as such.
class KafkaSink final : public Sink {
public:
    KafkaSink() {
        if (rd_kafka_mock_topic_create(cluster_.mock(), kTopic, 16, 1) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            throw std::runtime_error("cannot create the mock topic");
        consumer_ = std::thread([this] { consume(); });
    }
    ~KafkaSink() override {
        stop_ = true;
        consumer_.join();
    }
    // Paced so that the consumer stays well within the mock's 5 MB per partition even on a
    // loaded machine (each source's events go to one partition: the key is the machine).
    std::chrono::milliseconds pace() const override { return std::chrono::milliseconds(20); }
    std::string output_toml() override {
        return "[[outputs]]\ndriver = \"kafka\"\nbrokers = \"" + cluster_.brokers() +
               "\"\ntopic = \"" + kTopic + "\"\nformat = \"json\"\n";
    }
    std::vector<std::string> events() override {
        auto got = settled([this] {
            std::lock_guard lock(mutex_);
            return values_;
        });
        std::lock_guard lock(mutex_);
        if (gaps_)
            throw std::runtime_error(std::to_string(gaps_) +
                                     " offset gaps: the mock broker dropped messages before the "
                                     "consumer read them (its 5 MB partition limit)");
        return got;
    }

private:
    static constexpr const char* kTopic = "wec-crash";

    void consume() {
        using namespace wec::testing;
        auto rk = make_handle(RD_KAFKA_CONSUMER, conf({{"bootstrap.servers", cluster_.brokers()},
                                                       {"group.id", "wec-crash"},
                                                       {"enable.auto.commit", "false"}}));
        PartitionList parts(rd_kafka_topic_partition_list_new(16));
        for (int i = 0; i < 16; ++i)
            rd_kafka_topic_partition_list_add(parts.get(), kTopic, i)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk.get(), parts.get());
        std::map<std::int32_t, std::int64_t> next;
        while (!stop_) {
            KafkaMessage m(rd_kafka_consumer_poll(rk.get(), 100));
            if (!m || m->err) continue;
            std::lock_guard lock(mutex_);
            auto& expected = next[m->partition];
            if (m->offset != expected) ++gaps_;
            expected = m->offset + 1;
            values_.emplace_back(static_cast<const char*>(m->payload), m->len);
        }
        rd_kafka_consumer_close(rk.get());
    }

    wec::testing::Cluster cluster_;
    std::atomic<bool> stop_{false};
    std::mutex mutex_;
    std::vector<std::string> values_;
    std::uint64_t gaps_ = 0;
    std::thread consumer_;
};

class ServeCrashBase : public PkiSuite<> {
protected:
    static void SetUpTestSuite() {
        std::vector<std::string> clients;
        for (std::size_t i = 0; i < kSources; ++i)
            clients.push_back(source_name(i));
        make_pki(clients);
    }

    TempDir dir;
    std::string db;
    int port = 0;
    int incarnation = 0;
    std::unique_ptr<Process> server;

    std::unique_ptr<Sink> sink;

    void prepare(std::unique_ptr<Sink> s) {
        sink = std::move(s);
        db = "sqlite:" + (dir.path() / "wec.db").string();
        auto file = dir.path() / "security.toml";
        std::ofstream(file) << "name = \"security\"\n"
                            << "query = '<QueryList><Query Id=\"0\"><Select "
                               "Path=\"Security\">*</Select></Query></QueryList>'\n"
                            << sink->output_toml();
        auto r = run({WEC_EXE, "sub", "apply", file.string(), "--db", db});
        ASSERT_EQ(r.exit_code, 0) << r.output;
        port = free_port();
    }
    void crash_run();
    void TearDown() override {
        if (!HasFailure()) return;
        for (int n = 1; n <= incarnation; ++n) {
            auto text = slurp(log_file(n));
            if (text.size() > 3000) text = "..." + text.substr(text.size() - 3000);
            std::cerr << "---- wec serve log " << n << " ----\n" << text;
        }
    }

    fs::path log_file(int n) const { return dir.path() / ("serve-" + std::to_string(n) + ".log"); }

    // The same port, store and output directory every time; a fresh log file per run.
    void start_server() {
        server = std::make_unique<Process>(
            std::vector<std::string>{
                WEC_EXE, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--auth", "tls",
                "--cert", pki("server.pem").string(), "--key", pki("server.key").string(), "--ca",
                pki("root.pem").string(), "--ca", pki("issuing.pem").string(), "--hostname", kHost,
                "--db", db},
            std::map<std::string, std::string>{}, log_file(++incarnation));
        ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    }

    client::SourceOptions source_options(std::size_t i) const {
        client::SourceOptions o;
        o.manager = client::Url::parse("https://127.0.0.1:" + std::to_string(port) + "/wsman/");
        o.tls.cert_file = pki(source_name(i) + ".pem").string();
        o.tls.key_file = pki(source_name(i) + ".key").string();
        o.tls.ca_file = pki("root.pem").string();
        o.tls.server_name = kHost;
        o.machine_id = source_name(i);
        o.compress = false; // the collector's work is what is measured, not the client's SLDC
        o.timeout = 10s;
        return o;
    }
};

class ServeCrash : public ServeCrashBase {
protected:
    void SetUp() override { prepare(std::make_unique<FilesSink>(dir.path())); }
};

class ServeCrashOutputs : public ServeCrashBase, public ::testing::WithParamInterface<std::string> {
protected:
    void SetUp() override {
        const auto& driver = GetParam();
        if (driver == "tcp")
            prepare(std::make_unique<TcpLinesSink>());
        else if (driver == "syslog")
            prepare(std::make_unique<SyslogSink>(dir.path()));
        else if (driver == "unix")
            prepare(std::make_unique<UnixSink>(dir.path() / "agent.sock"));
        else if (driver == "redis")
            prepare(std::make_unique<RedisSink>(dir.path()));
        else if (driver == "kafka")
            prepare(std::make_unique<KafkaSink>());
        else
            FAIL() << "no sink for driver " << driver;
    }
};

TEST_F(ServeCrash, SigkillUnderLoadLosesNoAcknowledgedEvent) {
    crash_run();
}

TEST_P(ServeCrashOutputs, SigkillUnderLoadLosesNoAcknowledgedEvent) {
    crash_run();
}

INSTANTIATE_TEST_SUITE_P(Drivers, ServeCrashOutputs,
                         ::testing::Values("tcp", "syslog", "unix", "redis", "kafka"),
                         [](const auto& p) { return p.param; });

void ServeCrashBase::crash_run() {
    const auto kills = env_or("WEC_CRASH_KILLS", 5);
    const auto seed = env_or(
        "WEC_CRASH_SEED",
        static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()));
    std::cout << "WEC_CRASH_SEED=" << seed << " WEC_CRASH_KILLS=" << kills << "\n";
    std::mt19937_64 rng(seed);
    start_server();
    const auto started = std::chrono::steady_clock::now();

    SourceFleet fleet(
        kSources, [this](std::size_t i) { return source_options(i); },
        [seed](std::size_t i) { return seed + 7919 * (i + 1); }, sink->pace());
    // Waits (bounded) until the sources got `more` acknowledgements from this incarnation.
    auto wait_for_acks = [&](std::uint64_t more) { return fleet.wait_for_acks(more, 30s); };

    std::vector<std::uint64_t> delays_ms;
    for (std::uint64_t k = 0; k < kills; ++k) {
        // Under load: some batches went through since the (re)start, then a random moment.
        ASSERT_TRUE(wait_for_acks(kSources)) << "no progress after restart " << k;
        auto delay = std::chrono::milliseconds(100 + rng() % 2400);
        delays_ms.push_back(static_cast<std::uint64_t>(delay.count()));
        std::this_thread::sleep_for(delay);
        ASSERT_TRUE(server->signal(SIGKILL)) << "the collector died before kill " << k;
        EXPECT_EQ(server->wait(10s), 128 + SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300)); // sources fail
        start_server();
    }
    ASSERT_TRUE(wait_for_acks(20 * kSources)) << "the load did not resume after the last restart";
    fleet.stop();
    const auto& logs = fleet.logs();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    server->signal(SIGTERM);
    EXPECT_EQ(server->wait(20s), 0) << server->output();

    auto store = wec::store::open(db);
    auto subscriptions = store->subscriptions();
    ASSERT_EQ(subscriptions.size(), 1u);
    const auto uuid = subscriptions.front().uuid;

    std::uint64_t total_acked = 0, total_written = 0, duplicates = 0, torn = 0, failed = 0,
                  committed_unacked = 0, resumes = 0;
    // Every record in the output, by source, with how often it was written.
    auto written_by = records_by_computer(sink->events(), torn);
    EXPECT_LE(written_by.size(), kSources) << "events of unknown computers in the output";
    for (std::size_t i = 0; i < kSources; ++i) {
        const auto& log = logs[i];
        SCOPED_TRACE(source_name(i));
        ASSERT_FALSE(log.acked.empty());
        EXPECT_EQ(log.bookmark_behind, 0u)
            << "a re-Enumerate offered a bookmark before an acknowledged batch";
        const auto& written = written_by[source_name(i)];
        std::uint64_t missing = 0, acked = 0;
        for (auto [first, last] : log.acked)
            for (auto r = first; r <= last; ++r, ++acked)
                missing += written.count(r) == 0;
        EXPECT_EQ(missing, 0u) << acked << " events acknowledged, " << written.size()
                               << " distinct records written";
        for (auto [record, times] : written)
            duplicates += times - 1;
        total_acked += acked;
        total_written += written.size();
        failed += log.batches_failed;
        committed_unacked += log.committed_unacked;
        resumes += log.resumes;

        // The stored bookmark is at or past the last one acknowledged, never past a lost event.
        auto stored = store->bookmark(source_name(i), uuid);
        ASSERT_TRUE(stored.has_value());
        EXPECT_EQ(check_stored_bookmark(bookmark_record(*stored), log, written), "") << *stored;
        if (HasFailure())
            for (const auto& e : log.first_errors)
                std::cout << "  " << source_name(i) << " error: " << e << "\n";
    }
    // Torn lines (a kill inside the write of a batch, then the resent batch appended after the
    // partial line) are counted, not failed: an acknowledged event is lost only when it is glued
    // to one, which `missing` catches. PartialLineLeftByAKill... below is its regression test.
    // Every kill cut a source mid-stream at least once.
    EXPECT_GE(resumes, kills);

    std::cout << "crash run: " << kills << " kills after ";
    for (auto d : delays_ms)
        std::cout << d << " ";
    std::cout << "ms; " << seconds << " s, " << fleet.acked_batches() << " batches / "
              << total_acked << " events acknowledged, " << total_written
              << " distinct events written, " << duplicates << " duplicates, " << failed
              << " batches unacknowledged, " << committed_unacked
              << " written but unacknowledged (bookmark ahead), " << resumes << " resumes, " << torn
              << " torn lines\n";
}

// The state a SIGKILL inside the write of a batch leaves: Linux ends a write to a regular file
// between pages when a fatal signal is pending, so the file can end with part of a line (the crash
// run above sees this about once in 15-30 kills). The batch was not acknowledged, so the source
// sends it again; its first event must not be glued to the partial line, where no JSON-lines reader
// finds it (an acknowledged event lost). The files output starts its first batch on a new line when
// it opens a file that does not end with one (the partial line stays; it was never acknowledged).
// Cutting it off instead is not safe: another writer of the same file may be in the middle of a
// batch (SIGHUP re-opens files while batches are being written).
TEST_F(ServeCrash, PartialLineLeftByAKillDoesNotSwallowTheResentBatch) {
    start_server();
    auto options = source_options(0);
    auto send = [&](std::uint64_t first) {
        client::Source source(options);
        auto subs = source.enumerate();
        source.end();
        ASSERT_EQ(subs.size(), 1u);
        client::EventGenerator gen(options.machine_id, 1, first);
        std::vector<std::string> events{gen.next(), gen.next(), gen.next()};
        source.send_events(subs[0], events, gen.bookmark());
    };
    send(1000);
    ASSERT_TRUE(server->signal(SIGKILL));
    server->wait(10s);
    // Killed while writing the batch of records 1003-1005: its first line is cut.
    const auto file = dir.path() / "events" / (source_name(0) + ".json");
    std::ofstream(file, std::ios::app)
        << R"({"System":{"Provider":{"Name":"Microsoft-Windows-Secu)";
    start_server();
    send(1003); // the resent batch
    server->signal(SIGTERM);
    EXPECT_EQ(server->wait(20s), 0);
    std::set<std::uint64_t> readable;
    for (const auto& line : lines_of(slurp(file))) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.contains("System")) continue;
        const auto& id = j["System"]["EventRecordID"];
        readable.insert(std::stoull(id.is_string() ? id.get<std::string>() : id.dump()));
    }
    EXPECT_EQ(readable, (std::set<std::uint64_t>{1000, 1001, 1002, 1003, 1004, 1005}));
}

} // namespace

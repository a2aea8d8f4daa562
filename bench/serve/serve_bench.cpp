// End-to-end benchmark of `wec serve` driven by the client core from the same machine:
//  1. ingest: Kerberos AES256 + SLDC + json file output, several keep-alive connections in
//     parallel (threads), realistic Security events in Windows-sized batches; prints events/s,
//     Ack latency p50/p99 and the server's RSS;
//  2. connections: N (default 10,000) concurrent authenticated keep-alive connections opened by
//     the async client (one thread, C++20 coroutines); prints the server's RSS, then sends one
//     Heartbeat on every connection to show they are all alive;
//  3. TLS handshakes: the same with `wec serve --auth tls` (HTTPS, client certificates, PKI made
//     with the openssl CLI by tests/integration/make_test_pki.sh): --tls-connections full
//     handshakes (no session resumption; the client certificate is verified against root +
//     issuing CA), ECDSA P-256 server key, then RSA 2048; handshakes/s, CPU per handshake, RSS;
//  4. TLS ingest: scenario 1 over HTTPS (plain UTF-16 SOAP bodies, SLDC, client certificate).
// A plain executable (not Google Benchmark): it starts its own KDC/PKI and servers and prints
// figures. It first prints the host's speed (the SLDC decoder's MB/s, as sldc_bench measures it):
// compare CPU-per-event figures only between runs on hosts of the same speed.
// bench/serve/instructions.sh runs it with `wec serve` under callgrind for a count of
// instructions per event, which the host's speed does not move.
//
//   serve_bench [--events N] [--batch N] [--hosts N] [--threads N] [--connections N]
//               [--io-threads N] [--worker-threads N] [--handler-threads auto|io|workers]
//               [--sync-interval-ms N] [--no-compress] [--precompressed N] [--level fast|best]
//               [--skip-ingest] [--skip-connections]
//               [--tls-connections N] [--skip-tls] [--skip-kerberos] [--no-rsa]
//               [--output files|tcp|kafka|redis] [--postgres] [--nodes N] [--enctypes "E ..."]
//
// --enctypes (Kerberos): the only enctypes the test KDC issues, MIT names (default
// "aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96"), e.g. aes256-cts-hmac-sha384-192.
//
// --postgres: the state store on a PostgreSQL 15 server the benchmark starts (fsync on) instead
// of SQLite. --nodes N (N > 1): N `wec serve` nodes on that store, behind haproxy (PROXY
// protocol v2, round robin); the server CPU printed is the sum over the nodes, the RSS the
// first node's.
//
// --handler-threads: the served config's `handler_threads` (unset: "auto", which runs requests
// on the I/O threads with SQLite and on the workers with PostgreSQL).
//
// --sync-interval-ms: the served config's `bookmark_sync_interval_ms` (0: every bookmark commit
// waits for the fsync / WAL flush).
//
// --output (default files): where the ingest scenarios' subscription writes its json events:
// `files` (one file per client under the temp dir), `tcp` (a receiver in this process that
// reads and counts lines, as a SIEM's TCP input would), `kafka` (librdkafka's mock cluster in
// this process, 3 brokers on 127.0.0.1; counted by the topic's offsets) or `redis` (a real
// redis-server on a free port, no persistence; counted with LLEN).
//
// WEC_BENCH_EXE=PATH runs another `wec` binary (an older build) under the same load.
//
// --precompressed N (default 8): each simulated host SLDC-compresses N distinct Events messages
// before the clock starts and cycles through them, sealing each request anew: the client's
// optimal-parse SLDC compressor costs ~3x the collector's whole work per event, and on 2 shared
// cores it would otherwise be what is measured. --precompressed 0 compresses every batch live.
//
// --level (default fast): how the generator compresses. `best` (the optimal parse) gives records
// shaped like Windows' own (a literal between most copies; Windows' heartbeat.sldc: 48 % of its
// symbols are literals, Fast's batches 12 %, Best's 38 %), which the collector decodes faster.
#include "client/client.hpp"
#include "client/load.hpp"
#include "common/files.hpp"
#include "common/handle.hpp"
#include "sldc/sldc.hpp"
#include "support/files.hpp"
#include "support/kafka_mock.hpp"
#include "support/krb5_realm.hpp"
#include "support/postgres_server.hpp"
#include "support/proc_stats.hpp"
#include "support/process.hpp"
#include "support/redis.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <librdkafka/rdkafka.h>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace client = wec::client;
namespace sldc = wec::sldc;
namespace asio = boost::asio;

const std::string kHost = "srv.windomain.local";

// The binary under test: $WEC_BENCH_EXE (another build, for before/after figures) or this build's.
std::string wec_exe() {
    const char* other = std::getenv("WEC_BENCH_EXE");
    return other && *other ? other : WEC_EXE;
}

struct Args {
    std::uint64_t events = 400000;
    std::size_t batch = 100;
    std::size_t hosts = 16;
    std::size_t threads = 4;
    std::size_t connections = 10000;
    std::size_t precompressed = 8;
    sldc::Level level = sldc::Level::Fast;
    bool compress = true;
    bool ingest = true;
    bool conns = true;
    std::size_t tls_connections = 2000;
    bool tls = true;
    bool kerberos = true;
    bool rsa = true;
    std::string io_threads, worker_threads;
    std::string handler_threads;  // auto (the default), io or workers
    std::string sync_interval_ms; // bookmark_sync_interval_ms (unset: the default, 1000)
    std::string db_dir; // where the SQLite store goes (default: the temp dir); e.g. /dev/shm
    std::string output = "files";
    bool postgres = false; // the store on a PostgreSQL server started by the benchmark
    std::size_t nodes = 1; // > 1: that many `wec serve` behind haproxy (PROXY protocol v2)
    std::uint64_t replay_events = 0; // > 0: the `wec replay` generator scenario (Kerberos)
    bool replay_precompress = false; // ... with `wec replay --precompress`
    std::string enctypes;            // --enctypes: the only ones the KDC issues (MIT names)
};

// Where the subscription's events go during the ingest scenarios, and how many arrived.
class Sink {
public:
    virtual ~Sink() = default;
    virtual std::string output_toml() const = 0; // the [[outputs]] table
    virtual std::size_t lines() const = 0;
};

class FilesSink final : public Sink {
public:
    explicit FilesSink(fs::path dir) : dir_(std::move(dir)) {}
    std::string output_toml() const override {
        return "[[outputs]]\ndriver = \"files\"\npath = \"" + (dir_ / "{client}.json").string() +
               "\"\nformat = \"json\"\n";
    }
    std::size_t lines() const override {
        std::size_t n = 0;
        if (!fs::exists(dir_)) return 0;
        for (const auto& e : fs::recursive_directory_iterator(dir_)) {
            if (!e.is_regular_file()) continue;
            std::ifstream in(e.path());
            n += static_cast<std::size_t>(std::count(std::istreambuf_iterator<char>(in),
                                                     std::istreambuf_iterator<char>(), '\n'));
        }
        return n;
    }

private:
    fs::path dir_;
};

// A TCP input: reads every connection as fast as it can and counts the lines.
class TcpSink final : public Sink {
public:
    TcpSink() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(fd_, 16) != 0)
            throw std::runtime_error("tcp sink: cannot listen");
        socklen_t len = sizeof addr;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        acceptor_ = std::thread([this] {
            for (;;) {
                int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (c < 0) return;
                std::lock_guard lock(mutex_);
                conns_.push_back(c);
                readers_.emplace_back([this, c] {
                    std::vector<char> buf(1 << 20);
                    for (;;) {
                        ssize_t n = ::recv(c, buf.data(), buf.size(), 0);
                        if (n <= 0) return;
                        lines_ +=
                            static_cast<std::size_t>(std::count(buf.data(), buf.data() + n, '\n'));
                    }
                });
            }
        });
    }
    ~TcpSink() override {
        ::shutdown(fd_, SHUT_RDWR);
        acceptor_.join();
        ::close(fd_);
        for (int c : conns_)
            ::shutdown(c, SHUT_RDWR);
        for (auto& t : readers_)
            t.join();
        for (int c : conns_)
            ::close(c);
    }
    std::string output_toml() const override {
        return "[[outputs]]\ndriver = \"tcp\"\naddress = \"127.0.0.1:" + std::to_string(port_) +
               "\"\nformat = \"json\"\n";
    }
    std::size_t lines() const override { return lines_.load(); }

private:
    int fd_ = -1;
    int port_ = 0;
    std::thread acceptor_;
    std::mutex mutex_;
    std::vector<int> conns_;
    std::vector<std::thread> readers_;
    std::atomic<std::size_t> lines_{0};
};

// Kafka: librdkafka's mock cluster (3 brokers of this process on 127.0.0.1; tests/support).
class KafkaSink final : public Sink {
public:
    std::string output_toml() const override {
        return "[[outputs]]\ndriver = \"kafka\"\nbrokers = \"" + cluster_.brokers() +
               "\"\ntopic = \"wec-{subscription}\"\nformat = \"json\"\n";
    }
    // Messages appended to the topic: the sum of its partitions' high watermarks (the mock
    // brokers keep only the last 5 MB of each partition, so reading them back would count less).
    std::size_t lines() const override {
        auto rk = wec::testing::make_handle(
            RD_KAFKA_CONSUMER, wec::testing::conf({{"bootstrap.servers", cluster_.brokers()}}));
        const std::string topic = "wec-security";
        wec::Handle<rd_kafka_topic_t, rd_kafka_topic_destroy> t(
            rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr));
        const rd_kafka_metadata_t* md = nullptr;
        if (rd_kafka_metadata(rk.get(), 0, t.get(), &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        wec::testing::Metadata owned(md);
        std::size_t n = 0;
        for (int i = 0; i < md->topics[0].partition_cnt; ++i) {
            std::int64_t low = 0, high = 0;
            if (rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(),
                                                 md->topics[0].partitions[i].id, &low, &high,
                                                 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
                n += static_cast<std::size_t>(high);
        }
        return n;
    }

private:
    wec::testing::Cluster cluster_;
};

// A real redis-server (no persistence) on a free port: RPUSH per batch into one list.
class RedisSink final : public Sink {
public:
    explicit RedisSink(const fs::path& dir) : redis_(make_dir(dir)) {}
    std::string output_toml() const override {
        return "[[outputs]]\ndriver = \"redis\"\naddress = \"" + redis_.address() +
               "\"\nlist = \"wec:{subscription}\"\nformat = \"json\"\n";
    }
    std::size_t lines() const override {
        auto r = redis_.cli({"LLEN", "wec:security"});
        return r.exit_code == 0 ? std::stoul("0" + r.output.substr(0, r.output.find('\n'))) : 0;
    }

private:
    static fs::path make_dir(const fs::path& dir) {
        fs::create_directories(dir / "redis");
        return dir / "redis";
    }
    RedisServer redis_;
};

std::unique_ptr<Sink> make_sink(const std::string& kind, const fs::path& dir) {
    if (kind == "files") return std::make_unique<FilesSink>(dir / "events");
    if (kind == "tcp") return std::make_unique<TcpSink>();
    if (kind == "kafka") return std::make_unique<KafkaSink>();
    if (kind == "redis") return std::make_unique<RedisSink>(dir);
    throw std::runtime_error("unknown --output " + kind + " (files, tcp, kafka, redis)");
}

// RSS in KiB as a signed number (differences of two readings are printed).
long rss_kb_of(int pid) {
    return static_cast<long>(rss_kb(pid));
}

double self_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU time of the calling thread (the host-speed probe runs on one thread).
double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// This machine's speed per core moves by up to 2x from hour to hour for the same binary
// (docs/performance.md), so each run says how fast the host is: the SLDC decoder on the record
// sldc_bench's DecompressBuffer/events decodes (the same compression, into an sldc::Buffer), the
// median of 7 rounds of CPU time, in sldc_bench's units (MB = 2^20 bytes).
void print_host_speed() {
    const std::string path = std::string(WEC_SOURCE_DIR) + "/tests/data/sldc/events.utf16";
    const auto in = wec::read_file(path);
    const auto packed = wec::sldc::compress(in);
    std::vector<double> rates;
    for (int round = 0; round < 7; ++round) {
        std::size_t bytes = 0;
        const double start = thread_cpu_seconds();
        double spent = 0;
        do {
            wec::sldc::Buffer out;
            wec::sldc::decompress(packed, out, in.size());
            bytes += out.size();
            spent = thread_cpu_seconds() - start;
        } while (spent < 0.05);
        rates.push_back(static_cast<double>(bytes) / spent / (1024.0 * 1024.0));
    }
    std::sort(rates.begin(), rates.end());
    std::printf("host speed        SLDC decoder %.0f MB/s on tests/data/sldc/events.utf16 "
                "(sldc_bench's DecompressBuffer/events: 820-1,760 on the project's machine, "
                "docs/performance.md)\n",
                rates[rates.size() / 2]);
    std::fflush(stdout);
}

// Samples a process' RSS in the background; keeps the peak.
class RssSampler {
public:
    explicit RssSampler(int pid)
        : pid_(pid), thread_([this] {
              while (!stop_) {
                  peak_ = std::max(peak_.load(), rss_kb_of(pid_));
                  std::this_thread::sleep_for(100ms);
              }
          }) {}
    ~RssSampler() {
        stop_ = true;
        thread_.join();
    }
    long peak() const { return std::max(peak_.load(), rss_kb_of(pid_)); }

private:
    int pid_;
    std::atomic<bool> stop_{false};
    std::atomic<long> peak_{0};
    std::thread thread_;
};

enum class Transport { Kerberos, TlsEcdsa, TlsRsa };

const char* describe(Transport t) {
    switch (t) {
    case Transport::Kerberos:
        return "Kerberos AES256";
    case Transport::TlsEcdsa:
        return "TLS, ECDSA P-256 server key, client certificate";
    case Transport::TlsRsa:
        return "TLS, RSA 2048 server key, client certificate";
    }
    return "?";
}

const std::string kTlsClient = "win10.windomain.local"; // CN of the client certificate

struct Setup {
    Transport transport;
    std::optional<Krb5Realm> realm; // Kerberos only
    TempDir dir;
    fs::path keytab;
    std::string ccache;
    std::shared_ptr<client::TlsContext> tls_context; // TLS: shared by every client connection
    std::string db;
    int port = 0;
    std::optional<PostgresServer> pg;                  // --postgres
    std::unique_ptr<Sink> sink;                        // outlives the server (declared before it)
    std::vector<std::unique_ptr<Process>> extra_nodes; // --nodes: the nodes after the first
    std::unique_ptr<Process> haproxy;                  // --nodes: in front of them on `port`
    std::unique_ptr<Process> server;                   // the (first) node

    fs::path pki(const std::string& f) const { return dir.path() / "pki" / f; }

    Setup(const Args& a, Transport t) : transport(t) {
        std::vector<std::string> auth;
        if (t == Transport::Kerberos) {
            if (a.enctypes.empty())
                realm.emplace();
            else
                realm.emplace(Krb5Realm::Options{.enctypes = a.enctypes});
            realm->add_principal("HTTP/" + kHost);
            realm->add_principal("HOST/" + kHost);
            realm->add_principal("WIN10$");
            keytab = realm->export_keytab({"HTTP/" + kHost, "HOST/" + kHost}, "wec.keytab");
            ccache = realm->kinit("WIN10$@" + realm->realm(),
                                  realm->export_keytab({"WIN10$"}, "win10.keytab"));
            realm->apply_env();
            ::setenv("KRB5CCNAME", ccache.c_str(), 1);
            auth = {"--auth", "kerberos", "--keytab", keytab.string()};
        } else {
            auto r = run({std::string(WEC_SOURCE_DIR) + "/tests/integration/make_test_pki.sh",
                          (dir.path() / "pki").string(), kHost});
            if (r.exit_code != 0) throw std::runtime_error("make_test_pki.sh: " + r.output);
            std::string cert = t == Transport::TlsRsa ? "server-rsa" : "server";
            auth = {"--auth", "tls",
                    "--cert", pki(cert + ".pem").string(),
                    "--key",  pki(cert + ".key").string(),
                    "--ca",   pki("root.pem").string(),
                    "--ca",   pki("issuing.pem").string()};
            tls_context = client::make_tls_context(tls_options());
        }
        if (a.postgres) {
            pg.emplace(PostgresServer::Options{true}); // fsync on: commits cost what they cost
            db = pg->url(pg->create_database());
        } else {
            db = "sqlite:" + ((a.db_dir.empty() ? dir.path() : fs::path(a.db_dir)) /
                              ("wec-bench-" + std::to_string(::getpid()) + ".db"))
                                 .string();
        }
        sink = make_sink(a.output, dir.path());
        auto sub = dir.path() / "security.toml";
        std::ofstream(sub) << "name = \"security\"\n"
                           << "query = '<QueryList><Query Id=\"0\"><Select "
                              "Path=\"Security\">*</Select></Query></QueryList>'\n"
                           << "content_format = \"RenderedText\"\n"
                           << sink->output_toml();
        auto r = run({wec_exe(), "sub", "apply", sub.string(), "--db", db});
        if (r.exit_code != 0) throw std::runtime_error("wec sub apply: " + r.output);
        auto cfg = dir.path() / "wec.toml";
        {
            std::ofstream c(cfg);
            c << "log_level = \"info\"\n";
            if (!a.io_threads.empty()) c << "io_threads = " << a.io_threads << "\n";
            if (!a.worker_threads.empty()) c << "worker_threads = " << a.worker_threads << "\n";
            if (!a.handler_threads.empty())
                c << "handler_threads = \"" << a.handler_threads << "\"\n";
            if (!a.sync_interval_ms.empty())
                c << "bookmark_sync_interval_ms = " << a.sync_interval_ms << "\n";
            c << "[limits]\nidle_timeout = 600\nmax_connections = 20000\n";
            // Behind the balancer, NotifyTo names its port (the listener's address, auth and
            // keys come from the command line).
            if (a.nodes > 1) c << "[[listeners]]\npublic_port = " << port_for_sources() << "\n";
        }
        for (std::size_t n = 0; n < std::max<std::size_t>(a.nodes, 1); ++n) {
            int node_port = n == 0 && a.nodes <= 1 ? port_for_sources() : free_port();
            node_ports.push_back(node_port);
            std::vector<std::string> argv{wec_exe(),  "serve",
                                          "--config", cfg.string(),
                                          "--listen", "127.0.0.1:" + std::to_string(node_port)};
            argv.insert(argv.end(), auth.begin(), auth.end());
            argv.insert(argv.end(), {"--hostname", kHost, "--db", db});
            if (a.nodes > 1)
                argv.insert(argv.end(),
                            {"--proxy-protocol", "--node-name", "n" + std::to_string(n + 1)});
            auto node = std::make_unique<Process>(
                argv, realm ? realm->env() : std::map<std::string, std::string>{},
                dir.path() / ("serve-" + std::to_string(n + 1) + ".log"));
            if (!node->wait_for_output("wec serve started", 20s))
                throw std::runtime_error("wec serve did not start:\n" + node->output());
            if (n == 0)
                server = std::move(node);
            else
                extra_nodes.push_back(std::move(node));
        }
        if (a.nodes > 1) start_haproxy();
    }

    std::vector<int> node_ports;
    int port_for_sources() {
        if (port == 0) port = free_port();
        return port;
    }

    void start_haproxy() {
        auto cfg = dir.path() / "haproxy.cfg";
        std::ofstream c(cfg);
        c << "global\n  maxconn 8000\ndefaults\n  mode tcp\n  timeout connect 5s\n"
          << "  timeout client 600s\n  timeout server 600s\nfrontend wef\n  bind 127.0.0.1:" << port
          << "\n  default_backend nodes\nbackend nodes\n  balance roundrobin\n";
        for (std::size_t n = 0; n < node_ports.size(); ++n)
            c << "  server n" << n + 1 << " 127.0.0.1:" << node_ports[n] << " send-proxy-v2\n";
        c.close();
        haproxy = std::make_unique<Process>(
            std::vector<std::string>{"/usr/sbin/haproxy", "-f", cfg.string(), "-db"},
            std::map<std::string, std::string>{}, dir.path() / "haproxy.log");
        for (int i = 0; i < 400 && !accepts_connections(port); ++i)
            std::this_thread::sleep_for(25ms);
        if (accepts_connections(port)) return;
        throw std::runtime_error("haproxy did not start:\n" + haproxy->output());
    }

    // Every node's process ids (CPU is summed over them).
    std::vector<int> pids() const {
        std::vector<int> out{server->pid()};
        for (const auto& n : extra_nodes)
            out.push_back(n->pid());
        return out;
    }

    ~Setup() {
        haproxy.reset();
        extra_nodes.clear();
        server.reset(); // stopped by PID
        if (pg) return;
        auto path = db.substr(7);
        for (const char* suffix : {"", "-wal", "-shm"}) {
            std::error_code ec;
            fs::remove(path + suffix, ec);
        }
    }

    client::TlsOptions tls_options() const {
        client::TlsOptions t;
        t.cert_file = pki(kTlsClient + ".pem").string();
        t.key_file = pki(kTlsClient + ".key").string();
        t.ca_file = pki("root.pem").string();
        t.server_name = kHost;
        return t;
    }

    bool tls() const { return transport != Transport::Kerberos; }

    client::SourceOptions source() const {
        client::SourceOptions o;
        if (tls()) {
            o.manager = client::Url::parse("https://127.0.0.1:" + std::to_string(port) + "/wsman/");
            o.tls = tls_options();
            o.tls_context = tls_context;
        } else {
            o.manager = client::Url::parse("http://127.0.0.1:" + std::to_string(port) +
                                           "/wsman/SubscriptionManager/WEC");
            o.service = "HTTP@" + kHost;
            o.ccache = ccache;
        }
        o.timeout = 60s;
        return o;
    }

    // Options of one NotifyTo connection opened directly (connections scenario).
    client::ConnectionOptions connection(const client::Url& url) const {
        client::ConnectionOptions co;
        co.host = url.host;
        co.port = url.port;
        co.sldc_header = true;
        co.timeout = 120s;
        if (tls()) {
            co.tls = true;
            co.tls_options = tls_options();
            co.tls_context = tls_context;
        } else {
            co.service = "HTTP@" + kHost;
            co.ccache = ccache;
        }
        return co;
    }

    // How many handshakes the server refused (its log says "TLS handshake failed").
    std::size_t refused_handshakes() const {
        auto log = server->output();
        std::size_t n = 0;
        for (auto p = log.find("TLS handshake failed"); p != std::string::npos;
             p = log.find("TLS handshake failed", p + 1))
            ++n;
        return n;
    }
};

int ingest(const Args& a, Transport t) {
    Setup s(a, t);
    int pid = s.server->pid();
    std::string compression = "uncompressed";
    if (a.compress) {
        compression = "SLDC " + sldc::level_name(a.level);
        compression += a.precompressed ? " (" + std::to_string(a.precompressed) +
                                             " batches per host compressed beforehand, sealed "
                                             "per request)"
                                       : " compressed live per batch";
    }
    std::printf("== ingest: %llu events, batch %zu, %zu hosts, %zu client threads, %s, %s, json "
                "to %s\n",
                static_cast<unsigned long long>(a.events), a.batch, a.hosts, a.threads,
                compression.c_str(), describe(t), a.output.c_str());
    client::LoadOptions lo;
    lo.source = s.source();
    lo.source.compress = a.compress;
    lo.subscription = "security";
    lo.events = a.events;
    lo.batch = a.batch;
    lo.hosts = a.hosts;
    lo.threads = a.threads;
    lo.precompressed = a.compress ? a.precompressed : 0;
    lo.level = a.level;
    auto nodes_cpu = [&s] {
        double total = 0;
        for (int p : s.pids())
            total += cpu_seconds(p);
        return total;
    };
    long rss_before = rss_kb_of(pid);
    double server_cpu0 = nodes_cpu(), client_cpu0 = self_cpu_seconds();
    const double machine0 = machine_busy_seconds();
    const double balancer0 = s.haproxy ? cpu_seconds(s.haproxy->pid()) : 0;
    client::LoadResult r;
    long peak = 0;
    {
        RssSampler sampler(pid);
        r = client::run_load(lo);
        peak = sampler.peak();
    }
    double server_cpu = nodes_cpu() - server_cpu0, client_cpu = self_cpu_seconds() - client_cpu0;
    const double machine = machine_busy_seconds() - machine0;
    const double balancer = s.haproxy ? cpu_seconds(s.haproxy->pid()) - balancer0 : 0;
    std::size_t written = s.sink->lines();
    std::printf("events acked      %llu (%llu batches ok, %llu failed); %zu lines written\n",
                static_cast<unsigned long long>(r.events_acked),
                static_cast<unsigned long long>(r.batches_ok),
                static_cast<unsigned long long>(r.batches_failed), written);
    std::printf("throughput        %.0f events/s (%.2f s; %.1f MB/s of UTF-16 SOAP)\n",
                r.events_per_second, r.seconds,
                r.seconds > 0 ? static_cast<double>(r.bytes_sent_soap) / r.seconds / 1e6 : 0.0);
    std::printf("Ack latency       p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", r.p50_ms, r.p99_ms,
                r.max_ms);
    std::printf("server RSS        %ld MB before, %ld MB peak, %ld MB after\n", rss_before / 1024,
                peak / 1024, rss_kb_of(pid) / 1024);
    std::printf("CPU               server %.1f s, client %.1f s (of %.1f s x 2 cores)\n",
                server_cpu, client_cpu, r.seconds);
    // Per event acked, in microseconds (the lines below are printed only when some were).
    const auto per_event = [&r](double seconds) {
        return seconds / static_cast<double>(r.events_acked) * 1e6;
    };
    if (r.events_acked > 0) {
        // Issue 15's figure: the collector's CPU (user + sys) per event acked, per transport.
        std::printf("CPU per event     server %.2f us, client %.2f us\n", per_event(server_cpu),
                    per_event(client_cpu));
        // What else the run cost the machine: the KDC, PostgreSQL, haproxy, a receiver's
        // process, the kernel's own threads (softirq work on a core no process of ours ran on),
        // anything else running. Only meaningful on an otherwise idle machine.
        std::printf("machine CPU       %.1f s busy; %.2f us per event besides server and client\n",
                    machine, per_event(std::max(0.0, machine - server_cpu - client_cpu)));
        if (s.haproxy)
            std::printf("balancer CPU      haproxy %.1f s, %.2f us per event\n", balancer,
                        per_event(balancer));
        // Where the client's CPU went (its sending threads, by phase): set-up (Kerberos/TLS, the
        // event pool), compressing the cycled batches, the timed send loop.
        std::printf("client by phase   set-up %.2f s, precompressing %.2f s, send loop %.2f s "
                    "(%.2f us per event)\n",
                    r.setup_cpu_seconds, r.prepare_cpu_seconds, r.send_cpu_seconds,
                    per_event(r.send_cpu_seconds));
    }
    if (!r.setup_error.empty()) std::printf("setup error       %s\n", r.setup_error.c_str());
    for (const auto& e : r.errors)
        std::printf("error             %s\n", e.c_str());
    return r.batches_failed == 0 ? 0 : 1;
}

// The load generator of the CLI: `wec replay` (generated events, Kerberos AES256, SLDC) against
// the collector, its CPU measured from the child's rusage (events/s per core of the generator).
int replay(const Args& a) {
    Setup s(a, Transport::Kerberos);
    const std::string url = "http://127.0.0.1:" + std::to_string(s.port_for_sources()) +
                            "/wsman/SubscriptionManager/WEC";
    std::vector<std::string> args{wec_exe(),        "replay",
                                  "--url",          url,
                                  "--service",      "HTTP@" + kHost,
                                  "--subscription", "security",
                                  "--events",       std::to_string(a.replay_events),
                                  "--batch",        std::to_string(a.batch),
                                  "--hosts",        std::to_string(a.hosts),
                                  "--connections",  std::to_string(a.threads)};
    if (!a.compress) args.emplace_back("--no-compress");
    if (a.replay_precompress) args.emplace_back("--precompress");
    std::printf("== replay: wec replay, %llu events, batch %zu, %zu hosts, %zu connections, %s%s\n",
                static_cast<unsigned long long>(a.replay_events), a.batch, a.hosts, a.threads,
                a.compress ? "SLDC" : "uncompressed",
                a.replay_precompress ? ", --precompress" : "");
    std::fflush(stdout);
    std::vector<char*> argv;
    for (auto& x : args)
        argv.push_back(x.data());
    argv.push_back(nullptr);
    const double server_cpu0 = cpu_seconds(s.server->pid());
    const auto t0 = std::chrono::steady_clock::now();
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        ::execv(argv[0], argv.data());
        std::_Exit(127);
    }
    int status = 0;
    rusage ru{};
    ::wait4(pid, &status, 0, &ru);
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double server_cpu = cpu_seconds(s.server->pid()) - server_cpu0;
    const double gen_cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    const double events = static_cast<double>(a.replay_events);
    std::printf("exit              %d; %zu lines written\n",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1, s.sink->lines());
    std::printf("throughput        %.0f events/s (%.2f s, process start to exit)\n", events / wall,
                wall);
    std::printf("generator CPU     %.2f s: %.0f events/s per core, %.1f us per event\n", gen_cpu,
                gen_cpu > 0 ? events / gen_cpu : 0.0, gen_cpu / events * 1e6);
    std::printf("server CPU        %.2f s: %.1f us per event\n", server_cpu,
                server_cpu / events * 1e6);
    std::printf("generator RSS     %.1f MB peak\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int connections(const Args& a, Transport t) {
    Setup s(a, t);
    int pid = s.server->pid();
    std::size_t count = s.tls() ? a.tls_connections : a.connections;
    std::printf("== connections: %zu concurrent authenticated keep-alive connections (async "
                "client, 1 thread), %s%s\n",
                count, describe(t),
                s.tls() ? "; full handshakes (no resumption), client certificate verified "
                          "against root + issuing CA"
                        : "");
    client::Source source(s.source());
    auto subs = source.enumerate();
    source.end();
    if (subs.empty()) throw std::runtime_error("no subscription offered");
    auto sub = subs.front();
    auto url = source.push_url(sub);
    long rss_before = rss_kb_of(pid);

    asio::io_context ioc(1);
    std::vector<std::unique_ptr<client::AsyncConnection>> conns;
    std::atomic<std::size_t> connected{0}, failed{0}, acked{0};
    std::string first_error;
    auto co = s.connection(url);
    for (std::size_t i = 0; i < count; ++i)
        conns.push_back(std::make_unique<client::AsyncConnection>(ioc.get_executor(), co));

    // Opens connections with at most `window` handshakes in flight.
    constexpr std::size_t window = 64;
    std::size_t next = 0;
    auto start = std::chrono::steady_clock::now();
    double server_cpu0 = cpu_seconds(pid), client_cpu0 = self_cpu_seconds();
    std::function<void()> launch = [&] {
        while (next < conns.size() && next - connected - failed < window) {
            auto* c = conns[next++].get();
            asio::co_spawn(ioc, c->connect(url.target), [&](std::exception_ptr e) {
                if (e) {
                    if (failed++ == 0) {
                        try {
                            std::rethrow_exception(e);
                        } catch (const std::exception& x) {
                            first_error = x.what();
                        }
                    }
                } else {
                    ++connected;
                }
                launch();
            });
        }
    };
    launch();
    ioc.run();
    double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double server_cpu = cpu_seconds(pid) - server_cpu0,
           client_cpu = self_cpu_seconds() - client_cpu0;
    std::this_thread::sleep_for(500ms);
    long rss_open = rss_kb_of(pid);
    std::printf("connected         %zu ok, %zu failed in %.1f s (%.0f handshakes/s)%s%s\n",
                connected.load(), failed.load(), open_s, static_cast<double>(connected) / open_s,
                first_error.empty() ? "" : "; ", first_error.c_str());
    if (connected > 0)
        std::printf("CPU per handshake server %.0f us, client %.0f us (server %.1f s, client %.1f "
                    "s)\n",
                    server_cpu / static_cast<double>(connected) * 1e6,
                    client_cpu / static_cast<double>(connected) * 1e6, server_cpu, client_cpu);
    std::printf(
        "server RSS        %ld MB before, %ld MB with %zu connections open (%.1f KB/connection)\n",
        rss_before / 1024, rss_open / 1024, connected.load(),
        connected ? static_cast<double>(rss_open - rss_before) / static_cast<double>(connected)
                  : 0.0);

    // One Heartbeat on every connection: all still alive and authenticated (keep-alive).
    ioc.restart();
    start = std::chrono::steady_clock::now();
    std::size_t hb_failed = 0;
    std::size_t hb_next = 0, hb_done = 0;
    std::function<void()> beat = [&] {
        while (hb_next < conns.size() && hb_next - hb_done < window) {
            auto* c = conns[hb_next++].get();
            if (!c->authenticated()) {
                ++hb_done;
                continue;
            }
            auto h = source.headers_for(sub);
            std::string id = h.message_id;
            asio::co_spawn(ioc, c->post(url.target, wec::wsman::build_heartbeat(h), true),
                           [&, id](std::exception_ptr e, client::Response r) {
                               ++hb_done;
                               if (!e && r.status == 200 && r.message &&
                                   r.message->relates_to == id)
                                   ++acked;
                               else
                                   ++hb_failed;
                               beat();
                           });
        }
    };
    beat();
    ioc.run();
    double hb_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    long rss_hb = rss_kb_of(pid);
    std::printf("heartbeats        %zu acked, %zu failed in %.1f s\n", acked.load(), hb_failed,
                hb_s);
    std::printf(
        "server RSS        %ld MB after one Heartbeat on each connection (%.1f KB/connection "
        "idle after a request)\n",
        rss_hb / 1024,
        acked ? static_cast<double>(rss_hb - rss_before) / static_cast<double>(acked.load()) : 0.0);
    std::size_t refused = s.tls() ? s.refused_handshakes() : 0;
    if (s.tls()) std::printf("refused           %zu handshakes (server log)\n", refused);
    conns.clear();
    return failed == 0 && hb_failed == 0 && refused == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--events")
            a.events = std::stoull(value());
        else if (arg == "--batch")
            a.batch = std::stoul(value());
        else if (arg == "--hosts")
            a.hosts = std::stoul(value());
        else if (arg == "--threads")
            a.threads = std::stoul(value());
        else if (arg == "--connections")
            a.connections = std::stoul(value());
        else if (arg == "--io-threads")
            a.io_threads = value();
        else if (arg == "--worker-threads")
            a.worker_threads = value();
        else if (arg == "--handler-threads")
            a.handler_threads = value();
        else if (arg == "--sync-interval-ms")
            a.sync_interval_ms = value();
        else if (arg == "--no-compress")
            a.compress = false;
        else if (arg == "--db-dir")
            a.db_dir = value();
        else if (arg == "--precompressed")
            a.precompressed = std::stoul(value());
        else if (arg == "--level") {
            const std::string level = value();
            const auto named = sldc::level_named(level);
            if (!named) {
                std::fprintf(stderr, "serve_bench: --level takes fast or best, not '%s'\n",
                             level.c_str());
                return 2;
            }
            a.level = *named;
        } else if (arg == "--skip-ingest")
            a.ingest = false;
        else if (arg == "--skip-connections")
            a.conns = false;
        else if (arg == "--tls-connections")
            a.tls_connections = std::stoul(value());
        else if (arg == "--skip-tls")
            a.tls = false;
        else if (arg == "--skip-kerberos")
            a.kerberos = false;
        else if (arg == "--no-rsa")
            a.rsa = false;
        else if (arg == "--output")
            a.output = value();
        else if (arg == "--postgres")
            a.postgres = true;
        else if (arg == "--nodes")
            a.nodes = std::stoul(value());
        else if (arg == "--replay")
            a.replay_events = std::stoull(value());
        else if (arg == "--replay-precompress")
            a.replay_precompress = true;
        else if (arg == "--enctypes")
            a.enctypes = value();
        else {
            std::fprintf(stderr,
                         "usage: serve_bench [--events N] [--batch N] [--hosts N] [--threads N] "
                         "[--connections N]\n"
                         "                   [--io-threads N] [--worker-threads N] "
                         "[--handler-threads auto|io|workers]\n"
                         "                   [--sync-interval-ms N] [--no-compress]\n"
                         "                   [--precompressed N (0: compress every batch live)] "
                         "[--level fast|best] [--db-dir DIR]\n"
                         "                   [--skip-ingest] [--skip-connections]\n"
                         "                   [--tls-connections N] [--skip-tls] [--skip-kerberos] "
                         "[--no-rsa]\n"
                         "                   [--output files|tcp|kafka|redis] [--postgres] "
                         "[--nodes N]\n"
                         "                   [--replay N (only: wec replay sends N events)] "
                         "[--replay-precompress]\n"
                         "                   [--enctypes \"E ...\" (the KDC issues only those)]\n");
            return 2;
        }
    }
    // Both this process (client sockets) and the server (inherits the limit) need many fds.
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (a.conns && rl.rlim_cur < a.connections + 256)
            std::fprintf(stderr,
                         "warning: RLIMIT_NOFILE is %llu, fewer than %zu connections will open\n",
                         static_cast<unsigned long long>(rl.rlim_cur), a.connections);
    }
    int rc = 0;
    try {
        print_host_speed();
        if (a.replay_events > 0) return replay(a);
        if (a.kerberos && a.ingest) rc |= ingest(a, Transport::Kerberos);
        if (a.kerberos && a.conns) rc |= connections(a, Transport::Kerberos);
        if (a.tls && a.conns) {
            rc |= connections(a, Transport::TlsEcdsa);
            if (a.rsa) rc |= connections(a, Transport::TlsRsa);
        }
        if (a.tls && a.ingest) rc |= ingest(a, Transport::TlsEcdsa);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "serve_bench: %s\n", e.what());
        return 3;
    }
    return rc;
}

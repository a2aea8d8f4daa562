// Two `wec serve` nodes behind a real haproxy (TCP mode, PROXY protocol v2, health checks), sharing
// one real PostgreSQL store, writing to one TCP input: Windows-like sources push through the
// balancer, both nodes serve them, one node is killed with SIGKILL mid-run, and the run completes
// through the other. Every event a source saw acknowledged is in the output (duplicates counted),
// and each source's bookmark in the shared store is its last acknowledged one.
#include "store/store.hpp"
#include "support/files.hpp"
#include "support/line_receiver.hpp"
#include "support/pki_suite.hpp"
#include "support/postgres_server.hpp"
#include "support/process.hpp"
#include "support/windows_sources.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <thread>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace client = wec::client;

const std::string kHost = "wec.windomain.local";
constexpr std::size_t kSources = 8;

std::string source_name(std::size_t i) {
    return "host-" + std::to_string(i + 1) + ".windomain.local";
}

class ServeCluster : public PkiSuite<> {
protected:
    static void SetUpTestSuite() {
        std::vector<std::string> clients;
        for (std::size_t i = 0; i < kSources; ++i)
            clients.push_back(source_name(i));
        make_pki(clients, kHost);
    }

    TempDir dir;
    PostgresServer& pg = PostgresServer::shared();
    std::string db;
    TcpLineReceiver input; // the SIEM's TCP input both nodes write to
    int front_port = free_port();
    int node_ports[2] = {free_port(), free_port()};
    std::unique_ptr<Process> nodes[2];
    std::unique_ptr<Process> haproxy;

    void SetUp() override {
        ASSERT_TRUE(fs::exists("/usr/sbin/haproxy"))
            << "haproxy is not installed (scripts/install-deps.sh installs it)";
        db = pg.url(pg.create_database());
        std::ofstream(dir.path() / "sub.toml")
            << "name = \"security\"\nquery = '<QueryList><Query Id=\"0\"><Select "
               "Path=\"Security\">*</Select></Query></QueryList>'\n[[outputs]]\ndriver = \"tcp\"\n"
            << "address = \"127.0.0.1:" << input.port() << "\"\nformat = \"json\"\n";
        auto r = run({WEC_EXE, "sub", "apply", (dir.path() / "sub.toml").string(), "--db", db});
        ASSERT_EQ(r.exit_code, 0) << r.output;
        for (int n = 0; n < 2; ++n)
            start_node(n);
        std::ofstream cfg(dir.path() / "haproxy.cfg");
        cfg << "global\n  maxconn 2000\ndefaults\n  mode tcp\n  timeout connect 2s\n"
            << "  timeout client 60s\n  timeout server 60s\nfrontend wef\n  bind 127.0.0.1:"
            << front_port << "\n  default_backend nodes\nbackend nodes\n  balance roundrobin\n";
        for (int n = 0; n < 2; ++n)
            cfg << "  server n" << n + 1 << " 127.0.0.1:" << node_ports[n]
                << " send-proxy-v2 check check-send-proxy inter 100ms fall 2 rise 2 "
                   "source 127.0.0.9\n";
        cfg.close();
        haproxy = std::make_unique<Process>(
            std::vector<std::string>{"/usr/sbin/haproxy", "-f",
                                     (dir.path() / "haproxy.cfg").string(), "-db"},
            std::map<std::string, std::string>{}, dir.path() / "haproxy.log");
        for (int i = 0; i < 200 && !accepts_connections(front_port); ++i)
            std::this_thread::sleep_for(25ms);
        ASSERT_TRUE(accepts_connections(front_port)) << haproxy->output();
    }
    void TearDown() override {
        if (HasFailure())
            for (int n = 0; n < 2; ++n) {
                auto text = slurp(log_of(n));
                if (text.size() > 3000) text = "..." + text.substr(text.size() - 3000);
                std::cerr << "---- node " << n + 1 << " ----\n" << text;
            }
        haproxy.reset();
        for (auto& n : nodes)
            n.reset();
    }

    fs::path log_of(int n) const { return dir.path() / ("node-" + std::to_string(n + 1) + ".log"); }

    // The same keytab/certificate, store and public address on every node: only the bound port
    // and the node name differ.
    void start_node(int n) {
        auto config = dir.path() / ("node-" + std::to_string(n + 1) + ".toml");
        std::ofstream(config) << "hostname = \"" << kHost << "\"\nnode_name = \"n" << n + 1
                              << "\"\ndb = \"" << db << "\"\n[[listeners]]\naddress = "
                              << "\"127.0.0.1:" << node_ports[n] << "\"\nauth = \"tls\"\ncert = \""
                              << pki("server.pem").string() << "\"\nkey = \""
                              << pki("server.key").string() << "\"\nca = [\""
                              << pki("root.pem").string() << "\", \"" << pki("issuing.pem").string()
                              << "\"]\nproxy_protocol = true\npublic_port = " << front_port << "\n";
        nodes[n] = std::make_unique<Process>(
            std::vector<std::string>{WEC_EXE, "serve", "--config", config.string()},
            std::map<std::string, std::string>{}, log_of(n));
        ASSERT_TRUE(nodes[n]->wait_for_output("wec serve started", 20s)) << nodes[n]->output();
    }

    client::SourceOptions source_options(std::size_t i) const {
        client::SourceOptions o;
        o.manager =
            client::Url::parse("https://127.0.0.1:" + std::to_string(front_port) + "/wsman/");
        o.tls.cert_file = pki(source_name(i) + ".pem").string();
        o.tls.key_file = pki(source_name(i) + ".key").string();
        o.tls.ca_file = pki("root.pem").string();
        o.tls.server_name = kHost;
        o.machine_id = source_name(i);
        o.compress = false;
        o.timeout = 10s;
        return o;
    }
};

TEST_F(ServeCluster, OneNodeKilledUnderLoadTheOtherCarriesOnAndNothingAckedIsLost) {
    SourceFleet fleet(
        kSources, [this](std::size_t i) { return source_options(i); },
        [](std::size_t i) { return 1000 + 7919 * (i + 1); }, std::chrono::milliseconds(5));
    auto wait_for_acks = [&](std::uint64_t more) { return fleet.wait_for_acks(more, 60s); };

    // Both nodes serve before the kill.
    ASSERT_TRUE(wait_for_acks(40 * kSources));
    for (int n = 0; n < 2; ++n)
        EXPECT_GT(count_of(slurp(log_of(n)), "action=Events status=200"), 0u)
            << "node " << n + 1 << " got no batch: the balancer did not spread the sources";

    ASSERT_TRUE(nodes[0]->signal(SIGKILL));
    EXPECT_EQ(nodes[0]->wait(10s), 128 + SIGKILL);
    const auto served_by_survivor = count_of(slurp(log_of(1)), "action=Events status=200");
    // The run goes on through the survivor alone.
    ASSERT_TRUE(wait_for_acks(60 * kSources)) << "the load did not resume on the other node";
    EXPECT_GT(count_of(slurp(log_of(1)), "action=Events status=200"), served_by_survivor);
    fleet.stop();
    const auto& logs = fleet.logs();
    nodes[1]->signal(SIGTERM);
    EXPECT_EQ(nodes[1]->wait(20s), 0);

    std::uint64_t torn = 0, duplicates = 0, acked_total = 0, resumes = 0;
    auto written_by = records_by_computer(input.lines(), torn);
    auto store = wec::store::open(db);
    const auto uuid = store->subscriptions().front().uuid;
    for (std::size_t i = 0; i < kSources; ++i) {
        SCOPED_TRACE(source_name(i));
        const auto& log = logs[i];
        ASSERT_FALSE(log.acked.empty());
        EXPECT_EQ(log.bookmark_behind, 0u);
        const auto& written = written_by[source_name(i)];
        std::uint64_t missing = 0;
        for (auto [first, last] : log.acked)
            for (auto r = first; r <= last; ++r, ++acked_total)
                missing += written.count(r) == 0;
        EXPECT_EQ(missing, 0u);
        for (auto [record, times] : written)
            duplicates += times - 1;
        resumes += log.resumes;
        auto stored = store->bookmark(source_name(i), uuid);
        ASSERT_TRUE(stored.has_value());
        EXPECT_EQ(check_stored_bookmark(bookmark_record(*stored), log, written), "")
            << log.committed_unacked << " resumes found their batch stored unacknowledged";
    }
    EXPECT_GT(resumes, 0u) << "no source was cut by the kill";
    std::cout << "cluster run: " << kSources << " sources, " << fleet.acked_batches()
              << " batches / " << acked_total << " events acknowledged, " << duplicates
              << " duplicates, " << torn << " torn lines, " << resumes
              << " resumes after the kill\n";
}

// A fleet: `wec replay` simulates 1,000 hosts (their own MachineIDs, 8 connections) through the
// balancer onto both nodes; every event it saw acknowledged reaches the TCP input exactly once.
TEST_F(ServeCluster, AThousandReplayedHostsThroughTheBalancer) {
    constexpr int kEvents = 20000;
    auto r = run({WEC_EXE,         "replay",
                  "--url",         "https://127.0.0.1:" + std::to_string(front_port) + "/wsman/",
                  "--cert",        pki(source_name(0) + ".pem").string(),
                  "--key",         pki(source_name(0) + ".key").string(),
                  "--cacert",      pki("root.pem").string(),
                  "--server-name", kHost,
                  "--events",      std::to_string(kEvents),
                  "--batch",       "20",
                  "--hosts",       "1000",
                  "--connections", "8",
                  "--json"},
                 {}, std::chrono::seconds(300));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto summary = nlohmann::json::parse(r.output.substr(r.output.find('{')), nullptr, false);
    ASSERT_TRUE(summary.is_object()) << r.output;
    EXPECT_EQ(summary["events_acked"], kEvents) << r.output;

    std::uint64_t torn = 0, events = 0, duplicates = 0;
    auto written_by = records_by_computer(input.lines(), torn);
    // (The generator numbers records per connection and names the computer after it; the 1,000
    // hosts differ by MachineID, so each event is identified by computer and record.)
    for (const auto& [computer, records] : written_by)
        for (auto [record, times] : records) {
            ++events;
            duplicates += times - 1;
        }
    EXPECT_EQ(events, static_cast<std::uint64_t>(kEvents));
    EXPECT_EQ(duplicates, 0u);
    EXPECT_EQ(torn, 0u);
    for (int n = 0; n < 2; ++n) {
        const auto log = slurp(log_of(n));
        EXPECT_GT(count_of(log, "action=Events status=200"), 0u)
            << "node " << n + 1 << " got no batch";
        // handler_threads = "auto" with a store across the network: requests on the workers.
        EXPECT_NE(log.find("workers handling requests"), std::string::npos) << log.substr(0, 2000);
    }
}

} // namespace

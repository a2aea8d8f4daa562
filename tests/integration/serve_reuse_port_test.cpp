// Issue 15: several `wec serve` processes on one port (listener option reuse_port, SO_REUSEPORT),
// sharing one SQLite store and one output file: the kernel spreads the sources' connections over
// both processes, both serve them, every acknowledged event is in the shared file exactly once,
// whole lines. With {node} in the files path each process writes files of its own, and every
// event is in exactly one of them. A process without the option cannot take a port another one
// holds (and the other way round): a clear error and exit code 2 (docs/exit-codes.md).
#include "client/client.hpp"
#include "support/files.hpp"
#include "support/pki_suite.hpp"
#include "support/process.hpp"
#include "support/subscription.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <set>
#include <unistd.h>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace client = wec::client;

const std::string kHost = "srv.windomain.local";
const std::string kSource = "win10.windomain.local";

class ServeReusePort : public PkiSuite<> {
protected:
    static void SetUpTestSuite() { make_pki({kSource}); }

    TempDir dir;
    int port = free_port();
    std::string db = "sqlite:" + (dir.path() / "wec.db").string();
    std::vector<std::unique_ptr<Process>> servers;
    bool with_node_name = true; // node_name = "p1", "p2", ... in the next process's config

    void SetUp() override {
        apply_subscription(dir.path() / "sub.toml",
                           security_subscription(dir.path() / "events" / "{client}.json"), db);
    }
    void TearDown() override {
        if (HasFailure())
            for (std::size_t n = 0; n < servers.size(); ++n)
                std::cerr << "---- process " << n + 1 << " ----\n" << slurp(log_of(n));
        servers.clear(); // stopped by PID
    }

    fs::path log_of(std::size_t n) const {
        return dir.path() / ("serve-" + std::to_string(n + 1) + ".log");
    }

    // The listener in a config file; reuse_port there (`in_file`) or on the command line.
    std::vector<std::string> argv(std::size_t n, bool reuse_port, bool in_file) const {
        auto config = dir.path() / ("serve-" + std::to_string(n + 1) + ".toml");
        std::ofstream(config) << "hostname = \"" << kHost << "\"\n"
                              << (with_node_name
                                      ? "node_name = \"p" + std::to_string(n + 1) + "\"\n"
                                      : std::string())
                              << "db = \"" << db << "\"\n[[listeners]]\naddress = "
                              << "\"127.0.0.1:" << port << "\"\nauth = \"tls\"\ncert = \""
                              << pki("server.pem").string() << "\"\nkey = \""
                              << pki("server.key").string() << "\"\nca = [\""
                              << pki("root.pem").string() << "\", \"" << pki("issuing.pem").string()
                              << "\"]\n"
                              << (reuse_port && in_file ? "reuse_port = true\n" : "");
        std::vector<std::string> args{WEC_EXE, "serve", "--config", config.string()};
        if (reuse_port && !in_file) args.emplace_back("--reuse-port");
        return args;
    }

    void start(bool reuse_port, bool in_file) {
        auto n = servers.size();
        servers.push_back(std::make_unique<Process>(
            argv(n, reuse_port, in_file), std::map<std::string, std::string>{}, log_of(n)));
        ASSERT_TRUE(servers.back()->wait_for_output("wec serve started", 20s))
            << servers.back()->output();
    }

    // 40 sources, one after the other, each on new connections (new source ports: the kernel
    // hashes the 4-tuple to pick a process), each sending 5 batches of 4 events. Returns the
    // EventRecordIDs sent (every batch acknowledged).
    static constexpr int kRuns = 40, kBatches = 5, kEvents = 4;
    std::set<std::string> send_all() const {
        std::set<std::string> sent;
        for (int s = 0; s < kRuns; ++s) {
            client::Source source(source_options());
            auto subs = source.enumerate();
            source.end();
            EXPECT_EQ(subs.size(), 1u);
            if (subs.size() != 1) break;
            client::EventGenerator gen(kSource, static_cast<std::uint64_t>(s + 1),
                                       1000 + static_cast<std::uint64_t>(s) * 100);
            for (int b = 0; b < kBatches; ++b) {
                std::vector<std::string> events;
                for (int i = 0; i < kEvents; ++i) {
                    events.push_back(gen.next());
                    sent.insert(std::to_string(gen.last_record()));
                }
                source.send_events(subs[0], events, gen.bookmark());
            }
        }
        return sent;
    }

    // The batches each process acknowledged (its request log); each served some.
    std::vector<std::size_t> batches_served() const {
        std::vector<std::size_t> served;
        for (std::size_t n = 0; n < servers.size(); ++n) {
            served.push_back(count_of(slurp(log_of(n)), "action=Events status=200"));
            EXPECT_GT(served.back(), 0u) << "process " << n + 1 << " served no batch";
        }
        return served;
    }

    // Appends the EventRecordID of each line of a JSON events file to `ids`; every line whole.
    static void record_ids(const fs::path& file, std::multiset<std::string>& ids) {
        for (const auto& line : lines_of(slurp(file))) {
            ASSERT_TRUE(line.starts_with("{") && line.ends_with("}")) << line;
            auto at = line.find("\"EventRecordID\":");
            ASSERT_NE(at, std::string::npos) << line;
            auto value = line.substr(at + 16);
            ids.insert(value.substr(0, value.find_first_not_of("0123456789")));
        }
    }

    void stop_all() {
        for (auto& s : servers) {
            ASSERT_TRUE(s->signal(SIGTERM));
            EXPECT_EQ(s->wait(20s), 0);
        }
    }

    client::SourceOptions source_options() const {
        client::SourceOptions o;
        o.manager = client::Url::parse("https://127.0.0.1:" + std::to_string(port) + "/wsman/");
        o.tls.cert_file = pki(kSource + ".pem").string();
        o.tls.key_file = pki(kSource + ".key").string();
        o.tls.ca_file = pki("root.pem").string();
        o.tls.server_name = kHost;
        o.machine_id = kSource;
        o.timeout = 10s;
        return o;
    }
};

TEST_F(ServeReusePort, TwoProcessesShareOnePortAndBothServeSources) {
    ASSERT_NO_FATAL_FAILURE(start(true, true));  // reuse_port = true in the file
    ASSERT_NO_FATAL_FAILURE(start(true, false)); // --reuse-port
    EXPECT_NE(slurp(log_of(0)).find("reuse_port"), std::string::npos) << "summary line";

    auto sent = send_all();
    ASSERT_EQ(sent.size(), static_cast<std::size_t>(kRuns * kBatches * kEvents));
    auto served = batches_served();
    ASSERT_EQ(served.size(), 2u);
    EXPECT_EQ(served[0] + served[1], static_cast<std::size_t>(kRuns * kBatches));
    std::cout << "batches served: " << served[0] << " + " << served[1] << "\n";

    // Both processes appended to the one file of this client: every event once, whole lines.
    std::multiset<std::string> written;
    ASSERT_NO_FATAL_FAILURE(record_ids(dir.path() / "events" / (kSource + ".json"), written));
    ASSERT_EQ(written.size(), sent.size());
    EXPECT_EQ(std::set<std::string>(written.begin(), written.end()), sent);

    ASSERT_NO_FATAL_FAILURE(stop_all()); // both stop cleanly
}

// With {node} in the path (node_name "p1" and "p2"), the two processes never share a file: each
// writes what it acknowledged to its own, and every event is in exactly one of them.
TEST_F(ServeReusePort, NodeInTheFilesPathGivesEachProcessItsOwnFiles) {
    apply_subscription(dir.path() / "sub.toml",
                       security_subscription(dir.path() / "events" / "{node}" / "{client}.json"),
                       db);
    ASSERT_NO_FATAL_FAILURE(start(true, true));
    ASSERT_NO_FATAL_FAILURE(start(true, false));

    auto sent = send_all();
    ASSERT_EQ(sent.size(), static_cast<std::size_t>(kRuns * kBatches * kEvents));
    auto served = batches_served();
    ASSERT_EQ(served.size(), 2u);
    EXPECT_EQ(served[0] + served[1], static_cast<std::size_t>(kRuns * kBatches));

    std::multiset<std::string> all;
    for (std::size_t n = 0; n < 2; ++n) {
        auto file = dir.path() / "events" / ("p" + std::to_string(n + 1)) / (kSource + ".json");
        std::multiset<std::string> ids;
        ASSERT_NO_FATAL_FAILURE(record_ids(file, ids));
        // Each process's file holds exactly the batches that process acknowledged.
        EXPECT_EQ(ids.size(), served[n] * kEvents) << file;
        all.insert(ids.begin(), ids.end());
    }
    EXPECT_EQ(all.size(), sent.size()); // no event twice
    EXPECT_EQ(std::set<std::string>(all.begin(), all.end()), sent);
    EXPECT_FALSE(fs::exists(dir.path() / "events" / (kSource + ".json")));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir.path() / "events"), {}), 2);

    ASSERT_NO_FATAL_FAILURE(stop_all());
}

// The summary names the node; sharing a port on the default node name (the host name) is the
// hazard above, so it is warned about.
TEST_F(ServeReusePort, WithoutANodeNameTheHostNameIsTheNodeAndSharingThePortIsWarnedAbout) {
    with_node_name = false;
    ASSERT_NO_FATAL_FAILURE(start(true, true));
    with_node_name = true;
    ASSERT_NO_FATAL_FAILURE(start(true, false));
    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    auto first = slurp(log_of(0));
    EXPECT_NE(first.find("node: " + std::string(host) + " (the host name: no node_name set)"),
              std::string::npos)
        << first;
    EXPECT_NE(first.find("reuse_port without node_name: every process on this port is node '" +
                         std::string(host) + "'"),
              std::string::npos)
        << first;
    auto second = slurp(log_of(1));
    EXPECT_NE(second.find("node: p2\n"), std::string::npos) << second;
    EXPECT_EQ(second.find("without node_name"), std::string::npos) << second;
    ASSERT_NO_FATAL_FAILURE(stop_all());
}

TEST_F(ServeReusePort, AProcessWithoutTheOptionCannotShareThePort) {
    ASSERT_NO_FATAL_FAILURE(start(true, false));
    auto r = run(argv(1, false, false), {}, 30s);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("cannot listen on 127.0.0.1:" + std::to_string(port) +
                            ": Address already in use"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("every process needs reuse_port = true"), std::string::npos)
        << r.output;
    // The first process still serves.
    client::Source source(source_options());
    EXPECT_EQ(source.enumerate().size(), 1u);
}

TEST_F(ServeReusePort, TheOptionCannotTakeAPortHeldWithoutIt) {
    ASSERT_NO_FATAL_FAILURE(start(false, false));
    auto r = run(argv(1, true, false), {}, 30s);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("Address already in use (another process holds it without "
                            "reuse_port"),
              std::string::npos)
        << r.output;
}

} // namespace

// `wec serve --metrics` end to end (docs/metrics.md): the real binary with an HTTPS listener (a PKI
// made with the openssl CLI), lib/client as the Windows source, curl as the scraper. The counters
// move by exactly what was sent; /readyz follows the state store (503 while another program has
// broken it, 200 once it is repaired) while /healthz stays 200; the scrape passes
// `promtool check metrics` (Debian `prometheus`), and so do the queries of the Grafana dashboard.
#include "client/client.hpp"
#include "common/handle.hpp"
#include "support/files.hpp"
#include "support/pki_suite.hpp"
#include "support/process.hpp"
#include "support/subscription.hpp"

#include <algorithm>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sqlite3.h>
#include <thread>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace client = wec::client;

const std::string kHost = "srv.windomain.local";
const std::string kClient = "win10.windomain.local";

using DbPtr = wec::Handle<sqlite3, ::sqlite3_close>;

// SQL on the collector's database from another connection, as another program would run it.
std::string exec_other(const fs::path& path, const std::string& sql) {
    sqlite3* raw = nullptr;
    int rc = sqlite3_open(path.c_str(), &raw);
    DbPtr db(raw);
    if (rc != SQLITE_OK) return "cannot open " + path.string();
    sqlite3_busy_timeout(raw, 5000);
    char* error = nullptr;
    rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &error);
    std::string message = rc == SQLITE_OK ? "" : (error ? error : sqlite3_errstr(rc));
    sqlite3_free(error);
    return message;
}

struct Get {
    int status = 0;
    std::string body;
    std::string error; // curl's output when it failed
};

// The parsed samples of a scrape: "name{labels}" exactly as written -> value.
using Samples = std::map<std::string, double>;

Samples parse_samples(const std::string& text) {
    Samples out;
    for (const auto& line : lines_of(text)) {
        if (line.empty() || line[0] == '#') continue;
        auto space = line.rfind(' ');
        if (space == std::string::npos) {
            ADD_FAILURE() << "not a sample line: " << line;
            continue;
        }
        out[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
    return out;
}

class ServeMetrics : public PkiSuite<> {
protected:
    TempDir dir;
    fs::path db_file = dir.path() / "wec.db";
    fs::path events_template = dir.path() / "events" / "{client}.json";
    int port = 0;
    int metrics_port = 0;
    std::unique_ptr<Process> server;

    void SetUp() override {
        apply_subscription(dir.path() / "sub.toml", security_subscription(events_template),
                           "sqlite:" + db_file.string());
        port = free_port();
        metrics_port = free_port();
        server = std::make_unique<Process>(
            std::vector<std::string>{WEC_EXE,      "serve",
                                     "--listen",   "127.0.0.1:" + std::to_string(port),
                                     "--auth",     "tls",
                                     "--cert",     pki("server.pem").string(),
                                     "--key",      pki("server.key").string(),
                                     "--ca",       pki("root.pem").string(),
                                     "--ca",       pki("issuing.pem").string(),
                                     "--hostname", kHost,
                                     "--db",       "sqlite:" + db_file.string(),
                                     "--metrics",  "127.0.0.1:" + std::to_string(metrics_port)},
            std::map<std::string, std::string>{}, dir.path() / "serve.log");
        ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    }

    void TearDown() override {
        if (server && HasFailure()) std::cerr << "---- wec serve log ----\n" << server->output();
    }

    // A request to the metrics listener with curl (an independent HTTP client).
    Get get(const std::string& path, const std::string& method = "GET") {
        static int n = 0;
        auto out = dir.path() / ("get" + std::to_string(++n));
        auto r = run({"curl", "-sS", "--max-time", "20", "-X", method, "-o", out.string(), "-w",
                      "%{http_code}", "http://127.0.0.1:" + std::to_string(metrics_port) + path});
        Get g;
        if (r.exit_code != 0 || r.output.size() < 3) {
            g.error = r.output;
            return g;
        }
        g.status = std::stoi(r.output.substr(r.output.size() - 3));
        g.body = slurp(out);
        return g;
    }

    Samples scrape() {
        auto g = get("/metrics");
        EXPECT_EQ(g.status, 200) << g.error << g.body;
        return parse_samples(g.body);
    }

    client::SourceOptions source_options() const {
        client::SourceOptions o;
        o.manager = client::Url::parse("https://127.0.0.1:" + std::to_string(port) + "/wsman/");
        o.tls.cert_file = pki(kClient + ".pem").string();
        o.tls.key_file = pki(kClient + ".key").string();
        o.tls.ca_file = pki("root.pem").string();
        o.tls.server_name = kHost;
        o.machine_id = kClient;
        o.compress = true; // SLDC: bytes after decompression exceed bytes on the wire
        o.timeout = 15s;
        return o;
    }

    // Polls /readyz until it answers `status` (the collector looks at its store every second,
    // backing off to 5 s while it fails); the last answer.
    Get wait_ready(int status) {
        Get g;
        for (int i = 0; i < 150; ++i) {
            g = get("/readyz");
            if (g.status == status) break;
            std::this_thread::sleep_for(200ms);
        }
        return g;
    }
};

TEST_F(ServeMetrics, CountersMoveByExactlyWhatWasSent) {
    EXPECT_EQ(get("/healthz").body, "ok\n");
    auto ready = get("/readyz");
    EXPECT_EQ(ready.status, 200) << ready.body;

    const std::string sub = R"({subscription="security"})";
    const std::string output = "files:" + events_template.string();
    const std::string per_output = "{subscription=\"security\",output=\"" + output + "\"}";
    auto refused = [&](const std::string& reason) {
        return "wec_batches_refused_total{subscription=\"security\",output=\"" + output +
               "\",reason=\"" + reason + "\"}";
    };

    auto before = scrape();
    // Counters of a loaded subscription exist from the start, at zero.
    EXPECT_EQ(before.at("wec_events_received_total" + sub), 0);
    EXPECT_EQ(before.at("wec_events_written_total" + per_output), 0);
    EXPECT_EQ(before.at("wec_hosts{subscription=\"security\",state=\"active\"}"), 0);
    EXPECT_EQ(before.at("wec_request_duration_seconds_count"), 0);

    constexpr std::size_t kBatches = 3, kPerBatch = 7;
    {
        client::Source source(source_options());
        auto subs = source.enumerate();
        source.end();
        ASSERT_EQ(subs.size(), 1u);
        source.heartbeat(subs[0]);
        client::EventGenerator gen(kClient, 1, 5000);
        for (std::size_t b = 0; b < kBatches; ++b) {
            std::vector<std::string> events;
            for (std::size_t i = 0; i < kPerBatch; ++i)
                events.push_back(gen.next());
            source.send_events(subs[0], events, gen.bookmark());
        }
    }
    auto after = scrape();

    EXPECT_EQ(after.at("wec_events_received_total" + sub), kBatches * kPerBatch);
    EXPECT_EQ(after.at("wec_events_written_total" + per_output), kBatches * kPerBatch);
    EXPECT_EQ(after.at(refused("failed")), 0);
    EXPECT_EQ(after.at(refused("queue_full")), 0);
    EXPECT_EQ(after.at("wec_output_queue_depth" + per_output), 0);
    EXPECT_EQ(after.at("wec_output_queue_capacity" + per_output), 64);
    EXPECT_EQ(lines_of(slurp(dir.path() / "events" / (kClient + ".json"))).size(),
              kBatches * kPerBatch);

    // Enumerate + End on the manager URL, one Heartbeat, three Events; nothing else.
    std::map<std::string, double> requests;
    double total = 0;
    for (const auto& [series, value] : after)
        if (series.rfind("wec_requests_total{", 0) == 0) {
            requests[series] = value;
            total += value;
        }
    EXPECT_EQ(requests, (std::map<std::string, double>{
                            {R"(wec_requests_total{action="End",status="204"})", 1},
                            {R"(wec_requests_total{action="Enumerate",status="200"})", 1},
                            {R"(wec_requests_total{action="Events",status="200"})", kBatches},
                            {R"(wec_requests_total{action="Heartbeat",status="200"})", 1}}));
    EXPECT_EQ(after.at("wec_request_duration_seconds_count"), total);
    EXPECT_EQ(after.at(R"(wec_request_duration_seconds_bucket{le="+Inf"})"), total);
    EXPECT_GT(after.at("wec_request_duration_seconds_sum"), 0);

    EXPECT_GT(after.at("wec_bytes_received_total"), 0);
    EXPECT_GT(after.at("wec_bytes_decompressed_total"), after.at("wec_bytes_received_total"));
    EXPECT_GE(after.at("wec_connections_total"), 1);
    for (const char* reason : {"certificate", "no_certificate", "protocol"})
        EXPECT_EQ(
            after.at("wec_tls_handshake_failures_total{reason=\"" + std::string(reason) + "\"}"),
            0);
    EXPECT_EQ(after.at("wec_proxy_refused_total"), 0);
    // Present; not asserted 0: a slow disk on a loaded host may hold both I/O threads 10 ms.
    EXPECT_GE(after.at("wec_handler_stand_ins_total"), 0);
    EXPECT_EQ(after.at("wec_store_errors_total"), 0);
    EXPECT_EQ(after.at("wec_store_up"), 1);
    // One bookmark commit per Events batch.
    EXPECT_EQ(after.at("wec_store_bookmark_seconds_count"), kBatches);
    EXPECT_EQ(after.at(R"(wec_store_bookmark_seconds_bucket{le="+Inf"})"), kBatches);
    EXPECT_GT(after.at("wec_store_bookmark_seconds_sum"), 0);
    // One host, which sent events just now.
    EXPECT_EQ(after.at("wec_hosts{subscription=\"security\",state=\"active\"}"), 1);
    EXPECT_EQ(after.at("wec_hosts{subscription=\"security\",state=\"alive\"}"), 0);
    EXPECT_EQ(after.at("wec_hosts{subscription=\"security\",state=\"dead\"}"), 0);
    EXPECT_EQ(after.at("wec_build_info{version=\"" WEC_VERSION_STRING "\"}"), 1);

    // The metrics listener serves nothing else, and GET only.
    EXPECT_EQ(get("/wsman/").status, 404);
    auto post = get("/metrics", "POST");
    EXPECT_EQ(post.status, 405) << post.error;
    // Scrapes are not WinRM requests.
    auto again = scrape();
    EXPECT_EQ(again.at("wec_request_duration_seconds_count"), total);
}

TEST_F(ServeMetrics, ReadyzFollowsTheStoreWhileHealthzStaysUp) {
    ASSERT_EQ(wait_ready(200).status, 200);
    // Another program renames a table the collector reads at every reload.
    ASSERT_EQ(exec_other(db_file, "ALTER TABLE meta RENAME TO meta_gone"), "");
    auto g = wait_ready(503);
    ASSERT_EQ(g.status, 503) << g.error << g.body;
    EXPECT_EQ(g.body.rfind("not ready: state store unreachable: ", 0), 0u) << g.body;
    EXPECT_NE(g.body.find("no such table: meta"), std::string::npos) << g.body;
    EXPECT_EQ(std::count(g.body.begin(), g.body.end(), '\n'), 1) << g.body; // one line
    EXPECT_EQ(get("/healthz").status, 200);
    auto s = scrape();
    EXPECT_EQ(s.at("wec_store_up"), 0);
    EXPECT_GE(s.at("wec_store_errors_total"), 1);

    ASSERT_EQ(exec_other(db_file, "ALTER TABLE meta_gone RENAME TO meta"), "");
    g = wait_ready(200);
    EXPECT_EQ(g.status, 200) << g.body;
    EXPECT_EQ(g.body, "ready\n");
    EXPECT_EQ(scrape().at("wec_store_up"), 1);
}

// promtool parses the scrape of a collector that has served requests, and lints it (names,
// units, _total suffixes, HELP). The Grafana dashboard (samples/grafana/wec.json) asks only for
// series the scrape has, and promtool parses its queries. Without promtool (scripts/install-deps.sh
// installs it) the test fails.
TEST_F(ServeMetrics, ScrapeAndDashboardPassPromtool) {
    {
        client::Source source(source_options());
        auto subs = source.enumerate();
        source.end();
        ASSERT_EQ(subs.size(), 1u);
        client::EventGenerator gen(kClient, 1, 1);
        std::vector<std::string> events{gen.next(), gen.next()};
        source.send_events(subs[0], events, gen.bookmark());
    }
    auto g = get("/metrics");
    ASSERT_EQ(g.status, 200) << g.error;
    std::set<std::string> served;
    for (const auto& [series, value] : parse_samples(g.body))
        served.insert(series.substr(0, series.find('{')));

    auto dashboard =
        nlohmann::json::parse(slurp(fs::path(WEC_SOURCE_DIR) / "samples/grafana/wec.json"));
    std::vector<std::string> queries;
    for (const auto& panel : dashboard.at("panels"))
        for (const auto& target : panel.value("targets", nlohmann::json::array()))
            queries.push_back(target.at("expr").get<std::string>());
    ASSERT_GE(queries.size(), 10u);
    const std::regex metric("wec_[a-z_]+");
    for (const auto& q : queries)
        for (std::sregex_iterator it(q.begin(), q.end(), metric), end; it != end; ++it)
            EXPECT_TRUE(served.count(it->str())) << it->str() << " (in " << q << ") is not served";

    ASSERT_TRUE(has_program("promtool"))
        << "promtool is not installed (Debian package prometheus; scripts/install-deps.sh "
           "installs it): the scrape and the dashboard's queries cannot be validated";
    auto file = dir.path() / "scrape.txt";
    std::ofstream(file) << g.body;
    auto r = run({"sh", "-c", "promtool check metrics < " + file.string()});
    EXPECT_EQ(r.exit_code, 0) << r.output << "\n" << g.body;

    // Each query as a recording rule, Grafana's variables replaced by what "All" means.
    auto rules = dir.path() / "dashboard-rules.yml";
    {
        std::ofstream out(rules);
        out << "groups:\n- name: dashboard\n  rules:\n";
        for (std::size_t i = 0; i < queries.size(); ++i) {
            auto q = std::regex_replace(queries[i], std::regex("\\$__rate_interval"), "5m");
            q = std::regex_replace(q, std::regex("\\$(instance|subscription)"), ".*");
            out << "  - record: dashboard:q" << i << "\n    expr: " << nlohmann::json(q).dump()
                << "\n";
        }
    }
    r = run({"promtool", "check", "rules", rules.string()});
    EXPECT_EQ(r.exit_code, 0) << r.output << "\n" << slurp(rules);
}

} // namespace

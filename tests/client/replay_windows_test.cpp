// `wec replay` behaving like a Windows source (docs/replay.md, "Behaving like a Windows source")
// against real `wec serve` processes and a real MIT KDC: a batch that fails is resent after the
// ConnectionRetry interval (collector killed and restarted, output failing with 503) and nothing
// acknowledged is lost; Heartbeats when idle; re-Enumerate with --refresh following the
// subscription set (SubscriptionEnd to the one that disappeared); --from resends as well.
#include "store/store.hpp"
#include "support/files.hpp"
#include "support/krb5_realm.hpp"
#include "support/process.hpp"
#include "support/wef_realm.hpp"

#include <cctype>
#include <chrono>
#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <thread>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kHost = "srv.windomain.local";
const std::string kClient = "WIN10$@WINDOMAIN.LOCAL";

class ReplayWindows : public ::testing::Test {
protected:
    static inline std::unique_ptr<WefRealm> realm_;
    static void SetUpTestSuite() { realm_ = std::make_unique<WefRealm>(kHost); }
    static void TearDownTestSuite() { realm_.reset(); }

    TempDir dir;
    std::string db;
    int port = 0;
    int serve_runs = 0;
    std::unique_ptr<Process> server;
    std::unique_ptr<Process> replay;

    void SetUp() override { db = "sqlite:" + (dir.path() / "wec.db").string(); }
    void TearDown() override {
        if (HasFailure()) {
            if (server) std::cerr << "---- wec serve log ----\n" << server->output();
            if (replay) std::cerr << "---- wec replay output ----\n" << replay->output();
        }
    }

    fs::path events_dir() const { return dir.path() / "events"; }
    fs::path json_file() const { return events_dir() / "security" / (kClient + ".json"); }

    // Applies subscription `name` (Security channel) with `extra` TOML lines and one JSON files
    // output at `output` (default: events/{subscription}/{client}.json).
    void apply(const std::string& name, const std::string& extra = {}, fs::path output = {}) {
        if (output.empty()) output = events_dir() / "{subscription}" / "{client}.json";
        auto file = dir.path() / (name + ".toml");
        std::ofstream toml(file);
        toml << "name = \"" << name << "\"\n"
             << "query = '<QueryList><Query Id=\"0\"><Select "
                "Path=\"Security\">*</Select></Query></QueryList>'\n"
             << extra << "[[outputs]]\ndriver = \"files\"\npath = \"" << output.string()
             << "\"\nformat = \"json\"\n";
        toml.close();
        auto r = run({WEC_EXE, "sub", "apply", file.string(), "--db", db});
        ASSERT_EQ(r.exit_code, 0) << r.output;
    }

    // Starts `wec serve` (on `port` when set: a restart on the same port and state).
    void start_server(const std::string& config_toml = {}) {
        if (port == 0) port = free_port();
        std::vector<std::string> argv{
            WEC_EXE,      "serve",    "--listen", "127.0.0.1:" + std::to_string(port),
            "--auth",     "kerberos", "--keytab", realm_->service_keytab.string(),
            "--hostname", kHost,      "--db",     db};
        if (!config_toml.empty()) {
            auto cfg = dir.path() / "wec.toml";
            std::ofstream(cfg) << config_toml;
            argv.push_back("--config");
            argv.push_back(cfg.string());
        }
        server = std::make_unique<Process>(argv, realm_->realm.env(),
                                           dir.path() /
                                               ("serve-" + std::to_string(++serve_runs) + ".log"));
        ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    }

    // Starts `wec replay` (generated mode, WIN10$'s identity, JSON summary) with `args`.
    void start_replay(const std::vector<std::string>& args) {
        std::vector<std::string> argv{
            WEC_EXE,
            "replay",
            "--url",
            "http://127.0.0.1:" + std::to_string(port) + "/wsman/SubscriptionManager/WEC",
            "--service",
            "HTTP@" + kHost,
            "--timeout",
            "5",
            "--json"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto env = realm_->realm.env();
        env["KRB5CCNAME"] = realm_->ccache;
        replay = std::make_unique<Process>(argv, env, dir.path() / "replay.log");
    }

    // Waits for `wec replay` to exit with `code`; its JSON summary.
    nlohmann::json finish_replay(int code, std::chrono::milliseconds timeout = 90s) {
        const int rc = replay->wait(timeout);
        EXPECT_EQ(rc, code) << replay->output();
        const auto out = replay->output();
        const auto start = out.find("{\n");
        if (start == std::string::npos) {
            ADD_FAILURE() << "no JSON summary: " << out;
            return {};
        }
        return nlohmann::json::parse(out.substr(start), nullptr, false);
    }

    // Waits until `file` holds at least `lines` lines.
    static bool wait_for_lines(const fs::path& file, std::size_t lines,
                               std::chrono::milliseconds timeout = 30s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (fs::exists(file) && lines_of(slurp(file)).size() >= lines) return true;
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }

    // Stops `wec serve` with SIGTERM (heartbeats are flushed), then `wec status --json`.
    nlohmann::json stop_and_status() {
        server->signal(SIGTERM);
        EXPECT_EQ(server->wait(30s), 0) << server->output();
        auto status = run({WEC_EXE, "status", "--json", "--db", db});
        EXPECT_EQ(status.exit_code, 0) << status.output;
        return nlohmann::json::parse(status.output, nullptr, false);
    }

    std::string uuid_of(const std::string& name) {
        auto show = run({WEC_EXE, "sub", "show", name, "--json", "--db", db});
        EXPECT_EQ(show.exit_code, 0) << show.output;
        std::string uuid = nlohmann::json::parse(show.output)["uuid"];
        for (auto& c : uuid)
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return uuid;
    }

    static const nlohmann::json* status_of(const nlohmann::json& status, const std::string& name) {
        for (const auto& s : status)
            if (s.value("subscription", "") == name) return &s;
        return nullptr;
    }
};

// The collector is killed (SIGKILL) in the middle of the stream and restarted on the same port
// and state: the source resends the batch that was not acknowledged after the retry interval,
// and every acknowledged event is in the output (duplicates allowed, losses not).
TEST_F(ReplayWindows, CollectorKilledAndRestartedLosesNothing) {
    apply("security");
    start_server();
    start_replay({"--subscription", "security", "--events", "3000", "--batch", "20", "--rate",
                  "500", "--retry-interval", "0.5", "--check", json_file().string()});
    ASSERT_TRUE(wait_for_lines(json_file(), 200)) << replay->output();
    server->signal(SIGKILL);
    ASSERT_EQ(server->wait(10s), 128 + SIGKILL);
    std::this_thread::sleep_for(1500ms); // refused connections: the source retries meanwhile
    start_server();

    auto j = finish_replay(0);
    EXPECT_EQ(j["events_acked"], 3000) << j.dump(2);
    EXPECT_EQ(j["batches_failed"], 0);
    EXPECT_GT(j["retries"].get<int>(), 0);
    EXPECT_GT(j["request_errors"].get<int>(), 0);
    EXPECT_EQ(j["check"]["sent"], 3000);
    EXPECT_EQ(j["check"]["acked"], 3000);
    EXPECT_EQ(j["check"]["found"], 3000);
    EXPECT_EQ(j["check"]["lost"], 0);
    EXPECT_EQ(j["check"]["unexpected"], 0);
}

// An output that cannot write: the collector answers 503 and stores no bookmark; the source
// resends the same batch until the output works again, and each event is written once.
TEST_F(ReplayWindows, FailingOutputIs503AndTheSameBatchIsResent) {
    // The output's parent directory is a regular file: nothing can be created under it (also as
    // root, where permissions would not stop it).
    auto blocker = dir.path() / "out";
    apply("security", {}, blocker / "{client}.json");
    std::ofstream(blocker) << "not a directory\n";
    start_server();
    start_replay({"--subscription", "security", "--events", "100", "--batch", "20",
                  "--retry-interval", "0.5", "--check", blocker.string()});
    // The first batch was refused at least twice (the first attempt and a resend).
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    auto refused = [&] {
        const auto log = server->output();
        std::size_t n = 0;
        for (auto at = log.find("status=503"); at != std::string::npos;
             at = log.find("status=503", at + 1))
            ++n;
        return n;
    };
    while (refused() < 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    ASSERT_GE(refused(), 2u) << server->output();
    fs::remove(blocker);

    auto j = finish_replay(0);
    EXPECT_EQ(j["events_acked"], 100) << j.dump(2);
    EXPECT_GE(j["retries"].get<int>(), 1);
    EXPECT_EQ(j["check"]["sent"], 100);
    EXPECT_EQ(j["check"]["found"], 100);
    EXPECT_EQ(j["check"]["lost"], 0);
    EXPECT_EQ(j["check"]["duplicated"], 0); // a 503 batch was not written
    EXPECT_EQ(j["check"]["unexpected"], 0);
    const auto lines = lines_of(slurp(blocker / (kClient + ".json")));
    ASSERT_EQ(lines.size(), 100u);
    EXPECT_EQ(nlohmann::json::parse(lines.front())["System"]["EventRecordID"].dump(), "1001");
}

// --from resends a refused Events message the same way: the recorded message (21 events of the
// sample capture) is refused with 503 until the output works, then written once.
TEST_F(ReplayWindows, FromCaptureResendsTheRefusedMessage) {
    const std::string sample = std::string(WEC_SOURCE_DIR) + "/samples/captures/";
    auto jsonl = dir.path() / "capture.jsonl";
    auto d = run({"/bin/sh", "-c",
                  std::string(WEC_EXE) + " decode " + sample + "wef-kerberos.pcap --keytab " +
                      sample + "wec.keytab --format json >" + jsonl.string()});
    ASSERT_EQ(d.exit_code, 0) << d.output;
    auto blocker = dir.path() / "out";
    apply("security", {}, blocker / "{client}.json");
    std::ofstream(blocker) << "not a directory\n";
    start_server();
    start_replay(
        {"--from", jsonl.string(), "--subscription", "security", "--retry-interval", "0.5"});
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (server->output().find("status=503") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    ASSERT_NE(server->output().find("status=503"), std::string::npos) << server->output();
    fs::remove(blocker);

    auto j = finish_replay(0);
    EXPECT_EQ(j["messages_acked"], 1) << j.dump(2);
    EXPECT_EQ(j["messages_failed"], 0);
    EXPECT_GE(j["retries"].get<int>(), 1);
    EXPECT_EQ(j["events_acked"], 21);
    EXPECT_EQ(lines_of(slurp(blocker / (kClient + ".json"))).size(), 21u);
}

// Idle past the heartbeat interval, the source sends Heartbeats: the collector's last-seen time
// moves past the last event's.
TEST_F(ReplayWindows, HeartbeatsWhenIdle) {
    apply("security", "heartbeat_interval = 1\n");
    start_server("heartbeat_flush_interval = 1\n");
    start_replay(
        {"--subscription", "security", "--events", "20", "--batch", "20", "--idle", "3.5"});
    auto j = finish_replay(0);
    EXPECT_EQ(j["events_acked"], 20) << j.dump(2);
    EXPECT_GE(j["heartbeats"].get<int>(), 2);

    auto status = stop_and_status();
    const auto* sec = status_of(status, "security");
    ASSERT_NE(sec, nullptr) << status.dump(2);
    ASSERT_EQ((*sec)["hosts"].size(), 1u) << status.dump(2);
    const auto& host = (*sec)["hosts"][0];
    EXPECT_EQ(host["machine"], "host-0.windomain.local");
    // ISO 8601 UTC times of the same form compare as strings.
    EXPECT_GT(host["last_seen"].get<std::string>(), host["last_event_seen"].get<std::string>())
        << host.dump();
}

// --refresh: while the source runs, one subscription stops being offered to it (its `uri` moves
// elsewhere) and another appears: the source sends SubscriptionEnd to the first and Heartbeats
// to the new one.
TEST_F(ReplayWindows, RefreshFollowsTheSubscriptionSet) {
    apply("security", "heartbeat_interval = 1\n");
    apply("other", "heartbeat_interval = 1\n");
    start_server("heartbeat_flush_interval = 1\n");
    start_replay({"--subscription", "security", "--events", "20", "--batch", "20", "--idle", "8",
                  "--refresh", "0.5"});
    ASSERT_TRUE(wait_for_lines(json_file(), 20)) << replay->output();
    apply("other", "heartbeat_interval = 1\nuri = \"/wsman/elsewhere\"\n");
    apply("third", "heartbeat_interval = 1\n");

    auto j = finish_replay(0);
    EXPECT_EQ(j["events_acked"], 20) << j.dump(2);
    EXPECT_EQ(j["subscription_ends"], 1);
    EXPECT_GE(j["enumerations"].get<int>(), 3);

    // The collector recorded the SubscriptionEnd for `other`, from this source.
    const auto other = uuid_of("other");
    auto status = stop_and_status();
    const auto ends = wec::store::open(db)->subscription_ends(other, 10);
    ASSERT_EQ(ends.size(), 1u);
    EXPECT_EQ(ends[0].client, kClient);
    EXPECT_EQ(ends[0].status, "http://schemas.xmlsoap.org/ws/2004/08/eventing/SourceCancelling");
    // The new subscription was followed: it saw the source (Heartbeats only).
    const auto* third = status_of(status, "third");
    ASSERT_NE(third, nullptr) << status.dump(2);
    ASSERT_EQ((*third)["hosts"].size(), 1u) << status.dump(2);
    EXPECT_EQ((*third)["hosts"][0]["machine"], "host-0.windomain.local");
    EXPECT_TRUE((*third)["hosts"][0]["last_event_seen"].is_null()) << (*third)["hosts"][0].dump();
}

} // namespace

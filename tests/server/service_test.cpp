// The whole collector (server::CollectorService) in-process, on a real SQLite store in a temp
// dir, while that store fails: tick() — what `wec serve` calls every second — must not throw
// (it used to end `wec serve` with exit code 2), the listeners keep serving, the error is logged
// once, and the service recovers without a restart.
#include "common/handle.hpp"
#include "server/service.hpp"
#include "store/store.hpp"
#include "subscription/subscription.hpp"
#include "support/captured_log.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

#include <boost/asio.hpp>
#include <chrono>
#include <filesystem>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;
namespace asio = boost::asio;
using namespace wec;
using namespace std::chrono_literals;

namespace {

using wec::testing::count_of;
using wec::testing::TempDir;

using wec::FilePtr;
using DbPtr = wec::Handle<sqlite3, ::sqlite3_close>;

// SQL on the database file from another connection (as another program would); "" when it
// worked, else SQLite's message.
std::string exec_other(const std::string& path, const std::string& sql) {
    sqlite3* raw = nullptr;
    int rc = sqlite3_open(path.c_str(), &raw);
    DbPtr db(raw);
    if (rc != SQLITE_OK) return "cannot open " + path;
    sqlite3_busy_timeout(raw, 5000);
    char* error = nullptr;
    rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &error);
    std::string message = rc == SQLITE_OK ? "" : (error ? error : sqlite3_errstr(rc));
    sqlite3_free(error);
    return message;
}

// The start-up summary's line that starts with `prefix` ("store: ", "threads: ").
std::string summary_line(const server::CollectorService& service, std::string_view prefix) {
    for (const auto& line : service.summary())
        if (line.starts_with(prefix)) return line;
    return "(no line starting with \"" + std::string(prefix) + "\")";
}

// One plain HTTP request on 127.0.0.1:port; the status line of the answer.
std::string status_line(std::uint16_t port, const std::string& request) {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
    asio::write(socket, asio::buffer(request));
    asio::streambuf answer;
    boost::system::error_code ec;
    asio::read_until(socket, answer, "\r\n", ec);
    std::string text{asio::buffers_begin(answer.data()), asio::buffers_end(answer.data())};
    return text.substr(0, text.find("\r\n"));
}

class ServiceTest : public ::testing::Test {
protected:
    TempDir dir;
    std::string db = (dir.path() / "wec.db").string();
    wec::testing::CapturedLog captured;
    wec::Logger& log = *captured.get();

    config::ServeConfig config() const {
        config::ServeConfig c;
        c.hostname = "wec.d.local";
        c.db = "sqlite:" + db;
        config::Listener l;
        l.address = "127.0.0.1:0";
        l.keytab = (dir.path() / "no.keytab").string(); // missing: allowed, requests get 401
        c.listeners.push_back(l);
        return c;
    }

    // Calls tick() as `wec serve` does (but faster) until `done` or ~20 s; true when done.
    template <typename Done>
    static bool tick_until(server::CollectorService& service, Done done) {
        for (int i = 0; i < 400; ++i) {
            EXPECT_NO_THROW(service.tick());
            if (done()) return true;
            std::this_thread::sleep_for(50ms);
        }
        return false;
    }
};

TEST_F(ServiceTest, TickSurvivesAFailingStoreAndRecovers) {
    {
        auto store = store::open("sqlite:" + db);
        store->put_subscription(subscription::load_toml(R"(name = "security"
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
[[outputs]]
driver = "files"
path = ")" + (dir.path() / "{subscription}.log").string() +
                                                            R"("
)",
                                                        "test"));
    }
    server::CollectorService service(log, config());
    service.start();
    auto port = service.ports().at(0);
    const std::string get = "GET /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    EXPECT_EQ(status_line(port, get), "HTTP/1.1 405 Method Not Allowed");

    // Another program renames a table the collector reads at every reload.
    ASSERT_EQ(exec_other(db, "ALTER TABLE meta RENAME TO meta_gone"), "");
    ASSERT_TRUE(tick_until(service, [&] { return !service.store_health().ok; }));
    // Keep ticking a while (a few backoff periods): still one log line, still serving.
    auto until = std::chrono::steady_clock::now() + 2500ms;
    while (std::chrono::steady_clock::now() < until) {
        EXPECT_NO_THROW(service.tick());
        std::this_thread::sleep_for(50ms);
    }
    auto health = service.store_health();
    EXPECT_FALSE(health.ok);
    EXPECT_NE(health.error.find("no such table: meta"), std::string::npos) << health.error;
    EXPECT_GE(health.errors, 2u); // retried
    EXPECT_EQ(captured.count("store error: subscriptions not reloaded"), 1u) << captured.text();
    EXPECT_EQ(status_line(port, get), "HTTP/1.1 405 Method Not Allowed");

    ASSERT_EQ(exec_other(db, "ALTER TABLE meta_gone RENAME TO meta"), "");
    ASSERT_TRUE(tick_until(service, [&] { return service.store_health().ok; }));
    EXPECT_EQ(captured.count("store available again"), 1u) << captured.text();
    EXPECT_EQ(service.tick_errors(), 0u);
    EXPECT_EQ(status_line(port, get), "HTTP/1.1 405 Method Not Allowed");
    service.stop();
}

// (c) A garbage definition row: the service starts, says so in its summary, serves the rest.
TEST_F(ServiceTest, UnreadableSubscriptionIsNamedInTheSummary) {
    { auto store = store::open("sqlite:" + db); }
    ASSERT_EQ(exec_other(db, "INSERT INTO subscriptions (uuid, name, enabled, definition, "
                             "updated_at) VALUES ('0F1E2D3C-4B5A-4978-8796-A5B4C3D2E1F0', "
                             "'broken', 1, 'x = [', 0)"),
              "");
    server::CollectorService service(log, config());
    auto health = service.store_health();
    ASSERT_EQ(health.broken.size(), 1u);
    EXPECT_EQ(health.broken[0].name, "broken");
    std::string summary;
    for (const auto& line : service.summary())
        summary += line + "\n";
    EXPECT_NE(summary.find("subscription broken (uuid 0F1E2D3C-4B5A-4978-8796-A5B4C3D2E1F0) NOT "
                           "served: its stored definition cannot be read"),
              std::string::npos)
        << summary;
    for (int i = 0; i < 3; ++i)
        EXPECT_NO_THROW(service.tick());
    EXPECT_EQ(captured.count("subscription not served"), 1u) << captured.text();
}

// The summary says how durable an acked bookmark is (docs/state-store.md), as configured.
TEST_F(ServiceTest, TheSummarySaysWhenBookmarksAreFsynced) {
    {
        server::CollectorService service(log, config());
        EXPECT_NE(summary_line(service, "store: ")
                      .find("bookmarks fsynced: a client's first, then at most every 1000 ms"),
                  std::string::npos)
            << summary_line(service, "store: ");
    }
    auto c = config();
    c.bookmark_sync_interval_ms = 0;
    server::CollectorService service(log, c);
    EXPECT_NE(summary_line(service, "store: ").find("every bookmark fsynced"), std::string::npos)
        << summary_line(service, "store: ");
}

// Where requests are handled, in the summary: on the I/O threads with SQLite ("auto"), on the
// workers when asked.
TEST_F(ServiceTest, TheSummarySaysWhichThreadsHandleRequests) {
    auto c = config();
    c.io_threads = 3;
    c.worker_threads = 5;
    {
        server::CollectorService service(log, c);
        EXPECT_EQ(summary_line(service, "threads: "),
                  "threads: 3 I/O, handling requests (up to 5 workers "
                  "stand in for the network while handlers block)");
    }
    c.handler_threads = "workers";
    server::CollectorService service(log, c);
    EXPECT_EQ(summary_line(service, "threads: "), "threads: 3 I/O, 5 workers handling requests");
}

// Security review: an unauthenticated request is answered from its head; its body is not waited
// for (nor buffered). Also what the service says about itself at start.
TEST_F(ServiceTest, UnauthenticatedHeadsAreAnsweredWithoutTheirBodies) {
    server::CollectorService service(log, config());
    service.start();
    auto port = service.ports().at(0);
    // 500,000 bytes announced, none sent: the 401 comes at once.
    EXPECT_EQ(
        status_line(port, "POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n"),
        "HTTP/1.1 401 Unauthorized");
    EXPECT_EQ(status_line(port, "PUT /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 500000\r\n\r\n"),
              "HTTP/1.1 405 Method Not Allowed");
    service.stop();
    auto text = captured.text();
    if (::geteuid() == 0)
        EXPECT_NE(text.find("running as root"), std::string::npos) << text;
    else
        EXPECT_EQ(text.find("running as root"), std::string::npos) << text;
    // The state store names every source: not readable by other users.
    EXPECT_EQ(fs::status(db).permissions() & fs::perms::others_all, fs::perms::none);
    EXPECT_EQ(fs::status(db).permissions() & fs::perms::owner_all,
              fs::perms::owner_read | fs::perms::owner_write);
}

// The --metrics listener in-process: not ready before start() and once stop() began (a load
// balancer drains this node), ready in between; /healthz up; WinRM requests counted (and the
// metrics listener's own requests not). Anything but GET is refused from the head.
TEST_F(ServiceTest, MetricsListenerReadinessFollowsTheService) {
    auto c = config();
    c.metrics_address = "127.0.0.1:0";
    server::CollectorService service(log, c);
    ASSERT_TRUE(service.metrics_port());
    EXPECT_NE(service.not_ready().find("not accepting"), std::string::npos) << service.not_ready();
    service.start();
    EXPECT_EQ(service.not_ready(), "");
    auto mport = *service.metrics_port();
    EXPECT_EQ(status_line(mport, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.1 200 OK");
    EXPECT_EQ(status_line(mport, "GET /healthz?verbose HTTP/1.1\r\nHost: x\r\n\r\n"),
              "HTTP/1.1 200 OK");
    EXPECT_EQ(status_line(mport, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"),
              "HTTP/1.1 404 Not Found");
    // 100 bytes announced, none sent: the 405 comes from the head at once.
    EXPECT_EQ(status_line(mport, "PUT /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"),
              "HTTP/1.1 405 Method Not Allowed");
    // One WinRM request (refused: no Authorization on a Kerberos listener), counted as such.
    auto port = service.ports().at(0);
    EXPECT_EQ(status_line(port, "POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"),
              "HTTP/1.1 401 Unauthorized");
    auto text = service.scrape();
    EXPECT_NE(text.find("\nwec_requests_total{action=\"none\",status=\"401\"} 1\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("\nwec_request_duration_seconds_count 1\n"), std::string::npos) << text;
    service.stop();
    EXPECT_NE(service.not_ready().find("not accepting"), std::string::npos);
}

} // namespace

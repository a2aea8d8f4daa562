// pipeline::Collector on a real SQLite store while the store misbehaves: another connection
// holding the write lock, tables a newer (or broken) program renamed away, subscription rows
// whose definition cannot be read. Requests must answer 503 (never 500, never a crash), the
// periodic refresh must not throw, errors are logged once per state change, and everything
// recovers without a restart.
#include "common/handle.hpp"
#include "pipeline/collector.hpp"
#include "server/wef_connection.hpp"
#include "store/sqlite_store.hpp"
#include "subscription/subscription.hpp"
#include "support/captured_log.hpp"
#include "support/files.hpp"
#include "support/process.hpp"
#include "wsman/bookmark.hpp"
#include "wsman/wsman.hpp"

#include <filesystem>
#include <gtest/gtest.h>
#include <memory>
#include <sqlite3.h>
#include <thread>

namespace fs = std::filesystem;
namespace sub = wec::subscription;
namespace ws = wec::wsman;
using namespace wec;
using namespace std::chrono_literals;

namespace {

using wec::testing::count_of;
using wec::testing::TempDir;

using wec::FilePtr;

using DbPtr = wec::Handle<sqlite3, ::sqlite3_close>;

// A second connection to the database file, as another process (`sqlite3`, `wec sub apply`,
// a newer wec) would have.
class OtherConnection {
public:
    explicit OtherConnection(const std::string& path) {
        sqlite3* raw = nullptr;
        if (sqlite3_open(path.c_str(), &raw) != SQLITE_OK) {
            sqlite3_close(raw);
            throw std::runtime_error("cannot open " + path);
        }
        db_.reset(raw);
    }
    // Runs SQL; "" when it worked, else SQLite's message.
    std::string exec(const std::string& sql) {
        char* error = nullptr;
        int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &error);
        std::string message = rc == SQLITE_OK ? "" : (error ? error : sqlite3_errstr(rc));
        sqlite3_free(error);
        return message;
    }
    std::string insert_subscription(const std::string& uuid, const std::string& name,
                                    const std::string& definition) {
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(db_.get(),
                           "INSERT INTO subscriptions (uuid, name, enabled, definition, "
                           "updated_at) VALUES (?1, ?2, 1, ?3, 0)",
                           -1, &stmt, nullptr);
        sqlite3_bind_text(stmt, 1, uuid.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 2, name.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 3, definition.c_str(), -1, SQLITE_TRANSIENT);
        int rc = sqlite3_step(stmt);
        sqlite3_finalize(stmt);
        return rc == SQLITE_DONE ? "" : sqlite3_errmsg(db_.get());
    }

private:
    DbPtr db_;
};

constexpr std::string_view kEvent =
    "<Event xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\"><System>"
    "<Provider Name=\"Microsoft-Windows-Security-Auditing\"/><EventID>4624</EventID>"
    "<TimeCreated SystemTime=\"2026-01-01T00:00:00.000Z\"/><EventRecordID>1</EventRecordID>"
    "<Channel>Security</Channel><Computer>win10.d.local</Computer></System></Event>";

std::string bookmark(int record) {
    return wec::wsman::bookmark_list(
        {{{"Security", static_cast<std::uint64_t>(record)}}, "Security"});
}

class CollectorTest : public ::testing::Test {
protected:
    TempDir dir;
    std::string db = (dir.path() / "wec.db").string();
    wec::testing::CapturedLog captured;
    wec::Logger& log = *captured.get();
    // A short busy timeout: a locked store fails fast instead of after 10 s.
    store::SqliteStore store{db, {200ms}};
    store::HeartbeatBatcher heartbeats{store};
    OtherConnection other{db};
    pipeline::ClientInfo client{"WIN10$@D.LOCAL", "10.0.0.5", pipeline::Transport::Http, "", ""};

    pipeline::CollectorConfig config() const {
        pipeline::CollectorConfig c;
        c.hostname = "wec.d.local";
        c.reload_interval = 0ms; // every refresh() looks at the store
        c.retry_initial = 1ms;
        c.retry_max = 4ms;
        return c;
    }

    std::string add(const std::string& name) {
        auto s = sub::load_toml("name = \"" + name + R"("
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
[[outputs]]
driver = "files"
path = ")" + (dir.path() / "out" / "{subscription}.log").string() +
                                    R"("
format = "raw"
)",
                                "test");
        return store.put_subscription(s).subscription.uuid;
    }

    static std::string path_of(const std::string& uuid) { return "/wsman/subscriptions/" + uuid; }

    static ws::Message events(const std::string& uuid, int record) {
        ws::SourceHeaders h;
        h.to = "http://wec.d.local:5985" + path_of(uuid);
        h.machine_id = "win10.d.local";
        std::string_view one = kEvent;
        return ws::parse(ws::build_events(h, std::span(&one, 1), bookmark(record)));
    }
    static ws::Message enumerate() {
        ws::SourceHeaders h;
        h.to = "http://wec.d.local:5985/wsman/SubscriptionManager/WEC";
        h.machine_id = "win10.d.local";
        return ws::parse(ws::build_enumerate(h));
    }
};

// (a) Another process holds the write lock: Events cannot store the bookmark within the busy
// timeout and answer 503 with a Retry-After, nothing acked; once the lock is released the same
// batch is accepted. Reads are not blocked (WAL), so Enumerate keeps working meanwhile.
TEST_F(CollectorTest, EventsWhileAnotherConnectionHoldsTheLockAnswer503ThenSucceed) {
    auto uuid = add("security");
    pipeline::Collector collector(log, store, heartbeats, config());
    ASSERT_EQ(other.exec("BEGIN EXCLUSIVE"), "");

    auto reply = collector.handle(client, path_of(uuid), events(uuid, 1));
    EXPECT_EQ(reply.status, 503u) << reply.note;
    EXPECT_GT(reply.retry_after_s, 0u);
    EXPECT_TRUE(reply.soap.empty()); // no Ack
    EXPECT_NE(reply.note.find("busy"), std::string::npos) << reply.note;

    auto listed = collector.handle(client, "/wsman/SubscriptionManager/WEC", enumerate());
    EXPECT_EQ(listed.status, 200u) << listed.note;
    EXPECT_NE(listed.soap.find(uuid), std::string::npos);

    // The same request through the WinRM transport (an HTTPS peer: no Kerberos needed).
    server::WefEndpoint endpoint;
    endpoint.log = &log;
    endpoint.collector = &collector;
    server::PeerInfo peer;
    peer.address = "10.0.0.5";
    peer.tls = true;
    peer.tls_subject_cn = "win10.d.local";
    server::WefConnection connection(endpoint, peer);
    ws::SourceHeaders h;
    h.to = "https://wec.d.local:5986" + path_of(uuid);
    std::string_view one = kEvent;
    std::string body = ws::build_events(h, std::span(&one, 1), bookmark(1));
    server::HttpRequest request;
    request.method = "POST";
    request.target = path_of(uuid);
    request.headers.push_back({"Content-Type", "application/soap+xml;charset=UTF-8"});
    request.body.assign(body.begin(), body.end());
    auto response = connection.handle(request);
    EXPECT_EQ(response.status, 503u);
    bool retry_after = false;
    for (const auto& header : response.headers)
        if (header.name == "Retry-After") retry_after = !header.value.empty();
    EXPECT_TRUE(retry_after);

    ASSERT_EQ(other.exec("ROLLBACK"), "");
    EXPECT_FALSE(store.bookmark(client.identity, uuid)); // nothing was stored while locked
    reply = collector.handle(client, path_of(uuid), events(uuid, 1));
    EXPECT_EQ(reply.status, 200u) << reply.note;
    EXPECT_FALSE(reply.soap.empty());
    EXPECT_EQ(store.bookmark(client.identity, uuid), bookmark(1));
    request.body.assign(body.begin(), body.end());
    EXPECT_EQ(connection.handle(request).status, 200u);
    EXPECT_GE(collector.store_health().errors, 2u);
}

// (a) A store that fails reads (a table renamed away by another program): Enumerate and
// Events answer 503, not 500; they work again once the table is back.
TEST_F(CollectorTest, FailingReadsAnswer503AndRecover) {
    auto uuid = add("security");
    pipeline::Collector collector(log, store, heartbeats, config());
    ASSERT_EQ(other.exec("ALTER TABLE bookmarks RENAME TO bookmarks_gone"), "");

    auto listed = collector.handle(client, "/wsman/SubscriptionManager/WEC", enumerate());
    EXPECT_EQ(listed.status, 503u) << listed.note;
    EXPECT_GT(listed.retry_after_s, 0u);
    EXPECT_NE(listed.note.find("no such table"), std::string::npos) << listed.note;
    auto reply = collector.handle(client, path_of(uuid), events(uuid, 7));
    EXPECT_EQ(reply.status, 503u) << reply.note;

    ASSERT_EQ(other.exec("ALTER TABLE bookmarks_gone RENAME TO bookmarks"), "");
    EXPECT_EQ(collector.handle(client, "/wsman/SubscriptionManager/WEC", enumerate()).status, 200u);
    EXPECT_EQ(collector.handle(client, path_of(uuid), events(uuid, 7)).status, 200u);
    EXPECT_EQ(store.bookmark(client.identity, uuid), bookmark(7));
}

// (b) refresh() (what `wec serve` calls every second) with a store it cannot read: no
// exception, the error is logged once and counted, and the next attempt waits for the backoff
// (an hour here: fifty calls make one attempt); the subscriptions already loaded are still served.
TEST_F(CollectorTest, RefreshSurvivesAFailingStoreAndBacksOff) {
    auto uuid = add("security");
    auto c = config();
    c.retry_initial = 1h;
    c.retry_max = 1h;
    pipeline::Collector collector(log, store, heartbeats, c);
    ASSERT_EQ(other.exec("ALTER TABLE meta RENAME TO meta_gone"), "");

    for (int i = 0; i < 50; ++i)
        EXPECT_NO_THROW(collector.refresh());
    auto health = collector.store_health();
    EXPECT_FALSE(health.ok);
    EXPECT_NE(health.error.find("no such table: meta"), std::string::npos) << health.error;
    EXPECT_EQ(health.errors, 1u);
    EXPECT_EQ(captured.count("store error: subscriptions not reloaded"), 1u) << captured.text();
    // Still serving what was loaded (handle() also reloads, under the same backoff).
    auto reply = collector.handle(client, path_of(uuid), events(uuid, 3));
    EXPECT_EQ(reply.status, 200u) << reply.note;
    EXPECT_EQ(collector.subscription_names(), std::vector<std::string>{"security"});
    EXPECT_EQ(collector.store_health().errors, 1u);
}

// (b) The same with a short backoff: it keeps retrying (logged once, not per attempt) and the
// first attempt after the store is repaired recovers; new subscriptions are picked up.
TEST_F(CollectorTest, RefreshRetriesAndRecoversWithoutARestart) {
    auto uuid = add("security");
    pipeline::Collector collector(log, store, heartbeats, config());
    ASSERT_EQ(other.exec("ALTER TABLE meta RENAME TO meta_gone"), "");
    for (int i = 0; i < 1000 && collector.store_health().errors < 3; ++i) {
        EXPECT_NO_THROW(collector.refresh());
        std::this_thread::sleep_for(1ms);
    }
    EXPECT_GE(collector.store_health().errors, 3u);
    EXPECT_EQ(captured.count("store error: subscriptions not reloaded"), 1u) << captured.text();
    EXPECT_EQ(collector.handle(client, path_of(uuid), events(uuid, 3)).status, 200u);

    ASSERT_EQ(other.exec("ALTER TABLE meta_gone RENAME TO meta"), "");
    auto second = add("system");
    for (int i = 0; i < 1000 && !collector.store_health().ok; ++i) {
        collector.refresh();
        std::this_thread::sleep_for(1ms);
    }
    EXPECT_TRUE(collector.store_health().ok);
    EXPECT_EQ(collector.subscription_names(), (std::vector<std::string>{"security", "system"}));
    EXPECT_EQ(collector.handle(client, path_of(second), events(second, 1)).status, 200u);
    auto text = captured.text();
    EXPECT_EQ(count_of(text, "store available again"), 1u) << text;
    EXPECT_EQ(count_of(text, "store error: subscriptions not reloaded"), 1u) << text;
}

// (b) The store fails from the start (a PostgreSQL node started while the database is down):
// nothing was ever loaded, so an Enumerate must not answer "no subscriptions" (200) nor Events
// "unknown subscription" (404): both answer 503 until the store is readable, then work.
TEST_F(CollectorTest, StoreFailingSinceTheStartAnswers503NotEmptyOr404) {
    auto uuid = add("security");
    ASSERT_EQ(other.exec("ALTER TABLE meta RENAME TO meta_gone"), "");
    pipeline::Collector collector(log, store, heartbeats, config());
    EXPECT_FALSE(collector.store_health().ok);
    auto listed = collector.handle(client, "/wsman/SubscriptionManager/WEC", enumerate());
    EXPECT_EQ(listed.status, 503u) << listed.note;
    EXPECT_GT(listed.retry_after_s, 0u);
    auto reply = collector.handle(client, path_of(uuid), events(uuid, 1));
    EXPECT_EQ(reply.status, 503u) << reply.note;
    EXPECT_FALSE(store.bookmark(client.identity, uuid));

    ASSERT_EQ(other.exec("ALTER TABLE meta_gone RENAME TO meta"), "");
    for (int i = 0; i < 1000 && !collector.store_health().ok; ++i) {
        collector.refresh();
        std::this_thread::sleep_for(1ms);
    }
    ASSERT_TRUE(collector.store_health().ok);
    EXPECT_EQ(collector.handle(client, "/wsman/SubscriptionManager/WEC", enumerate()).status, 200u);
    EXPECT_EQ(collector.handle(client, path_of(uuid), events(uuid, 1)).status, 200u);
    EXPECT_EQ(store.bookmark(client.identity, uuid), bookmark(1));
}

// (c) A row whose definition is garbage (written directly with sqlite3): the others are served,
// the broken one is reported (health, log) once, not at every reload; its URL answers 503 so
// its sources keep their events; fixing the row serves it again.
TEST_F(CollectorTest, UnreadableSubscriptionIsSkippedAndLoggedOnce) {
    auto good = add("security");
    const std::string broken = "0F1E2D3C-4B5A-4978-8796-A5B4C3D2E1F0";
    ASSERT_EQ(other.insert_subscription(broken, "broken", "definition = [not toml"), "");
    ASSERT_EQ(other.exec("UPDATE meta SET value = value + 1 WHERE key = 'revision'"), "");

    pipeline::Collector collector(log, store, heartbeats, config());
    EXPECT_EQ(collector.subscription_names(), std::vector<std::string>{"security"});
    auto health = collector.store_health();
    EXPECT_TRUE(health.ok);
    ASSERT_EQ(health.broken.size(), 1u);
    EXPECT_EQ(health.broken[0].name, "broken");
    EXPECT_EQ(health.broken[0].uuid, broken);
    EXPECT_NE(health.broken[0].error.find("subscription 'broken'"), std::string::npos);

    EXPECT_EQ(collector.handle(client, path_of(good), events(good, 1)).status, 200u);
    auto reply = collector.handle(client, path_of(broken), events(broken, 1));
    EXPECT_EQ(reply.status, 503u) << reply.note;
    EXPECT_GT(reply.retry_after_s, 0u);
    auto listed = collector.handle(client, "/wsman/SubscriptionManager/WEC", enumerate());
    EXPECT_EQ(listed.status, 200u);
    EXPECT_NE(listed.soap.find(good), std::string::npos);
    EXPECT_EQ(listed.soap.find(broken), std::string::npos);

    // Five more reloads (the revision moves each time): still logged once.
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(other.exec("UPDATE meta SET value = value + 1 WHERE key = 'revision'"), "");
        collector.refresh();
    }
    auto text = captured.text();
    EXPECT_EQ(count_of(text, "subscriptions loaded"), 6u) << text;
    EXPECT_EQ(count_of(text, "subscription not served: its stored definition cannot be read"), 1u)
        << text;
    EXPECT_NE(text.find("subscription=broken"), std::string::npos) << text;

    // Fixed with `wec sub apply` (same name, so same uuid): served again.
    add("broken");
    collector.refresh();
    EXPECT_TRUE(collector.store_health().broken.empty());
    EXPECT_EQ(collector.subscription_names(), (std::vector<std::string>{"broken", "security"}));
    EXPECT_EQ(collector.handle(client, path_of(broken), events(broken, 2)).status, 200u);
    EXPECT_EQ(captured.count("subscription definition readable again"), 1u);
}

// Security review: on HTTP the path is not integrity-protected; the sealed a:To is.
TEST_F(CollectorTest, EventsWhoseSealedToNamesAnotherSubscriptionAreRefused) {
    auto security = add("security");
    auto elsewhere = add("other");
    pipeline::Collector collector(log, store, heartbeats, config());
    auto redirected = collector.handle(client, path_of(elsewhere), events(security, 7));
    EXPECT_EQ(redirected.status, 400u);
    EXPECT_NE(redirected.note.find("a:To names subscription " + security), std::string::npos)
        << redirected.note;
    EXPECT_FALSE(store.bookmark(client.identity, elsewhere));
    EXPECT_FALSE(store.bookmark(client.identity, security));
    // Windows adds a suffix (".../UUID/1") and may write the UUID in another case.
    auto ok = collector.handle(client, path_of(security) + "/1", events(security, 7));
    EXPECT_EQ(ok.status, 200u) << ok.note;
    // An a:To naming a subscription unknown here (a capture from another collector, replayed)
    // redirects nothing.
    auto replayed = collector.handle(client, path_of(elsewhere),
                                     events("B6BDBB59-FB07-4EE5-841F-EBEC9D67CDD4", 8));
    EXPECT_EQ(replayed.status, 200u) << replayed.note;
}

// wec_hosts after a restart: the hosts the store knows count from the first load (a host silent
// for longer than the heartbeat interval is dead, not missing); then what the collector sees.
TEST_F(CollectorTest, GaugesCountTheStoredHostsThenWhatIsSeen) {
    auto uuid = add("security"); // heartbeat interval 3600 s
    const auto now = std::chrono::system_clock::now();
    auto seen = [&](const std::string& who, std::chrono::system_clock::time_point when,
                    store::HeartbeatUpdate::Kind kind) {
        store::HeartbeatUpdate u;
        u.client = who;
        u.subscription_uuid = uuid;
        u.time = when;
        u.kind = kind;
        heartbeats.record(std::move(u));
    };
    seen("GONE$@D.LOCAL", now - 2h, store::HeartbeatUpdate::Kind::Events);
    seen("QUIET$@D.LOCAL", now - 10min, store::HeartbeatUpdate::Kind::Heartbeat);
    heartbeats.flush();

    pipeline::Collector collector(log, store, heartbeats, config());
    auto gauges = collector.gauges();
    ASSERT_EQ(gauges.size(), 1u);
    EXPECT_EQ(gauges[0].name, "security");
    EXPECT_EQ(gauges[0].active, 0u);
    EXPECT_EQ(gauges[0].alive, 1u);
    EXPECT_EQ(gauges[0].dead, 1u);

    ASSERT_EQ(collector.handle(client, path_of(uuid), events(uuid, 1)).status, 200u);
    gauges = collector.gauges();
    EXPECT_EQ(gauges[0].active, 1u);
    EXPECT_EQ(gauges[0].alive, 1u);
    EXPECT_EQ(gauges[0].dead, 1u);
    ASSERT_EQ(gauges[0].queues.size(), 1u);
    EXPECT_EQ(gauges[0].queues[0].output,
              "files:" + (dir.path() / "out" / "{subscription}.log").string());
}

} // namespace

#include "store/sqlite_store.hpp"
#include "store/store.hpp"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <thread>

namespace fs = std::filesystem;
namespace sub = wec::subscription;
using namespace wec::store;
using namespace std::chrono_literals;

namespace {

class TempDir {
public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "wec-store-test-XXXXXX").string();
        char* made = mkdtemp(pattern.data());
        if (made == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = made;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

class StoreTest : public ::testing::Test {
protected:
    TempDir dir;
    std::string db = (dir.path() / "wec.db").string();
    std::string url = "sqlite:" + db;
};

sub::Subscription make_sub(const std::string& name) {
    return sub::load_toml("name = \"" + name + R"("
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
[[outputs]]
driver = "files"
path = "/var/log/wec/{client}.json"
format = "json"
)",
                          name + ".toml");
}

TimePoint at(std::int64_t seconds) {
    return TimePoint(std::chrono::seconds(seconds));
}

// Runs SQL directly on the database file (as another program would).
void raw_exec(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
}

// Inserts a subscription row directly (as another program, or a newer wec, would).
void raw_insert_subscription(const std::string& path, const std::string& uuid,
                             const std::string& name, bool enabled, const std::string& definition) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO subscriptions (uuid, name, enabled, definition, "
                                "updated_at) VALUES (?1, ?2, ?3, ?4, 0)",
                                -1, &stmt, nullptr);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(stmt, 1, uuid.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(stmt, 2, name.c_str(), -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(stmt, 3, enabled ? 1 : 0);
        sqlite3_bind_text(stmt, 4, definition.c_str(), -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(stmt) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    std::string message = sqlite3_errmsg(db);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
}

} // namespace

TEST_F(StoreTest, OpenCreatesDirectoriesAndMigrates) {
    auto nested = dir.path() / "a" / "b" / "wec.db";
    auto store = open("sqlite:" + nested.string());
    EXPECT_TRUE(fs::exists(nested));
    EXPECT_EQ(store->schema_version(), SqliteStore::latest_schema_version());
    EXPECT_EQ(store->describe(), "sqlite:" + nested.string());
    EXPECT_EQ(store->revision(), 0u);
    EXPECT_TRUE(store->subscriptions().empty());
    store.reset();
    // Re-open: nothing to migrate, same version; the sqlite:// form works too.
    auto again = open("sqlite://" + nested.string());
    EXPECT_EQ(again->schema_version(), SqliteStore::latest_schema_version());
}

TEST_F(StoreTest, RefusesNewerSchema) {
    open(url).reset();
    raw_exec(db, "INSERT INTO schema_version (version, applied_at) VALUES (999, 0)");
    try {
        open(url);
        FAIL() << "opened a database from the future";
    } catch (const StoreError& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("schema version 999 is newer"), std::string::npos) << what;
        EXPECT_NE(what.find(db), std::string::npos) << what;
    }
}

TEST_F(StoreTest, BadUrlsAndFiles) {
    EXPECT_THROW(open("mysql://x"), StoreError);
    EXPECT_THROW(open("sqlite:"), StoreError);
    EXPECT_THROW(open("sqlite::memory:"), StoreError);
    EXPECT_THROW(open("postgres://localhost/wec"), StoreError);
    {
        std::ofstream junk(dir.path() / "junk.db");
        junk << "this is not a database, just some text long enough to have a header.......";
    }
    EXPECT_THROW(open("sqlite:" + (dir.path() / "junk.db").string()), StoreError);
}

TEST_F(StoreTest, UpsertKeepsUuidAndBumpsRevision) {
    auto store = open(url);
    auto created = store->put_subscription(make_sub("security"));
    EXPECT_EQ(created.change, Change::Created);
    EXPECT_TRUE(sub::is_uuid(created.subscription.uuid));
    auto r1 = store->revision();
    EXPECT_GT(r1, 0u);

    auto same = store->put_subscription(make_sub("security"));
    EXPECT_EQ(same.change, Change::Unchanged);
    EXPECT_EQ(same.subscription.uuid, created.subscription.uuid);
    EXPECT_EQ(store->revision(), r1);

    auto changed = make_sub("security");
    changed.heartbeat_interval_s = 60;
    changed.uuid = sub::new_uuid(); // ignored: an existing subscription keeps its uuid
    auto updated = store->put_subscription(changed);
    EXPECT_EQ(updated.change, Change::Updated);
    EXPECT_EQ(updated.subscription.uuid, created.subscription.uuid);
    auto r2 = store->revision();
    EXPECT_GT(r2, r1);

    auto got = store->subscription_by_name("security");
    ASSERT_TRUE(got);
    EXPECT_EQ(got->uuid, created.subscription.uuid);
    EXPECT_EQ(got->heartbeat_interval_s, 60u);
    EXPECT_EQ(*got, updated.subscription);
    std::string lower = created.subscription.uuid;
    for (auto& c : lower)
        c = static_cast<char>(std::tolower(c));
    auto by_uuid = store->subscription_by_uuid(lower);
    ASSERT_TRUE(by_uuid);
    EXPECT_EQ(by_uuid->name, "security");
    EXPECT_FALSE(store->subscription_by_name("nope"));
    EXPECT_FALSE(store->subscription_by_uuid(sub::new_uuid()));
}

TEST_F(StoreTest, ListEnableDisableDelete) {
    auto store = open(url);
    store->put_subscription(make_sub("zeta"));
    auto given = make_sub("alpha");
    given.uuid = "0F1E2D3C-4B5A-4978-8796-A5B4C3D2E1F0";
    EXPECT_EQ(store->put_subscription(given).subscription.uuid, given.uuid);
    auto clash = make_sub("beta");
    clash.uuid = given.uuid;
    EXPECT_THROW(store->put_subscription(clash), StoreError);

    auto all = store->subscriptions();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].name, "alpha");
    EXPECT_EQ(all[1].name, "zeta");

    auto r = store->revision();
    EXPECT_TRUE(store->set_enabled("alpha", false));
    EXPECT_FALSE(store->subscription_by_name("alpha")->enabled);
    EXPECT_GT(store->revision(), r);
    r = store->revision();
    EXPECT_TRUE(store->set_enabled("alpha", false)); // no change
    EXPECT_EQ(store->revision(), r);
    EXPECT_TRUE(store->set_enabled("alpha", true));
    EXPECT_TRUE(store->subscription_by_name("alpha")->enabled);
    EXPECT_FALSE(store->set_enabled("missing", true));

    store->put_bookmark("WIN$@D", given.uuid, "<BookmarkList/>");
    HeartbeatUpdate hb{"WIN$@D",   given.uuid, at(100), HeartbeatUpdate::Kind::Heartbeat,
                       "10.0.0.1", ""};
    store->apply_heartbeats(std::span(&hb, 1));
    store->record_subscription_end({"WIN$@D", given.uuid, at(5), "cancel", "", ""});
    r = store->revision();
    EXPECT_TRUE(store->delete_subscription("alpha"));
    EXPECT_GT(store->revision(), r);
    EXPECT_FALSE(store->delete_subscription("alpha"));
    EXPECT_FALSE(store->subscription_by_uuid(given.uuid));
    EXPECT_FALSE(store->bookmark("WIN$@D", given.uuid));
    EXPECT_TRUE(store->hosts(given.uuid).empty());
    EXPECT_TRUE(store->subscription_ends(given.uuid, 10).empty());
    EXPECT_EQ(store->subscriptions().size(), 1u);
}

TEST_F(StoreTest, InvalidDefinitionIsRejected) {
    auto store = open(url);
    auto s = make_sub("bad");
    s.query = "<NotAQueryList/>";
    EXPECT_THROW(store->put_subscription(s), StoreError);
    s = make_sub("bad");
    s.outputs[0].driver = "nowhere";
    EXPECT_THROW(store->put_subscription(s), StoreError);
    EXPECT_TRUE(store->subscriptions().empty());
    EXPECT_EQ(store->revision(), 0u);
}

// Rows written by something else than this wec: garbage, or a definition of a newer wec with a key
// this one does not know. The listing keeps the others and names the unreadable ones.
TEST_F(StoreTest, UnreadableRowsAreListedApartNotThrown) {
    auto store = open(url);
    auto alpha = store->put_subscription(make_sub("alpha")).subscription;
    auto zeta = store->put_subscription(make_sub("zeta")).subscription;
    const std::string garbage_uuid = "11111111-2222-4333-8444-555555555555";
    const std::string future_uuid = "66666666-7777-4888-9999-AAAAAAAAAAAA";
    raw_insert_subscription(db, garbage_uuid, "garbage", true, "this is [not toml");
    auto future = make_sub("from-the-future");
    future.uuid = future_uuid;
    raw_insert_subscription(db, future_uuid, "from-the-future", false,
                            "compression = \"zstd\"\n" + sub::to_toml(future));

    auto list = store->list_subscriptions();
    ASSERT_EQ(list.subscriptions.size(), 2u);
    EXPECT_EQ(list.subscriptions[0], alpha);
    EXPECT_EQ(list.subscriptions[1], zeta);
    ASSERT_EQ(list.broken.size(), 2u);
    EXPECT_EQ(list.broken[0].name, "from-the-future"); // ordered by name
    EXPECT_EQ(list.broken[0].uuid, future_uuid);
    EXPECT_FALSE(list.broken[0].enabled);
    EXPECT_NE(list.broken[0].error.find("compression"), std::string::npos) << list.broken[0].error;
    EXPECT_EQ(list.broken[1].name, "garbage");
    EXPECT_EQ(list.broken[1].uuid, garbage_uuid);
    EXPECT_TRUE(list.broken[1].enabled);
    EXPECT_NE(list.broken[1].error.find("subscription 'garbage'"), std::string::npos)
        << list.broken[1].error;
    EXPECT_NE(list.broken[1].error.find(db), std::string::npos) << list.broken[1].error;

    // The strict forms still refuse them, naming the row.
    try {
        store->subscriptions();
        ADD_FAILURE() << "subscriptions() listed an unreadable row";
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("'from-the-future'"), std::string::npos) << e.what();
    }
    EXPECT_THROW(store->subscription_by_name("garbage"), StoreError);
    EXPECT_THROW(store->subscription_by_uuid(garbage_uuid), StoreError);
    EXPECT_THROW(store->set_enabled("garbage", false), StoreError);

    // Removing (or replacing) the row clears it.
    EXPECT_TRUE(store->delete_subscription("garbage"));
    auto fixed = make_sub("from-the-future");
    EXPECT_EQ(store->put_subscription(fixed).change, Change::Updated);
    list = store->list_subscriptions();
    EXPECT_TRUE(list.broken.empty());
    ASSERT_EQ(list.subscriptions.size(), 3u);
    EXPECT_EQ(list.subscriptions[1].uuid, future_uuid);
    EXPECT_EQ(store->subscriptions().size(), 3u);
}

TEST_F(StoreTest, RevisionSeesChangesFromAnotherConnection) {
    auto server = open(url);
    auto cli = open(url); // as `wec sub apply` in another process
    auto r0 = server->revision();
    auto put = cli->put_subscription(make_sub("security"));
    auto r1 = server->revision();
    EXPECT_NE(r1, r0);
    auto seen = server->subscription_by_name("security");
    ASSERT_TRUE(seen);
    EXPECT_EQ(seen->uuid, put.subscription.uuid);
    cli->set_enabled("security", false);
    EXPECT_NE(server->revision(), r1);
    EXPECT_FALSE(server->subscription_by_name("security")->enabled);
    cli->delete_subscription("security");
    EXPECT_TRUE(server->subscriptions().empty());
    // Heartbeats and bookmarks do not count as subscription changes.
    auto r2 = server->revision();
    cli->put_bookmark("c", put.subscription.uuid, "<BookmarkList/>");
    EXPECT_EQ(server->revision(), r2);
}

TEST_F(StoreTest, BookmarksSurviveReopen) {
    std::string uuid = sub::new_uuid();
    {
        auto store = open(url);
        EXPECT_FALSE(store->bookmark("WIN10$@D.LOCAL", uuid));
        store->put_bookmark("WIN10$@D.LOCAL", uuid, "<BookmarkList>1</BookmarkList>");
        store->put_bookmark("WIN10$@D.LOCAL", uuid, "<BookmarkList>2</BookmarkList>");
        store->put_bookmark("WIN11$@D.LOCAL", uuid, "<BookmarkList>other</BookmarkList>");
    }
    auto store = open(url);
    EXPECT_EQ(store->bookmark("WIN10$@D.LOCAL", uuid), "<BookmarkList>2</BookmarkList>");
    EXPECT_EQ(store->bookmark("WIN11$@D.LOCAL", uuid), "<BookmarkList>other</BookmarkList>");
    EXPECT_FALSE(store->bookmark("WIN10$@D.LOCAL", sub::new_uuid()));
    store->delete_bookmarks(uuid);
    EXPECT_FALSE(store->bookmark("WIN10$@D.LOCAL", uuid));
    EXPECT_FALSE(store->bookmark("WIN11$@D.LOCAL", uuid));
}

TEST_F(StoreTest, HeartbeatBatchingCoalesces) {
    auto store = open(url);
    std::string uuid = sub::new_uuid();
    HeartbeatBatcher batcher(*store);
    constexpr int kClients = 10;
    constexpr int kRounds = 100;
    for (int round = 0; round < kRounds; ++round) {
        for (int c = 0; c < kClients; ++c) {
            HeartbeatUpdate u;
            u.client = "WIN" + std::to_string(c) + "$@D";
            u.subscription_uuid = uuid;
            u.time = at(1000 + round);
            u.kind =
                round % 10 == 3 ? HeartbeatUpdate::Kind::Events : HeartbeatUpdate::Kind::Heartbeat;
            u.address = "10.0.0." + std::to_string(round); // last writer wins
            if (round == 0) u.machine_id = "win" + std::to_string(c) + ".d.local";
            EXPECT_FALSE(batcher.record(u));
        }
    }
    EXPECT_EQ(batcher.pending(), static_cast<std::size_t>(kClients));
    EXPECT_TRUE(store->hosts(uuid).empty()); // nothing written before the flush
    EXPECT_EQ(batcher.flush(), static_cast<std::size_t>(kClients));
    EXPECT_EQ(batcher.pending(), 0u);
    EXPECT_EQ(batcher.flush(), 0u);

    auto hosts = store->hosts(uuid);
    ASSERT_EQ(hosts.size(), static_cast<std::size_t>(kClients));
    for (const auto& h : hosts) {
        EXPECT_EQ(h.first_seen, at(1000));
        EXPECT_EQ(h.last_seen, at(1000 + kRounds - 1));
        ASSERT_TRUE(h.last_event_seen);
        EXPECT_EQ(*h.last_event_seen, at(1093));
        EXPECT_EQ(h.address, "10.0.0.99");
        EXPECT_EQ(h.machine_id, "win" + h.client.substr(3, h.client.find('$') - 3) + ".d.local");
    }

    // A later batch: first_seen kept, times only move forward, address replaced, machine kept.
    batcher.record(
        {"WIN0$@D", uuid, at(2000), HeartbeatUpdate::Kind::Heartbeat, "192.168.1.1", ""});
    batcher.record({"WIN1$@D", uuid, at(500), HeartbeatUpdate::Kind::Events, "", ""}); // late, old
    batcher.record({"NEW$@D", uuid, at(3000), HeartbeatUpdate::Kind::Heartbeat, "", ""});
    EXPECT_EQ(batcher.flush(), 3u);
    hosts = store->hosts(uuid);
    ASSERT_EQ(hosts.size(), static_cast<std::size_t>(kClients + 1));
    EXPECT_EQ(hosts[0].client, "NEW$@D");
    EXPECT_EQ(hosts[0].first_seen, at(3000));
    EXPECT_FALSE(hosts[0].last_event_seen);
    EXPECT_EQ(hosts[1].client, "WIN0$@D");
    EXPECT_EQ(hosts[1].first_seen, at(1000));
    EXPECT_EQ(hosts[1].last_seen, at(2000));
    EXPECT_EQ(*hosts[1].last_event_seen, at(1093));
    EXPECT_EQ(hosts[1].address, "192.168.1.1");
    EXPECT_EQ(hosts[1].machine_id, "win0.d.local");
    EXPECT_EQ(hosts[2].client, "WIN1$@D");
    EXPECT_EQ(hosts[2].first_seen, at(500));
    EXPECT_EQ(hosts[2].last_seen, at(1099));
    EXPECT_EQ(*hosts[2].last_event_seen, at(1093));
    EXPECT_EQ(hosts[2].address, "10.0.0.99");
}

TEST_F(StoreTest, HeartbeatBatcherSizeTriggerBackgroundAndShutdownFlush) {
    auto store = open(url);
    std::string uuid = sub::new_uuid();
    {
        HeartbeatBatcher batcher(*store, {std::chrono::milliseconds(3600000), 3});
        batcher.start();
        EXPECT_FALSE(batcher.record({"a", uuid, at(1), HeartbeatUpdate::Kind::Heartbeat, "", ""}));
        EXPECT_FALSE(batcher.record({"b", uuid, at(1), HeartbeatUpdate::Kind::Heartbeat, "", ""}));
        EXPECT_TRUE(batcher.record({"c", uuid, at(1), HeartbeatUpdate::Kind::Heartbeat, "", ""}));
        // The size trigger wakes the background flusher long before its (1 h) interval.
        for (int i = 0; i < 500 && store->hosts(uuid).size() < 3; ++i)
            std::this_thread::sleep_for(10ms);
        EXPECT_EQ(store->hosts(uuid).size(), 3u);
        batcher.record({"d", uuid, at(1), HeartbeatUpdate::Kind::Heartbeat, "", ""});
        // Destroyed with one pending update: the destructor stops the thread and flushes.
    }
    EXPECT_EQ(store->hosts(uuid).size(), 4u);

    HeartbeatBatcher timed(*store, {std::chrono::milliseconds(20), 1000});
    timed.start();
    timed.record({"e", uuid, at(1), HeartbeatUpdate::Kind::Heartbeat, "", ""});
    for (int i = 0; i < 500 && store->hosts(uuid).size() < 5; ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_EQ(store->hosts(uuid).size(), 5u);
    timed.stop();
    EXPECT_EQ(timed.failed_flushes(), 0u);
}

namespace {

// A store whose heartbeat writes fail until told otherwise (other methods unused).
class FlakyStore : public Store {
public:
    explicit FlakyStore(Store& real) : real_(real) {}
    bool fail = true;
    int schema_version() override { return real_.schema_version(); }
    std::string describe() const override { return "flaky"; }
    PutResult put_subscription(const sub::Subscription& s) override {
        return real_.put_subscription(s);
    }
    std::optional<sub::Subscription> subscription_by_name(std::string_view n) override {
        return real_.subscription_by_name(n);
    }
    std::optional<sub::Subscription> subscription_by_uuid(std::string_view u) override {
        return real_.subscription_by_uuid(u);
    }
    SubscriptionList list_subscriptions() override { return real_.list_subscriptions(); }
    bool delete_subscription(std::string_view n) override { return real_.delete_subscription(n); }
    bool set_enabled(std::string_view n, bool e) override { return real_.set_enabled(n, e); }
    std::uint64_t revision() override { return real_.revision(); }
    std::optional<std::string> bookmark(std::string_view c, std::string_view u) override {
        return real_.bookmark(c, u);
    }
    void put_bookmark(std::string_view c, std::string_view u, std::string_view b) override {
        real_.put_bookmark(c, u, b);
    }
    void delete_bookmarks(std::string_view u) override { real_.delete_bookmarks(u); }
    void apply_heartbeats(std::span<const HeartbeatUpdate> updates) override {
        if (fail) throw StoreError("flaky: disk full");
        real_.apply_heartbeats(updates);
    }
    std::vector<HostState> hosts(std::string_view u) override { return real_.hosts(u); }
    void record_subscription_end(const SubscriptionEndRecord& r) override {
        real_.record_subscription_end(r);
    }
    std::vector<SubscriptionEndRecord> subscription_ends(std::string_view u,
                                                         std::size_t l) override {
        return real_.subscription_ends(u, l);
    }

private:
    Store& real_;
};

} // namespace

TEST_F(StoreTest, FailedFlushKeepsUpdates) {
    auto real = open(url);
    FlakyStore flaky(*real);
    std::string uuid = sub::new_uuid();
    HeartbeatBatcher batcher(flaky);
    batcher.record({"a", uuid, at(10), HeartbeatUpdate::Kind::Events, "1.1.1.1", "m"});
    EXPECT_THROW(batcher.flush(), StoreError);
    EXPECT_EQ(batcher.pending(), 1u);
    batcher.record({"a", uuid, at(20), HeartbeatUpdate::Kind::Heartbeat, "2.2.2.2", ""});
    flaky.fail = false;
    EXPECT_EQ(batcher.flush(), 1u);
    auto hosts = real->hosts(uuid);
    ASSERT_EQ(hosts.size(), 1u);
    EXPECT_EQ(hosts[0].first_seen, at(10));
    EXPECT_EQ(hosts[0].last_seen, at(20));
    EXPECT_EQ(*hosts[0].last_event_seen, at(10));
    EXPECT_EQ(hosts[0].address, "2.2.2.2");
    EXPECT_EQ(hosts[0].machine_id, "m");
}

TEST_F(StoreTest, BatcherReportsTheLastFlushError) {
    auto real = open(url);
    FlakyStore flaky(*real);
    HeartbeatBatcher batcher(flaky, {std::chrono::milliseconds(3600000), 1000});
    EXPECT_EQ(batcher.last_error(), "");
    batcher.record({"a", sub::new_uuid(), at(10), HeartbeatUpdate::Kind::Heartbeat, "", ""});
    EXPECT_THROW(batcher.flush(), StoreError);
    EXPECT_EQ(batcher.last_error(), "flaky: disk full");
    flaky.fail = false;
    EXPECT_EQ(batcher.flush(), 1u);
    EXPECT_EQ(batcher.last_error(), "");
}

TEST(HostStatusTest, ClassificationUsesInjectedNow) {
    HostState h;
    h.first_seen = at(0);
    h.last_seen = at(10000);
    h.last_event_seen = at(9000);
    auto interval = std::chrono::seconds(3600);
    EXPECT_EQ(classify(h, interval, at(10000)), HostStatus::Active);
    EXPECT_EQ(classify(h, interval, at(9000 + 3600)), HostStatus::Active); // boundary included
    EXPECT_EQ(classify(h, interval, at(9000 + 3601)), HostStatus::Alive);
    EXPECT_EQ(classify(h, interval, at(10000 + 3600)), HostStatus::Alive);
    EXPECT_EQ(classify(h, interval, at(10000 + 3601)), HostStatus::Dead);
    h.last_event_seen.reset();
    EXPECT_EQ(classify(h, interval, at(10000)), HostStatus::Alive);
    EXPECT_EQ(classify(h, std::chrono::seconds(60), at(10061)), HostStatus::Dead);
    EXPECT_EQ(to_string(HostStatus::Active), "active");
    EXPECT_EQ(to_string(HostStatus::Alive), "alive");
    EXPECT_EQ(to_string(HostStatus::Dead), "dead");
}

TEST_F(StoreTest, SubscriptionEnds) {
    auto store = open(url);
    std::string a = sub::new_uuid(), b = sub::new_uuid();
    store->record_subscription_end(
        {"WIN1$@D", a, at(100), "SourceCancelling", "5", "Access denied"});
    store->record_subscription_end({"WIN2$@D", a, at(300), "SourceCancelling", "", ""});
    store->record_subscription_end({"WIN3$@D", b, at(200), "DeliveryFailure", "", ""});
    auto all = store->subscription_ends("", 10);
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].client, "WIN2$@D");
    EXPECT_EQ(all[1].client, "WIN3$@D");
    EXPECT_EQ(all[2].client, "WIN1$@D");
    EXPECT_EQ(all[2].subscription_uuid, a);
    EXPECT_EQ(all[2].time, at(100));
    EXPECT_EQ(all[2].fault_code, "5");
    EXPECT_EQ(all[2].fault_message, "Access denied");
    auto of_a = store->subscription_ends(a, 1);
    ASSERT_EQ(of_a.size(), 1u);
    EXPECT_EQ(of_a[0].client, "WIN2$@D");
}

TEST_F(StoreTest, ConcurrentWritersFromThreadsAndAnotherConnection) {
    auto store = open(url);
    auto other = open(url); // a second "process" writing at the same time
    std::string uuid = store->put_subscription(make_sub("security")).subscription.uuid;
    HeartbeatBatcher batcher(*store, {std::chrono::milliseconds(5), 50});
    batcher.start();
    constexpr int kThreads = 8;
    constexpr int kPuts = 100;
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            Store& target = t % 2 == 0 ? *store : *other;
            std::string client = "WIN" + std::to_string(t) + "$@D";
            for (int i = 0; i < kPuts; ++i) {
                try {
                    target.put_bookmark(client, uuid,
                                        "<BookmarkList>" + std::to_string(i) + "</BookmarkList>");
                    batcher.record({client, uuid, at(i), HeartbeatUpdate::Kind::Events,
                                    "10.0.0." + std::to_string(t), ""});
                    if (i % 10 == 0) {
                        HeartbeatUpdate u{client + "-direct",
                                          uuid,
                                          at(i),
                                          HeartbeatUpdate::Kind::Heartbeat,
                                          "",
                                          ""};
                        target.apply_heartbeats(std::span(&u, 1));
                        (void)target.revision();
                        (void)target.bookmark(client, uuid);
                    }
                } catch (const std::exception& e) {
                    ++errors;
                    ADD_FAILURE() << e.what();
                }
            }
        });
    }
    for (auto& th : threads)
        th.join();
    batcher.stop();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(batcher.failed_flushes(), 0u);
    for (int t = 0; t < kThreads; ++t) {
        EXPECT_EQ(store->bookmark("WIN" + std::to_string(t) + "$@D", uuid),
                  "<BookmarkList>" + std::to_string(kPuts - 1) + "</BookmarkList>");
    }
    auto hosts = store->hosts(uuid);
    EXPECT_EQ(hosts.size(), static_cast<std::size_t>(2 * kThreads));
    for (const auto& h : hosts) {
        if (h.client.find("-direct") == std::string::npos) {
            EXPECT_EQ(h.last_seen, at(kPuts - 1)) << h.client;
        }
    }
}

TEST_F(StoreTest, WaitsForAnotherProcessHoldingTheWriteLock) {
    auto store = open(url);
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    std::thread release([raw] {
        std::this_thread::sleep_for(300ms);
        sqlite3_exec(raw, "COMMIT", nullptr, nullptr, nullptr);
    });
    auto start = std::chrono::steady_clock::now();
    EXPECT_NO_THROW(store->put_bookmark("c", "0F1E2D3C-4B5A-4978-8796-A5B4C3D2E1F0", "<b/>"));
    EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
    release.join();
    sqlite3_close(raw);
    EXPECT_EQ(store->bookmark("c", "0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0"), "<b/>");
}

TEST_F(StoreTest, BusyTimeoutBecomesStoreError) {
    SqliteStore store(db, {std::chrono::milliseconds(100)});
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
    try {
        store.put_bookmark("c", sub::new_uuid(), "<b/>");
        ADD_FAILURE() << "no error while the database was locked";
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("busy"), std::string::npos) << e.what();
    }
    // Reads still work while another process writes (WAL).
    EXPECT_EQ(store.revision(), 0u);
    sqlite3_exec(raw, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(raw);
    EXPECT_NO_THROW(store.put_bookmark("c", sub::new_uuid(), "<b/>"));
}

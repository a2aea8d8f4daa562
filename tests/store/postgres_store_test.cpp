// PostgreSQL only: several nodes on one database, nodes migrating at the same time, the server
// going away and coming back, a node started while the server is down, URLs and passwords.
// (The Store contract itself runs on both backends in store_test.cpp.)
#include "common/handle.hpp"
#include "helpers.hpp"
#include "store/postgres_store.hpp"
#include "store/store.hpp"
#include "support/captured_log.hpp"
#include "support/files.hpp"
#include "support/postgres_server.hpp"
#include "support/process.hpp"

#include <atomic>
#include <cstdio>
#include <gtest/gtest.h>
#include <latch>
#include <thread>

namespace sub = wec::subscription;
using namespace wec::store;
using namespace wec::store::testing;
using namespace std::chrono_literals;
using wec::testing::count_of;
using wec::testing::PostgresServer;
using wec::testing::TempDir;

namespace {

using wec::FilePtr;

// Calls `f` until it stops throwing StoreError or `limit` passes; true when it succeeded.
template <class F>
bool eventually(F f, std::chrono::milliseconds limit, std::chrono::milliseconds* took = nullptr) {
    auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < limit) {
        try {
            f();
            if (took)
                *took = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - start);
            return true;
        } catch (const StoreError&) {
            std::this_thread::sleep_for(50ms);
        }
    }
    return false;
}

// Every store operation, expected to fail with StoreError (not crash, not hang) while the
// server is away.
void expect_every_call_fails(Store& store, const std::string& uuid) {
    EXPECT_THROW(store.schema_version(), StoreError);
    EXPECT_THROW(store.stats(), StoreError);
    EXPECT_THROW(store.revision(), StoreError);
    EXPECT_THROW(store.list_subscriptions(), StoreError);
    EXPECT_THROW(store.subscription_by_name("security"), StoreError);
    EXPECT_THROW(store.subscription_by_uuid(uuid), StoreError);
    EXPECT_THROW(store.put_subscription(make_sub("other")), StoreError);
    EXPECT_THROW(store.set_enabled("security", false), StoreError);
    EXPECT_THROW(store.delete_subscription("security"), StoreError);
    EXPECT_THROW(store.bookmark("c", uuid), StoreError);
    EXPECT_THROW(store.put_bookmark("c", uuid, "<b/>"), StoreError);
    EXPECT_THROW(store.delete_bookmarks(uuid), StoreError);
    HeartbeatUpdate hb{"c", uuid, at(1), HeartbeatUpdate::Kind::Heartbeat, "", "", ""};
    EXPECT_THROW(store.apply_heartbeats(std::span(&hb, 1)), StoreError);
    EXPECT_THROW(store.hosts(uuid), StoreError);
    EXPECT_THROW(store.record_subscription_end({"c", uuid, at(2), "x", "", ""}), StoreError);
    EXPECT_THROW(store.subscription_ends(uuid, 10), StoreError);
}

class PostgresStoreTest : public ::testing::Test {
protected:
    TempDir dir;
    wec::testing::CapturedLog captured;
    wec::Logger& log = *captured.get();
};

} // namespace

// Two nodes (two stores, each with its own connections) on one database share subscriptions,
// revision, bookmarks, host states and SubscriptionEnd records.
TEST_F(PostgresStoreTest, TwoNodesShareEverything) {
    auto& server = PostgresServer::shared();
    auto url = server.url(server.create_database());
    auto a = open(url);
    auto b = open(url);

    auto created = a->put_subscription(make_sub("security")).subscription;
    EXPECT_EQ(b->revision(), a->revision());
    auto seen = b->subscription_by_name("security");
    ASSERT_TRUE(seen);
    EXPECT_EQ(*seen, created);
    EXPECT_EQ(b->put_subscription(make_sub("security")).change, Change::Unchanged);

    auto r = a->revision();
    ASSERT_TRUE(b->set_enabled("security", false));
    EXPECT_GT(a->revision(), r);
    EXPECT_FALSE(a->subscription_by_uuid(created.uuid)->enabled);

    // A source moving from node A to node B continues from its bookmark.
    a->put_bookmark("WIN10$@D", created.uuid, "<BookmarkList>7</BookmarkList>");
    EXPECT_EQ(b->bookmark("WIN10$@D", created.uuid), "<BookmarkList>7</BookmarkList>");
    b->put_bookmark("WIN10$@D", created.uuid, "<BookmarkList>8</BookmarkList>");
    EXPECT_EQ(a->bookmark("WIN10$@D", created.uuid), "<BookmarkList>8</BookmarkList>");

    // Heartbeats from both nodes merge by the same rules as from one.
    HeartbeatUpdate early{"WIN10$@D", created.uuid, at(100), HeartbeatUpdate::Kind::Events,
                          "10.0.0.1", "win10",      ""};
    HeartbeatUpdate late{"WIN10$@D", created.uuid, at(200), HeartbeatUpdate::Kind::Heartbeat,
                         "10.0.0.2", "",           ""};
    b->apply_heartbeats(std::span(&late, 1));
    a->apply_heartbeats(std::span(&early, 1));
    auto hosts = b->hosts(created.uuid);
    ASSERT_EQ(hosts.size(), 1u);
    EXPECT_EQ(hosts[0].first_seen, at(100));
    EXPECT_EQ(hosts[0].last_seen, at(200));
    EXPECT_EQ(hosts[0].last_event_seen, at(100));
    EXPECT_EQ(hosts[0].address, "10.0.0.1"); // the last written non-empty one
    EXPECT_EQ(hosts[0].machine_id, "win10");

    a->record_subscription_end({"WIN10$@D", created.uuid, at(300), "SourceCancelling", "", ""});
    EXPECT_EQ(b->subscription_ends(created.uuid, 10).size(), 1u);
    EXPECT_EQ(b->stats().bookmarks, 1u);

    ASSERT_TRUE(b->delete_subscription("security"));
    EXPECT_TRUE(a->subscriptions().empty());
    EXPECT_FALSE(a->bookmark("WIN10$@D", created.uuid));
    EXPECT_TRUE(a->hosts(created.uuid).empty());
}

// Both nodes write subscriptions at the same time: each change is applied once, and every
// change bumps the shared revision once (writers serialize on the revision row).
TEST_F(PostgresStoreTest, ConcurrentSubscriptionChangesFromTwoNodes) {
    auto& server = PostgresServer::shared();
    auto url = server.url(server.create_database());
    auto a = open(url);
    auto b = open(url);
    constexpr int kPerNode = 20;
    std::atomic<int> errors{0};
    std::latch go(2);
    auto writer = [&](Store& store, const std::string& prefix) {
        go.arrive_and_wait();
        for (int i = 0; i < kPerNode; ++i) {
            try {
                store.put_subscription(make_sub(prefix + std::to_string(i)));
                store.put_subscription(make_sub("shared")); // both nodes, same definition
            } catch (const std::exception& e) {
                ++errors;
                ADD_FAILURE() << e.what();
            }
        }
    };
    std::thread ta(writer, std::ref(*a), "a");
    std::thread tb(writer, std::ref(*b), "b");
    ta.join();
    tb.join();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(a->subscriptions().size(), static_cast<std::size_t>(2 * kPerNode + 1));
    // One creation per subscription: "shared" was created once and then left unchanged.
    EXPECT_EQ(a->revision(), static_cast<std::uint64_t>(2 * kPerNode + 1));
}

// Nodes starting at once on a fresh database: every one migrates (or finds it migrated) without
// error, and the schema is applied once.
TEST_F(PostgresStoreTest, ConcurrentMigrationsApplyTheSchemaOnce) {
    auto& server = PostgresServer::shared();
    auto database = server.create_database();
    auto url = server.url(database);
    constexpr int kNodes = 4;
    std::latch go(kNodes);
    std::atomic<int> failures{0};
    std::vector<int> versions(kNodes, -1);
    std::vector<std::thread> nodes;
    for (int i = 0; i < kNodes; ++i)
        nodes.emplace_back([&, i] {
            go.arrive_and_wait();
            try {
                PostgresStore store(url);
                versions[static_cast<std::size_t>(i)] = store.schema_version();
            } catch (const std::exception& e) {
                ++failures;
                ADD_FAILURE() << "node " << i << ": " << e.what();
            }
        });
    for (auto& n : nodes)
        n.join();
    EXPECT_EQ(failures.load(), 0);
    for (int v : versions)
        EXPECT_EQ(v, PostgresStore::latest_schema_version());
    auto applied = server.query(database, "SELECT count(*) FROM schema_version");
    ASSERT_EQ(applied.size(), 1u);
    EXPECT_EQ(applied[0], std::to_string(PostgresStore::latest_schema_version()));
    EXPECT_EQ(server.query(database, "SELECT value FROM meta WHERE key = 'revision'"),
              std::vector<std::string>{"0"});
}

// The server stops under a running store: every call throws StoreError (no crash, no hang),
// the loss is logged once; once the server is back the same store works again by itself.
TEST_F(PostgresStoreTest, ServerStoppedThenRestarted) {
    PostgresServer server; // its own: this test stops it
    auto url = server.url(server.create_database());
    OpenOptions options;
    options.log = &log;
    auto store = open(url, options);
    auto uuid = store->put_subscription(make_sub("security")).subscription.uuid;
    store->put_bookmark("c", uuid, "<b>1</b>");
    (void)store->revision(); // leaves idle connections in the pool

    server.stop("fast");
    for (int round = 0; round < 3; ++round)
        expect_every_call_fails(*store, uuid);
    EXPECT_EQ(captured.count("state store unavailable"), 1u) << captured.text();
    EXPECT_EQ(captured.count("available again"), 0u) << captured.text();

    server.start();
    std::chrono::milliseconds took{};
    ASSERT_TRUE(eventually([&] { (void)store->revision(); }, 20s, &took))
        << "the store did not come back";
    std::printf("store usable again %lld ms after the server restarted\n",
                static_cast<long long>(took.count()));
    EXPECT_EQ(store->subscription_by_name("security")->uuid, uuid);
    EXPECT_EQ(store->bookmark("c", uuid), "<b>1</b>");
    store->put_bookmark("c", uuid, "<b>2</b>");
    EXPECT_EQ(store->bookmark("c", uuid), "<b>2</b>");
    EXPECT_EQ(captured.count("state store unavailable"), 1u) << captured.text();
    EXPECT_EQ(captured.count("state store available again"), 1u) << captured.text();
}

// When a bookmark commit waits for the WAL flush (as SQLite's fsync, sqlite_sync_test.cpp): a
// client's first bookmark always, later ones at most once per bookmark_sync_interval. Seen from
// outside: after a commit that waited, no WAL is left unflushed; after one that did not, the WAL
// writer (wal_writer_delay 10 s here) has not flushed it yet. wal_level = minimal: no standby
// snapshot records written in the background between a commit and the check.
TEST_F(PostgresStoreTest, AFirstBookmarkWaitsForTheWalFlushLaterOnesOnlyOncePerInterval) {
    PostgresServer server; // its own: reconfigured and restarted
    const auto database = server.create_database();
    for (const char* sql :
         {"ALTER SYSTEM SET wal_writer_delay = '10s'", "ALTER SYSTEM SET wal_level = 'minimal'",
          "ALTER SYSTEM SET max_wal_senders = 0"})
        server.query(database, sql);
    server.stop("fast");
    server.start();
    const auto unflushed = [&] {
        auto rows = server.query(database,
                                 "SELECT pg_current_wal_insert_lsn() > pg_current_wal_flush_lsn()");
        return rows.size() == 1 && rows[0] == "t";
    };
    OpenOptions options;
    options.bookmark_sync_interval = 1h;
    auto store = open(server.url(database), options);
    EXPECT_EQ(store->bookmark_durability(),
              "bookmark commits wait for the WAL flush: a client's first, then at most every "
              "3600000 ms");
    const auto uuid = store->put_subscription(make_sub("security")).subscription.uuid;

    store->put_bookmark("host1", uuid, "<b>1</b>");
    EXPECT_FALSE(unflushed()) << "a client's first bookmark must be flushed before it is acked";
    int left_unflushed = 0;
    for (int i = 2; i <= 8; ++i) {
        store->put_bookmark("host1", uuid, "<b>" + std::to_string(i) + "</b>");
        left_unflushed += unflushed() ? 1 : 0;
    }
    EXPECT_GE(left_unflushed, 1) << "later bookmarks should not wait for the WAL flush";
    // Another client's first bookmark waits, and flushes the earlier commits with it.
    store->put_bookmark("host2", uuid, "<b>1</b>");
    EXPECT_FALSE(unflushed());
    EXPECT_EQ(store->bookmark("host1", uuid), "<b>8</b>");
    EXPECT_EQ(store->bookmark("host2", uuid), "<b>1</b>");

    // Interval 0: every bookmark commit waits.
    options.bookmark_sync_interval = 0ms;
    auto every = open(server.url(database), options);
    EXPECT_EQ(every->bookmark_durability(), "bookmark commits as synchronous_commit says");
    for (int i = 9; i <= 14; ++i) {
        every->put_bookmark("host1", uuid, "<b>" + std::to_string(i) + "</b>");
        EXPECT_FALSE(unflushed()) << "bookmark " << i;
    }
    EXPECT_EQ(every->bookmark("host1", uuid), "<b>14</b>");
    // The flush of a first bookmark does not change what another commit stored.
    store->put_bookmark("host3", uuid, "<b>1</b>");
    EXPECT_FALSE(unflushed());
    EXPECT_EQ(store->bookmark("host1", uuid), "<b>14</b>");
    EXPECT_EQ(store->bookmark("host3", uuid), "<b>1</b>");

    // The flush of a first bookmark fails (a trigger refuses the no-op update): the call fails,
    // and the next bookmark commit waits for the flush whatever the interval says.
    server.query(database,
                 "CREATE FUNCTION refuse_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                 "IF NEW.bookmark = OLD.bookmark AND NEW.updated_at = OLD.updated_at THEN "
                 "RAISE EXCEPTION 'no-op update refused'; END IF; RETURN NEW; END $$");
    server.query(database, "CREATE TRIGGER refuse_noop BEFORE UPDATE ON bookmarks FOR EACH ROW "
                           "EXECUTE FUNCTION refuse_noop()");
    EXPECT_THROW(store->put_bookmark("host4", uuid, "<b>1</b>"), StoreError);
    server.query(database, "DROP TRIGGER refuse_noop ON bookmarks");
    store->put_bookmark("host4", uuid, "<b>2</b>");
    EXPECT_FALSE(unflushed()) << "the commit after a failed flush must wait for the flush";
    left_unflushed = 0; // and the ones after it no longer do
    for (int i = 3; i <= 5; ++i) {
        store->put_bookmark("host4", uuid, "<b>" + std::to_string(i) + "</b>");
        left_unflushed += unflushed() ? 1 : 0;
    }
    EXPECT_GE(left_unflushed, 1);
    EXPECT_EQ(store->bookmark("host4", uuid), "<b>5</b>");
}

// Idle pooled connections closed by the server (pg_terminate_backend, as an administrator,
// a failover or an idle timeout would) are noticed before use and replaced: no call fails.
TEST_F(PostgresStoreTest, IdleConnectionsClosedByTheServerAreReplacedWithoutAnError) {
    auto& server = PostgresServer::shared();
    auto database = server.create_database();
    OpenOptions options;
    options.log = &log;
    auto store = open(server.url(database), options);
    auto uuid = store->put_subscription(make_sub("security")).subscription.uuid;
    // Several connections in the pool: concurrent readers.
    std::vector<std::thread> readers;
    for (int i = 0; i < 4; ++i)
        readers.emplace_back([&] {
            for (int j = 0; j < 20; ++j)
                (void)store->revision();
        });
    for (auto& r : readers)
        r.join();
    auto killed = server.query(database,
                               "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM "
                               "pg_stat_activity WHERE application_name = 'wec' AND datname = $1 "
                               "AND pid <> pg_backend_pid()) AS t",
                               {database});
    ASSERT_EQ(killed.size(), 1u);
    EXPECT_NE(killed[0], "0");
    std::this_thread::sleep_for(200ms); // the backends are gone, their sockets closed
    for (int i = 0; i < 10; ++i) {
        EXPECT_NO_THROW((void)store->revision());
        EXPECT_NO_THROW(store->put_bookmark("c", uuid, std::to_string(i)));
    }
    EXPECT_EQ(store->bookmark("c", uuid), "9");
    EXPECT_EQ(captured.count("state store unavailable"), 0u) << captured.text();
}

// The same after a crash (immediate stop: no goodbye to the clients) while writers are busy.
TEST_F(PostgresStoreTest, ServerCrashUnderConcurrentWritersThenBack) {
    PostgresServer server;
    auto url = server.url(server.create_database());
    auto store = open(url);
    auto uuid = store->put_subscription(make_sub("security")).subscription.uuid;
    std::atomic<bool> stop{false};
    std::atomic<int> ok{0}, failed{0}, other{0};
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t)
        writers.emplace_back([&, t] {
            for (int i = 0; !stop; ++i) {
                try {
                    store->put_bookmark("c" + std::to_string(t), uuid, std::to_string(i));
                    ++ok;
                } catch (const StoreError&) {
                    ++failed;
                    std::this_thread::sleep_for(10ms);
                } catch (...) {
                    ++other;
                }
            }
        });
    std::this_thread::sleep_for(200ms);
    server.stop("immediate");
    std::this_thread::sleep_for(300ms);
    int ok_while_down = ok.load();
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(ok.load(), ok_while_down); // nothing succeeds without the server
    server.start();
    EXPECT_TRUE(eventually(
        [&] {
            if (ok.load() <= ok_while_down) throw StoreError("not yet");
        },
        20s));
    stop = true;
    for (auto& w : writers)
        w.join();
    EXPECT_GT(failed.load(), 0);
    EXPECT_EQ(other.load(), 0);
    for (int t = 0; t < 4; ++t)
        EXPECT_TRUE(store->bookmark("c" + std::to_string(t), uuid));
}

// A node started while PostgreSQL is down: the store is created (no exception), every call
// throws StoreError until the server is up, then migrations run and it works.
TEST_F(PostgresStoreTest, OpenedWhileTheServerIsDown) {
    PostgresServer server;
    auto database = server.create_database();
    auto url = server.url(database);
    server.stop("fast");

    OpenOptions options;
    options.log = &log;
    std::unique_ptr<Store> store;
    ASSERT_NO_THROW(store = open(url, options));
    EXPECT_EQ(store->describe(), url);
    for (int round = 0; round < 3; ++round)
        expect_every_call_fails(*store, sub::new_uuid());
    try {
        store->revision();
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("127.0.0.1"), std::string::npos) << e.what();
    }
    EXPECT_EQ(captured.count("state store unavailable"), 1u) << captured.text();

    server.start();
    ASSERT_TRUE(eventually([&] { (void)store->schema_version(); }, 20s));
    EXPECT_EQ(store->schema_version(), PostgresStore::latest_schema_version());
    EXPECT_EQ(store->put_subscription(make_sub("security")).change, Change::Created);
    EXPECT_EQ(store->subscriptions().size(), 1u);
    EXPECT_EQ(captured.count("state store available again"), 1u) << captured.text();
}

// Nothing listens on the port at all (never was a server).
TEST_F(PostgresStoreTest, NothingListening) {
    auto url = "postgres://wec@127.0.0.1:" + std::to_string(wec::testing::free_port()) + "/wec";
    std::unique_ptr<Store> store;
    ASSERT_NO_THROW(store = open(url));
    expect_every_call_fails(*store, sub::new_uuid());
}

TEST(PostgresUrlTest, DescriptionsAndErrorsHideThePassword) {
    EXPECT_EQ(PostgresStore::redact("postgres://wec:s3cret@db1.example.org:5433/wec"
                                    "?sslmode=verify-full&password=other"),
              "postgres://wec@db1.example.org:5433/wec");
    EXPECT_EQ(PostgresStore::redact("postgresql://db1/wec"), "postgres://db1/wec");
    EXPECT_EQ(PostgresStore::redact("postgresql:///wec?host=/run/postgresql"),
              "postgres:///wec?host=/run/postgresql");
    EXPECT_TRUE(PostgresStore::is_url("postgres://x/y"));
    EXPECT_TRUE(PostgresStore::is_url("postgresql://x/y"));
    EXPECT_FALSE(PostgresStore::is_url("sqlite:/x"));

    // Nothing listening: the errors name the database, never the password.
    auto url =
        "postgres://wec:s3cret@127.0.0.1:" + std::to_string(wec::testing::free_port()) + "/wec";
    auto store = open(url);
    EXPECT_EQ(store->describe().find("s3cret"), std::string::npos) << store->describe();
    try {
        store->revision();
        ADD_FAILURE() << "no error without a server";
    } catch (const StoreError& e) {
        EXPECT_EQ(std::string(e.what()).find("s3cret"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(store->describe()), std::string::npos) << e.what();
    }
}

// libpq quotes a URI it cannot parse whole: the error names it without the password.
TEST(PostgresUrlTest, MalformedUrlsAreRefusedAtOpenWithoutThePassword) {
    for (const char* bad : {"postgres://wec:s3cret@[::1/wec", "postgres://h/wec?no_such_option=1",
                            "postgres://h/wec?password=s3cret&no_such_option=1"}) {
        try {
            open(bad);
            ADD_FAILURE() << "opened " << bad;
        } catch (const StoreError& e) {
            std::string what = e.what();
            EXPECT_NE(what.find("store URL"), std::string::npos) << what;
            EXPECT_EQ(what.find("s3cret"), std::string::npos) << what;
        }
    }
}

// PostgreSQL text cannot hold NUL bytes: refused with a StoreError that says so, before
// anything is sent.
TEST(PostgresValuesTest, NulBytesAreRefused) {
    auto& server = PostgresServer::shared();
    auto store = open(server.url(server.create_database()));
    auto uuid = sub::new_uuid();
    try {
        store->put_bookmark("c", uuid, std::string("a\0b", 3));
        ADD_FAILURE() << "stored a NUL byte";
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("NUL"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(store->bookmark("c", uuid));
    store->put_bookmark("c", uuid, "ok"); // the store is fine afterwards
    EXPECT_EQ(store->bookmark("c", uuid), "ok");
}

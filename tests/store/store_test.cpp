// The Store contract, run against both backends: SQLite (a file in a temp dir) and PostgreSQL (a
// fresh database per test on a server started by the suite, tests/support/postgres_server.hpp).
// Backend-specific behaviour (SQLite files and busy timeout, PostgreSQL nodes and connection loss)
// is tested at the end of this file and in postgres_store_test.cpp.
#include "helpers.hpp"
#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"
#include "store/store.hpp"
#include "support/postgres_server.hpp"
#include "support/process.hpp"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <thread>

namespace fs = std::filesystem;
namespace sub = wec::subscription;
using namespace wec::store;
using namespace wec::store::testing;
using namespace std::chrono_literals;
using wec::testing::PostgresServer;
using wec::testing::TempDir;

namespace {

enum class Backend { Sqlite, Postgres };

// How ctest and gtest name the parameter.
void PrintTo(Backend backend, std::ostream* out) {
    *out << (backend == Backend::Sqlite ? "sqlite" : "postgres");
}

// One test, run on each backend: `url` names a new empty store (nothing created yet for SQLite,
// a fresh database for PostgreSQL).
class StoreTest : public ::testing::TestWithParam<Backend> {
protected:
    void SetUp() override {
        if (GetParam() == Backend::Sqlite) {
            url = "sqlite:" + (dir.path() / "wec.db").string();
        } else {
            auto& server = PostgresServer::shared();
            url = server.url(server.create_database());
        }
    }

    bool sqlite() const { return GetParam() == Backend::Sqlite; }
    // What the store's messages name: the file, or the URL without its password.
    std::string location() const { return sqlite() ? url.substr(7) : PostgresStore::redact(url); }
    int latest_version() const {
        return sqlite() ? SqliteStore::latest_schema_version()
                        : PostgresStore::latest_schema_version();
    }
    // Statements that take (lock_write) and release (unlock_write) the lock a bookmark write
    // needs, from another connection, while readers can still read.
    std::string lock_write() const {
        return sqlite() ? "BEGIN IMMEDIATE" : "BEGIN; LOCK TABLE bookmarks IN EXCLUSIVE MODE";
    }

    TempDir dir;
    std::string url;
};

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
    return info.param == Backend::Sqlite ? "sqlite" : "postgres";
}

} // namespace

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values(Backend::Sqlite, Backend::Postgres),
                         backend_name);

TEST_P(StoreTest, OpenMigratesAndReopens) {
    auto store = open(url);
    EXPECT_EQ(store->schema_version(), latest_version());
    EXPECT_EQ(store->revision(), 0u);
    EXPECT_TRUE(store->subscriptions().empty());
    auto stats = store->stats();
    EXPECT_EQ(stats.schema_version, latest_version());
    EXPECT_EQ(stats.subscriptions + stats.bookmarks + stats.hosts + stats.subscription_ends, 0u);
    store.reset();
    // Re-open: nothing to migrate, same version.
    auto again = open(url);
    EXPECT_EQ(again->schema_version(), latest_version());
}

TEST_P(StoreTest, RefusesNewerSchema) {
    open(url).reset();
    RawConnection(url).exec("INSERT INTO schema_version (version, applied_at) VALUES (999, 0)");
    try {
        open(url);
        FAIL() << "opened a database from the future";
    } catch (const StoreError& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("schema version 999 is newer"), std::string::npos) << what;
        EXPECT_NE(what.find(location()), std::string::npos) << what;
    }
}

TEST_P(StoreTest, StatsCountRows) {
    auto store = open(url);
    auto uuid = store->put_subscription(make_sub("security")).subscription.uuid;
    store->put_subscription(make_sub("system"));
    store->put_bookmark("a", uuid, "<b/>");
    store->put_bookmark("b", uuid, "<b/>");
    store->put_bookmark("c", uuid, "<b/>");
    HeartbeatUpdate hb{"a", uuid, at(1), HeartbeatUpdate::Kind::Heartbeat, "", "", ""};
    store->apply_heartbeats(std::span(&hb, 1));
    store->record_subscription_end({"a", uuid, at(2), "cancel", "", ""});
    auto stats = store->stats();
    EXPECT_EQ(stats.schema_version, latest_version());
    EXPECT_EQ(stats.revision, store->revision());
    EXPECT_EQ(stats.subscriptions, 2u);
    EXPECT_EQ(stats.bookmarks, 3u);
    EXPECT_EQ(stats.hosts, 1u);
    EXPECT_EQ(stats.subscription_ends, 1u);
}

TEST_P(StoreTest, UpsertKeepsUuidAndBumpsRevision) {
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

TEST_P(StoreTest, ListEnableDisableDelete) {
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
                       "10.0.0.1", "",         ""};
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

TEST_P(StoreTest, InvalidDefinitionIsRejected) {
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
TEST_P(StoreTest, UnreadableRowsAreListedApartNotThrown) {
    auto store = open(url);
    auto alpha = store->put_subscription(make_sub("alpha")).subscription;
    auto zeta = store->put_subscription(make_sub("zeta")).subscription;
    const std::string garbage_uuid = "11111111-2222-4333-8444-555555555555";
    const std::string future_uuid = "66666666-7777-4888-9999-AAAAAAAAAAAA";
    RawConnection raw(url);
    raw.insert_subscription(garbage_uuid, "garbage", true, "this is [not toml");
    auto future = make_sub("from-the-future");
    future.uuid = future_uuid;
    raw.insert_subscription(future_uuid, "from-the-future", false,
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
    EXPECT_NE(list.broken[1].error.find(location()), std::string::npos) << list.broken[1].error;

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

TEST_P(StoreTest, RevisionSeesChangesFromAnotherConnection) {
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

TEST_P(StoreTest, BookmarksSurviveReopen) {
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

// Quotes, backslashes, braces and commas (PostgreSQL writes batches as array literals), line
// breaks, non-ASCII, and an empty bookmark, in clients and bookmarks alike.
TEST_P(StoreTest, AwkwardCharactersRoundTrip) {
    auto store = open(url);
    std::string uuid = sub::new_uuid();
    const std::vector<std::string> texts = {
        "",
        "plain",
        R"(<BookmarkList><Bookmark Channel="Security" RecordId="42"/></BookmarkList>)",
        R"(back\slash \" {braces}, "quoted", NULL)",
        "line\nbreak\ttab",
        "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac",
        "{}",
        "NULL",
    };
    std::vector<std::thread> writers; // concurrent: written by one group commit or several
    for (std::size_t i = 0; i < texts.size(); ++i)
        writers.emplace_back([&, i] { store->put_bookmark("client " + texts[i], uuid, texts[i]); });
    for (auto& w : writers)
        w.join();
    for (const auto& text : texts)
        EXPECT_EQ(store->bookmark("client " + text, uuid), text) << text;
    std::vector<HeartbeatUpdate> updates;
    for (const auto& text : texts)
        updates.push_back({text, uuid, at(5), HeartbeatUpdate::Kind::Events, text, text, ""});
    store->apply_heartbeats(updates);
    auto hosts = store->hosts(uuid);
    ASSERT_EQ(hosts.size(), texts.size());
    for (const auto& h : hosts) {
        EXPECT_EQ(h.address, h.client);
        EXPECT_EQ(h.machine_id, h.client);
        EXPECT_EQ(h.last_event_seen, at(5));
    }
    store->record_subscription_end({texts[3], uuid, at(6), texts[4], texts[5], texts[2]});
    auto ends = store->subscription_ends(uuid, 5);
    ASSERT_EQ(ends.size(), 1u);
    EXPECT_EQ(ends[0].client, texts[3]);
    EXPECT_EQ(ends[0].status, texts[4]);
    EXPECT_EQ(ends[0].fault_code, texts[5]);
    EXPECT_EQ(ends[0].fault_message, texts[2]);
}

TEST_P(StoreTest, HeartbeatBatchingCoalesces) {
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
        {"WIN0$@D", uuid, at(2000), HeartbeatUpdate::Kind::Heartbeat, "192.168.1.1", "", ""});
    batcher.record(
        {"WIN1$@D", uuid, at(500), HeartbeatUpdate::Kind::Events, "", "", ""}); // late, old
    batcher.record({"NEW$@D", uuid, at(3000), HeartbeatUpdate::Kind::Heartbeat, "", "", ""});
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

// How each host authenticated (schema version 2): the last non-empty mechanism recorded wins,
// an update without one keeps it, directly and through the batcher.
TEST_P(StoreTest, HostsKeepTheirLastMechanism) {
    auto store = open(url);
    std::string uuid = sub::new_uuid();
    std::vector<HeartbeatUpdate> updates{
        {"LAB\\alice", uuid, at(10), HeartbeatUpdate::Kind::Heartbeat, "", "", "NTLM"},
        {"WIN10$@D", uuid, at(10), HeartbeatUpdate::Kind::Events, "", "", "Kerberos"},
        {"WIN10$@D", uuid, at(20), HeartbeatUpdate::Kind::Heartbeat, "", "", ""},
        {"old", uuid, at(10), HeartbeatUpdate::Kind::Heartbeat, "", "", ""}};
    store->apply_heartbeats(updates);
    auto hosts = store->hosts(uuid);
    ASSERT_EQ(hosts.size(), 3u);
    EXPECT_EQ(hosts[0].client, "LAB\\alice");
    EXPECT_EQ(hosts[0].mechanism, "NTLM");
    EXPECT_EQ(hosts[1].client, "WIN10$@D");
    EXPECT_EQ(hosts[1].mechanism, "Kerberos"); // the later update had none: kept
    EXPECT_EQ(hosts[2].client, "old");
    EXPECT_EQ(hosts[2].mechanism, "");

    // A host that moves from NTLM to Kerberos (its SPN fixed): the newer mechanism replaces the
    // stored one; an empty one in the same batch does not undo it.
    HeartbeatBatcher batcher(*store);
    batcher.record({"LAB\\alice", uuid, at(30), HeartbeatUpdate::Kind::Events, "", "", "Kerberos"});
    batcher.record({"LAB\\alice", uuid, at(40), HeartbeatUpdate::Kind::Heartbeat, "", "", ""});
    batcher.record({"old", uuid, at(40), HeartbeatUpdate::Kind::Heartbeat, "", "", "TLS"});
    batcher.record({"old", uuid, at(50), HeartbeatUpdate::Kind::Heartbeat, "", "", "Basic"});
    EXPECT_EQ(batcher.flush(), 2u);
    hosts = store->hosts(uuid);
    ASSERT_EQ(hosts.size(), 3u);
    EXPECT_EQ(hosts[0].mechanism, "Kerberos");
    EXPECT_EQ(hosts[0].last_seen, at(40));
    EXPECT_EQ(hosts[1].mechanism, "Kerberos");
    EXPECT_EQ(hosts[2].mechanism, "Basic");
}

namespace {

// The schema as wec shipped it at version 1 (before the mechanism column), frozen here: what an
// existing database looks like when a newer wec opens it.
constexpr const char* kSqliteSchemaV1 = R"sql(
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('revision', 0);
CREATE TABLE subscriptions (uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    enabled INTEGER NOT NULL, definition TEXT NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE bookmarks (subscription_uuid TEXT NOT NULL, client TEXT NOT NULL,
    bookmark TEXT NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (subscription_uuid, client)) WITHOUT ROWID;
CREATE TABLE heartbeats (subscription_uuid TEXT NOT NULL, client TEXT NOT NULL,
    first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, last_event_seen INTEGER,
    address TEXT NOT NULL DEFAULT '', machine_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (subscription_uuid, client)) WITHOUT ROWID;
CREATE TABLE subscription_ends (id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_uuid TEXT NOT NULL, client TEXT NOT NULL, time INTEGER NOT NULL,
    status TEXT NOT NULL, fault_code TEXT NOT NULL, fault_message TEXT NOT NULL);
CREATE INDEX subscription_ends_by_subscription ON subscription_ends (subscription_uuid, time);
INSERT INTO schema_version (version, applied_at) VALUES (1, 0);
)sql";

constexpr const char* kPostgresSchemaV1 = R"sql(
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO meta (key, value) VALUES ('revision', 0);
CREATE TABLE subscriptions (uuid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    enabled BOOLEAN NOT NULL, definition TEXT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE bookmarks (subscription_uuid TEXT NOT NULL, client TEXT NOT NULL,
    bookmark TEXT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (subscription_uuid, client));
CREATE TABLE heartbeats (subscription_uuid TEXT NOT NULL, client TEXT NOT NULL,
    first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL, last_event_seen BIGINT,
    address TEXT NOT NULL DEFAULT '', machine_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (subscription_uuid, client));
CREATE TABLE subscription_ends (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_uuid TEXT NOT NULL, client TEXT NOT NULL, time BIGINT NOT NULL,
    status TEXT NOT NULL, fault_code TEXT NOT NULL, fault_message TEXT NOT NULL);
CREATE INDEX subscription_ends_by_subscription ON subscription_ends (subscription_uuid, time);
INSERT INTO schema_version (version, applied_at) VALUES (1, 0);
)sql";

} // namespace

// A database written by a wec of schema version 1, with a subscription, a bookmark and a host:
// opening it applies migration 2 (the mechanism column), keeps every row, and the old host shows
// no mechanism until its next request records one.
TEST_P(StoreTest, MigratesAVersion1DatabaseKeepingItsRows) {
    const std::string uuid = "0B5B2E1C-7C8E-4D0C-9F3A-1F2E3D4C5B6A";
    {
        RawConnection raw(url);
        raw.exec(sqlite() ? kSqliteSchemaV1 : kPostgresSchemaV1);
        auto definition = make_sub("security");
        raw.insert_subscription(uuid, "security", true,
                                "name = \"security\"\nquery = '" + definition.query +
                                    "'\n[[outputs]]\ndriver = \"files\"\npath = \"/x/{client}\"\n"
                                    "format = \"json\"\n");
        raw.exec("INSERT INTO bookmarks (subscription_uuid, client, bookmark, updated_at) "
                 "VALUES ($1, 'WIN10$@D', '<BookmarkList>7</BookmarkList>', 0)",
                 {uuid});
        raw.exec("INSERT INTO heartbeats (subscription_uuid, client, first_seen, last_seen, "
                 "last_event_seen, address, machine_id) "
                 "VALUES ($1, 'WIN10$@D', 1000, 2000, 1500, '10.0.0.5', 'win10.d.local')",
                 {uuid});
    }

    auto store = open(url);
    EXPECT_EQ(store->schema_version(), latest_version());
    EXPECT_GE(latest_version(), 2);
    auto stats = store->stats();
    EXPECT_EQ(stats.subscriptions, 1u);
    EXPECT_EQ(stats.bookmarks, 1u);
    EXPECT_EQ(stats.hosts, 1u);
    auto subs = store->subscriptions();
    ASSERT_EQ(subs.size(), 1u);
    EXPECT_EQ(subs[0].uuid, uuid);
    EXPECT_EQ(store->bookmark("WIN10$@D", uuid), "<BookmarkList>7</BookmarkList>");
    auto hosts = store->hosts(uuid);
    ASSERT_EQ(hosts.size(), 1u);
    EXPECT_EQ(hosts[0].first_seen, TimePoint(std::chrono::milliseconds(1000)));
    EXPECT_EQ(hosts[0].last_seen, TimePoint(std::chrono::milliseconds(2000)));
    EXPECT_EQ(hosts[0].address, "10.0.0.5");
    EXPECT_EQ(hosts[0].machine_id, "win10.d.local");
    EXPECT_EQ(hosts[0].mechanism, "");

    HeartbeatUpdate next{"WIN10$@D", uuid, at(3), HeartbeatUpdate::Kind::Heartbeat, "", "", "NTLM"};
    store->apply_heartbeats(std::span(&next, 1));
    hosts = store->hosts(uuid);
    ASSERT_EQ(hosts.size(), 1u);
    EXPECT_EQ(hosts[0].mechanism, "NTLM");
    EXPECT_EQ(hosts[0].machine_id, "win10.d.local");

    // Migrated once: re-opening finds nothing to do.
    store.reset();
    EXPECT_EQ(open(url)->schema_version(), latest_version());
}

TEST_P(StoreTest, HeartbeatBatcherSizeTriggerBackgroundAndShutdownFlush) {
    auto store = open(url);
    std::string uuid = sub::new_uuid();
    {
        HeartbeatBatcher batcher(*store, {std::chrono::milliseconds(3600000), 3});
        batcher.start();
        EXPECT_FALSE(
            batcher.record({"a", uuid, at(1), HeartbeatUpdate::Kind::Heartbeat, "", "", ""}));
        EXPECT_FALSE(
            batcher.record({"b", uuid, at(1), HeartbeatUpdate::Kind::Heartbeat, "", "", ""}));
        EXPECT_TRUE(
            batcher.record({"c", uuid, at(1), HeartbeatUpdate::Kind::Heartbeat, "", "", ""}));
        // The size trigger wakes the background flusher long before its (1 h) interval.
        for (int i = 0; i < 500 && store->hosts(uuid).size() < 3; ++i)
            std::this_thread::sleep_for(10ms);
        EXPECT_EQ(store->hosts(uuid).size(), 3u);
        batcher.record({"d", uuid, at(1), HeartbeatUpdate::Kind::Heartbeat, "", "", ""});
        // Destroyed with one pending update: the destructor stops the thread and flushes.
    }
    EXPECT_EQ(store->hosts(uuid).size(), 4u);

    HeartbeatBatcher timed(*store, {std::chrono::milliseconds(20), 1000});
    timed.start();
    timed.record({"e", uuid, at(1), HeartbeatUpdate::Kind::Heartbeat, "", "", ""});
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
    StoreStats stats() override { return real_.stats(); }
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

TEST_P(StoreTest, FailedFlushKeepsUpdates) {
    auto real = open(url);
    FlakyStore flaky(*real);
    std::string uuid = sub::new_uuid();
    HeartbeatBatcher batcher(flaky);
    batcher.record({"a", uuid, at(10), HeartbeatUpdate::Kind::Events, "1.1.1.1", "m", ""});
    EXPECT_THROW(batcher.flush(), StoreError);
    EXPECT_EQ(batcher.pending(), 1u);
    batcher.record({"a", uuid, at(20), HeartbeatUpdate::Kind::Heartbeat, "2.2.2.2", "", ""});
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

TEST_P(StoreTest, BatcherReportsTheLastFlushError) {
    auto real = open(url);
    FlakyStore flaky(*real);
    HeartbeatBatcher batcher(flaky, {std::chrono::milliseconds(3600000), 1000});
    EXPECT_EQ(batcher.last_error(), "");
    batcher.record({"a", sub::new_uuid(), at(10), HeartbeatUpdate::Kind::Heartbeat, "", "", ""});
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

TEST_P(StoreTest, SubscriptionEnds) {
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

TEST_P(StoreTest, ConcurrentWritersFromThreadsAndAnotherConnection) {
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
                                    "10.0.0." + std::to_string(t), "", ""});
                    if (i % 10 == 0) {
                        HeartbeatUpdate u{client + "-direct",
                                          uuid,
                                          at(i),
                                          HeartbeatUpdate::Kind::Heartbeat,
                                          "",
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

TEST_P(StoreTest, WaitsForAnotherProcessHoldingTheWriteLock) {
    auto store = open(url);
    RawConnection other(url);
    other.exec(lock_write());
    // The write can only complete after the other connection commits: `releasing` is set just
    // before that COMMIT, so seeing it unset after the write means the lock was not waited for.
    std::atomic<bool> releasing{false};
    std::thread release([&other, &releasing] {
        std::this_thread::sleep_for(300ms);
        releasing = true;
        other.exec("COMMIT");
    });
    EXPECT_NO_THROW(store->put_bookmark("c", "0F1E2D3C-4B5A-4978-8796-A5B4C3D2E1F0", "<b/>"));
    EXPECT_TRUE(releasing.load()) << "the write went through while another process held the lock";
    release.join();
    EXPECT_EQ(store->bookmark("c", "0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0"), "<b/>");
}

TEST_P(StoreTest, BusyTimeoutBecomesStoreError) {
    auto store = open(url, {std::chrono::milliseconds(100)});
    RawConnection other(url);
    other.exec(lock_write());
    try {
        store->put_bookmark("c", sub::new_uuid(), "<b/>");
        ADD_FAILURE() << "no error while the database was locked";
    } catch (const StoreError& e) {
        EXPECT_NE(std::string(e.what()).find("busy"), std::string::npos) << e.what();
    }
    // Reads still work while another process writes.
    EXPECT_EQ(store->revision(), 0u);
    other.exec("ROLLBACK");
    EXPECT_NO_THROW(store->put_bookmark("c", sub::new_uuid(), "<b/>"));
}

// ---- SQLite only -------------------------------------------------------------------------------

TEST(SqliteStoreTest, OpenCreatesDirectoriesAndAcceptsEveryUrlForm) {
    TempDir dir;
    auto nested = dir.path() / "a" / "b" / "wec.db";
    auto store = open("sqlite:" + nested.string());
    EXPECT_TRUE(fs::exists(nested));
    EXPECT_EQ(store->schema_version(), SqliteStore::latest_schema_version());
    EXPECT_EQ(store->describe(), "sqlite:" + nested.string());
    store->put_subscription(make_sub("security"));
    store.reset();
    // The same file as sqlite://PATH and as a bare path.
    for (const auto& form : {"sqlite://" + nested.string(), nested.string()}) {
        auto again = open(form);
        EXPECT_EQ(again->describe(), "sqlite:" + nested.string()) << form;
        EXPECT_EQ(again->subscriptions().size(), 1u) << form;
    }
    auto relative_dir = dir.path() / "rel";
    fs::create_directories(relative_dir);
    auto cwd = fs::current_path();
    fs::current_path(relative_dir);
    EXPECT_NO_THROW(open("var/wec.db"));
    fs::current_path(cwd);
    EXPECT_TRUE(fs::exists(relative_dir / "var" / "wec.db"));
}

TEST(SqliteStoreTest, BadUrlsAndFiles) {
    TempDir dir;
    EXPECT_THROW(open("mysql://x"), StoreError);
    EXPECT_THROW(open("sqlite:"), StoreError);
    EXPECT_THROW(open("sqlite::memory:"), StoreError);
    // An unknown scheme is named, the rest of the URL (maybe a password) is not.
    try {
        open("mysql://root:hunter2@db/wec");
        ADD_FAILURE() << "opened a mysql URL";
    } catch (const StoreError& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("'mysql:'"), std::string::npos) << what;
        EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
    }
    {
        std::ofstream junk(dir.path() / "junk.db");
        junk << "this is not a database, just some text long enough to have a header.......";
    }
    EXPECT_THROW(open("sqlite:" + (dir.path() / "junk.db").string()), StoreError);
}

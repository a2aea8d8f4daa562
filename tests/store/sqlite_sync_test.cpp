// When the SQLite store fsyncs: a client's first bookmark, subscription changes, heartbeat flushes
// and subscription ends always; later bookmarks at most once per bookmark_sync_interval. This
// executable exports its symbols (ENABLE_EXPORTS), so the fdatasync/fsync defined below are the
// ones libsqlite3 calls (a dynamic library resolves them in the executable first); they count the
// calls and call libc's.
#include "helpers.hpp"
#include "store/sqlite_store.hpp"
#include "support/temp_dir.hpp"

#include <atomic>
#include <csignal>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

// Calls to fdatasync or fsync by anything in this process (the interposers below).
std::atomic<int> g_syncs{0};

using SyncFn = int (*)(int);

SyncFn next_fn(const char* name) {
    auto* f = reinterpret_cast<SyncFn>(::dlsym(RTLD_NEXT, name));
    if (f == nullptr) std::abort();
    return f;
}

} // namespace

extern "C" int fdatasync(int fd) {
    static const SyncFn real = next_fn("fdatasync");
    g_syncs.fetch_add(1);
    return real(fd);
}

extern "C" int fsync(int fd) {
    static const SyncFn real = next_fn("fsync");
    g_syncs.fetch_add(1);
    return real(fd);
}

namespace {

using namespace wec::store;
using namespace wec::store::testing;
using namespace std::chrono_literals;
using wec::testing::TempDir;

class SqliteSync : public ::testing::Test {
protected:
    std::unique_ptr<SqliteStore> open(std::chrono::milliseconds interval) {
        SqliteStore::Options o;
        o.bookmark_sync_interval = interval;
        return std::make_unique<SqliteStore>((dir.path() / "wec.db").string(), o);
    }
    // fsync calls made by f().
    template <class F>
    int syncs_of(F&& f) {
        const int before = g_syncs.load();
        f();
        return g_syncs.load() - before;
    }

    TempDir dir;
};

TEST_F(SqliteSync, AFirstBookmarkIsFsyncedLaterOnesOnlyOncePerInterval) {
    auto store = open(1h);
    const std::string uuid = "A1B2";
    EXPECT_GE(syncs_of([&] { store->put_bookmark("host1", uuid, "<b>1</b>"); }), 1)
        << "a client's first bookmark must be on disk before its batch is acked";
    for (int i = 2; i <= 20; ++i)
        EXPECT_EQ(syncs_of([&] {
                      store->put_bookmark("host1", uuid, "<b>" + std::to_string(i) + "</b>");
                  }),
                  0)
            << "bookmark " << i << " within the interval";
    // Another client's first bookmark, met while commits are not synced: synced all the same.
    EXPECT_GE(syncs_of([&] { store->put_bookmark("host2", uuid, "<c>1</c>"); }), 1);
    EXPECT_EQ(syncs_of([&] { store->put_bookmark("host2", uuid, "<c>2</c>"); }), 0);
    // The same client in another subscription is a first bookmark too.
    EXPECT_GE(syncs_of([&] { store->put_bookmark("host1", "C3D4", "<d>1</d>"); }), 1);

    EXPECT_EQ(store->bookmark("host1", uuid).value_or(""), "<b>20</b>");
    EXPECT_EQ(store->bookmark("host2", uuid).value_or(""), "<c>2</c>");
    EXPECT_EQ(store->bookmark("host1", "C3D4").value_or(""), "<d>1</d>");
    store.reset();
    auto again = open(1h);
    EXPECT_EQ(again->bookmark("host1", uuid).value_or(""), "<b>20</b>");
    EXPECT_EQ(again->stats().bookmarks, 3u);
}

TEST_F(SqliteSync, AnIntervalOfZeroFsyncsEveryBookmark) {
    auto store = open(0ms);
    for (int i = 1; i <= 5; ++i)
        EXPECT_GE(syncs_of([&] {
                      store->put_bookmark("host1", "A1B2", "<b>" + std::to_string(i) + "</b>");
                  }),
                  1)
            << "bookmark " << i;
    EXPECT_EQ(store->bookmark("host1", "A1B2").value_or(""), "<b>5</b>");
}

TEST_F(SqliteSync, OnceTheIntervalIsOverTheNextBookmarkIsFsynced) {
    auto store = open(1s); // the puts of each step are far closer than that
    EXPECT_GE(syncs_of([&] { store->put_bookmark("host1", "A1B2", "<b>1</b>"); }), 1);
    EXPECT_EQ(syncs_of([&] { store->put_bookmark("host1", "A1B2", "<b>2</b>"); }), 0);
    std::this_thread::sleep_for(1200ms);
    EXPECT_GE(syncs_of([&] { store->put_bookmark("host1", "A1B2", "<b>3</b>"); }), 1);
    EXPECT_EQ(syncs_of([&] { store->put_bookmark("host1", "A1B2", "<b>4</b>"); }), 0);
    // A synced commit of another kind (a heartbeat flush) starts the interval again.
    std::this_thread::sleep_for(1200ms);
    HeartbeatUpdate hb{"host1", "A1B2", at(1000), HeartbeatUpdate::Kind::Events, {}, {}, {}};
    EXPECT_GE(syncs_of([&] { store->apply_heartbeats(std::span(&hb, 1)); }), 1);
    EXPECT_EQ(syncs_of([&] { store->put_bookmark("host1", "A1B2", "<b>5</b>"); }), 0);
}

TEST_F(SqliteSync, OtherWritesStayFsyncedAfterAnUnsyncedBookmark) {
    auto store = open(1h);
    const auto uuid = store->put_subscription(make_sub("security")).subscription.uuid;
    store->put_bookmark("host1", uuid, "<b>1</b>");
    const auto unsynced = [&] {
        EXPECT_EQ(syncs_of([&] { store->put_bookmark("host1", uuid, "<b>2</b>"); }), 0);
    };
    unsynced();
    HeartbeatUpdate hb{"host1",    uuid, at(1000),  HeartbeatUpdate::Kind::Heartbeat,
                       "10.0.0.1", {},   "Kerberos"};
    EXPECT_GE(syncs_of([&] { store->apply_heartbeats(std::span(&hb, 1)); }), 1) << "heartbeats";
    unsynced();
    EXPECT_GE(syncs_of([&] { store->put_subscription(make_sub("system")); }), 1)
        << "a new subscription";
    unsynced();
    EXPECT_GE(syncs_of([&] { store->set_enabled("system", false); }), 1) << "set_enabled";
    unsynced();
    SubscriptionEndRecord end{"host1", uuid, at(2000), "SourceCancelling", "5", "denied"};
    EXPECT_GE(syncs_of([&] { store->record_subscription_end(end); }), 1) << "subscription end";
    unsynced();
    EXPECT_GE(syncs_of([&] { store->delete_bookmarks(uuid); }), 1) << "delete_bookmarks";
    EXPECT_FALSE(store->bookmark("host1", uuid).has_value());
    // Its bookmarks deleted, the client's next one is a first one again.
    EXPECT_GE(syncs_of([&] { store->put_bookmark("host1", uuid, "<b>3</b>"); }), 1);
}

// Commits that were not fsynced are in the WAL all the same: a process killed right after them
// (SIGKILL, nothing closed) leaves them to the next one that opens the database.
TEST_F(SqliteSync, UnsyncedBookmarksSurviveAKilledProcess) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        auto store = open(1h);
        for (int i = 1; i <= 50; ++i)
            store->put_bookmark("host" + std::to_string(i % 5), "A1B2",
                                "<b>" + std::to_string(i) + "</b>");
        ::raise(SIGKILL);
        ::_exit(3); // not reached
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
    auto store = open(1h);
    EXPECT_EQ(store->stats().bookmarks, 5u);
    for (int h = 0; h < 5; ++h)
        EXPECT_EQ(store->bookmark("host" + std::to_string(h), "A1B2").value_or(""),
                  "<b>" + std::to_string(h == 0 ? 50 : 45 + h) + "</b>")
            << "host" << h;
}

// Writers in parallel share commits (some synced because they carry a first bookmark, some not):
// every client ends with its last bookmark.
TEST_F(SqliteSync, ConcurrentFirstAndLaterBookmarksAllLand) {
    auto store = open(1h);
    constexpr int kThreads = 8;
    constexpr int kClients = 12;
    constexpr int kRounds = 20;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int r = 0; r < kRounds; ++r)
                for (int c = 0; c < kClients; ++c)
                    store->put_bookmark("t" + std::to_string(t) + "-c" + std::to_string(c), "A1B2",
                                        std::to_string(r));
        });
    for (auto& t : threads)
        t.join();
    store.reset();
    auto again = open(1h);
    EXPECT_EQ(again->stats().bookmarks, static_cast<std::uint64_t>(kThreads * kClients));
    for (int t = 0; t < kThreads; ++t)
        for (int c = 0; c < kClients; ++c)
            EXPECT_EQ(again->bookmark("t" + std::to_string(t) + "-c" + std::to_string(c), "A1B2")
                          .value_or(""),
                      std::to_string(kRounds - 1));
}

} // namespace

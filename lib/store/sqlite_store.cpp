#include "store/sqlite_store.hpp"

#include "common/dynlib.hpp"
#include "store/group_commit_internal.hpp"
#include "text/ascii.hpp"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <exception>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <sqlite3.h>
#include <unistd.h>
#include <unordered_map>

namespace wec::store {

namespace sub = wec::subscription;

namespace {

// ---- schema -------------------------------------------------------------------------------

struct Migration {
    int version;
    const char* sql;
};

// Ordered; append only. Each runs inside the opening transaction.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('revision', 0);
CREATE TABLE subscriptions (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    enabled INTEGER NOT NULL,
    definition TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE bookmarks (
    subscription_uuid TEXT NOT NULL,
    client TEXT NOT NULL,
    bookmark TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (subscription_uuid, client)
) WITHOUT ROWID;
CREATE TABLE heartbeats (
    subscription_uuid TEXT NOT NULL,
    client TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    last_event_seen INTEGER,
    address TEXT NOT NULL DEFAULT '',
    machine_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (subscription_uuid, client)
) WITHOUT ROWID;
CREATE TABLE subscription_ends (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_uuid TEXT NOT NULL,
    client TEXT NOT NULL,
    time INTEGER NOT NULL,
    status TEXT NOT NULL,
    fault_code TEXT NOT NULL,
    fault_message TEXT NOT NULL
);
CREATE INDEX subscription_ends_by_subscription ON subscription_ends (subscription_uuid, time);
)sql"},
    // How each host authenticated ("Kerberos", "NTLM", "TLS", "Basic"); '' for rows written
    // before (filled in at the host's next request).
    {2, R"sql(
ALTER TABLE heartbeats ADD COLUMN mechanism TEXT NOT NULL DEFAULT '';
)sql"},
};

constexpr int kLatestVersion = kMigrations[std::size(kMigrations) - 1].version;

std::int64_t to_ms(TimePoint t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
TimePoint from_ms(std::int64_t ms) {
    return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(ms)));
}

// ---- libsqlite3, opened on first use ------------------------------------------------------

// libsqlite3 is opened by the first SQLite store, not by every `wec` command at start-up (`wec
// decode`, `sldc`, `pki` never use a store; common/dynlib.hpp). The functions this file calls:
// clang-format off
#define WEC_SQLITE_FUNCTIONS(X) \
    X(sqlite3_bind_int64) \
    X(sqlite3_bind_null) \
    X(sqlite3_bind_text) \
    X(sqlite3_busy_timeout) \
    X(sqlite3_changes) \
    X(sqlite3_clear_bindings) \
    X(sqlite3_close_v2) \
    X(sqlite3_column_bytes) \
    X(sqlite3_column_int64) \
    X(sqlite3_column_text) \
    X(sqlite3_column_type) \
    X(sqlite3_errmsg) \
    X(sqlite3_errstr) \
    X(sqlite3_exec) \
    X(sqlite3_extended_result_codes) \
    X(sqlite3_finalize) \
    X(sqlite3_free) \
    X(sqlite3_open_v2) \
    X(sqlite3_prepare_v3) \
    X(sqlite3_reset) \
    X(sqlite3_step)
// clang-format on

struct Libsqlite {
    SharedLibrary library{"libsqlite3.so.0", "libsqlite3-0"};
    WEC_SQLITE_FUNCTIONS(WEC_DYNLIB_FUNCTION)
};
#undef WEC_SQLITE_FUNCTIONS

// Throws StoreError when libsqlite3 cannot be opened (tried again by the next call).
const Libsqlite& sqlite() {
    try {
        static const Libsqlite loaded;
        return loaded;
    } catch (const LibraryError& e) {
        throw StoreError(std::string("SQLite store: ") + e.what());
    }
}

// ---- RAII handles -------------------------------------------------------------------------

struct DbClose {
    void operator()(sqlite3* db) const { sqlite().sqlite3_close_v2(db); }
};
struct StmtFinalize {
    void operator()(sqlite3_stmt* stmt) const { sqlite().sqlite3_finalize(stmt); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

class Connection;

// One use of a cached prepared statement; resets it (and its bindings) when done.
class Query {
public:
    Query(Connection& connection, sqlite3_stmt* stmt) : connection_(connection), stmt_(stmt) {}
    ~Query() {
        sqlite().sqlite3_reset(stmt_);
        sqlite().sqlite3_clear_bindings(stmt_);
    }
    Query(const Query&) = delete;
    Query& operator=(const Query&) = delete;

    Query& bind(int index, std::string_view text) {
        check(sqlite().sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                                         SQLITE_TRANSIENT));
        return *this;
    }
    Query& bind(int index, std::int64_t value) {
        check(sqlite().sqlite3_bind_int64(stmt_, index, value));
        return *this;
    }
    Query& bind_null(int index) {
        check(sqlite().sqlite3_bind_null(stmt_, index));
        return *this;
    }
    // True when a row is available.
    bool step();
    void run() {
        while (step()) {
        }
    }

    std::string text(int column) const {
        const auto* data = sqlite().sqlite3_column_text(stmt_, column);
        auto size = sqlite().sqlite3_column_bytes(stmt_, column);
        return data ? std::string(reinterpret_cast<const char*>(data), static_cast<size_t>(size))
                    : std::string();
    }
    std::int64_t integer(int column) const { return sqlite().sqlite3_column_int64(stmt_, column); }
    bool is_null(int column) const {
        return sqlite().sqlite3_column_type(stmt_, column) == SQLITE_NULL;
    }

private:
    void check(int rc);
    Connection& connection_;
    sqlite3_stmt* stmt_;
};

class Connection {
public:
    Connection(const std::string& path, std::chrono::milliseconds busy_timeout, bool writer)
        : path_(path) {
        // A new database is made 0640 (SQLite would use 0644 minus the umask): it names every
        // source. SQLite gives its -wal and -shm files the database's mode.
        if (int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640); fd >= 0)
            ::close(fd);
        sqlite3* raw = nullptr;
        int rc = sqlite().sqlite3_open_v2(
            path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
            nullptr);
        db_.reset(raw);
        if (rc != SQLITE_OK)
            throw StoreError("sqlite:" + path + ": cannot open: " +
                             (raw ? sqlite().sqlite3_errmsg(raw) : sqlite().sqlite3_errstr(rc)));
        sqlite().sqlite3_extended_result_codes(raw, 1);
        sqlite().sqlite3_busy_timeout(raw, static_cast<int>(busy_timeout.count()));
        if (writer) {
            exec("PRAGMA journal_mode=WAL", "enable WAL");
            exec("PRAGMA synchronous=FULL", "set synchronous");
            synced_ = true;
        } else {
            exec("PRAGMA query_only=1", "set query_only");
        }
    }

    // The error of a call that returned `rc`, with SQLite's message for it (`reason`) and the
    // busy hint when another process holds the lock.
    [[noreturn]] void fail(std::string_view what, int rc, std::string_view reason) const {
        std::string message = "sqlite:" + path_ + ": " + std::string(what) + ": ";
        message += reason;
        int primary = rc & 0xff;
        if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED)
            message += " (database busy: another process holds the lock)";
        throw StoreError(message);
    }
    [[noreturn]] void fail(std::string_view what, int rc) const {
        fail(what, rc, db_ ? sqlite().sqlite3_errmsg(db_.get()) : sqlite().sqlite3_errstr(rc));
    }

    void exec(const char* sql, std::string_view what) {
        char* error = nullptr;
        int rc = sqlite().sqlite3_exec(db_.get(), sql, nullptr, nullptr, &error);
        if (rc != SQLITE_OK) {
            std::string reason = error ? error : sqlite().sqlite3_errstr(rc);
            sqlite().sqlite3_free(error);
            fail(what, rc, reason);
        }
    }

    Query query(const char* sql) { return Query(*this, prepared(sql)); }

    // Runs a statement without parameters or rows from the statement cache: BEGIN and COMMIT
    // come once per bookmark commit, and sqlite3_exec would parse their text every time.
    void run(const char* sql, std::string_view what) {
        struct Reset {
            sqlite3_stmt* stmt;
            ~Reset() { sqlite().sqlite3_reset(stmt); } // after fail() has read the message
        } statement{prepared(sql)};
        const int rc = sqlite().sqlite3_step(statement.stmt);
        if (rc != SQLITE_DONE) fail(what, rc);
    }

    std::mutex& mutex() { return mutex_; }
    const std::string& path() const { return path_; }
    sqlite3* handle() { return db_.get(); }
    // Rows changed by the last INSERT, UPDATE or DELETE.
    int changes() { return sqlite().sqlite3_changes(db_.get()); }

    // Whether a commit fsyncs the WAL (synchronous=FULL) or only writes it (NORMAL: the commit
    // survives a crash of the process, not of the OS). SQLite refuses the change inside a
    // transaction: every write goes through a Transaction, which sets it (FULL unless it is a
    // bookmark commit that needs no sync).
    void set_synced(bool synced) {
        if (synced == synced_) return;
        exec(synced ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", "set synchronous");
        synced_ = synced;
    }
    // When the last commit that fsynced the WAL ended: every earlier commit is on disk too.
    std::chrono::steady_clock::time_point last_sync() const { return last_sync_; }
    void committed() {
        if (synced_) last_sync_ = std::chrono::steady_clock::now();
    }

private:
    // The cached prepared statement for `sql`.
    sqlite3_stmt* prepared(const char* sql) {
        auto found = cache_.find(sql);
        if (found == cache_.end()) {
            sqlite3_stmt* raw = nullptr;
            int rc = sqlite().sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT,
                                                 &raw, nullptr);
            StmtPtr stmt(raw);
            if (rc != SQLITE_OK) fail("prepare", rc);
            found = cache_.emplace(sql, std::move(stmt)).first;
        }
        return found->second.get();
    }

    std::string path_;
    DbPtr db_;
    bool synced_ = false;
    std::chrono::steady_clock::time_point last_sync_{};
    // Keyed by the SQL text's address: every statement is a string literal.
    std::unordered_map<const char*, StmtPtr> cache_;
    std::mutex mutex_;
};

void Query::check(int rc) {
    if (rc != SQLITE_OK) connection_.fail("bind", rc);
}

bool Query::step() {
    int rc = sqlite().sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    connection_.fail("step", rc);
}

// A write transaction (BEGIN IMMEDIATE: takes the write lock up front, waiting up to the busy
// timeout) rolled back unless committed. Its commit is fsynced unless `synced` is false.
class Transaction {
public:
    explicit Transaction(Connection& connection, bool synced = true) : connection_(connection) {
        connection_.set_synced(synced);
        connection_.run("BEGIN IMMEDIATE", "begin transaction");
    }
    ~Transaction() {
        if (!done_)
            sqlite().sqlite3_exec(connection_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit() {
        connection_.run("COMMIT", "commit");
        done_ = true;
        connection_.committed();
    }

private:
    Connection& connection_;
    bool done_ = false;
};

} // namespace

// Group commit of bookmarks: concurrent put_bookmark() calls queue their bookmark; one of them (the
// leader) writes everything queued in one transaction, and all of them return after that single
// commit. How often a commit is fsynced: see put_bookmark().
struct SqliteStore::Impl {
    std::string path;
    detail::BookmarkGroupCommit bookmarks;
    Connection writer;
    int version = 0; // initialised by migrate(), before the reader opens
    Connection reader;

    std::chrono::milliseconds bookmark_sync_interval;

    Impl(const std::string& p, Options options)
        : path(p), writer(p, options.busy_timeout, true), version(migrate(writer, p)),
          reader(p, options.busy_timeout, false),
          bookmark_sync_interval(options.bookmark_sync_interval) {}

    static int migrate(Connection& db, const std::string& path) {
        Transaction tx(db);
        db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                "applied_at INTEGER NOT NULL)",
                "create schema_version");
        int current = 0;
        {
            auto q = db.query("SELECT COALESCE(MAX(version), 0) FROM schema_version");
            if (q.step()) current = static_cast<int>(q.integer(0));
        }
        if (current > kLatestVersion)
            throw StoreError("sqlite:" + path + ": database schema version " +
                             std::to_string(current) + " is newer than this wec supports (" +
                             std::to_string(kLatestVersion) + "); upgrade wec");
        for (const auto& migration : kMigrations) {
            if (migration.version <= current) continue;
            db.exec(migration.sql, "migration " + std::to_string(migration.version));
            auto q = db.query("INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)");
            q.bind(1, std::int64_t{migration.version}).bind(2, to_ms(Clock::now())).run();
        }
        tx.commit();
        return kLatestVersion;
    }

    // Reads a subscription row (uuid, name, enabled, definition) into `out`; false with
    // `error` set when the definition cannot be read.
    bool parse_row(const Query& q, sub::Subscription& out, std::string& error) const {
        std::string name = q.text(1);
        try {
            out = sub::load_toml(q.text(3), "sqlite:" + path + " subscription '" + name + "'");
        } catch (const sub::SubscriptionError& e) {
            error = std::string("stored definition is invalid: ") + e.what();
            return false;
        }
        out.uuid = q.text(0);
        out.name = std::move(name);
        out.enabled = q.integer(2) != 0;
        return true;
    }

    // The same, throwing StoreError for a definition that cannot be read.
    sub::Subscription row_to_subscription(const Query& q) const {
        sub::Subscription s;
        std::string error;
        if (!parse_row(q, s, error)) throw StoreError(error);
        return s;
    }

    void bump_revision() {
        writer.query("UPDATE meta SET value = value + 1 WHERE key = 'revision'").run();
    }
};

int SqliteStore::latest_schema_version() {
    return kLatestVersion;
}

SqliteStore::SqliteStore(const std::string& path, Options options)
    : impl_(std::make_unique<Impl>(path, options)) {}

SqliteStore::~SqliteStore() = default;

int SqliteStore::schema_version() {
    std::lock_guard lock(impl_->reader.mutex());
    auto q = impl_->reader.query("SELECT COALESCE(MAX(version), 0) FROM schema_version");
    return q.step() ? static_cast<int>(q.integer(0)) : 0;
}

std::string SqliteStore::describe() const {
    return "sqlite:" + impl_->path;
}

std::string SqliteStore::bookmark_durability() const {
    const auto interval = impl_->bookmark_sync_interval;
    return interval.count() <= 0 ? "every bookmark fsynced"
                                 : "bookmarks fsynced: a client's first, then at most every " +
                                       std::to_string(interval.count()) + " ms";
}

StoreStats SqliteStore::stats() {
    std::lock_guard lock(impl_->reader.mutex());
    // One statement: one read snapshot.
    auto q = impl_->reader.query(
        "SELECT (SELECT COALESCE(MAX(version), 0) FROM schema_version), "
        "(SELECT value FROM meta WHERE key = 'revision'), (SELECT count(*) FROM subscriptions), "
        "(SELECT count(*) FROM bookmarks), (SELECT count(*) FROM heartbeats), "
        "(SELECT count(*) FROM subscription_ends)");
    StoreStats s;
    if (q.step()) {
        s.schema_version = static_cast<int>(q.integer(0));
        s.revision = static_cast<std::uint64_t>(q.integer(1));
        s.subscriptions = static_cast<std::uint64_t>(q.integer(2));
        s.bookmarks = static_cast<std::uint64_t>(q.integer(3));
        s.hosts = static_cast<std::uint64_t>(q.integer(4));
        s.subscription_ends = static_cast<std::uint64_t>(q.integer(5));
    }
    return s;
}

PutResult SqliteStore::put_subscription(const sub::Subscription& input) {
    try {
        sub::validate(input, "subscription '" + input.name + "'");
    } catch (const sub::SubscriptionError& e) {
        throw StoreError(e.what());
    }
    auto& db = impl_->writer;
    std::lock_guard lock(db.mutex());
    Transaction tx(db);
    PutResult result;
    result.subscription = input;
    std::optional<std::string> existing_uuid;
    std::string existing_definition;
    bool existing_enabled = false;
    {
        auto q = db.query("SELECT uuid, enabled, definition FROM subscriptions WHERE name = ?1");
        q.bind(1, input.name);
        if (q.step()) {
            existing_uuid = q.text(0);
            existing_enabled = q.integer(1) != 0;
            existing_definition = q.text(2);
        }
    }
    auto now = to_ms(Clock::now());
    if (existing_uuid) {
        result.subscription.uuid = *existing_uuid;
        std::string definition = sub::to_toml(result.subscription);
        if (definition == existing_definition && existing_enabled == input.enabled) {
            result.change = Change::Unchanged;
            return result; // rolled back: nothing written
        }
        auto q = db.query("UPDATE subscriptions SET enabled = ?2, definition = ?3, updated_at = ?4 "
                          "WHERE uuid = ?1");
        q.bind(1, *existing_uuid)
            .bind(2, std::int64_t{input.enabled})
            .bind(3, definition)
            .bind(4, now)
            .run();
        result.change = Change::Updated;
    } else {
        result.subscription.uuid =
            input.uuid.empty() ? sub::new_uuid() : wec::text::to_upper(input.uuid);
        {
            auto q = db.query("SELECT name FROM subscriptions WHERE uuid = ?1");
            q.bind(1, result.subscription.uuid);
            if (q.step())
                throw StoreError("sqlite:" + impl_->path + ": uuid " + result.subscription.uuid +
                                 " is already used by subscription '" + q.text(0) + "'");
        }
        auto q = db.query("INSERT INTO subscriptions (uuid, name, enabled, definition, updated_at) "
                          "VALUES (?1, ?2, ?3, ?4, ?5)");
        q.bind(1, result.subscription.uuid)
            .bind(2, input.name)
            .bind(3, std::int64_t{input.enabled})
            .bind(4, sub::to_toml(result.subscription))
            .bind(5, now)
            .run();
        result.change = Change::Created;
    }
    impl_->bump_revision();
    tx.commit();
    return result;
}

std::optional<sub::Subscription> SqliteStore::subscription_by_name(std::string_view name) {
    auto& db = impl_->reader;
    std::lock_guard lock(db.mutex());
    auto q = db.query("SELECT uuid, name, enabled, definition FROM subscriptions WHERE name = ?1");
    q.bind(1, name);
    if (!q.step()) return std::nullopt;
    return impl_->row_to_subscription(q);
}

std::optional<sub::Subscription> SqliteStore::subscription_by_uuid(std::string_view uuid) {
    auto& db = impl_->reader;
    std::lock_guard lock(db.mutex());
    auto q = db.query("SELECT uuid, name, enabled, definition FROM subscriptions WHERE uuid = ?1");
    q.bind(1, wec::text::to_upper(uuid));
    if (!q.step()) return std::nullopt;
    return impl_->row_to_subscription(q);
}

SubscriptionList SqliteStore::list_subscriptions() {
    auto& db = impl_->reader;
    std::lock_guard lock(db.mutex());
    auto q = db.query("SELECT uuid, name, enabled, definition FROM subscriptions ORDER BY name");
    SubscriptionList out;
    while (q.step()) {
        sub::Subscription s;
        std::string error;
        if (impl_->parse_row(q, s, error))
            out.subscriptions.push_back(std::move(s));
        else
            out.broken.push_back({q.text(0), q.text(1), q.integer(2) != 0, std::move(error)});
    }
    return out;
}

bool SqliteStore::delete_subscription(std::string_view name) {
    auto& db = impl_->writer;
    std::lock_guard lock(db.mutex());
    Transaction tx(db);
    std::string uuid;
    {
        auto q = db.query("SELECT uuid FROM subscriptions WHERE name = ?1");
        q.bind(1, name);
        if (!q.step()) return false;
        uuid = q.text(0);
    }
    db.query("DELETE FROM subscriptions WHERE uuid = ?1").bind(1, uuid).run();
    db.query("DELETE FROM bookmarks WHERE subscription_uuid = ?1").bind(1, uuid).run();
    db.query("DELETE FROM heartbeats WHERE subscription_uuid = ?1").bind(1, uuid).run();
    db.query("DELETE FROM subscription_ends WHERE subscription_uuid = ?1").bind(1, uuid).run();
    impl_->bump_revision();
    tx.commit();
    return true;
}

bool SqliteStore::set_enabled(std::string_view name, bool enabled) {
    auto& db = impl_->writer;
    std::lock_guard lock(db.mutex());
    Transaction tx(db);
    sub::Subscription s;
    {
        auto q =
            db.query("SELECT uuid, name, enabled, definition FROM subscriptions WHERE name = ?1");
        q.bind(1, name);
        if (!q.step()) return false;
        s = impl_->row_to_subscription(q);
    }
    if (s.enabled == enabled) return true;
    s.enabled = enabled;
    auto q = db.query(
        "UPDATE subscriptions SET enabled = ?2, definition = ?3, updated_at = ?4 WHERE uuid = ?1");
    q.bind(1, s.uuid)
        .bind(2, std::int64_t{enabled})
        .bind(3, sub::to_toml(s))
        .bind(4, to_ms(Clock::now()))
        .run();
    impl_->bump_revision();
    tx.commit();
    return true;
}

std::uint64_t SqliteStore::revision() {
    auto& db = impl_->reader;
    std::lock_guard lock(db.mutex());
    auto q = db.query("SELECT value FROM meta WHERE key = 'revision'");
    return q.step() ? static_cast<std::uint64_t>(q.integer(0)) : 0;
}

std::optional<std::string> SqliteStore::bookmark(std::string_view client,
                                                 std::string_view subscription_uuid) {
    auto& db = impl_->reader;
    std::lock_guard lock(db.mutex());
    auto q =
        db.query("SELECT bookmark FROM bookmarks WHERE subscription_uuid = ?1 AND client = ?2");
    q.bind(1, wec::text::to_upper(subscription_uuid)).bind(2, client);
    if (!q.step()) return std::nullopt;
    return q.text(0);
}

void SqliteStore::put_bookmark(std::string_view client, std::string_view subscription_uuid,
                               std::string_view bookmark) {
    impl_->bookmarks.put(
        {wec::text::to_upper(subscription_uuid), std::string(client), std::string(bookmark),
         to_ms(Clock::now())},
        [&](std::span<const detail::BookmarkWrite* const> batch) {
            // Every commit is written to the WAL before the call returns (it survives a crash of
            // the process). It is also fsynced when it gives a client its first bookmark (a
            // lost first bookmark would make the client start at new events: a loss) or when the
            // last fsync is bookmark_sync_interval old; in between an OS crash can only take
            // the newest bookmarks back to older ones, whose batches the clients then send again
            // (duplicates, never a loss). The next synced commit (this one's successors, the
            // heartbeat flush) puts the earlier ones on disk too.
            auto& db = impl_->writer;
            std::lock_guard wlock(db.mutex());
            const auto interval = impl_->bookmark_sync_interval;
            bool sync = interval.count() <= 0 ||
                        std::chrono::steady_clock::now() - db.last_sync() >= interval;
            // Both statements take ?1 subscription, ?2 client, ?3 bookmark, ?4 time.
            const auto write = [&db](const char* sql, const detail::BookmarkWrite& b) {
                db.query(sql)
                    .bind(1, b.subscription_uuid)
                    .bind(2, b.client)
                    .bind(3, b.bookmark)
                    .bind(4, b.updated_at)
                    .run();
            };
            for (;;) {
                Transaction tx(db, sync);
                bool first = false; // a client without a bookmark yet, met in a commit not synced
                for (const auto* b : batch) {
                    write("UPDATE bookmarks SET bookmark = ?3, updated_at = ?4 "
                          "WHERE subscription_uuid = ?1 AND client = ?2",
                          *b);
                    if (db.changes() != 0) continue;
                    if (!sync) {
                        first = true;
                        break;
                    }
                    write("INSERT INTO bookmarks (subscription_uuid, client, bookmark, updated_at) "
                          "VALUES (?1, ?2, ?3, ?4)",
                          *b);
                }
                if (first) { // rolled back; again, synced (once per client and subscription)
                    sync = true;
                    continue;
                }
                tx.commit();
                return;
            }
        });
}

void SqliteStore::delete_bookmarks(std::string_view subscription_uuid) {
    auto& db = impl_->writer;
    std::lock_guard lock(db.mutex());
    Transaction tx(db);
    db.query("DELETE FROM bookmarks WHERE subscription_uuid = ?1")
        .bind(1, wec::text::to_upper(subscription_uuid))
        .run();
    tx.commit();
}

void SqliteStore::apply_heartbeats(std::span<const HeartbeatUpdate> updates) {
    if (updates.empty()) return;
    // Coalesce first: one row write per (subscription, client).
    struct Merged {
        std::int64_t first;
        std::int64_t last;
        std::optional<std::int64_t> last_event;
        std::string address;
        std::string machine_id;
        std::string mechanism;
    };
    std::map<std::pair<std::string, std::string>, Merged> merged;
    for (const auto& u : updates) {
        auto t = to_ms(u.time);
        auto [it, inserted] =
            merged.try_emplace({wec::text::to_upper(u.subscription_uuid), u.client},
                               Merged{t, t, std::nullopt, {}, {}, {}});
        auto& m = it->second;
        m.first = std::min(m.first, t);
        m.last = std::max(m.last, t);
        if (u.kind == HeartbeatUpdate::Kind::Events)
            m.last_event = m.last_event ? std::max(*m.last_event, t) : t;
        if (!u.address.empty()) m.address = u.address;
        if (!u.machine_id.empty()) m.machine_id = u.machine_id;
        if (!u.mechanism.empty()) m.mechanism = u.mechanism;
        (void)inserted;
    }
    auto& db = impl_->writer;
    std::lock_guard lock(db.mutex());
    Transaction tx(db);
    for (const auto& [key, m] : merged) {
        auto q = db.query(
            "INSERT INTO heartbeats (subscription_uuid, client, first_seen, last_seen, "
            "last_event_seen, address, machine_id, mechanism) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
            "ON CONFLICT (subscription_uuid, client) DO UPDATE SET "
            "first_seen = min(first_seen, excluded.first_seen), "
            "last_seen = max(last_seen, excluded.last_seen), "
            "last_event_seen = CASE WHEN excluded.last_event_seen IS NULL THEN last_event_seen "
            "WHEN last_event_seen IS NULL THEN excluded.last_event_seen "
            "ELSE max(last_event_seen, excluded.last_event_seen) END, "
            "address = CASE WHEN excluded.address = '' THEN address ELSE excluded.address END, "
            "machine_id = CASE WHEN excluded.machine_id = '' THEN machine_id "
            "ELSE excluded.machine_id END, "
            "mechanism = CASE WHEN excluded.mechanism = '' THEN mechanism "
            "ELSE excluded.mechanism END");
        q.bind(1, key.first).bind(2, key.second).bind(3, m.first).bind(4, m.last);
        if (m.last_event)
            q.bind(5, *m.last_event);
        else
            q.bind_null(5);
        q.bind(6, m.address).bind(7, m.machine_id).bind(8, m.mechanism).run();
    }
    tx.commit();
}

std::vector<HostState> SqliteStore::hosts(std::string_view subscription_uuid) {
    auto& db = impl_->reader;
    std::lock_guard lock(db.mutex());
    auto q = db.query("SELECT client, first_seen, last_seen, last_event_seen, address, machine_id, "
                      "mechanism FROM heartbeats WHERE subscription_uuid = ?1 ORDER BY client");
    std::string uuid = wec::text::to_upper(subscription_uuid);
    q.bind(1, uuid);
    std::vector<HostState> out;
    while (q.step()) {
        HostState h;
        h.client = q.text(0);
        h.subscription_uuid = uuid;
        h.first_seen = from_ms(q.integer(1));
        h.last_seen = from_ms(q.integer(2));
        if (!q.is_null(3)) h.last_event_seen = from_ms(q.integer(3));
        h.address = q.text(4);
        h.machine_id = q.text(5);
        h.mechanism = q.text(6);
        out.push_back(std::move(h));
    }
    return out;
}

void SqliteStore::record_subscription_end(const SubscriptionEndRecord& r) {
    auto& db = impl_->writer;
    std::lock_guard lock(db.mutex());
    Transaction tx(db);
    db.query("INSERT INTO subscription_ends (subscription_uuid, client, time, status, "
             "fault_code, fault_message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
        .bind(1, wec::text::to_upper(r.subscription_uuid))
        .bind(2, r.client)
        .bind(3, to_ms(r.time))
        .bind(4, r.status)
        .bind(5, r.fault_code)
        .bind(6, r.fault_message)
        .run();
    tx.commit();
}

std::vector<SubscriptionEndRecord>
SqliteStore::subscription_ends(std::string_view subscription_uuid, std::size_t limit) {
    auto& db = impl_->reader;
    std::lock_guard lock(db.mutex());
    auto q = db.query("SELECT subscription_uuid, client, time, status, fault_code, fault_message "
                      "FROM subscription_ends WHERE ?1 = '' OR subscription_uuid = ?1 "
                      "ORDER BY time DESC, id DESC LIMIT ?2");
    q.bind(1, wec::text::to_upper(subscription_uuid))
        .bind(2, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
    std::vector<SubscriptionEndRecord> out;
    while (q.step()) {
        out.push_back(
            {q.text(1), q.text(0), from_ms(q.integer(2)), q.text(3), q.text(4), q.text(5)});
    }
    return out;
}

} // namespace wec::store

#include "store/postgres_store.hpp"

#include "common/dynlib.hpp"
#include "common/handle.hpp"
#include "store/group_commit_internal.hpp"
#include "text/ascii.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <exception>
#include <libpq-fe.h>
#include <map>
#include <mutex>
#include <poll.h>
#include <unordered_map>

namespace wec::store {

namespace sub = wec::subscription;

namespace {

// ---- schema -------------------------------------------------------------------------------

struct Migration {
    int version;
    const char* sql;
};

// Ordered; append only. Each runs in its own transaction, under the migration lock. Times are
// milliseconds since the Unix epoch (as in the SQLite schema).
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('revision', 0);
CREATE TABLE subscriptions (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    enabled BOOLEAN NOT NULL,
    definition TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE bookmarks (
    subscription_uuid TEXT NOT NULL,
    client TEXT NOT NULL,
    bookmark TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (subscription_uuid, client)
);
CREATE TABLE heartbeats (
    subscription_uuid TEXT NOT NULL,
    client TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    last_event_seen BIGINT,
    address TEXT NOT NULL DEFAULT '',
    machine_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (subscription_uuid, client)
);
CREATE TABLE subscription_ends (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_uuid TEXT NOT NULL,
    client TEXT NOT NULL,
    time BIGINT NOT NULL,
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

// The pg_advisory_xact_lock key that serializes migrations of one database ("wec-sch").
constexpr std::int64_t kMigrationLock = 0x7765632d736368;

constexpr std::chrono::milliseconds kFirstBackoff{100};

std::int64_t to_ms(TimePoint t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
TimePoint from_ms(std::int64_t ms) {
    return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(ms)));
}

// libpq's message on one line (its "\n\t" continuation lines joined by one space), without the
// trailing newline, and without the connection URI when libpq quotes it
// (a URI it cannot parse is quoted whole, password included): `url` is replaced by `where`.
std::string trimmed(const char* message, const std::string& url = {},
                    const std::string& where = {}) {
    std::string text = message ? message : "";
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
        text.pop_back();
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '\n') {
            out += text[i] == '\t' ? ' ' : text[i];
            continue;
        }
        out += ' ';
        while (i + 1 < text.size() && std::isspace(static_cast<unsigned char>(text[i + 1])))
            ++i;
    }
    if (!url.empty())
        for (auto at = out.find(url); at != std::string::npos;
             at = out.find(url, at + where.size()))
            out.replace(at, url.size(), where);
    return out;
}

// A failure of the connection itself (cannot connect, connection lost), as opposed to an error
// of one statement: the store goes to its "unavailable" state.
class ConnectionFailure : public StoreError {
public:
    using StoreError::StoreError;
};

// ---- RAII handles and values --------------------------------------------------------------

// ---- libpq, opened on first use -----------------------------------------------------------

// libpq (and what it pulls in: LDAP, GnuTLS, SASL, Kerberos...) is opened by the first PostgreSQL
// store, not by every `wec` command at start-up (common/dynlib.hpp). The functions this file calls:
// clang-format off
#define WEC_LIBPQ_FUNCTIONS(X) \
    X(PQclear) \
    X(PQcmdTuples) \
    X(PQconnectdbParams) \
    X(PQconninfoFree) \
    X(PQconninfoParse) \
    X(PQerrorMessage) \
    X(PQexec) \
    X(PQexecPrepared) \
    X(PQfinish) \
    X(PQfreemem) \
    X(PQgetisnull) \
    X(PQgetlength) \
    X(PQgetvalue) \
    X(PQntuples) \
    X(PQprepare) \
    X(PQresultErrorField) \
    X(PQresultErrorMessage) \
    X(PQresultStatus) \
    X(PQsetNoticeProcessor) \
    X(PQsocket) \
    X(PQstatus) \
    X(PQtransactionStatus)
// clang-format on

struct Libpq {
    SharedLibrary library{"libpq.so.5", "libpq5"};
    WEC_LIBPQ_FUNCTIONS(WEC_DYNLIB_FUNCTION)
};
#undef WEC_LIBPQ_FUNCTIONS

// Throws StoreError when libpq cannot be opened (tried again by the next call).
const Libpq& pq() {
    try {
        static const Libpq loaded;
        return loaded;
    } catch (const LibraryError& e) {
        throw StoreError(std::string("PostgreSQL store: ") + e.what());
    }
}

void finish(PGconn* conn) noexcept {
    pq().PQfinish(conn); // loaded: there is a connection
}
void clear(PGresult* result) noexcept {
    pq().PQclear(result);
}

using ConnPtr = wec::Handle<PGconn, finish>;
using ResultPtr = wec::Handle<PGresult, clear>;

// Statement parameters, all sent as text (PostgreSQL converts them to the column types).
class Params {
public:
    Params& text(std::string_view value) {
        if (value.find('\0') != std::string_view::npos) has_nul_ = true;
        values_.emplace_back(value);
        nulls_.push_back(false);
        return *this;
    }
    Params& integer(std::int64_t value) {
        values_.push_back(std::to_string(value));
        nulls_.push_back(false);
        return *this;
    }
    Params& boolean(bool value) {
        values_.emplace_back(value ? "t" : "f");
        nulls_.push_back(false);
        return *this;
    }
    int size() const { return static_cast<int>(values_.size()); }
    bool has_nul() const { return has_nul_; }
    std::vector<const char*> pointers() const {
        std::vector<const char*> out;
        out.reserve(values_.size());
        for (std::size_t i = 0; i < values_.size(); ++i)
            out.push_back(nulls_[i] ? nullptr : values_[i].c_str());
        return out;
    }

private:
    std::vector<std::string> values_;
    std::vector<bool> nulls_;
    bool has_nul_ = false;
};

// A PostgreSQL array literal of text values: every element double-quoted, '"' and '\' escaped.
// Passed as one parameter (`$1::text[]`), so a batch is one statement.
class TextArray {
public:
    void add(std::string_view value) {
        literal_ += literal_.empty() ? "{\"" : ",\"";
        for (char c : value) {
            if (c == '"' || c == '\\') literal_ += '\\';
            literal_ += c;
        }
        literal_ += '"';
    }
    std::string literal() const { return literal_.empty() ? "{}" : literal_ + "}"; }

private:
    std::string literal_;
};

// The same for BIGINT values, NULL allowed.
class IntArray {
public:
    void add(std::optional<std::int64_t> value) {
        literal_ += literal_.empty() ? "{" : ",";
        literal_ += value ? std::to_string(*value) : "NULL";
    }
    std::string literal() const { return literal_.empty() ? "{}" : literal_ + "}"; }

private:
    std::string literal_;
};

// The rows of a statement's result.
class Rows {
public:
    explicit Rows(ResultPtr result) : result_(std::move(result)) {}
    int size() const { return pq().PQntuples(result_.get()); }
    bool is_null(int row, int column) const {
        return pq().PQgetisnull(result_.get(), row, column) != 0;
    }
    std::string text(int row, int column) const {
        return std::string(pq().PQgetvalue(result_.get(), row, column),
                           static_cast<std::size_t>(pq().PQgetlength(result_.get(), row, column)));
    }
    std::int64_t integer(int row, int column) const {
        const char* value = pq().PQgetvalue(result_.get(), row, column);
        std::int64_t out = 0;
        std::from_chars(value, value + pq().PQgetlength(result_.get(), row, column), out);
        return out;
    }
    bool boolean(int row, int column) const {
        return pq().PQgetvalue(result_.get(), row, column)[0] == 't';
    }
    // Rows inserted, updated or deleted.
    std::uint64_t affected() const {
        const char* value = pq().PQcmdTuples(result_.get());
        std::uint64_t out = 0;
        std::from_chars(value, value + std::char_traits<char>::length(value), out);
        return out;
    }

private:
    ResultPtr result_;
};

// One connection, used by one thread at a time (the pool hands it out). Prepared statements are
// cached per connection, keyed by the SQL text's address (every statement is a string literal).
class Connection {
public:
    Connection(ConnPtr conn, const std::string& where) : conn_(std::move(conn)), where_(where) {}

    Rows exec(const char* sql, const Params& params, std::string_view what) {
        if (params.has_nul())
            throw StoreError(where_ + ": " + std::string(what) +
                             ": a text value holds a NUL byte, which PostgreSQL cannot store");
        auto found = prepared_.find(sql);
        if (found == prepared_.end()) {
            std::string name = "wec_" + std::to_string(prepared_.size() + 1);
            ResultPtr prepared(pq().PQprepare(conn_.get(), name.c_str(), sql, 0, nullptr));
            if (!prepared || pq().PQresultStatus(prepared.get()) != PGRES_COMMAND_OK)
                fail(what, prepared.get());
            found = prepared_.emplace(sql, std::move(name)).first;
        }
        auto values = params.pointers();
        ResultPtr result(pq().PQexecPrepared(conn_.get(), found->second.c_str(), params.size(),
                                             values.data(), nullptr, nullptr, 0));
        auto status = result ? pq().PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(what, result.get());
        return Rows(std::move(result));
    }
    Rows exec(const char* sql, std::string_view what) { return exec(sql, Params{}, what); }

    // Constant SQL without parameters, possibly several statements (transaction control,
    // migrations).
    void script(const char* sql, std::string_view what) {
        ResultPtr result(pq().PQexec(conn_.get(), sql));
        auto status = result ? pq().PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(what, result.get());
    }

    // Ends a transaction that failed; a connection that cannot is not reused.
    void rollback() noexcept {
        ResultPtr result(pq().PQexec(conn_.get(), "ROLLBACK"));
        if (!result || pq().PQresultStatus(result.get()) != PGRES_COMMAND_OK) broken_ = true;
    }

    bool broken() const { return broken_ || pq().PQstatus(conn_.get()) != CONNECTION_OK; }
    bool idle() const { return pq().PQtransactionStatus(conn_.get()) == PQTRANS_IDLE; }
    const std::string& lost_error() const { return lost_error_; }

    // Whether an idle connection can be reused: the server sends nothing to an idle connection
    // that does not LISTEN unless it is closing it (shutdown, restart, terminated backend), so
    // anything readable means "closed" and the connection is dropped before a statement fails
    // on it.
    bool reusable() const {
        if (broken() || !idle()) return false;
        pollfd p{pq().PQsocket(conn_.get()), POLLIN, 0};
        return ::poll(&p, 1, 0) == 0;
    }

private:
    [[noreturn]] void fail(std::string_view what, const PGresult* result) {
        std::string message = where_ + ": " + std::string(what) + ": ";
        message += trimmed(result && pq().PQresultErrorMessage(result)[0]
                               ? pq().PQresultErrorMessage(result)
                               : pq().PQerrorMessage(conn_.get()));
        const char* state = result ? pq().PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
        std::string_view sqlstate = state ? state : "";
        // Class 08: connection exceptions; 57P01..57P03: the server is shutting down or starting.
        bool lost = pq().PQstatus(conn_.get()) != CONNECTION_OK || sqlstate.starts_with("08") ||
                    sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03";
        if (lost) {
            broken_ = true;
            lost_error_ = message;
            throw ConnectionFailure(message + " (connection to PostgreSQL lost)");
        }
        if (sqlstate == "55P03")
            message += " (database busy: another node or program holds the lock)";
        throw StoreError(message);
    }

    ConnPtr conn_;
    const std::string& where_;
    std::unordered_map<const char*, std::string> prepared_;
    bool broken_ = false;
    std::string lost_error_;
};

// A transaction rolled back unless committed.
class Transaction {
public:
    explicit Transaction(Connection& connection) : connection_(connection) {
        connection_.script("BEGIN", "begin transaction");
    }
    ~Transaction() {
        if (!done_ && !connection_.broken()) connection_.rollback();
    }
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    void commit() {
        done_ = true;
        connection_.script("COMMIT", "commit");
    }

private:
    Connection& connection_;
    bool done_ = false;
};

// Group commit of bookmarks (see SqliteStore): concurrent callers queue their bookmark; one of
// them (the leader) writes everything queued in one statement, and all return after that commit.
// ---- the pool and its health --------------------------------------------------------------

class Pool {
public:
    Pool(std::string url, const PostgresStore::Options& options)
        : url_(std::move(url)), where_(PostgresStore::redact(url_)), options_(options) {
        if (options_.max_connections == 0) options_.max_connections = 1;
    }

    const std::string& url() const { return url_; }
    const std::string& where() const { return where_; }

    // An idle connection, or a new one (migrating the schema first when this process has not
    // yet). Throws StoreError when none can be had: ConnectionFailure when PostgreSQL cannot be
    // reached (also at once, with the last error, while the reconnection backoff runs).
    std::unique_ptr<Connection> acquire() {
        std::unique_lock lock(mutex_);
        auto deadline = std::chrono::steady_clock::now() + options_.lock_timeout;
        for (;;) {
            while (!idle_.empty()) {
                auto connection = std::move(idle_.back());
                idle_.pop_back();
                if (connection->reusable()) return connection;
                --open_; // closed by the server while idle: replaced below
            }
            if (open_ < options_.max_connections) {
                bool probe = down_;
                if (probe && (probing_ || std::chrono::steady_clock::now() < next_attempt_))
                    throw ConnectionFailure(last_error_ + " (store unavailable, reconnecting)");
                ++open_;
                if (probe) probing_ = true;
                bool need_migration = !migrated_;
                lock.unlock();
                try {
                    auto connection = connect(need_migration);
                    lock.lock();
                    if (probe) probing_ = false;
                    migrated_ = true;
                    mark_up();
                    return connection;
                } catch (const StoreError& e) {
                    lock.lock();
                    --open_;
                    if (probe) probing_ = false;
                    mark_down(e.what(), false);
                    released_.notify_one();
                    throw;
                }
            }
            if (released_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
                open_ >= options_.max_connections)
                throw StoreError(where_ + ": all " + std::to_string(options_.max_connections) +
                                 " connections stayed busy for " +
                                 std::to_string(options_.lock_timeout.count()) + " ms");
        }
    }

    // Takes a connection back: kept when usable, dropped when it broke (the store is then
    // unavailable until a new connection is made) or was left inside a transaction.
    void release(std::unique_ptr<Connection> connection) {
        if (!connection) return;
        std::lock_guard lock(mutex_);
        if (connection->broken()) {
            --open_;
            mark_down(connection->lost_error().empty() ? where_ + ": connection lost"
                                                       : connection->lost_error(),
                      true);
        } else if (!connection->idle()) {
            --open_;
        } else {
            if (down_) mark_up(); // it worked: the database is reachable
            idle_.push_back(std::move(connection));
        }
        released_.notify_one();
    }

private:
    // (mutex held) retry_now: a connection broke while in use, the next call may connect at
    // once; else a connection attempt failed: the next one waits for the backoff.
    void mark_down(const std::string& error, bool retry_now) {
        bool was_up = !down_;
        down_ = true;
        last_error_ = error;
        if (retry_now)
            backoff_ = std::chrono::milliseconds(0);
        else
            backoff_ = std::min(backoff_.count() == 0 ? kFirstBackoff : backoff_ * 2,
                                options_.max_backoff);
        next_attempt_ = std::chrono::steady_clock::now() + backoff_;
        if (was_up && options_.log)
            options_.log->error("state store unavailable: calls fail (requests get 503) until "
                                "PostgreSQL is reachable again; reconnecting with backoff",
                                {{"store", where_}, {"error", error}});
    }

    // (mutex held) A connection was made or used successfully.
    void mark_up() {
        if (down_ && options_.log)
            options_.log->info("state store available again", {{"store", where_}});
        down_ = false;
        backoff_ = std::chrono::milliseconds(0);
        last_error_.clear();
    }

    std::unique_ptr<Connection> connect(bool need_migration) {
        // The URI's own settings win over these defaults (keywords processed in order). TCP
        // keepalives and the user timeout bound how long a call can wait on a server that
        // vanished without closing the connection (a network partition, a dead host): ~30 s.
        const char* keys[] = {"connect_timeout",  "fallback_application_name",
                              "keepalives_idle",  "keepalives_interval",
                              "keepalives_count", "tcp_user_timeout",
                              "dbname",           nullptr};
        const char* values[] = {"5", "wec", "10", "5", "3", "30000", url_.c_str(), nullptr};
        ConnPtr conn(pq().PQconnectdbParams(keys, values, 1));
        if (!conn) throw ConnectionFailure(where_ + ": cannot connect: out of memory");
        if (pq().PQstatus(conn.get()) != CONNECTION_OK)
            throw ConnectionFailure(where_ + ": cannot connect: " +
                                    trimmed(pq().PQerrorMessage(conn.get()), url_, where_));
        // Notices ("relation already exists, skipping") are not for the operator's terminal.
        pq().PQsetNoticeProcessor(
            conn.get(), [](void*, const char*) {}, nullptr);
        auto connection = std::make_unique<Connection>(std::move(conn), where_);
        connection->exec("SELECT set_config('lock_timeout', $1, false)",
                         Params().text(std::to_string(options_.lock_timeout.count()) + "ms"),
                         "set lock_timeout");
        if (need_migration) migrate(*connection);
        return connection;
    }

    // Each pending migration in its own transaction, under a lock that serializes the nodes
    // starting at the same time.
    void migrate(Connection& db) {
        for (const auto& migration : kMigrations) {
            Transaction tx(db);
            db.exec("SELECT pg_advisory_xact_lock($1)", Params().integer(kMigrationLock),
                    "take the migration lock");
            db.script("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                      "applied_at BIGINT NOT NULL)",
                      "create schema_version");
            auto current =
                static_cast<int>(db.exec("SELECT COALESCE(MAX(version), 0) FROM schema_version",
                                         "read schema version")
                                     .integer(0, 0));
            if (current > kLatestVersion)
                throw StoreError(where_ + ": database schema version " + std::to_string(current) +
                                 " is newer than this wec supports (" +
                                 std::to_string(kLatestVersion) + "); upgrade wec");
            if (current >= kLatestVersion) return; // rolled back: nothing written
            if (current >= migration.version) continue;
            db.script(migration.sql, "migration " + std::to_string(migration.version));
            db.exec("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
                    Params().integer(migration.version).integer(to_ms(Clock::now())),
                    "record migration");
            tx.commit();
        }
    }

    const std::string url_;
    const std::string where_; // the URL without password, for messages
    PostgresStore::Options options_;

    std::mutex mutex_; // guards everything below
    std::condition_variable released_;
    std::vector<std::unique_ptr<Connection>> idle_;
    std::size_t open_ = 0; // idle + in use + being opened
    bool migrated_ = false;
    // Unavailable: connections cannot be made. Once next_attempt_ is reached, one caller at a
    // time probes (connects); the others fail at once with the last error.
    bool down_ = false;
    bool probing_ = false;
    std::string last_error_;
    std::chrono::milliseconds backoff_{0};
    std::chrono::steady_clock::time_point next_attempt_{};
};

// A connection for one operation, given back to the pool by the destructor.
class Lease {
public:
    explicit Lease(Pool& pool) : pool_(pool), connection_(pool.acquire()) {}
    ~Lease() { pool_.release(std::move(connection_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Connection& operator*() { return *connection_; }
    Connection* operator->() { return connection_.get(); }

private:
    Pool& pool_;
    std::unique_ptr<Connection> connection_;
};

} // namespace

struct PostgresStore::Impl {
    Pool pool;
    const std::string& where;
    detail::BookmarkGroupCommit bookmarks;
    const std::chrono::milliseconds bookmark_sync_interval;
    // When the last bookmark commit that waited for the WAL flush started, and whether the next
    // one must wait (a commit that did not wait failed: it may have inserted a first bookmark
    // without flushing it). Only the group commit's leader (one thread at a time) uses them.
    std::chrono::steady_clock::time_point last_bookmark_sync{};
    bool bookmark_sync_owed = false;

    Impl(std::string url, const Options& options)
        : pool(std::move(url), options), where(pool.where()),
          bookmark_sync_interval(options.bookmark_sync_interval) {}

    // Reads a subscription row (uuid, name, enabled, definition) into `out`; false with
    // `error` set when the definition cannot be read.
    bool parse_row(const Rows& rows, int row, sub::Subscription& out, std::string& error) const {
        std::string name = rows.text(row, 1);
        try {
            out = sub::load_toml(rows.text(row, 3), where + " subscription '" + name + "'");
        } catch (const sub::SubscriptionError& e) {
            error = std::string("stored definition is invalid: ") + e.what();
            return false;
        }
        out.uuid = rows.text(row, 0);
        out.name = std::move(name);
        out.enabled = rows.boolean(row, 2);
        return true;
    }

    sub::Subscription row_to_subscription(const Rows& rows, int row) const {
        sub::Subscription s;
        std::string error;
        if (!parse_row(rows, row, s, error)) throw StoreError(error);
        return s;
    }

    // Serializes subscription changes (from every node) until the transaction ends.
    static void lock_revision(Connection& db) {
        db.exec("SELECT value FROM meta WHERE key = 'revision' FOR UPDATE", "lock the revision");
    }
    static void bump_revision(Connection& db) {
        db.exec("UPDATE meta SET value = value + 1 WHERE key = 'revision'", "bump the revision");
    }
};

int PostgresStore::latest_schema_version() {
    return kLatestVersion;
}

bool PostgresStore::is_url(std::string_view url) {
    return url.starts_with("postgres://") || url.starts_with("postgresql://");
}

std::string PostgresStore::redact(std::string_view url) {
    std::string text(url);
    char* error = nullptr;
    PQconninfoOption* options = nullptr;
    try {
        options = pq().PQconninfoParse(text.c_str(), &error);
        if (error) pq().PQfreemem(error);
    } catch (const StoreError&) {
        // No libpq: cut as an unparseable URI (the constructor says what is missing).
    }
    if (!options) {
        // Unparseable: without the query (it may hold password=) and the user information.
        text = text.substr(0, text.find('?'));
        auto at = text.rfind('@');
        auto scheme = text.find("://");
        if (at != std::string::npos && scheme != std::string::npos && at > scheme)
            text = text.substr(0, scheme + 3) + "***" + text.substr(at);
        return text;
    }
    std::map<std::string, std::string> values;
    for (auto* o = options; o->keyword; ++o)
        if (o->val) values[o->keyword] = o->val;
    pq().PQconninfoFree(options);
    std::string host = values.count("host") ? values["host"] : values["hostaddr"];
    std::string out = "postgres://";
    if (!values["user"].empty()) out += values["user"] + "@";
    if (!host.starts_with("/")) out += host;
    if (!values["port"].empty() && !host.starts_with("/")) out += ":" + values["port"];
    out += "/" + values["dbname"];
    if (host.starts_with("/")) out += "?host=" + host;
    return out;
}

PostgresStore::PostgresStore(std::string url, Options options)
    : impl_(std::make_unique<Impl>(std::move(url), options)) {
    char* error = nullptr;
    PQconninfoOption* parsed = pq().PQconninfoParse(impl_->pool.url().c_str(), &error);
    if (!parsed) {
        std::string message =
            error ? trimmed(error, impl_->pool.url(), impl_->where) : "cannot parse it";
        if (error) pq().PQfreemem(error);
        throw StoreError("store URL '" + impl_->where + "': " + message);
    }
    pq().PQconninfoFree(parsed);
    try {
        Lease first(impl_->pool); // connects and migrates
    } catch (const ConnectionFailure&) {
        // Unreachable (logged): the store starts unavailable and connects on a later call.
    }
}

PostgresStore::~PostgresStore() = default;

int PostgresStore::schema_version() {
    Lease db(impl_->pool);
    return static_cast<int>(
        db->exec("SELECT COALESCE(MAX(version), 0) FROM schema_version", "read schema version")
            .integer(0, 0));
}

std::string PostgresStore::describe() const {
    return impl_->where;
}

std::string PostgresStore::bookmark_durability() const {
    const auto interval = impl_->bookmark_sync_interval;
    return interval.count() <= 0
               ? "bookmark commits as synchronous_commit says"
               : "bookmark commits wait for the WAL flush: a client's first, then at most every " +
                     std::to_string(interval.count()) + " ms";
}

StoreStats PostgresStore::stats() {
    Lease db(impl_->pool);
    auto rows = db->exec("SELECT (SELECT COALESCE(MAX(version), 0) FROM schema_version), "
                         "(SELECT value FROM meta WHERE key = 'revision'), "
                         "(SELECT count(*) FROM subscriptions), (SELECT count(*) FROM bookmarks), "
                         "(SELECT count(*) FROM heartbeats), "
                         "(SELECT count(*) FROM subscription_ends)",
                         "read counts");
    StoreStats s;
    s.schema_version = static_cast<int>(rows.integer(0, 0));
    s.revision = static_cast<std::uint64_t>(rows.integer(0, 1));
    s.subscriptions = static_cast<std::uint64_t>(rows.integer(0, 2));
    s.bookmarks = static_cast<std::uint64_t>(rows.integer(0, 3));
    s.hosts = static_cast<std::uint64_t>(rows.integer(0, 4));
    s.subscription_ends = static_cast<std::uint64_t>(rows.integer(0, 5));
    return s;
}

PutResult PostgresStore::put_subscription(const sub::Subscription& input) {
    try {
        sub::validate(input, "subscription '" + input.name + "'");
    } catch (const sub::SubscriptionError& e) {
        throw StoreError(e.what());
    }
    Lease db(impl_->pool);
    Transaction tx(*db);
    Impl::lock_revision(*db);
    PutResult result;
    result.subscription = input;
    auto existing = db->exec("SELECT uuid, enabled, definition FROM subscriptions WHERE name = $1",
                             Params().text(input.name), "read subscription");
    auto now = to_ms(Clock::now());
    if (existing.size() > 0) {
        result.subscription.uuid = existing.text(0, 0);
        std::string definition = sub::to_toml(result.subscription);
        if (definition == existing.text(0, 2) && existing.boolean(0, 1) == input.enabled) {
            result.change = Change::Unchanged;
            return result; // rolled back: nothing written
        }
        db->exec("UPDATE subscriptions SET enabled = $2, definition = $3, updated_at = $4 "
                 "WHERE uuid = $1",
                 Params()
                     .text(result.subscription.uuid)
                     .boolean(input.enabled)
                     .text(definition)
                     .integer(now),
                 "update subscription");
        result.change = Change::Updated;
    } else {
        result.subscription.uuid =
            input.uuid.empty() ? sub::new_uuid() : wec::text::to_upper(input.uuid);
        auto clash = db->exec("SELECT name FROM subscriptions WHERE uuid = $1",
                              Params().text(result.subscription.uuid), "read subscription");
        if (clash.size() > 0)
            throw StoreError(impl_->where + ": uuid " + result.subscription.uuid +
                             " is already used by subscription '" + clash.text(0, 0) + "'");
        db->exec("INSERT INTO subscriptions (uuid, name, enabled, definition, updated_at) "
                 "VALUES ($1, $2, $3, $4, $5)",
                 Params()
                     .text(result.subscription.uuid)
                     .text(input.name)
                     .boolean(input.enabled)
                     .text(sub::to_toml(result.subscription))
                     .integer(now),
                 "insert subscription");
        result.change = Change::Created;
    }
    Impl::bump_revision(*db);
    tx.commit();
    return result;
}

std::optional<sub::Subscription> PostgresStore::subscription_by_name(std::string_view name) {
    Lease db(impl_->pool);
    auto rows =
        db->exec("SELECT uuid, name, enabled, definition FROM subscriptions WHERE name = $1",
                 Params().text(name), "read subscription");
    if (rows.size() == 0) return std::nullopt;
    return impl_->row_to_subscription(rows, 0);
}

std::optional<sub::Subscription> PostgresStore::subscription_by_uuid(std::string_view uuid) {
    Lease db(impl_->pool);
    auto rows =
        db->exec("SELECT uuid, name, enabled, definition FROM subscriptions WHERE uuid = $1",
                 Params().text(wec::text::to_upper(uuid)), "read subscription");
    if (rows.size() == 0) return std::nullopt;
    return impl_->row_to_subscription(rows, 0);
}

SubscriptionList PostgresStore::list_subscriptions() {
    Lease db(impl_->pool);
    // Byte order (COLLATE "C"), as SQLite orders.
    auto rows = db->exec("SELECT uuid, name, enabled, definition FROM subscriptions "
                         "ORDER BY name COLLATE \"C\"",
                         "list subscriptions");
    SubscriptionList out;
    for (int row = 0; row < rows.size(); ++row) {
        sub::Subscription s;
        std::string error;
        if (impl_->parse_row(rows, row, s, error))
            out.subscriptions.push_back(std::move(s));
        else
            out.broken.push_back(
                {rows.text(row, 0), rows.text(row, 1), rows.boolean(row, 2), std::move(error)});
    }
    return out;
}

bool PostgresStore::delete_subscription(std::string_view name) {
    Lease db(impl_->pool);
    Transaction tx(*db);
    Impl::lock_revision(*db);
    auto rows = db->exec("DELETE FROM subscriptions WHERE name = $1 RETURNING uuid",
                         Params().text(name), "delete subscription");
    if (rows.size() == 0) return false;
    Params uuid;
    uuid.text(rows.text(0, 0));
    db->exec("DELETE FROM bookmarks WHERE subscription_uuid = $1", uuid, "delete bookmarks");
    db->exec("DELETE FROM heartbeats WHERE subscription_uuid = $1", uuid, "delete heartbeats");
    db->exec("DELETE FROM subscription_ends WHERE subscription_uuid = $1", uuid,
             "delete subscription ends");
    Impl::bump_revision(*db);
    tx.commit();
    return true;
}

bool PostgresStore::set_enabled(std::string_view name, bool enabled) {
    Lease db(impl_->pool);
    Transaction tx(*db);
    Impl::lock_revision(*db);
    auto rows =
        db->exec("SELECT uuid, name, enabled, definition FROM subscriptions WHERE name = $1",
                 Params().text(name), "read subscription");
    if (rows.size() == 0) return false;
    auto s = impl_->row_to_subscription(rows, 0);
    if (s.enabled == enabled) return true;
    s.enabled = enabled;
    db->exec(
        "UPDATE subscriptions SET enabled = $2, definition = $3, updated_at = $4 "
        "WHERE uuid = $1",
        Params().text(s.uuid).boolean(enabled).text(sub::to_toml(s)).integer(to_ms(Clock::now())),
        "update subscription");
    Impl::bump_revision(*db);
    tx.commit();
    return true;
}

std::uint64_t PostgresStore::revision() {
    Lease db(impl_->pool);
    auto rows = db->exec("SELECT value FROM meta WHERE key = 'revision'", "read the revision");
    return rows.size() > 0 ? static_cast<std::uint64_t>(rows.integer(0, 0)) : 0;
}

std::optional<std::string> PostgresStore::bookmark(std::string_view client,
                                                   std::string_view subscription_uuid) {
    Lease db(impl_->pool);
    auto rows = db->exec(
        "SELECT bookmark FROM bookmarks WHERE subscription_uuid = $1 AND client = $2",
        Params().text(wec::text::to_upper(subscription_uuid)).text(client), "read bookmark");
    if (rows.size() == 0) return std::nullopt;
    return rows.text(0, 0);
}

void PostgresStore::put_bookmark(std::string_view client, std::string_view subscription_uuid,
                                 std::string_view bookmark) {
    // Checked here, not in the shared statement: one bad value must not fail the whole group.
    for (auto value : {client, subscription_uuid, bookmark})
        if (value.find('\0') != std::string_view::npos)
            throw StoreError(impl_->where +
                             ": store bookmark: a text value holds a NUL byte, which PostgreSQL "
                             "cannot store");
    impl_->bookmarks.put(
        {wec::text::to_upper(subscription_uuid), std::string(client), std::string(bookmark),
         to_ms(Clock::now())},
        [&](std::span<const detail::BookmarkWrite* const> batch) {
            // A client's last bookmark in arrival order wins; rows go in key order, so that two
            // nodes writing the same rows lock them in the same order.
            std::map<std::pair<std::string_view, std::string_view>, const detail::BookmarkWrite*>
                last;
            for (const auto* b : batch)
                last[{b->subscription_uuid, b->client}] = b;
            TextArray uuids, clients, values;
            IntArray times;
            for (const auto& [key, b] : last) {
                uuids.add(b->subscription_uuid);
                clients.add(b->client);
                values.add(b->bookmark);
                times.add(b->updated_at);
            }
            const auto params = Params()
                                    .text(uuids.literal())
                                    .text(clients.literal())
                                    .text(values.literal())
                                    .text(times.literal());
            // As SqliteStore: every commit is done when the call returns (it survives a crash of
            // `wec serve`), but it waits for PostgreSQL's WAL flush only when it gives a client
            // its first bookmark (a lost one would make the client start at new events: a loss)
            // or when the last such wait is bookmark_sync_interval old. The others commit with
            // synchronous_commit off (set_config(..., true): this statement's transaction only),
            // so a crash of the database server or its machine can take them back to older
            // bookmarks, whose batches the clients then send again (duplicates, never a loss);
            // the next flush (PostgreSQL's WAL writer within 3 × wal_writer_delay, any
            // synchronous commit) puts them on disk too.
            const auto started = std::chrono::steady_clock::now();
            const auto interval = impl_->bookmark_sync_interval;
            Lease db(impl_->pool);
            if (interval.count() <= 0 || impl_->bookmark_sync_owed ||
                started - impl_->last_bookmark_sync >= interval) {
                db->exec("INSERT INTO bookmarks (subscription_uuid, client, bookmark, updated_at) "
                         "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) "
                         "ON CONFLICT (subscription_uuid, client) DO UPDATE "
                         "SET bookmark = EXCLUDED.bookmark, updated_at = EXCLUDED.updated_at",
                         params, "store bookmarks");
                impl_->last_bookmark_sync = started;
                impl_->bookmark_sync_owed = false;
                return;
            }
            // Until this call returns normally, the next bookmark commit waits for the flush.
            impl_->bookmark_sync_owed = true;
            // The uncorrelated subquery is evaluated once, before any row is written. A row
            // inserted (not updated) has no xmax: a client's first bookmark.
            auto rows =
                db->exec("INSERT INTO bookmarks (subscription_uuid, client, bookmark, updated_at) "
                         "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) "
                         "WHERE (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL "
                         "ON CONFLICT (subscription_uuid, client) DO UPDATE "
                         "SET bookmark = EXCLUDED.bookmark, updated_at = EXCLUDED.updated_at "
                         "RETURNING subscription_uuid, client, xmax = 0",
                         params, "store bookmarks");
            for (int row = 0; row < rows.size(); ++row) {
                if (!rows.boolean(row, 2)) continue;
                // A synchronous commit that writes WAL flushes it up to its own commit record,
                // the one above included: the row inserted, rewritten as it is.
                db->exec("UPDATE bookmarks SET updated_at = updated_at "
                         "WHERE subscription_uuid = $1 AND client = $2",
                         Params().text(rows.text(row, 0)).text(rows.text(row, 1)),
                         "store bookmarks (flush a first bookmark)");
                impl_->last_bookmark_sync = started;
                break;
            }
            impl_->bookmark_sync_owed = false;
        });
}

void PostgresStore::delete_bookmarks(std::string_view subscription_uuid) {
    Lease db(impl_->pool);
    db->exec("DELETE FROM bookmarks WHERE subscription_uuid = $1",
             Params().text(wec::text::to_upper(subscription_uuid)), "delete bookmarks");
}

void PostgresStore::apply_heartbeats(std::span<const HeartbeatUpdate> updates) {
    if (updates.empty()) return;
    // Coalesce first: one row per (subscription, client), in key order (lock order).
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
    TextArray uuids, clients, addresses, machines, mechanisms;
    IntArray firsts, lasts, events;
    for (const auto& [key, m] : merged) {
        uuids.add(key.first);
        clients.add(key.second);
        firsts.add(m.first);
        lasts.add(m.last);
        events.add(m.last_event);
        addresses.add(m.address);
        machines.add(m.machine_id);
        mechanisms.add(m.mechanism);
    }
    Lease db(impl_->pool);
    // GREATEST/LEAST ignore NULLs: a NULL last_event_seen on either side keeps the other.
    db->exec("INSERT INTO heartbeats (subscription_uuid, client, first_seen, last_seen, "
             "last_event_seen, address, machine_id, mechanism) "
             "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], "
             "$5::bigint[], $6::text[], $7::text[], $8::text[]) "
             "ON CONFLICT (subscription_uuid, client) DO UPDATE SET "
             "first_seen = LEAST(heartbeats.first_seen, EXCLUDED.first_seen), "
             "last_seen = GREATEST(heartbeats.last_seen, EXCLUDED.last_seen), "
             "last_event_seen = GREATEST(heartbeats.last_event_seen, EXCLUDED.last_event_seen), "
             "address = CASE WHEN EXCLUDED.address = '' THEN heartbeats.address "
             "ELSE EXCLUDED.address END, "
             "machine_id = CASE WHEN EXCLUDED.machine_id = '' THEN heartbeats.machine_id "
             "ELSE EXCLUDED.machine_id END, "
             "mechanism = CASE WHEN EXCLUDED.mechanism = '' THEN heartbeats.mechanism "
             "ELSE EXCLUDED.mechanism END",
             Params()
                 .text(uuids.literal())
                 .text(clients.literal())
                 .text(firsts.literal())
                 .text(lasts.literal())
                 .text(events.literal())
                 .text(addresses.literal())
                 .text(machines.literal())
                 .text(mechanisms.literal()),
             "store heartbeats");
}

std::vector<HostState> PostgresStore::hosts(std::string_view subscription_uuid) {
    std::string uuid = wec::text::to_upper(subscription_uuid);
    Lease db(impl_->pool);
    auto rows = db->exec("SELECT client, first_seen, last_seen, last_event_seen, address, "
                         "machine_id, mechanism FROM heartbeats WHERE subscription_uuid = $1 "
                         "ORDER BY client COLLATE \"C\"",
                         Params().text(uuid), "read hosts");
    std::vector<HostState> out;
    out.reserve(static_cast<std::size_t>(rows.size()));
    for (int row = 0; row < rows.size(); ++row) {
        HostState h;
        h.client = rows.text(row, 0);
        h.subscription_uuid = uuid;
        h.first_seen = from_ms(rows.integer(row, 1));
        h.last_seen = from_ms(rows.integer(row, 2));
        if (!rows.is_null(row, 3)) h.last_event_seen = from_ms(rows.integer(row, 3));
        h.address = rows.text(row, 4);
        h.machine_id = rows.text(row, 5);
        h.mechanism = rows.text(row, 6);
        out.push_back(std::move(h));
    }
    return out;
}

void PostgresStore::record_subscription_end(const SubscriptionEndRecord& r) {
    Lease db(impl_->pool);
    db->exec("INSERT INTO subscription_ends (subscription_uuid, client, time, status, "
             "fault_code, fault_message) VALUES ($1, $2, $3, $4, $5, $6)",
             Params()
                 .text(wec::text::to_upper(r.subscription_uuid))
                 .text(r.client)
                 .integer(to_ms(r.time))
                 .text(r.status)
                 .text(r.fault_code)
                 .text(r.fault_message),
             "record subscription end");
}

std::vector<SubscriptionEndRecord>
PostgresStore::subscription_ends(std::string_view subscription_uuid, std::size_t limit) {
    Lease db(impl_->pool);
    auto rows =
        db->exec("SELECT subscription_uuid, client, time, status, fault_code, "
                 "fault_message FROM subscription_ends "
                 "WHERE $1::text = '' OR subscription_uuid = $1::text "
                 "ORDER BY time DESC, id DESC LIMIT $2",
                 Params()
                     .text(wec::text::to_upper(subscription_uuid))
                     .integer(static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX))),
                 "read subscription ends");
    std::vector<SubscriptionEndRecord> out;
    for (int row = 0; row < rows.size(); ++row)
        out.push_back({rows.text(row, 1), rows.text(row, 0), from_ms(rows.integer(row, 2)),
                       rows.text(row, 3), rows.text(row, 4), rows.text(row, 5)});
    return out;
}

} // namespace wec::store

// The PostgreSQL backend of wec::store::Store: one database shared by several `wec serve` nodes
// (and `wec sub`, `wec status`, `wec db`), with the same semantics as SqliteStore.
//
// URL: any libpq connection URI, "postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=..." (also
// "postgresql://"). Defaults that the URI may override: connect_timeout=5,
// application_name=wec, TCP keepalives (idle 10 s, interval 5 s, count 3) and
// tcp_user_timeout=30000 (a vanished server fails the call within about 30 s). describe() and every
// error name the database without the password.
//
// Schema: a `schema_version` table and ordered migrations (kMigrations in postgres_store.cpp,
// append only), each applied in its own transaction under pg_advisory_xact_lock, so that nodes
// starting at the same time serialize: the first applies, the others find it applied. A database
// whose schema is newer than this code is refused (StoreError).
//
// Connections: a small pool (Options::max_connections, opened on demand), each connection used
// by one thread at a time; statements are parameterised and prepared once per connection. Writes
// of subscriptions take the revision row's lock, so concurrent changes from several nodes are
// serialized as with SQLite. Bookmark writes are group-committed: concurrent put_bookmark() calls
// are written by one statement (one commit); each call returns once its bookmark is committed.
// As with SQLite, a client's first bookmark waits for the WAL flush and later ones at most once
// per Options::bookmark_sync_interval (the others commit with synchronous_commit off: a crash of
// the database server or its machine can take them back to older ones, never to none).
// Heartbeats of one apply_heartbeats() call are one statement.
//
// Connection loss: a call whose connection fails throws StoreError (the collector answers 503);
// the broken connection is dropped and the next call connects again. While PostgreSQL cannot be
// reached, connection attempts are spaced by a backoff (100 ms doubling, capped at
// Options::max_backoff) and calls in between throw StoreError at once with the last error, so
// service resumes within about max_backoff of the database coming back. The constructor does not
// need the server: when it is down the store starts in that state. Each transition (unavailable,
// available again) is logged once when a logger is given.
#pragma once

#include "common/log.hpp"
#include "store/store.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace wec::store {

class PostgresStore final : public Store {
public:
    struct Options {
        // PostgreSQL lock_timeout: how long a statement waits for a row lock held elsewhere.
        std::chrono::milliseconds lock_timeout{10000};
        std::size_t max_connections = 4;
        // Cap of the reconnection backoff.
        std::chrono::milliseconds max_backoff{2000};
        // Bookmark commits wait for PostgreSQL's WAL flush at most this often (a client's first
        // bookmark always); 0: every one (see put_bookmark() in postgres_store.cpp).
        std::chrono::milliseconds bookmark_sync_interval{1000};
        Logger* log = nullptr;
    };

    // The newest schema version this code knows.
    static int latest_schema_version();
    // True for "postgres://..." and "postgresql://...".
    static bool is_url(std::string_view url);
    // "postgres://USER@HOST:PORT/DB" from a connection URI (no password, no options); the URI
    // itself when it cannot be parsed.
    static std::string redact(std::string_view url);

    // Checks the URL (StoreError when libpq cannot parse it), then connects and migrates when the
    // server can be reached. Throws StoreError when the schema is newer than this code or a
    // migration fails; an unreachable server is not an error here (see above).
    PostgresStore(std::string url, Options options);
    explicit PostgresStore(std::string url) : PostgresStore(std::move(url), Options{}) {}
    ~PostgresStore() override;

    int schema_version() override;
    std::string describe() const override;
    std::string bookmark_durability() const override;
    StoreStats stats() override;

    PutResult put_subscription(const subscription::Subscription& sub) override;
    std::optional<subscription::Subscription> subscription_by_name(std::string_view name) override;
    std::optional<subscription::Subscription> subscription_by_uuid(std::string_view uuid) override;
    SubscriptionList list_subscriptions() override;
    bool delete_subscription(std::string_view name) override;
    bool set_enabled(std::string_view name, bool enabled) override;
    std::uint64_t revision() override;

    std::optional<std::string> bookmark(std::string_view client,
                                        std::string_view subscription_uuid) override;
    void put_bookmark(std::string_view client, std::string_view subscription_uuid,
                      std::string_view bookmark) override;
    void delete_bookmarks(std::string_view subscription_uuid) override;

    void apply_heartbeats(std::span<const HeartbeatUpdate> updates) override;
    std::vector<HostState> hosts(std::string_view subscription_uuid) override;

    void record_subscription_end(const SubscriptionEndRecord& record) override;
    std::vector<SubscriptionEndRecord> subscription_ends(std::string_view subscription_uuid,
                                                         std::size_t limit) override;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace wec::store

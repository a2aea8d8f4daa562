// The embedded SQLite backend of wec::store::Store.
//
// Durability: WAL journal. Every write is committed before the call returns, so it survives a
// crash of the process. Subscription changes, heartbeat flushes (HeartbeatBatcher: one commit per
// flush) and a client's first bookmark are also fsynced (synchronous=FULL). Later bookmarks (the
// Ack point of every batch) are fsynced at most once per bookmark_sync_interval: an OS crash or
// power loss can take a bookmark back to an older one (its client then sends those batches
// again: duplicates), never to none (a loss). An interval of 0 fsyncs every bookmark commit.
//
// Thread model: two connections per SqliteStore, each behind its own mutex: one writer (all
// writes, serialized in-process so that threads never spin on SQLITE_BUSY against each other)
// and one reader (WAL readers never block the writer nor wait for it). Prepared statements are
// cached per connection. Other processes sharing the file (e.g. `wec sub apply` while
// `wec serve` runs) are handled by a busy timeout (default 10 s); write transactions start
// with BEGIN IMMEDIATE so the timeout applies. An operation still busy after it throws
// StoreError.
#pragma once

#include "store/store.hpp"

#include <chrono>
#include <memory>
#include <string>

namespace wec::store {

class SqliteStore final : public Store {
public:
    struct Options {
        std::chrono::milliseconds busy_timeout{10000};
        std::chrono::milliseconds bookmark_sync_interval{1000};
    };

    // The newest schema version this code knows.
    static int latest_schema_version();

    // Opens (creating if needed) the database file and applies pending migrations in one
    // transaction. Throws StoreError naming the path (also when the file's schema is newer than
    // latest_schema_version()). Parent directories must exist (open() creates them).
    explicit SqliteStore(const std::string& path) : SqliteStore(path, Options{}) {}
    SqliteStore(const std::string& path, Options options);
    ~SqliteStore() override;

    int schema_version() override;
    std::string describe() const override;
    std::string bookmark_durability() const override;
    bool local() const override { return true; }
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

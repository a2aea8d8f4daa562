// The collector's state behind one backend-neutral interface: subscriptions, bookmarks per
// (client, subscription), heartbeats / last-seen per (client, subscription), SubscriptionEnd
// records. `open("sqlite:PATH")` gives the embedded SQLite backend (one node),
// `open("postgres://...")` the PostgreSQL backend (shared by several nodes); same semantics.
//
// Thread-safety: every Store method may be called from any thread concurrently.
// Times are std::chrono::system_clock points, stored with millisecond precision.
#pragma once

#include "common/error.hpp"
#include "common/log.hpp"
#include "subscription/subscription.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::store {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

// A failed store operation (bad URL, schema too new, I/O error, database busy for too long,
// database unreachable).
class StoreError : public wec::Error {
public:
    using wec::Error::Error;
};

// A store that cannot be used as given — a bad URL, a database file that cannot be opened or
// created, a schema newer than this wec — as opposed to an operation that failed while running
// (a server unreachable, I/O, busy): tools exit 2 for this one, 3 for the others
// (docs/exit-codes.md). Thrown by open().
class StoreUsageError : public StoreError {
public:
    using StoreError::StoreError;
};

enum class Change { Created, Updated, Unchanged };

// A stored subscription row this binary cannot turn into a Subscription: the definition column
// holds something that does not parse (damage, a hand edit), or a definition written by a newer
// wec with keys this one does not know.
struct BrokenSubscription {
    std::string uuid;
    std::string name;
    bool enabled = false;
    std::string error; // why the definition cannot be read (names the store and the subscription)
};

// Every stored subscription: the readable ones, and the rows that could not be read (listed
// instead of failing the whole listing).
struct SubscriptionList {
    std::vector<subscription::Subscription> subscriptions; // ordered by name
    std::vector<BrokenSubscription> broken;                // ordered by name
};

struct PutResult {
    subscription::Subscription subscription; // as stored (uuid assigned)
    Change change = Change::Unchanged;
};

// One observation of a client for a subscription (a Heartbeat or an Events message).
struct HeartbeatUpdate {
    enum class Kind { Heartbeat, Events };
    std::string client;            // client identity (Kerberos principal, certificate subject)
    std::string subscription_uuid; //
    TimePoint time;                //
    Kind kind = Kind::Heartbeat;   // Events also count as "seen"
    std::string address;           // client IP address (empty: unchanged)
    std::string machine_id;        // m:MachineID (empty: unchanged)
    std::string mechanism;         // how it authenticated: "Kerberos", "NTLM", "TLS", "Basic"
                                   // (empty: unchanged)
};

// What the store knows about one client of one subscription.
struct HostState {
    std::string client;
    std::string subscription_uuid;
    TimePoint first_seen;
    TimePoint last_seen;
    std::optional<TimePoint> last_event_seen;
    std::string address;
    std::string machine_id;
    std::string mechanism; // of its last authenticated request; empty when never recorded (a
                           // row written before schema version 2)
};

enum class HostStatus { Active, Alive, Dead };
std::string_view to_string(HostStatus status);

// Active: events within the heartbeat interval before `now`; alive: seen (heartbeats) within it;
// dead: neither.
HostStatus classify(const HostState& host, std::chrono::seconds heartbeat_interval, TimePoint now);

struct SubscriptionEndRecord {
    std::string client;
    std::string subscription_uuid;
    TimePoint time;
    std::string status;        // e:Status, e.g. ".../SourceCancelling"
    std::string fault_code;    // WSManFault Code, may be empty
    std::string fault_message; // WSManFault Message, may be empty
};

// What `wec db status` reports.
struct StoreStats {
    int schema_version = 0;
    std::uint64_t revision = 0;
    std::uint64_t subscriptions = 0;     // rows, readable or not
    std::uint64_t bookmarks = 0;         // (client, subscription) pairs
    std::uint64_t hosts = 0;             // (client, subscription) pairs seen (heartbeats)
    std::uint64_t subscription_ends = 0; // SubscriptionEnd records
};

class Store {
public:
    virtual ~Store() = default;
    Store() = default;
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Schema version of the opened database (after migrations).
    virtual int schema_version() = 0;
    // Human-readable description for startup logs, e.g. "sqlite:/var/lib/wec/wec.db" or
    // "postgres://wec@db1:5432/wec" (never a password).
    virtual std::string describe() const = 0;
    // For startup logs too: what a put_bookmark() that returned survives, when the store has
    // something to say beyond put_bookmark()'s contract below ("" otherwise).
    virtual std::string bookmark_durability() const { return {}; }
    // True when operations reach no other machine (a file on this one): they seldom block for
    // long, so the collector may run them on its I/O threads (handler_threads = "auto").
    virtual bool local() const { return false; }
    // Schema version and row counts, read in one transaction.
    virtual StoreStats stats() = 0;

    // ---- subscriptions (each change bumps revision()) ----
    // Creates or updates by name. An existing subscription keeps its uuid; a new one takes
    // sub.uuid when set, else a fresh one. The definition is validated (StoreError on failure).
    virtual PutResult put_subscription(const subscription::Subscription& sub) = 0;
    virtual std::optional<subscription::Subscription>
    subscription_by_name(std::string_view name) = 0;
    virtual std::optional<subscription::Subscription>
    subscription_by_uuid(std::string_view uuid) = 0;
    // All subscriptions. A row whose definition cannot be read goes to `broken` (the others are
    // still listed); StoreError only when the store itself fails (busy, I/O, schema).
    virtual SubscriptionList list_subscriptions() = 0;
    // The strict form: all subscriptions, ordered by name; StoreError naming the first row that
    // cannot be read. subscription_by_name() / _by_uuid() on such a row also throw StoreError.
    std::vector<subscription::Subscription> subscriptions();
    // Deletes the subscription and its bookmarks, heartbeats and SubscriptionEnd records.
    // False when there is no such name.
    virtual bool delete_subscription(std::string_view name) = 0;
    // False when there is no such name.
    virtual bool set_enabled(std::string_view name, bool enabled) = 0;
    // A counter that changes whenever a subscription is created, updated, enabled, disabled or
    // deleted, by this process or another one sharing the database. Cheap: poll it.
    virtual std::uint64_t revision() = 0;

    // ---- bookmarks ----
    virtual std::optional<std::string> bookmark(std::string_view client,
                                                std::string_view subscription_uuid) = 0;
    // Committed when it returns (this is what the Ack waits for): it survives a crash of the
    // process; a client's first bookmark also an OS crash. SQLite fsyncs later ones at most once
    // per bookmark_sync_interval (OpenOptions); PostgreSQL waits for its WAL flush on the same
    // terms.
    virtual void put_bookmark(std::string_view client, std::string_view subscription_uuid,
                              std::string_view bookmark) = 0;
    virtual void delete_bookmarks(std::string_view subscription_uuid) = 0;

    // ---- heartbeats (use HeartbeatBatcher in the server) ----
    // Applies updates in one transaction. Per (client, subscription): first_seen is kept (set
    // on first sight), last_seen / last_event_seen only move forward, address, machine id and
    // mechanism take the last non-empty value in `updates` order.
    virtual void apply_heartbeats(std::span<const HeartbeatUpdate> updates) = 0;
    // Hosts of one subscription, ordered by client.
    virtual std::vector<HostState> hosts(std::string_view subscription_uuid) = 0;

    // ---- SubscriptionEnd records ----
    virtual void record_subscription_end(const SubscriptionEndRecord& record) = 0;
    // Newest first; empty subscription_uuid = all subscriptions.
    virtual std::vector<SubscriptionEndRecord> subscription_ends(std::string_view subscription_uuid,
                                                                 std::size_t limit) = 0;
};

// Opens a store from a URL:
// - "sqlite:PATH", "sqlite://PATH" or a bare PATH (no "scheme:" prefix): SQLite; parent
//   directories are created.
// - "postgres://..." or "postgresql://..." (any libpq connection URI): PostgreSQL. Opening does not
//   need the server to be up: when it cannot be reached the store is still returned, every call
//   throws StoreError until it can (see postgres_store.hpp).
// Throws StoreError naming the URL (without its password) for a bad URL or an unusable database.
struct OpenOptions {
    // How long an operation waits for a lock held by another process or connection before it
    // fails with StoreError (SQLite's busy timeout, PostgreSQL's lock_timeout).
    std::chrono::milliseconds busy_timeout{10000};
    // Bookmark commits are fsynced (SQLite) or wait for the WAL flush (PostgreSQL) at most this
    // often, a client's first bookmark always; 0: every one (sqlite_store.hpp,
    // postgres_store.hpp).
    std::chrono::milliseconds bookmark_sync_interval{1000};
    // PostgreSQL: connections kept open at most (they are opened on demand).
    std::size_t max_connections = 4;
    // Where the store reports state changes (PostgreSQL: connection lost, back); may be null.
    Logger* log = nullptr;
};
std::unique_ptr<Store> open(std::string_view url, const OpenOptions& options = {});

// Coalesces heartbeat/last-seen updates in memory and writes them to the store in one
// transaction per flush. Thread-safe. Flushing is explicit (flush()), or done by a background
// thread owned by the batcher between start() and stop(); the destructor stops and flushes.
class HeartbeatBatcher {
public:
    struct Options {
        std::chrono::milliseconds interval{5000}; // background flush period
        std::size_t max_pending = 10000;          // distinct (client, subscription) keys that
                                                  // wake the background flush early
    };

    HeartbeatBatcher(Store& store, Options options);
    explicit HeartbeatBatcher(Store& store) : HeartbeatBatcher(store, Options{}) {}
    ~HeartbeatBatcher();
    HeartbeatBatcher(const HeartbeatBatcher&) = delete;
    HeartbeatBatcher& operator=(const HeartbeatBatcher&) = delete;

    // Records an update in memory. Returns true when max_pending is reached (a flush is due).
    bool record(HeartbeatUpdate update);
    // Writes every pending update; returns how many rows were written. On failure the updates
    // stay pending (merged with newer ones) and the StoreError propagates.
    std::size_t flush();
    std::size_t pending() const;

    // Starts the background flusher (idempotent). Errors in background flushes are counted in
    // failed_flushes() and retried at the next interval.
    void start();
    // Stops the background flusher and flushes what is pending (errors propagate).
    void stop();
    std::uint64_t failed_flushes() const;
    // The error of the last flush (background or explicit) when it failed; empty when it
    // succeeded (or none ran yet). What a caller polls to log a failing store once.
    std::string last_error() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

} // namespace wec::store

#include "store/store.hpp"

#include "store/postgres_store.hpp"
#include "store/sqlite_store.hpp"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

namespace wec::store {

std::string_view to_string(HostStatus status) {
    switch (status) {
    case HostStatus::Active:
        return "active";
    case HostStatus::Alive:
        return "alive";
    case HostStatus::Dead:
        break;
    }
    return "dead";
}

HostStatus classify(const HostState& host, std::chrono::seconds heartbeat_interval, TimePoint now) {
    auto since = now - heartbeat_interval;
    if (host.last_event_seen && *host.last_event_seen >= since) return HostStatus::Active;
    if (host.last_seen >= since) return HostStatus::Alive;
    return HostStatus::Dead;
}

std::vector<subscription::Subscription> Store::subscriptions() {
    auto list = list_subscriptions();
    if (!list.broken.empty()) {
        const auto& b = list.broken.front();
        throw StoreError("stored subscription '" + b.name + "' (uuid " + b.uuid +
                         ") cannot be read: " + b.error);
    }
    return std::move(list.subscriptions);
}

namespace {

// "scheme:" at the start (RFC 3986: a letter, then letters, digits, '+', '-', '.').
bool has_scheme(std::string_view url) {
    auto colon = url.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    if (!std::isalpha(static_cast<unsigned char>(url[0]))) return false;
    return std::all_of(url.begin(), url.begin() + static_cast<std::ptrdiff_t>(colon), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
    });
}

} // namespace

namespace {

std::unique_ptr<Store> open_store(std::string_view url, const OpenOptions& options);

} // namespace

std::unique_ptr<Store> open(std::string_view url, const OpenOptions& options) {
    try {
        return open_store(url, options);
    } catch (const StoreUsageError&) {
        throw;
    } catch (const StoreError& e) {
        // What opening refuses is the URL or the file as given (a PostgreSQL server that is
        // down does not fail here: its store connects on first use).
        throw StoreUsageError(e.what());
    }
}

namespace {

std::unique_ptr<Store> open_store(std::string_view url, const OpenOptions& options) {
    if (PostgresStore::is_url(url)) {
        PostgresStore::Options o;
        o.lock_timeout = options.busy_timeout;
        o.max_connections = options.max_connections;
        o.bookmark_sync_interval = options.bookmark_sync_interval;
        o.log = options.log;
        return std::make_unique<PostgresStore>(std::string(url), o);
    }
    constexpr std::string_view kSqlite = "sqlite:";
    std::string_view path = url;
    if (url.starts_with(kSqlite)) {
        path = url.substr(kSqlite.size());
        if (path.starts_with("//")) path.remove_prefix(2);
    } else if (has_scheme(url)) {
        // Only the scheme: the rest may hold a password.
        throw StoreError("store URL scheme '" + std::string(url.substr(0, url.find(':'))) +
                         ":' is not supported (expected sqlite:PATH, a file path or "
                         "postgres://...)");
    }
    if (path.empty())
        throw StoreError("store URL '" + std::string(url) + "': missing the database path");
    if (path == ":memory:" || path.starts_with("file:"))
        throw StoreError("store URL '" + std::string(url) +
                         "': only a database file path is supported (no :memory:, no URI)");
    std::filesystem::path file{std::string(path)};
    if (file.has_parent_path()) {
        std::error_code ec;
        std::filesystem::create_directories(file.parent_path(), ec);
        if (ec)
            throw StoreError("store URL '" + std::string(url) + "': cannot create directory " +
                             file.parent_path().string() + ": " + ec.message());
    }
    return std::make_unique<SqliteStore>(
        std::string(path),
        SqliteStore::Options{options.busy_timeout, options.bookmark_sync_interval});
}

} // namespace

// ---- HeartbeatBatcher -------------------------------------------------------------------------

namespace {

struct Pending {
    TimePoint first;
    TimePoint last;
    std::optional<TimePoint> last_event;
    std::string address;
    std::string machine_id;
    std::string mechanism;
};

using Key = std::pair<std::string, std::string>; // (subscription uuid, client)

void merge(Pending& into, const Pending& newer) {
    into.first = std::min(into.first, newer.first);
    into.last = std::max(into.last, newer.last);
    if (newer.last_event)
        into.last_event =
            into.last_event ? std::max(*into.last_event, *newer.last_event) : newer.last_event;
    if (!newer.address.empty()) into.address = newer.address;
    if (!newer.machine_id.empty()) into.machine_id = newer.machine_id;
    if (!newer.mechanism.empty()) into.mechanism = newer.mechanism;
}

} // namespace

struct HeartbeatBatcher::State {
    Store& store;
    Options options;
    mutable std::mutex mutex;
    std::map<Key, Pending> pending;
    std::mutex flush_mutex; // one flush at a time, so a failed flush can be merged back in order
    std::condition_variable wake;
    bool stopping = false;
    bool flush_due = false;
    std::uint64_t failed = 0;
    std::string last_error; // of the last flush; empty when it succeeded
    std::thread thread;

    State(Store& s, Options o) : store(s), options(o) {}

    void loop() {
        std::unique_lock lock(mutex);
        while (!stopping) {
            wake.wait_for(lock, options.interval, [&] { return stopping || flush_due; });
            if (stopping) break;
            flush_due = false;
            lock.unlock();
            try {
                flush();
            } catch (const std::exception&) {
                std::lock_guard relock(mutex);
                ++failed; // last_error set by flush()
            }
            lock.lock();
        }
    }

    std::size_t flush() {
        std::lock_guard flushing(flush_mutex);
        std::map<Key, Pending> batch;
        {
            std::lock_guard lock(mutex);
            batch.swap(pending);
        }
        if (batch.empty()) return 0;
        // Each merged entry becomes up to three updates whose combination, under the store's
        // rules (first_seen min, last_seen/last_event max, last non-empty address, machine id and
        // mechanism), is exactly
        // the merged state.
        std::vector<HeartbeatUpdate> updates;
        updates.reserve(batch.size() * 2);
        for (const auto& [key, p] : batch) {
            if (p.first < p.last)
                updates.push_back(
                    {key.second, key.first, p.first, HeartbeatUpdate::Kind::Heartbeat, {}, {}, {}});
            if (p.last_event && *p.last_event < p.last)
                updates.push_back({key.second,
                                   key.first,
                                   *p.last_event,
                                   HeartbeatUpdate::Kind::Events,
                                   {},
                                   {},
                                   {}});
            bool last_is_event = p.last_event && *p.last_event == p.last;
            updates.push_back(
                {key.second, key.first, p.last,
                 last_is_event ? HeartbeatUpdate::Kind::Events : HeartbeatUpdate::Kind::Heartbeat,
                 p.address, p.machine_id, p.mechanism});
        }
        // On failure keep them: merge with what arrived meanwhile (newer values win).
        auto keep = [&](std::string error) {
            std::lock_guard lock(mutex);
            for (auto& [key, p] : pending) {
                auto [it, inserted] = batch.try_emplace(key, p);
                if (!inserted) merge(it->second, p);
            }
            pending.swap(batch);
            last_error = error.empty() ? "heartbeat flush failed" : std::move(error);
        };
        try {
            store.apply_heartbeats(updates);
        } catch (const std::exception& e) {
            keep(e.what());
            throw;
        } catch (...) {
            keep({});
            throw;
        }
        {
            std::lock_guard lock(mutex);
            last_error.clear();
        }
        return batch.size();
    }
};

HeartbeatBatcher::HeartbeatBatcher(Store& store, Options options)
    : state_(std::make_unique<State>(store, options)) {}

HeartbeatBatcher::~HeartbeatBatcher() {
    try {
        stop();
    } catch (...) {
        // Destructors must not throw; call stop() explicitly to see flush errors.
    }
}

bool HeartbeatBatcher::record(HeartbeatUpdate update) {
    Pending p{update.time,
              update.time,
              std::nullopt,
              std::move(update.address),
              std::move(update.machine_id),
              std::move(update.mechanism)};
    if (update.kind == HeartbeatUpdate::Kind::Events) p.last_event = update.time;
    std::lock_guard lock(state_->mutex);
    Key key{std::move(update.subscription_uuid), std::move(update.client)};
    for (auto& c : key.first)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto [it, inserted] = state_->pending.try_emplace(std::move(key), p);
    if (!inserted) merge(it->second, p);
    bool due = state_->pending.size() >= state_->options.max_pending;
    if (due && state_->thread.joinable()) {
        state_->flush_due = true;
        state_->wake.notify_one();
    }
    return due;
}

std::size_t HeartbeatBatcher::flush() {
    return state_->flush();
}

std::size_t HeartbeatBatcher::pending() const {
    std::lock_guard lock(state_->mutex);
    return state_->pending.size();
}

void HeartbeatBatcher::start() {
    std::lock_guard lock(state_->mutex);
    if (state_->thread.joinable()) return;
    state_->stopping = false;
    state_->thread = std::thread([state = state_.get()] { state->loop(); });
}

void HeartbeatBatcher::stop() {
    std::thread thread;
    {
        std::lock_guard lock(state_->mutex);
        state_->stopping = true;
        thread = std::move(state_->thread);
    }
    state_->wake.notify_all();
    if (thread.joinable()) thread.join();
    state_->flush();
}

std::uint64_t HeartbeatBatcher::failed_flushes() const {
    std::lock_guard lock(state_->mutex);
    return state_->failed;
}

std::string HeartbeatBatcher::last_error() const {
    std::lock_guard lock(state_->mutex);
    return state_->last_error;
}

} // namespace wec::store

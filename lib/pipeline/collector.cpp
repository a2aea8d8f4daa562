#include "pipeline/collector.hpp"

#include "event/event.hpp"
#include "metrics/hosts.hpp"
#include "metrics/metrics.hpp"
#include "output/output.hpp"
#include "output/queue.hpp"
#include "subscription/subscription.hpp"
#include "text/ascii.hpp"
#include "wsman/subscription.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <future>
#include <map>
#include <mutex>
#include <unistd.h>

namespace wec::pipeline {

namespace {

// An output at work: its driver, the queue of batches waiting for it (with its own writer
// threads), and its health, logged once per change of state rather than once per batch.
class OutputUnit {
public:
    OutputUnit(std::shared_ptr<output::Driver> d, std::size_t capacity)
        : driver(std::move(d)), queue(driver->describe(), driver->concurrency(), capacity) {}

    // After a write() that failed (`error` set) or succeeded.
    void note_result(Logger& log, std::string_view subscription, const std::string* error) {
        std::lock_guard lock(mutex_);
        if (error) {
            ++failures_since_ok_;
            if (failures_since_ok_ == 1)
                log.error("output failed: its batches are refused with 503 (the sources keep and "
                          "resend them) until it works again",
                          {{"subscription", std::string(subscription)},
                           {"output", driver->describe()},
                           {"error", *error}});
        } else if (failures_since_ok_ > 0) {
            log.info("output works again",
                     {{"subscription", std::string(subscription)},
                      {"output", driver->describe()},
                      {"failed_batches", std::to_string(failures_since_ok_)}});
            failures_since_ok_ = 0;
        }
    }
    // A batch refused because the queue was full: counted, logged when the refusals start.
    // Returns the reason given to the source.
    std::string note_full(Logger& log, std::string_view subscription) {
        std::lock_guard lock(mutex_);
        if (refused_full_++ == 0)
            log.warn("output queue full: new batches are refused with 503 until it drains",
                     {{"subscription", std::string(subscription)},
                      {"output", driver->describe()},
                      {"queue", std::to_string(queue.capacity())}});
        full_.store(true, std::memory_order_relaxed);
        return "output " + driver->describe() + ": queue full (" +
               std::to_string(queue.capacity()) + " batches wait)";
    }
    // A batch queued: logs the end of a run of refusals. No lock unless there was one (this
    // runs for every batch and output).
    void note_queued(Logger& log, std::string_view subscription) {
        if (!full_.load(std::memory_order_relaxed)) return;
        std::lock_guard lock(mutex_);
        if (refused_full_ == 0) return;
        log.info("output queue accepts batches again",
                 {{"subscription", std::string(subscription)},
                  {"output", driver->describe()},
                  {"refused_batches", std::to_string(refused_full_)}});
        refused_full_ = 0;
        full_.store(false, std::memory_order_relaxed);
    }

    std::shared_ptr<output::Driver> driver;
    output::WriteQueue queue;

private:
    std::mutex mutex_;
    std::uint64_t failures_since_ok_ = 0;
    std::uint64_t refused_full_ = 0;
    std::atomic<bool> full_{false}; // refused_full_ > 0, readable without the lock
};

struct LiveOutput {
    subscription::Output definition;
    std::shared_ptr<OutputUnit> unit;
    // Metrics (docs/metrics.md), looked up once when the subscription is loaded: the hot path
    // only adds to them.
    std::string label; // the output's description, unique within the subscription
    std::shared_ptr<metrics::Counter> written;    // events written
    std::shared_ptr<metrics::Counter> failed;     // batches the driver refused
    std::shared_ptr<metrics::Counter> queue_full; // batches refused because its queue was full
};

struct LiveSubscription {
    subscription::Subscription def;
    std::string version; // public_version(def)
    std::vector<LiveOutput> outputs;
    std::vector<event::Format> formats; // distinct formats of the outputs
    // An output that could not be made: its batches are refused (503) rather than acked without
    // it (nothing acked may miss an output). Empty when all are there.
    std::string output_error;
    // Metrics: events received, and the hosts seen (kept across reloads, by uuid).
    std::shared_ptr<metrics::Counter> events_received;
    std::shared_ptr<metrics::HostTable> hosts;
};

constexpr const char* kHelpReceived =
    "Events received in Events messages for the subscription (counted on arrival, also when the "
    "batch is then refused with 503 and sent again).";
constexpr const char* kHelpWritten = "Events written by the output.";
constexpr const char* kHelpRefused =
    "Batches refused with 503 because of this output: reason=failed (its driver failed) or "
    "queue_full (its queue was full).";

// subscription::OutputFormat and event::Format list the same formats in the same order.
event::Format event_format(subscription::OutputFormat format) {
    using O = subscription::OutputFormat;
    using E = event::Format;
    static_assert(int(O::Raw) == int(E::Raw) && int(O::Json) == int(E::Json) &&
                  int(O::RawJson) == int(E::RawJson) && int(O::Nxlog) == int(E::Nxlog) &&
                  int(O::Ecs) == int(E::Ecs) && event::kFormatCount == 5);
    return static_cast<event::Format>(format);
}

// An immutable view of the subscriptions, swapped as a whole on reload so that requests in
// flight keep the one they started with.
struct Snapshot {
    std::map<std::string, std::shared_ptr<const LiveSubscription>> by_uuid; // uppercase uuid
    std::map<std::string, store::BrokenSubscription> broken;                // uppercase uuid
    std::uint64_t revision = 0;
    bool loaded = false; // false until the store was read once (it may be down at start)
};

std::string trim_slashes(std::string_view p) {
    while (p.size() > 1 && p.back() == '/')
        p.remove_suffix(1);
    return std::string(p);
}

// {node} of output templates when node_name is not set: this machine's host name (gethostname).
std::string host_name() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "localhost";
    return host;
}

} // namespace

struct Collector::Impl {
    Logger& log;
    store::Store& store;
    store::HeartbeatBatcher& heartbeats;
    CollectorConfig config;
    const std::string node; // {node} of output templates: node_name, else the host name

    mutable std::mutex snapshot_mutex;
    std::shared_ptr<const Snapshot> snapshot = std::make_shared<Snapshot>();

    // Reloading: one thread at a time; the others keep the current snapshot.
    std::mutex reload_mutex;
    std::chrono::steady_clock::time_point next_check{}; // no reload attempt before this
    unsigned failures = 0;                              // consecutive failed reloads
    std::map<std::string, std::string> reported_broken; // uuid -> error already logged

    std::mutex heartbeats_mutex; // not reload_mutex: a reload may wait on a busy store
    bool heartbeats_failing = false;

    mutable std::mutex health_mutex;
    bool store_ok = true;
    std::string store_error;
    std::atomic<std::uint64_t> store_errors{0};

    // Metrics: where the counters go (config.metrics, or own_metrics), and the host table of
    // each subscription served, by uppercase uuid (reload_mutex).
    std::unique_ptr<metrics::Registry> own_metrics;
    metrics::Registry* metrics = nullptr;
    std::map<std::string, std::shared_ptr<metrics::HostTable>> host_tables;
    // How long a bookmark commit takes (group commit included): the store's latency as the
    // sources feel it.
    std::shared_ptr<metrics::Histogram> bookmark_seconds;

    // Workers writing a batch themselves (WriteQueue::run_or_post) now; beyond the limit they
    // hand it to the output's threads (the default pool has 8 workers, see service.cpp).
    static constexpr unsigned kMaxInlineWrites = 4;
    std::atomic<unsigned> inline_writes{0};

    // Every output unit made, also those of older snapshots that batches in flight still use:
    // the collector drains them all before it goes (their last jobs call back into it).
    std::mutex units_mutex;
    std::vector<std::weak_ptr<OutputUnit>> units;

    void remember(const std::shared_ptr<OutputUnit>& unit) {
        std::lock_guard lock(units_mutex);
        std::erase_if(units, [](const auto& w) { return w.expired(); });
        units.push_back(unit);
    }

    void drain_outputs() {
        std::vector<std::shared_ptr<OutputUnit>> alive;
        {
            std::lock_guard lock(units_mutex);
            for (auto& w : units)
                if (auto u = w.lock()) alive.push_back(std::move(u));
        }
        for (auto& u : alive)
            u->queue.drain();
    }

    Impl(Logger& l, store::Store& s, store::HeartbeatBatcher& h, CollectorConfig c)
        : log(l), store(s), heartbeats(h), config(std::move(c)),
          node(config.node_name.empty() ? host_name() : config.node_name) {
        if (!config.metrics) own_metrics = std::make_unique<metrics::Registry>();
        metrics = config.metrics ? config.metrics : own_metrics.get();
        bookmark_seconds = metrics->histogram(
            "wec_store_bookmark_seconds",
            "Time to commit a batch's bookmark to the state store (shared group commits included).",
            {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5});
    }

    std::shared_ptr<const Snapshot> current() const {
        std::lock_guard lock(snapshot_mutex);
        return snapshot;
    }

    std::uint32_t retry_after_s() const {
        auto ms = std::max<std::int64_t>(config.retry_max.count(), 1000);
        return static_cast<std::uint32_t>((ms + 999) / 1000);
    }

    // A request refused because the store failed: the source keeps its events and retries.
    Reply store_unavailable(std::string note) {
        ++store_errors;
        Reply r{503, {}, std::move(note), 0, retry_after_s()};
        return r;
    }

    std::chrono::milliseconds backoff() const {
        auto delay = config.retry_initial;
        for (unsigned i = 1; i < failures && delay < config.retry_max; ++i)
            delay *= 2;
        return std::min(delay, config.retry_max);
    }

    // Re-reads the subscriptions when the store's revision moved (rate-limited, and backed off
    // after store errors). A store error is logged when the store starts failing (not at every
    // attempt) and when it works again; meanwhile the current snapshot keeps being served.
    void reload(bool force) {
        std::unique_lock lock(reload_mutex, std::try_to_lock);
        if (!lock.owns_lock()) return; // another thread is reloading
        auto now = std::chrono::steady_clock::now();
        if (!force && now < next_check) return;
        next_check = now + config.reload_interval;
        try {
            load(force);
        } catch (const store::StoreError& e) {
            ++store_errors;
            ++failures;
            auto delay = backoff();
            next_check = now + delay;
            bool was_ok = false;
            {
                std::lock_guard hlock(health_mutex);
                was_ok = store_ok;
                store_ok = false;
                store_error = e.what();
            }
            auto retry = std::to_string(delay.count());
            if (was_ok)
                log.error("store error: subscriptions not reloaded; serving those already loaded, "
                          "retrying with backoff",
                          {{"error", e.what()}, {"retry_ms", retry}});
            else
                log.debug("store still failing", {{"error", e.what()},
                                                  {"attempts", std::to_string(failures)},
                                                  {"retry_ms", retry}});
            return;
        }
        if (failures > 0)
            log.info("store available again: subscriptions reloaded",
                     {{"failed_attempts", std::to_string(failures)}});
        failures = 0;
        std::lock_guard hlock(health_mutex);
        store_ok = true;
        store_error.clear();
    }

    // Reads the subscriptions into a new snapshot (reload_mutex held). Output drivers of
    // unchanged outputs are kept (open files stay open). Rows that cannot be read are skipped.
    void load(bool force) {
        auto old = current();
        std::uint64_t revision = store.revision();
        if (!force && revision == old->revision && old->revision != 0) return;

        auto listing = store.list_subscriptions();
        auto next = std::make_shared<Snapshot>();
        next->revision = revision;
        next->loaded = true;
        for (auto& def : listing.subscriptions) {
            auto live = std::make_shared<LiveSubscription>();
            live->version = subscription::public_version(def);
            const LiveSubscription* previous = nullptr;
            if (auto it = old->by_uuid.find(text::to_upper(def.uuid)); it != old->by_uuid.end())
                previous = it->second.get();
            for (const auto& out : def.outputs) {
                LiveOutput lo;
                lo.definition = out;
                if (previous)
                    for (const auto& p : previous->outputs)
                        if (p.definition == out) lo.unit = p.unit;
                if (!lo.unit) {
                    try {
                        lo.unit = std::make_shared<OutputUnit>(
                            output::make_driver(out.driver, out.options, &log), out.queue);
                        remember(lo.unit);
                    } catch (const std::exception& e) {
                        log.error("output cannot be made: events of this subscription are refused "
                                  "with 503 until it is fixed",
                                  {{"subscription", def.name}, {"error", e.what()}});
                        if (live->output_error.empty())
                            live->output_error = "output " + out.driver + ": " + e.what();
                        continue;
                    }
                }
                if (std::find(live->formats.begin(), live->formats.end(),
                              event_format(out.format)) == live->formats.end())
                    live->formats.push_back(event_format(out.format));
                live->outputs.push_back(std::move(lo));
            }
            attach_metrics(*live, def);
            live->def = std::move(def);
            next->by_uuid.emplace(text::to_upper(live->def.uuid), std::move(live));
        }
        for (auto& b : listing.broken)
            next->broken.emplace(text::to_upper(b.uuid), std::move(b));
        std::erase_if(host_tables, [&](const auto& t) { return !next->by_uuid.count(t.first); });
        note_broken(*next);
        if (old->revision != revision || force)
            log.info("subscriptions loaded", {{"count", std::to_string(next->by_uuid.size())},
                                              {"unreadable", std::to_string(next->broken.size())},
                                              {"revision", std::to_string(revision)}});
        std::lock_guard slock(snapshot_mutex);
        snapshot = std::move(next);
    }

    // Metrics of a subscription being loaded: its counters (the same objects as before a reload,
    // the registry keys them by name and labels) and its host table, filled from the store the
    // first time the subscription is seen (so that hosts already dead count after a restart).
    void attach_metrics(LiveSubscription& live, const subscription::Subscription& def) {
        live.events_received = metrics->counter("wec_events_received_total", kHelpReceived,
                                                {{"subscription", def.name}});
        for (std::size_t i = 0; i < live.outputs.size(); ++i) {
            auto& lo = live.outputs[i];
            lo.label = lo.unit->driver->describe();
            for (std::size_t j = 0; j < i; ++j)
                if (live.outputs[j].unit->driver->describe() == lo.label)
                    lo.label += " #" + std::to_string(i + 1); // two outputs alike: tell them apart
            metrics::Labels labels{{"subscription", def.name}, {"output", lo.label}};
            lo.written = metrics->counter("wec_events_written_total", kHelpWritten, labels);
            labels.push_back({"reason", "failed"});
            lo.failed = metrics->counter("wec_batches_refused_total", kHelpRefused, labels);
            labels.back().value = "queue_full";
            lo.queue_full = metrics->counter("wec_batches_refused_total", kHelpRefused, labels);
        }
        auto& table = host_tables[text::to_upper(def.uuid)];
        if (!table) {
            table = std::make_shared<metrics::HostTable>();
            try {
                for (const auto& h : store.hosts(def.uuid))
                    table->seen(h.client, h.last_seen, h.last_event_seen);
            } catch (const std::exception& e) {
                log.warn("hosts of the subscription not read: wec_hosts counts only those seen "
                         "from now on",
                         {{"subscription", def.name}, {"error", e.what()}});
            }
        }
        live.hosts = table;
    }

    // Logs each unreadable subscription once (again only if its error changes), and when it
    // becomes readable again.
    void note_broken(const Snapshot& next) {
        for (const auto& [uuid, b] : next.broken) {
            auto it = reported_broken.find(uuid);
            if (it != reported_broken.end() && it->second == b.error) continue;
            log.error("subscription not served: its stored definition cannot be read (fix it "
                      "with `wec sub apply`, or remove it with `wec sub rm`)",
                      {{"subscription", b.name}, {"uuid", b.uuid}, {"error", b.error}});
            reported_broken[uuid] = b.error;
        }
        for (auto it = reported_broken.begin(); it != reported_broken.end();) {
            if (next.broken.count(it->first)) {
                ++it;
                continue;
            }
            if (auto live = next.by_uuid.find(it->first); live != next.by_uuid.end())
                log.info("subscription definition readable again: served",
                         {{"subscription", live->second->def.name}, {"uuid", it->first}});
            it = reported_broken.erase(it);
        }
    }

    // Background heartbeat flushes retry by themselves; log when they start and stop failing.
    void note_heartbeats() {
        std::lock_guard lock(heartbeats_mutex);
        auto error = heartbeats.last_error();
        if (!error.empty() && !heartbeats_failing)
            log.error("store error: heartbeats not written; kept in memory and retried",
                      {{"error", error}});
        else if (error.empty() && heartbeats_failing)
            log.info("store available again: heartbeats written");
        heartbeats_failing = !error.empty();
    }

    wsman::SubscriptionSpec spec_for(const LiveSubscription& live, const ClientInfo& client) {
        return subscription_spec(live.def, live.version, config, client,
                                 store.bookmark(client.identity, text::to_upper(live.def.uuid)));
    }

    Reply enumerate(const ClientInfo& client, std::string_view path, const wsman::Message& msg) {
        auto snap = current();
        std::vector<wsman::SubscriptionSpec> specs;
        std::string uri = trim_slashes(path.substr(0, path.find('?')));
        for (const auto& [uuid, live] : snap->by_uuid) {
            const auto& d = live->def;
            if (!d.enabled || !subscription::allows(d, client.identity)) continue;
            if (d.uri && trim_slashes(*d.uri) != uri) continue;
            specs.push_back(spec_for(*live, client));
        }
        Reply r{200, wsman::build_enumerate_response(msg, specs), {}, 0};
        r.note = std::to_string(specs.size()) + " subscriptions";
        return r;
    }

    // 404 for an unknown or disabled subscription, 403 for a client it does not allow, 503 for
    // an enabled one whose stored definition cannot be read (the source keeps its events).
    // `uuid`: the subscription of the request path (wsman::subscription_from_path).
    std::shared_ptr<const LiveSubscription> authorize(const Snapshot& snap,
                                                      const ClientInfo& client,
                                                      const std::string& uuid, Reply& reply) {
        auto it = snap.by_uuid.find(uuid);
        if (auto broken = snap.broken.find(uuid);
            it == snap.by_uuid.end() && broken != snap.broken.end() && broken->second.enabled) {
            reply = Reply{503,
                          {},
                          "subscription " + broken->second.name +
                              " not served: its stored definition cannot be read",
                          0,
                          retry_after_s()};
            return nullptr;
        }
        if (it == snap.by_uuid.end() || !it->second->def.enabled) {
            reply = Reply{404, {}, "unknown subscription " + uuid, 0};
            return nullptr;
        }
        if (!subscription::allows(it->second->def, client.identity)) {
            reply = Reply{403, {}, "client not allowed by subscription " + it->second->def.name, 0};
            return nullptr;
        }
        return it->second;
    }

    // One batch on its way to the outputs of a subscription. Each output's writer threads take
    // it in turn; the one that finishes last stores the bookmark and answers the source.
    struct PendingBatch {
        Impl& impl;
        const ClientInfo client;
        const std::shared_ptr<const LiveSubscription> live;
        const wsman::Message& msg; // the caller keeps it until `done` was called
        ReplyHandler done;
        std::chrono::system_clock::time_point received;
        event::BatchFormatter formatted;
        std::vector<std::string_view> xml; // for drivers that read fields of the events (syslog)
        output::BatchInfo batch;
        std::atomic<std::size_t> remaining{0};
        std::mutex mutex;
        std::string error; // the first output that refused the batch, and why

        PendingBatch(Impl& i, const ClientInfo& c, std::shared_ptr<const LiveSubscription> l,
                     const wsman::Message& m)
            : impl(i), client(c), live(std::move(l)), msg(m), formatted(live->formats) {}

        void refuse(std::string why) {
            std::lock_guard lock(mutex);
            if (error.empty()) error = std::move(why);
        }

        void write(std::size_t index) {
            const auto& out = live->outputs[index];
            auto& unit = *out.unit;
            try {
                unit.driver->write(batch, formatted.lines(event_format(out.definition.format)));
                out.written->inc(batch.events.size());
                unit.note_result(impl.log, live->def.name, nullptr);
            } catch (const std::exception& e) {
                // Nothing is acked and the bookmark does not move: the source keeps the events
                // and sends them again (at-least-once; some outputs may see them twice).
                std::string what = e.what();
                out.failed->inc();
                unit.note_result(impl.log, live->def.name, &what);
                refuse("output " + unit.driver->describe() + ": " + what);
            }
            finish_one();
        }

        void finish_one() {
            if (remaining.fetch_sub(1) != 1) return;
            Reply reply;
            if (!error.empty())
                reply = Reply{503, {}, "output failed: " + error, 0, impl.retry_after_s()};
            else
                reply = impl.acknowledge(client, *live, msg, received);
            try {
                done(std::move(reply));
            } catch (const std::exception& e) {
                impl.log.error("reply to a batch failed", {{"error", e.what()}});
            }
        }
    };

    // Formats the batch once per format its outputs need and hands it to every output's queue.
    // Returns the reply when it is known at once (nothing to write, an output missing); otherwise
    // `done` is taken and called once the outputs are done (possibly before this returns). A
    // full queue refuses the batch (503): back-pressure, not unbounded memory.
    std::optional<Reply> events(const ClientInfo& client,
                                const std::shared_ptr<const LiveSubscription>& live,
                                const wsman::Message& msg, ReplyHandler& done) {
        const auto& d = live->def;
        live->events_received->inc(msg.events.size());
        if (!live->output_error.empty())
            return Reply{503, {}, live->output_error, 0, retry_after_s()};
        auto received = std::chrono::system_clock::now();
        if (live->outputs.empty()) return acknowledge(client, *live, msg, received);
        // Refused before any output sees it when one is known to be full (fewer duplicates; the
        // check in the loop below catches a queue that fills meanwhile).
        for (const auto& out : live->outputs)
            if (out.unit->queue.full()) {
                out.queue_full->inc();
                return Reply{503,
                             {},
                             "output failed: " + out.unit->note_full(log, d.name),
                             0,
                             retry_after_s()};
            }

        auto p = std::make_shared<PendingBatch>(*this, client, live, msg);
        p->received = received;
        std::size_t total = 0;
        for (const auto& e : msg.events)
            total += e.xml.size();
        event::Metadata meta;
        meta.ip_address = p->client.address;
        meta.client = p->client.identity;
        meta.mechanism = p->client.mechanism;
        meta.time_received = received;
        meta.subscription_uuid = text::to_upper(d.uuid);
        meta.subscription_version = live->version;
        meta.subscription_name = d.name;
        meta.subscription_uri = d.uri;
        if (!config.node_name.empty()) meta.node = config.node_name;
        p->formatted.reserve(total, msg.events.size());
        for (const auto& e : msg.events)
            p->formatted.add(e.xml, meta);

        auto& batch = p->batch;
        batch.ip = p->client.address;
        batch.client = p->client.identity;
        batch.machine = msg.machine_id;
        batch.node = node;
        batch.subscription_name = d.name;
        batch.subscription_uuid = d.uuid;
        batch.received = received;
        p->xml.reserve(msg.events.size());
        for (const auto& e : msg.events)
            p->xml.push_back(e.xml);
        batch.events = p->xml;

        p->done = std::move(done);
        const std::size_t n = live->outputs.size();
        p->remaining = n;
        bool refused = false;
        for (std::size_t i = 0; i < n; ++i) {
            auto& unit = *live->outputs[i].unit;
            // With one output, this thread writes the batch itself when a writer of the output
            // would be free for it anyway (no hand-off to a writer thread and back), as long as
            // few threads do so at once (a slow output or store must not take every worker from
            // the other subscriptions) and, on an I/O thread, only to a local output; with more
            // outputs, they write in parallel on their own threads.
            auto job = [p, i] { p->write(i); };
            const bool may_write_here =
                n == 1 && (!config.handlers_on_io_threads || unit.driver->local());
            bool taken = false;
            if (!refused) {
                if (may_write_here && inline_writes.fetch_add(1) < kMaxInlineWrites)
                    taken = unit.queue.run_or_post(job);
                else
                    taken = unit.queue.try_post(job);
                if (may_write_here) --inline_writes;
            }
            if (taken) {
                unit.note_queued(log, d.name);
                continue;
            }
            if (!refused) {
                live->outputs[i].queue_full->inc();
                p->refuse(unit.note_full(log, d.name));
                refused = true; // the outputs after it are not asked (fewer duplicates)
            }
            p->finish_one();
        }
        return std::nullopt;
    }

    // Every output has the batch: store the bookmark, note the host, ack.
    Reply acknowledge(const ClientInfo& client, const LiveSubscription& live,
                      const wsman::Message& msg, std::chrono::system_clock::time_point received) {
        const auto& d = live.def;
        if (!msg.bookmark.empty()) {
            try {
                const auto start = std::chrono::steady_clock::now();
                store.put_bookmark(client.identity, text::to_upper(d.uuid), msg.bookmark);
                bookmark_seconds->observe(
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
                        .count());
            } catch (const std::exception& e) {
                log.error(
                    "bookmark not stored; batch refused with 503",
                    {{"subscription", d.name}, {"client", client.identity}, {"error", e.what()}});
                return store_unavailable("store failed: " + std::string(e.what()));
            }
        }
        note_seen(client, live, msg, store::HeartbeatUpdate::Kind::Events, received);
        return Reply{200, wsman::build_ack(msg), {}, msg.events.size()};
    }

    void note_seen(const ClientInfo& client, const LiveSubscription& live,
                   const wsman::Message& msg, store::HeartbeatUpdate::Kind kind,
                   std::chrono::system_clock::time_point when) {
        const auto& d = live.def;
        bool events = kind == store::HeartbeatUpdate::Kind::Events;
        live.hosts->seen(client.identity, when, events ? std::optional(when) : std::nullopt);
        store::HeartbeatUpdate u;
        u.client = client.identity;
        u.subscription_uuid = text::to_upper(d.uuid);
        u.time = when;
        u.kind = kind;
        u.address = client.address;
        u.machine_id = msg.machine_id;
        u.mechanism = client.mechanism;
        heartbeats.record(std::move(u));
    }

    Reply subscription_end(const ClientInfo& client, const LiveSubscription& live,
                           const wsman::Message& msg) {
        store::SubscriptionEndRecord rec;
        rec.client = client.identity;
        rec.subscription_uuid = text::to_upper(live.def.uuid);
        rec.time = std::chrono::system_clock::now();
        if (msg.subscription_end) {
            rec.status = msg.subscription_end->status;
            if (msg.subscription_end->fault) {
                rec.fault_code = msg.subscription_end->fault->code;
                rec.fault_message = msg.subscription_end->fault->message;
            }
        }
        try {
            store.record_subscription_end(rec);
        } catch (const std::exception& e) {
            log.warn("SubscriptionEnd not recorded", {{"error", e.what()}});
        }
        log.warn("source ended its subscription", {{"client", client.identity},
                                                   {"subscription", live.def.name},
                                                   {"status", rec.status},
                                                   {"code", rec.fault_code},
                                                   {"message", rec.fault_message}});
        return Reply{204, {}, "SubscriptionEnd " + rec.status, 0};
    }
};

Collector::Collector(Logger& log, store::Store& store, store::HeartbeatBatcher& heartbeats,
                     CollectorConfig config)
    : impl_(std::make_unique<Impl>(log, store, heartbeats, std::move(config))) {
    impl_->reload(true); // a store error is logged and retried (see refresh())
}

Collector::~Collector() {
    // Batches still queued are written (or refused) and answered while the collector is whole.
    impl_->drain_outputs();
}

void Collector::refresh() {
    impl_->reload(false);
    impl_->note_heartbeats();
}

StoreHealth Collector::store_health() const {
    StoreHealth h;
    {
        std::lock_guard lock(impl_->health_mutex);
        h.ok = impl_->store_ok;
        h.error = impl_->store_error;
    }
    h.errors = impl_->store_errors.load();
    h.heartbeat_flush_failures = impl_->heartbeats.failed_flushes();
    h.heartbeat_error = impl_->heartbeats.last_error();
    for (const auto& [uuid, b] : impl_->current()->broken)
        h.broken.push_back(b);
    std::sort(h.broken.begin(), h.broken.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    return h;
}

void Collector::reopen_outputs() {
    auto snap = impl_->current();
    for (const auto& [uuid, live] : snap->by_uuid)
        for (const auto& out : live->outputs)
            out.unit->driver->reopen();
}

const std::string& Collector::node() const {
    return impl_->node;
}

std::vector<std::string> Collector::subscription_names() const {
    std::vector<std::string> names;
    for (const auto& [uuid, live] : impl_->current()->by_uuid)
        if (live->def.enabled) names.push_back(live->def.name);
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<SubscriptionGauges> Collector::gauges() const {
    std::vector<SubscriptionGauges> out;
    const auto now = std::chrono::system_clock::now();
    for (const auto& [uuid, live] : impl_->current()->by_uuid) {
        if (!live->def.enabled) continue;
        SubscriptionGauges g;
        g.name = live->def.name;
        auto counts = live->hosts->count(std::chrono::seconds(live->def.heartbeat_interval_s), now);
        g.active = counts.active;
        g.alive = counts.alive;
        g.dead = counts.dead;
        for (const auto& o : live->outputs)
            g.queues.push_back({o.label, o.unit->queue.stats().waiting, o.unit->queue.capacity()});
        out.push_back(std::move(g));
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

Reply Collector::handle(const ClientInfo& client, std::string_view path,
                        const wsman::Message& msg) {
    std::promise<Reply> reply;
    auto answered = reply.get_future();
    handle_async(client, path, msg, [&reply](Reply r) { reply.set_value(std::move(r)); });
    return answered.get();
}

void Collector::handle_async(const ClientInfo& client, std::string_view path,
                             const wsman::Message& msg, ReplyHandler done) {
    std::optional<Reply> reply;
    try {
        reply = dispatch(client, path, msg, done);
    } catch (const store::StoreError& e) {
        reply = impl_->store_unavailable("store failed: " + std::string(e.what()));
    }
    if (reply) done(std::move(*reply));
}

std::optional<Reply> Collector::dispatch(const ClientInfo& client, std::string_view path,
                                         const wsman::Message& msg, ReplyHandler& done) {
    impl_->reload(false);
    // Never read the store (down since the start): an empty list would tell sources that there
    // are no subscriptions, and a 404 that theirs is gone; they must retry instead.
    if (!impl_->current()->loaded)
        return impl_->store_unavailable("subscriptions not loaded yet: the store is unavailable");
    const std::string uuid = wsman::subscription_from_path(path);
    bool on_subscription = !uuid.empty();
    using wsman::Action;
    if (!on_subscription) {
        switch (msg.action) {
        case Action::Enumerate:
            return impl_->enumerate(client, path, msg);
        case Action::End:
            return Reply{204, {}, "End", 0};
        default:
            return Reply{400,
                         {},
                         "action " + std::string(wsman::to_string(msg.action)) +
                             " is not valid at the subscription manager URL",
                         0};
        }
    }
    auto snap = impl_->current();
    // On HTTP the request path is not protected, the sealed SOAP is: a source's a:To names the
    // subscription it sends to, and an on-path attacker must not redirect a batch to another one.
    // (An a:To naming a subscription this collector does not have, e.g. traffic captured at
    // another collector and replayed here, is not a redirection.)
    if (auto sealed = wsman::subscription_from_path(wsman::path_of_url(msg.to));
        !sealed.empty() && sealed != uuid && snap->by_uuid.count(sealed))
        return Reply{400,
                     {},
                     "a:To names subscription " + sealed + " but the request path " +
                         std::string(path.substr(0, 200)) + " does not",
                     0};
    Reply reply;
    auto live = impl_->authorize(*snap, client, uuid, reply);
    if (!live) return reply;
    switch (msg.action) {
    case Action::Events:
        return impl_->events(client, live, msg, done);
    case Action::Heartbeat:
        impl_->note_seen(client, *live, msg, store::HeartbeatUpdate::Kind::Heartbeat,
                         std::chrono::system_clock::now());
        return Reply{200, wsman::build_ack(msg), {}, 0};
    case Action::SubscriptionEnd:
        return impl_->subscription_end(client, *live, msg);
    case Action::End:
        return Reply{204, {}, "End", 0};
    default:
        return Reply{400,
                     {},
                     "action " + std::string(wsman::to_string(msg.action)) +
                         " is not valid at a subscription URL",
                     0};
    }
}

wsman::SubscriptionSpec subscription_spec(const subscription::Subscription& d,
                                          const std::string& version, const CollectorConfig& config,
                                          const ClientInfo& client,
                                          std::optional<std::string> bookmark) {
    wsman::SubscriptionSpec spec;
    spec.uuid = d.uuid;
    spec.version = version;
    spec.name = d.name;
    spec.content_format = d.content_format == subscription::ContentFormat::RenderedText
                              ? wsman::ContentFormat::RenderedText
                              : wsman::ContentFormat::Raw;
    spec.heartbeat_interval_ms = std::uint64_t{d.heartbeat_interval_s} * 1000;
    spec.connection_retry_count = d.connection_retry_count;
    spec.connection_retry_interval_ms = std::uint64_t{d.connection_retry_interval_s} * 1000;
    spec.max_latency_ms = std::uint64_t{d.max_latency_s} * 1000;
    spec.max_envelope_size = d.max_envelope_size;
    spec.max_elements = d.max_elements;
    spec.read_existing_events = d.read_existing_events;
    spec.ignore_channel_error = d.ignore_channel_error;
    spec.locale = d.locale;
    spec.data_locale = d.data_locale;
    bool https = client.transport == Transport::Https;
    spec.notify_to = std::string(https ? "https://" : "http://") + config.hostname + ":" +
                     std::to_string(https ? config.https_port : config.http_port) +
                     std::string(wsman::kSubscriptionsPath) + text::to_upper(d.uuid);
    if (https)
        spec.auth = wsman::TlsPolicy{{client.issuer_thumbprint}};
    else
        spec.auth = wsman::KerberosPolicy{};
    spec.query = d.query;
    spec.bookmark = std::move(bookmark);
    spec.send_bookmarks = true;
    return spec;
}

} // namespace wec::pipeline

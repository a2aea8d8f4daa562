#include "client/replay.hpp"

#include "client/latency.hpp"

#include <algorithm>
#include <thread>

namespace wec::client {

namespace {

// Enumerate + End: the subscription to replay to (ReplayOptions::prefer, else `subscription`).
// Throws when it is not offered.
wsman::Subscription choose(Source& source, const ReplayOptions& options,
                           const std::string& machine) {
    const std::string& name = options.subscription;
    auto subs = source.enumerate();
    auto it = options.prefer ? std::find_if(subs.begin(), subs.end(), options.prefer) : subs.end();
    if (it == subs.end())
        it = std::find_if(subs.begin(), subs.end(), [&](const wsman::Subscription& s) {
            return name.empty() || s.name == name;
        });
    if (it == subs.end())
        throw Error(ErrorKind::Protocol,
                    name.empty() ? "no subscription is offered to " + machine
                                 : "subscription '" + name + "' is not offered to " + machine +
                                       " (" + std::to_string(subs.size()) + " offered)");
    source.end();
    return *it;
}

// Sends one recorded message as Windows would: resent after the retry interval (Retry-After
// when shorter) until acknowledged, up to ConnectionRetry Total, then once more after a new
// Enumerate; the last failure is rethrown.
Ack send_with_retries(Source& source, wsman::Subscription& subscription, const RecordedBatch& batch,
                      const ReplayOptions& options, ReplayResult& r, ReplayProgress& p) {
    const bool retry = !options.retry_interval || options.retry_interval->count() > 0;
    for (unsigned round = 0;; ++round) {
        const unsigned total = subscription.connection_retry_total.value_or(5);
        for (unsigned attempt = 0;; ++attempt) {
            try {
                return source.send_events(subscription, std::span<const std::string>(batch.events),
                                          batch.bookmark);
            } catch (const std::exception& e) {
                source.reset();
                if (!retry || (attempt >= total && round > 0)) throw;
                if (attempt >= total) break; // the round is spent: Enumerate again
                std::chrono::milliseconds wait(
                    wsman::parse_duration_ms(subscription.connection_retry).value_or(60000));
                if (options.retry_interval) wait = std::min(wait, *options.retry_interval);
                if (const auto* ce = dynamic_cast<const Error*>(&e);
                    ce && ce->retry_after().count() > 0)
                    wait = std::min<std::chrono::milliseconds>(wait, ce->retry_after());
                std::this_thread::sleep_for(wait);
                r.retries += 1;
                p.retries += 1;
            }
        }
        subscription = choose(source, options, source.options().machine_id);
    }
}

} // namespace

ReplayResult replay_batches(const ReplayOptions& options,
                            const std::function<bool(RecordedBatch&)>& next,
                            ReplayProgress* progress) {
    ReplayProgress local;
    ReplayProgress& p = progress ? *progress : local;
    ReplayResult r;
    RecordedBatch batch;
    if (!next(batch)) return r;
    r.batches_read = 1;

    SourceOptions so = options.source;
    if (!batch.machine.empty()) so.machine_id = batch.machine;
    if (so.manager.tls && !so.tls_context) {
        try {
            so.tls_context = make_tls_context(so.tls);
        } catch (const std::exception& e) {
            r.setup_error = e.what();
            return r;
        }
    }
    r.machine = so.machine_id;
    Source source(so);
    wsman::Subscription subscription;
    try {
        subscription = choose(source, options, so.machine_id);
        r.subscription = subscription.name;
        source.push_connection(subscription); // connect + authenticate before timing
    } catch (const std::exception& e) {
        r.setup_error = e.what();
        return r;
    }

    std::vector<std::uint32_t> latencies;
    auto first = std::chrono::steady_clock::now();
    auto last = first;
    for (;;) {
        r.events_sent += batch.events.size();
        try {
            auto ack = send_with_retries(source, subscription, batch, options, r, p);
            latencies.push_back(static_cast<std::uint32_t>(ack.latency.count()));
        } catch (const std::exception& e) {
            r.messages_failed = 1;
            r.failed_line = batch.line;
            r.error = "Events message of " + std::to_string(batch.events.size()) +
                      " events not acknowledged: " + e.what();
            last = std::chrono::steady_clock::now();
            break;
        }
        last = std::chrono::steady_clock::now();
        r.messages_acked += 1;
        r.events_acked += batch.events.size();
        p.messages_acked += 1;
        p.events_acked += batch.events.size();
        if (!next(batch)) break;
        ++r.batches_read;
    }

    r.seconds = std::chrono::duration<double>(last - first).count();
    if (r.seconds > 0) r.events_per_second = static_cast<double>(r.events_acked) / r.seconds;
    const auto lat = detail::summarize_latencies(latencies);
    r.p50_ms = lat.p50_ms;
    r.p99_ms = lat.p99_ms;
    r.max_ms = lat.max_ms;
    return r;
}

} // namespace wec::client

#include "client/replay.hpp"

#include "client/latency.hpp"

#include <algorithm>

namespace wec::client {

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
        auto subs = source.enumerate();
        auto it = std::find_if(subs.begin(), subs.end(), [&](const wsman::Subscription& s) {
            return options.subscription.empty() || s.name == options.subscription;
        });
        if (it == subs.end())
            throw Error(ErrorKind::Protocol,
                        options.subscription.empty()
                            ? "no subscription is offered to " + so.machine_id
                            : "subscription '" + options.subscription + "' is not offered to " +
                                  so.machine_id + " (" + std::to_string(subs.size()) + " offered)");
        subscription = *it;
        r.subscription = subscription.name;
        source.end();
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
            auto ack = source.send_events(subscription, std::span<const std::string>(batch.events),
                                          batch.bookmark);
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

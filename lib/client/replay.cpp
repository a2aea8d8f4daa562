#include "client/replay.hpp"

#include "client/latency_internal.hpp"
#include "evtx/evtx.hpp"
#include "wsman/bookmark.hpp"

#include <algorithm>
#include <limits>
#include <thread>

namespace wec::client {

namespace {

std::uint64_t to_uint(const std::string& s) {
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return 0;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
}

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
        throw ClientError(ErrorKind::Protocol, name.empty()
                                                   ? "no subscription is offered to " + machine
                                                   : "subscription '" + name +
                                                         "' is not offered to " + machine + " (" +
                                                         std::to_string(subs.size()) + " offered)");
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
                if (const auto* ce = dynamic_cast<const ClientError*>(&e);
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

// Retryable failures of a first Enumerate: network, timeout, 5xx.
bool retryable(const std::exception& e) {
    const auto* ce = dynamic_cast<const ClientError*>(&e);
    if (!ce) return false;
    return ce->kind() == ErrorKind::Transport || ce->kind() == ErrorKind::Timeout ||
           (ce->kind() == ErrorKind::Http && ce->http_status() >= 500);
}

} // namespace

BatchLimits batch_limits(const wsman::Subscription& subscription) {
    BatchLimits l;
    if (subscription.max_elements && *subscription.max_elements > 0)
        l.max_elements = *subscription.max_elements;
    if (subscription.max_envelope_size && *subscription.max_envelope_size > 0)
        l.max_envelope = *subscription.max_envelope_size;
    if (auto ms = wsman::parse_duration_ms(subscription.max_time))
        l.max_time_ns = static_cast<std::int64_t>(*ms) * 1000000;
    return l;
}

std::size_t EnvelopeSize::event(const std::string& xml) const {
    // "]]>" inside an event splits its CDATA section: "]]]]><![CDATA[>" (12 more characters).
    std::size_t splits = 0;
    for (auto at = xml.find("]]>"); at != std::string::npos; at = xml.find("]]>", at + 3))
        ++splits;
    // UTF-8 -> UTF-16: at most 2 bytes per UTF-8 byte.
    return 2 * (xml.size() + 12 * splits) + per_event;
}

EnvelopeSize envelope_size(const wsman::SourceHeaders& headers, std::string_view bookmark) {
    EnvelopeSize s;
    const std::string_view none[1] = {std::string_view()};
    const auto empty = wsman::build_events(headers, {}, bookmark).size();
    const auto one =
        wsman::build_events(headers, std::span<const std::string_view>(none), bookmark).size();
    s.header = 2 * empty + 2; // BOM
    s.per_event = 2 * (one - empty);
    return s;
}

std::vector<BatchPart>
split_batch(const RecordedBatch& batch, const BatchLimits& limits,
            const wsman::SourceHeaders& headers, wsman::Bookmark& last,
            const std::function<std::optional<std::int64_t>(const std::string&)>& event_time,
            std::vector<std::pair<std::size_t, std::size_t>>& dropped) {
    // The header is sized with the longest bookmark a part may carry: the recorded one or one
    // listing every channel known, with 20-digit record ids.
    wsman::Bookmark all = last;
    for (const auto& e : batch.events)
        all.records[evtx::first_value(e, "Channel")] = 0;
    all.records.erase("");
    for (auto& [channel, id] : all.records)
        id = std::numeric_limits<std::uint64_t>::max();
    const std::string widest = wsman::bookmark_list(all);
    const auto size =
        envelope_size(headers, widest.size() > batch.bookmark.size() ? widest : batch.bookmark);
    // A safe margin under MaxEnvelopeSize (MessageID and header values may vary in length).
    const std::size_t margin = std::max<std::size_t>(1024, limits.max_envelope / 64);
    const std::size_t limit = limits.max_envelope > margin ? limits.max_envelope - margin : 0;

    std::vector<BatchPart> parts;
    BatchPart part;
    std::size_t bytes = size.header;
    std::optional<std::int64_t> first_time;
    auto close = [&] {
        if (!part.events.empty()) {
            part.bookmark = wsman::bookmark_list(last);
            parts.push_back(std::move(part));
        }
        part = BatchPart{};
        bytes = size.header;
        first_time.reset();
    };
    for (std::size_t i = 0; i < batch.events.size(); ++i) {
        const auto& e = batch.events[i];
        const auto eb = size.event(e);
        std::optional<std::int64_t> t;
        if (event_time && limits.max_time_ns) t = event_time(e);
        if (size.header + eb > limit) {
            dropped.emplace_back(i, size.header + eb);
        } else {
            const bool full =
                (limits.max_elements > 0 && part.events.size() >= limits.max_elements) ||
                bytes + eb > limit || (t && first_time && *t - *first_time > *limits.max_time_ns);
            if (full) close();
            part.events.push_back(i);
            bytes += eb;
            if (t && !first_time) first_time = t;
        }
        // The bookmark moves past every event read, sent or dropped.
        auto channel = evtx::first_value(e, "Channel");
        if (!channel.empty()) {
            last.records[channel] = to_uint(evtx::first_value(e, "EventRecordID"));
            last.current = std::move(channel);
        }
    }
    if (!part.events.empty()) {
        part.bookmark = batch.bookmark.empty() ? wsman::bookmark_list(last) : batch.bookmark;
        parts.push_back(std::move(part));
    } else if (!parts.empty() && !batch.bookmark.empty()) {
        parts.back().bookmark = batch.bookmark; // the events after it were dropped
    }
    if (!batch.bookmark.empty()) last = wsman::parse_bookmark_list(batch.bookmark);
    return parts;
}

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
    // The first Enumerate (and connection) is retried as a message is, before any subscription
    // says how: Windows' defaults, ConnectionRetry PT60S (at most --retry-interval), Total 5.
    const bool retry = !options.retry_interval || options.retry_interval->count() > 0;
    for (unsigned attempt = 0;; ++attempt) {
        try {
            subscription = choose(source, options, so.machine_id);
            r.subscription = subscription.name;
            source.push_connection(subscription); // connect + authenticate before timing
            break;
        } catch (const std::exception& e) {
            source.reset();
            const unsigned total = subscription.connection_retry_total.value_or(5);
            if (!retry || attempt >= total || !retryable(e)) {
                r.setup_error = e.what();
                if (attempt > 0)
                    r.setup_error += " (after " + std::to_string(attempt) + " retries)";
                return r;
            }
            std::chrono::milliseconds wait(
                wsman::parse_duration_ms(subscription.connection_retry).value_or(60000));
            if (options.retry_interval) wait = std::min(wait, *options.retry_interval);
            if (const auto* ce = dynamic_cast<const ClientError*>(&e);
                ce && ce->retry_after().count() > 0)
                wait = std::min<std::chrono::milliseconds>(wait, ce->retry_after());
            std::this_thread::sleep_for(wait);
            r.retries += 1;
            p.retries += 1;
        }
    }

    std::vector<std::uint32_t> latencies;
    auto first = std::chrono::steady_clock::now();
    auto last = first;
    wsman::Bookmark state; // where the source is, as its bookmark says
    std::vector<std::pair<std::size_t, std::size_t>> dropped;
    RecordedBatch message;
    for (bool failed = false; !failed;) {
        dropped.clear();
        auto parts =
            split_batch(batch, batch_limits(subscription), source.headers_for(subscription), state,
                        options.event_time, dropped);
        const bool whole = parts.size() == 1 && dropped.empty();
        if (!whole) r.messages_split += 1;
        r.events_dropped += dropped.size();
        if (options.on_drop)
            for (const auto& [index, bytes] : dropped)
                options.on_drop(batch.events[index], bytes,
                                batch_limits(subscription).max_envelope);
        for (auto& part : parts) {
            message.line = batch.line;
            message.machine = batch.machine;
            message.bookmark = std::move(part.bookmark);
            message.events.clear();
            for (auto i : part.events)
                message.events.push_back(whole ? std::move(batch.events[i]) : batch.events[i]);
            if (options.before_send) options.before_send(message);
            r.events_sent += message.events.size();
            try {
                auto ack = send_with_retries(source, subscription, message, options, r, p);
                latencies.push_back(static_cast<std::uint32_t>(ack.latency.count()));
            } catch (const std::exception& e) {
                r.messages_failed = 1;
                r.failed_line = batch.line;
                r.error = "Events message of " + std::to_string(message.events.size()) +
                          " events not acknowledged: " + e.what();
                failed = true;
                break;
            }
            r.messages_acked += 1;
            r.events_acked += message.events.size();
            p.messages_acked += 1;
            p.events_acked += message.events.size();
        }
        last = std::chrono::steady_clock::now();
        if (failed || !next(batch)) break;
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

// Replaying recorded Events messages (e.g. those of a capture read back by
// decode::EventsBatchReader) as one source through client::Source: Enumerate at the manager URL,
// pick a subscription, then one Events message per recorded batch, in order, with the recorded
// events and bookmark. A batch that does not fit the subscription's MaxElements or
// MaxEnvelopeSize (or, with ReplayOptions::event_time, its MaxTime) is split as a Windows source
// would have cut it: the earlier parts carry a bookmark computed from their last event, the last
// part the recorded one; an event too large for any envelope is dropped, as Windows does. Nothing
// is merged. Used by `wec replay --from/--pcap/--evtx/--xml`.
#pragma once

#include "client/client.hpp"
#include "wsman/bookmark.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wec::client {

// One recorded Events message (events sent as they are, the bookmark as w:Bookmark, the
// recorded m:MachineID, `line` for messages).
using RecordedBatch = wsman::EventsBatch;

struct ReplayOptions {
    // Manager URL, identity (Kerberos ccache + service, or TLS client certificate), compression.
    // machine_id is replaced by the first batch's recorded machine when it has one.
    SourceOptions source;
    std::string subscription; // name to push to; empty = the first one offered
    // When set: the first offered subscription it accepts is taken before `subscription` (`wec
    // replay --pcap`: the one the source used in the capture).
    std::function<bool(const wsman::Subscription&)> prefer;
    // A message that fails (HTTP error, timeout, lost connection) is resent as is after the
    // subscription's ConnectionRetry interval (at most this when set; 0: no retry), up to its
    // Total; then the source enumerates again for one more round before it stops.
    std::optional<std::chrono::milliseconds> retry_interval;
    // TimeCreated (ns since 1970) of an event's XML, nullopt when it has none. When set, a message
    // holds only events within the subscription's MaxTime of its first one (--speed).
    std::function<std::optional<std::int64_t>(const std::string& xml)> event_time;
    // Called before each message is first sent, with the message as it will go (pacing).
    std::function<void(const RecordedBatch&)> before_send;
    // Called for each event dropped because its envelope alone (`envelope_bytes`, UTF-16) would
    // exceed the subscription's MaxEnvelopeSize (`limit`).
    std::function<void(const std::string& xml, std::size_t envelope_bytes, std::size_t limit)>
        on_drop;
};

// How Events messages are cut for a subscription (MaxElements, MaxEnvelopeSize, MaxTime).
struct BatchLimits {
    std::size_t max_elements = 0;      // 0: no limit
    std::size_t max_envelope = 512000; // UTF-16 bytes of the SOAP envelope, BOM included
    std::optional<std::int64_t> max_time_ns;
};
BatchLimits batch_limits(const wsman::Subscription& subscription);

// The UTF-16 size (upper bound, BOM included) of the Events envelope of `events` with `bookmark`
// as `headers` make it: header + per event.
struct EnvelopeSize {
    std::size_t header = 0;    // envelope without events
    std::size_t per_event = 0; // the w:Event wrapper around one event
    std::size_t event(const std::string& xml) const;
};
EnvelopeSize envelope_size(const wsman::SourceHeaders& headers, std::string_view bookmark);

// One part of a split batch: the events sent (indexes into the batch) and the bookmark.
struct BatchPart {
    std::vector<std::size_t> events;
    std::string bookmark;
};

// Cuts `batch` into parts that fit `limits` (see the top of this file). `last` is the source's
// position before the batch (updated to after it: the recorded bookmark, else the events');
// `dropped` gets the indexes of events too large for any envelope, with their
// envelope size. `safety` UTF-16 bytes are kept free under MaxEnvelopeSize.
std::vector<BatchPart>
split_batch(const RecordedBatch& batch, const BatchLimits& limits,
            const wsman::SourceHeaders& headers, wsman::Bookmark& last,
            const std::function<std::optional<std::int64_t>(const std::string&)>& event_time,
            std::vector<std::pair<std::size_t, std::size_t>>& dropped);

struct ReplayProgress {
    std::atomic<std::uint64_t> messages_acked{0};
    std::atomic<std::uint64_t> events_acked{0};
    std::atomic<std::uint64_t> retries{0};
};

struct ReplayResult {
    std::uint64_t batches_read = 0;    // batches `next` handed out
    std::uint64_t messages_acked = 0;  // Events messages acknowledged
    std::uint64_t messages_failed = 0; // refused after its retries (the replay stops there: 0 or 1)
    std::uint64_t events_sent = 0;     // events in the messages posted (acked or not)
    std::uint64_t events_acked = 0;
    std::uint64_t retries = 0; // messages resent after a failure (and first Enumerates retried)
    std::uint64_t messages_split = 0; // recorded batches cut to fit the subscription's limits
    std::uint64_t events_dropped = 0; // events larger than MaxEnvelopeSize allows (not sent)
    double seconds = 0;               // from the first Events to the last Ack
    double events_per_second = 0;
    double p50_ms = 0, p99_ms = 0, max_ms = 0; // Ack latency of Events messages
    std::string subscription;                  // name of the subscription replayed to
    std::string machine;                       // m:MachineID sent
    std::string setup_error;       // Enumerate/End/connection failed or no such subscription
    std::string error;             // why a message was not acknowledged (the replay stopped there)
    std::uint64_t failed_line = 0; // RecordedBatch::line of that message
    bool ok() const { return setup_error.empty() && error.empty(); }
};

// Pulls batches from `next` (true: `batch` filled; false: end) and sends them in order. The
// connection is made only once a first batch exists; a first Enumerate (or connection) that fails
// with a network error, a timeout or a 5xx is retried as a message is, with Windows' default
// ConnectionRetry (PT60S, at most `retry_interval`; Total 5). A failed message is resent
// (ReplayOptions::retry_interval); stops at the first message that still fails after its retries
// (setup_error or error set, nothing thrown for collector or network failures); an exception thrown
// by `next` propagates (`progress` then has the counts so far).
ReplayResult replay_batches(const ReplayOptions& options,
                            const std::function<bool(RecordedBatch&)>& next,
                            ReplayProgress* progress = nullptr);

} // namespace wec::client

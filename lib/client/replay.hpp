// Replaying recorded Events messages (e.g. those of a capture read back by
// decode::EventsBatchReader) as one source through client::Source: Enumerate at the manager URL,
// pick a subscription, then one Events message per recorded batch, in order, with the recorded
// events and bookmark (the batch boundaries are kept; nothing is split or merged). Used by `wec
// replay --from`.
#pragma once

#include "client/client.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
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
};

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
    std::uint64_t retries = 0; // messages resent after a failure
    double seconds = 0;        // from the first Events to the last Ack
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
// connection is made only once a first batch exists. A failed message is resent
// (ReplayOptions::retry_interval); stops at the first message that still fails after its retries
// (setup_error or error set, nothing thrown for collector or network failures); an exception thrown
// by `next` propagates (`progress` then has the counts so far).
ReplayResult replay_batches(const ReplayOptions& options,
                            const std::function<bool(RecordedBatch&)>& next,
                            ReplayProgress* progress = nullptr);

} // namespace wec::client

// Load generation on top of client::Source: N simulated hosts, each enumerating and then pushing
// generated events in batches on its own keep-alive connection; hosts are driven by a pool of
// threads (one blocking connection per host at a time). Used by `wec replay` and by bench/serve.
//
// Each host behaves like a Windows source (docs/replay.md, "Behaving like a Windows source"):
// batches bounded by the subscription's MaxElements and MaxEnvelopeSize; a batch that fails
// (HTTP error such as 503, timeout, lost connection) is resent as is after the subscription's
// ConnectionRetry interval (or Retry-After when shorter), up to its Total, then the host
// enumerates again and starts another round of retries; Heartbeats to a subscription idle past
// its heartbeat interval; re-Enumerate every `refresh` seconds, following the subscriptions'
// changes (a subscription no longer offered gets a SubscriptionEnd).
#pragma once

#include "client/client.hpp"
#include "sldc/sldc.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace wec::client {

struct LoadOptions {
    SourceOptions source;             // manager URL (http:// or https://), service, mechanism,
                                      // MIME form, TLS client certificate, compression
    std::vector<std::string> ccaches; // host i uses ccaches[i % size()]; empty = source.ccache
    std::string subscription;         // name to push to; empty = the first one offered
    std::uint64_t events = 10000;     // in total, spread over the hosts
    std::size_t batch = 100;          // events per Events message (split further to fit the
                                      // subscription's MaxEnvelopeSize, as Windows does)
    std::size_t hosts = 1;            // simulated hosts (machine ids host-N.windomain.local)
    std::size_t threads = 1;          // concurrent connections (at most `hosts`)
    std::size_t pregenerated = 4096;  // distinct event bodies generated per thread, then re-used
                                      // with each host's own <Computer> and EventRecordID (keeps
                                      // generation cost low; (Computer, Channel, EventRecordID)
                                      // stays unique, so that `wec replay --check` can match them)
    // > 0: each host SLDC-compresses this many distinct Events messages before the clock starts
    // and then cycles through them (sealing each anew), so that the measure is the collector's
    // work, not the client's compression (the Ack latency then excludes compression too). The
    // cycled messages repeat their record ids: not for `--check`.
    std::size_t precompressed = 0;
    // How Events messages are SLDC-compressed. Fast (greedy) costs the generator least; Best (the
    // optimal parse) gives records shaped like Windows' own (a literal between most copies, about
    // 15 % smaller) but compresses several times slower: live, it is the generator's bottleneck.
    sldc::Level level = sldc::Level::Fast;
    // With SLDC: every host renders and compresses all of its Events messages (its own Computer,
    // record ids in order, as they would be sent live) after set-up and before the clock starts;
    // the send loop then only seals and posts them (`wec replay --precompress`). Unlike
    // `precompressed`, nothing repeats: `--check` holds. A host that enumerates again (Refresh,
    // after a round of retries) drops what is left and builds its batches live. Memory: the
    // compressed messages not yet acknowledged (about 1.5 KB per generated event).
    bool prepare_all = false;
    // > 0: at most this many events per second in total (each connection paces its share:
    // rate / threads), else as fast as the collector acknowledges.
    double rate = 0;
    // The wait before a failed message is resent: unset = the subscription's ConnectionRetry
    // interval; set: this value, at most the subscription's (tests); 0 = no retry (a host whose
    // message fails stops at once).
    std::optional<std::chrono::milliseconds> retry_interval;
    std::chrono::milliseconds idle{0};    // each host stays this long after its events (Heartbeats)
    std::chrono::milliseconds refresh{0}; // > 0: re-Enumerate this often (Windows' Refresh)
};

struct LoadProgress {
    std::atomic<std::uint64_t> events_sent{0}; // posted, acked or not
    std::atomic<std::uint64_t> events_acked{0};
    std::atomic<std::uint64_t> hosts_connected{0}; // hosts holding their push connection
    std::atomic<std::uint64_t> batches_ok{0};
    std::atomic<std::uint64_t> batches_failed{0};
    std::atomic<std::uint64_t> retries{0};    // messages resent after a failure
    std::atomic<std::uint64_t> errors{0};     // failed requests (each retry's failure counts)
    std::atomic<std::uint64_t> heartbeats{0}; // Heartbeats acknowledged
    std::atomic<std::uint64_t> enumerations{0};
    std::atomic<std::uint64_t> subscription_ends{0}; // SubscriptionEnd sent and answered
};

// Host `id`'s MachineID and <Computer>, and its first EventRecordID (then one more per event, in
// order).
std::string load_machine_id(std::size_t id);
inline constexpr std::uint64_t kLoadFirstRecord = 1001;

struct HostTally {
    std::string machine;     // load_machine_id
    std::uint64_t sent = 0;  // events posted, acked or not: records kLoadFirstRecord.. in order
    std::uint64_t acked = 0; // the first `acked` of them were acknowledged
};

struct LoadResult {
    std::uint64_t events_acked = 0;
    std::uint64_t batches_ok = 0;
    std::uint64_t batches_failed = 0;
    std::uint64_t retries = 0;           // messages (Events, Heartbeat) resent after a failure
    std::uint64_t request_errors = 0;    // failed requests, retried or not
    std::uint64_t heartbeats = 0;        // Heartbeats acknowledged
    std::uint64_t enumerations = 0;      // Enumerate answered (set-up, refresh, after retries)
    std::uint64_t subscription_ends = 0; // SubscriptionEnd answered
    std::uint64_t bytes_sent_soap = 0;   // UTF-16 SOAP bytes before compression
    double seconds = 0;                  // from the first Events to the last Ack
    double events_per_second = 0;
    double p50_ms = 0, p99_ms = 0, max_ms = 0; // Ack latency of Events messages
    std::vector<std::string> errors;           // the first few distinct errors
    std::string setup_error;                   // a host could not enumerate/subscribe
    std::vector<HostTally> hosts;              // per host that could subscribe, by id
    // CPU time of the sending threads (summed over them) per phase: set-up (Enumerate, push
    // connection), preparing messages ahead (`prepare_all`, `precompressed`), the send loop.
    double setup_cpu_seconds = 0, prepare_cpu_seconds = 0, send_cpu_seconds = 0;
};

// Runs the load; `progress` (optional) is updated live for a progress display.
LoadResult run_load(const LoadOptions& options, LoadProgress* progress = nullptr);

// How many of `sizes` (UTF-8 byte sizes of events) fit one Events envelope of `max_envelope`
// UTF-16 bytes, at least 1.
std::size_t events_fitting(std::span<const std::size_t> sizes, std::size_t max_envelope);

} // namespace wec::client

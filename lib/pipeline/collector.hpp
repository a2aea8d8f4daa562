// What happens to one WS-Management message once the transport has authenticated, decrypted,
// decompressed and parsed it: the WEF logic of a collector, independent of sockets and of
// Kerberos/TLS (the same code serves both listeners, and tests drive it directly).
//
//   Enumerate        -> EnumerateResponse with the subscriptions this client may see
//   Events           -> format, hand to every output's queue (written concurrently by each
//                       output's writer threads), then store the bookmark and Ack
//   Heartbeat        -> last-seen update (batched), Ack
//   End              -> 204
//   SubscriptionEnd  -> recorded for the operator, 204
//
// A store error while handling a request answers 503 (Retry-After set): the source keeps its
// events and retries. A subscription whose stored definition cannot be read is skipped (logged
// once) and the others are served.
#pragma once

#include "common/log.hpp"
#include "store/store.hpp"
#include "subscription/subscription.hpp"
#include "wsman/subscription.hpp"
#include "wsman/wsman.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wec::metrics {
class Registry;
}

namespace wec::pipeline {

enum class Transport { Http, Https };

struct ClientInfo {
    std::string identity; // Kerberos initiator principal or TLS certificate subject CN
    std::string address;  // IP address
    Transport transport = Transport::Http;
    std::string issuer_thumbprint; // HTTPS: SHA-1 (hex) of the CA that issued the client's cert
    std::string mechanism; // "Kerberos", "NTLM", "TLS" or "Basic" (JSON metadata "Mechanism")
};

struct Reply {
    unsigned status = 200;
    std::string soap; // UTF-8 SOAP envelope; empty = no body
    std::string note; // why (for the request log line), e.g. "unknown subscription"
    std::size_t events = 0;
    std::uint32_t retry_after_s = 0; // 503: seconds for the Retry-After header
};

struct CollectorConfig {
    std::string hostname;           // public host name put in NotifyTo addresses
    std::uint16_t http_port = 5985; // public ports (a load balancer's, behind NAT)
    std::uint16_t https_port = 5986;
    // OpenWEC.Node in JSON output (empty: omitted) and {node} in output templates (empty: the
    // host name, gethostname).
    std::string node_name;
    std::chrono::milliseconds reload_interval{1000}; // how often the store revision is polled
    // After a store error while reloading, the next attempt waits retry_initial, doubling after
    // each further failure up to retry_max (also the Retry-After of 503 answers).
    std::chrono::milliseconds retry_initial{1000};
    std::chrono::milliseconds retry_max{5000};
    // Where the per-subscription and per-output counters go (`wec_events_received_total`, ...;
    // docs/metrics.md). Null: the collector keeps them in a registry of its own, unread. It must
    // outlive the collector.
    metrics::Registry* metrics = nullptr;
    // Requests arrive on the server's I/O threads (server::HandlerThreads::io): a batch is then
    // written by the thread that decoded it only to a local output (files); others are handed
    // to their writer threads, so that a broker's or a receiver's latency holds no I/O thread.
    bool handlers_on_io_threads = false;
};

// What the collector knows about its store, for logs, the startup summary and tests.
struct StoreHealth {
    bool ok = true;           // the last reload read the store
    std::string error;        // its error when it did not
    std::uint64_t errors = 0; // store errors so far: failed reloads and requests refused (503)
    std::uint64_t heartbeat_flush_failures = 0;
    std::string heartbeat_error; // of the last heartbeat flush, when it failed
    // Stored subscriptions whose definition cannot be read: not served (Events to them get 503).
    std::vector<store::BrokenSubscription> broken;
};

// What /metrics reads at scrape time besides the counters, per subscription served.
struct SubscriptionGauges {
    std::string name;
    // Hosts by state (as `wec status` classifies them) from what this process saw (and the store
    // held when the subscription was first loaded); no store query.
    std::uint64_t active = 0, alive = 0, dead = 0;
    struct Queue {
        std::string output; // the output's label (its description)
        std::size_t waiting = 0;
        std::size_t capacity = 0;
    };
    std::vector<Queue> queues;
};

class Collector {
public:
    Collector(Logger& log, store::Store& store, store::HeartbeatBatcher& heartbeats,
              CollectorConfig config);
    ~Collector();
    Collector(const Collector&) = delete;
    Collector& operator=(const Collector&) = delete;

    using ReplyHandler = std::function<void(Reply)>;

    // Thread-safe. `path` is the HTTP request target (the URI path decides the routing). The
    // reply comes through `done`, called exactly once: at once for most requests; for Events,
    // once every output of the subscription has written the batch (or one refused it), on one of
    // the outputs' writer threads, possibly before handle_async returns. `message` must stay
    // valid until then; `client` and `path` are copied or used before handle_async returns.
    // Each output has a bounded queue of batches: when one is full the batch is refused (503).
    void handle_async(const ClientInfo& client, std::string_view path,
                      const wsman::Message& message, ReplyHandler done);
    // handle_async() waiting for the reply (tests, tools).
    Reply handle(const ClientInfo& client, std::string_view path, const wsman::Message& message);

    // Periodic work: reloads subscriptions if the store changed (handle() also does it,
    // rate-limited) and notes heartbeat flush failures. Never throws a store error: it is logged
    // once when the store starts failing and once when it works again, counted, and retried
    // with exponential backoff while the subscriptions already loaded keep being served.
    void refresh();
    StoreHealth store_health() const;
    // Re-opens output files and reconnects output sockets (SIGHUP after logrotate).
    void reopen_outputs();
    // Enabled subscriptions currently served.
    std::vector<std::string> subscription_names() const;
    // {node} of output templates: node_name, else this machine's host name.
    const std::string& node() const;
    // Hosts and queue depths of the enabled subscriptions (a lock per subscription and per output,
    // no store access): for /metrics.
    std::vector<SubscriptionGauges> gauges() const;

    struct Impl;

private:
    std::optional<Reply> dispatch(const ClientInfo& client, std::string_view path,
                                  const wsman::Message& message, ReplyHandler& done);
    std::unique_ptr<Impl> impl_;
};

// What the collector lists to `client` for subscription `definition` in an EnumerateResponse
// (wsman::build_subscribe_envelope of it is the Subscribe envelope): NotifyTo on config's host
// name and the port of the client's transport, the authentication policy of that transport (TLS:
// the client's issuer thumbprint), the client's stored bookmark. `version` is
// subscription::public_version(definition). `wec serve` and `wec sub render` both use it.
wsman::SubscriptionSpec subscription_spec(const subscription::Subscription& definition,
                                          const std::string& version, const CollectorConfig& config,
                                          const ClientInfo& client,
                                          std::optional<std::string> bookmark);

} // namespace wec::pipeline

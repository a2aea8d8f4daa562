// A whole collector, wired from a ServeConfig: store, heartbeat batcher, collector pipeline,
// listeners. `wec serve` is this plus signal handling; tests can run it in-process too.
#pragma once

#include "common/log.hpp"
#include "config/config.hpp"
#include "pipeline/collector.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace wec::server {

class CollectorService {
public:
    // Opens the store and binds every listener (errors name what failed). Nothing is served
    // before start().
    CollectorService(Logger& log, config::ServeConfig config);
    ~CollectorService();
    CollectorService(const CollectorService&) = delete;
    CollectorService& operator=(const CollectorService&) = delete;

    void start();
    // Graceful: in-flight batches finish and are acked, heartbeats are flushed.
    void stop();

    // Periodic work from the owner's loop: picks up subscription changes in the store. Never
    // throws: a store error (or any other failure) is logged once when it starts and once when
    // it ends, counted, and retried (with backoff for the store) while serving goes on.
    void tick();
    pipeline::StoreHealth store_health() const;
    // Failures of tick() other than store errors (those are in store_health()).
    std::uint64_t tick_errors() const;
    // SIGHUP: re-open output files.
    void reopen_outputs();
    // SIGHUP: re-reads each TLS listener's certificate, key, CA bundles and CRLs for the
    // connections accepted from now on. A listener whose files do not load keeps its previous
    // context (logged). False when one failed.
    bool reload_tls();

    // Lines describing listeners, SPNs, store, subscriptions, and what is still missing.
    std::vector<std::string> summary() const;
    // Bound ports, in listener order (useful with port 0).
    std::vector<std::uint16_t> ports() const;
    // The --metrics listener's bound port, when there is one.
    std::optional<std::uint16_t> metrics_port() const;
    // What GET /metrics answers (Prometheus text format), and why /readyz answers 503 ("" when it
    // answers 200: the listeners accept and the store answered its last query).
    std::string scrape() const;
    std::string not_ready() const;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace wec::server

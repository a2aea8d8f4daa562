// Metrics of `wec serve` (docs/metrics.md): the WinRM request counters that every listener's
// connections add to, and the handler of the `--metrics` listener: GET /metrics (Prometheus text
// format 0.0.4), /healthz (the process runs) and /readyz (the store answers and the listeners
// accept: what a load balancer asks before it sends sources here).
#pragma once

#include "metrics/metrics.hpp"
#include "server/http_server.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace wec::server {

// Requests by action and status, their duration, and bytes received. A request costs a few
// relaxed atomic adds into fixed tables (indexed by action and status): no lock, no lookup by
// string key. Thread-safe.
class RequestMetrics {
public:
    explicit RequestMetrics(metrics::Registry& registry);

    // One request answered. `action` is the WS-Management action ("Events", ...), "auth" for an
    // authentication-only POST, "-" when the request was refused before its action was known.
    void request(std::string_view action, unsigned status,
                 std::chrono::steady_clock::duration elapsed) noexcept;
    // Request body bytes as they came off the connection (before decryption and decompression).
    void bytes_received(std::size_t n) noexcept { received_->inc(n); }
    // SOAP bytes once decrypted and SLDC-decompressed (the body itself when it was neither).
    void bytes_decompressed(std::size_t n) noexcept { decompressed_->inc(n); }

    // wec_requests_total: every action/status pair seen so far.
    void write(metrics::Exposition& out) const;

    // The action labels, in table order; "none" stands for "-", "other" for anything unlisted.
    static constexpr std::array<std::string_view, 12> kActions{
        "none",      "auth", "Enumerate", "EnumerateResponse", "Subscribe", "Events",
        "Heartbeat", "Ack",  "End",       "SubscriptionEnd",   "Unknown",   "other"};
    static constexpr unsigned kStatuses = 600; // 0-599; anything else is counted as 0

private:
    std::array<std::array<std::atomic<std::uint64_t>, kStatuses>, kActions.size()> counts_{};
    std::shared_ptr<metrics::Histogram> duration_;
    std::shared_ptr<metrics::Counter> received_;
    std::shared_ptr<metrics::Counter> decompressed_;
};

// What the --metrics listener serves. Both functions are called on the listener's worker thread.
struct MetricsEndpoint {
    Logger* log = nullptr;
    std::function<std::string()> scrape;    // the exposition text
    std::function<std::string()> not_ready; // why this node should get no traffic; "" if ready
};

// One connection to the --metrics listener: GET only (405 otherwise, Allow: GET), /metrics,
// /healthz, /readyz (404 for any other path; a query string is ignored).
class MetricsConnection final : public ConnectionHandler {
public:
    explicit MetricsConnection(const MetricsEndpoint& endpoint) : endpoint_(endpoint) {}
    HttpResponse handle(HttpRequest& request) override;
    std::optional<HttpResponse> check_head(const HttpRequest& head) override;

private:
    const MetricsEndpoint& endpoint_;
};

} // namespace wec::server

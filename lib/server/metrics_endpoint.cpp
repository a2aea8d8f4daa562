#include "server/metrics_endpoint.hpp"

namespace wec::server {

namespace {

constexpr const char* kHelpRequests =
    "WS-Management requests answered, by action (none: refused before it was known; auth: an "
    "authentication-only POST) and HTTP status.";
constexpr const char* kHelpDuration =
    "Time from a request's arrival (its body read) to its answer, Events included (until every "
    "output has the batch and the bookmark is stored).";

std::size_t action_index(std::string_view action) {
    if (action == "-") return 0;
    for (std::size_t i = 1; i + 1 < RequestMetrics::kActions.size(); ++i)
        if (RequestMetrics::kActions[i] == action) return i;
    return RequestMetrics::kActions.size() - 1;
}

HttpResponse text(unsigned status, std::string_view body) {
    HttpResponse r;
    r.status = status;
    r.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
    r.body.assign(body.begin(), body.end());
    return r;
}

std::optional<HttpResponse> refuse_method(const HttpRequest& head) {
    if (head.method == "GET") return std::nullopt;
    auto r = text(405, "only GET is served here\n");
    r.headers.push_back({"Allow", "GET"});
    r.close = true;
    return r;
}

} // namespace

RequestMetrics::RequestMetrics(metrics::Registry& registry)
    : duration_(registry.histogram(
          "wec_request_duration_seconds", kHelpDuration,
          {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
      received_(registry.counter("wec_bytes_received_total",
                                 "Request body bytes received, as sent on the connection (before "
                                 "decryption and SLDC decompression).")),
      decompressed_(registry.counter("wec_bytes_decompressed_total",
                                     "SOAP bytes of the requests once decrypted and SLDC-"
                                     "decompressed (the body itself when it was neither).")) {}

void RequestMetrics::request(std::string_view action, unsigned status,
                             std::chrono::steady_clock::duration elapsed) noexcept {
    counts_[action_index(action)][status < kStatuses ? status : 0].fetch_add(
        1, std::memory_order_relaxed);
    duration_->observe(std::chrono::duration<double>(elapsed).count());
}

void RequestMetrics::write(metrics::Exposition& out) const {
    out.family("wec_requests_total", kHelpRequests, metrics::Type::Counter);
    for (std::size_t a = 0; a < kActions.size(); ++a)
        for (unsigned s = 0; s < kStatuses; ++s)
            if (auto n = counts_[a][s].load(std::memory_order_relaxed))
                out.sample("wec_requests_total",
                           {{"action", std::string(kActions[a])}, {"status", std::to_string(s)}},
                           n);
}

std::optional<HttpResponse> MetricsConnection::check_head(const HttpRequest& head) {
    return refuse_method(head);
}

HttpResponse MetricsConnection::handle(HttpRequest& request) {
    if (auto refused = refuse_method(request)) return std::move(*refused);
    std::string_view path = request.target;
    path = path.substr(0, path.find('?'));
    if (path == "/metrics") {
        try {
            auto r = text(200, endpoint_.scrape());
            r.headers.front().value = std::string(metrics::kContentType);
            return r;
        } catch (const std::exception& e) {
            if (endpoint_.log) endpoint_.log->error("metrics scrape failed", {{"error", e.what()}});
            return text(500, std::string("scrape failed: ") + e.what() + "\n");
        }
    }
    if (path == "/healthz") return text(200, "ok\n");
    if (path == "/readyz") {
        auto why = endpoint_.not_ready();
        if (why.empty()) return text(200, "ready\n");
        for (char& c : why)
            if (c == '\n' || c == '\r') c = ' '; // one line
        return text(503, "not ready: " + why + "\n");
    }
    return text(404, "not found: this listener serves /metrics, /healthz and /readyz\n");
}

} // namespace wec::server

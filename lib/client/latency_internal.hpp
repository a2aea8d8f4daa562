// Internal to lib/client: Ack-latency percentiles for the load and replay summaries.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace wec::client::detail {

struct LatencySummary {
    double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

// Sorts `us` (microseconds) and reads the nearest-rank percentiles; all zero when empty.
inline LatencySummary summarize_latencies(std::vector<std::uint32_t>& us) {
    LatencySummary s;
    if (us.empty()) return s;
    std::sort(us.begin(), us.end());
    auto at = [&](double q) {
        auto i = static_cast<std::size_t>(q * static_cast<double>(us.size() - 1) + 0.5);
        return static_cast<double>(us[std::min(i, us.size() - 1)]) / 1000.0;
    };
    s.p50_ms = at(0.50);
    s.p99_ms = at(0.99);
    s.max_ms = static_cast<double>(us.back()) / 1000.0;
    return s;
}

} // namespace wec::client::detail

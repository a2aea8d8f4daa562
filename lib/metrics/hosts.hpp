// The hosts of one subscription as this process knows them: when each was last seen (any message)
// and last sent events. What `wec_hosts{state=...}` counts at scrape time, without a store query;
// the store keeps the durable copy (HeartbeatBatcher), `wec status` reads that one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace wec::metrics {

class HostTable {
public:
    using Clock = std::chrono::system_clock;

    // Keeps the later of each time (updates may arrive out of order). One lock and one hash of
    // `client` per call: called once per message, not per event.
    void seen(std::string_view client, Clock::time_point when,
              std::optional<Clock::time_point> events);

    // Same rule as `wec status` (store::classify): active when events arrived within
    // `heartbeat_interval` before `now`, alive when seen at all within it, dead otherwise.
    struct Counts {
        std::uint64_t active = 0;
        std::uint64_t alive = 0;
        std::uint64_t dead = 0;
    };
    Counts count(std::chrono::seconds heartbeat_interval, Clock::time_point now) const;
    std::size_t size() const;

private:
    struct Entry {
        Clock::time_point seen;
        std::optional<Clock::time_point> events;
    };
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Entry, Hash, std::equal_to<>> hosts_;
};

} // namespace wec::metrics

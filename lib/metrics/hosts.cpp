#include "metrics/hosts.hpp"

namespace wec::metrics {

void HostTable::seen(std::string_view client, Clock::time_point when,
                     std::optional<Clock::time_point> events) {
    std::lock_guard lock(mutex_);
    auto it = hosts_.find(client);
    if (it == hosts_.end()) {
        hosts_.emplace(std::string(client), Entry{when, events});
        return;
    }
    auto& e = it->second;
    if (when > e.seen) e.seen = when;
    if (events && (!e.events || *events > *e.events)) e.events = events;
}

HostTable::Counts HostTable::count(std::chrono::seconds heartbeat_interval,
                                   Clock::time_point now) const {
    const auto since = now - heartbeat_interval;
    Counts c;
    std::lock_guard lock(mutex_);
    for (const auto& [client, e] : hosts_) {
        if (e.events && *e.events >= since)
            ++c.active;
        else if (e.seen >= since)
            ++c.alive;
        else
            ++c.dead;
    }
    return c;
}

std::size_t HostTable::size() const {
    std::lock_guard lock(mutex_);
    return hosts_.size();
}

} // namespace wec::metrics

// `wec replay --check`: what a collector wrote (files output in any of wec's formats, rotated
// into several files, possibly gzipped) matched against the events sent, by (machine, channel,
// EventRecordID), where machine is the event's <Computer>.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace wec::tool {

struct EventKey {
    std::string machine;
    std::string channel;
    std::uint64_t record_id = 0;
    auto operator<=>(const EventKey&) const = default;
};

struct CheckReport {
    std::uint64_t files = 0;      // files read
    std::uint64_t lines = 0;      // non-empty lines read
    std::uint64_t unreadable = 0; // lines without a recognisable event
    std::uint64_t sent = 0;
    std::uint64_t acked = 0;
    std::uint64_t found = 0;      // sent events found at least once
    std::uint64_t lost = 0;       // acked but not found
    std::uint64_t duplicated = 0; // sent events found more than once
    std::uint64_t unexpected = 0; // events found that were not sent
    std::vector<EventKey> lost_examples, duplicated_examples, unexpected_examples; // first few
};

// The events of the collector's files (`paths`: files, or directories read recursively; *.gz
// gunzipped), counted by key. Throws wec::Error when a path does not exist or cannot be read.
std::map<EventKey, std::uint64_t> read_written(const std::vector<std::string>& paths,
                                               CheckReport& report);

// `sent`: every event sent, true when acknowledged.
CheckReport check_written(const std::map<EventKey, bool>& sent,
                          const std::vector<std::string>& paths);

} // namespace wec::tool

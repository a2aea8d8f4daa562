// Windows-like sources for load and crash tests of `wec serve` (lib/client): each Enumerates,
// resumes after the bookmark the collector offers, pushes batches of consecutive records, and on
// any failure starts over as Windows does; what it saw acknowledged is kept for the loss check.
#pragma once

#include "client/client.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace wec::testing {

// RecordId of the first Bookmark of a BookmarkList; 0 when there is none.
inline std::uint64_t bookmark_record(const std::string& bookmark) {
    std::smatch m;
    static const std::regex re("RecordId=\"(\\d+)\"");
    return std::regex_search(bookmark, m, re) ? std::stoull(m[1].str()) : 0;
}

// What one source saw, written by its thread only (read after join).
struct SourceLog {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> acked; // record ranges, inclusive
    std::uint64_t last_acked = 0;                               // record id of the last Ack
    std::uint64_t batches_failed = 0;    // sent and not acknowledged (error, timeout, 5xx)
    std::uint64_t resumes = 0;           // re-Enumerates after a failure
    std::uint64_t committed_unacked = 0; // the offered bookmark was past the last Ack
    std::uint64_t bookmark_behind = 0;   // the offered bookmark was before the last Ack (a bug)
    std::vector<std::string> first_errors;
};

// One Windows-like source: Enumerate, resume after the offered bookmark, push batches of
// consecutive records until `stop`; on any failure start over (the unacknowledged batch is sent
// again from the bookmark, as Windows does).
inline void run_source(const wec::client::SourceOptions& options, std::uint64_t seed,
                       const std::atomic<bool>& stop, std::atomic<std::uint64_t>& acked_batches,
                       SourceLog& out, std::chrono::milliseconds pace) {
    std::mt19937_64 rng(seed);
    constexpr std::uint64_t kFirst = 1000;
    bool first_time = true;
    while (!stop) {
        try {
            wec::client::Source source(options);
            auto subs = source.enumerate();
            source.end();
            if (subs.empty()) throw std::runtime_error("no subscription offered");
            const auto sub = subs.front();
            std::uint64_t offered = bookmark_record(sub.bookmark);
            if (!first_time) {
                ++out.resumes;
                if (offered > out.last_acked) ++out.committed_unacked;
                if (offered < out.last_acked) ++out.bookmark_behind;
            }
            first_time = false;
            std::uint64_t next = offered ? offered + 1 : kFirst;
            wec::client::EventGenerator gen(options.machine_id, seed + next, next);
            while (!stop) {
                std::size_t n = 1 + rng() % 60;
                std::vector<std::string> events;
                for (std::size_t i = 0; i < n; ++i)
                    events.push_back(gen.next());
                try {
                    source.send_events(sub, events, gen.bookmark());
                    if (pace.count()) std::this_thread::sleep_for(pace);
                } catch (...) {
                    ++out.batches_failed;
                    throw;
                }
                out.acked.emplace_back(next, gen.last_record());
                out.last_acked = gen.last_record();
                next = gen.last_record() + 1;
                ++acked_batches;
            }
        } catch (const std::exception& e) {
            if (out.first_errors.size() < 5) out.first_errors.push_back(e.what());
            std::this_thread::sleep_for(
                std::chrono::milliseconds(50)); // the collector is restarting
        }
    }
}

// The records found in JSON event lines (the `json` format: System.Computer and
// System.EventRecordID), by computer, with how often each was written. Lines that do not parse
// (cut by a crash) are counted in `torn` and shown.
inline std::map<std::string, std::map<std::uint64_t, unsigned>>
records_by_computer(const std::vector<std::string>& lines, std::uint64_t& torn) {
    std::map<std::string, std::map<std::uint64_t, unsigned>> written_by;
    for (const auto& line : lines) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.contains("System")) {
            ++torn;
            std::cout << "torn line (" << line.size() << " bytes): " << line.substr(0, 100)
                      << " ... " << line.substr(line.size() > 200 ? line.size() - 100 : 0) << "\n";
            continue;
        }
        const auto& id = j["System"]["EventRecordID"];
        ++written_by[j["System"]["Computer"].get<std::string>()]
                    [id.is_string() ? std::stoull(id.get<std::string>()) : id.get<std::uint64_t>()];
    }
    return written_by;
}

} // namespace wec::testing

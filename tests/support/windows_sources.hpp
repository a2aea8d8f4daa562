// Windows-like sources for load and crash tests of `wec serve` (lib/client): each Enumerates,
// resumes after the bookmark the collector offers, pushes batches of consecutive records, and on
// any failure starts over as Windows does; what it saw acknowledged is kept for the loss check.
#pragma once

#include "client/client.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
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

// The record id of a source's first event.
inline constexpr std::uint64_t kFirstRecord = 1000;

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
            std::uint64_t next = offered ? offered + 1 : kFirstRecord;
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

// Several sources, each on its own thread (run_source), until stop() or destruction (the threads
// are joined even when an assertion returns early).
class SourceFleet {
public:
    // `options(i)` and `seed(i)` for source i.
    SourceFleet(std::size_t sources,
                const std::function<wec::client::SourceOptions(std::size_t)>& options,
                const std::function<std::uint64_t(std::size_t)>& seed,
                std::chrono::milliseconds pace = std::chrono::milliseconds(0))
        : logs_(sources) {
        for (std::size_t i = 0; i < sources; ++i)
            threads_.emplace_back(run_source, options(i), seed(i), std::cref(stop_),
                                  std::ref(acked_batches_), std::ref(logs_[i]), pace);
    }
    ~SourceFleet() { stop(); }
    SourceFleet(const SourceFleet&) = delete;
    SourceFleet& operator=(const SourceFleet&) = delete;

    // Waits (bounded by `limit`) until the sources got `more` acknowledgements from now on.
    bool wait_for_acks(std::uint64_t more, std::chrono::seconds limit) const {
        auto target = acked_batches_.load() + more;
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (acked_batches_.load() < target && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return acked_batches_.load() >= target;
    }
    // Stops the sources and joins them; their logs are final afterwards.
    void stop() {
        stop_ = true;
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }
    std::uint64_t acked_batches() const { return acked_batches_.load(); }
    const std::vector<SourceLog>& logs() const { return logs_; }

private:
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> acked_batches_{0};
    std::vector<SourceLog> logs_;
    std::vector<std::thread> threads_;
};

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

// Checks the bookmark the store holds for a source after a run; "" when it is sound. It may be
// ahead of the source's last acknowledgement (a batch stored, then the reply lost to a kill: the
// source resends, a duplicate), never behind it (an acknowledged batch offered again), and every
// record up to it was written (else a resuming source would skip events nobody has).
inline std::string check_stored_bookmark(std::uint64_t stored, const SourceLog& log,
                                         const std::map<std::uint64_t, unsigned>& written) {
    if (stored < log.last_acked)
        return "stored bookmark " + std::to_string(stored) + " is before the last acknowledged " +
               "record " + std::to_string(log.last_acked);
    for (std::uint64_t r = kFirstRecord; r <= stored; ++r)
        if (written.count(r) == 0)
            return "stored bookmark " + std::to_string(stored) + " is past record " +
                   std::to_string(r) + ", which no output has";
    return {};
}

} // namespace wec::testing

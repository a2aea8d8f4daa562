// The inputs of `wec replay --evtx/--xml`: events read from EVTX files (lib/evtx) or event XML
// files, in order, grouped by simulated host, and cut into Events batches whose bookmark carries
// each channel's last EventRecordID, as a Windows source's does.
#pragma once

#include "client/replay.hpp"
#include "wsman/bookmark.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wec::tool {

struct InputEvent {
    std::string xml;
    std::string channel;
    std::string computer;
    std::uint64_t record_id = 0;
    std::optional<std::int64_t> time_ns; // TimeCreated/@SystemTime, ns since 1970 (--speed)
};

// "2016-07-08T18:12:51.6816408Z" (any number of fractional digits, 'Z' optional) as ns since
// 1970; nullopt when it is not such a time.
std::optional<std::int64_t> system_time_ns(std::string_view text);

struct InputSkip {
    std::string where; // FILE[:record N | :line N]
    std::string reason;
};

struct InputStats {
    std::uint64_t files = 0;
    std::uint64_t events = 0;
    std::uint64_t skipped = 0;
};

// The files of each argument: a file as is, a directory's regular files ending in `extension`
// (any, when empty), sorted by name. Throws wec::Error for a path that does not exist.
std::vector<std::filesystem::path> input_files(const std::vector<std::string>& args,
                                               const std::string& extension);

// Reads every event of `files` (EVTX when `evtx`, else event XML: one <Event> per file, an
// <Events> envelope of them, or lines of raw XML / JSON strings / JSON objects with "xml"), in
// order. Unusable records are skipped and reported to `on_skip`. Throws wec::Error when a file
// cannot be opened at all.
InputStats read_inputs(const std::vector<std::filesystem::path>& files, bool evtx,
                       const std::function<void(InputEvent&&)>& on_event,
                       const std::function<void(const InputSkip&)>& on_skip);

// One simulated host's events cut into batches of at most `batch` events; each batch's bookmark
// lists every channel seen so far with its last EventRecordID (the batch's last channel
// IsCurrent). `machine` is the host's MachineID.
class BatchCutter {
public:
    BatchCutter(std::vector<InputEvent> events, std::string machine, std::size_t batch);
    bool next(client::RecordedBatch& out);

private:
    std::vector<InputEvent> events_;
    std::string machine_;
    std::size_t batch_;
    std::size_t cursor_ = 0;
    wsman::Bookmark last_; // channel -> last record id, and the channel of the last event
};

// Paces the batches of a replay: --rate (events per second) and --speed (N times the recorded
// pace, from the events' TimeCreated). `wait` sleeps until a batch of `events` events whose
// latest TimeCreated is `time` may be sent.
class Pacer {
public:
    Pacer(double rate, double speed) : rate_(rate), speed_(speed) {}
    // Several hosts on one timeline: the clock starts at `start`, recorded time at `first_time`.
    Pacer(double rate, double speed, std::chrono::steady_clock::time_point start,
          std::optional<std::int64_t> first_time)
        : rate_(rate), speed_(speed), started_(true), start_(start), first_time_(first_time) {}
    void wait(std::size_t events, std::optional<std::int64_t> time);

private:
    double rate_, speed_;
    bool started_ = false;
    std::chrono::steady_clock::time_point start_;
    std::optional<std::int64_t> first_time_;
    std::uint64_t sent_ = 0;
};

} // namespace wec::tool

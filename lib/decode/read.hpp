// Reading back the JSON Lines written by `wec decode --format json` (schema 1, docs/decode.md):
// the Events requests of a capture, parsed again from their "body", in capture order. This is the
// input of `wec replay --from`.
//
// Streaming: one line (bounded by ReadLimits) and one batch are held at a time, never the file.
#pragma once

#include "decode/decode.hpp"
#include "wsman/wsman.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <istream>
#include <string>
#include <vector>

namespace wec::decode {

// One recorded Events request: its events and bookmark, as the source sent them (`line`: the
// 1-based line of the record in the input). The type client::replay_batches sends.
using EventsBatch = wsman::EventsBatch;

// An Events request that could not be used: no body (undecryptable, cut) or a body that is not
// a parsable Events envelope.
struct SkippedRecord {
    std::uint64_t line = 0;
    std::string reason;
};

struct ReadLimits {
    std::size_t max_line_bytes = std::size_t{256} << 20; // a longer line is an InputError
};

struct ReadStats {
    std::uint64_t records = 0; // non-empty lines read
    std::uint64_t batches = 0; // Events requests handed out
    std::uint64_t events = 0;  // events in them
    std::uint64_t skipped = 0; // Events requests passed over (see SkippedRecord)
};

// Pulls the Events batches out of a JSON Lines stream. Records that are not requests with
// "action": "Events" (responses, Heartbeats, Enumerates, ...) are passed over silently.
class EventsBatchReader {
public:
    using SkipHandler = std::function<void(const SkippedRecord&)>;
    // `name` is used in error messages ("-" for stdin). `on_skip` (optional) hears of every
    // skipped record when it is skipped.
    explicit EventsBatchReader(std::istream& in, std::string name = "-", SkipHandler on_skip = {},
                               ReadLimits limits = {});

    // The next batch (false at the end of the input). Throws InputError "NAME:LINE: ..." for a
    // line that is not a JSON object, has no schema version 1 ("v"), is longer than the limit,
    // or when the stream cannot be read.
    bool next(EventsBatch& batch);
    const ReadStats& stats() const { return stats_; }
    std::uint64_t line() const { return line_; } // lines read so far

private:
    bool read_line(std::string& out);
    std::istream& in_;
    std::string name_;
    SkipHandler on_skip_;
    ReadLimits limits_;
    ReadStats stats_;
    std::uint64_t line_ = 0;
    std::string buffer_;
};

// The whole stream through `on_batch`, in order (one batch in memory at a time); returns the
// counts. Throws as EventsBatchReader::next.
ReadStats read_events_batches(std::istream& in, const std::function<void(EventsBatch&&)>& on_batch,
                              const EventsBatchReader::SkipHandler& on_skip = {},
                              const std::string& name = "-");

} // namespace wec::decode

// The TCP layer (tcp.cpp): segments ordered per connection and direction, each direction feeding
// an HttpStreamParser.
#pragma once

#include "capture/http_stream.hpp"
#include "capture/link.hpp"
#include "capture/types.hpp"

#include <cstddef>
#include <cstdint>

namespace wec::capture {

struct Stats {
    std::uint64_t packets = 0, capture_bytes = 0, tcp_segments = 0, non_tcp = 0, ip_fragments = 0,
                  ip_reassembled = 0, truncated_packets = 0, unsupported_link = 0;
    std::uint64_t damaged = 0, skipped_bytes = 0; // damage reports of the file (records, blocks,
                                                  // gzip data), bytes passed over
    std::uint64_t cut_packets = 0, cut_bytes = 0; // TcpCut segments, payload bytes they lack
    // truncated_packets: shorter than their own headers (DecodeStatus::Truncated), skipped.
    std::uint64_t connections = 0, retransmitted_bytes = 0, gaps = 0, gap_bytes = 0,
                  evicted_connections = 0;
    std::uint64_t requests = 0, responses = 0, errors = 0;
};

// Orders the segments of every TCP connection and drives one HttpStreamParser per direction.
class TcpReassembler {
public:
    TcpReassembler(HttpSink& sink, const Limits& limits = {});
    ~TcpReassembler();
    TcpReassembler(const TcpReassembler&) = delete;
    TcpReassembler& operator=(const TcpReassembler&) = delete;

    void add(const TcpSegment& segment);
    // Closes every open connection (flushing buffered data, reporting gaps). Call at the end.
    void finish();

    std::size_t open_connections() const;
    const Stats& stats() const; // connection, gap and message counters

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace wec::capture

// Capture reading for offline decoding: pcap/pcapng (plain or gzip, damage reported and skipped),
// link/IP/TCP decoding, TCP reassembly per connection and direction, and HTTP/1.1 message
// extraction. This header includes the layers' headers and declares the top level.
//
// Streaming: CaptureReader yields packets; decode_packet() turns one into a TCP segment;
// TcpReassembler orders the segments of each connection and feeds one HttpStreamParser per
// direction; extract_http() ties them together. Memory is bounded by the open connections
// (Limits), never by the size of the capture.
//
// Layers: types.hpp (shared vocabulary), file.hpp (capture files), link.hpp (link/IP/TCP
// headers), tcp.hpp (reassembly), http_stream.hpp (HTTP messages); the top level is here
// (capture.cpp).
#pragma once

#include "capture/file.hpp"
#include "capture/http_stream.hpp"
#include "capture/link.hpp"
#include "capture/tcp.hpp"
#include "capture/types.hpp"

#include <functional>
#include <string>

namespace wec::capture {

struct Callbacks {
    std::function<void(const HttpMessage&)> on_message;
    std::function<void(const Note&)> on_gap;   // NoteKind::Gap
    std::function<void(const Note&)> on_error; // NoteKind::Error, Warning and Damage
};

// Reads a capture (path or "-") and reports every HTTP message found in it.
// Throws CaptureError if the file cannot be opened or is not a capture.
Stats extract_http(const std::string& path, const Callbacks& callbacks, const Limits& limits = {});
Stats extract_http(CaptureReader& reader, const Callbacks& callbacks, const Limits& limits = {});

} // namespace wec::capture

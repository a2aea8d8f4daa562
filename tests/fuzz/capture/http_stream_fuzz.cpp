// Arbitrary bytes into one HttpStreamParser. The first byte chooses the piece size; a 0xFE byte
// followed by a length byte injects a gap.
#include "capture/capture.hpp"

#include <cstdint>

namespace {
struct Sink : wec::capture::HttpSink {
    std::uint64_t total = 0;
    void on_message(const wec::capture::HttpMessage& m) override {
        total += m.body.size();
        for (const auto& h : m.headers)
            total += h.name.size() + h.value.size();
        (void)m.header("Content-Length");
    }
};
struct Ctx : wec::capture::HttpStreamParser::Context {
    bool head = false;
    bool next_response_is_to_head() override { return head = !head; }
};
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::size_t piece = (data[0] & 0x3f) + 1;
    Sink sink;
    Ctx ctx;
    wec::capture::Limits limits;
    limits.max_header_bytes = 4096;
    limits.max_body_bytes = 1 << 16;
    wec::capture::HttpStreamParser parser(sink, limits, (data[0] & 0x40) ? &ctx : nullptr);
    if (data[0] & 0x80) parser.gap(0, 0); // mid-stream start
    std::size_t i = 1;
    while (i < size) {
        if (data[i] == 0xfe && i + 1 < size) {
            parser.gap(data[i + 1], 0);
            i += 2;
            continue;
        }
        std::size_t n = std::min(piece, size - i);
        parser.feed({data + i, n}, static_cast<wec::capture::TimeNs>(i));
        i += n;
    }
    parser.finish(0);
    return 0;
}

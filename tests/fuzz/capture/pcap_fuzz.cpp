// Arbitrary bytes as a capture file (through a memory FILE*) into extract_http.
#include "capture/capture.hpp"

#include <cstdint>
#include <cstdio>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::vector<std::uint8_t> copy(data, data + size);
    std::FILE* f = fmemopen(copy.data(), copy.size(), "rb");
    if (f == nullptr) return 0;
    try {
        auto reader = wec::capture::CaptureReader::from_file(f, "fuzz");
        wec::capture::Limits limits;
        limits.max_body_bytes = 1 << 20;
        limits.max_connections = 64;
        limits.max_out_of_order_bytes = 1 << 16;
        std::uint64_t bytes = 0;
        wec::capture::Callbacks cb;
        cb.on_message = [&bytes](const wec::capture::HttpMessage& m) {
            bytes += m.body.size() + m.headers.size();
        };
        (void)wec::capture::extract_http(reader, cb, limits);
    } catch (const wec::capture::CaptureError&) {
    }
    (void)wec::capture::detect_file_kind({data, size});
    return 0;
}

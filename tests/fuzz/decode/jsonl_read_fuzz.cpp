// decode::read_events_batches over arbitrary bytes (what `wec replay --from` reads): batches,
// skipped records or an InputError naming the line, nothing else; every batch handed out has
// the line it came from.
#include "decode/read.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace dec = wec::decode;
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    try {
        std::uint64_t batches = 0;
        auto stats = dec::read_events_batches(
            in,
            [&](dec::EventsBatch&& b) {
                if (b.line == 0) std::abort();
                ++batches;
            },
            [](const dec::SkippedRecord& s) {
                if (s.line == 0 || s.reason.empty()) std::abort();
            },
            "fuzz.jsonl");
        if (stats.batches != batches) std::abort();
    } catch (const dec::InputError&) {
    }
    return 0;
}

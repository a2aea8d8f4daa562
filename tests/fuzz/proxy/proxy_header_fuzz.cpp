// Arbitrary bytes as the start of a connection on a listener with `proxy_protocol = true`: the
// PROXY header parser must classify every prefix, never read past it, never ask for more than
// kMaxV2Bytes, and give addresses that parse.
#include "server/proxy_protocol.hpp"

#include <arpa/inet.h>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

namespace proxy = wec::server::proxy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::span<const std::uint8_t> bytes(data, size);
    auto r = proxy::parse(bytes);
    switch (r.status) {
    case proxy::Status::Incomplete:
        if (size >= proxy::kMaxV2Bytes) std::abort(); // would wait for more than a header holds
        break;
    case proxy::Status::Complete: {
        if (r.length == 0 || r.length > size || r.length > proxy::kMaxV2Bytes) std::abort();
        if (!r.header.local) {
            unsigned char buf[16];
            const char* src = r.header.source_address.c_str();
            if (inet_pton(AF_INET, src, buf) != 1 && inet_pton(AF_INET6, src, buf) != 1)
                std::abort();
        }
        // Deterministic: the same bytes, the same header (and more bytes after it change nothing).
        auto again = proxy::parse(bytes.first(r.length));
        if (again.status != proxy::Status::Complete || again.length != r.length ||
            again.header.source_address != r.header.source_address)
            std::abort();
        break;
    }
    case proxy::Status::Invalid:
        if (r.error.empty()) std::abort();
        break;
    }
    return 0;
}

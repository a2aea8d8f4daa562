// Arbitrary bytes as a multipart/encrypted body; the first line (up to '\n') is the Content-Type.
#include "http/http.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view all(reinterpret_cast<const char*>(data), size);
    auto nl = all.find('\n');
    std::string_view ct = "multipart/encrypted;protocol=\"application/"
                          "HTTP-Kerberos-session-encrypted\";boundary=\"Encrypted Boundary\"";
    std::span<const std::uint8_t> body(data, size);
    if (nl != std::string_view::npos && nl < 512) {
        ct = all.substr(0, nl);
        body = body.subspan(nl + 1);
    }
    try {
        auto p = wec::http::parse_encrypted(body, ct);
        // Spans must stay inside the body.
        if (p.header.data() < body.data() ||
            p.ciphertext.data() + p.ciphertext.size() > body.data() + body.size()) {
            __builtin_trap();
        }
        auto rebuilt = wec::http::build_encrypted(p.protocol, p.original_type, p.length, p.header,
                                                  p.ciphertext, p.tab_before_headers, p.boundary);
        auto again = wec::http::parse_encrypted(rebuilt.body, rebuilt.content_type);
        if (again.ciphertext.size() != p.ciphertext.size()) __builtin_trap();
    } catch (const wec::http::FramingError&) {
    }
    try {
        (void)wec::http::parse_original_content(ct);
    } catch (const wec::http::FramingError&) {
    }
    return 0;
}

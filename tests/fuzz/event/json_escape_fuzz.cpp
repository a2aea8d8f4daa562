// Arbitrary bytes -> the JSON writer's escaping (lib/event's cursor writer: SSE2/SWAR runs,
// escapes written in place, long strings in slices) against the plain byte loop of
// tests/event/json_escape_reference.hpp: append_string, an escaped key and field_lf (CR LF as
// LF), byte for byte, appended after existing content; the same written into a FormatBuffer (the
// BatchFormatter's buffer, not zero-filled) as into a std::string; and copy_tail (the escaper's
// last 1 to 15 bytes of a run, read as overlapping words) on the input's last bytes, against a
// byte loop (libFuzzer's input is a heap block of its own size: ASan reports a read past it).
#include "../../event/json_escape_reference.hpp"
#include "event/json_writer_internal.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view s(reinterpret_cast<const char*>(data), size);
    using wec::event::testing::reference_json_string;
    std::string out = "x";
    wec::event::detail::append_string(out, s);
    if (out != "x" + reference_json_string(s)) {
        std::fprintf(stderr, "append_string differs from the byte loop\n");
        std::abort();
    }
    // The input as a key (its first half) and as a value written by field_lf.
    const std::string_view key = s.substr(0, s.size() / 2);
    out = "y";
    {
        wec::event::detail::Writer w(out);
        w.field_lf(key, s);
    }
    if (out != "y" + reference_json_string(key) + ":" + reference_json_string(s, true)) {
        std::fprintf(stderr, "Writer::field_lf differs from the byte loop\n");
        std::abort();
    }
    wec::event::FormatBuffer buf;
    buf.append("y");
    {
        wec::event::detail::Writer w(buf);
        w.field_lf(key, s);
    }
    if (buf.view() != out) {
        std::fprintf(stderr, "Writer into a FormatBuffer differs from into a std::string\n");
        std::abort();
    }
#if defined(__SSE2__)
    if (size > 0) {
        const std::size_t rem = size < 15 ? size : 15;
        const std::uint8_t* tail = data + size - rem;
        std::size_t first = 0;
        while (first < rem && !(tail[first] < 0x20 || tail[first] == '"' || tail[first] == '\\' ||
                                tail[first] >= 0x80))
            ++first;
        char copied[15];
        if (wec::event::detail::copy_tail(copied, tail, rem) != first ||
            std::memcmp(copied, tail, rem) != 0) {
            std::fprintf(stderr, "copy_tail differs from the byte loop\n");
            std::abort();
        }
    }
#endif
    return 0;
}

// Invariants of the text layer on arbitrary bytes:
// - UTF-16 -> UTF-8 always yields valid UTF-8 (append_valid_utf8 replaces nothing);
// - UTF-8 -> UTF-16 -> UTF-8 is the identity on that (valid) text;
// - sanitize_xml_chars leaves nothing to replace on a second pass;
// - decode_body's xml_clean (checked while UTF-16 is converted) is what sanitize_xml_chars finds
//   on the text: nothing to replace when it is set, and for UTF-16 set exactly then.
#include "text/text.hpp"

#include <cstdlib>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace wt = wec::text;
    const std::span<const std::uint8_t> in(data, size);

    const std::string u8 = wt::utf16_to_utf8(in);
    std::string copy;
    if (wt::append_valid_utf8(u8, copy) != 0 || copy != u8) std::abort();
    const auto u16 = wt::utf8_to_utf16le(u8);
    std::string back;
    wt::append_utf16le_to_utf8(u16, back);
    if (back != u8) std::abort();

    // Arbitrary bytes as UTF-8: repaired, then stable.
    std::string raw(reinterpret_cast<const char*>(data), size);
    wt::sanitize_xml_chars(raw);
    std::string again = raw;
    if (wt::sanitize_xml_chars(again) != 0 || again != raw) std::abort();
    std::string valid;
    if (wt::append_valid_utf8(raw, valid) != 0) std::abort();
    if (wt::utf16_to_utf8(wt::utf8_to_utf16le(raw, true)) != raw) std::abort();

    std::string decoded;
    const auto d = wt::decode_body(in, size % 2 ? "utf-8" : "", decoded);
    std::string check;
    if (wt::append_valid_utf8(decoded, check) != 0) std::abort();
    if (d.xml_clean && wt::sanitize_xml_chars(decoded) != 0) std::abort();
    for (const char* charset : {"utf-16le", "utf-16be"}) {
        std::string text;
        const auto t = wt::decode_body(in, charset, text);
        if (t.encoding != wt::Encoding::Utf8 && t.xml_clean != (wt::sanitize_xml_chars(text) == 0))
            std::abort();
    }
    return 0;
}

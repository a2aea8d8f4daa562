// Differential fuzzing of the collector's fused body step (wsman::decode_text: SLDC decoded a
// piece at a time, each piece converted to UTF-8 at once) against the two passes it replaced
// (wsman::decode_content, then text::decode_body): the same UTF-8, encoding, byte count,
// decompressed flag, xml_clean flag and BodyError; and when the text is reported xml_clean,
// text::sanitize_xml_chars finds nothing to replace in it. The input is tried as an SLDC record as
// is (so that it shares the sldc corpus' structure when given one), and compressed, as given and
// behind a UTF-16 BOM, with several charsets and limits (a large one, one taken from the first
// byte).
#include "sldc/sldc.hpp"
#include "text/text.hpp"
#include "wsman/body.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace ws = wec::wsman;

struct Outcome {
    std::string utf8;
    wec::text::Encoding encoding = wec::text::Encoding::Utf8;
    std::size_t content_bytes = 0;
    bool decompressed = false;
    bool xml_clean = false;
    std::string error;
    bool operator==(const Outcome&) const = default;
};

Outcome two_passes(std::span<const std::uint8_t> body, std::string_view charset,
                   std::size_t limit) {
    Outcome o;
    try {
        wec::sldc::Buffer scratch;
        auto c = ws::decode_content("SLDC", body, limit, scratch);
        o.content_bytes = c.bytes.size();
        o.decompressed = c.decompressed;
        const auto d = wec::text::decode_body(c.bytes, charset, o.utf8);
        o.encoding = d.encoding;
        o.xml_clean = d.xml_clean;
    } catch (const ws::BodyError& e) {
        o.error = e.what();
    }
    return o;
}

Outcome fused(std::span<const std::uint8_t> body, std::string_view charset, std::size_t limit) {
    Outcome o;
    try {
        auto t = ws::decode_text("SLDC", body, charset, limit);
        o.utf8 = std::move(t.utf8);
        o.encoding = t.encoding;
        o.content_bytes = t.content_bytes;
        o.decompressed = t.decompressed;
        o.xml_clean = t.xml_clean;
    } catch (const ws::BodyError& e) {
        o.error = e.what();
    }
    return o;
}

void compare(std::span<const std::uint8_t> body, std::size_t limit, bool every_charset = true) {
    for (std::string_view charset : {"UTF-16", "", "utf-16be"})
        if (every_charset || charset == "UTF-16") {
            Outcome f = fused(body, charset, limit);
            if (!(f == two_passes(body, charset, limit))) std::abort();
            if (f.xml_clean && wec::text::sanitize_xml_chars(f.utf8) != 0) std::abort();
        }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> in(data, size);
    const std::size_t small = size > 0 ? std::size_t{data[0]} * 997 + 1 : 0;
    for (const std::size_t limit : {std::size_t{1} << 22, small})
        compare(in, limit);
    // The input as text: compressed as is, and as UTF-16LE units behind a BOM (often surrogates
    // and odd lengths), repeated so that the record spans two pieces or more.
    std::vector<std::uint8_t> text(in.begin(), in.end());
    std::vector<std::uint8_t> utf16 = {0xFF, 0xFE};
    while (utf16.size() < 2 * ws::kTextPiece && size > 0)
        utf16.insert(utf16.end(), in.begin(), in.end());
    for (const auto* body : {&text, &utf16}) {
        const auto compressed = wec::sldc::compress(*body, wec::sldc::Level::Fast);
        compare(compressed, std::size_t{1} << 22, body == &text);
        compare(compressed, small + body->size() / 2, false);
    }
    return 0;
}

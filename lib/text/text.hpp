// UTF-16 <-> UTF-8 conversion for SOAP bodies (Windows sends UTF-16LE with a BOM) and XML
// character sanitizing. Nothing here throws on bad input: invalid sequences become U+FFFD, because
// a collector must keep a batch even when one event holds broken text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wec::text {

// The encoding a body was found in, so that a reply can be sent back the same way.
enum class Encoding { Utf8, Utf16LE, Utf16BE };

std::string_view to_string(Encoding encoding);

// UTF-16 bytes -> UTF-8, appended to `out` (no allocation when `out` has the capacity).
// A leading BOM selects the byte order (FF FE little-endian, FE FF big-endian) and is skipped;
// without one the input is little-endian. Lone surrogates and an odd trailing byte become U+FFFD.
void append_utf16_to_utf8(std::span<const std::uint8_t> utf16, std::string& out);
std::string utf16_to_utf8(std::span<const std::uint8_t> utf16);

// Same, for input whose byte order is already known and that carries no BOM.
void append_utf16le_to_utf8(std::span<const std::uint8_t> utf16le, std::string& out);
void append_utf16be_to_utf8(std::span<const std::uint8_t> utf16be, std::string& out);

// UTF-8 -> UTF-16LE bytes appended to `out`, optionally preceded by the BOM FF FE.
// Invalid UTF-8 (bad bytes, overlong forms, encoded surrogates, > U+10FFFF) becomes U+FFFD.
void append_utf8_to_utf16le(std::string_view utf8, std::vector<std::uint8_t>& out,
                            bool bom = false);
std::vector<std::uint8_t> utf8_to_utf16le(std::string_view utf8, bool bom = false);

// Appends the UTF-8 form of code point `cp` (1-4 bytes). The caller has validated it (no
// surrogate, nothing above U+10FFFF): each decoder has its own rule for bad input. Inline: the
// EVTX and event renderers call it per character.
inline void append_code_point(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

// Line and column, both from 1, of byte `offset` of UTF-8 `text` (clamped to its size): the column
// counts characters, not bytes. Where parse errors and findings are reported.
std::pair<std::uint32_t, std::uint32_t> line_column(std::string_view text, std::size_t offset);

// Length (1-4) of the valid UTF-8 sequence `s` starts with (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when `s` is empty or starts with an invalid one.
std::size_t utf8_sequence_length(std::string_view s);

// Copies UTF-8 to `out`, replacing each invalid sequence with U+FFFD. Returns the replacements.
std::size_t append_valid_utf8(std::string_view utf8, std::string& out);

// Where the encoding of a decoded body came from and what it was.
struct Decoded {
    Encoding encoding = Encoding::Utf8;
    bool bom = false; // the body started with a byte order mark (skipped in the output)
    // The text appended is known to hold no character XML 1.0 forbids and to be valid UTF-8:
    // sanitize_xml_chars would replace nothing in it (checked as UTF-16 is converted; false
    // when it was not checked, e.g. a UTF-8 body).
    bool xml_clean = false;
};

// Decodes an HTTP body to UTF-8 (appended to `out`). `charset` is the Content-Type charset
// parameter, empty when absent. A BOM wins; else the charset ("UTF-16", "utf-16le", "utf-16be",
// "UTF-8"); else a heuristic: an even length and '<' followed by 0x00 means UTF-16LE.
Decoded decode_body(std::span<const std::uint8_t> body, std::string_view charset, std::string& out);

// decode_body fed in pieces (an SLDC record decoded a window at a time, so that its UTF-16 is
// converted while it is still in cache): the same output and result as decode_body on the
// concatenation of the pieces, whatever their sizes. UTF-16 (found by its BOM or a UTF-16 charset)
// is converted as the pieces come, a BOM, a unit or a surrogate pair split between two pieces
// included; any other body is kept until finish() and decoded whole.
class BodyDecoder {
public:
    // Appends to `out`, which must outlive the decoder.
    BodyDecoder(std::string_view charset, std::string& out);
    void append(std::span<const std::uint8_t> piece);
    // The end of the body: what is still held is decoded. Call once.
    Decoded finish();

private:
    enum class Mode { Undecided, Utf16LE, Utf16BE, Whole };
    void decide(std::span<const std::uint8_t> head);
    void convert(std::span<const std::uint8_t> piece);

    std::string charset_;
    std::string* out_;
    Mode mode_ = Mode::Undecided;
    bool bom_ = false;
    std::vector<std::uint8_t> held_; // Undecided and Whole: the bytes so far
    std::uint8_t carry_[4] = {};     // UTF-16: bytes of a unit or pair not complete yet
    std::size_t carry_size_ = 0;
    bool forbidden_ = false; // a character XML forbids was converted
};

// Encodes a UTF-8 reply the way a client spoke: UTF-16 with a BOM, or UTF-8 as is (appended).
void encode_body(std::string_view utf8, Encoding encoding, std::vector<std::uint8_t>& out);

// Replaces, in place, the characters XML 1.0 forbids (C0 controls other than TAB, LF and CR,
// U+FFFE, U+FFFF) and invalid UTF-8 sequences with U+FFFD. Returns how many were replaced; the
// string is untouched (and nothing allocated) when it is already clean. Windows events can carry
// U+0005 inside CDATA, which would make the whole batch unparsable otherwise.
std::size_t sanitize_xml_chars(std::string& utf8);

// `text` with each of `chars` that it holds (any of & < > " and CR, LF, TAB) written as its XML
// entity or character reference: the default four for character data or attribute values; CR
// (any text) and LF/TAB (attribute values) when whitespace must survive a reader's normalisation;
// callers whose output is compared byte for byte pass the set they have always written.
std::string xml_escape(std::string_view text, std::string_view chars = "&<>\"");

} // namespace wec::text

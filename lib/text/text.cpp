#include "text/text.hpp"

#include "text/ascii.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace wec::text {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// One decoded UTF-8 sequence. On error `len` is the maximal invalid subpart (at least 1 byte), as
// Unicode recommends, so that one bad byte never swallows the valid text after it.
struct Utf8Char {
    char32_t cp;
    std::size_t len;
    bool ok;
};

inline Utf8Char decode_utf8(const unsigned char* p, std::size_t n) {
    const unsigned c = p[0];
    if (c < 0x80) return {c, 1, true};
    if (c < 0xC2) return {kReplacement, 1, false};
    if (c < 0xE0) {
        if (n >= 2 && (p[1] & 0xC0) == 0x80)
            return {static_cast<char32_t>(((c & 0x1F) << 6) | (p[1] & 0x3F)), 2, true};
        return {kReplacement, 1, false};
    }
    if (c < 0xF0) {
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xE0)
            lo = 0xA0; // overlong
        else if (c == 0xED)
            hi = 0x9F; // surrogates
        if (n < 2 || p[1] < lo || p[1] > hi) return {kReplacement, 1, false};
        if (n < 3 || (p[2] & 0xC0) != 0x80) return {kReplacement, 2, false};
        return {static_cast<char32_t>(((c & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F)), 3,
                true};
    }
    if (c < 0xF5) {
        unsigned lo = 0x80, hi = 0xBF;
        if (c == 0xF0)
            lo = 0x90; // overlong
        else if (c == 0xF4)
            hi = 0x8F; // > U+10FFFF
        if (n < 2 || p[1] < lo || p[1] > hi) return {kReplacement, 1, false};
        if (n < 3 || (p[2] & 0xC0) != 0x80) return {kReplacement, 2, false};
        if (n < 4 || (p[3] & 0xC0) != 0x80) return {kReplacement, 3, false};
        return {static_cast<char32_t>(((c & 0x07) << 18) | ((p[1] & 0x3F) << 12) |
                                      ((p[2] & 0x3F) << 6) | (p[3] & 0x3F)),
                4, true};
    }
    return {kReplacement, 1, false};
}

inline char* put_utf8(char* o, char32_t cp) {
    if (cp < 0x80) {
        *o++ = static_cast<char>(cp);
    } else if (cp < 0x800) {
        *o++ = static_cast<char>(0xC0 | (cp >> 6));
        *o++ = static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = static_cast<char>(0xE0 | (cp >> 12));
        *o++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        *o++ = static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        *o++ = static_cast<char>(0xF0 | (cp >> 18));
        *o++ = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        *o++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        *o++ = static_cast<char>(0x80 | (cp & 0x3F));
    }
    return o;
}

template <bool BigEndian>
inline unsigned load_unit(const std::uint8_t* p) {
    return BigEndian ? (unsigned{p[0]} << 8) | p[1] : (unsigned{p[1]} << 8) | p[0];
}

// Whether a UTF-16 unit outside the ASCII fast path is a character XML 1.0 forbids: a C0 control
// other than TAB, LF and CR, U+FFFE or U+FFFF (surrogates become pairs or U+FFFD, both allowed).
inline bool xml_forbidden_unit(unsigned u) {
    return (u < 0x20 && u != '\t' && u != '\n' && u != '\r') || u >= 0xFFFE;
}

#if defined(__SSE2__)
// The lanes of 16 ASCII bytes that hold a C0 control other than TAB, LF and CR (0xFF each).
inline __m128i xml_forbidden_ascii(__m128i v) {
    const __m128i control = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
    // x | 4 == 13 for TAB (9) and CR (13) only; LF compared alone.
    const __m128i allowed =
        _mm_or_si128(_mm_cmpeq_epi8(_mm_or_si128(v, _mm_set1_epi8(4)), _mm_set1_epi8(13)),
                     _mm_cmpeq_epi8(v, _mm_set1_epi8('\n')));
    return _mm_andnot_si128(allowed, control);
}
#endif

// Converts the UTF-16 units in [p, stop) to UTF-8 at `o` (a surrogate pair starting at the last
// unit may read one unit past `stop`, never past `end`). Returns the new output position; `p` is
// advanced past what was consumed. `o` must have room for 3 bytes per unit plus 16 bytes of slack:
// the ASCII fast path stores whole 16-byte blocks, of which only the converted part counts.
// `forbidden` is set when a converted character is one XML 1.0 forbids (xml_forbidden_unit), so
// that the caller can skip sanitize_xml_chars on text where none was seen (the conversion looks
// at every unit anyway; its output is always valid UTF-8). Without SSE2 it is always set.
template <bool BigEndian>
char* utf16_block_to_utf8(const std::uint8_t*& p, const std::uint8_t* stop, const std::uint8_t* end,
                          char* o, bool& forbidden) {
#if defined(__SSE2__)
    __m128i seen = _mm_setzero_si128(); // forbidden controls in the ASCII blocks
    // A unit is ASCII when its high byte is 0 and its low byte < 0x80. Units are loaded as
    // little-endian 16-bit lanes, so a big-endian unit has its bytes swapped in the lane.
    const __m128i ascii_mask = _mm_set1_epi16(static_cast<short>(BigEndian ? 0x80FF : 0xFF80));
    const __m128i zero = _mm_setzero_si128();
    auto narrow = [](__m128i a, __m128i b) {
        if constexpr (BigEndian) {
            a = _mm_srli_epi16(a, 8);
            b = _mm_srli_epi16(b, 8);
        }
        return _mm_packus_epi16(a, b); // every lane < 0x80 here: no saturation
    };
#endif
    while (p < stop) {
#if defined(__SSE2__)
        // ASCII fast path: 16 code units per step, then the ASCII prefix of 8 units.
        while (stop - p >= 32) {
            const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
            const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
            const __m128i bad = _mm_and_si128(_mm_or_si128(a, b), ascii_mask);
            if (_mm_movemask_epi8(_mm_cmpeq_epi8(bad, zero)) != 0xFFFF) break;
            const __m128i ascii = narrow(a, b);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o), ascii);
            seen = _mm_or_si128(seen, xml_forbidden_ascii(ascii));
            o += 16;
            p += 32;
        }
        if (stop - p >= 16) {
            const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
            const auto ok = static_cast<unsigned>(
                _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(a, ascii_mask), zero)));
            // Leading ASCII units (each is two set bits); stored as one block, kept in part.
            const auto units = static_cast<std::size_t>(std::countr_one(ok)) / 2;
            const __m128i ascii = narrow(a, a);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o), ascii);
            // Only the lanes of the units kept count (the block holds the 8 units twice).
            const auto bad = static_cast<unsigned>(_mm_movemask_epi8(xml_forbidden_ascii(ascii)));
            forbidden |= (bad & ((1u << units) - 1)) != 0;
            o += units;
            p += 2 * units;
            if (units == 8) continue;
        } else if (p >= stop) {
            break;
        }
#else
        forbidden = true; // not checked here: sanitize_xml_chars decides
        if constexpr (std::endian::native == std::endian::little) {
            constexpr std::uint64_t mask =
                BigEndian ? 0x80FF80FF80FF80FFull : 0xFF80FF80FF80FF80ull;
            constexpr unsigned shift = BigEndian ? 8 : 0;
            while (stop - p >= 8) {
                std::uint64_t v;
                std::memcpy(&v, p, 8);
                if (v & mask) break;
                o[0] = static_cast<char>(v >> shift);
                o[1] = static_cast<char>(v >> (16 + shift));
                o[2] = static_cast<char>(v >> (32 + shift));
                o[3] = static_cast<char>(v >> (48 + shift));
                o += 4;
                p += 8;
            }
            if (p >= stop) break;
        }
#endif
        const unsigned u = load_unit<BigEndian>(p);
        p += 2;
        if (u < 0x80) {
            *o++ = static_cast<char>(u);
            forbidden |= xml_forbidden_unit(u);
        } else if (u < 0xD800 || u > 0xDFFF) {
            o = put_utf8(o, u);
            forbidden |= xml_forbidden_unit(u);
        } else if (u <= 0xDBFF && p < end) {
            const unsigned lo = load_unit<BigEndian>(p);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                p += 2;
                o = put_utf8(o, 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
            } else {
                o = put_utf8(o, kReplacement); // high surrogate not followed by a low one
            }
        } else {
            o = put_utf8(o, kReplacement); // lone low surrogate, or high one at the end
        }
    }
#if defined(__SSE2__)
    forbidden |= _mm_movemask_epi8(seen) != 0;
#endif
    return o;
}

// Converts the whole units in [p, end) (an even number of bytes), a surrogate pair being read
// only within them.
template <bool BigEndian>
void append_units(const std::uint8_t* p, const std::uint8_t* const end, std::string& out,
                  bool& forbidden) {
    // Converted a chunk at a time into a stack buffer, then appended: sizing `out` for the worst
    // case (3 bytes per unit) would zero-fill three times the usual (ASCII) output.
    constexpr std::size_t kChunkUnits = 2048;
    char buf[3 * (kChunkUnits + 1) + 16];
    while (p < end) {
        const std::uint8_t* const stop =
            static_cast<std::size_t>(end - p) > 2 * kChunkUnits ? p + 2 * kChunkUnits : end;
        const char* const o = utf16_block_to_utf8<BigEndian>(p, stop, end, buf, forbidden);
        out.append(buf, static_cast<std::size_t>(o - buf));
    }
}

// Returns whether a character XML forbids was seen (see utf16_block_to_utf8).
template <bool BigEndian>
bool append_utf16(std::span<const std::uint8_t> in, std::string& out) {
    const std::size_t n = in.size();
    out.reserve(out.size() + n / 2 + 3);
    bool forbidden = false;
    append_units<BigEndian>(in.data(), in.data() + (n & ~std::size_t{1}), out, forbidden);
    if (n & 1) out.append("\xEF\xBF\xBD"); // odd trailing byte
    return forbidden;
}

// A piece of a stream: converts its whole units but the last one when that is a high surrogate
// (its low one may start the next piece); returns the bytes consumed (the rest, at most 3 bytes,
// is carried over).
template <bool BigEndian>
std::size_t append_piece(const std::uint8_t* p, std::size_t n, std::string& out, bool& forbidden) {
    std::size_t whole = n & ~std::size_t{1};
    if (whole >= 2) {
        const unsigned last = load_unit<BigEndian>(p + whole - 2);
        if (last >= 0xD800 && last <= 0xDBFF) whole -= 2;
    }
    append_units<BigEndian>(p, p + whole, out, forbidden);
    return whole;
}

template <bool BigEndian>
void append_utf8_to_utf16(std::string_view in, std::vector<std::uint8_t>& out, bool bom) {
    const std::size_t start = out.size();
    // Each input byte gives at most one code unit (a 4-byte sequence gives two).
    out.resize(start + in.size() * 2 + 2);
    std::uint8_t* o = out.data() + start;
    auto put = [&o](unsigned u) {
        if constexpr (BigEndian) {
            o[0] = static_cast<std::uint8_t>(u >> 8);
            o[1] = static_cast<std::uint8_t>(u);
        } else {
            o[0] = static_cast<std::uint8_t>(u);
            o[1] = static_cast<std::uint8_t>(u >> 8);
        }
        o += 2;
    };
    if (bom) put(0xFEFF);
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    const auto* const end = p + in.size();
    while (p < end) {
        if constexpr (std::endian::native == std::endian::little && !BigEndian) {
            while (end - p >= 8) {
                std::uint64_t v;
                std::memcpy(&v, p, 8);
                if (v & 0x8080808080808080ull) break;
                for (int k = 0; k < 8; ++k) {
                    o[2 * k] = static_cast<std::uint8_t>(v >> (8 * k));
                    o[2 * k + 1] = 0;
                }
                o += 16;
                p += 8;
            }
            if (p >= end) break;
        }
        if (*p < 0x80) {
            put(*p++);
            continue;
        }
        const Utf8Char c = decode_utf8(p, static_cast<std::size_t>(end - p));
        p += c.len;
        if (c.cp >= 0x10000) {
            const char32_t v = c.cp - 0x10000;
            put(0xD800 + (v >> 10));
            put(0xDC00 + (v & 0x3FF));
        } else {
            put(c.cp);
        }
    }
    out.resize(static_cast<std::size_t>(o - out.data()));
}

std::string_view trim_charset(std::string_view s) {
    while (!s.empty() &&
           (s.front() == ' ' || s.front() == '\t' || s.front() == '"' || s.front() == '\''))
        s.remove_prefix(1);
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '"' || s.back() == '\''))
        s.remove_suffix(1);
    return s;
}

// True when `p` starts a character XML 1.0 forbids or an invalid UTF-8 sequence; `len` gets the
// length to skip (the character, or the invalid subpart).
inline bool is_bad_xml_char(const unsigned char* p, std::size_t n, std::size_t& len) {
    const unsigned c = *p;
    if (c < 0x80) {
        len = 1;
        return c < 0x20 && c != '\t' && c != '\n' && c != '\r';
    }
    const Utf8Char u = decode_utf8(p, n);
    len = u.len;
    return !u.ok || u.cp == 0xFFFE || u.cp == 0xFFFF;
}

// The first index >= i whose byte is not an ASCII character XML allows (TAB, LF, CR, 0x20..0x7F),
// or n.
inline std::size_t skip_xml_ascii(const unsigned char* p, std::size_t i, std::size_t n) {
#if defined(__SSE2__)
    // Signed compare: 0x20..0x7F are > 0x1F, controls are not, and bytes >= 0x80 are negative.
    const __m128i limit = _mm_set1_epi8(0x1F);
    const __m128i tab = _mm_set1_epi8('\t');
    const __m128i lf = _mm_set1_epi8('\n');
    const __m128i cr = _mm_set1_epi8('\r');
    while (i + 16 <= n) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
        const __m128i ws = _mm_or_si128(_mm_cmpeq_epi8(v, tab),
                                        _mm_or_si128(_mm_cmpeq_epi8(v, lf), _mm_cmpeq_epi8(v, cr)));
        const auto ok =
            static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_cmpgt_epi8(v, limit), ws)));
        if (ok != 0xFFFF) return i + static_cast<std::size_t>(std::countr_one(ok));
        i += 16;
    }
#endif
    while (i < n && ((p[i] >= 0x20 && p[i] < 0x80) || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        ++i;
    return i;
}

// The encoding a body declares: its BOM (`bom` set), else its charset; nullopt when neither says
// (decode_body then looks at the bytes). Reads head[2] only when head holds 3 bytes.
struct Declared {
    Encoding encoding;
    bool bom;
};
std::optional<Declared> declared_encoding(std::span<const std::uint8_t> head,
                                          std::string_view charset) {
    const std::size_t n = head.size();
    if (n >= 2 && head[0] == 0xFF && head[1] == 0xFE) return Declared{Encoding::Utf16LE, true};
    if (n >= 2 && head[0] == 0xFE && head[1] == 0xFF) return Declared{Encoding::Utf16BE, true};
    if (n >= 3 && head[0] == 0xEF && head[1] == 0xBB && head[2] == 0xBF)
        return Declared{Encoding::Utf8, true};
    charset = trim_charset(charset);
    if (iequals(charset, "utf-16") || iequals(charset, "utf-16le") || iequals(charset, "ucs-2"))
        return Declared{Encoding::Utf16LE, false};
    if (iequals(charset, "utf-16be")) return Declared{Encoding::Utf16BE, false};
    if (iequals(charset, "utf-8") || iequals(charset, "utf8"))
        return Declared{Encoding::Utf8, false};
    return std::nullopt;
}
} // namespace

std::string_view to_string(Encoding encoding) {
    switch (encoding) {
    case Encoding::Utf8:
        return "UTF-8";
    case Encoding::Utf16LE:
        return "UTF-16LE";
    case Encoding::Utf16BE:
        return "UTF-16BE";
    }
    return "?";
}

void append_utf16le_to_utf8(std::span<const std::uint8_t> utf16le, std::string& out) {
    (void)append_utf16<false>(utf16le, out);
}

void append_utf16be_to_utf8(std::span<const std::uint8_t> utf16be, std::string& out) {
    (void)append_utf16<true>(utf16be, out);
}

void append_utf16_to_utf8(std::span<const std::uint8_t> utf16, std::string& out) {
    if (utf16.size() >= 2 && utf16[0] == 0xFE && utf16[1] == 0xFF) {
        (void)append_utf16<true>(utf16.subspan(2), out);
        return;
    }
    if (utf16.size() >= 2 && utf16[0] == 0xFF && utf16[1] == 0xFE) utf16 = utf16.subspan(2);
    (void)append_utf16<false>(utf16, out);
}

std::string utf16_to_utf8(std::span<const std::uint8_t> utf16) {
    std::string out;
    append_utf16_to_utf8(utf16, out);
    return out;
}

void append_utf8_to_utf16le(std::string_view utf8, std::vector<std::uint8_t>& out, bool bom) {
    append_utf8_to_utf16<false>(utf8, out, bom);
}

std::vector<std::uint8_t> utf8_to_utf16le(std::string_view utf8, bool bom) {
    std::vector<std::uint8_t> out;
    append_utf8_to_utf16le(utf8, out, bom);
    return out;
}

std::pair<std::uint32_t, std::uint32_t> line_column(std::string_view text, std::size_t offset) {
    offset = std::min(offset, text.size());
    std::uint32_t line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < offset; ++i)
        if (text[i] == '\n') {
            ++line;
            line_start = i + 1;
        }
    std::uint32_t column = 1;
    for (std::size_t i = line_start; i < offset; ++i)
        if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++column; // not a continuation
    return {line, column};
}

std::size_t utf8_sequence_length(std::string_view s) {
    if (s.empty()) return 0;
    const Utf8Char c = decode_utf8(reinterpret_cast<const unsigned char*>(s.data()), s.size());
    return c.ok ? c.len : 0;
}

std::size_t append_valid_utf8(std::string_view utf8, std::string& out) {
    const auto* p = reinterpret_cast<const unsigned char*>(utf8.data());
    const std::size_t n = utf8.size();
    std::size_t replaced = 0, i = 0, run = 0; // [run, i) is valid and not yet copied
    while (i < n) {
        if (p[i] < 0x80) {
            ++i;
            continue;
        }
        const Utf8Char c = decode_utf8(p + i, n - i);
        if (c.ok) {
            i += c.len;
            continue;
        }
        out.append(utf8.data() + run, i - run);
        out.append("\xEF\xBF\xBD");
        ++replaced;
        i += c.len;
        run = i;
    }
    out.append(utf8.data() + run, n - run);
    return replaced;
}

Decoded decode_body(std::span<const std::uint8_t> body, std::string_view charset,
                    std::string& out) {
    const std::size_t n = body.size();
    const auto declared = declared_encoding(body, charset);
    if (declared && declared->bom) {
        const auto rest = body.subspan(declared->encoding == Encoding::Utf8 ? 3 : 2);
        if (declared->encoding == Encoding::Utf16LE)
            return {declared->encoding, true, !append_utf16<false>(rest, out)};
        if (declared->encoding == Encoding::Utf16BE)
            return {declared->encoding, true, !append_utf16<true>(rest, out)};
        append_valid_utf8({reinterpret_cast<const char*>(rest.data()), rest.size()}, out);
        return {declared->encoding, true};
    }
    Encoding enc = Encoding::Utf8;
    if (declared) {
        enc = declared->encoding;
    } else if (n % 2 == 0) {
        // No usable hint: look for '<' followed by 0x00 at an even offset near the start.
        for (std::size_t i = 0; i + 1 < n && i < 64; i += 2) {
            if (body[i] == '<' && body[i + 1] == 0) {
                enc = Encoding::Utf16LE;
                break;
            }
            if (body[i] == 0 && body[i + 1] == '<') {
                enc = Encoding::Utf16BE;
                break;
            }
        }
    }
    if (enc == Encoding::Utf16LE) return {enc, false, !append_utf16<false>(body, out)};
    if (enc == Encoding::Utf16BE) return {enc, false, !append_utf16<true>(body, out)};
    append_valid_utf8({reinterpret_cast<const char*>(body.data()), n}, out);
    return {enc, false};
}

BodyDecoder::BodyDecoder(std::string_view charset, std::string& out)
    : charset_(charset), out_(&out) {}

// The encoding decode_body would choose from the first bytes of the body (at least 3, or 2 that
// are a UTF-16 BOM) and the charset. The heuristic needs the whole body (its length): Whole.
void BodyDecoder::decide(std::span<const std::uint8_t> head) {
    const auto declared = declared_encoding(head, charset_);
    if (declared && declared->encoding == Encoding::Utf16LE)
        mode_ = Mode::Utf16LE;
    else if (declared && declared->encoding == Encoding::Utf16BE)
        mode_ = Mode::Utf16BE;
    else
        mode_ = Mode::Whole; // UTF-8 (BOM or charset) or the byte heuristic: the whole body
    bom_ = mode_ != Mode::Whole && declared->bom;
}

void BodyDecoder::convert(std::span<const std::uint8_t> piece) {
    const bool be = mode_ == Mode::Utf16BE;
    const std::uint8_t* p = piece.data();
    std::size_t n = piece.size();
    // A unit or pair cut at the end of the last piece: completed from this one, a few bytes at a
    // time (each round converts at least one unit of the 4 bytes).
    while (carry_size_ > 0 && n > 0) {
        const std::size_t take = std::min(sizeof carry_ - carry_size_, n);
        std::memcpy(carry_ + carry_size_, p, take);
        carry_size_ += take;
        p += take;
        n -= take;
        if (carry_size_ < sizeof carry_) return;
        const std::size_t used = be ? append_piece<true>(carry_, carry_size_, *out_, forbidden_)
                                    : append_piece<false>(carry_, carry_size_, *out_, forbidden_);
        carry_size_ -= used;
        std::memmove(carry_, carry_ + used, carry_size_);
    }
    if (n == 0) return;
    const std::size_t used = be ? append_piece<true>(p, n, *out_, forbidden_)
                                : append_piece<false>(p, n, *out_, forbidden_);
    carry_size_ = n - used;
    std::memcpy(carry_, p + used, carry_size_);
}

void BodyDecoder::append(std::span<const std::uint8_t> piece) {
    if (piece.empty()) return;
    if (mode_ == Mode::Undecided) {
        // Decided on the piece itself when it is long enough (no copy), else on the bytes held.
        if (held_.empty() && piece.size() >= 3) {
            decide(piece);
        } else {
            held_.insert(held_.end(), piece.begin(), piece.end());
            const bool utf16_bom = held_.size() >= 2 && ((held_[0] == 0xFF && held_[1] == 0xFE) ||
                                                         (held_[0] == 0xFE && held_[1] == 0xFF));
            if (held_.size() < 3 && !utf16_bom) return;
            decide(held_);
            piece = held_;
        }
        if (mode_ != Mode::Whole && bom_) piece = piece.subspan(2);
        if (mode_ == Mode::Whole && held_.empty()) held_.assign(piece.begin(), piece.end());
        if (mode_ != Mode::Whole) {
            convert(piece);
            held_.clear();
        }
        return;
    }
    if (mode_ == Mode::Whole) {
        held_.insert(held_.end(), piece.begin(), piece.end());
        return;
    }
    convert(piece);
}

Decoded BodyDecoder::finish() {
    if (mode_ == Mode::Undecided || mode_ == Mode::Whole)
        return decode_body(held_, charset_, *out_);
    const bool be = mode_ == Mode::Utf16BE;
    const std::size_t whole = carry_size_ & ~std::size_t{1};
    if (be)
        append_units<true>(carry_, carry_ + whole, *out_, forbidden_);
    else
        append_units<false>(carry_, carry_ + whole, *out_, forbidden_);
    if (carry_size_ & 1) out_->append("\xEF\xBF\xBD"); // odd trailing byte
    carry_size_ = 0;
    return {be ? Encoding::Utf16BE : Encoding::Utf16LE, bom_, !forbidden_};
}

void encode_body(std::string_view utf8, Encoding encoding, std::vector<std::uint8_t>& out) {
    switch (encoding) {
    case Encoding::Utf16LE:
        return append_utf8_to_utf16<false>(utf8, out, true);
    case Encoding::Utf16BE:
        return append_utf8_to_utf16<true>(utf8, out, true);
    case Encoding::Utf8:
        break;
    }
    out.insert(out.end(), utf8.begin(), utf8.end());
}

std::size_t sanitize_xml_chars(std::string& utf8) {
    const auto* p = reinterpret_cast<const unsigned char*>(utf8.data());
    const std::size_t n = utf8.size();
    std::size_t i = 0, len = 0;
    // Fast scan: most bodies are clean and must not be copied.
    for (;;) {
        i = skip_xml_ascii(p, i, n);
        if (i >= n) return 0;
        if (is_bad_xml_char(p + i, n - i, len)) break;
        i += len;
    }
    std::string out;
    out.reserve(n + 16);
    out.append(utf8.data(), i);
    std::size_t replaced = 0, run = i;
    while (i < n) {
        i = skip_xml_ascii(p, i, n);
        if (i >= n) break;
        if (!is_bad_xml_char(p + i, n - i, len)) {
            i += len;
            continue;
        }
        out.append(utf8.data() + run, i - run);
        out.append("\xEF\xBF\xBD");
        ++replaced;
        i += len;
        run = i;
    }
    out.append(utf8.data() + run, n - run);
    utf8.swap(out);
    return replaced;
}

std::string xml_escape(std::string_view text, std::string_view chars) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (chars.find(c) == std::string_view::npos) {
            out += c;
            continue;
        }
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\r':
            out += "&#13;";
            break;
        case '\n':
            out += "&#10;";
            break;
        case '\t':
            out += "&#9;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

} // namespace wec::text

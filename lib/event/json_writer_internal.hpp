// Internal to lib/event: the JSON writer and the time helpers shared by the formatters
// (format.cpp: Raw, Json, RawJson, Nxlog; ecs.cpp: ECS). Each formatter lives in its own
// translation unit so that the compiler inlines the writer in each as it would alone.
#pragma once

#include "event/event.hpp"
#include "text/text.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace wec::event::detail {

using sv = std::string_view;

inline constexpr sv kReplacement = "\xEF\xBF\xBD"; // U+FFFD

// The bytes a JSON string cannot take as they are: controls, '"', '\\', and non-ASCII (checked
// as UTF-8).
inline constexpr std::array<bool, 256> kJsonSpecial = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c)
        t[static_cast<std::size_t>(c)] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
    return t;
}();

// Appends s as a JSON string literal (serde_json escaping: \" \\ \n \r \t, other controls
// \u00XX). Invalid UTF-8 and the C0 controls XML forbids become U+FFFD, so the output is always
// valid UTF-8 JSON whatever the input.
[[gnu::always_inline]] inline void append_escaped(std::string& out, sv s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    const auto* run = p;
    auto flush = [&](const unsigned char* upto) {
        out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(upto - run));
    };
    while (p < end) {
#if defined(__SSE2__)
        // Skip 16 plain ASCII bytes at a time: signed "< 0x20" also catches bytes >= 0x80.
        while (end - p >= 16) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
            const __m128i special =
                _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                             _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                          _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
            const int mask = _mm_movemask_epi8(special);
            if (mask != 0) {
                p += __builtin_ctz(static_cast<unsigned>(mask));
                break;
            }
            p += 16;
        }
        if (p >= end) break;
#endif
        // Then 8 bytes at a time (the short values that make most of an event's fields):
        // nonzero when a byte is < 0x20, >= 0x80, '"' or '\\' (a borrow can set a high bit
        // only above a byte that is itself special); the byte loop below decides.
        while (end - p >= 8) {
            constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
            std::uint64_t x;
            std::memcpy(&x, p, 8);
            const std::uint64_t q = x ^ (kOnes * '"'), b = x ^ (kOnes * '\\');
            const std::uint64_t special =
                ((x - kOnes * 0x20) & ~x) | ((q - kOnes) & ~q) | ((b - kOnes) & ~b) | x;
            if ((special & (kOnes * 0x80)) != 0) break;
            p += 8;
        }
        if (p >= end) break;
        unsigned char c = *p;
        if (!kJsonSpecial[c]) {
            ++p;
            continue;
        }
        if (c >= 0x80) {
            std::size_t n = text::utf8_sequence_length(
                {reinterpret_cast<const char*>(p), static_cast<std::size_t>(end - p)});
            if (n != 0) {
                p += n;
                continue;
            }
            flush(p);
            out.append(kReplacement);
            run = ++p;
            continue;
        }
        flush(p);
        switch (c) {
        case '"':
            out.append("\\\"");
            break;
        case '\\':
            out.append("\\\\");
            break;
        case '\n':
            out.append("\\n");
            break;
        case '\r':
            out.append("\\r");
            break;
        case '\t':
            out.append("\\t");
            break;
        default:
            out.append(kReplacement); // U+0000..U+001F other than TAB/LF/CR: not XML text
            break;
        }
        run = ++p;
    }
    flush(p);
}

inline void append_string(std::string& out, sv s) {
    out.push_back('"');
    append_escaped(out, s);
    out.push_back('"');
}

// The same with each CR LF written as LF (Winlogbeat's RemoveWindowsLineEndings; the XML parser
// already normalised literal line breaks, "&#13;" references remain).
inline void append_string_lf(std::string& out, sv s) {
    out.push_back('"');
    for (std::size_t cr = s.find("\r\n"); cr != sv::npos; cr = s.find("\r\n")) {
        append_escaped(out, s.substr(0, cr));
        s.remove_prefix(cr + 1); // keep the LF
    }
    append_escaped(out, s);
    out.push_back('"');
}

// ---- Times -----------------------------------------------------------------------------------
// Seconds since the epoch (64 bits: years 0000-9999 whatever the clock's range) and nanoseconds.

struct UtcTime {
    std::int64_t secs = 0;
    std::uint32_t nanos = 0;
};

inline UtcTime utc_of(std::chrono::system_clock::time_point tp) {
    auto ns_total =
        std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
    std::int64_t secs = ns_total / 1000000000;
    std::int64_t nanos = ns_total % 1000000000;
    if (nanos < 0) {
        nanos += 1000000000;
        --secs;
    }
    return {secs, static_cast<std::uint32_t>(nanos)};
}

struct Civil {
    std::int64_t y;
    std::int64_t m;
    std::int64_t d;
};

inline Civil civil_from_days(std::int64_t days) {
    std::int64_t z = days + 719468;
    std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    std::int64_t doe = z - era * 146097;
    std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    std::int64_t y = yoe + era * 400;
    std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    std::int64_t mp = (5 * doy + 2) / 153;
    std::int64_t d = doy - (153 * mp + 2) / 5 + 1;
    std::int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) ++y;
    return {y, m, d};
}

enum class TimeStyle {
    Chrono, // chrono's to_rfc3339(): 0, 3, 6 or 9 fractional digits, "+00:00"
    GoNano, // Go's RFC3339Nano: trailing zeros of the fraction dropped, "Z"
};

inline void append_utc(const UtcTime& t, TimeStyle style, std::string& out) {
    std::int64_t days = t.secs / 86400;
    std::int64_t sod = t.secs % 86400;
    if (sod < 0) {
        sod += 86400;
        --days;
    }
    Civil c = civil_from_days(days);
    char buf[48];
    char* p = buf;
    auto put = [&](std::int64_t v, int width) {
        for (int i = width - 1; i >= 0; --i) {
            p[i] = static_cast<char>('0' + v % 10);
            v /= 10;
        }
        p += width;
    };
    if (c.y < 0 || c.y > 9999) c.y = c.y < 0 ? 0 : 9999; // out of RFC 3339 range: clamp
    put(c.y, 4);
    *p++ = '-';
    put(c.m, 2);
    *p++ = '-';
    put(c.d, 2);
    *p++ = 'T';
    put(sod / 3600, 2);
    *p++ = ':';
    put(sod / 60 % 60, 2);
    *p++ = ':';
    put(sod % 60, 2);
    const std::uint32_t nanos = t.nanos;
    if (nanos != 0) {
        *p++ = '.';
        if (style == TimeStyle::GoNano) {
            put(nanos, 9);
            while (p[-1] == '0')
                --p;
        } else if (nanos % 1000000 == 0) {
            put(nanos / 1000000, 3);
        } else if (nanos % 1000 == 0) {
            put(nanos / 1000, 6);
        } else {
            put(nanos, 9);
        }
    }
    if (style == TimeStyle::GoNano) {
        *p++ = 'Z';
    } else {
        std::memcpy(p, "+00:00", 6);
        p += 6;
    }
    out.append(buf, static_cast<std::size_t>(p - buf));
}

// An object key: a string literal (our own names, plain ASCII: written as they are) or any
// other text (escaped).
struct Key {
    template <std::size_t N>
    constexpr Key(const char (&literal)[N]) : text(literal, N - 1), plain(true) {}
    Key(sv k) : text(k) {}
    Key(const std::string& k) : text(k) {}
    sv text;
    bool plain = false;
};

// Minimal JSON object writer managing commas.
class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}

    void begin_object() {
        out_.push_back('{');
        comma_ = false;
    }
    void end_object() {
        out_.push_back('}');
        comma_ = true;
    }
    void begin_array() {
        out_.push_back('[');
        comma_ = false;
    }
    void end_array() {
        out_.push_back(']');
        comma_ = true;
    }
    void key(Key k) {
        if (k.plain) {
            // ,"name": in one append
            char buf[72];
            if (k.text.size() <= sizeof buf - 4) {
                char* p = buf;
                if (comma_) *p++ = ',';
                *p++ = '"';
                std::memcpy(p, k.text.data(), k.text.size());
                p += k.text.size();
                *p++ = '"';
                *p++ = ':';
                out_.append(buf, static_cast<std::size_t>(p - buf));
                comma_ = false;
                return;
            }
        }
        if (comma_) out_.push_back(',');
        append_string(out_, k.text);
        out_.push_back(':');
        comma_ = false;
    }
    void value(sv s) {
        if (comma_) out_.push_back(',');
        append_string(out_, s);
        comma_ = true;
    }
    template <typename T>
    void number(T n) {
        if (comma_) out_.push_back(',');
        char buf[24];
        auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, n);
        (void)ec;
        out_.append(buf, static_cast<std::size_t>(ptr - buf));
        comma_ = true;
    }
    void time_field(Key k, std::chrono::system_clock::time_point tp) {
        key(k);
        out_.push_back('"');
        format_time(tp, out_);
        out_.push_back('"');
        comma_ = true;
    }
    // Go's RFC3339Nano in UTC, as Winlogbeat writes times: "2022-12-14T16:06:51.0643605Z".
    void utc_field(Key k, const UtcTime& t) {
        key(k);
        out_.push_back('"');
        append_utc(t, TimeStyle::GoNano, out_);
        out_.push_back('"');
        comma_ = true;
    }

    void field(Key k, sv v) {
        key(k);
        value(v);
    }
    void field_lf(Key k, sv v) { // CR LF written as LF
        key(k);
        append_string_lf(out_, v);
        comma_ = true;
    }
    void field(Key k, const std::string& v) { field(k, sv(v)); }
    void field(Key k, const char* v) { field(k, sv(v)); }
    void field(Key k, const std::optional<sv>& v) {
        if (v) field(k, *v);
    }
    template <typename T>
    void num_field(Key k, const std::optional<T>& v) {
        if (v) {
            key(k);
            number(+*v); // promote uint8_t so that it prints as a number
        }
    }
    template <typename T>
    void num_field(Key k, T v) {
        key(k);
        number(+v);
    }

    std::string& out() { return out_; }

private:
    std::string& out_;
    bool comma_ = false;
};

// The collector's metadata: the OpenWEC block of Json and Nxlog, the meta of RawJson.
void write_metadata_fields(Writer& w, const Metadata& md);

// Keywords "0x…" as OpenWEC's Nxlog reads them: u64 from hex, reinterpreted as i64.
inline std::optional<std::int64_t> parse_keywords(const std::optional<sv>& keywords) {
    if (!keywords || keywords->substr(0, 2) != "0x") return std::nullopt;
    sv hex = keywords->substr(2);
    if (!hex.empty() && hex.front() == '+') hex.remove_prefix(1);
    if (hex.empty()) return std::nullopt;
    std::uint64_t value = 0;
    auto [ptr, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), value, 16);
    if (ec != std::errc() || ptr != hex.data() + hex.size()) return std::nullopt;
    return static_cast<std::int64_t>(value);
}

} // namespace wec::event::detail

// Internal to lib/event: the JSON writer and the time helpers shared by the formatters
// (format.cpp: Raw, Json, RawJson, Nxlog; ecs.cpp: ECS). Each formatter lives in its own
// translation unit so that the compiler inlines the writer in each as it would alone.
#pragma once

#include "event/event.hpp"
#include "event/word_copy.hpp"
#include "text/text.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
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

// The JSON writer writes through a cursor into the output's own storage: a std::string is grown
// ahead (zero-filled: std::string has no uninitialised resize before C++23) and cut back to what
// was written when the writer is done; a FormatBuffer's room is used as it is (not zero-filled).
// A value costs one capacity check and no call (std::string::append and push_back cost a call
// and a capacity check each, and a short value took three of them).
class JsonOut {
public:
    explicit JsonOut(std::string& out)
        : target_(&out), grow_(&grow_string), finish_(&finish_string), data_(out.data()),
          len_(out.size()), cap_(out.size()) {}
    explicit JsonOut(FormatBuffer& out)
        : target_(&out), grow_(&grow_buffer), finish_(&finish_buffer), data_(out.data()),
          len_(out.size()), cap_(out.capacity()) {}
    ~JsonOut() { finish_(target_, len_); }
    JsonOut(const JsonOut&) = delete;
    JsonOut& operator=(const JsonOut&) = delete;

    // Room for n more bytes at the cursor (and what follows them stays scratch).
    [[gnu::always_inline]] char* reserve(std::size_t n) {
        if (cap_ - len_ < n) [[unlikely]]
            grow(n);
        return data_ + len_;
    }
    // The cursor is now at p (within the room reserved last).
    [[gnu::always_inline]] void commit(char* p) { len_ = static_cast<std::size_t>(p - data_); }
    [[gnu::always_inline]] void put(char c) {
        char* p = reserve(1);
        *p = c;
        ++len_;
    }
    [[gnu::always_inline]] void put(sv s) {
        char* p = reserve(s.size());
        std::memcpy(p, s.data(), s.size());
        len_ += s.size();
    }
    std::size_t size() const { return len_; }
    // What was written from `from` on, to edit it in place.
    std::span<char> written(std::size_t from) { return {data_ + from, len_ - from}; }

private:
    // The target's storage after growing it to hold len + need bytes (at least 4 KB more).
    struct Room {
        char* data;
        std::size_t capacity;
    };
    using Grow = Room (*)(void*, std::size_t len, std::size_t need);
    using Finish = void (*)(void*, std::size_t len);

    [[gnu::noinline]] void grow(std::size_t n) {
        const Room r = grow_(target_, len_, std::max<std::size_t>(n, 4096));
        data_ = r.data;
        cap_ = r.capacity;
    }
    static Room grow_string(void* t, std::size_t len, std::size_t need) {
        auto& s = *static_cast<std::string*>(t);
        s.resize(len + need); // zero-fills the new room
        return {s.data(), s.size()};
    }
    static void finish_string(void* t, std::size_t len) {
        static_cast<std::string*>(t)->resize(len);
    }
    static Room grow_buffer(void* t, std::size_t len, std::size_t need) {
        auto& b = *static_cast<FormatBuffer*>(t);
        b.set_size(len); // what the writer holds so far is kept by the reallocation
        b.reserve(std::max(len + need, 2 * b.capacity()));
        return {b.data(), b.capacity()};
    }
    static void finish_buffer(void* t, std::size_t len) {
        static_cast<FormatBuffer*>(t)->set_size(len);
    }

    void* target_;
    Grow grow_;
    Finish finish_;
    char* data_;
    std::size_t len_;
    std::size_t cap_;
};

#if defined(__SSE2__)
// The lanes of v holding a byte a JSON string cannot take as it is (kJsonSpecial), as a bit
// mask: signed "< 0x20" also catches >= 0x80.
[[gnu::always_inline]] inline unsigned json_special_mask(__m128i v) {
    const __m128i special = _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                         _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                      _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
    return static_cast<unsigned>(_mm_movemask_epi8(special));
}

// The last 1 to 15 bytes of a run (rem of them at p), copied to o (o[0, rem) written) and
// checked in one SSE2 compare instead of a byte loop: the bytes are loaded as two overlapping
// words (three bytes for rem < 4) that never reach past p + rem, so that the lanes, in order,
// hold positions that never go down and cover all rem. Returns the position of the first byte
// that kJsonSpecial flags, or rem when there is none.
[[gnu::always_inline]] inline std::size_t copy_tail(char* o, const unsigned char* p,
                                                    std::size_t rem) {
    if (rem >= 8) { // lanes 0-7: p[0, 8); lanes 8-15: p[rem - 8, rem)
        const auto [lo, hi] = move_ends<std::uint64_t>(o, p, rem);
        const unsigned mask = json_special_mask(
            _mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo)));
        if (mask == 0) return rem;
        const auto k = static_cast<std::size_t>(__builtin_ctz(mask));
        return k < 8 ? k : rem - 16 + k;
    }
    if (rem >= 4) { // lanes 0-3: p[0, 4); lanes 4-7: p[rem - 4, rem)
        const auto [lo, hi] = move_ends<std::uint32_t>(o, p, rem);
        const unsigned mask = json_special_mask(_mm_cvtsi64_si128(static_cast<long long>(
                                  lo | static_cast<std::uint64_t>(hi) << 32))) &
                              0xFFu;
        if (mask == 0) return rem;
        const auto k = static_cast<std::size_t>(__builtin_ctz(mask));
        return k < 4 ? k : rem - 8 + k;
    }
    // lanes 0, 1, 2: p[0], p[rem / 2], p[rem - 1] (the same byte twice when rem < 3)
    const unsigned a = p[0], b = p[rem >> 1], c = p[rem - 1];
    o[0] = static_cast<char>(a);
    o[rem >> 1] = static_cast<char>(b);
    o[rem - 1] = static_cast<char>(c);
    const unsigned mask =
        json_special_mask(_mm_cvtsi32_si128(static_cast<int>(a | b << 8 | c << 16))) & 7u;
    if (mask == 0) return rem;
    const int k = __builtin_ctz(mask);
    return k == 0 ? 0 : k == 1 ? rem >> 1 : rem - 1;
}
#endif

// Writes s as the content of a JSON string literal at o (serde_json escaping: \" \\ \n \r \t;
// invalid UTF-8 and the C0 controls XML forbids become U+FFFD, so the output is always valid
// UTF-8 JSON whatever the input). Escapes [p, stop); a UTF-8 sequence that starts before `stop`
// is read up to `end` (`stop` is the end of a slice of a longer string). o must have room for
// escaped_room(stop - p) bytes (a byte becomes at most 3; plain runs are copied 16 bytes at a
// time, the last few bytes of a run as overlapping words). Returns the new end of the output;
// `pp` is left at or just past `stop`.
[[gnu::always_inline]] inline char* put_escaped(char* o, const unsigned char*& pp,
                                                const unsigned char* stop,
                                                const unsigned char* end) {
    const unsigned char* p = pp; // a local: the char stores below cannot alias it
    for (;;) {
#if defined(__SSE2__)
        // 16 bytes at a time, copied as they are scanned.
        while (stop - p >= 16) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(o), v);
            const unsigned mask = json_special_mask(v);
            if (mask != 0) {
                const int k = __builtin_ctz(mask);
                p += k;
                o += k;
                goto special;
            }
            p += 16;
            o += 16;
        }
        if (p < stop) {
            const std::size_t k = copy_tail(o, p, static_cast<std::size_t>(stop - p));
            p += k;
            o += k;
        }
#else
        while (p < stop && !kJsonSpecial[*p])
            *o++ = static_cast<char>(*p++);
#endif
        if (p >= stop) {
            pp = p;
            return o;
        }
#if defined(__SSE2__)
    special:
#endif
        const unsigned char c = *p;
        if (c >= 0x80) {
            const std::size_t n = text::utf8_sequence_length(
                {reinterpret_cast<const char*>(p), static_cast<std::size_t>(end - p)});
            if (n != 0) {
                for (std::size_t i = 0; i < n; ++i) // n <= 4
                    o[i] = static_cast<char>(p[i]);
                o += n;
                p += n;
            } else {
                std::memcpy(o, kReplacement.data(), 3);
                o += 3;
                ++p;
            }
            continue;
        }
        char e;
        switch (c) {
        case '"':
            e = '"';
            break;
        case '\\':
            e = '\\';
            break;
        case '\n':
            e = 'n';
            break;
        case '\r':
            e = 'r';
            break;
        case '\t':
            e = 't';
            break;
        default: // U+0000..U+001F other than TAB/LF/CR: not XML text
            std::memcpy(o, kReplacement.data(), 3);
            o += 3;
            ++p;
            continue;
        }
        o[0] = '\\';
        o[1] = e;
        o += 2;
        ++p;
    }
}

// The room put_escaped needs for n bytes.
constexpr std::size_t escaped_room(std::size_t n) {
    return 3 * n + 16;
}

// Escaped s between quotes at the cursor. Long strings go in slices, so that the room reserved
// stays a few times the slice, not the string.
inline void put_string(JsonOut& out, sv s) {
    constexpr std::size_t kSlice = 16384;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* const end = p + s.size();
    if (s.size() <= kSlice) [[likely]] {
        char* o = out.reserve(escaped_room(s.size()) + 2);
        *o++ = '"';
        o = put_escaped(o, p, end, end);
        *o++ = '"';
        out.commit(o);
        return;
    }
    out.put('"');
    while (p < end) {
        const auto* stop = end - p > static_cast<std::ptrdiff_t>(kSlice) ? p + kSlice : end;
        char* o = out.reserve(escaped_room(kSlice + 4));
        out.commit(put_escaped(o, p, stop, end));
    }
    out.put('"');
}

// Appends s as a JSON string literal (see put_escaped).
inline void append_string(std::string& out, sv s) {
    JsonOut o(out);
    put_string(o, s);
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

// The most put_utc writes.
inline constexpr std::size_t kUtcRoom = 40;

// Writes t at out (room for kUtcRoom bytes); returns the new end.
inline char* put_utc(const UtcTime& t, TimeStyle style, char* out) {
    std::int64_t days = t.secs / 86400;
    std::int64_t sod = t.secs % 86400;
    if (sod < 0) {
        sod += 86400;
        --days;
    }
    Civil c = civil_from_days(days);
    char* p = out;
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
    return p;
}

inline void append_utc(const UtcTime& t, TimeStyle style, std::string& out) {
    char buf[kUtcRoom];
    out.append(buf, static_cast<std::size_t>(put_utc(t, style, buf) - buf));
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

// Minimal JSON object writer managing commas, writing through a JsonOut cursor: `out` holds
// what was written once the Writer is gone (or after str()).
class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}
    explicit Writer(FormatBuffer& out) : out_(out) {}

    void begin_object() {
        out_.put('{');
        comma_ = false;
    }
    void end_object() {
        out_.put('}');
        comma_ = true;
    }
    void begin_array() {
        out_.put('[');
        comma_ = false;
    }
    void end_array() {
        out_.put(']');
        comma_ = true;
    }
    // Inlined for our literal keys (a memcpy of known size); other keys are escaped out of line,
    // so that the escaper's code does not keep key() and its callers from being inlined.
    [[gnu::always_inline]] void key(Key k) {
        if (k.plain) {
            // ,"name": written as it is
            char* p = out_.reserve(k.text.size() + 4);
            *p = ',';
            p += comma_;
            *p++ = '"';
            std::memcpy(p, k.text.data(), k.text.size());
            p += k.text.size();
            *p++ = '"';
            *p++ = ':';
            out_.commit(p);
            comma_ = false;
            return;
        }
        escaped_key(k.text);
    }
    void value(sv s) {
        if (comma_) out_.put(',');
        put_string(out_, s);
        comma_ = true;
    }
    template <typename T>
    void number(T n) {
        char* p = out_.reserve(24);
        *p = ',';
        p += comma_;
        auto [ptr, ec] = std::to_chars(p, p + 22, n);
        (void)ec;
        out_.commit(ptr);
        comma_ = true;
    }
    void time_field(Key k, std::chrono::system_clock::time_point tp) {
        key(k);
        char* p = out_.reserve(kUtcRoom + 2);
        *p++ = '"';
        p = put_utc(utc_of(tp), TimeStyle::Chrono, p);
        *p++ = '"';
        out_.commit(p);
        comma_ = true;
    }
    // Go's RFC3339Nano in UTC, as Winlogbeat writes times: "2022-12-14T16:06:51.0643605Z".
    void utc_field(Key k, const UtcTime& t) {
        key(k);
        char* p = out_.reserve(kUtcRoom + 2);
        *p++ = '"';
        p = put_utc(t, TimeStyle::GoNano, p);
        *p++ = '"';
        out_.commit(p);
        comma_ = true;
    }

    void field(Key k, sv v) {
        key(k);
        value(v);
    }
    void field_lf(Key k, sv v) { // CR LF written as LF
        key(k);
        out_.put('"');
        for (std::size_t cr = v.find("\r\n"); cr != sv::npos; cr = v.find("\r\n")) {
            put_escaped_slice(v.substr(0, cr));
            v.remove_prefix(cr + 1); // keep the LF
        }
        put_escaped_slice(v);
        out_.put('"');
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

    // The position of the cursor, and what was written from a position on (to edit in place).
    std::size_t size() const { return out_.size(); }
    std::span<char> written(std::size_t from) { return out_.written(from); }

private:
    static constexpr std::size_t kShort = 1024; // keys up to this long: escaped in one go

    [[gnu::noinline]] void escaped_key(sv text) {
        if (text.size() > kShort) [[unlikely]] {
            if (comma_) out_.put(',');
            put_string(out_, text);
            out_.put(':');
            comma_ = false;
            return;
        }
        char* p = out_.reserve(escaped_room(text.size()) + 4);
        *p = ',';
        p += comma_;
        *p++ = '"';
        const auto* s = reinterpret_cast<const unsigned char*>(text.data());
        const auto* e = s + text.size();
        p = put_escaped(p, s, e, e);
        *p++ = '"';
        *p++ = ':';
        out_.commit(p);
        comma_ = false;
    }

    // s escaped (no quotes), in slices.
    void put_escaped_slice(sv s) {
        constexpr std::size_t kSlice = 16384;
        const auto* p = reinterpret_cast<const unsigned char*>(s.data());
        const auto* const end = p + s.size();
        while (p < end) {
            const auto* stop = end - p > static_cast<std::ptrdiff_t>(kSlice) ? p + kSlice : end;
            char* o = out_.reserve(escaped_room(static_cast<std::size_t>(stop - p) + 4));
            out_.commit(put_escaped(o, p, stop, end));
        }
    }

    JsonOut out_;
    bool comma_ = false;
};

// The collector's metadata: the OpenWEC block of Json and Nxlog, the meta of RawJson.
void write_metadata_fields(Writer& w, const Metadata& md);

// The formatters into a FormatBuffer (BatchFormatter; the same output as into a std::string).
void format_raw(std::string_view xml, FormatBuffer& out);
void format_json(const Event& event, const Metadata& metadata, FormatBuffer& out);
void format_nxlog(const Event& event, const Metadata& metadata, FormatBuffer& out);
void format_raw_json(std::string_view xml, const Metadata& metadata, FormatBuffer& out);
void format_ecs(const Event& event, const Metadata& metadata, FormatBuffer& out);

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

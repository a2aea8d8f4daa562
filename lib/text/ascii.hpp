// ASCII case helpers for protocol tokens (header names, schemes, charsets, SQL keywords, hex
// UUIDs). Locale-independent: only A-Z and a-z change case, every other byte is left alone.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace wec::text {

constexpr char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr char ascii_upper(char c) noexcept {
    return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

// XML's white space (the S production: space, tab, CR, LF).
constexpr bool is_xml_space(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// `s` without the XML white space at its ends.
constexpr std::string_view trim_xml_space(std::string_view s) noexcept {
    while (!s.empty() && is_xml_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_xml_space(s.back()))
        s.remove_suffix(1);
    return s;
}

// Equal ignoring ASCII case.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

inline std::string to_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = ascii_lower(c);
    return out;
}

inline std::string to_upper(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = ascii_upper(c);
    return out;
}

} // namespace wec::text

// The JSON string escaping of lib/event written the plain way, one byte at a time (and CR LF → LF
// for Writer::field_lf): the oracle of the escaper's tests and of json_escape_fuzz.
#pragma once

#include "text/text.hpp"

#include <string>
#include <string_view>

namespace wec::event::testing {

// "…" with \" \\ \n \r \t escaped, other C0 controls and invalid UTF-8 as U+FFFD.
inline std::string reference_json_string(std::string_view s, bool crlf_as_lf = false) {
    std::string out = "\"";
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            std::size_t n = wec::text::utf8_sequence_length(s.substr(i));
            if (n == 0) {
                out += "\xEF\xBF\xBD";
                ++i;
            } else {
                out.append(s.substr(i, n));
                i += n;
            }
            continue;
        }
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            if (!(crlf_as_lf && i + 1 < s.size() && s[i + 1] == '\n')) out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            c < 0x20 ? out += "\xEF\xBF\xBD" : out += static_cast<char>(c);
        }
        ++i;
    }
    return out + "\"";
}

} // namespace wec::event::testing

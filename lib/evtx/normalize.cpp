// libevtx's XML of a record rewritten into the form Windows forwards (see evtx.hpp). A single
// pass over the string: tags are re-emitted, text is copied as is (libevtx has escaped it).
#include "evtx/evtx.hpp"
#include "evtx/native_internal.hpp"
#include "text/ascii.hpp"
#include "text/text.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <vector>

namespace wec::evtx {
namespace {

constexpr std::string_view kEventNamespace =
    "http://schemas.microsoft.com/win/2004/08/events/event";
constexpr std::size_t kMaxDepth = 256;

bool blank(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return text::is_xml_space(c) || c == '\0'; });
}

// C0 control characters other than TAB, LF and CR are not allowed in XML 1.0: U+FFFD instead
// (what the SOAP path would turn them into anyway).
void append_clean(std::string& out, std::string_view s) {
    for (char c : s) {
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r')
            out += "\xEF\xBF\xBD";
        else
            out += c;
    }
}

[[noreturn]] void fail(std::size_t at, const std::string& what) {
    throw FormatError("offset " + std::to_string(at) + ": " + what);
}

// "2016-07-08T18:12:51.681640800Z" -> "2016-07-08T18:12:51.6816408Z": a FILETIME has 100 ns
// steps, which libevtx prints with two more (always zero) digits than Windows.
void trim_time(std::string& v) {
    auto dot = v.rfind('.');
    if (dot == std::string::npos || v.size() != dot + 11 || v.back() != 'Z') return;
    for (std::size_t k = dot + 1; k < dot + 10; ++k)
        if (!std::isdigit(static_cast<unsigned char>(v[k]))) return;
    if (v[dot + 8] == '0' && v[dot + 9] == '0') v.erase(dot + 8, 2);
}

void lower_guid(std::string& v) {
    if (v.size() != 38 || v.front() != '{' || v.back() != '}') return;
    for (auto& c : v)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
    text::append_code_point(out, cp);
}

void unescape_to(std::string& out, std::string_view s) {
    out.clear();
    for (std::size_t i = 0; i < s.size();) {
        if (s[i] != '&') {
            out += s[i++];
            continue;
        }
        auto semi = s.find(';', i);
        if (semi == std::string_view::npos || semi - i > 10) {
            out += s[i++];
            continue;
        }
        auto ent = s.substr(i + 1, semi - i - 1);
        if (ent == "lt") {
            out += '<';
        } else if (ent == "gt") {
            out += '>';
        } else if (ent == "amp") {
            out += '&';
        } else if (ent == "quot") {
            out += '"';
        } else if (ent == "apos") {
            out += '\'';
        } else if (ent.size() > 1 && ent[0] == '#') {
            bool hex = ent[1] == 'x' || ent[1] == 'X';
            auto digits = ent.substr(hex ? 2 : 1);
            std::uint32_t cp = 0;
            bool ok = !digits.empty();
            for (char c : digits) {
                int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                        : hex && std::isxdigit(static_cast<unsigned char>(c))
                            ? std::tolower(static_cast<unsigned char>(c)) - 'a' + 10
                            : -1;
                if (d < 0 || cp > 0x10FFFF) {
                    ok = false;
                    break;
                }
                cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(d);
            }
            if (!ok) {
                out += s[i++];
                continue;
            }
            append_utf8(out, cp);
        } else {
            out += s[i++];
            continue;
        }
        i = semi + 1;
    }
}

} // namespace

std::string normalize_xml(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    std::vector<std::string_view> stack;
    std::size_t system_level = 0; // stack size with System on top; 0 = not inside System
    bool open = false;            // the last thing emitted is a start tag or content
    bool root_done = false;
    std::string_view pending; // text run, emitted or dropped at the next markup
    std::string value;
    std::size_t i = 0;

    auto flush_text = [&](bool before_end_tag) {
        if (pending.empty()) return;
        if (stack.empty()) {
            if (!blank(pending)) fail(i, "text outside the root element");
        } else if (!blank(pending) || (before_end_tag && open)) {
            append_clean(out, pending);
            open = true;
        }
        pending = {};
    };
    auto starts = [&](std::string_view s) { return in.substr(i, s.size()) == s; };

    while (i < in.size()) {
        if (in[i] != '<') {
            auto j = std::min(in.find('<', i), in.size());
            pending = in.substr(i, j - i);
            i = j;
            continue;
        }
        if (starts("<?") || starts("<!--")) { // declaration, PI or comment: dropped
            const std::string_view close = in[i + 1] == '?' ? "?>" : "-->";
            auto j = in.find(close, i);
            if (j == std::string_view::npos) fail(i, "unterminated markup");
            flush_text(false);
            i = j + close.size();
            continue;
        }
        if (starts("<![CDATA[")) {
            auto j = in.find("]]>", i);
            if (j == std::string_view::npos) fail(i, "unterminated CDATA section");
            if (stack.empty()) fail(i, "CDATA outside the root element");
            flush_text(false);
            append_clean(out, in.substr(i, j + 3 - i));
            open = true;
            i = j + 3;
            continue;
        }
        if (starts("</")) {
            std::size_t at = i;
            i += 2;
            auto name_start = i;
            while (i < in.size() && detail::name_byte(in[i]))
                ++i;
            auto name = in.substr(name_start, i - name_start);
            while (i < in.size() && text::is_xml_space(in[i]))
                ++i;
            if (i >= in.size() || in[i] != '>') fail(at, "unterminated end tag");
            ++i;
            if (stack.empty() || stack.back() != name)
                fail(at, "end tag </" + std::string(name) + "> does not close " +
                             (stack.empty() ? std::string("any element")
                                            : "<" + std::string(stack.back()) + ">"));
            flush_text(true);
            out += "</";
            out.append(name);
            out += '>';
            if (stack.size() == system_level) system_level = 0;
            stack.pop_back();
            if (stack.empty()) root_done = true;
            open = false;
            continue;
        }
        // A start tag.
        std::size_t at = i;
        ++i;
        auto name_start = i;
        while (i < in.size() && detail::name_byte(in[i]))
            ++i;
        auto name = in.substr(name_start, i - name_start);
        if (name.empty()) fail(at, "'<' without an element name");
        if (stack.empty() && root_done) fail(at, "a second root element");
        if (stack.size() >= kMaxDepth) fail(at, "elements nested too deep");
        flush_text(false);
        const bool root = stack.empty();
        const bool in_system = system_level != 0;
        out += '<';
        out.append(name);
        bool has_namespace = false;
        bool self_closing = false;
        for (;;) {
            while (i < in.size() && text::is_xml_space(in[i]))
                ++i;
            if (i >= in.size()) fail(at, "unterminated start tag <" + std::string(name) + ">");
            if (in[i] == '>') {
                ++i;
                break;
            }
            if (in[i] == '/') {
                if (i + 1 >= in.size() || in[i + 1] != '>') fail(i, "'/' inside a start tag");
                i += 2;
                self_closing = true;
                break;
            }
            auto attr_start = i;
            while (i < in.size() && detail::name_byte(in[i]))
                ++i;
            auto attr = in.substr(attr_start, i - attr_start);
            if (attr.empty()) fail(i, "bad attribute in <" + std::string(name) + ">");
            while (i < in.size() && text::is_xml_space(in[i]))
                ++i;
            if (i >= in.size() || in[i] != '=') fail(i, "attribute without '='");
            ++i;
            while (i < in.size() && text::is_xml_space(in[i]))
                ++i;
            if (i >= in.size() || (in[i] != '"' && in[i] != '\'')) fail(i, "unquoted attribute");
            const char quote = in[i++];
            auto end = in.find(quote, i);
            if (end == std::string_view::npos) fail(i, "unterminated attribute value");
            auto raw = in.substr(i, end - i);
            i = end + 1;
            value.clear();
            for (char c : raw) {
                if (c == '\'')
                    value += "&apos;";
                else if (c == '<')
                    fail(i, "'<' in an attribute value");
                else
                    append_clean(value, std::string_view(&c, 1));
            }
            if (in_system && stack.size() == system_level) {
                if ((name == "Provider" && attr == "Guid") ||
                    (name == "Correlation" &&
                     (attr == "ActivityID" || attr == "RelatedActivityID")))
                    lower_guid(value);
                else if (name == "TimeCreated" && attr == "SystemTime")
                    trim_time(value);
            }
            if (root && attr == "xmlns") has_namespace = true;
            out += ' ';
            out.append(attr);
            out += "='";
            out += value;
            out += '\'';
        }
        if (root && !has_namespace) {
            out += " xmlns='";
            out.append(kEventNamespace);
            out += '\'';
        }
        if (self_closing) {
            if (in_system) {
                out += "/>";
            } else {
                out += "></";
                out.append(name);
                out += '>';
            }
            if (root) root_done = true;
            open = false;
        } else {
            out += '>';
            stack.push_back(name);
            if (stack.size() == 2 && name == "System") system_level = 2;
            open = true;
        }
    }
    flush_text(false);
    if (!stack.empty()) fail(in.size(), "unterminated element <" + std::string(stack.back()) + ">");
    if (!root_done) fail(in.size(), "no element");
    return out;
}

namespace detail {

void first_value_to(std::string& out, std::string_view xml, std::string_view name,
                    std::string_view attribute) {
    out.clear();
    for (std::size_t pos = 0;;) {
        pos = xml.find(name, pos);
        if (pos == std::string_view::npos) return;
        const std::size_t after = pos + name.size();
        if (pos == 0 || xml[pos - 1] != '<' || after >= xml.size() ||
            !(text::is_xml_space(xml[after]) || xml[after] == '>' || xml[after] == '/')) {
            pos = after;
            continue;
        }
        auto tag_end = xml.find('>', after);
        if (tag_end == std::string_view::npos) return;
        if (attribute.empty()) {
            if (xml[tag_end - 1] == '/') return;
            auto close = xml.find('<', tag_end + 1);
            if (close == std::string_view::npos) return;
            return unescape_to(out, xml.substr(tag_end + 1, close - tag_end - 1));
        }
        auto tag = xml.substr(after, tag_end - after);
        for (std::size_t a = 0;;) {
            a = tag.find(attribute, a);
            if (a == std::string_view::npos) return;
            const std::size_t eq = a + attribute.size();
            if (a > 0 && text::is_xml_space(tag[a - 1]) && eq + 1 < tag.size() && tag[eq] == '=' &&
                (tag[eq + 1] == '\'' || tag[eq + 1] == '"')) {
                auto end = tag.find(tag[eq + 1], eq + 2);
                if (end == std::string_view::npos) return;
                return unescape_to(out, tag.substr(eq + 2, end - eq - 2));
            }
            a = eq;
        }
    }
}

} // namespace detail

std::string first_value(std::string_view xml, std::string_view name, std::string_view attribute) {
    std::string out;
    detail::first_value_to(out, xml, name, attribute);
    return out;
}

} // namespace wec::evtx

#include "http/http.hpp"

#include "text/ascii.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace wec::http {
namespace {

std::string printable(std::string_view s, std::size_t max = 60) {
    std::string out;
    for (char c : s.substr(0, max)) {
        auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) {
            out += c;
        } else {
            static const char* hex = "0123456789abcdef";
            out += "\\x";
            out += hex[u >> 4];
            out += hex[u & 15];
        }
    }
    if (s.size() > max) out += "...";
    return out;
}

std::optional<std::uint64_t> parse_decimal(std::string_view s) {
    if (s.empty()) return std::nullopt;
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

// Reads the bytes of one body with positions, for error messages with offsets.
class Cursor {
public:
    explicit Cursor(std::span<const std::uint8_t> body)
        : text_(reinterpret_cast<const char*>(body.data()), body.size()) {}

    std::size_t pos() const { return pos_; }
    std::size_t remaining() const { return text_.size() - pos_; }
    std::string_view rest() const { return text_.substr(pos_); }

    [[noreturn]] void fail(const std::string& what, std::size_t at) const {
        throw FramingError("multipart/encrypted: " + what + " at offset " + std::to_string(at) +
                           " (body " + std::to_string(text_.size()) + " bytes)");
    }

    void expect(std::string_view literal, std::string_view what) {
        if (rest().substr(0, literal.size()) != literal) {
            fail("expected " + std::string(what) + " '" + printable(literal) + "', found '" +
                     printable(rest().substr(0, literal.size())) + "'",
                 pos_);
        }
        pos_ += literal.size();
    }

    // One CRLF-terminated line (without the CRLF); a part header line is short, so bound it.
    std::string_view line(std::string_view what) {
        constexpr std::size_t kMaxLine = 4096;
        std::string_view window = rest().substr(0, kMaxLine + 2);
        auto end = window.find("\r\n");
        if (end == std::string_view::npos)
            fail("unterminated " + std::string(what) + " line", pos_);
        std::string_view l = window.substr(0, end);
        pos_ += end + 2;
        return l;
    }

    void skip(std::size_t n) { pos_ += n; }

private:
    std::string_view text_;
    std::size_t pos_ = 0;
};

struct PartHeader {
    std::string_view name, value;
    bool tab = false;
};

PartHeader split_header(Cursor& c, std::string_view line, std::size_t line_start) {
    PartHeader h;
    if (!line.empty() && (line[0] == '\t' || line[0] == ' ')) {
        h.tab = line[0] == '\t';
        line.remove_prefix(1);
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
        c.fail("part header line without 'Name:' ('" + printable(line) + "')", line_start);
    }
    h.name = trim(line.substr(0, colon));
    h.value = trim(line.substr(colon + 1));
    return h;
}

std::string canonical_protocol(std::string_view p) {
    if (iequals(p, kKerberosProtocol)) return std::string(kKerberosProtocol);
    if (iequals(p, kSpnegoProtocol)) return std::string(kSpnegoProtocol);
    return {};
}

} // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
    return text::iequals(a, b);
}

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

std::optional<std::string_view> MediaType::param(std::string_view name) const& {
    for (const auto& [k, v] : params) {
        if (iequals(k, name)) return std::string_view(v);
    }
    return std::nullopt;
}

MediaType parse_media_type(std::string_view value) {
    MediaType mt;
    std::size_t i = value.find(';');
    mt.type = text::to_lower(trim(value.substr(0, i)));
    if (mt.type.empty()) {
        throw FramingError("Content-Type: empty media type in '" + printable(value) + "'");
    }
    while (i != std::string_view::npos && i < value.size()) {
        ++i; // past ';'
        while (i < value.size() && (value[i] == ' ' || value[i] == '\t'))
            ++i;
        std::size_t name_start = i;
        while (i < value.size() && value[i] != '=' && value[i] != ';')
            ++i;
        std::string name = text::to_lower(trim(value.substr(name_start, i - name_start)));
        if (i >= value.size() || value[i] == ';') {
            if (i >= value.size()) break;
            continue; // parameter without value: ignored
        }
        ++i; // past '='
        while (i < value.size() && (value[i] == ' ' || value[i] == '\t'))
            ++i;
        std::string v;
        if (i < value.size() && value[i] == '"') {
            std::size_t quote_at = i++;
            bool closed = false;
            while (i < value.size()) {
                char ch = value[i++];
                if (ch == '\\' && i < value.size()) {
                    v += value[i++];
                } else if (ch == '"') {
                    closed = true;
                    break;
                } else {
                    v += ch;
                }
            }
            if (!closed) {
                throw FramingError("Content-Type: unterminated quoted value of parameter '" + name +
                                   "' starting at offset " + std::to_string(quote_at));
            }
            while (i < value.size() && value[i] != ';')
                ++i;
        } else {
            std::size_t vs = i;
            while (i < value.size() && value[i] != ';')
                ++i;
            v = std::string(trim(value.substr(vs, i - vs)));
        }
        if (!name.empty()) mt.params.emplace_back(std::move(name), std::move(v));
    }
    return mt;
}

std::string OriginalContent::content_type() const {
    return charset.empty() ? type : type + ";charset=" + charset;
}

OriginalContent parse_original_content(std::string_view value) {
    OriginalContent oc;
    bool have_type = false;
    std::size_t start = 0;
    while (start <= value.size()) {
        std::size_t end = value.find(';', start);
        if (end == std::string_view::npos) end = value.size();
        std::string_view item = trim(value.substr(start, end - start));
        auto eq = item.find('=');
        if (eq != std::string_view::npos) {
            std::string_view k = trim(item.substr(0, eq));
            std::string_view v = trim(item.substr(eq + 1));
            if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
            if (iequals(k, "type")) {
                oc.type = std::string(v);
                have_type = true;
            } else if (iequals(k, "charset")) {
                oc.charset = std::string(v);
            } else if (iequals(k, "length")) {
                oc.length = parse_decimal(v);
                if (!oc.length) {
                    throw FramingError("OriginalContent: Length '" + printable(v) +
                                       "' is not a decimal number");
                }
            }
        }
        start = end + 1;
    }
    if (!have_type || oc.type.empty()) {
        throw FramingError("OriginalContent: no type= in '" + printable(value) + "'");
    }
    return oc;
}

bool is_multipart_encrypted(std::string_view content_type) {
    auto semi = content_type.find(';');
    return iequals(trim(content_type.substr(0, semi)), "multipart/encrypted");
}

EncryptedPart parse_encrypted(std::span<const std::uint8_t> body, std::string_view content_type) {
    MediaType mt = parse_media_type(content_type);
    if (!mt.is("multipart/encrypted")) {
        throw FramingError("multipart/encrypted: Content-Type is '" + printable(mt.type) +
                           "', not multipart/encrypted");
    }
    auto boundary = mt.boundary();
    if (!boundary || boundary->empty()) {
        throw FramingError("multipart/encrypted: Content-Type '" + printable(content_type, 200) +
                           "' has no boundary parameter");
    }
    EncryptedPart part;
    part.boundary = std::string(*boundary);
    const std::string delimiter = "--" + part.boundary;

    Cursor c(body);
    c.expect(delimiter + "\r\n", "opening boundary");

    // First part: Content-Type (the protocol) and OriginalContent, until the next delimiter.
    std::optional<std::string_view> part_type, original;
    bool first_line = true;
    for (;;) {
        if (c.rest().substr(0, delimiter.size()) == delimiter) break;
        std::size_t line_start = c.pos();
        std::string_view l = c.line("part header");
        if (l.empty())
            c.fail("blank line inside the first part (no body expected there)", line_start);
        PartHeader h = split_header(c, l, line_start);
        if (first_line) part.tab_before_headers = h.tab;
        first_line = false;
        if (iequals(h.name, "Content-Type")) {
            part_type = h.value;
        } else if (iequals(h.name, "OriginalContent")) {
            original = h.value;
        }
    }
    if (!part_type) c.fail("first part has no Content-Type header", c.pos());
    if (!original) c.fail("first part has no OriginalContent header", c.pos());
    part.protocol = canonical_protocol(*part_type);
    if (part.protocol.empty()) {
        c.fail("unknown protocol '" + printable(*part_type) + "' in first part", 0);
    }
    if (auto p = mt.protocol(); p && !iequals(*p, part.protocol)) {
        throw FramingError("multipart/encrypted: Content-Type protocol '" + printable(*p) +
                           "' differs from the part's '" + part.protocol + "'");
    }
    OriginalContent oc;
    try {
        oc = parse_original_content(*original);
    } catch (const FramingError& e) {
        c.fail(e.what(), 0);
    }
    if (!oc.length) c.fail("OriginalContent has no Length", 0);
    part.original_type = oc.content_type();
    part.length = *oc.length;

    c.expect(delimiter + "\r\n", "second boundary");
    std::size_t line_start = c.pos();
    std::string_view l = c.line("second part header");
    PartHeader h = split_header(c, l, line_start);
    if (!iequals(h.name, "Content-Type") || !iequals(h.value, "application/octet-stream")) {
        c.fail("expected 'Content-Type: application/octet-stream', found '" + printable(l) + "'",
               line_start);
    }

    // <uint32 LE L><L header bytes><ciphertext>--boundary--[\r\n]
    std::size_t len_at = c.pos();
    if (c.remaining() < 4) c.fail("body ends inside the 4-byte header length", len_at);
    const std::uint8_t* p = body.data() + len_at;
    std::uint32_t hl = static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
                       (static_cast<std::uint32_t>(p[2]) << 16) |
                       (static_cast<std::uint32_t>(p[3]) << 24);
    c.skip(4);
    if (hl > c.remaining()) {
        c.fail("header length " + std::to_string(hl) + " exceeds the " +
                   std::to_string(c.remaining()) + " bytes left",
               len_at);
    }
    std::size_t header_at = c.pos();
    std::size_t data_at = header_at + hl;

    const std::string closing = delimiter + "--";
    std::string_view all(reinterpret_cast<const char*>(body.data()), body.size());
    std::string_view tail = all;
    if (tail.size() >= 2 && tail.substr(tail.size() - 2) == "\r\n") tail.remove_suffix(2);
    if (tail.size() < closing.size() || tail.substr(tail.size() - closing.size()) != closing) {
        c.fail("no closing boundary '" + printable(closing) + "' at the end of the body",
               tail.size() >= closing.size() ? tail.size() - closing.size() : 0);
    }
    std::size_t close_at = tail.size() - closing.size();
    if (close_at < data_at) {
        c.fail("closing boundary overlaps the " + std::to_string(hl) + "-byte token header",
               close_at);
    }
    part.header = body.subspan(header_at, hl);
    part.ciphertext = body.subspan(data_at, close_at - data_at);
    return part;
}

EncryptedFrame encrypted_frame(std::string_view protocol, std::string_view original_type,
                               std::uint64_t plaintext_length, bool tab_form,
                               std::string_view boundary) {
    std::string proto = canonical_protocol(protocol);
    if (proto.empty()) {
        throw FramingError("build_encrypted: unknown protocol '" + printable(protocol) + "'");
    }
    if (boundary.empty()) throw FramingError("build_encrypted: empty boundary");
    const std::string_view tab = tab_form ? "\t" : "";
    EncryptedFrame f;
    std::string& head = f.head;
    head.reserve(256);
    head.append("--").append(boundary).append("\r\n");
    head.append(tab).append("Content-Type: ").append(proto).append("\r\n");
    head.append(tab).append("OriginalContent: type=").append(original_type);
    head.append(";Length=").append(std::to_string(plaintext_length)).append("\r\n");
    head.append("--").append(boundary).append("\r\n");
    head.append(tab).append("Content-Type: application/octet-stream\r\n");
    f.tail = "--" + std::string(boundary) + "--\r\n";
    f.content_type =
        "multipart/encrypted;protocol=\"" + proto + "\";boundary=\"" + std::string(boundary) + "\"";
    return f;
}

EncryptedBody build_encrypted(std::string_view protocol, std::string_view original_type,
                              std::uint64_t plaintext_length, std::span<const std::uint8_t> header,
                              std::span<const std::uint8_t> ciphertext, bool tab_form,
                              std::string_view boundary) {
    auto frame = encrypted_frame(protocol, original_type, plaintext_length, tab_form, boundary);
    if (header.size() > 0xffffffffu) throw FramingError("build_encrypted: token header too large");
    EncryptedBody out;
    out.body.reserve(frame.head.size() + 4 + header.size() + ciphertext.size() + frame.tail.size());
    out.body.insert(out.body.end(), frame.head.begin(), frame.head.end());
    auto hl = static_cast<std::uint32_t>(header.size());
    for (int i = 0; i < 4; ++i)
        out.body.push_back(static_cast<std::uint8_t>(hl >> (8 * i)));
    out.body.insert(out.body.end(), header.begin(), header.end());
    out.body.insert(out.body.end(), ciphertext.begin(), ciphertext.end());
    out.body.insert(out.body.end(), frame.tail.begin(), frame.tail.end());
    out.content_type = std::move(frame.content_type);
    return out;
}

} // namespace wec::http

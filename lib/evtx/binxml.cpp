// Binary XML rendering (see binxml_internal.hpp). The format, as the EVTX format documentation
// describes it: a token stream (elements, attributes, text, substitutions, template instances)
// whose names live in the chunk as UTF-16 strings; a template instance points at a definition
// in the same chunk (written in full the first time it is used) and carries the values its
// substitutions take. What is written is what normalize_xml makes of libevtx's rendering:
// one line, attributes in single quotes, empty elements <X/> inside System and <X></X> outside,
// text escaped the way libevtx escapes it, whitespace-only text kept only where libevtx's
// pretty-printing keeps it (alone in its element).
#include "common/bytes.hpp"
#include "evtx/binxml_internal.hpp"
#include "evtx/native_internal.hpp"
#include "text/ascii.hpp"
#include "text/text.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

namespace wec::evtx::detail {
namespace {

constexpr std::string_view kEventNamespace =
    "http://schemas.microsoft.com/win/2004/08/events/event";
constexpr std::size_t kMaxDepth = 256;          // as normalize_xml
constexpr int kMaxNesting = 64;                 // template instances / embedded fragments
constexpr std::size_t kMaxXmlBytes = 16u << 20; // as the libevtx path
constexpr std::uint64_t kMaxSteps = 1u << 22;   // tokens per record (templates loop otherwise)
constexpr std::size_t kNameSlots = 1u << 16;    // one per chunk offset

// A UTF-16 unit at p[k] as a code point: a high surrogate takes the next unit with it, paired
// or not (U+FFFD when not, as libevtx's conversion does); a lone surrogate is U+FFFD.
std::uint32_t surrogates(std::uint32_t cp, const std::uint8_t* p, std::size_t& k,
                         std::size_t units) {
    if (cp < 0xD800 || cp > 0xDFFF) return cp;
    if (cp > 0xDBFF || k + 1 >= units) return 0xFFFD;
    const std::uint32_t lo = load_le16(p + 2 * (++k));
    if (lo < 0xDC00 || lo > 0xDFFF) return 0xFFFD;
    return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
}

// Windows-1252's 0x80..0x9F (U+FFFD where it has no character).
constexpr std::uint16_t kWindows1252[32] = {
    0x20AC, 0xFFFD, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0xFFFD, 0x017D, 0xFFFD, 0xFFFD, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0xFFFD, 0x017E, 0x0178};

// Whether a name reads back as itself from libevtx's XML text through normalize_xml (which
// also takes "<?", "<!--" and "<![CDATA[" for other markup); otherwise the record is damaged
// and refused (the reference would render another name, or nothing).
bool xml_name(std::string_view name) {
    return (name.empty() || (name.front() != '?' && name.front() != '!')) &&
           std::all_of(name.begin(), name.end(), name_byte);
}

// Days since 1970-01-01 to a civil date (proleptic Gregorian).
void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = static_cast<std::int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
}

// Appends `v` in decimal, at least `width` digits.
char* digits(char* p, std::uint64_t v, int width) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < width)
        tmp[n++] = '0';
    while (n)
        *p++ = tmp[--n];
    return p;
}

char* hex(char* p, std::uint64_t v, int width, bool upper = false) {
    const char* kDigits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (int k = width - 1; k >= 0; --k)
        *p++ = kDigits[(v >> (4 * k)) & 15];
    return p;
}

} // namespace

struct Renderer::Cursor {
    std::uint32_t pos;
    std::uint32_t end;
};

Renderer::Renderer() : name_slots_(kNameSlots) {}

void Renderer::begin_chunk(const std::uint8_t* chunk, std::size_t size) {
    chunk_ = chunk;
    chunk_size_ = std::min(size, kNameSlots);
    names_.clear();
    if (++generation_ == 0) { // wrapped: forget every slot
        std::fill(name_slots_.begin(), name_slots_.end(), Name{});
        generation_ = 1;
    }
}

void Renderer::fail(std::uint32_t at, const char* what) const {
    throw BinXmlError("offset " + std::to_string(at) + ": " + what);
}

void Renderer::render(std::uint32_t begin, std::uint32_t end, std::string& out) {
    out.clear();
    out_ = &out;
    values_.clear();
    stack_.clear();
    open_ = false;
    root_done_ = false;
    system_open_ = false;
    in_run_ = false;
    in_attribute_ = false;
    in_start_tag_ = false;
    raw_ = false;
    escape_ = true;
    root_has_xmlns_ = false;
    steps_ = 0;
    if (end > chunk_size_ || begin > end) fail(begin, "record outside its chunk");
    Cursor c{begin, end};
    fragment(c, 0, 0, 0);
    // The record's fragment is followed by its end-of-fragment token.
    if (c.pos < c.end && chunk_[c.pos] != 0x00) fail(c.pos, "no end of fragment after the event");
    finish_text(false, c.pos);
    if (!stack_.empty()) fail(c.pos, "unterminated element");
    if (!root_done_ || out.empty()) fail(c.pos, "no element");
}

void Renderer::fragment(Cursor& c, std::size_t base, std::size_t count, int depth) {
    if (depth > kMaxNesting) fail(c.pos, "templates nested too deep");
    auto need = [&](std::uint32_t n) {
        if (c.end - c.pos < n) fail(c.pos, "binary XML cut short");
    };
    // A fragment is a fragment header (optional) and one element or one template instance (what
    // follows is not looked at here, as libevtx does not look at it).
    need(1);
    if (chunk_[c.pos] == 0x0f) {
        need(5);
        c.pos += 4;
    }
    if (const std::uint8_t first = chunk_[c.pos]; first != 0x0c && first != 0x01 && first != 0x41)
        fail(c.pos, "a fragment that is neither an element nor a template instance");
    const std::size_t base_depth = stack_.size();
    while (c.pos < c.end) {
        // An element whose data ends here without an end tag ends here (as libevtx reads it).
        while (stack_.size() > base_depth && !in_start_tag_ && stack_.back().data_end == c.pos) {
            end_element();
            if (stack_.size() == base_depth) return;
        }
        if (++steps_ > kMaxSteps) fail(c.pos, "binary XML expands without bound");
        if (out_->size() > kMaxXmlBytes) fail(c.pos, "the record's XML exceeds 16 MiB");
        const std::uint32_t at = c.pos;
        token_at_ = at;
        const std::uint8_t token = chunk_[c.pos++];
        switch (token) {
        case 0x00: // end of fragment
            return;
        case 0x01:
        case 0x41:
            finish_attribute();
            start_element(c, token == 0x41);
            break;
        case 0x02:
        case 0x03:
            if (stack_.empty() || !in_start_tag_) fail(at, "close of a start tag outside one");
            if (stack_.back().attributes_end != 0 && stack_.back().attributes_end != at)
                fail(at, "attribute list size does not match");
            if (token == 0x03 && stack_.back().data_end != c.pos)
                fail(at, "element data size does not match");
            finish_attribute();
            close_start(token == 0x03);
            if (token == 0x03 && stack_.size() == base_depth) return;
            break;
        case 0x04:
            if (stack_.empty() || in_start_tag_) fail(at, "end tag outside an element");
            if (stack_.back().data_end != c.pos) fail(at, "element data size does not match");
            end_element();
            if (stack_.size() == base_depth) return;
            break;
        case 0x05:
        case 0x45: {
            need(3);
            if (chunk_[c.pos] != 0x01) fail(at, "value text that is not a string");
            const std::uint32_t units = load_le16(chunk_ + c.pos + 1);
            c.pos += 3;
            need(units * 2);
            if (in_attribute_)
                attribute_has_value_ = true;
            else if (in_start_tag_)
                fail(at, "text inside a start tag");
            else
                content_start();
            escape_ = false;
            utf16(chunk_ + c.pos, units, at);
            escape_ = true;
            c.pos += units * 2;
            break;
        }
        case 0x06:
        case 0x46:
            if (stack_.empty() || !in_start_tag_) fail(at, "attribute outside a start tag");
            attribute(c);
            break;
        case 0x07:
        case 0x47: {
            need(2);
            const std::uint32_t units = load_le16(chunk_ + c.pos);
            c.pos += 2;
            need(units * 2);
            if (in_start_tag_ || stack_.empty()) fail(at, "CDATA outside an element");
            finish_text(false, at);
            text_in_content(at);
            content_start();
            in_run_ = false;
            out_->append("<![CDATA[");
            raw_ = true;
            utf16(chunk_ + c.pos, units, at);
            raw_ = false;
            out_->append("]]>");
            open_ = true;
            c.pos += units * 2;
            break;
        }
        case 0x08:
        case 0x48: {
            need(2);
            const std::uint32_t v = load_le16(chunk_ + c.pos);
            c.pos += 2;
            if (in_attribute_)
                attribute_has_value_ = true;
            else if (in_start_tag_)
                fail(at, "character reference inside a start tag");
            else
                content_start();
            char buffer[16] = "&#";
            char* p = digits(buffer + 2, v, 1);
            *p++ = ';';
            put_ascii(std::string_view(buffer, static_cast<std::size_t>(p - buffer)));
            break;
        }
        case 0x09:
        case 0x49: {
            need(4);
            const std::uint32_t offset = load_le32(chunk_ + c.pos);
            c.pos += 4;
            std::uint32_t len = 0;
            const auto name = name_ref(c, offset, len);
            if (in_attribute_)
                attribute_has_value_ = true;
            else if (in_start_tag_)
                fail(at, "entity reference inside a start tag");
            else
                content_start();
            put_ascii("&");
            put_ascii(std::string_view(names_).substr(name, len));
            put_ascii(";");
            break;
        }
        case 0x0a: { // processing instruction: dropped (as normalize_xml drops it)
            need(4);
            const std::uint32_t offset = load_le32(chunk_ + c.pos);
            c.pos += 4;
            std::uint32_t len = 0;
            name_ref(c, offset, len);
            finish_text(false, at);
            break;
        }
        case 0x0b: {
            need(2);
            const std::uint32_t units = load_le16(chunk_ + c.pos);
            c.pos += 2;
            need(units * 2);
            c.pos += units * 2;
            break;
        }
        case 0x0c:
            template_instance(c, depth);
            if (stack_.size() == base_depth) return;
            break;
        case 0x0d:
        case 0x0e:
            substitution(c, base, count, depth);
            break;
        default: // (a fragment header too: only at the start of a fragment)
            fail(at, "unknown binary XML token");
        }
    }
}

std::uint32_t Renderer::name_ref(Cursor& c, std::uint32_t offset, std::uint32_t& len) {
    // A name is written where it is first used, later uses point back at it.
    if (offset > c.pos) fail(c.pos, "name offset points forward");
    if (offset == c.pos) { // written here: skip it
        if (c.end - c.pos < 8) fail(c.pos, "name cut short");
        const std::uint32_t units = load_le16(chunk_ + c.pos + 6);
        const std::uint32_t size = 8 + units * 2 + 2;
        if (c.end - c.pos < size) fail(c.pos, "name cut short");
        c.pos += size;
    }
    return name_at(offset, len, c.pos);
}

std::uint32_t Renderer::name_at(std::uint32_t offset, std::uint32_t& len, std::uint32_t at) {
    if (offset >= chunk_size_ || chunk_size_ - offset < 8)
        fail(at, "name offset outside the chunk");
    Name& slot = name_slots_[offset];
    if (slot.generation == generation_) {
        len = slot.len;
        return slot.pos;
    }
    // The name's characters and its terminator, converted up to the first NUL (as libevtx
    // converts them: a damaged terminator shows).
    const std::uint32_t units = load_le16(chunk_ + offset + 6) + 1u;
    if (chunk_size_ - offset - 8 < units * 2u) fail(at, "name outside the chunk");
    const auto pos = static_cast<std::uint32_t>(names_.size());
    const std::uint8_t* p = chunk_ + offset + 8;
    for (std::size_t k = 0; k < units; ++k) {
        std::uint32_t cp = load_le16(p + 2 * k);
        if (cp == 0) break;
        cp = surrogates(cp, p, k, units);
        text::append_code_point(names_, cp);
    }
    if (!xml_name(std::string_view(names_).substr(pos))) {
        names_.resize(pos);
        fail(at, "a name that is not an XML name");
    }
    slot = Name{generation_, pos, static_cast<std::uint32_t>(names_.size() - pos)};
    len = slot.len;
    return pos;
}

void Renderer::start_element(Cursor& c, bool has_attributes) {
    const std::uint32_t at = c.pos - 1;
    // Dependency identifier (2), data size (4), name offset (4), the name when written here,
    // the size of the attribute list (4) when there is one.
    if (c.end - c.pos < 10) fail(at, "element cut short");
    const std::uint32_t data_size = load_le32(chunk_ + c.pos + 2);
    const std::uint32_t offset = load_le32(chunk_ + c.pos + 6);
    c.pos += 10;
    // The element's data (from its name offset to past its end tag) and its attribute list
    // must end where their sizes say (libevtx refuses the record otherwise).
    if (data_size > c.end - (c.pos - 4)) fail(at, "element data size exceeds the fragment");
    const std::uint32_t data_end = c.pos - 4 + data_size;
    std::uint32_t len = 0;
    const auto name = name_ref(c, offset, len);
    std::uint32_t attributes_end = 0;
    if (has_attributes) {
        if (c.end - c.pos < 4) fail(at, "element cut short");
        const std::uint32_t list_size = load_le32(chunk_ + c.pos);
        c.pos += 4;
        if (list_size > c.end - c.pos) fail(at, "attribute list exceeds the fragment");
        attributes_end = c.pos + list_size;
    }
    if (len == 0) fail(at, "element without a name");
    if (stack_.empty() && root_done_) fail(at, "a second root element");
    if (stack_.size() >= kMaxDepth) fail(at, "elements nested too deep");
    if (in_start_tag_) fail(at, "element inside a start tag");
    finish_text(false, at);
    if (!stack_.empty()) {
        if (stack_.back().has_text) fail(at, "an element after text in the same element");
        stack_.back().has_child = true;
    }
    if (!stack_.empty() && stack_.back().pending) {
        *out_ += '>';
        stack_.back().pending = false;
    }
    Element e{};
    e.name = name;
    e.name_len = len;
    e.tag_start = out_->size();
    e.in_system = system_open_;
    e.system = stack_.size() == 1 && std::string_view(names_).substr(name, len) == "System";
    e.open_before = open_;
    e.pending = true;
    e.data_end = data_end;
    e.attributes_end = attributes_end;
    *out_ += '<';
    out_->append(names_, name, len);
    stack_.push_back(e);
    if (e.system) system_open_ = true;
    in_start_tag_ = true;
}

void Renderer::attribute(Cursor& c) {
    const std::uint32_t at = c.pos - 1;
    finish_attribute();
    if (c.end - c.pos < 4) fail(at, "attribute cut short");
    const std::uint32_t offset = load_le32(chunk_ + c.pos);
    c.pos += 4;
    std::uint32_t len = 0;
    const auto name = name_ref(c, offset, len);
    if (len == 0) fail(at, "attribute without a name");
    const std::string_view attr = std::string_view(names_).substr(name, len);
    attribute_start_ = out_->size();
    *out_ += ' ';
    out_->append(attr);
    out_->append("='");
    attribute_value_ = out_->size();
    in_attribute_ = true;
    attribute_has_value_ = false;
    attribute_special_ = 0;
    attribute_xmlns_ = stack_.size() == 1 && attr == "xmlns";
    if (stack_.size() >= 2 && stack_[stack_.size() - 2].system) {
        const Element& e = stack_.back();
        const std::string_view element = std::string_view(names_).substr(e.name, e.name_len);
        if ((element == "Provider" && attr == "Guid") ||
            (element == "Correlation" && (attr == "ActivityID" || attr == "RelatedActivityID")))
            attribute_special_ = 1;
        else if (element == "TimeCreated" && attr == "SystemTime")
            attribute_special_ = 2;
    }
}

void Renderer::finish_attribute() {
    if (!in_attribute_) return;
    in_attribute_ = false;
    std::string& out = *out_;
    if (!attribute_has_value_) { // nothing substituted: the attribute is left out
        out.resize(attribute_start_);
        return;
    }
    const std::size_t size = out.size() - attribute_value_;
    char* v = out.data() + attribute_value_;
    if (attribute_special_ == 1 && size == 38 && v[0] == '{' && v[37] == '}') {
        for (std::size_t k = 0; k < size; ++k)
            if (v[k] >= 'A' && v[k] <= 'Z') v[k] = static_cast<char>(v[k] - 'A' + 'a');
    } else if (attribute_special_ == 2) {
        // "…:51.681640800Z" -> "…:51.6816408Z" (as normalize_xml's trim_time).
        const std::string_view s(v, size);
        const auto dot = s.rfind('.');
        if (dot != std::string_view::npos && size == dot + 11 && s.back() == 'Z') {
            bool ok = true;
            for (std::size_t k = dot + 1; k < dot + 10; ++k)
                ok = ok && s[k] >= '0' && s[k] <= '9';
            if (ok && s[dot + 8] == '0' && s[dot + 9] == '0')
                out.erase(attribute_value_ + dot + 8, 2);
        }
    }
    out += '\'';
    if (attribute_xmlns_) root_has_xmlns_ = true;
}

void Renderer::close_start(bool empty) {
    in_start_tag_ = false;
    Element& e = stack_.back();
    if (stack_.size() == 1 && !root_has_xmlns_) {
        out_->append(" xmlns='");
        out_->append(kEventNamespace);
        *out_ += '\'';
    }
    e.attrs_end = out_->size();
    if (empty) {
        end_element();
    } else {
        open_ = true;
    }
}

void Renderer::end_element() {
    finish_text(true, 0);
    const Element e = stack_.back();
    stack_.pop_back();
    std::string& out = *out_;
    if (e.removed) {
        out.resize(e.tag_start);
        open_ = e.open_before;
    } else {
        if (e.pending) {
            if (e.in_system) {
                out.append("/>");
            } else {
                out.append("></");
                out.append(names_, e.name, e.name_len);
                out += '>';
            }
        } else {
            out.append("</");
            out.append(names_, e.name, e.name_len);
            out += '>';
        }
        open_ = false;
    }
    if (e.system) system_open_ = false;
    if (stack_.empty()) root_done_ = true;
}

void Renderer::content_start() {
    if (!stack_.empty() && stack_.back().pending) {
        *out_ += '>';
        stack_.back().pending = false;
    }
    if (!in_run_) {
        in_run_ = true;
        run_blank_ = true;
        run_start_ = out_->size();
    }
}

void Renderer::finish_text(bool before_end_tag, std::uint32_t at) {
    if (!in_run_) return;
    in_run_ = false;
    if (stack_.empty()) {
        if (!run_blank_) fail(at, "text outside the root element");
        out_->resize(run_start_);
        return;
    }
    if (!run_blank_) text_in_content(at);
    if (!run_blank_ || (before_end_tag && open_)) {
        open_ = true;
        return;
    }
    out_->resize(run_start_);
}

// Text and child elements in the same element (mixed content, which Windows never writes):
// libevtx keeps one value per element and prints it instead of the children, so what it renders
// is not the record's XML; the record is refused.
void Renderer::text_in_content(std::uint32_t at) {
    Element& e = stack_.back();
    if (e.has_child) fail(at, "text after an element in the same element");
    e.has_text = true;
}

void Renderer::template_instance(Cursor& c, int depth) {
    const std::uint32_t at = c.pos - 1;
    if (in_start_tag_ || in_attribute_) fail(at, "template instance inside a start tag");
    if (c.end - c.pos < 9) fail(at, "template instance cut short");
    const std::uint32_t definition = load_le32(chunk_ + c.pos + 5);
    c.pos += 9;
    if (definition == c.pos) { // the definition is written here: skip it
        if (c.end - c.pos < 24) fail(at, "template definition cut short");
        const std::uint32_t size = load_le32(chunk_ + c.pos + 20);
        if (c.end - c.pos - 24 < size) fail(at, "template definition cut short");
        c.pos += 24 + size;
    }
    if (definition >= chunk_size_ || chunk_size_ - definition < 24)
        fail(at, "template definition outside the chunk");
    // The definition runs to its end-of-fragment token (its size is not looked at, as libevtx).

    if (c.end - c.pos < 4) fail(at, "template values cut short");
    const std::uint32_t count = load_le32(chunk_ + c.pos);
    c.pos += 4;
    if ((c.end - c.pos) / 4 < count) fail(at, "template values cut short");
    const std::size_t base = values_.size();
    std::uint32_t data = c.pos + count * 4;
    for (std::uint32_t k = 0; k < count; ++k) {
        const std::uint8_t* d = chunk_ + c.pos + 4 * k;
        const std::uint32_t vsize = load_le16(d);
        if (chunk_size_ - data < vsize) fail(at, "template value outside the chunk");
        values_.push_back(Value{data, vsize, d[2]});
        data += vsize;
    }
    c.pos = data;
    Cursor t{definition + 24, static_cast<std::uint32_t>(chunk_size_)};
    fragment(t, base, count, depth + 1);
    if (t.pos >= t.end || chunk_[t.pos] != 0x00)
        fail(t.pos, "no end of fragment after a template definition");
    values_.resize(base);
}

void Renderer::substitution(Cursor& c, std::size_t base, std::size_t count, int depth) {
    const std::uint32_t at = c.pos - 1;
    if (c.end - c.pos < 3) fail(at, "substitution cut short");
    const std::uint32_t id = load_le16(chunk_ + c.pos);
    c.pos += 3;
    if (id >= count) fail(at, "substitution of a value the template instance does not have");
    if (in_start_tag_ && !in_attribute_) fail(at, "substitution inside a start tag");
    const Value v = values_[base + id];
    // An optional substitution without a value in element content removes the element.
    if (chunk_[at] == 0x0e && !in_attribute_ && !stack_.empty() &&
        (v.type == 0x00 || (v.size == 0 && !(v.type & 0x80)))) {
        stack_.back().removed = true;
        return;
    }
    value(v, depth);
}

void Renderer::value(const Value& v, int depth) {
    if (v.type & 0x80) { // an empty array removes its element
        if (stack_.empty()) fail(v.offset, "array outside element content");
        array(v);
        return;
    }
    if (v.type == 0x00 || v.size == 0) return;
    if (v.type == 0x21) { // embedded binary XML
        if (in_attribute_) fail(v.offset, "binary XML in an attribute");
        Cursor n{v.offset, static_cast<std::uint32_t>(chunk_size_)}; // (its size is not a bound)
        fragment(n, 0, 0, depth + 1);
        return;
    }
    if (in_attribute_)
        attribute_has_value_ = true;
    else
        content_start();
    scalar(v.type, chunk_ + v.offset, v.size, v.offset);
}

void Renderer::array(const Value& v) {
    const std::uint8_t type = v.type & 0x7F;
    const std::uint8_t* p = chunk_ + v.offset;
    const std::uint32_t size = v.size;
    std::size_t item = 0;
    auto next_element = [&]() {
        if (in_attribute_) { // the items one after the other
            attribute_has_value_ = true;
            ++item;
            return;
        }
        if (item++ == 0) {
            content_start();
            return;
        }
        Element& e = stack_.back();
        finish_text(true, v.offset);
        std::string& out = *out_;
        out.append("</");
        out.append(names_, e.name, e.name_len);
        out += '>';
        const std::size_t len = e.attrs_end - e.tag_start;
        out.reserve(out.size() + len + 1);
        out.append(out.data() + e.tag_start, len);
        out += '>';
        open_ = true;
        content_start();
    };
    if (type == 0x02) { // byte strings, each ended by a NUL
        std::uint32_t start = 0;
        for (std::uint32_t k = 0; k <= size; ++k) {
            if (k == size ? k > start : p[k] == 0) {
                next_element();
                scalar(0x02, p + start, k - start, v.offset + start);
                start = k + 1;
            }
        }
    } else if (type == 0x01) {
        const std::uint32_t units = size / 2;
        std::uint32_t start = 0;
        for (std::uint32_t k = 0; k <= units; ++k) {
            if (k == units ? k > start : load_le16(p + 2 * k) == 0) {
                next_element();
                utf16(p + 2 * start, k - start, v.offset);
                start = k + 1;
            } else if (k == units) {
                break;
            }
        }
    } else {
        std::uint32_t width = 0;
        switch (type) {
        case 0x03:
        case 0x04:
            width = 1;
            break;
        case 0x05:
        case 0x06:
            width = 2;
            break;
        case 0x07:
        case 0x08:
        case 0x0b:
        case 0x0d:
        case 0x14:
            width = 4;
            break;
        case 0x09:
        case 0x0a:
        case 0x0c:
        case 0x11:
        case 0x15:
            width = 8;
            break;
        case 0x0f:
        case 0x12:
            width = 16;
            break;
        default:
            fail(v.offset, "array of an unsupported type");
        }
        if (size % width != 0) fail(v.offset, "array size is not a multiple of its items");
        for (std::uint32_t k = 0; k < size; k += width) {
            next_element();
            scalar(type, p + k, width, v.offset + k);
        }
    }
    if (item == 0 && !in_attribute_) stack_.back().removed = true;
}

void Renderer::put_ascii(std::string_view s) {
    out_->append(s);
    run_blank_ = false;
}

void Renderer::put_code_point(std::uint32_t cp) {
    std::string& out = *out_;
    if (cp < 0x80) {
        const char c = static_cast<char>(cp);
        if (raw_) {
            out += c;
            return;
        }
        // libevtx escapes string values but writes template text and ANSI strings as they
        // are; normalize_xml then refuses a '<' in them, and a '"' in an attribute.
        switch (c) {
        case '&':
            out.append(escape_ ? "&amp;" : "&");
            run_blank_ = false;
            return;
        case '<':
            if (!escape_) fail(token_at_, "'<' in text libevtx does not escape");
            out.append("&lt;");
            run_blank_ = false;
            return;
        case '>':
            out.append(escape_ ? "&gt;" : ">");
            run_blank_ = false;
            return;
        case '\'':
            if (in_attribute_) {
                out.append("&apos;");
                return;
            }
            break;
        case '"':
            if (in_attribute_) {
                if (!escape_) fail(token_at_, "'\"' in an attribute libevtx does not escape");
                out.append("&quot;");
                return;
            }
            break;
        default:
            break;
        }
        if (cp < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            out.append("\xEF\xBF\xBD");
            run_blank_ = false;
            return;
        }
        if (!text::is_xml_space(c)) run_blank_ = false;
        out += c;
        return;
    }
    run_blank_ = false;
    text::append_code_point(out, cp); // 0x80 and above here
}

void Renderer::utf16(const std::uint8_t* p, std::size_t units, std::uint32_t) {
    for (std::size_t k = 0; k < units; ++k) {
        std::uint32_t cp = load_le16(p + 2 * k);
        if (cp == 0) break;
        cp = surrogates(cp, p, k, units);
        put_code_point(cp);
    }
}

void Renderer::scalar(std::uint8_t type, const std::uint8_t* p, std::uint32_t size,
                      std::uint32_t at) {
    char buffer[96];
    char* b = buffer;
    auto expect = [&](std::uint32_t n) {
        if (size != n) fail(at, "value size does not match its type");
    };
    switch (type) {
    case 0x01:
        if (size % 2 != 0) fail(at, "UTF-16 string of an odd size");
        utf16(p, size / 2, at);
        return;
    case 0x02: // in Windows-1252 (libevtx's default codepage); its holes as U+FFFD
        escape_ = false;
        for (std::uint32_t k = 0; k < size && p[k]; ++k)
            put_code_point(p[k] >= 0x80 && p[k] < 0xA0 ? kWindows1252[p[k] - 0x80] : p[k]);
        escape_ = true;
        return;
    case 0x03: // int8 .. uint64: read as wide as the value is (1, 2, 4 or 8 bytes; libevtx
    case 0x04: // takes the value's size, not the type's)
    case 0x05:
    case 0x06:
    case 0x07:
    case 0x08:
    case 0x09:
    case 0x0a:
    case 0x10: { // size_t: unsigned, in decimal (as libevtx)
        if (size != 1 && size != 2 && size != 4 && size != 8)
            fail(at, "integer of an unsupported size");
        std::uint64_t v = 0;
        for (std::uint32_t k = size; k-- > 0;)
            v = (v << 8) | p[k];
        if (type % 2 == 1 && type != 0x10) { // signed
            const unsigned shift = 64 - 8 * size;
            const auto s64 = static_cast<std::int64_t>(v << shift) >> shift;
            b = std::to_chars(b, buffer + sizeof buffer, s64).ptr;
        } else {
            b = digits(b, v, 1);
        }
        break;
    }
    case 0x0b: {
        expect(4);
        float f = 0;
        std::memcpy(&f, p, 4);
        b += std::snprintf(b, sizeof buffer, "%f", static_cast<double>(f));
        break;
    }
    case 0x0c: {
        expect(8);
        double d = 0;
        std::memcpy(&d, p, 8);
        b += std::snprintf(b, sizeof buffer, "%f", d);
        break;
    }
    case 0x0d: {
        expect(4);
        const char* s = load_le32(p) ? "true" : "false";
        b = std::copy(s, s + std::strlen(s), b);
        break;
    }
    case 0x0e: {
        static constexpr char kHex[] = "0123456789ABCDEF";
        std::string& out = *out_;
        for (std::uint32_t k = 0; k < size; ++k) {
            out += kHex[p[k] >> 4];
            out += kHex[p[k] & 15];
        }
        run_blank_ = false;
        return;
    }
    case 0x0f: {
        expect(16);
        *b++ = '{';
        b = hex(b, load_le32(p), 8, true);
        *b++ = '-';
        b = hex(b, load_le16(p + 4), 4, true);
        *b++ = '-';
        b = hex(b, load_le16(p + 6), 4, true);
        *b++ = '-';
        for (int k = 8; k < 16; ++k) {
            if (k == 10) *b++ = '-';
            b = hex(b, p[k], 2, true);
        }
        *b++ = '}';
        break;
    }
    case 0x11: {
        expect(8);
        const std::uint64_t ticks = load_le64(p);
        const std::uint64_t seconds = ticks / 10000000;
        const std::int64_t days = static_cast<std::int64_t>(seconds / 86400) - 134774;
        const std::uint64_t rest = seconds % 86400;
        std::int64_t y = 0;
        unsigned m = 0, d = 0;
        civil_from_days(days, y, m, d);
        if (y > 9999) { // as libevtx: the raw value, "(0xHIGH 0xLOW)"
            b = hex(std::copy_n("(0x", 3, b), ticks >> 32, 8);
            b = hex(std::copy_n(" 0x", 3, b), ticks & 0xFFFFFFFFu, 8);
            *b++ = ')';
            break;
        }
        b = digits(b, static_cast<std::uint64_t>(y), 4);
        *b++ = '-';
        b = digits(b, m, 2);
        *b++ = '-';
        b = digits(b, d, 2);
        *b++ = 'T';
        b = digits(b, rest / 3600, 2);
        *b++ = ':';
        b = digits(b, rest / 60 % 60, 2);
        *b++ = ':';
        b = digits(b, rest % 60, 2);
        *b++ = '.';
        b = digits(b, ticks % 10000000, 7);
        *b++ = '0';
        *b++ = '0';
        *b++ = 'Z';
        break;
    }
    case 0x12: {
        expect(16);
        b = digits(b, load_le16(p), 4);
        *b++ = '-';
        b = digits(b, load_le16(p + 2), 2);
        *b++ = '-';
        b = digits(b, load_le16(p + 6), 2);
        *b++ = 'T';
        b = digits(b, load_le16(p + 8), 2);
        *b++ = ':';
        b = digits(b, load_le16(p + 10), 2);
        *b++ = ':';
        b = digits(b, load_le16(p + 12), 2);
        *b++ = '.';
        b = digits(b, load_le16(p + 14), 3);
        b = std::copy_n("000000Z", 7, b);
        break;
    }
    case 0x13: {
        if (size < 8 || size < 8u + 4u * p[1]) fail(at, "SID larger than its value");
        b = std::copy_n("S-", 2, b);
        b = digits(b, p[0], 1);
        std::uint64_t authority = 0;
        for (int k = 2; k < 8; ++k)
            authority = (authority << 8) | p[k];
        *b++ = '-';
        b = digits(b, authority, 1);
        put_ascii(std::string_view(buffer, static_cast<std::size_t>(b - buffer)));
        for (std::uint32_t k = 0; k < p[1]; ++k) {
            b = buffer;
            *b++ = '-';
            b = digits(b, load_le32(p + 8 + 4 * k), 1);
            put_ascii(std::string_view(buffer, static_cast<std::size_t>(b - buffer)));
        }
        return;
    }
    case 0x14:
        expect(4);
        b = hex(std::copy_n("0x", 2, b), load_le32(p), 8);
        break;
    case 0x15:
        expect(8);
        b = hex(std::copy_n("0x", 2, b), load_le64(p), 16);
        break;
    default:
        fail(at, "value of an unsupported type");
    }
    put_ascii(std::string_view(buffer, static_cast<std::size_t>(b - buffer)));
}

} // namespace wec::evtx::detail

#include "krb/der.hpp"

#include "krb/krb.hpp"

#include <string>

namespace wec::krb::der {
namespace {

[[noreturn]] void malformed(const std::string& what, std::size_t offset) {
    throw DecryptError(Reason::Malformed,
                       "malformed DER: " + what + " at offset " + std::to_string(offset), offset);
}

// Decodes one TLV header at data[pos]; returns the TLV and advances pos past its value.
Tlv decode(std::span<const std::uint8_t> data, std::size_t base, std::size_t& pos) {
    Tlv tlv;
    const std::size_t start = pos;
    tlv.offset = base + start;
    if (pos >= data.size()) malformed("truncated identifier", base + pos);
    const std::uint8_t id = data[pos++];
    tlv.cls = static_cast<Class>(id >> 6);
    tlv.constructed = (id & 0x20) != 0;
    std::uint32_t tag = id & 0x1f;
    if (tag == 0x1f) { // high tag number form: base-128, at most 4 bytes
        tag = 0;
        int n = 0;
        for (;;) {
            if (pos >= data.size()) malformed("truncated tag number", base + pos);
            const std::uint8_t b = data[pos++];
            if (++n > 4) malformed("tag number too large", base + pos - 1);
            tag = (tag << 7) | (b & 0x7f);
            if ((b & 0x80) == 0) break;
        }
    }
    tlv.tag = tag;
    if (pos >= data.size()) malformed("truncated length", base + pos);
    const std::uint8_t l0 = data[pos++];
    std::size_t length = 0;
    if (l0 < 0x80) {
        length = l0;
    } else if (l0 == 0x80) {
        malformed("indefinite length (not DER)", base + pos - 1);
    } else {
        const int count = l0 & 0x7f;
        if (count > 4) malformed("length of more than 4 bytes", base + pos - 1);
        for (int i = 0; i < count; ++i) {
            if (pos >= data.size()) malformed("truncated length", base + pos);
            length = (length << 8) | data[pos++];
        }
    }
    if (length > data.size() - pos)
        malformed("value of " + std::to_string(length) + " bytes exceeds the " +
                      std::to_string(data.size() - pos) + " remaining",
                  base + start);
    tlv.value_offset = base + pos;
    tlv.value = data.subspan(pos, length);
    pos += length;
    return tlv;
}

std::string tag_text(Class cls, std::uint32_t tag) {
    // Built with append: GCC 12 warns (-Wrestrict) on "literal" + std::string chains here.
    std::string out;
    const std::string number = std::to_string(tag);
    switch (cls) {
    case Class::Universal:
        out.append("UNIVERSAL ").append(number);
        return out;
    case Class::Application:
        out.append("[APPLICATION ").append(number).append("]");
        return out;
    case Class::Context:
        out.append("[").append(number).append("]");
        return out;
    case Class::Private:
        break;
    }
    out.append("[PRIVATE ").append(number).append("]");
    return out;
}

} // namespace

Tlv Reader::next() {
    return decode(data_, base_, pos_);
}

Tlv Reader::peek() const {
    std::size_t p = pos_;
    return decode(data_, base_, p);
}

Tlv Reader::expect(Class cls, std::uint32_t tag, bool constructed, const char* what) {
    if (empty()) malformed(std::string("missing ") + what, offset());
    const std::size_t at = offset();
    Tlv tlv = next();
    if (tlv.cls != cls || tlv.tag != tag || tlv.constructed != constructed)
        malformed(std::string(what) + ": expected " + tag_text(cls, tag) + ", found " +
                      tag_text(tlv.cls, tlv.tag),
                  at);
    return tlv;
}

std::optional<Tlv> Reader::optional_context(std::uint32_t n) {
    if (empty()) return std::nullopt;
    Tlv tlv = peek();
    if (tlv.cls != Class::Context || tlv.tag != n) return std::nullopt;
    if (!tlv.constructed) malformed("[" + std::to_string(n) + "] is not constructed", tlv.offset);
    return next();
}

Reader Reader::context(std::uint32_t n, const char* what) {
    return enter(expect(Class::Context, n, true, what));
}

Reader Reader::enter(const Tlv& tlv) const {
    if (!tlv.constructed) malformed("entering a primitive value", tlv.offset);
    if (depth_ + 1 > kMaxDepth) malformed("nesting deeper than 32", tlv.offset);
    return Reader(tlv.value, tlv.value_offset, depth_ + 1);
}

void Reader::expect_end(const char* what) const {
    if (!empty()) malformed(std::string("trailing bytes after ") + what, offset());
}

std::int64_t integer(const Tlv& tlv, const char* what) {
    if (tlv.cls != Class::Universal || tlv.tag != kInteger || tlv.constructed)
        malformed(std::string(what) + ": not an INTEGER", tlv.offset);
    if (tlv.value.empty() || tlv.value.size() > 8)
        malformed(std::string(what) + ": INTEGER of " + std::to_string(tlv.value.size()) + " bytes",
                  tlv.offset);
    std::uint64_t v = (tlv.value[0] & 0x80) ? ~std::uint64_t{0} : 0;
    for (std::uint8_t b : tlv.value)
        v = (v << 8) | b;
    return static_cast<std::int64_t>(v);
}

std::uint32_t uint32_lenient(const Tlv& tlv, const char* what) {
    // Windows encodes sequence numbers as signed 32-bit values: keep the low 32 bits.
    return static_cast<std::uint32_t>(static_cast<std::uint64_t>(integer(tlv, what)));
}

std::string string(const Tlv& tlv, const char* what) {
    if (tlv.cls != Class::Universal || tlv.constructed ||
        !(tlv.tag == kGeneralString || tlv.tag == 12 /* UTF8String */ || tlv.tag == 19 ||
          tlv.tag == 22 || tlv.tag == 26))
        malformed(std::string(what) + ": not a character string", tlv.offset);
    return std::string(reinterpret_cast<const char*>(tlv.value.data()), tlv.value.size());
}

std::span<const std::uint8_t> octets(const Tlv& tlv, const char* what) {
    if (tlv.cls != Class::Universal || tlv.tag != kOctetString || tlv.constructed)
        malformed(std::string(what) + ": not an OCTET STRING", tlv.offset);
    return tlv.value;
}

namespace {
std::size_t walk_level(Reader reader) {
    std::size_t count = 0;
    while (!reader.empty()) {
        const Tlv tlv = reader.next();
        ++count;
        if (tlv.constructed) count += walk_level(reader.enter(tlv));
    }
    return count;
}
} // namespace

std::size_t walk(std::span<const std::uint8_t> data) {
    return walk_level(Reader(data));
}

} // namespace wec::krb::der

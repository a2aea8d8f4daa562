#include "krb/keytab.hpp"

#include "common/files.hpp"
#include "text/ascii.hpp"

#include <algorithm>
#include <bit>
#include <cctype>
#include <string>

namespace wec::krb {
namespace {

using text::iequals;

// Bounds-checked reader over one keytab region.
class Cursor {
public:
    Cursor(std::span<const std::uint8_t> data, std::size_t base, bool big_endian,
           std::string_view source)
        : data_(data), base_(base), big_(big_endian), source_(source) {}

    std::size_t offset() const { return base_ + pos_; }
    std::size_t remaining() const { return data_.size() - pos_; }

    [[noreturn]] void fail(const std::string& what) const { fail_at(what, offset()); }
    [[noreturn]] void fail_at(const std::string& what, std::size_t off) const {
        throw KeytabError(std::string(source_) + ": malformed keytab: " + what + " at offset " +
                              std::to_string(off),
                          off);
    }

    std::span<const std::uint8_t> bytes(std::size_t n, const char* what) {
        if (n > remaining())
            fail(std::string("truncated ") + what + " (" + std::to_string(n) + " bytes needed, " +
                 std::to_string(remaining()) + " left)");
        auto out = data_.subspan(pos_, n);
        pos_ += n;
        return out;
    }
    std::uint64_t uint(std::size_t n, const char* what) {
        auto b = bytes(n, what);
        std::uint64_t v = 0;
        if (big_) {
            for (std::uint8_t x : b)
                v = (v << 8) | x;
        } else {
            for (std::size_t i = n; i-- > 0;)
                v = (v << 8) | b[i];
        }
        return v;
    }
    std::uint8_t u8(const char* what) { return static_cast<std::uint8_t>(uint(1, what)); }
    std::uint16_t u16(const char* what) { return static_cast<std::uint16_t>(uint(2, what)); }
    std::uint32_t u32(const char* what) { return static_cast<std::uint32_t>(uint(4, what)); }
    std::string counted_string(const char* what) {
        const std::uint16_t n = u16(what);
        auto b = bytes(n, what);
        return std::string(reinterpret_cast<const char*>(b.data()), b.size());
    }

private:
    std::span<const std::uint8_t> data_;
    std::size_t base_;
    std::size_t pos_ = 0;
    bool big_;
    std::string_view source_;
};

} // namespace

std::string Principal::to_string() const {
    std::string out;
    for (std::size_t i = 0; i < components.size(); ++i) {
        if (i) out += '/';
        out += components[i];
    }
    if (!realm.empty()) out += '@' + realm;
    return out;
}

Principal Principal::parse(std::string_view text) {
    Principal p;
    const auto at = text.rfind('@');
    std::string_view name = text;
    if (at != std::string_view::npos) {
        p.realm = std::string(text.substr(at + 1));
        name = text.substr(0, at);
    }
    std::size_t start = 0;
    for (;;) {
        const auto slash = name.find('/', start);
        p.components.emplace_back(name.substr(start, slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    if (p.components.size() > 1) p.name_type = 2; // KRB5_NT_SRV_INST
    return p;
}

bool Principal::same(const Principal& other) const {
    return components == other.components && iequals(realm, other.realm);
}

bool Principal::same_ignoring_case(const Principal& other) const {
    if (components.size() != other.components.size() || !iequals(realm, other.realm)) return false;
    for (std::size_t i = 0; i < components.size(); ++i)
        if (!iequals(components[i], other.components[i])) return false;
    return true;
}

std::string enctype_name(std::int32_t enctype) {
    switch (enctype) {
    case 17:
        return "aes128-cts-hmac-sha1-96";
    case 18:
        return "aes256-cts-hmac-sha1-96";
    case 19:
        return "aes128-cts-hmac-sha256-128";
    case 20:
        return "aes256-cts-hmac-sha384-192";
    case 23:
        return "rc4-hmac";
    case 24:
        return "rc4-hmac-exp";
    case 25:
        return "camellia128-cts-cmac";
    case 26:
        return "camellia256-cts-cmac";
    default:
        return "enctype " + std::to_string(enctype);
    }
}

std::vector<KeytabEntry> parse_keytab(std::span<const std::uint8_t> data, std::string_view source) {
    Cursor head(data, 0, true, source);
    const std::uint8_t magic = head.u8("file format byte");
    if (magic != 0x05) head.fail_at("not a keytab (first byte is not 0x05)", 0);
    const std::uint8_t version = head.u8("file format version");
    if (version != 0x01 && version != 0x02)
        head.fail_at("unsupported keytab version 0x05" + std::to_string(version), 1);
    // Version 1 uses the writer's native byte order; this code runs on little-endian hosts and
    // so did the MIT versions that wrote 0x0501 files.
    const bool big = version == 0x02 || std::endian::native == std::endian::big;

    std::vector<KeytabEntry> entries;
    std::size_t pos = 2;
    while (data.size() - pos >= 4) {
        Cursor size_cursor(data.subspan(pos, 4), pos, big, source);
        const auto size = static_cast<std::int32_t>(size_cursor.u32("entry size"));
        pos += 4;
        if (size == 0) break; // end of the entries (MIT stops at a zero size)
        const std::size_t length = size < 0
                                       ? static_cast<std::size_t>(-static_cast<std::int64_t>(size))
                                       : static_cast<std::size_t>(size);
        if (length > data.size() - pos)
            size_cursor.fail_at("entry of " + std::to_string(length) + " bytes exceeds the file",
                                pos - 4);
        if (size < 0) { // a hole left by a deleted entry
            pos += length;
            continue;
        }
        Cursor c(data.subspan(pos, length), pos, big, source);
        KeytabEntry e;
        std::uint16_t count = c.u16("component count");
        if (version == 0x01) {
            if (count == 0) c.fail_at("component count 0 in a version 1 keytab", pos);
            --count; // version 1 counts the realm as a component
        }
        e.principal.realm = c.counted_string("realm");
        e.principal.components.reserve(std::min<std::size_t>(count, c.remaining() / 2));
        for (std::uint16_t i = 0; i < count; ++i)
            e.principal.components.push_back(c.counted_string("principal component"));
        if (version == 0x02) e.principal.name_type = static_cast<std::int32_t>(c.u32("name type"));
        e.timestamp = c.u32("timestamp");
        e.kvno = c.u8("kvno");
        e.enctype = c.u16("key type");
        const std::uint16_t key_length = c.u16("key length");
        auto key = c.bytes(key_length, "key");
        e.key.assign(key.begin(), key.end());
        if (c.remaining() >= 4) {
            const std::uint32_t kvno32 = c.u32("32-bit kvno");
            if (kvno32 != 0) e.kvno = kvno32;
        }
        entries.push_back(std::move(e));
        pos += length;
    }
    return entries;
}

std::vector<KeytabEntry> read_keytab(const std::string& path) {
    const auto data = wec::read_file(path);
    return parse_keytab(data, path);
}

void KeySet::add(KeytabEntry entry) {
    for (const auto& e : entries_)
        if (e.principal.same(entry.principal) && e.kvno == entry.kvno &&
            e.enctype == entry.enctype && e.key == entry.key)
            return;
    entries_.push_back(std::move(entry));
}

void KeySet::add_keytab(const std::string& path) {
    for (auto& e : read_keytab(path))
        add(std::move(e));
}

void KeySet::add_keytab_data(std::span<const std::uint8_t> data, std::string_view source) {
    for (auto& e : parse_keytab(data, source))
        add(std::move(e));
}

std::vector<const KeytabEntry*> KeySet::candidates(const Principal& service, std::int32_t enctype,
                                                   std::optional<std::uint32_t> kvno) const {
    std::vector<const KeytabEntry*> out;
    auto add_if = [&](auto&& pred) {
        for (const auto& e : entries_) {
            if (e.enctype != enctype || !pred(e)) continue;
            if (std::find(out.begin(), out.end(), &e) == out.end()) out.push_back(&e);
        }
    };
    if (kvno)
        add_if([&](const KeytabEntry& e) { return e.kvno == *kvno && e.principal.same(service); });
    add_if([&](const KeytabEntry& e) { return e.principal.same(service); });
    add_if([&](const KeytabEntry& e) { return e.principal.same_ignoring_case(service); });
    if (kvno) add_if([&](const KeytabEntry& e) { return e.kvno == *kvno; });
    add_if([](const KeytabEntry&) { return true; });
    return out;
}

std::vector<const KeytabEntry*> KeySet::for_principal(const Principal& service) const {
    std::vector<const KeytabEntry*> out;
    for (const auto& e : entries_)
        if (e.principal.same_ignoring_case(service)) out.push_back(&e);
    return out;
}

} // namespace wec::krb

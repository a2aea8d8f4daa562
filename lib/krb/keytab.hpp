// MIT keytab files (format 0x0502, and the native-endian 0x0501) and a KeySet to look keys up.
// Parsing is bounds-checked and independent of the current time (timestamps are only reported).
#pragma once

#include "common/error.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::krb {

// A malformed keytab file: what() names the file (when known), the field and the byte offset.
class KeytabError : public wec::Error {
public:
    KeytabError(const std::string& message, std::size_t offset)
        : wec::Error(message), offset_(offset) {}
    std::size_t offset() const { return offset_; }

private:
    std::size_t offset_;
};

struct Principal {
    std::int32_t name_type = 1; // KRB5_NT_PRINCIPAL
    std::vector<std::string> components;
    std::string realm;

    // "HTTP/srv.windomain.local@WINDOMAIN.LOCAL"
    std::string to_string() const;
    // Parses "a/b@REALM" (no escapes; a missing realm leaves realm empty).
    static Principal parse(std::string_view text);
    // Components compared exactly, realm case-insensitively.
    bool same(const Principal& other) const;
    // Everything compared case-insensitively (host names in SPNs differ in case in practice).
    bool same_ignoring_case(const Principal& other) const;
    bool operator==(const Principal&) const = default;
};

struct KeytabEntry {
    Principal principal;
    std::uint32_t timestamp = 0; // seconds since 1970, as stored; never checked
    std::uint32_t kvno = 0;      // the 32-bit kvno when present and non-zero, else the 8-bit one
    std::int32_t enctype = 0;
    std::vector<std::uint8_t> key;
};

// Parses a whole keytab. `source` (a file name) is used in error messages.
std::vector<KeytabEntry> parse_keytab(std::span<const std::uint8_t> data,
                                      std::string_view source = "keytab");
// Reads and parses a keytab file (wec::Error if it cannot be read, KeytabError if malformed).
std::vector<KeytabEntry> read_keytab(const std::string& path);

// MIT-style enctype names ("aes256-cts-hmac-sha1-96"), or the number.
std::string enctype_name(std::int32_t enctype);

// Keys from one or more keytabs.
class KeySet {
public:
    void add(KeytabEntry entry); // duplicates (same principal, kvno, enctype, key) are dropped
    void add_keytab(const std::string& path);
    void add_keytab_data(std::span<const std::uint8_t> data, std::string_view source = "keytab");

    std::size_t size() const { return entries_.size(); }
    const std::vector<KeytabEntry>& entries() const { return entries_; }

    // Keys of `enctype` to try for a ticket to `service` with key version `kvno` (if known), best
    // first: exact principal and kvno, same principal any kvno, principal ignoring case, then every
    // other key of that enctype (a ticket's sname may be an alias the keytab does not name).
    std::vector<const KeytabEntry*> candidates(const Principal& service, std::int32_t enctype,
                                               std::optional<std::uint32_t> kvno) const;
    // All keys of a principal (any enctype/kvno).
    std::vector<const KeytabEntry*> for_principal(const Principal& service) const;

private:
    std::vector<KeytabEntry> entries_;
};

} // namespace wec::krb

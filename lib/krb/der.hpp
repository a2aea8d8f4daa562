// A small DER (ASN.1 Distinguished Encoding Rules) reader: tag/length/value over a byte span, no
// copies and no allocations. Definite lengths only (the indefinite form of BER is rejected), at
// most 4 length bytes, bounded nesting depth. Errors are krb::DecryptError{Malformed} with the
// absolute offset of the offending byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace wec::krb::der {

enum class Class : std::uint8_t { Universal = 0, Application = 1, Context = 2, Private = 3 };

// Universal tags used by Kerberos.
inline constexpr std::uint32_t kInteger = 2;
inline constexpr std::uint32_t kBitString = 3;
inline constexpr std::uint32_t kOctetString = 4;
inline constexpr std::uint32_t kOid = 6;
inline constexpr std::uint32_t kEnumerated = 10;
inline constexpr std::uint32_t kSequence = 16;
inline constexpr std::uint32_t kGeneralString = 27;
inline constexpr std::uint32_t kGeneralizedTime = 24;

// Maximum nesting depth of Reader::enter().
inline constexpr int kMaxDepth = 32;

struct Tlv {
    Class cls = Class::Universal;
    bool constructed = false;
    std::uint32_t tag = 0;
    std::size_t offset = 0;       // absolute offset of the identifier byte
    std::size_t value_offset = 0; // absolute offset of the first value byte
    std::span<const std::uint8_t> value;

    bool is(Class c, std::uint32_t t) const { return cls == c && tag == t; }
};

class Reader {
public:
    // `base_offset` is the absolute offset of data[0] (used in error messages).
    explicit Reader(std::span<const std::uint8_t> data, std::size_t base_offset = 0, int depth = 0)
        : data_(data), base_(base_offset), depth_(depth) {}

    bool empty() const { return pos_ >= data_.size(); }
    std::size_t offset() const { return base_ + pos_; }
    std::span<const std::uint8_t> rest() const { return data_.subspan(pos_); }

    // Reads the next TLV (throws Malformed on truncation, indefinite or oversized length).
    Tlv next();
    Tlv peek() const;
    // Reads the next TLV and checks its class/tag/constructed bit; `what` names it in errors.
    Tlv expect(Class cls, std::uint32_t tag, bool constructed, const char* what);
    // If the next TLV is the context-specific constructed [n], reads and returns it.
    std::optional<Tlv> optional_context(std::uint32_t n);
    // Reads context [n] (EXPLICIT) and returns a reader over its content.
    Reader context(std::uint32_t n, const char* what);
    // A reader over the value of a constructed TLV (depth + 1; throws beyond kMaxDepth).
    Reader enter(const Tlv& tlv) const;
    // Throws Malformed unless everything was consumed.
    void expect_end(const char* what) const;

private:
    std::span<const std::uint8_t> data_;
    std::size_t base_ = 0;
    std::size_t pos_ = 0;
    int depth_ = 0;
};

// Value decoders; all throw Malformed naming `what` and the TLV's offset.
std::int64_t integer(const Tlv& tlv, const char* what);         // INTEGER, at most 8 bytes
std::uint32_t uint32_lenient(const Tlv& tlv, const char* what); // UInt32; negative wraps (Windows)
std::string string(const Tlv& tlv, const char* what);           // any universal character string
std::span<const std::uint8_t> octets(const Tlv& tlv, const char* what); // OCTET STRING

// Walks every TLV recursively (for fuzzing and diagnostics); returns the number of TLVs.
std::size_t walk(std::span<const std::uint8_t> data);

} // namespace wec::krb::der

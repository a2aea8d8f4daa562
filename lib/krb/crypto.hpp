// Internal: RAII wrappers around MIT krb5's public crypto API (krb5_c_* / krb5_k_*). Not part of
// the public interface (krb5.h stays out of krb.hpp).
#pragma once

#include "krb/krb.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

struct _krb5_context;
struct krb5_key_st;

namespace wec::krb::crypto {

enum class Status { Ok, Integrity, BadEnctype, BadSize, Failed };

class Context {
public:
    Context(); // krb5_init_context; throws wec::Error if that fails
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;
    _krb5_context* get() const { return ctx_; }

private:
    _krb5_context* ctx_ = nullptr;
};

bool valid_enctype(std::int32_t enctype);

// One-shot decryption with a raw key (krb5_c_decrypt). `out` receives the plaintext.
Status decrypt(const Context& ctx, const Key& key, int usage, std::span<const std::uint8_t> cipher,
               std::vector<std::uint8_t>& out);

// A krb5_key: caches the derived keys across calls (for the wrap tokens of a connection).
class KeyHandle {
public:
    KeyHandle(std::shared_ptr<const Context> ctx, const Key& key); // throws DecryptError
    ~KeyHandle();
    KeyHandle(const KeyHandle&) = delete;
    KeyHandle& operator=(const KeyHandle&) = delete;

    const Key& key() const { return key_; }
    Status decrypt(int usage, std::span<const std::uint8_t> cipher,
                   std::vector<std::uint8_t>& out) const;
    // The mandatory checksum of the key's enctype over `data` (krb5_k_make_checksum, type 0).
    Status checksum(int usage, std::span<const std::uint8_t> data,
                    std::vector<std::uint8_t>& out) const;

private:
    std::shared_ptr<const Context> ctx_;
    Key key_;
    krb5_key_st* handle_ = nullptr;
};

} // namespace wec::krb::crypto

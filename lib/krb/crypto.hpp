// Internal: RAII wrappers around MIT krb5's public crypto API (krb5_c_* / krb5_k_*). Not part of
// the public interface (krb5.h stays out of krb.hpp).
//
// Bulk decryption of wrap tokens (the WinRM bodies, nearly all of the bytes of a capture) has an
// accelerated path for aes128/aes256-cts-hmac-sha1-96: Debian's libk5crypto is built with its
// portable C AES and SHA-1 (no AES-NI), about 7 ns per byte here. The accelerated path composes
// OpenSSL primitives exactly as RFC 3961/3962 say (KRB5KDF for Ke/Ki, AES-CBC-CTS in CS3 mode,
// HMAC-SHA1-96), and is only used after a self-test against MIT (once per process and enctype:
// messages encrypted by krb5_k_encrypt must decrypt to the same bytes); when that fails, or on
// any integrity failure, MIT decides. Tickets, authenticators and AP-REPs always use MIT.
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

struct Accelerated; // OpenSSL state for one key (crypto.cpp)

class Context {
public:
    // krb5_init_context; throws wec::Error if that fails. `accelerate` = false keeps every
    // decryption in MIT krb5 (the WEC_KRB_CRYPTO=mit diagnostic switch sets that).
    explicit Context(bool accelerate = true);
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;
    _krb5_context* get() const { return ctx_; }
    bool accelerate() const { return accelerate_; }

private:
    _krb5_context* ctx_ = nullptr;
    bool accelerate_ = true;
};

// True unless the environment says WEC_KRB_CRYPTO=mit (read once per call, not cached).
bool accelerate_from_environment();

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
    // Encryption with a random confounder (krb5_k_encrypt): tests and the accelerator self-test.
    Status encrypt(int usage, std::span<const std::uint8_t> plain,
                   std::vector<std::uint8_t>& out) const;
    // decrypt() into reused storage: `buffer` is grown when too small (never shrunk, so not
    // zero-filled again once large enough) and `plain` is set to the plaintext within it (valid
    // until `buffer` changes). No allocation and no moving of the plaintext on the accelerated
    // path (the confounder is skipped, not erased).
    Status decrypt_into(int usage, std::span<const std::uint8_t> cipher,
                        std::vector<std::uint8_t>& buffer,
                        std::span<const std::uint8_t>& plain) const;
    // Whether decrypt() runs on the accelerated path (passed its self-test).
    bool accelerated() const { return fast_ != nullptr; }
    // decrypt() on MIT krb5 only (reference for tests and the fallback).
    Status decrypt_mit(int usage, std::span<const std::uint8_t> cipher,
                       std::vector<std::uint8_t>& out) const;

private:
    std::shared_ptr<const Context> ctx_;
    Key key_;
    krb5_key_st* handle_ = nullptr;
    std::unique_ptr<Accelerated> fast_; // null: MIT only
};

} // namespace wec::krb::crypto

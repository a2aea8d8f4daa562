// AES-CBC encryption (or decryption) and SHA-1 over the same plaintext in one pass (AES-NI and
// SHA-NI intrinsics), for sealing and unsealing with the aes-cts-hmac-sha1-96 enctypes (RFC 3962
// MACs the plaintext it encrypts). AES-CBC encryption is serial (each block waits for the
// previous one's 10 or 14 rounds); SHA-1 runs in the latency the AES chain leaves idle, as
// OpenSSL's aesni_cbc_sha1_enc does for TLS records (which its EVP interface offers only in
// TLS's form). Decryption is parallel but SHA-1 is serial (a chain of sha1rnds4): the 4 blocks of
// the next 64 bytes are decrypted while the previous 64 are hashed, instead of in a pass of their
// own.
// Checked against OpenSSL's AES-CBC and HMAC-SHA1 (tests/auth/cbc_sha1_test.cpp,
// tests/fuzz/auth/cbc_sha1_fuzz.cpp); FastContext uses it only when available() and keeps
// OpenSSL otherwise, and its self-test against MIT covers it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace wec::auth::detail {

// Whether this CPU has what the functions below need (AES-NI, SHA-NI, SSSE3, SSE4.1).
bool cbc_sha1_available();

// An AES-128 or AES-256 key schedule (encryption, and decryption's inverse one) and the HMAC-SHA1
// states after the key's ipad and opad blocks.
struct CbcSha1Key {
    alignas(16) std::array<std::uint8_t, 15 * 16> round_keys{};
    alignas(16) std::array<std::uint8_t, 15 * 16> decrypt_keys{}; // for aesdec (aesimc applied)
    int rounds = 0;                                               // 10 or 14
    std::array<std::uint32_t, 5> inner{}, outer{};
    ~CbcSha1Key();
};

// `aes_key` of 16 or 32 bytes, `mac_key` of at most 64 bytes. Only when cbc_sha1_available().
void cbc_sha1_init(CbcSha1Key& k, std::span<const std::uint8_t> aes_key,
                   std::span<const std::uint8_t> mac_key);

// A running HMAC-SHA1 with AES-CBC encryption of whole 64-byte blocks of what it hashes.
class CbcSha1 {
public:
    explicit CbcSha1(const CbcSha1Key& k);
    ~CbcSha1();
    CbcSha1(const CbcSha1&) = delete;
    CbcSha1& operator=(const CbcSha1&) = delete;

    // Hashes `n64` 64-byte blocks of `in` and encrypts them (AES-CBC, chained from `iv`, which
    // becomes the last ciphertext block) into `out`, which may be `in` but must not otherwise
    // overlap it. Only while nothing is buffered (update() calls so far were whole 64 bytes).
    void encrypt_and_hash(const std::uint8_t* in, std::uint8_t* out, std::size_t n64,
                          std::array<std::uint8_t, 16>& iv);
    // Decrypts `n64` 64-byte blocks of `in` (AES-CBC, chained from `iv`, which becomes the last
    // ciphertext block) into `out`, which may be `in` but must not otherwise overlap it, and
    // hashes the plaintext. Only while nothing is buffered.
    void decrypt_and_hash(const std::uint8_t* in, std::uint8_t* out, std::size_t n64,
                          std::array<std::uint8_t, 16>& iv);
    // Hashes `in` only.
    void update(std::span<const std::uint8_t> in);
    // The HMAC (20 bytes).
    std::array<std::uint8_t, 20> final();

    // AES-CBC only (`n16` blocks), with the same key; `out` may be `in`.
    void encrypt(const std::uint8_t* in, std::uint8_t* out, std::size_t n16,
                 std::array<std::uint8_t, 16>& iv) const;
    // AES-CBC decryption only (`n16` blocks); `out` may be `in`.
    void decrypt(const std::uint8_t* in, std::uint8_t* out, std::size_t n16,
                 std::array<std::uint8_t, 16>& iv) const;

private:
    const CbcSha1Key& k_;
    std::array<std::uint32_t, 5> state_;
    std::array<std::uint8_t, 64> buffer_{};
    std::size_t buffered_ = 0;
    std::uint64_t total_ = 64; // bytes hashed, the ipad block included
};

} // namespace wec::auth::detail

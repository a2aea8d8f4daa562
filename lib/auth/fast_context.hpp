// The OpenSSL fast path for the per-message protection of live Kerberos contexts.
//
// MIT GSSAPI establishes every context (tickets, authenticators, AP-REP, replay cache) and stays
// the reference; once a krb5 context is established, its keys and sequence numbers are read
// (the lucid context, read without deleting the context: gss_krb5_export_lucid_sec_context
// itself deletes it, so the same inquiry is made directly) and RFC 4121 wrap tokens are sealed
// and unsealed with OpenSSL (AES-NI, SHA-NI), in WinRM's layout: [HEADER, DATA] with EC = 0 and
// RRC = 16 + the HMAC tag, as MIT's gss_wrap_iov makes them. Enctypes:
// - aes128/aes256-cts-hmac-sha1-96 (RFC 3962): Ke/Ki by DK (OpenSSL KRB5KDF), HMAC-SHA1-96 over
//   the plaintext, then AES-CBC-CTS; RRC 28, 60-byte header. Sealing and unsealing a body of 256
//   bytes or more run the CBC part and the HMAC in one pass where the CPU has AES-NI and SHA-NI
//   (cbc_sha1_internal.hpp: the same tokens and verdicts; the self-test below covers both).
// - aes128-cts-hmac-sha256-128 / aes256-cts-hmac-sha384-192 (RFC 8009): Ke/Ki by KDF-HMAC-SHA2
//   (OpenSSL KBKDF, counter mode; Ki is 16/24 bytes), AES-CBC-CTS, then HMAC-SHA256/384 over the
//   cipher state (16 zero bytes: GSS passes none) and the ciphertext, truncated to 16/24 bytes;
//   RRC 32/40, 64/72-byte header. The tag is checked before anything is decrypted.
// The offline decoder (lib/krb/crypto.cpp) accelerates only the sha1 enctypes (it decrypts with
// krb5_k_decrypt's contract, not wrap tokens), so there is no RFC 8009 code there to share.
//
// Safety nets:
// - Self-test once per process and enctype, on the first context of that enctype (a copy made
//   with gss_export_sec_context/gss_import_sec_context): tokens MIT seals must unseal on the fast
//   path, tokens the fast path seals must unseal in MIT, both ways and tampered, and the fast
//   token headers must equal MIT's. Any disagreement keeps MIT for that enctype.
// - unwrap() handles only tokens in the layout above; anything else, and any token that fails
//   its integrity check, is left intact for MIT to decide (MIT's verdict is final; if MIT accepts
//   a token the fast path refused, the enctype goes back to MIT for new contexts).
// - Sequence numbers: wrap() numbers tokens from MIT's send sequence (MIT no longer wraps on a
//   context once the fast path has it); replays and reordering are refused by the caller's
//   strictly-increasing check (gss.cpp), which is stricter than MIT's 64-token window.
// - WEC_KRB_CRYPTO=mit in the environment switches the fast path off (read per context).
//
// Non-Kerberos mechanisms (NTLM, ...) never get a fast path: create() checks the mechanism.
#pragma once

#include "auth/gss.hpp"

#include <cstdint>
#include <memory>
#include <span>

namespace wec::auth {

class FastContext {
public:
    // Null when the fast path does not apply: switched off, not a krb5 RFC 4121 context, an
    // enctype other than the four aes ones above, or that enctype failed its self-test.
    // `ctx` must be established; it may be replaced by an equivalent MIT context (the self-test
    // copies it by export/import). Never throws.
    static std::unique_ptr<FastContext> create(ContextHandle& ctx);
    ~FastContext();
    FastContext(const FastContext&) = delete;
    FastContext& operator=(const FastContext&) = delete;

    // Same result as seal() on MIT (a 60/64/72-byte header, ciphertext as long as the plaintext).
    // Throws GssError when OpenSSL fails.
    Sealed wrap(std::span<const std::uint8_t> plaintext);
    // The same into the caller's buffers (no copy of the plaintext first): `header` of
    // header_size() bytes, `ciphertext` as long as `plaintext`, which it may be (in place) but
    // must not otherwise overlap. Throws GssError on other sizes or when OpenSSL fails.
    void wrap_into(std::span<const std::uint8_t> plaintext, std::span<std::uint8_t> header,
                   std::span<std::uint8_t> ciphertext);
    std::size_t header_size() const; // of this context's wrap tokens
    enum class Unwrapped {
        Ok,         // `data` now holds the plaintext (an intact token for this context)
        NotHandled, // not in the layout above: `data` unchanged, MIT decides
        Refused,    // integrity or header-copy check failed: `data` unchanged, MIT decides
    };
    Unwrapped unwrap(std::span<const std::uint8_t> header, std::span<std::uint8_t> data);
    // MIT accepted a token unwrap() refused: new contexts of this enctype stay on MIT.
    void disagreement();

    std::int32_t enctype() const;

    // Whether the environment allows the fast path (WEC_KRB_CRYPTO is not "mit").
    static bool enabled_by_environment();

    struct State; // keys, sequence number, OpenSSL contexts (fast_context.cpp)
    explicit FastContext(std::unique_ptr<State> state);

private:
    // The self-test of fast_context.hpp on an MIT copy of the context (`lucid`: its keys).
    static bool self_test(gss_ctx_id_t mit, const void* lucid);
    std::unique_ptr<State> s_;
};

} // namespace wec::auth

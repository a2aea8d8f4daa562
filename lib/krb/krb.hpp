// Offline Kerberos for captured WinRM traffic: recover a connection's session from the AP-REQ
// (with the service keytab) and the AP-REP, then unwrap RFC 4121 CFX wrap tokens in both
// directions. Crypto is MIT krb5's (krb5_c_decrypt / krb5_k_decrypt), with an OpenSSL fast path
// for aes-sha1 wrap tokens checked against MIT (crypto.hpp); parsing is our own DER reader. Nothing
// depends on the current time: no clock-skew, expiry or replay checks.
#pragma once

#include "common/error.hpp"
#include "krb/keytab.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace wec::krb {

namespace crypto {
class Context; // krb/crypto.hpp
} // namespace crypto

enum class Reason {
    NoKey,              // no key in the keytabs for that principal / kvno / enctype
    WrongKey,           // keys were tried and failed the integrity check (or tampered data)
    Malformed,          // bad DER, GSS framing or wrap token; offset() says where
    UnsupportedEnctype, // enctype (or token type, e.g. RFC 4757 RC4 tokens) not supported
    NoSession,          // no AP-REQ (or, for acceptor-subkey tokens, no AP-REP) seen
    NotKerberos,        // the token is another mechanism (e.g. NTLMSSP inside SPNEGO)
};
const char* reason_name(Reason reason); // "no-key", "wrong-key", ...

class DecryptError : public wec::Error {
public:
    DecryptError(Reason reason, const std::string& message, std::size_t offset = 0);
    Reason reason() const { return reason_; }
    std::size_t offset() const { return offset_; } // meaningful for Malformed

private:
    Reason reason_;
    std::size_t offset_;
};

struct Key {
    std::int32_t enctype = 0;
    std::vector<std::uint8_t> bytes;
};

enum class TokenForm {
    Krb5,   // GSS InitialContextToken with the krb5 mech OID (or the Microsoft legacy krb5 OID)
    Spnego, // SPNEGO NegTokenInit / NegTokenResp around a krb5 token
    Bare,   // a bare AP-REQ / AP-REP without GSS framing
};

// What an AP-REQ says without any key (for reports such as "no key for HTTP/x@R kvno 3").
struct ApReqInfo {
    TokenForm form = TokenForm::Krb5;
    Principal service; // ticket realm + sname
    std::int32_t ticket_enctype = 0;
    std::optional<std::uint32_t> ticket_kvno;
    std::int32_t authenticator_enctype = 0;
};
ApReqInfo parse_ap_req(std::span<const std::uint8_t> token);

enum class Direction {
    Initiator, // client -> server, key usage 24
    Acceptor,  // server -> client, key usage 22
};

struct Unwrapped {
    std::vector<std::uint8_t> plaintext;
    bool sealed = true;         // false: integrity-only token (plaintext was sent in the clear)
    std::uint64_t sequence = 0; // SND_SEQ
    std::uint8_t flags = 0; // token flags (0x01 SentByAcceptor, 0x02 Sealed, 0x04 AcceptorSubkey)
};

// Storage that SessionKeys::unwrap_into reuses from token to token (grown when too small, never
// shrunk: no allocation and no zero-filling once as large as the largest token).
struct UnwrapBuffers {
    std::vector<std::uint8_t> unrotated, plain;
};

// A token unwrapped into UnwrapBuffers: `plaintext` points into them (valid until their next use).
struct UnwrappedView {
    std::span<const std::uint8_t> plaintext;
    bool sealed = true;
    std::uint64_t sequence = 0;
    std::uint8_t flags = 0;
};

// The keys of one security context (one TCP connection). Not safe for concurrent use of the same
// object from several threads (the derived-key cache is per object); separate objects are fine.
class SessionKeys {
public:
    SessionKeys(); // no session: unwrap() throws NoSession
    ~SessionKeys();
    SessionKeys(SessionKeys&&) noexcept;
    SessionKeys& operator=(SessionKeys&&) noexcept;

    // Decrypts the ticket of an AP-REQ (raw krb5 GSS token, SPNEGO NegTokenInit, or bare AP-REQ)
    // with a key from `keys`, then the authenticator.
    static SessionKeys from_ap_req(std::span<const std::uint8_t> token, const KeySet& keys);
    // The same on a krb5 context shared with the caller's other sessions (one per decoder rather
    // than one per connection: ~3 % of the CPU and part of the memory of each connection). The
    // sessions then use it for their MIT krb5 calls: not from two threads at a time.
    static SessionKeys from_ap_req(std::span<const std::uint8_t> token, const KeySet& keys,
                                   std::shared_ptr<const crypto::Context> ctx);
    // Decrypts the AP-REP (raw krb5 GSS token, SPNEGO NegTokenResp, or bare AP-REP) with the
    // session key and records the acceptor subkey and sequence number. Returns false (and changes
    // nothing) for a SPNEGO NegTokenResp that completes without a responseToken (no mutual auth).
    bool accept_ap_rep(std::span<const std::uint8_t> token);

    bool has_session() const;
    bool has_ap_rep() const;
    const Principal& client() const;
    const Principal& service() const;
    TokenForm form() const;
    std::int32_t ticket_enctype() const;
    std::uint32_t ticket_kvno() const; // kvno of the keytab key that decrypted the ticket
    const Key& session_key() const;
    const std::optional<Key>& initiator_subkey() const;
    const std::optional<Key>& acceptor_subkey() const;
    std::optional<std::uint32_t> initiator_sequence() const;
    std::optional<std::uint32_t> acceptor_sequence() const;
    std::uint32_t gss_flags() const; // from the authenticator's 0x8003 checksum (0 if absent)

    // Unwraps a CFX wrap token given as the WinRM multipart split: `header` = the L bytes
    // (16-byte token header + the start of the rotated data), `rest` = the bytes after them.
    Unwrapped unwrap(Direction direction, std::span<const std::uint8_t> header,
                     std::span<const std::uint8_t> rest) const;
    // The same into reused buffers (the offline decoder: one token after another), without
    // copying the plaintext out. Same checks, errors and plaintext.
    UnwrappedView unwrap_into(Direction direction, std::span<const std::uint8_t> header,
                              std::span<const std::uint8_t> rest, UnwrapBuffers& buffers) const;
    // Unwraps a whole wrap token.
    Unwrapped unwrap(Direction direction, std::span<const std::uint8_t> token) const;

    struct Impl;

private:
    explicit SessionKeys(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace wec::krb

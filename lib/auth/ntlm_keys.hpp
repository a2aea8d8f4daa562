// NTLMv2 session keys and message sealing outside GSSAPI, for reading captures (`wec decode`):
// from the CHALLENGE and AUTHENTICATE of a session and the account's secret (password or NT
// hash), derive the exported session key (extended session security, key exchange) and the
// per-direction signing and sealing keys (MS-NLMP 3.3.2, 3.4.5), then unseal and verify the
// messages of each direction in order (RC4 with a continuous state, sequence numbers).
//
// MD4 (the NT hash) and RC4 are implemented here: Debian's OpenSSL 3 has neither in its default
// provider. MD5 comes from OpenSSL.
#pragma once

#include "auth/ntlm.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::auth {

using NtHash = std::array<std::uint8_t, 16>;

// RFC 1320.
std::array<std::uint8_t, 16> md4(std::span<const std::uint8_t> data);
// MD4(UTF-16LE(password)); `password` is UTF-8.
NtHash nt_hash(std::string_view password);
// "0123…" (32 hex digits) to a hash; throws NtlmError.
NtHash nt_hash_from_hex(std::string_view hex);

// RC4 with a continuous state.
class Rc4 {
public:
    explicit Rc4(std::span<const std::uint8_t> key);
    void apply(std::span<std::uint8_t> data);

private:
    std::array<std::uint8_t, 256> s_{};
    std::uint8_t i_ = 0, j_ = 0;
};

// NTOWFv2: HMAC-MD5(NT hash, UTF-16LE(UPPER(user) + domain)).
std::array<std::uint8_t, 16> ntowf_v2(const NtHash& hash, std::string_view user,
                                      std::string_view domain);

// Why a session's keys could not be derived.
class NtlmKeyError : public NtlmError {
public:
    using NtlmError::NtlmError;
};

enum class NtlmDirection { ClientToServer, ServerToClient };

// The keys of one NTLMv2 session and the sealing state of both directions.
class NtlmSession {
public:
    // Verifies the NTLMv2 response against the CHALLENGE's server challenge with this secret (a
    // wrong secret, or an NTLMv1 response, throws NtlmKeyError saying which), then derives the
    // keys. `domain`/`user` as sent in the AUTHENTICATE.
    static NtlmSession derive(const NtlmMessage& challenge, const NtlmMessage& authenticate,
                              const NtHash& secret);
    // From a known exported session key and the negotiated flags (tests, MS-NLMP examples).
    static NtlmSession from_exported_key(const std::array<std::uint8_t, 16>& exported,
                                         std::uint32_t flags);

    const std::array<std::uint8_t, 16>& exported_session_key() const { return exported_; }
    std::uint32_t flags() const { return flags_; }

    // Unseals one message: `signature` (16 bytes: version 1, checksum, sequence number) and the
    // sealed bytes, in the direction's order; verifies the checksum and that the sequence number
    // is the expected one. Throws NtlmError.
    std::vector<std::uint8_t> unseal(NtlmDirection direction,
                                     std::span<const std::uint8_t> signature,
                                     std::span<const std::uint8_t> sealed);
    // Seals one message (tests): returns signature(16) || sealed.
    std::vector<std::uint8_t> seal(NtlmDirection direction, std::span<const std::uint8_t> plain);

    // After SPNEGO's mechListMIC (sequence number 0 of each direction), the RC4 states restart
    // and sequence numbers go on from 1 (what gss-ntlmssp and Windows do).
    void restart_after_spnego();

private:
    struct Side {
        std::array<std::uint8_t, 16> signing{};
        std::array<std::uint8_t, 16> sealing{};
        std::optional<Rc4> rc4;
        std::uint32_t sequence = 0;
    };
    std::array<std::uint8_t, 16> exported_{};
    std::uint32_t flags_ = 0;
    Side client_, server_;
    Side& side(NtlmDirection d) { return d == NtlmDirection::ClientToServer ? client_ : server_; }
    void init_sides();
};

} // namespace wec::auth

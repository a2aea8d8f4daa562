// NTLM for a Negotiate listener: what gss-ntlmssp (the MIT GSSAPI mechanism module) does not do
// for us. gss-ntlmssp runs the NTLMSSP handshake, verifies the responses (against a users file or
// winbind), and seals/unseals; this file holds the few things we add on top:
//  - the NTLMSSP message parser (read-only, bounds-checked; also used by `wec decode` and fuzzed),
//  - the policy checks (NTLMv1/LM refused unless allowed, users file permissions),
//  - SPNEGO peeking: which mechanism a NegTokenInit prefers (to pick the acceptor credential).
#pragma once

#include "common/error.hpp"

#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::auth {

class NtlmError : public wec::Error {
public:
    using wec::Error::Error;
};

// NEGOTIATE flags used here (MS-NLMP 2.2.2.5).
inline constexpr std::uint32_t kNtlmNegotiateUnicode = 0x00000001;
inline constexpr std::uint32_t kNtlmNegotiateOem = 0x00000002;
inline constexpr std::uint32_t kNtlmNegotiateSign = 0x00000010;
inline constexpr std::uint32_t kNtlmNegotiateSeal = 0x00000020;
inline constexpr std::uint32_t kNtlmNegotiateLmKey = 0x00000080;
inline constexpr std::uint32_t kNtlmNegotiateExtendedSessionSecurity = 0x00080000;
inline constexpr std::uint32_t kNtlmNegotiate128 = 0x20000000;
inline constexpr std::uint32_t kNtlmNegotiateKeyExchange = 0x40000000;
inline constexpr std::uint32_t kNtlmNegotiate56 = 0x80000000;

// The 8-byte signature every NTLMSSP message starts with.
inline constexpr std::string_view kNtlmSignature{"NTLMSSP\0", 8};
// 1.3.6.1.4.1.311.2.2.10 (DER body of the OID).
inline constexpr std::string_view kNtlmOidDer{"\x2b\x06\x01\x04\x01\x82\x37\x02\x02\x0a", 10};

// True when `token` is a raw NTLMSSP message (starts with the signature).
bool is_ntlmssp(std::span<const std::uint8_t> token);

// One NTLMSSP message, fields copied out. Strings are converted to UTF-8 (from UTF-16LE when the
// message is Unicode, else taken as 8-bit OEM: Latin-1).
struct NtlmMessage {
    std::uint32_t type = 0; // 1 NEGOTIATE, 2 CHALLENGE, 3 AUTHENTICATE
    std::uint32_t flags = 0;
    // CHALLENGE
    std::vector<std::uint8_t> server_challenge; // 8 bytes
    std::string target_name;
    std::vector<std::uint8_t> target_info;
    // AUTHENTICATE
    std::vector<std::uint8_t> lm_response;
    std::vector<std::uint8_t> nt_response;
    std::string domain;
    std::string user;
    std::string workstation;
    std::vector<std::uint8_t> encrypted_session_key;
    // The message's bytes as parsed (the AUTHENTICATE is needed for the MIC).
    std::vector<std::uint8_t> raw;

    // NTLMv2: the NT response is longer than the 24 bytes of NTLMv1.
    bool ntlm_v2() const { return nt_response.size() > 24; }
};

// Parses an NTLMSSP message at the start of `bytes` (trailing bytes are ignored: inside SPNEGO
// the message is followed by other DER fields). Throws NtlmError naming the field and offset.
NtlmMessage parse_ntlm_message(std::span<const std::uint8_t> bytes);

// Finds an NTLMSSP message inside a token (raw, or inside a SPNEGO NegTokenInit/NegTokenResp where
// it is one contiguous OCTET STRING) and parses it; nullopt when there is none.
std::optional<NtlmMessage> find_ntlm_message(std::span<const std::uint8_t> token);

// The first (preferred) mechanism OID of a SPNEGO NegTokenInit, as DER OID bytes; nullopt when
// `token` is not a NegTokenInit (e.g. a raw Kerberos or NTLMSSP token, or a NegTokenResp).
std::optional<std::vector<std::uint8_t>> spnego_preferred_mech(std::span<const std::uint8_t> token);
// True when the token is a SPNEGO NegTokenInit whose preferred mechanism is NTLMSSP.
bool spnego_prefers_ntlm(std::span<const std::uint8_t> token);

// The AUTHENTICATE policy of our listener: an NTLMv1 or LM-only response (NT response of at most
// 24 bytes) is refused unless `allow_v1`; an anonymous AUTHENTICATE is refused. Throws NtlmError.
void check_authenticate_policy(const NtlmMessage& authenticate, bool allow_v1);

// Checks a users file for the acceptor (DOMAIN:USER:PASSWORD lines, read by gss-ntlmssp): it must
// be a readable regular file, not readable or writable by others ("world"), with at least one
// well-formed line. Returns the number of accounts. Throws NtlmError naming the file.
std::size_t check_ntlm_users_file(const std::string& path);

// The account's domain for `user` in a users file (first match, case-insensitive), for clients
// that send no domain; empty when none.
std::string ntlm_users_file_domain(const std::string& path, std::string_view user);

// The accounts of a users file (DOMAIN:USER:PASSWORD lines) with NT hashes instead of passwords,
// in the smbpasswd form gss-ntlmssp also reads (`DOMAIN\USER:0:<no LM hash>:<NT hash>:[U ]:…`),
// same accounts, same domain matching. Given that, gss-ntlmssp 1.2.0 never computes an NT hash
// itself: its MD4 through OpenSSL 3's legacy provider leaks ~7 KB per AUTHENTICATE (measured by
// serve_soak_test's ntlm kind). The LM hash field is a placeholder: use it only where NTLMv1/LM
// is refused. Throws NtlmError naming the file.
std::string ntlm_users_as_smbpasswd(const std::string& path);

// gss-ntlmssp refuses NTLMv1/LM responses at its default LM compatibility level (3) and reads the
// level from the LM_COMPAT_LEVEL environment variable only: a process-wide setting. Called once at
// startup (before any thread) when some listener has ntlm_allow_v1, it sets the level to 2
// (NTLMv1 accepted by gss-ntlmssp); listeners without ntlm_allow_v1 still refuse v1 through
// check_authenticate_policy, which runs before gss-ntlmssp sees the AUTHENTICATE.
void let_gss_ntlmssp_accept_v1();

// A thread-safe "first time for this key?" set (for one-time warnings per host).
class OncePerKey {
public:
    bool first(const std::string& key);

private:
    std::mutex mutex_;
    std::set<std::string> seen_;
};

} // namespace wec::auth

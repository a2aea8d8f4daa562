// NTLMv2 key derivation and sealing for captures (see ntlm_keys.hpp; MS-NLMP 3.3.2, 3.4.4,
// 3.4.5).
#include "auth/ntlm_keys.hpp"

#include <algorithm>
#include <cstring>
#include <openssl/crypto.h>
#include <openssl/evp.h>

namespace wec::auth {
namespace {

using Key = std::array<std::uint8_t, 16>;

std::uint32_t rotl(std::uint32_t x, int s) {
    return (x << s) | (x >> (32 - s));
}

Key md5(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b = {}) {
    Key out{};
    unsigned int length = 0;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    if (!ctx) throw NtlmError("MD5: out of memory");
    bool ok = EVP_DigestInit_ex(ctx, EVP_md5(), nullptr) == 1 &&
              EVP_DigestUpdate(ctx, a.data(), a.size()) == 1 &&
              EVP_DigestUpdate(ctx, b.data(), b.size()) == 1 &&
              EVP_DigestFinal_ex(ctx, out.data(), &length) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok || length != 16) throw NtlmError("MD5 is not available from OpenSSL");
    return out;
}

// RFC 2104 over MD5.
Key hmac_md5(std::span<const std::uint8_t> key, std::span<const std::uint8_t> a,
             std::span<const std::uint8_t> b = {}) {
    std::array<std::uint8_t, 64> block{};
    // Keys here are 16 bytes (hashes, key-exchange keys); longer ones would be hashed first.
    if (key.size() > block.size()) throw NtlmError("HMAC-MD5 key longer than 64 bytes");
    std::memcpy(block.data(), key.data(), key.size());
    std::array<std::uint8_t, 64> ipad{}, opad{};
    for (std::size_t i = 0; i < block.size(); ++i) {
        ipad[i] = block[i] ^ 0x36;
        opad[i] = block[i] ^ 0x5c;
    }
    std::vector<std::uint8_t> inner(ipad.begin(), ipad.end());
    inner.insert(inner.end(), a.begin(), a.end());
    inner.insert(inner.end(), b.begin(), b.end());
    Key h = md5(inner);
    return md5(opad, h);
}

std::vector<std::uint8_t> utf16le(std::string_view utf8) {
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i < utf8.size();) {
        auto c = static_cast<unsigned char>(utf8[i]);
        std::uint32_t cp = c;
        std::size_t n = 1;
        if (c >= 0xf0 && i + 3 < utf8.size()) {
            cp = ((c & 0x07u) << 18) | ((utf8[i + 1] & 0x3fu) << 12) |
                 ((utf8[i + 2] & 0x3fu) << 6) | (utf8[i + 3] & 0x3fu);
            n = 4;
        } else if (c >= 0xe0 && i + 2 < utf8.size()) {
            cp = ((c & 0x0fu) << 12) | ((utf8[i + 1] & 0x3fu) << 6) | (utf8[i + 2] & 0x3fu);
            n = 3;
        } else if (c >= 0xc0 && i + 1 < utf8.size()) {
            cp = ((c & 0x1fu) << 6) | (utf8[i + 1] & 0x3fu);
            n = 2;
        }
        i += n;
        auto put = [&](std::uint32_t u) {
            out.push_back(static_cast<std::uint8_t>(u & 0xff));
            out.push_back(static_cast<std::uint8_t>(u >> 8));
        };
        if (cp >= 0x10000) {
            cp -= 0x10000;
            put(0xd800 + (cp >> 10));
            put(0xdc00 + (cp & 0x3ff));
        } else {
            put(cp);
        }
    }
    return out;
}

// Upper case for the user name in NTOWFv2 (ASCII and Latin-1 letters; Windows uses its own
// table, identical on these).
std::string upper(std::string_view utf8) {
    std::string out(utf8);
    for (auto& c : out)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return out;
}

std::span<const std::uint8_t> bytes_of(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// The magic constants include their terminating NUL.
constexpr std::string_view kClientSign{
    "session key to client-to-server signing key magic constant\0", 59};
constexpr std::string_view kServerSign{
    "session key to server-to-client signing key magic constant\0", 59};
constexpr std::string_view kClientSeal{
    "session key to client-to-server sealing key magic constant\0", 59};
constexpr std::string_view kServerSeal{
    "session key to server-to-client sealing key magic constant\0", 59};

std::array<std::uint8_t, 4> le32(std::uint32_t v) {
    return {static_cast<std::uint8_t>(v), static_cast<std::uint8_t>(v >> 8),
            static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 24)};
}

} // namespace

std::array<std::uint8_t, 16> md4(std::span<const std::uint8_t> data) {
    std::uint32_t a = 0x67452301, b = 0xefcdab89, c = 0x98badcfe, d = 0x10325476;
    std::vector<std::uint8_t> m(data.begin(), data.end());
    std::uint64_t bits = static_cast<std::uint64_t>(data.size()) * 8;
    m.push_back(0x80);
    while (m.size() % 64 != 56)
        m.push_back(0);
    for (int i = 0; i < 8; ++i)
        m.push_back(static_cast<std::uint8_t>(bits >> (8 * i)));
    auto F = [](std::uint32_t x, std::uint32_t y, std::uint32_t z) { return (x & y) | (~x & z); };
    auto G = [](std::uint32_t x, std::uint32_t y, std::uint32_t z) {
        return (x & y) | (x & z) | (y & z);
    };
    auto H = [](std::uint32_t x, std::uint32_t y, std::uint32_t z) { return x ^ y ^ z; };
    for (std::size_t off = 0; off < m.size(); off += 64) {
        std::uint32_t x[16];
        for (int i = 0; i < 16; ++i)
            x[i] = static_cast<std::uint32_t>(m[off + 4 * i]) |
                   (static_cast<std::uint32_t>(m[off + 4 * i + 1]) << 8) |
                   (static_cast<std::uint32_t>(m[off + 4 * i + 2]) << 16) |
                   (static_cast<std::uint32_t>(m[off + 4 * i + 3]) << 24);
        std::uint32_t aa = a, bb = b, cc = c, dd = d;
        static constexpr int r1[4] = {3, 7, 11, 19}, r2[4] = {3, 5, 9, 13}, r3[4] = {3, 9, 11, 15};
        for (int i = 0; i < 16; ++i) {
            std::uint32_t t = a + F(b, c, d) + x[i];
            a = d, d = c, c = b, b = rotl(t, r1[i % 4]);
        }
        static constexpr int o2[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
        for (int i = 0; i < 16; ++i) {
            std::uint32_t t = a + G(b, c, d) + x[o2[i]] + 0x5a827999;
            a = d, d = c, c = b, b = rotl(t, r2[i % 4]);
        }
        static constexpr int o3[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};
        for (int i = 0; i < 16; ++i) {
            std::uint32_t t = a + H(b, c, d) + x[o3[i]] + 0x6ed9eba1;
            a = d, d = c, c = b, b = rotl(t, r3[i % 4]);
        }
        a += aa, b += bb, c += cc, d += dd;
    }
    std::array<std::uint8_t, 16> out{};
    std::uint32_t words[4] = {a, b, c, d};
    for (int i = 0; i < 4; ++i)
        for (int k = 0; k < 4; ++k)
            out[4 * i + k] = static_cast<std::uint8_t>(words[i] >> (8 * k));
    return out;
}

NtHash nt_hash(std::string_view password) {
    return md4(utf16le(password));
}

NtHash nt_hash_from_hex(std::string_view hex) {
    if (hex.size() != 32)
        throw NtlmError("an NT hash is 32 hex digits, not " + std::to_string(hex.size()));
    NtHash out{};
    auto nibble = [&](char ch) -> int {
        if (ch >= '0' && ch <= '9') return ch - '0';
        if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
        throw NtlmError("NT hash: '" + std::string(1, ch) + "' is not a hex digit");
    };
    for (std::size_t i = 0; i < 16; ++i)
        out[i] = static_cast<std::uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
    return out;
}

Rc4::Rc4(std::span<const std::uint8_t> key) {
    if (key.empty()) throw NtlmError("RC4 with an empty key");
    for (int i = 0; i < 256; ++i)
        s_[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
    std::uint8_t j = 0;
    for (std::size_t i = 0; i < 256; ++i) {
        j = static_cast<std::uint8_t>(j + s_[i] + key[i % key.size()]);
        std::swap(s_[i], s_[j]);
    }
}

void Rc4::apply(std::span<std::uint8_t> data) {
    for (auto& byte : data) {
        i_ = static_cast<std::uint8_t>(i_ + 1);
        j_ = static_cast<std::uint8_t>(j_ + s_[i_]);
        std::swap(s_[i_], s_[j_]);
        byte ^= s_[static_cast<std::uint8_t>(s_[i_] + s_[j_])];
    }
}

std::array<std::uint8_t, 16> ntowf_v2(const NtHash& hash, std::string_view user,
                                      std::string_view domain) {
    return hmac_md5(hash, utf16le(upper(user) + std::string(domain)));
}

NtlmSession NtlmSession::derive(const NtlmMessage& challenge, const NtlmMessage& authenticate,
                                const NtHash& secret) {
    const std::string account = authenticate.domain + "\\" + authenticate.user;
    if (challenge.type != 2 || challenge.server_challenge.size() != 8)
        throw NtlmKeyError("no CHALLENGE (server challenge) for the AUTHENTICATE of " + account);
    if (authenticate.type != 3) throw NtlmKeyError("not an AUTHENTICATE message");
    if (!authenticate.ntlm_v2())
        throw NtlmKeyError("the AUTHENTICATE of " + account +
                           " carries an NTLMv1/LM response: only NTLMv2 sessions are decoded");
    auto response_key = ntowf_v2(secret, authenticate.user, authenticate.domain);
    std::span<const std::uint8_t> nt(authenticate.nt_response);
    auto proof = nt.first(16);
    auto temp = nt.subspan(16);
    auto expected = hmac_md5(response_key, challenge.server_challenge, temp);
    if (CRYPTO_memcmp(expected.data(), proof.data(), 16) != 0)
        throw NtlmKeyError("the secret does not match the NTLMv2 response of " + account +
                           " (wrong password or NT hash for this account)");
    Key session_base = hmac_md5(response_key, proof);
    NtlmSession s;
    s.flags_ = authenticate.flags;
    if ((s.flags_ & kNtlmNegotiateKeyExchange) && authenticate.encrypted_session_key.size() == 16) {
        std::copy(authenticate.encrypted_session_key.begin(),
                  authenticate.encrypted_session_key.end(), s.exported_.begin());
        Rc4(session_base).apply(s.exported_);
    } else {
        s.exported_ = session_base;
    }
    s.init_sides();
    return s;
}

NtlmSession NtlmSession::from_exported_key(const std::array<std::uint8_t, 16>& exported,
                                           std::uint32_t flags) {
    NtlmSession s;
    s.exported_ = exported;
    s.flags_ = flags;
    s.init_sides();
    return s;
}

void NtlmSession::init_sides() {
    if (!(flags_ & kNtlmNegotiateExtendedSessionSecurity))
        throw NtlmKeyError("NTLM without extended session security: not decoded");
    std::size_t seal_length = (flags_ & kNtlmNegotiate128)  ? 16
                              : (flags_ & kNtlmNegotiate56) ? 7
                                                            : 5;
    std::span<const std::uint8_t> seal_base(exported_.data(), seal_length);
    client_.signing = md5(exported_, bytes_of(kClientSign));
    server_.signing = md5(exported_, bytes_of(kServerSign));
    client_.sealing = md5(seal_base, bytes_of(kClientSeal));
    server_.sealing = md5(seal_base, bytes_of(kServerSeal));
    for (Side* s : {&client_, &server_}) {
        s->rc4.emplace(s->sealing);
        s->sequence = 0;
    }
}

void NtlmSession::restart_after_spnego() {
    for (Side* s : {&client_, &server_}) {
        s->rc4.emplace(s->sealing);
        s->sequence = std::max<std::uint32_t>(s->sequence, 1);
    }
}

std::vector<std::uint8_t> NtlmSession::seal(NtlmDirection direction,
                                            std::span<const std::uint8_t> plain) {
    Side& s = side(direction);
    auto seq = le32(s.sequence);
    std::vector<std::uint8_t> out(16 + plain.size());
    if (!plain.empty()) std::memcpy(out.data() + 16, plain.data(), plain.size());
    s.rc4->apply(std::span<std::uint8_t>(out.data() + 16, plain.size()));
    auto mac = hmac_md5(s.signing, seq, plain);
    std::memcpy(out.data() + 4, mac.data(), 8);
    if (flags_ & kNtlmNegotiateKeyExchange)
        s.rc4->apply(std::span<std::uint8_t>(out.data() + 4, 8));
    out[0] = 1;
    std::memcpy(out.data() + 12, seq.data(), 4);
    ++s.sequence;
    return out;
}

std::vector<std::uint8_t> NtlmSession::unseal(NtlmDirection direction,
                                              std::span<const std::uint8_t> signature,
                                              std::span<const std::uint8_t> sealed) {
    Side& s = side(direction);
    if (signature.size() != 16 || signature[0] != 1 || signature[1] || signature[2] || signature[3])
        throw NtlmError("not an NTLM message signature (version 1, 16 bytes)");
    std::uint32_t seq = static_cast<std::uint32_t>(signature[12]) |
                        (static_cast<std::uint32_t>(signature[13]) << 8) |
                        (static_cast<std::uint32_t>(signature[14]) << 16) |
                        (static_cast<std::uint32_t>(signature[15]) << 24);
    if (seq != s.sequence)
        throw NtlmError("message with sequence number " + std::to_string(seq) + " where " +
                        std::to_string(s.sequence) + " was expected (replayed, reordered or lost)");
    std::vector<std::uint8_t> plain(sealed.begin(), sealed.end());
    s.rc4->apply(plain);
    std::array<std::uint8_t, 8> checksum{};
    std::copy(signature.begin() + 4, signature.begin() + 12, checksum.begin());
    if (flags_ & kNtlmNegotiateKeyExchange) s.rc4->apply(checksum);
    auto mac = hmac_md5(s.signing, le32(seq), plain);
    if (CRYPTO_memcmp(mac.data(), checksum.data(), 8) != 0)
        throw NtlmError("the NTLM signature of message " + std::to_string(seq) +
                        " does not verify (tampered, or wrong keys)");
    ++s.sequence;
    return plain;
}

} // namespace wec::auth

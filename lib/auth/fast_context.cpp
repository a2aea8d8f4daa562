// RFC 4121 wrap tokens (aes-cts-hmac-sha1-96, RFC 3961/3962; aes-cts-hmac-sha2, RFC 8009) on
// OpenSSL for live contexts. See fast_context.hpp for what is checked against MIT, and when MIT
// decides.
#include "auth/fast_context.hpp"

#include "auth/cbc_sha1_internal.hpp"
#include "common/handle.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <initializer_list>
#include <iterator>
#include <mutex>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wec::auth {
namespace {

using CipherPtr = Handle<EVP_CIPHER, EVP_CIPHER_free>;
using CipherCtxPtr = Handle<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using MacPtr = Handle<EVP_MAC, EVP_MAC_free>;
using MacCtxPtr = Handle<EVP_MAC_CTX, EVP_MAC_CTX_free>;
using KdfPtr = Handle<EVP_KDF, EVP_KDF_free>;
using KdfCtxPtr = Handle<EVP_KDF_CTX, EVP_KDF_CTX_free>;

// The enctypes with a fast path. RFC 3962 (sha1-96): keys by DK (KRB5KDF), HMAC over the
// plaintext, then encrypt. RFC 8009 (sha2): keys by KDF-HMAC-SHA2 (SP 800-108 counter mode,
// OpenSSL's KBKDF), encrypt, then HMAC over the cipher state (16 zero bytes for GSS) and the
// ciphertext. Both: a 16-byte confounder, AES-CBC-CTS (CS3) with IV 0, a truncated HMAC.
struct Suite {
    std::int32_t enctype;
    std::size_t key_len; // base key = Ke
    std::size_t ki_len;  // HMAC key
    std::size_t tag;     // truncated HMAC
    const char* digest;  // HMAC's hash
    bool rfc8009;        // encrypt-then-MAC, KDF-HMAC-SHA2
    int aes;             // 0: AES-128, 1: AES-256
    int slot;            // index in Verdicts
};
constexpr Suite kSuites[] = {
    {17, 16, 16, 12, "SHA1", false, 0, 0},  // aes128-cts-hmac-sha1-96
    {18, 32, 32, 12, "SHA1", false, 1, 1},  // aes256-cts-hmac-sha1-96
    {19, 16, 16, 16, "SHA256", true, 0, 2}, // aes128-cts-hmac-sha256-128
    {20, 32, 24, 24, "SHA384", true, 1, 3}, // aes256-cts-hmac-sha384-192
};

const Suite* suite_of(std::int32_t enctype) {
    for (const Suite& s : kSuites)
        if (s.enctype == enctype) return &s;
    return nullptr;
}

constexpr int kUsageAcceptorSeal = 22;
constexpr int kUsageInitiatorSeal = 24;
constexpr std::uint8_t kFlagSentByAcceptor = 0x01;
constexpr std::uint8_t kFlagSealed = 0x02;
constexpr std::uint8_t kFlagAcceptorSubkey = 0x04;
constexpr std::size_t kBlock = 16; // AES block = confounder = header copy

// What MIT's gss_wrap_iov uses without a TRAILER: RRC = header copy + HMAC (28, 32, 40), and
// the HEADER buffer = token header + confounder + RRC (60, 64, 72).
constexpr std::size_t rrc_of(const Suite& s) {
    return 16 + s.tag;
}
constexpr std::size_t header_of(const Suite& s) {
    return 16 + kBlock + rrc_of(s);
}

// Bodies from this size on are sealed with the stitched AES-CBC + HMAC-SHA1 (sha1 enctypes).
constexpr std::size_t kStitchedMin = 256;

bool stitched_available() {
    static const bool available = detail::cbc_sha1_available(); // a fact about this CPU
    return available;
}

// 1.2.840.113554.1.2.2.5.6 (GSS_KRB5_EXPORT_LUCID_SEC_CONTEXT_OID) with the version arc 1: the
// inquiry behind gss_krb5_export_lucid_sec_context, which then deletes the context.
gss_OID_desc lucid_v1_oid = {12,
                             const_cast<char*>("\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x05\x06\x01")};

// ---- the once-per-process verdict per enctype --------------------------------------------

enum Verdict : int { Unknown = 0, Verified = 1, Refused = 2 };

// Write-once facts about this process's libraries (like krb/crypto.cpp's self-test results):
// Unknown until the first context of the enctype has been tested.
struct Verdicts {
    std::mutex testing; // one self-test at a time
    std::array<std::atomic<int>, std::size(kSuites)> by_enctype{};
    std::atomic<int>& of(const Suite& suite) {
        return by_enctype[static_cast<std::size_t>(suite.slot)];
    }
};
Verdicts& verdicts() {
    static Verdicts v;
    return v;
}

// ---- MIT's wrap/unwrap, the WinRM layout (as gss.cpp calls them) ------------------------------

bool mit_wrap(gss_ctx_id_t ctx, std::span<const std::uint8_t> plain, Sealed& out) {
    out.ciphertext.assign(plain.begin(), plain.end());
    std::array<std::uint8_t, 64> padding{};
    gss_iov_buffer_desc iov[3];
    iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER;
    iov[0].buffer = {0, nullptr};
    iov[1].type = GSS_IOV_BUFFER_TYPE_DATA;
    iov[1].buffer = {out.ciphertext.size(), out.ciphertext.data()};
    iov[2].type = GSS_IOV_BUFFER_TYPE_PADDING;
    iov[2].buffer = {0, nullptr};
    OM_uint32 minor = 0;
    int conf = 0;
    if (GSS_ERROR(gss_wrap_iov_length(&minor, ctx, 1, GSS_C_QOP_DEFAULT, &conf, iov, 3)))
        return false;
    if (iov[2].buffer.length > padding.size()) return false;
    out.header.resize(iov[0].buffer.length);
    iov[0].buffer.value = out.header.data();
    iov[2].buffer.value = padding.data();
    if (GSS_ERROR(gss_wrap_iov(&minor, ctx, 1, GSS_C_QOP_DEFAULT, &conf, iov, 3)) || conf == 0 ||
        iov[2].buffer.length != 0)
        return false;
    out.header.resize(iov[0].buffer.length);
    return true;
}

bool mit_unwrap(gss_ctx_id_t ctx, std::vector<std::uint8_t> header,
                std::vector<std::uint8_t>& data) {
    gss_iov_buffer_desc iov[2];
    iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER;
    iov[0].buffer = {header.size(), header.data()};
    iov[1].type = GSS_IOV_BUFFER_TYPE_DATA;
    iov[1].buffer = {data.size(), data.data()};
    OM_uint32 minor = 0;
    int conf = 0;
    gss_qop_t qop = 0;
    const OM_uint32 major = gss_unwrap_iov(&minor, ctx, &conf, &qop, iov, 2);
    return !GSS_ERROR(major) && conf != 0 && iov[1].buffer.length == data.size();
}

// The lucid view of an established krb5 context (copies of its keys and sequence numbers).
struct Lucid {
    bool initiate = false;
    std::uint64_t send_seq = 0;
    std::uint64_t recv_seq = 0;
    bool have_acceptor_subkey = false;
    std::int32_t ctx_enctype = 0;
    std::vector<std::uint8_t> ctx_key;
    std::int32_t acceptor_enctype = 0;
    std::vector<std::uint8_t> acceptor_key;

    ~Lucid() {
        OPENSSL_cleanse(ctx_key.data(), ctx_key.size());
        OPENSSL_cleanse(acceptor_key.data(), acceptor_key.size());
    }
    // The enctype of the key this side seals with.
    std::int32_t send_enctype() const {
        return have_acceptor_subkey ? acceptor_enctype : ctx_enctype;
    }
};

std::optional<Lucid> read_lucid(gss_ctx_id_t ctx) {
    OM_uint32 minor = 0;
    gss_buffer_set_t set = GSS_C_NO_BUFFER_SET;
    if (GSS_ERROR(gss_inquire_sec_context_by_oid(&minor, ctx, &lucid_v1_oid, &set))) return {};
    void* raw = nullptr;
    if (set != GSS_C_NO_BUFFER_SET && set->count == 1 && set->elements[0].length == sizeof raw)
        std::memcpy(&raw, set->elements[0].value, sizeof raw);
    gss_release_buffer_set(&minor, &set);
    if (raw == nullptr) return {};
    std::optional<Lucid> out;
    const auto* l = static_cast<const gss_krb5_lucid_context_v1_t*>(raw);
    auto copy = [](const gss_krb5_lucid_key_t& k) {
        const auto* p = static_cast<const std::uint8_t*>(k.data);
        return p ? std::vector<std::uint8_t>(p, p + k.length) : std::vector<std::uint8_t>{};
    };
    if (l->version == 1 && l->protocol == 1) { // RFC 4121 (CFX)
        out.emplace();
        out->initiate = l->initiate != 0;
        out->send_seq = l->send_seq;
        out->recv_seq = l->recv_seq;
        out->have_acceptor_subkey = l->cfx_kd.have_acceptor_subkey != 0;
        out->ctx_enctype = static_cast<std::int32_t>(l->cfx_kd.ctx_key.type);
        out->ctx_key = copy(l->cfx_kd.ctx_key);
        if (out->have_acceptor_subkey) {
            out->acceptor_enctype = static_cast<std::int32_t>(l->cfx_kd.acceptor_subkey.type);
            out->acceptor_key = copy(l->cfx_kd.acceptor_subkey);
        }
    }
    gss_krb5_free_lucid_sec_context(&minor, raw);
    return out;
}

bool usable_key(std::int32_t enctype, const std::vector<std::uint8_t>& key) {
    const Suite* s = suite_of(enctype);
    return s != nullptr && key.size() == s->key_len;
}

} // namespace

// ---- the OpenSSL composition ------------------------------------------------------------

// Ke and Ki for one (base key, usage). The OpenSSL contexts are made per message from these
// (a few hundred nanoseconds against the tens of microseconds of a WinRM body), so that an idle
// connection keeps no more than these bytes.
struct UsageKeys {
    const Suite* suite = nullptr;
    std::array<unsigned char, 32> ke{};
    std::array<unsigned char, 32> ki{};

    ~UsageKeys() {
        OPENSSL_cleanse(ke.data(), ke.size());
        OPENSSL_cleanse(ki.data(), ki.size());
    }
};

struct FastContext::State {
    Lucid lucid;
    std::uint64_t send_seq = 0;
    std::uint8_t send_flags = 0;
    int send_usage = 0;
    int recv_usage = 0;
    MacPtr mac;       // HMAC (fetched once per context; the digest is set per key)
    CipherPtr cbc[2]; // AES-128-CBC, AES-256-CBC
    CipherPtr cts[2]; // AES-128-CBC-CTS, AES-256-CBC-CTS
    std::optional<UsageKeys> send;
    std::optional<UsageKeys> recv_ctx;      // tokens without the AcceptorSubkey flag
    std::optional<UsageKeys> recv_acceptor; // tokens with it (when there is one)

    static std::unique_ptr<State> make(const Lucid& l, bool initiate);
};

namespace {

// The key for (usage || suffix), `len` bytes: DK (RFC 3961 5.1) with OpenSSL's KRB5KDF for
// RFC 3962, KDF-HMAC-SHA2 (RFC 8009 5: SP 800-108 counter mode, label = usage || suffix, no
// context, 32-bit counter and length) with OpenSSL's KBKDF for RFC 8009.
bool derive(const Suite& suite, std::span<const std::uint8_t> base, int usage, unsigned char suffix,
            unsigned char* out, std::size_t len) {
    KdfPtr kdf(EVP_KDF_fetch(nullptr, suite.rfc8009 ? "KBKDF" : "KRB5KDF", nullptr));
    if (!kdf) return false;
    KdfCtxPtr k(EVP_KDF_CTX_new(kdf.get()));
    if (!k) return false;
    unsigned char constant[5] = {
        static_cast<unsigned char>(usage >> 24), static_cast<unsigned char>(usage >> 16),
        static_cast<unsigned char>(usage >> 8), static_cast<unsigned char>(usage), suffix};
    std::string cipher = suite.aes == 0 ? "AES-128-CBC" : "AES-256-CBC";
    std::string mac = "HMAC", digest = suite.digest, mode = "COUNTER";
    std::vector<unsigned char> key(base.begin(), base.end());
    const OSSL_PARAM dk[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_CIPHER, cipher.data(), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key.data(), key.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_CONSTANT, constant, sizeof constant),
        OSSL_PARAM_construct_end()};
    const OSSL_PARAM kbkdf[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, mode.data(), 0),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, mac.data(), 0),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest.data(), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key.data(), key.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, constant, sizeof constant),
        OSSL_PARAM_construct_end()};
    const bool ok = EVP_KDF_derive(k.get(), out, len, suite.rfc8009 ? kbkdf : dk) == 1;
    OPENSSL_cleanse(key.data(), key.size());
    return ok;
}

std::optional<UsageKeys> usage_keys(std::int32_t enctype, std::span<const std::uint8_t> base,
                                    int usage) {
    if (!usable_key(enctype, {base.begin(), base.end()})) return std::nullopt;
    std::optional<UsageKeys> k(std::in_place);
    k->suite = suite_of(enctype);
    const Suite& suite = *k->suite;
    if (!derive(suite, base, usage, 0xAA, k->ke.data(), suite.key_len) ||
        !derive(suite, base, usage, 0x55, k->ki.data(), suite.ki_len))
        return std::nullopt;
    return k;
}

// AES-CBC (no padding: the blocks before the last two) and AES-CBC-CTS (CS3: the last two)
// keyed with Ke, for one message.
struct Ciphers {
    CipherCtxPtr cbc;
    CipherCtxPtr cts;
};

bool make_ciphers(const FastContext::State& s, const UsageKeys& k, bool encrypt, Ciphers& c) {
    const int which = k.suite->aes;
    char cs3[] = "CS3"; // RFC 3962: always swap the last two blocks
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_CIPHER_PARAM_CTS_MODE, cs3, 0),
        OSSL_PARAM_construct_end()};
    const std::array<unsigned char, kBlock> iv{};
    const int enc = encrypt ? 1 : 0;
    c.cbc.reset(EVP_CIPHER_CTX_new());
    c.cts.reset(EVP_CIPHER_CTX_new());
    return c.cbc && c.cts &&
           EVP_CipherInit_ex2(c.cbc.get(), s.cbc[which].get(), k.ke.data(), iv.data(), enc,
                              nullptr) == 1 &&
           EVP_CIPHER_CTX_set_padding(c.cbc.get(), 0) == 1 &&
           EVP_CipherInit_ex2(c.cts.get(), s.cts[which].get(), k.ke.data(), iv.data(), enc,
                              params) == 1;
}

MacCtxPtr make_hmac(const FastContext::State& s, const Suite& suite) {
    MacCtxPtr h(EVP_MAC_CTX_new(s.mac.get()));
    std::string digest = suite.digest;
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest.data(), 0),
        OSSL_PARAM_construct_end()};
    if (h && EVP_MAC_CTX_set_params(h.get(), params) != 1) h.reset();
    return h;
}

bool cipher(EVP_CIPHER_CTX* c, const unsigned char* iv, const std::uint8_t* in, std::size_t n,
            std::uint8_t* out) {
    int len = 0, last = 0;
    return EVP_CipherInit_ex2(c, nullptr, nullptr, iv, -1, nullptr) == 1 &&
           EVP_CipherUpdate(c, out, &len, in, static_cast<int>(n)) == 1 &&
           EVP_CipherFinal_ex(c, out + len, &last) == 1 &&
           static_cast<std::size_t>(len + last) == n;
}

// HMAC with Ki over the concatenation of `parts` (the full HMAC; the tag is its first bytes).
bool hmac(EVP_MAC_CTX* h, const UsageKeys& k,
          std::initializer_list<std::span<const std::uint8_t>> parts,
          std::array<unsigned char, EVP_MAX_MD_SIZE>& out) {
    std::size_t len = 0;
    if (EVP_MAC_init(h, k.ki.data(), k.suite->ki_len, nullptr) != 1) return false;
    for (const auto& p : parts)
        if (!p.empty() && EVP_MAC_update(h, p.data(), p.size()) != 1) return false;
    return EVP_MAC_final(h, out.data(), &len, out.size()) == 1 && len >= k.suite->tag;
}

// RFC 8009's cipher state for GSS (MIT passes none): 16 zero bytes, the first HMAC input.
constexpr std::array<std::uint8_t, kBlock> kZeroIv{};

// The wire layout: after the 16-byte token header, (ciphertext || tag) rotated right by RRC =
// 16 + t (t = tag bytes: 12, 16, 24). With the ciphertext C = E(confounder | data | header copy)
// (n + 32 bytes):
//   header[16..32] = C[n+16..n+32], header[32..32+t] = tag, header[32+t..48+t] = C[0..16],
//   data = C[16..n+16] (in place).
// Position `pos` of C (or of the plaintext P laid out the same way) in the two buffers:
struct Layout {
    std::uint8_t* header; // header_of(suite) bytes
    std::uint8_t* data;
    std::size_t n;
    std::size_t tag;
    std::uint8_t* first() const { return header + 32 + tag; } // C[0..16]
    std::uint8_t& at(std::size_t pos) const {
        if (pos < 16) return first()[pos];
        if (pos < n + 16) return data[pos - 16];
        return header[16 + (pos - n - 16)];
    }
};

} // namespace

std::unique_ptr<FastContext::State> FastContext::State::make(const Lucid& l, bool initiate) {
    auto s = std::make_unique<State>();
    s->lucid = l;
    s->lucid.initiate = initiate;
    // The mirror used by the self-test (the peer's role) sends with the peer's sequence.
    s->send_seq = initiate == l.initiate ? l.send_seq : l.recv_seq;
    s->send_usage = initiate ? kUsageInitiatorSeal : kUsageAcceptorSeal;
    s->recv_usage = initiate ? kUsageAcceptorSeal : kUsageInitiatorSeal;
    s->send_flags = static_cast<std::uint8_t>((initiate ? 0 : kFlagSentByAcceptor) | kFlagSealed |
                                              (l.have_acceptor_subkey ? kFlagAcceptorSubkey : 0));
    s->mac.reset(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    s->cbc[0].reset(EVP_CIPHER_fetch(nullptr, "AES-128-CBC", nullptr));
    s->cbc[1].reset(EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr));
    s->cts[0].reset(EVP_CIPHER_fetch(nullptr, "AES-128-CBC-CTS", nullptr));
    s->cts[1].reset(EVP_CIPHER_fetch(nullptr, "AES-256-CBC-CTS", nullptr));
    if (!s->mac || !s->cbc[0] || !s->cbc[1] || !s->cts[0] || !s->cts[1]) return nullptr;
    if (l.have_acceptor_subkey) {
        s->send = usage_keys(l.acceptor_enctype, l.acceptor_key, s->send_usage);
        s->recv_acceptor = usage_keys(l.acceptor_enctype, l.acceptor_key, s->recv_usage);
    } else {
        s->send = usage_keys(l.ctx_enctype, l.ctx_key, s->send_usage);
    }
    // Tokens without the AcceptorSubkey flag use the context key (when its enctype is ours).
    s->recv_ctx = usage_keys(l.ctx_enctype, l.ctx_key, s->recv_usage);
    if (!s->send || !make_hmac(*s, *s->send->suite)) return nullptr;
    return s;
}

FastContext::FastContext(std::unique_ptr<State> state) : s_(std::move(state)) {}
FastContext::~FastContext() = default;

std::int32_t FastContext::enctype() const {
    return s_->send->suite->enctype;
}

bool FastContext::enabled_by_environment() {
    const char* v = std::getenv("WEC_KRB_CRYPTO");
    return v == nullptr || std::string_view(v) != "mit";
}

void FastContext::disagreement() {
    verdicts().of(*s_->send->suite).store(Refused);
}

Sealed FastContext::wrap(std::span<const std::uint8_t> plaintext) {
    Sealed out;
    out.header.resize(header_size());
    out.ciphertext.resize(plaintext.size());
    wrap_into(plaintext, out.header, out.ciphertext);
    return out;
}

std::size_t FastContext::header_size() const {
    return header_of(*s_->send->suite);
}

void FastContext::wrap_into(std::span<const std::uint8_t> plaintext,
                            std::span<std::uint8_t> header_out,
                            std::span<std::uint8_t> ciphertext_out) {
    State& s = *s_;
    const std::size_t n = plaintext.size();
    if (n > 0x7fff0000) throw GssError("gss_wrap_iov", "message too long");
    const UsageKeys& k = *s.send;
    const Suite& suite = *k.suite;
    if (header_out.size() != header_of(suite) || ciphertext_out.size() != n)
        throw GssError("gss_wrap_iov", "wrong output sizes for the wrap token");
    struct {
        std::span<std::uint8_t> header, ciphertext;
    } out{header_out, ciphertext_out};
    std::fill(out.header.begin(), out.header.end(), std::uint8_t{0});
    std::array<std::uint8_t, 16> hdr = {0x05, 0x04, s.send_flags, 0xff, 0, 0, 0, 0};
    for (int i = 0; i < 8; ++i)
        hdr[static_cast<std::size_t>(8 + i)] =
            static_cast<std::uint8_t>(s.send_seq >> (56 - 8 * i));
    std::array<std::uint8_t, kBlock> conf{};
    std::array<unsigned char, EVP_MAX_MD_SIZE> tag{};
    // P = conf | data | hdr (RRC = 0 in the copy); CBC over all but the last 16 + m bytes, then
    // CTS (CS3) over those with the last CBC block as IV.
    const std::size_t total = n + 32;
    const std::size_t m = total % kBlock == 0 ? kBlock : total % kBlock;
    const std::size_t bulk = total - kBlock - m; // 0 or >= 16, a multiple of 16
    const Layout out_at{out.header.data(), out.ciphertext.data(), n, suite.tag};
    // RFC 3962 on a body: the CBC part and the HMAC of the plaintext in one pass
    // (cbc_sha1_internal.hpp), keyed per message as the OpenSSL contexts are.
    const bool stitched = !suite.rfc8009 && n >= kStitchedMin && stitched_available();
    Ciphers c;
    const MacCtxPtr mac = stitched ? MacCtxPtr() : make_hmac(s, suite);
    // RFC 3962 MACs the plaintext (before encryption), RFC 8009 the ciphertext (after).
    if ((!stitched && !mac) || !make_ciphers(s, k, true, c) ||
        RAND_bytes(conf.data(), static_cast<int>(conf.size())) != 1 ||
        (!suite.rfc8009 && !stitched && !hmac(mac.get(), k, {conf, plaintext, hdr}, tag)))
        throw GssError("gss_wrap_iov", "OpenSSL failed (cipher, confounder or HMAC)");

    std::array<unsigned char, kBlock> iv{};
    if (stitched) {
        detail::CbcSha1Key key;
        detail::cbc_sha1_init(key, {k.ke.data(), suite.key_len}, {k.ki.data(), suite.ki_len});
        detail::CbcSha1 cs(key);
        // The first 64 bytes of P (conf and the first 48 of data), then whole 64-byte blocks
        // of data while inside the CBC part, the rest of the CBC part, the rest of the HMAC.
        std::array<std::uint8_t, 64> first{}, first_out{};
        std::memcpy(first.data(), conf.data(), kBlock);
        std::memcpy(first.data() + kBlock, plaintext.data(), 48);
        cs.encrypt_and_hash(first.data(), first_out.data(), 1, iv);
        std::memcpy(out_at.first(), first_out.data(), kBlock);
        std::memcpy(out.ciphertext.data(), first_out.data() + kBlock, 48);
        const std::size_t blocks = (bulk - 64) / 64; // bulk <= n + 16
        cs.encrypt_and_hash(plaintext.data() + 48, out.ciphertext.data() + 48, blocks, iv);
        const std::size_t done = 48 + 64 * blocks; // of data
        cs.update(plaintext.subspan(done));        // before it is encrypted (in place or not)
        cs.update(hdr);
        cs.encrypt(plaintext.data() + done, out.ciphertext.data() + done,
                   (bulk - kBlock - done) / kBlock, iv);
        const auto full = cs.final();
        std::memcpy(tag.data(), full.data(), full.size());
        OPENSSL_cleanse(first.data(), first.size());
    } else if (bulk >= kBlock) {
        if (!cipher(c.cbc.get(), iv.data(), conf.data(), kBlock, out_at.first()) ||
            (bulk > kBlock && !cipher(c.cbc.get(), out_at.first(), plaintext.data(), bulk - kBlock,
                                      out.ciphertext.data())))
            throw GssError("gss_wrap_iov", "OpenSSL AES-CBC failed");
        const std::uint8_t* last =
            bulk > kBlock ? out.ciphertext.data() + (bulk - 2 * kBlock) : out_at.first();
        std::memcpy(iv.data(), last, kBlock);
    }
    std::array<std::uint8_t, 2 * kBlock> tail_in{}, tail_out{};
    const std::size_t tail = kBlock + m;
    for (std::size_t i = 0; i < tail; ++i) {
        const std::size_t pos = bulk + i;
        tail_in[i] = pos < kBlock   ? conf[pos]
                     : pos < n + 16 ? plaintext[pos - 16]
                                    : hdr[pos - n - 16];
    }
    if (!cipher(c.cts.get(), iv.data(), tail_in.data(), tail, tail_out.data()))
        throw GssError("gss_wrap_iov", "OpenSSL AES-CBC-CTS failed");
    for (std::size_t i = 0; i < tail; ++i)
        out_at.at(bulk + i) = tail_out[i];
    if (suite.rfc8009 &&
        !hmac(mac.get(), k,
              {kZeroIv, {out_at.first(), kBlock}, out.ciphertext, {&out.header[16], kBlock}}, tag))
        throw GssError("gss_wrap_iov", "OpenSSL HMAC failed");
    std::memcpy(&out.header[32], tag.data(), suite.tag);
    hdr[6] = 0;
    hdr[7] = static_cast<std::uint8_t>(rrc_of(suite));
    std::memcpy(out.header.data(), hdr.data(), hdr.size());
    OPENSSL_cleanse(tail_in.data(), tail_in.size());
    OPENSSL_cleanse(conf.data(), conf.size());
    ++s.send_seq;
}

FastContext::Unwrapped FastContext::unwrap(std::span<const std::uint8_t> header,
                                           std::span<std::uint8_t> data) {
    State& s = *s_;
    const std::size_t n = data.size();
    if (header.size() < 16 || n > 0x7fff0000) return Unwrapped::NotHandled;
    const std::uint8_t flags = header[2];
    // Only what MIT's gss_wrap_iov produces for this context's peer; the rest goes to MIT.
    const std::uint8_t expected_direction = s.lucid.initiate ? kFlagSentByAcceptor : 0;
    if (header[0] != 0x05 || header[1] != 0x04 || header[3] != 0xff ||
        (flags & ~(kFlagSentByAcceptor | kFlagSealed | kFlagAcceptorSubkey)) != 0 ||
        (flags & kFlagSealed) == 0 || (flags & kFlagSentByAcceptor) != expected_direction)
        return Unwrapped::NotHandled;
    const std::optional<UsageKeys>& k =
        (s.lucid.have_acceptor_subkey && (flags & kFlagAcceptorSubkey)) ? s.recv_acceptor
                                                                        : s.recv_ctx;
    if (!k) return Unwrapped::NotHandled;
    const UsageKeys& key = *k;
    const Suite& suite = *key.suite;
    const std::size_t header_len = header_of(suite);
    if (header.size() != header_len || header[4] != 0 || header[5] != 0 || header[6] != 0 ||
        header[7] != rrc_of(suite))
        return Unwrapped::NotHandled;
    // RFC 3962 on a body: the CBC part decrypted and the plaintext MACed in one pass
    // (cbc_sha1_internal.hpp), as wrap_into() seals it.
    const bool stitched = !suite.rfc8009 && n >= kStitchedMin && stitched_available();
    Ciphers c;
    const MacCtxPtr mac = stitched ? MacCtxPtr() : make_hmac(s, suite);
    if ((!stitched && !mac) || !make_ciphers(s, key, false, c)) return Unwrapped::NotHandled;

    std::array<std::uint8_t, 16 + kBlock + 16 + EVP_MAX_MD_SIZE> h{};
    std::memcpy(h.data(), header.data(), header_len);
    const Layout in_at{h.data(), data.data(), n, suite.tag};
    const std::size_t total = n + 32;
    const std::size_t m = total % kBlock == 0 ? kBlock : total % kBlock;
    const std::size_t bulk = total - kBlock - m;
    const std::size_t tail = kBlock + m;
    std::array<unsigned char, EVP_MAX_MD_SIZE> tag{};
    // The encrypted header copy: the token header with RRC = 0 (MIT compares TOK_ID, flags,
    // filler and sequence number; this is at least as strict).
    auto copy_matches = [&](const std::array<std::uint8_t, 16>& copy) {
        return std::memcmp(copy.data(), h.data(), 6) == 0 && copy[6] == 0 && copy[7] == 0 &&
               std::memcmp(copy.data() + 8, h.data() + 8, 8) == 0;
    };
    std::array<std::uint8_t, 2 * kBlock> tail_in{}, tail_out{};
    for (std::size_t i = 0; i < tail; ++i)
        tail_in[i] = in_at.at(bulk + i);
    std::array<unsigned char, kBlock> iv{}, conf{};
    if (bulk >= kBlock)
        std::memcpy(iv.data(), bulk > kBlock ? data.data() + (bulk - 2 * kBlock) : in_at.first(),
                    kBlock);

    if (suite.rfc8009) {
        // Encrypt-then-MAC: the tag and the header copy are checked before `data` is touched,
        // so a refused token needs no restoring.
        if (!hmac(mac.get(), key, {kZeroIv, {in_at.first(), kBlock}, data, {&h[16], kBlock}},
                  tag) ||
            CRYPTO_memcmp(tag.data(), &h[32], suite.tag) != 0 ||
            !cipher(c.cts.get(), iv.data(), tail_in.data(), tail, tail_out.data()))
            return Unwrapped::Refused;
        std::array<std::uint8_t, 16> copy{};
        for (std::size_t i = 0; i < tail; ++i)
            if (bulk + i >= n + 16) copy[bulk + i - n - 16] = tail_out[i];
        if (!copy_matches(copy)) return Unwrapped::Refused;
        // The confounder's block is not needed; the data blocks before the tail follow it.
        if (bulk > kBlock &&
            !cipher(c.cbc.get(), in_at.first(), data.data(), bulk - kBlock, data.data()))
            throw GssError("gss_unwrap_iov", "OpenSSL AES-CBC failed on an intact token");
        for (std::size_t i = 0; i < tail; ++i) {
            const std::size_t pos = bulk + i;
            if (pos >= kBlock && pos < n + 16) data[pos - 16] = tail_out[i];
        }
        OPENSSL_cleanse(tail_out.data(), tail_out.size());
        return Unwrapped::Ok;
    }

    bool ok = true;
    std::optional<detail::CbcSha1Key> stitched_key;
    std::optional<detail::CbcSha1> cs;
    std::size_t hashed = 0; // of data, by the stitched pass
    if (stitched) {
        stitched_key.emplace();
        detail::cbc_sha1_init(*stitched_key, {key.ke.data(), suite.key_len},
                              {key.ki.data(), suite.ki_len});
        cs.emplace(*stitched_key);
        // The first 64 bytes of C (its first block from the header, 48 of data), then whole
        // 64-byte blocks of data while inside the CBC part, then the rest of the CBC part
        // (decrypted only: the HMAC takes it with the tail's plaintext). bulk >= 256.
        std::array<std::uint8_t, 64> first{};
        std::memcpy(first.data(), in_at.first(), kBlock);
        std::memcpy(first.data() + kBlock, data.data(), 48);
        std::array<std::uint8_t, kBlock> chain{};
        cs->decrypt_and_hash(first.data(), first.data(), 1, chain);
        std::memcpy(conf.data(), first.data(), kBlock);
        std::memcpy(data.data(), first.data() + kBlock, 48);
        const std::size_t blocks = (bulk - 64) / 64;
        cs->decrypt_and_hash(data.data() + 48, data.data() + 48, blocks, chain);
        hashed = 48 + 64 * blocks;
        cs->decrypt(data.data() + hashed, data.data() + hashed, (bulk - kBlock - hashed) / kBlock,
                    chain);
        OPENSSL_cleanse(first.data(), first.size());
    } else if (bulk >= kBlock) {
        ok = cipher(c.cbc.get(), kZeroIv.data(), in_at.first(), kBlock, conf.data()) &&
             (bulk == kBlock ||
              cipher(c.cbc.get(), in_at.first(), data.data(), bulk - kBlock, data.data()));
    }
    ok = ok && cipher(c.cts.get(), iv.data(), tail_in.data(), tail, tail_out.data());
    std::array<std::uint8_t, 16> copy{};
    if (ok) {
        for (std::size_t i = 0; i < tail; ++i) {
            const std::size_t pos = bulk + i;
            if (pos < kBlock)
                conf[pos] = tail_out[i];
            else if (pos < n + 16)
                data[pos - 16] = tail_out[i];
            else
                copy[pos - n - 16] = tail_out[i];
        }
        if (stitched) {
            cs->update(data.subspan(hashed));
            cs->update(copy);
            const auto full = cs->final();
            std::memcpy(tag.data(), full.data(), full.size());
        } else {
            ok = hmac(mac.get(), key, {conf, data, copy}, tag);
        }
        ok = ok && CRYPTO_memcmp(tag.data(), &h[32], suite.tag) == 0 && copy_matches(copy);
    }
    if (ok) return Unwrapped::Ok;
    // Put the ciphertext back for MIT: CBC-encrypt the decrypted bulk again (IV 0, the
    // confounder's block first), and the tail bytes from the saved copy.
    if (bulk > kBlock) {
        // Encryption needs an encrypting context for this key (refused tokens only).
        Ciphers enc;
        std::array<unsigned char, kBlock> first{};
        if (!make_ciphers(s, key, true, enc) ||
            !cipher(enc.cbc.get(), kZeroIv.data(), conf.data(), kBlock, first.data()) ||
            !cipher(enc.cbc.get(), first.data(), data.data(), bulk - kBlock, data.data()))
            throw GssError("gss_unwrap_iov", "OpenSSL failed to restore a refused token");
    }
    for (std::size_t i = 0; i < tail; ++i) {
        const std::size_t pos = bulk + i;
        if (pos >= kBlock && pos < n + 16) data[pos - 16] = tail_in[i];
    }
    return Unwrapped::Refused;
}

namespace {

bool same_oid(gss_const_OID a, gss_const_OID b) {
    return a->length == b->length && std::memcmp(a->elements, b->elements, a->length) == 0;
}

} // namespace

bool FastContext::self_test(gss_ctx_id_t mit, const void* lucid) {
    const Lucid& l = *static_cast<const Lucid*>(lucid);
    auto same_state = State::make(l, l.initiate);
    auto peer_state = State::make(l, !l.initiate);
    if (!same_state || !peer_state) return false;
    FastContext same(std::move(same_state)), peer(std::move(peer_state));
    for (std::size_t len : {0u, 1u, 15u, 16u, 17u, 31u, 32u, 33u, 48u, 100u, 1000u, 4097u}) {
        std::vector<std::uint8_t> msg(len);
        for (std::size_t i = 0; i < len; ++i)
            msg[i] = static_cast<std::uint8_t>(i * 31 + len);
        // MIT seals (this side's role) -> the fast path unseals (the peer's role); the fast
        // path's token header equals MIT's for the same sequence number.
        Sealed from_mit;
        if (!mit_wrap(mit, msg, from_mit)) return false;
        const Sealed from_same = same.wrap(msg);
        if (from_mit.header.size() != header_of(*same.s_->send->suite) ||
            from_mit.ciphertext.size() != len || from_same.ciphertext.size() != len ||
            !std::equal(from_mit.header.begin(), from_mit.header.begin() + 16,
                        from_same.header.begin()))
            return false;
        std::vector<std::size_t> tamper_header = {20, 35, 50};
        for (std::size_t at : tamper_header) {
            auto h = from_mit.header;
            auto d = from_mit.ciphertext;
            h[at] ^= 0x01;
            if (peer.unwrap(h, d) != Unwrapped::Refused || d != from_mit.ciphertext) return false;
        }
        if (len > 0) {
            auto d = from_mit.ciphertext;
            d[len / 2] ^= 0x80;
            const auto before = d;
            if (peer.unwrap(from_mit.header, d) != Unwrapped::Refused || d != before) return false;
        }
        auto d = from_mit.ciphertext;
        if (peer.unwrap(from_mit.header, d) != Unwrapped::Ok || d != msg) return false;
        // The fast path seals (the peer's role) -> MIT unseals, and refuses it tampered.
        const Sealed from_peer = peer.wrap(msg);
        auto bad_header = from_peer.header;
        bad_header[50] ^= 0x01;
        auto bad = from_peer.ciphertext;
        if (mit_unwrap(mit, bad_header, bad)) return false;
        if (len > 0) {
            bad = from_peer.ciphertext;
            bad[len / 2] ^= 0x80;
            if (mit_unwrap(mit, from_peer.header, bad)) return false;
        }
        auto good = from_peer.ciphertext;
        if (!mit_unwrap(mit, from_peer.header, good) || good != msg) return false;
    }
    return true;
}

std::unique_ptr<FastContext> FastContext::create(ContextHandle& ctx) {
    try {
        if (!enabled_by_environment() || ctx.get() == GSS_C_NO_CONTEXT) return nullptr;
        OM_uint32 minor = 0;
        OM_uint32 flags = 0;
        gss_OID mech = GSS_C_NO_OID;
        int open = 0;
        if (GSS_ERROR(gss_inquire_context(&minor, ctx.get(), nullptr, nullptr, nullptr, &mech,
                                          &flags, nullptr, &open)) ||
            open == 0 || mech == GSS_C_NO_OID)
            return nullptr;
        // Kerberos only (under SPNEGO too: the inquiry reports the negotiated mechanism).
        if (!same_oid(mech, gss_mech_krb5) && !same_oid(mech, gss_mech_krb5_wrong)) return nullptr;
        if (flags & GSS_C_DCE_STYLE) return nullptr;
        auto lucid = read_lucid(ctx.get());
        if (!lucid) return nullptr;
        const Suite* suite = suite_of(lucid->send_enctype());
        if (suite == nullptr) return nullptr;
        auto& verdict = verdicts().of(*suite);
        if (verdict.load() == Unknown) {
            std::lock_guard lock(verdicts().testing);
            if (verdict.load() == Unknown) {
                // Two MIT copies of the context: one goes on serving this connection, the other
                // is the self-test's (it advances its own sequence numbers).
                Buffer token;
                if (GSS_ERROR(gss_export_sec_context(&minor, ctx.inout(), token.get()))) {
                    verdict.store(Refused);
                    return nullptr;
                }
                gss_buffer_desc in{token.bytes().size(),
                                   const_cast<std::uint8_t*>(token.bytes().data())};
                ContextHandle live, copy;
                const bool imported = !GSS_ERROR(gss_import_sec_context(&minor, &in, live.inout()));
                const bool copied =
                    imported && !GSS_ERROR(gss_import_sec_context(&minor, &in, copy.inout()));
                ctx = std::move(live);
                verdict.store(copied && self_test(copy.get(), &*lucid) ? Verified : Refused);
            }
        }
        if (verdict.load() != Verified || ctx.get() == GSS_C_NO_CONTEXT) return nullptr;
        auto state = State::make(*lucid, lucid->initiate);
        if (!state) return nullptr;
        return std::make_unique<FastContext>(std::move(state));
    } catch (const std::exception&) {
        return nullptr;
    }
}

} // namespace wec::auth

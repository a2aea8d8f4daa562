#include "krb/crypto.hpp"

#include "common/handle.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <krb5/krb5.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <string>
#include <string_view>

namespace wec::krb::crypto {
namespace {

Status status_of(krb5_error_code code) {
    switch (code) {
    case 0:
        return Status::Ok;
    case KRB5KRB_AP_ERR_BAD_INTEGRITY:
        return Status::Integrity;
    case KRB5_BAD_ENCTYPE:
    case KRB5_PROG_ETYPE_NOSUPP:
        return Status::BadEnctype;
    case KRB5_BAD_MSIZE:
    case KRB5_BAD_KEYSIZE:
        return Status::BadSize;
    default:
        return Status::Failed;
    }
}

krb5_keyblock keyblock(const Key& key) {
    krb5_keyblock kb{};
    kb.magic = KV5M_KEYBLOCK;
    kb.enctype = key.enctype;
    kb.length = static_cast<unsigned int>(key.bytes.size());
    kb.contents = const_cast<krb5_octet*>(key.bytes.data());
    return kb;
}

krb5_enc_data enc_data(std::int32_t enctype, std::span<const std::uint8_t> cipher) {
    krb5_enc_data in{};
    in.magic = KV5M_ENC_DATA;
    in.enctype = enctype;
    in.ciphertext.magic = KV5M_DATA;
    in.ciphertext.length = static_cast<unsigned int>(cipher.size());
    in.ciphertext.data = const_cast<char*>(reinterpret_cast<const char*>(cipher.data()));
    return in;
}

using CipherPtr = Handle<EVP_CIPHER, EVP_CIPHER_free>;
using CipherCtxPtr = Handle<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using MacPtr = Handle<EVP_MAC, EVP_MAC_free>;
using MacCtxPtr = Handle<EVP_MAC_CTX, EVP_MAC_CTX_free>;
using KdfPtr = Handle<EVP_KDF, EVP_KDF_free>;
using KdfCtxPtr = Handle<EVP_KDF_CTX, EVP_KDF_CTX_free>;

constexpr std::size_t kAesBlock = 16; // also the confounder length
constexpr std::size_t kHmacSha1_96 = 12;

} // namespace

// aes{128,256}-cts-hmac-sha1-96 decryption (RFC 3962) on OpenSSL primitives, for one base key.
// Derived keys are cached per key usage, like MIT's krb5_key.
struct Accelerated {
    struct Derived {
        int usage = 0;
        CipherCtxPtr decrypt; // AES-CBC-CTS (CS3) keyed with Ke
        std::array<unsigned char, 32> ki{};
    };

    std::vector<std::uint8_t> base;
    const char* cbc_name = nullptr; // KRB5KDF's cipher
    CipherPtr cts;
    MacPtr mac;
    KdfPtr kdf;
    MacCtxPtr hmac;
    std::vector<std::unique_ptr<Derived>> derived; // two or three usages per connection

    // Null when OpenSSL lacks a primitive (then MIT does all the work).
    static std::unique_ptr<Accelerated> create(const Key& key) {
        auto a = std::make_unique<Accelerated>();
        const char* cts_name = nullptr;
        if (key.enctype == ENCTYPE_AES128_CTS_HMAC_SHA1_96 && key.bytes.size() == 16) {
            a->cbc_name = "AES-128-CBC";
            cts_name = "AES-128-CBC-CTS";
        } else if (key.enctype == ENCTYPE_AES256_CTS_HMAC_SHA1_96 && key.bytes.size() == 32) {
            a->cbc_name = "AES-256-CBC";
            cts_name = "AES-256-CBC-CTS";
        } else {
            return nullptr;
        }
        a->base = key.bytes;
        a->cts.reset(EVP_CIPHER_fetch(nullptr, cts_name, nullptr));
        a->mac.reset(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
        a->kdf.reset(EVP_KDF_fetch(nullptr, "KRB5KDF", nullptr));
        if (!a->cts || !a->mac || !a->kdf) return nullptr;
        a->hmac.reset(EVP_MAC_CTX_new(a->mac.get()));
        if (!a->hmac) return nullptr;
        char sha1[] = "SHA1";
        const OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha1, 0),
            OSSL_PARAM_construct_end()};
        if (EVP_MAC_CTX_set_params(a->hmac.get(), params) != 1) return nullptr;
        return a;
    }

    // DK(base, usage || suffix) (RFC 3961 5.1), as many bytes as the base key.
    bool derive(int usage, unsigned char suffix, unsigned char* out) const {
        KdfCtxPtr k(EVP_KDF_CTX_new(kdf.get()));
        if (!k) return false;
        unsigned char constant[5] = {
            static_cast<unsigned char>(usage >> 24), static_cast<unsigned char>(usage >> 16),
            static_cast<unsigned char>(usage >> 8), static_cast<unsigned char>(usage), suffix};
        std::string cipher(cbc_name);
        std::vector<unsigned char> key(base.begin(), base.end());
        const OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_CIPHER, cipher.data(), 0),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key.data(), key.size()),
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_CONSTANT, constant, sizeof constant),
            OSSL_PARAM_construct_end()};
        const int ok = EVP_KDF_derive(k.get(), out, base.size(), params);
        OPENSSL_cleanse(key.data(), key.size());
        return ok == 1;
    }

    const Derived* keys_for(int usage) {
        for (const auto& d : derived)
            if (d->usage == usage) return d.get();
        auto d = std::make_unique<Derived>();
        d->usage = usage;
        std::array<unsigned char, 32> ke{};
        const bool ok = derive(usage, 0xAA, ke.data()) && derive(usage, 0x55, d->ki.data());
        d->decrypt.reset(ok ? EVP_CIPHER_CTX_new() : nullptr);
        char cs3[] = "CS3"; // RFC 3962: always swap the last two blocks
        const OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_CIPHER_PARAM_CTS_MODE, cs3, 0),
            OSSL_PARAM_construct_end()};
        const std::array<unsigned char, kAesBlock> iv{};
        const bool ready = d->decrypt && EVP_DecryptInit_ex2(d->decrypt.get(), cts.get(), ke.data(),
                                                             iv.data(), params) == 1;
        OPENSSL_cleanse(ke.data(), ke.size());
        if (!ready) return nullptr;
        derived.push_back(std::move(d));
        return derived.back().get();
    }

    // Same contract as krb5_k_decrypt: `out` = the plaintext without the confounder.
    Status decrypt(int usage, std::span<const std::uint8_t> cipher,
                   std::vector<std::uint8_t>& out) {
        if (cipher.size() < kAesBlock + kHmacSha1_96) return Status::BadSize;
        if (cipher.size() - kHmacSha1_96 > 0x7fffffff) return Status::BadSize;
        out.resize(cipher.size() - kHmacSha1_96);
        const Status st = decrypt_raw(usage, cipher, out.data());
        if (st == Status::Ok) out.erase(out.begin(), out.begin() + kAesBlock);
        return st;
    }

    // The confounder and the plaintext (cipher.size() - 12 bytes) into `out`.
    Status decrypt_raw(int usage, std::span<const std::uint8_t> cipher, unsigned char* out) {
        if (cipher.size() < kAesBlock + kHmacSha1_96) return Status::BadSize;
        const Derived* d = keys_for(usage);
        if (d == nullptr) return Status::Failed;
        const std::size_t n = cipher.size() - kHmacSha1_96;
        if (n > 0x7fffffff) return Status::BadSize;
        const std::array<unsigned char, kAesBlock> iv{};
        int len = 0, last = 0;
        if (EVP_DecryptInit_ex2(d->decrypt.get(), nullptr, nullptr, iv.data(), nullptr) != 1 ||
            EVP_DecryptUpdate(d->decrypt.get(), out, &len, cipher.data(), static_cast<int>(n)) !=
                1 ||
            EVP_DecryptFinal_ex(d->decrypt.get(), out + len, &last) != 1 ||
            static_cast<std::size_t>(len + last) != n)
            return Status::Failed;
        std::array<unsigned char, EVP_MAX_MD_SIZE> mac_out{};
        std::size_t mac_len = 0;
        if (EVP_MAC_init(hmac.get(), d->ki.data(), base.size(), nullptr) != 1 ||
            EVP_MAC_update(hmac.get(), out, n) != 1 ||
            EVP_MAC_final(hmac.get(), mac_out.data(), &mac_len, mac_out.size()) != 1 ||
            mac_len < kHmacSha1_96)
            return Status::Failed;
        if (CRYPTO_memcmp(mac_out.data(), cipher.data() + n, kHmacSha1_96) != 0)
            return Status::Integrity;
        return Status::Ok;
    }

    ~Accelerated() {
        OPENSSL_cleanse(base.data(), base.size());
        for (auto& d : derived)
            OPENSSL_cleanse(d->ki.data(), d->ki.size());
    }
};

bool accelerate_from_environment() {
    const char* v = std::getenv("WEC_KRB_CRYPTO");
    return v == nullptr || std::string_view(v) != "mit";
}

Context::Context(bool accelerate) : accelerate_(accelerate) {
    krb5_error_code code = krb5_init_context(&ctx_);
    if (code != 0) {
        // A broken KRB5_CONFIG must not stop offline decryption: the secure context ignores the
        // environment.
        code = krb5_init_secure_context(&ctx_);
        if (code != 0)
            throw wec::Error("krb5_init_context failed (error " + std::to_string(code) + ")");
    }
}

Context::~Context() {
    if (ctx_) krb5_free_context(ctx_);
}

bool valid_enctype(std::int32_t enctype) {
    return krb5_c_valid_enctype(enctype) != 0;
}

Status decrypt(const Context& ctx, const Key& key, int usage, std::span<const std::uint8_t> cipher,
               std::vector<std::uint8_t>& out) {
    if (cipher.size() > 0x7fffffff) return Status::BadSize;
    const krb5_keyblock kb = keyblock(key);
    const krb5_enc_data in = enc_data(key.enctype, cipher);
    out.resize(cipher.size());
    krb5_data output{};
    output.magic = KV5M_DATA;
    output.length = static_cast<unsigned int>(out.size());
    output.data = reinterpret_cast<char*>(out.data());
    const krb5_error_code code =
        krb5_c_decrypt(ctx.get(), &kb, static_cast<krb5_keyusage>(usage), nullptr, &in, &output);
    if (code != 0) {
        out.clear();
        return status_of(code);
    }
    out.resize(output.length);
    return Status::Ok;
}

namespace {

// The accelerated path must give MIT's answer: messages MIT encrypts (both WinRM usages, lengths
// around the block size so that both plain CBC and ciphertext stealing are exercised) must
// decrypt to the same bytes, and a flipped bit must fail the integrity check. Whether the
// composition agrees with MIT does not depend on the key, so a fixed key is used.
bool self_test(std::int32_t enctype, std::size_t key_size) {
    try {
        const Key key{enctype, std::vector<std::uint8_t>(key_size, 0x5c)};
        const KeyHandle mit(std::make_shared<const Context>(false), key);
        const auto fast = Accelerated::create(key);
        if (!fast) return false;
        std::vector<std::uint8_t> plain, cipher, out;
        for (int usage : {22, 24}) {
            for (std::size_t len : {0u, 1u, 15u, 16u, 17u, 32u, 33u, 100u}) {
                plain.resize(len);
                for (std::size_t i = 0; i < len; ++i)
                    plain[i] = static_cast<std::uint8_t>(i * 7 + static_cast<std::size_t>(usage));
                if (mit.encrypt(usage, plain, cipher) != Status::Ok) return false;
                if (fast->decrypt(usage, cipher, out) != Status::Ok || out != plain) return false;
                cipher[cipher.size() / 2] ^= 0x01;
                if (fast->decrypt(usage, cipher, out) != Status::Integrity) return false;
            }
        }
        return true;
    } catch (const wec::Error&) {
        return false;
    }
}

// Once per process and enctype (a constant once computed; it cost ~100 us per key when every
// connection's keys ran it, which dominated captures of many short connections).
bool fast_path_verified(std::int32_t enctype) {
    static const bool aes128 = self_test(ENCTYPE_AES128_CTS_HMAC_SHA1_96, 16);
    static const bool aes256 = self_test(ENCTYPE_AES256_CTS_HMAC_SHA1_96, 32);
    return enctype == ENCTYPE_AES128_CTS_HMAC_SHA1_96   ? aes128
           : enctype == ENCTYPE_AES256_CTS_HMAC_SHA1_96 ? aes256
                                                        : false;
}

} // namespace

KeyHandle::KeyHandle(std::shared_ptr<const Context> ctx, const Key& key)
    : ctx_(std::move(ctx)), key_(key) {
    const krb5_keyblock kb = keyblock(key_);
    const krb5_error_code code = krb5_k_create_key(ctx_->get(), &kb, &handle_);
    if (code != 0) {
        handle_ = nullptr;
        throw DecryptError(status_of(code) == Status::BadEnctype ? Reason::UnsupportedEnctype
                                                                 : Reason::Malformed,
                           "cannot use a " + enctype_name(key.enctype) + " key of " +
                               std::to_string(key.bytes.size()) + " bytes");
    }
    if (ctx_->accelerate() && fast_path_verified(key_.enctype)) fast_ = Accelerated::create(key_);
}

KeyHandle::~KeyHandle() {
    if (handle_) krb5_k_free_key(ctx_->get(), handle_);
}

Status KeyHandle::decrypt(int usage, std::span<const std::uint8_t> cipher,
                          std::vector<std::uint8_t>& out) const {
    if (fast_) {
        const Status st = fast_->decrypt(usage, cipher, out);
        // MIT gives the verdict on anything but success (wrong key, tampering, odd sizes).
        if (st == Status::Ok) return st;
    }
    return decrypt_mit(usage, cipher, out);
}

Status KeyHandle::decrypt_into(int usage, std::span<const std::uint8_t> cipher,
                               std::vector<std::uint8_t>& buffer,
                               std::span<const std::uint8_t>& plain) const {
    plain = {};
    if (fast_ && cipher.size() >= kAesBlock + kHmacSha1_96 &&
        cipher.size() - kHmacSha1_96 <= 0x7fffffff) {
        const std::size_t n = cipher.size() - kHmacSha1_96;
        if (buffer.size() < n) buffer.resize(n);
        if (fast_->decrypt_raw(usage, cipher, buffer.data()) == Status::Ok) {
            plain = std::span<const std::uint8_t>(buffer).subspan(kAesBlock, n - kAesBlock);
            return Status::Ok;
        }
    }
    // MIT gives the verdict on anything but success (as decrypt()).
    std::vector<std::uint8_t> out;
    const Status st = decrypt_mit(usage, cipher, out);
    if (st != Status::Ok) return st;
    if (buffer.size() < out.size()) buffer.resize(out.size());
    std::copy(out.begin(), out.end(), buffer.begin());
    plain = std::span<const std::uint8_t>(buffer).first(out.size());
    return st;
}

Status KeyHandle::encrypt(int usage, std::span<const std::uint8_t> plain,
                          std::vector<std::uint8_t>& out) const {
    if (plain.size() > 0x7fffffff) return Status::BadSize;
    std::size_t length = 0;
    krb5_error_code code = krb5_c_encrypt_length(ctx_->get(), key_.enctype, plain.size(), &length);
    if (code != 0) return status_of(code);
    out.resize(length);
    krb5_data input{};
    input.magic = KV5M_DATA;
    input.length = static_cast<unsigned int>(plain.size());
    input.data = const_cast<char*>(reinterpret_cast<const char*>(plain.data()));
    krb5_enc_data output{};
    output.magic = KV5M_ENC_DATA;
    output.enctype = key_.enctype;
    output.ciphertext.magic = KV5M_DATA;
    output.ciphertext.length = static_cast<unsigned int>(out.size());
    output.ciphertext.data = reinterpret_cast<char*>(out.data());
    code = krb5_k_encrypt(ctx_->get(), handle_, static_cast<krb5_keyusage>(usage), nullptr, &input,
                          &output);
    if (code != 0) {
        out.clear();
        return status_of(code);
    }
    out.resize(output.ciphertext.length);
    return Status::Ok;
}

Status KeyHandle::decrypt_mit(int usage, std::span<const std::uint8_t> cipher,
                              std::vector<std::uint8_t>& out) const {
    if (cipher.size() > 0x7fffffff) return Status::BadSize;
    const krb5_enc_data in = enc_data(key_.enctype, cipher);
    out.resize(cipher.size());
    krb5_data output{};
    output.magic = KV5M_DATA;
    output.length = static_cast<unsigned int>(out.size());
    output.data = reinterpret_cast<char*>(out.data());
    const krb5_error_code code = krb5_k_decrypt(
        ctx_->get(), handle_, static_cast<krb5_keyusage>(usage), nullptr, &in, &output);
    if (code != 0) {
        out.clear();
        return status_of(code);
    }
    out.resize(output.length);
    return Status::Ok;
}

Status KeyHandle::checksum(int usage, std::span<const std::uint8_t> data,
                           std::vector<std::uint8_t>& out) const {
    if (data.size() > 0x7fffffff) return Status::BadSize;
    krb5_data input{};
    input.magic = KV5M_DATA;
    input.length = static_cast<unsigned int>(data.size());
    input.data = const_cast<char*>(reinterpret_cast<const char*>(data.data()));
    krb5_checksum cksum{};
    const krb5_error_code code = krb5_k_make_checksum(
        ctx_->get(), 0, handle_, static_cast<krb5_keyusage>(usage), &input, &cksum);
    if (code != 0) return status_of(code);
    out.assign(cksum.contents, cksum.contents + cksum.length);
    krb5_free_checksum_contents(ctx_->get(), &cksum);
    return Status::Ok;
}

} // namespace wec::krb::crypto

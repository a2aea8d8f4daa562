#include "krb/crypto.hpp"

#include <krb5/krb5.h>
#include <string>

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

} // namespace

Context::Context() {
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
}

KeyHandle::~KeyHandle() {
    if (handle_) krb5_k_free_key(ctx_->get(), handle_);
}

Status KeyHandle::decrypt(int usage, std::span<const std::uint8_t> cipher,
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

// Differential fuzzing of the stitched AES-CBC + HMAC-SHA1 (lib/auth/cbc_sha1.cpp) against
// OpenSSL's AES-CBC and HMAC-SHA1. Input: a control byte (AES-128/256, in place or not, how many
// bytes are hashed before the stitched blocks and in what pieces after them), the AES key, the MAC
// key length and key, then the message. The ciphertext, the chained IV and the HMAC must be
// OpenSSL's, and CbcSha1::encrypt alone must match AES-CBC on the whole blocks after the stitched
// part. The same message then goes the decrypting way (unsealing): its middle taken as ciphertext,
// decrypt_and_hash must give OpenSSL's AES-CBC decryption, chained IV and the HMAC of
// lead | plaintext | rest, and CbcSha1::decrypt alone OpenSSL's on the whole blocks after it.
// On a CPU without AES-NI/SHA-NI there is nothing to compare (FastContext keeps OpenSSL).
#include "auth/cbc_sha1_internal.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <vector>

namespace {

using namespace wec::auth::detail;
using Bytes = std::vector<std::uint8_t>;

Bytes openssl_cbc(const Bytes& key, const std::array<std::uint8_t, 16>& iv, const std::uint8_t* in,
                  std::size_t n, bool encrypt = true) {
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    Bytes out(n + 16);
    int len = 0, last = 0;
    const bool ok = c != nullptr &&
                    EVP_CipherInit_ex(c, key.size() == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc(),
                                      nullptr, key.data(), iv.data(), encrypt ? 1 : 0) == 1 &&
                    EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
                    EVP_CipherUpdate(c, out.data(), &len, in, static_cast<int>(n)) == 1 &&
                    EVP_CipherFinal_ex(c, out.data() + len, &last) == 1;
    EVP_CIPHER_CTX_free(c);
    if (!ok) std::abort();
    out.resize(static_cast<std::size_t>(len + last));
    return out;
}

// HMAC-SHA1 with OpenSSL; its HMAC() takes a null key as "no new key": empty ones as a pointer
// to nothing.
bool openssl_hmac_equals(const Bytes& key, const Bytes& msg,
                         const std::array<std::uint8_t, 20>& mac) {
    static const std::uint8_t none = 0;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    return HMAC(EVP_sha1(), key.empty() ? &none : key.data(), static_cast<int>(key.size()),
                msg.empty() ? &none : msg.data(), msg.size(), md, &md_len) != nullptr &&
           md_len == mac.size() && std::equal(mac.begin(), mac.end(), md);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (!cbc_sha1_available() || size < 3) return 0;
    const std::uint8_t control = data[0];
    const std::size_t key_len = (control & 1) ? 32 : 16;
    const bool in_place = (control & 2) != 0;
    const std::size_t lead = 64 * ((control >> 2) & 3);      // hashed before the stitched blocks
    const std::size_t piece = 1 + ((control >> 4) & 15) * 7; // update() pieces after them
    const std::size_t mac_len = data[1] % 65;
    std::size_t at = 2;
    if (size < at + key_len + mac_len) return 0;
    const Bytes key(data + at, data + at + key_len);
    at += key_len;
    const Bytes mac_key(data + at, data + at + mac_len);
    at += mac_len;
    const Bytes msg(data + at, data + size);
    if (msg.size() < lead) return 0;
    const std::size_t n64 = (msg.size() - lead) / 64;

    CbcSha1Key k;
    cbc_sha1_init(k, key, mac_key);
    CbcSha1 cs(k);
    cs.update({msg.data(), lead});
    std::array<std::uint8_t, 16> iv{};
    Bytes middle(msg.begin() + static_cast<long>(lead),
                 msg.begin() + static_cast<long>(lead + 64 * n64));
    Bytes out(middle.size());
    cs.encrypt_and_hash(middle.data(), in_place ? middle.data() : out.data(), n64, iv);
    const Bytes& cipher = in_place ? middle : out;
    const Bytes expected = openssl_cbc(key, {}, msg.data() + lead, 64 * n64);
    if (cipher != expected) std::abort();
    if (n64 > 0 && !std::equal(iv.begin(), iv.end(), cipher.end() - 16)) std::abort();
    for (std::size_t p = lead + 64 * n64; p < msg.size(); p += piece)
        cs.update({msg.data() + p, std::min(piece, msg.size() - p)});
    if (!openssl_hmac_equals(mac_key, msg, cs.final())) std::abort();

    // AES-CBC alone on the whole blocks after the stitched part, chained from its IV.
    const std::size_t rest = (msg.size() - lead - 64 * n64) / 16;
    Bytes tail(msg.begin() + static_cast<long>(lead + 64 * n64),
               msg.begin() + static_cast<long>(lead + 64 * n64 + 16 * rest));
    const Bytes tail_expected = openssl_cbc(key, iv, tail.data(), tail.size());
    cs.encrypt(tail.data(), tail.data(), rest, iv);
    if (tail != tail_expected) std::abort();

    // Decrypting: the middle as ciphertext, chained from the IV the encryption ended with.
    CbcSha1 ds(k);
    ds.update({msg.data(), lead});
    const std::array<std::uint8_t, 16> iv0 = iv;
    Bytes dmiddle(msg.begin() + static_cast<long>(lead),
                  msg.begin() + static_cast<long>(lead + 64 * n64));
    Bytes dout(dmiddle.size());
    ds.decrypt_and_hash(dmiddle.data(), in_place ? dmiddle.data() : dout.data(), n64, iv);
    const Bytes& plain = in_place ? dmiddle : dout;
    if (plain != openssl_cbc(key, iv0, msg.data() + lead, 64 * n64, false)) std::abort();
    if (!std::equal(iv.begin(), iv.end(), n64 > 0 ? msg.data() + lead + 64 * n64 - 16 : iv0.data()))
        std::abort();
    for (std::size_t p = lead + 64 * n64; p < msg.size(); p += piece)
        ds.update({msg.data() + p, std::min(piece, msg.size() - p)});
    Bytes hashed(msg.begin(), msg.begin() + static_cast<long>(lead));
    hashed.insert(hashed.end(), plain.begin(), plain.end());
    hashed.insert(hashed.end(), msg.begin() + static_cast<long>(lead + 64 * n64), msg.end());
    if (!openssl_hmac_equals(mac_key, hashed, ds.final())) std::abort();
    const std::array<std::uint8_t, 16> iv1 = iv;
    Bytes dtail(msg.begin() + static_cast<long>(lead + 64 * n64),
                msg.begin() + static_cast<long>(lead + 64 * n64 + 16 * rest));
    const Bytes dtail_expected = openssl_cbc(key, iv1, dtail.data(), dtail.size(), false);
    ds.decrypt(dtail.data(), dtail.data(), rest, iv);
    if (dtail != dtail_expected) std::abort();
    return 0;
}

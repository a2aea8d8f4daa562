// The stitched AES-CBC + HMAC-SHA1 (lib/auth/cbc_sha1.cpp) against OpenSSL's AES-CBC and
// HMAC-SHA1, encrypting and decrypting: both key sizes, every length up to a few blocks and larger
// ones, hashing split at every kind of offset, in place and out of place.
#include "auth/cbc_sha1_internal.hpp"

#include <array>
#include <cstdint>
#include <fstream>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace wec::auth::detail;
using Bytes = std::vector<std::uint8_t>;

Bytes random_bytes(std::mt19937& rng, std::size_t n) {
    Bytes b(n);
    for (auto& x : b)
        x = static_cast<std::uint8_t>(rng());
    return b;
}

Bytes openssl_cbc(const Bytes& key, std::array<std::uint8_t, 16> iv, const Bytes& in,
                  bool encrypt = true) {
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    Bytes out(in.size() + 16);
    int len = 0, last = 0;
    const bool ok =
        c != nullptr &&
        EVP_CipherInit_ex(c, key.size() == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc(), nullptr,
                          key.data(), iv.data(), encrypt ? 1 : 0) == 1 &&
        EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
        EVP_CipherUpdate(c, out.data(), &len, in.data(), static_cast<int>(in.size())) == 1 &&
        EVP_CipherFinal_ex(c, out.data() + len, &last) == 1;
    EVP_CIPHER_CTX_free(c);
    EXPECT_TRUE(ok);
    out.resize(static_cast<std::size_t>(len + last));
    return out;
}

Bytes openssl_hmac(const Bytes& key, const Bytes& in) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EXPECT_NE(
        HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), in.data(), in.size(), md, &len),
        nullptr);
    return Bytes(md, md + len);
}

// Whether the kernel lists every CPU feature the stitched path needs.
bool cpu_flags_present() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("flags", 0) != 0) continue;
        std::istringstream words(line.substr(line.find(':') + 1));
        std::set<std::string> flags;
        for (std::string w; words >> w;)
            flags.insert(w);
        return flags.count("aes") && flags.count("sha_ni") && flags.count("ssse3") &&
               flags.count("sse4_1");
    }
    return false;
}

// The detection agrees with the kernel's view of the CPU (FastContext keeps OpenSSL without it;
// the project's machine has the extensions, so the comparisons below run there).
TEST(CbcSha1Available, MatchesTheCpuFlags) {
    EXPECT_EQ(cbc_sha1_available(), cpu_flags_present());
}

class CbcSha1Test : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_TRUE(cbc_sha1_available()) << "no AES-NI/SHA-NI on this CPU"; }
};

// encrypt_and_hash over `n64` blocks after `skip` hashed-only bytes (a multiple of 64), then
// update() with the rest in pieces of `piece` bytes.
void check(std::mt19937& rng, std::size_t key_len, std::size_t mac_len, std::size_t lead,
           std::size_t n64, std::size_t rest, std::size_t piece, bool in_place) {
    SCOPED_TRACE(testing::Message()
                 << "key " << key_len << " mac " << mac_len << " lead " << lead << " n64 " << n64
                 << " rest " << rest << " piece " << piece << (in_place ? " in place" : ""));
    const Bytes key = random_bytes(rng, key_len), mac_key = random_bytes(rng, mac_len);
    const Bytes msg = random_bytes(rng, lead + 64 * n64 + rest);
    std::array<std::uint8_t, 16> iv0{};
    for (auto& x : iv0)
        x = static_cast<std::uint8_t>(rng());
    CbcSha1Key k;
    cbc_sha1_init(k, key, mac_key);
    CbcSha1 cs(k);
    cs.update({msg.data(), lead});
    std::array<std::uint8_t, 16> iv = iv0;
    Bytes buffer(msg.begin() + static_cast<long>(lead),
                 msg.begin() + static_cast<long>(lead + 64 * n64));
    Bytes out(buffer.size(), 0xEE);
    cs.encrypt_and_hash(buffer.data(), in_place ? buffer.data() : out.data(), n64, iv);
    const Bytes& cipher = in_place ? buffer : out;
    const Bytes plain(msg.begin() + static_cast<long>(lead),
                      msg.begin() + static_cast<long>(lead + 64 * n64));
    EXPECT_EQ(cipher, openssl_cbc(key, iv0, plain));
    if (n64 > 0) {
        EXPECT_EQ(Bytes(iv.begin(), iv.end()), Bytes(cipher.end() - 16, cipher.end()));
    }
    for (std::size_t at = lead + 64 * n64; at < msg.size(); at += piece)
        cs.update({msg.data() + at, std::min(piece, msg.size() - at)});
    const auto mac = cs.final();
    EXPECT_EQ(Bytes(mac.begin(), mac.end()), openssl_hmac(mac_key, msg));
}

TEST_F(CbcSha1Test, MatchesOpenSslAesCbcAndHmacSha1) {
    std::mt19937 rng(15);
    for (std::size_t key_len : {16, 32})
        for (std::size_t mac_len : {16, 32, 20, 64})
            for (std::size_t lead : {0, 64, 128})
                for (std::size_t n64 : {0, 1, 2, 3, 7, 40})
                    for (std::size_t rest : {0, 1, 16, 55, 56, 63, 64, 65, 119, 120, 200})
                        check(rng, key_len, mac_len, lead, n64, rest, rest % 7 + 1,
                              (rest + n64) % 2 == 0);
}

TEST_F(CbcSha1Test, LargeBodiesInPlace) {
    std::mt19937 rng(4121);
    for (std::size_t key_len : {16, 32})
        for (std::size_t n64 : {1000, 2345})
            check(rng, key_len, key_len, 64, n64, 48, 48, true);
}

TEST_F(CbcSha1Test, CbcAloneMatchesOpenSsl) {
    std::mt19937 rng(3962);
    for (std::size_t key_len : {16, 32})
        for (std::size_t n16 : {0, 1, 2, 5, 64, 333}) {
            const Bytes key = random_bytes(rng, key_len), plain = random_bytes(rng, 16 * n16);
            CbcSha1Key k;
            cbc_sha1_init(k, key, key);
            const CbcSha1 cs(k);
            std::array<std::uint8_t, 16> iv{}, iv0{};
            iv0[3] = 7;
            iv = iv0;
            Bytes out = plain;
            cs.encrypt(out.data(), out.data(), n16, iv);
            EXPECT_EQ(out, openssl_cbc(key, iv0, plain)) << key_len << " " << n16;
        }
}

// decrypt_and_hash over `n64` blocks of ciphertext after `lead` hashed-only bytes, then update()
// with the rest in pieces of `piece` bytes: the plaintext is OpenSSL's AES-CBC decryption, the
// chained IV the last ciphertext block, the HMAC that of the plaintext message.
void check_decrypt(std::mt19937& rng, std::size_t key_len, std::size_t mac_len, std::size_t lead,
                   std::size_t n64, std::size_t rest, std::size_t piece, bool in_place) {
    SCOPED_TRACE(testing::Message()
                 << "decrypt: key " << key_len << " mac " << mac_len << " lead " << lead << " n64 "
                 << n64 << " rest " << rest << " piece " << piece << (in_place ? " in place" : ""));
    const Bytes key = random_bytes(rng, key_len), mac_key = random_bytes(rng, mac_len);
    const Bytes head = random_bytes(rng, lead), cipher = random_bytes(rng, 64 * n64),
                tail = random_bytes(rng, rest);
    std::array<std::uint8_t, 16> iv0{};
    for (auto& x : iv0)
        x = static_cast<std::uint8_t>(rng());
    const Bytes plain = openssl_cbc(key, iv0, cipher, false);
    ASSERT_EQ(plain.size(), cipher.size());
    CbcSha1Key k;
    cbc_sha1_init(k, key, mac_key);
    CbcSha1 cs(k);
    cs.update(head);
    std::array<std::uint8_t, 16> iv = iv0;
    Bytes buffer = cipher, out(cipher.size(), 0xEE);
    cs.decrypt_and_hash(buffer.data(), in_place ? buffer.data() : out.data(), n64, iv);
    EXPECT_EQ(in_place ? buffer : out, plain);
    if (!in_place) {
        EXPECT_EQ(buffer, cipher); // the input is only read
    }
    if (n64 > 0) {
        EXPECT_EQ(Bytes(iv.begin(), iv.end()), Bytes(cipher.end() - 16, cipher.end()));
    } else {
        EXPECT_EQ(iv, iv0);
    }
    for (std::size_t at = 0; at < tail.size(); at += piece)
        cs.update({tail.data() + at, std::min(piece, tail.size() - at)});
    const auto mac = cs.final();
    Bytes msg = head;
    msg.insert(msg.end(), plain.begin(), plain.end());
    msg.insert(msg.end(), tail.begin(), tail.end());
    EXPECT_EQ(Bytes(mac.begin(), mac.end()), openssl_hmac(mac_key, msg));
}

TEST_F(CbcSha1Test, DecryptMatchesOpenSslAesCbcAndHmacSha1) {
    std::mt19937 rng(4120);
    for (std::size_t key_len : {16, 32})
        for (std::size_t mac_len : {16, 32, 20, 64})
            for (std::size_t lead : {0, 64, 128})
                for (std::size_t n64 : {0, 1, 2, 3, 4, 7, 40})
                    for (std::size_t rest : {0, 1, 16, 55, 56, 63, 64, 65, 119, 120, 200})
                        check_decrypt(rng, key_len, mac_len, lead, n64, rest, rest % 7 + 1,
                                      (rest + n64) % 2 == 1);
}

TEST_F(CbcSha1Test, DecryptLargeBodiesInPlace) {
    std::mt19937 rng(4122);
    for (std::size_t key_len : {16, 32})
        for (std::size_t n64 : {1000, 3125}) // 64 KB, 200 KB
            check_decrypt(rng, key_len, key_len, 64, n64, 48, 48, true);
}

TEST_F(CbcSha1Test, CbcDecryptAloneMatchesOpenSsl) {
    std::mt19937 rng(3961);
    for (std::size_t key_len : {16, 32})
        for (std::size_t n16 : {0, 1, 2, 5, 64, 333}) {
            const Bytes key = random_bytes(rng, key_len), cipher = random_bytes(rng, 16 * n16);
            CbcSha1Key k;
            cbc_sha1_init(k, key, key);
            const CbcSha1 cs(k);
            std::array<std::uint8_t, 16> iv{}, iv0{};
            iv0[5] = 9;
            iv = iv0;
            Bytes out = cipher;
            cs.decrypt(out.data(), out.data(), n16, iv);
            EXPECT_EQ(out, openssl_cbc(key, iv0, cipher, false)) << key_len << " " << n16;
            if (n16 > 0) {
                EXPECT_EQ(Bytes(iv.begin(), iv.end()), Bytes(cipher.end() - 16, cipher.end()));
            }
        }
}

// A message encrypted with encrypt_and_hash (+ encrypt) and decrypted with decrypt_and_hash
// (+ decrypt), as a body is sealed and unsealed: the plaintext back, the same HMAC both sides.
TEST_F(CbcSha1Test, EncryptThenDecryptRoundTrips) {
    std::mt19937 rng(3962);
    for (std::size_t key_len : {16, 32})
        for (std::size_t n64 : {1, 5, 64}) {
            const Bytes key = random_bytes(rng, key_len), mac_key = random_bytes(rng, 20);
            const Bytes plain = random_bytes(rng, 64 * n64 + 16);
            CbcSha1Key k;
            cbc_sha1_init(k, key, mac_key);
            Bytes buffer = plain;
            std::array<std::uint8_t, 16> iv{};
            CbcSha1 seal(k);
            seal.encrypt_and_hash(buffer.data(), buffer.data(), n64, iv);
            seal.encrypt(buffer.data() + 64 * n64, buffer.data() + 64 * n64, 1, iv);
            seal.update({plain.data() + 64 * n64, 16});
            const auto sealed_mac = seal.final();
            ASSERT_NE(buffer, plain);
            iv = {};
            CbcSha1 unseal(k);
            unseal.decrypt_and_hash(buffer.data(), buffer.data(), n64, iv);
            unseal.decrypt(buffer.data() + 64 * n64, buffer.data() + 64 * n64, 1, iv);
            unseal.update({buffer.data() + 64 * n64, 16});
            EXPECT_EQ(buffer, plain) << key_len << " " << n64;
            EXPECT_EQ(unseal.final(), sealed_mac) << key_len << " " << n64;
        }
}

} // namespace

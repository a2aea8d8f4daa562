// The accelerated aes-sha1 path (OpenSSL primitives) against MIT krb5, which stays the reference.
#include "krb/crypto.hpp"

#include <cstdlib>
#include <gtest/gtest.h>
#include <memory>
#include <random>
#include <span>
#include <vector>

namespace {

using namespace wec::krb;
using crypto::Status;

std::vector<std::uint8_t> bytes_of(std::span<const std::uint8_t> s) {
    return {s.begin(), s.end()};
}

Key random_key(std::int32_t enctype, std::size_t size, std::mt19937& rng) {
    Key k;
    k.enctype = enctype;
    k.bytes.resize(size);
    for (auto& b : k.bytes)
        b = static_cast<std::uint8_t>(rng());
    return k;
}

std::vector<std::uint8_t> random_bytes(std::size_t n, std::mt19937& rng) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v)
        b = static_cast<std::uint8_t>(rng());
    return v;
}

struct Case {
    std::int32_t enctype;
    std::size_t key_size;
};

class Accelerated : public ::testing::TestWithParam<Case> {};

TEST_P(Accelerated, DecryptsWhatMitEncryptsAtEveryLength) {
    std::mt19937 rng(GetParam().enctype);
    auto ctx = std::make_shared<const crypto::Context>(true);
    crypto::KeyHandle key(ctx, random_key(GetParam().enctype, GetParam().key_size, rng));
    ASSERT_TRUE(key.accelerated());
    std::vector<std::uint8_t> cipher, fast, mit;
    std::vector<std::size_t> lengths;
    for (std::size_t n = 0; n <= 100; ++n)
        lengths.push_back(n);
    lengths.insert(lengths.end(), {4095, 4096, 4097, 65536 + 5, 3, 200});
    // decrypt_into reuses one buffer for all (it grows, then shorter messages follow).
    std::vector<std::uint8_t> buffer;
    std::span<const std::uint8_t> view;
    for (int usage : {22, 24, 1023}) {
        for (std::size_t n : lengths) {
            const auto plain = random_bytes(n, rng);
            ASSERT_EQ(key.encrypt(usage, plain, cipher), Status::Ok);
            ASSERT_EQ(key.decrypt(usage, cipher, fast), Status::Ok)
                << "usage " << usage << " n " << n;
            ASSERT_EQ(key.decrypt_mit(usage, cipher, mit), Status::Ok);
            EXPECT_EQ(fast, plain) << "usage " << usage << " n " << n;
            EXPECT_EQ(mit, plain);
            ASSERT_EQ(key.decrypt_into(usage, cipher, buffer, view), Status::Ok);
            EXPECT_EQ(bytes_of(view), plain) << "usage " << usage << " n " << n;
        }
    }
}

TEST_P(Accelerated, TamperingAndWrongUsageFailTheIntegrityCheck) {
    std::mt19937 rng(7);
    auto ctx = std::make_shared<const crypto::Context>(true);
    crypto::KeyHandle key(ctx, random_key(GetParam().enctype, GetParam().key_size, rng));
    ASSERT_TRUE(key.accelerated());
    const auto plain = random_bytes(1000, rng);
    std::vector<std::uint8_t> cipher, out;
    ASSERT_EQ(key.encrypt(24, plain, cipher), Status::Ok);
    for (std::size_t at : {std::size_t{0}, std::size_t{16}, cipher.size() / 2, cipher.size() - 13,
                           cipher.size() - 1}) {
        auto bad = cipher;
        bad[at] ^= 0x80;
        EXPECT_EQ(key.decrypt(24, bad, out), Status::Integrity) << "byte " << at;
        std::span<const std::uint8_t> view{plain};
        EXPECT_EQ(key.decrypt_into(24, bad, out, view), Status::Integrity) << "byte " << at;
        EXPECT_TRUE(view.empty());
    }
    EXPECT_EQ(key.decrypt(22, cipher, out), Status::Integrity);
    std::span<const std::uint8_t> view;
    EXPECT_EQ(key.decrypt_into(22, cipher, out, view), Status::Integrity);
    // A different key of the same enctype.
    crypto::KeyHandle other(ctx, random_key(GetParam().enctype, GetParam().key_size, rng));
    EXPECT_EQ(other.decrypt(24, cipher, out), Status::Integrity);
    EXPECT_EQ(other.decrypt_into(24, cipher, out, view), Status::Integrity);
    // The right key still decrypts into the buffer the failures used.
    ASSERT_EQ(key.decrypt_into(24, cipher, out, view), Status::Ok);
    EXPECT_EQ(bytes_of(view), plain);
    // Shorter than a confounder and a checksum.
    cipher.resize(27);
    EXPECT_EQ(key.decrypt(24, cipher, out), Status::BadSize);
    EXPECT_EQ(key.decrypt(24, std::span<const std::uint8_t>{}, out), Status::BadSize);
    EXPECT_EQ(key.decrypt_into(24, cipher, out, view), Status::BadSize);
    EXPECT_TRUE(view.empty());
}

INSTANTIATE_TEST_SUITE_P(Crypto, Accelerated, ::testing::Values(Case{17, 16}, Case{18, 32}),
                         [](const auto& param_info) {
                             return param_info.param.enctype == 17 ? "Aes128Sha1" : "Aes256Sha1";
                         });

TEST(Crypto, OtherEnctypesStayOnMit) {
    std::mt19937 rng(3);
    auto ctx = std::make_shared<const crypto::Context>(true);
    for (const Case c : {Case{19, 16}, Case{20, 32}}) {
        crypto::KeyHandle key(ctx, random_key(c.enctype, c.key_size, rng));
        EXPECT_FALSE(key.accelerated()) << c.enctype;
        const auto plain = random_bytes(333, rng);
        std::vector<std::uint8_t> cipher, out;
        ASSERT_EQ(key.encrypt(24, plain, cipher), Status::Ok);
        ASSERT_EQ(key.decrypt(24, cipher, out), Status::Ok);
        EXPECT_EQ(out, plain);
        std::vector<std::uint8_t> buffer;
        std::span<const std::uint8_t> view;
        ASSERT_EQ(key.decrypt_into(24, cipher, buffer, view), Status::Ok);
        EXPECT_EQ(bytes_of(view), plain);
    }
}

TEST(Crypto, MitOnlyContextAndEnvironmentSwitch) {
    std::mt19937 rng(5);
    auto ctx = std::make_shared<const crypto::Context>(false);
    crypto::KeyHandle key(ctx, random_key(18, 32, rng));
    EXPECT_FALSE(key.accelerated());
    const auto plain = random_bytes(64, rng);
    std::vector<std::uint8_t> cipher, out;
    ASSERT_EQ(key.encrypt(22, plain, cipher), Status::Ok);
    ASSERT_EQ(key.decrypt(22, cipher, out), Status::Ok);
    EXPECT_EQ(out, plain);
    std::vector<std::uint8_t> buffer(1000, 0xee); // larger than needed: only a part is used
    std::span<const std::uint8_t> view;
    ASSERT_EQ(key.decrypt_into(22, cipher, buffer, view), Status::Ok);
    EXPECT_EQ(bytes_of(view), plain);
    EXPECT_EQ(buffer.size(), 1000u);

    ::setenv("WEC_KRB_CRYPTO", "mit", 1);
    EXPECT_FALSE(crypto::accelerate_from_environment());
    ::setenv("WEC_KRB_CRYPTO", "auto", 1);
    EXPECT_TRUE(crypto::accelerate_from_environment());
    ::unsetenv("WEC_KRB_CRYPTO");
    EXPECT_TRUE(crypto::accelerate_from_environment());
}

} // namespace

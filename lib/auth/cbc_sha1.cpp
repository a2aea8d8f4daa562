// AES-CBC + HMAC-SHA1 in one pass (cbc_sha1_internal.hpp). The SHA-1 rounds follow Intel's
// SHA extensions reference (20 groups of 4 rounds, the message schedule 4 words at a time).
#include "auth/cbc_sha1_internal.hpp"

#include <algorithm>
#include <cstring>
#include <openssl/crypto.h>
#include <utility>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define WEC_CBC_SHA1_TARGET __attribute__((target("aes,sha,ssse3,sse4.1")))
#endif

namespace wec::auth::detail {

CbcSha1Key::~CbcSha1Key() {
    OPENSSL_cleanse(round_keys.data(), round_keys.size());
    OPENSSL_cleanse(decrypt_keys.data(), decrypt_keys.size());
    OPENSSL_cleanse(inner.data(), sizeof inner);
    OPENSSL_cleanse(outer.data(), sizeof outer);
}

CbcSha1::~CbcSha1() {
    OPENSSL_cleanse(buffer_.data(), buffer_.size());
    OPENSSL_cleanse(state_.data(), sizeof state_);
}

#if defined(__x86_64__)

bool cbc_sha1_available() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid(1, &a, &b, &c, &d) == 0) return false;
    const bool aes = (c & bit_AES) != 0, ssse3 = (c & bit_SSSE3) != 0,
               sse41 = (c & bit_SSE4_1) != 0;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
    const bool sha = (b & bit_SHA) != 0;
    return aes && ssse3 && sse41 && sha;
}

namespace {

// ---- SHA-1 -------------------------------------------------------------------------------------

struct Sha1Regs {
    __m128i abcd, e0, e1, m[4];
};

// Group G (rounds 4G..4G+3) of a block whose 4 message words were loaded into m[0..3].
template <int G>
WEC_CBC_SHA1_TARGET inline void sha1_group(Sha1Regs& r) {
    constexpr int f = G / 5;
    __m128i& cur = (G % 2 == 0) ? r.e0 : r.e1;
    __m128i& other = (G % 2 == 0) ? r.e1 : r.e0;
    __m128i& w = r.m[G % 4];
    if constexpr (G == 0)
        cur = _mm_add_epi32(cur, w);
    else
        cur = _mm_sha1nexte_epu32(cur, w);
    other = r.abcd;
    if constexpr (G >= 3 && G <= 18) r.m[(G + 1) % 4] = _mm_sha1msg2_epu32(r.m[(G + 1) % 4], w);
    r.abcd = _mm_sha1rnds4_epu32(r.abcd, cur, f);
    if constexpr (G >= 1 && G <= 16) r.m[(G + 3) % 4] = _mm_sha1msg1_epu32(r.m[(G + 3) % 4], w);
    if constexpr (G >= 2 && G <= 17) r.m[(G + 2) % 4] = _mm_xor_si128(r.m[(G + 2) % 4], w);
}

template <int... G>
WEC_CBC_SHA1_TARGET inline void sha1_groups(Sha1Regs& r, std::integer_sequence<int, G...>) {
    (sha1_group<G>(r), ...);
}

template <int From, int... G>
WEC_CBC_SHA1_TARGET inline void sha1_groups_from(Sha1Regs& r, std::integer_sequence<int, G...>) {
    (sha1_group<From + G>(r), ...);
}

WEC_CBC_SHA1_TARGET inline __m128i byte_swap_mask() {
    return _mm_set_epi64x(0x0001020304050607LL, 0x08090a0b0c0d0e0fLL);
}

// The state as the SHA extensions hold it: ABCD reversed in one register, E in the top lane.
WEC_CBC_SHA1_TARGET inline void sha1_load(const std::array<std::uint32_t, 5>& s, __m128i& abcd,
                                          __m128i& e) {
    abcd = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data())), 0x1B);
    e = _mm_set_epi32(static_cast<int>(s[4]), 0, 0, 0);
}

WEC_CBC_SHA1_TARGET inline void sha1_store(__m128i abcd, __m128i e,
                                           std::array<std::uint32_t, 5>& s) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(s.data()), _mm_shuffle_epi32(abcd, 0x1B));
    s[4] = static_cast<std::uint32_t>(_mm_extract_epi32(e, 3));
}

WEC_CBC_SHA1_TARGET void sha1_blocks(std::array<std::uint32_t, 5>& s, const std::uint8_t* in,
                                     std::size_t n64) {
    const __m128i mask = byte_swap_mask();
    Sha1Regs r;
    sha1_load(s, r.abcd, r.e0);
    for (std::size_t b = 0; b < n64; ++b, in += 64) {
        const __m128i abcd_save = r.abcd, e_save = r.e0;
        for (int i = 0; i < 4; ++i)
            r.m[i] = _mm_shuffle_epi8(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16 * i)), mask);
        sha1_groups(r, std::make_integer_sequence<int, 20>());
        r.e0 = _mm_sha1nexte_epu32(r.e0, e_save);
        r.abcd = _mm_add_epi32(r.abcd, abcd_save);
    }
    sha1_store(r.abcd, r.e0, s);
}

// ---- AES ---------------------------------------------------------------------------------------

template <int Rounds>
WEC_CBC_SHA1_TARGET inline __m128i aes_encrypt(__m128i x, const __m128i* rk) {
    x = _mm_xor_si128(x, _mm_load_si128(rk));
    for (int i = 1; i < Rounds; ++i)
        x = _mm_aesenc_si128(x, _mm_load_si128(rk + i));
    return _mm_aesenclast_si128(x, _mm_load_si128(rk + Rounds));
}

WEC_CBC_SHA1_TARGET inline __m128i expand(__m128i k, __m128i assist) {
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    return _mm_xor_si128(k, assist);
}

template <int Rcon>
WEC_CBC_SHA1_TARGET inline __m128i assist_ff(__m128i k) {
    return _mm_shuffle_epi32(_mm_aeskeygenassist_si128(k, Rcon), 0xFF);
}

WEC_CBC_SHA1_TARGET inline __m128i assist_aa(__m128i k) {
    return _mm_shuffle_epi32(_mm_aeskeygenassist_si128(k, 0), 0xAA);
}

WEC_CBC_SHA1_TARGET void aes128_schedule(const std::uint8_t* key, __m128i* rk) {
    rk[0] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));
    rk[1] = expand(rk[0], assist_ff<0x01>(rk[0]));
    rk[2] = expand(rk[1], assist_ff<0x02>(rk[1]));
    rk[3] = expand(rk[2], assist_ff<0x04>(rk[2]));
    rk[4] = expand(rk[3], assist_ff<0x08>(rk[3]));
    rk[5] = expand(rk[4], assist_ff<0x10>(rk[4]));
    rk[6] = expand(rk[5], assist_ff<0x20>(rk[5]));
    rk[7] = expand(rk[6], assist_ff<0x40>(rk[6]));
    rk[8] = expand(rk[7], assist_ff<0x80>(rk[7]));
    rk[9] = expand(rk[8], assist_ff<0x1B>(rk[8]));
    rk[10] = expand(rk[9], assist_ff<0x36>(rk[9]));
}

WEC_CBC_SHA1_TARGET void aes256_schedule(const std::uint8_t* key, __m128i* rk) {
    rk[0] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));
    rk[1] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key + 16));
    rk[2] = expand(rk[0], assist_ff<0x01>(rk[1]));
    rk[3] = expand(rk[1], assist_aa(rk[2]));
    rk[4] = expand(rk[2], assist_ff<0x02>(rk[3]));
    rk[5] = expand(rk[3], assist_aa(rk[4]));
    rk[6] = expand(rk[4], assist_ff<0x04>(rk[5]));
    rk[7] = expand(rk[5], assist_aa(rk[6]));
    rk[8] = expand(rk[6], assist_ff<0x08>(rk[7]));
    rk[9] = expand(rk[7], assist_aa(rk[8]));
    rk[10] = expand(rk[8], assist_ff<0x10>(rk[9]));
    rk[11] = expand(rk[9], assist_aa(rk[10]));
    rk[12] = expand(rk[10], assist_ff<0x20>(rk[11]));
    rk[13] = expand(rk[11], assist_aa(rk[12]));
    rk[14] = expand(rk[12], assist_ff<0x40>(rk[13]));
}

// 64 bytes at a time: 4 AES-CBC blocks, each followed by 5 of the SHA-1 block's 20 groups (the
// two dependency chains are independent: the core runs them side by side).
template <int Rounds>
WEC_CBC_SHA1_TARGET void stitched(const __m128i* rk, std::array<std::uint32_t, 5>& s,
                                  const std::uint8_t* in, std::uint8_t* out, std::size_t n64,
                                  std::array<std::uint8_t, 16>& iv_bytes) {
    const __m128i mask = byte_swap_mask();
    Sha1Regs r;
    sha1_load(s, r.abcd, r.e0);
    __m128i iv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(iv_bytes.data()));
    for (std::size_t b = 0; b < n64; ++b, in += 64, out += 64) {
        const __m128i abcd_save = r.abcd, e_save = r.e0;
        __m128i p[4];
        for (int i = 0; i < 4; ++i) {
            p[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16 * i));
            r.m[i] = _mm_shuffle_epi8(p[i], mask);
        }
        // Every input byte is loaded before anything is stored (`out` may be `in`).
        iv = aes_encrypt<Rounds>(_mm_xor_si128(p[0], iv), rk);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), iv);
        sha1_groups_from<0>(r, std::make_integer_sequence<int, 5>());
        iv = aes_encrypt<Rounds>(_mm_xor_si128(p[1], iv), rk);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), iv);
        sha1_groups_from<5>(r, std::make_integer_sequence<int, 5>());
        iv = aes_encrypt<Rounds>(_mm_xor_si128(p[2], iv), rk);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 32), iv);
        sha1_groups_from<10>(r, std::make_integer_sequence<int, 5>());
        iv = aes_encrypt<Rounds>(_mm_xor_si128(p[3], iv), rk);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 48), iv);
        sha1_groups_from<15>(r, std::make_integer_sequence<int, 5>());
        r.e0 = _mm_sha1nexte_epu32(r.e0, e_save);
        r.abcd = _mm_add_epi32(r.abcd, abcd_save);
    }
    sha1_store(r.abcd, r.e0, s);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(iv_bytes.data()), iv);
}

template <int Rounds>
WEC_CBC_SHA1_TARGET void cbc(const __m128i* rk, const std::uint8_t* in, std::uint8_t* out,
                             std::size_t n16, std::array<std::uint8_t, 16>& iv_bytes) {
    __m128i iv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(iv_bytes.data()));
    for (std::size_t b = 0; b < n16; ++b, in += 16, out += 16) {
        iv = aes_encrypt<Rounds>(
            _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in)), iv), rk);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), iv);
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(iv_bytes.data()), iv);
}

// Decryption's schedule (the equivalent inverse cipher, FIPS 197 5.3.5): the round keys in
// reverse order, InvMixColumns applied to all but the outer two.
WEC_CBC_SHA1_TARGET void inverse_schedule(const __m128i* rk, int rounds, __m128i* dk) {
    dk[0] = rk[rounds];
    for (int i = 1; i < rounds; ++i)
        dk[i] = _mm_aesimc_si128(rk[rounds - i]);
    dk[rounds] = rk[0];
}

// Rounds [From, To) of AES decryption on 4 independent blocks.
template <int From, int To>
WEC_CBC_SHA1_TARGET inline void aes_decrypt_rounds(__m128i (&x)[4], const __m128i* dk) {
    for (int i = From; i < To; ++i) {
        const __m128i key = _mm_load_si128(dk + i);
        for (auto& b : x)
            b = _mm_aesdec_si128(b, key);
    }
}

// The 4 ciphertext blocks at `in` and their first AddRoundKey (every input byte is loaded before
// anything is stored: `out` may be `in`).
WEC_CBC_SHA1_TARGET inline void decrypt_load(const std::uint8_t* in, const __m128i* dk,
                                             __m128i (&c)[4], __m128i (&x)[4]) {
    const __m128i k0 = _mm_load_si128(dk);
    for (int i = 0; i < 4; ++i) {
        c[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16 * i));
        x[i] = _mm_xor_si128(c[i], k0);
    }
}

// The last round, the CBC chaining and the store; the plaintext becomes SHA-1's message words.
template <int Rounds>
WEC_CBC_SHA1_TARGET inline void decrypt_finish(const __m128i* dk, const __m128i (&c)[4],
                                               const __m128i (&x)[4], __m128i& iv,
                                               std::uint8_t* out, __m128i mask, Sha1Regs& r) {
    const __m128i last = _mm_load_si128(dk + Rounds);
    for (int i = 0; i < 4; ++i) {
        const __m128i p = _mm_xor_si128(_mm_aesdeclast_si128(x[i], last), i == 0 ? iv : c[i - 1]);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * i), p);
        r.m[i] = _mm_shuffle_epi8(p, mask);
    }
    iv = c[3];
}

// 64 bytes at a time, software-pipelined: the 4 (independent) AES-CBC decryptions of the next
// 64 bytes are interleaved with the 20 SHA-1 groups of the plaintext decrypted the iteration
// before, so the AES units work while the serial SHA-1 chain waits on itself.
template <int Rounds>
WEC_CBC_SHA1_TARGET void stitched_decrypt(const __m128i* dk, std::array<std::uint32_t, 5>& s,
                                          const std::uint8_t* in, std::uint8_t* out,
                                          std::size_t n64, std::array<std::uint8_t, 16>& iv_bytes) {
    if (n64 == 0) return;
    // Rounds between two slices of 4 SHA-1 groups (5 slices per block).
    constexpr int kStep = (Rounds - 1) / 4; // 2 for AES-128, 3 for AES-256
    const __m128i mask = byte_swap_mask();
    Sha1Regs r;
    sha1_load(s, r.abcd, r.e0);
    __m128i iv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(iv_bytes.data()));
    __m128i c[4], x[4];
    decrypt_load(in, dk, c, x);
    aes_decrypt_rounds<1, Rounds>(x, dk);
    decrypt_finish<Rounds>(dk, c, x, iv, out, mask, r);
    for (std::size_t b = 1; b < n64; ++b) {
        in += 64;
        out += 64;
        const __m128i abcd_save = r.abcd, e_save = r.e0;
        decrypt_load(in, dk, c, x);
        aes_decrypt_rounds<1, 1 + kStep>(x, dk);
        sha1_groups_from<0>(r, std::make_integer_sequence<int, 4>());
        aes_decrypt_rounds<1 + kStep, 1 + 2 * kStep>(x, dk);
        sha1_groups_from<4>(r, std::make_integer_sequence<int, 4>());
        aes_decrypt_rounds<1 + 2 * kStep, 1 + 3 * kStep>(x, dk);
        sha1_groups_from<8>(r, std::make_integer_sequence<int, 4>());
        aes_decrypt_rounds<1 + 3 * kStep, Rounds>(x, dk);
        sha1_groups_from<12>(r, std::make_integer_sequence<int, 4>());
        sha1_groups_from<16>(r, std::make_integer_sequence<int, 4>());
        r.e0 = _mm_sha1nexte_epu32(r.e0, e_save);
        r.abcd = _mm_add_epi32(r.abcd, abcd_save);
        decrypt_finish<Rounds>(dk, c, x, iv, out, mask, r);
    }
    const __m128i abcd_save = r.abcd, e_save = r.e0;
    sha1_groups(r, std::make_integer_sequence<int, 20>());
    r.e0 = _mm_sha1nexte_epu32(r.e0, e_save);
    r.abcd = _mm_add_epi32(r.abcd, abcd_save);
    sha1_store(r.abcd, r.e0, s);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(iv_bytes.data()), iv);
}

template <int Rounds>
WEC_CBC_SHA1_TARGET void cbc_decrypt(const __m128i* dk, const std::uint8_t* in, std::uint8_t* out,
                                     std::size_t n16, std::array<std::uint8_t, 16>& iv_bytes) {
    __m128i iv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(iv_bytes.data()));
    for (std::size_t b = 0; b < n16; ++b, in += 16, out += 16) {
        const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
        __m128i x = _mm_xor_si128(c, _mm_load_si128(dk));
        for (int i = 1; i < Rounds; ++i)
            x = _mm_aesdec_si128(x, _mm_load_si128(dk + i));
        x = _mm_aesdeclast_si128(x, _mm_load_si128(dk + Rounds));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_xor_si128(x, iv));
        iv = c;
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(iv_bytes.data()), iv);
}

const __m128i* decrypt_schedule(const CbcSha1Key& k) {
    return reinterpret_cast<const __m128i*>(k.decrypt_keys.data());
}

const __m128i* schedule(const CbcSha1Key& k) {
    return reinterpret_cast<const __m128i*>(k.round_keys.data());
}

} // namespace

WEC_CBC_SHA1_TARGET void cbc_sha1_init(CbcSha1Key& k, std::span<const std::uint8_t> aes_key,
                                       std::span<const std::uint8_t> mac_key) {
    auto* rk = reinterpret_cast<__m128i*>(k.round_keys.data());
    if (aes_key.size() == 32) {
        aes256_schedule(aes_key.data(), rk);
        k.rounds = 14;
    } else {
        aes128_schedule(aes_key.data(), rk);
        k.rounds = 10;
    }
    inverse_schedule(rk, k.rounds, reinterpret_cast<__m128i*>(k.decrypt_keys.data()));
    std::array<std::uint8_t, 64> pad{};
    if (!mac_key.empty())
        std::memcpy(pad.data(), mac_key.data(), std::min<std::size_t>(mac_key.size(), 64));
    constexpr std::array<std::uint32_t, 5> kInit = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
                                                    0xC3D2E1F0};
    for (auto& b : pad)
        b ^= 0x36;
    k.inner = kInit;
    sha1_blocks(k.inner, pad.data(), 1);
    for (auto& b : pad)
        b ^= 0x36 ^ 0x5c;
    k.outer = kInit;
    sha1_blocks(k.outer, pad.data(), 1);
    OPENSSL_cleanse(pad.data(), pad.size());
}

CbcSha1::CbcSha1(const CbcSha1Key& k) : k_(k), state_(k.inner) {}

void CbcSha1::encrypt_and_hash(const std::uint8_t* in, std::uint8_t* out, std::size_t n64,
                               std::array<std::uint8_t, 16>& iv) {
    if (k_.rounds == 14)
        stitched<14>(schedule(k_), state_, in, out, n64, iv);
    else
        stitched<10>(schedule(k_), state_, in, out, n64, iv);
    total_ += 64 * n64;
}

void CbcSha1::encrypt(const std::uint8_t* in, std::uint8_t* out, std::size_t n16,
                      std::array<std::uint8_t, 16>& iv) const {
    if (k_.rounds == 14)
        cbc<14>(schedule(k_), in, out, n16, iv);
    else
        cbc<10>(schedule(k_), in, out, n16, iv);
}

void CbcSha1::decrypt_and_hash(const std::uint8_t* in, std::uint8_t* out, std::size_t n64,
                               std::array<std::uint8_t, 16>& iv) {
    if (k_.rounds == 14)
        stitched_decrypt<14>(decrypt_schedule(k_), state_, in, out, n64, iv);
    else
        stitched_decrypt<10>(decrypt_schedule(k_), state_, in, out, n64, iv);
    total_ += 64 * n64;
}

void CbcSha1::decrypt(const std::uint8_t* in, std::uint8_t* out, std::size_t n16,
                      std::array<std::uint8_t, 16>& iv) const {
    if (k_.rounds == 14)
        cbc_decrypt<14>(decrypt_schedule(k_), in, out, n16, iv);
    else
        cbc_decrypt<10>(decrypt_schedule(k_), in, out, n16, iv);
}

void CbcSha1::update(std::span<const std::uint8_t> in) {
    total_ += in.size();
    std::size_t i = 0;
    if (buffered_ > 0) {
        const std::size_t take = std::min(in.size(), 64 - buffered_);
        std::memcpy(buffer_.data() + buffered_, in.data(), take);
        buffered_ += take;
        i = take;
        if (buffered_ < 64) return;
        sha1_blocks(state_, buffer_.data(), 1);
        buffered_ = 0;
    }
    const std::size_t whole = (in.size() - i) / 64;
    if (whole > 0) sha1_blocks(state_, in.data() + i, whole);
    i += 64 * whole;
    buffered_ = in.size() - i;
    if (buffered_ > 0) std::memcpy(buffer_.data(), in.data() + i, buffered_);
}

std::array<std::uint8_t, 20> CbcSha1::final() {
    const std::uint64_t bits = total_ * 8;
    std::array<std::uint8_t, 128> tail{};
    std::memcpy(tail.data(), buffer_.data(), buffered_);
    tail[buffered_] = 0x80;
    const std::size_t len = buffered_ + 9 <= 64 ? 64 : 128;
    for (int i = 0; i < 8; ++i)
        tail[len - 1 - static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(bits >> (8 * i));
    sha1_blocks(state_, tail.data(), len / 64);
    // Outer: opad block (in k_.outer) then the 20-byte inner digest, padded: 84 bytes in all.
    std::array<std::uint8_t, 64> block{};
    for (int i = 0; i < 5; ++i)
        for (int j = 0; j < 4; ++j)
            block[static_cast<std::size_t>(4 * i + j)] =
                static_cast<std::uint8_t>(state_[static_cast<std::size_t>(i)] >> (24 - 8 * j));
    block[20] = 0x80;
    block[62] = (84 * 8) >> 8;
    block[63] = (84 * 8) & 0xFF;
    std::array<std::uint32_t, 5> outer = k_.outer;
    sha1_blocks(outer, block.data(), 1);
    std::array<std::uint8_t, 20> mac{};
    for (int i = 0; i < 5; ++i)
        for (int j = 0; j < 4; ++j)
            mac[static_cast<std::size_t>(4 * i + j)] =
                static_cast<std::uint8_t>(outer[static_cast<std::size_t>(i)] >> (24 - 8 * j));
    OPENSSL_cleanse(tail.data(), tail.size());
    OPENSSL_cleanse(block.data(), block.size());
    buffered_ = 0;
    return mac;
}

#else // not x86-64: never available, FastContext keeps OpenSSL

bool cbc_sha1_available() {
    return false;
}
void cbc_sha1_init(CbcSha1Key&, std::span<const std::uint8_t>, std::span<const std::uint8_t>) {}
CbcSha1::CbcSha1(const CbcSha1Key& k) : k_(k), state_(k.inner) {}
void CbcSha1::encrypt_and_hash(const std::uint8_t*, std::uint8_t*, std::size_t,
                               std::array<std::uint8_t, 16>&) {}
void CbcSha1::encrypt(const std::uint8_t*, std::uint8_t*, std::size_t,
                      std::array<std::uint8_t, 16>&) const {}
void CbcSha1::decrypt_and_hash(const std::uint8_t*, std::uint8_t*, std::size_t,
                               std::array<std::uint8_t, 16>&) {}
void CbcSha1::decrypt(const std::uint8_t*, std::uint8_t*, std::size_t,
                      std::array<std::uint8_t, 16>&) const {}
void CbcSha1::update(std::span<const std::uint8_t>) {}
std::array<std::uint8_t, 20> CbcSha1::final() {
    return {};
}

#endif

} // namespace wec::auth::detail

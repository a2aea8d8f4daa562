// The one base64 codec of the project (Authorization / WWW-Authenticate tokens): RFC 4648 test
// vectors, and what the strict decoder refuses.
#include "text/base64.hpp"

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace {

using wec::text::base64_decode;
using wec::text::base64_encode;

std::vector<std::uint8_t> bytes(std::string_view s) {
    return {s.begin(), s.end()};
}

TEST(Base64, Rfc4648VectorsRoundTrip) {
    const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                           {"f", "Zg=="},
                                                           {"fo", "Zm8="},
                                                           {"foo", "Zm9v"},
                                                           {"foob", "Zm9vYg=="},
                                                           {"fooba", "Zm9vYmE="},
                                                           {"foobar", "Zm9vYmFy"}};
    for (auto [plain, encoded] : vectors) {
        EXPECT_EQ(base64_encode(bytes(plain)), encoded) << plain;
        auto decoded = base64_decode(encoded);
        ASSERT_TRUE(decoded) << encoded;
        EXPECT_EQ(*decoded, bytes(plain)) << encoded;
    }
}

TEST(Base64, EveryByteValueRoundTrips) {
    std::vector<std::uint8_t> all;
    for (int i = 0; i < 256; ++i)
        all.push_back(static_cast<std::uint8_t>(i));
    for (std::size_t n = 0; n <= all.size(); n += 17) {
        std::vector<std::uint8_t> part(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n));
        auto text = base64_encode(part);
        EXPECT_EQ(text.size() % 4, 0u);
        auto back = base64_decode(text);
        ASSERT_TRUE(back) << text;
        EXPECT_EQ(*back, part);
    }
    auto text = base64_encode(all);
    EXPECT_NE(text.find('+'), std::string::npos); // the standard alphabet, not base64url
    EXPECT_NE(text.find('/'), std::string::npos);
}

TEST(Base64, PaddingIsRequiredAndOnlyAtTheEnd) {
    EXPECT_FALSE(base64_decode("Zg"));       // unpadded
    EXPECT_FALSE(base64_decode("Zg="));      // short padding
    EXPECT_FALSE(base64_decode("Zg==="));    // too much
    EXPECT_FALSE(base64_decode("Zg==Zg==")); // '=' inside
    EXPECT_FALSE(base64_decode("Z=g="));
    EXPECT_FALSE(base64_decode("===="));
    EXPECT_FALSE(base64_decode("A==="));
    EXPECT_TRUE(base64_decode("Zm8="));
}

TEST(Base64, NonZeroBitsUnderThePaddingAreRefused) {
    // "Zg==" is 'f'; "Zh==" carries the same byte with non-zero trailing bits.
    EXPECT_FALSE(base64_decode("Zh=="));
    EXPECT_FALSE(base64_decode("Zm9="));
    EXPECT_TRUE(base64_decode("Zm8="));
}

TEST(Base64, GarbageAndWhitespaceAreRefused) {
    EXPECT_FALSE(base64_decode("Zm9v YmFy"));
    EXPECT_FALSE(base64_decode(" Zm9vYmFy"));
    EXPECT_FALSE(base64_decode("Zm9vYmFy\r\n"));
    EXPECT_FALSE(base64_decode("Zm9v\tYmE="));
    EXPECT_FALSE(base64_decode("Zm9-YmFy")); // base64url alphabet
    EXPECT_FALSE(base64_decode("Zm9_YmFy"));
    EXPECT_FALSE(base64_decode("Zm9vYmF\x80"));
    EXPECT_FALSE(base64_decode(std::string_view("Zm9v\0mFy", 8)));
}

} // namespace

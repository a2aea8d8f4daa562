// Basic users file and header: hashes made by independent tools (openssl passwd -6) and by
// libxcrypt's yescrypt, refused hash kinds and permissions, and the header parser.
#include "auth/basic.hpp"
#include "support/process.hpp"

#include <crypt.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <memory>

namespace {

using namespace wec::auth;
using wec::testing::run;
using wec::testing::TempDir;

std::string yescrypt(const std::string& password) {
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn("$y$", 0, nullptr, 0, setting, sizeof setting)) return {};
    auto data = std::make_unique<crypt_data>();
    const char* out = crypt_rn(password.c_str(), setting, data.get(), sizeof *data);
    return out ? out : "";
}

std::string openssl_sha512(const std::string& password) {
    auto r = run({"openssl", "passwd", "-6", password});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    auto s = r.output;
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
        s.pop_back();
    return s;
}

std::string write(const TempDir& dir, const std::string& text,
                  std::filesystem::perms perms = std::filesystem::perms::owner_read |
                                                 std::filesystem::perms::owner_write) {
    auto path = dir.path() / "basic-users";
    std::ofstream(path) << text;
    std::filesystem::permissions(path, perms);
    return path.string();
}

std::string load_error(const std::string& path) {
    try {
        BasicUsers::load(path);
    } catch (const BasicError& e) {
        return e.what();
    }
    return "";
}

TEST(BasicAuth, YescryptAndOpensslSha512HashesVerify) {
    TempDir dir;
    auto y = yescrypt("lab-pass-1");
    ASSERT_TRUE(y.starts_with("$y$")) << y;
    auto six = openssl_sha512("lab-pass-2");
    ASSERT_TRUE(six.starts_with("$6$")) << six;
    auto users =
        BasicUsers::load(write(dir, "# lab accounts\nalice:" + y + "\r\n\nbob:" + six + "\n"));
    EXPECT_EQ(users.size(), 2u);
    EXPECT_TRUE(users.verify("alice", "lab-pass-1"));
    EXPECT_TRUE(users.verify("bob", "lab-pass-2"));
    EXPECT_FALSE(users.verify("alice", "lab-pass-2"));
    EXPECT_FALSE(users.verify("bob", "lab-pass-"));
    EXPECT_FALSE(users.verify("bob", std::string("lab-pass-2\0x", 12)));
    EXPECT_FALSE(users.verify("carol", "lab-pass-1"));
    EXPECT_FALSE(users.verify("Alice", "lab-pass-1"));
}

TEST(BasicAuth, DesMd5AndMalformedLinesAreRefusedNamingTheLine) {
    TempDir dir;
    auto six = openssl_sha512("x");
    auto e = load_error(write(dir, "alice:" + six + "\nbob:abJnggxhB/yWI\n"));
    EXPECT_NE(e.find("basic-users:2:"), std::string::npos) << e;
    EXPECT_NE(e.find("'bob'"), std::string::npos) << e;
    EXPECT_NE(e.find("DES"), std::string::npos) << e;
    auto md5 = run({"openssl", "passwd", "-1", "x"}).output;
    e = load_error(write(dir, "carol:" + md5));
    EXPECT_NE(e.find("basic-users:1:"), std::string::npos) << e;
    EXPECT_NE(e.find("not yescrypt"), std::string::npos) << e;
    e = load_error(write(dir, "\n\njust-a-name\n"));
    EXPECT_NE(e.find("basic-users:3: expected USER:HASH"), std::string::npos) << e;
    e = load_error(write(dir, "a:" + six + "\na:" + six + "\n"));
    EXPECT_NE(e.find("appears twice"), std::string::npos) << e;
    e = load_error(write(dir, "# nobody\n"));
    EXPECT_NE(e.find("holds no account"), std::string::npos) << e;
    e = load_error((dir.path() / "missing").string());
    EXPECT_NE(e.find("No such file"), std::string::npos) << e;
}

TEST(BasicAuth, WorldReadableFileIsRefused) {
    TempDir dir;
    using std::filesystem::perms;
    auto path = write(dir, "alice:" + openssl_sha512("x") + "\n",
                      perms::owner_read | perms::owner_write | perms::others_read);
    auto e = load_error(path);
    EXPECT_NE(e.find("readable or writable by any user"), std::string::npos) << e;
    std::filesystem::permissions(path, perms::owner_read | perms::group_read);
    EXPECT_EQ(load_error(path), "");
}

TEST(BasicAuth, AuthorizationHeaderIsParsedStrictly) {
    auto c = parse_basic_authorization("Basic YWxpY2U6cDphc3M="); // alice:p:ass
    ASSERT_TRUE(c);
    EXPECT_EQ(c->user, "alice");
    EXPECT_EQ(c->password, "p:ass");
    c = parse_basic_authorization("basic   YWxpY2U6  ");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->user, "alice");
    EXPECT_EQ(c->password, "");
    EXPECT_FALSE(parse_basic_authorization("Basic"));
    EXPECT_FALSE(parse_basic_authorization("Basic YWxpY2U"));      // not padded: not strict base64
    EXPECT_FALSE(parse_basic_authorization("Basic YWxpY2U=!"));    // junk
    EXPECT_FALSE(parse_basic_authorization("Basic YWxpY2U="));     // "alice": no ':'
    EXPECT_FALSE(parse_basic_authorization("Basic OnBhc3M="));     // ":pass": no user
    EXPECT_FALSE(parse_basic_authorization("Negotiate YWxpY2U6")); // another scheme
    EXPECT_FALSE(parse_basic_authorization("Basicx YWxpY2U6"));
}

} // namespace

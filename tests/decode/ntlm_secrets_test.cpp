// decode::ntlm_secrets / parse_ntlm_secrets: the NTLM secrets of `wec decode` and `wec replay
// --pcap` (--password, --nt-hash, --ntlm-secrets lines), and the errors that name file and line.
#include "auth/ntlm_keys.hpp"
#include "decode/ntlm_secrets.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <unistd.h>

namespace {

namespace dec = wec::decode;
namespace auth = wec::auth;

const std::string kHash = "8846f7eaee8fb117ad06bdd830b7586c"; // NT hash of "password"

TEST(NtlmSecrets, ParsesLinesSkippingCommentsAndCrlf) {
    std::istringstream in("# accounts\r\n\nLAB\\alice:" + kHash +
                          "\r\nbob:" + "8846F7EAEE8FB117AD06BDD830B7586C\n");
    auto s = dec::parse_ntlm_secrets(in, "f");
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0].user, "LAB\\alice");
    EXPECT_EQ(s[0].nt_hash, auth::nt_hash("password"));
    EXPECT_EQ(s[1].user, "bob");
    EXPECT_EQ(s[1].nt_hash, auth::nt_hash("password"));
}

TEST(NtlmSecrets, BadLinesNameFileAndLine) {
    std::istringstream no_colon("# x\nalice\n");
    try {
        (void)dec::parse_ntlm_secrets(no_colon, "secrets.txt");
        FAIL() << "no error";
    } catch (const auth::NtlmError& e) {
        EXPECT_NE(std::string(e.what()).find("secrets.txt:2: expected [DOMAIN\\]USER:NTHASH"),
                  std::string::npos)
            << e.what();
    }
    std::istringstream bad_hex("alice:" + kHash + "\nbob:12zz\n");
    try {
        (void)dec::parse_ntlm_secrets(bad_hex, "s");
        FAIL() << "no error";
    } catch (const auth::NtlmError& e) {
        EXPECT_EQ(std::string(e.what()).rfind("s:2: ", 0), 0u) << e.what();
    }
}

TEST(NtlmSecrets, CommandLineAndFileTogether) {
    const auto file = std::filesystem::temp_directory_path() /
                      ("wec-ntlm-secrets-" + std::to_string(::getpid()) + ".txt");
    std::ofstream(file) << "LAB\\carol:" << kHash << "\n";
    auto s = dec::ntlm_secrets({"Pw-1"}, {kHash}, file.string());
    std::filesystem::remove(file);
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s[0].user, "");
    EXPECT_EQ(s[0].nt_hash, auth::nt_hash("Pw-1"));
    EXPECT_EQ(s[1].nt_hash, auth::nt_hash("password"));
    EXPECT_EQ(s[2].user, "LAB\\carol");
    EXPECT_THROW((void)dec::ntlm_secrets({}, {}, file.string()), auth::NtlmError); // gone
    EXPECT_THROW((void)dec::ntlm_secrets({}, {"abc"}, ""), auth::NtlmError);
    EXPECT_TRUE(dec::ntlm_secrets({}, {}, "").empty());
}

} // namespace

// NTLM outside GSSAPI (for `wec decode`): MD4 (RFC 1320 vectors), the MS-NLMP 4.2.4 NTLMv2
// example, the NTLMSSP parser, and key derivation checked against a live gss-ntlmssp session
// (an independent implementation: its gss_wrap output must unseal with our keys, both ways).
#include "auth/gss.hpp"
#include "auth/ntlm.hpp"
#include "auth/ntlm_keys.hpp"
#include "common/hex.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

namespace {

using namespace wec::auth;

std::string hex(std::span<const std::uint8_t> b) {
    static const char* d = "0123456789abcdef";
    std::string s;
    for (auto c : b) {
        s += d[c >> 4];
        s += d[c & 15];
    }
    return s;
}

std::vector<std::uint8_t> unhex(std::string_view h) {
    std::vector<std::uint8_t> out;
    for (std::size_t i = 0; i + 1 < h.size(); i += 2)
        out.push_back(
            static_cast<std::uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
    return out;
}

std::span<const std::uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

TEST(NtlmMd4, Rfc1320TestSuite) {
    EXPECT_EQ(hex(md4(bytes(""))), "31d6cfe0d16ae931b73c59d7e0c089c0");
    EXPECT_EQ(hex(md4(bytes("a"))), "bde52cb31de33e46245e05fbdbd6fb24");
    EXPECT_EQ(hex(md4(bytes("abc"))), "a448017aaf21d8525fc10ae87aa6729d");
    EXPECT_EQ(hex(md4(bytes("message digest"))), "d9130a8164549fe818874806e1c7014b");
    EXPECT_EQ(hex(md4(bytes("abcdefghijklmnopqrstuvwxyz"))), "d79e1c308aa5bbcdeea8ed63df412da9");
    EXPECT_EQ(hex(md4(bytes("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))),
              "043f8582f241db351ce627e153e7f0e4");
    EXPECT_EQ(hex(md4(bytes("1234567890123456789012345678901234567890123456789012345678901234567"
                            "8901234567890"))),
              "e33b4ddc9c38f2199c3e7b164fcc0536");
}

// MS-NLMP 4.2.4 (NTLMv2 with extended session security and key exchange): User "User", domain
// "Domain", password "Password", RandomSessionKey 0x55 * 16.
TEST(NtlmKeys, MsNlmpNtlmV2Example) {
    auto hash = nt_hash("Password");
    EXPECT_EQ(hex(hash), "a4f49c406510bdcab6824ee7c30fd852");
    EXPECT_EQ(hex(ntowf_v2(hash, "User", "Domain")), "0c868a403bfd7a93a3001ef22ef02e3f");

    std::array<std::uint8_t, 16> exported{};
    exported.fill(0x55);
    const std::uint32_t flags = 0xe28a8233; // the example's negotiated flags (KEY_EXCH, 128, ESS…)
    auto client = NtlmSession::from_exported_key(exported, flags);
    auto plain = unhex("50006c00610069006e007400650078007400"); // "Plaintext" in UTF-16LE
    auto sealed = client.seal(NtlmDirection::ClientToServer, plain);
    EXPECT_EQ(hex(std::span(sealed).subspan(16)), "54e50165bf1936dc996020c1811b0f06fb5f");
    EXPECT_EQ(hex(std::span(sealed).first(16)), "010000007fb38ec5c55d497600000000");

    auto server = NtlmSession::from_exported_key(exported, flags);
    auto opened = server.unseal(NtlmDirection::ClientToServer, std::span(sealed).first(16),
                                std::span(sealed).subspan(16));
    EXPECT_EQ(opened, plain);
    // The same message again: sequence number 0 where 1 is expected.
    EXPECT_THROW(server.unseal(NtlmDirection::ClientToServer, std::span(sealed).first(16),
                               std::span(sealed).subspan(16)),
                 NtlmError);
}

TEST(NtlmKeys, NtHashFromHex) {
    EXPECT_EQ(hex(nt_hash_from_hex("A4F49C406510BDCAB6824EE7C30FD852")),
              "a4f49c406510bdcab6824ee7c30fd852");
    EXPECT_THROW(nt_hash_from_hex("a4f4"), NtlmError);
    EXPECT_THROW(nt_hash_from_hex("x4f49c406510bdcab6824ee7c30fd852"), NtlmError);
}

TEST(NtlmParser, RefusesTruncatedAndOutOfBoundsFields) {
    EXPECT_THROW(parse_ntlm_message(bytes("NTLMSSP")), NtlmError);
    std::vector<std::uint8_t> m(64, 0);
    std::copy(kNtlmSignature.begin(), kNtlmSignature.end(), m.begin());
    m[8] = 3;
    m[36] = 10;   // UserName length 10
    m[40] = 0xf0; // at offset 240: beyond the message
    EXPECT_THROW(parse_ntlm_message(m), NtlmError);
    m[40] = 54; // 54 + 10 = 64: inside
    auto msg = parse_ntlm_message(m);
    EXPECT_EQ(msg.type, 3u);
    EXPECT_EQ(msg.user.size(), 10u); // OEM (no UNICODE flag): one character per byte
    m[8] = 7;
    EXPECT_THROW(parse_ntlm_message(m), NtlmError);
}

// A live NTLMv2 session between gss-ntlmssp's initiator and acceptor; our derivation from the
// password (or the NT hash) must open what gss_wrap sealed, in both directions, in order.
class NtlmLive : public ::testing::Test {
protected:
    wec::testing::TempDir dir;
    std::vector<std::uint8_t> negotiate, challenge, authenticate;
    std::optional<ClientContext> client;
    std::optional<ServerContext> server;

    void handshake(const std::string& password) {
        auto users = dir.path() / "users";
        std::ofstream(users) << "LAB:alice:Secret1!\n";
        std::filesystem::permissions(users, std::filesystem::perms::owner_read |
                                                std::filesystem::perms::owner_write);
        auto acceptor =
            NtlmAcceptor::create(NtlmAcceptorSettings{users.string(), "srv.lab.local", false});
        ClientOptions co;
        co.target = "HTTP@srv.lab.local";
        co.mechanism = Mechanism::Ntlm;
        co.ntlm_user = "LAB\\alice";
        co.ntlm_password = password;
        client.emplace(co);
        server.emplace(std::nullopt, acceptor);
        auto s1 = client->step();
        negotiate = s1.output;
        auto s2 = server->step(negotiate);
        ASSERT_EQ(s2.status, StepResult::Status::ContinueNeeded);
        challenge = s2.output;
        auto s3 = client->step(challenge);
        authenticate = s3.output;
    }
};

TEST_F(NtlmLive, KeysFromPasswordOrHashOpenGssNtlmsspSealedMessagesBothWays) {
    handshake("Secret1!");
    ASSERT_TRUE(server->step(authenticate).complete());
    EXPECT_EQ(server->client_name(), "LAB\\alice");
    EXPECT_TRUE(server->ntlm());

    auto chal = parse_ntlm_message(challenge);
    auto auth = parse_ntlm_message(authenticate);
    EXPECT_EQ(auth.user, "alice");
    EXPECT_EQ(auth.domain, "LAB");
    EXPECT_TRUE(auth.ntlm_v2());
    auto keys = NtlmSession::derive(chal, auth, nt_hash("Secret1!"));
    // Each party seals with gss_wrap (signature(16) || sealed), alternately, in order.
    for (int i = 0; i < 3; ++i) {
        std::string text = "request " + std::to_string(i);
        auto sealed = seal(*client, bytes(text));
        auto opened = keys.unseal(NtlmDirection::ClientToServer, sealed.header, sealed.ciphertext);
        EXPECT_EQ(std::string(opened.begin(), opened.end()), text);
        auto back = seal(*server, bytes("reply " + std::to_string(i)));
        auto r = keys.unseal(NtlmDirection::ServerToClient, back.header, back.ciphertext);
        EXPECT_EQ(std::string(r.begin(), r.end()), "reply " + std::to_string(i));
    }
    // A tampered message does not verify.
    auto sealed = seal(*client, bytes("last"));
    sealed.ciphertext[1] ^= 1;
    EXPECT_THROW(keys.unseal(NtlmDirection::ClientToServer, sealed.header, sealed.ciphertext),
                 NtlmError);
    // The same derivation with the NT hash in hex gives the same exported key.
    auto by_hash = NtlmSession::derive(chal, auth, nt_hash_from_hex(hex(nt_hash("Secret1!"))));
    auto by_password = NtlmSession::derive(chal, auth, nt_hash("Secret1!"));
    EXPECT_EQ(by_hash.exported_session_key(), by_password.exported_session_key());
}

TEST_F(NtlmLive, WrongSecretIsReportedNotGuessed) {
    handshake("Secret1!");
    auto chal = parse_ntlm_message(challenge);
    auto auth = parse_ntlm_message(authenticate);
    try {
        NtlmSession::derive(chal, auth, nt_hash("not it"));
        FAIL() << "derived keys from a wrong password";
    } catch (const NtlmKeyError& e) {
        EXPECT_NE(std::string(e.what()).find("does not match the NTLMv2 response of LAB\\alice"),
                  std::string::npos)
            << e.what();
    }
}

TEST_F(NtlmLive, FindsTheMessagesInsideTokensAndAppliesTheV1Policy) {
    handshake("Secret1!");
    auto found = find_ntlm_message(authenticate);
    ASSERT_TRUE(found);
    EXPECT_EQ(found->type, 3u);
    EXPECT_NO_THROW(check_authenticate_policy(*found, false));
    found->nt_response.resize(24); // what an NTLMv1 response looks like
    EXPECT_THROW(check_authenticate_policy(*found, false), NtlmError);
    EXPECT_NO_THROW(check_authenticate_policy(*found, true));
    EXPECT_FALSE(spnego_prefers_ntlm(negotiate)); // raw NTLMSSP, not SPNEGO
    EXPECT_TRUE(is_ntlmssp(negotiate));
}

TEST(NtlmUsersFile, PermissionsAndFormatAreChecked) {
    wec::testing::TempDir dir;
    auto path = dir.path() / "users";
    std::ofstream(path) << "# comment\nLAB:alice:pw\nLAB:bob:pw2\n";
    std::filesystem::permissions(path, std::filesystem::perms::owner_read |
                                           std::filesystem::perms::owner_write);
    EXPECT_EQ(check_ntlm_users_file(path.string()), 2u);
    EXPECT_EQ(ntlm_users_file_domain(path.string(), "BOB"), "LAB");
    std::filesystem::permissions(path, std::filesystem::perms::others_read,
                                 std::filesystem::perm_options::add);
    EXPECT_THROW(check_ntlm_users_file(path.string()), NtlmError);
    std::filesystem::permissions(path, std::filesystem::perms::others_read,
                                 std::filesystem::perm_options::remove);
    std::ofstream(path) << "no-colons-here\n";
    EXPECT_THROW(check_ntlm_users_file(path.string()), NtlmError);
    EXPECT_THROW(check_ntlm_users_file((dir.path() / "absent").string()), NtlmError);
}

// What gss-ntlmssp is given instead of the passwords: smbpasswd lines with the NT hashes (the
// expected hash of "Secret1!" is pycryptodome's MD4 of its UTF-16LE form), comments and CR
// dropped, a password holding ':' kept whole, an empty domain kept empty.
TEST(NtlmUsersFile, HashedFormForGssNtlmssp) {
    wec::testing::TempDir dir;
    auto path = dir.path() / "users";
    std::ofstream(path) << "# lab\r\nLAB:alice:Secret1!\r\n\nOTHER:carol:a:b:c\n:dave:Secret1!\n";
    const std::string no_lm = "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
    const std::string tail = ":[U          ]:LCT-00000000:\n";
    EXPECT_EQ(ntlm_users_as_smbpasswd(path.string()),
              "LAB\\alice:0:" + no_lm + ":2B0FD3FACA9A8ACD5FDFFF6ECAE2C207" + tail +
                  "OTHER\\carol:0:" + no_lm + ":" + wec::hex_upper(nt_hash("a:b:c")) + tail +
                  "\\dave:0:" + no_lm + ":2B0FD3FACA9A8ACD5FDFFF6ECAE2C207" + tail);
    EXPECT_THROW(ntlm_users_as_smbpasswd((dir.path() / "absent").string()), NtlmError);
}

// The acceptor hands gss-ntlmssp the hashed form: a password with ':' authenticates, a wrong one
// does not (a full handshake with gss-ntlmssp's own initiator).
TEST(NtlmUsersFile, AcceptorAuthenticatesFromTheHashedForm) {
    wec::testing::TempDir dir;
    auto users = dir.path() / "users";
    std::ofstream(users) << "LAB:carol:a:b:c\n";
    std::filesystem::permissions(users, std::filesystem::perms::owner_read |
                                            std::filesystem::perms::owner_write);
    auto acceptor =
        NtlmAcceptor::create(NtlmAcceptorSettings{users.string(), "srv.lab.local", false});
    for (std::string password : {"a:b:c", "a:b"}) {
        ClientOptions co;
        co.target = "HTTP@srv.lab.local";
        co.mechanism = Mechanism::Ntlm;
        co.ntlm_user = "LAB\\carol";
        co.ntlm_password = password;
        ClientContext client(co);
        ServerContext server(std::nullopt, acceptor);
        auto negotiate = client.step();
        auto challenge = server.step(negotiate.output);
        ASSERT_EQ(challenge.status, StepResult::Status::ContinueNeeded);
        auto authenticate = client.step(challenge.output);
        auto done = server.step(authenticate.output);
        if (password == "a:b:c") {
            EXPECT_TRUE(done.complete()) << (done.error ? done.error->what() : "");
            EXPECT_EQ(server.client_name(), "LAB\\carol");
        } else {
            EXPECT_FALSE(done.complete());
        }
    }
}

} // namespace

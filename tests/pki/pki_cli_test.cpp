// `wec pki` as an operator and scripts see it: the built binary, its output, files and exit codes.
#include "pki/pki.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

using namespace pkitest;

RunResult wec(const std::string& args, bool merge_stderr = true) {
    return sh(std::string("'") + WEC_EXE + "' " + args, merge_stderr);
}

TEST(PkiCli, HelpShowsTheSubcommandsAndExamples) {
    auto top = wec("--help");
    EXPECT_EQ(top.exit_code, 0);
    EXPECT_NE(top.output.find("pki"), std::string::npos) << top.output;
    auto pki = wec("pki --help");
    EXPECT_EQ(pki.exit_code, 0);
    for (const char* s : {"init", "client", "show", "Typical use"})
        EXPECT_NE(pki.output.find(s), std::string::npos) << s << " missing from\n" << pki.output;
    auto init = wec("pki init --help");
    for (const char* s : {"--hostname", "--rsa", "--ip", "--dns", "--force", "--days", "Examples"})
        EXPECT_NE(init.output.find(s), std::string::npos) << s << " missing from\n" << init.output;
    auto client = wec("pki client --help");
    for (const char* s : {"--pfx-password", "--modern-pfx", "WEC_PFX_PASSWORD", "Examples"})
        EXPECT_NE(client.output.find(s), std::string::npos) << s << " missing from\n"
                                                            << client.output;
    auto show = wec("pki show --help");
    EXPECT_NE(show.output.find("Exit status"), std::string::npos) << show.output;
    // `wec pki` alone needs a subcommand.
    EXPECT_EQ(wec("pki").exit_code, 2);
}

TEST(PkiCli, InitPrintsTheThumbprintAndGpoString) {
    TempDir d;
    auto r = wec("pki init --dir '" + d.path().string() +
                 "' --hostname wec.cli.example --ip 127.0.0.1 --dns "
                 "wec2.cli.example");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::string thumb = openssl_sha1_thumbprint(d.file("ca.pem"));
    ASSERT_EQ(thumb.size(), 40u) << "openssl x509 -fingerprint failed";
    EXPECT_NE(r.output.find(thumb), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(
                  "Server=HTTPS://wec.cli.example:5986/wsman/,Refresh=60,IssuerCA=" + thumb + "\n"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("--auth tls --cert " + d.file("server.pem")), std::string::npos)
        << r.output;
    EXPECT_EQ(mode_of(d.file("ca.key")), 0600u);
    EXPECT_EQ(mode_of(d.file("server.key")), 0600u);
    auto text = sh("openssl x509 -in '" + d.file("server.pem") + "' -noout -text").output;
    EXPECT_NE(text.find("DNS:wec.cli.example, DNS:wec2.cli.example, IP Address:127.0.0.1"),
              std::string::npos)
        << text;

    // A second init refuses, says how to proceed, and exits 2.
    auto again = wec("pki init --dir '" + d.path().string() + "' --hostname wec.cli.example");
    EXPECT_EQ(again.exit_code, 2) << again.output;
    EXPECT_NE(again.output.find("--force"), std::string::npos) << again.output;
    EXPECT_EQ(openssl_sha1_thumbprint(d.file("ca.pem")), thumb);

    // --force --rsa replaces it with RSA keys; --json for scripts.
    auto rsa = wec("pki init --dir '" + d.path().string() +
                       "' --hostname wec.cli.example --rsa 2048 --force "
                       "--json",
                   false);
    ASSERT_EQ(rsa.exit_code, 0) << rsa.output;
    auto j = nlohmann::json::parse(rsa.output);
    EXPECT_EQ(j["ca_thumbprint"], openssl_sha1_thumbprint(d.file("ca.pem")));
    EXPECT_NE(j["ca_thumbprint"], thumb);
    EXPECT_EQ(j["key_type"], "rsa2048");
    EXPECT_EQ(j["gpo"],
              wec::pki::gpo_string("wec.cli.example", j["ca_thumbprint"].get<std::string>()));
    text = sh("openssl x509 -in '" + d.file("ca.pem") + "' -noout -text").output;
    EXPECT_NE(text.find("Public-Key: (2048 bit)"), std::string::npos);
}

TEST(PkiCli, BadArgumentsAreUsageErrors) {
    TempDir d;
    auto no_host = wec("pki init --dir '" + d.path().string() + "'");
    EXPECT_EQ(no_host.exit_code, 2);
    EXPECT_NE(no_host.output.find("--hostname"), std::string::npos) << no_host.output;
    auto bad_rsa =
        wec("pki init --dir '" + d.path().string() + "' --hostname h.example --rsa 1024");
    EXPECT_EQ(bad_rsa.exit_code, 2) << bad_rsa.output;
    auto both = wec("pki init --dir '" + d.path().string() +
                    "' --hostname h.example --rsa 2048 --key p256");
    EXPECT_EQ(both.exit_code, 2) << both.output;
    auto bad_host = wec("pki init --dir '" + d.path().string() + "' --hostname 'bad host'");
    EXPECT_EQ(bad_host.exit_code, 2) << bad_host.output;
    EXPECT_NE(bad_host.output.find("'bad host'"), std::string::npos) << bad_host.output;
    auto bad_ip = wec("pki init --dir '" + d.path().string() + "' --hostname h.example --ip 1.2.3");
    EXPECT_EQ(bad_ip.exit_code, 2) << bad_ip.output;
    EXPECT_TRUE(std::filesystem::is_empty(d.path()));
    auto no_ca = wec("pki client win.example --dir '" + d.path().string() + "'");
    EXPECT_EQ(no_ca.exit_code, 2) << no_ca.output;
    EXPECT_NE(no_ca.output.find("wec pki init --dir"), std::string::npos) << no_ca.output;
    auto empty = wec("pki show --dir '" + d.path().string() + "'");
    EXPECT_EQ(empty.exit_code, 2) << empty.output;
    EXPECT_NE(empty.output.find("wec pki init"), std::string::npos) << empty.output;
}

TEST(PkiCli, ClientWritesAPfxThatOpensWithThePrintedPassword) {
    TempDir d;
    ASSERT_EQ(
        wec("pki init --dir '" + d.path().string() + "' --hostname wec.cli.example").exit_code, 0);
    auto r = wec("pki client win10.cli.example --dir '" + d.path().string() +
                 "' --pfx-password 'Pw-123'");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    for (const char* s :
         {"certutil -f -p \"Pw-123\" -importpfx My win10.cli.example.pfx",
          "certutil -addstore Root ca.pem", "NETWORK SERVICE", "Manage Private Keys", "IssuerCA="})
        EXPECT_NE(r.output.find(s), std::string::npos) << s << " missing from\n" << r.output;
    // The real values: the key's certificate in the store, and the collector with its CA.
    const auto key_thumb = openssl_sha1_thumbprint(d.file("win10.cli.example.pem"));
    const auto ca_thumb = openssl_sha1_thumbprint(d.file("ca.pem"));
    ASSERT_EQ(key_thumb.size(), 40u);
    ASSERT_EQ(ca_thumb.size(), 40u);
    for (const std::string& s :
         {"Cert:\\LocalMachine\\My\\" + key_thumb,
          "Server=HTTPS://wec.cli.example:5986/wsman/,Refresh=60,IssuerCA=" + ca_thumb})
        EXPECT_NE(r.output.find(s), std::string::npos) << s << " missing from\n" << r.output;
    auto info = sh("openssl pkcs12 -info -nokeys -in '" + d.file("win10.cli.example.pfx") +
                   "' -passin pass:Pw-123");
    EXPECT_EQ(info.exit_code, 0) << info.output;
    auto verify = sh("openssl verify -CAfile '" + d.file("ca.pem") + "' -purpose sslclient '" +
                     d.file("win10.cli.example.pem") + "'");
    EXPECT_EQ(verify.exit_code, 0) << verify.output;

    // No password given: a random one is printed, and it opens the PFX.
    auto gen = wec("pki client pc2.cli.example --dir '" + d.path().string() + "' --json", false);
    ASSERT_EQ(gen.exit_code, 0) << gen.output;
    auto j = nlohmann::json::parse(gen.output);
    EXPECT_TRUE(j["pfx_password_generated"].get<bool>());
    std::string pw = j["pfx_password"];
    EXPECT_EQ(pw.size(), 20u);
    EXPECT_EQ(j["thumbprint"], openssl_sha1_thumbprint(d.file("pc2.cli.example.pem")));
    EXPECT_EQ(j["ca_thumbprint"], openssl_sha1_thumbprint(d.file("ca.pem")));
    info = sh("openssl pkcs12 -info -nokeys -in '" + d.file("pc2.cli.example.pfx") +
              "' -passin 'pass:" + pw + "'");
    EXPECT_EQ(info.exit_code, 0) << info.output;

    // From the environment, and the modern algorithms on request.
    auto env = sh("WEC_PFX_PASSWORD=FromEnv '" + std::string(WEC_EXE) +
                  "' pki client pc3.cli.example "
                  "--modern-pfx --dir '" +
                  d.path().string() + "'");
    ASSERT_EQ(env.exit_code, 0) << env.output;
    info = sh("openssl pkcs12 -info -nokeys -in '" + d.file("pc3.cli.example.pfx") +
              "' -passin pass:FromEnv");
    EXPECT_EQ(info.exit_code, 0) << info.output;
    EXPECT_NE(info.output.find("AES-256-CBC"), std::string::npos) << info.output;

    // Existing client files are not replaced without --force.
    auto again =
        wec("pki client win10.cli.example --dir '" + d.path().string() + "' --pfx-password x");
    EXPECT_EQ(again.exit_code, 2) << again.output;
    EXPECT_NE(again.output.find("--force"), std::string::npos) << again.output;
}

TEST(PkiCli, ShowListsCertificatesWarnsAndFailsOnExpiry) {
    TempDir d;
    ASSERT_EQ(
        wec("pki init --dir '" + d.path().string() + "' --hostname wec.cli.example").exit_code, 0);
    ASSERT_EQ(wec("pki client ok.cli.example --dir '" + d.path().string() + "' --pfx-password x")
                  .exit_code,
              0);
    auto clean = wec("pki show --dir '" + d.path().string() + "'");
    EXPECT_EQ(clean.exit_code, 0) << clean.output;
    const auto ca_thumb = openssl_sha1_thumbprint(d.file("ca.pem"));
    const auto ok_thumb = openssl_sha1_thumbprint(d.file("ok.cli.example.pem"));
    ASSERT_EQ(ca_thumb.size(), 40u);
    ASSERT_EQ(ok_thumb.size(), 40u);
    EXPECT_NE(clean.output.find(ca_thumb), std::string::npos) << clean.output;
    EXPECT_NE(clean.output.find(ok_thumb), std::string::npos) << clean.output;
    EXPECT_NE(clean.output.find("EKU         clientAuth"), std::string::npos) << clean.output;
    EXPECT_EQ(clean.output.find("warning:"), std::string::npos) << clean.output;

    // Expiring in 10 days: a warning on stderr, still exit 0.
    ASSERT_EQ(wec("pki client soon.cli.example --days 10 --dir '" + d.path().string() +
                  "' --pfx-password x")
                  .exit_code,
              0);
    auto warn = wec("pki show --dir '" + d.path().string() + "'");
    EXPECT_EQ(warn.exit_code, 0) << warn.output;
    EXPECT_NE(warn.output.find("warning: CN=soon.cli.example"), std::string::npos) << warn.output;
    EXPECT_NE(warn.output.find("expires in 10 days"), std::string::npos) << warn.output;
    auto stdout_only = wec("pki show --dir '" + d.path().string() + "' --json", false);
    auto j = nlohmann::json::parse(stdout_only.output);
    ASSERT_EQ(j["certificates"].size(), 4u);
    EXPECT_EQ(j["warnings"].size(), 1u);
    int soon = 0;
    for (const auto& c : j["certificates"])
        if (c["status"] == "expires-soon") ++soon;
    EXPECT_EQ(soon, 1);
    // With --warn-days 5 the same certificate is fine.
    EXPECT_EQ(
        wec("pki show --warn-days 5 --dir '" + d.path().string() + "'").output.find("warning:"),
        std::string::npos);

    // An expired certificate: an error and exit 1.
    wec::pki::ClientOptions old;
    old.validity.days = 10;
    old.validity.not_before = std::time(nullptr) - 30 * 86400;
    old.pfx_password = "x";
    wec::pki::issue_client(d.path().string(), "old.cli.example", old);
    auto expired = wec("pki show --dir '" + d.path().string() + "'");
    EXPECT_EQ(expired.exit_code, 1) << expired.output;
    EXPECT_NE(expired.output.find("error: CN=old.cli.example"), std::string::npos)
        << expired.output;
    EXPECT_NE(expired.output.find("expired on"), std::string::npos) << expired.output;
}

// docs/exit-codes.md: a key, certificate or file that cannot be made or written is 3 (bad input
// stays 2: BadArgumentsAreUsageErrors).
TEST(PkiCli, FilesThatCannotBeWrittenAreRuntimeErrors) {
    auto init = wec("pki init --dir /proc/self/no-such/pki --hostname wec.cli.example");
    EXPECT_EQ(init.exit_code, 3) << init.output;
    EXPECT_NE(init.output.find("cannot create directory /proc/self/no-such/pki"), std::string::npos)
        << init.output;

    TempDir d;
    ASSERT_EQ(
        wec("pki init --dir '" + d.path().string() + "' --hostname wec.cli.example").exit_code, 0);
    // The key's path is taken by a directory: the rename onto it fails, as root too.
    std::filesystem::create_directory(d.path() / "pc.cli.example.key");
    auto client =
        wec("pki client pc.cli.example --force --pfx-password x --dir '" + d.path().string() + "'");
    EXPECT_EQ(client.exit_code, 3) << client.output;
    EXPECT_NE(client.output.find("pc.cli.example.key"), std::string::npos) << client.output;
}

} // namespace

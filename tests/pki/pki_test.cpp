// lib/pki checked by independent tools: `openssl verify/x509/pkcs12`, and real TLS handshakes
// with client certificates between `openssl s_server` and `openssl s_client` / curl.
#include "common/files.hpp"
#include "pki/pki.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>
#include <set>

namespace {

using namespace pkitest;
namespace pki = wec::pki;

const std::string kHost = "wec.test.example";
const std::string kClient = "win10.test.example";

pki::InitResult make_pki(const TempDir& d, pki::KeyType key = pki::KeyType::EcP384) {
    pki::InitOptions o;
    o.key = key;
    o.ip_addresses = {"127.0.0.1"};
    o.dns_names = {"alt.test.example"};
    return pki::init(d.path().string(), kHost, o);
}

pki::ClientResult make_client(const TempDir& d, const std::string& password = "Test-pw1",
                              pki::KeyType key = pki::KeyType::EcP384, bool legacy = true) {
    pki::ClientOptions o;
    o.key = key;
    o.pfx_password = password;
    o.legacy_pfx = legacy;
    return pki::issue_client(d.path().string(), kClient, o);
}

std::string text_of(const std::string& pem) {
    return sh("openssl x509 -in '" + pem + "' -noout -text").output;
}

TEST(PkiInit, ServerCertificateVerifiesAgainstTheCa) {
    TempDir d;
    auto r = make_pki(d);
    EXPECT_EQ(r.ca_cert, d.file("ca.pem"));
    EXPECT_EQ(r.server_key, d.file("server.key"));
    auto v =
        sh("openssl verify -CAfile '" + r.ca_cert + "' -purpose sslserver '" + r.server_cert + "'");
    EXPECT_EQ(v.exit_code, 0) << v.output;
    EXPECT_NE(v.output.find(": OK"), std::string::npos) << v.output;
    // server.pem = leaf + CA chain
    EXPECT_EQ(count_of(slurp(r.server_cert), "BEGIN CERTIFICATE"), 2u);
    EXPECT_EQ(count_of(slurp(r.ca_cert), "BEGIN CERTIFICATE"), 1u);
    // The keys match their certificates.
    for (auto [cert, key] :
         {std::pair{r.ca_cert, r.ca_key}, std::pair{r.server_cert, r.server_key}}) {
        auto a = sh("openssl x509 -in '" + cert + "' -noout -pubkey");
        auto b = sh("openssl pkey -in '" + key + "' -pubout");
        EXPECT_EQ(a.exit_code, 0);
        EXPECT_EQ(a.output, b.output) << cert;
    }
}

TEST(PkiInit, ThumbprintAndGpoStringMatchOpenssl) {
    TempDir d;
    auto r = make_pki(d);
    std::string expected = openssl_sha1_thumbprint(r.ca_cert);
    EXPECT_EQ(r.ca_thumbprint, expected);
    EXPECT_EQ(r.ca_thumbprint.size(), 40u);
    EXPECT_EQ(r.ca_thumbprint.find_first_not_of("0123456789ABCDEF"), std::string::npos);
    EXPECT_EQ(r.gpo_string,
              "Server=HTTPS://wec.test.example:5986/wsman/,Refresh=60,IssuerCA=" + expected);
    EXPECT_EQ(pki::sha1_thumbprint_file(r.ca_cert), expected);
    // DER input gives the same value.
    auto der =
        sh("openssl x509 -in '" + r.ca_cert + "' -outform DER -out '" + d.file("ca.der") + "'");
    ASSERT_EQ(der.exit_code, 0) << der.output;
    EXPECT_EQ(pki::sha1_thumbprint(wec::read_file(d.file("ca.der"))), expected);
    EXPECT_EQ(pki::sha1_thumbprint(wec::read_file(r.server_cert)),
              openssl_sha1_thumbprint(r.server_cert));
}

TEST(PkiInit, KeysAreOwnerOnly) {
    TempDir d;
    auto r = pki::init(d.file("sub/pki"), kHost);
    EXPECT_EQ(mode_of(r.ca_key), 0600u);
    EXPECT_EQ(mode_of(r.server_key), 0600u);
    EXPECT_EQ(mode_of(r.ca_cert), 0644u);
    EXPECT_EQ(mode_of(d.file("sub/pki")), 0700u); // created by init: holds the keys
    // No temporary files left behind.
    std::set<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(d.file("sub/pki")))
        names.insert(e.path().filename());
    EXPECT_EQ(names, (std::set<std::string>{"ca.key", "ca.pem", "server.key", "server.pem"}));
}

TEST(PkiInit, EcdsaP384ByDefaultWithTheSpecifiedExtensions) {
    TempDir d;
    auto r = make_pki(d);
    std::string ca = text_of(r.ca_cert);
    EXPECT_NE(ca.find("ASN1 OID: secp384r1"), std::string::npos) << ca;
    EXPECT_NE(ca.find("ecdsa-with-SHA384"), std::string::npos);
    EXPECT_NE(ca.find("X509v3 Basic Constraints: critical\n                CA:TRUE"),
              std::string::npos)
        << ca;
    EXPECT_NE(ca.find("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"),
              std::string::npos);
    EXPECT_NE(ca.find("X509v3 Subject Key Identifier"), std::string::npos);
    EXPECT_NE(ca.find("Subject: O = wec, CN = wec CA wec.test.example"), std::string::npos);
    // About 10 years.
    auto info = pki::show(d.path().string());
    ASSERT_FALSE(info.certificates.empty());
    EXPECT_EQ(info.certificates[0].file, r.ca_cert);
    EXPECT_TRUE(info.certificates[0].is_ca);
    EXPECT_EQ(info.certificates[0].days_left, 3650);

    std::string srv = text_of(r.server_cert);
    EXPECT_NE(srv.find("ASN1 OID: secp384r1"), std::string::npos);
    EXPECT_NE(srv.find("Subject: CN = wec.test.example"), std::string::npos) << srv;
    EXPECT_NE(srv.find("CA:FALSE"), std::string::npos);
    EXPECT_NE(
        srv.find("X509v3 Extended Key Usage: \n                TLS Web Server Authentication\n"),
        std::string::npos)
        << srv;
    EXPECT_NE(srv.find("X509v3 Key Usage: critical\n                Digital Signature\n"),
              std::string::npos)
        << srv;
    EXPECT_NE(srv.find("DNS:wec.test.example, DNS:alt.test.example, IP Address:127.0.0.1"),
              std::string::npos)
        << srv;
    EXPECT_NE(srv.find("X509v3 Authority Key Identifier"), std::string::npos);
    EXPECT_EQ(info.certificates.size(), 2u);
    EXPECT_EQ(info.certificates[1].days_left, 730);
}

TEST(PkiInit, RsaKeysOnRequest) {
    TempDir d;
    auto r = make_pki(d, pki::KeyType::Rsa2048);
    std::string ca = text_of(r.ca_cert);
    EXPECT_NE(ca.find("Public-Key: (2048 bit)"), std::string::npos) << ca;
    EXPECT_NE(ca.find("sha256WithRSAEncryption"), std::string::npos);
    std::string srv = text_of(r.server_cert);
    EXPECT_NE(srv.find("rsaEncryption"), std::string::npos);
    EXPECT_NE(srv.find("Digital Signature, Key Encipherment"), std::string::npos) << srv;
    auto v = sh("openssl verify -CAfile '" + r.ca_cert + "' '" + r.server_cert + "'");
    EXPECT_EQ(v.exit_code, 0) << v.output;
}

TEST(PkiInit, P256OnRequest) {
    TempDir d;
    auto r = make_pki(d, pki::KeyType::EcP256);
    std::string srv = text_of(r.server_cert);
    EXPECT_NE(srv.find("ASN1 OID: prime256v1"), std::string::npos) << srv;
    EXPECT_NE(srv.find("ecdsa-with-SHA256"), std::string::npos);
}

TEST(PkiInit, RefusesToOverwriteUnlessForced) {
    TempDir d;
    auto first = make_pki(d);
    try {
        make_pki(d);
        FAIL() << "a second init replaced the PKI";
    } catch (const pki::PkiError& e) {
        EXPECT_EQ(e.kind(), pki::PkiError::Kind::Input);
        EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find(d.path().string()), std::string::npos) << e.what();
    }
    EXPECT_EQ(openssl_sha1_thumbprint(first.ca_cert), first.ca_thumbprint); // untouched
    // A single leftover file is enough to refuse.
    std::filesystem::remove(first.ca_cert);
    EXPECT_THROW(make_pki(d), pki::PkiError);

    pki::InitOptions o;
    o.force = true;
    auto second = pki::init(d.path().string(), kHost, o);
    EXPECT_NE(second.ca_thumbprint, first.ca_thumbprint);
    EXPECT_EQ(openssl_sha1_thumbprint(second.ca_cert), second.ca_thumbprint);
}

TEST(PkiInit, RejectsBadInputSayingWhy) {
    TempDir d;
    auto expect_input_error = [](auto&& f, const std::string& needle) {
        try {
            f();
            ADD_FAILURE() << "no error for " << needle;
        } catch (const pki::PkiError& e) {
            EXPECT_EQ(e.kind(), pki::PkiError::Kind::Input) << e.what();
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    expect_input_error([&] { pki::init(d.path().string(), "bad/name"); }, "bad/name");
    expect_input_error([&] { pki::init(d.path().string(), ""); }, "empty");
    expect_input_error([&] { pki::init(d.path().string(), std::string(70, 'a')); }, "64");
    expect_input_error([&] { pki::init(d.path().string(), "-x.example"); }, "-x.example");
    pki::InitOptions bad_ip;
    bad_ip.ip_addresses = {"300.1.2.3"};
    expect_input_error([&] { pki::init(d.path().string(), kHost, bad_ip); }, "300.1.2.3");
    expect_input_error([&] { pki::rsa_key_type(1024); }, "1024");
    expect_input_error([&] { pki::parse_key_type("dsa"); }, "dsa");
    // Nothing was written.
    EXPECT_TRUE(std::filesystem::is_empty(d.path()));
    // Clients need a CA first, and cannot clobber the CA or server files.
    expect_input_error([&] { pki::issue_client(d.path().string(), kClient); }, "wec pki init");
    make_pki(d);
    expect_input_error([&] { pki::issue_client(d.path().string(), "ca"); }, "ca");
    expect_input_error([&] { pki::issue_client(d.path().string(), "Server"); }, "server");
    expect_input_error([&] { pki::issue_client(d.path().string(), "../evil"); }, "../evil");
    expect_input_error([&] { pki::sha1_thumbprint(wec::as_bytes("not a certificate")); },
                       "no certificate");
    expect_input_error([&] { pki::show(d.file("missing")); }, "missing");
}

TEST(PkiKeyTypes, NamesRoundTrip) {
    for (auto t : {pki::KeyType::EcP384, pki::KeyType::EcP256, pki::KeyType::Rsa2048,
                   pki::KeyType::Rsa3072, pki::KeyType::Rsa4096})
        EXPECT_EQ(pki::parse_key_type(pki::to_string(t)), t);
    EXPECT_EQ(pki::parse_key_type("P-256"), pki::KeyType::EcP256);
    EXPECT_EQ(pki::rsa_key_type(3072), pki::KeyType::Rsa3072);
}

TEST(PkiClient, VerifiesForClientAuthOnly) {
    TempDir d;
    auto ca = make_pki(d);
    auto r = make_client(d);
    EXPECT_EQ(r.cert, d.file(kClient + ".pem"));
    EXPECT_EQ(r.ca_thumbprint, ca.ca_thumbprint);
    EXPECT_EQ(r.thumbprint, openssl_sha1_thumbprint(r.cert));
    auto ok = sh("openssl verify -CAfile '" + ca.ca_cert + "' -purpose sslclient '" + r.cert + "'");
    EXPECT_EQ(ok.exit_code, 0) << ok.output;
    auto no = sh("openssl verify -CAfile '" + ca.ca_cert + "' -purpose sslserver '" + r.cert + "'");
    EXPECT_NE(no.exit_code, 0) << no.output;
    std::string t = text_of(r.cert);
    EXPECT_NE(t.find("Subject: CN = win10.test.example\n"), std::string::npos) << t;
    EXPECT_NE(t.find("TLS Web Client Authentication\n"), std::string::npos);
    EXPECT_EQ(t.find("TLS Web Server Authentication"), std::string::npos);
    EXPECT_NE(t.find("DNS:win10.test.example\n"), std::string::npos);
    EXPECT_NE(t.find("Digital Signature\n"), std::string::npos);
    EXPECT_EQ(mode_of(r.key), 0600u);
    EXPECT_EQ(mode_of(r.pfx), 0600u);
    EXPECT_EQ(mode_of(r.cert), 0644u);
    // What `wec pki client` prints needs (the steps themselves: pki_cli_test).
    EXPECT_FALSE(r.rsa_key);
    EXPECT_EQ(r.collector, kHost);
}

TEST(PkiClient, RsaClientHasKeyEncipherment) {
    TempDir d;
    make_pki(d);
    auto r = make_client(d, "pw", pki::KeyType::Rsa2048);
    EXPECT_TRUE(r.rsa_key); // the key command of `wec pki client` differs for RSA
    std::string t = text_of(r.cert);
    EXPECT_NE(t.find("Public-Key: (2048 bit)"), std::string::npos);
    EXPECT_NE(t.find("Digital Signature, Key Encipherment"), std::string::npos) << t;
    // Signed by the ECDSA P-384 CA.
    EXPECT_NE(t.find("ecdsa-with-SHA384"), std::string::npos);
}

TEST(PkiClient, RefusesToReplaceAnExistingClientUnlessForced) {
    TempDir d;
    make_pki(d);
    auto first = make_client(d);
    EXPECT_THROW(make_client(d), pki::PkiError);
    pki::ClientOptions o;
    o.force = true;
    auto second = pki::issue_client(d.path().string(), kClient, o);
    EXPECT_NE(second.thumbprint, first.thumbprint);
}

TEST(PkiClient, LegacyPfxOpensWithoutTheLegacyProvider) {
    TempDir d;
    make_pki(d);
    auto r = make_client(d, "Test-pw1");
    EXPECT_FALSE(r.password_generated);
    auto info = sh("openssl pkcs12 -info -nokeys -in '" + r.pfx + "' -passin pass:Test-pw1");
    EXPECT_EQ(info.exit_code, 0) << info.output;
    EXPECT_NE(info.output.find("MAC: sha1"), std::string::npos) << info.output;
    EXPECT_NE(info.output.find("PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC"),
              std::string::npos);
    EXPECT_NE(info.output.find("Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC"),
              std::string::npos);
    EXPECT_EQ(info.output.find("RC2"), std::string::npos);
    EXPECT_NE(info.output.find("friendlyName: win10.test.example"), std::string::npos);
    // Key, client certificate and CA are all inside, and the key is the client's.
    auto all = sh("openssl pkcs12 -in '" + r.pfx + "' -passin pass:Test-pw1 -nodes");
    EXPECT_EQ(all.exit_code, 0) << all.output;
    EXPECT_EQ(count_of(all.output, "BEGIN CERTIFICATE"), 2u);
    EXPECT_EQ(count_of(all.output, "BEGIN PRIVATE KEY"), 1u);
    EXPECT_NE(all.output.find("subject=CN = win10.test.example"), std::string::npos);
    EXPECT_NE(all.output.find("subject=O = wec, CN = wec CA wec.test.example"), std::string::npos);
    auto key = sh("openssl pkcs12 -in '" + r.pfx +
                  "' -passin pass:Test-pw1 -nocerts -nodes | openssl pkey -pubout");
    auto pub = sh("openssl x509 -in '" + r.cert + "' -noout -pubkey");
    EXPECT_EQ(key.output, pub.output);
    // A wrong password is refused (the MAC is checked).
    auto wrong = sh("openssl pkcs12 -info -nokeys -in '" + r.pfx + "' -passin pass:wrong");
    EXPECT_NE(wrong.exit_code, 0) << wrong.output;
}

TEST(PkiClient, ModernPfxUsesAes256AndSha256) {
    TempDir d;
    make_pki(d);
    auto r = make_client(d, "Test-pw1", pki::KeyType::EcP384, /*legacy=*/false);
    auto info = sh("openssl pkcs12 -info -nokeys -in '" + r.pfx + "' -passin pass:Test-pw1");
    EXPECT_EQ(info.exit_code, 0) << info.output;
    EXPECT_NE(info.output.find("MAC: sha256"), std::string::npos) << info.output;
    EXPECT_NE(info.output.find("AES-256-CBC"), std::string::npos) << info.output;
    EXPECT_EQ(info.output.find("TripleDES"), std::string::npos);
}

TEST(PkiClient, GeneratesAPasswordWhenNoneGiven) {
    TempDir d;
    make_pki(d);
    auto r = make_client(d, "");
    EXPECT_TRUE(r.password_generated);
    EXPECT_EQ(r.pfx_password.size(), 20u);
    auto info = sh("openssl pkcs12 -info -nokeys -in '" + r.pfx +
                   "' -passin 'pass:" + r.pfx_password + "'");
    EXPECT_EQ(info.exit_code, 0) << info.output;
    pki::ClientOptions o;
    auto other = pki::issue_client(d.path().string(), "other.test.example", o);
    EXPECT_NE(other.pfx_password, r.pfx_password);
}

TEST(PkiShow, ListsEveryCertificateOnceWithThumbprintsAndEkus) {
    TempDir d;
    auto ca = make_pki(d);
    auto c = make_client(d);
    auto s = pki::show(d.path().string());
    ASSERT_EQ(s.certificates.size(), 3u); // the CA copy in server.pem is not listed twice
    EXPECT_TRUE(s.warnings.empty());
    EXPECT_TRUE(s.errors.empty());
    const auto& cac = s.certificates[0];
    EXPECT_EQ(cac.thumbprint, ca.ca_thumbprint);
    EXPECT_EQ(cac.subject, "CN=wec CA wec.test.example,O=wec");
    EXPECT_EQ(cac.subject, cac.issuer);
    const auto& srv = s.certificates[1];
    EXPECT_EQ(srv.file, ca.server_cert);
    EXPECT_EQ(srv.subject, "CN=wec.test.example");
    EXPECT_EQ(srv.ekus, std::vector<std::string>{"serverAuth"});
    EXPECT_EQ(srv.ip_addresses, std::vector<std::string>{"127.0.0.1"});
    EXPECT_EQ(srv.thumbprint, openssl_sha1_thumbprint(ca.server_cert));
    const auto& cl = s.certificates[2];
    EXPECT_EQ(cl.file, c.cert);
    EXPECT_EQ(cl.ekus, std::vector<std::string>{"clientAuth"});
    EXPECT_EQ(cl.dns_names, std::vector<std::string>{kClient});
    EXPECT_EQ(cl.thumbprint, c.thumbprint);
    EXPECT_EQ(cl.expiry, pki::Expiry::Ok);
    // serial and dates as openssl prints them
    auto serial = sh("openssl x509 -in '" + c.cert + "' -noout -serial").output;
    EXPECT_EQ(serial, "serial=" + cl.serial + "\n");
    EXPECT_EQ(cl.not_after.size(), 20u);
}

TEST(PkiShow, WarnsThirtyDaysBeforeExpiryAndErrorsWhenExpired) {
    TempDir d;
    make_pki(d);
    pki::ClientOptions soon;
    soon.validity.days = 10;
    auto c = pki::issue_client(d.path().string(), kClient, soon);
    auto s = pki::show(d.path().string());
    ASSERT_EQ(s.certificates.size(), 3u);
    EXPECT_EQ(s.certificates[2].expiry, pki::Expiry::ExpiresSoon);
    EXPECT_EQ(s.certificates[2].days_left, 10);
    ASSERT_EQ(s.warnings.size(), 1u);
    EXPECT_NE(s.warnings[0].find("expires in 10 days"), std::string::npos) << s.warnings[0];
    EXPECT_NE(s.warnings[0].find(c.cert), std::string::npos);
    EXPECT_TRUE(s.errors.empty());
    // Eleven days later it has expired.
    auto later = pki::show(d.path().string(), std::time(nullptr) + 11 * 86400);
    ASSERT_EQ(later.errors.size(), 1u);
    EXPECT_NE(later.errors[0].find("expired"), std::string::npos);
    EXPECT_EQ(later.certificates[2].expiry, pki::Expiry::Expired);
    // A certificate whose validity ended in the past, as issued.
    pki::ClientOptions old;
    old.validity.days = 10;
    old.validity.not_before = std::time(nullptr) - 20 * 86400;
    pki::issue_client(d.path().string(), "old.test.example", old);
    auto now = pki::show(d.path().string());
    ASSERT_EQ(now.errors.size(), 1u);
    EXPECT_NE(now.errors[0].find("old.test.example"), std::string::npos);
    auto v = sh("openssl verify -CAfile '" + d.file("ca.pem") + "' '" +
                d.file("old.test.example.pem") + "'");
    EXPECT_NE(v.output.find("expired"), std::string::npos) << v.output;
}

// ---- real TLS handshakes --------------------------------------------------------------------

struct TlsServer {
    int port = free_port();
    Process proc;
    explicit TlsServer(const TempDir& d)
        : proc({"openssl", "s_server", "-cert", d.file("server.pem"), "-key", d.file("server.key"),
                "-CAfile", d.file("ca.pem"), "-Verify", "1", "-verify_return_error", "-www",
                "-accept", "127.0.0.1:" + std::to_string(port)},
               {}, d.file("s_server.log")) {}
    bool ready() { return proc.wait_for_output("ACCEPT", std::chrono::seconds(10)); }
};

std::string s_client(const TempDir& d, int port, const std::string& cert,
                     const std::string& extra = "") {
    std::string certs = cert.empty() ? ""
                                     : " -cert '" + d.file(cert + ".pem") + "' -key '" +
                                           d.file(cert + ".key") + "'";
    return "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 15 openssl s_client -connect 127.0.0.1:" +
           std::to_string(port) + " -CAfile '" + d.file("ca.pem") +
           "' -ign_eof -verify_return_error -verify_hostname " + kHost + certs + " " + extra;
}

void handshake_with_client_cert(pki::KeyType key, const std::string& tls_version) {
    TempDir d;
    make_pki(d, key);
    make_client(d, "pw", key);
    TlsServer server(d);
    ASSERT_TRUE(server.ready()) << server.proc.output();
    auto r = sh(s_client(d, server.port, kClient, tls_version));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("Verify return code: 0 (ok)"), std::string::npos) << r.output;
    // The server accepted the client certificate and shows it on its status page.
    EXPECT_NE(r.output.find("HTTP/1.0 200 ok"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("Subject: CN=" + kClient), std::string::npos) << r.output;
}

TEST(PkiTls, EcdsaHandshakeWithClientCertificateTls13) {
    handshake_with_client_cert(pki::KeyType::EcP384, "-tls1_3");
}

TEST(PkiTls, EcdsaHandshakeWithClientCertificateTls12) {
    handshake_with_client_cert(pki::KeyType::EcP384, "-tls1_2");
}

TEST(PkiTls, RsaHandshakeWithClientCertificateTls12) {
    handshake_with_client_cert(pki::KeyType::Rsa2048, "-tls1_2");
}

TEST(PkiTls, CurlWithClientCertificateAndIpSan) {
    TempDir d;
    make_pki(d);
    make_client(d);
    TlsServer server(d);
    ASSERT_TRUE(server.ready()) << server.proc.output();
    std::string url = "https://127.0.0.1:" + std::to_string(server.port) + "/";
    auto ok = sh("timeout 15 curl -sS --cacert '" + d.file("ca.pem") + "' --cert '" +
                 d.file(kClient + ".pem") + "' --key '" + d.file(kClient + ".key") + "' " + url);
    EXPECT_EQ(ok.exit_code, 0) << ok.output;
    EXPECT_NE(ok.output.find("Subject: CN=" + kClient), std::string::npos) << ok.output;
    // Without a client certificate the server refuses.
    auto none = sh("timeout 15 curl -sS --cacert '" + d.file("ca.pem") + "' " + url);
    EXPECT_NE(none.exit_code, 0) << none.output;
    EXPECT_EQ(none.output.find("Subject: CN="), std::string::npos) << none.output;
}

TEST(PkiTls, ClientCertificateFromAnotherCaIsRefused) {
    TempDir d, other;
    make_pki(d);
    make_pki(other);
    make_client(other); // same name, different CA
    TlsServer server(d);
    ASSERT_TRUE(server.ready()) << server.proc.output();
    auto r = sh("timeout 15 curl -sS --cacert '" + d.file("ca.pem") + "' --cert '" +
                other.file(kClient + ".pem") + "' --key '" + other.file(kClient + ".key") +
                "' https://127.0.0.1:" + std::to_string(server.port) + "/");
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.find("Subject: CN="), std::string::npos) << r.output;
}

} // namespace

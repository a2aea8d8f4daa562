// `wec serve` over HTTPS with client certificates, end to end: a PKI made with the openssl CLI,
// the real binary, and curl as an independent TLS client posting the real Windows messages.
#include "support/files.hpp"
#include "support/krb5_realm.hpp"
#include "support/process.hpp"
#include "support/serve_fixture.hpp"
#include "support/test_pki.hpp"

#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kHost = "srv.windomain.local";

// The samples are ASCII: UTF-16LE with a BOM is a zero after every byte.
std::string to_utf16(const std::string& ascii) {
    std::string out = "\xff\xfe";
    for (char c : ascii) {
        out.push_back(c);
        out.push_back('\0');
    }
    return out;
}
std::string from_utf16(const std::string& bytes) {
    std::string out;
    for (std::size_t i = 2; i + 1 < bytes.size(); i += 2)
        out.push_back(bytes[i]);
    return out;
}

std::string sample(const std::string& name) {
    return std::string(WEC_TEST_DATA) + "/wsman/" + name;
}

class ServeTls : public ServeFixture {
protected:
    void start_server(std::vector<std::string> extra = {},
                      const std::vector<std::string>& cas = {"root.pem", "issuing.pem",
                                                             "other.pem"}) {
        port = free_port();
        std::vector<std::string> argv{WEC_EXE,      "serve",
                                      "--listen",   "127.0.0.1:" + std::to_string(port),
                                      "--auth",     "tls",
                                      "--cert",     pki("server.pem").string(),
                                      "--key",      pki("server.key").string(),
                                      "--hostname", kHost,
                                      "--db",       db};
        for (const auto& ca : cas)
            argv.insert(argv.end(), {"--ca", pki(ca).string()});
        argv.insert(argv.end(), extra.begin(), extra.end());
        server = std::make_unique<Process>(argv, std::map<std::string, std::string>{},
                                           dir.path() / "serve.log");
        ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    }

    struct Reply {
        int curl_exit = -1;
        int status = 0;
        std::string body; // decoded to ASCII
        std::string error;
    };

    // POSTs a body file as a Windows source would, with curl (an independent TLS client).
    Reply post(const std::string& client, const std::string& path, const std::string& body_bytes,
               bool sldc = false, const std::string& host = kHost) {
        static int n = 0;
        auto in = dir.path() / ("req" + std::to_string(++n));
        auto out = dir.path() / ("resp" + std::to_string(n));
        std::ofstream(in, std::ios::binary) << body_bytes;
        std::vector<std::string> argv{"curl",
                                      "-sS",
                                      "--max-time",
                                      "20",
                                      "--resolve",
                                      host + ":" + std::to_string(port) + ":127.0.0.1",
                                      "--cacert",
                                      pki("root.pem").string(),
                                      "-H",
                                      "Content-Type: application/soap+xml;charset=UTF-16",
                                      "-H",
                                      "User-Agent: Microsoft WinRM Client",
                                      "--data-binary",
                                      "@" + in.string(),
                                      "-o",
                                      out.string(),
                                      "-w",
                                      "%{http_code}"};
        if (!client.empty()) {
            argv.insert(argv.end(), {"--cert", pki(client + ".pem").string(), "--key",
                                     pki(client + ".key").string()});
        }
        if (sldc) argv.insert(argv.end(), {"-H", "Content-Encoding: SLDC"});
        argv.push_back("https://" + host + ":" + std::to_string(port) + path);
        auto r = run(argv);
        Reply reply;
        reply.curl_exit = r.exit_code;
        reply.error = r.output;
        try {
            reply.status =
                std::stoi(r.output.substr(r.output.size() >= 3 ? r.output.size() - 3 : 0));
        } catch (...) {
        }
        reply.body = from_utf16(slurp(out));
        return reply;
    }

    std::string enumerate(const std::string& client, Reply* out = nullptr) {
        auto r = post(client, "/wsman/", slurp(sample("enumerate.utf16")));
        if (out) *out = r;
        return r.body;
    }
};

std::string capture(const std::string& text, const std::string& re) {
    std::smatch m;
    return std::regex_search(text, m, std::regex(re)) ? m[1].str() : std::string();
}

TEST_F(ServeTls, WindowsSequenceWithAClientCertificate) {
    start_server();
    Reply r;
    auto resp = enumerate("win10.windomain.local", &r);
    ASSERT_EQ(r.status, 200) << r.error << resp;
    EXPECT_EQ(capture(resp, "RelatesTo>([^<]*)<"), "uuid:E9802257-6A7D-4C0D-BFA4-E81C7B1C447E");
    // The HTTPS profile with the thumbprint of the CA that issued this client's certificate.
    EXPECT_NE(resp.find("secprofile/https/mutual"), std::string::npos) << resp;
    EXPECT_EQ(capture(resp, "Thumbprint Role=\"issuer\">([0-9A-Fa-f]+)<"),
              openssl_sha1_thumbprint(pki("issuing.pem")));
    auto notify = capture(resp, "NotifyTo>\\s*<[^>]*Address>([^<]*)<");
    ASSERT_EQ(
        notify.rfind("https://" + kHost + ":" + std::to_string(port) + "/wsman/subscriptions/", 0),
        0u)
        << notify;
    auto path = notify.substr(notify.find("/wsman/"));

    r = post("win10.windomain.local", path, slurp(sample("heartbeat.sldc")), true);
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_EQ(capture(r.body, "RelatesTo>([^<]*)<"), "uuid:EEC04F74-A27D-4C3A-AEF5-BC5BF54359BA");

    r = post("win10.windomain.local", path, to_utf16(slurp(sample("events.xml"))), true);
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_NE(r.body.find("wsman/Ack"), std::string::npos) << r.body;

    resp = enumerate("win10.windomain.local");
    EXPECT_EQ(capture(resp, "RecordId=\"(\\d+)\""), "149161") << resp;

    r = post("win10.windomain.local", path, to_utf16(slurp(sample("subscription-end.xml"))), true);
    EXPECT_EQ(r.status, 204) << r.error;

    std::stringstream events(slurp(dir.path() / "events" / "win10.windomain.local.json"));
    int count = 0;
    for (std::string line; std::getline(events, line); ++count) {
        auto j = nlohmann::json::parse(line);
        EXPECT_EQ(j["OpenWEC"]["Client"], "win10.windomain.local");
    }
    EXPECT_EQ(count, 21);

    // The request log and `wec status` say how the host authenticated.
    EXPECT_NE(server->output().find("client=win10.windomain.local mechanism=TLS"),
              std::string::npos)
        << server->output();
    server->signal(SIGTERM);
    EXPECT_EQ(server->wait(20s), 0);
    auto status = run({WEC_EXE, "status", "--json", "--db", db});
    ASSERT_EQ(status.exit_code, 0) << status.output;
    auto st = nlohmann::json::parse(status.output);
    ASSERT_EQ(st.size(), 1u);
    ASSERT_EQ(st[0]["hosts"].size(), 1u) << status.output;
    EXPECT_EQ(st[0]["hosts"][0]["client"], "win10.windomain.local");
    EXPECT_EQ(st[0]["hosts"][0]["mechanism"], "TLS");
}

TEST_F(ServeTls, ThumbprintFollowsTheIssuerOfEachClient) {
    start_server();
    auto a = enumerate("win10.windomain.local");
    auto b = enumerate("dmz.example.org");
    EXPECT_EQ(capture(a, "Thumbprint Role=\"issuer\">([0-9A-Fa-f]+)<"),
              openssl_sha1_thumbprint(pki("issuing.pem")));
    EXPECT_EQ(capture(b, "Thumbprint Role=\"issuer\">([0-9A-Fa-f]+)<"),
              openssl_sha1_thumbprint(pki("other.pem")));
}

// Windows sends only its leaf certificate: the collector must be given the issuing CA, not only
// the root, or a valid client is refused (and the log says which link is missing).
TEST_F(ServeTls, OnlyTheRootCaIsNotEnoughForALeafOnlyClient) {
    start_server({}, {"root.pem"});
    Reply r;
    enumerate("win10.windomain.local", &r);
    EXPECT_NE(r.curl_exit, 0) << "status " << r.status;
    EXPECT_NE(r.status, 200);
    EXPECT_TRUE(server->wait_for_output("unable to get local issuer certificate", 5s))
        << server->output();
}

struct Rejection {
    const char* client; // "" = no certificate
    const char* log_reason;
};
void PrintTo(const Rejection& r, std::ostream* os) {
    *os << (*r.client ? r.client : "no certificate");
}

class ServeTlsRejects : public ServeTls, public ::testing::WithParamInterface<Rejection> {};

TEST_P(ServeTlsRejects, HandshakeFailsAndTheLogSaysWhy) {
    start_server({"--crl", pki("issuing.crl").string()});
    Reply r;
    enumerate(GetParam().client, &r);
    EXPECT_NE(r.curl_exit, 0) << "status " << r.status;
    EXPECT_NE(r.status, 200);
    EXPECT_TRUE(server->wait_for_output(GetParam().log_reason, 5s)) << server->output();
    EXPECT_NE(server->output().find("TLS handshake failed"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    BadClients, ServeTlsRejects,
    ::testing::Values(Rejection{"", "did not return a certificate"},
                      Rejection{"stranger.example.org", "unable to get local issuer certificate"},
                      Rejection{"expired.windomain.local", "certificate has expired"},
                      Rejection{"noeku.windomain.local", "lacks the Client Authentication"},
                      Rejection{"revoked.windomain.local", "certificate revoked"}),
    [](const ::testing::TestParamInfo<Rejection>& p) {
        std::string n = *p.param.client ? p.param.client : "no_certificate";
        return n.substr(0, n.find('.'));
    });

// SIGHUP reloads CRLs (and the certificate, key and CAs) for new connections: a certificate revoked
// after the collector started is refused without a restart; an unreadable CRL keeps the old one.
TEST_F(ServeTls, SighupReloadsTheCrl) {
    auto crl = dir.path() / "live.crl";
    fs::copy_file(pki("issuing-empty.crl"), crl);
    start_server({"--crl", crl.string()});
    Reply before;
    enumerate("revoked.windomain.local", &before);
    EXPECT_EQ(before.status, 200) << before.error;

    fs::copy_file(pki("issuing.crl"), crl, fs::copy_options::overwrite_existing);
    ASSERT_TRUE(server->signal(SIGHUP));
    ASSERT_TRUE(server->wait_for_output("TLS certificate, CAs and CRLs reloaded", 10s))
        << server->output();
    Reply after;
    enumerate("revoked.windomain.local", &after);
    EXPECT_NE(after.status, 200);
    EXPECT_TRUE(server->wait_for_output("certificate revoked", 5s)) << server->output();
    Reply good;
    enumerate("win10.windomain.local", &good);
    EXPECT_EQ(good.status, 200) << good.error;

    // A broken CRL file: the reload fails, the listener keeps what it had.
    std::ofstream(crl, std::ios::trunc) << "not a CRL";
    ASSERT_TRUE(server->signal(SIGHUP));
    ASSERT_TRUE(server->wait_for_output("TLS reload failed", 10s)) << server->output();
    Reply still;
    enumerate("win10.windomain.local", &still);
    EXPECT_EQ(still.status, 200) << still.error;
    Reply revoked;
    enumerate("revoked.windomain.local", &revoked);
    EXPECT_NE(revoked.status, 200);
}

// openssl s_client as a second independent TLS client, with the key types and TLS 1.2 cipher
// suites Windows uses (ECDHE-ECDSA-AES-GCM for older Windows, ECDHE-RSA-AES-GCM) and TLS 1.3.
struct Suite {
    const char* key;     // server key type: "" (P-256), "rsa", "p384"
    const char* version; // s_client flag
    const char* cipher;  // TLS 1.2 suite, or "" for TLS 1.3
};
void PrintTo(const Suite& s, std::ostream* os) {
    *os << (*s.key ? s.key : "p256") << " " << s.version << " " << s.cipher;
}

class ServeTlsSuites : public ServeTls, public ::testing::WithParamInterface<Suite> {};

TEST_P(ServeTlsSuites, OpensslClientGetsAnEnumerateResponse) {
    std::string k = GetParam().key;
    std::string suffix = k.empty() ? "" : "-" + k;
    port = free_port();
    server = std::make_unique<Process>(
        std::vector<std::string>{
            WEC_EXE, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--auth", "tls",
            "--cert", pki("server" + suffix + ".pem").string(), "--key",
            pki("server" + suffix + ".key").string(), "--ca", pki("root.pem").string(), "--ca",
            pki("issuing.pem").string(), "--hostname", kHost, "--db", db},
        std::map<std::string, std::string>{}, dir.path() / "serve.log");
    ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    auto body = slurp(sample("enumerate.utf16"));
    auto req = dir.path() / "request.http";
    std::ofstream(req, std::ios::binary)
        << "POST /wsman/ HTTP/1.1\r\nHost: " << kHost << ":" << port
        << "\r\nContent-Type: application/soap+xml;charset=UTF-16\r\n"
        << "Connection: close\r\nContent-Length: " << body.size() << "\r\n\r\n"
        << body;
    std::string cmd =
        "openssl s_client -quiet -ign_eof -connect 127.0.0.1:" + std::to_string(port) +
        " -servername " + kHost + " -verify_return_error -CAfile " + pki("root.pem").string() +
        " -cert " + pki("win10.windomain.local.pem").string() + " -key " +
        pki("win10.windomain.local.key").string() + " " + GetParam().version +
        (*GetParam().cipher ? std::string(" -cipher ") + GetParam().cipher : std::string()) +
        " < " + req.string();
    auto r = run({"sh", "-c", cmd}, {}, 30s);
    ASSERT_NE(r.output.find("HTTP/1.1 200"), std::string::npos) << r.output.substr(0, 2000);
    auto body_start = r.output.find("\r\n\r\n");
    ASSERT_NE(body_start, std::string::npos);
    // The body is UTF-16LE with a BOM, as Windows expects.
    EXPECT_EQ(r.output.substr(body_start + 4, 2), "\xff\xfe");
    EXPECT_NE(from_utf16(r.output.substr(body_start + 4)).find("EnumerateResponse"),
              std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    KeysAndSuites, ServeTlsSuites,
    ::testing::Values(Suite{"", "-tls1_2", "ECDHE-ECDSA-AES128-GCM-SHA256"},
                      Suite{"p384", "-tls1_2", "ECDHE-ECDSA-AES256-GCM-SHA384"},
                      Suite{"rsa", "-tls1_2", "ECDHE-RSA-AES256-GCM-SHA384"},
                      // Windows 7 / Server 2008 R2: ECDHE-RSA only with CBC.
                      Suite{"rsa", "-tls1_2", "ECDHE-RSA-AES256-SHA"}, Suite{"rsa", "-tls1_3", ""}),
    [](const ::testing::TestParamInfo<Suite>& p) {
        std::string n =
            std::string(*p.param.key ? p.param.key : "p256") + "_" + (p.param.version + 1);
        if (std::string(p.param.cipher).ends_with("-SHA")) n += "_cbc";
        return n;
    });

// What the TLS listener refuses, tried with openssl s_client at security level 0 (so that the
// client really offers the old protocol or suite): docs/security.md, "TLS".
class ServeTlsRefusesOld : public ServeTls {
protected:
    // Runs s_client against a server with the given key ("" = P-256, "rsa") and returns its output.
    std::string s_client(const std::string& key, const std::string& args) {
        std::string suffix = key.empty() ? "" : "-" + key;
        port = free_port();
        server = std::make_unique<Process>(
            std::vector<std::string>{
                WEC_EXE, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--auth", "tls",
                "--cert", pki("server" + suffix + ".pem").string(), "--key",
                pki("server" + suffix + ".key").string(), "--ca", pki("root.pem").string(), "--ca",
                pki("issuing.pem").string(), "--hostname", kHost, "--db", db},
            std::map<std::string, std::string>{}, dir.path() / "serve.log");
        EXPECT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
        auto req = dir.path() / "request.http";
        std::ofstream(req, std::ios::binary)
            << "GET /wsman/ HTTP/1.1\r\nHost: " << kHost << "\r\nConnection: close\r\n\r\n";
        std::string cmd = "openssl s_client -ign_eof -connect 127.0.0.1:" + std::to_string(port) +
                          " -servername " + kHost + " -CAfile " + pki("root.pem").string() +
                          " -cert " + pki("win10.windomain.local.pem").string() + " -key " +
                          pki("win10.windomain.local.key").string() + " " + args + " < " +
                          req.string() + " 2>&1";
        return run({"sh", "-c", cmd}, {}, 30s).output;
    }
};

TEST_F(ServeTlsRefusesOld, Tls10And11) {
    for (const char* version : {"-tls1", "-tls1_1"}) {
        auto out = s_client("", std::string(version) + " -cipher DEFAULT:@SECLEVEL=0");
        EXPECT_NE(out.find("alert protocol version"), std::string::npos) << version << "\n" << out;
        EXPECT_EQ(out.find("HTTP/1.1"), std::string::npos) << version << "\n" << out;
        EXPECT_TRUE(server->wait_for_output("reason=\"unsupported protocol\"", 5s))
            << server->output();
        server->signal(SIGTERM);
        EXPECT_EQ(server->wait(20s), 0);
    }
}

// OpenSSL's default list accepts RSA key exchange (no forward secrecy) with an RSA server key.
TEST_F(ServeTlsRefusesOld, StaticRsaKeyExchange) {
    for (const char* cipher : {"AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA"}) {
        auto out = s_client("rsa", std::string("-tls1_2 -cipher ") + cipher + ":@SECLEVEL=0");
        EXPECT_EQ(out.find(std::string("Cipher is ") + cipher), std::string::npos) << cipher << "\n"
                                                                                   << out;
        EXPECT_EQ(out.find("HTTP/1.1"), std::string::npos) << cipher << "\n" << out;
        EXPECT_TRUE(server->wait_for_output("reason=\"no shared cipher\"", 5s)) << server->output();
        server->signal(SIGTERM);
        EXPECT_EQ(server->wait(20s), 0);
    }
}

// A client that reconnects offering its previous session (as Schannel does) gets a full
// handshake each time. Before, OpenSSL answered it with a fatal internal_error alert ("session
// id context uninitialized"), so every second connection of such a client failed.
TEST_F(ServeTlsRefusesOld, ResumptionFallsBackToAFullHandshake) {
    auto out = s_client("", "-tls1_2 -reconnect");
    std::size_t handshakes = 0;
    for (std::size_t at = 0; (at = out.find("\nNew, TLSv1.2", at)) != std::string::npos; ++at)
        ++handshakes;
    EXPECT_EQ(handshakes, 6u) << out; // the first connection and five reconnections
    EXPECT_EQ(out.find("Reused,"), std::string::npos) << out;
    EXPECT_EQ(out.find("alert"), std::string::npos) << out;
    EXPECT_EQ(server->output().find("TLS handshake failed"), std::string::npos) << server->output();
}

TEST_F(ServeTls, ClientRefusesAServerUnderAnotherName) {
    start_server();
    auto r = post("win10.windomain.local", "/wsman/", slurp(sample("enumerate.utf16")), false,
                  "wrong.example.org");
    EXPECT_EQ(r.curl_exit, 60) << r.error; // curl: peer certificate cannot be authenticated
}

TEST_F(ServeTls, KerberosAndTlsListenersSideBySide) {
    Krb5Realm realm;
    realm.add_principal("HTTP/" + kHost);
    realm.add_principal("HOST/" + kHost);
    realm.add_principal("WIN10$");
    auto keytab = realm.export_keytab({"HTTP/" + kHost, "HOST/" + kHost}, "wec.keytab");
    auto ccache =
        realm.kinit("WIN10$@" + realm.realm(), realm.export_keytab({"WIN10$"}, "c.keytab"));
    int kport = free_port();
    port = free_port();
    auto cfg = dir.path() / "wec.toml";
    std::ofstream(cfg) << "hostname = \"" << kHost << "\"\ndb = \"" << db << "\"\n"
                       << "[[listeners]]\naddress = \"127.0.0.1:" << kport
                       << "\"\nauth = \"kerberos\"\nkeytab = \"" << keytab.string() << "\"\n"
                       << "[[listeners]]\naddress = \"127.0.0.1:" << port
                       << "\"\nauth = \"tls\"\ncert = \"" << pki("server.pem").string()
                       << "\"\nkey = \"" << pki("server.key").string() << "\"\nca = [\""
                       << pki("root.pem").string() << "\", \"" << pki("issuing.pem").string()
                       << "\"]\n";
    server = std::make_unique<Process>(
        std::vector<std::string>{WEC_EXE, "serve", "--config", cfg.string()}, realm.env(),
        dir.path() / "serve.log");
    ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();

    auto tls = enumerate("win10.windomain.local");
    EXPECT_NE(tls.find("https://" + kHost + ":" + std::to_string(port) + "/wsman/subscriptions/"),
              std::string::npos)
        << tls;

    auto env = realm.env();
    env["KRB5CCNAME"] = ccache;
    auto py = run({"/usr/bin/python3", std::string(WEC_SOURCE_DIR) + "/tests/interop/wef_client.py",
                   "--url",
                   "http://127.0.0.1:" + std::to_string(kport) + "/wsman/SubscriptionManager/WEC",
                   "--service", "HTTP@" + kHost, "--samples", std::string(WEC_TEST_DATA) + "/wsman",
                   "--subscription", "security"},
                  env, 60s);
    EXPECT_EQ(py.exit_code, 0) << py.output;
    EXPECT_NE(
        py.output.find("http://" + kHost + ":" + std::to_string(kport) + "/wsman/subscriptions/"),
        std::string::npos)
        << py.output;
    server->signal(SIGTERM);
    EXPECT_EQ(server->wait(20s), 0);
}

} // namespace

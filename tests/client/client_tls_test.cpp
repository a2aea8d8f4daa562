// The client core (lib/client) over HTTPS with a client certificate, against the real `wec serve
// --auth tls` binary and a PKI made with the openssl CLI (tests/integration/make_test_pki.sh):
// the full WEF sequence, the issuer thumbprint, the certificate CN as client identity, and the
// handshake refusals on both sides (wrong server name, client certificate from an unknown CA), and
// the 400s of this transport (a multipart/encrypted body, an unsupported Content-Encoding).
#include "client/client.hpp"
#include "client/load.hpp"
#include "http/http.hpp"
#include "support/files.hpp"
#include "support/process.hpp"
#include "support/serve_fixture.hpp"
#include "support/test_pki.hpp"

#include <cctype>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace client = wec::client;

const std::string kHost = "srv.windomain.local";
const std::string kClient = "win10.windomain.local"; // the CN of its certificate

std::string record_id_of(const nlohmann::json& j) {
    const auto& id = j["System"]["EventRecordID"];
    return id.is_string() ? id.get<std::string>() : id.dump();
}

std::string upper(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

class ClientTls : public ServeFixture {
protected:
    void SetUp() override {
        ServeFixture::SetUp();
        port = free_port();
        server = std::make_unique<Process>(
            std::vector<std::string>{
                WEC_EXE, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--auth", "tls",
                "--cert", pki("server.pem").string(), "--key", pki("server.key").string(), "--ca",
                pki("root.pem").string(), "--ca", pki("issuing.pem").string(), "--hostname", kHost,
                "--db", db},
            std::map<std::string, std::string>{}, dir.path() / "serve.log");
        ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    }

    fs::path json_file() const { return dir.path() / "events" / (kClient + ".json"); }

    // GPO form: HTTPS://<collector>:5986/wsman/ (connects to 127.0.0.1, checks the name kHost).
    client::SourceOptions source_options(const std::string& identity = kClient) const {
        client::SourceOptions o;
        o.manager = client::Url::parse("HTTPS://127.0.0.1:" + std::to_string(port) + "/wsman/");
        o.tls.cert_file = pki(identity + ".pem").string();
        o.tls.key_file = pki(identity + ".key").string();
        o.tls.ca_file = pki("root.pem").string();
        o.tls.server_name = kHost;
        o.machine_id = kClient;
        o.timeout = 15s;
        return o;
    }

    // The pieces for posting hand-made bodies: the push connection of the one subscription, its
    // target and an Events message of `n` generated events.
    struct RawPush {
        client::Connection& connection;
        std::string target;
        std::string soap;
    };
    static RawPush raw_push(client::Source& source, std::size_t n, std::uint64_t seed,
                            std::uint64_t first_record) {
        auto subs = source.enumerate();
        source.end();
        EXPECT_EQ(subs.size(), 1u);
        const auto& sub = subs.at(0);
        auto& c = source.push_connection(sub);
        auto target = source.push_url(sub).target;
        client::EventGenerator gen(kClient, seed, first_record);
        std::vector<std::string> events;
        for (std::size_t i = 0; i < n; ++i)
            events.push_back(gen.next());
        std::vector<std::string_view> views(events.begin(), events.end());
        return {c, target,
                wec::wsman::build_events(source.headers_for(sub), views, gen.bookmark())};
    }
};

TEST(ClientUrl, HttpsSchemeSelectsTlsAndPort5986) {
    auto u = client::Url::parse("HTTPS://wec.example.org/wsman/");
    EXPECT_TRUE(u.tls);
    EXPECT_EQ(u.port, 5986);
    EXPECT_EQ(u.str(), "https://wec.example.org:5986/wsman/");
    auto k = client::Url::parse("http://wec.example.org/wsman/SubscriptionManager/WEC");
    EXPECT_FALSE(k.tls);
    EXPECT_EQ(k.port, 5985);
    EXPECT_THROW(client::Url::parse("ftp://wec.example.org/"), client::ClientError);
}

TEST_F(ClientTls, FullSequenceOverTls) {
    client::Source source(source_options());

    // Enumerate -> End (no authentication POST: the certificate is the identity)
    auto subs = source.enumerate();
    ASSERT_EQ(subs.size(), 1u);
    auto sub = subs[0];
    EXPECT_EQ(sub.name, "security");
    EXPECT_EQ(sub.compression, "SLDC");
    EXPECT_EQ(sub.auth_profile, wec::wsman::kProfileTls);
    EXPECT_EQ(sub.notify_to.rfind(
                  "https://" + kHost + ":" + std::to_string(port) + "/wsman/subscriptions/", 0),
              0u)
        << sub.notify_to;
    // The thumbprint offered is the SHA-1 of the CA that issued this client's certificate.
    ASSERT_EQ(sub.issuer_thumbprints.size(), 1u);
    EXPECT_EQ(upper(sub.issuer_thumbprints[0]), openssl_sha1_thumbprint(pki("issuing.pem")));
    EXPECT_TRUE(sub.bookmark.empty()) << sub.bookmark;
    source.end();

    // Heartbeat -> Events (SLDC) on the NotifyTo connection (https: TLS again)
    EXPECT_TRUE(source.push_url(sub).tls);
    auto hb = source.heartbeat(sub);
    EXPECT_EQ(hb.reply.action, wec::wsman::Action::Ack);
    EXPECT_EQ(hb.reply.relates_to, hb.message_id);
    EXPECT_TRUE(source.push_connection(sub).options().tls);
    client::EventGenerator gen(kClient, 3, 7000);
    std::vector<std::string> events;
    for (int i = 0; i < 25; ++i)
        events.push_back(gen.next());
    auto ack = source.send_events(sub, events, gen.bookmark());
    EXPECT_EQ(ack.reply.action, wec::wsman::Action::Ack);
    EXPECT_EQ(ack.reply.relates_to, ack.message_id);

    // re-Enumerate (a new Source: new connection) shows the stored bookmark
    client::Source again(source_options());
    auto subs2 = again.enumerate();
    again.end();
    ASSERT_EQ(subs2.size(), 1u);
    EXPECT_NE(subs2[0].bookmark.find("RecordId=\"7024\""), std::string::npos) << subs2[0].bookmark;

    // SubscriptionEnd
    auto status = source.subscription_end(sub);
    EXPECT_TRUE(status == 200u || status == 204u) << status;

    // The 25 events, in order, with the certificate's CN as the client.
    auto lines = lines_of(slurp(json_file()));
    ASSERT_EQ(lines.size(), 25u) << json_file();
    auto first = nlohmann::json::parse(lines.front());
    EXPECT_EQ(record_id_of(first), "7000");
    EXPECT_EQ(first["OpenWEC"]["Client"], kClient);
    EXPECT_EQ(first["OpenWEC"]["Subscription"]["Name"], "security");
    EXPECT_EQ(record_id_of(nlohmann::json::parse(lines.back())), "7024");
}

TEST_F(ClientTls, UncompressedBodiesAndPreCompressedRecordsAreAcked) {
    auto o = source_options();
    o.compress = false;
    client::Source source(o);
    auto subs = source.enumerate();
    source.end();
    ASSERT_EQ(subs.size(), 1u);
    client::EventGenerator gen(kClient, 5, 100);
    std::vector<std::string> events{gen.next(), gen.next()};
    EXPECT_EQ(source.send_events(subs[0], events, gen.bookmark()).reply.action,
              wec::wsman::Action::Ack);
    // The load driver's path: an SLDC record prepared beforehand, sent as is.
    client::LoadOptions lo;
    lo.source = source_options();
    lo.events = 300;
    lo.batch = 100;
    lo.hosts = 2;
    lo.threads = 2;
    lo.precompressed = 2;
    auto r = client::run_load(lo);
    EXPECT_EQ(r.events_acked, 300u) << r.setup_error << (r.errors.empty() ? "" : r.errors[0]);
    EXPECT_EQ(r.batches_failed, 0u);
}

TEST_F(ClientTls, RefusesAServerCertificateForAnotherName) {
    auto o = source_options();
    o.tls.server_name = "other.example.org";
    client::Source source(o);
    try {
        source.enumerate();
        FAIL() << "expected a TLS error";
    } catch (const client::ClientError& e) {
        EXPECT_EQ(e.kind(), client::ErrorKind::Tls) << e.what();
        EXPECT_NE(std::string(e.what()).find("certificate verify failed"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("hostname mismatch"), std::string::npos) << e.what();
    }
    // The right name, by address (IP SAN 127.0.0.1), is accepted.
    o.tls.server_name = "127.0.0.1";
    client::Source by_ip(o);
    EXPECT_EQ(by_ip.enumerate().size(), 1u);
}

TEST_F(ClientTls, RefusesAServerItsCaBundleDoesNotKnow) {
    auto o = source_options();
    o.tls.ca_file = pki("unknown.pem").string();
    client::Source source(o);
    try {
        source.enumerate();
        FAIL() << "expected a TLS error";
    } catch (const client::ClientError& e) {
        EXPECT_EQ(e.kind(), client::ErrorKind::Tls) << e.what();
        EXPECT_NE(std::string(e.what()).find("certificate verify failed"), std::string::npos)
            << e.what();
    }
}

TEST_F(ClientTls, ClientCertificateFromAnUnknownCaGetsAHandshakeError) {
    client::Source source(source_options("stranger.example.org"));
    try {
        source.enumerate();
        FAIL() << "expected a TLS error";
    } catch (const client::ClientError& e) {
        EXPECT_EQ(e.kind(), client::ErrorKind::Tls) << e.what();
        // The server's alert, as OpenSSL reports it (TLS 1.3: after our side of the handshake).
        EXPECT_NE(std::string(e.what()).find("alert"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(server->wait_for_output("unable to get local issuer certificate", 5s))
        << server->output();
    EXPECT_FALSE(fs::exists(json_file()));
}

TEST_F(ClientTls, UnreadableClientKeyIsATypedError) {
    client::TlsOptions t;
    t.cert_file = pki(kClient + ".pem").string();
    t.key_file = pki("other.key").string(); // does not match
    try {
        client::make_tls_context(t);
        FAIL() << "expected an error";
    } catch (const client::ClientError& e) {
        EXPECT_EQ(e.kind(), client::ErrorKind::Tls) << e.what();
    }
    t.key_file = (dir.path() / "missing.key").string();
    try {
        client::make_tls_context(t);
        FAIL() << "expected an error";
    } catch (const client::ClientError& e) {
        EXPECT_EQ(e.kind(), client::ErrorKind::Tls) << e.what();
        EXPECT_NE(std::string(e.what()).find("missing.key"), std::string::npos) << e.what();
    }
}

// ---- status codes on the HTTPS transport (docs/protocol.md sections 1 and 5) --------------------

TEST_F(ClientTls, MultipartEncryptedBodyOverTlsIs400) {
    client::Source source(source_options());
    auto [c, target, soap] = raw_push(source, 2, 9, 300);
    auto plain = c.prepare(soap, false); // on TLS: the UTF-16 body as is

    // The same body framed as on the Kerberos transport (a made-up 60-byte token header: the
    // collector must refuse the framing before looking at it).
    std::vector<std::uint8_t> fake_header(60, 0x5a);
    auto framed =
        wec::http::build_encrypted(wec::http::kKerberosProtocol, wec::http::kDefaultOriginalType,
                                   plain.body.size(), fake_header, plain.body, false);
    client::PreparedBody sealed;
    sealed.body = std::move(framed.body);
    sealed.content_type = std::move(framed.content_type);
    ASSERT_TRUE(wec::http::is_multipart_encrypted(sealed.content_type)) << sealed.content_type;
    auto r = c.post_prepared(target, std::move(sealed));
    EXPECT_EQ(r.status, 400u) << r.text();
    EXPECT_NE(r.text().find("not sealed"), std::string::npos) << r.text();
    EXPECT_TRUE(server->wait_for_output("multipart/encrypted body on a TLS listener", 5s))
        << server->output();
    EXPECT_FALSE(fs::exists(json_file()));

    // The plain form of the same message is taken.
    if (!c.is_open()) c.connect(target);
    auto ok = c.post_prepared(target, std::move(plain));
    EXPECT_EQ(ok.status, 200u) << ok.text();
    ASSERT_TRUE(ok.message);
    EXPECT_EQ(ok.message->action, wec::wsman::Action::Ack);
    EXPECT_EQ(lines_of(slurp(json_file())).size(), 2u);
}

TEST_F(ClientTls, UnsupportedContentEncodingIs400) {
    client::Source source(source_options());
    auto [c, target, soap] = raw_push(source, 1, 4, 500);

    auto r = c.post_prepared(target, c.prepare(soap, true),
                             client::RequestOptions{{{"Content-Encoding", "gzip"}}, false});
    EXPECT_EQ(r.status, 400u) << r.text();
    EXPECT_NE(r.text().find("unsupported Content-Encoding 'gzip'"), std::string::npos) << r.text();
    EXPECT_FALSE(fs::exists(json_file()));

    if (!c.is_open()) c.connect(target);
    auto ok = c.post_prepared(target, c.prepare(soap, true));
    EXPECT_EQ(ok.status, 200u) << ok.text();
    EXPECT_EQ(lines_of(slurp(json_file())).size(), 1u);
}

// ---- wec replay over https:// ------------------------------------------------------------------

// `wec replay --from` over HTTPS: the Events of the sample capture (decoded to JSON Lines) pushed
// with a client certificate land in the collector's output, every record, in order.
TEST_F(ClientTls, ReplayFromDecodedCaptureOverTls) {
    const std::string sample = std::string(WEC_SOURCE_DIR) + "/samples/captures/";
    const std::string decode = std::string(WEC_EXE) + " decode " + sample + "wef-kerberos.pcap" +
                               " --keytab " + sample + "wec.keytab -q";
    const auto jsonl = dir.path() / "capture.jsonl";
    const auto raw = dir.path() / "capture.xml";
    auto d = run({"/bin/sh", "-c",
                  decode + " --format json > '" + jsonl.string() + "' && " + decode +
                      " --events --event-format raw > '" + raw.string() + "'"});
    ASSERT_EQ(d.exit_code, 0) << d.output;
    std::vector<std::string> expected_ids;
    for (const auto& line : lines_of(slurp(raw))) {
        const auto at = line.find("<EventRecordID>");
        ASSERT_NE(at, std::string::npos) << line;
        expected_ids.push_back(line.substr(at + 15, line.find('<', at + 15) - at - 15));
    }
    ASSERT_EQ(expected_ids.size(), 21u);

    auto r =
        run({WEC_EXE, "replay", "--url", "https://127.0.0.1:" + std::to_string(port) + "/wsman/",
             "--cert", pki(kClient + ".pem").string(), "--key", pki(kClient + ".key").string(),
             "--cacert", pki("root.pem").string(), "--server-name", kHost, "--from", jsonl.string(),
             "--json"},
            {}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
    EXPECT_EQ(j["mechanism"], "tls");
    EXPECT_EQ(j["messages_acked"], 1);
    EXPECT_EQ(j["events_acked"], 21);
    EXPECT_EQ(j["skipped"], 0);

    std::vector<std::string> written_ids;
    for (const auto& line : lines_of(slurp(json_file())))
        written_ids.push_back(std::to_string(
            nlohmann::json::parse(line)["System"]["EventRecordID"].get<std::uint64_t>()));
    EXPECT_EQ(written_ids, expected_ids);
}

TEST_F(ClientTls, ReplayCommandPushesOverTls) {
    auto r = run({WEC_EXE,         "replay",
                  "--url",         "https://127.0.0.1:" + std::to_string(port) + "/wsman/",
                  "--cert",        pki(kClient + ".pem").string(),
                  "--key",         pki(kClient + ".key").string(),
                  "--cacert",      pki("root.pem").string(),
                  "--server-name", kHost,
                  "--events",      "400",
                  "--batch",       "50",
                  "--hosts",       "2",
                  "--connections", "2",
                  "--json"},
                 {}, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
    EXPECT_EQ(j["events_acked"], 400);
    EXPECT_EQ(j["batches_failed"], 0);
    EXPECT_EQ(j["mechanism"], "tls");
    EXPECT_EQ(lines_of(slurp(json_file())).size(), 400u); // one identity: the certificate's CN

    // The wrong server name: every host fails its handshake, the error says why.
    auto bad =
        run({WEC_EXE, "replay", "--url", "https://127.0.0.1:" + std::to_string(port) + "/wsman/",
             "--cert", pki(kClient + ".pem").string(), "--key", pki(kClient + ".key").string(),
             "--cacert", pki("root.pem").string(), "--server-name", "other.example.org", "--events",
             "10"},
            {}, 60s);
    EXPECT_EQ(bad.exit_code, 3) << bad.output;
    EXPECT_NE(bad.output.find("hostname mismatch"), std::string::npos) << bad.output;
    // https:// without a certificate is a usage error.
    auto usage = run({WEC_EXE, "replay", "--url", "https://127.0.0.1:1/wsman/"}, {}, 20s);
    EXPECT_EQ(usage.exit_code, 2) << usage.output;
}

} // namespace

// The RFC 8009 enctypes end to end: a real MIT KDC that issues only aes128-cts-hmac-sha256-128
// or only aes256-cts-hmac-sha384-192, the real `wec serve` with a keytab of that enctype, and the
// client core sealing Enumerate, Heartbeat and Events bodies. Both sides take the OpenSSL fast
// path of lib/auth/fast_context.* (after its self-test against MIT); the events must arrive
// intact, a replayed or tampered request must be refused.
#include "client/client.hpp"
#include "client/load.hpp"
#include "support/files.hpp"
#include "support/krb5_realm.hpp"
#include "support/process.hpp"
#include "support/subscription.hpp"
#include "support/wef_realm.hpp"

#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace client = wec::client;

const std::string kHost = "srv.windomain.local";
const std::string kClient = "WIN10$@WINDOMAIN.LOCAL";

class ServeAesSha2 : public ::testing::TestWithParam<std::string> {};

TEST_P(ServeAesSha2, SealedEventsArriveIntact) {
    WefRealm realm(kHost, Krb5Realm::Options{.enctypes = GetParam()});
    realm.realm.apply_env();
    ::setenv("KRB5CCNAME", realm.ccache.c_str(), 1);
    TempDir dir;
    const std::string db = "sqlite:" + (dir.path() / "wec.db").string();
    apply_subscription(dir.path() / "security.toml",
                       security_subscription(dir.path() / "events" / "{client}.json"), db);

    const int port = free_port();
    Process server({WEC_EXE, "serve", "--listen", "127.0.0.1:" + std::to_string(port), "--auth",
                    "kerberos", "--keytab", realm.service_keytab.string(), "--hostname", kHost,
                    "--db", db},
                   realm.realm.env(), dir.path() / "serve.log");
    ASSERT_TRUE(server.wait_for_output("wec serve started", 20s)) << server.output();

    client::SourceOptions o;
    o.manager = client::Url::parse("http://127.0.0.1:" + std::to_string(port) +
                                   "/wsman/SubscriptionManager/WEC");
    o.service = "HTTP@" + kHost;
    o.mechanism = wec::auth::Mechanism::Kerberos;
    o.ccache = realm.ccache;
    o.timeout = 15s;
    client::Source source(o);
    auto subs = source.enumerate();
    source.end();
    ASSERT_EQ(subs.size(), 1u);
    const auto sub = subs[0];
    EXPECT_EQ(source.heartbeat(sub).reply.action, wec::wsman::Action::Ack);
    client::EventGenerator gen("win10.windomain.local", 3, 9000);
    for (int batch = 0; batch < 4; ++batch) {
        std::vector<std::string> events;
        for (int i = 0; i < 10; ++i)
            events.push_back(gen.next());
        auto ack = source.send_events(sub, events, gen.bookmark());
        EXPECT_EQ(ack.reply.relates_to, ack.message_id);
    }

    // The service ticket and its session key are of the enctype under test.
    const std::string ccache_path = realm.ccache.substr(realm.ccache.find(':') + 1);
    auto klist = run({"klist", "-e", "-c", ccache_path}, realm.realm.env());
    ASSERT_EQ(klist.exit_code, 0) << klist.output;
    EXPECT_NE(klist.output.find("HTTP/" + kHost), std::string::npos) << klist.output;
    EXPECT_NE(klist.output.find(GetParam() + ", " + GetParam()), std::string::npos) << klist.output;

    const auto lines = lines_of(slurp(dir.path() / "events" / (kClient + ".json")));
    ASSERT_EQ(lines.size(), 40u);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto j = nlohmann::json::parse(lines[i]);
        const auto& id = j["System"]["EventRecordID"];
        EXPECT_EQ(id.is_string() ? id.get<std::string>() : id.dump(), std::to_string(9000 + i));
        EXPECT_EQ(j["OpenWEC"]["Client"], kClient);
    }

    // A request replayed on its own connection (the sequence number must grow) and a tampered
    // one are refused, and nothing of them is stored.
    auto& c = source.push_connection(sub);
    const auto target = source.push_url(sub).target;
    auto soap = [&](std::size_t n) {
        std::vector<std::string> events;
        for (std::size_t i = 0; i < n; ++i)
            events.push_back(gen.next());
        std::vector<std::string_view> v(events.begin(), events.end());
        return wec::wsman::build_events(source.headers_for(sub), v, gen.bookmark());
    };
    auto body = c.prepare(soap(3), true);
    auto copy = body;
    auto r1 = c.post_prepared(target, std::move(body));
    ASSERT_EQ(r1.status, 200u) << r1.text();
    auto r2 = c.post_prepared(target, copy);
    EXPECT_EQ(r2.status, 400u) << r2.text();
    client::Source other(o);
    auto& c2 = other.push_connection(sub);
    auto tampered = c2.prepare(soap(2), true);
    const std::string closing = "--Encrypted Boundary--\r\n";
    ASSERT_GT(tampered.body.size(), closing.size() + 10);
    tampered.body[tampered.body.size() - closing.size() - 5] ^= 0x40;
    auto r3 = c2.post_prepared(target, std::move(tampered));
    EXPECT_EQ(r3.status, 400u) << r3.text();
    EXPECT_TRUE(server.wait_for_output("cannot decrypt", 5s)) << server.output();
    EXPECT_EQ(lines_of(slurp(dir.path() / "events" / (kClient + ".json"))).size(), 43u);
}

INSTANTIATE_TEST_SUITE_P(Enctypes, ServeAesSha2,
                         ::testing::Values("aes128-cts-hmac-sha256-128",
                                           "aes256-cts-hmac-sha384-192"),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                             return std::string(p.param.find("sha384") != std::string::npos
                                                    ? "Aes256Sha384"
                                                    : "Aes128Sha256");
                         });

} // namespace

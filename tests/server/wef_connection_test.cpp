// The collector's connection handler (server::WefConnection) in-process, on a real SQLite store:
// what it answers from a request's head alone, and its limits on TLS bodies.
#include "common/handle.hpp"
#include "pipeline/collector.hpp"
#include "server/wef_connection.hpp"
#include "store/store.hpp"
#include "support/process.hpp"

#include <cstdio>
#include <gtest/gtest.h>
#include <memory>

namespace {

using namespace wec;

struct WefConnectionTest : ::testing::Test {
    wec::testing::TempDir dir;
    wec::FilePtr null_log{std::fopen("/dev/null", "w")};
    Logger log{null_log.get()};
    std::unique_ptr<store::Store> store = store::open("sqlite:" + (dir.path() / "wec.db").string());
    store::HeartbeatBatcher heartbeats{*store};
    pipeline::Collector collector{log, *store, heartbeats, pipeline::CollectorConfig{}};
    server::WefEndpoint endpoint;

    WefConnectionTest() {
        endpoint.log = &log;
        endpoint.collector = &collector;
        endpoint.max_body_bytes = 1000;
    }

    static server::PeerInfo tls_peer() {
        server::PeerInfo p;
        p.address = "127.0.0.1";
        p.tls = true;
        p.tls_subject_cn = "win10.windomain.local";
        return p;
    }
    static server::HttpRequest post(std::vector<server::Header> headers = {}) {
        return server::HttpRequest{
            "POST", "/wsman/SubscriptionManager/WEC", std::move(headers), {}};
    }
};

TEST_F(WefConnectionTest, HeadsThatCannotSucceedAreAnsweredBeforeTheirBodies) {
    server::PeerInfo plain;
    plain.address = "127.0.0.1";
    server::WefConnection kerberos(endpoint, plain);
    auto unauthenticated = kerberos.check_head(post());
    ASSERT_TRUE(unauthenticated);
    EXPECT_EQ(unauthenticated->status, 401u);
    EXPECT_TRUE(unauthenticated->close);
    auto get = kerberos.check_head({"GET", "/wsman", {}, {}});
    ASSERT_TRUE(get);
    EXPECT_EQ(get->status, 405u);
    // With a token the body is needed (it may carry the first sealed message).
    EXPECT_FALSE(kerberos.check_head(post({{"Authorization", "Kerberos YII="}})));
    // TLS: the certificate already authenticated the client.
    server::WefConnection tls(endpoint, tls_peer());
    EXPECT_FALSE(tls.check_head(post()));
}

// The HTTP limit leaves room for Kerberos framing; a TLS body must fit max_body_bytes itself.
TEST_F(WefConnectionTest, TlsBodiesOverTheLimitAre400) {
    server::WefConnection tls(endpoint, tls_peer());
    auto request = post({{"Content-Type", "application/soap+xml;charset=UTF-8"}});
    request.body.assign(1001, 'x');
    auto r = tls.handle(request);
    EXPECT_EQ(r.status, 400u);
    std::string body(r.body.begin(), r.body.end());
    EXPECT_NE(body.find("body larger than 1000 bytes"), std::string::npos) << body;
    request.body.assign(1000, 'x'); // within the limit: parsed (and refused as SOAP)
    auto parsed = tls.handle(request);
    EXPECT_EQ(parsed.status, 400u);
    EXPECT_NE(std::string(parsed.body.begin(), parsed.body.end()).find("malformed SOAP"),
              std::string::npos);
}

} // namespace

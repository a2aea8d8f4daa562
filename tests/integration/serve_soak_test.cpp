// Soak, short form (issue 9): for each listener kind — Kerberos (`Authorization: Kerberos`),
// SPNEGO (`Negotiate`), TLS with a client certificate, NTLM (raw NTLMSSP under `Negotiate` on a
// negotiate listener: three legs per connection, gss-ntlmssp contexts, sealed bodies) and Basic
// over HTTPS (a SHA-512 crypt verification per connection) — the real `wec serve` binary with a
// real MIT KDC, a users file or an openssl-CLI PKI and one subscription, driven by the client core.
// After a warm-up, thousands of connect → authenticate → request → close cycles, and thousands of
// keep-alive requests on 50 connections, must leave the server's RSS within a few MB and its
// descriptor count where it was (once the server has closed what the clients closed). Until f511a1e
// every TLS session owned itself: 2,000 cycles grew the RSS by ~160 MB.
//
// The long form (20,000 of each, with figures) is bench/serve/soak_bench; both use the driver in
// tests/support/soak.hpp.
#include "support/files.hpp"
#include "support/soak.hpp"

#include <gtest/gtest.h>
#include <iostream>

namespace {

using namespace wec::testing;

constexpr std::size_t kCycles = 2000;
constexpr std::size_t kRequests = 2000;
constexpr std::size_t kConnections = 50;
constexpr long kMaxRssGrowthKb = 8 * 1024;

class ServeSoak : public ::testing::TestWithParam<SoakKind> {
protected:
    std::unique_ptr<SoakServer> server;

    void SetUp() override { server = std::make_unique<SoakServer>(GetParam(), WEC_EXE); }

    void TearDown() override {
        if (!server || !HasFailure()) return;
        auto log = lines_of(server->log());
        std::cerr << "---- wec serve log (last lines of " << log.size() << ") ----\n";
        for (std::size_t i = log.size() > 40 ? log.size() - 40 : 0; i < log.size(); ++i)
            std::cerr << log[i] << "\n";
    }

    // The phase answered every request, and left no descriptor and at most a few MB behind.
    void expect_no_growth(const char* phase, std::size_t expected, const SoakResult& r,
                          const Footprint& before, const Footprint& after) {
        std::cout << phase << " (" << to_string(GetParam()) << "): " << r.ok << " ok, " << r.failed
                  << " failed in " << r.seconds << " s; RSS " << before.rss_kb << " -> "
                  << after.rss_kb << " kB; fds " << before.fds << " -> " << after.fds << "\n";
        EXPECT_EQ(r.failed, 0u) << r.first_error;
        EXPECT_EQ(r.ok, expected);
        ASSERT_GT(before.fds, 0);
        ASSERT_GT(before.rss_kb, 0);
        EXPECT_LE(after.fds, before.fds) << "descriptors left open by " << phase;
        EXPECT_LE(after.rss_kb - before.rss_kb, kMaxRssGrowthKb)
            << "RSS grew by " << (after.rss_kb - before.rss_kb) << " kB in " << phase;
        EXPECT_TRUE(server->running());
    }
};

TEST_P(ServeSoak, ConnectAuthenticateRequestCloseCycles) {
    auto warm = server->warm_up();
    ASSERT_EQ(warm.failed, 0u) << warm.first_error;
    auto before = server->quiet();
    auto r = server->cycles(kCycles);
    auto after = server->settle(before.fds);
    expect_no_growth("cycles", kCycles, r, before, after);
}

TEST_P(ServeSoak, KeepAliveRequestsOnFiftyConnections) {
    auto warm = server->warm_up();
    ASSERT_EQ(warm.failed, 0u) << warm.first_error;
    auto before = server->quiet();
    auto r = server->keep_alive(kRequests, kConnections);
    auto after = server->settle(before.fds);
    expect_no_growth("keep-alive", kRequests, r, before, after);
}

INSTANTIATE_TEST_SUITE_P(Listeners, ServeSoak,
                         ::testing::Values(SoakKind::Kerberos, SoakKind::Spnego, SoakKind::Tls,
                                           SoakKind::Ntlm, SoakKind::Basic),
                         [](const ::testing::TestParamInfo<SoakKind>& p) {
                             return std::string(to_string(p.param));
                         });

} // namespace

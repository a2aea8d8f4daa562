// The tcp, unix and syslog drivers against receivers of the test (127.0.0.1, temp dirs): what
// arrives is compared with what was sent, and the failure cases (peer down and back, a peer that
// stops reading, a receiver restarted, oversized datagrams) are provoked for real.
#include "output/net_peers.hpp"
#include "output/output.hpp"
#include "support/captured_log.hpp"
#include "support/process.hpp"
#include "support/test_pki.hpp"

#include <cstdio>
#include <fstream>
#include <gtest/gtest.h>
#include <thread>

namespace {

using namespace wec::output;
using std::chrono::milliseconds;
using std::chrono::seconds;
using wec::testing::CapturedLog;
using wec::testing::TcpPeer;
using wec::testing::TempDir;

BatchInfo batch() {
    BatchInfo b;
    b.ip = "192.168.58.100";
    b.client = "WIN10$@WINDOMAIN.LOCAL";
    b.machine = "win10.windomain.local";
    b.subscription_name = "Security events";
    b.subscription_uuid = "8B18D83D-2964-4F35-AC3B-6F4E6FFA727B";
    b.received = std::chrono::system_clock::time_point(seconds(1700000000));
    return b;
}

// `count` distinct lines "<tag> <i> <padding>\n".
std::string lines(const std::string& tag, int count, std::size_t padding = 40) {
    std::string out;
    for (int i = 0; i < count; ++i)
        out += tag + " " + std::to_string(i) + " " + std::string(padding, 'x') + "\n";
    return out;
}

// Retries write() until it is accepted (the driver's backoff is at most 5 s).
bool write_until_accepted(Driver& d, const std::string& data, seconds limit = seconds(30)) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        try {
            d.write(batch(), data);
            return true;
        } catch (const OutputError&) {
            std::this_thread::sleep_for(milliseconds(100));
        }
    }
    return false;
}

std::string error_of(Driver& d, const std::string& data) {
    try {
        d.write(batch(), data);
    } catch (const OutputError& e) {
        return e.what();
    }
    return "accepted";
}

Settings tcp_to(int port, Settings extra = {}) {
    extra["address"] = "127.0.0.1:" + std::to_string(port);
    return extra;
}

// ------------------------------------------------------------------------------------------
// tcp

TEST(TcpOutput, DeliversEveryLineInOrderOnOneConnection) {
    TcpPeer peer({});
    auto d = make_driver("tcp", tcp_to(peer.port()));
    EXPECT_EQ(d->describe(), "tcp:127.0.0.1:" + std::to_string(peer.port()));
    std::string sent;
    for (int b = 0; b < 5; ++b) {
        std::string data = lines("batch" + std::to_string(b), 100 + b);
        d->write(batch(), data);
        sent += data;
    }
    d->write(batch(), ""); // an empty batch sends nothing
    ASSERT_TRUE(peer.wait_for_bytes(sent.size()));
    EXPECT_EQ(peer.received(), sent);
    EXPECT_EQ(peer.connections(), 1);
    EXPECT_EQ(d->stats().connects, 1u);
    EXPECT_EQ(d->stats().refused, 0u);
}

TEST(TcpOutput, ConcurrentBatchesNeverInterleave) {
    TcpPeer peer({});
    auto d = make_driver("tcp", tcp_to(peer.port()));
    std::vector<std::thread> writers;
    std::vector<std::string> batches;
    for (int t = 0; t < 4; ++t)
        batches.push_back(lines("writer" + std::to_string(t), 2000, 100));
    for (int t = 0; t < 4; ++t)
        writers.emplace_back([&, t] { d->write(batch(), batches[t]); });
    for (auto& w : writers)
        w.join();
    std::size_t total = 0;
    for (const auto& b : batches)
        total += b.size();
    ASSERT_TRUE(peer.wait_for_bytes(total));
    std::string got = peer.received();
    EXPECT_EQ(got.size(), total);
    for (const auto& b : batches) // each batch arrived in one piece
        EXPECT_NE(got.find(b), std::string::npos);
}

TEST(TcpOutput, PeerClosedBetweenBatchesIsReplacedWithoutRefusingABatch) {
    TcpPeer peer({});
    auto d = make_driver("tcp", tcp_to(peer.port()));
    std::string first = lines("first", 10);
    d->write(batch(), first);
    ASSERT_TRUE(peer.wait_for_bytes(first.size()));
    peer.drop_connections();                        // e.g. the receiver restarted its input
    std::this_thread::sleep_for(milliseconds(100)); // let the FIN reach the driver's socket
    std::string second = lines("second", 10);
    d->write(batch(), second);
    ASSERT_TRUE(peer.wait_for_bytes(first.size() + second.size()));
    EXPECT_EQ(peer.received(), first + second);
    EXPECT_EQ(peer.connections(), 2);
    EXPECT_EQ(d->stats().refused, 0u);
}

TEST(TcpOutput, ReopenReconnects) {
    TcpPeer peer({});
    auto d = make_driver("tcp", tcp_to(peer.port()));
    d->write(batch(), "a\n");
    ASSERT_TRUE(peer.wait_for_bytes(2)); // (two connections: keep the order visible)
    d->reopen();                         // SIGHUP
    d->write(batch(), "b\n");
    ASSERT_TRUE(peer.wait_for_bytes(4));
    EXPECT_EQ(peer.received(), "a\nb\n");
    EXPECT_EQ(peer.connections(), 2);
    EXPECT_EQ(d->stats().connects, 2u);
}

TEST(TcpOutput, NobodyListeningRefusesAtOnceThenFailsFastDuringBackoff) {
    int port = wec::testing::free_port();
    CapturedLog log;
    auto d = make_driver("tcp", tcp_to(port), log.get());
    std::string e1 = error_of(*d, "x\n");
    EXPECT_NE(e1.find("cannot connect to 127.0.0.1:" + std::to_string(port)), std::string::npos)
        << e1;
    EXPECT_NE(e1.find("Connection refused"), std::string::npos) << e1;
    std::string e2 = error_of(*d, "x\n");
    EXPECT_NE(e2.find("next attempt in"), std::string::npos) << e2;
    EXPECT_EQ(d->stats().refused, 2u);
    EXPECT_EQ(log.count("output unavailable"), 1u) << log.text();
}

class TcpRecovery : public ::testing::TestWithParam<bool> {};

// The peer goes away and comes back on the same port: batches are refused (503) meanwhile, with
// one log line for the outage and one for the recovery, and delivery resumes without a restart.
TEST_P(TcpRecovery, PeerDownThenBackWithoutRestart) {
    const bool tls = GetParam();
    std::unique_ptr<wec::testing::TestPki> pki;
    wec::testing::SslCtx ctx;
    Settings settings;
    if (tls) {
        pki = std::make_unique<wec::testing::TestPki>("siem.example.org");
        ctx = wec::testing::server_tls((*pki)("server.pem"), (*pki)("server.key"));
        settings = {{"tls", true}, {"ca", (*pki)("root.pem").string()}};
    }
    auto peer = std::make_unique<TcpPeer>(TcpPeer::Options{0, ctx.get(), true, 0});
    const int port = peer->port();
    CapturedLog log;
    auto d = make_driver("tcp", tcp_to(port, settings), log.get());

    std::string before = lines("before", 50);
    d->write(batch(), before);
    ASSERT_TRUE(peer->wait_for_bytes(before.size()));
    EXPECT_EQ(peer->received(), before);
    peer.reset(); // down

    std::string during = lines("during", 50);
    int refused = 0;
    for (int i = 0; i < 5; ++i) {
        try {
            d->write(batch(), during);
        } catch (const OutputError&) {
            ++refused;
        }
    }
    EXPECT_EQ(refused, 5);
    EXPECT_GE(d->stats().refused, 5u);

    peer = std::make_unique<TcpPeer>(TcpPeer::Options{port, ctx.get(), true, 0}); // back
    ASSERT_TRUE(write_until_accepted(*d, during));
    ASSERT_TRUE(peer->wait_for_bytes(during.size()));
    EXPECT_EQ(peer->received(), during); // the refused batch, once, complete
    std::string after = lines("after", 50);
    d->write(batch(), after);
    ASSERT_TRUE(peer->wait_for_bytes(during.size() + after.size()));
    EXPECT_EQ(peer->received(), during + after);

    EXPECT_EQ(log.count("output connected"), 1u) << log.text();
    EXPECT_EQ(log.count("output unavailable"), 1u) << log.text();
    EXPECT_EQ(log.count("output recovered"), 1u) << log.text();
}

INSTANTIATE_TEST_SUITE_P(Tcp, TcpRecovery, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Tls" : "Plain"; });

// A peer that accepts but never reads: the batch that fills the socket buffers times out and is
// refused, and a batch waiting behind it gives up too; no writer stays blocked.
TEST(TcpOutput, PeerThatStopsReadingTimesOutAndNoWriterIsStuck) {
    TcpPeer peer({0, nullptr, false, 4096});
    auto d = make_driver("tcp", tcp_to(peer.port(), {{"timeout_ms", std::int64_t{300}}}));
    const std::string big = lines("big", 40000, 1000); // ~40 MB, more than the buffers hold
    std::string e_big, e_small;
    std::thread first([&] { e_big = error_of(*d, big); });
    std::this_thread::sleep_for(milliseconds(50));
    std::thread second([&] { e_small = error_of(*d, "small\n"); });
    first.join();
    second.join();
    EXPECT_NE(e_big.find("write timed out"), std::string::npos) << e_big;
    EXPECT_NE(e_small, "accepted");
    EXPECT_EQ(d->stats().refused, 2u);
}

TEST(TcpOutput, TlsWithClientCertificateDeliversEveryLine) {
    wec::testing::TestPki pki("siem.example.org");
    TempDir dir;
    auto cas = dir.path() / "cas.pem"; // the client's chain: issuing CA under the root
    {
        std::ofstream out(cas);
        out << std::ifstream(pki("root.pem")).rdbuf() << std::ifstream(pki("issuing.pem")).rdbuf();
    }
    auto ctx = wec::testing::server_tls(pki("server.pem"), pki("server.key"), cas.string());
    TcpPeer peer({0, ctx.get(), true, 0});
    auto d =
        make_driver("tcp", tcp_to(peer.port(), {{"tls", true},
                                                {"ca", pki("root.pem").string()},
                                                {"cert", pki("win10.windomain.local.pem").string()},
                                                {"key", pki("win10.windomain.local.key").string()},
                                                {"server_name", "siem.example.org"}}));
    std::string sent;
    for (int b = 0; b < 3; ++b) {
        std::string data = lines("tls" + std::to_string(b), 3000, 60); // several TLS records
        d->write(batch(), data);
        sent += data;
    }
    ASSERT_TRUE(peer.wait_for_bytes(sent.size()));
    EXPECT_EQ(peer.received(), sent);
    EXPECT_EQ(peer.connections(), 1);
    EXPECT_EQ(peer.client_names(), std::vector<std::string>{"win10.windomain.local"});
}

TEST(TcpOutput, TlsRefusesAPeerItCannotVerify) {
    wec::testing::TestPki pki("siem.example.org");
    auto ctx = wec::testing::server_tls(pki("server.pem"), pki("server.key"));
    TcpPeer peer({0, ctx.get(), true, 0});
    // Another name than the certificate's.
    auto wrong_name = make_driver("tcp", tcp_to(peer.port(), {{"tls", true},
                                                              {"ca", pki("root.pem").string()},
                                                              {"server_name", "other.example"}}));
    std::string e = error_of(*wrong_name, "x\n");
    EXPECT_NE(e.find("certificate verification failed"), std::string::npos) << e;
    // A CA that did not issue it.
    auto wrong_ca =
        make_driver("tcp", tcp_to(peer.port(), {{"tls", true}, {"ca", pki("other.pem").string()}}));
    e = error_of(*wrong_ca, "x\n");
    EXPECT_NE(e.find("certificate verification failed"), std::string::npos) << e;
    // A CA file that is not there: refused (503) at write time, not when the driver is made.
    auto no_ca =
        make_driver("tcp", tcp_to(peer.port(), {{"tls", true}, {"ca", "/nonexistent/ca.pem"}}));
    e = error_of(*no_ca, "x\n");
    EXPECT_NE(e.find("cannot load the CA file /nonexistent/ca.pem"), std::string::npos) << e;
    EXPECT_EQ(peer.received(), "");
}

// ------------------------------------------------------------------------------------------
// unix

TEST(UnixOutput, OneDatagramPerEvent) {
    TempDir dir;
    auto path = dir.path() / "receiver.sock";
    wec::testing::UnixDatagramPeer peer(path);
    auto d = make_driver("unix", {{"path", path.string()}});
    EXPECT_EQ(d->describe(), "unix:" + path.string());
    d->write(batch(), "first event\nsecond event\n\nfourth, after an empty one\n");
    EXPECT_EQ(peer.drain(), (std::vector<std::string>{"first event", "second event", "",
                                                      "fourth, after an empty one"}));
}

TEST(UnixOutput, ReceiverAbsentThenPresentAndRestarted) {
    TempDir dir;
    auto path = dir.path() / "receiver.sock";
    CapturedLog log;
    auto d = make_driver("unix", {{"path", path.string()}}, log.get());
    std::string e = error_of(*d, "lost?\n");
    EXPECT_NE(e.find("cannot connect to " + path.string()), std::string::npos) << e;

    std::vector<std::string> got;
    {
        wec::testing::UnixDatagramPeer peer(path);
        ASSERT_TRUE(write_until_accepted(*d, "one\ntwo\n"));
        got = peer.drain();
    }
    EXPECT_EQ(got, (std::vector<std::string>{"one", "two"}));
    // The receiver restarts (a new socket at the same path) between two batches: the driver
    // reconnects at once and refuses nothing.
    wec::testing::UnixDatagramPeer again(path);
    auto refused = d->stats().refused;
    d->write(batch(), "three\n");
    EXPECT_EQ(again.drain(), std::vector<std::string>{"three"});
    EXPECT_EQ(d->stats().refused, refused);
    EXPECT_EQ(log.count("output unavailable"), 1u) << log.text();
    EXPECT_EQ(log.count("output recovered"), 1u) << log.text();
}

TEST(UnixOutput, ReceiverThatDoesNotReadTimesOut) {
    TempDir dir;
    auto path = dir.path() / "receiver.sock";
    wec::testing::UnixDatagramPeer peer(path);
    auto d = make_driver("unix", {{"path", path.string()}, {"timeout_ms", std::int64_t{200}}});
    std::string e = error_of(*d, lines("event", 20000, 500));
    EXPECT_NE(e.find("timed out"), std::string::npos) << e;
    EXPECT_EQ(d->stats().refused, 1u);
    EXPECT_FALSE(peer.drain().empty()); // what fitted was delivered (the batch will come again)
}

TEST(UnixOutput, OversizedEventIsTruncatedCountedAndLoggedOnce) {
    TempDir dir;
    auto path = dir.path() / "receiver.sock";
    wec::testing::UnixDatagramPeer peer(path);
    CapturedLog log;
    auto d = make_driver("unix", {{"path", path.string()}}, log.get());
    // 100 KB of 3-byte UTF-8 characters: the cut cannot fall inside one.
    std::string big;
    while (big.size() < 100000)
        big += "\xE2\x82\xAC"; // EURO SIGN
    d->write(batch(), "small\n" + big + "\n" + big + "\n");
    auto got = peer.drain();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0], "small");
    EXPECT_EQ(got[1].size(), 65505u); // 21835 whole characters <= 65507 bytes
    EXPECT_EQ(got[1], big.substr(0, got[1].size()));
    EXPECT_EQ(got[2], got[1]);
    EXPECT_EQ(d->stats().truncated, 2u);
    EXPECT_EQ(d->stats().refused, 0u);
    EXPECT_EQ(log.count("output message truncated"), 1u) << log.text(); // rate-limited
}

} // namespace

// The HTTP layer of the collector on real sockets (127.0.0.1, ephemeral ports).
#include "common/error.hpp"
#include "server/http_server.hpp"

#include <atomic>
#include <boost/asio.hpp>
#include <condition_variable>
#include <cstdio>
#include <gtest/gtest.h>
#include <mutex>
#include <string>
#include <thread>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace wec::server;
using namespace std::chrono_literals;

// Echo handler: answers with the connection's request count and the body it got.
struct CountingHandler : ConnectionHandler {
    std::atomic<int>* closed_count;
    std::chrono::milliseconds delay{0};
    int n = 0;
    HttpResponse handle(HttpRequest& req) override {
        if (delay.count()) std::this_thread::sleep_for(delay);
        ++n;
        HttpResponse r;
        r.headers.push_back({"X-Count", std::to_string(n)});
        r.headers.push_back({"X-Target", req.target});
        r.headers.push_back({"X-Auth", std::string(req.header("authorization"))});
        r.body = req.body;
        return r;
    }
    void closed() override { ++*closed_count; }
};

struct Fixture : ::testing::Test {
    std::FILE* null_log = std::fopen("/dev/null", "w");
    wec::Logger log{null_log};
    std::atomic<int> closed{0};
    std::chrono::milliseconds delay{0};
    std::unique_ptr<HttpServer> server;
    std::uint16_t port = 0;

    void start(Limits limits = {}) {
        server = std::make_unique<HttpServer>(log, limits, 2, 2);
        port = server->add_listener({{"127.0.0.1", 0},
                                     "test",
                                     [this](const PeerInfo& peer) {
                                         EXPECT_EQ(peer.address, "127.0.0.1");
                                         auto h = std::make_unique<CountingHandler>();
                                         h->closed_count = &closed;
                                         h->delay = delay;
                                         return h;
                                     },
                                     nullptr});
        server->start();
    }
    void TearDown() override {
        server.reset();
        std::fclose(null_log);
    }
};

// Minimal blocking client: sends raw bytes and reads one response (headers + Content-Length body).
struct Client {
    asio::io_context ioc;
    tcp::socket sock{ioc};
    std::string pending;
    explicit Client(std::uint16_t port) {
        sock.connect({asio::ip::make_address("127.0.0.1"), port});
    }
    void send(const std::string& bytes) { asio::write(sock, asio::buffer(bytes)); }
    // Returns "" on EOF before a full response.
    std::string response() {
        boost::system::error_code ec;
        for (;;) {
            auto end = pending.find("\r\n\r\n");
            if (end != std::string::npos) {
                std::size_t len = 0;
                auto cl = pending.find("Content-Length: ");
                if (cl != std::string::npos && cl < end) len = std::stoul(pending.substr(cl + 16));
                if (pending.size() >= end + 4 + len) {
                    auto r = pending.substr(0, end + 4 + len);
                    pending.erase(0, end + 4 + len);
                    return r;
                }
            }
            char buf[4096];
            auto n = sock.read_some(asio::buffer(buf), ec);
            if (ec) return "";
            pending.append(buf, n);
        }
    }
    bool closed_by_peer() {
        char c;
        boost::system::error_code ec;
        sock.read_some(asio::buffer(&c, 1), ec);
        return ec == asio::error::eof || ec == asio::error::connection_reset;
    }
};

std::string post(const std::string& body, const std::string& extra = "") {
    return "POST /wsman HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive\r\n" + extra +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(Endpoint, Parses) {
    EXPECT_EQ(parse_endpoint("127.0.0.1:5985").port, 5985);
    EXPECT_EQ(parse_endpoint("[::1]:5986").address, "::1");
    EXPECT_EQ(parse_endpoint(":5985").address, "0.0.0.0");
    EXPECT_THROW(parse_endpoint("127.0.0.1"), wec::Error);
    EXPECT_THROW(parse_endpoint("127.0.0.1:http"), wec::Error);
    EXPECT_THROW(parse_endpoint("127.0.0.1:70000"), wec::Error);
    EXPECT_THROW(parse_endpoint("host.example:5985"), wec::Error);
}

TEST_F(Fixture, KeepAliveUsesOneHandlerPerConnection) {
    start();
    Client c(port);
    c.send(post("a", "Authorization: Kerberos abc\r\n"));
    auto r1 = c.response();
    EXPECT_NE(r1.find("X-Count: 1"), std::string::npos) << r1;
    EXPECT_NE(r1.find("X-Auth: Kerberos abc"), std::string::npos) << r1;
    c.send(post("bb"));
    auto r2 = c.response();
    EXPECT_NE(r2.find("X-Count: 2"), std::string::npos) << r2;
    EXPECT_EQ(r2.substr(r2.size() - 2), "bb");
    Client other(port);
    other.send(post(""));
    EXPECT_NE(other.response().find("X-Count: 1"), std::string::npos);
    EXPECT_EQ(server->stats().requests, 3u);
}

TEST_F(Fixture, PipelinedRequestsAnswerInOrder) {
    start();
    Client c(port);
    c.send(post("one") + post("two"));
    auto r1 = c.response();
    auto r2 = c.response();
    EXPECT_EQ(r1.substr(r1.size() - 3), "one");
    EXPECT_EQ(r2.substr(r2.size() - 3), "two");
}

TEST_F(Fixture, OversizedBodyGets400AndClose) {
    Limits l;
    l.max_body_bytes = 100;
    start(l);
    Client c(port);
    c.send(post(std::string(101, 'x')));
    auto r = c.response();
    EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << r;
    EXPECT_NE(r.find("body larger than 100"), std::string::npos) << r;
    EXPECT_TRUE(c.closed_by_peer());
    EXPECT_EQ(server->stats().limit_violations, 1u);
}

TEST_F(Fixture, OversizedHeadersGet431) {
    Limits l;
    l.max_header_bytes = 512;
    start(l);
    Client c(port);
    c.send(post("", "X-Big: " + std::string(1000, 'y') + "\r\n"));
    auto r = c.response();
    EXPECT_EQ(r.rfind("HTTP/1.1 431", 0), 0u) << r;
}

TEST_F(Fixture, MalformedRequestGets400) {
    start();
    Client c(port);
    c.send("NOT HTTP AT ALL\r\n\r\n");
    auto r = c.response();
    EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << r;
    EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(Fixture, TruncatedBodyTimesOutAndCloses) {
    Limits l;
    l.read_timeout = 200ms;
    start(l);
    Client c(port);
    c.send("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    EXPECT_TRUE(c.closed_by_peer());
}

TEST_F(Fixture, IdleConnectionsAreClosed) {
    Limits l;
    l.idle_timeout = 200ms;
    start(l);
    Client c(port);
    c.send(post("x"));
    EXPECT_FALSE(c.response().empty());
    EXPECT_TRUE(c.closed_by_peer());
    for (int i = 0; i < 100 && closed.load() == 0; ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_EQ(closed.load(), 1);
}

TEST_F(Fixture, ConnectionsOverTheLimitAreRefused) {
    Limits l;
    l.max_connections = 1;
    start(l);
    Client first(port);
    first.send(post("x"));
    EXPECT_FALSE(first.response().empty());
    Client second(port);
    EXPECT_TRUE(second.closed_by_peer());
    EXPECT_EQ(server->stats().connections_refused, 1u);
}

TEST_F(Fixture, StopLetsARequestInFlightFinish) {
    delay = 300ms;
    start();
    Client c(port);
    c.send(post("slow"));
    std::this_thread::sleep_for(100ms); // the handler is running now
    std::thread stopper([&] { server->stop(); });
    auto r = c.response();
    stopper.join();
    EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
    EXPECT_NE(r.find("Connection: close"), std::string::npos) << r;
    EXPECT_EQ(r.substr(r.size() - 4), "slow");
}

TEST_F(Fixture, BusyPortIsAClearError) {
    start();
    HttpServer second(log, {}, 1, 1);
    try {
        second.add_listener({{"127.0.0.1", port},
                             "dup",
                             [](const PeerInfo&) { return std::unique_ptr<ConnectionHandler>(); },
                             nullptr});
        FAIL() << "bind to a busy port succeeded";
    } catch (const wec::Error& e) {
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)),
                  std::string::npos)
            << e.what();
    }
}

} // namespace

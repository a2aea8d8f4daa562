// The redis driver against a real redis-server started by each test (127.0.0.1 on a free port, a
// unix socket, TLS with a client certificate; its own temp dir; stopped by PID): what the list
// holds is read back with LRANGE and compared event by event, and the failure cases (wrong
// password, a key of another type, an ACL that forbids the key, the server killed and restarted)
// are provoked for real. A fake peer covers the replies a real Redis never sends.
#include "output/net_internal.hpp"
#include "output/net_peers.hpp"
#include "output/output.hpp"
#include "output/resp_internal.hpp"
#include "support/captured_log.hpp"
#include "support/process.hpp"
#include "support/redis.hpp"
#include "support/test_pki.hpp"

#include <csignal>
#include <cstdio>
#include <fstream>
#include <gtest/gtest.h>
#include <set>
#include <thread>

namespace {

using wec::testing::CapturedLog;

namespace fs = std::filesystem;
using namespace wec::output;
namespace net = wec::output::detail::net;
namespace resp = wec::output::detail::resp;
using std::chrono::milliseconds;
using std::chrono::seconds;
using wec::testing::RedisServer;
using wec::testing::TempDir;

// A client of the test, on the plain TCP port, to look at what the driver pushed.
class Client {
public:
    explicit Client(int port, std::vector<std::string> auth = {})
        : stream_(net::HostPort{"127.0.0.1", static_cast<std::uint16_t>(port)}, nullptr,
                  deadline()) {
        if (!auth.empty()) call(auth);
    }
    resp::Reply call(const std::vector<std::string>& args) {
        std::vector<std::string_view> views(args.begin(), args.end());
        std::string request;
        resp::append_command(request, views);
        stream_.write(request, deadline());
        std::vector<char> buf(1 << 16);
        while (!parser_.has_reply())
            parser_.feed(std::string_view(buf.data(), stream_.read(buf, deadline())));
        return parser_.take();
    }
    std::vector<std::string> lrange(const std::string& key) {
        auto r = call({"LRANGE", key, "0", "-1"});
        EXPECT_EQ(r.type, resp::Reply::Type::Array) << resp::describe(r);
        std::vector<std::string> out;
        for (auto& e : r.elements)
            out.push_back(std::move(e.text));
        return out;
    }

private:
    static net::Clock::time_point deadline() { return net::Clock::now() + seconds(20); }
    net::Stream stream_;
    resp::ReplyParser parser_;
};

BatchInfo batch(std::string_view subscription = "Security events") {
    BatchInfo b;
    b.ip = "192.168.58.100";
    b.client = "WIN10$@WINDOMAIN.LOCAL";
    b.machine = "win10.windomain.local";
    b.subscription_name = subscription;
    b.subscription_uuid = "8B18D83D-2964-4F35-AC3B-6F4E6FFA727B";
    b.received = std::chrono::system_clock::time_point(seconds(1700000000));
    return b;
}

// `count` distinct events "<tag> <i> <padding>" (no '\n').
std::vector<std::string> events(const std::string& tag, int count, std::size_t padding = 40) {
    std::vector<std::string> out;
    for (int i = 0; i < count; ++i)
        out.push_back(tag + " " + std::to_string(i) + " " + std::string(padding, 'x'));
    return out;
}

// The lines the collector gives a driver: each event and '\n'.
std::string lines_of(const std::vector<std::string>& evs) {
    std::string out;
    for (const auto& e : evs)
        out += e + "\n";
    return out;
}

void append(std::vector<std::string>& to, const std::vector<std::string>& more) {
    to.insert(to.end(), more.begin(), more.end());
}

std::string error_of(Driver& d, const std::string& data, const BatchInfo& b = batch()) {
    try {
        d.write(b, data);
    } catch (const OutputError& e) {
        return e.what();
    }
    return "accepted";
}

// Retries write() until it is accepted (the driver's backoff is at most 5 s), as a source would.
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

Settings redis_to(const RedisServer& r, const std::string& list, Settings extra = {}) {
    extra["address"] = r.address();
    extra["list"] = list;
    return extra;
}

TEST(RedisOutput, PushesEveryEventInOrderOnOneConnection) {
    TempDir dir;
    RedisServer redis(dir.path());
    auto d = make_driver("redis", redis_to(redis, "wec:events"));

    std::vector<std::string> first = {
        R"({"EventID":4624,"Computer":"win10.windomain.local","Data":{"x":"a \"quoted\" \\ b"}})",
        "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\x92 non-ASCII",
        "a carriage return \r inside, a tab \t and a NUL " + std::string(1, '\0') + " byte",
        "$5\r *2\r looks like RESP",
        std::string(200000, 'L') + " (an event of 200 kB)",
        "",
    };
    std::vector<std::string> expected;
    d->write(batch(), lines_of(first));
    append(expected, first);
    for (int b = 0; b < 3; ++b) {
        auto more = events("batch" + std::to_string(b), 100);
        d->write(batch(), lines_of(more));
        append(expected, more);
    }
    Client c(redis.port());
    EXPECT_EQ(c.lrange("wec:events"), expected);
    EXPECT_EQ(d->stats().connects, 1u);
    EXPECT_EQ(d->stats().refused, 0u);
    // Another reader of the same list: redis-cli.
    auto llen = redis.cli({"LLEN", "wec:events"});
    EXPECT_EQ(llen.output, std::to_string(expected.size()) + "\n");

    // reopen(): a new connection for the next batch, nothing lost.
    d->reopen();
    auto last = events("after-reopen", 3);
    d->write(batch(), lines_of(last));
    append(expected, last);
    EXPECT_EQ(c.lrange("wec:events"), expected);
    EXPECT_EQ(d->stats().connects, 2u);
    // An empty batch sends nothing.
    d->write(batch(), "");
    EXPECT_EQ(c.lrange("wec:events").size(), expected.size());
}

TEST(RedisOutput, ListKeyFromTemplate) {
    TempDir dir;
    RedisServer redis(dir.path());
    auto d = make_driver(
        "redis",
        redis_to(redis, "wec:{subscription}:{machine}:{client}:{ip}:{subscription_uuid}:{date}"));
    auto one = events("one", 3);
    d->write(batch(), lines_of(one));
    BatchInfo other = batch("Other sub");
    other.machine = ""; // no MachineID header
    other.client = "bad\nname\x7f";
    other.ip = "::1";
    auto two = events("two", 2);
    d->write(other, lines_of(two));

    Client c(redis.port());
    EXPECT_EQ(c.lrange("wec:Security events:win10.windomain.local:WIN10$@WINDOMAIN.LOCAL:"
                       "192.168.58.100:8B18D83D-2964-4F35-AC3B-6F4E6FFA727B:2023-11-14"),
              one);
    EXPECT_EQ(c.lrange("wec:Other sub:unknown:bad_name_:::1:8B18D83D-2964-4F35-AC3B-6F4E6FFA727B:"
                       "2023-11-14"),
              two);
    // A '{' without '}' after it is text, as in the files driver's path.
    auto brace = make_driver("redis", redis_to(redis, "wec:{ip}:{"));
    brace->write(batch(), lines_of(one));
    EXPECT_EQ(c.lrange("wec:192.168.58.100:{"), one);
    EXPECT_EQ(c.call({"DBSIZE"}).integer, 3);
    // {node}: the writing node's name, so that several nodes can keep lists of their own.
    auto by_node = make_driver("redis", redis_to(redis, "wec:{node}:{subscription}"));
    BatchInfo on_node = batch();
    on_node.node = "wec-2";
    by_node->write(on_node, lines_of(one));
    EXPECT_EQ(c.lrange("wec:wec-2:Security events"), one);
}

// Writers on several threads share one connection; each batch lands whole (RPUSH is atomic) and
// the batches of one writer keep their order.
TEST(RedisOutput, ConcurrentWritersNeverInterleaveBatches) {
    TempDir dir;
    RedisServer redis(dir.path());
    auto d = make_driver("redis", redis_to(redis, "wec:all"));
    constexpr int kThreads = 4, kBatches = 30, kEvents = 20;
    std::vector<std::thread> writers;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; ++t)
        writers.emplace_back([&, t] {
            for (int b = 0; b < kBatches; ++b) {
                std::string tag = "t" + std::to_string(t) + "b" + std::to_string(b);
                if (error_of(*d, lines_of(events(tag, kEvents))) != "accepted") ++failures;
            }
        });
    for (auto& w : writers)
        w.join();
    EXPECT_EQ(failures.load(), 0);

    Client c(redis.port());
    auto list = c.lrange("wec:all");
    ASSERT_EQ(list.size(), std::size_t{kThreads * kBatches * kEvents});
    std::vector<int> next_batch(kThreads, 0);
    for (std::size_t at = 0; at < list.size(); at += kEvents) {
        // The tag of the batch starting here, and its thread.
        const std::string tag = list[at].substr(0, list[at].find(' '));
        const int t = std::stoi(tag.substr(1, tag.find('b') - 1));
        ASSERT_LT(t, kThreads) << tag;
        EXPECT_EQ(tag, "t" + std::to_string(t) + "b" + std::to_string(next_batch[t]));
        ++next_batch[t];
        auto whole = events(tag, kEvents);
        EXPECT_TRUE(std::equal(whole.begin(), whole.end(), list.begin() + static_cast<long>(at)))
            << "batch " << tag << " is not contiguous";
    }
    EXPECT_EQ(next_batch, std::vector<int>(kThreads, kBatches));
    EXPECT_EQ(d->stats().connects, 1u);
}

TEST(RedisOutput, UnixSocket) {
    TempDir dir;
    RedisServer redis(dir.path());
    auto d = make_driver("redis", {{"address", "unix:" + redis.socket()}, {"list", "wec:unix"}});
    EXPECT_EQ(d->describe(), "redis:unix:" + redis.socket());
    std::vector<std::string> expected;
    for (int b = 0; b < 3; ++b) {
        auto evs = events("unix" + std::to_string(b), 50);
        d->write(batch(), lines_of(evs));
        append(expected, evs);
    }
    Client c(redis.port());
    EXPECT_EQ(c.lrange("wec:unix"), expected);
    EXPECT_EQ(d->stats().connects, 1u);
}

// AUTH (the default user, and an ACL user) and SELECT on the connection; an ACL that forbids a
// key refuses the batches for that key only, on the same connection and without backoff.
TEST(RedisOutput, PasswordUsernameAndDatabase) {
    TempDir dir;
    RedisServer redis(dir.path(), {"--requirepass", "s3cret", "--user", "alice", "on", ">alice-pw",
                                   "~wec:*", "+@all"});
    auto in_db3 = make_driver(
        "redis", redis_to(redis, "wec:db3", {{"password", "s3cret"}, {"db", std::int64_t{3}}}));
    auto evs = events("db3", 10);
    in_db3->write(batch(), lines_of(evs));

    Client c(redis.port(), {"AUTH", "s3cret"});
    EXPECT_EQ(c.call({"SELECT", "3"}).text, "OK");
    EXPECT_EQ(c.lrange("wec:db3"), evs);
    EXPECT_EQ(c.call({"SELECT", "0"}).text, "OK");
    EXPECT_EQ(c.call({"EXISTS", "wec:db3"}).integer, 0);

    CapturedLog log;
    auto alice = make_driver(
        "redis",
        redis_to(redis, "{subscription}", {{"username", "alice"}, {"password", "alice-pw"}}),
        log.get());
    auto ok = events("alice", 5);
    alice->write(batch("wec:alice"), lines_of(ok));
    std::string e = error_of(*alice, lines_of(events("no", 2)), batch("forbidden"));
    EXPECT_NE(e.find("NOPERM"), std::string::npos) << e;
    EXPECT_NE(e.find("'forbidden'"), std::string::npos) << e;
    alice->write(batch("wec:alice"), lines_of(ok)); // at once: no backoff
    std::vector<std::string> twice = ok;
    append(twice, ok);
    EXPECT_EQ(c.lrange("wec:alice"), twice);
    EXPECT_EQ(c.call({"EXISTS", "forbidden"}).integer, 0);
    EXPECT_EQ(alice->stats().connects, 1u);
    EXPECT_EQ(alice->stats().refused, 1u);
    EXPECT_EQ(log.count("output refused a batch"), 1u) << log.text();
    EXPECT_EQ(log.count("output unavailable"), 0u) << log.text();
}

// A wrong password: refused with Redis's message, logged once (not per batch), the password in no
// message; no password where one is needed: NOAUTH.
TEST(RedisOutput, WrongPasswordIsRefusedWithRedisMessage) {
    TempDir dir;
    RedisServer redis(dir.path(), {"--requirepass", "s3cret"});
    CapturedLog log;
    auto d = make_driver("redis", redis_to(redis, "wec:x", {{"password", "pw-never-logged-42"}}),
                         log.get());
    std::string e = error_of(*d, "a\n");
    EXPECT_NE(e.find("AUTH refused by Redis: WRONGPASS invalid username-password pair"),
              std::string::npos)
        << e;
    for (int i = 0; i < 5; ++i)
        EXPECT_NE(error_of(*d, "a\n"), "accepted");
    EXPECT_EQ(d->stats().refused, 6u);
    EXPECT_EQ(d->stats().connects, 0u);
    EXPECT_EQ(log.count("output unavailable"), 1u) << log.text();
    EXPECT_EQ(log.text().find("pw-never-logged-42"), std::string::npos) << log.text();
    EXPECT_EQ(e.find("pw-never-logged-42"), std::string::npos) << e;

    auto none = make_driver("redis", redis_to(redis, "wec:x"));
    e = error_of(*none, "a\n");
    EXPECT_NE(e.find("Redis refused RPUSH to 'wec:x': NOAUTH Authentication required"),
              std::string::npos)
        << e;

    Client c(redis.port(), {"AUTH", "s3cret"});
    EXPECT_EQ(c.call({"EXISTS", "wec:x"}).integer, 0);
}

// A list key that holds a string: that batch is refused with Redis's message; the connection
// stays, no backoff starts, other lists keep working, and the string is untouched.
TEST(RedisOutput, WrongTypeRefusesThatListOnly) {
    TempDir dir;
    RedisServer redis(dir.path());
    Client c(redis.port());
    EXPECT_EQ(c.call({"SET", "wec:string", "not a list"}).text, "OK");
    CapturedLog log;
    auto d = make_driver("redis", redis_to(redis, "{subscription}"), log.get());
    for (int i = 0; i < 3; ++i) {
        std::string e = error_of(*d, lines_of(events("x", 3)), batch("wec:string"));
        EXPECT_NE(e.find("Redis refused RPUSH to 'wec:string': WRONGTYPE Operation against a key "
                         "holding the wrong kind of value"),
                  std::string::npos)
            << e;
    }
    auto good = events("good", 4);
    d->write(batch("wec:list"), lines_of(good));
    EXPECT_EQ(c.lrange("wec:list"), good);
    EXPECT_EQ(c.call({"GET", "wec:string"}).text, "not a list");
    EXPECT_EQ(d->stats().refused, 3u);
    EXPECT_EQ(d->stats().connects, 1u);
    EXPECT_EQ(log.count("output refused a batch"), 1u) << log.text(); // same message: once
    EXPECT_EQ(log.count("WRONGTYPE"), 1u) << log.text();
    EXPECT_EQ(log.count("output unavailable"), 0u) << log.text();
}

// redis-server killed (SIGKILL) with the connection open: batches are refused (503) and counted,
// the outage is logged once; restarted on the same port: the driver reconnects by itself, the
// batches refused meanwhile are sent again (as sources do) and the list holds every accepted
// batch exactly once, in order. The server keeps an append-only file fsynced before each reply
// (appendfsync always): what Redis acknowledged survives its crash.
TEST(RedisOutput, ServerKilledThenRestartedLosesNoAcceptedBatch) {
    TempDir dir;
    RedisServer redis(dir.path(), {"--appendonly", "yes", "--appendfsync", "always"});
    CapturedLog log;
    auto d = make_driver("redis", redis_to(redis, "wec:durable"), log.get());
    std::vector<std::string> accepted;
    int next = 0;
    auto make = [&] { return events("b" + std::to_string(next++), 25); };
    for (int i = 0; i < 10; ++i) {
        auto evs = make();
        d->write(batch(), lines_of(evs));
        append(accepted, evs);
    }

    redis.kill();
    std::vector<std::vector<std::string>> pending; // refused: the sources will send them again
    for (int i = 0; i < 6; ++i) {
        auto evs = make();
        EXPECT_NE(error_of(*d, lines_of(evs)), "accepted");
        pending.push_back(evs);
    }
    EXPECT_EQ(d->stats().refused, 6u);
    EXPECT_EQ(log.count("output unavailable"), 1u) << log.text();

    redis.start();
    for (const auto& evs : pending) {
        ASSERT_TRUE(write_until_accepted(*d, lines_of(evs)));
        append(accepted, evs);
    }
    for (int i = 0; i < 5; ++i) {
        auto evs = make();
        d->write(batch(), lines_of(evs));
        append(accepted, evs);
    }
    Client c(redis.port());
    EXPECT_EQ(c.lrange("wec:durable"), accepted);
    EXPECT_EQ(log.count("output connected"), 1u) << log.text();
    EXPECT_EQ(log.count("output connection closed by the peer"), 1u) << log.text();
    EXPECT_EQ(log.count("output unavailable"), 1u) << log.text();
    EXPECT_EQ(log.count("output recovered"), 1u) << log.text();
}

TEST(RedisOutput, TlsWithClientCertificate) {
    wec::testing::TestPki pki("redis.example.org");
    TempDir dir;
    const auto cas = dir.path() / "cas.pem"; // verifies the client's certificate
    {
        std::ofstream out(cas);
        out << std::ifstream(pki("root.pem")).rdbuf() << std::ifstream(pki("issuing.pem")).rdbuf();
    }
    const int tls_port = wec::testing::free_port();
    RedisServer redis(dir.path(),
                      {"--tls-port", std::to_string(tls_port), "--tls-cert-file",
                       pki("server.pem").string(), "--tls-key-file", pki("server.key").string(),
                       "--tls-ca-cert-file", cas.string(), "--tls-auth-clients", "yes"});
    const std::string address = "127.0.0.1:" + std::to_string(tls_port);
    Settings tls{{"address", address},
                 {"list", "wec:tls"},
                 {"tls", true},
                 {"ca", pki("root.pem").string()},
                 {"cert", pki("win10.windomain.local.pem").string()},
                 {"key", pki("win10.windomain.local.key").string()},
                 {"server_name", "redis.example.org"}};
    auto d = make_driver("redis", tls);
    EXPECT_EQ(d->describe(), "redis:" + address + " (tls)");
    std::vector<std::string> expected;
    for (int b = 0; b < 3; ++b) {
        auto evs = events("tls" + std::to_string(b), 300, 200); // several TLS records
        d->write(batch(), lines_of(evs));
        append(expected, evs);
    }
    Client c(redis.port());
    EXPECT_EQ(c.lrange("wec:tls"), expected);
    EXPECT_EQ(d->stats().connects, 1u);

    // A name the certificate does not have: refused before anything is sent.
    Settings wrong_name = tls;
    wrong_name["server_name"] = "other.example.org";
    auto w = make_driver("redis", wrong_name);
    std::string e = error_of(*w, "x\n");
    EXPECT_NE(e.find("certificate verification failed"), std::string::npos) << e;
    // No client certificate: Redis refuses the connection.
    Settings anonymous = tls;
    anonymous.erase("cert");
    anonymous.erase("key");
    auto a = make_driver("redis", anonymous);
    EXPECT_NE(error_of(*a, "x\n"), "accepted");
    EXPECT_EQ(c.lrange("wec:tls").size(), expected.size());
}

// Replies a real Redis does not send (a peer that is not Redis, or a broken one): the batch is
// refused with what was wrong, and the connection is dropped.
TEST(RedisOutput, RepliesThatAreNotTheExpectedOneAreRefused) {
    struct Case {
        std::string reply;
        std::string error;
    };
    const std::vector<Case> cases = {
        {"+OK\r\n", "unexpected reply to RPUSH of 3 elements to 'wec:x': simple string 'OK'"},
        {":2\r\n", "unexpected reply to RPUSH of 3 elements to 'wec:x': integer 2"},
        {"%1\r\n", "RESP reply: unknown reply type byte 0x25 at offset 0"},
        {":3\r\n:4\r\n", "Redis sent more than the replies expected"},
        {"-OOM command not allowed when used memory > 'maxmemory'.\r\n",
         "Redis refused RPUSH to 'wec:x': OOM command not allowed"},
        {"$" + std::to_string(1 << 20) + "\r\n", "bulk string of 1048576 bytes (more than 65536)"},
    };
    for (const auto& c : cases) {
        wec::testing::TcpPeer peer({0, nullptr, true, 0});
        peer.reply_with(c.reply);
        CapturedLog log;
        auto d = make_driver(
            "redis", {{"address", "127.0.0.1:" + std::to_string(peer.port())}, {"list", "wec:x"}},
            log.get());
        std::string e = error_of(*d, "a\nb\nc\n");
        EXPECT_NE(e.find(c.error), std::string::npos) << c.reply << " -> " << e;
        EXPECT_NE(e.find("(connection closed)"), std::string::npos) << e;
        EXPECT_EQ(log.count("output unavailable"), 1u) << log.text();
        EXPECT_EQ(peer.received(),
                  "*5\r\n$5\r\nRPUSH\r\n$5\r\nwec:x\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\n"
                  "c\r\n");
    }
    // No reply at all: the batch times out.
    wec::testing::TcpPeer silent({0, nullptr, true, 0});
    auto d = make_driver("redis", {{"address", "127.0.0.1:" + std::to_string(silent.port())},
                                   {"list", "wec:x"},
                                   {"timeout_ms", std::int64_t{300}}});
    std::string e = error_of(*d, "a\n");
    EXPECT_NE(e.find("timed out waiting for a reply"), std::string::npos) << e;
}

// The settings are checked when the driver is made, which connects to nothing.
TEST(RedisOutput, SettingsAreCheckedWithoutConnecting) {
    const int nobody = wec::testing::free_port();
    const std::string address = "127.0.0.1:" + std::to_string(nobody);
    auto d = make_driver("redis", {{"address", address}, {"list", "wec:{machine}"}});
    EXPECT_EQ(d->describe(), "redis:" + address);
    EXPECT_NO_THROW(check_settings("redis", {{"address", "redis.example.org"},
                                             {"list", "wec"},
                                             {"tls", true},
                                             {"cert", "/c.pem"},
                                             {"key", "/k.pem"}}));
    EXPECT_TRUE(is_known_driver("redis"));

    struct Case {
        Settings settings;
        std::string key;
        std::string error;
    };
    const std::vector<Case> cases = {
        {{{"list", "x"}}, "", "driver 'redis' needs a 'address' key"},
        {{{"address", address}}, "", "driver 'redis' needs a 'list' key"},
        {{{"address", address}, {"list", "wec:{host}"}},
         "list",
         "'list' of driver 'redis' names an unknown key {host} (known: {ip}, {client}, "
         "{machine}, {subscription}, {subscription_uuid}, {node}, {date})"},
        {{{"address", "h:70000"}, {"list", "x"}},
         "address",
         "'address' of driver 'redis' is invalid: 'h:70000': the port must be a number in [1, "
         "65535] (expected HOST:PORT or unix:PATH)"},
        {{{"address", "unix:"}, {"list", "x"}},
         "address",
         "'address' of driver 'redis' is invalid: 'unix:' has no path"},
        {{{"address", "unix:/run/redis.sock"}, {"list", "x"}, {"tls", true}},
         "tls",
         "'tls' of driver 'redis' is not available with a unix: address"},
        {{{"address", address}, {"list", "x"}, {"username", "alice"}},
         "username",
         "'username' of driver 'redis' needs 'password' as well (AUTH user password)"},
        {{{"address", address}, {"list", "x"}, {"db", std::int64_t{-1}}},
         "db",
         "'db' of driver 'redis' must be an integer in [0, 2147483647]"},
        {{{"address", address}, {"list", "x"}, {"ca", "/ca.pem"}},
         "ca",
         "'ca' of driver 'redis' is only valid with tls = true"},
        {{{"address", address}, {"list", "x"}, {"topic", "t"}},
         "topic",
         "unknown key 'topic' for driver 'redis' (known: address, ca, cert, db, key, list, "
         "password, server_name, timeout_ms, tls, username)"},
    };
    for (const auto& c : cases) {
        try {
            check_settings("redis", c.settings);
            ADD_FAILURE() << "accepted: " << c.error;
        } catch (const SettingError& e) {
            EXPECT_EQ(e.what(), c.error);
            EXPECT_EQ(e.key(), c.key) << c.error;
        }
    }
}

} // namespace

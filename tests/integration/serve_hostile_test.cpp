// Hostile clients against the real `wec serve` binary (issue 9, "Prove it"): a collector with a
// Kerberos listener (plain HTTP: everything before authentication is in the clear) and an HTTPS
// listener, attacked with raw sockets from 127.0.0.2-9 while real sources (lib/client, one per
// transport) keep pushing events:
//  - slowloris: 1,000 connections sending their request head a byte at a time;
//  - many idle connections, far beyond max_connections;
//  - malformed framing before authentication (oversized heads and bodies, lying Content-Length,
//    chunked bodies, a 70,000-byte trailer, bad chunk sizes, garbage), and after the TLS handshake;
//  - descriptor exhaustion (the collector started with 64 descriptors);
//  - bad bodies after authentication: SLDC bombs, deep nesting, huge and many-event batches.
// Each test asserts the outcome (4xx or close, limits enforced, the real sources still served,
// the process alive) and prints the figures (RSS, times, counts).
//
// WEC_HOSTILE_IDLE (default 20000; 100000 by hand) sets the number of idle connections (held by
// this process and by forked children when one descriptor table is not enough);
// WEC_HOSTILE_EVENTS (default 100000; 1000000 by hand) the events of the largest batch, with
// max_body_bytes raised to fit them.
#include "client/client.hpp"
#include "common/handle.hpp"
#include "support/files.hpp"
#include "support/pki_suite.hpp"
#include "support/proc_stats.hpp"
#include "support/process.hpp"
#include "support/subscription.hpp"
#include "support/wef_realm.hpp"
#include "wsman/wsman.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <random>
#include <regex>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
using namespace std::string_literals;
namespace fs = std::filesystem;
namespace client = wec::client;
using Clock = std::chrono::steady_clock;
using wec::UniqueFd;

const std::string kHost = "srv.windomain.local";
const std::string kTlsClient = "win10.windomain.local";

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v && *v ? std::stoull(v) : fallback;
}

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

// ---- raw sockets --------------------------------------------------------------------------------

// Attackers come from 127.0.0.2-9: eight source addresses, eight ephemeral port ranges.
std::string attacker_address(std::size_t i) {
    return "127.0.0." + std::to_string(2 + i % 8);
}

sockaddr_in ipv4(const std::string& address, int port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, address.c_str(), &a.sin_addr);
    return a;
}

// A TCP socket bound to `from` (any port), connecting to 127.0.0.1:port. Non-blocking sockets
// return with the connection in progress. Returns an empty UniqueFd (and sets `error`) on failure.
UniqueFd start_connect(const std::string& from, int port, bool nonblocking, std::string* error) {
    UniqueFd fd(
        ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
    auto fail = [&](const char* what) {
        if (error) *error = std::string(what) + ": " + std::strerror(errno);
        return UniqueFd();
    };
    if (fd.get() < 0) return fail("socket");
    // Closed with a reset, not a FIN: tens of thousands of client ports in TIME_WAIT would keep
    // ports that later tests pick as "free" busy for a minute (a KDC binding 0.0.0.0 fails).
    linger reset{1, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    auto local = ipv4(from, 0);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof local) != 0)
        return fail("bind");
    auto remote = ipv4("127.0.0.1", port);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0 &&
        !(nonblocking && errno == EINPROGRESS))
        return fail("connect");
    return fd;
}

// Opens `count` connections in waves of non-blocking connects. Returns the established ones.
std::vector<UniqueFd> open_connections(std::size_t count, int port, std::size_t* failed,
                                       std::string* first_error, std::size_t address_offset = 0) {
    std::vector<UniqueFd> open;
    open.reserve(count);
    constexpr std::size_t kWave = 1000;
    for (std::size_t done = 0; done < count;) {
        std::size_t n = std::min(kWave, count - done);
        std::vector<UniqueFd> wave;
        std::vector<pollfd> pfds;
        for (std::size_t i = 0; i < n; ++i) {
            std::string error;
            auto fd =
                start_connect(attacker_address(address_offset + done + i), port, true, &error);
            if (fd.get() < 0) {
                ++*failed;
                if (first_error->empty()) *first_error = error;
                continue;
            }
            pfds.push_back({fd.get(), POLLOUT, 0});
            wave.push_back(std::move(fd));
        }
        done += n;
        // Wait until each connect completed (a full backlog only delays a SYN by a retransmit).
        std::vector<bool> settled(wave.size(), false);
        std::size_t remaining = wave.size();
        auto deadline = Clock::now() + 20s;
        while (remaining > 0 && Clock::now() < deadline) {
            if (::poll(pfds.data(), pfds.size(), 100) < 0 && errno != EINTR) break;
            for (std::size_t i = 0; i < pfds.size(); ++i) {
                if (settled[i] || pfds[i].revents == 0) continue;
                settled[i] = true;
                pfds[i].fd = -1; // poll ignores it from now on
                --remaining;
            }
        }
        for (std::size_t i = 0; i < wave.size(); ++i) {
            int err = 0;
            socklen_t len = sizeof err;
            ::getsockopt(wave[i].get(), SOL_SOCKET, SO_ERROR, &err, &len);
            if (!settled[i] || err != 0) {
                ++*failed;
                if (first_error->empty())
                    *first_error = settled[i] ? std::strerror(err) : "connect timed out";
                continue;
            }
            open.push_back(std::move(wave[i]));
        }
    }
    return open;
}

// How many of `fds` the peer has not closed (no EOF, reset or data pending).
std::size_t count_still_open(const std::vector<UniqueFd>& fds) {
    std::vector<pollfd> pfds;
    pfds.reserve(fds.size());
    for (const auto& fd : fds)
        pfds.push_back({fd.get(), POLLIN | POLLRDHUP, 0});
    if (::poll(pfds.data(), pfds.size(), 0) < 0) return fds.size();
    return static_cast<std::size_t>(
        std::count_if(pfds.begin(), pfds.end(), [](const pollfd& p) { return p.revents == 0; }));
}

// Holds connections in a child process, which has its own descriptor table: one process can
// hold only RLIMIT_NOFILE of them, and raising the hard limit is not always permitted. The child
// opens them, reports how many, answers 'c' with how many the server has not closed, and closes
// them all and exits when the pipe closes (or when the destructor kills it).
class ConnectionHolder {
public:
    ConnectionHolder(std::size_t count, int port, std::size_t address_offset) {
        int down[2], up[2];
        if (::pipe(down) != 0 || ::pipe(up) != 0) throw std::runtime_error("pipe failed");
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            // Only the pipe ends: the parent's sockets must not stay open through this child.
            rlimit rl{};
            ::getrlimit(RLIMIT_NOFILE, &rl);
            for (int fd = 3; fd < static_cast<int>(rl.rlim_cur); ++fd)
                if (fd != down[0] && fd != up[1]) ::close(fd);
            std::size_t failed = 0;
            std::string error;
            auto fds = open_connections(count, port, &failed, &error, address_offset);
            std::uint64_t report[2] = {fds.size(), failed};
            if (::write(up[1], report, sizeof report) != sizeof report) ::_exit(1);
            char command = 0;
            while (::read(down[0], &command, 1) == 1) {
                std::uint64_t open = count_still_open(fds);
                if (::write(up[1], &open, sizeof open) != sizeof open) break;
            }
            ::_exit(0);
        }
        ::close(down[0]);
        ::close(up[1]);
        to_child_ = UniqueFd(down[1]);
        from_child_ = UniqueFd(up[0]);
        std::uint64_t report[2] = {0, count};
        read_all(report, sizeof report);
        opened_ = report[0];
        failed_ = report[1];
    }
    ~ConnectionHolder() {
        to_child_.reset(); // EOF: the child closes its connections and exits
        for (int i = 0; i < 1000; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
            std::this_thread::sleep_for(10ms);
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    ConnectionHolder(const ConnectionHolder&) = delete;
    ConnectionHolder& operator=(const ConnectionHolder&) = delete;

    std::size_t opened() const { return opened_; }
    std::size_t failed() const { return failed_; }
    std::size_t count_open() {
        std::uint64_t open = opened_;
        if (::write(to_child_.get(), "c", 1) == 1) read_all(&open, sizeof open);
        return static_cast<std::size_t>(open);
    }

private:
    void read_all(void* out, std::size_t size) {
        auto* p = static_cast<char*>(out);
        while (size > 0) {
            auto n = ::read(from_child_.get(), p, size);
            if (n <= 0) return;
            p += n;
            size -= static_cast<std::size_t>(n);
        }
    }

    pid_t pid_ = -1;
    UniqueFd to_child_, from_child_;
    std::size_t opened_ = 0, failed_ = 0;
};

struct RawReply {
    std::string bytes;   // everything the server sent
    bool closed = false; // EOF or reset before the timeout
    bool reset = false;
    double seconds = 0; // from the connection to the close (or the timeout)
};

// Sends `request` from 127.0.0.2 (reading while sending: the server may answer and close before
// the whole request is written), then reads until the server closes or `timeout` passes.
RawReply exchange(int port, const std::string& request, std::chrono::milliseconds timeout = 10s) {
    RawReply reply;
    auto start = Clock::now();
    std::string error;
    UniqueFd fd = start_connect("127.0.0.2", port, true, &error);
    if (fd.get() < 0) throw std::runtime_error("connect: " + error);
    std::size_t sent = 0;
    bool can_send = true;
    auto deadline = start + timeout;
    char buf[65536];
    while (Clock::now() < deadline) {
        pollfd p{fd.get(),
                 static_cast<short>(POLLIN | (can_send && sent < request.size() ? POLLOUT : 0)), 0};
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (::poll(&p, 1, static_cast<int>(std::max<long>(1, left.count()))) <= 0) continue;
        if (p.revents & POLLOUT) {
            auto n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += static_cast<std::size_t>(n);
            else if (errno != EAGAIN)
                can_send = false;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            auto n = ::recv(fd.get(), buf, sizeof buf, 0);
            if (n > 0) {
                reply.bytes.append(buf, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EAGAIN) {
                reply.closed = true;
                reply.reset = n < 0;
                break;
            }
        }
    }
    reply.seconds = seconds_since(start);
    return reply;
}

// The status codes of the HTTP responses in `bytes`, in order.
std::vector<int> statuses(const std::string& bytes) {
    std::vector<int> out;
    static const std::regex re("HTTP/1\\.[01] (\\d\\d\\d) ");
    for (std::sregex_iterator it(bytes.begin(), bytes.end(), re), end; it != end; ++it)
        out.push_back(std::stoi((*it)[1].str()));
    return out;
}

std::string join(const std::vector<int>& v) {
    std::string s;
    for (int x : v)
        s += (s.empty() ? "" : ",") + std::to_string(x);
    return "[" + s + "]";
}

// Raises this process's descriptor limit towards `want` (the hard limit too when permitted, e.g.
// as root); returns the soft limit obtained. Children (the collector) inherit it.
std::size_t raise_fd_limit(std::size_t want) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        rlimit more{want, want};
        if (::setrlimit(RLIMIT_NOFILE, &more) == 0) return want;
    }
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? want : std::min<rlim_t>(want, rl.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
    return static_cast<std::size_t>(rl.rlim_cur);
}

std::size_t count_lines(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (const auto& line : lines_of(text))
        n += line.find(needle) != std::string::npos;
    return n;
}

std::string mb(std::uint64_t kb) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(kb) / 1024.0);
    return buf;
}

// ---- the collector and its real sources ---------------------------------------------------------

// The client core runs in this process for the Kerberos source: MIT Kerberos is pointed at the
// test realm.
struct Realm : WefRealm {
    Realm() : WefRealm(kHost) {
        realm.apply_env();
        ::setenv("KRB5CCNAME", ccache.c_str(), 1);
    }
};

class ServeHostile : public PkiSuite<> {
protected:
    static inline std::unique_ptr<Realm> realm_;
    static void SetUpTestSuite() {
        make_pki();
        realm_ = std::make_unique<Realm>();
    }
    static void TearDownTestSuite() {
        realm_.reset();
        PkiSuite::TearDownTestSuite();
    }

    TempDir dir;
    std::string db;
    int http_port = 0;  // Kerberos listener (plain HTTP)
    int https_port = 0; // TLS listener
    std::unique_ptr<Process> server;

    void SetUp() override {
        db = "sqlite:" + (dir.path() / "wec.db").string();
        apply_subscription(dir.path() / "security.toml",
                           security_subscription(dir.path() / "events" / "{client}.json"), db);
    }
    void TearDown() override {
        if (server && HasFailure()) {
            auto text = server->output();
            if (text.size() > 6000) text = "..." + text.substr(text.size() - 6000);
            std::cerr << "---- wec serve log ----\n" << text;
        }
    }

    // Both listeners, `limits` as the body of [limits]; `prefix` runs the collector through a
    // wrapper (e.g. prlimit) that execs it (same PID).
    void start_server(const std::string& limits, std::vector<std::string> prefix = {}) {
        http_port = free_port();
        https_port = free_port();
        auto cfg = dir.path() / "wec.toml";
        std::ofstream(cfg) << "hostname = \"" << kHost << "\"\ndb = \"" << db << "\"\n"
                           << "[[listeners]]\naddress = \"127.0.0.1:" << http_port
                           << "\"\nauth = \"kerberos\"\nkeytab = \""
                           << realm_->service_keytab.string() << "\"\n"
                           << "[[listeners]]\naddress = \"127.0.0.1:" << https_port
                           << "\"\nauth = \"tls\"\ncert = \"" << pki("server.pem").string()
                           << "\"\nkey = \"" << pki("server.key").string() << "\"\nca = [\""
                           << pki("root.pem").string() << "\", \"" << pki("issuing.pem").string()
                           << "\"]\n"
                           << "[limits]\n"
                           << limits;
        prefix.insert(prefix.end(), {WEC_EXE, "serve", "--config", cfg.string()});
        server = std::make_unique<Process>(prefix, realm_->realm.env(), dir.path() / "serve.log");
        ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    }

    client::SourceOptions tls_source() const {
        client::SourceOptions o;
        o.manager =
            client::Url::parse("https://127.0.0.1:" + std::to_string(https_port) + "/wsman/");
        o.tls.cert_file = pki(kTlsClient + ".pem").string();
        o.tls.key_file = pki(kTlsClient + ".key").string();
        o.tls.ca_file = pki("root.pem").string();
        o.tls.server_name = kHost;
        o.machine_id = kTlsClient;
        o.timeout = 15s;
        return o;
    }
    client::SourceOptions kerberos_source() const {
        client::SourceOptions o;
        o.manager = client::Url::parse("http://127.0.0.1:" + std::to_string(http_port) +
                                       "/wsman/SubscriptionManager/WEC");
        o.service = "HTTP@" + kHost;
        o.ccache = realm_->ccache;
        o.machine_id = kTlsClient;
        o.timeout = 15s;
        return o;
    }

    // One Enumerate + one Events batch on each transport; throws if either is not acknowledged.
    void real_sources_are_served(std::uint64_t first_record) {
        for (auto options : {tls_source(), kerberos_source()}) {
            client::Source source(options);
            auto subs = source.enumerate();
            source.end();
            ASSERT_EQ(subs.size(), 1u);
            client::EventGenerator gen(kTlsClient, first_record, first_record);
            std::vector<std::string> events{gen.next(), gen.next(), gen.next()};
            auto ack = source.send_events(subs[0], events, gen.bookmark());
            EXPECT_EQ(ack.reply.action, wec::wsman::Action::Ack) << options.manager.str();
        }
    }

    // The process is alive and never logged an exception escaping a connection.
    void server_is_healthy() {
        EXPECT_TRUE(server->running());
        auto log = server->output();
        EXPECT_EQ(log.find("terminate called"), std::string::npos);
        EXPECT_EQ(log.find("connection closed after an exception"), std::string::npos);
    }
};

// Real sources pushing small batches back to back on both transports until stopped: what a
// hostile client must not be able to starve.
class RealTraffic {
public:
    RealTraffic(client::SourceOptions tls, client::SourceOptions kerberos) {
        threads_.emplace_back([this, tls] { loop(tls, stats_[0], 100000); });
        threads_.emplace_back([this, kerberos] { loop(kerberos, stats_[1], 200000); });
    }
    ~RealTraffic() { stop(); }
    void stop() {
        stop_ = true;
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }
    struct Stats {
        std::uint64_t acked = 0, failed = 0;
        double max_latency_ms = 0;
        std::string first_error;
    };
    const Stats& tls() const { return stats_[0]; }
    const Stats& kerberos() const { return stats_[1]; }

private:
    void loop(const client::SourceOptions& options, Stats& stats, std::uint64_t first) {
        client::EventGenerator gen(options.machine_id, first, first);
        while (!stop_) {
            try {
                client::Source source(options);
                auto subs = source.enumerate();
                source.end();
                if (subs.empty()) throw std::runtime_error("no subscription offered");
                while (!stop_) {
                    std::vector<std::string> events;
                    for (int i = 0; i < 5; ++i)
                        events.push_back(gen.next());
                    auto ack = source.send_events(subs[0], events, gen.bookmark());
                    ++stats.acked;
                    stats.max_latency_ms = std::max(
                        stats.max_latency_ms, static_cast<double>(ack.latency.count()) / 1000.0);
                    std::this_thread::sleep_for(20ms);
                }
            } catch (const std::exception& e) {
                ++stats.failed;
                if (stats.first_error.empty()) stats.first_error = e.what();
                std::this_thread::sleep_for(100ms);
            }
        }
    }

    std::atomic<bool> stop_{false};
    Stats stats_[2];
    std::vector<std::thread> threads_;
};

// ---- (a) slowloris ------------------------------------------------------------------------------

TEST_F(ServeHostile, SlowlorisIsCutByTheReadTimeoutWhileRealSourcesAreServed) {
    constexpr int kReadTimeout = 2;
    start_server("read_timeout = " + std::to_string(kReadTimeout) + "\n");
    const auto rss_before = rss_kb(server->pid());
    RealTraffic traffic(tls_source(), kerberos_source());

    // 800 request heads on the Kerberos listener, 200 TLS records on the HTTPS one, a byte every
    // 100 ms: a whole head would take 20 s or more.
    const std::string head = "POST /wsman/SubscriptionManager/WEC HTTP/1.1\r\nHost: " + kHost +
                             ":5985\r\nContent-Type: application/soap+xml;charset=UTF-16\r\n"
                             "User-Agent: Microsoft WinRM Client\r\nContent-Length: 0\r\n\r\n";
    std::string hello = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s;
    hello.resize(head.size(), '\x01');
    constexpr std::size_t kPlain = 800, kTls = 200;
    struct Slow {
        UniqueFd fd;
        bool tls = false;
        std::size_t sent = 0;
        Clock::time_point connected{}, first{}, next{}, closed{};
        bool done = false;
        std::string received;
    };
    std::vector<Slow> slow;
    std::mt19937 rng(42);
    auto t0 = Clock::now();
    for (std::size_t i = 0; i < kPlain + kTls; ++i) {
        std::string error;
        Slow s;
        s.tls = i >= kPlain;
        s.fd = start_connect(attacker_address(i), s.tls ? https_port : http_port, false, &error);
        ASSERT_GE(s.fd.get(), 0) << error;
        s.connected = Clock::now();
        ::fcntl(s.fd.get(), F_SETFL, O_NONBLOCK);
        s.next = t0 + std::chrono::milliseconds(rng() % 500);
        slow.push_back(std::move(s));
    }
    std::size_t remaining = slow.size(), completed_heads = 0;
    const auto deadline = Clock::now() + 30s;
    std::vector<pollfd> pfds;
    while (remaining > 0 && Clock::now() < deadline) {
        auto now = Clock::now();
        for (auto& s : slow) {
            if (s.done || now < s.next) continue;
            const auto& payload = s.tls ? hello : head;
            if (s.sent == payload.size()) {
                ++completed_heads; // the server let a whole head through at this pace
                s.next = now + 1h;
                continue;
            }
            if (::send(s.fd.get(), payload.data() + s.sent, 1, MSG_NOSIGNAL) == 1) {
                if (s.sent++ == 0) s.first = now;
                s.next = now + 100ms;
            } else if (errno != EAGAIN) {
                s.done = true;
                s.closed = now;
                --remaining;
            }
        }
        pfds.clear();
        for (const auto& s : slow)
            pfds.push_back({s.done ? -1 : s.fd.get(), POLLIN | POLLRDHUP, 0});
        ::poll(pfds.data(), pfds.size(), 10);
        now = Clock::now();
        for (std::size_t i = 0; i < slow.size(); ++i) {
            if (slow[i].done || pfds[i].revents == 0) continue;
            char buf[4096];
            auto n = ::recv(slow[i].fd.get(), buf, sizeof buf, 0);
            if (n > 0) {
                slow[i].received.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno == EAGAIN) continue;
            slow[i].done = true;
            slow[i].closed = now;
            slow[i].fd.reset();
            --remaining;
        }
    }
    traffic.stop();
    const auto rss_peak = peak_rss_kb(server->pid());

    EXPECT_EQ(remaining, 0u) << "slow connections still open after 30 s";
    EXPECT_EQ(completed_heads, 0u);
    // Heads are cut by read_timeout counted from their first byte (not by idle_timeout); TLS
    // handshakes by read_timeout counted from the accept.
    std::vector<double> held_plain, held_tls;
    std::size_t answered = 0;
    for (const auto& s : slow) {
        if (!s.done) continue;
        auto from = s.tls ? s.connected : s.first;
        (s.tls ? held_tls : held_plain)
            .push_back(std::chrono::duration<double>(s.closed - from).count());
        answered += !s.received.empty();
    }
    ASSERT_EQ(held_plain.size(), kPlain);
    ASSERT_EQ(held_tls.size(), kTls);
    std::string figures;
    for (auto* held : {&held_plain, &held_tls}) {
        std::sort(held->begin(), held->end());
        EXPECT_GE(held->front(), kReadTimeout * 0.75);
        EXPECT_LE(held->back(), kReadTimeout + 10.0);
        figures += std::to_string(held->front()) + " / " +
                   std::to_string((*held)[held->size() / 2]) + " / " +
                   std::to_string(held->back()) + " s";
        figures += held == &held_plain ? " (plain, from the first byte), " : " (TLS, from connect)";
    }
    EXPECT_EQ(traffic.tls().failed, 0u) << traffic.tls().first_error;
    EXPECT_EQ(traffic.kerberos().failed, 0u) << traffic.kerberos().first_error;
    EXPECT_GE(traffic.tls().acked, 10u);
    EXPECT_GE(traffic.kerberos().acked, 10u);
    server_is_healthy();
    std::cout << "slowloris: " << slow.size() << " connections held min/median/max " << figures
              << "; " << answered << " got bytes before the close; real sources: TLS "
              << traffic.tls().acked << " batches (max Ack " << traffic.tls().max_latency_ms
              << " ms), Kerberos " << traffic.kerberos().acked << " batches (max Ack "
              << traffic.kerberos().max_latency_ms << " ms); server RSS " << mb(rss_before)
              << " before, peak " << mb(rss_peak) << "\n";
}

// ---- (b) many idle connections ------------------------------------------------------------------

TEST_F(ServeHostile, IdleConnectionsBeyondMaxConnectionsAreClosedAndMemoryStaysBounded) {
    const std::size_t want = env_or("WEC_HOSTILE_IDLE", 20000);
    const auto limit = raise_fd_limit(want + 2000);
    // This process holds max_connections of them; the collector as many, plus its own.
    const std::size_t max_connections =
        std::min({std::size_t{5000}, want / 4, limit > 600 ? (limit - 500) / 2 : 0});
    ASSERT_GE(max_connections, 100u) << "descriptor limit too low for this test: " << limit;
    start_server("max_connections = " + std::to_string(max_connections) + "\nidle_timeout = 600\n");
    const int pid = server->pid();
    const auto rss_start = rss_kb(pid);
    const auto fds_start = open_fds(pid);

    // 1. Up to the limit, from this process: held (idle connections wait for idle_timeout).
    std::size_t failed = 0;
    std::string first_error;
    auto t0 = Clock::now();
    auto held = open_connections(max_connections, http_port, &failed, &first_error);
    ASSERT_EQ(failed, 0u) << first_error;
    auto settle = Clock::now() + 20s;
    while (open_fds(pid) < fds_start + max_connections && Clock::now() < settle)
        std::this_thread::sleep_for(50ms);
    const auto rss_at_limit = rss_kb(pid);
    const auto fds_at_limit = open_fds(pid);
    EXPECT_GE(fds_at_limit, fds_start + max_connections);
    EXPECT_EQ(count_still_open(held), max_connections);

    // 2. Far beyond, from child processes (each holds what its descriptor limit allows): each
    // connection is accepted and closed at once.
    std::vector<std::unique_ptr<ConnectionHolder>> flood;
    const std::size_t per_holder = std::min<std::size_t>(limit - 100, 30000);
    std::size_t flooded = 0;
    for (std::size_t offset = max_connections; offset < want; offset += per_holder) {
        auto n = std::min(per_holder, want - offset);
        flood.push_back(std::make_unique<ConnectionHolder>(n, http_port, offset));
        flooded += flood.back()->opened();
        failed += flood.back()->failed();
    }
    const double open_seconds = seconds_since(t0);
    EXPECT_EQ(failed, 0u);
    std::size_t still_open = 0;
    settle = Clock::now() + 30s;
    do {
        std::this_thread::sleep_for(200ms);
        still_open = 0;
        for (auto& h : flood)
            still_open += h->count_open();
    } while (still_open > 0 && Clock::now() < settle);
    const auto rss_flooded = rss_kb(pid);
    const auto fds_flooded = open_fds(pid);
    const auto held_open = count_still_open(held);

    EXPECT_EQ(still_open, 0u) << "connections beyond max_connections left open";
    EXPECT_EQ(held_open, max_connections) << "connections within the limit were dropped";
    EXPECT_LE(fds_flooded, fds_start + max_connections + 16);
    // The flood beyond the limit costs no memory (a little allocator slack at most).
    EXPECT_LT(rss_flooded, rss_at_limit + 32 * 1024)
        << mb(rss_at_limit) << " at the limit, " << mb(rss_flooded) << " after the flood";
    // "connection refused: too many connections" once per thousand refusals, not per refusal.
    const auto refused_lines = count_lines(server->output(), "too many connections");
    EXPECT_GE(refused_lines, 1u);
    EXPECT_LE(refused_lines, flooded / 1000 + 2);

    // While the limit is taken, a new connection is closed at once (max_connections is global).
    std::string during = "served";
    try {
        real_sources_are_served(300000);
    } catch (const std::exception& e) {
        during = std::string("refused (") + e.what() + ")";
    }

    // 3. The attacker goes away: the collector serves again.
    flood.clear();
    held.clear();
    settle = Clock::now() + 30s;
    while (open_fds(pid) > fds_start + 8 && Clock::now() < settle)
        std::this_thread::sleep_for(50ms);
    EXPECT_LE(open_fds(pid), fds_start + 8);
    real_sources_are_served(400000);
    server_is_healthy();
    std::cout << "idle connections: " << max_connections + flooded << " opened in " << open_seconds
              << " s (" << failed << " failed to connect), max_connections " << max_connections
              << ": " << held_open << " held, " << flooded << " closed at once; server fds "
              << fds_start << " -> " << fds_at_limit << " -> " << fds_flooded << "; RSS "
              << mb(rss_start) << " -> " << mb(rss_at_limit) << " at the limit ("
              << (rss_at_limit > rss_start ? (rss_at_limit - rss_start) * 1024 / max_connections
                                           : 0)
              << " bytes per idle connection) -> " << mb(rss_flooded) << " after the flood, peak "
              << mb(peak_rss_kb(pid)) << "; " << refused_lines
              << " 'too many connections' log lines; a real source during the saturation: "
              << during << "\n";
}

// ---- (c) malformed framing ----------------------------------------------------------------------

struct Framing {
    const char* name;
    std::string request;
    std::vector<int> statuses; // the responses, in order ({} = closed without one)
    bool may_reset = false;    // a large request: the close may reset the connection before
                               // the response is read
    bool tls_port = false;     // sent to the HTTPS listener (no TLS: raw bytes)
};

std::string post_head(const std::string& extra) {
    return "POST /wsman/SubscriptionManager/WEC HTTP/1.1\r\nHost: " + kHost +
           ":5985\r\nContent-Type: application/soap+xml;charset=UTF-16\r\n" + extra;
}

std::string chunked(std::size_t total, std::size_t chunk) {
    std::string body;
    char size[32];
    for (std::size_t sent = 0; sent < total; sent += chunk) {
        std::snprintf(size, sizeof size, "%zx\r\n", chunk);
        body += size + std::string(chunk, 'c') + "\r\n";
    }
    return body + "0\r\n\r\n";
}

std::vector<Framing> framing_cases() {
    std::mt19937 rng(7);
    std::string garbage(4096, '\0');
    for (auto& c : garbage)
        c = static_cast<char>(rng());
    std::string many_headers;
    for (int i = 0; i < 2000; ++i)
        many_headers += "X-H" + std::to_string(i) + ": v\r\n";
    return {
        {"head_over_limit",
         post_head("X-Big: " + std::string(20000, 'a') + "\r\nContent-Length: 0\r\n\r\n"),
         {431}},
        {"many_headers_over_limit", post_head(many_headers + "Content-Length: 0\r\n\r\n"), {431}},
        {"target_over_limit", "GET /" + std::string(70000, 'a') + " HTTP/1.1\r\n\r\n", {431}},
        {"head_never_ends", "POST / HTTP/1.1\r\n" + std::string(1 << 20, 'h'), {431}, true},
        {"content_length_over_limit", post_head("Content-Length: 100000000\r\n\r\n"), {400}},
        {"body_over_limit",
         post_head("Content-Length: 2000000\r\n\r\n") + std::string(2000000, 'b'),
         {400},
         true},
        // Unauthenticated: the head alone gets the 401, the body is never read (drained).
        {"chunked_over_limit",
         post_head("Transfer-Encoding: chunked\r\n\r\n") + chunked(2000000, 65536),
         {401},
         true},
        {"content_length_shorter_than_body",
         post_head("Content-Length: 5\r\n\r\n") + "hello" + "GARBAGE / HTTP/1.1\r\n\r\n",
         {401}},
        {"content_length_longer_than_body",
         post_head("Content-Length: 100\r\n\r\n") + "short",
         {401}},
        {"chunked_body",
         post_head("Transfer-Encoding: chunked\r\n\r\n") + chunked(300, 100),
         {401}},
        {"chunked_trailer_70000",
         post_head("Transfer-Encoding: chunked\r\n\r\n") +
             "5\r\nhello\r\n0\r\nX-T: " + std::string(70000, 't') + "\r\n\r\n",
         {401}},
        {"content_length_not_a_number", post_head("Content-Length: abc\r\n\r\n"), {400}},
        {"content_length_negative", post_head("Content-Length: -1\r\n\r\n"), {400}},
        {"content_length_overflow",
         post_head("Content-Length: 99999999999999999999999\r\n\r\n"),
         {400}},
        {"content_length_twice",
         post_head("Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
         {400}},
        {"content_length_and_chunked",
         post_head("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") + chunked(10, 10),
         {400}},
        {"chunk_size_overflow",
         post_head("Transfer-Encoding: chunked\r\n\r\n") + "fffffffffffffffffffff\r\nx\r\n",
         {401}},
        {"chunk_size_not_hex",
         post_head("Transfer-Encoding: chunked\r\n\r\n") + "zz\r\nx\r\n",
         {401}},
        {"binary_garbage", garbage, {400}},
        {"nul_in_a_header", post_head("X-A: a\0b\r\nContent-Length: 0\r\n\r\n"s), {400}},
        {"tls_hello_on_the_http_port",
         "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s + std::string(500, '\x01'),
         {400}},
        {"http_on_the_https_port", post_head("Content-Length: 0\r\n\r\n"), {}, false, true},
        {"garbage_authorization",
         post_head("Authorization: Kerberos !!!!\r\nContent-Length: 0\r\n\r\n"),
         {401}},
        {"large_bogus_kerberos_token",
         post_head("Authorization: Kerberos " + std::string(12000, 'A') +
                   "\r\nContent-Length: 0\r\n\r\n"),
         {401}},
        {"pipelined_after_an_unauthenticated_request",
         post_head("Content-Length: 0\r\n\r\n") + post_head("Content-Length: 0\r\n\r\n"),
         {401}},
    };
}

TEST_F(ServeHostile, MalformedFramingGets4xxOrCloseAndTheCollectorLives) {
    constexpr int kReadTimeout = 2;
    start_server("read_timeout = " + std::to_string(kReadTimeout) + "\n");
    const int pid = server->pid();
    const auto rss_before = rss_kb(pid);
    std::size_t n = 0;
    for (const auto& c : framing_cases()) {
        SCOPED_TRACE(c.name);
        auto r = exchange(c.tls_port ? https_port : http_port, c.request);
        EXPECT_TRUE(r.closed) << "still open after " << r.seconds << " s";
        auto got = statuses(r.bytes);
        if (!(c.may_reset && r.reset && got.empty())) {
            EXPECT_EQ(got, c.statuses) << r.bytes.substr(0, 300);
        }
        if (c.statuses.empty() && !c.tls_port) { // cut by read_timeout, not answered
            EXPECT_GE(r.seconds, kReadTimeout * 0.75);
        }
        std::cout << "  " << c.name << ": " << join(got) << (r.reset ? " reset" : " closed")
                  << " after " << r.seconds << " s\n";
        ++n;
    }
    // The same framing errors after the TLS handshake (an authenticated source): 4xx and close.
    struct AfterTls {
        const char* name;
        std::string request;
        unsigned status;
        bool closes = true; // a framing error ends the connection; a bad SOAP body does not
        // Larger than what the collector reads before refusing: it may answer and close while
        // the client still writes, and lib/client then reports the broken pipe, not the answer.
        bool may_cut = false;
    };
    std::vector<AfterTls> after{
        {"head_over_limit",
         post_head("X-Big: " + std::string(20000, 'a') + "\r\nContent-Length: 0\r\n\r\n"), 431,
         true, true},
        {"chunked_trailer_70000",
         post_head("Transfer-Encoding: chunked\r\n\r\n") +
             "5\r\nhello\r\n0\r\nX-T: " + std::string(70000, 't') + "\r\n\r\n",
         431, true, true},
        {"content_length_over_limit", post_head("Content-Length: 100000000\r\n\r\n"), 400},
        {"chunk_size_overflow",
         post_head("Transfer-Encoding: chunked\r\n\r\n") + "fffffffffffffffffffff\r\nx\r\n", 400},
        {"content_length_and_chunked",
         post_head("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") + chunked(10, 10),
         400},
        {"chunked_not_soap", post_head("Transfer-Encoding: chunked\r\n\r\n") + chunked(300, 100),
         400, false},
    };
    for (const auto& c : after) {
        SCOPED_TRACE(std::string("tls ") + c.name);
        client::ConnectionOptions o;
        o.host = "127.0.0.1";
        o.port = static_cast<std::uint16_t>(https_port);
        o.tls = true;
        o.tls_options = tls_source().tls;
        o.timeout = 15s;
        client::Connection conn(o);
        conn.connect("/wsman/");
        try {
            auto r = conn.exchange_raw(c.request);
            EXPECT_EQ(r.status, c.status) << r.text();
            EXPECT_EQ(r.keep_alive, !c.closes);
            std::cout << "  tls " << c.name << ": " << r.status
                      << (r.keep_alive ? " keep-alive" : " close") << "\n";
        } catch (const client::ClientError& e) {
            EXPECT_TRUE(c.may_cut) << e.what();
            std::cout << "  tls " << c.name << ": closed while sending (" << e.what() << ")\n";
        }
        ++n;
    }
    real_sources_are_served(500000);
    server_is_healthy();
    std::cout << "malformed framing: " << n << " requests, server RSS " << mb(rss_before)
              << " before, " << mb(rss_kb(pid)) << " after, peak " << mb(peak_rss_kb(pid)) << "; "
              << count_lines(server->output(), "request rejected")
              << " 'request rejected' log lines\n";
}

// ---- (d) descriptor exhaustion ------------------------------------------------------------------

TEST_F(ServeHostile, DescriptorExhaustionBacksOffAndTheCollectorRecovers) {
    // 64 descriptors, soft and hard: the collector cannot raise them back.
    start_server("", {"prlimit", "--nofile=64:64"});
    const int pid = server->pid();
    std::size_t failed = 0;
    std::string first_error;
    auto conns = open_connections(300, http_port, &failed, &first_error);
    ASSERT_EQ(failed, 0u) << first_error;
    auto deadline = Clock::now() + 10s;
    while (count_lines(server->output(), "accept failed") == 0 && Clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    ASSERT_EQ(count_lines(server->output(), "accept failed"), 1u) << "no accept failure";
    const auto fds_exhausted = open_fds(pid);
    // Out of descriptors for 6 s: the accept loop backs off instead of spinning.
    const double cpu0 = cpu_seconds(pid);
    std::this_thread::sleep_for(6s);
    const double cpu = cpu_seconds(pid) - cpu0;
    EXPECT_LT(cpu, 1.5) << "the collector burnt CPU while out of descriptors";
    EXPECT_LE(count_lines(server->output(), "accept failed"), 2u);
    EXPECT_EQ(count_still_open(conns),
              conns.size()); // held (accepted or in the backlog), not dropped

    // The connections go away: the backlog drains and the collector serves again.
    conns.clear();
    deadline = Clock::now() + 20s;
    while (open_fds(pid) > 40 && Clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    real_sources_are_served(600000);
    server_is_healthy();
    const auto accept_lines = count_lines(server->output(), "accept failed");
    EXPECT_LE(accept_lines, 3u);
    std::cout << "descriptor exhaustion: 300 connections against 64 descriptors, " << fds_exhausted
              << " fds in use, " << cpu << " s CPU in 6 s out of descriptors, " << accept_lines
              << " 'accept failed' log lines in all\n";
}

// ---- (3) bad bodies after authentication --------------------------------------------------------

// An SLDC record that expands ~94 times: one literal, then copies of 271 bytes (23 bits each) of
// the history, `bytes` long.
std::vector<std::uint8_t> sldc_bomb(std::size_t bytes) {
    std::vector<std::uint8_t> out;
    std::uint64_t acc = 0;
    unsigned n = 0;
    auto bits = [&](std::uint32_t v, unsigned count) {
        for (unsigned k = count; k-- > 0;) {
            acc = (acc << 1) | ((v >> k) & 1);
            if (++n == 8) {
                out.push_back(static_cast<std::uint8_t>(acc));
                acc = 0;
                n = 0;
            }
        }
    };
    bits(0x1FF, 9); // control: reset to scheme 1
    bits(0x5, 4);
    bits(0, 1); // literal '<'
    bits('<', 8);
    while (out.size() + 8 < bytes) {
        bits(1, 1);      // copy pointer
        bits(0b1111, 4); // length 32..271
        bits(271 - 32, 8);
        bits(0, 10); // from history position 0
    }
    bits(0x1FF, 9); // control: end of record
    bits(0x4, 4);
    if (n > 0) bits(0, 8 - n);
    return out;
}

// `n` minimal events (`<w:Event><E/></w:Event>`, 23 characters) in one Events message of
// `source` for `sub`, with a bookmark at `record`.
std::string tiny_events_soap(client::Source& source, const wec::wsman::Subscription& sub,
                             std::size_t n, std::uint64_t record) {
    std::vector<std::string_view> one{"<E/>"};
    auto soap =
        wec::wsman::build_events(source.headers_for(sub), one, client::security_bookmark(record));
    auto open = soap.find("<w:Events>") + std::strlen("<w:Events>");
    auto close = soap.find("</w:Events>");
    std::string events;
    events.reserve(n * 23);
    for (std::size_t i = 0; i < n; ++i)
        events += "<w:Event><E/></w:Event>";
    return soap.substr(0, open) + events + soap.substr(close);
}

TEST_F(ServeHostile, BadBodiesAfterAuthenticationGet4xxWithMemoryBounded) {
    start_server(""); // default limits: max_body_bytes = 512000
    const int pid = server->pid();
    const auto rss_before = rss_kb(pid);
    client::Source source(tls_source());
    auto subs = source.enumerate();
    source.end();
    ASSERT_EQ(subs.size(), 1u);
    const auto sub = subs[0];
    const auto target = source.push_url(sub).target;
    auto connection = [&]() -> client::Connection& { return source.push_connection(sub); };
    struct Outcome {
        std::string name;
        unsigned status;
        std::string text;
        std::uint64_t rss_kb;
    };
    std::vector<Outcome> outcomes;
    // A refused body may be cut while it is sent: the collector answers 400 and closes as soon
    // as the Content-Length is over the limit, and the client sees the close (status 0 here).
    auto post = [&](const std::string& name, client::PreparedBody body) {
        client::Response r;
        try {
            r = connection().post_prepared(target, std::move(body));
        } catch (const client::ClientError& e) {
            EXPECT_EQ(e.kind(), client::ErrorKind::Transport) << e.what();
            r.body.assign(e.what(), e.what() + std::strlen(e.what()));
        }
        outcomes.push_back({name, r.status, r.text().substr(0, 200), rss_kb(pid)});
        return r;
    };

    // SLDC bombs: the largest body a TLS listener takes (max_body_bytes) expanding to ~47 MB;
    // and a small one. Decompression stops at max_body_bytes.
    for (std::size_t size : {std::size_t{500000}, std::size_t{6000}}) {
        auto bomb = sldc_bomb(size);
        auto r = post("sldc bomb " + std::to_string(size / 1000) + " KB -> " +
                          std::to_string(size * 8 / 23 * 271 / 1000) + " KB",
                      connection().prepare_bytes(bomb, true));
        EXPECT_EQ(r.status, 400u) << r.text();
        EXPECT_NE(r.text().find("after decompression"), std::string::npos) << r.text();
    }

    // Deep nesting: unclosed (not XML), and well-formed inside one event's EventData.
    {
        auto soap = wec::wsman::build_events(source.headers_for(sub), {}, "");
        std::string deep;
        for (int i = 0; i < 80000; ++i)
            deep += "<x>";
        soap.insert(soap.find("<w:Events>") + 10, deep);
        auto r = post("80,000 unclosed elements", connection().prepare(soap, true));
        EXPECT_EQ(r.status, 400u) << r.text();
    }
    {
        client::EventGenerator gen(kTlsClient, 5, 700000);
        auto event = gen.next();
        std::string nest;
        for (int i = 0; i < 30000; ++i)
            nest += "<x>";
        for (int i = 0; i < 30000; ++i)
            nest += "</x>";
        event.insert(event.find("</EventData>"), nest);
        std::vector<std::string_view> one{event};
        auto soap = wec::wsman::build_events(source.headers_for(sub), one, gen.bookmark());
        auto r = post("30,000 nested elements in an event", connection().prepare(soap, true));
        EXPECT_EQ(r.status, 200u) << r.text(); // stored (the nesting is data), not a crash
    }

    // A million tiny events in one batch: 46 MB of UTF-16, far over the limit, compressed to fit
    // the HTTP limit or not.
    {
        auto soap = tiny_events_soap(source, sub, 1000000, 800000);
        auto r = post("1,000,000 events, uncompressed", connection().prepare(soap, false));
        EXPECT_TRUE(r.status == 400u || r.status == 0) << r.text();
        auto r2 = post("1,000,000 events, SLDC", connection().prepare(soap, true));
        EXPECT_EQ(r2.status, 400u) << r2.text();
    }
    // As many tiny events as the limit allows: accepted.
    {
        auto soap = tiny_events_soap(source, sub, 10000, 900000);
        auto r = post("10,000 events, SLDC", connection().prepare(soap, true));
        EXPECT_EQ(r.status, 200u) << r.text();
    }

    const auto rss_peak = peak_rss_kb(pid);
    // Nothing above grew the collector by more than a few times the body limit.
    EXPECT_LT(rss_peak, rss_before + 64 * 1024) << mb(rss_before) << " -> " << mb(rss_peak);
    real_sources_are_served(1000000);
    server_is_healthy();
    for (const auto& o : outcomes)
        std::cout << "  " << o.name << ": " << o.status << " " << o.text.substr(0, 80) << " (RSS "
                  << mb(o.rss_kb) << ")\n";
    std::cout << "bad bodies after authentication: server RSS " << mb(rss_before)
              << " before, peak " << mb(rss_peak) << "\n";
}

// The largest batch a raised max_body_bytes admits: WEC_HOSTILE_EVENTS tiny events (default
// 100,000; 1,000,000 by hand) in one message, the limit set to fit them. Acknowledged, every event
// written, memory proportional to the body.
TEST_F(ServeHostile, ManyTinyEventsInOneBatchWithinARaisedLimit) {
    const std::size_t n = env_or("WEC_HOSTILE_EVENTS", 100000);
    const std::size_t limit = n * 46 + 64 * 1024;
    start_server("max_body_bytes = " + std::to_string(limit) + "\n");
    const int pid = server->pid();
    const auto rss_before = rss_kb(pid);
    auto options = tls_source();
    options.timeout = 120s;
    client::Source source(options);
    auto subs = source.enumerate();
    source.end();
    ASSERT_EQ(subs.size(), 1u);
    auto soap = tiny_events_soap(source, subs[0], n, 1100000);
    auto& c = source.push_connection(subs[0]);
    auto body = c.prepare(soap, false);
    const auto body_bytes = body.body.size();
    auto start = Clock::now();
    auto r = c.post_prepared(source.push_url(subs[0]).target, std::move(body));
    const double seconds = seconds_since(start);
    EXPECT_EQ(r.status, 200u) << r.text().substr(0, 300);
    const auto rss_peak = peak_rss_kb(pid);
    const auto written = slurp(dir.path() / "events" / (kTlsClient + ".json"));
    const auto lines = lines_of(written).size();
    EXPECT_EQ(lines, n);
    // Bounded by the body: the UTF-16 body, its UTF-8 copy, the event views, and one JSON line of
    // ~300 bytes of metadata per event (13 times the 23 characters of a tiny event).
    EXPECT_LT(rss_peak, rss_before + 20 * body_bytes / 1024 + 32 * 1024)
        << mb(rss_before) << " -> " << mb(rss_peak) << " for a body of " << mb(body_bytes / 1024);
    real_sources_are_served(1200000);
    server_is_healthy();
    std::cout << "one batch of " << n << " tiny events (" << mb(body_bytes / 1024)
              << " body, max_body_bytes " << limit << "): HTTP " << r.status << " in " << seconds
              << " s, " << lines << " lines written; server RSS " << mb(rss_before)
              << " before, peak " << mb(rss_peak) << "\n";
}

} // namespace

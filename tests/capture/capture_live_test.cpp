// Real captures: a Python echo server on 127.0.0.1, tcpdump on lo (Ethernet) and on any (SLL2),
// curl and raw sockets as clients; the extracted bodies must equal what was sent.
#include "capture/capture.hpp"
#include "capture_util.hpp"

#include <arpa/inet.h>
#include <chrono>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace wec::test;
namespace cap = wec::capture;

namespace {

// A child process stopped (SIGTERM, or the given signal) and reaped on destruction.
class Child {
public:
    // Starts argv with stdout (or stderr) connected to a pipe readable through read_line().
    Child(const std::vector<std::string>& argv, bool pipe_stderr) {
        int fds[2];
        if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
        pid_ = fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            dup2(fds[1], pipe_stderr ? 2 : 1);
            close(fds[0]);
            close(fds[1]);
            int null = open("/dev/null", O_RDWR);
            dup2(null, 0);
            if (pipe_stderr) dup2(null, 1);
            std::vector<char*> args;
            for (const auto& a : argv)
                args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            execvp(args[0], args.data());
            _exit(127);
        }
        close(fds[1]);
        fd_ = fds[0];
    }
    ~Child() { stop(SIGTERM); }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    // Reads lines until one contains `needle` (or the timeout passes). Returns that line.
    std::optional<std::string> wait_for(const std::string& needle, int timeout_ms = 10000) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        for (;;) {
            auto nl = buffer_.find('\n');
            while (nl != std::string::npos) {
                std::string l = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                if (l.find(needle) != std::string::npos) return l;
                nl = buffer_.find('\n');
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{fd_, POLLIN, 0};
            if (poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
            char buf[4096];
            ssize_t n = read(fd_, buf, sizeof buf);
            if (n <= 0) return std::nullopt;
            buffer_.append(buf, static_cast<std::size_t>(n));
        }
    }

    // Sends sig and waits for the process. Returns its exit status (or -1).
    int stop(int sig) {
        int status = -1;
        if (pid_ > 0) {
            kill(pid_, sig);
            waitpid(pid_, &status, 0);
            pid_ = -1;
        }
        if (fd_ >= 0) {
            close(fd_);
            fd_ = -1;
        }
        return status;
    }

private:
    pid_t pid_ = -1;
    int fd_ = -1;
    std::string buffer_;
};

int run(const std::string& cmd) {
    int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int connect_to(int port) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        close(s);
        throw std::runtime_error("connect failed");
    }
    return s;
}

void send_all(int s, const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = send(s, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n <= 0) throw std::runtime_error("send failed");
        off += static_cast<std::size_t>(n);
    }
}

std::string read_until_close(int s) {
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(s, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

std::string reversed(std::string s) {
    return {s.rbegin(), s.rend()};
}

struct LiveCapture : ::testing::Test {
    static inline std::unique_ptr<TempDir> dir;
    static inline std::vector<std::string> sent; // every request body
    static inline bool captured = false;
    static inline std::string failure;

    static void SetUpTestSuite() {
        dir = std::make_unique<TempDir>();
        try {
            record();
        } catch (const std::exception& e) {
            failure = e.what();
        }
    }
    static void TearDownTestSuite() { dir.reset(); }

    static void record() {
        Child server({"python3", "-u", WEC_ECHO_SERVER}, false);
        auto port_line = server.wait_for("");
        if (!port_line) throw std::runtime_error("echo server did not start");
        int port = std::stoi(*port_line);
        std::string filter = "tcp port " + std::to_string(port);
        Child lo({"tcpdump", "-i", "lo", "-U", "-s", "0", "-Z", "root", "-w", dir->file("lo.pcap"),
                  filter},
                 true);
        Child any({"tcpdump", "-i", "any", "-U", "-s", "0", "-Z", "root", "-w",
                   dir->file("any.pcap"), filter},
                  true);
        if (!lo.wait_for("listening on") || !any.wait_for("listening on")) {
            throw std::runtime_error("tcpdump could not start capturing (no 'listening on')");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));

        std::string url = "http://127.0.0.1:" + std::to_string(port) + "/wsman";
        // 1. curl: several keep-alive POSTs on one connection (one of them chunked).
        std::vector<std::string> bodies = {random_body(20000, 1), random_body(300000, 2), "x",
                                           random_body(5000, 3)};
        std::string cmd = "curl -s -S --http1.1 -o /dev/null";
        for (std::size_t i = 0; i < bodies.size(); ++i) {
            std::string f = dir->file("body" + std::to_string(i));
            std::ofstream(f, std::ios::binary) << bodies[i];
            if (i > 0) cmd += " --next -o /dev/null";
            cmd += " -H 'Content-Type: application/soap+xml;charset=UTF-16' --data-binary @" + f;
            if (i == 3) cmd += " -H 'Transfer-Encoding: chunked'";
            cmd += " " + url;
            sent.push_back(bodies[i]);
        }
        if (run(cmd) != 0) throw std::runtime_error("curl failed: " + cmd);

        // 2. Pipelining: two requests in one write, the second closes.
        std::string p1 = random_body(7000, 4), p2 = random_body(123, 5);
        int s = connect_to(port);
        std::string req1 = post(p1);
        std::string req2 = post(p2);
        req2.insert(req2.find("\r\n") + 2, "Connection: close\r\n");
        send_all(s, req1 + req2);
        std::string got = read_until_close(s);
        close(s);
        if (got.find(reversed(p1)) == std::string::npos ||
            got.find(reversed(p2)) == std::string::npos) {
            throw std::runtime_error("pipelined responses not received");
        }
        sent.push_back(p1);
        sent.push_back(p2);

        // 3. Two connections interleaved.
        std::string a = random_body(40000, 6), b = random_body(9000, 7);
        std::string ra = post(a), rb = post(b);
        ra.insert(ra.find("\r\n") + 2, "Connection: close\r\n");
        rb.insert(rb.find("\r\n") + 2, "Connection: close\r\n");
        int sa = connect_to(port), sb = connect_to(port);
        send_all(sa, ra.substr(0, 1000));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        send_all(sb, rb.substr(0, 500));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        send_all(sa, ra.substr(1000));
        send_all(sb, rb.substr(500));
        std::string ga = read_until_close(sa), gb = read_until_close(sb);
        close(sa);
        close(sb);
        if (ga.find(reversed(a)) == std::string::npos ||
            gb.find(reversed(b)) == std::string::npos) {
            throw std::runtime_error("interleaved responses not received");
        }
        sent.push_back(a);
        sent.push_back(b);

        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        lo.stop(SIGINT);
        any.stop(SIGINT);
        server.stop(SIGTERM);
        captured = true;
    }

    void check(const std::string& path, cap::Stats* stats = nullptr) {
        ASSERT_TRUE(captured) << "real capture failed: " << failure;
        auto r = extract(path);
        if (stats != nullptr) *stats = r.stats;
        EXPECT_TRUE(r.gaps.empty()) << r.error_text();
        EXPECT_TRUE(r.errors.empty()) << r.error_text();
        auto requests = r.bodies(true);
        std::multiset<std::string> want(sent.begin(), sent.end()),
            got(requests.begin(), requests.end());
        EXPECT_EQ(requests.size(), sent.size());
        EXPECT_TRUE(want == got) << "request bodies differ from what was sent";
        // Every final response answers its request with the reversed body, in order.
        std::map<std::pair<std::uint64_t, std::uint64_t>, std::string> by_request;
        for (const auto& m : r.messages) {
            if (m.request) by_request[{m.connection, m.index}] = m.body;
        }
        std::size_t finals = 0;
        for (const auto& m : r.messages) {
            if (m.request || m.start_line.find(" 100 ") != std::string::npos) continue;
            ++finals;
            ASSERT_TRUE(m.request_index);
            EXPECT_EQ(m.body, reversed(by_request[{m.connection, *m.request_index}]));
            EXPECT_EQ(m.direction, cap::Direction::ServerToClient);
            EXPECT_EQ(m.tuple.src.to_string().rfind("127.0.0.1:", 0), 0u);
        }
        EXPECT_EQ(finals, sent.size());
        EXPECT_EQ(r.stats.connections, 4u); // curl, pipelined, two interleaved
    }
};

} // namespace

TEST_F(LiveCapture, TcpdumpOnLoopbackEthernet) {
    cap::Stats st;
    check(dir->file("lo.pcap"), &st);
    EXPECT_EQ(cap::CaptureReader::open(dir->file("lo.pcap")).linktype(), 1);
}

TEST_F(LiveCapture, TcpdumpOnAnySll2) {
    ASSERT_TRUE(captured) << failure;
    EXPECT_EQ(cap::CaptureReader::open(dir->file("any.pcap")).linktype(), 276);
    check(dir->file("any.pcap"));
}

TEST_F(LiveCapture, PcapngAndGzip) {
    ASSERT_TRUE(captured) << failure;
    ASSERT_EQ(run("editcap -F pcapng " + dir->file("any.pcap") + " " + dir->file("any.pcapng")), 0);
    check(dir->file("any.pcapng"));
    ASSERT_EQ(run("gzip -c " + dir->file("lo.pcap") + " > " + dir->file("lo.pcap.gz")), 0);
    check(dir->file("lo.pcap.gz"));
    ASSERT_EQ(run("gzip -c " + dir->file("any.pcapng") + " > " + dir->file("any.pcapng.gz")), 0);
    check(dir->file("any.pcapng.gz"));
}

TEST_F(LiveCapture, ReorderedAndDuplicatedRealCapture) {
    ASSERT_TRUE(captured) << failure;
    // Rewrite the real capture: swap neighbouring TCP data packets and duplicate some.
    auto reader = cap::CaptureReader::open(dir->file("lo.pcap"));
    std::vector<std::pair<cap::TimeNs, std::vector<std::uint8_t>>> packets;
    cap::Packet p;
    while (reader.next(p))
        packets.emplace_back(p.time, std::vector<std::uint8_t>(p.data.begin(), p.data.end()));
    std::vector<std::pair<cap::TimeNs, std::vector<std::uint8_t>>> out;
    cap::TcpSegment seg;
    for (std::size_t i = 0; i < packets.size(); ++i) {
        cap::Packet q;
        q.linktype = 1;
        q.data = packets[i].second;
        bool data = cap::decode_packet(q, seg) == cap::DecodeStatus::Tcp && !seg.payload.empty();
        if (data && i % 3 == 0) out.push_back(packets[i]); // duplicate
        if (data && i + 1 < packets.size() && i % 4 == 1) {
            out.push_back(packets[i + 1]); // swap with the next packet
            out.push_back(packets[i]);
            ++i;
            continue;
        }
        out.push_back(packets[i]);
    }
    {
        std::ofstream f(dir->file("rw.pcap"), std::ios::binary);
        auto le32 = [&f](std::uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
        le32(0xa1b23c4d); // nanosecond pcap
        le32(0x00040002);
        le32(0);
        le32(0);
        le32(262144);
        le32(1);
        for (const auto& [t, d] : out) {
            le32(static_cast<std::uint32_t>(t / 1000000000));
            le32(static_cast<std::uint32_t>(t % 1000000000));
            le32(static_cast<std::uint32_t>(d.size()));
            le32(static_cast<std::uint32_t>(d.size()));
            f.write(reinterpret_cast<const char*>(d.data()),
                    static_cast<std::streamsize>(d.size()));
        }
    }
    check(dir->file("rw.pcap"));
}

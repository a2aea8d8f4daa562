// Events per second through one output driver, one writer, batches of 50 JSON-sized lines (the
// collector's view: write() returns once the batch is accepted): `files` without fsync (the
// reference), `tcp` plain and TLS, `syslog` over tcp (octet counting; without and with the
// events' XML to parse for the header) and udp, `unix`. The
// receivers are threads of this process on 127.0.0.1 / a temp dir that read and drop; they share
// the machine's cores with the writer, as a local Logstash or rsyslog would. `redis`: batches of
// 100 events of 1 KB RPUSHed to a real redis-server started by the benchmark (TCP on 127.0.0.1, and
// its unix socket), each write() returning once Redis answered; the list is unlinked every 200
// batches (outside the timing) so that Redis's memory stays small.
#include "output/output.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <benchmark/benchmark.h>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

namespace fs = std::filesystem;

constexpr int kLines = 50;      // events per batch
constexpr int kLineBytes = 600; // bytes per event line, '\n' included

std::string make_batch() {
    std::string line(kLineBytes - 1, 'x');
    line.replace(0, 9, "{\"event\":");
    line += '\n';
    std::string batch;
    for (int i = 0; i < kLines; ++i)
        batch += line;
    return batch;
}

fs::path temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "wec-network-bench-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    return tmpl;
}

// Reads and drops whatever arrives on a socket bound to 127.0.0.1 (TCP: every connection, TLS
// with the certificate given) or to a unix datagram path.
class Sink {
public:
    enum class Kind { Tcp, Udp, Unix };

    Sink(Kind kind, const fs::path& unix_path = {}, SSL_CTX* tls = nullptr) : tls_(tls) {
        if (kind == Kind::Unix) {
            fd_ = ::socket(AF_UNIX, SOCK_DGRAM, 0);
            sockaddr_un a{};
            a.sun_family = AF_UNIX;
            std::strncpy(a.sun_path, unix_path.c_str(), sizeof a.sun_path - 1);
            ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        } else {
            fd_ = ::socket(AF_INET, kind == Kind::Tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
            socklen_t len = sizeof a;
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
            port_ = ntohs(a.sin_port);
        }
        int size = 8 << 20;
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        if (kind == Kind::Tcp) {
            ::listen(fd_, 8);
            main_ = std::thread([this] { accept_loop(); });
        } else {
            main_ = std::thread([this] { drain(fd_); });
        }
    }
    ~Sink() {
        stop_ = true;
        main_.join();
        {
            std::lock_guard lock(mutex_);
            for (int c : conns_)
                ::shutdown(c, SHUT_RDWR);
        }
        for (auto& t : workers_)
            t.join();
        for (int c : conns_)
            ::close(c);
        ::close(fd_);
    }
    int port() const { return port_; }

private:
    bool readable(int fd) {
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, 100) > 0;
    }
    void accept_loop() {
        while (!stop_) {
            if (!readable(fd_)) continue;
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) continue;
            std::lock_guard lock(mutex_);
            conns_.push_back(c);
            workers_.emplace_back([this, c] { drain_stream(c); });
        }
    }
    void drain(int fd) {
        std::vector<char> buf(1 << 17);
        while (!stop_)
            if (readable(fd)) ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    }
    void drain_stream(int fd) {
        // OpenSSL's socket BIO writes with write(2) (session tickets to a client that already
        // left): no SIGPIPE from this thread.
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
        std::vector<char> buf(1 << 17);
        if (!tls_) {
            while (::recv(fd, buf.data(), buf.size(), 0) > 0) {
            }
            return;
        }
        SSL* ssl = SSL_new(tls_);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1)
            while (SSL_read(ssl, buf.data(), static_cast<int>(buf.size())) > 0) {
            }
        SSL_free(ssl);
    }

    int fd_ = -1;
    int port_ = 0;
    SSL_CTX* tls_;
    std::atomic<bool> stop_{false};
    std::thread main_;
    std::mutex mutex_;
    std::vector<int> conns_;
    std::vector<std::thread> workers_;
};

void run(benchmark::State& state, wec::output::Driver& driver) {
    const std::string batch = make_batch();
    wec::output::BatchInfo info;
    info.client = "host";
    for (auto _ : state)
        driver.write(info, batch);
    state.SetItemsProcessed(state.iterations() * kLines);
    state.SetBytesProcessed(state.iterations() * std::int64_t{kLines} * kLineBytes);
}

void BM_Files(benchmark::State& state) {
    auto dir = temp_dir();
    {
        auto d = wec::output::make_driver("files", {{"path", (dir / "{client}.log").string()}});
        run(state, *d);
    }
    fs::remove_all(dir);
}

void BM_Tcp(benchmark::State& state) {
    Sink sink(Sink::Kind::Tcp);
    auto d =
        wec::output::make_driver("tcp", {{"address", "127.0.0.1:" + std::to_string(sink.port())}});
    run(state, *d);
}

void BM_TcpTls(benchmark::State& state) {
    auto dir = temp_dir();
    const std::string cert = (dir / "c.pem").string(), key = (dir / "k.pem").string();
    std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                      "-subj /CN=bench -addext subjectAltName=IP:127.0.0.1 -days 1 -keyout " +
                      key + " -out " + cert + " 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) {
        state.SkipWithError("openssl req failed");
        return;
    }
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_server_method()),
                                                          &SSL_CTX_free);
    SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str());
    SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM);
    {
        Sink sink(Sink::Kind::Tcp, {}, ctx.get());
        auto d = wec::output::make_driver(
            "tcp",
            {{"address", "127.0.0.1:" + std::to_string(sink.port())}, {"tls", true}, {"ca", cert}});
        run(state, *d);
    }
    fs::remove_all(dir);
}

void BM_SyslogTcp(benchmark::State& state) {
    Sink sink(Sink::Kind::Tcp);
    auto d = wec::output::make_driver(
        "syslog", {{"address", "tcp://127.0.0.1:" + std::to_string(sink.port())}});
    run(state, *d);
}

// The same with each event's XML given (as the collector does): the driver parses every event for
// its syslog header fields.
void BM_SyslogTcpParsingEvents(benchmark::State& state) {
    static constexpr std::string_view kXml =
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider "
        "Name='Microsoft-Windows-Security-Auditing' Guid='{54849625-5478-4994-A5BA-3E3B0328C30D}'/>"
        "<EventID>4624</EventID><Version>2</Version><Level>0</Level><Task>12544</Task><Opcode>0"
        "</Opcode><Keywords>0x8020000000000000</Keywords><TimeCreated SystemTime='2022-12-14T16:"
        "06:51.0643605Z'/><EventRecordID>114481</EventRecordID><Correlation/><Execution "
        "ProcessID='644' ThreadID='3908'/><Channel>Security</Channel><Computer>win10.windomain."
        "local</Computer><Security/></System><EventData><Data Name='SubjectUserSid'>S-1-5-18"
        "</Data><Data Name='SubjectUserName'>WIN10$</Data><Data Name='TargetUserName'>SYSTEM"
        "</Data><Data Name='LogonType'>5</Data><Data Name='IpAddress'>-</Data></EventData>"
        "</Event>";
    Sink sink(Sink::Kind::Tcp);
    auto d = wec::output::make_driver(
        "syslog", {{"address", "tcp://127.0.0.1:" + std::to_string(sink.port())}});
    const std::string batch = make_batch();
    std::vector<std::string_view> xml(kLines, kXml);
    wec::output::BatchInfo info;
    info.events = xml;
    for (auto _ : state)
        d->write(info, batch);
    state.SetItemsProcessed(state.iterations() * kLines);
    state.SetBytesProcessed(state.iterations() * std::int64_t{kLines} * kLineBytes);
}

void BM_SyslogUdp(benchmark::State& state) {
    Sink sink(Sink::Kind::Udp);
    auto d = wec::output::make_driver(
        "syslog", {{"address", "udp://127.0.0.1:" + std::to_string(sink.port())}});
    run(state, *d);
}

void BM_Unix(benchmark::State& state) {
    auto dir = temp_dir();
    {
        Sink sink(Sink::Kind::Unix, dir / "s.sock");
        auto d = wec::output::make_driver("unix", {{"path", (dir / "s.sock").string()}});
        run(state, *d);
    }
    fs::remove_all(dir);
}

// A redis-server of the benchmark (no persistence), on a free port of 127.0.0.1 and a unix socket
// in a temp dir; stopped by PID.
class RedisServer {
public:
    RedisServer() : dir_(temp_dir()) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        ::close(fd);
        std::vector<std::string> args{"redis-server",
                                      "--port",
                                      std::to_string(port_),
                                      "--bind",
                                      "127.0.0.1",
                                      "--save",
                                      "",
                                      "--appendonly",
                                      "no",
                                      "--daemonize",
                                      "no",
                                      "--dir",
                                      dir_.string(),
                                      "--unixsocket",
                                      socket(),
                                      "--unixsocketperm",
                                      "700",
                                      "--logfile",
                                      (dir_ / "redis.log").string()};
        std::vector<char*> argv;
        for (auto& arg : args)
            argv.push_back(arg.data());
        argv.push_back(nullptr);
        if (::posix_spawnp(&pid_, "redis-server", nullptr, nullptr, argv.data(), environ) != 0)
            throw std::runtime_error("cannot start redis-server");
        for (int i = 0; i < 200 && !connect_client(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (client_ < 0) throw std::runtime_error("redis-server does not answer");
    }
    ~RedisServer() {
        if (client_ >= 0) ::close(client_);
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        fs::remove_all(dir_);
    }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string socket() const { return (dir_ / "redis.sock").string(); }
    // UNLINK key (the list is freed in the background).
    void unlink(const std::string& key) {
        std::string cmd =
            "*2\r\n$6\r\nUNLINK\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n";
        ::send(client_, cmd.data(), cmd.size(), MSG_NOSIGNAL);
        char reply[64];
        ::recv(client_, reply, sizeof reply, 0); // ":1\r\n"
    }

private:
    bool connect_client() {
        client_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port_));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(client_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return true;
        ::close(client_);
        client_ = -1;
        return false;
    }

    fs::path dir_;
    int port_ = 0;
    pid_t pid_ = -1;
    int client_ = -1;
};

void run_redis(benchmark::State& state, bool unix_socket) {
    constexpr int kEvents = 100, kEventBytes = 1024, kUnlinkEvery = 200;
    RedisServer redis;
    auto d = wec::output::make_driver(
        "redis", {{"address", unix_socket ? "unix:" + redis.socket() : redis.address()},
                  {"list", "wec:bench"}});
    std::string line(kEventBytes - 1, 'x');
    line.replace(0, 9, "{\"event\":");
    line += '\n';
    std::string batch;
    for (int i = 0; i < kEvents; ++i)
        batch += line;
    wec::output::BatchInfo info;
    std::int64_t n = 0;
    for (auto _ : state) {
        d->write(info, batch);
        if (++n % kUnlinkEvery == 0) {
            state.PauseTiming();
            redis.unlink("wec:bench");
            state.ResumeTiming();
        }
    }
    state.SetItemsProcessed(state.iterations() * kEvents);
    state.SetBytesProcessed(state.iterations() * std::int64_t{kEvents} * kEventBytes);
}

void BM_RedisTcp(benchmark::State& state) {
    run_redis(state, false);
}

void BM_RedisUnix(benchmark::State& state) {
    run_redis(state, true);
}

BENCHMARK(BM_Files)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Tcp)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_TcpTls)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_SyslogTcp)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_SyslogTcpParsingEvents)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_SyslogUdp)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_Unix)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_RedisTcp)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_RedisUnix)->UseRealTime()->MinTime(2.0);

} // namespace

BENCHMARK_MAIN();

// Concurrent authenticated connections on one node (issue 15): P `wec serve` processes sharing one
// port with reuse_port (SO_REUSEPORT: the kernel spreads new connections over them), each under
// its own descriptor limit, on one SQLite store (WAL, shared by the processes); C client processes
// (forked), each below the descriptor limit, each with its own source addresses (--addresses per
// client, in turn: 127.0.0.2, 127.0.0.3, ...). One address has about 28,000 ephemeral ports
// towards one server port, and the kernel's search for a free one at connect() scans the ports
// already used to that destination: the more connections per address, the slower (with 16,700
// on one address it was most of the clients' CPU).
// Kerberos against a real MIT KDC (tests/support/krb5_realm), or with --tls HTTPS with client
// certificates (ECDSA P-256, TLS 1.3, a PKI made by tests/integration/make_test_pki.sh: root,
// issuing CA, server and client certificates; every connection a full handshake, its client
// certificate verified).
//
//   1. open N authenticated keep-alive connections in total (each client: N/C, at most --window
//      handshakes in flight);
//   2. the servers' memory: RSS summed over the processes, and PSS (/proc/PID/smaps_rollup: shared
//      pages, e.g. the libraries, divided among the processes that map them, so the sum counts
//      them once), and each process' share of the connections (its descriptors);
//   3. NEW sources (--new-sources, in this process, from 127.0.0.1) enumerate, open a push
//      connection and get an Events batch acked while all N are open: their latencies;
//   4. one Heartbeat on each of the N connections (all clients at once): how many are acked;
//   5. the memory again.
//
//   conn_bench [--connections N] [--servers P] [--clients C] [--addresses A] [--window W]
//              [--new-sources K] [--tls]
//
// Prints figures; the exit code is 1 if a connection, Heartbeat or new source failed.
// WEC_BENCH_EXE=PATH runs another `wec` binary (an older build).
#include "client/client.hpp"
#include "support/files.hpp"
#include "support/krb5_realm.hpp"
#include "support/proc_stats.hpp"
#include "support/process.hpp"
#include "support/subscription.hpp"
#include "support/temp_dir.hpp"
#include "wsman/wsman.hpp"

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace client = wec::client;
namespace asio = boost::asio;

const std::string kHost = "srv.windomain.local";
const std::string kTlsClient = "win10.windomain.local"; // CN of the client certificate

std::string wec_exe() {
    const char* other = std::getenv("WEC_BENCH_EXE");
    return other && *other ? other : WEC_EXE;
}

struct Args {
    std::size_t connections = 20000;
    std::size_t servers = 2;
    std::size_t clients = 2;
    std::size_t window = 64;
    std::size_t new_sources = 5;
    std::size_t addresses = 8; // source addresses per client process
    bool tls = false;          // HTTPS with client certificates instead of Kerberos
};

// A forked client process: commands on `to`, one result line per command on `from`.
struct Child {
    pid_t pid = -1;
    int to = -1;
    FILE* from = nullptr;

    Child() = default;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() {
        if (to >= 0) ::close(to);
        if (from) std::fclose(from);
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
    void send(char c) const {
        if (::write(to, &c, 1) != 1) throw std::runtime_error("client process gone");
    }
    std::string line() const {
        char buf[512];
        if (!std::fgets(buf, sizeof buf, from)) throw std::runtime_error("client process gone");
        return buf;
    }
};

// The client process: opens `count` connections from its `addresses` in turn, reports
// "opened OK FAILED SECONDS RSS-KB first-error"; on 'H' sends one Heartbeat on each, reports
// "heartbeats ACKED FAILED SECONDS"; on 'X' (or end of input) exits.
[[noreturn]] void client_main(const Args& a, std::size_t count,
                              const std::vector<std::string>& addresses,
                              const client::ConnectionOptions& base, const client::Source& source,
                              const wec::wsman::Subscription& sub, const client::Url& url,
                              int in_fd, int out_fd) {
    int code = 0;
    try {
        FILE* out = ::fdopen(out_fd, "w");
        if (!out) throw std::runtime_error("fdopen");
        asio::io_context ioc(1);
        auto co = base;
        std::vector<std::unique_ptr<client::AsyncConnection>> conns;
        conns.reserve(count);
        for (std::size_t i = 0; i < count; ++i) {
            co.source_address = addresses[i % addresses.size()];
            conns.push_back(std::make_unique<client::AsyncConnection>(ioc.get_executor(), co));
        }
        std::size_t next = 0, connected = 0, failed = 0;
        std::string first_error;
        auto start = std::chrono::steady_clock::now();
        std::function<void()> launch = [&] {
            while (next < conns.size() && next - connected - failed < a.window) {
                auto* c = conns[next++].get();
                asio::co_spawn(ioc, c->connect(url.target), [&](std::exception_ptr e) {
                    if (e) {
                        if (failed++ == 0) {
                            try {
                                std::rethrow_exception(e);
                            } catch (const std::exception& x) {
                                first_error = x.what();
                            }
                        }
                    } else {
                        ++connected;
                    }
                    launch();
                });
            }
        };
        launch();
        ioc.run();
        double secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::fprintf(out, "opened %zu %zu %.2f %lu %s\n", connected, failed, secs,
                     static_cast<unsigned long>(rss_kb(::getpid())),
                     first_error.substr(0, 300).c_str());
        std::fflush(out);
        for (;;) {
            char cmd = 0;
            if (::read(in_fd, &cmd, 1) != 1 || cmd != 'H') break;
            ioc.restart();
            std::size_t hb_next = 0, hb_done = 0, acked = 0, hb_failed = 0;
            start = std::chrono::steady_clock::now();
            std::function<void()> beat = [&] {
                while (hb_next < conns.size() && hb_next - hb_done < a.window) {
                    auto* c = conns[hb_next++].get();
                    if (!c->authenticated()) {
                        ++hb_done;
                        continue;
                    }
                    auto h = source.headers_for(sub);
                    std::string id = h.message_id;
                    asio::co_spawn(ioc, c->post(url.target, wec::wsman::build_heartbeat(h), true),
                                   [&, id](std::exception_ptr e, client::Response r) {
                                       ++hb_done;
                                       if (!e && r.status == 200 && r.message &&
                                           r.message->relates_to == id)
                                           ++acked;
                                       else
                                           ++hb_failed;
                                       beat();
                                   });
                }
            };
            beat();
            ioc.run();
            secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            std::fprintf(out, "heartbeats %zu %zu %.2f\n", acked, hb_failed, secs);
            std::fflush(out);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "client %s: %s\n", addresses.front().c_str(), e.what());
        code = 1;
    }
    std::fflush(nullptr);
    ::_exit(code); // never returns into the parent's objects (temp dir, servers)
}

// Sum over the servers: RSS and PSS in kB, descriptors.
struct Memory {
    long rss = 0, pss = 0;
    std::vector<std::size_t> fds;
};

Memory measure(const std::vector<std::unique_ptr<Process>>& servers) {
    Memory m;
    for (const auto& s : servers) {
        m.rss += static_cast<long>(rss_kb(s->pid()));
        m.pss += static_cast<long>(pss_kb(s->pid()));
        m.fds.push_back(open_fds(s->pid()));
    }
    return m;
}

std::string list(const std::vector<std::size_t>& v) {
    std::string s;
    for (auto x : v)
        s += (s.empty() ? "" : " ") + std::to_string(x);
    return s;
}

int run(const Args& a) {
    TempDir dir;
    std::optional<Krb5Realm> realm; // Kerberos only
    std::string ccache;
    std::vector<std::string> auth;          // the servers' authentication options
    std::map<std::string, std::string> env; // the servers' environment (Kerberos: the realm's)
    auto pki = [&](const std::string& f) { return (dir.path() / "pki" / f).string(); };
    client::TlsOptions tls;
    std::shared_ptr<client::TlsContext> tls_context; // shared by every connection of a process
    if (a.tls) {
        auto r =
            wec::testing::run({std::string(WEC_SOURCE_DIR) + "/tests/integration/make_test_pki.sh",
                               (dir.path() / "pki").string(), kHost});
        if (r.exit_code != 0) throw std::runtime_error("make_test_pki.sh: " + r.output);
        auth = {"--auth", "tls",           "--cert", pki("server.pem"), "--key", pki("server.key"),
                "--ca",   pki("root.pem"), "--ca",   pki("issuing.pem")};
        tls.cert_file = pki(kTlsClient + ".pem");
        tls.key_file = pki(kTlsClient + ".key");
        tls.ca_file = pki("root.pem");
        tls.server_name = kHost;
        tls_context = client::make_tls_context(tls);
    } else {
        realm.emplace();
        realm->add_principal("HTTP/" + kHost);
        realm->add_principal("HOST/" + kHost);
        realm->add_principal("WIN10$");
        auto keytab = realm->export_keytab({"HTTP/" + kHost, "HOST/" + kHost}, "wec.keytab");
        ccache = realm->kinit("WIN10$@" + realm->realm(),
                              realm->export_keytab({"WIN10$"}, "win10.keytab"));
        realm->apply_env();
        ::setenv("KRB5CCNAME", ccache.c_str(), 1);
        auth = {"--auth", "kerberos", "--keytab", keytab.string()};
        env = realm->env();
    }

    std::string db = "sqlite:" + (dir.path() / "wec.db").string();
    auto sub_file = dir.path() / "security.toml";
    // Only the new sources send events (a few, each to its own file).
    std::ofstream(sub_file) << wec::testing::security_subscription(
        dir.path() / "events" / "{client}.json", "content_format = \"RenderedText\"\n");
    auto r = wec::testing::run({wec_exe(), "sub", "apply", sub_file.string(), "--db", db});
    if (r.exit_code != 0) throw std::runtime_error("wec sub apply: " + r.output);
    auto cfg = dir.path() / "wec.toml";
    std::ofstream(cfg) << "log_level = \"info\"\n[limits]\nidle_timeout = 3600\n"
                       << "max_connections = 19900\n";

    int port = free_port();
    std::vector<std::unique_ptr<Process>> servers;
    for (std::size_t n = 0; n < a.servers; ++n) {
        std::vector<std::string> argv{wec_exe(),     "serve",
                                      "--config",    cfg.string(),
                                      "--listen",    "127.0.0.1:" + std::to_string(port),
                                      "--reuse-port"};
        argv.insert(argv.end(), auth.begin(), auth.end());
        argv.insert(argv.end(),
                    {"--hostname", kHost, "--db", db, "--node-name", "p" + std::to_string(n + 1)});
        servers.push_back(std::make_unique<Process>(
            argv, env, dir.path() / ("serve-" + std::to_string(n + 1) + ".log")));
        if (!servers.back()->wait_for_output("wec serve started", 20s))
            throw std::runtime_error("wec serve did not start:\n" + servers.back()->output());
    }
    std::printf("== %zu connections, %zu wec serve processes (reuse_port, one SQLite store), %zu "
                "client processes x %zu source addresses, %s\n",
                a.connections, a.servers, a.clients, a.addresses,
                a.tls ? "TLS 1.3 with client certificates (ECDSA P-256)" : "Kerberos AES256");

    client::SourceOptions so;
    if (a.tls) {
        so.manager = client::Url::parse("https://127.0.0.1:" + std::to_string(port) + "/wsman/");
        so.tls = tls;
        so.tls_context = tls_context;
    } else {
        so.manager = client::Url::parse("http://127.0.0.1:" + std::to_string(port) +
                                        "/wsman/SubscriptionManager/WEC");
        so.service = "HTTP@" + kHost;
        so.ccache = ccache;
    }
    so.timeout = 120s;
    client::Source source(so); // also puts the service ticket in the ccache the clients share
    auto subs = source.enumerate();
    source.end();
    if (subs.empty()) throw std::runtime_error("no subscription offered");
    auto sub = subs.front();
    auto url = source.push_url(sub);
    client::ConnectionOptions co;
    co.host = url.host;
    co.port = url.port;
    co.sldc_header = true;
    co.timeout = 300s;
    if (a.tls) {
        co.tls = true;
        co.tls_options = tls;
        co.tls_context = tls_context;
    } else {
        co.service = "HTTP@" + kHost;
        co.ccache = ccache;
    }

    auto idle = measure(servers);
    double cpu0 = 0;
    for (const auto& s : servers)
        cpu0 += cpu_seconds(s->pid());
    auto start = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<Child>> children;
    for (std::size_t i = 0; i < a.clients; ++i) {
        std::size_t count = a.connections / a.clients + (i < a.connections % a.clients ? 1 : 0);
        std::vector<std::string> addresses;
        for (std::size_t k = 0; k < a.addresses; ++k)
            addresses.push_back("127.0.0." + std::to_string(2 + i * a.addresses + k));
        int down[2], up[2];
        if (::pipe(down) != 0 || ::pipe(up) != 0) throw std::runtime_error("pipe failed");
        std::fflush(nullptr);
        pid_t pid = ::fork();
        if (pid < 0) throw std::runtime_error("fork failed");
        if (pid == 0) {
            ::close(down[1]);
            ::close(up[0]);
            client_main(a, count, addresses, co, source, sub, url, down[0], up[1]);
        }
        ::close(down[0]);
        ::close(up[1]);
        auto c = std::make_unique<Child>();
        c->pid = pid;
        c->to = down[1];
        c->from = ::fdopen(up[0], "r");
        children.push_back(std::move(c));
    }

    std::size_t opened = 0, failed = 0;
    double slowest = 0;
    unsigned long client_rss = 0; // kB, summed over the client processes
    for (std::size_t i = 0; i < children.size(); ++i) {
        std::istringstream in(children[i]->line());
        std::string word, error;
        std::size_t ok = 0, bad = 0;
        double secs = 0;
        unsigned long rss = 0;
        in >> word >> ok >> bad >> secs >> rss;
        std::getline(in, error);
        client_rss += rss;
        opened += ok;
        failed += bad;
        slowest = std::max(slowest, secs);
        if (bad) std::printf("client %zu: %zu failed:%s", i + 1, bad, error.c_str());
    }
    double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double cpu = -cpu0;
    for (const auto& s : servers)
        cpu += cpu_seconds(s->pid());
    std::this_thread::sleep_for(1s);
    auto open = measure(servers);
    auto per = [](long kb, long base, std::size_t n) {
        return n ? static_cast<double>(kb - base) / static_cast<double>(n) : 0.0;
    };
    std::printf("connected         %zu ok, %zu failed in %.1f s (%.0f handshakes/s; server CPU "
                "%.0f us each)\n",
                opened, failed, open_s, static_cast<double>(opened) / open_s,
                opened ? cpu / static_cast<double>(opened) * 1e6 : 0.0);
    std::printf("descriptors       per server process: %s (idle: %s)\n", list(open.fds).c_str(),
                list(idle.fds).c_str());
    std::printf("client RSS (sum)  %.1f MB (the load generator's %zu processes)\n",
                static_cast<double>(client_rss) / 1024, children.size());
    std::printf("server RSS (sum)  %.1f MB idle, %.1f MB open (%.1f KB/connection)\n",
                static_cast<double>(idle.rss) / 1024, static_cast<double>(open.rss) / 1024,
                per(open.rss, idle.rss, opened));
    std::printf("server PSS (sum)  %.1f MB idle, %.1f MB open (%.1f KB/connection)\n",
                static_cast<double>(idle.pss) / 1024, static_cast<double>(open.pss) / 1024,
                per(open.pss, idle.pss, opened));

    // New sources while every connection is open: enumerate + push connection + Events acked.
    std::size_t new_failed = 0;
    for (std::size_t k = 0; k < a.new_sources; ++k) {
        auto t0 = std::chrono::steady_clock::now();
        try {
            auto o = so;
            o.machine_id = "new-" + std::to_string(k + 1) + ".windomain.local";
            client::Source fresh(o);
            auto offered = fresh.enumerate();
            fresh.end();
            if (offered.empty()) throw std::runtime_error("no subscription offered");
            auto t1 = std::chrono::steady_clock::now();
            client::EventGenerator gen(o.machine_id, k + 7);
            std::vector<std::string> events;
            for (int e = 0; e < 20; ++e)
                events.push_back(gen.next());
            auto ack = fresh.send_events(offered.front(), events, gen.bookmark());
            auto t2 = std::chrono::steady_clock::now();
            std::printf("new source %zu     enumerate %.1f ms, Events (20) acked %.1f ms later "
                        "(push connection + authentication + batch), total %.1f ms\n",
                        k + 1, std::chrono::duration<double, std::milli>(t1 - t0).count(),
                        std::chrono::duration<double, std::milli>(t2 - t1).count(),
                        std::chrono::duration<double, std::milli>(t2 - t0).count());
            (void)ack;
        } catch (const std::exception& e) {
            ++new_failed;
            std::printf("new source %zu     FAILED: %s\n", k + 1, e.what());
        }
    }

    // One Heartbeat on every connection, all clients at once.
    start = std::chrono::steady_clock::now();
    for (const auto& c : children)
        c->send('H');
    std::size_t acked = 0, hb_failed = 0;
    for (const auto& c : children) {
        std::istringstream in(c->line());
        std::string word;
        std::size_t ok = 0, bad = 0;
        in >> word >> ok >> bad;
        acked += ok;
        hb_failed += bad;
    }
    double hb_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::this_thread::sleep_for(1s);
    auto hb = measure(servers);
    std::printf("heartbeats        %zu acked, %zu failed in %.1f s\n", acked, hb_failed, hb_s);
    std::printf("descriptors       per server process: %s\n", list(hb.fds).c_str());
    std::printf("server RSS (sum)  %.1f MB after one Heartbeat on each (%.1f KB/connection)\n",
                static_cast<double>(hb.rss) / 1024, per(hb.rss, idle.rss, acked));
    std::printf("server PSS (sum)  %.1f MB after one Heartbeat on each (%.1f KB/connection)\n",
                static_cast<double>(hb.pss) / 1024, per(hb.pss, idle.pss, acked));
    for (const auto& s : servers)
        if (!s->running()) {
            std::printf("a wec serve process exited:\n%s\n", s->output().c_str());
            return 1;
        }
    // The servers close first, so that the TIME_WAIT entries are theirs (local port: the one
    // port of the benchmark), not N entries on the clients' ephemeral ports, which would keep
    // other programs from binding those ports for a minute.
    start = std::chrono::steady_clock::now();
    for (const auto& s : servers)
        s->signal(SIGTERM);
    int stopped = 0;
    for (const auto& s : servers)
        stopped += s->wait(120s) == 0;
    std::printf("stopped           %d of %zu processes cleanly (SIGTERM) in %.1f s\n", stopped,
                servers.size(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    for (const auto& c : children)
        c->send('X');
    children.clear();
    if (static_cast<std::size_t>(stopped) != servers.size()) return 1;
    return failed == 0 && hb_failed == 0 && new_failed == 0 && acked == opened ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::size_t {
            if (i + 1 >= argc) throw std::runtime_error(arg + " needs a value");
            return std::stoul(argv[++i]);
        };
        if (arg == "--connections")
            a.connections = value();
        else if (arg == "--servers")
            a.servers = value();
        else if (arg == "--clients")
            a.clients = value();
        else if (arg == "--window")
            a.window = value();
        else if (arg == "--addresses")
            a.addresses = value();
        else if (arg == "--new-sources")
            a.new_sources = value();
        else if (arg == "--tls")
            a.tls = true;
        else {
            std::fprintf(stderr, "usage: conn_bench [--connections N] [--servers P] [--clients C] "
                                 "[--addresses A] [--window W] [--new-sources K] [--tls]\n");
            return 2;
        }
    }
    if (a.servers == 0 || a.clients == 0 || a.addresses == 0 || a.clients * a.addresses > 250) {
        std::fprintf(stderr, "conn_bench: --servers >= 1, --clients and --addresses >= 1, "
                             "--clients x --addresses <= 250 (127.0.0.2 to 127.0.0.251)\n");
        return 2;
    }
    try {
        return run(a);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "conn_bench: %s\n", e.what());
        return 1;
    }
}

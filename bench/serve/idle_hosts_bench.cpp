// Memory of `wec replay`'s simulated hosts when idle (issue 13): N hosts (default 10,000) of the
// client core's load generator (client::run_load, as `wec replay --idle` runs them) enumerate,
// send one event each, then stay connected to a real `wec serve` (Kerberos, real MIT KDC),
// sending a Heartbeat every heartbeat interval. Prints this process's RSS before, once every
// host is connected, and after a few heartbeat rounds, per host; and the collector's RSS.
// A plain executable: it starts its own KDC and server and prints figures.
//
//   idle_hosts_bench [--hosts N] [--threads N] [--heartbeat SECONDS] [--idle SECONDS]
#include "client/client.hpp"
#include "client/load.hpp"
#include "support/files.hpp"
#include "support/krb5_realm.hpp"
#include "support/proc_stats.hpp"
#include "support/process.hpp"
#include "support/wef_realm.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace client = wec::client;

const std::string kHost = "srv.windomain.local";

struct Args {
    std::size_t hosts = 10000;
    std::size_t threads = 4;
    unsigned heartbeat = 10; // s, the subscription's heartbeat interval
    unsigned idle = 40;      // s each host stays after its event (> 2 heartbeat intervals)
};

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        const auto v = std::strtoul(argv[i + 1], nullptr, 10);
        if (k == "--hosts")
            a.hosts = v;
        else if (k == "--threads")
            a.threads = v;
        else if (k == "--heartbeat")
            a.heartbeat = static_cast<unsigned>(v);
        else if (k == "--idle")
            a.idle = static_cast<unsigned>(v);
        else {
            std::fprintf(stderr, "unknown option %s\n", k.c_str());
            std::exit(2);
        }
    }
    return a;
}

double mb(std::uint64_t kb) {
    return static_cast<double>(kb) / 1024.0;
}

} // namespace

int main(int argc, char** argv) {
    const Args a = parse(argc, argv);
    WefRealm realm(kHost);
    realm.realm.apply_env();
    ::setenv("KRB5CCNAME", realm.ccache.c_str(), 1);
    TempDir dir;
    const std::string db = "sqlite:" + (dir.path() / "wec.db").string();
    {
        std::ofstream(dir.path() / "security.toml")
            << "name = \"security\"\nquery = '<QueryList><Query Id=\"0\"><Select "
               "Path=\"Security\">*</Select></Query></QueryList>'\nheartbeat_interval = "
            << a.heartbeat << "\n[[outputs]]\ndriver = \"files\"\npath = \""
            << (dir.path() / "events" / "{client}.json").string() << "\"\nformat = \"json\"\n";
        std::ofstream(dir.path() / "wec.toml")
            << "log_level = \"info\"\n[limits]\nidle_timeout = 600\nmax_connections = 15000\n";
    }
    auto r = run({WEC_EXE, "sub", "apply", (dir.path() / "security.toml").string(), "--db", db});
    if (r.exit_code != 0) {
        std::fprintf(stderr, "wec sub apply: %s\n", r.output.c_str());
        return 1;
    }
    const int port = free_port();
    Process server({WEC_EXE, "serve", "--config", (dir.path() / "wec.toml").string(), "--listen",
                    "127.0.0.1:" + std::to_string(port), "--auth", "kerberos", "--keytab",
                    realm.service_keytab.string(), "--hostname", kHost, "--db", db},
                   realm.realm.env(), dir.path() / "serve.log");
    if (!server.wait_for_output("wec serve started", 20s)) {
        std::fprintf(stderr, "wec serve did not start:\n%s\n", server.output().c_str());
        return 1;
    }
    const auto server_before = rss_kb(server.pid());

    client::LoadOptions lo;
    lo.source.manager = client::Url::parse("http://127.0.0.1:" + std::to_string(port) +
                                           "/wsman/SubscriptionManager/WEC");
    lo.source.service = "HTTP@" + kHost;
    lo.source.ccache = realm.ccache;
    lo.events = a.hosts; // one event each
    lo.batch = 1;
    lo.hosts = a.hosts;
    lo.threads = a.threads;
    lo.pregenerated = 16;
    lo.idle = std::chrono::seconds(a.idle);

    const auto before = rss_kb(::getpid());
    client::LoadProgress progress;
    client::LoadResult result;
    const auto start = std::chrono::steady_clock::now();
    std::thread load([&] { result = client::run_load(lo, &progress); });
    while (progress.events_acked < a.hosts && progress.batches_failed == 0 &&
           std::chrono::steady_clock::now() - start < 900s)
        std::this_thread::sleep_for(100ms);
    const double setup_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto connected_rss = rss_kb(::getpid());
    const auto connected = progress.hosts_connected.load();
    const auto server_connected = rss_kb(server.pid());
    // Two heartbeat rounds while idle (each host idles `idle` seconds from its own Ack; the Acks
    // come within a few seconds once every host is set up).
    std::this_thread::sleep_for(std::chrono::seconds(2 * a.heartbeat + 1));
    const auto heartbeat_rss = rss_kb(::getpid());
    const auto heartbeats = progress.heartbeats.load();
    const auto server_heartbeat = rss_kb(server.pid());
    load.join();

    std::printf("hosts             %zu (%zu threads), %llu connected, set-up %.1f s\n", a.hosts,
                a.threads, static_cast<unsigned long long>(connected), setup_s);
    std::printf("client RSS        %.1f MB before, %.1f MB connected, %.1f MB heartbeating "
                "(%llu Heartbeats acked, interval %u s)\n",
                mb(before), mb(connected_rss), mb(heartbeat_rss),
                static_cast<unsigned long long>(heartbeats), a.heartbeat);
    const double hosts = static_cast<double>(std::max<std::size_t>(a.hosts, 1));
    std::printf("per idle host     %.1f KB connected, %.1f KB heartbeating\n",
                static_cast<double>(connected_rss - before) / hosts,
                static_cast<double>(heartbeat_rss - before) / hosts);
    std::printf("server RSS        %.1f MB before, %.1f MB connected, %.1f MB heartbeating "
                "(%.1f KB per connection)\n",
                mb(server_before), mb(server_connected), mb(server_heartbeat),
                static_cast<double>(server_heartbeat - server_before) / hosts);
    std::printf("load result       %llu events acked, %llu batches failed, %llu retries, %llu "
                "heartbeats, errors: %zu\n",
                static_cast<unsigned long long>(result.events_acked),
                static_cast<unsigned long long>(result.batches_failed),
                static_cast<unsigned long long>(result.retries),
                static_cast<unsigned long long>(result.heartbeats), result.errors.size());
    for (const auto& e : result.errors)
        std::printf("error             %s\n", e.c_str());
    if (!result.setup_error.empty())
        std::printf("setup error       %s\n", result.setup_error.c_str());
    return result.batches_failed == 0 && result.events_acked == a.hosts ? 0 : 1;
}

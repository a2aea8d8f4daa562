// Soak, long form (issue 9): for each listener kind — Kerberos (`Authorization: Kerberos`), SPNEGO
// (`Negotiate`), TLS with a client certificate, NTLM (raw NTLMSSP under `Negotiate`, on a negotiate
// listener), Basic over HTTPS — the real `wec serve` binary with a real MIT KDC, a users file or
// an openssl-CLI PKI and one subscription, driven by the client core (tests/support/soak.hpp, the
// driver of the short form in tests/integration/serve_soak_test):
//  1. --cycles N connect → authenticate → request → close cycles (Enumerate, Heartbeat, Events in
//     turn; --in-flight at a time);
//  2. --requests N keep-alive requests (Heartbeat, Events) spread over --connections connections.
// After a warm-up (--warmup cycles, then 2 x --warmup keep-alive requests on two rounds of
// connections), prints the server's RSS and open descriptors before and after each phase (after:
// once the server has closed what the clients closed), the rate and the CPU used. --rounds N
// repeats both phases (does the growth level off?). Exit code 1 when a request failed or a phase
// left descriptors or more than --max-rss-growth MB behind.
//
//   soak_bench [--cycles N] [--requests N] [--connections N] [--in-flight N] [--warmup N]
//              [--rounds N] [--kinds kerberos,spnego,tls,ntlm,basic] [--max-rss-growth MB]
#include "support/soak.hpp"

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace wec::testing;

struct Args {
    std::size_t cycles = 20000;
    std::size_t requests = 20000;
    std::size_t connections = 50;
    std::size_t in_flight = 8;
    std::size_t warmup = 500;
    std::size_t rounds = 1;
    long max_rss_growth_mb = 8;
    std::vector<SoakKind> kinds = {SoakKind::Kerberos, SoakKind::Spnego, SoakKind::Tls,
                                   SoakKind::Ntlm, SoakKind::Basic};
};

// Prints one phase; returns false when it failed a request or left something behind.
bool report(const char* phase, const SoakResult& r, const Footprint& before, const Footprint& after,
            long max_rss_growth_kb) {
    long rss_growth = after.rss_kb - before.rss_kb;
    long fd_growth = after.fds - before.fds;
    std::printf("  %-10s %zu ok, %zu failed in %.1f s (%.0f/s); RSS %.1f -> %.1f MB (%+.1f MB); "
                "fds %ld -> %ld (%+ld)\n",
                phase, r.ok, r.failed, r.seconds, r.per_second(),
                static_cast<double>(before.rss_kb) / 1024, static_cast<double>(after.rss_kb) / 1024,
                static_cast<double>(rss_growth) / 1024, before.fds, after.fds, fd_growth);
    std::printf("  %-10s CPU server %.1f s, client %.1f s\n", "", r.server_cpu, r.client_cpu);
    if (r.failed) std::printf("  first error: %s\n", r.first_error.c_str());
    std::fflush(stdout);
    return r.failed == 0 && fd_growth <= 0 && rss_growth <= max_rss_growth_kb;
}

bool soak(const Args& a, SoakKind kind) {
    std::printf("== %s: %zu cycles (%zu in flight), %zu keep-alive requests on %zu connections, "
                "warm-up %zu\n",
                to_string(kind), a.cycles, a.in_flight, a.requests, a.connections, a.warmup);
    SoakServer s(kind, WEC_EXE);
    const long max_kb = a.max_rss_growth_mb * 1024;
    auto start = footprint(s.pid());
    auto warm = s.warm_up(a.warmup, 2 * a.warmup, a.connections);
    auto before = s.quiet();
    std::printf("  warm-up    %zu ok, %zu failed; RSS %.1f -> %.1f MB; fds %ld -> %ld\n", warm.ok,
                warm.failed, static_cast<double>(start.rss_kb) / 1024,
                static_cast<double>(before.rss_kb) / 1024, start.fds, before.fds);
    bool ok = warm.failed == 0;

    for (std::size_t round = 0; round < a.rounds; ++round) {
        auto r = s.cycles(a.cycles, a.in_flight);
        auto after = s.settle(before.fds);
        ok &= report("cycles", r, before, after, max_kb);
        before = after;
        r = s.keep_alive(a.requests, a.connections);
        after = s.settle(before.fds);
        ok &= report("keep-alive", r, before, after, max_kb);
        before = after;
    }
    if (!s.running()) {
        auto log = s.log();
        std::printf("  wec serve is gone; the end of its log:\n%s\n",
                    log.substr(log.size() > 4000 ? log.size() - 4000 : 0).c_str());
        ok = false;
    }
    return ok;
}

} // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--cycles") {
            a.cycles = std::stoul(value());
        } else if (arg == "--requests") {
            a.requests = std::stoul(value());
        } else if (arg == "--connections") {
            a.connections = std::stoul(value());
        } else if (arg == "--in-flight") {
            a.in_flight = std::stoul(value());
        } else if (arg == "--warmup") {
            a.warmup = std::stoul(value());
        } else if (arg == "--rounds") {
            a.rounds = std::stoul(value());
        } else if (arg == "--max-rss-growth") {
            a.max_rss_growth_mb = std::stol(value());
        } else if (arg == "--kinds") {
            a.kinds.clear();
            std::stringstream ss(value());
            for (std::string k; std::getline(ss, k, ',');) {
                bool known = false;
                for (auto kind : {SoakKind::Kerberos, SoakKind::Spnego, SoakKind::Tls,
                                  SoakKind::Ntlm, SoakKind::Basic})
                    if (k == to_string(kind)) {
                        a.kinds.push_back(kind);
                        known = true;
                    }
                if (!known) {
                    std::fprintf(stderr, "unknown kind %s (kerberos, spnego, tls, ntlm, basic)\n",
                                 k.c_str());
                    return 2;
                }
            }
        } else {
            std::fprintf(stderr, "usage: soak_bench [--cycles N] [--requests N] [--connections N] "
                                 "[--in-flight N]\n"
                                 "                  [--warmup N] [--rounds N] [--kinds "
                                 "kerberos,spnego,tls,ntlm,basic] [--max-rss-growth MB]\n");
            return 2;
        }
    }
    bool ok = true;
    try {
        for (auto kind : a.kinds)
            ok &= soak(a, kind);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "soak_bench: %s\n", e.what());
        return 3;
    }
    return ok ? 0 : 1;
}

// `wec serve`: the source-initiated collector. Options override the config file; SIGTERM/SIGINT
// stop it gracefully (in-flight batches finish, heartbeats are flushed), SIGHUP re-opens outputs
// and reloads TLS certificates and CRLs. Under systemd it speaks sd_notify (lib/common/sd_notify).
#include "commands.hpp"
#include "common/log.hpp"
#include "common/sd_notify.hpp"
#include "config/config.hpp"
#include "server/http_server.hpp"
#include "server/service.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <malloc.h>
#include <memory>
#include <string>
#include <vector>

namespace wec::tool {
namespace {

struct ServeOptions {
    std::string config;
    std::string listen;
    std::string auth;
    std::string keytab;
    std::string ntlm_users;
    bool ntlm_allow_v1 = false;
    std::string basic_users;
    std::string hostname;
    std::string db;
    std::string node_name;
    std::string log_level;
    std::string metrics;
    std::string cert;
    std::string key;
    std::vector<std::string> ca;
    std::vector<std::string> crl;
    bool proxy_protocol = false;
    bool reuse_port = false;
};

LogLevel level_of(const std::string& s) {
    if (s == "debug") return LogLevel::Debug;
    if (s == "warn") return LogLevel::Warn;
    if (s == "error") return LogLevel::Error;
    return LogLevel::Info;
}

int run_serve(const ServeOptions& o) {
    config::ServeConfig cfg =
        o.config.empty() ? config::ServeConfig{} : config::load_file(o.config);
    if (!o.hostname.empty()) cfg.hostname = o.hostname;
    if (!o.db.empty()) cfg.db = o.db;
    if (!o.node_name.empty()) cfg.node_name = o.node_name;
    if (!o.log_level.empty()) cfg.log_level = o.log_level;
    if (!o.metrics.empty()) cfg.metrics_address = o.metrics;
    if (!o.listen.empty() || !o.auth.empty() || !o.keytab.empty() || !o.cert.empty() ||
        !o.key.empty() || !o.ca.empty() || !o.crl.empty() || o.proxy_protocol || o.reuse_port ||
        !o.ntlm_users.empty() || o.ntlm_allow_v1 || !o.basic_users.empty()) {
        // Command-line listener settings replace the file's first listener (or create it).
        if (cfg.listeners.empty()) cfg.listeners.emplace_back();
        auto& l = cfg.listeners.front();
        if (!o.listen.empty()) l.address = o.listen;
        if (!o.auth.empty())
            l.auth = o.auth == "tls"         ? config::AuthKind::Tls
                     : o.auth == "negotiate" ? config::AuthKind::Negotiate
                     : o.auth == "basic"     ? config::AuthKind::Basic
                                             : config::AuthKind::Kerberos;
        if (!o.ntlm_users.empty()) l.ntlm_users = o.ntlm_users;
        if (o.ntlm_allow_v1) l.ntlm_allow_v1 = true;
        if ((!l.ntlm_users.empty() || l.ntlm_allow_v1) && l.auth != config::AuthKind::Negotiate)
            throw config::ConfigError("--ntlm-users and --ntlm-allow-v1 need --auth negotiate");
        if (!o.basic_users.empty()) l.basic_users = o.basic_users;
        if (!l.basic_users.empty() && l.auth != config::AuthKind::Basic)
            throw config::ConfigError("--basic-users needs --auth basic");
        if (!o.keytab.empty()) l.keytab = o.keytab;
        if (!o.cert.empty()) l.cert = o.cert;
        if (!o.key.empty()) l.key = o.key;
        if (!o.ca.empty()) l.ca = o.ca;
        if (!o.crl.empty()) l.crl = o.crl;
        if (o.proxy_protocol) l.proxy_protocol = true;
        if (o.reuse_port) l.reuse_port = true;
    }
    if (cfg.listeners.empty()) {
        // Embedded defaults: Kerberos on 5985 with ./var/wec.keytab, and HTTPS on 5986 when a lab
        // PKI exists under ./var/pki (`make run` creates one with `wec pki init`).
        cfg.listeners.emplace_back();
        if (std::filesystem::exists("./var/pki/server.pem")) {
            config::Listener tls;
            tls.auth = config::AuthKind::Tls;
            tls.cert = "./var/pki/server.pem";
            tls.key = "./var/pki/server.key";
            tls.ca = {"./var/pki/ca.pem"};
            cfg.listeners.push_back(std::move(tls));
        }
    }
    for (auto& l : cfg.listeners)
        if (l.auth == config::AuthKind::Kerberos && l.keytab.empty()) l.keytab = "./var/wec.keytab";
    // (A negotiate listener without a keytab serves NTLM only.)

    // Request bodies are large (hundreds of KB) and short-lived: keep them on the heap instead of
    // fresh mmap()s, and keep freed memory instead of returning it to the kernel, which would
    // zero it again for the next request (5% of the collector's CPU before this).
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);

    // Signals are handled by this thread only: block them before any thread starts.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    Logger log(stderr, level_of(cfg.log_level));
    // Under systemd (Type=notify): READY=1 once listening, RELOADING=1/READY=1 around SIGHUP,
    // STOPPING=1 on SIGTERM, WATCHDOG=1 at half of WatchdogSec=. A refused notification is logged
    // and serving goes on.
    auto systemd = SystemdNotifier::from_environment();
    auto tell = [&](auto&& send) {
        try {
            send();
        } catch (const NotifyError& e) {
            log.warn("systemd notification failed", {{"error", e.what()}});
        }
    };
    server::CollectorService service(log, cfg);
    service.start();
    log.info("wec serve started", {{"version", WEC_VERSION}});
    for (const auto& line : service.summary())
        log.info(line);
    tell([&] { systemd.ready(); });

    using Clock = SystemdNotifier::Clock;
    auto next_tick = Clock::now() + std::chrono::seconds(1);
    for (;;) {
        auto wake = std::min(next_tick, systemd.next_watchdog().value_or(next_tick));
        auto wait = std::max(Clock::duration::zero(), wake - Clock::now());
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
        timespec timeout{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
        int sig = sigtimedwait(&signals, nullptr, &timeout);
        if (sig == SIGHUP) {
            log.info("SIGHUP: re-opening output files, reloading TLS certificates and CRLs");
            tell([&] { systemd.reloading(); });
            service.reopen_outputs();
            service.reload_tls();
            tell([&] { systemd.ready(); });
        } else if (sig == SIGTERM || sig == SIGINT) {
            log.info("stopping: finishing requests in flight");
            tell([&] { systemd.stopping(); });
            break;
        }
        const auto now = Clock::now();
        tell([&] { systemd.watchdog_if_due(now); });
        if (sig > 0 || now >= next_tick) {
            service.tick();
            next_tick = Clock::now() + std::chrono::seconds(1);
        }
    }
    service.stop();
    log.info("wec serve stopped");
    return kOk;
}

} // namespace

void add_serve(CLI::App& app, Action& action) {
    auto opts = std::make_shared<ServeOptions>();
    auto* sub = app.add_subcommand(
        "serve", "Run the collector (HTTP + Kerberos/NTLM, HTTPS + client certificates)");
    sub->add_option("-c,--config", opts->config,
                    "TOML configuration file (see docs/configuration.md)");
    sub->add_option("--listen", opts->listen,
                    "ADDRESS:PORT of the listener (default 0.0.0.0:5985)");
    sub->add_option("--auth", opts->auth, "Authentication of that listener")
        ->check(CLI::IsMember({"basic", "kerberos", "negotiate", "tls"}));
    sub->add_option("--keytab", opts->keytab, "Keytab with the HTTP/ and HOST/ service keys");
    sub->add_option("--ntlm-users", opts->ntlm_users,
                    "Negotiate: NTLM accounts file (DOMAIN:USER:PASSWORD lines, not readable by "
                    "others); without it NTLM goes to the domain through winbind");
    sub->add_option("--basic-users", opts->basic_users,
                    "Basic (HTTPS only, labs): USER:HASH lines, crypt(3) yescrypt or SHA-512 "
                    "hashes, not readable by others");
    sub->add_flag("--ntlm-allow-v1", opts->ntlm_allow_v1,
                  "Negotiate: accept NTLMv1 and LM responses (refused by default)");
    sub->add_option("--cert", opts->cert, "TLS: server certificate (PEM, with its chain)");
    sub->add_option("--key", opts->key, "TLS: server private key (PEM)");
    sub->add_option("--ca", opts->ca, "TLS: CA bundle issuing client certificates (repeatable)");
    sub->add_option("--crl", opts->crl, "TLS: CRL file (PEM, repeatable)");
    sub->add_flag("--proxy-protocol", opts->proxy_protocol,
                  "That listener is behind a load balancer sending PROXY protocol v1/v2 headers "
                  "(haproxy send-proxy-v2); connections without one are refused");
    sub->add_flag("--reuse-port", opts->reuse_port,
                  "That listener's port may be shared by several wec serve processes of this user, "
                  "each with --reuse-port (SO_REUSEPORT: the kernel spreads connections over "
                  "them)");
    sub->add_option("--hostname", opts->hostname, "Public host name advertised to sources");
    sub->add_option("--db", opts->db, "State store URL (default sqlite:./var/wec.db)");
    sub->add_option("--node-name", opts->node_name,
                    "Node name, in JSON events (OpenWEC.Node) and output paths ({node})");
    sub->add_option("--log-level", opts->log_level, "debug, info, warn or error")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
    sub->add_option("--metrics", opts->metrics,
                    "ADDRESS:PORT of a plain-HTTP listener serving /metrics (Prometheus), /healthz "
                    "and /readyz (see docs/metrics.md)");
    sub->footer(
        "Examples:\n"
        "  wec serve --listen 127.0.0.1:5985 --auth kerberos --keytab wec.keytab \\\n"
        "            --hostname wec.example.org --db sqlite:/var/lib/wec/wec.db\n"
        "  wec serve --listen 127.0.0.1:5986 --auth tls --cert server.pem --key server.key \\\n"
        "            --ca ca.pem --hostname wec.example.org\n"
        "  wec serve --listen 127.0.0.1:5985 --auth negotiate --keytab wec.keytab \\\n"
        "            --ntlm-users /etc/wec/ntlm-users --hostname wec.example.org\n"
        "  wec serve --config /etc/wec/wec.toml --metrics 127.0.0.1:9985\n"
        "Windows GPO: Server=http://wec.example.org:5985/wsman/SubscriptionManager/WEC,Refresh=60");
    sub->callback([&action, opts] { action = [opts] { return run_serve(*opts); }; });
}

} // namespace wec::tool

// `wec replay`: emulate Windows sources. Today: generated Security-log events pushed by N
// simulated hosts through the client core (http://: Kerberos/SPNEGO, multipart/encrypted;
// https://: TLS with a client certificate, plain bodies; SLDC either way), with a throughput and
// Ack-latency summary. Replaying captured traffic comes with `wec decode`.
#include "client/client.hpp"
#include "client/load.hpp"
#include "commands.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace wec::tool {
namespace {

struct ReplayOptions {
    std::string url;
    std::string service;
    bool spnego = false;
    bool tab = false;
    std::vector<std::string> ccaches;
    std::string cert, key, cacert, server_name; // https://
    std::string subscription;
    std::uint64_t events = 10000;
    std::size_t batch = 100;
    std::size_t hosts = 1;
    std::size_t connections = 1;
    bool compress = true;
    bool follow_notify_host = false;
    double timeout_s = 30;
    bool json = false;
};

int run_replay(const ReplayOptions& o) {
    client::LoadOptions lo;
    try {
        lo.source.manager = client::Url::parse(o.url);
    } catch (const client::Error& e) {
        std::fprintf(stderr, "wec replay: --url: %s\n", e.what());
        return kUsage;
    }
    if (lo.source.manager.tls) {
        if (o.cert.empty() || o.key.empty()) {
            std::fprintf(stderr, "wec replay: an https:// URL needs --cert and --key (the "
                                 "simulated hosts' client certificate)\n");
            return kUsage;
        }
        lo.source.tls.cert_file = o.cert;
        lo.source.tls.key_file = o.key;
        lo.source.tls.ca_file = o.cacert;
        lo.source.tls.server_name = o.server_name;
        try {
            lo.source.tls_context = client::make_tls_context(lo.source.tls);
        } catch (const client::Error& e) {
            std::fprintf(stderr, "wec replay: %s\n", e.what());
            return kUsage;
        }
    } else if (!o.cert.empty() || !o.key.empty() || !o.cacert.empty() || !o.server_name.empty()) {
        std::fprintf(stderr, "wec replay: --cert/--key/--cacert/--server-name need an https:// "
                             "URL\n");
        return kUsage;
    } else if (o.service.empty() || o.service.find('@') == std::string::npos) {
        std::fprintf(stderr,
                     "wec replay: --service must be SERVICE@HOST (e.g. HTTP@wec.example.org)\n");
        return kUsage;
    }
    lo.source.service = o.service;
    lo.source.mechanism = o.spnego ? auth::Mechanism::Spnego : auth::Mechanism::Kerberos;
    lo.source.tab_form = o.tab;
    lo.source.compress = o.compress;
    lo.source.follow_notify_host = o.follow_notify_host;
    lo.source.timeout = std::chrono::milliseconds(static_cast<long long>(o.timeout_s * 1000));
    lo.ccaches = o.ccaches;
    lo.subscription = o.subscription;
    lo.events = o.events;
    lo.batch = o.batch;
    lo.hosts = o.hosts;
    lo.threads = o.connections;

    client::LoadProgress progress;
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::thread reporter;
    if (::isatty(2)) {
        reporter = std::thread([&] {
            std::unique_lock lock(m);
            auto start = std::chrono::steady_clock::now();
            while (!cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return done; })) {
                double s =
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                std::fprintf(stderr, "\r%llu/%llu events acked, %llu batches failed, %.0f s   ",
                             static_cast<unsigned long long>(progress.events_acked.load()),
                             static_cast<unsigned long long>(o.events),
                             static_cast<unsigned long long>(progress.batches_failed.load()), s);
            }
            std::fprintf(stderr, "\r%*s\r", 70, "");
        });
    }
    client::LoadResult r;
    int code = kOk;
    try {
        r = client::run_load(lo, &progress);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wec replay: %s\n", e.what());
        code = kRuntime;
    }
    {
        std::lock_guard lock(m);
        done = true;
    }
    cv.notify_all();
    if (reporter.joinable()) reporter.join();
    if (code != kOk) return code;

    if (r.events_acked == 0 && !r.setup_error.empty())
        code = kRuntime;
    else if (r.batches_failed > 0 || r.events_acked < o.events)
        code = kPartial;

    if (o.json) {
        nlohmann::json j;
        j["events_requested"] = o.events;
        j["events_acked"] = r.events_acked;
        j["batches_ok"] = r.batches_ok;
        j["batches_failed"] = r.batches_failed;
        j["seconds"] = r.seconds;
        j["events_per_second"] = r.events_per_second;
        j["ack_latency_ms"] = {{"p50", r.p50_ms}, {"p99", r.p99_ms}, {"max", r.max_ms}};
        j["soap_bytes"] = r.bytes_sent_soap;
        j["hosts"] = o.hosts;
        j["connections"] = std::min(o.connections, o.hosts);
        j["mechanism"] = lo.source.manager.tls ? "tls" : o.spnego ? "spnego" : "kerberos";
        j["compress"] = o.compress;
        j["errors"] = r.errors;
        if (!r.setup_error.empty()) j["setup_error"] = r.setup_error;
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        std::printf("events acked:   %llu of %llu\n",
                    static_cast<unsigned long long>(r.events_acked),
                    static_cast<unsigned long long>(o.events));
        std::printf("batches:        %llu ok, %llu failed\n",
                    static_cast<unsigned long long>(r.batches_ok),
                    static_cast<unsigned long long>(r.batches_failed));
        std::printf("throughput:     %.0f events/s over %.2f s\n", r.events_per_second, r.seconds);
        std::printf("Ack latency:    p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", r.p50_ms, r.p99_ms,
                    r.max_ms);
        if (!r.setup_error.empty()) std::printf("setup error:    %s\n", r.setup_error.c_str());
        for (const auto& e : r.errors)
            std::printf("error:          %s\n", e.c_str());
    }
    return code;
}

} // namespace

void add_replay(CLI::App& app, Action& action) {
    auto o = std::make_shared<ReplayOptions>();
    auto* sub = app.add_subcommand("replay",
                                   "Emulate Windows sources: push generated events to a collector");
    sub->add_option("--url", o->url,
                    "Subscription manager URL (the GPO Server= value), "
                    "http://HOST:5985/wsman/SubscriptionManager/WEC (Kerberos) or "
                    "https://HOST:5986/wsman/ (client certificate)")
        ->required();
    sub->add_option("--service", o->service,
                    "Kerberos service, SERVICE@FQDN (e.g. HTTP@wec.example.org); required for "
                    "http:// URLs");
    sub->add_option("--cert", o->cert, "(https) client certificate (PEM) of the simulated hosts")
        ->check(CLI::ExistingFile);
    sub->add_option("--key", o->key, "(https) private key (PEM) of --cert")
        ->check(CLI::ExistingFile);
    sub->add_option("--cacert", o->cacert,
                    "(https) CA bundle (PEM) that verifies the collector's certificate "
                    "(default: the system trust store)")
        ->check(CLI::ExistingFile);
    sub->add_option("--server-name", o->server_name,
                    "(https) name sent as SNI and checked in the collector's certificate "
                    "(default: the --url host)");
    sub->add_flag("--spnego", o->spnego, "Authorization: Negotiate (SPNEGO) instead of Kerberos");
    sub->add_flag("--tab", o->tab, "TAB before the multipart part headers (pywinrm's form)");
    sub->add_option(
        "--ccache", o->ccaches,
        "Credential cache of a simulated host's identity (repeat: host i uses the i-th, "
        "round robin; default: KRB5CCNAME, all hosts share one identity)");
    sub->add_option("--subscription", o->subscription,
                    "Subscription name (default: the first offered)");
    sub->add_option("--events", o->events, "Events to send in total")->capture_default_str();
    sub->add_option("--batch", o->batch, "Events per Events message (split to fit MaxEnvelopeSize)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    sub->add_option("--hosts", o->hosts, "Simulated hosts (machine ids host-N.windomain.local)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    sub->add_option("--connections", o->connections,
                    "Concurrent connections (threads), at most --hosts")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    sub->add_flag("--compress,!--no-compress", o->compress, "SLDC-compress Events (default: on)");
    sub->add_flag(
        "--follow-notify-host", o->follow_notify_host,
        "Connect to the host named in NotifyTo (default: the --url host, NotifyTo's port)");
    sub->add_option("--timeout", o->timeout_s, "Seconds per request")->capture_default_str();
    sub->add_flag("--json", o->json, "Print a JSON summary");
    sub->footer(
        "Exit codes: 0 all events acknowledged, 1 some batches failed, 2 usage, 3 runtime error.\n"
        "Examples:\n"
        "  wec replay --url http://127.0.0.1:5985/wsman/SubscriptionManager/WEC \\\n"
        "             --service HTTP@wec.example.org --events 100000 --batch 100 --hosts 8 "
        "--connections 4\n"
        "  wec replay --url http://wec:5985/wsman/SubscriptionManager/WEC --service HTTP@wec \\\n"
        "             --ccache FILE:/tmp/host1.cc --ccache FILE:/tmp/host2.cc --hosts 2 --json\n"
        "  wec replay --url https://wec.example.org:5986/wsman/ --cert host.pem --key host.key \\\n"
        "             --cacert ca.pem --events 100000 --hosts 8 --connections 4");
    sub->callback([&action, o] { action = [o] { return run_replay(*o); }; });
}

} // namespace wec::tool

// `wec replay`: emulate Windows sources through the client core (http://: Kerberos/SPNEGO,
// multipart/encrypted; https://: TLS with a client certificate, plain bodies; SLDC either way),
// with a throughput and Ack-latency summary. Two modes:
//  - generated: Security-log events pushed by N simulated hosts (client::run_load);
//  - --from FILE: the Events messages of a capture, as `wec decode --format json` wrote them
//    (decode::EventsBatchReader), replayed in order by one source (client::replay_batches).
// Only options are wired here (docs/replay.md).
#include "client/client.hpp"
#include "client/load.hpp"
#include "client/replay.hpp"
#include "commands.hpp"
#include "decode/read.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
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
    std::string ntlm;                           // --ntlm [DOMAIN\\]USER:PASSWORD
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
    std::string from; // --from: JSON Lines of `wec decode --format json` ("-" = stdin)
};

// A progress line on standard error while `work` runs, when it is a terminal: `line(seconds)`
// every half second, erased at the end.
template <class Work>
auto with_progress(const std::function<std::string(double)>& line, Work&& work) {
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
                std::fprintf(stderr, "\r%s   ", line(s).c_str());
            }
            std::fprintf(stderr, "\r%*s\r", 70, "");
        });
    }
    struct Stop {
        std::mutex& m;
        std::condition_variable& cv;
        bool& done;
        std::thread& reporter;
        ~Stop() {
            {
                std::lock_guard lock(m);
                done = true;
            }
            cv.notify_all();
            if (reporter.joinable()) reporter.join();
        }
    } stop{m, cv, done, reporter};
    return work();
}

// The simulated source(s) from the options shared by both modes: kOk, or kUsage (said why).
int source_options(const ReplayOptions& o, client::SourceOptions& so) {
    try {
        so.manager = client::Url::parse(o.url);
    } catch (const client::Error& e) {
        std::fprintf(stderr, "wec replay: --url: %s\n", e.what());
        return kUsage;
    }
    if (so.manager.tls) {
        if (o.cert.empty() || o.key.empty()) {
            std::fprintf(stderr, "wec replay: an https:// URL needs --cert and --key (the "
                                 "simulated hosts' client certificate)\n");
            return kUsage;
        }
        so.tls.cert_file = o.cert;
        so.tls.key_file = o.key;
        so.tls.ca_file = o.cacert;
        so.tls.server_name = o.server_name;
        try {
            so.tls_context = client::make_tls_context(so.tls);
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
    so.service = o.service;
    so.mechanism = o.spnego ? auth::Mechanism::Spnego : auth::Mechanism::Kerberos;
    if (!o.ntlm.empty()) {
        auto colon = o.ntlm.find(':');
        if (colon == std::string::npos || colon == 0) {
            std::fprintf(stderr, "wec replay: --ntlm must be [DOMAIN\\]USER:PASSWORD\n");
            return kUsage;
        }
        so.ntlm_user = o.ntlm.substr(0, colon);
        so.ntlm_password = o.ntlm.substr(colon + 1);
        if (!o.spnego) so.mechanism = auth::Mechanism::Ntlm;
    }
    so.tab_form = o.tab;
    so.compress = o.compress;
    so.follow_notify_host = o.follow_notify_host;
    so.timeout = std::chrono::milliseconds(static_cast<long long>(o.timeout_s * 1000));
    return kOk;
}

const char* mechanism_name(const ReplayOptions& o, const client::SourceOptions& so) {
    if (so.manager.tls) return "tls";
    if (!o.ntlm.empty()) return o.spnego ? "spnego-ntlm" : "ntlm";
    return o.spnego ? "spnego" : "kerberos";
}

// --from: the Events messages of a `wec decode --format json` capture, replayed by one source.
int run_from(const ReplayOptions& o, const client::SourceOptions& so) {
    if (o.ccaches.size() > 1) {
        std::fprintf(stderr, "wec replay: --from replays one source: give at most one --ccache\n");
        return kUsage;
    }
    std::ifstream file;
    std::istream* in = &std::cin;
    if (o.from == "-") {
        std::ios_base::sync_with_stdio(false); // buffered reads of stdin
    } else {
        file.open(o.from, std::ios::binary);
        if (!file) {
            std::fprintf(stderr, "wec replay: --from: cannot open %s\n", o.from.c_str());
            return kUsage;
        }
        in = &file;
    }
    client::ReplayOptions ro;
    ro.source = so;
    if (!o.ccaches.empty()) ro.source.ccache = o.ccaches.front();
    ro.subscription = o.subscription;

    const bool tty = ::isatty(2) != 0;
    decode::EventsBatchReader reader(*in, o.from, [&](const decode::SkippedRecord& s) {
        if (tty) std::fprintf(stderr, "\r%*s\r", 70, ""); // over the progress line
        std::fprintf(stderr, "wec replay: %s:%llu: skipped: %s\n", o.from.c_str(),
                     static_cast<unsigned long long>(s.line), s.reason.c_str());
    });
    std::string input_error;
    decode::EventsBatch batch;
    auto next = [&](client::RecordedBatch& out) {
        try {
            if (!reader.next(batch)) return false;
        } catch (const decode::InputError& e) {
            input_error = e.what();
            return false;
        }
        out.events = std::move(batch.events);
        out.bookmark = std::move(batch.bookmark);
        out.machine = std::move(batch.machine);
        out.line = batch.line;
        return true;
    };

    client::ReplayProgress progress;
    auto r = with_progress(
        [&](double secs) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "%llu Events messages, %llu events acked, %.0f s",
                          static_cast<unsigned long long>(progress.messages_acked.load()),
                          static_cast<unsigned long long>(progress.events_acked.load()), secs);
            return std::string(buf);
        },
        [&] { return client::replay_batches(ro, next, &progress); });

    const auto& st = reader.stats();
    int code = kOk;
    if (!input_error.empty()) {
        std::fprintf(stderr, "wec replay: %s\n", input_error.c_str());
        code = kUsage;
    } else if (!r.setup_error.empty()) {
        std::fprintf(stderr, "wec replay: %s\n", r.setup_error.c_str());
        code = kRuntime;
    } else if (!r.error.empty()) {
        std::fprintf(stderr, "wec replay: %s:%llu: %s\n", o.from.c_str(),
                     static_cast<unsigned long long>(r.failed_line), r.error.c_str());
        code = kRuntime;
    } else if (st.skipped > 0) {
        code = kPartial;
    } else if (st.batches == 0) {
        std::fprintf(stderr, "wec replay: %s: no Events message to replay\n", o.from.c_str());
        code = kPartial;
    }

    if (o.json) {
        nlohmann::json j;
        j["from"] = o.from;
        j["records"] = st.records;
        j["events_messages"] = st.batches;
        j["messages_acked"] = r.messages_acked;
        j["messages_failed"] = r.messages_failed;
        j["events_sent"] = r.events_sent;
        j["events_acked"] = r.events_acked;
        j["skipped"] = st.skipped;
        j["seconds"] = r.seconds;
        j["events_per_second"] = r.events_per_second;
        j["ack_latency_ms"] = {{"p50", r.p50_ms}, {"p99", r.p99_ms}, {"max", r.max_ms}};
        j["subscription"] = r.subscription;
        j["machine"] = r.machine;
        j["mechanism"] = mechanism_name(o, so);
        j["compress"] = o.compress;
        if (!input_error.empty()) j["input_error"] = input_error;
        if (!r.setup_error.empty()) j["setup_error"] = r.setup_error;
        if (!r.error.empty()) {
            j["error"] = r.error;
            j["error_line"] = r.failed_line;
        }
        std::printf("%s\n", j.dump(2).c_str());
    } else {
        std::printf("records read:   %llu (%llu Events messages, %llu events)\n",
                    static_cast<unsigned long long>(st.records),
                    static_cast<unsigned long long>(st.batches),
                    static_cast<unsigned long long>(st.events));
        std::printf("replayed:       %llu Events messages acked, %llu failed\n",
                    static_cast<unsigned long long>(r.messages_acked),
                    static_cast<unsigned long long>(r.messages_failed));
        std::printf("events acked:   %llu of %llu sent\n",
                    static_cast<unsigned long long>(r.events_acked),
                    static_cast<unsigned long long>(r.events_sent));
        std::printf("skipped:        %llu records\n", static_cast<unsigned long long>(st.skipped));
        std::printf("throughput:     %.0f events/s over %.2f s\n", r.events_per_second, r.seconds);
        std::printf("Ack latency:    p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", r.p50_ms, r.p99_ms,
                    r.max_ms);
        if (!r.subscription.empty())
            std::printf("subscription:   %s (as %s)\n", r.subscription.c_str(), r.machine.c_str());
        if (!input_error.empty()) std::printf("input error:    %s\n", input_error.c_str());
        if (!r.setup_error.empty()) std::printf("setup error:    %s\n", r.setup_error.c_str());
        if (!r.error.empty())
            std::printf("error:          line %llu: %s\n",
                        static_cast<unsigned long long>(r.failed_line), r.error.c_str());
    }
    return code;
}

int run_replay(const ReplayOptions& o) {
    client::LoadOptions lo;
    if (int rc = source_options(o, lo.source); rc != kOk) return rc;
    if (!o.from.empty()) return run_from(o, lo.source);
    lo.ccaches = o.ccaches;
    lo.subscription = o.subscription;
    lo.events = o.events;
    lo.batch = o.batch;
    lo.hosts = o.hosts;
    lo.threads = o.connections;

    client::LoadProgress progress;
    client::LoadResult r;
    int code = kOk;
    with_progress(
        [&](double secs) {
            char buf[160];
            std::snprintf(buf, sizeof buf, "%llu/%llu events acked, %llu batches failed, %.0f s",
                          static_cast<unsigned long long>(progress.events_acked.load()),
                          static_cast<unsigned long long>(o.events),
                          static_cast<unsigned long long>(progress.batches_failed.load()), secs);
            return std::string(buf);
        },
        [&] {
            try {
                r = client::run_load(lo, &progress);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "wec replay: %s\n", e.what());
                code = kRuntime;
            }
            return 0;
        });
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
        j["mechanism"] = mechanism_name(o, lo.source);
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
    auto* sub = app.add_subcommand(
        "replay", "Emulate Windows sources: push generated or captured events to a collector");
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
    sub->add_option("--ntlm", o->ntlm,
                    "NTLM instead of Kerberos: [DOMAIN\\]USER:PASSWORD (raw NTLMSSP under "
                    "Negotiate; with --spnego, NTLM inside SPNEGO)");
    sub->add_flag("--tab", o->tab, "TAB before the multipart part headers (pywinrm's form)");
    sub->add_option(
        "--ccache", o->ccaches,
        "Credential cache of a simulated host's identity (repeat: host i uses the i-th, "
        "round robin; default: KRB5CCNAME, all hosts share one identity)");
    sub->add_option("--subscription", o->subscription,
                    "Subscription name (default: the first offered)");
    auto* from = sub->add_option(
        "--from", o->from,
        "Replay the Events messages of FILE, JSON Lines written by wec decode --format json "
        "(- = stdin), in order, as one source, instead of generating events");
    sub->add_option("--events", o->events, "Events to send in total")
        ->capture_default_str()
        ->excludes(from);
    sub->add_option("--batch", o->batch, "Events per Events message (split to fit MaxEnvelopeSize)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber)
        ->excludes(from);
    sub->add_option("--hosts", o->hosts, "Simulated hosts (machine ids host-N.windomain.local)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber)
        ->excludes(from);
    sub->add_option("--connections", o->connections,
                    "Concurrent connections (threads), at most --hosts")
        ->capture_default_str()
        ->check(CLI::PositiveNumber)
        ->excludes(from);
    sub->add_flag("--compress,!--no-compress", o->compress, "SLDC-compress Events (default: on)");
    sub->add_flag(
        "--follow-notify-host", o->follow_notify_host,
        "Connect to the host named in NotifyTo (default: the --url host, NotifyTo's port)");
    sub->add_option("--timeout", o->timeout_s, "Seconds per request")->capture_default_str();
    sub->add_flag("--json", o->json, "Print a JSON summary");
    sub->footer(
        "Exit codes: 0 all events acknowledged, 1 some batches failed (--from: some records "
        "skipped,\n"
        "or no Events message), 2 usage or (--from) unreadable or malformed input, 3 runtime "
        "error\n"
        "(--from: the collector did not acknowledge a message; the replay stops there).\n"
        "Examples:\n"
        "  wec replay --url http://127.0.0.1:5985/wsman/SubscriptionManager/WEC \\\n"
        "             --service HTTP@wec.example.org --events 100000 --batch 100 --hosts 8 "
        "--connections 4\n"
        "  wec replay --url http://wec:5985/wsman/SubscriptionManager/WEC --service HTTP@wec \\\n"
        "             --ccache FILE:/tmp/host1.cc --ccache FILE:/tmp/host2.cc --hosts 2 --json\n"
        "  wec replay --url https://wec.example.org:5986/wsman/ --cert host.pem --key host.key \\\n"
        "             --cacert ca.pem --events 100000 --hosts 8 --connections 4\n"
        "  wec decode capture.pcap --keytab wec.keytab --format json | wec replay --from - \\\n"
        "             --url http://collector:5985/wsman/SubscriptionManager/WEC --service "
        "HTTP@collector");
    sub->callback([&action, o] { action = [o] { return run_replay(*o); }; });
}

} // namespace wec::tool

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
#include "evtx/evtx.hpp"
#include "replay_check.hpp"
#include "replay_input.hpp"
#include "replay_pcap.hpp"
#include "sldc/sldc.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
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
    bool precompress = false;        // generated mode: every message compressed before sending
    std::string sldc_level = "fast"; // generated mode: the SLDC compressor (fast or best)
    bool follow_notify_host = false;
    double timeout_s = 30;
    bool json = false;
    std::string from;              // --from: JSON Lines of `wec decode --format json` ("-" = stdin)
    std::vector<std::string> evtx; // --evtx: EVTX files or directories of them
    std::vector<std::string> xml;  // --xml: event XML files or directories of them
    bool split_by_computer = false;
    std::vector<std::string> check; // --check: the collector's files output (files, directories)
    double check_after = 0;         // seconds to wait before reading them
    bool check_only = false;        // send nothing, check only
    double rate = 0;                // --rate: events per second in total (0: as fast as acked)
    double speed = 0;               // --speed: N times the recorded pace (files)
    double retry_interval_s = -1;   // --retry-interval: < 0 = the subscription's ConnectionRetry
    double idle_s = 0;              // --idle: generated hosts stay this long after their events
    double refresh_s = 0;           // --refresh: re-Enumerate this often (generated)
    PcapOptions pcap;               // --pcap: a capture decoded and replayed (replay_pcap.cpp)
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

// Events per second over the last progress interval.
struct Rate {
    std::uint64_t last_count = 0;
    double last_seconds = 0, value = 0;
    double update(std::uint64_t count, double seconds) {
        if (seconds > last_seconds) {
            value = static_cast<double>(count - last_count) / (seconds - last_seconds);
            last_count = count;
            last_seconds = seconds;
        }
        return value;
    }
};

// printf into a std::string (summary lines).
template <class... Args>
std::string format(const char* fmt, Args... args) {
    char buf[512];
    std::snprintf(buf, sizeof buf, fmt, args...);
    return buf;
}

unsigned long long ull(std::uint64_t v) {
    return static_cast<unsigned long long>(v);
}

// The end-of-run summary of every mode: JSON fields (--json) or text lines `label: text`,
// printed together on standard output by print() (a --check report adds to either).
class Summary {
public:
    explicit Summary(bool json) : json_(json) {}
    bool json() const { return json_; }
    nlohmann::json& fields() { return j_; }
    template <class T>
    void set(const char* key, T&& value) {
        if (json_) j_[key] = std::forward<T>(value);
    }
    void line(const char* label, const std::string& text) {
        if (!json_)
            lines_.push_back(format("%-15s %s", (std::string(label) + ":").c_str(), text.c_str()));
    }
    void print() const {
        if (json_) {
            std::printf("%s\n", j_.dump(2).c_str());
            return;
        }
        for (const auto& l : lines_)
            std::printf("%s\n", l.c_str());
    }

private:
    bool json_;
    nlohmann::json j_;
    std::vector<std::string> lines_;
};

// The simulated source(s) from the options shared by both modes: kOk, or kUsage (said why).
int source_options(const ReplayOptions& o, client::SourceOptions& so) {
    try {
        so.manager = client::Url::parse(o.url);
    } catch (const client::ClientError& e) {
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
        } catch (const client::ClientError& e) {
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

// --from: the input stream (standard input or FILE); nullptr when FILE cannot be opened.
std::istream* open_from(const std::string& from, std::ifstream& file) {
    if (from == "-") {
        std::ios_base::sync_with_stdio(false); // buffered reads of stdin
        return &std::cin;
    }
    file.open(from, std::ios::binary);
    return file ? &file : nullptr;
}

// --from: the exit status from how the replay ended (and why, on standard error).
int from_exit_code(const ReplayOptions& o, const client::ReplayResult& r,
                   const decode::ReadStats& st, const std::string& input_error) {
    if (!input_error.empty()) {
        std::fprintf(stderr, "wec replay: %s\n", input_error.c_str());
        return kUsage;
    }
    if (!r.setup_error.empty()) {
        std::fprintf(stderr, "wec replay: %s\n", r.setup_error.c_str());
        return kRuntime;
    }
    if (!r.error.empty()) {
        std::fprintf(stderr, "wec replay: %s:%llu: %s\n", o.from.c_str(), ull(r.failed_line),
                     r.error.c_str());
        return kRuntime;
    }
    if (st.skipped > 0 || r.events_dropped > 0) return kPartial;
    if (st.batches == 0) {
        std::fprintf(stderr, "wec replay: %s: no Events message to replay\n", o.from.c_str());
        return kPartial;
    }
    return kOk;
}

void from_summary(Summary& sum, const ReplayOptions& o, const client::SourceOptions& so,
                  const client::ReplayResult& r, const decode::ReadStats& st,
                  const std::string& input_error) {
    sum.set("from", o.from);
    sum.set("records", st.records);
    sum.set("events_messages", st.batches);
    sum.set("messages_acked", r.messages_acked);
    sum.set("messages_failed", r.messages_failed);
    sum.set("retries", r.retries);
    sum.set("batches_split", r.messages_split);
    sum.set("events_dropped", r.events_dropped);
    sum.set("events_sent", r.events_sent);
    sum.set("events_acked", r.events_acked);
    sum.set("skipped", st.skipped);
    sum.set("seconds", r.seconds);
    sum.set("events_per_second", r.events_per_second);
    sum.set("ack_latency_ms",
            nlohmann::json{{"p50", r.p50_ms}, {"p99", r.p99_ms}, {"max", r.max_ms}});
    sum.set("subscription", r.subscription);
    sum.set("machine", r.machine);
    sum.set("mechanism", mechanism_name(o, so));
    sum.set("compress", o.compress);
    if (!input_error.empty()) sum.set("input_error", input_error);
    if (!r.setup_error.empty()) sum.set("setup_error", r.setup_error);
    if (!r.error.empty()) {
        sum.set("error", r.error);
        sum.set("error_line", r.failed_line);
    }
    sum.line("records read", format("%llu (%llu Events messages, %llu events)", ull(st.records),
                                    ull(st.batches), ull(st.events)));
    sum.line("replayed", format("%llu Events messages acked, %llu failed, %llu retries",
                                ull(r.messages_acked), ull(r.messages_failed), ull(r.retries)));
    sum.line("events acked", format("%llu of %llu sent", ull(r.events_acked), ull(r.events_sent)));
    sum.line("skipped", format("%llu records", ull(st.skipped)));
    sum.line("limits", format("%llu Events messages split to the subscription's limits, %llu "
                              "events dropped (larger than MaxEnvelopeSize)",
                              ull(r.messages_split), ull(r.events_dropped)));
    sum.line("throughput", format("%.0f events/s over %.2f s", r.events_per_second, r.seconds));
    sum.line("Ack latency",
             format("p50 %.2f ms, p99 %.2f ms, max %.2f ms", r.p50_ms, r.p99_ms, r.max_ms));
    if (!r.subscription.empty())
        sum.line("subscription", r.subscription + " (as " + r.machine + ")");
    if (!input_error.empty()) sum.line("input error", input_error);
    if (!r.setup_error.empty()) sum.line("setup error", r.setup_error);
    if (!r.error.empty())
        sum.line("error", format("line %llu: %s", ull(r.failed_line), r.error.c_str()));
}

// --from: the Events messages of a `wec decode --format json` capture, replayed by one source.
int run_from(const ReplayOptions& o, const client::SourceOptions& so,
             std::optional<std::chrono::milliseconds> retry_interval) {
    if (o.ccaches.size() > 1) {
        std::fprintf(stderr, "wec replay: --from replays one source: give at most one --ccache\n");
        return kUsage;
    }
    std::ifstream file;
    std::istream* in = open_from(o.from, file);
    if (!in) {
        std::fprintf(stderr, "wec replay: --from: cannot open %s\n", o.from.c_str());
        return kUsage;
    }
    client::ReplayOptions ro;
    ro.source = so;
    if (!o.ccaches.empty()) ro.source.ccache = o.ccaches.front();
    ro.subscription = o.subscription;
    ro.retry_interval = retry_interval;

    const bool tty = ::isatty(2) != 0;
    ro.on_drop = [&](const std::string& xml, std::size_t bytes, std::size_t limit) {
        if (tty) std::fprintf(stderr, "\r%*s\r", 70, "");
        std::fprintf(stderr,
                     "wec replay: %s: event %s/%s: its envelope (%zu bytes) exceeds "
                     "MaxEnvelopeSize %zu: dropped, as Windows does\n",
                     o.from.c_str(), evtx::first_value(xml, "Channel").c_str(),
                     evtx::first_value(xml, "EventRecordID").c_str(), bytes, limit);
    };
    decode::EventsBatchReader reader(*in, o.from, [&](const decode::SkippedRecord& s) {
        if (tty) std::fprintf(stderr, "\r%*s\r", 70, ""); // over the progress line
        std::fprintf(stderr, "wec replay: %s:%llu: skipped: %s\n", o.from.c_str(), ull(s.line),
                     s.reason.c_str());
    });
    std::string input_error;
    auto next = [&](client::RecordedBatch& out) {
        try {
            return reader.next(out);
        } catch (const decode::InputError& e) {
            input_error = e.what();
            return false;
        }
    };

    client::ReplayProgress progress;
    auto r = with_progress(
        [&](double secs) {
            return format("%llu Events messages, %llu events acked, %llu retries, %.0f s",
                          ull(progress.messages_acked.load()), ull(progress.events_acked.load()),
                          ull(progress.retries.load()), secs);
        },
        [&] { return client::replay_batches(ro, next, &progress); });

    const auto& st = reader.stats();
    int code = from_exit_code(o, r, st, input_error);
    Summary sum(o.json);
    from_summary(sum, o, so, r, st, input_error);
    sum.print();
    return code;
}

// --check: reads what the collector wrote and matches it against `sent`; the report goes to
// the summary. kPartial when an acknowledged event was lost, kUsage when the files cannot be
// read, else kOk.
int run_check(const ReplayOptions& o, const std::map<EventKey, bool>& sent, Summary& sum) {
    if (o.check_after > 0)
        std::this_thread::sleep_for(
            std::chrono::milliseconds(static_cast<long long>(o.check_after * 1000)));
    CheckReport r;
    try {
        r = check_written(sent, o.check);
    } catch (const wec::Error& e) {
        std::fprintf(stderr, "wec replay: --check: %s\n", e.what());
        sum.set("check", nlohmann::json{{"error", e.what()}});
        return kUsage;
    }
    auto key_text = [](const EventKey& k) {
        return k.machine + "/" + k.channel + "/" + std::to_string(k.record_id);
    };
    auto list = [&](const std::vector<EventKey>& keys) {
        nlohmann::json a = nlohmann::json::array();
        for (const auto& k : keys)
            a.push_back(
                {{"machine", k.machine}, {"channel", k.channel}, {"record_id", k.record_id}});
        return a;
    };
    sum.set("check", nlohmann::json{{"files", r.files},
                                    {"lines", r.lines},
                                    {"unreadable_lines", r.unreadable},
                                    {"sent", r.sent},
                                    {"acked", r.acked},
                                    {"found", r.found},
                                    {"lost", r.lost},
                                    {"duplicated", r.duplicated},
                                    {"unexpected", r.unexpected},
                                    {"lost_examples", list(r.lost_examples)},
                                    {"duplicated_examples", list(r.duplicated_examples)},
                                    {"unexpected_examples", list(r.unexpected_examples)}});
    sum.line("check",
             format("%llu sent, %llu acked, %llu found, %llu lost, %llu duplicated, "
                    "%llu unexpected (%llu lines in %llu files, %llu unreadable)",
                    ull(r.sent), ull(r.acked), ull(r.found), ull(r.lost), ull(r.duplicated),
                    ull(r.unexpected), ull(r.lines), ull(r.files), ull(r.unreadable)));
    for (const auto& k : r.lost_examples)
        sum.line("lost", key_text(k));
    for (const auto& k : r.duplicated_examples)
        sum.line("duplicated", key_text(k));
    for (const auto& k : r.unexpected_examples)
        sum.line("unexpected", key_text(k));
    return r.lost > 0 ? kPartial : kOk;
}

// --evtx / --xml: the records of event log or event XML files, replayed in order, by one source
// or (--split-by-computer) one simulated host per <Computer>, one after the other.
int run_files(const ReplayOptions& o, const client::SourceOptions& so,
              std::optional<std::chrono::milliseconds> retry_interval) {
    const bool evtx = !o.evtx.empty();
    const char* option = evtx ? "--evtx" : "--xml";
    std::vector<std::filesystem::path> files;
    try {
        files = input_files(evtx ? o.evtx : o.xml, evtx ? ".evtx" : "");
    } catch (const wec::Error& e) {
        std::fprintf(stderr, "wec replay: %s: %s\n", option, e.what());
        return kUsage;
    }
    const bool tty = ::isatty(2) != 0;
    std::map<std::string, std::vector<InputEvent>> by_host;
    std::vector<std::string> hosts; // in order of first appearance
    InputStats stats;
    try {
        stats = read_inputs(
            files, evtx,
            [&](InputEvent&& e) {
                std::string host =
                    o.split_by_computer && !e.computer.empty() ? e.computer : so.machine_id;
                auto [it, inserted] = by_host.try_emplace(host);
                if (inserted) hosts.push_back(host);
                it->second.push_back(std::move(e));
            },
            [&](const InputSkip& s) {
                if (tty) std::fprintf(stderr, "\r%*s\r", 70, "");
                std::fprintf(stderr, "wec replay: %s: skipped: %s\n", s.where.c_str(),
                             s.reason.c_str());
            });
    } catch (const wec::Error& e) {
        std::fprintf(stderr, "wec replay: %s: %s\n", option, e.what());
        return kUsage;
    }

    // Every event to send by key, with the position in its host's list (acked = position <
    // events acked by that host, since a host stops at its first failure).
    std::map<EventKey, bool> keys_sent;
    if (!o.check.empty())
        for (const auto& [host, events] : by_host)
            for (const auto& e : events)
                keys_sent[EventKey{e.computer, e.channel, e.record_id}] = o.check_only;
    if (o.check_only) {
        Summary sum(o.json);
        int code = run_check(o, keys_sent, sum);
        sum.print();
        if (code == kOk && stats.skipped > 0) code = kPartial;
        return code;
    }

    struct HostResult {
        std::string machine;
        std::uint64_t events = 0;
        client::ReplayResult r;
    };
    // The hosts, --connections at a time, on one timeline (--speed: from the input's first
    // TimeCreated; --rate: each concurrent host paces its share).
    const std::size_t workers =
        std::clamp<std::size_t>(o.connections, 1, std::max<std::size_t>(hosts.size(), 1));
    std::optional<std::int64_t> first_time;
    for (const auto& [host, events] : by_host)
        for (const auto& e : events)
            if (e.time_ns && (!first_time || *e.time_ns < *first_time)) first_time = e.time_ns;
    std::vector<HostResult> results(hosts.size());
    client::ReplayProgress progress;
    std::atomic<std::size_t> hosts_done{0}, next_host{0};
    std::mutex keys_mutex;
    Rate live_rate;
    const auto start = std::chrono::steady_clock::now();
    with_progress(
        [&](double secs) {
            char buf[200];
            const auto acked = progress.events_acked.load();
            std::snprintf(buf, sizeof buf,
                          "%llu/%llu events acked (%.0f/s), hosts %zu done of %zu, %llu messages, "
                          "%llu retries, %.0f s",
                          static_cast<unsigned long long>(acked),
                          static_cast<unsigned long long>(stats.events),
                          live_rate.update(acked, secs), hosts_done.load(), hosts.size(),
                          static_cast<unsigned long long>(progress.messages_acked.load()),
                          static_cast<unsigned long long>(progress.retries.load()), secs);
            return std::string(buf);
        },
        [&] {
            auto worker = [&] {
                for (;;) {
                    const std::size_t i = next_host++;
                    if (i >= hosts.size()) return;
                    client::ReplayOptions ro;
                    ro.source = so;
                    if (!o.ccaches.empty()) ro.source.ccache = o.ccaches[i % o.ccaches.size()];
                    ro.subscription = o.subscription;
                    ro.retry_interval = retry_interval;
                    HostResult& h = results[i];
                    h.machine = hosts[i];
                    auto& events = by_host.at(hosts[i]); // each worker its own entry
                    h.events = events.size();
                    std::vector<EventKey> keys;
                    if (!o.check.empty())
                        for (const auto& e : events)
                            keys.push_back(EventKey{e.computer, e.channel, e.record_id});
                    BatchCutter cutter(std::move(events), hosts[i], o.batch);
                    Pacer pacer(o.rate / static_cast<double>(workers), o.speed, start, first_time);
                    // Batches are cut to the subscription's limits once it is known (MaxTime
                    // too with --speed) and paced as they go.
                    auto time_of = [](const std::string& xml) {
                        return system_time_ns(evtx::first_value(xml, "TimeCreated", "SystemTime"));
                    };
                    if (o.speed > 0) ro.event_time = time_of;
                    ro.before_send = [&](const client::RecordedBatch& b) {
                        std::optional<std::int64_t> latest;
                        if (o.speed > 0)
                            for (const auto& x : b.events)
                                if (auto t = time_of(x); t && (!latest || *t > *latest)) latest = t;
                        pacer.wait(b.events.size(), latest);
                    };
                    std::set<EventKey> dropped;
                    ro.on_drop = [&](const std::string& xml, std::size_t bytes, std::size_t limit) {
                        EventKey k{evtx::first_value(xml, "Computer"),
                                   evtx::first_value(xml, "Channel"),
                                   std::strtoull(evtx::first_value(xml, "EventRecordID").c_str(),
                                                 nullptr, 10)};
                        dropped.insert(k);
                        std::lock_guard lock(keys_mutex);
                        if (tty) std::fprintf(stderr, "\r%*s\r", 70, "");
                        std::fprintf(stderr,
                                     "wec replay: %s: event %s/%llu: its envelope (%zu bytes) "
                                     "exceeds MaxEnvelopeSize %zu: dropped, as Windows does\n",
                                     hosts[i].c_str(), k.channel.c_str(), ull(k.record_id), bytes,
                                     limit);
                    };
                    h.r = client::replay_batches(
                        ro, [&](client::RecordedBatch& b) { return cutter.next(b); }, &progress);
                    {
                        // Events are acknowledged in order, the dropped ones left out.
                        std::lock_guard lock(keys_mutex);
                        std::uint64_t acked = 0;
                        for (const auto& k : keys) {
                            if (acked >= h.r.events_acked) break;
                            if (dropped.count(k) != 0) continue;
                            keys_sent[k] = true;
                            ++acked;
                        }
                    }
                    ++hosts_done;
                }
            };
            std::vector<std::thread> threads;
            for (std::size_t t = 1; t < workers; ++t)
                threads.emplace_back(worker);
            worker();
            for (auto& t : threads)
                t.join();
            return 0;
        });
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    std::uint64_t sent = 0, acked = 0, messages_acked = 0, messages_failed = 0, retries = 0;
    std::uint64_t dropped = 0, split = 0;
    double seconds = 0, max_ms = 0, p99_ms = 0;
    std::vector<std::string> errors;
    for (const auto& h : results) {
        retries += h.r.retries;
        dropped += h.r.events_dropped;
        split += h.r.messages_split;
        sent += h.r.events_sent;
        acked += h.r.events_acked;
        messages_acked += h.r.messages_acked;
        messages_failed += h.r.messages_failed;
        seconds = std::max(seconds, h.r.seconds);
        max_ms = std::max(max_ms, h.r.max_ms);
        p99_ms = std::max(p99_ms, h.r.p99_ms);
        if (!h.r.setup_error.empty()) errors.push_back(h.machine + ": " + h.r.setup_error);
        if (!h.r.error.empty())
            errors.push_back(h.machine + ": event " + std::to_string(h.r.failed_line) + ": " +
                             h.r.error);
    }
    int code = kOk;
    if (!errors.empty()) {
        for (const auto& e : errors)
            std::fprintf(stderr, "wec replay: %s\n", e.c_str());
        code = kRuntime;
    } else if (stats.skipped > 0 || dropped > 0) {
        code = kPartial;
    } else if (stats.events == 0) {
        std::fprintf(stderr, "wec replay: %s: no event to replay\n", option);
        code = kPartial;
    }
    if (results.size() > 1) seconds = wall; // the hosts overlap: the whole run
    const double rate = seconds > 0 ? static_cast<double>(acked) / seconds : 0;
    Summary sum(o.json);
    sum.set("input", evtx ? "evtx" : "xml");
    sum.set("files", stats.files);
    sum.set("events_read", stats.events);
    sum.set("skipped", stats.skipped);
    sum.set("hosts", hosts.size());
    sum.set("events_sent", sent);
    sum.set("events_acked", acked);
    sum.set("messages_acked", messages_acked);
    sum.set("messages_failed", messages_failed);
    sum.set("retries", retries);
    sum.set("batches_split", split);
    sum.set("events_dropped", dropped);
    sum.set("seconds", seconds);
    sum.set("events_per_second", rate);
    sum.set("ack_latency_ms", nlohmann::json{{"p99_max", p99_ms}, {"max", max_ms}});
    sum.set("mechanism", mechanism_name(o, so));
    sum.set("compress", o.compress);
    nlohmann::json per_host = nlohmann::json::array();
    for (const auto& h : results)
        per_host.push_back({{"machine", h.machine},
                            {"events", h.events},
                            {"events_acked", h.r.events_acked},
                            {"retries", h.r.retries},
                            {"subscription", h.r.subscription}});
    sum.set("per_host", per_host);
    sum.set("errors", errors);
    sum.line("read", format("%llu events from %llu files, %llu skipped", ull(stats.events),
                            ull(stats.files), ull(stats.skipped)));
    sum.line("hosts", std::to_string(hosts.size()));
    sum.line("events acked",
             format("%llu of %llu sent (%llu Events messages, %llu failed, %llu retries)",
                    ull(acked), ull(sent), ull(messages_acked), ull(messages_failed),
                    ull(retries)));
    sum.line("limits", format("%llu batches split to the subscription's limits, %llu events "
                              "dropped (larger than MaxEnvelopeSize)",
                              ull(split), ull(dropped)));
    sum.line("throughput", format("%.0f events/s over %.2f s", rate, seconds));
    for (const auto& e : errors)
        sum.line("error", e);
    if (!o.check.empty()) {
        int c = run_check(o, keys_sent, sum);
        if (code == kOk || c == kUsage) code = c;
    }
    sum.print();
    return code;
}

// The generated events by key (see client::HostTally): host i sends events/hosts (+1 for the
// first events%hosts hosts) records from kLoadFirstRecord on, Channel Security.
EventKey generated_key(const std::string& machine, std::uint64_t k) {
    return EventKey{machine, "Security", client::kLoadFirstRecord + k};
}

void generated_summary(Summary& sum, const ReplayOptions& o, const client::LoadOptions& lo,
                       const client::LoadResult& r) {
    sum.set("events_requested", o.events);
    sum.set("events_acked", r.events_acked);
    sum.set("batches_ok", r.batches_ok);
    sum.set("batches_failed", r.batches_failed);
    sum.set("retries", r.retries);
    sum.set("request_errors", r.request_errors);
    sum.set("heartbeats", r.heartbeats);
    sum.set("enumerations", r.enumerations);
    sum.set("subscription_ends", r.subscription_ends);
    sum.set("seconds", r.seconds);
    sum.set("events_per_second", r.events_per_second);
    sum.set("ack_latency_ms",
            nlohmann::json{{"p50", r.p50_ms}, {"p99", r.p99_ms}, {"max", r.max_ms}});
    sum.set("soap_bytes", r.bytes_sent_soap);
    sum.set("hosts", o.hosts);
    sum.set("connections", std::min(o.connections, o.hosts));
    sum.set("mechanism", mechanism_name(o, lo.source));
    sum.set("compress", o.compress);
    if (o.compress) sum.set("sldc_level", o.sldc_level);
    sum.set("errors", r.errors);
    if (!r.setup_error.empty()) sum.set("setup_error", r.setup_error);
    sum.line("events acked", format("%llu of %llu", ull(r.events_acked), ull(o.events)));
    sum.line("batches",
             format("%llu ok, %llu failed, %llu retries (%llu request errors)", ull(r.batches_ok),
                    ull(r.batches_failed), ull(r.retries), ull(r.request_errors)));
    sum.line("source", format("%llu Enumerate, %llu Heartbeats, %llu SubscriptionEnd",
                              ull(r.enumerations), ull(r.heartbeats), ull(r.subscription_ends)));
    sum.line("throughput", format("%.0f events/s over %.2f s", r.events_per_second, r.seconds));
    sum.line("Ack latency",
             format("p50 %.2f ms, p99 %.2f ms, max %.2f ms", r.p50_ms, r.p99_ms, r.max_ms));
    sum.set("cpu_seconds", nlohmann::json{{"setup", r.setup_cpu_seconds},
                                          {"prepare", r.prepare_cpu_seconds},
                                          {"send", r.send_cpu_seconds}});
    sum.line("sending CPU",
             format("%.2f s set-up, %.2f s preparing, %.2f s sending (%.1f us per event)",
                    r.setup_cpu_seconds, r.prepare_cpu_seconds, r.send_cpu_seconds,
                    r.events_acked ? r.send_cpu_seconds / static_cast<double>(r.events_acked) * 1e6
                                   : 0.0));
    if (!r.setup_error.empty()) sum.line("setup error", r.setup_error);
    for (const auto& e : r.errors)
        sum.line("error", e);
}

// Generated mode: --events from --hosts simulated hosts (client::run_load).
int run_generated(const ReplayOptions& o, client::LoadOptions& lo) {
    lo.ccaches = o.ccaches;
    lo.subscription = o.subscription;
    lo.events = o.events;
    lo.batch = o.batch;
    lo.hosts = o.hosts;
    lo.threads = o.connections;
    lo.rate = o.rate;
    lo.idle = std::chrono::milliseconds(static_cast<long long>(o.idle_s * 1000));
    lo.refresh = std::chrono::milliseconds(static_cast<long long>(o.refresh_s * 1000));
    lo.prepare_all = o.precompress;
    lo.level = *sldc::level_named(o.sldc_level); // checked by --sldc-level

    if (o.check_only) {
        std::map<EventKey, bool> sent;
        for (std::size_t h = 0; h < o.hosts; ++h) {
            const std::uint64_t n = o.events / o.hosts + (h < o.events % o.hosts ? 1 : 0);
            for (std::uint64_t k = 0; k < n; ++k)
                sent[generated_key(client::load_machine_id(h), k)] = true;
        }
        Summary sum(o.json);
        int code = run_check(o, sent, sum);
        sum.print();
        return code;
    }

    client::LoadProgress progress;
    client::LoadResult r;
    int code = kOk;
    Rate rate;
    with_progress(
        [&](double secs) {
            const auto acked = progress.events_acked.load();
            return format("%llu sent, %llu/%llu acked, %.0f/s, %llu batches failed, %llu retries, "
                          "%llu errors, %llu heartbeats, %llu connections, %.0f s",
                          ull(progress.events_sent.load()), ull(acked), ull(o.events),
                          rate.update(acked, secs), ull(progress.batches_failed.load()),
                          ull(progress.retries.load()), ull(progress.errors.load()),
                          ull(progress.heartbeats.load()), ull(progress.hosts_connected.load()),
                          secs);
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

    Summary sum(o.json);
    generated_summary(sum, o, lo, r);
    if (!o.check.empty()) {
        std::map<EventKey, bool> sent;
        for (const auto& h : r.hosts)
            for (std::uint64_t k = 0; k < h.sent; ++k)
                sent[generated_key(h.machine, k)] = k < h.acked;
        int c = run_check(o, sent, sum);
        if (code == kOk || c == kUsage) code = c;
    }
    sum.print();
    return code;
}

int run_replay(const ReplayOptions& o) {
    client::LoadOptions lo;
    if (int rc = source_options(o, lo.source); rc != kOk) return rc;
    if (o.retry_interval_s >= 0)
        lo.retry_interval =
            std::chrono::milliseconds(static_cast<long long>(o.retry_interval_s * 1000));
    if (!o.from.empty()) return run_from(o, lo.source, lo.retry_interval);
    if (!o.pcap.files.empty())
        return run_pcap(o.pcap, {lo.source, o.ccaches, o.subscription, mechanism_name(o, lo.source),
                                 o.json, lo.retry_interval});
    if (!o.evtx.empty() || !o.xml.empty()) return run_files(o, lo.source, lo.retry_interval);
    return run_generated(o, lo);
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
    auto* evtx = sub->add_option("--evtx", o->evtx,
                                 "Replay the records of Windows event log FILEs (.evtx; a "
                                 "directory: its *.evtx files by name), in record order")
                     ->excludes(from);
    auto* xml = sub->add_option("--xml", o->xml,
                                "Replay event XML FILEs (a directory: all its files by name): one "
                                "<Event> per file, an <Events> envelope, or one event a line "
                                "(raw XML, JSON strings or objects with \"xml\")")
                    ->excludes(from)
                    ->excludes(evtx);
    auto* split = sub->add_flag("--split-by-computer", o->split_by_computer,
                                "(--evtx/--xml) each distinct <Computer> is its own simulated host "
                                "(MachineID), replayed one after the other");
    auto* check = sub->add_option(
        "--check", o->check,
        "After the run, read what the collector wrote to DIR|FILE (a files output: any format, "
        "rotated, .gz) and match every event sent by (Computer, Channel, EventRecordID): sent, "
        "acked, found, lost, duplicated, unexpected; exit 1 when an acknowledged event was lost");
    sub->add_option("--check-after", o->check_after,
                    "Seconds to wait before --check reads the collector's files")
        ->check(CLI::NonNegativeNumber)
        ->needs(check);
    auto* check_only = sub->add_flag("--check-only", o->check_only,
                                     "Send nothing: --check the files against the inputs as if "
                                     "every event had been acknowledged")
                           ->needs(check);
    check->excludes(from);
    check_only->excludes(from);
    sub->add_option("--rate", o->rate,
                    "At most EVENTS/S events per second in total (default: as fast as the "
                    "collector acknowledges)")
        ->check(CLI::PositiveNumber)
        ->excludes(from);
    auto* speed = sub->add_option("--speed", o->speed,
                                  "(--evtx/--xml) N times the recorded pace, from the events' "
                                  "TimeCreated (1 = as recorded; default: as fast as possible)")
                      ->check(CLI::PositiveNumber)
                      ->excludes(from);
    auto* events = sub->add_option("--events", o->events, "Events to send in total")
                       ->capture_default_str()
                       ->excludes(from)
                       ->excludes(evtx)
                       ->excludes(xml);
    sub->add_option(
           "--batch", o->batch,
           "Events per Events message (generated, --evtx/--xml: at most the subscription's "
           "MaxElements, split to fit its MaxEnvelopeSize)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber)
        ->excludes(from);
    sub->add_option("--hosts", o->hosts, "Simulated hosts (machine ids host-N.windomain.local)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber)
        ->excludes(from)
        ->excludes(evtx)
        ->excludes(xml);
    sub->add_option("--connections", o->connections,
                    "Concurrent connections (threads), at most --hosts (--evtx/--xml: hosts "
                    "replayed at once; --pcap: sources replayed at once, default all up to 64)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber)
        ->excludes(from);
    split->excludes(from)->excludes(events);
    speed->excludes(events);
    sub->add_flag("--compress,!--no-compress", o->compress, "SLDC-compress Events (default: on)");
    sub->add_flag("--precompress", o->precompress,
                  "Generated events: render and compress every Events message before sending");
    sub->add_option("--sldc-level", o->sldc_level,
                    "Generated events: SLDC compressor, fast (greedy: cheapest to generate) or "
                    "best (the optimal parse: records shaped like Windows' own, ~15% smaller, "
                    "several times slower to compress); files and captures are always sent best")
        ->capture_default_str()
        ->check(CLI::IsMember(sldc::level_names()))
        ->excludes(from)
        ->excludes(evtx)
        ->excludes(xml);
    sub->add_flag(
        "--follow-notify-host", o->follow_notify_host,
        "Connect to the host named in NotifyTo (default: the --url host, NotifyTo's port)");
    sub->add_option("--timeout", o->timeout_s, "Seconds per request")->capture_default_str();
    sub->add_option("--retry-interval", o->retry_interval_s,
                    "Seconds before a failed message (5xx, timeout, lost connection) is resent, "
                    "at most the subscription's ConnectionRetry interval (default: that interval; "
                    "0: no retry, a failing host stops)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--idle", o->idle_s,
                    "(generated) each host stays connected SECONDS after its events, sending "
                    "Heartbeats at the subscription's heartbeat interval")
        ->check(CLI::NonNegativeNumber)
        ->excludes(from)
        ->excludes(evtx)
        ->excludes(xml);
    sub->add_option("--refresh", o->refresh_s,
                    "(generated) re-Enumerate every SECONDS and follow the subscriptions' changes "
                    "(a subscription no longer offered gets a SubscriptionEnd)")
        ->check(CLI::PositiveNumber)
        ->excludes(from)
        ->excludes(evtx)
        ->excludes(xml);
    sub->add_flag("--json", o->json, "Print a JSON summary");
    add_pcap_options(*sub, o->pcap);
    sub->footer(
        "Exit codes: 0 all events acknowledged, 1 some batches failed (--from/--evtx/--xml: some\n"
        "records skipped, an event larger than MaxEnvelopeSize dropped, or nothing to replay;\n"
        "--check: an acknowledged event was lost), 2 usage\n"
        "or (--from) unreadable or malformed input, 3 runtime error (--from: the collector did\n"
        "not acknowledge a message after its retries; the replay stops there).\n"
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
        "HTTP@collector\n"
        "  wec replay --evtx Security.evtx --evtx logs/ --split-by-computer \\\n"
        "             --url http://collector:5985/wsman/SubscriptionManager/WEC --service "
        "HTTP@collector\n"
        "  wec replay --xml events/ --url https://wec.example.org:5986/wsman/ --cert host.pem "
        "--key host.key\n"
        "  wec replay --evtx Security.evtx --speed 60 --check /var/log/wec/security/ "
        "--check-after 5 \\\n"
        "             --url http://collector:5985/wsman/SubscriptionManager/WEC --service "
        "HTTP@collector");
    sub->callback([&action, o] { action = [o] { return run_replay(*o); }; });
}

} // namespace wec::tool

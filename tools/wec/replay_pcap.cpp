// `wec replay --pcap`: decode + group by source + replay each source (docs/replay.md).
#include "replay_pcap.hpp"

#include "auth/ntlm_keys.hpp"
#include "client/replay.hpp"
#include "commands.hpp"
#include "decode/decode.hpp"
#include "decode/ntlm_secrets.hpp"
#include "decode/sources.hpp"
#include "evtx/evtx.hpp"
#include "krb/keytab.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace wec::tool {
namespace {

// --identity SOURCE=CCACHE or SOURCE=ntlm:[DOMAIN\]USER:PASSWORD.
struct Identity {
    std::string pattern;                  // principal (or DOMAIN\user) as given
    std::string ccache;                   // Kerberos: the credential cache
    std::string ntlm_user, ntlm_password; // NTLM: the account
    bool used = false;
    // What the summary shows (never the password).
    std::string text() const { return ntlm_user.empty() ? ccache : "ntlm:" + ntlm_user; }
};

// The source options of one source: `base` (the command line's) with `id`'s identity. A ccache
// makes it Kerberos (SPNEGO with --spnego), an NTLM account NTLM (in SPNEGO with --spnego).
client::SourceOptions with_identity(const client::SourceOptions& base, const Identity& id) {
    client::SourceOptions so = base;
    const bool spnego = base.mechanism == auth::Mechanism::Spnego;
    if (id.ntlm_user.empty()) {
        so.ccache = id.ccache;
        so.ntlm_user.clear();
        so.ntlm_password.clear();
        so.mechanism = spnego ? auth::Mechanism::Spnego : auth::Mechanism::Kerberos;
    } else {
        so.ntlm_user = id.ntlm_user;
        so.ntlm_password = id.ntlm_password;
        so.mechanism = spnego ? auth::Mechanism::Spnego : auth::Mechanism::Ntlm;
    }
    return so;
}

std::string mechanism_of(const client::SourceOptions& so) {
    if (so.manager.tls) return "tls";
    if (!so.ntlm_user.empty())
        return so.mechanism == auth::Mechanism::Spnego ? "spnego-ntlm" : "ntlm";
    return so.mechanism == auth::Mechanism::Spnego ? "spnego" : "kerberos";
}

// Capture-level problems (gaps, damage, errors) on standard error, as `wec decode` reports them.
class Collector : public decode::SourceCollector {
public:
    using decode::SourceCollector::SourceCollector;
    void on_note(const std::string& input, const capture::Note& n) override {
        if (n.kind == capture::NoteKind::Warning) return;
        std::string where = input;
        if (n.connection_id != 0)
            where += ": [c" + std::to_string(n.connection_id) + "] " + n.tuple.src.to_string() +
                     " -> " + n.tuple.dst.to_string();
        const char* kind = n.kind == capture::NoteKind::Gap     ? "gap"
                           : n.kind == capture::NoteKind::Error ? "error"
                                                                : "damaged capture";
        std::string text = n.text;
        if (n.kind == capture::NoteKind::Gap && text.empty())
            text = std::to_string(n.bytes) + " bytes missing";
        std::fprintf(stderr, "wec replay: %s: %s: %s\n", where.c_str(), kind, text.c_str());
    }
};

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items)
        out += (out.empty() ? "" : ", ") + i;
    return out;
}

struct SourceResult {
    decode::CapturedSource* source =
        nullptr;       // its batches are read from the spool as they are sent
    Identity identity; // when given
    bool identity_given = false;
    std::string mechanism;
    std::uint64_t skipped = 0;
    client::ReplayResult r;
    bool captured_subscription = false; // pushed to a subscription it used in the capture
    std::string subscription_note;      // why not (when it used one)
};

} // namespace

CLI::Option* add_pcap_options(CLI::App& replay, PcapOptions& o) {
    auto* pcap = replay.add_option(
        "--pcap", o.files,
        "Replay the Events of capture FILE (pcap/pcapng, gzip; repeatable), decoded as wec decode "
        "does, one simulated source per source of the capture (Kerberos principal, NTLM account, "
        "else client address; and MachineID), each with its recorded batches and bookmarks");
    pcap->type_name("FILE");
    for (const char* other :
         {"--from", "--evtx", "--xml", "--split-by-computer", "--check", "--check-only", "--events",
          "--hosts", "--batch", "--rate", "--speed", "--idle", "--refresh", "--sldc-level"})
        pcap->excludes(other);
    // --connections (declared with the other modes' options, default 1 there): given or not.
    if (auto* connections = replay.get_option_no_throw("--connections"))
        connections->each([&o](const std::string& v) {
            try {
                o.connections = std::stoul(v);
            } catch (const std::exception&) {
                o.connections = 0; // the option's own check says why
            }
        });
    replay
        .add_option("--keytab", o.keytabs,
                    "(--pcap) keytab with the capture's collector keys (HTTP/ and HOST/; "
                    "repeatable)")
        ->check(CLI::ExistingFile)
        ->type_name("FILE")
        ->needs(pcap);
    replay
        .add_option("--password", o.passwords,
                    "(--pcap) NTLM: an account's password, to open the capture's NTLM sessions "
                    "(repeatable)")
        ->type_name("PASS")
        ->needs(pcap);
    replay
        .add_option("--nt-hash", o.nt_hashes,
                    "(--pcap) NTLM: an account's NT hash, 32 hex digits (repeatable)")
        ->type_name("HEX")
        ->needs(pcap);
    replay
        .add_option("--ntlm-secrets", o.ntlm_secrets,
                    "(--pcap) NTLM: file of [DOMAIN\\]USER:NTHASH lines")
        ->check(CLI::ExistingFile)
        ->type_name("FILE")
        ->needs(pcap);
    replay
        .add_option("--identity", o.identities,
                    "(--pcap) PRINCIPAL=CCACHE: the capture's source PRINCIPAL (or DOMAIN\\user) "
                    "is replayed with the Kerberos credential cache CCACHE, or with "
                    "PRINCIPAL=ntlm:[DOMAIN\\]USER:PASSWORD as that NTLM account (repeatable; the "
                    "other sources: the default identity, with a warning)")
        ->type_name("PRINCIPAL=CCACHE")
        ->needs(pcap);
    return pcap;
}

int run_pcap(const PcapOptions& o, const PcapRun& run) {
    // --- options -------------------------------------------------------------------------------
    if (run.ccaches.size() > 1) {
        std::fprintf(stderr, "wec replay: --pcap: give at most one --ccache (the default identity; "
                             "--identity PRINCIPAL=CCACHE for each source)\n");
        return kUsage;
    }
    std::vector<Identity> identities;
    for (const auto& spec : o.identities) {
        const auto eq = spec.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
            std::fprintf(stderr, "wec replay: --identity %s: expected PRINCIPAL=CCACHE\n",
                         spec.c_str());
            return kUsage;
        }
        Identity id;
        id.pattern = spec.substr(0, eq);
        std::string value = spec.substr(eq + 1);
        if (value.rfind("ntlm:", 0) == 0) {
            value.erase(0, 5);
            const auto colon = value.find(':');
            if (colon == std::string::npos || colon == 0) {
                std::fprintf(stderr,
                             "wec replay: --identity %s=ntlm:...: expected "
                             "ntlm:[DOMAIN\\]USER:PASSWORD\n",
                             id.pattern.c_str());
                return kUsage;
            }
            id.ntlm_user = value.substr(0, colon);
            id.ntlm_password = value.substr(colon + 1);
        } else {
            id.ccache = value;
        }
        identities.push_back(std::move(id));
    }
    if (!identities.empty() && run.source.manager.tls) {
        std::fprintf(stderr, "wec replay: --identity needs an http:// URL (Kerberos, NTLM); over "
                             "https:// every source uses --cert\n");
        return kUsage;
    }

    krb::KeySet keys;
    decode::Options options;
    try {
        for (const auto& k : o.keytabs)
            keys.add_keytab(k);
        options.ntlm_secrets = decode::ntlm_secrets(o.passwords, o.nt_hashes, o.ntlm_secrets);
    } catch (const wec::Error& e) {
        std::fprintf(stderr, "wec replay: %s\n", e.what());
        return kUsage;
    }
    options.keep_soap_text = false; // only the parsed Events are kept

    // --- decode and group ----------------------------------------------------------------------
    std::map<std::string, std::uint64_t> skipped_by_key;
    std::uint64_t skip_lines = 0;
    constexpr std::uint64_t kMaxSkipLines = 10;
    Collector collector([&](const decode::SkippedRequest& s) {
        ++skipped_by_key[s.source];
        if (skip_lines++ >= kMaxSkipLines) return; // the count follows after the decode
        std::fprintf(
            stderr, "wec replay: --pcap: message %llu (connection %llu%s%s): skipped: %s\n",
            static_cast<unsigned long long>(s.line), static_cast<unsigned long long>(s.connection),
            s.source.empty() ? "" : ", ", s.source.c_str(), s.reason.c_str());
    });
    std::optional<decode::BatchSpool> spool;
    try {
        spool.emplace();
    } catch (const decode::SpoolError& e) {
        std::fprintf(stderr, "wec replay: --pcap: %s\n", e.what());
        return kRuntime;
    }
    collector.set_spool(&*spool);
    decode::Decoder decoder(keys, collector, options);
    for (const auto& file : o.files) {
        try {
            decoder.decode(file);
        } catch (const decode::InputError& e) {
            std::fprintf(stderr, "wec replay: --pcap: %s\n", e.what());
            return kUsage;
        } catch (const decode::SpoolError& e) {
            std::fprintf(stderr, "wec replay: --pcap: %s\n", e.what());
            return kRuntime;
        }
    }
    if (skip_lines > kMaxSkipLines)
        std::fprintf(stderr, "wec replay: --pcap: ... and %llu more requests skipped\n",
                     static_cast<unsigned long long>(skip_lines - kMaxSkipLines));
    const auto& st = decoder.stats();
    const bool damaged = st.gaps > 0 || st.errors > 0 || st.damaged > 0 || st.cut_packets > 0 ||
                         st.short_packets > 0;
    auto sources = collector.take();
    const std::string inputs = joined(o.files);

    if (sources.empty()) {
        std::string why = "no Events message in " + inputs + " (" + std::to_string(st.messages) +
                          " HTTP messages";
        if (!collector.undecryptable().empty()) {
            why += "; not decrypted:";
            for (const auto& [reason, n] : collector.undecryptable())
                why += " " + std::to_string(n) + " " + reason + ",";
            why.pop_back();
            if (keys.size() == 0 && o.keytabs.empty()) why += " (no --keytab given)";
        }
        why += ")";
        std::fprintf(stderr, "wec replay: %s\n", why.c_str());
        if (run.json) {
            nlohmann::json j;
            j["pcap"] = o.files;
            j["messages"] = st.messages;
            j["undecryptable"] = st.undecryptable;
            j["sources"] = nlohmann::json::array();
            j["error"] = why;
            std::printf("%s\n", j.dump(2).c_str());
        }
        return kPartial;
    }

    // --- identities ----------------------------------------------------------------------------
    std::vector<SourceResult> results(sources.size());
    for (std::size_t i = 0; i < sources.size(); ++i) {
        results[i].source = &sources[i];
        for (auto& id : identities)
            if (decode::identity_matches(id.pattern, sources[i].key)) {
                if (!results[i].identity_given) {
                    results[i].identity = id;
                    results[i].identity_given = true;
                }
                id.used = true;
            }
    }
    for (const auto& [key, n] : skipped_by_key)
        for (auto& res : results)
            if (res.source->key == key) {
                res.skipped += n;
                break;
            }
    std::vector<std::string> keys_seen;
    for (const auto& s : sources)
        if (std::find(keys_seen.begin(), keys_seen.end(), s.key) == keys_seen.end())
            keys_seen.push_back(s.key);
    for (const auto& id : identities)
        if (!id.used) {
            std::fprintf(stderr,
                         "wec replay: --identity %s: no source of the capture authenticated as "
                         "%s (sources: %s)\n",
                         id.pattern.c_str(), id.pattern.c_str(), joined(keys_seen).c_str());
            return kUsage;
        }

    std::string default_identity;
    if (run.source.manager.tls)
        default_identity = "the --cert client certificate";
    else if (!run.source.ntlm_user.empty())
        default_identity = "ntlm:" + run.source.ntlm_user + " (--ntlm)";
    else if (!run.ccaches.empty())
        default_identity = run.ccaches.front();
    else if (const char* env = std::getenv("KRB5CCNAME"); env && *env)
        default_identity = std::string(env) + " (KRB5CCNAME)";
    else
        default_identity = "the default credential cache";
    std::vector<std::string> by_address, under_default;
    for (const auto& res : results) {
        const std::string name =
            res.source->key + (res.source->machine.empty() ? "" : " (" + res.source->machine + ")");
        if (res.source->kind == decode::SourceKind::Address) by_address.push_back(name);
        if (!res.identity_given) under_default.push_back(name);
    }
    if (!by_address.empty())
        std::fprintf(stderr,
                     "wec replay: note: no Kerberos or NTLM identity seen for %s: split by client "
                     "address\n",
                     joined(by_address).c_str());
    for (const auto& res : results)
        if (res.source->subscriptions.size() > 1)
            std::fprintf(stderr,
                         "wec replay: note: %s (%s) pushed to %zu subscriptions in the capture "
                         "(%s): all its Events are replayed to one\n",
                         res.source->key.c_str(), res.source->machine.c_str(),
                         res.source->subscriptions.size(),
                         joined(res.source->subscriptions).c_str());
    if (!under_default.empty() && (results.size() > 1 || !identities.empty()))
        std::fprintf(stderr, "wec replay: warning: replayed under %s: %s\n",
                     default_identity.c_str(), joined(under_default).c_str());

    // --- replay, the sources concurrently ------------------------------------------------------
    const std::size_t workers = std::clamp<std::size_t>(
        o.connections > 0 ? o.connections : kDefaultPcapConnections, 1, results.size());
    auto replay_one = [&](SourceResult& res) {
        client::ReplayOptions ro;
        ro.source = run.source;
        if (res.identity_given)
            ro.source = with_identity(run.source, res.identity);
        else if (!run.ccaches.empty())
            ro.source.ccache = run.ccaches.front();
        res.mechanism = mechanism_of(ro.source);
        ro.subscription = run.subscription;
        ro.retry_interval = run.retry_interval;
        const auto& captured = res.source->subscriptions;
        std::string matched; // the last offered one `prefer` took (choose stops there)
        ro.prefer = [&captured, &matched](const wsman::Subscription& offered) {
            const bool yes =
                std::any_of(captured.begin(), captured.end(), [&](const std::string& c) {
                    return decode::subscription_matches(c, offered);
                });
            if (yes) matched = offered.name;
            return yes;
        };
        ro.on_drop = [&](const std::string& xml, std::size_t bytes, std::size_t limit) {
            std::fprintf(stderr,
                         "wec replay: %s: event %s/%s: its envelope (%zu bytes) exceeds "
                         "MaxEnvelopeSize %zu: dropped, as Windows does\n",
                         res.source->key.c_str(), evtx::first_value(xml, "Channel").c_str(),
                         evtx::first_value(xml, "EventRecordID").c_str(), bytes, limit);
        };
        std::size_t next = 0;
        const auto& refs = res.source->spooled;
        try {
            res.r = client::replay_batches(ro, [&](client::RecordedBatch& b) {
                if (next >= refs.size()) return false;
                b = spool->read(refs[next++]);
                return true;
            });
        } catch (const std::exception& e) { // the spool could not be read
            res.r.error = e.what();
            res.r.failed_line = 0;
        }
        if (captured.empty() || !res.r.setup_error.empty()) return;
        res.captured_subscription = !matched.empty() && matched == res.r.subscription;
        if (!res.captured_subscription)
            res.subscription_note =
                "captured " + joined(captured) + ": not offered, replayed to " +
                (run.subscription.empty() ? "the first offered" : "--subscription") + " " +
                res.r.subscription;
    };
    std::atomic<std::size_t> next_source{0};
    auto worker = [&] {
        for (std::size_t i; (i = next_source++) < results.size();)
            replay_one(results[i]);
    };
    const auto replay_start = std::chrono::steady_clock::now();
    {
        std::vector<std::jthread> threads;
        for (std::size_t t = 1; t < workers; ++t)
            threads.emplace_back(worker);
        worker();
    }
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - replay_start).count();

    // --- summary -------------------------------------------------------------------------------
    std::uint64_t messages_acked = 0, messages_failed = 0, sent = 0, acked = 0, dropped = 0,
                  split = 0;
    const double seconds = wall; // the sources overlap: the replay's wall time
    std::vector<std::string> errors;
    for (const auto& res : results) {
        messages_acked += res.r.messages_acked;
        messages_failed += res.r.messages_failed;
        sent += res.r.events_sent;
        acked += res.r.events_acked;
        dropped += res.r.events_dropped;
        split += res.r.messages_split;
        if (!res.r.setup_error.empty())
            errors.push_back(res.source->key + ": " + res.r.setup_error);
        if (!res.r.error.empty())
            errors.push_back(res.source->key + ": message " + std::to_string(res.r.failed_line) +
                             ": " + res.r.error);
    }
    int code = kOk;
    if (!errors.empty()) {
        for (const auto& e : errors)
            std::fprintf(stderr, "wec replay: %s\n", e.c_str());
        code = kRuntime;
    } else if (collector.skipped() > 0 || damaged || dropped > 0) {
        code = kPartial;
    }

    auto identity_text = [&](const SourceResult& res) {
        return res.identity_given ? res.identity.text() : default_identity;
    };
    if (run.json) {
        nlohmann::json j;
        j["pcap"] = o.files;
        j["messages"] = st.messages;
        j["undecryptable"] = st.undecryptable;
        j["events_messages"] = collector.batches();
        j["events"] = collector.events();
        j["skipped"] = collector.skipped();
        j["capture_problems"] =
            st.gaps + st.errors + st.damaged + st.cut_packets + st.short_packets;
        j["messages_acked"] = messages_acked;
        j["messages_failed"] = messages_failed;
        j["events_sent"] = sent;
        j["events_acked"] = acked;
        j["batches_split"] = split;
        j["events_dropped"] = dropped;
        j["seconds"] = seconds;
        j["events_per_second"] = seconds > 0 ? static_cast<double>(acked) / seconds : 0.0;
        j["mechanism"] = run.mechanism;
        j["compress"] = run.source.compress;
        j["connections"] = workers;
        nlohmann::json list = nlohmann::json::array();
        for (const auto& res : results) {
            nlohmann::json s;
            s["source"] = res.source->key;
            s["split_by"] = decode::to_string(res.source->kind);
            s["machine"] = res.r.machine.empty() ? res.source->machine : res.r.machine;
            s["identity"] = identity_text(res);
            s["identity_given"] = res.identity_given;
            s["mechanism"] = res.mechanism;
            s["events_messages"] = res.source->batch_count();
            s["events"] = res.source->events;
            s["skipped"] = res.skipped;
            s["messages_acked"] = res.r.messages_acked;
            s["messages_failed"] = res.r.messages_failed;
            s["events_sent"] = res.r.events_sent;
            s["events_acked"] = res.r.events_acked;
            s["seconds"] = res.r.seconds;
            s["ack_latency_ms"] = {
                {"p50", res.r.p50_ms}, {"p99", res.r.p99_ms}, {"max", res.r.max_ms}};
            s["subscription"] = res.r.subscription;
            s["captured_subscriptions"] = res.source->subscriptions;
            s["captured_subscription"] = res.captured_subscription;
            if (!res.subscription_note.empty()) s["subscription_note"] = res.subscription_note;
            if (!res.r.setup_error.empty()) s["setup_error"] = res.r.setup_error;
            if (!res.r.error.empty()) {
                s["error"] = res.r.error;
                s["error_message"] = res.r.failed_line;
            }
            list.push_back(std::move(s));
        }
        j["sources"] = std::move(list);
        j["errors"] = errors;
        std::printf("%s\n", j.dump(2).c_str());
        return code;
    }
    std::printf("capture:        %llu HTTP messages, %llu undecryptable, %llu Events messages "
                "(%llu events), %llu requests skipped\n",
                static_cast<unsigned long long>(st.messages),
                static_cast<unsigned long long>(st.undecryptable),
                static_cast<unsigned long long>(collector.batches()),
                static_cast<unsigned long long>(collector.events()),
                static_cast<unsigned long long>(collector.skipped()));
    std::printf("sources:        %zu\n", results.size());
    for (std::size_t i = 0; i < results.size(); ++i) {
        const auto& res = results[i];
        std::printf("source %zu:       %s (%s) as %s, identity %s: %llu/%llu events acked, "
                    "%llu/%zu messages%s\n",
                    i + 1, res.source->key.c_str(),
                    std::string(decode::to_string(res.source->kind)).c_str(),
                    (res.r.machine.empty() ? res.source->machine : res.r.machine).c_str(),
                    identity_text(res).c_str(), static_cast<unsigned long long>(res.r.events_acked),
                    static_cast<unsigned long long>(res.source->events),
                    static_cast<unsigned long long>(res.r.messages_acked),
                    res.source->batch_count(),
                    res.r.subscription.empty() ? "" : (" to " + res.r.subscription).c_str());
        if (!res.subscription_note.empty())
            std::printf("note:           source %zu: %s\n", i + 1, res.subscription_note.c_str());
    }
    std::printf("events acked:   %llu of %llu sent (%llu Events messages acked, %llu failed)\n",
                static_cast<unsigned long long>(acked), static_cast<unsigned long long>(sent),
                static_cast<unsigned long long>(messages_acked),
                static_cast<unsigned long long>(messages_failed));
    if (split > 0 || dropped > 0)
        std::printf("limits:         %llu Events messages split to the subscription's limits, "
                    "%llu events dropped (larger than MaxEnvelopeSize)\n",
                    static_cast<unsigned long long>(split),
                    static_cast<unsigned long long>(dropped));
    for (const auto& e : errors)
        std::printf("error:          %s\n", e.c_str());
    return code;
}

} // namespace wec::tool

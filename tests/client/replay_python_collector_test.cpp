// `wec replay` against an independent collector: tests/interop/wef_collector.py (python3-gssapi
// with a real MIT KDC for Kerberos, gss-ntlmssp for NTLM; its own multipart/encrypted, SLDC,
// UTF-16 and SOAP code, written from the protocol description, not from ours). The collector
// checks the shape of every message it receives (a violation is answered 400 and recorded) and
// records each message as a JSON line; the tests compare that record with what was sent.
#include "evtx/evtx.hpp"
#include "support/files.hpp"
#include "support/process.hpp"
#include "support/wef_realm.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;
using Key = std::pair<std::string, std::uint64_t>; // (machine, EventRecordID)

const std::string kHost = "srv.windomain.local";
const std::string kNtlmUser = "LAB\\alice";
const std::string kNtlmPassword = "Secret1!";

class ReplayPythonCollector : public ::testing::Test {
protected:
    static inline std::unique_ptr<WefRealm> realm_;
    static void SetUpTestSuite() { realm_ = std::make_unique<WefRealm>(kHost); }
    static void TearDownTestSuite() { realm_.reset(); }

    TempDir dir;
    int port = 0;
    int starts = 0; // collectors started by this test (each records to its own file)
    std::unique_ptr<Process> collector;

    fs::path record_file() const {
        return dir.path() / ("received-" + std::to_string(starts) + ".jsonl");
    }

    void TearDown() override {
        if (collector && HasFailure())
            std::cerr << "---- wef_collector.py log ----\n" << collector->output();
    }

    // Starts a fresh collector (stopping the previous one) with an empty record file.
    void start_collector(std::vector<std::string> extra = {}) {
        collector.reset();
        ++starts;
        auto users = dir.path() / "ntlm-users";
        std::ofstream(users) << "LAB:alice:" << kNtlmPassword << "\n";
        std::vector<std::string> argv{
            "/usr/bin/python3", std::string(WEC_SOURCE_DIR) + "/tests/interop/wef_collector.py",
            "--record",         record_file().string(),
            "--keytab",         realm_->service_keytab.string(),
            "--host",           kHost};
        argv.insert(argv.end(), extra.begin(), extra.end());
        auto env = realm_->realm.env();
        env["NTLM_USER_FILE"] = users.string();
        collector = std::make_unique<Process>(
            argv, env, dir.path() / ("collector-" + std::to_string(starts) + ".log"));
        ASSERT_TRUE(collector->wait_for_output("LISTENING ", 20s)) << collector->output();
        std::smatch m;
        auto out = collector->output();
        ASSERT_TRUE(std::regex_search(out, m, std::regex("LISTENING (\\d+)"))) << out;
        port = std::stoi(m[1]);
    }

    struct Replayed {
        int exit_code = -1;
        json summary; // the --json summary (standard output)
        std::string err;
    };

    // `wec replay --json` against the collector; standard output and error kept apart.
    Replayed replay(const std::vector<std::string>& args) const {
        std::string command =
            std::string(WEC_EXE) + " replay --url http://127.0.0.1:" + std::to_string(port) +
            "/wsman/SubscriptionManager/WEC" + " --service HTTP@" + kHost + " --timeout 20 --json";
        for (const auto& a : args)
            command += " '" + a + "'"; // no quote in the tests' arguments
        auto out = dir.path() / "replay.out";
        auto err = dir.path() / "replay.err";
        auto env = realm_->realm.env();
        env["KRB5CCNAME"] = realm_->ccache;
        auto r =
            run({"/bin/sh", "-c", command + " >" + out.string() + " 2>" + err.string()}, env, 120s);
        Replayed res{r.exit_code, {}, slurp(err)};
        auto text = slurp(out);
        res.summary = json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (res.summary.is_discarded()) res.err += "\n(standard output: " + text + ")";
        return res;
    }

    // What the collector received: one JSON object per message.
    std::vector<json> received() const {
        std::vector<json> out;
        for (const auto& line : lines_of(slurp(record_file())))
            out.push_back(json::parse(line));
        return out;
    }

    static std::vector<json> soap_of(const std::vector<json>& records,
                                     const std::string& action_suffix) {
        std::vector<json> out;
        for (const auto& r : records)
            if (r.value("kind", "") == "soap" && r["action"].is_string()) {
                auto action = r["action"].get<std::string>();
                if (action.size() >= action_suffix.size() &&
                    action.compare(action.size() - action_suffix.size(), action_suffix.size(),
                                   action_suffix) == 0)
                    out.push_back(r);
            }
        return out;
    }

    // No message broke the protocol's shape (the collector answered none with 400).
    static void expect_no_violation(const std::vector<json>& records) {
        for (const auto& r : records) {
            EXPECT_TRUE(r["violations"].empty()) << r.dump();
            EXPECT_NE(r.value("status", 0), 400) << r.dump();
        }
    }

    // The (machine, record id) pairs of the accepted Events messages; every event's Computer is
    // the message's MachineID (the generator and --evtx without --split-by-computer differ:
    // `check_computer` false).
    static std::multiset<Key> accepted_events(const std::vector<json>& records,
                                              bool check_computer = true) {
        std::multiset<Key> out;
        for (const auto& r : soap_of(records, "/wsman/Events")) {
            if (r["status"] != 200) continue;
            const auto machine = r["machine"].get<std::string>();
            const auto& ids = r["record_ids"];
            EXPECT_EQ(r["events"], ids.size()) << r.dump();
            for (std::size_t i = 0; i < ids.size(); ++i) {
                if (check_computer) {
                    EXPECT_EQ(r["computers"][i], machine) << r.dump();
                }
                out.insert({machine, ids[i].get<std::uint64_t>()});
            }
        }
        return out;
    }

    // Generated mode: host-0..host-(hosts-1) push events/hosts events each, record ids from 1001.
    static std::multiset<Key> generated(std::size_t events, std::size_t hosts) {
        std::multiset<Key> out;
        for (std::size_t h = 0; h < hosts; ++h)
            for (std::size_t k = 0; k < events / hosts + (h < events % hosts ? 1 : 0); ++k)
                out.insert({"host-" + std::to_string(h) + ".windomain.local", 1001 + k});
        return out;
    }

    static std::set<std::string> mechanisms(const std::vector<json>& records) {
        std::set<std::string> out;
        for (const auto& r : records)
            if (r.contains("mechanism")) out.insert(r["mechanism"].get<std::string>());
        return out;
    }
};

// The collector's own calibration: the real Windows messages (tests/data/wsman, sent by
// tests/interop/wef_client.py with python3-gssapi) are accepted as they are, in both Kerberos
// forms: Enumerate, End, Heartbeat (Windows' own SLDC bytes), 21 Events, the bookmark offered back
// at the next Enumerate, SubscriptionEnd. The subscription takes the Windows session's Identifier
// and NotifyTo path, which the recorded Heartbeat and Events carry.
TEST_F(ReplayPythonCollector, WindowsSequenceIsAccepted) {
    for (const std::string mech : {"kerberos", "spnego"}) {
        SCOPED_TRACE(mech);
        start_collector({"--identifier", "219C5353-5F3D-4CD7-A644-F6B69E57C1C1", "--notify-path",
                         "/wsman/subscriptions/B6BDBB59-FB07-4EE5-841F-EBEC9D67CDD4/1"});
        auto env = realm_->realm.env();
        env["KRB5CCNAME"] = realm_->ccache;
        auto r = run({"/usr/bin/python3",
                      std::string(WEC_SOURCE_DIR) + "/tests/interop/wef_client.py", "--url",
                      "http://127.0.0.1:" + std::to_string(port) + "/wsman/SubscriptionManager/WEC",
                      "--service", "HTTP@" + kHost, "--mech", mech, "--samples",
                      std::string(WEC_TEST_DATA) + "/wsman", "--subscription", "security"},
                     env, 60s);
        ASSERT_EQ(r.exit_code, 0) << r.output;
        auto records = received();
        expect_no_violation(records);
        auto heartbeats = soap_of(records, "/wsman/Heartbeat");
        ASSERT_EQ(heartbeats.size(), 1u);
        EXPECT_EQ(heartbeats[0]["compressed"], true);
        auto events = soap_of(records, "/wsman/Events");
        ASSERT_EQ(events.size(), 1u);
        EXPECT_EQ(events[0]["events"], 21);
        EXPECT_EQ(events[0]["machine"], "win10.windomain.local");
        EXPECT_EQ(soap_of(records, "/Enumerate").size(), 2u);
        EXPECT_EQ(soap_of(records, "/SubscriptionEnd").size(), 1u);
    }
    // The checks bite: with a subscription of its own (a new Identifier and NotifyTo path), the
    // recorded Heartbeat is for another subscription: 400 and a recorded violation.
    start_collector();
    auto env = realm_->realm.env();
    env["KRB5CCNAME"] = realm_->ccache;
    auto r =
        run({"/usr/bin/python3", std::string(WEC_SOURCE_DIR) + "/tests/interop/wef_client.py",
             "--url", "http://127.0.0.1:" + std::to_string(port) + "/wsman/SubscriptionManager/WEC",
             "--service", "HTTP@" + kHost, "--samples", std::string(WEC_TEST_DATA) + "/wsman",
             "--subscription", "security"},
            env, 60s);
    EXPECT_EQ(r.exit_code, 1) << r.output;
    auto heartbeats = soap_of(received(), "/wsman/Heartbeat");
    ASSERT_EQ(heartbeats.size(), 1u);
    EXPECT_EQ(heartbeats[0]["status"], 400);
    EXPECT_NE(heartbeats[0]["violations"].dump().find("NotifyTo"), std::string::npos)
        << heartbeats[0].dump();
}

// Kerberos as Windows sends it (`Authorization: Kerberos`, HTTP-Kerberos-session-encrypted) and
// SPNEGO (`Negotiate`, HTTP-SPNEGO-session-encrypted), with and without SLDC: every generated
// event arrives once, under its host's MachineID, with its record id; no message breaks the shape.
TEST_F(ReplayPythonCollector, KerberosRawAndSpnegoDeliverEveryEvent) {
    struct Form {
        std::vector<std::string> args;
        std::string mechanism;
        std::string json_mechanism;
    };
    const std::vector<Form> forms{
        {{}, "Kerberos", "kerberos"},
        {{"--spnego"}, "SPNEGO-Kerberos", "spnego"},
        {{"--no-compress"}, "Kerberos", "kerberos"},
        {{"--spnego", "--tab"}, "SPNEGO-Kerberos", "spnego"},
        // Every message rendered and compressed before the send loop: the same messages.
        {{"--precompress"}, "Kerberos", "kerberos"},
        {{"--spnego", "--precompress"}, "SPNEGO-Kerberos", "spnego"},
        // Records shaped like Windows' (the optimal parse), live and prepared beforehand: the
        // independent collector's SLDC decoder reads them.
        {{"--sldc-level", "best"}, "Kerberos", "kerberos"},
        {{"--precompress", "--sldc-level", "best"}, "Kerberos", "kerberos"},
    };
    double fast_ratio = 0, best_ratio = 0; // the highest SOAP / SLDC size ratio of each level
    for (const auto& form : forms) {
        SCOPED_TRACE(form.mechanism + (form.args.empty() ? "" : " " + form.args.back()));
        start_collector();
        std::vector<std::string> args{"--events", "300", "--batch",       "40",
                                      "--hosts",  "3",   "--connections", "2"};
        args.insert(args.end(), form.args.begin(), form.args.end());
        auto r = replay(args);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const auto& j = r.summary;
        EXPECT_EQ(j["events_acked"], 300);
        EXPECT_EQ(j["mechanism"], form.json_mechanism);

        auto records = received();
        expect_no_violation(records);
        EXPECT_EQ(accepted_events(records), generated(300, 3));
        EXPECT_EQ(mechanisms(records), std::set<std::string>{form.mechanism});
        for (const auto& rec : records)
            if (rec.contains("client")) {
                EXPECT_EQ(rec["client"], "WIN10$@" + realm_->realm.realm());
            }
        // Each host enumerated under its own MachineID, then ended the enumeration.
        std::set<std::string> enumerated;
        for (const auto& e : soap_of(records, "/Enumerate"))
            enumerated.insert(e["machine"].get<std::string>());
        EXPECT_EQ(enumerated,
                  (std::set<std::string>{"host-0.windomain.local", "host-1.windomain.local",
                                         "host-2.windomain.local"}));
        EXPECT_FALSE(soap_of(records, "/wsman/End").empty());
        // SLDC unless --no-compress.
        bool no_compress =
            std::find(form.args.begin(), form.args.end(), "--no-compress") != form.args.end();
        for (const auto& e : soap_of(records, "/wsman/Events"))
            EXPECT_EQ(e["compressed"], !no_compress) << e.dump();
        const bool best = std::find(form.args.begin(), form.args.end(), "best") != form.args.end();
        if (no_compress) {
            EXPECT_FALSE(j.contains("sldc_level")) << j.dump();
            continue;
        }
        EXPECT_EQ(j["sldc_level"], best ? "best" : "fast") << j.dump();
        // How much the records shrank the SOAP (the optimal parse: more).
        double soap = 0, sldc = 0;
        for (const auto& e : soap_of(records, "/wsman/Events")) {
            soap += e["soap_bytes"].get<double>();
            sldc += e["sldc_bytes"].get<double>();
        }
        ASSERT_GT(sldc, 0) << form.mechanism;
        double& ratio = best ? best_ratio : fast_ratio;
        ratio = std::max(ratio, soap / sldc);
    }
    EXPECT_GT(best_ratio, fast_ratio) << "--sldc-level best did not compress better than fast";
}

// A subscription with MaxElements 20 and MaxEnvelopeSize 65536: the generated batches of 100 are
// cut to fit both (the collector refuses a message that exceeds either with 400), every event
// still arrives once.
TEST_F(ReplayPythonCollector, GeneratedBatchesHonourMaxElementsAndMaxEnvelopeSize) {
    for (const std::string envelope : {"512000", "65536", "65536 --precompress"}) {
        SCOPED_TRACE("MaxEnvelopeSize " + envelope);
        const bool precompress = envelope.find("--precompress") != std::string::npos;
        const std::string size = envelope.substr(0, envelope.find(' '));
        start_collector({"--max-elements", "20", "--max-envelope-size", size});
        std::vector<std::string> args{"--events", "300", "--batch",       "100",
                                      "--hosts",  "2",   "--connections", "2"};
        if (precompress) args.emplace_back("--precompress");
        auto r = replay(args);
        ASSERT_EQ(r.exit_code, 0) << r.err << r.summary.dump();
        EXPECT_EQ(r.summary["events_acked"], 300);
        auto records = received();
        expect_no_violation(records);
        EXPECT_EQ(accepted_events(records), generated(300, 2));
        std::size_t largest = 0;
        for (const auto& e : soap_of(records, "/wsman/Events")) {
            largest = std::max<std::size_t>(largest, e["events"].get<std::size_t>());
            EXPECT_LE(e["soap_bytes"].get<std::size_t>(), std::stoul(size)) << e.dump();
        }
        EXPECT_LE(largest, 20u);
        EXPECT_GT(largest, 1u);
    }
}

// NTLM (`wec replay --ntlm DOMAIN\USER:PASSWORD`): raw NTLMSSP in `Negotiate` as Windows sends
// it, and NTLM inside SPNEGO (--spnego), against gss-ntlmssp's acceptor; sealed with NTLM's
// signature || sealed form.
TEST_F(ReplayPythonCollector, NtlmRawAndInSpnegoDeliverEveryEvent) {
    for (const bool spnego : {false, true}) {
        SCOPED_TRACE(spnego ? "spnego-ntlm" : "ntlm");
        start_collector();
        std::vector<std::string> args{
            "--ntlm", kNtlmUser + ":" + kNtlmPassword, "--events", "120", "--batch", "50"};
        if (spnego) args.push_back("--spnego");
        auto r = replay(args);
        ASSERT_EQ(r.exit_code, 0) << r.err;
        const auto& j = r.summary;
        EXPECT_EQ(j["events_acked"], 120);
        EXPECT_EQ(j["mechanism"], spnego ? "spnego-ntlm" : "ntlm");

        auto records = received();
        expect_no_violation(records);
        EXPECT_EQ(accepted_events(records), generated(120, 1));
        EXPECT_EQ(mechanisms(records), std::set<std::string>{spnego ? "SPNEGO-NTLM" : "NTLM"});
        for (const auto& rec : records)
            if (rec.contains("client")) {
                EXPECT_EQ(rec["client"], kNtlmUser);
            }
        // NEGOTIATE, CHALLENGE, AUTHENTICATE: a 401 with a challenge on each connection.
        std::size_t challenges = 0;
        for (const auto& rec : records)
            if (rec.value("leg", "") == "challenge") ++challenges;
        EXPECT_GE(challenges, 2u); // the Enumerate connection and the NotifyTo one
    }
    // A wrong password: the collector refuses (401), nothing is delivered, exit 3.
    start_collector();
    auto r = replay({"--ntlm", kNtlmUser + ":wrong", "--events", "10"});
    EXPECT_EQ(r.exit_code, 3) << r.err;
    EXPECT_TRUE(soap_of(received(), "").empty());
}

// The collector answers 503 to the first two Events messages. A collector that fails must never
// lose events the source counts as delivered (at-least-once): every event the replay reports
// acknowledged is in a message the collector accepted (200). Windows resends a refused batch;
// a replay that does so too delivers everything (exit 0), the refused batches included; one that
// does not stops that host at the refused batch and says so (exit 1, HTTP 503 in its errors).
TEST_F(ReplayPythonCollector, RefusedEventsAreResentOrNotCountedAsDelivered) {
    for (const bool precompress : {false, true}) {
        SCOPED_TRACE(precompress ? "--precompress" : "built live");
        start_collector({"--fail-first-events", "2", "--connection-retry", "1"});
        std::vector<std::string> args{"--events", "200", "--batch", "50"};
        if (precompress) args.emplace_back("--precompress");
        auto r = replay(args);
        const auto& j = r.summary;
        ASSERT_TRUE(j.is_object()) << r.err;
        auto records = received();
        expect_no_violation(records);
        auto events = soap_of(records, "/wsman/Events");
        ASSERT_FALSE(events.empty());
        EXPECT_EQ(events[0]["status"], 503);
        std::size_t refused = 0;
        std::set<Key> in_refused;
        for (const auto& e : events)
            if (e["status"] == 503) {
                ++refused;
                for (const auto& id : e["record_ids"])
                    in_refused.insert({e["machine"].get<std::string>(), id.get<std::uint64_t>()});
            }
        auto accepted = accepted_events(records);
        const std::set<Key> distinct(accepted.begin(), accepted.end());
        EXPECT_EQ(j["events_acked"].get<std::size_t>(), distinct.size()) << j.dump();
        if (r.exit_code == 0) {
            EXPECT_EQ(refused, 2u);
            const auto all = generated(200, 1);
            EXPECT_EQ(distinct, std::set<Key>(all.begin(), all.end()));
            for (const auto& k : in_refused)
                EXPECT_EQ(distinct.count(k), 1u) << k.first << " " << k.second;
        } else {
            EXPECT_EQ(r.exit_code, 1) << r.err << j.dump();
            EXPECT_EQ(refused, 1u); // the one host stopped at its first refused batch
            EXPECT_EQ(j["batches_failed"], 1);
            EXPECT_LT(j["events_acked"].get<std::size_t>(), 200u);
            EXPECT_NE(j["errors"].dump().find("HTTP 503"), std::string::npos) << j.dump();
        }
    }
}

// --from: the Events message of a real Windows capture (decoded by `wec decode`) replayed as
// recorded: its 21 events, its MachineID and its bookmark, byte for byte.
TEST_F(ReplayPythonCollector, CapturedWindowsEventsReplayedAsRecorded) {
    const std::string sample = std::string(WEC_SOURCE_DIR) + "/samples/captures/";
    auto decoded = run({WEC_EXE, "decode", sample + "wef-kerberos.pcap", "--keytab",
                        sample + "wec.keytab", "--format", "json"});
    ASSERT_EQ(decoded.exit_code, 0) << decoded.output;
    std::string recorded_bookmark;
    std::size_t recorded_events = 0;
    auto jsonl = dir.path() / "capture.jsonl";
    {
        std::ofstream out(jsonl);
        for (const auto& line : lines_of(decoded.output)) {
            auto j = json::parse(line, nullptr, false);
            if (j.is_discarded()) continue; // a diagnostic line, not a record
            out << line << "\n";
            if (j["direction"] == "request" && j.value("action", "") == "Events") {
                recorded_bookmark = j["bookmark"];
                recorded_events += j["events"].get<std::size_t>();
            }
        }
    }
    ASSERT_EQ(recorded_events, 21u);
    start_collector();
    auto r = replay({"--from", jsonl.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err << r.summary.dump();
    EXPECT_EQ(r.summary["events_acked"], 21);
    auto records = received();
    expect_no_violation(records);
    auto events = soap_of(records, "/wsman/Events");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0]["events"], 21);
    EXPECT_EQ(events[0]["machine"], "win10.windomain.local");
    // The same BookmarkList (the collector re-serialises it: compare channel and RecordId).
    std::smatch want, got;
    const std::regex mark("Channel=\"([^\"]+)\" RecordId=\"(\\d+)\"");
    ASSERT_TRUE(std::regex_search(recorded_bookmark, want, mark)) << recorded_bookmark;
    const auto got_bookmark = events[0]["bookmark"].get<std::string>();
    ASSERT_TRUE(std::regex_search(got_bookmark, got, mark)) << got_bookmark;
    EXPECT_EQ(got[1], want[1]);
    EXPECT_EQ(got[2], want[2]);
}

// --from: the recorded message of 21 events against MaxElements 5 is split in order (5, 5, 5, 5,
// 1): the earlier parts carry the bookmark of their own last event (the collector checks it),
// the last part the recorded bookmark.
TEST_F(ReplayPythonCollector, CapturedMessageSplitToMaxElementsKeepsItsBookmarkLast) {
    const std::string sample = std::string(WEC_SOURCE_DIR) + "/samples/captures/";
    auto decoded = run({WEC_EXE, "decode", sample + "wef-kerberos.pcap", "--keytab",
                        sample + "wec.keytab", "--format", "json"});
    ASSERT_EQ(decoded.exit_code, 0) << decoded.output;
    std::string recorded_bookmark;
    auto jsonl = dir.path() / "capture.jsonl";
    {
        std::ofstream out(jsonl);
        for (const auto& line : lines_of(decoded.output)) {
            auto j = json::parse(line, nullptr, false);
            if (j.is_discarded()) continue;
            out << line << "\n";
            if (j["direction"] == "request" && j.value("action", "") == "Events")
                recorded_bookmark = j["bookmark"];
        }
    }
    start_collector({"--max-elements", "5"});
    auto r = replay({"--from", jsonl.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err << r.summary.dump();
    EXPECT_EQ(r.summary["events_acked"], 21);
    EXPECT_EQ(r.summary["messages_acked"], 5);
    EXPECT_EQ(r.summary["batches_split"], 1);
    auto records = received();
    expect_no_violation(records);
    auto events = soap_of(records, "/wsman/Events");
    ASSERT_EQ(events.size(), 5u);
    for (std::size_t i = 0; i < 5; ++i)
        EXPECT_EQ(events[i]["events"], i < 4 ? 5 : 1) << events[i].dump();
    const std::regex mark("Channel=\"([^\"]+)\" RecordId=\"(\\d+)\"");
    std::smatch want, got;
    ASSERT_TRUE(std::regex_search(recorded_bookmark, want, mark)) << recorded_bookmark;
    const auto last_bookmark = events.back()["bookmark"].get<std::string>();
    ASSERT_TRUE(std::regex_search(last_bookmark, got, mark)) << last_bookmark;
    EXPECT_EQ(got[1], want[1]);
    EXPECT_EQ(got[2], want[2]);
    // The first part's bookmark is its own 5th event, before the recorded one.
    const auto first_bookmark = events.front()["bookmark"].get<std::string>();
    ASSERT_TRUE(std::regex_search(first_bookmark, got, mark)) << first_bookmark;
    EXPECT_EQ(std::stoull(got[2]), events.front()["record_ids"][4].get<std::uint64_t>());
    EXPECT_LT(std::stoull(got[2]), std::stoull(want[2]));
}

// --evtx: the 2,261 records of a real Security log arrive as well-formed `<Event>` XML (the
// collector parses each one), with their record ids, in record order, bookmarks following.
TEST_F(ReplayPythonCollector, EvtxRecordsArriveAsWellFormedEvents) {
    const auto evtx_file = fs::path(WEC_TEST_DATA) / "evtx" / "security.evtx";
    std::vector<std::uint64_t> expected;
    {
        wec::evtx::Reader reader(evtx_file);
        wec::evtx::Record record;
        while (reader.next(record))
            expected.push_back(record.record_id);
    }
    ASSERT_EQ(expected.size(), 2261u);
    start_collector();
    auto r = replay({"--evtx", evtx_file.string(), "--batch", "150"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.summary["events_acked"], 2261);
    auto records = received();
    expect_no_violation(records);
    std::vector<std::uint64_t> got;
    for (const auto& e : soap_of(records, "/wsman/Events")) {
        ASSERT_EQ(e["status"], 200) << e.dump();
        EXPECT_EQ(e["machine"], "win10.windomain.local");
        for (const auto& id : e["record_ids"])
            got.push_back(id.get<std::uint64_t>());
    }
    EXPECT_EQ(got, expected);
}

// The records of security.evtx and their (channel, record id), in order.
struct EvtxRecords {
    std::vector<std::string> xml;
    std::vector<std::uint64_t> ids;
};
EvtxRecords security_records() {
    EvtxRecords out;
    wec::evtx::Reader reader(fs::path(WEC_TEST_DATA) / "evtx" / "security.evtx");
    wec::evtx::Record record;
    while (reader.next(record)) {
        out.xml.push_back(record.xml);
        out.ids.push_back(record.record_id);
    }
    return out;
}

// The files modes cut their batches (--batch 400) to the subscription's MaxElements 20 and
// MaxEnvelopeSize 65536 once it is known, as a Windows source does: every record arrives once, in
// order, no message exceeds either limit (the collector refuses one that does with 400), and each
// message's bookmark is its own last event (the collector checks it: a split message carries the
// bookmark of its part, never that of the whole batch). --evtx, then the same events as --xml.
TEST_F(ReplayPythonCollector, FilesBatchesAreCutToMaxElementsAndMaxEnvelopeSize) {
    const auto records = security_records();
    ASSERT_EQ(records.ids.size(), 2261u);
    auto xml_file = dir.path() / "security.jsonl"; // one JSON string per line
    {
        std::ofstream out(xml_file);
        for (const auto& x : records.xml)
            out << json(x).dump() << "\n";
    }
    const std::string evtx_file = (fs::path(WEC_TEST_DATA) / "evtx" / "security.evtx").string();
    for (const auto& input : std::vector<std::vector<std::string>>{{"--evtx", evtx_file},
                                                                   {"--xml", xml_file.string()}}) {
        SCOPED_TRACE(input[0]);
        start_collector({"--max-elements", "20", "--max-envelope-size", "65536"});
        auto args = input;
        args.insert(args.end(), {"--batch", "400"});
        auto r = replay(args);
        ASSERT_EQ(r.exit_code, 0) << r.err << r.summary.dump();
        EXPECT_EQ(r.summary["events_acked"], 2261);
        EXPECT_EQ(r.summary["events_dropped"], 0);
        EXPECT_GT(r.summary["batches_split"].get<int>(), 0);
        auto received_records = received();
        expect_no_violation(received_records);
        std::vector<std::uint64_t> got;
        std::size_t largest = 0;
        const std::regex mark("Channel=\"Security\" RecordId=\"(\\d+)\"");
        for (const auto& e : soap_of(received_records, "/wsman/Events")) {
            ASSERT_EQ(e["status"], 200) << e.dump();
            EXPECT_LE(e["soap_bytes"].get<std::size_t>(), 65536u) << e.dump();
            EXPECT_LE(e["events"].get<std::size_t>(), 20u) << e.dump();
            largest = std::max(largest, e["soap_bytes"].get<std::size_t>());
            for (const auto& id : e["record_ids"])
                got.push_back(id.get<std::uint64_t>());
            // The message's bookmark: its own last record.
            std::smatch m;
            const auto bookmark = e["bookmark"].get<std::string>();
            ASSERT_TRUE(std::regex_search(bookmark, m, mark)) << bookmark;
            EXPECT_EQ(std::stoull(m[1]), got.back()) << e.dump();
        }
        EXPECT_EQ(got, records.ids);
        EXPECT_GT(largest, 65536u / 4); // cut by size, not one event a message
    }
}

// An event larger than MaxEnvelopeSize allows is dropped, as Windows drops it, and said so; the
// others arrive with bookmarks that still follow the log (the dropped one's position included).
TEST_F(ReplayPythonCollector, EventTooLargeForTheEnvelopeIsDroppedAndReported) {
    const auto records = security_records();
    auto xml_file = dir.path() / "events.jsonl";
    std::string huge = records.xml[5];
    const auto data = huge.find("</EventData>");
    ASSERT_NE(data, std::string::npos) << huge;
    huge.insert(data, "<Data Name=\"Padding\">" + std::string(40000, 'x') + "</Data>");
    {
        std::ofstream out(xml_file);
        for (std::size_t i = 0; i < 10; ++i)
            out << json(i == 5 ? huge : records.xml[i]).dump() << "\n";
    }
    start_collector({"--max-envelope-size", "65536"});
    auto r = replay({"--xml", xml_file.string(), "--batch", "100"});
    EXPECT_EQ(r.exit_code, 1) << r.err << r.summary.dump();
    EXPECT_EQ(r.summary["events_acked"], 9);
    EXPECT_EQ(r.summary["events_dropped"], 1);
    EXPECT_NE(r.err.find("event Security/" + std::to_string(records.ids[5])), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("exceeds MaxEnvelopeSize 65536: dropped"), std::string::npos) << r.err;
    auto received_records = received();
    expect_no_violation(received_records);
    std::vector<std::uint64_t> got, want(records.ids.begin(), records.ids.begin() + 10);
    want.erase(want.begin() + 5);
    for (const auto& e : soap_of(received_records, "/wsman/Events"))
        for (const auto& id : e["record_ids"])
            got.push_back(id.get<std::uint64_t>());
    EXPECT_EQ(got, want);
}

// A first Enumerate that finds no collector (connection refused) is retried as a message is
// (ConnectionRetry, at most --retry-interval, up to Total): the collector started a few seconds
// later gets every event.
TEST_F(ReplayPythonCollector, FirstEnumerateIsRetriedUntilTheCollectorListens) {
    const int later_port = free_port();
    const auto records = security_records();
    auto xml_file = dir.path() / "events.jsonl";
    {
        std::ofstream out(xml_file);
        for (std::size_t i = 0; i < 50; ++i)
            out << json(records.xml[i]).dump() << "\n";
    }
    auto out = dir.path() / "late.out";
    auto err = dir.path() / "late.err";
    auto env = realm_->realm.env();
    env["KRB5CCNAME"] = realm_->ccache;
    const std::string command =
        std::string(WEC_EXE) + " replay --url http://127.0.0.1:" + std::to_string(later_port) +
        "/wsman/SubscriptionManager/WEC --service HTTP@" + kHost +
        " --timeout 20 --json --retry-interval 2 --xml " + xml_file.string();
    Process replaying({"/bin/sh", "-c", command + " >" + out.string() + " 2>" + err.string()}, env,
                      dir.path() / "late.log");
    std::this_thread::sleep_for(3s); // refused meanwhile
    start_collector({"--port", std::to_string(later_port)});
    ASSERT_EQ(port, later_port);
    ASSERT_EQ(replaying.wait(120s), 0) << slurp(err) << slurp(out);
    auto summary = json::parse(slurp(out));
    EXPECT_EQ(summary["events_acked"], 50) << summary.dump();
    EXPECT_GT(summary["retries"].get<int>(), 0) << summary.dump();
    auto received_records = received();
    expect_no_violation(received_records);
    EXPECT_EQ(accepted_events(received_records, false).size(), 50u);
}

// "2016-07-08T18:12:51.6816408Z" as ns since 1970 (0 when it is not such a time).
std::int64_t time_ns(const std::string& t) {
    std::smatch m;
    static const std::regex re(
        "(\\d{4})-(\\d{2})-(\\d{2})T(\\d{2}):(\\d{2}):(\\d{2})(?:\\.(\\d+))?Z?");
    if (!std::regex_match(t, m, re)) return 0;
    const std::chrono::year_month_day ymd{std::chrono::year(std::stoi(m[1])),
                                          std::chrono::month(std::stoul(m[2])),
                                          std::chrono::day(std::stoul(m[3]))};
    std::int64_t ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::sys_days(ymd).time_since_epoch())
            .count() +
        ((std::stoll(m[4]) * 60 + std::stoll(m[5])) * 60 + std::stoll(m[6])) * 1000000000LL;
    std::string frac = m[7].str().substr(0, 9);
    frac.resize(9, '0');
    return ns + std::stoll(frac);
}

// --speed: a message holds only events whose TimeCreated is within the subscription's MaxTime
// (1 s here) of its first one, as a Windows source sends what it gathered for MaxTime; every
// record still arrives, in order, bookmarks checked by the collector.
TEST_F(ReplayPythonCollector, SpeedClosesMessagesAtMaxTime) {
    std::map<std::uint64_t, std::int64_t> times;
    std::vector<std::uint64_t> expected;
    {
        wec::evtx::Reader reader(fs::path(WEC_TEST_DATA) / "evtx" / "security.evtx");
        wec::evtx::Record record;
        while (reader.next(record)) {
            expected.push_back(record.record_id);
            times[record.record_id] = time_ns(record.time_created);
            ASSERT_NE(times[record.record_id], 0) << record.time_created;
        }
    }
    std::int64_t first = times.begin()->second, last = first;
    for (const auto& [id, t] : times) {
        first = std::min(first, t);
        last = std::max(last, t);
    }
    // The recorded span replayed in about 3 seconds.
    const double span_s = static_cast<double>(last - first) / 1e9;
    ASSERT_GT(span_s, 10.0);
    start_collector({"--max-time", "1"});
    auto r = replay({"--evtx", (fs::path(WEC_TEST_DATA) / "evtx" / "security.evtx").string(),
                     "--batch", "1000", "--speed", std::to_string(span_s / 3)});
    ASSERT_EQ(r.exit_code, 0) << r.err << r.summary.dump();
    EXPECT_EQ(r.summary["events_acked"], 2261);
    auto received_records = received();
    expect_no_violation(received_records);
    std::vector<std::uint64_t> got;
    std::size_t messages = 0;
    for (const auto& e : soap_of(received_records, "/wsman/Events")) {
        ASSERT_EQ(e["status"], 200) << e.dump();
        ++messages;
        const auto& ids = e["record_ids"];
        const auto t0 = times.at(ids[0].get<std::uint64_t>());
        for (const auto& id : ids) {
            got.push_back(id.get<std::uint64_t>());
            EXPECT_LE(times.at(id.get<std::uint64_t>()) - t0, 1000000000LL) << e.dump();
        }
    }
    EXPECT_EQ(got, expected);
    EXPECT_GT(messages, 3u); // --batch 1000 alone would make 3
}

} // namespace

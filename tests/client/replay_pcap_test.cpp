// `wec replay --pcap` end to end: a real MIT KDC, two Windows-like sources (two machine accounts,
// two credential caches) replaying event XML into a real `wec serve` while tcpdump records lo;
// then the capture, decoded with the collector's keytab, replayed by `wec replay --pcap
// --identity P1=cc1 --identity P2=cc2` into a fresh collector (fresh state): it must write the
// same events per machine, in the same order, and store the same bookmarks as the first one.
// Also the clear failures: a keytab that opens nothing, an --identity no source used.
#include "client/client.hpp"
#include "support/files.hpp"
#include "support/krb5_realm.hpp"
#include "support/process.hpp"

#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>
#include <tuple>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace client = wec::client;

const std::string kHost = "srv.windomain.local";
const std::string kRealm = "WINDOMAIN.LOCAL";
const std::string kP1 = "WS1$@" + kRealm, kP2 = "WS2$@" + kRealm;
const std::string kM1 = "ws1.windomain.local", kM2 = "ws2.windomain.local";

// One event a line (the `--xml` input), Security and (every 4th) System channel.
void write_events(const fs::path& file, const std::string& computer, int count,
                  std::uint64_t first_record) {
    std::ofstream out(file);
    for (int k = 0; k < count; ++k) {
        const bool system = k % 4 == 3;
        out << "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
            << "<Provider Name='Microsoft-Windows-Security-Auditing' "
               "Guid='{54849625-5478-4994-a5ba-3e3b0328c30d}'/>"
            << "<EventID>" << (system ? 7036 : 4624) << "</EventID><Version>2</Version>"
            << "<Level>0</Level><Task>12544</Task><Opcode>0</Opcode>"
            << "<Keywords>0x8020000000000000</Keywords>"
            << "<TimeCreated SystemTime='2024-03-01T10:00:" << (10 + k) << ".1234567Z'/>"
            << "<EventRecordID>" << first_record + static_cast<std::uint64_t>(k)
            << "</EventRecordID><Correlation/><Execution ProcessID='4' ThreadID='88'/>"
            << "<Channel>" << (system ? "System" : "Security") << "</Channel>"
            << "<Computer>" << computer << "</Computer><Security/></System>"
            << "<EventData><Data Name='TargetUserName'>user" << k
            << "</Data></EventData></Event>\n";
    }
}

std::string quoted(const std::string& s) {
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

struct Split {
    int exit_code = -1;
    std::string out, err;
};
// `wec ARGS` with stdout and stderr kept apart.
Split wec_split(const fs::path& work, const std::vector<std::string>& args,
                const std::map<std::string, std::string>& env) {
    static int n = 0;
    auto out = work / ("cmd-" + std::to_string(++n) + ".out");
    auto err = work / ("cmd-" + std::to_string(n) + ".err");
    std::string cmd = quoted(WEC_EXE);
    for (const auto& a : args)
        cmd += " " + quoted(a);
    auto r = run({"/bin/sh", "-c", cmd + " >" + out.string() + " 2>" + err.string()}, env, 120s);
    return {r.exit_code, slurp(out), slurp(err)};
}

// The EventRecordIDs of raw event lines, in order.
std::vector<std::uint64_t> record_ids(const std::vector<std::string>& lines) {
    static const std::regex id("<EventRecordID>([0-9]+)</EventRecordID>");
    std::vector<std::uint64_t> out;
    for (const auto& l : lines) {
        std::smatch m;
        if (std::regex_search(l, m, id)) out.push_back(std::stoull(m[1].str()));
    }
    return out;
}

// A collector: its own state (SQLite) and files output, `wec serve` on a free port.
class Collector {
public:
    // `auth`: the --auth options of wec serve; `subscriptions`: their names (Security events
    // each; "security" written to events/{client}.xml, another NAME to events-NAME/{client}.xml).
    Collector(const fs::path& dir, const Krb5Realm& realm, const fs::path& keytab,
              std::vector<std::string> auth = {"--auth", "kerberos"},
              const std::vector<std::string>& subscriptions = {"security"})
        : dir_(dir) {
        fs::create_directories(dir_);
        const std::string db = "sqlite:" + (dir_ / "wec.db").string();
        for (const auto& name : subscriptions) {
            auto toml = dir_ / (name + ".toml");
            const auto out = name == "security" ? dir_ / "events" : dir_ / ("events-" + name);
            std::ofstream(toml) << "name = \"" << name << "\"\n"
                                << "query = '<QueryList><Query Id=\"0\"><Select "
                                   "Path=\"Security\">*</Select></Query></QueryList>'\n"
                                << "[[outputs]]\ndriver = \"files\"\npath = \""
                                << (out / "{client}.xml").string() << "\"\nformat = \"raw\"\n";
            auto r = run({WEC_EXE, "sub", "apply", toml.string(), "--db", db});
            if (r.exit_code != 0) throw std::runtime_error("wec sub apply: " + r.output);
        }
        port_ = free_port();
        std::vector<std::string> argv{WEC_EXE,      "serve",
                                      "--listen",   "127.0.0.1:" + std::to_string(port_),
                                      "--keytab",   keytab.string(),
                                      "--hostname", kHost,
                                      "--db",       db};
        argv.insert(argv.end(), auth.begin(), auth.end());
        serve_ = std::make_unique<Process>(argv, realm.env(), dir_ / "serve.log");
        if (!serve_->wait_for_output("wec serve started", 20s))
            throw std::runtime_error("wec serve did not start: " + serve_->output());
    }
    int port() const { return port_; }
    std::string url() const {
        return "http://127.0.0.1:" + std::to_string(port_) + "/wsman/SubscriptionManager/WEC";
    }
    std::vector<std::string> written(const std::string& principal,
                                     const std::string& subscription = "security") const {
        const auto out =
            subscription == "security" ? dir_ / "events" : dir_ / ("events-" + subscription);
        return lines_of(slurp(out / (principal + ".xml")));
    }
    // The bookmark the collector stored for the identity of `ccache` (or of the NTLM account
    // `ntlm_user`): Enumerate hands it back.
    std::string bookmark(const std::string& ccache, const std::string& ntlm_user = {},
                         const std::string& ntlm_password = {}) const {
        client::SourceOptions o;
        o.manager = client::Url::parse(url());
        o.service = "HTTP@" + kHost;
        o.ccache = ccache;
        if (!ntlm_user.empty()) {
            o.mechanism = wec::auth::Mechanism::Ntlm;
            o.ntlm_user = ntlm_user;
            o.ntlm_password = ntlm_password;
        }
        o.timeout = 15s;
        client::Source source(o);
        auto subs = source.enumerate();
        source.end();
        for (const auto& s : subs)
            if (s.name == "security") return s.bookmark;
        return "(security not offered)";
    }
    void stop() {
        if (!serve_) return;
        serve_->signal(SIGTERM);
        serve_->wait(20s);
    }
    std::string log() const { return serve_ ? serve_->output() : std::string(); }

private:
    fs::path dir_;
    int port_ = 0;
    std::unique_ptr<Process> serve_;
};

class ReplayPcap : public ::testing::Test {
protected:
    // Recorded once for the suite (one process: see CMakeLists.txt).
    static inline std::unique_ptr<TempDir> dir;
    static inline std::unique_ptr<Krb5Realm> realm;
    static inline std::unique_ptr<Collector> first;
    static inline fs::path service_keytab, other_keytab, pcap;
    static inline std::string cc1, cc2;
    static inline std::string setup_failure;

    static void SetUpTestSuite() {
        try {
            dir = std::make_unique<TempDir>();
            realm = std::make_unique<Krb5Realm>();
            for (const std::string& p :
                 std::vector<std::string>{"HTTP/" + kHost, "HOST/" + kHost, "WS1$", "WS2$"})
                realm->add_principal(p);
            service_keytab = realm->export_keytab({"HTTP/" + kHost, "HOST/" + kHost}, "wec.keytab");
            auto ws1 = realm->export_keytab({"WS1$"}, "ws1.keytab");
            auto ws2 = realm->export_keytab({"WS2$"}, "ws2.keytab");
            other_keytab = ws1; // keys, but not the collector's
            cc1 = realm->kinit(kP1, ws1);
            cc2 = realm->kinit(kP2, ws2);
            realm->apply_env(); // the in-process client (bookmarks) uses this realm

            write_events(dir->path() / "ws1.xml", kM1, 23, 5001);
            write_events(dir->path() / "ws2.xml", kM2, 17, 90001);

            first = std::make_unique<Collector>(dir->path() / "collector1", *realm, service_keytab);
            pcap = dir->path() / "two-sources.pcap";
            Process tcpdump({"tcpdump", "-i", "lo", "--immediate-mode", "-U", "-s", "0", "-B",
                             "32768", "-Z", "root", "-w", pcap.string(),
                             "tcp port " + std::to_string(first->port())},
                            {}, dir->path() / "tcpdump.log");
            if (!tcpdump.wait_for_output("listening on", 10s))
                throw std::runtime_error("tcpdump: " + tcpdump.output());
            std::this_thread::sleep_for(300ms);
            // Two sources, one after the other, each its own identity and MachineID, batches of
            // 5 and 4 events.
            struct Run {
                const char* file;
                std::string ccache;
                const char* batch;
            };
            for (const auto& r : {Run{"ws1.xml", cc1, "5"}, Run{"ws2.xml", cc2, "4"}}) {
                auto env = realm->env();
                env["KRB5CCNAME"] = r.ccache;
                auto x =
                    wec_split(dir->path(),
                              {"replay", "--url", first->url(), "--service", "HTTP@" + kHost,
                               "--xml", (dir->path() / r.file).string(), "--split-by-computer",
                               "--batch", r.batch, "--subscription", "security", "--timeout", "20"},
                              env);
                if (x.exit_code != 0)
                    throw std::runtime_error(std::string("replay ") + r.file + ": " + x.out +
                                             x.err);
            }
            std::this_thread::sleep_for(500ms); // the last packets into the file
            tcpdump.signal(SIGINT);
            tcpdump.wait(10s);
            if (tcpdump.output().find("\n0 packets dropped by kernel") == std::string::npos)
                throw std::runtime_error("tcpdump dropped packets: " + tcpdump.output());
        } catch (const std::exception& e) {
            setup_failure = e.what();
        }
    }
    static void TearDownTestSuite() {
        first.reset();
        realm.reset();
        dir.reset();
    }
    void SetUp() override { ASSERT_TRUE(setup_failure.empty()) << setup_failure; }

    std::map<std::string, std::string> env(const std::string& ccache) const {
        auto e = realm->env();
        e["KRB5CCNAME"] = ccache;
        return e;
    }
};

TEST_F(ReplayPcap, CaptureWithTwoSourcesReplaysAsTwoSources) {
    // What the first collector wrote and stored.
    const auto w1 = first->written(kP1), w2 = first->written(kP2);
    ASSERT_EQ(w1.size(), 23u) << first->log();
    ASSERT_EQ(w2.size(), 17u);
    const std::string b1 = first->bookmark(cc1), b2 = first->bookmark(cc2);
    ASSERT_NE(b1.find("RecordId=\"5023\""), std::string::npos) << b1;
    ASSERT_NE(b2.find("RecordId=\"90017\""), std::string::npos) << b2;

    // A fresh collector: its own state directory and output.
    Collector second(dir->path() / "collector2", *realm, service_keytab);
    auto r = wec_split(dir->path(),
                       {"replay", "--pcap", pcap.string(), "--keytab", service_keytab.string(),
                        "--identity", kP1 + "=" + cc1, "--identity", "ws2$=" + cc2, "--url",
                        second.url(), "--service", "HTTP@" + kHost, "--subscription", "security",
                        "--timeout", "20", "--json"},
                       env("FILE:/nonexistent/default.cc"));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << second.log();
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["sources"].size(), 2u) << j.dump(2);
    EXPECT_EQ(j["events_messages"], 5 + 5); // ceil(23/5) + ceil(17/4)
    EXPECT_EQ(j["events_acked"], 40);
    EXPECT_EQ(j["messages_failed"], 0);
    EXPECT_EQ(j["skipped"], 0);
    EXPECT_EQ(j["mechanism"], "kerberos");
    EXPECT_EQ(j["connections"], 2); // default: all the sources at once
    const auto& s1 = j["sources"][0];
    const auto& s2 = j["sources"][1];
    EXPECT_EQ(s1["source"], kP1);
    EXPECT_EQ(s1["split_by"], "kerberos");
    EXPECT_EQ(s1["machine"], kM1);
    EXPECT_EQ(s1["identity"], cc1);
    EXPECT_EQ(s1["identity_given"], true);
    EXPECT_EQ(s1["events_messages"], 5);
    EXPECT_EQ(s1["events_acked"], 23);
    EXPECT_EQ(s1["subscription"], "security");
    // The EnumerateResponse of the capture named the subscription the Events went to.
    EXPECT_EQ(s1["captured_subscriptions"], nlohmann::json::array({"security"}));
    EXPECT_EQ(s1["captured_subscription"], true);
    EXPECT_FALSE(s1.contains("subscription_note")) << s1.dump();
    EXPECT_EQ(s2["source"], kP2);
    EXPECT_EQ(s2["machine"], kM2);
    EXPECT_EQ(s2["identity"], cc2); // "ws2$" matched WS2$@WINDOMAIN.LOCAL
    EXPECT_EQ(s2["events_messages"], 5);
    EXPECT_EQ(s2["events_acked"], 17);
    EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err; // every source had its identity

    // Per machine (= per identity): the same events, same EventRecordIDs, same order.
    EXPECT_EQ(second.written(kP1), w1);
    EXPECT_EQ(second.written(kP2), w2);
    EXPECT_EQ(record_ids(second.written(kP1)), record_ids(w1));
    EXPECT_EQ(record_ids(second.written(kP2)), record_ids(w2));
    // ... and the same bookmarks, for both.
    EXPECT_EQ(second.bookmark(cc1), b1);
    EXPECT_EQ(second.bookmark(cc2), b2);

    // The human summary says the same.
    auto empty_dir = dir->path() / "collector3";
    Collector third(empty_dir, *realm, service_keytab);
    auto h = wec_split(dir->path(),
                       {"replay", "--pcap", pcap.string(), "--keytab", service_keytab.string(),
                        "--identity", kP1 + "=" + cc1, "--url", third.url(), "--service",
                        "HTTP@" + kHost, "--timeout", "20", "--connections", "1"},
                       env(cc2));
    // Only WS1$ named: WS2$ is replayed under the default identity (KRB5CCNAME), with a warning.
    ASSERT_EQ(h.exit_code, 0) << h.out << h.err;
    EXPECT_NE(h.out.find("sources:        2"), std::string::npos) << h.out;
    EXPECT_NE(h.out.find("events acked:   40 of 40 sent"), std::string::npos) << h.out;
    EXPECT_NE(
        h.err.find("warning: replayed under " + cc2 + " (KRB5CCNAME): " + kP2 + " (" + kM2 + ")"),
        std::string::npos)
        << h.err;
    EXPECT_EQ(third.written(kP1), w1);
    EXPECT_EQ(third.written(kP2), w2);
    second.stop();
    third.stop();
}

TEST_F(ReplayPcap, UnusableKeytabOrUnknownIdentityIsAClearError) {
    Collector target(dir->path() / "collector-neg", *realm, service_keytab);
    const std::vector<std::string> base{"replay",        "--pcap",     pcap.string(),
                                        "--url",         target.url(), "--service",
                                        "HTTP@" + kHost, "--timeout",  "20"};
    auto with = [&](std::vector<std::string> extra) {
        auto argv = base;
        argv.insert(argv.end(), extra.begin(), extra.end());
        return wec_split(dir->path(), argv, env(cc1));
    };
    // A keytab that does not exist: usage error (2).
    auto missing = with({"--keytab", (dir->path() / "nope.keytab").string()});
    EXPECT_EQ(missing.exit_code, 2) << missing.err;
    EXPECT_NE(missing.err.find("nope.keytab"), std::string::npos) << missing.err;
    // A keytab without the collector's keys: nothing decrypts, no Events: 1, and why.
    auto wrong = with({"--keytab", other_keytab.string(), "--json"});
    EXPECT_EQ(wrong.exit_code, 1) << wrong.out << wrong.err;
    EXPECT_NE(wrong.err.find("no Events message in " + pcap.string()), std::string::npos)
        << wrong.err;
    EXPECT_NE(wrong.err.find("not decrypted: "), std::string::npos) << wrong.err;
    EXPECT_EQ(nlohmann::json::parse(wrong.out)["sources"].size(), 0u) << wrong.out;
    // No keytab at all: the same, and the summary says none was given.
    auto none = with({});
    EXPECT_EQ(none.exit_code, 1) << none.err;
    EXPECT_NE(none.err.find("(no --keytab given)"), std::string::npos) << none.err;
    // An --identity for a principal that is not in the capture: 2, before anything is sent.
    auto unknown = with({"--keytab", service_keytab.string(), "--identity",
                         "NOBODY$@" + kRealm + "=" + cc1, "--identity", kP1 + "=" + cc1});
    EXPECT_EQ(unknown.exit_code, 2) << unknown.out << unknown.err;
    EXPECT_NE(unknown.err.find("--identity NOBODY$@" + kRealm +
                               ": no source of the capture authenticated as"),
              std::string::npos)
        << unknown.err;
    EXPECT_NE(unknown.err.find(kP1), std::string::npos) << unknown.err; // the sources listed
    // Malformed --identity, several --ccache, options of other modes: 2.
    EXPECT_EQ(with({"--keytab", service_keytab.string(), "--identity", "WS1$"}).exit_code, 2);
    EXPECT_EQ(with({"--ccache", cc1, "--ccache", cc2}).exit_code, 2);
    EXPECT_EQ(with({"--events", "10"}).exit_code, 2);
    EXPECT_EQ(with({"--sldc-level", "best"}).exit_code, 2);
    EXPECT_EQ(with({"--from", "x.jsonl"}).exit_code, 2);
    // --idle/--refresh are the generated hosts' (a capture's sources send what they recorded).
    auto idle = with({"--keytab", service_keytab.string(), "--idle", "5"});
    EXPECT_EQ(idle.exit_code, 2) << idle.err;
    EXPECT_NE(idle.err.find("--idle"), std::string::npos) << idle.err;
    EXPECT_EQ(with({"--keytab", service_keytab.string(), "--refresh", "5"}).exit_code, 2);
    // Nothing reached the collector.
    EXPECT_TRUE(target.written(kP1).empty());
    EXPECT_TRUE(target.written(kP2).empty());
    target.stop();
}

// NTLM: two accounts recorded, the capture decoded with their passwords, split by DOMAIN\user
// and replayed with --identity SOURCE=ntlm:DOMAIN\USER:PASSWORD into a fresh collector.
TEST_F(ReplayPcap, NtlmCaptureSplitsByAccount) {
    auto users = dir->path() / "ntlm-users";
    std::ofstream(users) << "LAB:alice:Alice-Pw-1\nLAB:bob:Bob-Pw-2\n";
    fs::permissions(users, fs::perms::owner_read | fs::perms::owner_write);
    const std::vector<std::string> auth{"--auth", "negotiate", "--ntlm-users", users.string()};
    const std::string alice = "LAB\\alice:Alice-Pw-1", bob = "LAB\\bob:Bob-Pw-2";

    Collector one(dir->path() / "ntlm1", *realm, service_keytab, auth);
    auto cap = dir->path() / "ntlm.pcap";
    {
        Process tcpdump({"tcpdump", "-i", "lo", "--immediate-mode", "-U", "-s", "0", "-B", "32768",
                         "-Z", "root", "-w", cap.string(),
                         "tcp port " + std::to_string(one.port())},
                        {}, dir->path() / "tcpdump-ntlm.log");
        ASSERT_TRUE(tcpdump.wait_for_output("listening on", 10s)) << tcpdump.output();
        std::this_thread::sleep_for(300ms);
        for (const auto& [file, account] :
             {std::pair{"ws1.xml", alice}, std::pair{"ws2.xml", bob}}) {
            auto x =
                wec_split(dir->path(),
                          {"replay", "--url", one.url(), "--service", "HTTP@" + kHost, "--ntlm",
                           account, "--xml", (dir->path() / file).string(), "--split-by-computer",
                           "--batch", "6", "--subscription", "security", "--timeout", "20"},
                          {});
            ASSERT_EQ(x.exit_code, 0) << x.out << x.err << one.log();
        }
        std::this_thread::sleep_for(500ms);
        tcpdump.signal(SIGINT);
        ASSERT_EQ(tcpdump.wait(10s), 0);
        ASSERT_NE(tcpdump.output().find("\n0 packets dropped by kernel"), std::string::npos)
            << tcpdump.output();
    }
    const auto w1 = one.written("LAB_alice"), w2 = one.written("LAB_bob");
    ASSERT_EQ(w1.size(), 23u) << one.log();
    ASSERT_EQ(w2.size(), 17u);
    const auto b1 = one.bookmark("", "LAB\\alice", "Alice-Pw-1");
    const auto b2 = one.bookmark("", "LAB\\bob", "Bob-Pw-2");
    ASSERT_NE(b1.find("RecordId=\"5023\""), std::string::npos) << b1;

    Collector two(dir->path() / "ntlm2", *realm, service_keytab, auth);
    auto r = wec_split(dir->path(),
                       {"replay",
                        "--pcap",
                        cap.string(),
                        "--password",
                        "Alice-Pw-1",
                        "--password",
                        "Bob-Pw-2",
                        "--identity",
                        "LAB\\alice=ntlm:" + alice,
                        "--identity",
                        "bob=ntlm:" + bob,
                        "--url",
                        two.url(),
                        "--service",
                        "HTTP@" + kHost,
                        "--subscription",
                        "security",
                        "--timeout",
                        "20",
                        "--json"},
                       {});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << two.log();
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["sources"].size(), 2u) << j.dump(2);
    for (int k = 0; k < 2; ++k) {
        const auto& s = j["sources"][static_cast<std::size_t>(k)];
        EXPECT_EQ(s["source"], k == 0 ? "LAB\\alice" : "LAB\\bob");
        EXPECT_EQ(s["split_by"], "ntlm");
        EXPECT_EQ(s["machine"], k == 0 ? kM1 : kM2);
        EXPECT_EQ(s["mechanism"], "ntlm");
        EXPECT_EQ(s["identity"], k == 0 ? "ntlm:LAB\\alice" : "ntlm:LAB\\bob"); // no password
        EXPECT_EQ(s["events_messages"], k == 0 ? 4 : 3);
    }
    EXPECT_EQ(r.out.find("Pw-"), std::string::npos) << "a password in the summary";
    EXPECT_EQ(two.written("LAB_alice"), w1);
    EXPECT_EQ(two.written("LAB_bob"), w2);
    EXPECT_EQ(two.bookmark("", "LAB\\alice", "Alice-Pw-1"), b1);
    EXPECT_EQ(two.bookmark("", "LAB\\bob", "Bob-Pw-2"), b2);
    one.stop();
    two.stop();
}

// Two sources that pushed to two subscriptions: each is replayed to its own when the collector
// offers it (whatever --subscription says), else to --subscription / the first offered, with a
// note; --connections bounds the sources replayed at once.
TEST_F(ReplayPcap, EachSourcePushesToItsCapturedSubscription) {
    const std::vector<std::string> both{"security", "audit"};
    const std::vector<std::string> auth{"--auth", "kerberos"};
    Collector one(dir->path() / "subs1", *realm, service_keytab, auth, both);
    auto cap = dir->path() / "subs.pcap";
    {
        Process tcpdump({"tcpdump", "-i", "lo", "--immediate-mode", "-U", "-s", "0", "-B", "32768",
                         "-Z", "root", "-w", cap.string(),
                         "tcp port " + std::to_string(one.port())},
                        {}, dir->path() / "tcpdump-subs.log");
        ASSERT_TRUE(tcpdump.wait_for_output("listening on", 10s)) << tcpdump.output();
        std::this_thread::sleep_for(300ms);
        for (const auto& [file, ccache, sub] :
             {std::tuple{"ws1.xml", cc1, "security"}, std::tuple{"ws2.xml", cc2, "audit"}}) {
            auto x = wec_split(dir->path(),
                               {"replay", "--url", one.url(), "--service", "HTTP@" + kHost, "--xml",
                                (dir->path() / file).string(), "--split-by-computer", "--batch",
                                "5", "--subscription", sub, "--timeout", "20"},
                               env(ccache));
            ASSERT_EQ(x.exit_code, 0) << x.out << x.err << one.log();
        }
        std::this_thread::sleep_for(500ms);
        tcpdump.signal(SIGINT);
        ASSERT_EQ(tcpdump.wait(10s), 0);
        ASSERT_NE(tcpdump.output().find("\n0 packets dropped by kernel"), std::string::npos)
            << tcpdump.output();
    }
    const auto w1 = one.written(kP1, "security"), w2 = one.written(kP2, "audit");
    ASSERT_EQ(w1.size(), 23u) << one.log();
    ASSERT_EQ(w2.size(), 17u) << one.log();
    ASSERT_TRUE(one.written(kP2, "security").empty());
    const std::vector<std::string> base{
        "replay",        "--pcap",        cap.string(), "--keytab",      service_keytab.string(),
        "--identity",    kP1 + "=" + cc1, "--identity", kP2 + "=" + cc2, "--service",
        "HTTP@" + kHost, "--timeout",     "20"};
    auto replay_to = [&](const Collector& c, std::vector<std::string> extra) {
        auto argv = base;
        argv.insert(argv.end(), {"--url", c.url()});
        argv.insert(argv.end(), extra.begin(), extra.end());
        return wec_split(dir->path(), argv, env("FILE:/nonexistent/default.cc"));
    };

    // Both offered: each source to its own, although --subscription names the other one.
    Collector two(dir->path() / "subs2", *realm, service_keytab, auth, both);
    auto r = replay_to(two, {"--subscription", "security", "--connections", "1", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << two.log();
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["sources"].size(), 2u) << j.dump(2); // still two sources
    EXPECT_EQ(j["connections"], 1);
    EXPECT_EQ(j["sources"][0]["subscription"], "security");
    EXPECT_EQ(j["sources"][1]["subscription"], "audit");
    EXPECT_EQ(j["sources"][1]["captured_subscriptions"], nlohmann::json::array({"audit"}));
    EXPECT_EQ(j["sources"][1]["captured_subscription"], true);
    EXPECT_EQ(two.written(kP1, "security"), w1);
    EXPECT_EQ(two.written(kP2, "audit"), w2);
    EXPECT_TRUE(two.written(kP2, "security").empty());
    EXPECT_TRUE(two.written(kP1, "audit").empty());

    // Only "security" offered: WS2$ falls back to it, and the summary says so.
    Collector three(dir->path() / "subs3", *realm, service_keytab);
    auto h = replay_to(three, {});
    ASSERT_EQ(h.exit_code, 0) << h.out << h.err << three.log();
    EXPECT_NE(h.out.find("events acked:   40 of 40 sent"), std::string::npos) << h.out;
    EXPECT_NE(h.out.find("note:           source 2: captured audit: not offered, replayed to the "
                         "first offered security"),
              std::string::npos)
        << h.out;
    EXPECT_EQ(h.out.find("note:           source 1"), std::string::npos) << h.out;
    EXPECT_EQ(three.written(kP1), w1);
    EXPECT_EQ(three.written(kP2), w2);
    one.stop();
    two.stop();
    three.stop();
}

} // namespace

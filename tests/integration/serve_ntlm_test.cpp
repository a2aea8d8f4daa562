// `wec serve --auth negotiate`: NTLM (through gss-ntlmssp) and Kerberos on one listener, end to
// end with independent peers only: pywinrm (transport='ntlm', message_encryption='always'),
// ntlm-auth by hand (NTLMv1, AUTHENTICATE on another connection), python3-gssapi with SPNEGO over
// gss-ntlmssp, and the Kerberos client of tests/interop/wef_client.py with a real MIT KDC.
#include "support/files.hpp"
#include "support/krb5_realm.hpp"
#include "support/process.hpp"
#include "support/wef_realm.hpp"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kHost = "srv.windomain.local";
const std::string kUser = "LAB\\alice";
const std::string kPassword = "Secret1!";

class ServeNtlm : public ::testing::Test {
protected:
    static inline std::unique_ptr<WefRealm> realm_;
    static void SetUpTestSuite() { realm_ = std::make_unique<WefRealm>(kHost); }
    static void TearDownTestSuite() { realm_.reset(); }

    TempDir dir;
    std::string db;
    fs::path users;
    int port = 0;
    std::unique_ptr<Process> server;

    void SetUp() override {
        db = "sqlite:" + (dir.path() / "wec.db").string();
        users = dir.path() / "ntlm-users";
        std::ofstream(users) << "# lab accounts\nLAB:alice:" << kPassword << "\n";
        fs::permissions(users, fs::perms::owner_read | fs::perms::owner_write);
    }

    void TearDown() override {
        if (server && HasFailure()) std::cerr << "---- wec serve log ----\n" << server->output();
    }

    void apply_subscription(const std::string& name, const std::string& extra = "") {
        auto file = dir.path() / (name + ".toml");
        std::ofstream(file)
            << "name = \"" << name << "\"\n"
            << "query = '<QueryList><Query Id=\"0\"><Select "
               "Path=\"Microsoft-Windows-WinRM/Operational\">*</Select></Query></QueryList>'\n"
            << extra << "\n"
            << "[[outputs]]\ndriver = \"files\"\npath = \""
            << (dir.path() / "events" / "{subscription}" / "{client}.json").string()
            << "\"\nformat = \"json\"\n";
        auto r = run({WEC_EXE, "sub", "apply", file.string(), "--db", db});
        ASSERT_EQ(r.exit_code, 0) << r.output;
    }

    std::vector<std::string> serve_argv(bool with_keytab = true) {
        port = free_port();
        std::vector<std::string> argv{
            WEC_EXE,      "serve",     "--listen",     "127.0.0.1:" + std::to_string(port),
            "--auth",     "negotiate", "--ntlm-users", users.string(),
            "--hostname", kHost,       "--db",         db};
        if (with_keytab) {
            argv.push_back("--keytab");
            argv.push_back(realm_->service_keytab.string());
        }
        return argv;
    }

    void start_server(std::vector<std::string> extra = {}, bool with_keytab = true) {
        auto argv = serve_argv(with_keytab);
        argv.insert(argv.end(), extra.begin(), extra.end());
        server = std::make_unique<Process>(argv, realm_->realm.env(), dir.path() / "serve.log");
        ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    }

    std::string url() const {
        return "http://127.0.0.1:" + std::to_string(port) + "/wsman/SubscriptionManager/WEC";
    }

    RunResult ntlm_client(const std::string& mode, const std::string& password = kPassword,
                          const std::string& subscription = "security",
                          bool skip_negative = false) {
        std::vector<std::string> argv{"/usr/bin/python3",
                                      std::string(WEC_SOURCE_DIR) +
                                          "/tests/interop/winrm_ntlm_client.py",
                                      "--url",
                                      url(),
                                      "--user",
                                      kUser,
                                      "--password",
                                      password,
                                      "--mode",
                                      mode,
                                      "--samples",
                                      std::string(WEC_TEST_DATA) + "/wsman",
                                      "--subscription",
                                      subscription,
                                      "--host",
                                      kHost};
        if (skip_negative) argv.push_back("--skip-negative");
        return run(argv, {}, 60s);
    }

    static std::map<std::string, nlohmann::json> steps(const std::string& output) {
        std::map<std::string, nlohmann::json> out;
        for (const auto& line : lines_of(output)) {
            auto j = nlohmann::json::parse(line, nullptr, false);
            if (j.is_object() && j.contains("step")) out[j["step"]] = j;
        }
        return out;
    }

    static std::size_t count(const std::string& text, const std::string& needle) {
        std::size_t n = 0;
        for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
            ++n;
        return n;
    }
};

TEST_F(ServeNtlm, PywinrmEnumerateHeartbeatEventsLandAndReplayTamperOrReorderIsRefused) {
    apply_subscription("security", "allowed_clients = ['LAB\\*']");
    start_server();
    auto r = ntlm_client("sequence");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto s = steps(r.output);
    ASSERT_TRUE(s.count("done")) << r.output;
    EXPECT_EQ(s["events"]["count"], 21);
    EXPECT_EQ(s["replay"]["status"], 400);
    EXPECT_EQ(s["tamper"]["status"], 400);
    EXPECT_EQ(s["reorder"]["status"], 400);

    // 21 events under the client's DOMAIN\USER identity, with the mechanism in the metadata.
    auto events = lines_of(slurp(dir.path() / "events" / "security" / "LAB_alice.json"));
    ASSERT_EQ(events.size(), 21u);
    auto first = nlohmann::json::parse(events.front());
    EXPECT_EQ(first["System"]["EventRecordID"], 149141);
    EXPECT_EQ(first["OpenWEC"]["Client"], kUser);
    EXPECT_EQ(first["OpenWEC"]["Mechanism"], "NTLM");

    auto log = server->output();
    EXPECT_NE(log.find("authenticated via Negotiate (NTLM)"), std::string::npos) << log;
    // Replayed, tampered, reordered: three bodies that did not verify.
    EXPECT_EQ(count(log, "cannot decrypt body"), 3u) << log;
    // NTLM on a listener that also has Kerberos: warned once for the host, not per connection.
    EXPECT_EQ(count(log, "host authenticated with NTLM on a listener that has Kerberos"), 1u)
        << log;

    server->signal(SIGTERM);
    EXPECT_EQ(server->wait(20s), 0) << server->output();
    auto status = run({WEC_EXE, "status", "--json", "--db", db});
    ASSERT_EQ(status.exit_code, 0) << status.output;
    auto st = nlohmann::json::parse(status.output);
    ASSERT_EQ(st.size(), 1u);
    EXPECT_EQ(st[0]["hosts"][0]["client"], kUser);
    EXPECT_EQ(st[0]["hosts"][0]["mechanism"], "NTLM");
}

TEST_F(ServeNtlm, WrongPasswordGets401AndNothingIsStored) {
    apply_subscription("security");
    start_server();
    auto r = ntlm_client("sequence", "not-the-password");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_EQ(steps(r.output)["enumerate"]["status"], 401) << r.output;
    EXPECT_FALSE(fs::exists(dir.path() / "events")) << r.output;
    EXPECT_NE(server->output().find("NTLM authentication of LAB\\\\alice"), std::string::npos)
        << server->output();
    server->signal(SIGTERM);
    EXPECT_EQ(server->wait(20s), 0);
    auto status = run({WEC_EXE, "status", "--json", "--db", db});
    ASSERT_EQ(status.exit_code, 0) << status.output;
    auto st = nlohmann::json::parse(status.output);
    ASSERT_EQ(st.size(), 1u);
    EXPECT_TRUE(st[0]["hosts"].empty()) << status.output;
}

TEST_F(ServeNtlm, DisallowedNtlmClientSeesNoSubscription) {
    apply_subscription("dc-only", "allowed_clients = ['OTHER\\*']");
    start_server();
    auto r = ntlm_client("sequence", kPassword, "dc-only");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("not listed"), std::string::npos) << r.output;
}

TEST_F(ServeNtlm, NtlmInsideSpnegoAuthenticatesAndSeals) {
    start_server();
    auto r = ntlm_client("spnego");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto s = steps(r.output);
    EXPECT_EQ(s["auth"]["legs"], 2) << r.output;
    EXPECT_EQ(s["enumerate"]["signature_length"], 16) << r.output;
}

TEST_F(ServeNtlm, AuthenticateOnAnotherConnectionThanItsChallengeIsRefused) {
    start_server();
    auto r = ntlm_client("cross");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto s = steps(r.output);
    EXPECT_EQ(s["authenticate_elsewhere"]["status"], 401);
    EXPECT_EQ(s["authenticate_same"]["status"], 200);
}

TEST_F(ServeNtlm, NtlmV1IsRefusedByDefaultAndAcceptedWhenAllowed) {
    start_server();
    auto r = ntlm_client("v1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto s = steps(r.output);
    EXPECT_EQ(s["v1"]["nt_response_length"], 24) << r.output; // really an NTLMv1 response
    EXPECT_EQ(s["v1"]["status"], 401) << r.output;
    EXPECT_NE(server->output().find("NTLMv1/LM response from LAB\\\\alice refused"),
              std::string::npos)
        << server->output();

    server->signal(SIGTERM);
    EXPECT_EQ(server->wait(20s), 0);
    start_server({"--ntlm-allow-v1"});
    EXPECT_NE(server->output().find("NTLMv1 and LM responses are accepted"), std::string::npos);
    r = ntlm_client("v1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(steps(r.output)["v1"]["status"], 200) << r.output;
}

TEST_F(ServeNtlm, SameListenerStillAcceptsKerberosRawAndSpnego) {
    apply_subscription("security");
    start_server();
    for (std::string mech : {"kerberos", "spnego"}) {
        auto env = realm_->realm.env();
        env["KRB5CCNAME"] = realm_->ccache;
        auto r =
            run({"/usr/bin/python3", std::string(WEC_SOURCE_DIR) + "/tests/interop/wef_client.py",
                 "--url", url(), "--service", "HTTP@" + kHost, "--mech", mech, "--samples",
                 std::string(WEC_TEST_DATA) + "/wsman", "--subscription", "security"},
                env, 60s);
        ASSERT_EQ(r.exit_code, 0) << mech << "\n" << r.output;
        EXPECT_TRUE(steps(r.output).count("done")) << r.output;
    }
    auto events =
        lines_of(slurp(dir.path() / "events" / "security" / "WIN10$@WINDOMAIN.LOCAL.json"));
    ASSERT_EQ(events.size(), 42u);
    auto first = nlohmann::json::parse(events.front());
    EXPECT_EQ(first["OpenWEC"]["Client"], "WIN10$@WINDOMAIN.LOCAL");
    EXPECT_EQ(first["OpenWEC"]["Mechanism"], "Kerberos");
    EXPECT_EQ(server->output().find("host authenticated with NTLM"), std::string::npos);
}

// One host with NTLM (pywinrm), one with Kerberos (raw, then SPNEGO) on the same listener and
// subscription: the request log and `wec status` (text and JSON) name each host's mechanism.
TEST_F(ServeNtlm, StatusAndLogsNameEachHostsMechanism) {
    apply_subscription("security");
    start_server();
    auto r = ntlm_client("sequence", kPassword, "security", /*skip_negative=*/true);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto env = realm_->realm.env();
    env["KRB5CCNAME"] = realm_->ccache;
    for (std::string mech : {"kerberos", "spnego"}) {
        r = run({"/usr/bin/python3", std::string(WEC_SOURCE_DIR) + "/tests/interop/wef_client.py",
                 "--url", url(), "--service", "HTTP@" + kHost, "--mech", mech, "--samples",
                 std::string(WEC_TEST_DATA) + "/wsman", "--subscription", "security"},
                env, 60s);
        ASSERT_EQ(r.exit_code, 0) << mech << "\n" << r.output;
    }
    auto log = server->output();
    EXPECT_NE(log.find("client=" + kUser + " mechanism=NTLM"), std::string::npos) << log;
    EXPECT_NE(log.find("client=WIN10$@WINDOMAIN.LOCAL mechanism=Kerberos"), std::string::npos)
        << log;
    server->signal(SIGTERM);
    ASSERT_EQ(server->wait(20s), 0) << server->output();

    auto status = run({WEC_EXE, "status", "--json", "--db", db});
    ASSERT_EQ(status.exit_code, 0) << status.output;
    auto st = nlohmann::json::parse(status.output);
    ASSERT_EQ(st.size(), 1u);
    std::map<std::string, std::string> mechanisms;
    for (const auto& h : st[0]["hosts"])
        mechanisms[h["client"].get<std::string>()] = h["mechanism"].get<std::string>();
    EXPECT_EQ(mechanisms, (std::map<std::string, std::string>{
                              {kUser, "NTLM"}, {"WIN10$@WINDOMAIN.LOCAL", "Kerberos"}}))
        << status.output;

    auto text = run({WEC_EXE, "status", "--db", db});
    ASSERT_EQ(text.exit_code, 0) << text.output;
    auto host_line = [&](const std::string& client) {
        for (const auto& line : lines_of(text.output))
            if (line.find(" " + client + " ") != std::string::npos) return line;
        return std::string();
    };
    EXPECT_NE(host_line(kUser).find(" NTLM "), std::string::npos) << text.output;
    EXPECT_NE(host_line("WIN10$@WINDOMAIN.LOCAL").find(" Kerberos "), std::string::npos)
        << text.output;
}

TEST_F(ServeNtlm, NtlmOnlyListenerWithoutKeytabServesNtlm) {
    apply_subscription("security");
    start_server({}, /*with_keytab=*/false);
    EXPECT_NE(server->output().find("NTLM (accounts of " + users.string() + ", NTLMv2 only)"),
              std::string::npos)
        << server->output();
    auto r = ntlm_client("sequence");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // No Kerberos here: no warning about NTLM being used instead.
    EXPECT_EQ(server->output().find("host authenticated with NTLM"), std::string::npos);
}

// lib/client's NTLM (wec replay --ntlm), raw NTLMSSP and NTLM in SPNEGO; a wrong password is an
// authentication error (exit 3) with nothing stored.
TEST_F(ServeNtlm, ReplayWithNtlmPushesEventsRawAndInSpnego) {
    apply_subscription("security");
    start_server();
    for (std::string form : {"ntlm", "spnego-ntlm"}) {
        std::vector<std::string> argv{WEC_EXE,          "replay",
                                      "--url",          url(),
                                      "--service",      "HTTP@" + kHost,
                                      "--ntlm",         kUser + ":" + kPassword,
                                      "--subscription", "security",
                                      "--events",       "120",
                                      "--batch",        "40",
                                      "--json"};
        if (form == "spnego-ntlm") argv.push_back("--spnego");
        auto r = run(argv, {}, 60s);
        ASSERT_EQ(r.exit_code, 0) << r.output;
        auto j = nlohmann::json::parse(r.output);
        EXPECT_EQ(j["mechanism"], form);
        EXPECT_EQ(j["events_acked"], 120);
    }
    auto events = lines_of(slurp(dir.path() / "events" / "security" / "LAB_alice.json"));
    EXPECT_EQ(events.size(), 240u);
    EXPECT_EQ(nlohmann::json::parse(events.front())["OpenWEC"]["Mechanism"], "NTLM");

    auto r = run({WEC_EXE, "replay", "--url", url(), "--service", "HTTP@" + kHost, "--ntlm",
                  kUser + ":wrong", "--subscription", "security", "--events", "10", "--json"},
                 {}, 60s);
    EXPECT_EQ(r.exit_code, 3) << r.output;
    EXPECT_NE(r.output.find("answered HTTP 401"), std::string::npos) << r.output;
    EXPECT_EQ(lines_of(slurp(dir.path() / "events" / "security" / "LAB_alice.json")).size(), 240u);
}

// An NTLM session captured by tcpdump on lo (pywinrm's raw NTLMSSP and python-gssapi's NTLM in
// SPNEGO), decoded with the password, the NT hash and a secrets file: every sealed body opens and
// --events prints what serve wrote; a wrong or missing secret is reported (exit 1), never guessed.
TEST_F(ServeNtlm, CapturedSessionDecodesWithPasswordOrNtHash) {
    apply_subscription("security");
    start_server();
    auto pcap = dir.path() / "ntlm.pcap";
    auto tcpdump = std::make_unique<Process>(
        std::vector<std::string>{"tcpdump", "-i", "lo", "--immediate-mode", "-U", "-s", "0", "-B",
                                 "32768", "-w", pcap.string(), "tcp port " + std::to_string(port)},
        std::map<std::string, std::string>{}, dir.path() / "tcpdump.log");
    ASSERT_TRUE(tcpdump->wait_for_output("listening on", 10s)) << tcpdump->output();
    auto r = ntlm_client("sequence", kPassword, "security", /*skip_negative=*/true);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = ntlm_client("spnego");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    tcpdump->signal(SIGINT);
    ASSERT_EQ(tcpdump->wait(10s), 0) << tcpdump->output();
    ASSERT_NE(tcpdump->output().find("\n0 packets dropped by kernel"), std::string::npos)
        << tcpdump->output();
    server->signal(SIGTERM);
    ASSERT_EQ(server->wait(20s), 0);

    // The NT hash as `wec decode --nt-hash` takes it: MD4(UTF-16LE(password)), by pycryptodome.
    auto md4 = run({"/usr/bin/python3", "-c",
                    "from Cryptodome.Hash import MD4; import sys; "
                    "print(MD4.new(sys.argv[1].encode('utf-16-le')).hexdigest())",
                    kPassword});
    ASSERT_EQ(md4.exit_code, 0) << md4.output;
    const std::string nt_hash = md4.output.substr(0, 32);
    std::ofstream(dir.path() / "secrets") << "# user:hash\nLAB\\alice:" << nt_hash << "\n";

    const auto served = lines_of(slurp(dir.path() / "events" / "security" / "LAB_alice.json"));
    ASSERT_EQ(served.size(), 21u);
    auto without_time = [](const std::string& line) {
        auto j = nlohmann::json::parse(line);
        j["OpenWEC"].erase("TimeReceived");
        return j.dump();
    };
    for (const std::vector<std::string>& secret :
         {std::vector<std::string>{"--password", kPassword},
          std::vector<std::string>{"--nt-hash", nt_hash},
          std::vector<std::string>{"--ntlm-secrets", (dir.path() / "secrets").string()}}) {
        std::vector<std::string> argv{WEC_EXE, "decode", pcap.string(), "--format", "json"};
        argv.insert(argv.end(), secret.begin(), secret.end());
        auto d = run(argv, {}, 60s);
        ASSERT_EQ(d.exit_code, 0) << secret[0] << "\n" << d.output;
        std::size_t decrypted = 0;
        for (const auto& line : lines_of(d.output))
            if (line.find("\"decrypted\"") != std::string::npos) ++decrypted;
        // pywinrm: Enumerate, Heartbeat, Events and their replies; SPNEGO: Enumerate and reply.
        EXPECT_EQ(decrypted, 8u) << d.output;
        // Each exchange says its mechanism: every record with an authentication token is NTLM's
        // (the server's first 401 offers the schemes without one), and the client's name is
        // given on each NTLM session (pywinrm's two, python-gssapi's one).
        std::size_t ntlm_records = 0;
        std::set<int> named;
        for (const auto& line : lines_of(d.output)) {
            auto j = nlohmann::json::parse(line, nullptr, false);
            if (!j.is_object() || !j.contains("auth")) continue;
            const auto step = j["auth"].value("step", "");
            if (step == "none" || step == "challenge") continue;
            EXPECT_EQ(j["auth"].value("mechanism", ""), "NTLM") << line;
            ++ntlm_records;
            if (j["auth"].value("client", "") == kUser) named.insert(j["connection"].get<int>());
        }
        EXPECT_GE(ntlm_records, 6u) << d.output; // at least the CHALLENGE and AUTHENTICATE of each
        EXPECT_GE(named.size(), 3u) << d.output;

        argv = {WEC_EXE, "decode", pcap.string(), "--events"};
        argv.insert(argv.end(), secret.begin(), secret.end());
        auto e = run(argv, {}, 60s);
        ASSERT_EQ(e.exit_code, 0) << e.output;
        auto decoded = lines_of(e.output);
        std::erase_if(decoded, [](const std::string& l) { return l.rfind("{", 0) != 0; });
        ASSERT_EQ(decoded.size(), served.size()) << e.output;
        for (std::size_t i = 0; i < served.size(); ++i)
            EXPECT_EQ(without_time(decoded[i]), without_time(served[i]));
    }

    // The text form says it too.
    auto text = run({WEC_EXE, "decode", pcap.string(), "--password", kPassword}, {}, 60s);
    ASSERT_EQ(text.exit_code, 0) << text.output;
    EXPECT_NE(text.output.find("(NTLM): " + kUser), std::string::npos) << text.output;

    auto wrong = run({WEC_EXE, "decode", pcap.string(), "--password", "not-it"}, {}, 60s);
    EXPECT_EQ(wrong.exit_code, 1) << wrong.output;
    EXPECT_NE(wrong.output.find("the secret does not match the NTLMv2 response of LAB\\alice"),
              std::string::npos)
        << wrong.output;
    auto none = run({WEC_EXE, "decode", pcap.string()}, {}, 60s);
    EXPECT_EQ(none.exit_code, 1) << none.output;
    EXPECT_NE(none.output.find("no NTLM secret"), std::string::npos) << none.output;
}

TEST_F(ServeNtlm, WorldReadableUsersFileIsRefusedAtStartup) {
    fs::permissions(users, fs::perms::others_read, fs::perm_options::add);
    auto r = run(serve_argv(), realm_->realm.env(), 20s);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("is readable or writable by any user"), std::string::npos) << r.output;
}

TEST_F(ServeNtlm, NtlmUsersNeedsNegotiate) {
    auto argv = serve_argv();
    argv[5] = "kerberos";
    auto r = run(argv, realm_->realm.env(), 20s);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("need --auth negotiate"), std::string::npos) << r.output;
}

} // namespace

// `wec serve` over HTTP + Kerberos, end to end: a real KDC, the real binary driven by its
// scripting contract, and an independent Python client (python3-gssapi, no wec code) replaying
// the real Windows messages in both Kerberos forms and both MIME forms.
#include "store/store.hpp"
#include "support/files.hpp"
#include "support/krb5_realm.hpp"
#include "support/process.hpp"
#include "support/wef_realm.hpp"

#include <chrono>
#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kHost = "srv.windomain.local";

class ServeKerberos : public ::testing::Test {
protected:
    static inline std::unique_ptr<WefRealm> realm_;
    static void SetUpTestSuite() { realm_ = std::make_unique<WefRealm>(kHost); }
    static void TearDownTestSuite() { realm_.reset(); }

    TempDir dir;
    std::string db;
    int port = 0;
    std::unique_ptr<Process> server;

    std::map<std::string, std::string> env() const {
        auto e = realm_->realm.env();
        e["KRB5CCNAME"] = realm_->ccache;
        return e;
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
            << "\"\nformat = \"json\"\n"
            << "[[outputs]]\ndriver = \"files\"\npath = \""
            << (dir.path() / "raw" / "{ip}.xml").string() << "\"\nformat = \"raw\"\n";
        auto r = run({WEC_EXE, "sub", "apply", file.string(), "--db", db});
        ASSERT_EQ(r.exit_code, 0) << r.output;
    }

    void start_server() {
        port = free_port();
        server = std::make_unique<Process>(
            std::vector<std::string>{WEC_EXE, "serve", "--listen",
                                     "127.0.0.1:" + std::to_string(port), "--auth", "kerberos",
                                     "--keytab", realm_->service_keytab.string(), "--hostname",
                                     kHost, "--db", db},
            realm_->realm.env(), dir.path() / "serve.log");
        ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    }

    RunResult python_client(const std::string& mech, bool tab, const std::string& subscription) {
        std::vector<std::string> argv{"/usr/bin/python3",
                                      std::string(WEC_SOURCE_DIR) + "/tests/interop/wef_client.py",
                                      "--url",
                                      "http://127.0.0.1:" + std::to_string(port) +
                                          "/wsman/SubscriptionManager/WEC",
                                      "--service",
                                      "HTTP@" + kHost,
                                      "--mech",
                                      mech,
                                      "--samples",
                                      std::string(WEC_TEST_DATA) + "/wsman",
                                      "--subscription",
                                      subscription};
        if (tab) argv.push_back("--tab");
        return run(argv, env(), 60s);
    }

    void SetUp() override { db = "sqlite:" + (dir.path() / "wec.db").string(); }

    void TearDown() override {
        if (server && HasFailure()) std::cerr << "---- wec serve log ----\n" << server->output();
    }
};

struct Form {
    const char* mech;
    bool tab;
};
void PrintTo(const Form& f, std::ostream* os) {
    *os << f.mech << (f.tab ? " with TAB" : " without TAB");
}

class ServeKerberosForms : public ServeKerberos, public ::testing::WithParamInterface<Form> {};

TEST_P(ServeKerberosForms, PythonClientFullSequence) {
    const auto started_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    apply_subscription("security");
    start_server();
    auto r = python_client(GetParam().mech, GetParam().tab, "security");
    ASSERT_EQ(r.exit_code, 0) << r.output;

    // Every step answered as the protocol says; the re-Enumerate offers the stored bookmark.
    std::map<std::string, nlohmann::json> steps;
    for (const auto& line : lines_of(r.output)) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_object() && j.contains("step")) steps[j["step"]] = j;
    }
    ASSERT_TRUE(steps.count("done")) << r.output;
    EXPECT_EQ(steps["events"]["count"], 21);
    EXPECT_EQ(steps["reenumerate"]["bookmark_record"], 149161);
    EXPECT_EQ(steps["reenumerate"]["bookmark_channel"], "Microsoft-Windows-WinRM/Operational");
    // End and SubscriptionEnd: 204 with an empty body, as Windows' collector answers (the client
    // also checked that no response was compressed and no SOAP reply had an XML declaration).
    EXPECT_EQ(steps["end"]["status"], 204) << r.output;
    EXPECT_EQ(steps["end"]["body_length"], 0) << r.output;
    EXPECT_EQ(steps["subscription_end"]["status"], 204);
    EXPECT_EQ(steps["subscription_end"]["body_length"], 0) << r.output;

    // 21 events in the JSON file of this client, with the OpenWEC metadata block.
    auto json_file = dir.path() / "events" / "security" / "WIN10$@WINDOMAIN.LOCAL.json";
    auto events = lines_of(slurp(json_file));
    ASSERT_EQ(events.size(), 21u) << json_file;
    auto first = nlohmann::json::parse(events.front());
    EXPECT_EQ(first["System"]["EventRecordID"], 149141);
    EXPECT_EQ(first["OpenWEC"]["Client"], "WIN10$@WINDOMAIN.LOCAL");
    EXPECT_EQ(first["OpenWEC"]["IpAddress"], "127.0.0.1");
    EXPECT_EQ(first["OpenWEC"]["Subscription"]["Name"], "security");
    auto last = nlohmann::json::parse(events.back());
    EXPECT_EQ(last["System"]["EventRecordID"], 149161);
    // The raw output got the same 21 events, one per line.
    EXPECT_EQ(lines_of(slurp(dir.path() / "raw" / "127.0.0.1.xml")).size(), 21u);

    // The operator view knows the host; SIGTERM stops the server cleanly (exit 0).
    server->signal(SIGTERM);
    EXPECT_EQ(server->wait(20s), 0) << server->output();
    auto status = run({WEC_EXE, "status", "--json", "--db", db});
    ASSERT_EQ(status.exit_code, 0) << status.output;
    auto st = nlohmann::json::parse(status.output);
    ASSERT_EQ(st.size(), 1u);
    EXPECT_EQ(st[0]["active"], 1);
    EXPECT_EQ(st[0]["hosts"][0]["client"], "WIN10$@WINDOMAIN.LOCAL");
    EXPECT_EQ(st[0]["hosts"][0]["address"], "127.0.0.1");
    EXPECT_EQ(st[0]["hosts"][0]["machine"], "win10.windomain.local");

    // The SubscriptionEnd of Windows' sample was recorded for the operator: one record, for this
    // client and subscription, with the sample's status and WSManFault.
    auto show = run({WEC_EXE, "sub", "show", "security", "--json", "--db", db});
    ASSERT_EQ(show.exit_code, 0) << show.output;
    std::string uuid = nlohmann::json::parse(show.output)["uuid"];
    for (auto& c : uuid)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const auto ends = wec::store::open(db)->subscription_ends("", 10);
    ASSERT_EQ(ends.size(), 1u);
    EXPECT_EQ(ends[0].subscription_uuid, uuid);
    EXPECT_EQ(ends[0].client, "WIN10$@WINDOMAIN.LOCAL");
    EXPECT_EQ(ends[0].status, "http://schemas.xmlsoap.org/ws/2004/08/eventing/SourceCancelling");
    EXPECT_EQ(ends[0].fault_code, "1717");
    EXPECT_EQ(ends[0].fault_message, "Windows Event Forward Plugin failed to read events.");
    const auto ms = [](auto tp) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
    };
    EXPECT_GE(ms(ends[0].time), started_ms - 1000);
    EXPECT_LE(ms(ends[0].time), ms(std::chrono::system_clock::now()) + 1000);
}

INSTANTIATE_TEST_SUITE_P(AllForms, ServeKerberosForms,
                         ::testing::Values(Form{"kerberos", false}, Form{"kerberos", true},
                                           Form{"spnego", false}, Form{"spnego", true}),
                         [](const ::testing::TestParamInfo<Form>& p) {
                             return std::string(p.param.mech) + (p.param.tab ? "_tab" : "_notab");
                         });

TEST_F(ServeKerberos, DisallowedClientSeesNoSubscription) {
    apply_subscription("dc-only", "allowed_clients = [\"DC*$@WINDOMAIN.LOCAL\"]");
    start_server();
    auto r = python_client("kerberos", false, "dc-only");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("not listed"), std::string::npos) << r.output;
}

TEST_F(ServeKerberos, WrongServiceKeyIsRefusedWith401) {
    apply_subscription("security");
    // A keytab for the same names but other keys: nothing the client's tickets can be opened with.
    Krb5Realm other(Krb5Realm::Options{});
    other.add_principal("HTTP/" + kHost);
    other.add_principal("HOST/" + kHost);
    auto wrong = other.export_keytab({"HTTP/" + kHost, "HOST/" + kHost}, "wrong.keytab");
    port = free_port();
    server = std::make_unique<Process>(
        std::vector<std::string>{WEC_EXE, "serve", "--listen", "127.0.0.1:" + std::to_string(port),
                                 "--keytab", wrong.string(), "--hostname", kHost, "--db", db},
        realm_->realm.env(), dir.path() / "serve.log");
    ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    auto r = python_client("kerberos", false, "security");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("HTTP 401"), std::string::npos) << r.output;
    EXPECT_TRUE(server->wait_for_output("status=401", 5s)) << server->output();
}

TEST_F(ServeKerberos, SubscriptionAppliedWhileRunningIsServedWithinSeconds) {
    apply_subscription("security");
    start_server();
    apply_subscription("late");
    // The server polls the store's revision every second; give it a few.
    RunResult r;
    for (int i = 0; i < 10; ++i) {
        r = python_client("kerberos", false, "late");
        if (r.exit_code == 0) break;
        std::this_thread::sleep_for(500ms);
    }
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(
        lines_of(slurp(dir.path() / "events" / "late" / "WIN10$@WINDOMAIN.LOCAL.json")).size(),
        21u);
    EXPECT_TRUE(server->wait_for_output("subscriptions loaded", 1s));
}

TEST_F(ServeKerberos, SighupReopensOutputFilesForLogrotate) {
    apply_subscription("security");
    start_server();
    ASSERT_EQ(python_client("kerberos", false, "security").exit_code, 0);
    auto file = dir.path() / "events" / "security" / "WIN10$@WINDOMAIN.LOCAL.json";
    fs::rename(file, file.string() + ".1"); // what logrotate does
    ASSERT_TRUE(server->signal(SIGHUP));
    ASSERT_TRUE(server->wait_for_output("re-opening output files", 5s)) << server->output();
    ASSERT_EQ(python_client("kerberos", false, "security").exit_code, 0);
    EXPECT_EQ(lines_of(slurp(file.string() + ".1")).size(), 21u);
    EXPECT_EQ(lines_of(slurp(file)).size(), 21u); // the second batch went to a new file
}

TEST_F(ServeKerberos, UnauthenticatedRequestGets401WithBothChallenges) {
    apply_subscription("security");
    start_server();
    auto r = run({"curl", "-s", "-i", "-X", "POST", "-H",
                  "Content-Type: application/soap+xml;charset=UTF-16", "--data-binary",
                  "@" + std::string(WEC_TEST_DATA) + "/wsman/enumerate.utf16",
                  "http://127.0.0.1:" + std::to_string(port) + "/wsman/SubscriptionManager/WEC"});
    EXPECT_EQ(r.output.rfind("HTTP/1.1 401", 0), 0u) << r.output;
    EXPECT_NE(r.output.find("WWW-Authenticate: Kerberos\r\n"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("WWW-Authenticate: Negotiate\r\n"), std::string::npos) << r.output;
    // curl --negotiate completes SPNEGO against the same listener (mutual token in Negotiate).
    auto env = realm_->realm.env();
    env["KRB5CCNAME"] = realm_->ccache;
    auto n =
        run({"curl", "-s", "-i", "--negotiate", "-u", ":", "-X", "POST", "-d", "", "--resolve",
             kHost + ":" + std::to_string(port) + ":127.0.0.1",
             "http://" + kHost + ":" + std::to_string(port) + "/wsman/SubscriptionManager/WEC"},
            env);
    EXPECT_NE(n.output.find("HTTP/1.1 200"), std::string::npos) << n.output;
    EXPECT_NE(n.output.find("WWW-Authenticate: Negotiate "), std::string::npos) << n.output;
}

TEST_F(ServeKerberos, OnlyPostIsAccepted) {
    apply_subscription("security");
    start_server();
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    // Other methods get 405 with Allow: POST, before any authentication, on the manager URL and
    // on a subscription URL alike.
    const std::vector<std::string> methods = {"GET", "PUT", "DELETE"};
    const std::vector<std::string> paths = {
        "/wsman/SubscriptionManager/WEC",
        "/wsman/subscriptions/B6BDBB59-FB07-4EE5-841F-EBEC9D67CDD4/1", "/wsman/"};
    for (const auto& method : methods) {
        for (const auto& path : paths) {
            auto r = run({"curl", "-s", "-i", "-X", method, base + path});
            EXPECT_EQ(r.output.rfind("HTTP/1.1 405", 0), 0u) << method << " " << path << "\n"
                                                             << r.output;
            EXPECT_NE(r.output.find("\r\nAllow: POST\r\n"), std::string::npos)
                << method << " " << path << "\n"
                << r.output;
        }
    }
    // POST is still answered as before (401 without authentication): the server lives on.
    auto post =
        run({"curl", "-s", "-i", "-X", "POST", "-d", "", base + "/wsman/SubscriptionManager/WEC"});
    EXPECT_EQ(post.output.rfind("HTTP/1.1 401", 0), 0u) << post.output;
    EXPECT_TRUE(server->running());
}

TEST_F(ServeKerberos, StartupSummaryNamesListenerKeytabAndStore) {
    apply_subscription("security");
    start_server();
    auto log = server->output();
    // The Group Policy value for domain hosts (reference section 1), with the configured hostname
    // and the listener's port.
    const std::string gpo = "Server=http://" + kHost + ":" + std::to_string(port) +
                            "/wsman/SubscriptionManager/WEC,Refresh=60";
    EXPECT_NE(log.find(gpo), std::string::npos) << gpo << "\n" << log;
    EXPECT_NE(log.find("HTTP/" + kHost + "@WINDOMAIN.LOCAL"), std::string::npos) << log;
    EXPECT_NE(log.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << log;
    EXPECT_NE(log.find("subscriptions: security"), std::string::npos) << log;
    EXPECT_NE(log.find(db.substr(7)), std::string::npos) << log;
}

TEST_F(ServeKerberos, MissingKeytabIsReportedAtStartup) {
    port = free_port();
    server = std::make_unique<Process>(
        std::vector<std::string>{WEC_EXE, "serve", "--listen", "127.0.0.1:" + std::to_string(port),
                                 "--keytab", (dir.path() / "absent.keytab").string(), "--hostname",
                                 kHost, "--db", db},
        realm_->realm.env(), dir.path() / "serve.log");
    ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    EXPECT_NE(server->output().find("MISSING keytab"), std::string::npos) << server->output();
    EXPECT_NE(server->output().find("NONE enabled"), std::string::npos) << server->output();
}

} // namespace

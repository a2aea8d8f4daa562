// `wec serve --auth basic` (lab use only), end to end with independent peers: curl (-u over
// HTTPS, the server checked against the test CA) and pywinrm (transport='basic') sending the
// real Windows messages; and the start-up refusals (plain HTTP, world-readable users file, a DES
// hash). Hashes are made by `openssl passwd -6`.
#include "support/files.hpp"
#include "support/process.hpp"
#include "support/serve_fixture.hpp"
#include "support/test_pki.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <regex>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kHost = "srv.windomain.local";
const std::string kUser = "labhost";
const std::string kPassword = "correct horse battery";

std::string sample(const std::string& name) {
    return std::string(WEC_TEST_DATA) + "/wsman/" + name;
}

std::string sha512_crypt(const std::string& password) {
    auto r = run({"openssl", "passwd", "-6", password});
    auto s = r.output;
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
        s.pop_back();
    return r.exit_code == 0 ? s : std::string();
}

class ServeBasic : public ServeFixture {
protected:
    void SetUp() override { apply_security("allowed_clients = [\"labhost\", \"other*\"]\n"); }

    std::string users_file(const std::string& lines,
                           fs::perms perms = fs::perms::owner_read | fs::perms::owner_write) {
        auto path = dir.path() / "basic-users";
        std::ofstream(path) << lines;
        fs::permissions(path, perms);
        return path.string();
    }

    std::vector<std::string> serve_argv(const std::string& users, bool tls = true) {
        port = free_port();
        std::vector<std::string> argv{
            WEC_EXE,      "serve", "--listen",      "127.0.0.1:" + std::to_string(port),
            "--auth",     "basic", "--basic-users", users,
            "--hostname", kHost,   "--db",          db};
        if (tls)
            argv.insert(argv.end(), {"--cert", pki("server.pem").string(), "--key",
                                     pki("server.key").string()});
        return argv;
    }

    void start_server() {
        auto users = users_file("# lab\n" + kUser + ":" + sha512_crypt(kPassword) + "\n" +
                                "stranger:" + sha512_crypt("s3cret") + "\n");
        server = std::make_unique<Process>(serve_argv(users), std::map<std::string, std::string>{},
                                           dir.path() / "serve.log");
        ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    }

    std::string url(const std::string& path = "/wsman/") const {
        return "https://127.0.0.1:" + std::to_string(port) + path;
    }

    // curl: posts Enumerate on one keep-alive connection once per `--user` given (`--next`
    // between them); returns "CODE CODE ..." and the response headers.
    std::string curl_enumerate(const std::vector<std::string>& users, std::string* headers) {
        std::vector<std::string> argv{"curl", "-sS", "--max-time", "20"};
        for (std::size_t i = 0; i < users.size(); ++i) {
            if (i) argv.push_back("--next");
            argv.insert(argv.end(), {"--cacert", pki("root.pem").string(), "-H",
                                     "Content-Type: application/soap+xml;charset=UTF-16",
                                     "--data-binary", "@" + sample("enumerate.utf16"), "-o",
                                     "/dev/null", "-D", (dir.path() / "headers").string(), "-w",
                                     "%{http_code} %{num_connects}\\n"});
            if (!users[i].empty()) argv.insert(argv.end(), {"-u", users[i]});
            argv.push_back(url());
        }
        auto r = run(argv);
        EXPECT_EQ(r.exit_code, 0) << r.output;
        if (headers) *headers = slurp(dir.path() / "headers");
        return r.output;
    }

    RunResult pywinrm(const std::string& password) {
        return run({"/usr/bin/python3",
                    std::string(WEC_SOURCE_DIR) + "/tests/interop/winrm_basic_client.py", "--url",
                    url(), "--user", kUser, "--password", password, "--ca",
                    pki("root.pem").string(), "--samples", std::string(WEC_TEST_DATA) + "/wsman",
                    "--subscription", "security"});
    }

    std::size_t stored_events() const {
        auto path = dir.path() / "events" / (kUser + ".json");
        return fs::exists(path) ? lines_of(slurp(path)).size() : 0;
    }
};

TEST_F(ServeBasic, CurlWithAPasswordOverHttpsAndTheChallengeWithout) {
    start_server();
    EXPECT_TRUE(server->wait_for_output("Basic authentication on this listener", 1s))
        << "no lab-only warning at startup";
    std::string headers;
    // One connection: the right password, the same header again (the cached verification), a
    // wrong password on the same connection, then the right one again.
    auto codes = curl_enumerate({kUser + ":" + kPassword, kUser + ":" + kPassword, kUser + ":wrong",
                                 kUser + ":" + kPassword},
                                &headers);
    EXPECT_EQ(codes, "200 1\n200 0\n401 0\n200 0\n") << codes;
    codes = curl_enumerate({""}, &headers);
    EXPECT_EQ(codes, "401 1\n");
    EXPECT_NE(headers.find("WWW-Authenticate: Basic realm=\"wec\""), std::string::npos) << headers;
    // Not base64 / no ':' / another scheme: 401 too.
    for (const char* header : {"Authorization: Basic !!!", "Authorization: Basic bGFiaG9zdA==",
                               "Authorization: Negotiate YWJj"}) {
        auto r = run({"curl", "-sS", "--max-time", "20", "--cacert", pki("root.pem").string(), "-H",
                      header, "--data-binary", "@" + sample("enumerate.utf16"), "-o", "/dev/null",
                      "-w", "%{http_code}", url()});
        EXPECT_EQ(r.output, "401") << header << ": " << r.output;
    }
    // A user the subscription does not allow: authenticated, but offered no subscription.
    auto r = run({"curl", "-sS", "--max-time", "20", "--cacert", pki("root.pem").string(), "-u",
                  "stranger:s3cret", "-H", "Content-Type: application/soap+xml;charset=UTF-16",
                  "--data-binary", "@" + sample("enumerate.utf16"), "-o",
                  (dir.path() / "stranger").string(), "-w", "%{http_code}", url()});
    EXPECT_EQ(r.output, "200") << r.output;
    std::string body;
    for (char c : slurp(dir.path() / "stranger"))
        if (c) body.push_back(c);
    EXPECT_EQ(body.find("SubscriptionName"), std::string::npos) << body;
    EXPECT_TRUE(server->wait_for_output("Basic authentication failed for 'labhost'", 5s));
}

TEST_F(ServeBasic, PywinrmEnumerateHeartbeatEventsLandAndAWrongPasswordStoresNothing) {
    start_server();
    auto bad = pywinrm("not the password");
    EXPECT_NE(bad.exit_code, 0) << bad.output;
    EXPECT_NE(bad.output.find("\"status\": 401"), std::string::npos) << bad.output;
    EXPECT_EQ(stored_events(), 0u);

    auto good = pywinrm(kPassword);
    ASSERT_EQ(good.exit_code, 0) << good.output;
    EXPECT_NE(good.output.find("\"step\": \"events\""), std::string::npos) << good.output;
    ASSERT_EQ(stored_events(), 21u) << good.output;
    auto first =
        nlohmann::json::parse(lines_of(slurp(dir.path() / "events" / (kUser + ".json"))).front());
    EXPECT_EQ(first["OpenWEC"]["Client"], kUser);
    EXPECT_EQ(first["OpenWEC"]["Mechanism"], "Basic");

    // The request log and `wec status` say how the host authenticated.
    EXPECT_NE(server->output().find("client=" + kUser + " mechanism=Basic"), std::string::npos)
        << server->output();
    server->signal(SIGTERM);
    EXPECT_EQ(server->wait(20s), 0);
    auto status = run({WEC_EXE, "status", "--json", "--db", db});
    ASSERT_EQ(status.exit_code, 0) << status.output;
    auto st = nlohmann::json::parse(status.output);
    ASSERT_EQ(st.size(), 1u);
    ASSERT_EQ(st[0]["hosts"].size(), 1u) << status.output;
    EXPECT_EQ(st[0]["hosts"][0]["client"], kUser);
    EXPECT_EQ(st[0]["hosts"][0]["mechanism"], "Basic");
}

TEST_F(ServeBasic, PlainHttpBasicListenerIsRefusedAtStart) {
    auto users = users_file(kUser + ":" + sha512_crypt(kPassword) + "\n");
    auto r = run(serve_argv(users, false), {}, 30s);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("Basic listener 127.0.0.1:" + std::to_string(port) + " needs TLS"),
              std::string::npos)
        << r.output;
    EXPECT_FALSE(accepts_connections(port));
}

TEST_F(ServeBasic, WorldReadableUsersFileIsRefusedAtStart) {
    auto users =
        users_file(kUser + ":" + sha512_crypt(kPassword) + "\n",
                   fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
    auto r = run(serve_argv(users), {}, 30s);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("readable or writable by any user"), std::string::npos) << r.output;
    EXPECT_FALSE(accepts_connections(port));
}

TEST_F(ServeBasic, DesHashIsRefusedAtStartNamingTheLine) {
    auto users = users_file(kUser + ":" + sha512_crypt(kPassword) + "\nold:abJnggxhB/yWI\n");
    auto r = run(serve_argv(users), {}, 30s);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("basic-users:2:"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("not yescrypt ($y$) or SHA-512 ($6$)"), std::string::npos) << r.output;
}

} // namespace

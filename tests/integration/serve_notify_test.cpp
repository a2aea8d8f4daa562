// `wec serve` under a systemd-like supervisor (Type=notify): a notification socket like systemd's
// (SO_PASSCRED: every message must come from the main process), NOTIFY_SOCKET and WATCHDOG_USEC in
// the environment. READY=1 only once the listeners accept connections, WATCHDOG=1 pings,
// RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 on SIGTERM, exit 0.
#include "support/notify_socket.hpp"
#include "support/process.hpp"

#include <arpa/inet.h>
#include <csignal>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;

// Whether a TCP connection to 127.0.0.1:port is accepted right now.
bool accepts(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

class ServeNotify : public ::testing::Test {
protected:
    TempDir dir;
    std::unique_ptr<NotifySocket> notify;
    std::unique_ptr<Process> server;
    int wsman_port = 0;
    int metrics_port = 0;
    int watchdogs = 0; // WATCHDOG=1 pings seen so far

    void SetUp() override {
        notify = std::make_unique<NotifySocket>((dir.path() / "notify").string());
    }
    void TearDown() override {
        if (server && HasFailure()) std::cerr << "---- wec serve log ----\n" << server->output();
    }

    void start(std::map<std::string, std::string> env) {
        wsman_port = free_port();
        metrics_port = free_port();
        env["NOTIFY_SOCKET"] = notify->name();
        // A Kerberos listener whose keytab is not there yet: the service starts and waits for it.
        server = std::make_unique<Process>(
            std::vector<std::string>{
                WEC_EXE, "serve", "--listen", "127.0.0.1:" + std::to_string(wsman_port), "--auth",
                "kerberos", "--keytab", (dir.path() / "wec.keytab").string(), "--hostname",
                "wec.windomain.local", "--db", "sqlite:" + (dir.path() / "wec.db").string(),
                "--metrics", "127.0.0.1:" + std::to_string(metrics_port)},
            env, dir.path() / "serve.log");
    }

    // The next message from the server's main process other than a watchdog ping (counted).
    std::string next_state() {
        for (;;) {
            auto m = notify->receive(20s);
            if (!m) return "<nothing within 20 s>";
            EXPECT_EQ(m->pid, server->pid()) << "from another process: " << m->text;
            if (m->text == "WATCHDOG=1") {
                ++watchdogs;
                continue;
            }
            return m->text;
        }
    }
};

TEST_F(ServeNotify, ReadyWatchdogReloadingStopping) {
    start({{"WATCHDOG_USEC", "200000"}});
    ASSERT_EQ(next_state(), "READY=1");
    // READY=1 is sent once listening: both listeners accept now, and the log says so.
    EXPECT_TRUE(accepts(wsman_port));
    EXPECT_TRUE(accepts(metrics_port));
    EXPECT_NE(server->output().find("wec serve started"), std::string::npos);

    // Pings at half of WATCHDOG_USEC: wait for three (no timing asserted, only that they come).
    while (watchdogs < 3) {
        auto m = notify->receive(20s);
        ASSERT_TRUE(m.has_value()) << "no watchdog ping within 20 s";
        EXPECT_EQ(m->pid, server->pid());
        ASSERT_EQ(m->text, "WATCHDOG=1");
        ++watchdogs;
    }

    ASSERT_TRUE(server->signal(SIGHUP));
    auto reloading = next_state();
    EXPECT_EQ(reloading.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << reloading;
    EXPECT_EQ(next_state(), "READY=1");
    EXPECT_TRUE(server->wait_for_output("SIGHUP: re-opening output files", 20s));
    EXPECT_TRUE(accepts(wsman_port)); // still serving after the reload

    // Still pinging after the reload.
    int before = watchdogs;
    while (watchdogs == before) {
        auto m = notify->receive(20s);
        ASSERT_TRUE(m.has_value()) << "no watchdog ping after SIGHUP";
        ASSERT_EQ(m->text, "WATCHDOG=1");
        ++watchdogs;
    }

    ASSERT_TRUE(server->signal(SIGTERM));
    EXPECT_EQ(next_state(), "STOPPING=1");
    EXPECT_EQ(server->wait(60s), 0);
    EXPECT_NE(server->output().find("wec serve stopped"), std::string::npos);
}

TEST_F(ServeNotify, NoWatchdogPingsForAnotherProcess) {
    // WATCHDOG_PID names another process (an inherited variable): READY and STOPPING only. The
    // server runs for ten watchdog intervals meanwhile; with WATCHDOG_PID unset (the test above)
    // it pings within that window.
    start({{"WATCHDOG_USEC", "200000"}, {"WATCHDOG_PID", std::to_string(getpid())}});
    ASSERT_EQ(next_state(), "READY=1");
    std::this_thread::sleep_for(1s);
    ASSERT_TRUE(server->signal(SIGTERM));
    EXPECT_EQ(next_state(), "STOPPING=1");
    EXPECT_EQ(watchdogs, 0);
    EXPECT_EQ(server->wait(60s), 0);
}

TEST_F(ServeNotify, ReloadKeepsServingWhenTheSupervisorIsGone) {
    // The supervisor's socket disappears (a refused datagram): logged, and serving goes on.
    start({});
    ASSERT_EQ(next_state(), "READY=1");
    notify.reset();
    ASSERT_TRUE(server->signal(SIGHUP));
    EXPECT_TRUE(server->wait_for_output("systemd notification failed", 20s));
    EXPECT_TRUE(accepts(wsman_port));
    ASSERT_TRUE(server->signal(SIGTERM));
    EXPECT_EQ(server->wait(60s), 0);
}

} // namespace

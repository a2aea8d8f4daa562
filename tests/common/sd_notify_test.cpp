// SystemdNotifier against a receiving socket opened as systemd opens it (tests/support).
#include "common/sd_notify.hpp"
#include "support/notify_socket.hpp"
#include "support/process.hpp"

#include <ctime>
#include <gtest/gtest.h>
#include <random>
#include <unistd.h>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
using wec::NotifyError;
using wec::SystemdNotifier;

std::string received(NotifySocket& socket) {
    auto m = socket.receive(5s);
    EXPECT_TRUE(m.has_value()) << "no datagram on " << socket.name();
    if (!m) return {};
    EXPECT_EQ(m->pid, getpid());
    return m->text;
}

TEST(SdNotify, DisabledWithoutNotifySocket) {
    SystemdNotifier n("", "200000");
    EXPECT_FALSE(n.enabled());
    EXPECT_NO_THROW(n.ready());
    EXPECT_FALSE(n.next_watchdog().has_value());
    EXPECT_FALSE(n.watchdog_if_due(SystemdNotifier::Clock::now() + 1h));
}

TEST(SdNotify, SendsEachStateAsOneDatagramToAPathSocket) {
    TempDir dir;
    NotifySocket socket((dir.path() / "notify").string());
    SystemdNotifier n(socket.name());
    ASSERT_TRUE(n.enabled());
    n.ready();
    EXPECT_EQ(received(socket), "READY=1");
    n.status("listening on 127.0.0.1:5985");
    EXPECT_EQ(received(socket), "STATUS=listening on 127.0.0.1:5985");
    n.stopping();
    EXPECT_EQ(received(socket), "STOPPING=1");
}

TEST(SdNotify, AbstractSocketNameStartsWithAt) {
    std::random_device rd;
    NotifySocket socket("@wec-sd-notify-test-" + std::to_string(getpid()) + "-" +
                        std::to_string(rd()));
    SystemdNotifier n(socket.name());
    n.ready();
    EXPECT_EQ(received(socket), "READY=1");
}

TEST(SdNotify, ReloadingCarriesTheMonotonicClock) {
    TempDir dir;
    NotifySocket socket((dir.path() / "notify").string());
    SystemdNotifier n(socket.name());
    timespec before{};
    clock_gettime(CLOCK_MONOTONIC, &before);
    n.reloading();
    timespec after{};
    clock_gettime(CLOCK_MONOTONIC, &after);
    auto text = received(socket);
    const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
    ASSERT_EQ(text.rfind(prefix, 0), 0u) << text;
    auto usec = std::stoull(text.substr(prefix.size()));
    auto to_usec = [](const timespec& t) {
        return static_cast<unsigned long long>(t.tv_sec) * 1000000ull +
               static_cast<unsigned long long>(t.tv_nsec) / 1000ull;
    };
    EXPECT_GE(usec, to_usec(before));
    EXPECT_LE(usec, to_usec(after));
}

TEST(SdNotify, WatchdogAtHalfTheTimeoutForThisProcessOnly) {
    TempDir dir;
    NotifySocket socket((dir.path() / "notify").string());
    EXPECT_EQ(SystemdNotifier(socket.name(), "200000").watchdog_interval(), 100000us);
    EXPECT_EQ(
        SystemdNotifier(socket.name(), "200000", std::to_string(getpid())).watchdog_interval(),
        100000us);
    // WATCHDOG_PID names another process (the variable was inherited): no pings from this one.
    EXPECT_FALSE(SystemdNotifier(socket.name(), "200000", std::to_string(getpid() + 1))
                     .watchdog_interval()
                     .has_value());
    EXPECT_FALSE(SystemdNotifier(socket.name()).watchdog_interval().has_value());
}

TEST(SdNotify, WatchdogPingsWhenDueAndNotBefore) {
    TempDir dir;
    NotifySocket socket((dir.path() / "notify").string());
    SystemdNotifier n(socket.name(), "2000000"); // pings every second
    auto due = n.next_watchdog();
    ASSERT_TRUE(due.has_value());
    EXPECT_FALSE(n.watchdog_if_due(*due - 1ms));
    EXPECT_FALSE(socket.receive(0ms).has_value());
    EXPECT_TRUE(n.watchdog_if_due(*due));
    EXPECT_EQ(received(socket), "WATCHDOG=1");
    // The next one is an interval after that ping.
    EXPECT_EQ(n.next_watchdog(), *due + 1s);
    EXPECT_FALSE(n.watchdog_if_due(*due + 999ms));
    EXPECT_TRUE(n.watchdog_if_due(*due + 1s));
    EXPECT_EQ(received(socket), "WATCHDOG=1");
}

TEST(SdNotify, MalformedEnvironmentIsAnError) {
    EXPECT_THROW(SystemdNotifier("relative/notify"), NotifyError);
    EXPECT_THROW(SystemdNotifier("/" + std::string(200, 'x')), NotifyError);
    EXPECT_THROW(SystemdNotifier("/run/notify", "soon"), NotifyError);
    EXPECT_THROW(SystemdNotifier("/run/notify", "0"), NotifyError);
    EXPECT_THROW(SystemdNotifier("/run/notify", "-5"), NotifyError);
}

TEST(SdNotify, RefusedDatagramNamesTheSocket) {
    TempDir dir;
    auto path = (dir.path() / "nobody-listens").string();
    SystemdNotifier n(path);
    try {
        n.ready();
        FAIL() << "no error without a receiver";
    } catch (const NotifyError& e) {
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
}

TEST(SdNotify, MovedNotifierKeepsTheSocket) {
    TempDir dir;
    NotifySocket socket((dir.path() / "notify").string());
    SystemdNotifier a(socket.name(), "400000");
    SystemdNotifier b(std::move(a));
    EXPECT_FALSE(a.enabled()); // NOLINT(bugprone-use-after-move): moved-from state is specified
    ASSERT_TRUE(b.enabled());
    EXPECT_EQ(b.watchdog_interval(), 200000us);
    b.ready();
    EXPECT_EQ(received(socket), "READY=1");
}

} // namespace

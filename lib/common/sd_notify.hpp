// systemd's service notification protocol (sd_notify(3)), without libsystemd: one unix datagram of
// "KEY=VALUE\n" lines to the socket named by $NOTIFY_SOCKET (a path, or an abstract name when it
// starts with '@'). The protocol is documented as stable by systemd ("Interface Portability and
// Stability Promise"); implementing it here keeps wec free of a library for one sendto().
// Used by `wec serve` under `Type=notify`: READY=1 once listening, RELOADING=1/READY=1 around
// SIGHUP, STOPPING=1 on SIGTERM, and WATCHDOG=1 at half of $WATCHDOG_USEC.
#pragma once

#include "common/error.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace wec {

// A notification could not be sent, or $NOTIFY_SOCKET / $WATCHDOG_USEC is malformed.
class NotifyError : public Error {
public:
    using Error::Error;
};

class SystemdNotifier {
public:
    using Clock = std::chrono::steady_clock;

    // From $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID. Without $NOTIFY_SOCKET (not started
    // by systemd, or Type= is not notify) the notifier is disabled and every call does nothing.
    static SystemdNotifier from_environment();

    // The same from explicit values (empty = unset). Throws NotifyError for a socket name that is
    // neither absolute nor abstract or too long for sockaddr_un, or a WATCHDOG_USEC that is not a
    // positive number. The watchdog is enabled only when watchdog_pid is empty or this process's
    // PID (as sd_watchdog_enabled(3) does).
    explicit SystemdNotifier(std::string_view socket_name, std::string_view watchdog_usec = {},
                             std::string_view watchdog_pid = {});
    ~SystemdNotifier();
    SystemdNotifier(SystemdNotifier&& other) noexcept;
    SystemdNotifier& operator=(SystemdNotifier&& other) noexcept;
    SystemdNotifier(const SystemdNotifier&) = delete;
    SystemdNotifier& operator=(const SystemdNotifier&) = delete;

    bool enabled() const { return fd_ >= 0; }

    // Sends one state message ("READY=1", "STATUS=...", several lines joined by '\n'). Does
    // nothing when disabled; throws NotifyError (naming the socket) when the datagram is refused.
    void notify(std::string_view state);

    void ready() { notify("READY=1"); }
    void stopping() { notify("STOPPING=1"); }
    // RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC now), which systemd 253+ expects with it.
    void reloading();
    void status(std::string_view text) { notify("STATUS=" + std::string(text)); }

    // Half of $WATCHDOG_USEC when systemd expects keep-alive pings from this process.
    std::optional<std::chrono::microseconds> watchdog_interval() const { return watchdog_; }
    // When the next WATCHDOG=1 is due (nullopt without a watchdog).
    std::optional<Clock::time_point> next_watchdog() const;
    // Sends WATCHDOG=1 if it is due at `now`; returns whether it sent one.
    bool watchdog_if_due(Clock::time_point now = Clock::now());

private:
    int fd_ = -1;
    std::string address_; // sockaddr_un path bytes ('\0' first for an abstract name)
    std::string name_;    // as given, for messages
    std::optional<std::chrono::microseconds> watchdog_;
    Clock::time_point last_ping_{};
};

} // namespace wec

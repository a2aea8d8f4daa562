#include "common/sd_notify.hpp"

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <utility>

namespace wec {
namespace {

std::string_view env(const char* name) {
    const char* v = std::getenv(name);
    return v ? std::string_view(v) : std::string_view();
}

std::optional<std::uint64_t> parse_number(std::string_view s) {
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

} // namespace

SystemdNotifier SystemdNotifier::from_environment() {
    return SystemdNotifier(env("NOTIFY_SOCKET"), env("WATCHDOG_USEC"), env("WATCHDOG_PID"));
}

SystemdNotifier::SystemdNotifier(std::string_view socket_name, std::string_view watchdog_usec,
                                 std::string_view watchdog_pid)
    : name_(socket_name) {
    if (socket_name.empty()) return;
    if (socket_name.front() != '/' && socket_name.front() != '@')
        throw NotifyError("NOTIFY_SOCKET=" + name_ +
                          ": neither an absolute path nor an abstract socket name (@...)");
    if (socket_name.size() >= sizeof(sockaddr_un::sun_path))
        throw NotifyError("NOTIFY_SOCKET=" + name_ + ": longer than a unix socket address (" +
                          std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes)");
    address_ = name_;
    if (address_.front() == '@') address_.front() = '\0';

    if (!watchdog_usec.empty()) {
        auto usec = parse_number(watchdog_usec);
        if (!usec || *usec == 0)
            throw NotifyError("WATCHDOG_USEC=" + std::string(watchdog_usec) +
                              ": not a positive number of microseconds");
        auto pid = watchdog_pid.empty() ? std::optional<std::uint64_t>(getpid())
                                        : parse_number(watchdog_pid);
        if (pid && *pid == static_cast<std::uint64_t>(getpid()))
            watchdog_ = std::chrono::microseconds(*usec / 2 > 0 ? *usec / 2 : 1);
    }
    last_ping_ = Clock::now();

    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw NotifyError("NOTIFY_SOCKET=" + name_ + ": socket: " + std::strerror(errno));
}

SystemdNotifier::~SystemdNotifier() {
    if (fd_ >= 0) ::close(fd_);
}

SystemdNotifier::SystemdNotifier(SystemdNotifier&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), address_(std::move(other.address_)),
      name_(std::move(other.name_)), watchdog_(std::exchange(other.watchdog_, std::nullopt)),
      last_ping_(other.last_ping_) {}

SystemdNotifier& SystemdNotifier::operator=(SystemdNotifier&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        address_ = std::move(other.address_);
        name_ = std::move(other.name_);
        watchdog_ = std::exchange(other.watchdog_, std::nullopt);
        last_ping_ = other.last_ping_;
    }
    return *this;
}

void SystemdNotifier::notify(std::string_view state) {
    if (fd_ < 0) return;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, address_.data(), address_.size());
    // An abstract name is exactly its bytes (no terminating NUL counted), a path includes one.
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() +
                                               (address_.front() == '\0' ? 0 : 1));
    ssize_t n;
    do {
        n = ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&addr), length);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        throw NotifyError("cannot notify systemd at NOTIFY_SOCKET=" + name_ + ": " +
                          std::strerror(errno));
    if (static_cast<std::size_t>(n) != state.size())
        throw NotifyError("cannot notify systemd at NOTIFY_SOCKET=" + name_ + ": short write");
}

void SystemdNotifier::reloading() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const auto usec = static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
                      static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
    notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

std::optional<SystemdNotifier::Clock::time_point> SystemdNotifier::next_watchdog() const {
    if (!watchdog_ || fd_ < 0) return std::nullopt;
    return last_ping_ + *watchdog_;
}

bool SystemdNotifier::watchdog_if_due(Clock::time_point now) {
    auto due = next_watchdog();
    if (!due || now < *due) return false;
    last_ping_ = now;
    notify("WATCHDOG=1");
    return true;
}

} // namespace wec

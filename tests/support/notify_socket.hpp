// The receiving end of systemd's notification socket, as systemd opens it: a unix datagram socket
// with SO_PASSCRED, so that every message comes with the sender's PID (systemd accepts a message
// only from the service's main process with NotifyAccess=main, the default).
#pragma once

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <optional>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <utility>

namespace wec::testing {

class NotifySocket {
public:
    struct Message {
        std::string text;
        pid_t pid = -1; // from SCM_CREDENTIALS
    };

    // `name`: a path, or an abstract name starting with '@' (what NOTIFY_SOCKET holds).
    explicit NotifySocket(std::string name) : name_(std::move(name)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
        int on = 1;
        if (::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) fail("SO_PASSCRED");
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (name_.size() >= sizeof addr.sun_path) throw std::runtime_error("name too long");
        std::memcpy(addr.sun_path, name_.data(), name_.size());
        socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
        if (name_.front() == '@')
            addr.sun_path[0] = '\0';
        else
            ++len;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0) fail("bind " + name_);
    }
    ~NotifySocket() {
        if (fd_ >= 0) ::close(fd_);
    }
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    const std::string& name() const { return name_; }

    // The next datagram, or nullopt when none arrives within `timeout`.
    std::optional<Message> receive(std::chrono::milliseconds timeout) {
        pollfd p{fd_, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
        if (r < 0) fail("poll");
        if (r == 0) return std::nullopt;
        char data[4096];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
        iovec iov{data, sizeof data};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(fd_, &msg, 0);
        if (n < 0) fail("recvmsg");
        Message m;
        m.text.assign(data, static_cast<std::size_t>(n));
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
                ucred cred{};
                std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
                m.pid = cred.pid;
            }
        }
        return m;
    }

private:
    [[noreturn]] void fail(const std::string& what) {
        throw std::runtime_error(what + ": " + std::strerror(errno));
    }

    std::string name_;
    int fd_ = -1;
};

} // namespace wec::testing

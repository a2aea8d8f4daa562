// Receiving ends for tests of `wec serve`'s outputs that outlive the collector: a TCP input that
// splits lines per connection, as a SIEM's TCP input does, and `settled()` to read a receiver
// once it has stopped growing.
#pragma once

#include <arpa/inet.h>
#include <chrono>
#include <functional>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace wec::testing {

// Polls `read` until what it returns stops growing for a second (receivers flush on their own).
inline std::vector<std::string> settled(const std::function<std::vector<std::string>()>& read) {
    auto got = read();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        auto again = read();
        if (again.size() == got.size() || std::chrono::steady_clock::now() > deadline) return again;
        got = std::move(again);
    }
}

// A TCP input as a SIEM has one: lines per connection; a line cut by a connection that ended is
// kept as it is (it fails to parse and is counted as torn).
class TcpLineReceiver {
public:
    TcpLineReceiver() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0)
            throw std::runtime_error("cannot listen");
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        acceptor_ = std::thread([this] {
            for (;;) {
                int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
                if (c < 0) return;
                std::lock_guard lock(mutex_);
                readers_.emplace_back([this, c] { read_connection(c); });
                conns_.push_back(c);
                ++accepted_;
            }
        });
    }
    ~TcpLineReceiver() {
        ::shutdown(fd_, SHUT_RDWR);
        acceptor_.join();
        ::close(fd_);
        {
            std::lock_guard lock(mutex_);
            for (int c : conns_)
                ::shutdown(c, SHUT_RDWR);
        }
        for (auto& t : readers_)
            t.join();
    }
    int port() const { return port_; }
    // Connections accepted so far (a sender that reconnects counts again), once none is waiting
    // in the listen queue and the count has not moved for 200 ms: a sender's connect() completes
    // in the kernel before this receiver's thread has accepted it.
    std::size_t accepted() {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        std::size_t seen = count();
        auto stable_since = std::chrono::steady_clock::now();
        for (;;) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            pollfd p{fd_, POLLIN, 0};
            const bool waiting = ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
            const std::size_t now = count();
            const auto t = std::chrono::steady_clock::now();
            if (now != seen || waiting) {
                seen = now;
                stable_since = t;
            } else if (t - stable_since >= std::chrono::milliseconds(200)) {
                return now;
            }
            if (t > deadline) return now;
        }
    }
    // Every line received so far, once no more has come for a second.
    std::vector<std::string> lines() {
        return settled([this] {
            std::lock_guard lock(mutex_);
            return lines_;
        });
    }

private:
    std::size_t count() {
        std::lock_guard lock(mutex_);
        return accepted_;
    }
    void read_connection(int c) {
        std::string pending;
        char buf[65536];
        for (;;) {
            ssize_t n = ::recv(c, buf, sizeof buf, 0);
            if (n <= 0) break;
            pending.append(buf, static_cast<std::size_t>(n));
            std::size_t start = 0;
            std::lock_guard lock(mutex_);
            for (auto nl = pending.find('\n'); nl != std::string::npos;
                 nl = pending.find('\n', start)) {
                lines_.push_back(pending.substr(start, nl - start));
                start = nl + 1;
            }
            pending.erase(0, start);
        }
        std::lock_guard lock(mutex_);
        if (!pending.empty()) lines_.push_back(pending);
        ::close(c);
        std::erase(conns_, c);
    }

    int fd_ = -1;
    int port_ = 0;
    std::thread acceptor_;
    std::mutex mutex_;
    std::vector<int> conns_;
    std::vector<std::thread> readers_;
    std::vector<std::string> lines_;
    std::size_t accepted_ = 0;
};

} // namespace wec::testing

// Receiving ends for the network output tests, all on 127.0.0.1 / in a temp dir: a TCP listener
// (optionally TLS, optionally requiring a client certificate) that stores what it receives or
// stops reading on demand, and a unix datagram receiver.
#pragma once

#include "common/handle.hpp"

#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <list>
#include <mutex>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace wec::testing {

using SslCtx = Handle<SSL_CTX, SSL_CTX_free>;

// A server TLS context: certificate chain + key; with `client_ca`, a client certificate is
// required and verified against it.
inline SslCtx server_tls(const std::string& cert, const std::string& key,
                         const std::string& client_ca = {}) {
    SslCtx ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1)
        throw std::runtime_error("cannot load the server certificate " + cert);
    if (!client_ca.empty()) {
        if (SSL_CTX_load_verify_locations(ctx.get(), client_ca.c_str(), nullptr) != 1)
            throw std::runtime_error("cannot load " + client_ca);
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    return ctx;
}

// Accepts connections on 127.0.0.1 (a thread per connection, blocking I/O) and appends what it
// reads to one buffer. stop() closes the listening socket and every connection.
class TcpPeer {
public:
    struct Options {
        int port = 0;           // 0: a free port
        SSL_CTX* tls = nullptr; // TLS server (not owned)
        bool read = true;       // false: accept, then never read
        int receive_buffer = 0; // SO_RCVBUF of accepted connections (0: default)
    };

    explicit TcpPeer(Options o) : options_(o) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (o.receive_buffer > 0)
            ::setsockopt(listen_fd_, SOL_SOCKET, SO_RCVBUF, &o.receive_buffer,
                         sizeof o.receive_buffer);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(o.port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
            ::listen(listen_fd_, 16) != 0) {
            ::close(listen_fd_);
            throw std::runtime_error("cannot listen on port " + std::to_string(o.port) + ": " +
                                     std::strerror(errno));
        }
        socklen_t len = sizeof a;
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~TcpPeer() { stop(); }
    TcpPeer(const TcpPeer&) = delete;
    TcpPeer& operator=(const TcpPeer&) = delete;

    int port() const { return port_; }
    // A fake server: `reply` is sent back after each read (plain TCP only).
    void reply_with(std::string reply) {
        std::lock_guard lock(mutex_);
        reply_ = std::move(reply);
    }

    std::string received() const {
        std::lock_guard lock(mutex_);
        return data_;
    }
    int connections() const {
        std::lock_guard lock(mutex_);
        return accepted_;
    }
    std::vector<std::string> client_names() const {
        std::lock_guard lock(mutex_);
        return client_names_;
    }
    std::vector<std::string> handshake_errors() const {
        std::lock_guard lock(mutex_);
        return handshake_errors_;
    }
    // Waits until `pred(received())` holds (true) or `timeout` passes (false).
    bool wait(const std::function<bool(const std::string&)>& pred,
              std::chrono::milliseconds timeout = std::chrono::seconds(20)) const {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return pred(data_); });
    }
    bool wait_for_bytes(std::size_t n) const {
        return wait([n](const std::string& d) { return d.size() >= n; });
    }

    // Closes the connections accepted so far (the listener stays).
    void drop_connections() {
        std::lock_guard lock(mutex_);
        for (int fd : conns_)
            ::shutdown(fd, SHUT_RDWR);
    }

    void stop() {
        if (stopped_.exchange(true)) return;
        ::shutdown(listen_fd_, SHUT_RDWR);
        if (acceptor_.joinable()) acceptor_.join();
        ::close(listen_fd_);
        {
            std::lock_guard lock(mutex_);
            for (int fd : conns_)
                ::shutdown(fd, SHUT_RDWR);
        }
        for (auto& t : workers_)
            t.join();
    }

private:
    void accept_loop() {
        for (;;) {
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                return; // shut down
            }
            std::lock_guard lock(mutex_);
            if (stopped_) {
                ::close(fd);
                return;
            }
            ++accepted_;
            conns_.push_back(fd);
            workers_.emplace_back([this, fd] { serve(fd); });
        }
    }

    void serve(int fd) {
        // OpenSSL's socket BIO writes with write(2): a client that went away would raise SIGPIPE.
        // Blocked in this thread only, so that a SIGPIPE from the code under test still shows.
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
        Handle<SSL, SSL_free> ssl;
        if (options_.tls) {
            ssl.reset(SSL_new(options_.tls));
            SSL_set_fd(ssl.get(), fd);
            if (SSL_accept(ssl.get()) != 1) {
                char buf[256] = "";
                ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
                {
                    std::lock_guard lock(mutex_);
                    handshake_errors_.push_back(buf);
                }
                finish(fd);
                return;
            }
            if (X509* cert = SSL_get0_peer_certificate(ssl.get())) {
                char cn[256] = "";
                X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                                          sizeof cn);
                std::lock_guard lock(mutex_);
                client_names_.push_back(cn);
            }
        }
        if (!options_.read) {
            // Hold the connection without reading until it is shut down.
            pollfd p{fd, POLLRDHUP, 0};
            while (!stopped_ && ::poll(&p, 1, 100) == 0) {
            }
            finish(fd);
            return;
        }
        char buf[65536];
        for (;;) {
            int n = ssl ? SSL_read(ssl.get(), buf, sizeof buf)
                        : static_cast<int>(::recv(fd, buf, sizeof buf, 0));
            if (n <= 0) break;
            std::string reply;
            {
                std::lock_guard lock(mutex_);
                data_.append(buf, static_cast<std::size_t>(n));
                changed_.notify_all();
                reply = reply_;
            }
            if (!reply.empty() && !ssl) ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
        }
        finish(fd);
    }

    void finish(int fd) {
        std::lock_guard lock(mutex_);
        conns_.remove(fd);
        ::close(fd);
    }

    Options options_;
    int listen_fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stopped_{false};
    std::thread acceptor_;
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::string data_;
    std::string reply_;
    int accepted_ = 0;
    std::list<int> conns_;
    std::vector<std::thread> workers_;
    std::vector<std::string> client_names_;
    std::vector<std::string> handshake_errors_;
};

// A unix datagram socket bound to `path` (removed by the destructor).
class UnixDatagramPeer {
public:
    explicit UnixDatagramPeer(std::filesystem::path path) : path_(std::move(path)) {
        std::filesystem::remove(path_);
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path_.c_str(), sizeof a.sun_path - 1);
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
            throw std::runtime_error("cannot bind " + path_.string());
        int size = 1 << 20;
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    ~UnixDatagramPeer() {
        ::close(fd_);
        std::error_code ec;
        std::filesystem::remove(path_, ec);
    }
    UnixDatagramPeer(const UnixDatagramPeer&) = delete;
    UnixDatagramPeer& operator=(const UnixDatagramPeer&) = delete;

    // The datagrams queued now (does not wait).
    std::vector<std::string> drain() {
        std::vector<std::string> out;
        std::string buf(256 * 1024, '\0');
        for (;;) {
            ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
            if (n < 0) break;
            out.emplace_back(buf.data(), static_cast<std::size_t>(n));
        }
        return out;
    }

private:
    std::filesystem::path path_;
    int fd_ = -1;
};

// A UDP socket bound to 127.0.0.1 on a free port.
class UdpPeer {
public:
    UdpPeer() {
        fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t len = sizeof a;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
        port_ = ntohs(a.sin_port);
        int size = 4 << 20;
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    ~UdpPeer() { ::close(fd_); }
    UdpPeer(const UdpPeer&) = delete;
    UdpPeer& operator=(const UdpPeer&) = delete;
    int port() const { return port_; }

    // Up to `n` datagrams, waiting at most `timeout` for each.
    std::vector<std::string> receive(std::size_t n,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        std::vector<std::string> out;
        std::string buf(70000, '\0');
        while (out.size() < n) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) break;
            ssize_t got = ::recv(fd_, buf.data(), buf.size(), 0);
            if (got < 0) break;
            out.emplace_back(buf.data(), static_cast<std::size_t>(got));
        }
        return out;
    }

private:
    int fd_ = -1;
    int port_ = 0;
};

} // namespace wec::testing

#include "common/openssl.hpp"
#include "output/net_internal.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace wec::output::detail::net {

namespace {

constexpr std::size_t kIoChunk = 16384; // one TLS record

std::string errno_text(int err) {
    return std::strerror(err);
}

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return 0;
    return left.count() > 1000000 ? 1000000 : static_cast<int>(left.count()) + 1;
}

// Waits until `fd` is ready for `events` (or has an error, which the next call reports).
// False when `deadline` passed first.
bool wait_for(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        int ms = remaining_ms(deadline);
        int r = ::poll(&p, 1, ms);
        if (r > 0) return true;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return true; // let the I/O call report the error
        if (Clock::now() >= deadline) return false;
    }
}

// Sends all of `data` on a non-blocking socket, or throws.
void send_all(int fd, std::string_view data, Clock::time_point deadline) {
    while (!data.empty()) {
        ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_for(fd, POLLOUT, deadline))
                throw OutputError("write timed out (" + std::to_string(data.size()) +
                                  " bytes not sent: the peer does not read)");
            continue;
        }
        throw OutputError("write failed: " + errno_text(n < 0 ? errno : EIO));
    }
}

bool is_ip_literal(const std::string& host) {
    in6_addr a6{};
    in_addr a4{};
    return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 ||
           ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// The addresses of `peer` for sockets of `socktype`; throws OutputError naming the host.
Handle<addrinfo, ::freeaddrinfo> resolve(const HostPort& peer, int socktype) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(peer.port);
    if (int rc = ::getaddrinfo(peer.host.c_str(), port.c_str(), &hints, &found); rc != 0)
        throw OutputError("cannot resolve " + peer.host + ": " + ::gai_strerror(rc));
    return Handle<addrinfo, ::freeaddrinfo>(found);
}

Fd connect_tcp(const HostPort& peer, Clock::time_point deadline) {
    auto list = resolve(peer, SOCK_STREAM);
    std::string error = "no address";
    for (const addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
        Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       ai->ai_protocol));
        if (!fd) {
            error = errno_text(errno);
            continue;
        }
        if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
            if (errno != EINPROGRESS) {
                error = errno_text(errno);
                continue;
            }
            if (!wait_for(fd.get(), POLLOUT, deadline)) {
                error = "connect timed out";
                break;
            }
            int err = 0;
            socklen_t len = sizeof err;
            if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
            if (err != 0) {
                error = errno_text(err);
                continue;
            }
        }
        int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::setsockopt(fd.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        return fd;
    }
    throw OutputError("cannot connect to " + peer.text() + ": " + error);
}

} // namespace

std::string HostPort::text() const {
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

HostPort parse_host_port(std::string_view text, std::uint16_t default_port) {
    const std::string quoted = "'" + std::string(text) + "'";
    HostPort out;
    std::string_view port;
    bool have_port = false;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos)
            throw OutputError(quoted + " has no ']' after its IPv6 address");
        out.host = std::string(text.substr(1, close - 1));
        auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') throw OutputError(quoted + ": expected ':PORT' after ']'");
            port = rest.substr(1);
            have_port = true;
        }
    } else {
        auto colon = text.rfind(':');
        if (colon != std::string_view::npos && text.find(':') != colon)
            throw OutputError(quoted + ": write an IPv6 address in brackets, e.g. [::1]:514");
        out.host = std::string(text.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = text.substr(colon + 1);
            have_port = true;
        }
    }
    if (out.host.empty()) throw OutputError(quoted + " has no host (expected HOST:PORT)");
    for (char c : out.host) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f || c == '/' || c == '[' || c == ']')
            throw OutputError(quoted + ": the host contains '" + std::string(1, c) + "'");
    }
    if (!have_port) {
        if (default_port == 0) throw OutputError(quoted + " has no port (expected HOST:PORT)");
        out.port = default_port;
        return out;
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
        value > 65535)
        throw OutputError(quoted + ": the port must be a number in [1, 65535]");
    out.port = static_cast<std::uint16_t>(value);
    return out;
}

std::optional<TlsOptions> read_tls(SettingsReader& reader, bool enabled,
                                   std::string_view why_disabled) {
    TlsOptions tls;
    const char* keys[] = {"ca", "cert", "key", "server_name"};
    std::string* fields[] = {&tls.ca, &tls.cert, &tls.key, &tls.server_name};
    for (std::size_t i = 0; i < 4; ++i) {
        auto value = reader.string(keys[i]);
        if (value && !enabled) reader.fail(keys[i], "is only valid " + std::string(why_disabled));
        if (value) *fields[i] = std::move(*value);
    }
    if (!enabled) return std::nullopt;
    if (tls.cert.empty() != tls.key.empty())
        reader.fail(tls.cert.empty() ? "key" : "cert",
                    "needs '" + std::string(tls.cert.empty() ? "cert" : "key") +
                        "' as well (a client certificate and its key)");
    return tls;
}

std::chrono::milliseconds read_timeout(SettingsReader& reader) {
    return std::chrono::milliseconds(
        reader.integer("timeout_ms", 1, 600000).value_or(kDefaultTimeoutMs));
}

std::size_t utf8_prefix(std::string_view text, std::size_t max) {
    if (text.size() <= max) return text.size();
    std::size_t n = max;
    // Step back over continuation bytes to the start of the sequence that would be cut.
    std::size_t back = 0;
    while (n > 0 && back < 4 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) {
        --n;
        ++back;
    }
    return back == 4 ? max : n; // not UTF-8 there: cut where asked
}

// ---------------------------------------------------------------------------------------------
// Stream

struct Stream::Tls {
    Handle<SSL_CTX, SSL_CTX_free> ctx;
    Handle<SSL, SSL_free> ssl;
    BIO* in = nullptr;  // network -> SSL (owned by ssl)
    BIO* out = nullptr; // SSL -> network (owned by ssl)
    std::string buffer;

    // Sends what SSL produced.
    void flush(int fd, Clock::time_point deadline) {
        while (BIO_ctrl_pending(out) > 0) {
            buffer.resize(kIoChunk * 2);
            int n = BIO_read(out, buffer.data(), static_cast<int>(buffer.size()));
            if (n <= 0) break;
            send_all(fd, std::string_view(buffer.data(), static_cast<std::size_t>(n)), deadline);
        }
    }

    // Reads what the peer sent into SSL; throws on end of stream, error or timeout.
    void fill(int fd, Clock::time_point deadline) {
        buffer.resize(kIoChunk);
        for (;;) {
            ssize_t n = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
            if (n > 0) {
                BIO_write(in, buffer.data(), static_cast<int>(n));
                return;
            }
            if (n == 0) throw OutputError("connection closed by the peer");
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                throw OutputError("read failed: " + errno_text(errno));
            if (!wait_for(fd, POLLIN, deadline))
                throw OutputError("timed out waiting for the peer");
        }
    }

    // Runs an SSL call to completion, moving bytes between the memory BIOs and the socket.
    template <class Op>
    void drive(int fd, Clock::time_point deadline, std::string_view what, Op op) {
        for (;;) {
            ERR_clear_error();
            int r = op();
            int err = r > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl.get(), r);
            std::string detail =
                err == SSL_ERROR_NONE ? std::string() : openssl::errors("no detail from OpenSSL");
            flush(fd, deadline);
            if (err == SSL_ERROR_NONE) return;
            if (err == SSL_ERROR_WANT_READ) {
                fill(fd, deadline);
                continue;
            }
            if (err == SSL_ERROR_WANT_WRITE) continue;
            if (long v = SSL_get_verify_result(ssl.get()); v != X509_V_OK)
                throw OutputError(std::string(what) + ": certificate verification failed: " +
                                  X509_verify_cert_error_string(v));
            if (err == SSL_ERROR_ZERO_RETURN)
                throw OutputError(std::string(what) + ": closed by peer");
            throw OutputError(std::string(what) + ": " + detail);
        }
    }
};

namespace {

std::unique_ptr<Stream::Tls> start_tls(const HostPort& peer, const TlsOptions& o) {
    auto tls = std::make_unique<Stream::Tls>();
    tls->ctx.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX* ctx = tls->ctx.get();
    if (!ctx)
        throw OutputError("cannot create a TLS context: " +
                          openssl::errors("no detail from OpenSSL"));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_mode(ctx, SSL_MODE_AUTO_RETRY);
    if (!o.ca.empty()) {
        if (SSL_CTX_load_verify_locations(ctx, o.ca.c_str(), nullptr) != 1)
            throw OutputError("cannot load the CA file " + o.ca + ": " +
                              openssl::errors("no detail from OpenSSL"));
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        throw OutputError("cannot load the system's CA certificates: " +
                          openssl::errors("no detail from OpenSSL"));
    }
    if (!o.cert.empty()) {
        if (SSL_CTX_use_certificate_chain_file(ctx, o.cert.c_str()) != 1)
            throw OutputError("cannot load the certificate " + o.cert + ": " +
                              openssl::errors("no detail from OpenSSL"));
        if (SSL_CTX_use_PrivateKey_file(ctx, o.key.c_str(), SSL_FILETYPE_PEM) != 1)
            throw OutputError("cannot load the key " + o.key + ": " +
                              openssl::errors("no detail from OpenSSL"));
        if (SSL_CTX_check_private_key(ctx) != 1)
            throw OutputError("the key " + o.key + " does not match the certificate " + o.cert);
    }
    tls->ssl.reset(SSL_new(ctx));
    SSL* ssl = tls->ssl.get();
    if (!ssl)
        throw OutputError("cannot create a TLS session: " +
                          openssl::errors("no detail from OpenSSL"));
    tls->in = BIO_new(BIO_s_mem());
    tls->out = BIO_new(BIO_s_mem());
    if (!tls->in || !tls->out) {
        BIO_free(tls->in);
        BIO_free(tls->out);
        throw OutputError("cannot create TLS buffers: " +
                          openssl::errors("no detail from OpenSSL"));
    }
    BIO_set_mem_eof_return(tls->in, -1); // empty: "retry", not end of stream
    SSL_set_bio(ssl, tls->in, tls->out);
    const std::string& name = o.server_name.empty() ? peer.host : o.server_name;
    if (is_ip_literal(name)) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) != 1)
            throw OutputError("cannot check the address " + name + ": " +
                              openssl::errors("no detail from OpenSSL"));
    } else {
        if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1 ||
            SSL_set1_host(ssl, name.c_str()) != 1)
            throw OutputError("cannot check the name " + name + ": " +
                              openssl::errors("no detail from OpenSSL"));
    }
    SSL_set_connect_state(ssl);
    return tls;
}

} // namespace

Stream::Stream(const HostPort& peer, const TlsOptions* tls, Clock::time_point deadline)
    : fd_(connect_tcp(peer, deadline)) {
    if (!tls) return;
    tls_ = start_tls(peer, *tls);
    tls_->drive(fd_.get(), deadline, "TLS handshake with " + peer.text(),
                [&] { return SSL_do_handshake(tls_->ssl.get()); });
}

Stream::Stream(Fd fd) : fd_(std::move(fd)) {}

Stream Stream::unix_stream(const std::string& path, Clock::time_point deadline) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) throw OutputError("socket path too long: " + path);
    std::memcpy(addr.sun_path, path.data(), path.size());
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) throw OutputError("cannot create a unix socket: " + errno_text(errno));
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        // A unix socket says EAGAIN when the listener's backlog is full: nothing to wait on.
        if (errno != EINPROGRESS)
            throw OutputError("cannot connect to " + path + ": " + errno_text(errno));
        if (!wait_for(fd.get(), POLLOUT, deadline))
            throw OutputError("cannot connect to " + path + ": connect timed out");
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err != 0) throw OutputError("cannot connect to " + path + ": " + errno_text(err));
    }
    return Stream(std::move(fd));
}

Stream::~Stream() {
    if (tls_ && fd_) {
        // close_notify, if the socket takes it at once; never waits.
        ERR_clear_error();
        if (SSL_shutdown(tls_->ssl.get()) >= 0) {
            try {
                tls_->flush(fd_.get(), Clock::now());
            } catch (const std::exception&) {
            }
        }
        ERR_clear_error();
    }
}

Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&&) noexcept = default;

bool Stream::alive(Clock::time_point deadline) {
    char buf[4096];
    bool fed = false;
    for (;;) {
        ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0) return false;
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            return false;
        }
        if (tls_) {
            BIO_write(tls_->in, buf, static_cast<int>(n));
            fed = true;
        }
    }
    if (!fed) return true;
    // TLS: session tickets, key updates, close_notify, or data (dropped).
    for (;;) {
        ERR_clear_error();
        std::size_t got = 0;
        int r = SSL_read_ex(tls_->ssl.get(), buf, sizeof buf, &got);
        int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(tls_->ssl.get(), r);
        try {
            tls_->flush(fd_.get(), deadline);
        } catch (const OutputError&) {
            return false;
        }
        if (err == SSL_ERROR_NONE) continue;
        ERR_clear_error();
        return err == SSL_ERROR_WANT_READ;
    }
}

void Stream::write(std::string_view data, Clock::time_point deadline) {
    if (!tls_) {
        send_all(fd_.get(), data, deadline);
        return;
    }
    while (!data.empty()) {
        std::size_t n = std::min(data.size(), kIoChunk);
        // Without SSL_MODE_ENABLE_PARTIAL_WRITE, success means all n bytes (into the memory
        // BIO, which drive() then sends); a retry repeats the call with the same arguments.
        tls_->drive(fd_.get(), deadline, "TLS write",
                    [&] { return SSL_write(tls_->ssl.get(), data.data(), static_cast<int>(n)); });
        data.remove_prefix(n);
    }
}

std::size_t Stream::read(std::span<char> buffer, Clock::time_point deadline) {
    if (buffer.empty()) return 0;
    const int max = static_cast<int>(std::min(buffer.size(), kIoChunk * 4));
    if (tls_) {
        int got = 0;
        tls_->drive(fd_.get(), deadline, "TLS read", [&] {
            got = SSL_read(tls_->ssl.get(), buffer.data(), max);
            return got;
        });
        return static_cast<std::size_t>(got);
    }
    for (;;) {
        ssize_t n = ::recv(fd_.get(), buffer.data(), static_cast<std::size_t>(max), MSG_DONTWAIT);
        if (n > 0) return static_cast<std::size_t>(n);
        if (n == 0) throw OutputError("connection closed by the peer");
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            throw OutputError("read failed: " + errno_text(errno));
        if (!wait_for(fd_.get(), POLLIN, deadline))
            throw OutputError("timed out waiting for a reply");
    }
}

// ---------------------------------------------------------------------------------------------
// Datagram

Datagram Datagram::udp(const HostPort& peer) {
    auto list = resolve(peer, SOCK_DGRAM);
    std::string error = "no address";
    for (const addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
        Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       ai->ai_protocol));
        if (fd && ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0)
            return Datagram(std::move(fd));
        error = errno_text(errno);
    }
    throw OutputError("cannot open a UDP socket to " + peer.text() + ": " + error);
}

Datagram Datagram::unix_socket(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) throw OutputError("socket path too long: " + path);
    std::memcpy(addr.sun_path, path.data(), path.size());
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) throw OutputError("cannot create a unix socket: " + errno_text(errno));
    int size = static_cast<int>(kMaxDatagram * 4);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size); // best effort
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        throw OutputError("cannot connect to " + path + ": " + errno_text(errno));
    return Datagram(std::move(fd));
}

void Datagram::send(std::string_view message, Clock::time_point deadline) {
    for (;;) {
        ssize_t n = ::send(fd_.get(), message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0) {
            if (static_cast<std::size_t>(n) != message.size())
                throw OutputError("datagram sent in part (" + std::to_string(n) + " of " +
                                  std::to_string(message.size()) + " bytes)");
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
            if (!wait_for(fd_.get(), POLLOUT, deadline))
                throw OutputError("send timed out: the receiver does not read");
            continue;
        }
        throw OutputError("send failed: " + errno_text(errno));
    }
}

// ---------------------------------------------------------------------------------------------
// LinkState

void LinkState::check_due(Clock::time_point now) {
    if (state_ != State::Down || now >= next_attempt_) return;
    ++refused_;
    ++refused_since_down_;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_attempt_ - now);
    throw OutputError(name_ + ": unavailable (" + last_error_ + "); next attempt in " +
                      std::to_string(wait.count()) + " ms");
}

void LinkState::connected() {
    ++connects_;
    if (log_) {
        if (state_ == State::Initial)
            log_->info("output connected", {{"output", name_}});
        else if (state_ == State::Lost)
            log_->info("output reconnected", {{"output", name_}});
        else if (state_ == State::Down)
            log_->info("output recovered",
                       {{"output", name_},
                        {"refused_batches", std::to_string(refused_since_down_)},
                        {"failed_attempts", std::to_string(attempts_)}});
    }
    state_ = State::Up;
    refused_since_down_ = 0;
}

void LinkState::closed_by_peer() {
    if (log_ && state_ == State::Up)
        log_->warn("output connection closed by the peer; reconnecting", {{"output", name_}});
    state_ = State::Lost;
}

OutputError LinkState::failed(const std::string& what) {
    ++refused_;
    ++attempts_;
    auto delay = kBackoffInitial;
    for (unsigned i = 1; i < attempts_ && delay < kBackoffMax; ++i)
        delay *= 2;
    delay = std::min(delay, kBackoffMax);
    next_attempt_ = Clock::now() + delay;
    last_error_ = what;
    if (state_ != State::Down) {
        refused_since_down_ = 0;
        if (log_)
            log_->error(
                "output unavailable: batches refused (503) until it recovers",
                {{"output", name_}, {"error", what}, {"retry_ms", std::to_string(delay.count())}});
    } else if (log_) {
        log_->debug("output still unavailable",
                    {{"output", name_}, {"error", what}, {"attempts", std::to_string(attempts_)}});
    }
    ++refused_since_down_;
    state_ = State::Down;
    return OutputError(name_ + ": " + what);
}

OutputError LinkState::refused(const std::string& what) {
    ++refused_; // (called without the sender's lock: the atomic counter only)
    return OutputError(name_ + ": " + what);
}

OutputError LinkState::rejected(const std::string& what) {
    ++refused_;
    ++rejected_unlogged_;
    auto now = Clock::now();
    bool log_it = what != rejection_logged_ || rejection_logged_at_ == Clock::time_point{} ||
                  now - rejection_logged_at_ >= std::chrono::minutes(1);
    if (log_it) {
        if (log_)
            log_->error("output refused a batch (503): the peer answered with an error",
                        {{"output", name_},
                         {"error", what},
                         {"refused_since_last_log", std::to_string(rejected_unlogged_)}});
        rejection_logged_ = what;
        rejection_logged_at_ = now;
        rejected_unlogged_ = 0;
    }
    return OutputError(name_ + ": " + what);
}

void LinkState::truncated(std::size_t from, std::size_t to) {
    ++truncated_;
    std::lock_guard lock(truncate_mutex_);
    ++truncated_unlogged_;
    auto now = Clock::now();
    if (truncate_logged_ != Clock::time_point{} && now - truncate_logged_ < std::chrono::minutes(1))
        return;
    if (log_)
        log_->warn("output message truncated to fit in one datagram",
                   {{"output", name_},
                    {"bytes", std::to_string(from)},
                    {"sent", std::to_string(to)},
                    {"truncated_since_last_log", std::to_string(truncated_unlogged_)},
                    {"truncated_total", std::to_string(truncated_.load())}});
    truncate_logged_ = now;
    truncated_unlogged_ = 0;
}

DriverStats LinkState::stats() const {
    DriverStats s;
    s.refused = refused_.load();
    s.connects = connects_.load();
    s.truncated = truncated_.load();
    return s;
}

// ---------------------------------------------------------------------------------------------
// Senders

namespace {

// The sender's lock, taken before `deadline` or refused (a write in progress is stuck).
std::unique_lock<std::timed_mutex> lock_before(std::timed_mutex& m, Clock::time_point deadline,
                                               LinkState& state) {
    std::unique_lock lock(m, std::defer_lock);
    if (!lock.try_lock_until(deadline))
        throw state.refused("timed out waiting for the batch in progress to be written");
    return lock;
}

} // namespace

Stream StreamSender::open(Clock::time_point deadline) const {
    if (target_.kind == Target::Kind::UnixStream)
        return Stream::unix_stream(target_.path, deadline);
    return Stream(target_.address, target_.tls ? &*target_.tls : nullptr, deadline);
}

void StreamSender::send(std::string_view payload) {
    exchange([payload](Stream& s, Clock::time_point deadline) { s.write(payload, deadline); });
}

void StreamSender::exchange(const Step& step) {
    const auto deadline = Clock::now() + timeout_;
    auto lock = lock_before(mutex_, deadline, state_);
    if (state_.take_reconnect_request()) stream_.reset();
    if (stream_ && !stream_->alive(deadline)) {
        stream_.reset();
        state_.closed_by_peer();
    }
    if (!stream_) {
        state_.check_due(Clock::now());
        try {
            stream_.emplace(open(deadline));
            if (greet_) greet_(*stream_, deadline);
        } catch (const OutputError& e) {
            stream_.reset();
            throw state_.failed(e.what());
        }
        state_.connected();
    }
    try {
        step(*stream_, deadline);
    } catch (const Rejected& e) {
        throw state_.rejected(e.what());
    } catch (const OutputError& e) {
        // Part of the batch may have gone out: a fresh connection for the next one.
        stream_.reset();
        throw state_.failed(std::string(e.what()) + " (connection closed)");
    }
    state_.delivered();
}

Datagram DatagramSender::open() const {
    return target_.kind == Target::Kind::Unix ? Datagram::unix_socket(target_.path)
                                              : Datagram::udp(target_.address);
}

void DatagramSender::send(std::span<const std::string_view> messages) {
    const auto deadline = Clock::now() + timeout_;
    auto lock = lock_before(mutex_, deadline, state_);
    if (state_.take_reconnect_request()) socket_.reset();
    bool fresh = false;
    auto connect = [&] {
        state_.check_due(Clock::now());
        try {
            socket_.emplace(open());
        } catch (const OutputError& e) {
            throw state_.failed(e.what());
        }
        state_.connected();
        fresh = true;
    };
    if (!socket_) connect();
    for (std::string_view m : messages) {
        try {
            socket_->send(m, deadline);
            continue;
        } catch (const OutputError& e) {
            socket_.reset();
            // A unix socket's receiver may have been restarted (a new socket at the same path):
            // the datagram was not sent, so one retry on a new socket cannot duplicate it.
            if (fresh || target_.kind != Target::Kind::Unix) throw state_.failed(e.what());
            state_.closed_by_peer();
        }
        connect();
        try {
            socket_->send(m, deadline);
        } catch (const OutputError& e) {
            socket_.reset();
            throw state_.failed(e.what());
        }
    }
    state_.delivered();
}

} // namespace wec::output::detail::net

#include "server/http_server.hpp"

#include "common/error.hpp"
#include "server/tls_internal.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <mutex>
#include <optional>
#include <strings.h>
#include <thread>
#include <unordered_map>

namespace wec::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

Endpoint parse_endpoint(std::string_view text) {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
        throw Error("listen address '" + std::string(text) +
                    "' has no port (expected ADDRESS:PORT)");
    std::string host(text.substr(0, colon));
    std::string port_text(text.substr(colon + 1));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (host.empty()) host = "0.0.0.0";
    unsigned long port = 0;
    try {
        std::size_t used = 0;
        port = std::stoul(port_text, &used);
        if (used != port_text.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
        throw Error("listen address '" + std::string(text) + "': port '" + port_text +
                    "' is not a number");
    }
    if (port > 65535) throw Error("listen address '" + std::string(text) + "': port out of range");
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    if (ec)
        throw Error("listen address '" + std::string(text) + "': '" + host +
                    "' is not an IP address");
    return Endpoint{host, static_cast<std::uint16_t>(port)};
}

std::string_view HttpRequest::header(std::string_view name) const {
    for (const auto& h : headers)
        if (h.name.size() == name.size() &&
            ::strncasecmp(h.name.data(), name.data(), name.size()) == 0)
            return h.value;
    return {};
}

namespace {
// Type-erased view of a session, for the server's bookkeeping (graceful stop).
class SessionBase {
public:
    virtual ~SessionBase() = default;
    virtual void shutdown_when_idle() = 0;
};
} // namespace

struct HttpServer::Impl {
    Impl(Logger& l, Limits lim, std::size_t io, std::size_t work)
        : log(l), limits(lim), io_threads_wanted(io ? io : 1), workers(work ? work : 1),
          guard(asio::make_work_guard(ioc)) {}

    struct Listener {
        ListenerConfig config;
        tcp::acceptor acceptor;
    };

    Logger& log;
    Limits limits;
    std::size_t io_threads_wanted;
    asio::io_context ioc;
    asio::thread_pool workers;
    asio::executor_work_guard<asio::io_context::executor_type> guard;
    std::vector<std::thread> io_threads;
    std::vector<std::unique_ptr<Listener>> listeners;

    std::mutex sessions_mutex;
    std::unordered_map<std::uint64_t, std::weak_ptr<SessionBase>> sessions;
    std::atomic<std::uint64_t> next_id{1};
    std::atomic<bool> stopping{false};
    std::atomic<bool> started{false};
    std::atomic<bool> stopped{false};

    std::atomic<std::uint64_t> open{0}, total{0}, refused{0}, requests{0}, violations{0},
        tls_failures{0};

    void accept(Listener& l);
    void forget(std::uint64_t id) {
        std::lock_guard lock(sessions_mutex);
        sessions.erase(id);
    }
};

namespace {

using Body = http::vector_body<std::uint8_t>;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// One TCP connection, plain or TLS. The server outlives every session: stop() joins all threads
// before Impl is destroyed, and sessions still queued in the io_context are destroyed with it.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
public:
    Session(HttpServer::Impl* server, const ListenerConfig& listener, Stream stream, PeerInfo peer)
        : server_(server), listener_(listener), stream_(std::move(stream)), peer_(std::move(peer)) {
    }

    void start() {
        asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
            if constexpr (std::is_same_v<Stream, TlsStream>)
                self->handshake();
            else
                self->ready();
        });
    }

    void shutdown_when_idle() override {
        asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
            if (!self->busy_) self->close();
        });
    }

private:
    auto& lowest() { return beast::get_lowest_layer(stream_); }

    void handshake() {
        // Record why OpenSSL refused the client's certificate, for the log line.
        stream_.set_verify_callback(
            [self = this->shared_from_this()](bool ok, asio::ssl::verify_context& vc) {
                X509_STORE_CTX* ctx = vc.native_handle();
                int depth = X509_STORE_CTX_get_error_depth(ctx);
                X509* cert = X509_STORE_CTX_get_current_cert(ctx);
                if (!ok) {
                    self->verify_error_ =
                        std::string(X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx))) +
                        " (depth " + std::to_string(depth) +
                        (cert ? ", subject CN=" + common_name(cert) : std::string()) + ")";
                    return false;
                }
                if (depth == 0 && cert && !has_client_auth_eku(cert)) {
                    self->verify_error_ = "client certificate CN=" + common_name(cert) +
                                          " lacks the Client Authentication extended key usage";
                    return false;
                }
                return true;
            });
        lowest().expires_after(server_->limits.read_timeout);
        stream_.async_handshake(
            asio::ssl::stream_base::server,
            [self = this->shared_from_this()](beast::error_code ec) { self->on_handshake(ec); });
    }

    void on_handshake(beast::error_code ec) {
        if constexpr (std::is_same_v<Stream, TlsStream>) {
            if (ec) {
                ++server_->tls_failures;
                server_->log.warn(
                    "TLS handshake failed",
                    {{"client", peer_.address},
                     {"reason", verify_error_.empty() ? ec.message() : verify_error_}});
                return close();
            }
            SSL* ssl = stream_.native_handle();
            peer_.tls = true;
            peer_.tls_version = SSL_get_version(ssl);
            peer_.tls_cipher = SSL_get_cipher_name(ssl);
            if (X509* leaf = SSL_get0_peer_certificate(ssl))
                peer_.tls_subject_cn = common_name(leaf);
            // The verified chain runs leaf, issuer, ..., root: the issuer is what Windows'
            // IssuerCA setting names.
            if (STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);
                chain && sk_X509_num(chain) > 1)
                peer_.tls_issuer_thumbprint = sha1_thumbprint(sk_X509_value(chain, 1));
            else if (chain && sk_X509_num(chain) == 1)
                peer_.tls_issuer_thumbprint = sha1_thumbprint(sk_X509_value(chain, 0));
        }
        ready();
    }

    // The connection is usable: create its handler and read the first request.
    void ready() {
        try {
            handler_ = listener_.factory(peer_);
        } catch (const std::exception& e) {
            server_->log.error("connection setup failed",
                               {{"client", peer_.address}, {"error", e.what()}});
        }
        if (!handler_) return close();
        read_header();
    }

    void read_header() {
        if (server_->stopping) return close();
        // Idle keep-alive connections must stay small: give back what a large body grew.
        if (buffer_.size() == 0 && buffer_.capacity() > 16 * 1024) buffer_.shrink_to_fit();
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(server_->limits.max_header_bytes));
        parser_->body_limit(server_->limits.max_body_bytes);
        lowest().expires_after(server_->limits.idle_timeout);
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = this->shared_from_this()](
                                    beast::error_code ec, std::size_t) { self->on_header(ec); });
    }

    void on_header(beast::error_code ec) {
        if (ec) return on_read_error(ec);
        lowest().expires_after(server_->limits.read_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = this->shared_from_this()](beast::error_code e, std::size_t) {
                             self->on_body(e);
                         });
    }

    void on_body(beast::error_code ec) {
        if (ec) return on_read_error(ec);
        lowest().expires_never();
        auto message = parser_->release();
        parser_.reset();
        keep_alive_ = message.keep_alive();
        auto request = std::make_shared<HttpRequest>();
        request->method = std::string(message.method_string());
        request->target = std::string(message.target());
        for (const auto& field : message)
            request->headers.push_back(
                {std::string(field.name_string()), std::string(field.value())});
        request->body = std::move(message.body());
        busy_ = true;
        ++server_->requests;
        asio::post(server_->workers, [self = this->shared_from_this(), request] {
            HttpResponse response;
            try {
                response = self->handler_->handle(*request);
            } catch (const std::exception& e) {
                self->server_->log.error("request handler failed",
                                         {{"client", self->peer_.address}, {"error", e.what()}});
                response = HttpResponse{500, {}, {}, true};
            }
            asio::post(self->stream_.get_executor(),
                       [self, r = std::move(response)]() mutable { self->write(std::move(r)); });
        });
    }

    void write(HttpResponse r) {
        auto res = std::make_shared<http::response<Body>>(static_cast<http::status>(r.status), 11);
        for (auto& h : r.headers)
            res->insert(h.name, h.value);
        res->body() = std::move(r.body);
        res->keep_alive(keep_alive_ && !r.close && !server_->stopping);
        res->prepare_payload();
        lowest().expires_after(server_->limits.read_timeout);
        http::async_write(
            stream_, *res,
            [self = this->shared_from_this(), res](beast::error_code ec, std::size_t) {
                self->busy_ = false;
                if (ec || !res->keep_alive()) return self->close();
                self->read_header();
            });
    }

    // Limit violations answer once with a 4xx and close; everything else just closes.
    void on_read_error(beast::error_code ec) {
        if (ec == http::error::end_of_stream || ec == asio::error::eof ||
            ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
            ec == asio::ssl::error::stream_truncated)
            return close();
        if (ec == beast::error::timeout) {
            server_->log.debug("connection timed out", {{"client", peer_.address}});
            return close();
        }
        unsigned status = 400;
        std::string reason = ec.message();
        if (ec == http::error::body_limit) {
            reason =
                "body larger than " + std::to_string(server_->limits.max_body_bytes) + " bytes";
        } else if (ec == http::error::header_limit) {
            status = 431;
            reason = "headers larger than " + std::to_string(server_->limits.max_header_bytes) +
                     " bytes";
        }
        ++server_->violations;
        server_->log.warn(
            "request rejected",
            {{"client", peer_.address}, {"status", std::to_string(status)}, {"reason", reason}});
        keep_alive_ = false;
        busy_ = true;
        write(HttpResponse{
            status, {{"Content-Type", "text/plain"}}, {reason.begin(), reason.end()}, true});
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        beast::error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
        lowest().close();
        if (handler_) handler_->closed();
        --server_->open;
        server_->forget(peer_.connection_id);
    }

    HttpServer::Impl* server_;
    const ListenerConfig& listener_;
    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<Body>> parser_;
    PeerInfo peer_;
    std::unique_ptr<ConnectionHandler> handler_;
    std::string verify_error_;
    bool keep_alive_ = true;
    bool busy_ = false;
    bool closed_ = false;
};

} // namespace

void HttpServer::Impl::accept(Listener& l) {
    l.acceptor.async_accept(asio::make_strand(ioc), [self = this, &l](beast::error_code ec,
                                                                      tcp::socket socket) {
        if (ec) {
            if (ec == asio::error::operation_aborted || self->stopping) return;
            self->log.warn("accept failed", {{"listener", l.config.name}, {"error", ec.message()}});
            return self->accept(l);
        }
        if (self->stopping) return;
        if (self->open.load() >= self->limits.max_connections) {
            // Logged once per thousand so that a flood does not flood the log too.
            if (self->refused++ % 1000 == 0)
                self->log.warn("connection refused: too many connections",
                               {{"limit", std::to_string(self->limits.max_connections)}});
            beast::error_code ignored;
            socket.close(ignored);
            return self->accept(l);
        }
        PeerInfo peer;
        beast::error_code rec;
        auto remote = socket.remote_endpoint(rec);
        if (!rec) {
            peer.address = remote.address().to_string();
            if (remote.address().is_v6() && remote.address().to_v6().is_v4_mapped())
                peer.address = remote.address().to_v6().to_v4().to_string();
            peer.port = remote.port();
        }
        peer.listener = l.config.name;
        peer.connection_id = self->next_id++;
        ++self->open;
        ++self->total;
        // Registered before it starts, so that a session closing at once is forgotten too.
        auto launch = [&](auto session) {
            {
                std::lock_guard lock(self->sessions_mutex);
                self->sessions[peer.connection_id] = session;
            }
            session->start();
        };
        if (l.config.tls)
            launch(std::make_shared<Session<TlsStream>>(
                self, l.config, TlsStream(PlainStream(std::move(socket)), l.config.tls->ssl),
                peer));
        else
            launch(std::make_shared<Session<PlainStream>>(self, l.config,
                                                          PlainStream(std::move(socket)), peer));
        self->accept(l);
    });
}

HttpServer::HttpServer(Logger& log, Limits limits, std::size_t io_threads,
                       std::size_t worker_threads)
    : impl_(std::make_unique<Impl>(log, limits, io_threads, worker_threads)) {}

HttpServer::~HttpServer() {
    stop(std::chrono::seconds(2));
}

std::uint16_t HttpServer::add_listener(ListenerConfig config) {
    auto address = asio::ip::make_address(config.endpoint.address);
    tcp::endpoint ep(address, config.endpoint.port);
    auto l = std::make_unique<Impl::Listener>(
        Impl::Listener{std::move(config), tcp::acceptor(impl_->ioc)});
    beast::error_code ec;
    l->acceptor.open(ep.protocol(), ec);
    if (!ec) l->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) l->acceptor.bind(ep, ec);
    if (!ec) l->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw Error("cannot listen on " + l->config.endpoint.address + ":" +
                    std::to_string(l->config.endpoint.port) + ": " + ec.message());
    auto port = l->acceptor.local_endpoint().port();
    impl_->listeners.push_back(std::move(l));
    if (impl_->started) impl_->accept(*impl_->listeners.back());
    return port;
}

void HttpServer::start() {
    if (impl_->started.exchange(true)) return;
    for (auto& l : impl_->listeners)
        impl_->accept(*l);
    for (std::size_t i = 0; i < impl_->io_threads_wanted; ++i)
        impl_->io_threads.emplace_back([impl = impl_.get()] { impl->ioc.run(); });
}

void HttpServer::stop(std::chrono::milliseconds grace) {
    auto& s = *impl_;
    if (s.stopped.exchange(true)) return;
    s.stopping = true;
    for (auto& l : s.listeners)
        asio::dispatch(s.ioc, [&l] {
            beast::error_code ignored;
            l->acceptor.close(ignored);
        });
    std::vector<std::shared_ptr<SessionBase>> live;
    {
        std::lock_guard lock(s.sessions_mutex);
        for (auto& [id, weak] : s.sessions)
            if (auto p = weak.lock()) live.push_back(std::move(p));
    }
    for (auto& p : live)
        p->shutdown_when_idle();
    live.clear();
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (s.started && std::chrono::steady_clock::now() < deadline) {
        {
            std::lock_guard lock(s.sessions_mutex);
            if (s.sessions.empty()) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    s.workers.join();
    s.guard.reset();
    s.ioc.stop();
    for (auto& t : s.io_threads)
        if (t.joinable()) t.join();
    s.io_threads.clear();
    // Sessions still referenced by pending handlers are destroyed with the io_context.
}

ServerStats HttpServer::stats() const {
    return ServerStats{impl_->open.load(),       impl_->total.load(),
                       impl_->refused.load(),    impl_->requests.load(),
                       impl_->violations.load(), impl_->tls_failures.load()};
}

} // namespace wec::server

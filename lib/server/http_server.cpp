#include "server/http_server.hpp"

#include "common/error.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

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
        throw Error("listen address '" + std::string(text) + "' has no port (expected ADDRESS:PORT)");
    std::string host(text.substr(0, colon));
    std::string port_text(text.substr(colon + 1));
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty()) host = "0.0.0.0";
    unsigned long port = 0;
    try {
        std::size_t used = 0;
        port = std::stoul(port_text, &used);
        if (used != port_text.size()) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
        throw Error("listen address '" + std::string(text) + "': port '" + port_text + "' is not a number");
    }
    if (port > 65535) throw Error("listen address '" + std::string(text) + "': port out of range");
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    if (ec) throw Error("listen address '" + std::string(text) + "': '" + host + "' is not an IP address");
    return Endpoint{host, static_cast<std::uint16_t>(port)};
}

std::string_view HttpRequest::header(std::string_view name) const {
    for (const auto& h : headers)
        if (h.name.size() == name.size() && ::strncasecmp(h.name.data(), name.data(), name.size()) == 0)
            return h.value;
    return {};
}

namespace {
class Session;
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
    std::unordered_map<std::uint64_t, std::weak_ptr<Session>> sessions;
    std::atomic<std::uint64_t> next_id{1};
    std::atomic<bool> stopping{false};
    std::atomic<bool> started{false};
    std::atomic<bool> stopped{false};

    std::atomic<std::uint64_t> open{0}, total{0}, refused{0}, requests{0}, violations{0};

    void accept(Listener& l);
    void forget(std::uint64_t id) {
        std::lock_guard lock(sessions_mutex);
        sessions.erase(id);
    }
};

namespace {

using Body = http::vector_body<std::uint8_t>;

class Session : public std::enable_shared_from_this<Session> {
public:
    // The server outlives every session: stop() joins all threads before Impl is destroyed, and
    // sessions still queued in the io_context are destroyed with it.
    Session(HttpServer::Impl* server, tcp::socket socket, PeerInfo peer,
            std::unique_ptr<ConnectionHandler> handler)
        : server_(server), stream_(std::move(socket)), peer_(std::move(peer)),
          handler_(std::move(handler)) {}

    void start() {
        asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
    }

    // From stop(): close now if no request is being handled; otherwise after its response.
    void shutdown_when_idle() {
        asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
            if (!self->busy_) self->close();
        });
    }

private:
    void read_header() {
        if (server_->stopping) return close();
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(server_->limits.max_header_bytes));
        parser_->body_limit(server_->limits.max_body_bytes);
        stream_.expires_after(server_->limits.idle_timeout);
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                    self->on_header(ec);
                                });
    }

    void on_header(beast::error_code ec) {
        if (ec) return on_read_error(ec);
        stream_.expires_after(server_->limits.read_timeout);
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code e, std::size_t) {
                             self->on_body(e);
                         });
    }

    void on_body(beast::error_code ec) {
        if (ec) return on_read_error(ec);
        stream_.expires_never();
        auto message = parser_->release();
        keep_alive_ = message.keep_alive();
        auto request = std::make_shared<HttpRequest>();
        request->method = std::string(message.method_string());
        request->target = std::string(message.target());
        for (const auto& field : message)
            request->headers.push_back({std::string(field.name_string()), std::string(field.value())});
        request->body = std::move(message.body());
        busy_ = true;
        ++server_->requests;
        asio::post(server_->workers, [self = shared_from_this(), request] {
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
        for (auto& h : r.headers) res->insert(h.name, h.value);
        res->body() = std::move(r.body);
        res->keep_alive(keep_alive_ && !r.close && !server_->stopping);
        res->prepare_payload();
        stream_.expires_after(server_->limits.read_timeout);
        http::async_write(stream_, *res,
                          [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                              self->busy_ = false;
                              if (ec || !res->keep_alive()) return self->close();
                              self->read_header();
                          });
    }

    // Limit violations answer once with a 4xx and close; everything else just closes.
    void on_read_error(beast::error_code ec) {
        if (ec == http::error::end_of_stream || ec == asio::error::eof ||
            ec == asio::error::operation_aborted || ec == asio::error::connection_reset)
            return close();
        if (ec == beast::error::timeout) {
            server_->log.debug("connection timed out", {{"client", peer_.address}});
            return close();
        }
        unsigned status = 400;
        std::string reason = ec.message();
        if (ec == http::error::body_limit) {
            reason = "body larger than " + std::to_string(server_->limits.max_body_bytes) + " bytes";
        } else if (ec == http::error::header_limit) {
            status = 431;
            reason = "headers larger than " + std::to_string(server_->limits.max_header_bytes) + " bytes";
        }
        ++server_->violations;
        server_->log.warn("request rejected",
                          {{"client", peer_.address}, {"status", std::to_string(status)}, {"reason", reason}});
        keep_alive_ = false;
        busy_ = true;
        write(HttpResponse{status, {{"Content-Type", "text/plain"}}, {reason.begin(), reason.end()}, true});
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.close();
        handler_->closed();
        --server_->open;
        server_->forget(peer_.connection_id);
    }

    HttpServer::Impl* server_;
    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<Body>> parser_;
    PeerInfo peer_;
    std::unique_ptr<ConnectionHandler> handler_;
    bool keep_alive_ = true;
    bool busy_ = false;
    bool closed_ = false;
};

} // namespace

void HttpServer::Impl::accept(Listener& l) {
    l.acceptor.async_accept(
        asio::make_strand(ioc), [self = this, &l](beast::error_code ec, tcp::socket socket) {
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
                peer.port = remote.port();
            }
            peer.listener = l.config.name;
            peer.connection_id = self->next_id++;
            std::unique_ptr<ConnectionHandler> handler;
            try {
                handler = l.config.factory(peer);
            } catch (const std::exception& e) {
                self->log.error("connection setup failed", {{"client", peer.address}, {"error", e.what()}});
            }
            if (handler) {
                ++self->open;
                ++self->total;
                auto session = std::make_shared<Session>(self, std::move(socket), peer, std::move(handler));
                {
                    std::lock_guard lock(self->sessions_mutex);
                    self->sessions[peer.connection_id] = session;
                }
                session->start();
            }
            self->accept(l);
        });
}

HttpServer::HttpServer(Logger& log, Limits limits, std::size_t io_threads, std::size_t worker_threads)
    : impl_(std::make_unique<Impl>(log, limits, io_threads, worker_threads)) {}

HttpServer::~HttpServer() { stop(std::chrono::seconds(2)); }

std::uint16_t HttpServer::add_listener(ListenerConfig config) {
    auto address = asio::ip::make_address(config.endpoint.address);
    tcp::endpoint ep(address, config.endpoint.port);
    auto l = std::make_unique<Impl::Listener>(Impl::Listener{std::move(config), tcp::acceptor(impl_->ioc)});
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
    for (auto& l : impl_->listeners) impl_->accept(*l);
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
    std::vector<std::shared_ptr<Session>> live;
    {
        std::lock_guard lock(s.sessions_mutex);
        for (auto& [id, weak] : s.sessions)
            if (auto p = weak.lock()) live.push_back(std::move(p));
    }
    for (auto& p : live) p->shutdown_when_idle();
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
    return ServerStats{impl_->open.load(), impl_->total.load(), impl_->refused.load(),
                       impl_->requests.load(), impl_->violations.load()};
}

} // namespace wec::server

#include "server/http_server.hpp"

#include "common/error.hpp"
#include "common/openssl.hpp"
#include "server/plain_stream_internal.hpp"
#include "server/proxy_protocol.hpp"
#include "server/tls_internal.hpp"
#include "server/tls_stream_internal.hpp"

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <optional>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <thread>
#include <unordered_map>
#include <utility>

namespace wec::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
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
    virtual void force_close() = 0;
};

// Accept errors that mean "out of descriptors or memory": retrying at once only spins.
bool is_resource_exhaustion(const beast::error_code& ec) {
    return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
           ec == asio::error::no_memory ||
           (ec.category() == boost::system::system_category() && ec.value() == ENFILE);
}

// Request bodies grow without being zero-filled first (chunked bodies, parse_requests).
using Body = beast::http::vector_body<std::uint8_t, sldc::Buffer::allocator_type>;
using Parser = beast::http::request_parser<Body>;
using ResponseBody = beast::http::vector_body<std::uint8_t>;

// Limits as a connection applies them (Beast cannot store a field value over 64 KiB).
Limits effective(Limits limits) {
    limits.max_header_bytes = std::min(limits.max_header_bytes, kMaxHeaderBytes);
    return limits;
}

// The read buffer holds at most one request head (or one trailer) plus what arrived with it. It is
// also what bounds a chunked body's trailer, which Beast 1.74 does not limit itself.
std::size_t read_buffer_limit(const Limits& limits) {
    auto n = std::max<std::size_t>(limits.max_header_bytes + 4096, 32 * 1024);
    return std::min(n, kMaxHeaderBytes + 4096);
}

void configure(Parser& parser, const Limits& limits) {
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
}

// Method, target and header fields (the body comes later).
HttpRequest head_of(const beast::http::request<Body>& message) {
    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    for (const auto& field : message)
        request.headers.push_back({std::string(field.name_string()), std::string(field.value())});
    return request;
}

// A read error that ends the connection quietly (peer gone, timeout, shutdown).
bool is_quiet_end(const beast::error_code& ec) {
    return ec == beast::http::error::end_of_stream || ec == beast::http::error::partial_message ||
           ec == asio::error::eof || ec == asio::error::operation_aborted ||
           ec == asio::error::connection_reset || ec == asio::ssl::error::stream_truncated ||
           ec == beast::error::timeout;
}

// The answer to any other read error: a limit (413-like 400, 431) or a malformed request (400).
struct Rejection {
    unsigned status = 400;
    std::string reason;
};
Rejection classify(const beast::error_code& ec, const Limits& limits) {
    if (ec == beast::http::error::body_limit)
        return {400, "body larger than " + std::to_string(limits.max_body_bytes) + " bytes"};
    if (ec == beast::http::error::header_limit)
        return {431, "headers larger than " + std::to_string(limits.max_header_bytes) + " bytes"};
    if (ec ==
        beast::http::error::buffer_overflow) // the head, or a chunked body's trailer, did not fit
        return {431, "headers or trailers larger than " + std::to_string(limits.max_header_bytes) +
                         " bytes"};
    return {400, ec.message()};
}

// A completion handler that Asio treats as the continuation of the handler running now. When
// its operation completes at once (the bytes were already there, the response went out in one
// send), Asio queues the completion for this I/O thread, to run once the current handler
// returns, rather than for any thread, which wakes the other I/O thread to run it (a futex or
// epoll wake-up and a context switch per step). Each step of a request (head, body, response,
// next head) follows the one before on the same connection: a continuation.
template <class Handler>
struct Continuation {
    Handler handler;
    template <class... Args>
    void operator()(Args&&... args) {
        handler(std::forward<Args>(args)...);
    }
    friend bool asio_handler_is_continuation(Continuation*) { return true; }
};
template <class Handler>
Continuation<std::decay_t<Handler>> continuation(Handler&& handler) {
    return {std::forward<Handler>(handler)};
}

// A SyncReadStream over bytes in memory: what parse_requests reads from.
class MemoryStream {
public:
    explicit MemoryStream(std::span<const std::uint8_t> bytes) : rest_(bytes) {}
    template <class Buffers>
    std::size_t read_some(const Buffers& buffers, beast::error_code& ec) {
        ec = {};
        if (rest_.empty()) {
            ec = asio::error::eof;
            return 0;
        }
        auto n = asio::buffer_copy(buffers, asio::buffer(rest_.data(), rest_.size()));
        rest_ = rest_.subspan(n);
        return n;
    }
    template <class Buffers>
    std::size_t read_some(const Buffers& buffers) {
        beast::error_code ec;
        auto n = read_some(buffers, ec);
        if (ec) throw beast::system_error(ec);
        return n;
    }
    bool empty() const { return rest_.empty(); }

private:
    std::span<const std::uint8_t> rest_;
};
} // namespace

// What sessions report to: a base of Impl so that it outlives Impl's io_context, whose
// destruction may destroy the last sessions (handlers still queued when stop() gave up).
struct ServerBookkeeping {
    std::mutex sessions_mutex;
    std::unordered_map<std::uint64_t, std::weak_ptr<SessionBase>> sessions;
    std::atomic<std::uint64_t> open{0}, total{0}, refused{0}, requests{0}, violations{0},
        tls_failures{0}, alive{0}, exceptions{0}, accept_errors{0}, proxy_refused{0},
        tls_refused_certificate{0}, tls_no_certificate{0};

    void forget(std::uint64_t id) {
        std::lock_guard lock(sessions_mutex);
        sessions.erase(id);
    }
};

struct HttpServer::Impl : ServerBookkeeping {
    Impl(Logger& l, Limits lim, std::size_t io, std::size_t work, HandlerThreads where)
        : log(l), limits(lim), io_threads_wanted(io ? io : 1), worker_count(work ? work : 1),
          handlers_on_io(where == HandlerThreads::io), workers(worker_count),
          guard(asio::make_work_guard(ioc)) {
        limits = effective(limits);
        buffer_limit = read_buffer_limit(limits);
    }

    struct Listener {
        ListenerConfig config; // config.tls is guarded by tls_mutex (replaced on SIGHUP)
        tcp::acceptor acceptor;
        asio::steady_timer pause;                       // accept back-off
        std::chrono::steady_clock::time_point last_log; // of "accept failed"
        std::uint64_t unlogged = 0;                     // failures since then
    };

    Logger& log;
    Limits limits;
    std::size_t buffer_limit = 0;
    std::size_t io_threads_wanted;
    std::size_t worker_count;
    bool handlers_on_io;
    asio::io_context ioc;
    asio::thread_pool workers;
    asio::executor_work_guard<asio::io_context::executor_type> guard;
    std::vector<std::thread> io_threads;
    std::vector<std::unique_ptr<Listener>> listeners;

    std::mutex tls_mutex;
    std::shared_ptr<TlsContext> tls_of(Listener& l) {
        std::lock_guard lock(tls_mutex);
        return l.config.tls;
    }
    std::atomic<std::uint64_t> next_id{1};
    std::atomic<bool> stopping{false};
    std::atomic<bool> started{false};
    std::atomic<bool> stopped{false};

    // Handlers on the I/O threads (HandlerThreads::io). A handler may block (disk, the store):
    // when every thread running the io_context has been inside a handler for a whole tick
    // (kStandInAfter) with none of them returning, the watcher has a worker stand in, running the
    // io_context until a thread is free again (the network stalls for a tick at most, as long as
    // workers remain).
    static constexpr int kWatcherIdleTicks = 100; // without handlers, before the watcher sleeps
    std::atomic<std::size_t> running{0};    // threads running the io_context, stand-ins included
    std::atomic<std::size_t> in_handler{0}; // of those, inside a handler now
    std::atomic<std::size_t> stand_ins_now{0};
    std::atomic<std::uint64_t> handlers_done{0}, stand_ins{0};
    std::thread watcher;
    std::mutex watch_mutex;
    std::condition_variable watch_cv;
    bool watch_stop = false;                 // guarded by watch_mutex
    std::atomic<bool> watcher_asleep{false}; // waiting for a handler, not ticking

    // Runs `handler` on this I/O thread, counted for the watcher.
    template <class F>
    void run_handler(F&& handler) {
        // Pairs with the watcher's check of in_handler after it set watcher_asleep (both seq_cst):
        // either it sees this handler, or this thread sees it asleep and wakes it.
        if (in_handler.fetch_add(1) == 0 && watcher_asleep.load()) {
            { std::lock_guard lock(watch_mutex); }
            watch_cv.notify_one();
        }
        struct Leave {
            Impl& s;
            ~Leave() {
                s.handlers_done.fetch_add(1, std::memory_order_relaxed);
                s.in_handler.fetch_sub(1);
            }
        } leave{*this};
        handler();
    }

    void watch() {
        std::unique_lock lock(watch_mutex);
        std::uint64_t seen = handlers_done.load();
        int idle_ticks = 0;
        // Logged when it starts, then at most once a minute while it goes on (the counter has
        // every one).
        std::optional<std::chrono::steady_clock::time_point> last_warning;
        std::uint64_t warned = 0;
        while (!watch_stop) {
            if (idle_ticks >= kWatcherIdleTicks) {
                watcher_asleep = true;
                watch_cv.wait(lock, [this] { return watch_stop || in_handler.load() != 0; });
                watcher_asleep = false;
                idle_ticks = 0;
                seen = handlers_done.load();
                continue;
            }
            if (watch_cv.wait_for(lock, kStandInAfter, [this] { return watch_stop; })) break;
            const auto done = handlers_done.load(std::memory_order_relaxed);
            const auto busy = in_handler.load();
            idle_ticks = busy == 0 ? idle_ticks + 1 : 0;
            if (busy != 0 && busy >= running.load() && done == seen &&
                stand_ins_now.load() < worker_count) {
                ++stand_ins_now;
                const auto started_so_far = ++stand_ins;
                asio::post(workers, [this] { stand_in(); });
                const auto now = std::chrono::steady_clock::now();
                if (!last_warning || now - *last_warning >= std::chrono::minutes(1)) {
                    log.warn("request handlers held every I/O thread for " +
                                 std::to_string(kStandInAfter.count()) +
                                 " ms: a worker thread runs the network meanwhile (a slow store "
                                 "or output? wec_handler_stand_ins_total counts these)",
                             {{"stand_ins", std::to_string(started_so_far - warned)},
                              {"hint", "handler_threads = \"workers\" moves requests off the I/O "
                                       "threads"}});
                    last_warning = now;
                    warned = started_so_far;
                }
            }
            seen = done;
        }
    }

    // A worker running the network while every I/O thread is held by a handler.
    void stand_in() {
        ++running;
        while (!ioc.stopped()) {
            run_guarded([this] { ioc.run_one_for(kStandInAfter); });
            if (in_handler.load() + 1 < running.load()) break; // another thread is free for I/O
        }
        --running;
        --stand_ins_now;
        // Completions its last handler queued for this thread (a continuation: the response
        // written at once) went to the shared queue when run_one_for returned, without waking
        // a thread (Asio's work_cleanup): wake one for them, or they wait for the next event.
        asio::post(ioc, [] {});
    }

    void stop_watcher() {
        if (!watcher.joinable()) return;
        {
            std::lock_guard lock(watch_mutex);
            watch_stop = true;
        }
        watch_cv.notify_one();
        watcher.join();
    }

    void accept(Listener& l);
    void on_accept_error(Listener& l, const beast::error_code& ec);
    // An I/O thread. No exception may end it: one that escapes a connection's handler (Beast
    // throws std::length_error for some oversized fields, allocation can fail) is logged and
    // counted; unwinding already destroyed that handler, and with it the connection's last owner.
    void run_io() {
        ++running;
        while (!run_guarded([this] { ioc.run(); })) {
        }
        --running;
    }
    // False when an exception ended `run`.
    template <class F>
    bool run_guarded(F&& run) {
        try {
            run();
            return true;
        } catch (const std::exception& e) {
            ++exceptions;
            log.error("connection closed after an exception", {{"error", e.what()}});
        } catch (...) {
            ++exceptions;
            log.error("connection closed after an unknown exception");
        }
        return false;
    }
};

namespace {

// Both streams keep one lazily re-armed deadline per connection (server/deadline.hpp).
using PlainStream = detail::PlainSocketStream;
// Our own TLS stream: no per-connection buffers while idle (asio's engine keeps 68 KB).
using TlsStream = detail::TlsSocketStream;

// One TCP connection, plain or TLS. The server outlives every session: stop() joins all threads
// before Impl is destroyed, and sessions still queued in the io_context are destroyed with it.
// Nothing the session owns may hold a shared_ptr to the session itself (the TLS verify callback
// lives inside the stream): only pending operations own it, so it dies with its last operation.
template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
public:
    Session(HttpServer::Impl* server, const ListenerConfig& listener, Stream stream, PeerInfo peer,
            std::shared_ptr<TlsContext> tls = nullptr)
        : server_(server), listener_(listener), tls_(std::move(tls)), stream_(std::move(stream)),
          buffer_(server->buffer_limit), peer_(std::move(peer)) {
        ++server_->alive;
        ++server_->open;
    }

    // A session that ends without close() (an exception unwound its last handler, or the server
    // was torn down with operations pending) still leaves the books straight.
    ~Session() override {
        if (!closed_) {
            closed_ = true;
            --server_->open;
            server_->forget(peer_.connection_id);
        }
        --server_->alive;
    }

    void start() {
        asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
            if (self->listener_.proxy_protocol)
                self->read_proxy_header();
            else
                self->secure();
        });
    }

    void shutdown_when_idle() override {
        asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
            if (!self->busy_) self->close();
        });
    }

    void force_close() override {
        asio::dispatch(stream_.get_executor(),
                       [self = this->shared_from_this()] { self->close(); });
    }

private:
    auto& lowest() { return beast::get_lowest_layer(stream_); }

    // TLS handshake, or straight to the first request.
    void secure() {
        if constexpr (std::is_same_v<Stream, TlsStream>)
            handshake();
        else
            ready();
    }

    // PROXY protocol: the balancer's header, read into the connection's buffer (what follows it
    // stays there for the TLS handshake or the HTTP parser), under read_timeout.
    void read_proxy_header() {
        lowest().expires_after(server_->limits.read_timeout);
        auto into =
            buffer_.prepare(proxy::kMaxV2Bytes - std::min(buffer_.size(), proxy::kMaxV2Bytes));
        auto then = [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
            self->buffer_.commit(n);
            self->on_proxy_header(ec);
        };
        if constexpr (std::is_same_v<Stream, TlsStream>)
            stream_.async_read_plain(into, std::move(then)); // not through TLS
        else
            lowest().async_read_some(into, std::move(then));
    }

    void on_proxy_header(beast::error_code ec) {
        const auto* data = static_cast<const std::uint8_t*>(buffer_.data().data());
        auto parsed = proxy::parse({data, buffer_.size()});
        if (parsed.status == proxy::Status::Incomplete && !ec) return read_proxy_header();
        if (parsed.status != proxy::Status::Complete) {
            // A balancer's TCP health check connects and closes: not worth a warning each time.
            if (ec && buffer_.size() == 0) {
                server_->log.debug("connection closed before its PROXY header",
                                   {{"client", peer_.address}});
                return close();
            }
            ++server_->proxy_refused;
            server_->log.warn(
                "connection refused: this listener expects a PROXY protocol header",
                {{"client", peer_.address},
                 {"error", ec && parsed.error.empty() ? ec.message() : parsed.error}});
            return close();
        }
        buffer_.consume(parsed.length);
        if (!parsed.header.local) {
            peer_.proxy_address = std::move(peer_.address);
            peer_.address = std::move(parsed.header.source_address);
            peer_.port = parsed.header.source_port;
        }
        if (ec && buffer_.size() == 0) {
            // Header then close: a health check with a PROXY header (haproxy check-send-proxy).
            server_->log.debug("connection closed after its PROXY header",
                               {{"client", peer_.address}});
            return close();
        }
        secure();
    }

    void handshake() {
        // Record why OpenSSL refused the client's certificate, for the log line. `this`, not a
        // shared_ptr: the callback is owned by the stream, which the session owns (a shared_ptr
        // here made every TLS session own itself, and leak). It only runs inside the handshake,
        // whose completion handler keeps the session alive.
        stream_.set_verify_callback([this](bool ok, asio::ssl::verify_context& vc) {
            X509_STORE_CTX* ctx = vc.native_handle();
            int depth = X509_STORE_CTX_get_error_depth(ctx);
            X509* cert = X509_STORE_CTX_get_current_cert(ctx);
            if (!ok) {
                verify_error_ =
                    std::string(X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx))) +
                    " (depth " + std::to_string(depth) +
                    (cert ? ", subject CN=" + openssl::subject_cn(cert) : std::string()) + ")";
                return false;
            }
            if (depth == 0 && cert && !detail::has_client_auth_eku(cert)) {
                verify_error_ = "client certificate CN=" + openssl::subject_cn(cert) +
                                " lacks the Client Authentication extended key usage";
                return false;
            }
            return true;
        });
        lowest().expires_after(server_->limits.read_timeout);
        if (buffer_.size() > 0) // bytes read with a PROXY header: the start of the handshake
            return stream_.async_handshake(
                asio::ssl::stream_base::server, buffer_.data(),
                [self = this->shared_from_this()](beast::error_code ec, std::size_t used) {
                    self->buffer_.consume(used);
                    self->on_handshake(ec);
                });
        stream_.async_handshake(
            asio::ssl::stream_base::server,
            [self = this->shared_from_this()](beast::error_code ec) { self->on_handshake(ec); });
    }

    void on_handshake(beast::error_code ec) {
        if constexpr (std::is_same_v<Stream, TlsStream>) {
            if (ec) {
                // Closed before a ClientHello came: a port probe or a balancer's health check
                // (haproxy's check-send-proxy connects, sends a LOCAL header and resets), not a
                // client that failed to authenticate.
                if (SSL_get_state(stream_.native_handle()) == TLS_ST_BEFORE &&
                    verify_error_.empty()) {
                    server_->log.debug("connection closed before the TLS handshake",
                                       {{"client", peer_.address}, {"reason", ec.message()}});
                    return close();
                }
                ++server_->tls_failures;
                if (!verify_error_.empty())
                    ++server_->tls_refused_certificate;
                else if (ec.category() == asio::error::get_ssl_category() &&
                         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) ==
                             SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
                    ++server_->tls_no_certificate;
                server_->log.warn(
                    "TLS handshake failed",
                    {{"client", peer_.address},
                     {"reason", verify_error_.empty() ? ec.message() : verify_error_}});
                return linger_close();
            }
            SSL* ssl = stream_.native_handle();
            peer_.tls = true;
            peer_.tls_version = SSL_get_version(ssl);
            peer_.tls_cipher = SSL_get_cipher_name(ssl);
            if (X509* leaf = SSL_get0_peer_certificate(ssl))
                peer_.tls_subject_cn = openssl::subject_cn(leaf);
            // The verified chain runs leaf, issuer, ..., root: the issuer is what Windows'
            // IssuerCA setting names.
            if (STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);
                chain && sk_X509_num(chain) > 1)
                peer_.tls_issuer_thumbprint = openssl::sha1_thumbprint(sk_X509_value(chain, 1));
            else if (chain && sk_X509_num(chain) == 1)
                peer_.tls_issuer_thumbprint = openssl::sha1_thumbprint(sk_X509_value(chain, 0));
        }
        ready();
    }

    // After a refused handshake. The alert is sent, but a TLS 1.3 client may already be sending
    // its request: closing with unread bytes would reset the connection, and the client could
    // see "broken pipe" instead of the alert. So: FIN, then read and drop what still comes
    // (bounded in bytes and time) until the client closes.
    void linger_close() {
        if constexpr (std::is_same_v<Stream, TlsStream>) {
            beast::error_code ignored;
            lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
            drained_ = 0;
            lowest().expires_after(std::min<std::chrono::milliseconds>(server_->limits.read_timeout,
                                                                       std::chrono::seconds(2)));
            linger_some();
        }
    }

    void linger_some() {
        if constexpr (std::is_same_v<Stream, TlsStream>) {
            buffer_.clear();
            stream_.async_read_plain(
                buffer_.prepare(kIdleReadBytes),
                [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                    self->drained_ += n;
                    if (ec || self->drained_ > 64 * 1024) return self->close();
                    self->linger_some();
                });
        }
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
        // The handler has its own copy; the session only ever logs the address (its strings are
        // released: they would stay for the connection's whole life).
        for (auto* field : {&peer_.proxy_address, &peer_.listener, &peer_.tls_subject_cn,
                            &peer_.tls_issuer_thumbprint, &peer_.tls_version, &peer_.tls_cipher})
            std::string().swap(*field);
        read_header();
    }

    // Waits for the next request under idle_timeout; from its first byte on, read_timeout covers
    // the whole request, head and body (a slow sender does not get the idle time on top).
    void read_header() {
        if (server_->stopping) return close();
        if (buffer_.size() > 0) return read_request(); // pipelined: already started
        // Idle keep-alive connections must stay small: between requests a connection holds no
        // read buffer and no parser. It waits for its next request with a read into a few bytes
        // of its own; the read buffer is allocated once they have come (the parser's reads grow
        // it while a request is in flight).
        buffer_.shrink_to_fit();
        lowest().expires_after(server_->limits.idle_timeout);
        stream_.async_read_some(
            asio::buffer(first_bytes_),
            continuation([self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                if (n > 0) {
                    auto into = self->buffer_.prepare(kIdleReadBytes);
                    asio::buffer_copy(into, asio::buffer(self->first_bytes_, n));
                    self->buffer_.commit(n);
                }
                if (ec) return self->on_read_error(ec);
                self->read_request();
            }));
    }

    void read_request() {
        parser_.emplace();
        configure(*parser_, server_->limits);
        lowest().expires_after(server_->limits.read_timeout);
        beast::http::async_read_header(
            stream_, buffer_, *parser_,
            continuation([self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                self->on_header(ec);
            }));
    }

    void on_header(beast::error_code ec) {
        if (ec) return on_read_error(ec);
        request_ = std::make_shared<HttpRequest>(head_of(parser_->get()));
        // The handler may answer from the head alone (a 401 before any body byte is buffered).
        std::optional<HttpResponse> early;
        try {
            early = handler_->check_head(*request_);
        } catch (const std::exception& e) {
            server_->log.error("request handler failed",
                               {{"client", peer_.address}, {"error", e.what()}});
            early = HttpResponse{500, {}, {}, true};
        }
        if (early) {
            ++server_->requests;
            return answer_unread(std::move(*early));
        }
        // A Content-Length body (what WinRM sends) is read straight into the request's body at
        // its final size (the parser checked it against max_body_bytes with the head): what came
        // with the head is moved over, the rest is read from the socket in as few reads as the
        // data arrives in, not through the read buffer 16 KiB at a time. Chunked bodies go
        // through the parser.
        if (!parser_->is_done() && !parser_->chunked() && parser_->content_length())
            return read_sized_body(static_cast<std::size_t>(*parser_->content_length()));
        // A body to read: room for large reads while it is in flight (given back when idle).
        if (!parser_->is_done() && buffer_.capacity() < kBodyReadBytes)
            buffer_.reserve(std::min(kBodyReadBytes, buffer_.max_size()));
        beast::http::async_read(
            stream_, buffer_, *parser_,
            continuation([self = this->shared_from_this()](beast::error_code e, std::size_t) {
                if (e) return self->on_read_error(e);
                self->request_->body = std::move(self->parser_->release().body());
                self->on_body();
            }));
    }

    void read_sized_body(std::size_t length) {
        auto& body = request_->body;
        body.resize(length); // not zero-filled: every byte is read into
        auto have = std::min(buffer_.size(), length);
        asio::buffer_copy(asio::buffer(body.data(), have), buffer_.data());
        buffer_.consume(have); // what follows the body (a pipelined request) stays
        if (have == length) return on_body();
        // Whatever is there, up to the end of the body, in each read (asio's transfer_all would
        // cut reads at 64 KiB).
        asio::async_read(
            stream_, asio::buffer(body.data() + have, length - have),
            [](const beast::error_code& e, std::size_t) -> std::size_t {
                return e ? 0 : std::numeric_limits<std::size_t>::max();
            },
            continuation([self = this->shared_from_this()](beast::error_code e, std::size_t) {
                // The peer closing inside the body is a partial message, as the parser says.
                if (e == asio::error::eof) e = beast::http::error::partial_message;
                if (e) return self->on_read_error(e);
                self->on_body();
            }));
    }

    // The whole request is in request_ (its body too).
    void on_body() {
        lowest().expires_never();
        keep_alive_ = parser_->keep_alive();
        auto request = std::move(request_);
        parser_.reset();
        busy_ = true;
        ++server_->requests;
        auto job = [self = this->shared_from_this(), request] {
            // Answered once: by the handler, or here when it threw without answering.
            auto answered = std::make_shared<std::atomic<bool>>(false);
            auto respond = [self, request, answered](HttpResponse response) {
                if (answered->exchange(true)) return;
                // At once when answered on this connection's I/O thread before its handler
                // returned; from another thread (a worker, an output's writer), queued for it.
                asio::dispatch(
                    self->stream_.get_executor(),
                    [self, r = std::move(response)]() mutable { self->write(std::move(r)); });
            };
            try {
                self->handler_->handle_async(*request, respond);
            } catch (const std::exception& e) {
                self->server_->log.error("request handler failed",
                                         {{"client", self->peer_.address}, {"error", e.what()}});
                respond(HttpResponse{500, {}, {}, true});
            }
        };
        if (server_->handlers_on_io)
            server_->run_handler(std::move(job));
        else
            asio::post(server_->workers, std::move(job));
    }

    void write(HttpResponse r) {
        auto res = std::make_shared<beast::http::response<ResponseBody>>(
            static_cast<beast::http::status>(r.status), 11);
        for (auto& h : r.headers)
            res->insert(h.name, h.value);
        res->body() = std::move(r.body);
        res->keep_alive(keep_alive_ && !r.close && !server_->stopping);
        res->prepare_payload();
        lowest().expires_after(server_->limits.read_timeout);
        beast::http::async_write(
            stream_, *res,
            continuation([self = this->shared_from_this(), res](beast::error_code ec, std::size_t) {
                self->busy_ = false;
                if (!ec && self->drain_) return self->drain();
                if (ec || !res->keep_alive()) return self->close();
                self->read_header();
            }));
    }

    // Answers a request whose body was not read, then closes. The client may still be sending:
    // closing a socket with unread data resets it, and the client could lose the answer, so
    // what it sends on is read and dropped first (bounded in bytes and time, never buffered).
    void answer_unread(HttpResponse r) {
        keep_alive_ = false;
        busy_ = true;
        drain_ = true;
        parser_.reset();
        buffer_.clear();
        r.close = true;
        write(std::move(r));
    }

    void drain() {
        if constexpr (std::is_same_v<Stream, PlainStream>) {
            beast::error_code ignored;
            lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
        }
        drained_ = 0;
        lowest().expires_after(std::min<std::chrono::milliseconds>(server_->limits.read_timeout,
                                                                   std::chrono::seconds(5)));
        drain_some();
    }

    void drain_some() {
        buffer_.clear();
        stream_.async_read_some(
            buffer_.prepare(beast::read_size(buffer_, 16 * 1024)),
            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                self->drained_ += n;
                if (ec || self->drained_ > self->server_->limits.max_body_bytes + 64 * 1024)
                    return self->close();
                self->drain_some();
            });
    }

    // Limit violations answer once with a 4xx and close; everything else just closes.
    void on_read_error(beast::error_code ec) {
        if (is_quiet_end(ec)) {
            if (ec == beast::error::timeout)
                server_->log.debug("connection timed out", {{"client", peer_.address}});
            return close();
        }
        if (closed_) return;
        auto rejection = classify(ec, server_->limits);
        ++server_->violations;
        server_->log.warn("request rejected", {{"client", peer_.address},
                                               {"status", std::to_string(rejection.status)},
                                               {"reason", rejection.reason}});
        answer_unread(HttpResponse{rejection.status,
                                   {{"Content-Type", "text/plain"}},
                                   {rejection.reason.begin(), rejection.reason.end()},
                                   true});
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        beast::error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
        lowest().close();
        --server_->open;
        server_->forget(peer_.connection_id);
        if (handler_) handler_->closed(); // last: it may throw
    }

    static constexpr std::size_t kIdleReadBytes = 512;       // a request's first buffer
    static constexpr std::size_t kBodyReadBytes = 16 * 1024; // reads of a body

    HttpServer::Impl* server_;
    const ListenerConfig& listener_;
    std::shared_ptr<TlsContext> tls_; // the context this connection was made with (outlives it)
    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<beast::http::request_parser<Body>> parser_;
    PeerInfo peer_;
    std::unique_ptr<ConnectionHandler> handler_;
    std::shared_ptr<HttpRequest> request_; // head read, body pending
    std::string verify_error_;
    std::array<std::uint8_t, 16> first_bytes_{}; // an idle connection's read: no buffer yet
    std::size_t drained_ = 0;
    bool drain_ = false;
    bool keep_alive_ = true;
    bool busy_ = false;
    bool closed_ = false;
};

} // namespace

void HttpServer::Impl::on_accept_error(Listener& l, const beast::error_code& ec) {
    ++accept_errors;
    // One line per interval at most, however fast the failures come.
    auto now = std::chrono::steady_clock::now();
    ++l.unlogged;
    if (now - l.last_log >= std::chrono::seconds(10)) {
        log.warn("accept failed",
                 {{"listener", l.config.name},
                  {"error", ec.message()},
                  {"failures", std::to_string(l.unlogged)},
                  {"hint", is_resource_exhaustion(ec)
                               ? "out of file descriptors or memory: raise LimitNOFILE / ulimit -n "
                                 "or lower max_connections"
                               : "retrying"}});
        l.last_log = now;
        l.unlogged = 0;
    }
    if (!is_resource_exhaustion(ec)) return accept(l);
    // Out of descriptors: the pending connection stays in the backlog; try again once some have
    // been closed instead of spinning on the same error.
    l.pause.expires_after(limits.accept_backoff);
    l.pause.async_wait([this, &l](beast::error_code wait_ec) {
        if (wait_ec || stopping) return;
        accept(l);
    });
}

void HttpServer::Impl::accept(Listener& l) {
    l.acceptor.async_accept(asio::make_strand(ioc), [self = this, &l](beast::error_code ec,
                                                                      tcp::socket socket) {
        if (ec) {
            if (ec == asio::error::operation_aborted || self->stopping) return;
            return self->on_accept_error(l, ec);
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
        ++self->total;
        // Registered before it starts, so that a session closing at once is forgotten too.
        auto launch = [&](auto session) {
            {
                std::lock_guard lock(self->sessions_mutex);
                self->sessions[peer.connection_id] = session;
            }
            session->start();
        };
        try {
            if (auto tls = self->tls_of(l))
                launch(std::make_shared<Session<TlsStream>>(
                    self, l.config, TlsStream(std::move(socket), tls->ssl), peer, std::move(tls)));
            else
                launch(std::make_shared<Session<PlainStream>>(
                    self, l.config, PlainStream(std::move(socket)), peer));
        } catch (const std::exception& e) {
            // E.g. OpenSSL could not allocate the connection's SSL object: drop this one only.
            ++self->exceptions;
            self->log.error("connection setup failed",
                            {{"client", peer.address}, {"error", e.what()}});
        }
        self->accept(l);
    });
}

HttpServer::HttpServer(Logger& log, Limits limits, std::size_t io_threads,
                       std::size_t worker_threads, HandlerThreads handlers)
    : impl_(std::make_unique<Impl>(log, limits, io_threads, worker_threads, handlers)) {}

HttpServer::~HttpServer() {
    stop(std::chrono::seconds(2));
}

std::uint16_t HttpServer::add_listener(ListenerConfig config) {
    // `listeners` is read without a lock by stop(), set_tls_context() and the accept loops: it is
    // complete before start().
    if (impl_->started)
        throw Error("cannot listen on " + config.endpoint.address + ":" +
                    std::to_string(config.endpoint.port) +
                    ": listeners are added before the server starts");
    auto address = asio::ip::make_address(config.endpoint.address);
    tcp::endpoint ep(address, config.endpoint.port);
    // The acceptor and its back-off timer share a strand: their handlers (the accept loop) and
    // stop()'s close then never run at once on two I/O threads (ThreadSanitizer saw the close
    // race with the next async_accept when both were on the bare io_context).
    auto strand = asio::make_strand(impl_->ioc);
    auto l = std::make_unique<Impl::Listener>(Impl::Listener{
        std::move(config), tcp::acceptor(strand), asio::steady_timer(strand), {}, 0});
    beast::error_code ec;
    l->acceptor.open(ep.protocol(), ec);
    if (!ec) l->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && l->config.reuse_port) {
        // Asio has no public option type for SO_REUSEPORT (only asio::detail's): set it natively.
        const int on = 1;
        if (::setsockopt(l->acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) !=
            0)
            ec.assign(errno, beast::system_category());
    }
    if (!ec) l->acceptor.bind(ep, ec);
    if (!ec) l->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
        std::string hint;
        if (ec == asio::error::address_in_use)
            hint = l->config.reuse_port
                       ? " (another process holds it without reuse_port, or as another user)"
                       : " (another process holds it; to share a port, every process needs "
                         "reuse_port = true, --reuse-port)";
        throw Error("cannot listen on " + l->config.endpoint.address + ":" +
                    std::to_string(l->config.endpoint.port) + ": " + ec.message() + hint);
    }
    auto port = l->acceptor.local_endpoint().port();
    impl_->listeners.push_back(std::move(l));
    return port;
}

ParseResult parse_requests(std::span<const std::uint8_t> bytes, const Limits& limits_in,
                           const std::function<void(HttpRequest&)>& on_request) {
    auto limits = effective(limits_in);
    MemoryStream stream(bytes);
    beast::flat_buffer buffer(read_buffer_limit(limits));
    ParseResult result;
    for (;;) {
        if (buffer.size() == 0 && stream.empty()) return result; // between requests
        Parser parser;
        configure(parser, limits);
        beast::error_code ec;
        beast::http::read_header(stream, buffer, parser, ec);
        if (!ec) beast::http::read(stream, buffer, parser, ec);
        if (ec) {
            if (is_quiet_end(ec)) {
                result.incomplete = true;
            } else {
                auto rejection = classify(ec, limits);
                result.status = rejection.status;
                result.reason = std::move(rejection.reason);
            }
            return result;
        }
        bool keep_alive = parser.keep_alive();
        auto request = head_of(parser.get());
        request.body = std::move(parser.release().body());
        ++result.requests;
        on_request(request);
        if (!keep_alive) return result;
    }
}

std::uint64_t raise_descriptor_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rlimit raised = rl;
        raised.rlim_cur = rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
    }
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<std::uint64_t>(rl.rlim_cur);
}

void HttpServer::start() {
    if (impl_->started.exchange(true)) return;
    // Each connection takes one descriptor; the store, outputs and listeners need some too.
    constexpr std::uint64_t kReserved = 256;
    auto fd_limit = raise_descriptor_limit();
    if (fd_limit != 0 && impl_->limits.max_connections + kReserved > fd_limit)
        impl_->log.warn(
            "max_connections does not fit in the descriptor limit: connections beyond it will "
            "wait in the backlog",
            {{"max_connections", std::to_string(impl_->limits.max_connections)},
             {"descriptor_limit", std::to_string(fd_limit)},
             {"hint", "raise LimitNOFILE (systemd) or ulimit -Hn, or lower max_connections"}});
    for (auto& l : impl_->listeners)
        impl_->accept(*l);
    for (std::size_t i = 0; i < impl_->io_threads_wanted; ++i)
        impl_->io_threads.emplace_back([impl = impl_.get()] { impl->run_io(); });
    if (impl_->handlers_on_io)
        impl_->watcher = std::thread([impl = impl_.get()] { impl->watch(); });
}

void HttpServer::set_tls_context(std::size_t index, std::shared_ptr<TlsContext> tls) {
    if (index >= impl_->listeners.size() || !tls) return;
    std::shared_ptr<TlsContext> old; // released after the lock
    {
        std::lock_guard lock(impl_->tls_mutex);
        old = std::exchange(impl_->listeners[index]->config.tls, std::move(tls));
    }
}

void HttpServer::stop(std::chrono::milliseconds grace) {
    auto& s = *impl_;
    if (s.stopped.exchange(true)) return;
    s.stopping = true;
    for (auto& l : s.listeners)
        asio::dispatch(l->acceptor.get_executor(), [&l] {
            beast::error_code ignored;
            l->acceptor.close(ignored);
            l->pause.cancel();
        });
    auto live_sessions = [&s] {
        std::vector<std::shared_ptr<SessionBase>> live;
        std::lock_guard lock(s.sessions_mutex);
        for (auto& [id, weak] : s.sessions)
            if (auto p = weak.lock()) live.push_back(std::move(p));
        return live;
    };
    auto wait_until_none = [&s](std::chrono::milliseconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (s.started && std::chrono::steady_clock::now() < deadline) {
            {
                std::lock_guard lock(s.sessions_mutex);
                if (s.sessions.empty()) return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    };
    for (auto& p : live_sessions())
        p->shutdown_when_idle();
    wait_until_none(grace);
    // Past the grace period: close what is left while the threads still run, so that sessions
    // end here rather than with the io_context.
    for (auto& p : live_sessions())
        p->force_close();
    wait_until_none(std::chrono::seconds(1));
    s.stop_watcher(); // no new stand-ins; those running end once an I/O thread is free
    s.workers.join();
    s.guard.reset();
    s.ioc.stop();
    for (auto& t : s.io_threads)
        if (t.joinable()) t.join();
    s.io_threads.clear();
    // Sessions still referenced by pending handlers are destroyed with the io_context.
}

ServerStats HttpServer::stats() const {
    const auto& s = *impl_;
    ServerStats out;
    out.connections_open = s.open.load();
    out.connections_total = s.total.load();
    out.connections_refused = s.refused.load();
    out.requests = s.requests.load();
    out.limit_violations = s.violations.load();
    out.tls_handshake_failures = s.tls_failures.load();
    out.tls_refused_certificate = s.tls_refused_certificate.load();
    out.tls_no_certificate = s.tls_no_certificate.load();
    out.tls_protocol_errors =
        out.tls_handshake_failures - out.tls_refused_certificate - out.tls_no_certificate;
    out.proxy_refused = s.proxy_refused.load();
    out.sessions_alive = s.alive.load();
    out.connection_exceptions = s.exceptions.load();
    out.accept_errors = s.accept_errors.load();
    out.stand_ins = s.stand_ins.load();
    return out;
}

} // namespace wec::server

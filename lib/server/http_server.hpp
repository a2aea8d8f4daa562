// An asynchronous HTTP/1.1 server (Boost.Beast/Asio) shaped for WS-Management: keep-alive
// connections, one handler object per TCP connection (WinRM authenticates a connection, not a
// request). Handlers run on the I/O thread that read the request, with workers standing in for
// the network while handlers block every I/O thread, or on a worker pool (HandlerThreads).
// Beast types stay inside the .cpp: includers only see these plain types.
#pragma once

#include "common/log.hpp"
#include "sldc/sldc.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::server {

struct Endpoint {
    std::string address; // numeric IPv4/IPv6 address
    std::uint16_t port = 0;
};

// "127.0.0.1:5985", "[::1]:5985", "0.0.0.0:5985", ":5985" (all IPv4 addresses). Throws wec::Error.
Endpoint parse_endpoint(std::string_view text);

struct Header {
    std::string name;
    std::string value;
};

struct HttpRequest {
    std::string method;
    std::string target;
    std::vector<Header> headers;
    // Read straight into its final size (Content-Length) without being zero-filled first.
    sldc::Buffer body;
    // Case-insensitive lookup of the first header with that name ("" when absent).
    std::string_view header(std::string_view name) const;
};

struct HttpResponse {
    unsigned status = 200;
    std::vector<Header> headers;
    std::vector<std::uint8_t> body;
    bool close = false; // close the connection after sending
};

struct PeerInfo {
    std::string address; // remote IP (the real client's, from the PROXY header if there is one)
    std::uint16_t port = 0;
    std::string proxy_address; // the load balancer's address when a PROXY header named the client
    std::string listener;      // name of the listener that accepted the connection
    std::uint64_t connection_id = 0;
    // TLS listeners: the verified client certificate.
    bool tls = false;
    std::string tls_subject_cn;        // identity of the client
    std::string tls_issuer_thumbprint; // SHA-1 of the CA certificate that issued it
    std::string tls_version;           // e.g. "TLSv1.3"
    std::string tls_cipher;
};

// One per TCP connection. Called for that connection's requests one at a time, in order, never
// concurrently with itself, on an I/O thread or a worker (HandlerThreads); it may block on disk
// or store I/O.
class ConnectionHandler {
public:
    virtual ~ConnectionHandler() = default;
    virtual HttpResponse handle(HttpRequest& request) = 0;
    // What the server calls: the response goes through `respond`, called exactly once, from any
    // thread, possibly after handle_async returned (a request waiting on slow work holds no
    // thread). `request` stays valid until then. Default: respond(handle(request)).
    using Respond = std::function<void(HttpResponse)>;
    virtual void handle_async(HttpRequest& request, Respond respond) { respond(handle(request)); }
    // Called on an I/O thread once a request's head has arrived, before its body is read (its
    // `body` is empty): a response returned here is sent at once and the connection closed,
    // without the body ever being buffered (e.g. a 401 for a request that cannot be
    // authenticated). Must be quick and never block. Default: read the body, call handle().
    virtual std::optional<HttpResponse> check_head(const HttpRequest& /*head*/) {
        return std::nullopt;
    }
    // Called once when the connection ends, for whatever reason (logging, counters).
    virtual void closed() {}
};

using HandlerFactory = std::function<std::unique_ptr<ConnectionHandler>(const PeerInfo&)>;

struct Limits {
    std::size_t max_body_bytes = 512000 * 2 + 4096; // as received (before decryption/decompression)
    // The request head, and separately a chunked body's trailer. Beast stores no field value over
    // 64 KiB, so larger settings are clamped to kMaxHeaderBytes.
    std::size_t max_header_bytes = 16 * 1024;
    // Between requests: until the first byte of the next request arrives.
    std::chrono::milliseconds idle_timeout{std::chrono::seconds(120)};
    // One whole request, head and body, from its first byte (slow senders get no more).
    std::chrono::milliseconds read_timeout{std::chrono::seconds(60)};
    std::size_t max_connections = 20000;
    // After accept() fails for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM):
    // the listener pauses this long instead of spinning on the error.
    std::chrono::milliseconds accept_backoff{std::chrono::milliseconds(100)};
};

inline constexpr std::size_t kMaxHeaderBytes = 60 * 1024;

struct TlsContext; // server/tls.hpp

struct ListenerConfig {
    Endpoint endpoint;
    std::string name;
    HandlerFactory factory; // called once the connection is ready (after the TLS handshake)
    std::shared_ptr<TlsContext> tls; // null: plain HTTP
    // Every connection starts with a PROXY protocol header (v1 or v2) from a load balancer,
    // before the TLS handshake; one without is refused. A header with no address (LOCAL, UNKNOWN:
    // the balancer's health check) keeps the connection's own address.
    bool proxy_protocol = false;
    // SO_REUSEPORT before bind: several processes (of the same user) may listen on this address
    // and port, each with this option; the kernel spreads new connections over them.
    bool reuse_port = false;
};

struct ServerStats {
    std::uint64_t connections_open = 0;
    std::uint64_t connections_total = 0;
    std::uint64_t connections_refused = 0; // over max_connections
    std::uint64_t requests = 0;
    std::uint64_t limit_violations = 0;
    std::uint64_t proxy_refused = 0;           // connections without a valid PROXY header
    std::uint64_t tls_handshake_failures = 0;  // the sum of the three below
    std::uint64_t tls_refused_certificate = 0; // the client's certificate was refused (untrusted,
                                               // expired, revoked, no clientAuth EKU)
    std::uint64_t tls_no_certificate = 0;      // the client sent none
    std::uint64_t tls_protocol_errors = 0;     // anything else (versions, ciphers, resets)
    std::uint64_t sessions_alive = 0;          // connection objects not yet destroyed (leak check)
    std::uint64_t connection_exceptions = 0;   // exceptions caught at the connection boundary
    std::uint64_t accept_errors = 0;           // failed accept() calls (EMFILE, ...)
    std::uint64_t stand_ins = 0; // times a worker ran the network because handlers held every
                                 // I/O thread for a tick (HandlerThreads::io)
};

// HandlerThreads::io: how long handlers may hold every I/O thread, none returning, before a
// worker stands in for the network.
inline constexpr std::chrono::milliseconds kStandInAfter{10};

// Where requests' handlers run.
enum class HandlerThreads {
    // On the I/O thread that read the request: no hand-off to another thread and back per
    // request. When handlers have held every I/O thread for kStandInAfter with none returning,
    // a worker runs the network until one is free (at most worker_threads at once). For
    // handlers that rarely block long (a local store, local files).
    io,
    // Handed to the worker pool: a handler that blocks (a store across the network) holds a
    // worker, not an I/O thread, so up to worker_threads requests wait at once.
    workers,
};

// The server's request parsing over bytes already received, without sockets (fuzzing, tests): the
// same Beast parser, limits, read-buffer bound and error classification as a connection.
// `on_request` gets each complete request in order; parsing stops at the first violation (whose
// answer `status`/`reason` says) or when the bytes end (`incomplete` when inside a request).
struct ParseResult {
    std::size_t requests = 0;
    unsigned status = 0; // the 4xx a connection would answer; 0: none
    std::string reason;
    bool incomplete = false;
};
ParseResult parse_requests(std::span<const std::uint8_t> bytes, const Limits& limits,
                           const std::function<void(HttpRequest&)>& on_request);

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the resulting soft limit.
std::uint64_t raise_descriptor_limit();

class HttpServer {
public:
    HttpServer(Logger& log, Limits limits, std::size_t io_threads, std::size_t worker_threads,
               HandlerThreads handlers = HandlerThreads::workers);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Binds and listens at once (errors name the address); returns the bound port, useful when
    // the endpoint asked for port 0. Accepting starts with start(); after start() it throws.
    std::uint16_t add_listener(ListenerConfig config);

    // Also raises the descriptor limit (raise_descriptor_limit) and warns when max_connections
    // does not fit in it.
    void start();
    // Replaces the TLS context of listener `index` (add_listener order) for connections accepted
    // from now on (SIGHUP: renewed certificate, fresh CRLs); connections already open keep theirs.
    void set_tls_context(std::size_t index, std::shared_ptr<TlsContext> tls);
    // Graceful stop: stop accepting, close idle connections, let requests being handled finish
    // (their responses are sent), then close everything. Blocks until done or `grace` elapses.
    void stop(std::chrono::milliseconds grace = std::chrono::seconds(10));

    ServerStats stats() const;

    struct Impl; // opaque (public only so that the .cpp's session type can name it)

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace wec::server

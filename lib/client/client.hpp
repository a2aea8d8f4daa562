// A Windows-like WEF source (the basis of `wec replay` and of the load benchmarks): HTTP/1.1
// keep-alive connections, SOAP bodies in UTF-16LE with a BOM, optionally SLDC compressed, over
// one of the two transports of docs/protocol.md section 1:
//  - http:// (5985): authenticated with Kerberos or SPNEGO (one GSS context per TCP connection,
//    mutual authentication), bodies sealed in multipart/encrypted exactly as Windows does
//    (sections 2 and 3);
//  - https:// (5986): TLS with a client certificate (the host's identity), no HTTP
//    authentication step, plain bodies (`application/soap+xml;charset=UTF-16`).
// The URL scheme selects the transport; the request/response code is shared.
//
// Two connection flavours share one implementation:
//  - AsyncConnection: C++20 coroutines on a caller's Asio executor (thousands of connections on one
//    thread);
//  - Connection: a blocking wrapper that owns a private io_context (one per thread).
// Source implements the WEF flow of one host on top of Connection: Enumerate/End on the manager
// URL, then Heartbeat/Events/SubscriptionEnd on each subscription's NotifyTo address.
//
// Thread safety: one connection (or Source) is used by one thread at a time.
#pragma once

#include "auth/gss.hpp"
#include "common/error.hpp"
#include "wsman/wsman.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}
namespace wec::sldc {
class Compressor;
}

namespace wec::client {

// What kind of failure a ClientError is.
enum class ErrorKind {
    Transport, // connect/read/write failed or the peer closed the connection
    Timeout,   // an operation did not finish in time
    Auth,      // GSSAPI failure or a 401
    Http,      // the server answered with an unexpected HTTP status (http_status() says which)
    Protocol,  // a reply that is not what the protocol says (bad framing, no Ack, wrong RelatesTo)
    Usage,     // bad arguments (e.g. a malformed URL)
    Tls        // TLS handshake failure (certificate refused on either side; what() has the
               // OpenSSL reason), or the client's certificate/key/CA files could not be loaded
};
const char* to_string(ErrorKind kind);

class ClientError : public wec::Error {
public:
    ClientError(ErrorKind kind, const std::string& message, unsigned http_status = 0,
                std::chrono::seconds retry_after = std::chrono::seconds(0));
    ErrorKind kind() const noexcept { return kind_; }
    // The HTTP status of the reply that caused the error; 0 when there was none.
    unsigned http_status() const noexcept { return status_; }
    // The reply's Retry-After (delay-seconds form); 0 when it had none.
    std::chrono::seconds retry_after() const noexcept { return retry_after_; }

private:
    ErrorKind kind_;
    unsigned status_;
    std::chrono::seconds retry_after_;
};

// `http://host[:port]/path` (Kerberos transport, default port 5985) or `https://host[:port]/path`
// (TLS with a client certificate, default port 5986). The scheme is case-insensitive (Windows'
// GPO string says `HTTPS://`).
struct Url {
    bool tls = false; // https://
    std::string host;
    std::uint16_t port = 5985;
    std::string target = "/";                // path (and query), starts with '/'
    static Url parse(std::string_view text); // throws ClientError(Usage)
    std::string str() const;
};

// The client side of HTTPS with a client certificate (or, for a lab `basic` listener, a user and
// password).
struct TlsOptions {
    std::string cert_file; // PEM: this host's client certificate (optionally followed by its chain)
    std::string key_file;  // PEM: its private key (RSA or ECDSA)
    std::string ca_file;   // PEM bundle that verifies the collector's certificate; empty = the
                           // system's default trust store
    // Sent as SNI and checked against the collector's certificate (DNS SAN, or IP SAN when it is
    // an address); empty = the host connected to.
    std::string server_name;
    // A Basic listener (lab use): `Authorization: Basic base64(user:password)` on every request,
    // with or without a client certificate. Empty user: none.
    std::string basic_user{};
    std::string basic_password{};
};

// An OpenSSL client context with the certificate, key and CA bundle loaded (TLS 1.2 and 1.3,
// server certificate verified). Opaque; one can be shared by any number of connections and threads.
class TlsContext;
// Throws ClientError(Tls) naming the file and the OpenSSL reason.
std::shared_ptr<TlsContext> make_tls_context(const TlsOptions& options);

struct ConnectionOptions {
    std::string host; // where to connect: an IP address or a resolvable name
    std::uint16_t port = 5985;
    // HTTPS with a client certificate instead of Kerberos: no authentication POST, plain bodies.
    // service/mechanism/ccache/tab_form are then unused.
    bool tls = false;
    TlsOptions tls_options;
    std::shared_ptr<TlsContext> tls_context; // optional: made from tls_options on first connect
    std::string service;                     // GSS target, "HTTP@srv.windomain.local"
    auth::Mechanism mechanism = auth::Mechanism::Kerberos;
    std::string ccache;      // "FILE:/tmp/cc"; empty = the default ccache
    std::string ntlm_user{}; // NTLM instead of Kerberos: "DOMAIN\\USER" (auth::ClientOptions)
    std::string ntlm_password{};
    bool tab_form = false;    // TAB before the multipart part headers
    bool sldc_header = false; // `Content-Encoding: SLDC` on every request (as Windows does
                              // once subscribed), including the auth POST
    std::chrono::milliseconds timeout{30000}; // per operation (connect, one request/response)
    // Numeric local address to bind before connecting (e.g. 127.0.0.2: many connections to one
    // server need several, one address has about 28,000 ephemeral ports); empty = the kernel's.
    std::string source_address{};
    // Connection (blocking) only: the io_context it runs its operations on, shared by connections
    // that one thread uses one at a time (one epoll set for thousands of idle connections);
    // empty = a private one.
    std::shared_ptr<boost::asio::io_context> io_context{};
    // The SLDC compressor (its tables and per-input buffers are ~100 KB once used), shared the
    // same way; empty = one per connection, made on first use.
    std::shared_ptr<sldc::Compressor> compressor{};
};

// One HTTP reply, decrypted when it was sealed.
struct Response {
    unsigned status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string content_type;
    std::vector<std::uint8_t> body;        // cleartext: decrypted reply or the raw (unsealed) body
    bool sealed = false;                   // the reply was multipart/encrypted
    bool keep_alive = true;                // the server keeps the connection open
    std::optional<wsman::Message> message; // the parsed SOAP reply (sealed replies, and plain
                                           // SOAP replies on TLS connections)
    std::string header(std::string_view name) const; // first value, empty if absent
    std::string text() const;                        // body as UTF-8 text (UTF-16 with BOM decoded)
};

// A request body ready to send: SOAP text -> UTF-16LE+BOM -> [SLDC] -> sealed -> multipart
// (Kerberos), or SOAP text -> UTF-16LE+BOM -> [SLDC] as is (TLS).
struct PreparedBody {
    std::vector<std::uint8_t> body;
    std::string content_type;
    bool compressed = false;
    std::size_t soap_bytes = 0; // UTF-16 size before compression
};

// Extra request headers and a way to lie about the body (negative tests).
struct RequestOptions {
    std::vector<std::pair<std::string, std::string>> headers;
    bool sldc_header = false; // add `Content-Encoding: SLDC` (also when options.sldc_header)
};

class AsyncConnection {
public:
    AsyncConnection(boost::asio::any_io_executor executor, ConnectionOptions options);
    ~AsyncConnection();
    AsyncConnection(const AsyncConnection&) = delete;
    AsyncConnection& operator=(const AsyncConnection&) = delete;

    // TCP connect, then the empty authenticating POST to `target` and mutual authentication
    // (Kerberos), or the TLS handshake with the client certificate (TLS; `target` is unused).
    // A refused handshake throws ClientError(Tls). With TLS 1.3 the server verifies the client's
    // certificate after the client's side of the handshake is done: a refusal then surfaces as
    // ClientError(Tls) on the first request.
    boost::asio::awaitable<void> connect(std::string target);
    // Sends SOAP (UTF-8) to `target`: encoded, optionally compressed, sealed. Reconnects and
    // re-authenticates first when the server closed the connection. Throws ClientError for
    // transport, timeout, auth and framing failures; an HTTP error status is returned, not thrown.
    boost::asio::awaitable<Response> post(std::string target, std::string soap, bool compress,
                                          RequestOptions options = {});
    // Sends an already prepared body (e.g. a tampered or replayed one) on this connection.
    boost::asio::awaitable<Response> post_prepared(std::string target, PreparedBody body,
                                                   RequestOptions options = {});
    // Writes raw bytes to the socket and reads one HTTP response (not decrypted). Throws
    // ClientError(Transport) when the server closes the connection instead.
    boost::asio::awaitable<Response> exchange_raw(std::string bytes);

    // Builds a sealed body with this connection's security context (consumes a sequence number);
    // on TLS, the plain body.
    PreparedBody prepare(std::string_view soap, bool compress);
    // Seals arbitrary cleartext as is (negative tests: bad SLDC, not SOAP); on TLS, sends it as
    // is. `sldc` marks the body as compressed (Content-Encoding: SLDC is sent).
    PreparedBody prepare_bytes(std::span<const std::uint8_t> cleartext, bool sldc);

    bool is_open() const;
    bool authenticated() const; // Kerberos context established, or TLS handshake done
    void close();
    const ConnectionOptions& options() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Blocking facade over AsyncConnection (owns its io_context).
class Connection {
public:
    explicit Connection(ConnectionOptions options);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void connect(const std::string& target);
    Response post(const std::string& target, const std::string& soap, bool compress,
                  RequestOptions options = {});
    Response post_prepared(const std::string& target, PreparedBody body,
                           RequestOptions options = {});
    Response exchange_raw(std::string bytes);
    PreparedBody prepare(std::string_view soap, bool compress);
    PreparedBody prepare_bytes(std::span<const std::uint8_t> cleartext, bool sldc);
    bool is_open() const;
    bool authenticated() const;
    void close();
    const ConnectionOptions& options() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// ---- the WEF flow of one host ---------------------------------------------------------------

struct SourceOptions {
    // The GPO Server= URL: http://host:5985/wsman/SubscriptionManager/WEC (Kerberos) or
    // https://host:5986/wsman/ (client certificate). Each NotifyTo's own scheme picks the
    // transport of the push connections.
    Url manager;
    std::string service; // Kerberos: GSS target "HTTP@fqdn"
    auth::Mechanism mechanism = auth::Mechanism::Kerberos;
    std::string ccache; // Kerberos: this host's identity
    // NTLM instead of Kerberos (mechanism Ntlm: raw NTLMSSP, Spnego: NTLM in SPNEGO):
    // "DOMAIN\\USER" and password.
    std::string ntlm_user{};
    std::string ntlm_password{};
    TlsOptions tls; // https: this host's identity (client certificate) and the collector's CA
    std::shared_ptr<TlsContext> tls_context; // optional: made from `tls` when first needed
    bool tab_form = false;
    bool compress = true; // SLDC-compress Events and Heartbeats
    // Connect to NotifyTo's host as advertised; false (default): to the manager URL's host, with
    // NotifyTo's port and path (the advertised name is often not resolvable from a test box).
    bool follow_notify_host = false;
    std::string machine_id = "win10.windomain.local"; // m:MachineID
    std::chrono::milliseconds timeout{30000};
    // Shared by this source's connections (ConnectionOptions::io_context, compressor); empty =
    // one each.
    std::shared_ptr<boost::asio::io_context> io_context{};
    std::shared_ptr<sldc::Compressor> compressor{};
};

struct Ack {
    std::string message_id; // of the request
    std::chrono::microseconds latency{0};
    wsman::Message reply;
};

class Source {
public:
    explicit Source(SourceOptions options);
    ~Source();
    Source(const Source&) = delete;
    Source& operator=(const Source&) = delete;

    // Enumerate at the manager URL: the subscriptions offered to this host. Throws ClientError
    // (with the HTTP status) unless the answer is a 200 EnumerateResponse relating to it.
    std::vector<wsman::Subscription> enumerate();
    // End of the enumeration (answer 200/204), then the manager connection is closed.
    void end();
    // Heartbeat / Events on the subscription's NotifyTo connection; the Ack must relate to the
    // request (RelatesTo == MessageID). Errors throw ClientError with the HTTP status (e.g. 503).
    Ack heartbeat(const wsman::Subscription& subscription);
    Ack send_events(const wsman::Subscription& subscription,
                    std::span<const std::string_view> events, std::string_view bookmark);
    Ack send_events(const wsman::Subscription& subscription, std::span<const std::string> events,
                    std::string_view bookmark);
    // Events whose SOAP (UTF-16LE+BOM) was SLDC-compressed beforehand (load generation: the cost
    // of compressing is the source's, not the collector's). `message_id` is the one inside.
    Ack send_compressed(const wsman::Subscription& subscription,
                        std::span<const std::uint8_t> sldc_record, const std::string& message_id);
    // SubscriptionEnd (SourceCancelling); answer 200/204. Returns the HTTP status.
    unsigned
    subscription_end(const wsman::Subscription& subscription,
                     std::string_view status =
                         "http://schemas.xmlsoap.org/ws/2004/08/eventing/SourceCancelling");

    // Closes the manager and push connections: the next request connects and authenticates
    // anew (after a failure that leaves a connection in an unknown state, as Windows does).
    void reset();

    // The connection used for a subscription (opened and authenticated on first use).
    Connection& push_connection(const wsman::Subscription& subscription);
    // Where NotifyTo actually connects (see follow_notify_host).
    Url push_url(const wsman::Subscription& subscription) const;
    wsman::SourceHeaders headers_for(const wsman::Subscription& subscription) const;
    const SourceOptions& options() const { return options_; }

private:
    Ack expect_ack(Connection& c, const std::string& target, const std::string& soap,
                   const std::string& message_id, bool compress, const char* what);
    Ack check_ack(const Response& r, const std::string& message_id, const char* what,
                  std::chrono::steady_clock::time_point start);

    SourceOptions options_;
    std::string session_id_;
    std::unique_ptr<Connection> manager_;
    std::map<std::string, std::unique_ptr<Connection>> push_; // by host:port
};

// ---- generated events ---------------------------------------------------------------------

// Realistic Security-log events (4624 logon / 4688 process creation shaped), RenderedText style
// (System + EventData + RenderingInfo with the message), about 1-1.5 KB each, with varying
// fields, increasing EventRecordID, for one host. Deterministic for a given seed.
class EventGenerator {
public:
    explicit EventGenerator(std::string computer = "win10.windomain.local", std::uint64_t seed = 1,
                            std::uint64_t first_record = 1000);
    std::string next();
    // security_bookmark() of the last generated record.
    std::string bookmark() const;
    std::uint64_t last_record() const { return record_ - 1; }

private:
    std::string computer_;
    std::uint64_t state_;
    std::uint64_t record_;
    std::uint64_t tick_ = 0;
    std::uint64_t rand();
};

// The BookmarkList of a source whose last event read is `record` of the Security channel (what
// generated events carry: EventGenerator::bookmark, the load driver's batches).
std::string security_bookmark(std::uint64_t record);

} // namespace wec::client

#include "client/client.hpp"
#include "common/openssl.hpp"
#include "http/http.hpp"
#include "sldc/sldc.hpp"
#include "text/base64.hpp"
#include "text/text.hpp"
#include "wsman/body.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <charconv>
#include <exception>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace wec::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

const char* to_string(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::Transport:
        return "transport";
    case ErrorKind::Timeout:
        return "timeout";
    case ErrorKind::Auth:
        return "authentication";
    case ErrorKind::Http:
        return "http";
    case ErrorKind::Protocol:
        return "protocol";
    case ErrorKind::Usage:
        return "usage";
    case ErrorKind::Tls:
        return "tls";
    }
    return "?";
}

ClientError::ClientError(ErrorKind kind, const std::string& message, unsigned http_status,
                         std::chrono::seconds retry_after)
    : wec::Error(message), kind_(kind), status_(http_status), retry_after_(retry_after) {}

// ---- URL --------------------------------------------------------------------------------------

Url Url::parse(std::string_view text) {
    auto has_scheme = [&](std::string_view scheme) {
        return text.size() >= scheme.size() && http::iequals(text.substr(0, scheme.size()), scheme);
    };
    Url url;
    std::string_view rest;
    if (has_scheme("http://")) {
        rest = text.substr(7);
    } else if (has_scheme("https://")) {
        rest = text.substr(8);
        url.tls = true;
        url.port = 5986;
    } else {
        throw ClientError(ErrorKind::Usage, "URL '" + std::string(text) +
                                                "' does not start with http:// or https://");
    }
    auto slash = rest.find('/');
    auto authority = rest.substr(0, slash);
    url.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    std::string_view host = authority;
    auto colon = authority.rfind(':');
    if (!authority.empty() && authority.front() == '[') { // [v6]:port
        auto close = authority.find(']');
        if (close == std::string_view::npos)
            throw ClientError(ErrorKind::Usage, "URL '" + std::string(text) + "': unterminated [");
        host = authority.substr(1, close - 1);
        colon = authority.find(':', close);
    } else if (colon != std::string_view::npos) {
        host = authority.substr(0, colon);
    }
    if (colon != std::string_view::npos) {
        auto port_text = authority.substr(colon + 1);
        unsigned port = 0;
        auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 ||
            port > 65535)
            throw ClientError(ErrorKind::Usage, "URL '" + std::string(text) + "': bad port '" +
                                                    std::string(port_text) + "'");
        url.port = static_cast<std::uint16_t>(port);
    }
    if (host.empty())
        throw ClientError(ErrorKind::Usage, "URL '" + std::string(text) + "' has no host");
    url.host = std::string(host);
    return url;
}

std::string Url::str() const {
    bool v6 = host.find(':') != std::string::npos;
    return std::string(tls ? "https://" : "http://") + (v6 ? "[" + host + "]" : host) + ":" +
           std::to_string(port) + target;
}

// ---- Response ---------------------------------------------------------------------------------

std::string Response::header(std::string_view name) const {
    for (const auto& [n, v] : headers)
        if (http::iequals(n, name)) return v;
    return {};
}

std::string Response::text() const {
    if (body.size() >= 2 &&
        ((body[0] == 0xFF && body[1] == 0xFE) || (body[0] == 0xFE && body[1] == 0xFF)))
        return text::utf16_to_utf8(body);
    return std::string(body.begin(), body.end());
}

namespace {

using Body = bhttp::vector_body<std::uint8_t>;
constexpr std::size_t kMaxResponseBody = 64 * 1024 * 1024;
// Room reserved for a wrap token's header (60-72 bytes for the AES enctypes, 16 for NTLM).
constexpr std::size_t kMaxSealHeader = 128;

std::string_view scheme_of(auth::Mechanism m) {
    return m == auth::Mechanism::Kerberos ? "Kerberos" : "Negotiate";
}

std::string_view protocol_of(auth::Mechanism m) {
    return m == auth::Mechanism::Kerberos ? http::kKerberosProtocol : http::kSpnegoProtocol;
}

} // namespace

// ---- TLS context
// ----------------------------------------------------------------------------------

class TlsContext {
public:
    asio::ssl::context ssl{asio::ssl::context::tls_client};
};

std::shared_ptr<TlsContext> make_tls_context(const TlsOptions& o) {
    auto ctx = std::make_shared<TlsContext>();
    auto& c = ctx->ssl;
    // TLS 1.2 and 1.3, as Windows 10 and later.
    c.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                  asio::ssl::context::no_tlsv1_1);
    SSL_CTX* native = c.native_handle();
    ERR_clear_error();
    if (o.cert_file.empty() != o.key_file.empty())
        throw ClientError(ErrorKind::Usage,
                          "a client certificate needs both its certificate and key");
    if (!o.cert_file.empty()) {
        if (SSL_CTX_use_certificate_chain_file(native, o.cert_file.c_str()) != 1)
            throw ClientError(ErrorKind::Tls, "cannot load client certificate " + o.cert_file +
                                                  ": " + openssl::errors("unknown OpenSSL error"));
        if (SSL_CTX_use_PrivateKey_file(native, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
            throw ClientError(ErrorKind::Tls, "cannot load client key " + o.key_file + ": " +
                                                  openssl::errors("unknown OpenSSL error"));
        if (SSL_CTX_check_private_key(native) != 1)
            throw ClientError(ErrorKind::Tls, "client key " + o.key_file +
                                                  " does not match certificate " + o.cert_file);
    }
    if (!o.ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(native, o.ca_file.c_str(), nullptr) != 1)
            throw ClientError(ErrorKind::Tls, "cannot load CA bundle " + o.ca_file + ": " +
                                                  openssl::errors("unknown OpenSSL error"));
    } else if (SSL_CTX_set_default_verify_paths(native) != 1) {
        throw ClientError(ErrorKind::Tls, "cannot load the system trust store: " +
                                              openssl::errors("unknown OpenSSL error"));
    }
    c.set_verify_mode(asio::ssl::verify_peer);
    return ctx;
}

// ---- AsyncConnection ----------------------------------------------------------------------------

struct AsyncConnection::Impl {
    Impl(asio::any_io_executor ex, ConnectionOptions o)
        : executor(std::move(ex)), options(std::move(o)) {}

    using TlsStream = beast::ssl_stream<beast::tcp_stream>;

    asio::any_io_executor executor;
    ConnectionOptions options;
    // Exactly one of the two is in use: plain TCP (Kerberos) or TLS over TCP.
    std::optional<beast::tcp_stream> stream;
    std::optional<TlsStream> tls_stream;
    beast::flat_buffer buffer;
    std::optional<auth::ClientContext> context;
    std::shared_ptr<sldc::Compressor> compressor; // options.compressor, or our own
    bool open = false;
    bool authenticated = false;
    // TLS: a reply was read on this connection, so the server accepted our certificate (with
    // TLS 1.3 it may still refuse it after our side of the handshake completed).
    bool tls_confirmed = false;

    std::string where() const { return options.host + ":" + std::to_string(options.port); }

    // The TCP layer of whichever stream is in use.
    beast::tcp_stream& tcp_layer() { return tls_stream ? tls_stream->next_layer() : *stream; }

    // Calls f(stream) with the stream in use (the HTTP code is written once, templated on it).
    template <class F>
    auto with_stream(F&& f) {
        return tls_stream ? f(*tls_stream) : f(*stream);
    }

    std::string openssl_reason(const boost::system::error_code& ec) {
        std::string reason = ec.message();
        if (tls_stream) {
            long verify = SSL_get_verify_result(tls_stream->native_handle());
            if (verify != X509_V_OK)
                reason +=
                    " (server certificate: " + std::string(X509_verify_cert_error_string(verify)) +
                    ")";
        }
        return reason;
    }

    [[noreturn]] void fail(const boost::system::error_code& ec, const char* what) {
        bool tls_error = tls_stream && (ec.category() == asio::error::get_ssl_category() ||
                                        ec.category() == asio::ssl::error::get_stream_category());
        std::string reason = tls_error ? openssl_reason(ec) : ec.message();
        close();
        if (ec == beast::error::timeout)
            throw ClientError(ErrorKind::Timeout,
                              std::string(what) + " " + where() + ": timed out");
        if (tls_error)
            throw ClientError(ErrorKind::Tls, std::string("TLS with ") + where() + " failed (" +
                                                  what + "): " + reason);
        throw ClientError(ErrorKind::Transport, std::string(what) + " " + where() + ": " + reason);
    }

    void close() {
        if (stream || tls_stream) {
            boost::system::error_code ignored;
            auto& t = tcp_layer();
            t.socket().shutdown(tcp::socket::shutdown_both, ignored);
            t.close();
        }
        open = false;
        authenticated = false;
        tls_confirmed = false;
        buffer.clear();
    }

    // What the Host header and the server certificate check name: the TLS server name if set.
    std::string host_name() const {
        return options.tls && !options.tls_options.server_name.empty()
                   ? options.tls_options.server_name
                   : options.host;
    }

    bhttp::request<Body> request(const std::string& target) const {
        bhttp::request<Body> req{bhttp::verb::post, target, 11};
        req.set(bhttp::field::host, host_name() + ":" + std::to_string(options.port));
        req.set(bhttp::field::connection, "Keep-Alive");
        req.set(bhttp::field::user_agent, "Microsoft WinRM Client");
        if (options.tls && !options.tls_options.basic_user.empty()) {
            const auto credentials =
                options.tls_options.basic_user + ":" + options.tls_options.basic_password;
            req.set(bhttp::field::authorization,
                    "Basic " + text::base64_encode(std::span(
                                   reinterpret_cast<const std::uint8_t*>(credentials.data()),
                                   credentials.size())));
        }
        return req;
    }

    asio::awaitable<void> tcp_connect() {
        close();
        stream.reset();
        tls_stream.reset();
        if (options.tls) {
            if (!options.tls_context) options.tls_context = make_tls_context(options.tls_options);
            tls_stream.emplace(executor, options.tls_context->ssl);
        } else {
            stream.emplace(executor);
        }
        auto& t = tcp_layer();
        boost::system::error_code ec;
        std::vector<tcp::endpoint> endpoints;
        auto address = asio::ip::make_address(options.host, ec);
        if (!ec) {
            endpoints.emplace_back(address, options.port);
        } else {
            tcp::resolver resolver(executor);
            auto results =
                co_await resolver.async_resolve(options.host, std::to_string(options.port),
                                                asio::redirect_error(asio::use_awaitable, ec));
            if (ec) fail(ec, "resolve");
            for (const auto& r : results)
                endpoints.push_back(r.endpoint());
        }
        t.expires_after(options.timeout);
        if (options.source_address.empty()) {
            co_await t.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
        } else {
            // Bound first, then one endpoint (connecting to a range would reopen the socket).
            auto local = asio::ip::make_address(options.source_address, ec);
            if (ec)
                throw ClientError(ErrorKind::Usage,
                                  "bad source address '" + options.source_address + "'");
            auto& socket = t.socket();
            socket.open(endpoints.front().protocol(), ec);
            // The port is chosen at connect() for the 4-tuple: bind() alone would have to pick
            // one free for every destination, a search that slows down as the ports fill up
            // (an optimisation only: ignored where the kernel does not know it).
            if (!ec) {
                boost::system::error_code ignored;
                socket.set_option(
                    asio::detail::socket_option::boolean<IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT>(true),
                    ignored);
            }
            if (!ec) socket.bind(tcp::endpoint(local, 0), ec);
            if (ec) fail(ec, "bind (source address) before connecting to");
            co_await t.async_connect(endpoints.front(),
                                     asio::redirect_error(asio::use_awaitable, ec));
        }
        if (ec) fail(ec, "connect to");
        t.socket().set_option(tcp::no_delay(true), ec);
        open = true;
    }

    // The TLS handshake: SNI and the name (or address) the server certificate must carry.
    asio::awaitable<void> tls_handshake() {
        SSL* ssl = tls_stream->native_handle();
        auto name = host_name();
        boost::system::error_code ec;
        (void)asio::ip::make_address(name, ec); // only: is it an address?
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        if (!ec) { // an IP address: no SNI (RFC 6066), matched against the IP SANs
            if (X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1)
                throw ClientError(ErrorKind::Usage, "bad TLS server address '" + name + "'");
        } else {
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            if (SSL_set_tlsext_host_name(ssl, name.c_str()) != 1 ||
                X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) != 1)
                throw ClientError(ErrorKind::Usage, "bad TLS server name '" + name + "'");
        }
        ec = {};
        tcp_layer().expires_after(options.timeout);
        co_await tls_stream->async_handshake(asio::ssl::stream_base::client,
                                             asio::redirect_error(asio::use_awaitable, ec));
        if (ec) fail(ec, "handshake");
        tcp_layer().expires_never();
    }

    template <class Stream>
    asio::awaitable<void> write_request(Stream& s, bhttp::request<Body>& req) {
        boost::system::error_code ec;
        tcp_layer().expires_after(options.timeout);
        co_await bhttp::async_write(s, req, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) closed_or_fail(ec, "send request to");
    }

    template <class Stream>
    asio::awaitable<void> write_bytes(Stream& s, const std::string& bytes) {
        boost::system::error_code ec;
        tcp_layer().expires_after(options.timeout);
        co_await asio::async_write(s, asio::buffer(bytes),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) closed_or_fail(ec, "send to");
    }

    template <class Stream>
    asio::awaitable<void> read_message(Stream& s, bhttp::response_parser<Body>& parser) {
        boost::system::error_code ec;
        tcp_layer().expires_after(options.timeout);
        co_await bhttp::async_read(s, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) closed_or_fail(ec, "read response from");
    }

    // A TLS 1.3 server that refuses our certificate sends its alert after our handshake completed:
    // it arrives as the answer to the first request.
    [[noreturn]] void closed_or_fail(const boost::system::error_code& ec, const char* what) {
        bool closed = ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
                      ec == asio::error::connection_reset ||
                      ec == asio::ssl::error::stream_truncated;
        if (closed && tls_stream && !tls_confirmed) {
            close();
            throw ClientError(ErrorKind::Tls, "TLS with " + where() +
                                                  ": the server closed the connection before a "
                                                  "response (client certificate refused?)");
        }
        if (closed) {
            close();
            throw ClientError(ErrorKind::Transport,
                              "connection closed by " + where() + " before a response");
        }
        if (tls_stream && !tls_confirmed)
            what = "handshake, refused by the server after ours completed";
        fail(ec, what);
    }

    // Writes a request and reads the response (raw: not decrypted).
    asio::awaitable<Response> round_trip(bhttp::request<Body>& req) {
        co_await with_stream([&](auto& s) { return write_request(s, req); });
        co_return co_await read_response();
    }

    asio::awaitable<Response> read_response() {
        bhttp::response_parser<Body> parser;
        parser.body_limit(kMaxResponseBody);
        co_await with_stream([&](auto& s) { return read_message(s, parser); });
        tcp_layer().expires_never();
        // Nothing is pipelined: the read buffer is empty between requests; an idle connection
        // (thousands of them in `wec replay --idle`) keeps no read buffer.
        if (buffer.size() == 0) buffer.shrink_to_fit();
        tls_confirmed = true;
        auto msg = parser.release();
        Response r;
        r.status = msg.result_int();
        for (const auto& f : msg)
            r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
        r.content_type = std::string(msg[bhttp::field::content_type]);
        r.keep_alive = msg.keep_alive();
        r.body = std::move(msg.body());
        if (!r.keep_alive) close();
        co_return r;
    }

    asio::awaitable<void> connect(std::string target) {
        co_await tcp_connect();
        if (options.tls) {
            co_await tls_handshake();
            authenticated = true; // the certificate is the authentication: no HTTP step
            co_return;
        }
        try {
            auth::ClientOptions co;
            co.target = options.service;
            co.mechanism = options.mechanism;
            co.ccache = options.ccache;
            co.ntlm_user = options.ntlm_user;
            co.ntlm_password = options.ntlm_password;
            context.emplace(std::move(co));
            auto step = context->step();
            // The server's token for our scheme in a reply (empty when none).
            auto reply_token = [&](const Response& res) {
                for (const auto& [n, v] : res.headers) {
                    if (!http::iequals(n, "WWW-Authenticate")) continue;
                    auto sp = v.find(' ');
                    if (sp != std::string::npos &&
                        http::iequals(v.substr(0, sp), scheme_of(options.mechanism)))
                        return std::string(http::trim(std::string_view(v).substr(sp + 1)));
                }
                return std::string();
            };
            Response res;
            // Multi-leg handshakes (NTLM: NEGOTIATE, 401 + CHALLENGE, AUTHENTICATE) on this
            // connection; Kerberos takes one leg.
            for (int leg = 1;; ++leg) {
                auto req = request(target);
                req.set(bhttp::field::authorization, std::string(scheme_of(options.mechanism)) +
                                                         " " + text::base64_encode(step.output));
                req.set(bhttp::field::content_type, std::string(http::kDefaultOriginalType));
                if (options.sldc_header) req.set(bhttp::field::content_encoding, "SLDC");
                req.prepare_payload();
                res = co_await round_trip(req);
                auto token = reply_token(res);
                if (res.status == 401 && !step.complete() && !token.empty() && leg < 4 &&
                    res.keep_alive) {
                    auto bytes = text::base64_decode(token);
                    if (!bytes)
                        throw ClientError(ErrorKind::Auth,
                                          "the authentication challenge from " + where() +
                                              " is not base64",
                                          res.status);
                    step = context->step(*bytes);
                    continue;
                }
                break;
            }
            if (res.status != 200)
                throw ClientError(res.status == 401 ? ErrorKind::Auth : ErrorKind::Http,
                                  "authentication at " + where() + target + " answered HTTP " +
                                      std::to_string(res.status) + ": " + res.text(),
                                  res.status);
            if (!step.complete()) {
                std::string token = reply_token(res);
                if (token.empty())
                    throw ClientError(ErrorKind::Auth,
                                      "no mutual authentication token (WWW-Authenticate: " +
                                          std::string(scheme_of(options.mechanism)) + ") from " +
                                          where(),
                                      res.status);
                auto bytes = text::base64_decode(token);
                if (!bytes)
                    throw ClientError(ErrorKind::Auth,
                                      "the mutual authentication token from " + where() +
                                          " is not base64",
                                      res.status);
                step = context->step(*bytes);
                if (!step.complete())
                    throw ClientError(ErrorKind::Auth, "mutual authentication with " + where() +
                                                           " did not complete");
            }
            authenticated = true;
        } catch (const auth::GssError& e) {
            close();
            throw ClientError(ErrorKind::Auth,
                              std::string(options.ntlm_user.empty() ? "Kerberos" : "NTLM") +
                                  " initiator for " + options.service + ": " + e.what());
        } catch (...) {
            close();
            throw;
        }
    }

    PreparedBody prepare(std::string_view soap, bool compress) {
        if (!authenticated || (!context && !options.tls))
            throw ClientError(ErrorKind::Usage,
                              "connection to " + where() + " is not authenticated");
        PreparedBody p;
        std::vector<std::uint8_t> utf16;
        utf16.reserve(soap.size() * 2 + 2);
        text::append_utf8_to_utf16le(soap, utf16, true);
        p.soap_bytes = utf16.size();
        std::vector<std::uint8_t> compressed;
        std::span<const std::uint8_t> plain = utf16;
        if (compress) {
            if (!compressor)
                compressor =
                    options.compressor ? options.compressor : std::make_shared<sldc::Compressor>();
            compressor->compress(utf16, compressed);
            plain = compressed;
            p.compressed = true;
        }
        seal_into(p, plain);
        return p;
    }

    void seal_into(PreparedBody& p, std::span<const std::uint8_t> plain) {
        if (options.tls) { // TLS protects the body: sent as is
            p.body.assign(plain.begin(), plain.end());
            p.content_type = std::string(http::kDefaultOriginalType);
            return;
        }
        if (!authenticated || !context)
            throw ClientError(ErrorKind::Usage,
                              "connection to " + where() + " is not authenticated");
        try {
            // Sealed straight into the body, between the parts' headers and the closing
            // boundary (the bytes of http::build_encrypted, without copying the token twice).
            auto frame =
                http::encrypted_frame(protocol_of(options.mechanism), http::kDefaultOriginalType,
                                      plain.size(), options.tab_form);
            p.body.clear();
            p.body.reserve(frame.head.size() + 4 + kMaxSealHeader + plain.size() +
                           frame.tail.size());
            p.body.insert(p.body.end(), frame.head.begin(), frame.head.end());
            auth::seal_append(*context, plain, p.body);
            p.body.insert(p.body.end(), frame.tail.begin(), frame.tail.end());
            p.content_type = std::move(frame.content_type);
        } catch (const auth::GssError& e) {
            throw ClientError(ErrorKind::Auth, std::string("cannot seal a request: ") + e.what());
        }
    }

    // Decrypts and parses a sealed reply in place; on TLS, parses a plain SOAP reply.
    void open_reply(Response& r) {
        if (options.tls) {
            if (r.body.empty()) return;
            try {
                auto media = http::parse_media_type(r.content_type);
                if (!http::iequals(media.type, "application/soap+xml")) return;
                r.message = wsman::decode_body(r.content_type, r.header("Content-Encoding"), r.body,
                                               kMaxResponseBody)
                                .message;
            } catch (const http::FramingError& e) {
                throw ClientError(ErrorKind::Protocol,
                                  std::string("reply from ") + where() + ": " + e.what(), r.status);
            } catch (const wsman::BodyError& e) {
                throw ClientError(ErrorKind::Protocol,
                                  std::string("reply from ") + where() + ": " + e.what(), r.status);
            } catch (const wsman::ParseError& e) {
                throw ClientError(ErrorKind::Protocol,
                                  std::string("reply from ") + where() + ": " + e.what(), r.status);
            }
            return;
        }
        if (!http::is_multipart_encrypted(r.content_type)) return;
        try {
            auto part = http::parse_encrypted(r.body, r.content_type);
            std::vector<std::uint8_t> header(part.header.begin(), part.header.end());
            std::vector<std::uint8_t> clear(part.ciphertext.begin(), part.ciphertext.end());
            auth::unseal_in_place(*context, header, clear);
            if (part.length != clear.size())
                throw ClientError(ErrorKind::Protocol,
                                  "reply OriginalContent Length=" + std::to_string(part.length) +
                                      " but " + std::to_string(clear.size()) + " bytes decrypted");
            r.body = std::move(clear);
            r.sealed = true;
            r.message = wsman::decode_body(part.original_type, r.header("Content-Encoding"), r.body,
                                           kMaxResponseBody)
                            .message;
        } catch (const http::FramingError& e) {
            throw ClientError(ErrorKind::Protocol,
                              std::string("reply from ") + where() + ": " + e.what(), r.status);
        } catch (const auth::GssError& e) {
            throw ClientError(ErrorKind::Protocol,
                              std::string("cannot decrypt the reply from ") + where() + ": " +
                                  e.what(),
                              r.status);
        } catch (const wsman::BodyError& e) {
            throw ClientError(ErrorKind::Protocol,
                              std::string("reply from ") + where() + ": " + e.what(), r.status);
        } catch (const wsman::ParseError& e) {
            throw ClientError(ErrorKind::Protocol,
                              std::string("reply from ") + where() + ": " + e.what(), r.status);
        }
    }

    asio::awaitable<Response> send(std::string target, PreparedBody body, RequestOptions ro) {
        if (!open || !authenticated)
            throw ClientError(ErrorKind::Transport, "connection to " + where() + " is closed");
        auto req = request(target);
        req.set(bhttp::field::content_type, body.content_type);
        if (body.compressed || ro.sldc_header || options.sldc_header)
            req.set(bhttp::field::content_encoding, "SLDC");
        for (const auto& [n, v] : ro.headers)
            req.set(n, v);
        req.body() = std::move(body.body);
        req.prepare_payload();
        auto res = co_await round_trip(req);
        open_reply(res);
        co_return res;
    }
};

AsyncConnection::AsyncConnection(asio::any_io_executor executor, ConnectionOptions options)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(options))) {}
AsyncConnection::~AsyncConnection() = default;

asio::awaitable<void> AsyncConnection::connect(std::string target) {
    co_await impl_->connect(std::move(target));
}

asio::awaitable<Response> AsyncConnection::post(std::string target, std::string soap, bool compress,
                                                RequestOptions options) {
    if (!impl_->open || !impl_->authenticated) co_await impl_->connect(target);
    auto body = impl_->prepare(soap, compress);
    co_return co_await impl_->send(std::move(target), std::move(body), std::move(options));
}

asio::awaitable<Response> AsyncConnection::post_prepared(std::string target, PreparedBody body,
                                                         RequestOptions options) {
    co_return co_await impl_->send(std::move(target), std::move(body), std::move(options));
}

asio::awaitable<Response> AsyncConnection::exchange_raw(std::string bytes) {
    if (!impl_->open) {
        co_await impl_->tcp_connect();
        if (impl_->options.tls) co_await impl_->tls_handshake();
    }
    co_await impl_->with_stream([&](auto& s) { return impl_->write_bytes(s, bytes); });
    co_return co_await impl_->read_response();
}

PreparedBody AsyncConnection::prepare(std::string_view soap, bool compress) {
    return impl_->prepare(soap, compress);
}

PreparedBody AsyncConnection::prepare_bytes(std::span<const std::uint8_t> cleartext, bool sldc) {
    PreparedBody p;
    p.compressed = sldc;
    p.soap_bytes = cleartext.size();
    impl_->seal_into(p, cleartext);
    return p;
}

bool AsyncConnection::is_open() const {
    return impl_->open;
}
bool AsyncConnection::authenticated() const {
    return impl_->authenticated;
}
void AsyncConnection::close() {
    impl_->close();
}
const ConnectionOptions& AsyncConnection::options() const {
    return impl_->options;
}

// ---- Connection (blocking) ----------------------------------------------------------------------

struct Connection::Impl {
    explicit Impl(ConnectionOptions o)
        : io(o.io_context ? o.io_context : std::make_shared<asio::io_context>(1)), ioc(*io),
          conn(ioc.get_executor(), std::move(o)) {}
    // Private, or shared with other connections of the same thread: each operation runs the
    // context until it has no work left, so a shared one must not be run by another thread.
    std::shared_ptr<asio::io_context> io;
    asio::io_context& ioc;
    AsyncConnection conn;

    template <class T>
    T run(asio::awaitable<T> op) {
        std::optional<T> result;
        std::exception_ptr error;
        asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e, T value) {
            error = e;
            if (!e) result.emplace(std::move(value));
        });
        ioc.restart();
        ioc.run();
        if (error) std::rethrow_exception(error);
        return std::move(*result);
    }

    void run(asio::awaitable<void> op) {
        std::exception_ptr error;
        asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e) { error = e; });
        ioc.restart();
        ioc.run();
        if (error) std::rethrow_exception(error);
    }
};

Connection::Connection(ConnectionOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
Connection::~Connection() = default;

void Connection::connect(const std::string& target) {
    impl_->run(impl_->conn.connect(target));
}

Response Connection::post(const std::string& target, const std::string& soap, bool compress,
                          RequestOptions options) {
    return impl_->run(impl_->conn.post(target, soap, compress, std::move(options)));
}

Response Connection::post_prepared(const std::string& target, PreparedBody body,
                                   RequestOptions options) {
    return impl_->run(impl_->conn.post_prepared(target, std::move(body), std::move(options)));
}

Response Connection::exchange_raw(std::string bytes) {
    return impl_->run(impl_->conn.exchange_raw(std::move(bytes)));
}

PreparedBody Connection::prepare(std::string_view soap, bool compress) {
    return impl_->conn.prepare(soap, compress);
}
PreparedBody Connection::prepare_bytes(std::span<const std::uint8_t> cleartext, bool sldc) {
    return impl_->conn.prepare_bytes(cleartext, sldc);
}
bool Connection::is_open() const {
    return impl_->conn.is_open();
}
bool Connection::authenticated() const {
    return impl_->conn.authenticated();
}
void Connection::close() {
    impl_->conn.close();
}
const ConnectionOptions& Connection::options() const {
    return impl_->conn.options();
}

} // namespace wec::client

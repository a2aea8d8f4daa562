#include "server/wef_connection.hpp"

#include "http/http.hpp"
#include "server/metrics_endpoint.hpp"
#include "store/store.hpp"
#include "text/base64.hpp"
#include "text/text.hpp"
#include "wsman/body.hpp"
#include "wsman/wsman.hpp"

#include <chrono>
#include <filesystem>
#include <future>
#include <openssl/crypto.h>

namespace wec::server {
namespace {

// Retry-After of a 503 when the collector did not say.
constexpr std::uint32_t kRetryAfterSeconds = 5;

HttpResponse plain(unsigned status, std::string_view why) {
    HttpResponse r;
    r.status = status;
    r.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
    r.body.assign(why.begin(), why.end());
    return r;
}

} // namespace

std::optional<auth::AcceptorCredentials> PendingKeytab::get(Logger& log) const {
    std::lock_guard lock(mutex_);
    if (loaded_) return loaded_;
    auto now = std::chrono::steady_clock::now();
    if (now - last_try_ < std::chrono::seconds(1)) return std::nullopt;
    last_try_ = now;
    std::error_code ec;
    if (!std::filesystem::exists(keytab_, ec)) return std::nullopt;
    try {
        loaded_ = auth::AcceptorCredentials::from_keytab(keytab_, service_names_, rcache_);
        log.info("keytab loaded: Kerberos authentication enabled", {{"keytab", keytab_}});
    } catch (const std::exception& e) {
        if (last_error_ != e.what())
            log.error("keytab present but unusable", {{"keytab", keytab_}, {"error", e.what()}});
        last_error_ = e.what();
    }
    return loaded_;
}

WefConnection::WefConnection(const WefEndpoint& endpoint, PeerInfo peer)
    : endpoint_(endpoint), peer_(std::move(peer)) {
    // Kept for the connection's whole life: only what is used (address, TLS client identity).
    for (auto* field :
         {&peer_.proxy_address, &peer_.listener, &peer_.tls_version, &peer_.tls_cipher})
        std::string().swap(*field);
}

void WefConnection::closed() {}

HttpResponse WefConnection::unauthorized(const std::string& why) {
    HttpResponse r = plain(401, why);
    r.headers.push_back({"WWW-Authenticate", "Kerberos"});
    r.headers.push_back({"WWW-Authenticate", "Negotiate"});
    r.close = true;
    return r;
}

std::optional<HttpResponse> WefConnection::check_basic(const HttpRequest& request,
                                                       std::string& note) {
    auto refuse = [&](const std::string& why) {
        note = why;
        client_.clear();
        basic_verified_.clear();
        HttpResponse r = plain(401, "authentication required");
        r.headers.push_back({"WWW-Authenticate", "Basic realm=\"wec\""});
        return r;
    };
    auto authorization = request.header("Authorization");
    if (authorization.empty()) return refuse("no Basic authorization");
    // Hashing is slow by design: a keep-alive connection that sends the header it sent before
    // is not verified again (compared in constant time).
    if (!basic_verified_.empty() && basic_verified_.size() == authorization.size() &&
        CRYPTO_memcmp(basic_verified_.data(), authorization.data(), authorization.size()) == 0)
        return std::nullopt;
    auto credentials = auth::parse_basic_authorization(authorization);
    if (!credentials) return refuse("authorization is not Basic base64(user:password)");
    if (!endpoint_.basic->verify(credentials->user, credentials->password))
        return refuse("Basic authentication failed for '" + credentials->user + "'");
    client_ = credentials->user;
    basic_verified_ = std::string(authorization);
    return std::nullopt;
}

// What answering a request handed to the collector needs once the collector replied.
struct WefConnection::Prepared {
    wsman::Message message;
    pipeline::ClientInfo info;
    text::Encoding encoding = text::Encoding::Utf8;
    std::string auth_reply_token;
    std::string protocol; // Kerberos listener: the client's multipart/encrypted form
    bool tab_before_headers = false;
};

HttpResponse WefConnection::handle(HttpRequest& request) {
    std::promise<HttpResponse> response;
    auto answered = response.get_future();
    handle_async(request, [&response](HttpResponse r) { response.set_value(std::move(r)); });
    return answered.get();
}

void WefConnection::handle_async(HttpRequest& request, Respond respond) {
    auto start = std::chrono::steady_clock::now();
    std::string action = "-", note;
    HttpResponse response;
    if (endpoint_.metrics) endpoint_.metrics->bytes_received(request.body.size());
    try {
        auto prepared = prepare(request, action, note);
        if (auto* p = std::get_if<std::shared_ptr<Prepared>>(&prepared)) {
            // The collector answers when its outputs are done (maybe on another thread). The
            // server keeps this handler and `request` alive until `respond` is called, and sends
            // this connection no other request meanwhile.
            auto on_reply = [this, &request, p = *p, action, start,
                             respond](pipeline::Reply reply) {
                std::string why = reply.note;
                HttpResponse r;
                try {
                    r = finish(*p, reply);
                } catch (const std::exception& e) {
                    why = std::string("internal error: ") + e.what();
                    r = plain(500, why);
                }
                log_request(request, action, why, r.status, reply.events, start);
                respond(std::move(r));
            };
            endpoint_.collector->handle_async((*p)->info, request.target, (*p)->message,
                                              std::move(on_reply));
            return;
        }
        response = std::move(std::get<HttpResponse>(prepared));
    } catch (const store::StoreError& e) {
        // The store is busy or failing: temporary, the source keeps its events and retries.
        note = std::string("store failed: ") + e.what();
        response = plain(503, "state store unavailable, retry later");
        response.headers.push_back({"Retry-After", std::to_string(kRetryAfterSeconds)});
    } catch (const std::exception& e) {
        note = std::string("internal error: ") + e.what();
        response = plain(500, note);
    }
    log_request(request, action, note, response.status, 0, start);
    respond(std::move(response));
}

std::optional<HttpResponse> WefConnection::check_head(const HttpRequest& head) {
    auto start = std::chrono::steady_clock::now();
    std::string note;
    auto response = head_refusal(head, note);
    if (response) log_request(head, "-", note, response->status, 0, start);
    return response;
}

std::string_view WefConnection::mechanism() const {
    if (client_.empty()) return {};
    if (endpoint_.basic) return "Basic";
    if (peer_.tls) return "TLS";
    return context_ ? context_->mechanism_name() : std::string_view();
}

// Answered from the head alone, before any body byte is buffered, when the body could not be
// used anyway. The server asks before reading the body (check_head); prepare() asks too, for
// callers that hand over whole requests.
std::optional<HttpResponse> WefConnection::head_refusal(const HttpRequest& head,
                                                        std::string& note) {
    if (head.method != "POST") {
        note = "method " + head.method + " not allowed";
        auto r = plain(405, "WS-Management accepts POST only");
        r.headers.push_back({"Allow", "POST"});
        r.close = true;
        return r;
    }
    if (endpoint_.basic && head.header("Authorization").empty()) {
        note = "no Basic authorization";
        HttpResponse r = plain(401, "authentication required");
        r.headers.push_back({"WWW-Authenticate", "Basic realm=\"wec\""});
        return r;
    }
    if (!peer_.tls && head.header("Authorization").empty() && (!context_ || client_.empty())) {
        note = "no authenticated context on this connection";
        return unauthorized("authentication required");
    }
    return std::nullopt;
}

void WefConnection::log_request(const HttpRequest& request, std::string_view action,
                                std::string_view note, unsigned status, std::size_t events,
                                std::chrono::steady_clock::time_point start) const {
    auto elapsed = std::chrono::steady_clock::now() - start;
    // Every request answered comes through here: counted once (docs/metrics.md).
    if (endpoint_.metrics) endpoint_.metrics->request(action, status, elapsed);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.3f", static_cast<double>(micros) / 1000.0);
    auto level = status >= 500 ? LogLevel::Error : status >= 400 ? LogLevel::Warn : LogLevel::Info;
    auto how = mechanism();
    endpoint_.log->log(level, "request",
                       {{"client", client_.empty() ? "-" : client_},
                        {"mechanism", how.empty() ? "-" : how},
                        {"address", peer_.address},
                        {"path", request.target},
                        {"action", action},
                        {"status", std::to_string(status)},
                        {"events", std::to_string(events)},
                        {"ms", duration},
                        {"note", note}});
}

std::optional<HttpResponse>
WefConnection::unwrap_kerberos(HttpRequest& request, std::string& action, std::string& note,
                               std::string& auth_reply_token, http::EncryptedPart& part,
                               std::span<const std::uint8_t>& cleartext) {
    // 1. Authentication: a token on the first request of a connection (or again, to restart).
    auto authorization = request.header("Authorization");
    if (!authorization.empty()) {
        action = "auth";
        auto space = authorization.find(' ');
        auto scheme = authorization.substr(0, space);
        if (!(http::iequals(scheme, "Kerberos") || http::iequals(scheme, "Negotiate")) ||
            space == std::string_view::npos) {
            note = "unsupported authorization scheme '" + std::string(scheme) + "'";
            return unauthorized(note);
        }
        auto credentials = endpoint_.credentials;
        if (!credentials && endpoint_.pending_keytab)
            credentials = endpoint_.pending_keytab->get(*endpoint_.log);
        if (!credentials && !endpoint_.ntlm) {
            note = "Kerberos is not configured on this listener";
            return unauthorized(note);
        }
        auto token = text::base64_decode(http::trim(authorization.substr(space + 1)));
        if (!token || token->empty()) {
            note = "authorization token is not base64";
            return unauthorized(note);
        }
        // A multi-leg handshake (NTLM: NEGOTIATE, CHALLENGE, AUTHENTICATE) goes on with the same
        // context: it is bound to this connection; any other token starts a new one.
        if (!context_ || !handshaking_) {
            context_.emplace(credentials, endpoint_.ntlm);
            client_.clear();
            scheme_ = http::iequals(scheme, "Kerberos") ? "Kerberos" : "Negotiate";
        }
        handshaking_ = false;
        auto step = context_->step(*token);
        if (step.status == auth::StepResult::Status::ContinueNeeded) {
            handshaking_ = true;
            note = std::string("authentication continues (") + context_->mechanism_name() +
                   " challenge sent)";
            HttpResponse r = plain(401, "authentication continues");
            r.headers.push_back(
                {"WWW-Authenticate", scheme_ + " " + text::base64_encode(step.output)});
            return r; // keep-alive: the next leg must come on this connection
        }
        if (!step.complete()) {
            note = step.error ? step.error->what() : "authentication failed";
            context_.reset();
            return unauthorized("authentication failed");
        }
        client_ = context_->client_name();
        // The per-message protection, set up now rather than on the first message: a Kerberos
        // context then parks MIT's copy (auth/gss.hpp), so a connection idle after its
        // handshake is small too.
        context_->fast_path();
        if (context_->ntlm() && endpoint_.ntlm_warned &&
            (credentials || endpoint_.pending_keytab) && endpoint_.ntlm_warned->first(client_))
            endpoint_.log->warn("host authenticated with NTLM on a listener that has Kerberos: "
                                "it could not get a Kerberos ticket for this collector (usual "
                                "cause: no HTTP/ SPN for the name used in the GPO's Server=, or "
                                "the collector addressed by IP or by a CNAME)",
                                {{"client", client_}, {"address", peer_.address}});
        auth_reply_token = step.output.empty() ? std::string() : text::base64_encode(step.output);
        if (request.body.empty()) {
            HttpResponse r;
            r.status = 200;
            if (!auth_reply_token.empty())
                r.headers.push_back({"WWW-Authenticate", scheme_ + " " + auth_reply_token});
            note = "authenticated via " + scheme_ + " (" + context_->mechanism_name() + ")";
            auth_reply_token.clear();
            return r;
        }
    }
    if (!context_ || client_.empty()) {
        note = "no authenticated context on this connection";
        return unauthorized("authentication required");
    }

    // 2. Unwrap the sealed body.
    auto content_type = request.header("Content-Type");
    if (!http::is_multipart_encrypted(content_type)) {
        note = "unencrypted body on a Kerberos listener";
        return plain(400, "bodies must be multipart/encrypted on this listener");
    }
    try {
        part = http::parse_encrypted(request.body, content_type);
    } catch (const http::FramingError& e) {
        note = e.what();
        return plain(400, note);
    }
    if (part.ciphertext.size() > endpoint_.max_body_bytes) {
        note = "body larger than " + std::to_string(endpoint_.max_body_bytes) +
               " bytes after decryption";
        return plain(400, note);
    }
    try {
        // Decrypt in place, inside the request body this handler owns (no copy of the body).
        auto offset = static_cast<std::size_t>(part.ciphertext.data() - request.body.data());
        std::span<std::uint8_t> data(request.body.data() + offset, part.ciphertext.size());
        std::vector<std::uint8_t> header(part.header.begin(), part.header.end());
        auth::unseal_in_place(*context_, header, data);
        cleartext = data;
    } catch (const auth::GssError& e) {
        note = std::string("cannot decrypt body: ") + e.what();
        return plain(400, "cannot decrypt body");
    }
    if (part.length != cleartext.size()) {
        note = "OriginalContent Length=" + std::to_string(part.length) + " but " +
               std::to_string(cleartext.size()) + " bytes decrypted";
        return plain(400, note);
    }

    return std::nullopt;
}

std::variant<HttpResponse, std::shared_ptr<WefConnection::Prepared>>
WefConnection::prepare(HttpRequest& request, std::string& action, std::string& note) {
    if (auto refused = head_refusal(request, note)) return std::move(*refused);

    std::string auth_reply_token;
    http::EncryptedPart part;
    std::span<const std::uint8_t> cleartext;
    std::string charset;
    std::span<const std::uint8_t> body;
    if (peer_.tls) {
        // HTTPS: the verified client certificate is the identity (Basic listener: the user
        // name); bodies are plain.
        if (endpoint_.basic) {
            action = "auth";
            if (auto refused = check_basic(request, note)) return std::move(*refused);
        } else {
            client_ = peer_.tls_subject_cn;
        }
        if (client_.empty()) {
            note = "client certificate has no subject CN";
            return plain(403, note);
        }
        auto content_type = request.header("Content-Type");
        if (http::is_multipart_encrypted(content_type)) {
            note = "multipart/encrypted body on a TLS listener";
            return plain(400, "bodies are not sealed on HTTPS");
        }
        charset = wsman::charset_of(content_type);
        if (request.body.empty()) {
            note = "empty request";
            return HttpResponse{200, {}, {}, false};
        }
        // The HTTP limit leaves room for the Kerberos framing; a TLS body has none.
        if (request.body.size() > endpoint_.max_body_bytes) {
            note = "body larger than " + std::to_string(endpoint_.max_body_bytes) + " bytes";
            return plain(400, note);
        }
        body = request.body;
    } else {
        auto r = unwrap_kerberos(request, action, note, auth_reply_token, part, cleartext);
        if (r) return std::move(*r);
        charset = wsman::charset_of(part.original_type);
        body = cleartext;
    }

    // 3. Content-Encoding (SLDC, or the body as is when Windows announced SLDC but did not
    // apply it; any other encoding is refused: docs/protocol.md, "Bodies"), 4. text and SOAP:
    // the body step shared with `wec decode` and the client (wsman/body.hpp).
    // Decoded and converted to UTF-8 a cache-sized piece at a time (wsman::decode_text).
    wsman::Text text;
    try {
        text = wsman::decode_text(request.header("Content-Encoding"), body, charset,
                                  endpoint_.max_body_bytes);
    } catch (const wsman::BodyError& e) {
        note = e.what();
        return plain(400, note);
    }

    if (endpoint_.metrics) endpoint_.metrics->bytes_decompressed(text.content_bytes);

    auto prepared = std::make_shared<Prepared>();
    prepared->encoding = text.encoding;
    try {
        prepared->message = wsman::parse_owned(std::move(text.utf8), text.xml_clean);
    } catch (const wsman::ParseError& e) {
        note = e.what();
        return plain(400, std::string("malformed SOAP: ") + e.what());
    }
    action = std::string(wsman::to_string(prepared->message.action));
    prepared->info = pipeline::ClientInfo{
        client_, peer_.address, peer_.tls ? pipeline::Transport::Https : pipeline::Transport::Http,
        peer_.tls_issuer_thumbprint, std::string(mechanism())};
    prepared->auth_reply_token = std::move(auth_reply_token);
    prepared->protocol = std::move(part.protocol);
    prepared->tab_before_headers = part.tab_before_headers;
    return prepared;
}

// 5. The collector's reply, 6. on its way back: the client's encoding; on Kerberos sealed in the
// client's MIME form and protocol string.
HttpResponse WefConnection::finish(const Prepared& p, const pipeline::Reply& reply) {
    HttpResponse r;
    r.status = reply.status;
    if (reply.status == 503)
        r.headers.push_back(
            {"Retry-After",
             std::to_string(reply.retry_after_s ? reply.retry_after_s : kRetryAfterSeconds)});
    if (!p.auth_reply_token.empty())
        r.headers.push_back({"WWW-Authenticate", scheme_ + " " + p.auth_reply_token});
    if (reply.soap.empty()) return r;

    std::vector<std::uint8_t> reply_bytes;
    text::encode_body(reply.soap, p.encoding, reply_bytes);
    std::string original = p.encoding == text::Encoding::Utf8
                               ? "application/soap+xml;charset=UTF-8"
                               : "application/soap+xml;charset=UTF-16";
    if (peer_.tls) {
        r.headers.push_back({"Content-Type", original});
        r.body = std::move(reply_bytes);
        return r;
    }
    auto sealed = auth::seal(*context_, reply_bytes);
    auto encrypted = http::build_encrypted(p.protocol, original, reply_bytes.size(), sealed.header,
                                           sealed.ciphertext, p.tab_before_headers);
    r.headers.push_back({"Content-Type", encrypted.content_type});
    r.body = std::move(encrypted.body);
    return r;
}

} // namespace wec::server

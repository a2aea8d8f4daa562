// The WinRM transport of one collector connection: authentication (Kerberos or SPNEGO through
// GSSAPI, one security context per TCP connection), multipart/encrypted unwrapping, SLDC with the
// fall-back to raw bytes, body decoding, then pipeline::Collector; and the way back (reply in the
// client's encoding, sealed in the client's MIME form and protocol string).
#pragma once

#include "auth/basic.hpp"
#include "auth/gss.hpp"
#include "auth/ntlm.hpp"
#include "common/log.hpp"
#include "http/http.hpp"
#include "pipeline/collector.hpp"
#include "server/http_server.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace wec::server {

class RequestMetrics; // server/metrics_endpoint.hpp

// A Kerberos listener whose keytab did not exist at start: loaded when a client first tries to
// authenticate after it appears (tried at most once a second), so that provisioning the keytab
// needs no restart. Thread-safe.
class PendingKeytab {
public:
    PendingKeytab(std::string keytab, std::vector<std::string> service_names, std::string rcache)
        : keytab_(std::move(keytab)), service_names_(std::move(service_names)),
          rcache_(std::move(rcache)) {}
    std::optional<auth::AcceptorCredentials> get(Logger& log) const;

private:
    std::string keytab_;
    std::vector<std::string> service_names_;
    std::string rcache_;
    mutable std::mutex mutex_;
    mutable std::optional<auth::AcceptorCredentials> loaded_;
    mutable std::chrono::steady_clock::time_point last_try_{};
    mutable std::string last_error_;
};

// Shared by every connection of one listener.
struct WefEndpoint {
    Logger* log = nullptr;
    pipeline::Collector* collector = nullptr;
    std::optional<auth::AcceptorCredentials> credentials; // Kerberos listener
    std::shared_ptr<const PendingKeytab> pending_keytab;  // Kerberos listener, keytab missing
    // Negotiate listener: NTLM through gss-ntlmssp (null: NTLM is refused), and the hosts already
    // warned about using NTLM where Kerberos is configured.
    std::shared_ptr<const auth::NtlmAcceptor> ntlm;
    std::shared_ptr<auth::OncePerKey> ntlm_warned;
    // Basic listener (HTTPS): its accounts; every request must carry `Authorization: Basic`.
    std::shared_ptr<const auth::BasicUsers> basic;
    // Bodies larger than this after decryption, or after decompression, are refused with 400.
    std::size_t max_body_bytes = 512000;
    RequestMetrics* metrics = nullptr; // requests and bytes counted (docs/metrics.md); null: not
};

class WefConnection final : public ConnectionHandler {
public:
    WefConnection(const WefEndpoint& endpoint, PeerInfo peer);
    // Waits for the reply (tests); the server calls handle_async.
    HttpResponse handle(HttpRequest& request) override;
    // An Events request is answered once the collector's outputs have the batch, from the
    // thread of the output that finished last; this handler and `request` must stay alive until
    // then (the server keeps them).
    void handle_async(HttpRequest& request, Respond respond) override;
    // 405 for another method, 401 for a request with no Authorization on a connection not yet
    // authenticated (Kerberos listener): nothing of such a body is read.
    std::optional<HttpResponse> check_head(const HttpRequest& head) override;
    void closed() override;

private:
    // 405 for another method, 401 without Authorization on a connection not authenticated
    // (Kerberos listener); none when the body is needed. `note` says why, for the log.
    std::optional<HttpResponse> head_refusal(const HttpRequest& head, std::string& note);
    void log_request(const HttpRequest& request, std::string_view action, std::string_view note,
                     unsigned status, std::size_t events,
                     std::chrono::steady_clock::time_point start) const;
    // How the client of this connection authenticated: "Kerberos", "NTLM", "TLS" or "Basic";
    // empty while it has not.
    std::string_view mechanism() const;
    struct Prepared;
    // Authentication, unsealing, SLDC, charset and SOAP: a response to send at once, or the
    // message to hand to the collector.
    std::variant<HttpResponse, std::shared_ptr<Prepared>>
    prepare(HttpRequest& request, std::string& action, std::string& note);
    HttpResponse finish(const Prepared& prepared, const pipeline::Reply& reply);
    HttpResponse unauthorized(const std::string& why);
    // Basic listener: checks the request's Authorization (a verification cached per connection
    // for a byte-identical header); a 401 to send, or none with client_ set to the user.
    std::optional<HttpResponse> check_basic(const HttpRequest& request, std::string& note);
    // Kerberos listener: authentication steps and unsealing. Returns a response to send instead
    // of processing (401, 400, or the 200 of an auth-only request).
    std::optional<HttpResponse> unwrap_kerberos(HttpRequest& request, std::string& action,
                                                std::string& note, std::string& auth_reply_token,
                                                http::EncryptedPart& part,
                                                std::span<const std::uint8_t>& cleartext);

    const WefEndpoint& endpoint_;
    PeerInfo peer_;
    std::optional<auth::ServerContext> context_;
    std::string scheme_;       // "Kerberos" or "Negotiate", as the client said it
    bool handshaking_ = false; // a multi-leg handshake (NTLM, SPNEGO) awaits the client's next leg
    std::string client_;
    std::string basic_verified_; // Basic: the Authorization header last verified on this connection
};

} // namespace wec::server

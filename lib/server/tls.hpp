// TLS for the HTTPS listener (Windows sources outside a domain): server certificate and key,
// mandatory client certificates verified against the configured CA bundles (Windows sends only
// its leaf), optional CRLs, and the Client Authentication EKU required on the client's leaf.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace wec::server {

struct TlsSettings {
    std::string cert_file;              // PEM: server certificate (+ chain)
    std::string key_file;               // PEM: its private key (RSA or ECDSA)
    std::vector<std::string> ca_files;  // PEM bundles: roots and issuing CAs of client certificates
    std::vector<std::string> crl_files; // PEM CRLs; when given, revocation is checked for the chain
    // Basic listeners: a client certificate is optional (verified against ca_files when sent and
    // when some are configured; none asked for otherwise).
    bool require_client_cert = true;
};

// Opaque (holds an OpenSSL context); shared by every connection of a listener.
struct TlsContext;

// Throws wec::Error naming the file and the OpenSSL reason.
std::shared_ptr<TlsContext> make_tls_context(const TlsSettings& settings);

// SHA-1 thumbprints (40 uppercase hex digits) of the configured CA certificates.
std::vector<std::string> ca_thumbprints(const TlsContext& context);
// What the operator should hear about when the context was made (e.g. an expired CRL).
std::vector<std::string> tls_warnings(const TlsContext& context);

} // namespace wec::server

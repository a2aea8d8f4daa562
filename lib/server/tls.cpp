#include "common/error.hpp"
#include "common/handle.hpp"
#include "common/openssl.hpp"
#include "server/tls_internal.hpp"
#include "server/tls_stream_internal.hpp"

#include <cstdio>
#include <memory>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

namespace wec::server {
namespace {

// The TLS 1.2 cipher suites accepted (OpenSSL names, in server preference order): ECDHE key
// exchange only (forward secrecy), AEAD first. docs/security.md lists them.
constexpr const char* kTls12Ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                                      "ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES256-SHA384:"
                                      "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:"
                                      "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA:"
                                      "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA";

FilePtr open_or_throw(const std::string& path, const char* what) {
    FilePtr f(std::fopen(path.c_str(), "r"));
    if (!f) throw Error(std::string("cannot read ") + what + " " + path);
    return f;
}

} // namespace

bool detail::has_client_auth_eku(X509* cert) {
    return (X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) &&
           (X509_get_extended_key_usage(cert) & XKU_SSL_CLIENT);
}

std::shared_ptr<TlsContext> make_tls_context(const TlsSettings& s) {
    namespace ssl = boost::asio::ssl;
    auto ctx = std::make_shared<TlsContext>();
    auto& c = ctx->ssl;
    // TLS 1.2 and 1.3 only; Windows 10 and later speak both.
    c.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                  ssl::context::single_dh_use);
    SSL_CTX* native = c.native_handle();
    SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS); // idle keep-alive connections stay small
    ERR_clear_error();
    if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1)
        throw Error("cannot set the minimum TLS version: " +
                    openssl::errors("unknown OpenSSL error"));
    // TLS 1.2: forward secrecy only (ECDHE), never static RSA key exchange, which OpenSSL's default
    // list accepts with an RSA server key. The CBC suites stay for older Schannel versions
    // (Windows 7 / Server 2008 R2 offer ECDHE-RSA only with CBC). TLS 1.3 keeps OpenSSL's suites.
    if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1)
        throw Error("cannot set the TLS 1.2 cipher list: " +
                    openssl::errors("unknown OpenSSL error"));
    // No session resumption: every connection does a full handshake, so that the client
    // certificate is verified (chain, dates, EKU, CRL) and its issuer known on every connection.
    // Without a session id context, OpenSSL would also fail a resumption attempt with a fatal
    // internal_error alert ("session id context uninitialized") instead of a full handshake.
    // No renegotiation either: the identity is fixed by the first handshake.
    SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
    // TLS 1.3: the connection's stream takes the application traffic secrets, frees the SSL
    // object after the handshake and seals and opens the records itself (tls_stream_internal.hpp).
    // WEC_TLS_RECORDS=openssl in the environment keeps OpenSSL's record layer (no secrets are
    // handed over, so no connection is taken over).
    if (detail::own_tls_records()) SSL_CTX_set_keylog_callback(native, &detail::tls_keylog);
    SSL_CTX_set_num_tickets(native, 0);
    SSL_CTX_set_options(native, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(native, s.cert_file.c_str()) != 1)
        throw Error("cannot load server certificate " + s.cert_file + ": " +
                    openssl::errors("unknown OpenSSL error"));
    if (SSL_CTX_use_PrivateKey_file(native, s.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        throw Error("cannot load server key " + s.key_file + ": " +
                    openssl::errors("unknown OpenSSL error"));
    if (SSL_CTX_check_private_key(native) != 1)
        throw Error("server key " + s.key_file + " does not match certificate " + s.cert_file);
    if (s.ca_files.empty() && s.require_client_cert)
        throw Error(
            "client certificates need at least one CA bundle (--ca): the root and the issuing CA");

    X509_STORE* store = SSL_CTX_get_cert_store(native);
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    for (const auto& file : s.ca_files) {
        auto f = open_or_throw(file, "CA bundle");
        int count = 0;
        while (Handle<X509, X509_free> cert{PEM_read_X509(f.get(), nullptr, nullptr, nullptr)}) {
            X509_STORE_add_cert(store, cert.get());
            sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(cert.get())));
            ctx->thumbprints.push_back(openssl::sha1_thumbprint(cert.get()));
            ++count;
        }
        ERR_clear_error(); // end of file
        if (count == 0) throw Error("no PEM certificate found in CA bundle " + file);
    }
    if (s.ca_files.empty()) {
        sk_X509_NAME_free(names);
        c.set_verify_mode(ssl::verify_none);
        return ctx;
    }
    SSL_CTX_set_client_CA_list(native, names); // takes ownership
    if (!s.crl_files.empty()) {
        for (const auto& file : s.crl_files) {
            auto f = open_or_throw(file, "CRL");
            int count = 0;
            while (Handle<X509_CRL, X509_CRL_free> crl{
                PEM_read_X509_CRL(f.get(), nullptr, nullptr, nullptr)}) {
                X509_STORE_add_crl(store, crl.get());
                // An expired CRL refuses every client of its CA: say so at every (re)load.
                if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
                    next && X509_cmp_current_time(next) < 0)
                    ctx->warnings.push_back("CRL " + file +
                                            " is past its nextUpdate: every client of its CA is "
                                            "refused until a fresh CRL is loaded (SIGHUP)");
                ++count;
            }
            ERR_clear_error();
            if (count == 0) throw Error("no PEM CRL found in " + file);
        }
        // The leaf is checked against its issuer's CRL (requiring CRLs for every root would refuse
        // everything when only the issuing CA publishes one).
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
    c.set_verify_mode(s.require_client_cert ? ssl::verify_peer | ssl::verify_fail_if_no_peer_cert
                                            : ssl::verify_peer);
    return ctx;
}

std::vector<std::string> ca_thumbprints(const TlsContext& context) {
    return context.thumbprints;
}

std::vector<std::string> tls_warnings(const TlsContext& context) {
    return context.warnings;
}

} // namespace wec::server

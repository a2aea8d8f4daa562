// OpenSSL helpers shared by every component that uses OpenSSL (server TLS, pki, output TLS, the
// client): the error queue as text, SHA-1 thumbprints, the subject CN. Header-only, so that
// wec_common itself does not link OpenSSL (its includers do).
#pragma once

#include "common/hex.hpp"

#include <cstddef>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <string>
#include <string_view>

namespace wec::openssl {

// The queued OpenSSL errors of this thread, oldest first, "; "-separated; the queue is emptied.
// `if_none` when it was empty.
inline std::string errors(std::string_view if_none = {}) {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? std::string(if_none) : out;
}

// "AB12..." (upper-case hex) SHA-1 of the certificate's DER form, as Windows shows thumbprints;
// "" when it cannot be computed.
inline std::string sha1_thumbprint(const X509* cert) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!cert || !X509_digest(cert, EVP_sha1(), md, &len)) return {};
    return hex_upper({md, len});
}

// The first subject CN of the certificate as UTF-8; "" if there is none.
inline std::string subject_cn(const X509* cert) {
    if (!cert) return {};
    const X509_NAME* name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0) return {};
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n < 0) return {};
    std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
    OPENSSL_free(utf8);
    return out;
}

} // namespace wec::openssl

// A small lab PKI for WEF over HTTPS (Windows hosts outside a domain): a CA, the collector's server
// certificate and client certificates for Windows hosts, as PEM files and PKCS#12 (PFX) that
// Windows imports. Also the SHA-1 thumbprint that Windows' `IssuerCA=` and the subscription's
// `auth:Thumbprint Role="issuer"` carry.
//
// Files in a PKI directory:
//   ca.pem, ca.key (0600)            the CA certificate and its key
//   server.pem, server.key (0600)    the collector's certificate (leaf + CA chain) and key
//   <name>.pem, <name>.key (0600),   a client certificate (leaf), its key, and both with the CA
//   <name>.pfx (0600)                as PKCS#12 for Windows
#pragma once

#include "common/error.hpp"

#include <cstdint>
#include <ctime>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::pki {

// Every failure: what failed, the file involved, and the OpenSSL error queue when there is one.
// kind() tells bad input (invalid name, existing files, no CA, unreadable certificate) from a
// failure while doing the work (OpenSSL, I/O), so that tools can pick their exit code.
class PkiError : public wec::Error {
public:
    enum class Kind { Input, Runtime };
    explicit PkiError(const std::string& what, Kind kind = Kind::Runtime)
        : wec::Error(what), kind_(kind) {}
    Kind kind() const noexcept { return kind_; }

private:
    Kind kind_;
};

enum class KeyType { EcP384, EcP256, Rsa2048, Rsa3072, Rsa4096 };

// "p384", "p256", "rsa2048", "rsa3072", "rsa4096".
std::string_view to_string(KeyType type);
// Accepts the names above (also "ec", "P-384", "P-256", "rsa" = rsa2048). Throws pki::PkiError.
KeyType parse_key_type(std::string_view text);
// 2048, 3072 or 4096; anything else throws pki::PkiError.
KeyType rsa_key_type(int bits);

// Validity of an issued certificate. not_before defaults to one hour ago, so that Windows hosts
// whose clock is slightly behind accept a fresh certificate.
struct Validity {
    int days = 0;                          // 0: the default of what is issued (see below)
    std::optional<std::time_t> not_before; // start of validity; default now - 1 hour
};

struct InitOptions {
    KeyType key = KeyType::EcP384;         // for the CA and the server certificate
    std::vector<std::string> dns_names;    // extra SAN DNS names (the FQDN is always the first)
    std::vector<std::string> ip_addresses; // SAN IP addresses (IPv4 or IPv6), e.g. 127.0.0.1
    Validity ca_validity{3650, {}};        // 10 years
    Validity server_validity{730, {}};     // 2 years
    int port = 5986;                       // in the printed GPO string
    bool force = false;                    // replace an existing PKI in the directory
};

struct InitResult {
    std::string ca_cert, ca_key, server_cert, server_key; // paths written
    std::string ca_thumbprint; // SHA-1 of ca.pem: 40 uppercase hex digits, no separators
    std::string gpo_string;    // Server=HTTPS://<fqdn>:5986/wsman/,Refresh=60,IssuerCA=<thumbprint>
};

// Creates DIR (0700) when missing, a CA and a server certificate for `fqdn` (CN and first SAN).
// Refuses (pki::PkiError) when DIR already holds any of the four files, unless options.force.
InitResult init(const std::string& dir, const std::string& fqdn, const InitOptions& options = {});

// The Windows "SubscriptionManagers" GPO/registry value for an HTTPS collector.
std::string gpo_string(std::string_view fqdn, std::string_view issuer_thumbprint, int port = 5986);

struct ClientOptions {
    KeyType key = KeyType::EcP384;
    Validity validity{730, {}}; // 2 years
    std::string pfx_password;   // empty: a random one is generated (returned in the result)
    // true (default): PBE-SHA1-3DES for key and certificates, SHA-1 MAC, which every Windows 10
    // and Server 2016 imports. false: AES-256-CBC (PBKDF2/HMAC-SHA-256) and a SHA-256 MAC, which
    // only Windows 10 1709+ / Server 2019+ import. Neither needs OpenSSL's legacy provider.
    bool legacy_pfx = true;
    bool force = false; // replace existing <name>.* files
};

struct ClientResult {
    std::string cert, key, pfx; // paths written
    std::string pfx_password;
    bool password_generated = false;
    std::string thumbprint;     // SHA-1 of the client certificate
    std::string ca_thumbprint;  // SHA-1 of the issuing CA (IssuerCA=)
    std::string pfx_algorithms; // e.g. "PBE-SHA1-3DES, MAC SHA-1"
    bool rsa_key = false;       // the key is RSA (else EC)
    std::string collector; // first SAN DNS name of DIR's server.pem; empty when none or unreadable
};

// Issues a client certificate for the Windows host `name` (its FQDN: CN and SAN DNS) signed by the
// CA in DIR, and writes <name>.pem, <name>.key and <name>.pfx.
ClientResult issue_client(const std::string& dir, const std::string& name,
                          const ClientOptions& options = {});

enum class Expiry { Ok, ExpiresSoon, Expired, NotYetValid };
std::string_view to_string(Expiry e); // "ok", "expires-soon", "expired", "not-yet-valid"

struct CertInfo {
    std::string file; // where it was found (first file, when the same certificate is in several)
    std::string subject, issuer;       // RFC 2253, e.g. "CN=wec.example.org"
    std::string serial;                // uppercase hex
    std::string not_before, not_after; // ISO 8601 UTC, e.g. "2026-01-31T12:00:00Z"
    std::string thumbprint;            // SHA-1, 40 uppercase hex digits
    std::vector<std::string> ekus;     // short names: "serverAuth", "clientAuth", or dotted OIDs
    std::vector<std::string> dns_names, ip_addresses; // subjectAltName
    bool is_ca = false;
    std::int64_t days_left = 0; // whole days until not_after (negative once expired)
    Expiry expiry = Expiry::Ok;
};

struct ShowResult {
    std::vector<CertInfo> certificates;
    std::vector<std::string> warnings; // expires within warn_days, or not yet valid
    std::vector<std::string> errors;   // expired
};

// Every certificate in the *.pem, *.crt and *.cer files of DIR (ca.pem first, then by file name;
// a certificate present in several files, like the CA in server.pem, is listed once).
// Certificates expiring within warn_days give a warning; expired ones an error.
ShowResult show(const std::string& dir, std::time_t now = std::time(nullptr), int warn_days = 30);

// SHA-1 thumbprint of the first certificate of a PEM or DER blob: 40 uppercase hex digits, the
// value `openssl x509 -fingerprint -sha1` prints without colons and Windows shows as Thumbprint.
std::string sha1_thumbprint(std::span<const std::uint8_t> pem_or_der_cert);
// Same for a file (PEM or DER). Throws pki::PkiError naming the file.
std::string sha1_thumbprint_file(const std::string& path);

} // namespace wec::pki

// `wec serve` settings: the TOML file (`--config`), the embedded defaults, and the checks that
// turn a bad file into an error naming the file, line and key. Every key is documented in
// docs/configuration.md.
#pragma once

#include "common/error.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wec::config {

class ConfigError : public wec::Error {
public:
    using wec::Error::Error;
};

// Kerberos: raw Kerberos and SPNEGO(Kerberos). Negotiate: the same plus NTLM (raw NTLMSSP under
// `Negotiate`, and NTLM in SPNEGO) through gss-ntlmssp. Tls: client certificates over HTTPS.
// Basic: user name and password (crypt(3) hashes in basic_users) over HTTPS only; for labs.
enum class AuthKind { Kerberos, Tls, Negotiate, Basic };

struct Listener {
    std::string address; // ADDRESS:PORT (default 0.0.0.0:5985, TLS 0.0.0.0:5986)
    AuthKind auth = AuthKind::Kerberos;
    std::optional<std::uint16_t> public_port; // advertised in NotifyTo (default: the bound port)
    std::string keytab;                       // Kerberos: keytab with HTTP/ and HOST/ keys
    std::vector<std::string> service_names;   // default: HTTP/<hostname>, HOST/<hostname>
    // Negotiate: local NTLM accounts (DOMAIN:USER:PASSWORD lines, not readable by others); empty =
    // domain accounts through winbind. NTLMv1/LM responses are refused unless ntlm_allow_v1.
    std::string ntlm_users;
    bool ntlm_allow_v1 = false;
    // Basic (HTTPS only): USER:HASH lines, HASH a yescrypt or SHA-512 crypt(3) hash; not readable
    // by others.
    std::string basic_users;
    // TLS: server certificate (+chain) and key (PEM), CA bundles that issue client certificates,
    // optional CRLs. Basic needs cert and key too; client certificates are optional there.
    std::string cert;
    std::string key;
    std::vector<std::string> ca;
    std::vector<std::string> crl;
    // Behind a load balancer: every connection starts with a PROXY protocol header (v1 or v2)
    // naming the real source; connections without one are refused.
    bool proxy_protocol = false;
    // SO_REUSEPORT: several `wec serve` processes on one machine share this address and port (each
    // with reuse_port), the kernel spreading new connections over them (docs/serve.md).
    bool reuse_port = false;
};

struct Limits {
    std::size_t max_body_bytes = 512000; // after decryption, and after decompression
    std::size_t max_header_bytes = 16384;
    std::uint32_t idle_timeout_s = 120;
    std::uint32_t read_timeout_s = 60;
    std::size_t max_connections = 20000;
};

struct ServeConfig {
    std::string hostname;  // public host name (default: this host's FQDN)
    std::string node_name; // OpenWEC.Node in JSON output (empty: omitted); {node} in output
                           // templates (empty: the host name)
    std::string db = "sqlite:./var/wec.db";
    std::string log_level = "info";  // debug, info, warn, error
    std::vector<Listener> listeners; // default: one Kerberos listener on 0.0.0.0:5985
    Limits limits;
    std::uint32_t io_threads = 0;     // 0: one per core
    std::uint32_t worker_threads = 0; // 0: four per core, at least 8
    // Where requests are handled: "io" (the I/O thread that read the request; workers stand in
    // for the network while handlers block), "workers" (the worker pool), "auto" (io with a
    // store on this machine, workers with one across the network).
    std::string handler_threads = "auto";
    std::uint32_t heartbeat_flush_s = 5;
    // How long a store operation waits for a lock another process holds before the request
    // gets 503 (the thread handling the request waits that long).
    std::uint32_t store_busy_timeout_ms = 10000;
    // SQLite: bookmark commits (each batch's Ack point) are fsynced at most this often, a
    // client's first one always; 0: every one.
    std::uint32_t bookmark_sync_interval_ms = 1000;
    std::string replay_cache; // MIT rcache for the acceptor (empty: MIT's default)
    // SIGTERM: how long requests in flight may take to finish before their connections are
    // closed (their batches are then not acked: the sources resend them).
    std::uint32_t drain_timeout_s = 30;
    // [metrics] address: ADDRESS:PORT of a plain-HTTP listener for GET /metrics (Prometheus),
    // /healthz and /readyz (docs/metrics.md). Empty: none.
    std::string metrics_address;
};

// Parses a TOML text; errors name `source`, the line and the key. Unknown keys are errors.
ServeConfig parse(std::string_view toml_text, const std::string& source);
ServeConfig load_file(const std::string& path);

// Fills what was left to defaults (hostname, listeners, service names) and checks consistency.
void finalize(ServeConfig& config);

// This machine's fully qualified name (getaddrinfo canonical name, falling back to gethostname).
std::string local_fqdn();

std::string_view to_string(AuthKind kind);
// Kerberos or Negotiate: plain HTTP with message encryption (not TLS).
inline bool uses_gss(AuthKind kind) {
    return kind == AuthKind::Kerberos || kind == AuthKind::Negotiate;
}
// Tls or Basic: HTTPS.
inline bool uses_tls(AuthKind kind) {
    return !uses_gss(kind);
}

} // namespace wec::config

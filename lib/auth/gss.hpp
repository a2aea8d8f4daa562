// Live Kerberos security contexts over MIT GSSAPI: keytab-based acceptor credentials, the
// acceptor (one per TCP connection) and initiator contexts for raw Kerberos and SPNEGO, and the
// WinRM message encryption primitives (seal/unseal of a message into <GSS header><ciphertext>,
// docs/protocol.md section 2).
//
// Thread safety: one context must be used by one thread at a time; AcceptorCredentials may be
// shared by all connections (MIT locks the credential internally). Nothing here touches
// process-global state (no gsskrb5_register_acceptor_identity, no setenv).
#pragma once

#include "common/error.hpp"
#include "common/handle.hpp"

#include <cstdint>
#include <gssapi/gssapi.h>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wec::auth {

class FastContext; // fast_context.hpp

// A failed GSSAPI/krb5 call: the operation plus the major and minor status texts.
class GssError : public wec::Error {
public:
    GssError(std::string operation, OM_uint32 major, OM_uint32 minor, gss_OID mech = GSS_C_NO_OID);
    // For failures detected by our own checks (no GSS status): major = GSS_S_FAILURE, minor = 0.
    GssError(std::string operation, std::string message);

    const std::string& operation() const { return operation_; }
    OM_uint32 major_status() const { return major_; }
    OM_uint32 minor_status() const { return minor_; }

private:
    std::string operation_;
    OM_uint32 major_ = 0;
    OM_uint32 minor_ = 0;
};

// "what (major text; minor text)" for a GSS status pair.
std::string gss_status_text(OM_uint32 major, OM_uint32 minor, gss_OID mech = GSS_C_NO_OID);

// Which GSS mechanism framing a peer speaks: raw krb5 (`Authorization: Kerberos`), SPNEGO
// (`Authorization: Negotiate`, wrapping Kerberos or NTLM) or a raw NTLMSSP token under
// `Authorization: Negotiate` (what Windows sends when it falls back to NTLM).
enum class Mechanism { Kerberos, Spnego, Ntlm };
const char* to_string(Mechanism m);
gss_OID mechanism_oid(Mechanism m);

// ---- small owning handles ---------------------------------------------------------------

// A buffer allocated by GSSAPI (released with gss_release_buffer).
class Buffer {
public:
    Buffer() = default;
    ~Buffer();
    Buffer(Buffer&& other) noexcept : desc_(std::exchange(other.desc_, {0, nullptr})) {}
    Buffer& operator=(Buffer&& other) noexcept;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;

    gss_buffer_t get() { return &desc_; } // for output parameters (must be empty)
    std::span<const std::uint8_t> bytes() const {
        return {static_cast<const std::uint8_t*>(desc_.value), desc_.length};
    }
    std::vector<std::uint8_t> to_vector() const { return {bytes().begin(), bytes().end()}; }
    std::string to_string() const { return {static_cast<const char*>(desc_.value), desc_.length}; }
    void reset();
    // Zeroes the bytes, then releases them (a buffer holding key material).
    void wipe();

private:
    gss_buffer_desc desc_{0, nullptr};
};

// A GSS name (released with gss_release_name).
class Name {
public:
    Name() = default;
    explicit Name(gss_name_t adopt) : name_(adopt) {}
    ~Name();
    Name(Name&& other) noexcept : name_(std::exchange(other.name_, GSS_C_NO_NAME)) {}
    Name& operator=(Name&& other) noexcept;
    Name(const Name&) = delete;
    Name& operator=(const Name&) = delete;

    // "HTTP@srv.windomain.local" (GSS_C_NT_HOSTBASED_SERVICE).
    static Name hostbased(std::string_view service_at_host);
    // "HTTP/srv.windomain.local" or "WIN10$@WINDOMAIN.LOCAL" (GSS_KRB5_NT_PRINCIPAL_NAME;
    // without a realm the default realm applies).
    static Name krb5_principal(std::string_view principal);
    // Hostbased when the text is "service@host" without '/', otherwise a krb5 principal.
    static Name parse(std::string_view text);

    gss_name_t get() const { return name_; }
    gss_name_t* out();
    bool empty() const { return name_ == GSS_C_NO_NAME; }
    // gss_display_name text, e.g. "WIN10$@WINDOMAIN.LOCAL".
    std::string to_string() const;
    // The krb5 principal after gss_canonicalize_name, e.g. "HTTP/srv.windomain.local@REALM".
    std::string canonical_krb5() const;

private:
    gss_name_t name_ = GSS_C_NO_NAME;
};

// A GSS credential (released with gss_release_cred).
class Credential {
public:
    Credential() = default;
    explicit Credential(gss_cred_id_t adopt) : cred_(adopt) {}
    ~Credential();
    Credential(Credential&& other) noexcept
        : cred_(std::exchange(other.cred_, GSS_C_NO_CREDENTIAL)) {}
    Credential& operator=(Credential&& other) noexcept;
    Credential(const Credential&) = delete;
    Credential& operator=(const Credential&) = delete;

    gss_cred_id_t get() const { return cred_; }
    gss_cred_id_t* out();

private:
    gss_cred_id_t cred_ = GSS_C_NO_CREDENTIAL;
};

// A GSS security context (released with gss_delete_sec_context).
class ContextHandle {
public:
    ContextHandle() = default;
    ~ContextHandle();
    ContextHandle(ContextHandle&& other) noexcept
        : ctx_(std::exchange(other.ctx_, GSS_C_NO_CONTEXT)) {}
    ContextHandle& operator=(ContextHandle&& other) noexcept;
    ContextHandle(const ContextHandle&) = delete;
    ContextHandle& operator=(const ContextHandle&) = delete;

    gss_ctx_id_t get() const { return ctx_; }
    gss_ctx_id_t* inout() { return &ctx_; }
    void reset();

private:
    gss_ctx_id_t ctx_ = GSS_C_NO_CONTEXT;
};

// ---- keytabs and acceptor credentials ---------------------------------------------------

struct KeytabEntry {
    std::string principal; // "HTTP/srv.windomain.local@WINDOMAIN.LOCAL"
    unsigned kvno = 0;
    std::string enctype; // "aes256-cts-hmac-sha1-96"
};

// Every entry of a keytab (krb5_kt_start_seq_get). Throws GssError naming the file.
std::vector<KeytabEntry> keytab_entries(const std::string& path);
// The distinct principals of a keytab, in file order (for the startup summary).
std::vector<std::string> keytab_principals(const std::string& path);

// Acceptor credentials from a keytab file, via gss_acquire_cred_from (per credential, no
// process-global keytab). Cheap to copy (shared handle); share one across all connections.
// Only the keytab's name is kept: MIT opens the FILE keytab again for each accepted context, so a
// keytab replaced (renamed over, rewritten, or appended to by ktadd) while running is used from
// the next accept on (tests/integration/serve_faults_test.cpp holds this).
class AcceptorCredentials {
public:
    // `service_names`: the SPNs a client may use, e.g. {"HTTP/srv.example.org",
    // "HOST/srv.example.org"} (a missing realm means the default realm; "HTTP@host" also works).
    // Each must have a key in the keytab (checked here). Empty = any key in the keytab.
    // `rcache`: the replay cache (MIT cred store "rcache" element, e.g. "file2:/var/lib/wec/rc");
    // empty = MIT's default ("dfl": $KRB5RCACHEDIR or /var/tmp, per effective uid).
    // Throws GssError when the keytab cannot be used.
    static AcceptorCredentials from_keytab(const std::string& keytab_path,
                                           std::vector<std::string> service_names = {},
                                           const std::string& rcache = {});

    gss_cred_id_t get() const;
    const std::string& keytab_path() const;
    // Canonical allowed principals ("HTTP/srv.example.org@REALM"); empty = any.
    const std::vector<std::string>& allowed_principals() const;

private:
    struct State;
    std::shared_ptr<const State> state_;
};

// NTLM acceptor credentials of a Negotiate listener, through gss-ntlmssp (the MIT GSSAPI
// mechanism module): one credential for raw NTLMSSP tokens and one for SPNEGO restricted to NTLM.
// The users file reaches gss-ntlmssp through the credential store ("ntlmssp_keyfile"), per
// credential: no NTLM_USER_FILE environment variable, so listeners do not share it. Without a
// users file gss-ntlmssp asks winbind (a domain member: NTLM pass-through to the DC).
struct NtlmAcceptorSettings {
    std::string users_file; // DOMAIN:USER:PASSWORD lines; empty = winbind
    std::string hostname;   // our host name (the NetBIOS names in the CHALLENGE derive from it)
    bool allow_v1 = false;  // accept NTLMv1/LM responses (refused by default)
};

class NtlmAcceptor {
public:
    // Checks the users file (auth/ntlm.hpp) and acquires both credentials. Throws GssError or
    // NtlmError.
    static std::shared_ptr<const NtlmAcceptor> create(NtlmAcceptorSettings settings);

    gss_cred_id_t raw() const { return raw_.get(); }
    gss_cred_id_t spnego() const { return spnego_.get(); }
    const NtlmAcceptorSettings& settings() const { return settings_; }

private:
    NtlmAcceptorSettings settings_;
    // What gss-ntlmssp reads for each AUTHENTICATE: the users file's accounts with NT hashes
    // (ntlm_users_as_smbpasswd), in a memfd named by its /proc/self/fd path; the users file
    // itself when NTLMv1/LM is allowed (its LM hashes come from the passwords).
    UniqueFd keys_fd_;
    std::string keyfile_;
    Credential raw_;
    Credential spnego_;
};

// ---- security contexts ------------------------------------------------------------------

struct StepResult {
    enum class Status { Complete, ContinueNeeded, Failed };
    Status status = Status::Failed;
    // The token to send to the peer (AP-REP or SPNEGO response; for the initiator the AP-REQ).
    // May be non-empty also when Failed (a SPNEGO reject or KRB-ERROR token).
    std::vector<std::uint8_t> output;
    // On Failed: what failed, with the GSS status texts.
    std::optional<GssError> error;

    bool complete() const { return status == Status::Complete; }
    bool failed() const { return status == Status::Failed; }
};

// What seal/unseal need: an established context. Base of ServerContext and ClientContext.
class SecurityContext {
public:
    virtual ~SecurityContext() = default;
    SecurityContext(SecurityContext&&) = default;
    SecurityContext& operator=(SecurityContext&&) = default;

    bool established() const { return established_; }
    // MIT's context; a parked one (below) is imported again first. Throws GssError when that
    // fails.
    gss_ctx_id_t handle();
    // Whether MIT's context is parked: once the fast path (fast_path()) has a context's keys, it
    // seals everything and unseals every token in WinRM's layout, so MIT's context, which stays
    // the judge of any other token, is kept exported (gss_export_sec_context, with its keys
    // zeroed when released) instead of live (its own krb5_context, key schedules and
    // authorization data: several KB per idle connection). The first token left to MIT imports
    // it again, for good.
    bool parked() const { return !parked_.bytes().empty(); }
    // The framing negotiated on the wire (Kerberos, SPNEGO or raw NTLMSSP).
    Mechanism mechanism() const { return mechanism_; }
    // The mechanism that authenticated (NTLM also when wrapped in SPNEGO): message encryption
    // then goes through gss_wrap/gss_unwrap (signature(16) || sealed), not the Kerberos IOVs.
    bool ntlm() const { return ntlm_; }
    // "NTLM" or "Kerberos" (for logs and metadata).
    const char* mechanism_name() const { return ntlm_ ? "NTLM" : "Kerberos"; }
    // The GSS context flags (GSS_C_CONF_FLAG, GSS_C_MUTUAL_FLAG, ...) once established.
    OM_uint32 flags() const { return flags_; }

    // Replay protection of unsealed messages, whatever the peer asked of GSSAPI: the sequence
    // number of each RFC 4121 wrap token must exceed the previous one on this context (a replayed,
    // reordered or too-old message is refused). Throws GssError; advances on success.
    void advance_peer_sequence(std::uint64_t sequence);

    // The OpenSSL path of seal/unseal for this context (fast_context.hpp), set up on first use
    // once established; null when MIT does the work (not Kerberos, WEC_KRB_CRYPTO=mit, ...).
    FastContext* fast_path();

protected:
    SecurityContext() = default;
    // A GSS buffer of key material (an exported context): zeroed before it is released.
    class SecretBuffer {
    public:
        SecretBuffer() = default;
        ~SecretBuffer() { buffer_.wipe(); }
        SecretBuffer(SecretBuffer&& other) noexcept = default;
        SecretBuffer& operator=(SecretBuffer&& other) noexcept {
            if (this != &other) {
                buffer_.wipe();
                buffer_ = std::move(other.buffer_);
            }
            return *this;
        }
        gss_buffer_t get() { return buffer_.get(); }
        std::span<const std::uint8_t> bytes() const { return buffer_.bytes(); }
        void wipe() { buffer_.wipe(); }

    private:
        Buffer buffer_;
    };
    ContextHandle ctx_;
    SecretBuffer parked_; // MIT's context, exported (ctx_ is then empty)
    bool established_ = false;
    Mechanism mechanism_ = Mechanism::Kerberos;
    bool ntlm_ = false;
    OM_uint32 flags_ = 0;
    std::optional<std::uint64_t> last_peer_sequence_;
    std::shared_ptr<FastContext> fast_;
    bool fast_checked_ = false;
};

// Acceptor side, one per TCP connection.
class ServerContext : public SecurityContext {
public:
    explicit ServerContext(AcceptorCredentials credentials);
    // A Negotiate listener: Kerberos (when `kerberos` is set) and NTLM (when `ntlm` is set). The
    // first token picks the credential: a raw NTLMSSP token or a SPNEGO NegTokenInit preferring
    // NTLM goes to gss-ntlmssp, anything else to Kerberos. Throws GssError when neither is set.
    ServerContext(std::optional<AcceptorCredentials> kerberos,
                  std::shared_ptr<const NtlmAcceptor> ntlm);

    // Feeds one token from the client (the base64-decoded Authorization value). Never throws
    // for bad or unauthorised tokens: returns Failed with the error. A context that failed or
    // completed cannot be stepped again (returns Failed).
    StepResult step(std::span<const std::uint8_t> token);

    // Initiator principal, e.g. "WIN10$@WINDOMAIN.LOCAL", or for NTLM "DOMAIN\\USER" (a client
    // that sent no domain gets the users file's) (after Complete).
    const std::string& client_name() const { return client_name_; }
    // The service principal the client's ticket was for, e.g. "HTTP/srv.windomain.local@REALM".
    const std::string& service_name() const { return service_name_; }
    // The actual mechanism OID ("1.2.840.113554.1.2.2" for krb5), after Complete.
    const std::string& mech_oid() const { return mech_oid_; }

private:
    std::optional<AcceptorCredentials> credentials_;
    std::shared_ptr<const NtlmAcceptor> ntlm_acceptor_;
    gss_cred_id_t chosen_ = GSS_C_NO_CREDENTIAL; // the credential the first token picked
    bool failed_ = false;
    bool started_ = false;
    std::string client_name_;
    std::string service_name_;
    std::string mech_oid_;
};

struct ClientOptions {
    // "HTTP@srv.windomain.local" (hostbased) or "HTTP/srv.windomain.local[@REALM]" (principal).
    std::string target;
    Mechanism mechanism = Mechanism::Kerberos;
    // Credential cache, e.g. "FILE:/tmp/cc"; empty = the default ccache.
    std::string ccache;
    // NTLM through gss-ntlmssp (with mechanism Ntlm: raw NTLMSSP; with Spnego: SPNEGO offering
    // NTLM only): the account, "DOMAIN\\USER" or "USER", and its password (given per credential
    // through the credential store). Empty: Kerberos from `ccache`.
    std::string ntlm_user{};
    std::string ntlm_password{};
    // Mutual authentication, confidentiality, integrity, replay + sequence detection.
    OM_uint32 flags = GSS_C_MUTUAL_FLAG | GSS_C_CONF_FLAG | GSS_C_INTEG_FLAG | GSS_C_REPLAY_FLAG |
                      GSS_C_SEQUENCE_FLAG;
};

// Initiator side (the basis of the Windows-source emulator).
class ClientContext : public SecurityContext {
public:
    // Acquires the credentials (from options.ccache) and imports the target name.
    // Throws GssError.
    explicit ClientContext(ClientOptions options);

    // First call with an empty input gives the initial token (AP-REQ or SPNEGO NegTokenInit);
    // then feed the server's reply (AP-REP) until Complete. Throws GssError on failure
    // (including a failed mutual authentication).
    StepResult step(std::span<const std::uint8_t> input = {});

    const ClientOptions& options() const { return options_; }

private:
    ClientOptions options_;
    Credential cred_;
    Name target_;
};

// ---- WinRM message encryption -----------------------------------------------------------

struct Sealed {
    std::vector<std::uint8_t> header;     // the GSS wrap token header (L bytes; 60 for AES)
    std::vector<std::uint8_t> ciphertext; // same length as the plaintext for AES
};

// gss_wrap_iov over [HEADER, DATA, PADDING] with confidentiality (no TRAILER: the RRC rotation
// moves the checksum into the header, as Windows does). Throws GssError.
Sealed seal(SecurityContext& ctx, std::span<const std::uint8_t> plaintext);
// The same, appended to `out` in WinRM's layout (MS-WSMV 2.2.9.1.1): the header's length (32-bit
// little-endian), the header, the ciphertext. On the OpenSSL fast path the plaintext is encrypted
// straight into `out` (no intermediate copies); `plaintext` must not point into `out`.
void seal_append(SecurityContext& ctx, std::span<const std::uint8_t> plaintext,
                 std::vector<std::uint8_t>& out);

// gss_unwrap_iov over [HEADER, DATA]. Rejects tokens without confidentiality and replayed
// tokens (when the initiator asked for replay detection). Throws GssError.
std::vector<std::uint8_t> unseal(SecurityContext& ctx, std::span<const std::uint8_t> header,
                                 std::span<const std::uint8_t> ciphertext);
// Same, decrypting `data` in place (the header copy is modified too: pass a scratch copy).
void unseal_in_place(SecurityContext& ctx, std::span<std::uint8_t> header,
                     std::span<std::uint8_t> data);

} // namespace wec::auth

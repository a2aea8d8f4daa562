// MIT GSSAPI wrappers: handles, errors, acceptor credentials, contexts, WinRM seal/unseal.
#include "auth/gss.hpp"

#include "auth/fast_context.hpp"
#include "auth/ntlm.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <sys/mman.h>
#include <unistd.h>

namespace wec::auth {
namespace {

// 1.3.6.1.5.5.2
gss_OID_desc spnego_oid_desc = {6, const_cast<char*>("\x2b\x06\x01\x05\x05\x02")};
// 1.3.6.1.4.1.311.2.2.10 (NTLMSSP, provided by gss-ntlmssp)
constexpr std::size_t kNtlmSignatureSize = 16;
gss_OID_desc ntlm_oid_desc = {static_cast<OM_uint32>(kNtlmOidDer.size()),
                              const_cast<char*>(kNtlmOidDer.data())};

std::string display_status_kind(OM_uint32 code, int type, gss_OID mech) {
    std::string out;
    OM_uint32 context = 0;
    do {
        OM_uint32 minor = 0;
        gss_buffer_desc text{0, nullptr};
        OM_uint32 major = gss_display_status(&minor, code, type, mech, &context, &text);
        if (GSS_ERROR(major)) break;
        if (!out.empty()) out += "; ";
        out.append(static_cast<const char*>(text.value), text.length);
        gss_release_buffer(&minor, &text);
    } while (context != 0);
    return out;
}

std::string oid_to_string(gss_OID oid) {
    if (oid == GSS_C_NO_OID) return {};
    OM_uint32 minor = 0;
    Buffer text;
    if (GSS_ERROR(gss_oid_to_str(&minor, oid, text.get()))) return {};
    std::string s = text.to_string();
    // MIT renders "{ 1 2 840 113554 1 2 2 }"; use the dotted form.
    std::string dotted;
    for (char c : s) {
        if (c == '{' || c == '}' || c == '\0') continue;
        if (c == ' ') {
            if (!dotted.empty() && dotted.back() != '.') dotted += '.';
            continue;
        }
        dotted += c;
    }
    while (!dotted.empty() && dotted.back() == '.')
        dotted.pop_back();
    return dotted;
}

// The mechanism OID of an InitialContextToken (RFC 2743 3.1): 0x60 len 0x06 oidlen oid ...
std::optional<Mechanism> initial_token_mechanism(std::span<const std::uint8_t> t) {
    if (t.size() < 2 || t[0] != 0x60) return std::nullopt;
    size_t pos = 1;
    if (t[pos] & 0x80) {
        size_t n = t[pos] & 0x7f;
        if (n == 0 || n > 4) return std::nullopt;
        pos += 1 + n;
    } else {
        pos += 1;
    }
    if (pos + 2 > t.size() || t[pos] != 0x06) return std::nullopt;
    size_t oid_len = t[pos + 1];
    pos += 2;
    if (oid_len > 0x7f || pos + oid_len > t.size()) return std::nullopt;
    auto oid = t.subspan(pos, oid_len);
    auto equals = [&](gss_OID o) {
        return o->length == oid.size() && std::memcmp(o->elements, oid.data(), oid.size()) == 0;
    };
    if (equals(&spnego_oid_desc)) return Mechanism::Spnego;
    if (equals(const_cast<gss_OID>(gss_mech_krb5)) ||
        equals(const_cast<gss_OID>(gss_mech_krb5_wrong)))
        return Mechanism::Kerberos;
    return std::nullopt;
}

gss_buffer_desc input_buffer(std::span<const std::uint8_t> bytes) {
    return {bytes.size(), const_cast<std::uint8_t*>(bytes.data())};
}

} // namespace

// ---- errors ------------------------------------------------------------------------------

std::string gss_status_text(OM_uint32 major, OM_uint32 minor, gss_OID mech) {
    std::string text = display_status_kind(major, GSS_C_GSS_CODE, mech);
    if (minor != 0) {
        std::string m = display_status_kind(minor, GSS_C_MECH_CODE, mech);
        // "Unspecified GSS failure. Minor code may provide more information": say just the minor.
        if (!m.empty())
            text = GSS_ROUTINE_ERROR(major) == GSS_S_FAILURE ? m : text + " (" + m + ")";
    }
    if (text.empty()) text = "major " + std::to_string(major) + ", minor " + std::to_string(minor);
    return text;
}

GssError::GssError(std::string operation, OM_uint32 major, OM_uint32 minor, gss_OID mech)
    : wec::Error(operation + " failed: " + gss_status_text(major, minor, mech)),
      operation_(std::move(operation)), major_(major), minor_(minor) {}

GssError::GssError(std::string operation, std::string message)
    : wec::Error(operation + " failed: " + message), operation_(std::move(operation)),
      major_(GSS_S_FAILURE), minor_(0) {}

const char* to_string(Mechanism m) {
    return m == Mechanism::Spnego ? "SPNEGO" : m == Mechanism::Ntlm ? "NTLM" : "Kerberos";
}

gss_OID mechanism_oid(Mechanism m) {
    if (m == Mechanism::Ntlm) return &ntlm_oid_desc;
    return m == Mechanism::Spnego ? &spnego_oid_desc : const_cast<gss_OID>(gss_mech_krb5);
}

// ---- handles -----------------------------------------------------------------------------

Buffer::~Buffer() {
    reset();
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
    if (this != &other) {
        reset();
        desc_ = std::exchange(other.desc_, {0, nullptr});
    }
    return *this;
}

void Buffer::wipe() {
    if (desc_.value != nullptr) ::explicit_bzero(desc_.value, desc_.length);
    reset();
}

void Buffer::reset() {
    if (desc_.value != nullptr) {
        OM_uint32 minor = 0;
        gss_release_buffer(&minor, &desc_);
    }
    desc_ = {0, nullptr};
}

Name::~Name() {
    if (name_ != GSS_C_NO_NAME) {
        OM_uint32 minor = 0;
        gss_release_name(&minor, &name_);
    }
}

Name& Name::operator=(Name&& other) noexcept {
    if (this != &other) {
        Name old(std::exchange(name_, std::exchange(other.name_, GSS_C_NO_NAME)));
    }
    return *this;
}

gss_name_t* Name::out() {
    *this = Name();
    return &name_;
}

static Name import_name(std::string_view text, gss_OID type) {
    Name name;
    OM_uint32 minor = 0;
    gss_buffer_desc buf{text.size(), const_cast<char*>(text.data())};
    OM_uint32 major = gss_import_name(&minor, &buf, type, name.out());
    if (GSS_ERROR(major))
        throw GssError("gss_import_name(\"" + std::string(text) + "\")", major, minor);
    return name;
}

Name Name::hostbased(std::string_view service_at_host) {
    return import_name(service_at_host, GSS_C_NT_HOSTBASED_SERVICE);
}

Name Name::krb5_principal(std::string_view principal) {
    return import_name(principal, const_cast<gss_OID>(GSS_KRB5_NT_PRINCIPAL_NAME));
}

Name Name::parse(std::string_view text) {
    if (text.find('@') != std::string_view::npos && text.find('/') == std::string_view::npos)
        return hostbased(text);
    return krb5_principal(text);
}

std::string Name::to_string() const {
    if (name_ == GSS_C_NO_NAME) return {};
    OM_uint32 minor = 0;
    Buffer text;
    OM_uint32 major = gss_display_name(&minor, name_, text.get(), nullptr);
    if (GSS_ERROR(major)) throw GssError("gss_display_name", major, minor);
    auto out = text.to_string();
    // gss-ntlmssp counts the terminating NUL in the length.
    while (!out.empty() && out.back() == '\0')
        out.pop_back();
    return out;
}

std::string Name::canonical_krb5() const {
    OM_uint32 minor = 0;
    Name canon;
    OM_uint32 major =
        gss_canonicalize_name(&minor, name_, const_cast<gss_OID>(gss_mech_krb5), canon.out());
    if (GSS_ERROR(major)) throw GssError("gss_canonicalize_name", major, minor);
    return canon.to_string();
}

Credential::~Credential() {
    if (cred_ != GSS_C_NO_CREDENTIAL) {
        OM_uint32 minor = 0;
        gss_release_cred(&minor, &cred_);
    }
}

Credential& Credential::operator=(Credential&& other) noexcept {
    if (this != &other) {
        Credential old(std::exchange(cred_, std::exchange(other.cred_, GSS_C_NO_CREDENTIAL)));
    }
    return *this;
}

gss_cred_id_t* Credential::out() {
    *this = Credential();
    return &cred_;
}

ContextHandle::~ContextHandle() {
    reset();
}

ContextHandle& ContextHandle::operator=(ContextHandle&& other) noexcept {
    if (this != &other) {
        reset();
        ctx_ = std::exchange(other.ctx_, GSS_C_NO_CONTEXT);
    }
    return *this;
}

void ContextHandle::reset() {
    if (ctx_ != GSS_C_NO_CONTEXT) {
        OM_uint32 minor = 0;
        gss_delete_sec_context(&minor, &ctx_, GSS_C_NO_BUFFER);
    }
    ctx_ = GSS_C_NO_CONTEXT;
}

// ---- acceptor credentials ----------------------------------------------------------------

struct AcceptorCredentials::State {
    Credential cred;
    std::string keytab;
    std::vector<std::string> allowed;
};

AcceptorCredentials AcceptorCredentials::from_keytab(const std::string& keytab_path,
                                                     std::vector<std::string> service_names,
                                                     const std::string& rcache) {
    std::string op = "acceptor credentials from keytab " + keytab_path;
    auto principals = keytab_principals(keytab_path); // throws when unreadable
    if (principals.empty()) throw GssError(op, "the keytab holds no keys");

    auto state = std::make_shared<State>();
    state->keytab = keytab_path;
    for (std::string name : service_names) {
        // "HTTP@host" (hostbased form) -> "HTTP/host".
        if (name.find('/') == std::string::npos) {
            auto at = name.find('@');
            if (at == std::string::npos)
                throw GssError(op, "service name '" + name + "' is neither svc/host nor svc@host");
            name[at] = '/';
        }
        std::vector<std::string> matches;
        bool has_realm = name.find('@') != std::string::npos;
        for (const auto& p : principals) {
            if (has_realm ? p == name : p.rfind(name + "@", 0) == 0) matches.push_back(p);
        }
        if (matches.empty()) {
            std::string list;
            for (const auto& p : principals)
                list += (list.empty() ? "" : ", ") + p;
            throw GssError(op, "no key for " + name + " (the keytab holds: " + list + ")");
        }
        for (auto& m : matches)
            if (std::find(state->allowed.begin(), state->allowed.end(), m) == state->allowed.end())
                state->allowed.push_back(m);
    }

    std::string keytab_value =
        keytab_path.find(':') == std::string::npos ? "FILE:" + keytab_path : keytab_path;
    std::vector<gss_key_value_element_desc> elements;
    elements.push_back({"keytab", keytab_value.c_str()});
    if (!rcache.empty()) elements.push_back({"rcache", rcache.c_str()});
    gss_key_value_set_desc store{static_cast<OM_uint32>(elements.size()), elements.data()};

    // krb5 under its standard OID and under Microsoft's (1.2.840.48018.1.2.2, which Windows
    // puts in raw tokens and SPNEGO lists), plus SPNEGO (which offers these krb5 mechs).
    gss_OID_desc mech_elements[3] = {*gss_mech_krb5, *gss_mech_krb5_wrong, spnego_oid_desc};
    gss_OID_set_desc mechs{3, mech_elements};
    OM_uint32 minor = 0;
    OM_uint32 major =
        gss_acquire_cred_from(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, &mechs, GSS_C_ACCEPT, &store,
                              state->cred.out(), nullptr, nullptr);
    if (GSS_ERROR(major))
        throw GssError("gss_acquire_cred_from(" + keytab_value + ")", major, minor);

    AcceptorCredentials creds;
    creds.state_ = std::move(state);
    return creds;
}

gss_cred_id_t AcceptorCredentials::get() const {
    return state_ ? state_->cred.get() : GSS_C_NO_CREDENTIAL;
}

const std::string& AcceptorCredentials::keytab_path() const {
    static const std::string empty;
    return state_ ? state_->keytab : empty;
}

const std::vector<std::string>& AcceptorCredentials::allowed_principals() const {
    static const std::vector<std::string> empty;
    return state_ ? state_->allowed : empty;
}

// ---- NTLM acceptor credentials -----------------------------------------------------------

namespace {

// The accounts with NT hashes in an anonymous memory file (never on disk), or an empty
// descriptor when the kernel has no memfd_create.
UniqueFd hashed_users_memfd(const std::string& users_file) {
    UniqueFd fd(::memfd_create("wec-ntlm-users", MFD_CLOEXEC));
    if (!fd) return fd;
    auto content = ntlm_users_as_smbpasswd(users_file);
    for (std::size_t done = 0; done < content.size();) {
        auto n = ::write(fd.get(), content.data() + done, content.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            throw NtlmError("NTLM users file " + users_file +
                            ": cannot write its hashed form: " + std::strerror(errno));
        done += static_cast<std::size_t>(n);
    }
    return fd;
}

} // namespace

std::shared_ptr<const NtlmAcceptor> NtlmAcceptor::create(NtlmAcceptorSettings settings) {
    auto acceptor = std::make_shared<NtlmAcceptor>();
    if (!settings.users_file.empty()) {
        check_ntlm_users_file(settings.users_file);
        acceptor->keyfile_ = settings.users_file;
        if (!settings.allow_v1) {
            acceptor->keys_fd_ = hashed_users_memfd(settings.users_file);
            if (acceptor->keys_fd_)
                acceptor->keyfile_ = "/proc/self/fd/" + std::to_string(acceptor->keys_fd_.get());
        }
    }
    // Our own (server) name: gss-ntlmssp takes the NetBIOS computer name from its host part.
    Name self = Name::hostbased(
        "HTTP@" + (settings.hostname.empty() ? std::string("localhost") : settings.hostname));
    gss_key_value_element_desc element{"ntlmssp_keyfile", acceptor->keyfile_.c_str()};
    gss_key_value_set_desc store{1, &element};
    gss_const_key_value_set_t cred_store =
        settings.users_file.empty() ? GSS_C_NO_CRED_STORE : &store;
    auto acquire = [&](gss_OID mech, Credential& out) {
        gss_OID_set_desc mechs{1, mech};
        OM_uint32 minor = 0;
        OM_uint32 major =
            gss_acquire_cred_from(&minor, self.get(), GSS_C_INDEFINITE, &mechs, GSS_C_ACCEPT,
                                  cred_store, out.out(), nullptr, nullptr);
        if (GSS_ERROR(major))
            throw GssError(
                std::string("gss_acquire_cred_from(") + to_string(Mechanism::Ntlm) +
                    (settings.users_file.empty() ? ", winbind" : ", " + settings.users_file) +
                    ") (is gss-ntlmssp installed?)",
                major, minor);
    };
    acquire(&ntlm_oid_desc, acceptor->raw_);
    acquire(&spnego_oid_desc, acceptor->spnego_);
    // SPNEGO with this credential offers NTLM only (Kerberos has its own credential).
    gss_OID_set_desc neg{1, &ntlm_oid_desc};
    OM_uint32 minor = 0;
    OM_uint32 major = gss_set_neg_mechs(&minor, acceptor->spnego_.get(), &neg);
    if (GSS_ERROR(major)) throw GssError("gss_set_neg_mechs(NTLM)", major, minor);
    acceptor->settings_ = std::move(settings);
    return acceptor;
}

// ---- acceptor context --------------------------------------------------------------------

ServerContext::ServerContext(AcceptorCredentials credentials)
    : credentials_(std::move(credentials)) {
    if (credentials_->get() == GSS_C_NO_CREDENTIAL)
        throw GssError("ServerContext", "no acceptor credentials");
}

ServerContext::ServerContext(std::optional<AcceptorCredentials> kerberos,
                             std::shared_ptr<const NtlmAcceptor> ntlm)
    : credentials_(std::move(kerberos)), ntlm_acceptor_(std::move(ntlm)) {
    if ((!credentials_ || credentials_->get() == GSS_C_NO_CREDENTIAL) && !ntlm_acceptor_)
        throw GssError("ServerContext", "no acceptor credentials");
}

StepResult ServerContext::step(std::span<const std::uint8_t> token) {
    StepResult result;
    auto fail = [&](GssError error) {
        failed_ = true;
        result.status = StepResult::Status::Failed;
        result.error = std::move(error);
        return result;
    };
    if (failed_) return fail(GssError("gss_accept_sec_context", "the context already failed"));
    if (established_)
        return fail(GssError("gss_accept_sec_context", "the context is already established"));
    if (token.empty()) return fail(GssError("gss_accept_sec_context", "empty token"));
    if (!started_) {
        started_ = true;
        if (is_ntlmssp(token)) {
            mechanism_ = Mechanism::Ntlm;
            ntlm_ = true;
        } else {
            mechanism_ = initial_token_mechanism(token).value_or(Mechanism::Kerberos);
            ntlm_ = mechanism_ == Mechanism::Spnego && spnego_prefers_ntlm(token);
        }
        if (ntlm_ && !ntlm_acceptor_)
            return fail(GssError("gss_accept_sec_context", "NTLM is not enabled on this listener "
                                                           "(auth = \"negotiate\")"));
        if (!ntlm_ && (!credentials_ || credentials_->get() == GSS_C_NO_CREDENTIAL))
            return fail(GssError("gss_accept_sec_context",
                                 "Kerberos is not configured on this listener (no keytab)"));
        chosen_ = ntlm_ ? (mechanism_ == Mechanism::Ntlm ? ntlm_acceptor_->raw()
                                                         : ntlm_acceptor_->spnego())
                        : credentials_->get();
    }
    std::string ntlm_account; // "DOMAIN\\USER" of an AUTHENTICATE, for error messages
    if (ntlm_) {
        // Our policy on top of gss-ntlmssp: NTLMv2 only unless allowed, no anonymous logon.
        try {
            if (auto m = find_ntlm_message(token); m && m->type == 3) {
                ntlm_account = m->domain + "\\" + m->user;
                check_authenticate_policy(*m, ntlm_acceptor_->settings().allow_v1);
            }
        } catch (const NtlmError& e) {
            return fail(GssError("gss_accept_sec_context", e.what()));
        }
    }

    OM_uint32 minor = 0;
    gss_buffer_desc input = input_buffer(token);
    Name source;
    gss_OID mech = GSS_C_NO_OID;
    Buffer output;
    OM_uint32 ret_flags = 0;
    OM_uint32 major =
        gss_accept_sec_context(&minor, ctx_.inout(), chosen_, &input, GSS_C_NO_CHANNEL_BINDINGS,
                               source.out(), &mech, output.get(), &ret_flags, nullptr, nullptr);
    result.output = output.to_vector();
    if (GSS_ERROR(major)) {
        if (!ntlm_account.empty())
            return fail(GssError("NTLM authentication of " + ntlm_account +
                                     " (wrong password, unknown account or domain, or an "
                                     "AUTHENTICATE without its CHALLENGE)",
                                 major, minor, mech));
        return fail(GssError("gss_accept_sec_context", major, minor, mech));
    }
    if (major & GSS_S_CONTINUE_NEEDED) {
        result.status = StepResult::Status::ContinueNeeded;
        return result;
    }

    try {
        client_name_ = source.to_string();
        mech_oid_ = oid_to_string(mech);
        Name target;
        OM_uint32 ctx_flags = 0;
        major = gss_inquire_context(&minor, ctx_.get(), nullptr, target.out(), nullptr, nullptr,
                                    &ctx_flags, nullptr, nullptr);
        if (GSS_ERROR(major)) throw GssError("gss_inquire_context", major, minor);
        flags_ = ctx_flags | ret_flags;
        if (mech != GSS_C_NO_OID && mech->length == ntlm_oid_desc.length &&
            std::memcmp(mech->elements, ntlm_oid_desc.elements, mech->length) == 0)
            ntlm_ = true;
        if (ntlm_) {
            // gss-ntlmssp names the client "DOMAIN\\USER"; without a domain, "\\USER": the
            // users file's domain for that account.
            if (!client_name_.empty() && client_name_[0] == '\\' && ntlm_acceptor_ &&
                !ntlm_acceptor_->settings().users_file.empty()) {
                auto domain = ntlm_users_file_domain(ntlm_acceptor_->settings().users_file,
                                                     client_name_.substr(1));
                client_name_ = domain + client_name_;
            }
            established_ = true;
            result.status = StepResult::Status::Complete;
            return result;
        }
        service_name_ = target.to_string();
        const auto& allowed = credentials_->allowed_principals();
        if (!allowed.empty() &&
            std::find(allowed.begin(), allowed.end(), service_name_) == allowed.end()) {
            result.output.clear();
            throw GssError("gss_accept_sec_context", "the ticket is for " + service_name_ +
                                                         ", which is not an allowed service");
        }
    } catch (GssError& e) {
        return fail(std::move(e));
    }
    established_ = true;
    result.status = StepResult::Status::Complete;
    return result;
}

// ---- initiator context -------------------------------------------------------------------

ClientContext::ClientContext(ClientOptions options) : options_(std::move(options)) {
    mechanism_ = options_.mechanism;
    if (options_.target.empty()) throw GssError("ClientContext", "no target service name");
    target_ = Name::parse(options_.target);
    if (!options_.ntlm_user.empty() || mechanism_ == Mechanism::Ntlm) {
        if (options_.ntlm_user.empty())
            throw GssError("ClientContext", "NTLM needs an account (DOMAIN\\USER and password)");
        ntlm_ = true;
        auto slash = options_.ntlm_user.find('\\');
        std::string domain =
            slash == std::string::npos ? std::string() : options_.ntlm_user.substr(0, slash);
        Name user = import_name(options_.ntlm_user, GSS_C_NT_USER_NAME);
        std::vector<gss_key_value_element_desc> elements{
            {"ntlmssp_password", options_.ntlm_password.c_str()}};
        if (!domain.empty()) elements.push_back({"ntlmssp_domain", domain.c_str()});
        gss_key_value_set_desc store{static_cast<OM_uint32>(elements.size()), elements.data()};
        gss_OID_desc mech_element =
            *mechanism_oid(mechanism_ == Mechanism::Spnego ? Mechanism::Spnego : Mechanism::Ntlm);
        gss_OID_set_desc mechs{1, &mech_element};
        OM_uint32 minor = 0;
        OM_uint32 major =
            gss_acquire_cred_from(&minor, user.get(), GSS_C_INDEFINITE, &mechs, GSS_C_INITIATE,
                                  &store, cred_.out(), nullptr, nullptr);
        if (GSS_ERROR(major))
            throw GssError("gss_acquire_cred_from(NTLM " + options_.ntlm_user + ")", major, minor);
        if (mechanism_ == Mechanism::Spnego) {
            gss_OID_set_desc neg{1, &ntlm_oid_desc};
            major = gss_set_neg_mechs(&minor, cred_.get(), &neg);
            if (GSS_ERROR(major)) throw GssError("gss_set_neg_mechs(NTLM)", major, minor);
        } else {
            mechanism_ = Mechanism::Ntlm;
        }
        // NTLM has no mutual authentication.
        options_.flags &= ~static_cast<OM_uint32>(GSS_C_MUTUAL_FLAG);
    } else if (!options_.ccache.empty()) {
        gss_key_value_element_desc element{"ccache", options_.ccache.c_str()};
        gss_key_value_set_desc store{1, &element};
        gss_OID_desc mech_element = *mechanism_oid(options_.mechanism);
        gss_OID_set_desc mechs{1, &mech_element};
        OM_uint32 minor = 0;
        OM_uint32 major =
            gss_acquire_cred_from(&minor, GSS_C_NO_NAME, GSS_C_INDEFINITE, &mechs, GSS_C_INITIATE,
                                  &store, cred_.out(), nullptr, nullptr);
        if (GSS_ERROR(major))
            throw GssError("gss_acquire_cred_from(ccache " + options_.ccache + ")", major, minor);
    }
}

StepResult ClientContext::step(std::span<const std::uint8_t> input) {
    if (established_) throw GssError("gss_init_sec_context", "the context is already established");
    OM_uint32 minor = 0;
    gss_buffer_desc in = input_buffer(input);
    Buffer output;
    OM_uint32 ret_flags = 0;
    gss_OID actual = GSS_C_NO_OID;
    OM_uint32 major = gss_init_sec_context(
        &minor, cred_.get(), ctx_.inout(), target_.get(), mechanism_oid(options_.mechanism),
        options_.flags, 0, GSS_C_NO_CHANNEL_BINDINGS, input.empty() ? GSS_C_NO_BUFFER : &in,
        &actual, output.get(), &ret_flags, nullptr);
    if (GSS_ERROR(major))
        throw GssError("gss_init_sec_context(" + options_.target + ")", major, minor, actual);
    StepResult result;
    result.output = output.to_vector();
    flags_ = ret_flags;
    if (major & GSS_S_CONTINUE_NEEDED) {
        result.status = StepResult::Status::ContinueNeeded;
    } else {
        established_ = true;
        result.status = StepResult::Status::Complete;
    }
    return result;
}

// ---- WinRM message encryption ------------------------------------------------------------

Sealed seal(SecurityContext& ctx, std::span<const std::uint8_t> plaintext) {
    if (!ctx.established())
        throw GssError("gss_wrap_iov", "the security context is not established");
    if (ctx.ntlm()) {
        // gss-ntlmssp: gss_wrap gives signature(16) || sealed, the WinRM layout after the 4-byte
        // length (MS-WSMV 2.2.9.1.1).
        OM_uint32 minor = 0;
        int conf = 0;
        gss_buffer_desc in = input_buffer(plaintext);
        Buffer out;
        OM_uint32 major =
            gss_wrap(&minor, ctx.handle(), 1, GSS_C_QOP_DEFAULT, &in, &conf, out.get());
        if (GSS_ERROR(major)) throw GssError("gss_wrap", major, minor);
        if (conf == 0) throw GssError("gss_wrap", "confidentiality is not available");
        auto bytes = out.bytes();
        if (bytes.size() != plaintext.size() + kNtlmSignatureSize)
            throw GssError("gss_wrap",
                           "unexpected NTLM wrap token length " + std::to_string(bytes.size()));
        Sealed sealed;
        sealed.header.assign(bytes.begin(), bytes.begin() + kNtlmSignatureSize);
        sealed.ciphertext.assign(bytes.begin() + kNtlmSignatureSize, bytes.end());
        return sealed;
    }
    if (FastContext* fast = ctx.fast_path()) return fast->wrap(plaintext);
    Sealed sealed;
    sealed.ciphertext.assign(plaintext.begin(), plaintext.end());
    std::vector<std::uint8_t> padding;
    gss_iov_buffer_desc iov[3];
    iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER;
    iov[0].buffer = {0, nullptr};
    iov[1].type = GSS_IOV_BUFFER_TYPE_DATA;
    iov[1].buffer = {sealed.ciphertext.size(), sealed.ciphertext.data()};
    iov[2].type = GSS_IOV_BUFFER_TYPE_PADDING;
    iov[2].buffer = {0, nullptr};

    OM_uint32 minor = 0;
    int conf = 0;
    OM_uint32 major =
        gss_wrap_iov_length(&minor, ctx.handle(), 1, GSS_C_QOP_DEFAULT, &conf, iov, 3);
    if (GSS_ERROR(major)) throw GssError("gss_wrap_iov_length", major, minor);
    sealed.header.resize(iov[0].buffer.length);
    padding.resize(iov[2].buffer.length);
    iov[0].buffer.value = sealed.header.data();
    iov[1].buffer = {sealed.ciphertext.size(), sealed.ciphertext.data()};
    iov[2].buffer.value = padding.data();

    major = gss_wrap_iov(&minor, ctx.handle(), 1, GSS_C_QOP_DEFAULT, &conf, iov, 3);
    if (GSS_ERROR(major)) throw GssError("gss_wrap_iov", major, minor);
    if (conf == 0) throw GssError("gss_wrap_iov", "confidentiality is not available");
    sealed.header.resize(iov[0].buffer.length);
    // Block ciphers with padding (none for AES-CTS) append it to the ciphertext.
    sealed.ciphertext.insert(sealed.ciphertext.end(), padding.begin(),
                             padding.begin() + static_cast<std::ptrdiff_t>(iov[2].buffer.length));
    return sealed;
}

void seal_append(SecurityContext& ctx, std::span<const std::uint8_t> plaintext,
                 std::vector<std::uint8_t>& out) {
    auto append_length = [&out](std::size_t header) {
        const auto hl = static_cast<std::uint32_t>(header);
        for (int i = 0; i < 4; ++i)
            out.push_back(static_cast<std::uint8_t>(hl >> (8 * i)));
    };
    FastContext* fast = ctx.established() && !ctx.ntlm() ? ctx.fast_path() : nullptr;
    if (!fast) {
        const Sealed sealed = seal(ctx, plaintext);
        out.reserve(out.size() + 4 + sealed.header.size() + sealed.ciphertext.size());
        append_length(sealed.header.size());
        out.insert(out.end(), sealed.header.begin(), sealed.header.end());
        out.insert(out.end(), sealed.ciphertext.begin(), sealed.ciphertext.end());
        return;
    }
    const std::size_t header = fast->header_size();
    append_length(header);
    const std::size_t at = out.size();
    out.resize(at + header + plaintext.size());
    const std::span<std::uint8_t> token(out.data() + at, header + plaintext.size());
    fast->wrap_into(plaintext, token.first(header), token.subspan(header));
}

namespace {

// gss-ntlmssp: signature(16) || sealed in one gss_unwrap; it checks the signature with its own
// receive sequence number and RC4 state, so a replayed, reordered or tampered message fails here.
void unseal_ntlm(SecurityContext& ctx, std::span<std::uint8_t> header,
                 std::span<std::uint8_t> data) {
    if (header.size() != kNtlmSignatureSize)
        throw GssError("gss_unwrap", "NTLM signature of " + std::to_string(header.size()) +
                                         " bytes (16 expected)");
    std::vector<std::uint8_t> token(header.begin(), header.end());
    token.insert(token.end(), data.begin(), data.end());
    gss_buffer_desc in = input_buffer(token);
    Buffer out;
    OM_uint32 minor = 0;
    int conf = 0;
    gss_qop_t qop = 0;
    OM_uint32 major = gss_unwrap(&minor, ctx.handle(), &in, out.get(), &conf, &qop);
    if (GSS_ERROR(major))
        throw GssError("gss_unwrap (NTLM: bad signature, or a replayed or reordered message)",
                       major, minor);
    if (major & (GSS_S_DUPLICATE_TOKEN | GSS_S_OLD_TOKEN | GSS_S_UNSEQ_TOKEN | GSS_S_GAP_TOKEN))
        throw GssError("gss_unwrap", "replayed or out-of-order message");
    if (conf == 0) throw GssError("gss_unwrap", "the message was not encrypted");
    if (out.bytes().size() != data.size())
        throw GssError("gss_unwrap", "unexpected plaintext length");
    std::copy(out.bytes().begin(), out.bytes().end(), data.begin());
}

// gss_unwrap_iov over [HEADER, DATA], in place.
void unseal_mit(SecurityContext& ctx, std::span<std::uint8_t> header,
                std::span<std::uint8_t> data) {
    gss_iov_buffer_desc iov[2];
    iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER;
    iov[0].buffer = {header.size(), header.data()};
    iov[1].type = GSS_IOV_BUFFER_TYPE_DATA;
    iov[1].buffer = {data.size(), data.data()};
    OM_uint32 minor = 0;
    int conf = 0;
    gss_qop_t qop = 0;
    OM_uint32 major = gss_unwrap_iov(&minor, ctx.handle(), &conf, &qop, iov, 2);
    if (GSS_ERROR(major)) throw GssError("gss_unwrap_iov", major, minor);
    if (major & GSS_S_DUPLICATE_TOKEN)
        throw GssError("gss_unwrap_iov", "replayed message (duplicate wrap token)");
    if (major & GSS_S_OLD_TOKEN)
        throw GssError("gss_unwrap_iov", "replayed message (token older than the replay window)");
    if (conf == 0) throw GssError("gss_unwrap_iov", "the message was not encrypted");
    if (iov[1].buffer.length != data.size())
        throw GssError("gss_unwrap_iov", "unexpected plaintext length");
}

} // namespace

void unseal_in_place(SecurityContext& ctx, std::span<std::uint8_t> header,
                     std::span<std::uint8_t> data) {
    if (!ctx.established())
        throw GssError("gss_unwrap_iov", "the security context is not established");
    if (header.empty()) throw GssError("gss_unwrap_iov", "empty wrap token header");
    if (ctx.ntlm()) return unseal_ntlm(ctx, header, data);
    FastContext* fast = ctx.fast_path();
    const auto verdict = fast ? fast->unwrap(header, data) : FastContext::Unwrapped::NotHandled;
    if (verdict != FastContext::Unwrapped::Ok) {
        unseal_mit(ctx, header, data);
        if (verdict == FastContext::Unwrapped::Refused) fast->disagreement();
    }
    // MIT detects replays only when the initiator asked for it, within a 64-message window. An
    // RFC 4121 token (TOK_ID 05 04) carries its sender's sequence number at bytes 8..15: require
    // it to grow on this context. (The header is integrity-protected: it is only read after a
    // successful unwrap.)
    if (header.size() >= 16 && header[0] == 0x05 && header[1] == 0x04) {
        std::uint64_t sequence = 0;
        for (std::size_t i = 8; i < 16; ++i)
            sequence = (sequence << 8) | header[i];
        ctx.advance_peer_sequence(sequence);
    }
}

FastContext* SecurityContext::fast_path() {
    if (!fast_checked_ && established_) {
        fast_checked_ = true;
        if (!ntlm()) fast_ = FastContext::create(ctx_); // the fast path is Kerberos only
        if (fast_) {
            // Park MIT's context (gss.hpp). Should the export fail, MIT keeps it live.
            OM_uint32 minor = 0;
            SecretBuffer token;
            if (!GSS_ERROR(gss_export_sec_context(&minor, ctx_.inout(), token.get())) &&
                ctx_.get() == GSS_C_NO_CONTEXT)
                parked_ = std::move(token);
        }
    }
    return fast_.get();
}

gss_ctx_id_t SecurityContext::handle() {
    if (parked()) {
        gss_buffer_desc in{parked_.bytes().size(),
                           const_cast<std::uint8_t*>(parked_.bytes().data())};
        OM_uint32 minor = 0;
        ContextHandle imported;
        const OM_uint32 major = gss_import_sec_context(&minor, &in, imported.inout());
        if (GSS_ERROR(major)) throw GssError("gss_import_sec_context", major, minor);
        ctx_ = std::move(imported);
        parked_.wipe();
    }
    return ctx_.get();
}

void SecurityContext::advance_peer_sequence(std::uint64_t sequence) {
    if (last_peer_sequence_ && sequence <= *last_peer_sequence_)
        throw GssError("gss_unwrap_iov", "replayed or out-of-order message (sequence number " +
                                             std::to_string(sequence) + " after " +
                                             std::to_string(*last_peer_sequence_) + ")");
    last_peer_sequence_ = sequence;
}

std::vector<std::uint8_t> unseal(SecurityContext& ctx, std::span<const std::uint8_t> header,
                                 std::span<const std::uint8_t> ciphertext) {
    std::vector<std::uint8_t> header_copy(header.begin(), header.end());
    std::vector<std::uint8_t> data(ciphertext.begin(), ciphertext.end());
    unseal_in_place(ctx, header_copy, data);
    return data;
}

} // namespace wec::auth

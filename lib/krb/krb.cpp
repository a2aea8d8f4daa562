#include "krb/krb.hpp"

#include "common/bytes.hpp"
#include "krb/crypto.hpp"
#include "krb/der.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>

namespace wec::krb {

using der::Class;
using der::Reader;
using der::Tlv;
using Bytes = std::span<const std::uint8_t>;

namespace {

// Key usages (RFC 4120 section 7.5.1, RFC 4121 section 2).
constexpr int kUsageTicket = 2;
constexpr int kUsageAuthenticator = 11;
constexpr int kUsageApRep = 12;
constexpr int kUsageAcceptorSeal = 22;
constexpr int kUsageInitiatorSeal = 24;

constexpr std::uint8_t kFlagSentByAcceptor = 0x01;
constexpr std::uint8_t kFlagSealed = 0x02;
constexpr std::uint8_t kFlagAcceptorSubkey = 0x04;

// DER contents of the mechanism OIDs.
constexpr std::array<std::uint8_t, 9> kOidKrb5 = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                                  0x12, 0x01, 0x02, 0x02}; // 1.2.840.113554.1.2.2
constexpr std::array<std::uint8_t, 9> kOidMsKrb5 = {0x2a, 0x86, 0x48, 0x82, 0xf7,
                                                    0x12, 0x01, 0x02, 0x02}; // 1.2.840.48018.1.2.2
constexpr std::array<std::uint8_t, 6> kOidSpnego = {0x2b, 0x06, 0x01,
                                                    0x05, 0x05, 0x02}; // 1.3.6.1.5.5.2

[[noreturn]] void malformed(const std::string& what, std::size_t offset) {
    throw DecryptError(Reason::Malformed, what + " at offset " + std::to_string(offset), offset);
}

bool equal(Bytes a, Bytes b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

std::size_t offset_in(Bytes whole, Bytes part) {
    return static_cast<std::size_t>(part.data() - whole.data());
}

// The fields of a SEQUENCE of EXPLICIT context-tagged components, by tag number.
class Fields {
public:
    Fields(const Tlv& seq, const char* what) : what_(what), offset_(seq.offset) {
        if (!seq.is(Class::Universal, der::kSequence) || !seq.constructed)
            malformed(std::string(what) + ": expected a SEQUENCE", seq.offset);
        Reader r(seq.value, seq.value_offset);
        while (!r.empty()) {
            const Tlv field = r.next();
            if (field.cls != Class::Context || !field.constructed)
                malformed(std::string(what) + ": unexpected component", field.offset);
            if (field.tag >= slots_.size()) continue; // extension we do not need
            if (slots_[field.tag]) malformed(std::string(what) + ": duplicate field", field.offset);
            Reader inner(field.value, field.value_offset);
            slots_[field.tag] = inner.next();
            inner.expect_end(what);
        }
    }
    const Tlv& get(std::size_t n, const char* field) const {
        if (!slots_[n])
            malformed(std::string(what_) + ": missing field " + field + " [" + std::to_string(n) +
                          "]",
                      offset_);
        return *slots_[n];
    }
    const std::optional<Tlv>& opt(std::size_t n) const { return slots_[n]; }

private:
    const char* what_;
    std::size_t offset_;
    std::array<std::optional<Tlv>, 16> slots_{};
};

// [APPLICATION n] SEQUENCE {...} -> its fields.
Fields application(Bytes data, std::size_t base, std::uint32_t n, const char* what) {
    Reader r(data, base);
    const Tlv app = r.expect(Class::Application, n, true, what);
    Reader inner = r.enter(app);
    const Tlv seq = inner.next();
    inner.expect_end(what);
    return Fields(seq, what);
}

Principal principal_name(const Tlv& tlv, std::string realm, const char* what) {
    Fields f(tlv, what);
    Principal p;
    p.name_type = static_cast<std::int32_t>(der::integer(f.get(0, "name-type"), "name-type"));
    const Tlv& names = f.get(1, "name-string");
    if (!names.is(Class::Universal, der::kSequence) || !names.constructed)
        malformed(std::string(what) + ": name-string is not a SEQUENCE", names.offset);
    Reader r(names.value, names.value_offset);
    while (!r.empty())
        p.components.push_back(der::string(r.next(), "name component"));
    p.realm = std::move(realm);
    return p;
}

struct EncryptedData {
    std::int32_t etype = 0;
    std::optional<std::uint32_t> kvno;
    Bytes cipher;
    std::size_t offset = 0;
};

EncryptedData encrypted_data(const Tlv& tlv, const char* what) {
    Fields f(tlv, what);
    EncryptedData e;
    e.etype = static_cast<std::int32_t>(der::integer(f.get(0, "etype"), "etype"));
    if (f.opt(1)) e.kvno = der::uint32_lenient(*f.opt(1), "kvno");
    const Tlv& c = f.get(2, "cipher");
    e.cipher = der::octets(c, "cipher");
    e.offset = c.value_offset;
    return e;
}

Key encryption_key(const Tlv& tlv, const char* what) {
    Fields f(tlv, what);
    Key k;
    k.enctype = static_cast<std::int32_t>(der::integer(f.get(0, "keytype"), "keytype"));
    const auto v = der::octets(f.get(1, "keyvalue"), "keyvalue");
    k.bytes.assign(v.begin(), v.end());
    return k;
}

// Where the Kerberos message sits inside a GSS / SPNEGO token.
struct Located {
    TokenForm form = TokenForm::Bare;
    Bytes der;
    std::size_t offset = 0; // of der[0] within the original token
};

enum class Expect { ApReq, ApRep };

void reject_krb_error(Bytes der, std::size_t offset) {
    std::string code;
    try {
        const Fields f = application(der, offset, 30, "KRB-ERROR");
        code = " (error-code " +
               std::to_string(der::integer(f.get(6, "error-code"), "error-code")) + ")";
    } catch (const DecryptError&) {
    }
    throw DecryptError(Reason::NoSession,
                       "the acceptor answered with a KRB-ERROR" + code + " instead of an AP-REP",
                       offset);
}

Located locate(Bytes whole, Bytes token, Expect expect, bool inside_spnego);

// SPNEGO NegotiationToken: [0] NegTokenInit (mechToken [2]) or [1] NegTokenResp (responseToken
// [2]).
Located negotiation_token(Bytes whole, Bytes token, Expect expect) {
    const std::size_t base = offset_in(whole, token);
    if (token.empty()) malformed("empty SPNEGO token", base);
    const std::uint8_t first = token[0];
    if (first != 0xa0 && first != 0xa1) malformed("not a SPNEGO NegTokenInit/NegTokenResp", base);
    Reader r(token, base);
    const Tlv choice = r.next();
    Reader inner = r.enter(choice);
    const Fields f(inner.next(), first == 0xa0 ? "NegTokenInit" : "NegTokenResp");
    inner.expect_end("SPNEGO token");
    if (first == 0xa0) {
        if (!f.opt(2))
            throw DecryptError(Reason::NotKerberos,
                               "SPNEGO NegTokenInit without a mechToken (no optimistic "
                               "Kerberos token)",
                               base);
        return locate(whole, der::octets(*f.opt(2), "mechToken"), expect, true);
    }
    if (f.opt(0)) {
        const Tlv& state = *f.opt(0);
        if (state.is(Class::Universal, der::kEnumerated) && state.value.size() == 1 &&
            state.value[0] == 2)
            throw DecryptError(Reason::NoSession, "SPNEGO negState reject", state.offset);
    }
    if (!f.opt(2)) {
        // accept-completed without a mech token: no mutual authentication, no AP-REP.
        if (expect == Expect::ApRep) return {TokenForm::Spnego, {}, base};
        throw DecryptError(Reason::NoSession, "SPNEGO NegTokenResp without a responseToken", base);
    }
    return locate(whole, der::octets(*f.opt(2), "responseToken"), expect, true);
}

Located locate(Bytes whole, Bytes token, Expect expect, bool inside_spnego) {
    const std::size_t base = offset_in(whole, token);
    if (token.empty()) malformed("empty authentication token", base);
    if (token.size() >= 8 && std::memcmp(token.data(), "NTLMSSP", 8) == 0)
        throw DecryptError(Reason::NotKerberos,
                           "NTLMSSP token: NTLM sessions cannot be decrypted "
                           "with a keytab",
                           base);
    const std::uint8_t first = token[0];
    const TokenForm outer = inside_spnego ? TokenForm::Spnego : TokenForm::Bare;
    if (first == 0x6e || first == 0x6f || first == 0x7e) { // bare AP-REQ / AP-REP / KRB-ERROR
        if (first == 0x7e) reject_krb_error(token, base);
        const bool ok = expect == Expect::ApReq ? first == 0x6e : first == 0x6f;
        if (!ok)
            malformed(expect == Expect::ApReq ? "expected an AP-REQ" : "expected an AP-REP", base);
        return {outer, token, base};
    }
    if (first == 0x60) { // GSS InitialContextToken
        Reader r(token, base);
        const Tlv gss = r.expect(Class::Application, 0, true, "GSS token");
        Reader inner = r.enter(gss);
        const Tlv oid = inner.expect(Class::Universal, der::kOid, false, "GSS mech OID");
        const Bytes rest = inner.rest();
        const std::size_t rest_off = inner.offset();
        if (equal(oid.value, kOidKrb5) || equal(oid.value, kOidMsKrb5)) {
            if (rest.size() < 2) malformed("GSS krb5 token without TOK_ID", rest_off);
            const std::uint16_t tok_id = load_be16(rest.data());
            const Bytes msg = rest.subspan(2);
            if (tok_id == 0x0300) reject_krb_error(msg, rest_off + 2);
            const std::uint16_t want = expect == Expect::ApReq ? 0x0100 : 0x0200;
            if (tok_id != want)
                malformed("GSS krb5 TOK_ID " + std::to_string(tok_id >> 8) + " " +
                              std::to_string(tok_id & 0xff) + " where " +
                              (expect == Expect::ApReq ? "01 00 (AP-REQ)" : "02 00 (AP-REP)") +
                              " was expected",
                          rest_off);
            Reader check(msg, rest_off + 2);
            check.expect(Class::Application, expect == Expect::ApReq ? 14 : 15, true,
                         expect == Expect::ApReq ? "AP-REQ" : "AP-REP");
            return {inside_spnego ? TokenForm::Spnego : TokenForm::Krb5,
                    msg.first(check.offset() - (rest_off + 2)), rest_off + 2};
        }
        if (equal(oid.value, kOidSpnego) && !inside_spnego)
            return negotiation_token(whole, rest, expect);
        throw DecryptError(Reason::NotKerberos, "GSS token of a mechanism other than Kerberos",
                           oid.offset);
    }
    if ((first == 0xa0 || first == 0xa1) && !inside_spnego)
        return negotiation_token(whole, token, expect);
    malformed("not a Kerberos, SPNEGO or GSS token (first byte " + std::to_string(first) + ")",
              base);
}

struct ApReq {
    Located where;
    Principal service;
    EncryptedData ticket;
    EncryptedData authenticator;
};

ApReq parse_ap_req_der(Bytes token) {
    ApReq out;
    out.where = locate(token, token, Expect::ApReq, false);
    const Fields f = application(out.where.der, out.where.offset, 14, "AP-REQ");
    if (der::integer(f.get(0, "pvno"), "pvno") != 5)
        malformed("AP-REQ pvno is not 5", f.get(0, "pvno").offset);
    if (der::integer(f.get(1, "msg-type"), "msg-type") != 14)
        malformed("AP-REQ msg-type is not 14", f.get(1, "msg-type").offset);
    const Tlv& ticket = f.get(3, "ticket");
    if (!ticket.is(Class::Application, 1) || !ticket.constructed)
        malformed("AP-REQ ticket is not a Ticket", ticket.offset);
    Reader tr(ticket.value, ticket.value_offset);
    const Fields t(tr.next(), "Ticket");
    tr.expect_end("Ticket");
    const std::string realm = der::string(t.get(1, "realm"), "realm");
    out.service = principal_name(t.get(2, "sname"), realm, "sname");
    out.ticket = encrypted_data(t.get(3, "enc-part"), "Ticket enc-part");
    out.authenticator = encrypted_data(f.get(4, "authenticator"), "authenticator");
    return out;
}

std::string key_list(const KeySet& keys, const Principal& service) {
    std::string out;
    for (const auto* e : keys.for_principal(service)) {
        if (!out.empty()) out += ", ";
        out += "kvno " + std::to_string(e->kvno) + " " + enctype_name(e->enctype);
    }
    return out.empty() ? "none for that principal" : out;
}

} // namespace

const char* reason_name(Reason reason) {
    switch (reason) {
    case Reason::NoKey:
        return "no-key";
    case Reason::WrongKey:
        return "wrong-key";
    case Reason::Malformed:
        return "malformed";
    case Reason::UnsupportedEnctype:
        return "unsupported-enctype";
    case Reason::NoSession:
        return "no-session";
    case Reason::NotKerberos:
        return "not-kerberos";
    }
    return "unknown";
}

DecryptError::DecryptError(Reason reason, const std::string& message, std::size_t offset)
    : wec::Error(std::string("kerberos: ") + reason_name(reason) + ": " + message), reason_(reason),
      offset_(offset) {}

ApReqInfo parse_ap_req(std::span<const std::uint8_t> token) {
    const ApReq req = parse_ap_req_der(token);
    ApReqInfo info;
    info.form = req.where.form;
    info.service = req.service;
    info.ticket_enctype = req.ticket.etype;
    info.ticket_kvno = req.ticket.kvno;
    info.authenticator_enctype = req.authenticator.etype;
    return info;
}

struct SessionKeys::Impl {
    std::shared_ptr<const crypto::Context> ctx;
    Principal client;
    Principal service;
    TokenForm form = TokenForm::Krb5;
    std::int32_t ticket_enctype = 0;
    std::uint32_t ticket_kvno = 0;
    Key session;
    std::optional<Key> initiator_subkey;
    std::optional<Key> acceptor_subkey;
    std::optional<std::uint32_t> initiator_seq;
    std::optional<std::uint32_t> acceptor_seq;
    std::uint32_t gss_flags = 0;
    bool ap_rep = false;
    std::unique_ptr<crypto::KeyHandle> session_handle;
    std::unique_ptr<crypto::KeyHandle> initiator_handle;
    std::unique_ptr<crypto::KeyHandle> acceptor_handle;
};

SessionKeys::SessionKeys() = default;
SessionKeys::~SessionKeys() = default;
SessionKeys::SessionKeys(SessionKeys&&) noexcept = default;
SessionKeys& SessionKeys::operator=(SessionKeys&&) noexcept = default;
SessionKeys::SessionKeys(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SessionKeys SessionKeys::from_ap_req(std::span<const std::uint8_t> token, const KeySet& keys) {
    return from_ap_req(
        token, keys,
        std::make_shared<const crypto::Context>(crypto::accelerate_from_environment()));
}

SessionKeys SessionKeys::from_ap_req(std::span<const std::uint8_t> token, const KeySet& keys,
                                     std::shared_ptr<const crypto::Context> ctx) {
    const ApReq req = parse_ap_req_der(token);
    auto impl = std::make_unique<Impl>();
    impl->ctx = std::move(ctx);
    impl->form = req.where.form;
    impl->service = req.service;
    impl->ticket_enctype = req.ticket.etype;

    const std::string what = req.service.to_string() +
                             (req.ticket.kvno ? " kvno " + std::to_string(*req.ticket.kvno) : "") +
                             " " + enctype_name(req.ticket.etype);
    if (!crypto::valid_enctype(req.ticket.etype))
        throw DecryptError(Reason::UnsupportedEnctype,
                           "ticket for " + what + ": enctype not supported by this krb5");
    const auto candidates = keys.candidates(req.service, req.ticket.etype, req.ticket.kvno);
    if (candidates.empty())
        throw DecryptError(Reason::NoKey, "no key for " + what + " in the keytab (it has: " +
                                              key_list(keys, req.service) + ")");
    std::vector<std::uint8_t> plain;
    const KeytabEntry* used = nullptr;
    for (const KeytabEntry* e : candidates) {
        const crypto::Status st = crypto::decrypt(*impl->ctx, Key{e->enctype, e->key}, kUsageTicket,
                                                  req.ticket.cipher, plain);
        if (st == crypto::Status::Ok) {
            used = e;
            break;
        }
        if (st == crypto::Status::BadSize && req.ticket.cipher.size() < 64)
            malformed("ticket ciphertext too short", req.ticket.offset);
    }
    if (!used)
        throw DecryptError(Reason::WrongKey,
                           "none of the " + std::to_string(candidates.size()) +
                               " candidate keys decrypts the ticket for " + what +
                               " (wrong keytab or a key version that is not in it)");
    impl->ticket_kvno = used->kvno;

    // EncTicketPart: the session key and the client name. Times are deliberately not checked.
    {
        const Fields f = application(plain, 0, 3, "EncTicketPart");
        impl->session = encryption_key(f.get(1, "key"), "EncTicketPart key");
        const std::string crealm = der::string(f.get(2, "crealm"), "crealm");
        impl->client = principal_name(f.get(3, "cname"), crealm, "cname");
    }
    if (!crypto::valid_enctype(impl->session.enctype))
        throw DecryptError(Reason::UnsupportedEnctype,
                           "session key enctype " + enctype_name(impl->session.enctype));

    // Authenticator: the initiator subkey, sequence number and GSS flags.
    if (req.authenticator.etype != impl->session.enctype)
        malformed("authenticator enctype differs from the session key's", req.authenticator.offset);
    const crypto::Status st = crypto::decrypt(*impl->ctx, impl->session, kUsageAuthenticator,
                                              req.authenticator.cipher, plain);
    if (st != crypto::Status::Ok)
        throw DecryptError(Reason::WrongKey,
                           "the authenticator does not decrypt with the ticket's session key");
    {
        const Fields f = application(plain, 0, 2, "Authenticator");
        if (f.opt(3)) {
            const Fields ck(*f.opt(3), "Authenticator cksum");
            const auto type = der::integer(ck.get(0, "cksumtype"), "cksumtype");
            const auto value = der::octets(ck.get(1, "checksum"), "checksum");
            if (type == 0x8003 && value.size() >= 24)
                impl->gss_flags = load_le32(value.data() + 20);
        }
        if (f.opt(6)) impl->initiator_subkey = encryption_key(*f.opt(6), "Authenticator subkey");
        if (f.opt(7)) impl->initiator_seq = der::uint32_lenient(*f.opt(7), "seq-number");
    }
    impl->session_handle = std::make_unique<crypto::KeyHandle>(impl->ctx, impl->session);
    if (impl->initiator_subkey)
        impl->initiator_handle =
            std::make_unique<crypto::KeyHandle>(impl->ctx, *impl->initiator_subkey);
    return SessionKeys(std::move(impl));
}

bool SessionKeys::accept_ap_rep(std::span<const std::uint8_t> token) {
    if (!impl_)
        throw DecryptError(Reason::NoSession, "AP-REP without an AP-REQ on this connection");
    const Located where = locate(token, token, Expect::ApRep, false);
    if (where.der.empty()) return false; // SPNEGO accept-completed without a responseToken
    const Fields f = application(where.der, where.offset, 15, "AP-REP");
    if (der::integer(f.get(0, "pvno"), "pvno") != 5)
        malformed("AP-REP pvno is not 5", f.get(0, "pvno").offset);
    if (der::integer(f.get(1, "msg-type"), "msg-type") != 15)
        malformed("AP-REP msg-type is not 15", f.get(1, "msg-type").offset);
    const EncryptedData enc = encrypted_data(f.get(2, "enc-part"), "AP-REP enc-part");
    if (enc.etype != impl_->session.enctype)
        malformed("AP-REP enctype differs from the session key's", enc.offset);
    std::vector<std::uint8_t> plain;
    const crypto::Status st =
        crypto::decrypt(*impl_->ctx, impl_->session, kUsageApRep, enc.cipher, plain);
    if (st != crypto::Status::Ok)
        throw DecryptError(Reason::WrongKey,
                           "the AP-REP does not decrypt with the session key (AP-REP of another "
                           "connection?)");
    const Fields p = application(plain, 0, 27, "EncAPRepPart");
    std::optional<Key> subkey;
    if (p.opt(2)) subkey = encryption_key(*p.opt(2), "EncAPRepPart subkey");
    std::optional<std::uint32_t> seq;
    if (p.opt(3)) seq = der::uint32_lenient(*p.opt(3), "seq-number");
    std::unique_ptr<crypto::KeyHandle> handle;
    if (subkey) handle = std::make_unique<crypto::KeyHandle>(impl_->ctx, *subkey);
    impl_->acceptor_subkey = std::move(subkey);
    impl_->acceptor_handle = std::move(handle);
    impl_->acceptor_seq = seq;
    impl_->ap_rep = true;
    return true;
}

bool SessionKeys::has_session() const {
    return impl_ != nullptr;
}
bool SessionKeys::has_ap_rep() const {
    return impl_ && impl_->ap_rep;
}

namespace {
const SessionKeys::Impl& need(const std::unique_ptr<SessionKeys::Impl>& impl) {
    if (!impl) throw DecryptError(Reason::NoSession, "no AP-REQ seen on this connection");
    return *impl;
}
} // namespace

const Principal& SessionKeys::client() const {
    return need(impl_).client;
}
const Principal& SessionKeys::service() const {
    return need(impl_).service;
}
TokenForm SessionKeys::form() const {
    return need(impl_).form;
}
std::int32_t SessionKeys::ticket_enctype() const {
    return need(impl_).ticket_enctype;
}
std::uint32_t SessionKeys::ticket_kvno() const {
    return need(impl_).ticket_kvno;
}
const Key& SessionKeys::session_key() const {
    return need(impl_).session;
}
const std::optional<Key>& SessionKeys::initiator_subkey() const {
    return need(impl_).initiator_subkey;
}
const std::optional<Key>& SessionKeys::acceptor_subkey() const {
    return need(impl_).acceptor_subkey;
}
std::optional<std::uint32_t> SessionKeys::initiator_sequence() const {
    return need(impl_).initiator_seq;
}
std::optional<std::uint32_t> SessionKeys::acceptor_sequence() const {
    return need(impl_).acceptor_seq;
}
std::uint32_t SessionKeys::gss_flags() const {
    return need(impl_).gss_flags;
}

Unwrapped SessionKeys::unwrap(Direction direction, std::span<const std::uint8_t> token) const {
    return unwrap(direction, token, {});
}

namespace {

// An RFC 4121 wrap token given in two pieces, header||rest (header.size() may be below 16).
struct WrapToken {
    std::span<const std::uint8_t> header, rest;

    std::size_t size() const { return header.size() + rest.size(); }
    std::uint8_t at(std::size_t i) const {
        return i < header.size() ? header[i] : rest[i - header.size()];
    }
    // Copies `len` bytes starting at `from`.
    void copy_out(std::size_t from, std::size_t len, std::uint8_t* dst) const {
        if (from < header.size()) {
            const std::size_t n = std::min(len, header.size() - from);
            std::copy_n(header.data() + from, n, dst);
            dst += n;
            len -= n;
            from = header.size();
        }
        if (len) std::copy_n(rest.data() + (from - header.size()), len, dst);
    }
    // The data after the 16-byte header, rotated left by `count` bytes (undoing the sender's
    // rotation right by RRC), into `out` (room for size() - 16 bytes).
    void unrotate(std::size_t count, std::uint8_t* out) const {
        const std::size_t body = size() - 16;
        const std::size_t r = body == 0 ? 0 : count % body;
        copy_out(16 + r, body - r, out);
        copy_out(16, r, out + (body - r));
    }
};

// The 16-byte header of a CFX wrap token: TOK_ID 05 04, flags, filler FF, EC, RRC, SND_SEQ.
struct WrapHeader {
    std::array<std::uint8_t, 16> bytes{};
    std::uint8_t flags() const { return bytes[2]; }
    bool by_acceptor() const { return (bytes[2] & kFlagSentByAcceptor) != 0; }
    std::size_t ec() const { return load_be16(&bytes[4]); }
    std::size_t rrc() const { return load_be16(&bytes[6]); }
    std::uint64_t sequence() const {
        return std::uint64_t{load_be32(&bytes[8])} << 32 | load_be32(&bytes[12]);
    }
};

// Reads the header and refuses what is not a CFX wrap token.
WrapHeader read_wrap_header(const WrapToken& token) {
    const std::size_t total = token.size();
    if (total < 16) malformed("wrap token shorter than its 16-byte header", total);
    WrapHeader h;
    auto& hdr = h.bytes;
    for (std::size_t i = 0; i < 16; ++i)
        hdr[i] = token.at(i);
    if ((hdr[0] == 0x02 && hdr[1] == 0x01) || hdr[0] == 0x60)
        throw DecryptError(Reason::UnsupportedEnctype,
                           "RFC 1964/4757 wrap token (DES/RC4-HMAC): only RFC 4121 CFX tokens are "
                           "supported",
                           0);
    if (hdr[0] == 0x04 && hdr[1] == 0x04)
        malformed("a MIC token where a wrap token was expected", 0);
    if (hdr[0] != 0x05 || hdr[1] != 0x04)
        malformed("not a CFX wrap token (TOK_ID is not 05 04)", 0);
    if (hdr[3] != 0xff) malformed("wrap token filler byte is not FF", 3);
    return h;
}

// The key that protects the token: the acceptor subkey when the flags name it, else the
// initiator subkey, else the session key.
const crypto::KeyHandle& wrap_key(const SessionKeys::Impl& s, const WrapHeader& h) {
    if (h.flags() & kFlagAcceptorSubkey) {
        if (!s.ap_rep)
            throw DecryptError(Reason::NoSession,
                               "the token is protected by the acceptor subkey, but no AP-REP was "
                               "seen on this connection");
        if (!s.acceptor_handle)
            throw DecryptError(Reason::NoKey,
                               "the token names the acceptor subkey, but the AP-REP carried none");
        return *s.acceptor_handle;
    }
    return s.initiator_handle ? *s.initiator_handle : *s.session_handle;
}

// Sealed: decrypt(data || header copy), then the copy must match the header (EC, RRC aside).
// `unrotated` holds the data after the header, unrotated; the plaintext is returned as a view of
// b.plain.
std::span<const std::uint8_t> unseal(const crypto::KeyHandle& key, const WrapHeader& h,
                                     const WrapToken& token,
                                     std::span<const std::uint8_t> unrotated, UnwrapBuffers& b) {
    const int usage = h.by_acceptor() ? kUsageAcceptorSeal : kUsageInitiatorSeal;
    const std::size_t ec = h.ec();
    std::span<const std::uint8_t> plain;
    crypto::Status st = key.decrypt_into(usage, unrotated, b.plain, plain);
    if (st == crypto::Status::Integrity && ec != 0) {
        // Windows in DCE style rotates by RRC + EC (MIT handles the same quirk).
        token.unrotate(h.rrc() + ec, b.unrotated.data());
        st = key.decrypt_into(usage, unrotated, b.plain, plain);
    }
    if (st == crypto::Status::Integrity)
        throw DecryptError(Reason::WrongKey,
                           "wrap token integrity check failed (wrong key or tampered data)");
    if (st == crypto::Status::BadSize)
        malformed("wrap token encrypted data too short for " + enctype_name(key.key().enctype), 16);
    if (st != crypto::Status::Ok)
        throw DecryptError(Reason::UnsupportedEnctype,
                           "cannot decrypt with " + enctype_name(key.key().enctype));
    if (plain.size() < 16 + ec)
        malformed("decrypted wrap token shorter than EC + its header copy", 16);
    const auto& hdr = h.bytes;
    const std::uint8_t* copy = plain.data() + plain.size() - 16;
    const bool same = std::equal(hdr.begin(), hdr.begin() + 6, copy) && copy[6] == 0 &&
                      copy[7] == 0 && std::equal(hdr.begin() + 8, hdr.end(), copy + 8);
    if (!same)
        throw DecryptError(Reason::WrongKey,
                           "wrap token header differs from its encrypted copy (tampered)");
    return plain.first(plain.size() - 16 - ec);
}

// Integrity only: data || checksum(data || header with EC = RRC = 0); EC = checksum length.
// Returns the data (a view of `unrotated`).
std::span<const std::uint8_t> verify_checksum(const crypto::KeyHandle& key, const WrapHeader& h,
                                              std::span<const std::uint8_t> unrotated) {
    const std::size_t ec = h.ec();
    const std::size_t body = unrotated.size();
    if (ec > body) malformed("integrity-only wrap token shorter than its checksum", 4);
    const std::size_t data_len = body - ec;
    std::vector<std::uint8_t> signed_bytes(
        unrotated.begin(), unrotated.begin() + static_cast<std::ptrdiff_t>(data_len));
    std::array<std::uint8_t, 16> zeroed = h.bytes;
    zeroed[4] = zeroed[5] = zeroed[6] = zeroed[7] = 0;
    signed_bytes.insert(signed_bytes.end(), zeroed.begin(), zeroed.end());
    std::vector<std::uint8_t> expected;
    // Wrap tokens use the SEAL usages with or without confidentiality (SIGN is for MIC tokens).
    const int usage = h.by_acceptor() ? kUsageAcceptorSeal : kUsageInitiatorSeal;
    if (key.checksum(usage, signed_bytes, expected) != crypto::Status::Ok)
        throw DecryptError(Reason::UnsupportedEnctype,
                           "cannot compute the checksum with " + enctype_name(key.key().enctype));
    const Bytes got(unrotated.data() + data_len, ec);
    std::uint8_t diff = expected.size() == ec ? 0 : 1;
    if (diff == 0)
        for (std::size_t i = 0; i < ec; ++i)
            diff |= static_cast<std::uint8_t>(expected[i] ^ got[i]);
    if (diff != 0)
        throw DecryptError(Reason::WrongKey,
                           "integrity-only wrap token checksum mismatch (wrong key or tampered)");
    return unrotated.first(data_len);
}

} // namespace

UnwrappedView SessionKeys::unwrap_into(Direction direction, std::span<const std::uint8_t> header,
                                       std::span<const std::uint8_t> rest,
                                       UnwrapBuffers& buffers) const {
    const WrapToken token{header, rest};
    const WrapHeader h = read_wrap_header(token);
    const Impl& s = need(impl_);
    UnwrappedView out;
    out.flags = h.flags();
    out.sealed = (h.flags() & kFlagSealed) != 0;
    out.sequence = h.sequence();
    if (h.by_acceptor() != (direction == Direction::Acceptor))
        malformed(h.by_acceptor() ? "token sent by the acceptor found in the initiator's direction"
                                  : "token sent by the initiator found in the acceptor's direction",
                  2);
    const crypto::KeyHandle& key = wrap_key(s, h);

    // Undo the rotation: the data after the header was rotated right by RRC bytes.
    const std::size_t body = token.size() - 16;
    if (buffers.unrotated.size() < body) buffers.unrotated.resize(body);
    token.unrotate(h.rrc(), buffers.unrotated.data());
    const std::span<const std::uint8_t> unrotated(buffers.unrotated.data(), body);
    out.plaintext =
        out.sealed ? unseal(key, h, token, unrotated, buffers) : verify_checksum(key, h, unrotated);
    return out;
}

Unwrapped SessionKeys::unwrap(Direction direction, std::span<const std::uint8_t> header,
                              std::span<const std::uint8_t> rest) const {
    UnwrapBuffers buffers;
    const UnwrappedView v = unwrap_into(direction, header, rest, buffers);
    Unwrapped out;
    out.plaintext.assign(v.plaintext.begin(), v.plaintext.end());
    out.sealed = v.sealed;
    out.sequence = v.sequence;
    out.flags = v.flags;
    return out;
}

} // namespace wec::krb

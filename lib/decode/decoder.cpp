// Decoder: inputs -> HTTP messages (capture) -> per-connection Kerberos state -> Records.
#include "auth/ntlm_keys.hpp"
#include "common/handle.hpp"
#include "decode/decode.hpp"
#include "http/http.hpp"
#include "krb/crypto.hpp"
#include "sldc/sldc.hpp"
#include "text/base64.hpp"
#include "text/text.hpp"
#include "wsman/body.hpp"
#include "wsman/subscription.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <list>
#include <map>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>

namespace wec::decode {

std::string_view to_string(AuthStep step) {
    switch (step) {
    case AuthStep::None:
        return "none";
    case AuthStep::ApReq:
        return "ap-req";
    case AuthStep::ApRep:
        return "ap-rep";
    case AuthStep::Challenge:
        return "challenge";
    case AuthStep::Other:
        return "other";
    }
    return "none";
}

std::string_view to_string(Encryption e) {
    switch (e) {
    case Encryption::None:
        return "none";
    case Encryption::Plain:
        return "plain";
    case Encryption::Decrypted:
        return "decrypted";
    case Encryption::Undecryptable:
        return "undecryptable";
    }
    return "none";
}

bool Record::failed() const {
    return encryption == Encryption::Undecryptable || truncated || !errors.empty() ||
           !auth_error.empty();
}

std::string_view Record::action() const {
    return message ? wsman::to_string(message->action) : std::string_view{};
}

namespace {

constexpr std::size_t kMaxPendingRequests = 256; // per connection (pipelining depth)
constexpr std::size_t kMaxSubscriptions = 65536;
constexpr std::size_t kHeadBytes = 512;

// "Kerberos <b64>" -> scheme, token.
std::pair<std::string_view, std::string_view> split_auth(std::string_view value) {
    value = http::trim(value);
    auto sp = value.find_first_of(" \t");
    if (sp == std::string_view::npos) return {value, {}};
    return {value.substr(0, sp), http::trim(value.substr(sp + 1))};
}

bool is_gss_scheme(std::string_view scheme) {
    return http::iequals(scheme, "Kerberos") || http::iequals(scheme, "Negotiate");
}

std::string strip_uuid_prefix(std::string_view v) {
    v = http::trim(v);
    if (v.size() >= 5 && http::iequals(v.substr(0, 5), "uuid:")) v.remove_prefix(5);
    return std::string(v);
}

struct PendingRequest {
    std::uint64_t index = 0;
    std::string target;
    std::string subscription_uuid;
};

struct Connection {
    std::uint64_t id = 0;
    capture::TimeNs last_time = 0;
    std::optional<krb::SessionKeys> keys;
    // NTLM (auth/ntlm_keys.hpp): the CHALLENGE seen, then the session derived at the AUTHENTICATE.
    // On the heap: ~900 bytes that most connections (Kerberos) never use, and idle connections
    // add up (memory is bounded by the open connections).
    std::unique_ptr<auth::NtlmMessage> ntlm_challenge;
    std::unique_ptr<auth::NtlmSession> ntlm;
    bool ntlm_seen = false;
    std::string failure_reason, failure; // why the last AP-REQ / AP-REP could not be used
    std::string client, service, enctype;
    std::optional<std::uint32_t> kvno;
    std::list<PendingRequest> pending;
    std::list<std::uint64_t>::iterator lru;
};

} // namespace

struct Decoder::Impl {
    const krb::KeySet& keys;
    Sink& sink;
    Options options;
    Stats stats;

    std::uint64_t id_base = 0, max_local_id = 0;
    std::unordered_map<std::uint64_t, Connection> connections;
    std::list<std::uint64_t> lru; // least recently active first
    std::map<std::string, SubscriptionInfo> subscriptions;

    sldc::Buffer decompressed;           // reused, never zero-filled
    std::vector<std::uint8_t> plaintext; // NTLM's
    krb::UnwrapBuffers unwrap_buffers;   // reused from message to message
    // One krb5 context for all the connections' sessions (created at the first AP-REQ; the
    // decoder is single-threaded), instead of one per connection.
    std::shared_ptr<const krb::crypto::Context> krb_context;

    Impl(const krb::KeySet& k, Sink& s, Options o) : keys(k), sink(s), options(std::move(o)) {}

    Connection& connection(std::uint64_t id, capture::TimeNs now) {
        // Forget connections idle for longer than the capture layer keeps them.
        while (!lru.empty()) {
            auto& oldest = connections.at(lru.front());
            if (oldest.id == id || now - oldest.last_time <= options.limits.idle_timeout) break;
            connections.erase(lru.front());
            lru.pop_front();
        }
        auto [it, inserted] = connections.try_emplace(id);
        Connection& c = it->second;
        if (inserted) {
            ++stats.connections;
            c.id = id;
            c.lru = lru.insert(lru.end(), id);
            if (connections.size() > options.limits.max_connections) {
                connections.erase(lru.front());
                lru.pop_front();
            }
        } else {
            lru.splice(lru.end(), lru, c.lru);
        }
        c.last_time = now;
        return c;
    }

    void note_subscriptions(const wsman::Message& m) {
        if (!m.enumerate_response) return;
        for (const auto& s : m.enumerate_response->subscriptions) {
            auto uuid = wsman::subscription_from_path(wsman::path_of_url(s.notify_to));
            if (uuid.empty()) continue;
            if (subscriptions.size() >= kMaxSubscriptions && !subscriptions.count(uuid)) continue;
            auto& info = subscriptions[uuid];
            info.uuid = uuid;
            info.name = s.name;
            info.version = strip_uuid_prefix(s.version.empty() ? s.identifier : s.version);
        }
    }

    // NTLMSSP under Negotiate (raw or in SPNEGO): true when the token was NTLM (handled here).
    bool authenticate_ntlm(std::span<const std::uint8_t> token, bool is_request, Connection& c,
                           Record& r) {
        std::optional<auth::NtlmMessage> msg;
        try {
            msg = auth::find_ntlm_message(token);
        } catch (const auth::NtlmError& e) {
            if (!auth::is_ntlmssp(token) && !auth::spnego_prefers_ntlm(token)) return false;
            r.auth_step = AuthStep::Other;
            r.auth_reason = krb::reason_name(krb::Reason::Malformed);
            r.auth_error = e.what();
            return true;
        }
        if (!msg) {
            // SPNEGO's last token (accept-completed, mechListMIC) after NTLM.
            if (!c.ntlm_seen || is_request) return false;
            r.auth_step = AuthStep::Other;
            r.mechanism = "NTLM";
            return true;
        }
        c.ntlm_seen = true;
        r.auth_step = AuthStep::Other;
        r.mechanism = "NTLM";
        if (msg->type == 1) {
            c.ntlm.reset();
            c.ntlm_challenge.reset();
            c.client.clear();
            c.failure_reason.clear();
            c.failure.clear();
        } else if (msg->type == 2) {
            c.ntlm_challenge = std::make_unique<auth::NtlmMessage>(std::move(*msg));
        } else if (msg->type == 3) {
            c.keys.reset();
            c.client = msg->domain + "\\" + msg->user;
            c.failure_reason = krb::reason_name(krb::Reason::NoKey);
            c.failure = "no NTLM secret (--password, --nt-hash, --ntlm-secrets) for " + c.client;
            if (!c.ntlm_challenge) {
                c.failure_reason = krb::reason_name(krb::Reason::NoSession);
                c.failure = "AUTHENTICATE of " + c.client + " without its CHALLENGE";
            } else {
                for (const auto& secret : options.ntlm_secrets) {
                    if (!secret.user.empty() && !http::iequals(secret.user, msg->user) &&
                        !http::iequals(secret.user, c.client))
                        continue;
                    try {
                        c.ntlm = std::make_unique<auth::NtlmSession>(
                            auth::NtlmSession::derive(*c.ntlm_challenge, *msg, secret.nt_hash));
                        // After SPNEGO's mechListMIC both directions restart (sequence 1).
                        if (!auth::is_ntlmssp(token)) c.ntlm->restart_after_spnego();
                        c.failure_reason.clear();
                        c.failure.clear();
                        break;
                    } catch (const auth::NtlmError& e) {
                        c.failure_reason = krb::reason_name(krb::Reason::WrongKey);
                        c.failure = e.what();
                    }
                }
            }
            r.auth_reason = c.failure_reason;
            r.auth_error = c.failure;
        }
        return true;
    }

    void authenticate(const capture::HttpMessage& m, Connection& c, Record& r) {
        if (m.is_request) {
            auto value = m.header("Authorization");
            if (!value) return;
            auto [scheme, token64] = split_auth(*value);
            r.auth_scheme = std::string(scheme);
            if (!is_gss_scheme(scheme) || token64.empty()) {
                r.auth_step = AuthStep::Other;
                return;
            }
            r.auth_step = AuthStep::ApReq;
            auto token = text::base64_decode(token64);
            if (token && authenticate_ntlm(*token, true, c, r)) return;
            c.ntlm.reset();
            c.ntlm_seen = false;
            c.keys.reset();
            c.client.clear();
            if (!token || token->empty()) {
                c.failure_reason = krb::reason_name(krb::Reason::Malformed);
                c.failure = "the Authorization token is not base64";
            } else {
                try {
                    if (!krb_context)
                        krb_context = std::make_shared<const krb::crypto::Context>(
                            krb::crypto::accelerate_from_environment());
                    c.keys = krb::SessionKeys::from_ap_req(*token, keys, krb_context);
                    c.failure_reason.clear();
                    c.failure.clear();
                    c.client = c.keys->client().to_string();
                    c.service = c.keys->service().to_string();
                    c.enctype = krb::enctype_name(c.keys->ticket_enctype());
                    c.kvno = c.keys->ticket_kvno();
                } catch (const krb::DecryptError& e) {
                    c.failure_reason = krb::reason_name(e.reason());
                    c.failure = e.what();
                    try {
                        auto info = krb::parse_ap_req(*token);
                        c.service = info.service.to_string();
                        c.enctype = krb::enctype_name(info.ticket_enctype);
                        c.kvno = info.ticket_kvno;
                    } catch (const wec::Error&) {
                    }
                }
            }
            r.auth_reason = c.failure_reason;
            r.auth_error = c.failure;
            return;
        }
        for (const auto& h : m.headers) {
            if (!http::iequals(h.name, "WWW-Authenticate")) continue;
            auto [scheme, token64] = split_auth(h.value);
            if (!is_gss_scheme(scheme)) {
                if (r.auth_step == AuthStep::None) r.auth_step = AuthStep::Other;
                continue;
            }
            r.auth_scheme = std::string(scheme);
            if (token64.empty()) {
                if (r.auth_step != AuthStep::ApRep) r.auth_step = AuthStep::Challenge;
                continue;
            }
            r.auth_step = AuthStep::ApRep;
            auto token = text::base64_decode(token64);
            if (token && authenticate_ntlm(*token, false, c, r)) continue;
            if (!c.keys) {
                if (c.failure.empty()) {
                    r.auth_reason = krb::reason_name(krb::Reason::NoSession);
                    r.auth_error = "AP-REP without a decrypted AP-REQ on this connection";
                }
                continue; // the AP-REQ's failure is reported there (and on every body)
            }
            if (!token) {
                r.auth_reason = krb::reason_name(krb::Reason::Malformed);
                r.auth_error = "the WWW-Authenticate token is not base64";
                continue;
            }
            try {
                c.keys->accept_ap_rep(*token);
            } catch (const krb::DecryptError& e) {
                r.auth_reason = krb::reason_name(e.reason());
                r.auth_error = e.what();
                c.failure_reason = r.auth_reason;
                c.failure = std::string("AP-REP: ") + e.what();
            }
        }
    }

    // Fills content/soap/message from a cleartext body.
    // The body step shared with the collector (wsman/body.hpp): the same Content-Encoding rules,
    // limit and error sentences; what the collector would refuse is recorded as an error, and
    // whatever can be read is still decoded.
    void decode_content(Record& r, std::span<const std::uint8_t> clear, std::string_view encoding) {
        std::span<const std::uint8_t> content = clear;
        r.compressed_bytes = clear.size();
        try {
            auto c = wsman::decode_content(encoding, clear, options.max_body_bytes, decompressed);
            content = c.bytes;
            r.decompressed = c.decompressed;
        } catch (const wsman::BodyError& e) {
            r.errors.push_back(e.what());
        }
        r.content = content;
        if (content.empty()) return;
        std::string charset = wsman::charset_of(r.content_type);
        auto decoded = text::decode_body(content, charset, r.soap);
        r.text_encoding = std::string(text::to_string(decoded.encoding));
        if (!options.parse_soap) return;
        std::string_view s = r.soap;
        auto first = s.find_first_not_of(" \t\r\n");
        bool soap_type = r.content_type.find("soap") != std::string::npos ||
                         r.content_type.find("xml") != std::string::npos;
        if (first == std::string_view::npos || (s[first] != '<' && !soap_type)) return;
        try {
            if (options.keep_soap_text) {
                r.message = wsman::parse(r.soap);
            } else {
                r.message = wsman::parse_owned(std::move(r.soap));
                r.soap.clear();
            }
        } catch (const wsman::ParseError& e) {
            r.errors.push_back(std::string("malformed SOAP: ") + e.what());
        }
    }

    void on_message(const capture::HttpMessage& m) {
        std::uint64_t id = id_base + m.connection_id;
        max_local_id = std::max(max_local_id, m.connection_id);
        Connection& c = connection(id, m.last_time);

        Record r;
        r.input = current_input;
        r.connection = id;
        r.index = m.index;
        r.is_request = m.is_request;
        r.tuple = m.tuple;
        r.time = m.first_time;
        r.last_time = m.last_time;
        r.start_line = std::string(m.start_line);
        r.method = std::string(m.method);
        r.target = std::string(m.target);
        r.status = m.status;
        r.request_index = m.request_index;
        r.headers.reserve(m.headers.size());
        for (const auto& h : m.headers)
            r.headers.emplace_back(h.name, h.value);
        r.after_gap = m.after_gap;
        r.truncated = m.truncated;
        r.body_bytes = m.body.size();
        if (m.truncated) r.errors.push_back("message cut by the end of the capture");

        authenticate(m, c, r);
        r.client = c.client;
        if (r.mechanism.empty() && !c.client.empty())
            r.mechanism = c.ntlm_seen ? "NTLM" : "Kerberos";
        r.service = c.service;
        r.ticket_enctype = c.enctype;
        r.kvno = c.kvno;

        // Which subscription: the request target, or the target of the request answered.
        if (m.is_request) {
            r.subscription.uuid = wsman::subscription_from_path(m.target);
            if (c.pending.size() >= kMaxPendingRequests) c.pending.pop_front();
            c.pending.push_back({m.index, r.target, r.subscription.uuid});
        } else if (m.request_index) {
            for (auto it = c.pending.begin(); it != c.pending.end(); ++it) {
                if (it->index != *m.request_index) continue;
                r.subscription.uuid = it->subscription_uuid;
                if (m.status >= 200) c.pending.erase(c.pending.begin(), std::next(it));
                break;
            }
        }

        std::string content_type(m.header("Content-Type").value_or(""));
        std::string_view encoding = m.header("Content-Encoding").value_or("");
        if (m.body.empty()) {
            r.encryption = Encryption::None;
            r.content_encoding = std::string(encoding);
        } else if (http::is_multipart_encrypted(content_type)) {
            r.content_encoding = std::string(encoding);
            unwrap(m, c, r, content_type, encoding);
        } else {
            r.encryption = Encryption::Plain;
            r.content_type = content_type;
            r.content_encoding = std::string(encoding);
            decode_content(r, m.body, encoding);
        }

        finish_record(r);
    }

    void unwrap(const capture::HttpMessage& m, Connection& c, Record& r,
                const std::string& content_type, std::string_view encoding) {
        http::EncryptedPart part;
        try {
            part = http::parse_encrypted(m.body, content_type);
        } catch (const http::FramingError& e) {
            r.encryption = Encryption::Undecryptable;
            r.reason = krb::reason_name(krb::Reason::Malformed);
            r.reason_message = std::string("multipart/encrypted framing: ") + e.what();
            return;
        }
        r.protocol = part.protocol;
        r.mime_tab = part.tab_before_headers;
        r.content_type = part.original_type;
        if (c.ntlm_seen) {
            r.mechanism = "NTLM";
            if (!c.ntlm) {
                r.encryption = Encryption::Undecryptable;
                r.reason = c.failure_reason.empty() ? krb::reason_name(krb::Reason::NoSession)
                                                    : c.failure_reason;
                r.reason_message =
                    "the connection's NTLM session key could not be derived: " +
                    (c.failure.empty() ? std::string("no AUTHENTICATE seen") : c.failure);
                return;
            }
            try {
                plaintext = c.ntlm->unseal(m.is_request ? auth::NtlmDirection::ClientToServer
                                                        : auth::NtlmDirection::ServerToClient,
                                           part.header, part.ciphertext);
            } catch (const auth::NtlmError& e) {
                r.encryption = Encryption::Undecryptable;
                r.reason = krb::reason_name(krb::Reason::WrongKey);
                r.reason_message = e.what();
                return;
            }
            r.encryption = Encryption::Decrypted;
            if (part.length != plaintext.size())
                r.errors.push_back("OriginalContent Length=" + std::to_string(part.length) +
                                   " but " + std::to_string(plaintext.size()) + " bytes decrypted");
            decode_content(r, plaintext, encoding);
            return;
        }
        if (!c.keys) {
            r.encryption = Encryption::Undecryptable;
            if (!c.failure.empty()) {
                r.reason = c.failure_reason;
                r.reason_message = "the connection's AP-REQ could not be used: " + c.failure;
            } else {
                r.reason = krb::reason_name(krb::Reason::NoSession);
                r.reason_message = "no AP-REQ seen on this connection (the capture starts after "
                                   "its authentication)";
            }
            return;
        }
        std::span<const std::uint8_t> clear;
        try {
            clear = c.keys
                        ->unwrap_into(m.is_request ? krb::Direction::Initiator
                                                   : krb::Direction::Acceptor,
                                      part.header, part.ciphertext, unwrap_buffers)
                        .plaintext;
        } catch (const krb::DecryptError& e) {
            r.encryption = Encryption::Undecryptable;
            r.reason = krb::reason_name(e.reason());
            r.reason_message = e.what();
            if (e.reason() == krb::Reason::NoSession && !c.failure.empty())
                r.reason_message += " (" + c.failure + ")";
            return;
        }
        r.encryption = Encryption::Decrypted;
        if (part.length != clear.size())
            r.errors.push_back("OriginalContent Length=" + std::to_string(part.length) + " but " +
                               std::to_string(clear.size()) + " bytes decrypted");
        decode_content(r, clear, encoding);
    }

    void finish_record(Record& r) {
        if (r.message) {
            note_subscriptions(*r.message);
            if (!r.subscription.uuid.empty()) {
                auto it = subscriptions.find(r.subscription.uuid);
                if (it != subscriptions.end()) {
                    r.subscription.name = it->second.name;
                    r.subscription.version = it->second.version;
                }
                if (r.subscription.version.empty() && !r.message->identifier.empty())
                    r.subscription.version = strip_uuid_prefix(r.message->identifier);
            }
        } else if (!r.subscription.uuid.empty()) {
            auto it = subscriptions.find(r.subscription.uuid);
            if (it != subscriptions.end()) r.subscription = it->second;
        }

        ++stats.messages;
        ++(r.is_request ? stats.requests : stats.responses);
        switch (r.encryption) {
        case Encryption::Plain:
            ++stats.plain;
            break;
        case Encryption::Decrypted:
            ++stats.decrypted;
            break;
        case Encryption::Undecryptable:
            ++stats.undecryptable;
            break;
        case Encryption::None:
            break;
        }
        if (r.failed()) ++stats.failed;
        if (r.is_request && r.message && r.message->action == wsman::Action::Events)
            stats.events += r.message->events.size();
        sink.on_record(r);
    }

    // --- inputs ---------------------------------------------------------------------------

    std::string current_input;
    std::uint64_t total_bytes = 0, last_progress = 0;
    capture::CaptureReader* reader = nullptr;

    void progress() {
        if (reader == nullptr) return;
        auto done = reader->bytes_read();
        if (done - last_progress < (1u << 20)) return;
        last_progress = done;
        sink.on_progress(done, total_bytes);
    }

    void decode_capture(capture::CaptureReader& rd) {
        reader = &rd;
        last_progress = 0;
        max_local_id = 0;
        capture::Callbacks cb;
        cb.on_message = [this](const capture::HttpMessage& m) {
            on_message(m);
            progress();
        };
        auto note = [this](const capture::Note& n) {
            if (n.kind == capture::NoteKind::Gap) {
                ++stats.gaps;
                stats.gap_bytes += n.bytes;
            } else if (n.kind == capture::NoteKind::Error) {
                ++stats.errors;
            }
            capture::Note copy = n;
            if (copy.connection_id != 0) copy.connection_id += id_base;
            sink.on_note(current_input, copy);
            progress();
        };
        cb.on_gap = note;
        cb.on_error = note;
        auto st = capture::extract_http(rd, cb, options.limits);
        reader = nullptr;
        stats.capture_bytes += st.capture_bytes;
        stats.packets += st.packets;
        stats.damaged += st.damaged;
        stats.skipped_bytes += st.skipped_bytes;
        stats.cut_packets += st.cut_packets;
        stats.cut_bytes += st.cut_bytes;
        stats.short_packets += st.truncated_packets;
        sink.on_progress(st.capture_bytes, total_bytes);
        // Connection ids of the next input continue after this one's.
        id_base += std::max<std::uint64_t>(max_local_id, st.connections);
        connections.clear();
        lru.clear();
    }

    void decode_body(std::span<const std::uint8_t> data, capture::FileKind kind) {
        Record r;
        r.input = current_input;
        r.from_capture = false;
        r.body_bytes = data.size();
        if (kind == capture::FileKind::MultipartEncrypted) {
            r.encryption = Encryption::Undecryptable;
            std::string_view s(reinterpret_cast<const char*>(data.data()),
                               std::min<std::size_t>(data.size(), 4096));
            r.protocol =
                std::string(s.find("SPNEGO") != std::string_view::npos ? http::kSpnegoProtocol
                                                                       : http::kKerberosProtocol);
            r.reason = krb::reason_name(krb::Reason::NoSession);
            r.reason_message = "a lone multipart/encrypted body cannot be decrypted: the keys come "
                               "from the AP-REQ/AP-REP of its connection; decode the capture "
                               "with --keytab instead";
        } else {
            r.encryption = Encryption::Plain;
            if (kind == capture::FileKind::Sldc) r.content_encoding = "SLDC";
            decode_content(r, data, r.content_encoding);
            if (kind == capture::FileKind::Sldc && !r.decompressed)
                r.errors.push_back("not a valid SLDC record");
        }
        finish_record(r);
    }

    // Decodes one input read through `file` (a file, a duplicate of standard input, memory).
    void decode_file(FilePtr file, const std::string& name, std::uint64_t size) {
        // Peek at the first bytes to tell a capture from a body.
        std::vector<std::uint8_t> head(kHeadBytes);
        std::size_t n = std::fread(head.data(), 1, head.size(), file.get());
        head.resize(n);
        if (n == 0 && std::ferror(file.get()))
            throw InputError(name + ": read error: " + std::strerror(errno));
        auto kind = capture::detect_file_kind(head);
        ++stats.inputs;
        current_input = name;
        total_bytes = size;
        if (kind == capture::FileKind::Pcap || kind == capture::FileKind::Pcapng ||
            kind == capture::FileKind::Gzip) {
            if (kind == capture::FileKind::Gzip) total_bytes = 0; // progress in unpacked bytes
            try {
                // The reader reads `head` again first, then the rest of the file (it owns it).
                auto rd = capture::CaptureReader::from_file(file.release(), name, std::move(head));
                decode_capture(rd);
            } catch (const capture::CaptureError& e) {
                throw InputError(e.what());
            }
            return;
        }
        // A body: read the rest (bounded).
        std::vector<std::uint8_t> data = std::move(head);
        std::uint8_t buf[65536];
        for (;;) {
            std::size_t got = std::fread(buf, 1, sizeof buf, file.get());
            if (got == 0) break;
            data.insert(data.end(), buf, buf + got);
            if (data.size() > options.max_body_bytes) {
                throw InputError(name + ": larger than " + std::to_string(options.max_body_bytes) +
                                 " bytes and not a capture");
            }
        }
        file.reset();
        if (kind == capture::FileKind::Unknown)
            throw InputError(name + ": neither a pcap/pcapng capture nor a WS-Management body "
                                    "(SOAP in UTF-8/UTF-16, SLDC, multipart/encrypted)");
        decode_body(data, kind);
    }
};

Decoder::Decoder(const krb::KeySet& keys, Sink& sink, Options options)
    : impl_(std::make_unique<Impl>(keys, sink, std::move(options))) {}
Decoder::~Decoder() = default;

const Stats& Decoder::stats() const {
    return impl_->stats;
}

void Decoder::decode(const std::string& path) {
    if (path == "-") {
        // A duplicate of standard input: the reader closes its own FILE*, never stdin.
        int fd = ::dup(0);
        if (fd < 0) throw InputError("-: " + std::string(std::strerror(errno)));
        FilePtr f(::fdopen(fd, "rb"));
        if (!f) {
            ::close(fd);
            throw InputError("-: " + std::string(std::strerror(errno)));
        }
        impl_->decode_file(std::move(f), "-", 0);
        return;
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw InputError(path + ": " + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw InputError(path + ": is a directory");
    FilePtr f(std::fopen(path.c_str(), "rb"));
    if (!f) throw InputError(path + ": " + std::strerror(errno));
    impl_->decode_file(std::move(f), path, static_cast<std::uint64_t>(st.st_size));
}

void Decoder::decode_memory(std::span<const std::uint8_t> data, const std::string& name) {
    if (data.empty()) throw InputError(name + ": empty input");
    // The reader may outlive this call's stack only within it: the copy lives until it returns.
    std::vector<std::uint8_t> copy(data.begin(), data.end());
    FilePtr f(fmemopen(copy.data(), copy.size(), "rb"));
    if (!f) throw InputError(name + ": cannot open memory stream");
    impl_->decode_file(std::move(f), name, copy.size());
}

} // namespace wec::decode

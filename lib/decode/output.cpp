// Records as JSON Lines (schema v1, docs/decode.md), as a text transcript, as events, as files.
#include "decode/decode.hpp"
#include "text/text.hpp"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>
#include <sstream>

namespace wec::decode {

std::string format_time(capture::TimeNs time) {
    std::string out;
    event::format_time(std::chrono::system_clock::time_point(std::chrono::nanoseconds(time)), out);
    return out;
}

namespace {

using Json = nlohmann::ordered_json;

const capture::Endpoint& client_of(const Record& r) {
    return r.is_request ? r.tuple.src : r.tuple.dst;
}
const capture::Endpoint& server_of(const Record& r) {
    return r.is_request ? r.tuple.dst : r.tuple.src;
}

void put_if(Json& j, const char* key, const std::string& value) {
    if (!value.empty()) j[key] = value;
}

// Appends s as a JSON string exactly as nlohmann's serializer writes it (ensure_ascii = false),
// in one pass with whole runs appended: the body is most of a record and nlohmann's per-byte
// serializer was a third of `wec decode --format json`. Returns false (out unchanged) when s is
// not valid UTF-8: the caller then lets nlohmann replace the bad bytes.
bool append_json_string(std::string& out, std::string_view s) {
    const std::size_t start = out.size();
    out.reserve(out.size() + s.size() + s.size() / 8 + 2);
    out.push_back('"');
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* const end = p + s.size();
    const auto* run = p;
    while (p < end) {
        const unsigned c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            ++p;
            continue;
        }
        if (c >= 0x80) {
            const std::size_t n = text::utf8_sequence_length(
                {reinterpret_cast<const char*>(p), static_cast<std::size_t>(end - p)});
            if (n == 0) {
                out.resize(start);
                return false;
            }
            p += n;
            continue;
        }
        out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(p - run));
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default: {
            char u[8];
            std::snprintf(u, sizeof u, "\\u%04x", c);
            out += u;
        }
        }
        run = ++p;
    }
    out.append(reinterpret_cast<const char*>(run), static_cast<std::size_t>(end - run));
    out.push_back('"');
    return true;
}

} // namespace

void format_json(const Record& r, std::string& out) {
    Json j;
    j["v"] = kSchemaVersion;
    j["input"] = r.input;
    j["connection"] = r.connection;
    j["index"] = r.index;
    j["direction"] = r.is_request ? "request" : "response";
    if (r.from_capture) {
        j["time"] = format_time(r.time);
        j["time_last"] = format_time(r.last_time);
        j["client"] = client_of(r).to_string();
        j["server"] = server_of(r).to_string();
        j["start_line"] = r.start_line;
        if (r.is_request) {
            j["method"] = r.method;
            j["target"] = r.target;
        } else {
            j["status"] = r.status;
            if (r.request_index) j["request_index"] = *r.request_index;
        }
        Json headers = Json::array();
        for (const auto& [name, value] : r.headers)
            headers.push_back(Json::array({name, value}));
        j["headers"] = std::move(headers);
        j["after_gap"] = r.after_gap;
        j["truncated"] = r.truncated;
    }

    Json auth;
    auth["step"] = to_string(r.auth_step);
    put_if(auth, "scheme", r.auth_scheme);
    put_if(auth, "client", r.client);
    put_if(auth, "mechanism", r.mechanism);
    put_if(auth, "service", r.service);
    put_if(auth, "enctype", r.ticket_enctype);
    if (r.kvno) auth["kvno"] = *r.kvno;
    put_if(auth, "reason", r.auth_reason);
    put_if(auth, "error", r.auth_error);
    j["auth"] = std::move(auth);

    j["body_bytes"] = r.body_bytes;
    Json enc;
    enc["state"] = to_string(r.encryption);
    put_if(enc, "protocol", r.protocol);
    if (r.encryption == Encryption::Decrypted || r.encryption == Encryption::Undecryptable)
        enc["mime_tab"] = r.mime_tab;
    put_if(enc, "reason", r.reason);
    put_if(enc, "error", r.reason_message);
    j["encryption"] = std::move(enc);
    put_if(j, "content_type", r.content_type);
    put_if(j, "content_encoding", r.content_encoding);
    if (r.encryption == Encryption::Plain || r.encryption == Encryption::Decrypted) {
        j["decompressed"] = r.decompressed;
        j["content_bytes"] = r.content.size();
        if (r.decompressed) j["compressed_bytes"] = r.compressed_bytes;
    }
    put_if(j, "text_encoding", r.text_encoding);

    if (r.message) {
        const auto& m = *r.message;
        j["action"] = wsman::to_string(m.action);
        put_if(j, "action_uri", m.action_uri);
        put_if(j, "message_id", m.message_id);
        put_if(j, "relates_to", m.relates_to);
        put_if(j, "to", m.to);
        put_if(j, "machine", m.machine_id);
        put_if(j, "identifier", m.identifier);
        put_if(j, "bookmark", m.bookmark);
    }
    if (!r.subscription.uuid.empty()) {
        Json s;
        s["uuid"] = r.subscription.uuid;
        put_if(s, "name", r.subscription.name);
        put_if(s, "version", r.subscription.version);
        j["subscription"] = std::move(s);
    }
    j["events"] = r.event_count();
    // "body" and "errors" end the object; the body is escaped here rather than by nlohmann.
    const std::size_t start = out.size();
    out += j.dump(-1, ' ', false, Json::error_handler_t::replace);
    out.pop_back(); // '}'
    if (!r.soap.empty()) {
        out += ",\"body\":";
        if (!append_json_string(out, r.soap)) {
            out.resize(start);
            j["body"] = r.soap;
            j["errors"] = r.errors;
            out += j.dump(-1, ' ', false, Json::error_handler_t::replace);
            return;
        }
    }
    out += ",\"errors\":";
    out += Json(r.errors).dump(-1, ' ', false, Json::error_handler_t::replace);
    out.push_back('}');
}

// --- text --------------------------------------------------------------------------------------

namespace {

struct Palette {
    const char* head = "";
    const char* dim = "";
    const char* good = "";
    const char* bad = "";
    const char* action = "";
    const char* reset = "";
};

Palette palette(bool color) {
    if (!color) return {};
    return {"\033[1;36m", "\033[2m", "\033[32m", "\033[1;31m", "\033[1;33m", "\033[0m"};
}

std::string pretty_xml(const std::string& xml) {
    pugi::xml_document doc;
    auto res =
        doc.load_buffer(xml.data(), xml.size(), pugi::parse_default | pugi::parse_ws_pcdata_single);
    if (!res) return xml + "\n";
    std::ostringstream ss;
    doc.save(ss, "  ", pugi::format_indent | pugi::format_no_declaration, pugi::encoding_utf8);
    return ss.str();
}

} // namespace

void format_text(const Record& r, const TextOptions& o, std::string& out) {
    Palette p = palette(o.color);
    const std::string pad = "      ";
    if (r.from_capture) {
        out += p.head;
        out += "[c" + std::to_string(r.connection) + "] " + format_time(r.time) + " ";
        out += r.tuple.src.to_string() + " -> " + r.tuple.dst.to_string() + "  " + r.start_line;
        out += p.reset;
        if (r.after_gap) out += std::string("  ") + p.bad + "(after a gap)" + p.reset;
        out += "\n";
    } else {
        out += p.head + r.input + " (message body)" + p.reset + "\n";
    }

    if (r.auth_step != AuthStep::None) {
        out += pad + "auth " + std::string(to_string(r.auth_step));
        if (!r.auth_scheme.empty()) out += " " + r.auth_scheme;
        if (r.mechanism == "NTLM") {
            out += " (NTLM)";
            if (!r.client.empty()) out += ": " + r.client;
        }
        if (r.auth_step == AuthStep::ApReq || r.auth_step == AuthStep::ApRep) {
            if (!r.client.empty()) out += ": " + r.client;
            if (!r.service.empty()) out += " -> " + r.service;
            if (!r.ticket_enctype.empty()) {
                out += " (" + r.ticket_enctype;
                if (r.kvno) out += ", kvno " + std::to_string(*r.kvno);
                out += ")";
            }
        }
        out += "\n";
        if (!r.auth_error.empty())
            out += pad + p.bad + "! " + r.auth_reason + ": " + r.auth_error + p.reset + "\n";
    }

    if (r.body_bytes > 0 || !r.content.empty()) {
        out += pad + "body " + std::to_string(r.body_bytes) + " bytes";
        switch (r.encryption) {
        case Encryption::Decrypted:
            out += std::string(", ") + p.good + "decrypted" + p.reset;
            if (!r.protocol.empty())
                out += r.protocol.find("SPNEGO") != std::string::npos ? " (SPNEGO)" : " (Kerberos)";
            break;
        case Encryption::Undecryptable:
            out += std::string(", ") + p.bad + "UNDECRYPTABLE (" + r.reason + ")" + p.reset;
            break;
        case Encryption::Plain:
            out += ", plain";
            break;
        case Encryption::None:
            break;
        }
        if (r.decompressed)
            out += ", SLDC " + std::to_string(r.compressed_bytes) + " -> " +
                   std::to_string(r.content.size()) + " bytes";
        if (!r.text_encoding.empty()) out += ", " + r.text_encoding;
        out += "\n";
        if (r.encryption == Encryption::Undecryptable)
            out += pad + p.bad + "! " + r.reason_message + p.reset + "\n";
    }

    if (r.message) {
        const auto& m = *r.message;
        out += pad + p.action + std::string(wsman::to_string(m.action)) + p.reset;
        if (m.action == wsman::Action::Unknown) out += " " + m.action_uri;
        if (!m.message_id.empty()) out += "  MessageID " + m.message_id;
        if (!m.relates_to.empty()) out += "  RelatesTo " + m.relates_to;
        out += "\n";
        if (!m.machine_id.empty()) out += pad + "machine " + m.machine_id + "\n";
    }
    if (!r.subscription.uuid.empty()) {
        out += pad + "subscription " + r.subscription.uuid;
        if (!r.subscription.name.empty()) out += " \"" + r.subscription.name + "\"";
        if (!r.subscription.version.empty()) out += " version " + r.subscription.version;
        out += "\n";
    }
    if (r.message) {
        const auto& m = *r.message;
        if (m.enumerate_response)
            for (const auto& s : m.enumerate_response->subscriptions)
                out += pad + "offers \"" + s.name + "\" -> " + s.notify_to + "\n";
        if (!m.bookmark.empty()) out += pad + "bookmark " + m.bookmark + "\n";
        if (m.action == wsman::Action::Events)
            out += pad + std::to_string(m.events.size()) + " event" +
                   (m.events.size() == 1 ? "" : "s") + "\n";
        if (m.subscription_end) {
            out += pad + "status " + m.subscription_end->status;
            if (m.subscription_end->fault)
                out += " fault " + m.subscription_end->fault->code + ": " +
                       m.subscription_end->fault->message;
            out += "\n";
        }
    }
    for (const auto& e : r.errors)
        out += pad + p.bad + "! " + e + p.reset + "\n";
    if (o.verbose && !r.soap.empty()) {
        std::string body = r.message ? pretty_xml(r.soap) : r.soap + "\n";
        std::string indented;
        std::size_t start = 0;
        while (start < body.size()) {
            auto nl = body.find('\n', start);
            if (nl == std::string::npos) nl = body.size();
            indented += p.dim + pad + "| " + body.substr(start, nl - start) + p.reset + "\n";
            start = nl + 1;
        }
        out += indented;
    }
}

// --- events ------------------------------------------------------------------------------------

event::Metadata metadata_of(const Record& r) {
    event::Metadata meta;
    meta.ip_address = client_of(r).address_string();
    meta.client = r.client;
    // As `wec serve` records it ("Mechanism"): captures are decoded with Kerberos keys.
    if (!r.client.empty()) meta.mechanism = r.mechanism.empty() ? "Kerberos" : r.mechanism;
    meta.time_received =
        std::chrono::system_clock::time_point(std::chrono::nanoseconds(r.last_time));
    meta.subscription_uuid = r.subscription.uuid;
    meta.subscription_version = r.subscription.version;
    meta.subscription_name = r.subscription.name;
    return meta;
}

namespace {

template <class Out>
std::size_t append_events_to(const Record& r, EventFormat format, Out& out) {
    if (!r.is_request || !r.message || r.message->action != wsman::Action::Events) return 0;
    const auto& events = r.message->events;
    const auto meta = format == EventFormat::Raw ? event::Metadata{} : metadata_of(r);
    event::Event parsed; // reused for every event of the batch
    for (const auto& e : events) {
        if (event::needs_parse(format)) event::parse(e.xml, parsed);
        event::format_event(format, e.xml, parsed, meta, out);
        out.push_back('\n');
    }
    return events.size();
}

} // namespace

std::size_t append_events(const Record& r, EventFormat format, std::string& out) {
    return append_events_to(r, format, out);
}

std::size_t append_events(const Record& r, EventFormat format, event::FormatBuffer& out) {
    return append_events_to(r, format, out);
}

// --- export ------------------------------------------------------------------------------------

std::string export_name(const Record& r) {
    std::string action(r.action());
    bool xml = false;
    if (auto first = r.soap.find_first_not_of(" \t\r\n"); first != std::string::npos)
        xml = r.soap[first] == '<';
    char buf[96];
    if (r.from_capture) {
        std::snprintf(
            buf, sizeof buf, "c%06llu-%04llu-%s", static_cast<unsigned long long>(r.connection),
            static_cast<unsigned long long>(r.index), r.is_request ? "request" : "response");
    } else {
        std::snprintf(buf, sizeof buf, "%s",
                      std::filesystem::path(r.input).filename().string().substr(0, 60).c_str());
    }
    std::string name = buf;
    if (!action.empty()) name += "-" + action;
    name += xml ? ".xml" : ".bin";
    return name;
}

std::string export_body(const Record& r, const std::string& dir) {
    if (r.content.empty()) return {};
    std::filesystem::path path = std::filesystem::path(dir) / export_name(r);
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) throw wec::Error("cannot create " + path.string());
    bool ok = std::fwrite(r.content.data(), 1, r.content.size(), f) == r.content.size();
    ok = std::fclose(f) == 0 && ok;
    if (!ok) throw wec::Error("cannot write " + path.string());
    return path.string();
}

} // namespace wec::decode

#include "subscription/windows_xml.hpp"

#include "common/files.hpp"
#include "text/ascii.hpp"
#include "text/text.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <limits>
#include <map>
#include <pugixml.hpp>
#include <sstream>
#include <utility>

namespace wec::subscription {

namespace {

using Kind = WindowsXmlError::Kind;

// Limits of the TOML definition (load_toml): what is read must be storable.
constexpr std::size_t kMaxDescriptionBytes = 4096;
constexpr std::size_t kMaxLocaleBytes = 85;
constexpr std::uint64_t kMaxSeconds = 7 * 24 * 3600;
constexpr std::uint64_t kMaxItems = 0x7fffffff;

// Windows settings kept at the end of the description, in this order, one per line.
constexpr std::string_view kKeptPrefix = "[wecutil] ";
constexpr std::array<std::string_view, 7> kKeptKeys = {"TransportName",
                                                       "TransportPort",
                                                       "LogFile",
                                                       "PublisherName",
                                                       "Expires",
                                                       "IssuerCA",
                                                       "AllowedSourceDomainComputers"};
// The values Windows uses when these are absent (not kept: the writer writes them anyway).
constexpr std::string_view kDefaultTransport = "HTTP";
constexpr std::string_view kDefaultLogFile = "ForwardedEvents";
constexpr std::string_view kDefaultPublisher = "Microsoft-Windows-EventCollector";

using text::iequals;

// Valid UTF-8 without the characters XML 1.0 forbids (NUL from "&#0;", lone surrogates, ...).
std::string clean(std::string_view s) {
    std::string out(s);
    text::sanitize_xml_chars(out);
    return out;
}

// Cuts at a character boundary so that at most `max` bytes remain.
std::string cut_utf8(std::string s, std::size_t max) {
    if (s.size() <= max) return s;
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
        --n;
    s.resize(n);
    return s;
}

// A raw CR would be normalized away by the reader; LF and TAB too in an attribute value.
std::string xml_escape(std::string_view text, bool attribute) {
    return text::xml_escape(text, attribute ? "&<>\"\r\n\t" : "&<>\r");
}

std::string_view local_name(const pugi::xml_node& node) {
    std::string_view name = node.name();
    auto colon = name.find(':');
    return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

// The namespace URI of an element (its prefix's declaration, or the default namespace in scope).
std::optional<std::string> namespace_of(const pugi::xml_node& node) {
    std::string_view name = node.name();
    auto colon = name.find(':');
    std::string attribute =
        colon == std::string_view::npos ? "xmlns" : "xmlns:" + std::string(name.substr(0, colon));
    for (auto n = node; n && n.type() == pugi::node_element; n = n.parent())
        if (auto a = n.attribute(attribute.c_str())) return std::string(a.value());
    return std::nullopt;
}

// ---- SDDL -----------------------------------------------------------------------------------

struct KnownSid {
    std::string_view alias; // SDDL alias, "" when none
    std::string_view sid;   // full SID, or the RID of a domain-relative one ("-515")
    std::string_view name;
};

// Domain-relative SIDs are S-1-5-21-<domain>-<RID>; their `sid` starts with '-'.
constexpr std::array<KnownSid, 21> kKnownSids = {{
    {"DC", "-515", "Domain Computers"},
    {"DD", "-516", "Domain Controllers"},
    {"RO", "-498", "Enterprise Read-only Domain Controllers"},
    {"", "-521", "Read-only Domain Controllers"},
    {"DA", "-512", "Domain Admins"},
    {"DU", "-513", "Domain Users"},
    {"DG", "-514", "Domain Guests"},
    {"EA", "-519", "Enterprise Admins"},
    {"NS", "S-1-5-20", "Network Service"},
    {"LS", "S-1-5-19", "Local Service"},
    {"SY", "S-1-5-18", "Local System"},
    {"AU", "S-1-5-11", "Authenticated Users"},
    {"ED", "S-1-5-9", "Enterprise Domain Controllers"},
    {"AN", "S-1-5-7", "Anonymous"},
    {"NU", "S-1-5-2", "Network logon users"},
    {"IU", "S-1-5-4", "Interactive users"},
    {"WD", "S-1-1-0", "Everyone"},
    {"BA", "S-1-5-32-544", "Administrators (built-in)"},
    {"BU", "S-1-5-32-545", "Users (built-in)"},
    {"NO", "S-1-5-32-556", "Network Configuration Operators"},
    {"CO", "S-1-3-0", "Creator Owner"},
}};

std::string describe_known(const KnownSid& k) {
    std::string sid =
        k.sid.front() == '-' ? "S-1-5-21-<domain>" + std::string(k.sid) : std::string(k.sid);
    return std::string(k.name) + " (" + sid + ")";
}

// What an ACE's SID means for wec (for the warning about AllowedSourceDomainComputers).
std::string sid_hint(std::string_view name, bool deny) {
    std::string_view list = deny ? "denied_clients" : "allowed_clients";
    if (name == "Domain Computers")
        return "every computer account of the domain: in wec, " + std::string(list) +
               " = [\"*$@YOUR.REALM\"]";
    if (name == "Domain Controllers")
        return "the domain controllers' computer accounts: in wec, their principals in " +
               std::string(list) + ", e.g. \"DC01$@YOUR.REALM\"";
    if (name == "Network Service") return "the account Windows' forwarding service runs as";
    if (name == "Everyone" || name == "Authenticated Users")
        return deny ? "every client: in wec, denied_clients = [\"*\"]"
                    : "every client that authenticates: in wec, an empty allowed_clients";
    return {};
}

} // namespace

std::string well_known_sid(std::string_view sid) {
    for (const auto& k : kKnownSids) {
        if (!k.alias.empty() && iequals(sid, k.alias)) return describe_known(k);
        if (k.sid.front() != '-') {
            if (iequals(sid, k.sid)) return describe_known(k);
            continue;
        }
        // S-1-5-21-a-b-c-RID
        constexpr std::string_view kDomain = "S-1-5-21-";
        if (sid.size() > kDomain.size() + k.sid.size() && iequals(sid.substr(0, 9), kDomain) &&
            sid.substr(sid.size() - k.sid.size()) == k.sid)
            return describe_known(k);
    }
    return {};
}

Sddl parse_sddl(std::string_view sddl) {
    Sddl out;
    auto fail = [&](std::string reason) {
        out.dacl.clear();
        out.error = std::move(reason);
        return out;
    };
    sddl = text::trim_xml_space(sddl);
    std::size_t i = 0;
    bool in_dacl = false;
    while (i < sddl.size()) {
        char c = sddl[i];
        if (i + 1 < sddl.size() && sddl[i + 1] == ':' &&
            (c == 'O' || c == 'G' || c == 'D' || c == 'S')) {
            in_dacl = c == 'D';
            i += 2;
            continue;
        }
        if (c == '(') {
            // One ACE: fields separated by ';' outside nested parentheses (conditional ACEs).
            std::size_t depth = 0, j = i;
            std::vector<std::string> fields(1);
            for (; j < sddl.size(); ++j) {
                char d = sddl[j];
                if (d == '(') {
                    if (depth++ > 0) fields.back() += d;
                } else if (d == ')') {
                    if (--depth == 0) break;
                    fields.back() += d;
                } else if (d == ';' && depth == 1) {
                    fields.emplace_back();
                } else {
                    fields.back() += d;
                }
            }
            if (j == sddl.size())
                return fail("unbalanced parentheses at character " + std::to_string(i + 1));
            if (fields.size() < 6)
                return fail("ACE '" + std::string(sddl.substr(i, j - i + 1)) + "' has " +
                            std::to_string(fields.size()) + " fields, expected 6");
            if (in_dacl) {
                SddlAce ace{fields[0], fields[2], std::string(text::trim_xml_space(fields[5])), {}};
                ace.account = well_known_sid(ace.sid);
                if (ace.account.empty()) {
                    if (ace.sid.rfind("S-1-5-21-", 0) == 0) {
                        auto rid = ace.sid.substr(ace.sid.rfind('-') + 1);
                        ace.account = "a domain group or account (" + ace.sid + ", RID " + rid +
                                      ") whose members wec cannot look up";
                    } else {
                        ace.account = "the account or group " + ace.sid;
                    }
                }
                out.dacl.push_back(std::move(ace));
            }
            i = j + 1;
            continue;
        }
        if (c == ')') return fail("unbalanced parentheses at character " + std::to_string(i + 1));
        ++i; // owner/group SIDs, DACL flags (P, AI, AR)
    }
    return out;
}

namespace {

// ---- the description trailer ----------------------------------------------------------------

using Kept = std::map<std::string_view, std::string>; // key (kKeptKeys) -> value

bool keepable(std::string_view value) {
    return value.find('\n') == std::string_view::npos &&
           value.find('\r') == std::string_view::npos && text::trim_xml_space(value) == value;
}

std::string kept_lines(const Kept& kept) {
    std::string out;
    for (auto key : kKeptKeys) {
        auto it = kept.find(key);
        if (it == kept.end()) continue;
        if (!out.empty()) out += '\n';
        out += kKeptPrefix;
        out += key;
        out += ':';
        if (!it->second.empty()) out += ' ' + it->second;
    }
    return out;
}

bool is_default(std::string_view key, std::string_view value) {
    if (key == "TransportName") return iequals(value, kDefaultTransport);
    if (key == "LogFile") return value == kDefaultLogFile;
    if (key == "PublisherName") return value == kDefaultPublisher;
    if (key == "AllowedSourceDomainComputers") return value == kDefaultDomainComputersSddl;
    return false;
}

// Splits a description into the operator's text and the kept Windows settings, exactly as
// read_windows_xml joined them; a description that is not such a join stays whole.
std::pair<std::string, Kept> split_description(const std::string& description) {
    for (std::size_t p = 0; p < description.size();) {
        bool candidate = description.compare(p, kKeptPrefix.size(), kKeptPrefix) == 0 &&
                         (p == 0 || description[p - 1] == '\n');
        if (candidate) {
            std::string prefix = p == 0 ? std::string() : description.substr(0, p - 1);
            bool ok = p == 0 || (!prefix.empty() && text::trim_xml_space(prefix) == prefix);
            Kept kept;
            std::size_t next_key = 0; // keys in kKeptKeys order, each once
            std::string_view rest = std::string_view(description).substr(p);
            while (ok && !rest.empty()) {
                auto end = rest.find('\n');
                std::string_view line = rest.substr(0, end);
                rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
                if (end != std::string_view::npos && rest.empty()) ok = false; // trailing '\n'
                if (line.rfind(kKeptPrefix, 0) != 0) {
                    ok = false;
                    break;
                }
                line.remove_prefix(kKeptPrefix.size());
                auto colon = line.find(':');
                if (colon == std::string_view::npos) {
                    ok = false;
                    break;
                }
                auto key = line.substr(0, colon);
                auto value = line.substr(colon + 1);
                auto k = std::find(kKeptKeys.begin() + static_cast<std::ptrdiff_t>(next_key),
                                   kKeptKeys.end(), key);
                if (k == kKeptKeys.end()) {
                    ok = false;
                    break;
                }
                next_key = static_cast<std::size_t>(k - kKeptKeys.begin()) + 1;
                if (!value.empty()) {
                    if (value.front() != ' ') {
                        ok = false;
                        break;
                    }
                    value.remove_prefix(1);
                    if (value.empty() || text::trim_xml_space(value) != value) {
                        ok = false;
                        break;
                    }
                } else if (*k != "AllowedSourceDomainComputers") {
                    ok = false;
                    break;
                }
                if (is_default(*k, value)) {
                    ok = false;
                    break;
                }
                kept[*k] = std::string(value);
            }
            if (ok && !kept.empty()) return {prefix, kept};
        }
        auto nl = description.find('\n', p);
        if (nl == std::string::npos) break;
        p = nl + 1;
    }
    return {description, {}};
}

// ---- reading --------------------------------------------------------------------------------

std::string decode(std::span<const std::uint8_t> bytes, std::size_t& replaced) {
    std::string raw;
    if (bytes.size() >= 2 &&
        ((bytes[0] == 0xFF && bytes[1] == 0xFE) || (bytes[0] == 0xFE && bytes[1] == 0xFF))) {
        raw = text::utf16_to_utf8(bytes); // skips the BOM
    } else if (bytes.size() >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF) {
        raw.assign(as_chars(bytes.subspan(3)));
    } else if (bytes.size() >= 2 && bytes[0] == '<' && bytes[1] == 0) {
        text::append_utf16le_to_utf8(bytes, raw); // UTF-16 without a BOM
    } else if (bytes.size() >= 2 && bytes[0] == 0 && bytes[1] == '<') {
        text::append_utf16be_to_utf8(bytes, raw);
    } else {
        raw.assign(as_chars(bytes));
    }
    std::string valid;
    valid.reserve(raw.size());
    replaced = text::append_valid_utf8(raw, valid);
    // Line breaks as XML reads them (CRLF and CR -> LF), before parsing: the offsets pugixml
    // gives, and those of CDATA content, are then offsets in this text.
    std::string out;
    out.reserve(valid.size());
    for (std::size_t i = 0; i < valid.size(); ++i) {
        if (valid[i] == '\r') {
            out += '\n';
            if (i + 1 < valid.size() && valid[i + 1] == '\n') ++i;
        } else {
            out += valid[i];
        }
    }
    return out;
}

class XmlReader {
public:
    XmlReader(std::string text, std::string source, bool check_query)
        : text_(std::move(text)), source_(std::move(source)), check_query_(check_query) {}

    WindowsImport read() {
        if (auto nul = text_.find('\0'); nul != std::string::npos)
            fail(Kind::Unreadable, nul, "a NUL character (not a text file?)");
        auto result =
            doc_.load_buffer(text_.data(), text_.size(), pugi::parse_default, pugi::encoding_utf8);
        if (!result)
            fail(Kind::Malformed,
                 static_cast<std::size_t>(std::max<std::ptrdiff_t>(result.offset, 0)),
                 std::string("not well-formed XML: ") + result.description());
        pugi::xml_node root;
        for (auto child : doc_.children())
            if (child.type() == pugi::node_element) {
                root = child;
                break;
            }
        if (!root) fail(Kind::Malformed, 0, "no root element");
        if (local_name(root) != "Subscription")
            fail_at(Kind::Namespace, root,
                    "the root element is <" + std::string(root.name()) +
                        ">, not <Subscription> (a Windows subscription file, as `wecutil gs NAME "
                        "/f:xml` writes it)");
        auto ns = namespace_of(root);
        if (!ns)
            warn(root, "Subscription",
                 "no namespace: wecutil expects xmlns=\"" + std::string(kWecutilNamespace) +
                     "\" (read as if it were there)");
        else if (*ns != kWecutilNamespace)
            fail_at(Kind::Namespace, root,
                    "namespace '" + *ns + "' is not the Windows subscription namespace '" +
                        std::string(kWecutilNamespace) + "'");
        root_ = root;

        for (auto node : root.children()) {
            if (node.type() != pugi::node_element) {
                if (node.type() == pugi::node_pcdata || node.type() == pugi::node_cdata)
                    warn(node, "Subscription",
                         "text '" + cut_utf8(clean(text::trim_xml_space(node.value())), 40) +
                             "' outside any element, ignored");
                continue;
            }
            element(node);
        }
        finish();
        // In file order; those about the whole file last.
        std::stable_sort(warnings_.begin(), warnings_.end(), [](const auto& a, const auto& b) {
            auto key = [](const XmlWarning& w) {
                return std::pair(w.line == 0 ? std::numeric_limits<std::uint32_t>::max() : w.line,
                                 w.column);
            };
            return key(a) < key(b);
        });
        return {std::move(sub_), std::move(warnings_)};
    }

private:
    // ---- positions, errors, warnings

    std::size_t offset_of(const pugi::xml_node& node) const {
        auto offset = node.offset_debug();
        if (offset < 0) return 0;
        auto o = static_cast<std::size_t>(offset);
        if (node.type() == pugi::node_element && o > 0 && o <= text_.size() && text_[o - 1] == '<')
            --o;
        return o;
    }

    [[noreturn]] void fail(Kind kind, std::size_t offset, const std::string& reason) const {
        auto [line, column] = text::line_column(text_, offset);
        throw WindowsXmlError(kind, source_, line, column, reason);
    }
    [[noreturn]] void fail_at(Kind kind, const pugi::xml_node& node,
                              const std::string& reason) const {
        fail(kind, offset_of(node), reason);
    }
    [[noreturn]] void invalid(const pugi::xml_node& node, const std::string& reason) const {
        fail_at(Kind::Invalid, node, std::string(local_name(node)) + ": " + reason);
    }

    void warn(const pugi::xml_node& node, std::string element, std::string message) {
        auto [line, column] = node ? text::line_column(text_, offset_of(node))
                                   : std::pair<std::uint32_t, std::uint32_t>{0, 0};
        warnings_.push_back({std::move(element), line, column, std::move(message)});
    }

    // ---- values

    // The text of an element (its text and CDATA children), cleaned; element children are an
    // error (a value was expected).
    std::string text_of(const pugi::xml_node& node) const {
        std::string out;
        for (auto child : node.children()) {
            if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata)
                out += child.value();
            else if (child.type() == pugi::node_element)
                invalid(node,
                        std::string("expected a value, found the element <") + child.name() + ">");
        }
        return clean(out);
    }
    std::string value_of(const pugi::xml_node& node) const {
        return std::string(text::trim_xml_space(text_of(node)));
    }

    bool boolean(const pugi::xml_node& node) const {
        auto v = value_of(node);
        if (iequals(v, "true")) return true;
        if (iequals(v, "false")) return false;
        invalid(node, "expected true or false, got '" + cut_utf8(v, 40) + "'");
    }

    std::uint64_t number(const pugi::xml_node& node, std::string_view value) const {
        std::uint64_t n = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (value.empty() || ec != std::errc() || end != value.data() + value.size())
            invalid(node, "expected a non-negative integer, got '" +
                              cut_utf8(std::string(value), 40) + "'");
        return n;
    }

    // Milliseconds of the XML -> seconds of wec, with a warning when the value is not exact.
    std::uint32_t seconds(const pugi::xml_node& node, std::string element, std::uint64_t ms) {
        std::uint64_t s = ms / 1000 + (ms % 1000 >= 500 ? 1 : 0);
        if (s == 0) {
            warn(node, element,
                 std::to_string(ms) + " ms is below wec's smallest value, 1 s: 1 s is used");
            return 1;
        }
        if (s > kMaxSeconds) {
            warn(node, element,
                 std::to_string(ms) + " ms is more than wec's largest value, " +
                     std::to_string(kMaxSeconds) + " s (7 days): 7 days are used");
            return static_cast<std::uint32_t>(kMaxSeconds);
        }
        if (ms % 1000 != 0)
            warn(node, element,
                 std::to_string(ms) + " ms is not a whole number of seconds: " + std::to_string(s) +
                     " s is used");
        return static_cast<std::uint32_t>(s);
    }

    // ---- elements

    void element(const pugi::xml_node& node) {
        std::string name(local_name(node));
        if (auto it = seen_.find(name); it != seen_.end()) {
            auto [line, column] = text::line_column(text_, offset_of(it->second));
            invalid(node, "given twice (first at line " + std::to_string(line) + ", column " +
                              std::to_string(column) + ")");
        }
        seen_.emplace(name, node);
        if (auto ns = namespace_of(node); ns != namespace_of(root_)) {
            warn(node, name, "element in another namespace ('" + ns.value_or("") + "'), ignored");
            return;
        }

        if (name == "SubscriptionId") {
            auto v = value_of(node);
            if (v.empty()) invalid(node, "must not be empty");
            if (v.size() > 256) invalid(node, "longer than 256 bytes");
            for (char c : v)
                if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
                    invalid(node, "contains a control character");
            sub_.name = v;
        } else if (name == "SubscriptionType") {
            auto v = value_of(node);
            if (iequals(v, "CollectorInitiated"))
                fail_at(Kind::CollectorInitiated, node,
                        "SubscriptionType: CollectorInitiated is not supported: wec serves "
                        "source-initiated subscriptions only (the sources find the collector "
                        "through the 'Configure target Subscription Manager' policy and push "
                        "their events; a collector-initiated subscription pulls from a list of "
                        "computers). Recreate it as SourceInitiated and point the sources at wec "
                        "with that policy");
            if (!iequals(v, "SourceInitiated"))
                invalid(node, "expected SourceInitiated (or CollectorInitiated), got '" +
                                  cut_utf8(v, 40) + "'");
        } else if (name == "Description") {
            description_ = value_of(node);
            description_node_ = node;
        } else if (name == "Enabled") {
            sub_.enabled = boolean(node);
        } else if (name == "Uri") {
            auto v = value_of(node);
            if (!iequals(v, kEventLogUri))
                fail_at(Kind::Uri, node,
                        "Uri: '" + cut_utf8(v, 200) + "' is not the event log resource URI '" +
                            std::string(kEventLogUri) + "' (wec serves event subscriptions only)");
        } else if (name == "ConfigurationMode") {
            auto v = value_of(node);
            bool known = false;
            for (auto m : {ConfigurationMode::Normal, ConfigurationMode::Custom,
                           ConfigurationMode::MinLatency, ConfigurationMode::MinBandwidth})
                if (iequals(v, to_string(m))) {
                    mode_ = m;
                    known = true;
                }
            if (!known)
                invalid(node, "expected Normal, Custom, MinLatency or MinBandwidth, got '" +
                                  cut_utf8(v, 40) + "'");
            mode_node_ = node;
        } else if (name == "Delivery") {
            delivery(node);
        } else if (name == "Query") {
            query(node);
        } else if (name == "ReadExistingEvents") {
            sub_.read_existing_events = boolean(node);
        } else if (name == "ContentFormat") {
            auto v = value_of(node);
            if (iequals(v, "Events"))
                sub_.content_format = ContentFormat::Raw;
            else if (iequals(v, "RenderedText"))
                sub_.content_format = ContentFormat::RenderedText;
            else
                invalid(node, "expected Events or RenderedText, got '" + cut_utf8(v, 40) + "'");
        } else if (name == "Locale") {
            auto language = clean(text::trim_xml_space(node.attribute("Language").value()));
            if (language.size() > kMaxLocaleBytes)
                invalid(node, "Language longer than " + std::to_string(kMaxLocaleBytes) + " bytes");
            if (!language.empty()) sub_.locale = language;
            for (auto a : node.attributes())
                if (std::string_view(a.name()) != "Language")
                    warn(node, "Locale", std::string("attribute ") + a.name() + " ignored");
        } else if (name == "TransportName" || name == "TransportPort" || name == "LogFile" ||
                   name == "PublisherName" || name == "Expires") {
            not_applicable(node, name);
        } else if (name == "AllowedSourceNonDomainComputers") {
            non_domain(node);
        } else if (name == "AllowedSourceDomainComputers") {
            domain(node);
        } else if (name == "CredentialsType" || name == "CommonUserName" ||
                   name == "CommonPassword" || name == "EventSources" || name == "HostName") {
            warn(node, name,
                 "only used by collector-initiated subscriptions: not applicable, ignored");
        } else {
            warn(node, name, "unknown element, ignored");
        }
    }

    void not_applicable(const pugi::xml_node& node, const std::string& name) {
        auto v = value_of(node);
        if (v.empty()) return;
        if (is_default(name, v)) {
            defaults_.push_back(name + " '" + v + "'");
            return;
        }
        std::string why;
        if (name == "TransportName")
            why = "wec serves HTTP (Kerberos) and HTTPS (client certificates) on its own "
                  "listeners (wec serve)";
        else if (name == "TransportPort")
            why = "the ports are those wec serve listens on";
        else if (name == "LogFile")
            why = "wec writes events to the subscription's outputs, not to an event log";
        else if (name == "PublisherName")
            why = "wec does not write to an event log";
        else
            why = "wec subscriptions do not expire";
        keep(node, name, v, why);
    }

    // Keeps a Windows setting in the description (warning that it is not applied).
    void keep(const pugi::xml_node& node, std::string_view key, const std::string& value,
              const std::string& why) {
        std::string element(key == "IssuerCA"
                                ? "AllowedSourceNonDomainComputers/AllowedIssuerCAList"
                                : std::string(key));
        if (!keepable(value)) {
            warn(node, element,
                 "'" + cut_utf8(value, 80) + "' not applicable (" + why +
                     "); not kept (it spans lines)");
            return;
        }
        // The map's keys view kKeptKeys, not `key` (which may be a temporary).
        kept_[*std::find(kKeptKeys.begin(), kKeptKeys.end(), key)] = value;
        warn(node, element,
             "'" + cut_utf8(value, 200) + "' not applicable (" + why +
                 "); kept in the description, from which `wec sub export --format xml` restores "
                 "it");
    }

    void delivery(const pugi::xml_node& node) {
        delivery_node_ = node;
        std::string mode = clean(text::trim_xml_space(node.attribute("Mode").value()));
        if (iequals(mode, "Pull"))
            warn(node, "Delivery",
                 "Mode Pull is for collector-initiated subscriptions; wec's sources push their "
                 "events (Push)");
        else if (!mode.empty() && !iequals(mode, "Push"))
            warn(node, "Delivery", "unknown Mode '" + cut_utf8(mode, 40) + "', Push is used");
        for (auto child : node.children()) {
            if (child.type() != pugi::node_element) continue;
            auto name = local_name(child);
            if (name == "Batching") {
                for (auto b : child.children()) {
                    if (b.type() != pugi::node_element) continue;
                    if (local_name(b) == "MaxItems") {
                        max_items_ = number(b, value_of(b));
                        max_items_node_ = b;
                    } else if (local_name(b) == "MaxLatencyTime") {
                        max_latency_ms_ = number(b, value_of(b));
                        max_latency_node_ = b;
                    } else {
                        warn(b, "Delivery/Batching/" + std::string(local_name(b)),
                             "unknown element, ignored");
                    }
                }
            } else if (name == "PushSettings") {
                for (auto p : child.children()) {
                    if (p.type() != pugi::node_element) continue;
                    if (local_name(p) == "Heartbeat") {
                        auto interval =
                            clean(text::trim_xml_space(p.attribute("Interval").value()));
                        heartbeat_ms_ = number(p, interval);
                        heartbeat_node_ = p;
                    } else {
                        warn(p, "Delivery/PushSettings/" + std::string(local_name(p)),
                             "unknown element, ignored");
                    }
                }
            } else {
                warn(child, "Delivery/" + std::string(name),
                     "not applicable to source-initiated subscriptions, ignored");
            }
        }
    }

    void query(const pugi::xml_node& node) {
        query_node_ = node;
        std::string q;
        std::size_t cdata_nodes = 0;
        pugi::xml_node cdata;
        for (auto child : node.children()) {
            if (child.type() == pugi::node_cdata || child.type() == pugi::node_pcdata) {
                q += child.value();
                ++cdata_nodes;
                cdata = child;
            } else if (child.type() == pugi::node_element) {
                if (local_name(child) != "QueryList" || !text::trim_xml_space(q).empty())
                    invalid(node, std::string("expected a <QueryList> in CDATA, found <") +
                                      child.name() + ">");
                std::ostringstream out;
                child.print(out, "", pugi::format_raw);
                q += out.str();
                cdata_nodes = 2; // positions in the query do not map to the file
                warn(node, "Query",
                     "the QueryList is XML inside <Query>, not CDATA text as wecutil writes it "
                     "(read the same way)");
            }
        }
        // Where the query text starts in the file, when it is one CDATA section as written.
        std::string_view trimmed = text::trim_xml_space(q);
        if (cdata_nodes == 1 && cdata.type() == pugi::node_cdata && cdata.offset_debug() >= 0) {
            auto start = static_cast<std::size_t>(cdata.offset_debug());
            auto lead = static_cast<std::size_t>(trimmed.data() - q.data());
            if (text_.compare(start + lead, trimmed.size(), trimmed) == 0)
                query_offset_ = start + lead;
        }
        // A CR can only come from a character reference ("&#13;"): written back in CDATA it
        // would become a line break, so it is one already.
        sub_.query = clean(trimmed);
        std::replace(sub_.query.begin(), sub_.query.end(), '\r', '\n');
        if (sub_.query != trimmed) query_offset_.reset();
    }

    void non_domain(const pugi::xml_node& node) {
        for (auto child : node.children()) {
            if (child.type() != pugi::node_element) continue;
            auto name = std::string(local_name(child));
            std::vector<std::pair<std::string, pugi::xml_node>> items;
            for (auto item : child.children())
                if (item.type() == pugi::node_element) {
                    auto v = value_of(item);
                    if (!v.empty()) items.emplace_back(v, item);
                }
            std::string element = "AllowedSourceNonDomainComputers/" + name;
            if (name == "AllowedIssuerCAList") {
                if (items.empty()) continue;
                std::string list;
                bool ok = true;
                for (const auto& [thumbprint, item] : items) {
                    if (thumbprint.find_first_of(", \t\r\n") != std::string::npos) ok = false;
                    list += (list.empty() ? "" : ",") + thumbprint;
                }
                std::string why =
                    "wec does not limit a subscription to issuing CAs: the CAs whose client "
                    "certificates are accepted are set for the whole collector (wec serve, "
                    "docs/tls.md)";
                if (ok)
                    keep(child, "IssuerCA", list, why);
                else
                    warn(child, element,
                         "'" + cut_utf8(list, 200) + "' not applicable (" + why +
                             "); not kept (a thumbprint holds a space or comma)");
            } else if (name == "AllowedSubjectList" || name == "DeniedSubjectList") {
                bool allowed = name == "AllowedSubjectList";
                auto& list = allowed ? sub_.allowed_clients : sub_.denied_clients;
                for (const auto& [subject, item] : items) {
                    try {
                        Subscription probe;
                        (allowed ? probe.allowed_clients : probe.denied_clients) = {subject};
                        probe.name = "probe";
                        probe.query = "<QueryList><Query Id=\"0\"><Select Path=\"A\">*</Select>"
                                      "</Query></QueryList>";
                        validate(probe, "probe");
                        list.push_back(subject);
                    } catch (const SubscriptionError& e) {
                        warn(item, element + "/Subject",
                             "'" + cut_utf8(subject, 80) + "' cannot be a wec pattern (" +
                                 e.reason() + "), ignored");
                    }
                }
                if (allowed && !sub_.allowed_clients.empty())
                    warn(child, element,
                         "mapped to allowed_clients: wec matches these patterns against every "
                         "client's identity (the certificate subject CN over HTTPS, the Kerberos "
                         "principal such as HOST$@REALM over HTTP), so the domain computers "
                         "AllowedSourceDomainComputers admits on Windows are refused unless a "
                         "pattern such as \"*$@YOUR.REALM\" is added");
            } else {
                warn(child, element, "unknown element, ignored");
            }
        }
    }

    void domain(const pugi::xml_node& node) {
        auto sddl = value_of(node);
        domain_node_ = node;
        std::string what;
        if (sddl.empty()) {
            what = "empty: on Windows no domain computer may use this subscription (only "
                   "certificate sources, AllowedSourceNonDomainComputers)";
        } else {
            auto parsed = parse_sddl(sddl);
            if (!parsed.error.empty()) {
                what =
                    "SDDL '" + cut_utf8(sddl, 200) + "' could not be read (" + parsed.error + ")";
            } else {
                std::string allows, denies, hints;
                for (const auto& ace : parsed.dacl) {
                    std::string entry = ace.account;
                    auto& list = ace.type == "D" ? denies : allows;
                    if (ace.type != "A" && ace.type != "D") {
                        entry += " (ACE type " + ace.type + ")";
                    }
                    list += (list.empty() ? "" : ", ") + entry;
                    auto hint =
                        sid_hint(ace.account.substr(0, ace.account.find(" (")), ace.type == "D");
                    if (!hint.empty())
                        hints += (hints.empty() ? "" : "; ") +
                                 ace.account.substr(0, ace.account.find(" (")) + ": " +
                                 std::string(hint);
                }
                what = "SDDL '" + cut_utf8(sddl, 200) + "' allows " +
                       (allows.empty() ? "nobody" : allows);
                if (!denies.empty()) what += " and denies " + denies;
                if (!hints.empty()) what += " (" + hints + ")";
            }
        }
        what += ". wec does not evaluate Windows groups: every client that authenticates "
                "(Kerberos in wec's realm, or a certificate from a CA wec trusts) may use the "
                "subscription unless allowed_clients/denied_clients (principal globs) say "
                "otherwise";
        if (is_default("AllowedSourceDomainComputers", sddl)) {
            warn(node, "AllowedSourceDomainComputers", what);
            return;
        }
        if (!keepable(sddl)) {
            warn(node, "AllowedSourceDomainComputers", what + "; not kept (it spans lines)");
            return;
        }
        kept_["AllowedSourceDomainComputers"] = sddl;
        warn(node, "AllowedSourceDomainComputers",
             what + "; kept in the description, from which `wec sub export --format xml` "
                    "restores it");
    }

    // ---- after the last element

    void finish() {
        if (sub_.name.empty()) fail_at(Kind::Invalid, root_, "Subscription: no <SubscriptionId>");
        if (!query_node_) fail_at(Kind::Invalid, root_, "Subscription: no <Query>");
        if (!seen_.count("Uri"))
            warn(root_, "Uri", "missing: taken as " + std::string(kEventLogUri));
        if (!seen_.count("SubscriptionType"))
            warn(root_, "SubscriptionType", "missing: taken as SourceInitiated");
        if (!seen_.count("ContentFormat")) {
            sub_.content_format = ContentFormat::RenderedText;
            warn(root_, "ContentFormat",
                 "missing: Windows' default, RenderedText, is used (Events, content_format "
                 "Raw, is 2-3 times smaller)");
        }
        if (check_query_) check_query();
        delivery_values_from_mode();
        if (!defaults_.empty()) {
            std::string list;
            for (const auto& d : defaults_)
                list += (list.empty() ? "" : ", ") + d;
            warnings_.push_back({"", 0, 0,
                                 "not applicable to wec, ignored (Windows' default values, "
                                 "restored by `wec sub export --format xml`): " +
                                     list});
        }
        description();
        try {
            validate(sub_, source_, check_query_);
        } catch (const SubscriptionError& e) {
            fail_at(Kind::Invalid, root_, e.reason());
        }
    }

    void check_query() {
        auto problems = subscription::check_query(sub_.query);
        if (problems.empty()) return;
        // Positions in the file when the query is the CDATA as written, else in the query.
        auto where = [&](const QueryProblem& p) -> std::pair<std::size_t, std::string> {
            if (p.line != 0 && query_offset_) {
                auto offset = *query_offset_ + p.offset;
                auto [line, column] = text::line_column(text_, offset);
                QueryProblem q = p;
                q.line = 0;
                return {offset, "line " + std::to_string(line) + ", column " +
                                    std::to_string(column) + ": " + q.describe()};
            }
            return {offset_of(query_node_), (p.line != 0 ? "in the query, " : "") + p.describe()};
        };
        auto [offset, first] = where(problems.front());
        std::string reason = "Query: ";
        if (problems.front().line != 0 && query_offset_) {
            QueryProblem q = problems.front();
            q.line = 0;
            reason += q.describe();
        } else {
            reason += first;
        }
        if (problems.size() > 1) {
            reason += " (and " + std::to_string(problems.size() - 1) + " more:";
            for (std::size_t i = 1; i < problems.size() && i <= 100; ++i)
                reason += (i == 1 ? " " : "; ") + where(problems[i]).second;
            if (problems.size() > 101)
                reason += "; ... " + std::to_string(problems.size() - 101) + " not shown";
            reason += ")";
        }
        fail(Kind::Invalid, offset, reason);
    }

    void delivery_values_from_mode() {
        if (!mode_node_)
            warn(root_, "ConfigurationMode",
                 "missing: Windows' default, Normal, is used (" +
                     mode_values(ConfigurationMode::Normal) + ")");
        if (mode_ == ConfigurationMode::Custom) {
            if (max_items_) {
                if (*max_items_ == 0) {
                    warn(max_items_node_, "Delivery/Batching/MaxItems", "0: no limit is used");
                } else if (*max_items_ > kMaxItems) {
                    warn(max_items_node_, "Delivery/Batching/MaxItems",
                         std::to_string(*max_items_) + " is more than wec's largest value: " +
                             std::to_string(kMaxItems) + " is used");
                    sub_.max_elements = static_cast<std::uint32_t>(kMaxItems);
                } else {
                    sub_.max_elements = static_cast<std::uint32_t>(*max_items_);
                }
            }
            if (max_latency_ms_)
                sub_.max_latency_s = seconds(max_latency_node_, "Delivery/Batching/MaxLatencyTime",
                                             *max_latency_ms_);
            else
                warn(delivery_node_ ? delivery_node_ : mode_node_,
                     "Delivery/Batching/MaxLatencyTime",
                     "missing with ConfigurationMode Custom: wec's default, " +
                         std::to_string(sub_.max_latency_s) + " s, is used");
            if (heartbeat_ms_)
                sub_.heartbeat_interval_s =
                    seconds(heartbeat_node_, "Delivery/PushSettings/Heartbeat", *heartbeat_ms_);
            else
                warn(delivery_node_ ? delivery_node_ : mode_node_,
                     "Delivery/PushSettings/Heartbeat",
                     "missing with ConfigurationMode Custom: wec's default, " +
                         std::to_string(sub_.heartbeat_interval_s) + " s, is used");
            return;
        }
        auto v = delivery_values(mode_);
        sub_.max_elements = v.max_items;
        sub_.max_latency_s = v.max_latency_s;
        sub_.heartbeat_interval_s = v.heartbeat_s;
        // Windows applies the mode's values and ignores <Delivery>'s (wecutil gs writes them
        // too, equal to the mode's): say so when they differ.
        std::string differs;
        if (max_items_ && (!v.max_items || *max_items_ != *v.max_items))
            differs += "MaxItems " + std::to_string(*max_items_);
        if (max_latency_ms_ && *max_latency_ms_ != std::uint64_t{v.max_latency_s} * 1000)
            differs += (differs.empty() ? "" : ", ") + std::string("MaxLatencyTime ") +
                       std::to_string(*max_latency_ms_) + " ms";
        if (heartbeat_ms_ && *heartbeat_ms_ != std::uint64_t{v.heartbeat_s} * 1000)
            differs += (differs.empty() ? "" : ", ") + std::string("Heartbeat ") +
                       std::to_string(*heartbeat_ms_) + " ms";
        if (!differs.empty())
            warn(delivery_node_, "Delivery",
                 differs + " ignored, as Windows does: ConfigurationMode " +
                     std::string(to_string(mode_)) + " means " + mode_values(mode_) +
                     " (ConfigurationMode Custom would use the Delivery values)");
    }

    static std::string mode_values(ConfigurationMode mode) {
        auto v = delivery_values(mode);
        std::string out = v.max_items ? "batches of " + std::to_string(*v.max_items) + " events, "
                                      : std::string();
        return out + "max_latency " + std::to_string(v.max_latency_s) + " s, heartbeat_interval " +
               std::to_string(v.heartbeat_s) + " s";
    }

    void description() {
        std::string description = description_;
        if (description.size() > kMaxDescriptionBytes) {
            description =
                std::string(text::trim_xml_space(cut_utf8(description, kMaxDescriptionBytes)));
            warn(description_node_, "Description",
                 "longer than " + std::to_string(kMaxDescriptionBytes) + " bytes: cut");
        }
        // Kept settings that do not fit are dropped, named, from the last one.
        std::string lines = kept_lines(kept_);
        while (!kept_.empty() && description.size() + 1 + lines.size() > kMaxDescriptionBytes) {
            auto last = std::find_if(kKeptKeys.rbegin(), kKeptKeys.rend(),
                                     [&](std::string_view k) { return kept_.count(k) != 0; });
            warnings_.push_back({std::string(*last), 0, 0,
                                 "not kept in the description after all: it would be longer "
                                 "than " +
                                     std::to_string(kMaxDescriptionBytes) + " bytes"});
            kept_.erase(*last);
            lines = kept_lines(kept_);
        }
        if (lines.empty())
            sub_.description = description;
        else
            sub_.description = description.empty() ? lines : description + "\n" + lines;
    }

    std::string text_;
    std::string source_;
    bool check_query_;
    pugi::xml_document doc_;
    pugi::xml_node root_;
    Subscription sub_;
    std::vector<XmlWarning> warnings_;
    std::map<std::string, pugi::xml_node> seen_;

    std::string description_;
    pugi::xml_node description_node_;
    Kept kept_;
    std::vector<std::string> defaults_;

    ConfigurationMode mode_ = ConfigurationMode::Normal;
    pugi::xml_node mode_node_;
    pugi::xml_node delivery_node_;
    std::optional<std::uint64_t> max_items_, max_latency_ms_, heartbeat_ms_;
    pugi::xml_node max_items_node_, max_latency_node_, heartbeat_node_;

    pugi::xml_node query_node_;
    std::optional<std::size_t> query_offset_;
    pugi::xml_node domain_node_;
};

} // namespace

WindowsXmlError::WindowsXmlError(Kind kind, std::string source, std::uint32_t line,
                                 std::uint32_t column, const std::string& reason)
    : SubscriptionError(std::move(source), line, column, reason), kind_(kind) {}

std::string XmlWarning::describe() const {
    std::string out;
    if (line != 0) out += std::to_string(line) + ":" + std::to_string(column) + ": ";
    if (!element.empty()) out += element + ": ";
    return out + message;
}

std::string_view to_string(ConfigurationMode mode) {
    switch (mode) {
    case ConfigurationMode::Normal:
        return "Normal";
    case ConfigurationMode::Custom:
        return "Custom";
    case ConfigurationMode::MinLatency:
        return "MinLatency";
    case ConfigurationMode::MinBandwidth:
        return "MinBandwidth";
    }
    return "Normal";
}

DeliveryValues delivery_values(ConfigurationMode mode) {
    // Microsoft, "Use Windows Event Forwarding to help with intrusion detection" (learn.microsoft
    // .com/windows/security/operating-system-security/device-management/use-windows-event-
    // forwarding-to-assist-in-intrusion-detection), table "Event delivery optimization options":
    //   Normal: "batches 5 items at a time and sets a batch timeout of 15 minutes";
    //   Minimize bandwidth: "a batch timeout of 6 hours ... a heartbeat interval of 6 hours";
    //   Minimize latency: "a batch timeout of 30 seconds".
    // The heartbeats of Normal and MinLatency are not on that page: they come from the
    // collector's registry, where the EC_SUBSCRIPTION_CONFIGURATION_MODE documentation says the
    // modes are defined (key SOFTWARE/Microsoft/Windows/CurrentVersion/EventCollector/
    // ConfigurationModes/<mode> under HKLM), as `wecutil gs` prints them: MinLatency
    // "DeliveryMaxLatencyTime: 30000, HeartbeatInterval: 3600000"; Normal "HeartbeatInterval:
    // 900000".
    switch (mode) {
    case ConfigurationMode::Normal:
        return {5, 900, 900};
    case ConfigurationMode::MinLatency:
        return {std::nullopt, 30, 3600};
    case ConfigurationMode::MinBandwidth:
        return {std::nullopt, 6 * 3600, 6 * 3600};
    case ConfigurationMode::Custom:
        break;
    }
    Subscription defaults;
    return {defaults.max_elements, defaults.max_latency_s, defaults.heartbeat_interval_s};
}

bool looks_like_xml(std::span<const std::uint8_t> bytes) {
    if (bytes.size() >= 2 &&
        ((bytes[0] == 0xFF && bytes[1] == 0xFE) || (bytes[0] == 0xFE && bytes[1] == 0xFF)))
        return true;
    std::size_t i = 0;
    if (bytes.size() >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF) i = 3;
    while (i < bytes.size() && text::is_xml_space(static_cast<char>(bytes[i])))
        ++i;
    return i < bytes.size() && bytes[i] == '<';
}

WindowsImport read_windows_xml(std::span<const std::uint8_t> bytes, const std::string& source_name,
                               const WindowsReadOptions& options) {
    if (bytes.size() > kMaxWindowsXmlBytes)
        throw WindowsXmlError(Kind::Unreadable, source_name, 0, 0,
                              "larger than " + std::to_string(kMaxWindowsXmlBytes) + " bytes");
    std::size_t replaced = 0;
    auto text = decode(bytes, replaced);
    auto result = XmlReader(std::move(text), source_name, options.check_query).read();
    if (replaced != 0)
        result.warnings.insert(result.warnings.begin(),
                               XmlWarning{"", 0, 0,
                                          std::to_string(replaced) +
                                              " invalid UTF-8/UTF-16 sequences replaced with "
                                              "U+FFFD"});
    return result;
}

WindowsImport read_windows_xml_file(const std::string& path, const WindowsReadOptions& options) {
    auto bytes = wec::read_file(path);
    return read_windows_xml(bytes, path, options);
}

// ---- writing --------------------------------------------------------------------------------

WindowsExport to_windows_xml(const Subscription& sub, const WindowsXmlOptions& options) {
    WindowsExport out;
    auto [description, kept] = split_description(sub.description);
    auto get = [&kept = kept](std::string_view key, std::string_view fallback) {
        auto it = kept.find(key);
        return it == kept.end() ? std::string(fallback) : it->second;
    };
    auto element = [](std::string_view indent, std::string_view name, std::string_view value) {
        return std::string(indent) + "<" + std::string(name) + ">" + xml_escape(value, false) +
               "</" + std::string(name) + ">\n";
    };
    std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    x += "<Subscription xmlns=\"" + std::string(kWecutilNamespace) + "\">\n";
    x += element("  ", "SubscriptionId", sub.name);
    if (options.subscription_type) x += element("  ", "SubscriptionType", "SourceInitiated");
    x += element("  ", "Description", description);
    x += element("  ", "Enabled", sub.enabled ? "true" : "false");
    x += element("  ", "Uri", kEventLogUri);
    x += element("  ", "ConfigurationMode", "Custom");
    x += "  <Delivery Mode=\"Push\">\n    <Batching>\n";
    if (sub.max_elements) x += element("      ", "MaxItems", std::to_string(*sub.max_elements));
    x += element("      ", "MaxLatencyTime",
                 std::to_string(std::uint64_t{sub.max_latency_s} * 1000));
    x += "    </Batching>\n    <PushSettings>\n";
    x += "      <Heartbeat Interval=\"" +
         std::to_string(std::uint64_t{sub.heartbeat_interval_s} * 1000) + "\"/>\n";
    x += "    </PushSettings>\n  </Delivery>\n";
    // CDATA cannot hold "]]>": split it across two sections.
    std::string query;
    for (std::size_t i = 0; i < sub.query.size(); ++i) {
        if (sub.query.compare(i, 3, "]]>") == 0) {
            query += "]]]]><![CDATA[>";
            i += 2;
        } else {
            query += sub.query[i];
        }
    }
    x += "  <Query><![CDATA[" + query + "]]></Query>\n";
    x += element("  ", "ReadExistingEvents", sub.read_existing_events ? "true" : "false");
    x += element("  ", "TransportName", get("TransportName", kDefaultTransport));
    if (kept.count("TransportPort")) x += element("  ", "TransportPort", kept["TransportPort"]);
    x += element("  ", "ContentFormat",
                 sub.content_format == ContentFormat::Raw ? "Events" : "RenderedText");
    if (sub.locale) x += "  <Locale Language=\"" + xml_escape(*sub.locale, true) + "\"/>\n";
    x += element("  ", "LogFile", get("LogFile", kDefaultLogFile));
    x += element("  ", "PublisherName", get("PublisherName", kDefaultPublisher));
    if (kept.count("Expires")) x += element("  ", "Expires", kept["Expires"]);
    x += "  <AllowedSourceNonDomainComputers>\n    <AllowedIssuerCAList>\n";
    if (auto it = kept.find("IssuerCA"); it != kept.end()) {
        std::string_view list = it->second;
        while (!list.empty()) {
            auto comma = list.find(',');
            auto one = list.substr(0, comma);
            if (!one.empty()) x += element("      ", "IssuerCA", one);
            list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
        }
    }
    x += "    </AllowedIssuerCAList>\n    <AllowedSubjectList>\n";
    for (const auto& p : sub.allowed_clients)
        x += element("      ", "Subject", p);
    x += "    </AllowedSubjectList>\n    <DeniedSubjectList>\n";
    for (const auto& p : sub.denied_clients)
        x += element("      ", "Subject", p);
    x += "    </DeniedSubjectList>\n  </AllowedSourceNonDomainComputers>\n";
    x += element("  ", "AllowedSourceDomainComputers",
                 get("AllowedSourceDomainComputers", kDefaultDomainComputersSddl));
    x += "</Subscription>\n";
    if (auto n = text::sanitize_xml_chars(x); n != 0)
        out.warnings.push_back(std::to_string(n) +
                               " characters XML cannot hold (control characters) replaced with "
                               "U+FFFD");
    out.xml = std::move(x);

    // What has no place in the file.
    auto& w = out.warnings;
    Subscription defaults;
    if (!sub.outputs.empty())
        w.push_back("outputs: not exported (Windows writes events to LogFile '" +
                    get("LogFile", kDefaultLogFile) + "')");
    if (sub.uri) w.push_back("uri '" + *sub.uri + "': not exported (wec-only)");
    if (sub.data_locale)
        w.push_back("data_locale '" + *sub.data_locale + "': not exported (no such element)");
    if (sub.max_envelope_size != defaults.max_envelope_size)
        w.push_back("max_envelope_size " + std::to_string(sub.max_envelope_size) +
                    ": not exported (no such element)");
    if (sub.ignore_channel_error != defaults.ignore_channel_error)
        w.push_back("ignore_channel_error false: not exported (no such element)");
    if (sub.connection_retry_count != defaults.connection_retry_count ||
        sub.connection_retry_interval_s != defaults.connection_retry_interval_s)
        w.push_back("connection_retry_count/connection_retry_interval: not exported (no such "
                    "element)");
    if (!sub.allowed_clients.empty() || !sub.denied_clients.empty()) {
        bool principals = false;
        for (const auto* list : {&sub.allowed_clients, &sub.denied_clients})
            for (const auto& p : *list)
                principals = principals || p.find('@') != std::string::npos;
        w.push_back(
            "allowed_clients/denied_clients written as AllowedSubjectList/DeniedSubjectList, "
            "which Windows applies to certificate (non-domain) sources only; domain computers "
            "are admitted by AllowedSourceDomainComputers ('" +
            get("AllowedSourceDomainComputers", kDefaultDomainComputersSddl) + "')" +
            (principals ? "; patterns with '@' are Kerberos principals, which no certificate "
                          "subject matches"
                        : ""));
    }
    return out;
}

} // namespace wec::subscription

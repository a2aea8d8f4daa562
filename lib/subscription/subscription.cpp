#include "subscription/subscription.hpp"

#include "common/files.hpp"
#include "common/handle.hpp"
#include "common/hex.hpp"
#include "output/output.hpp"
#include "text/text.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <memory>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <optional>
#include <pugixml.hpp>
#include <random>
#include <set>
#include <sstream>
#include <toml++/toml.h>
#include <tuple>
#include <utility>

namespace wec::subscription {

namespace {

std::string format_error(const std::string& source, std::uint32_t line, std::uint32_t column,
                         const std::string& reason) {
    std::string out = source;
    if (line != 0) {
        out += ':' + std::to_string(line);
        if (column != 0) out += ':' + std::to_string(column);
    }
    out += ": " + reason;
    return out;
}

char lower(char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.' ||
           c == ':' || static_cast<unsigned char>(c) >= 0x80;
}

// Where a problem is, for error messages.
struct Where {
    std::uint32_t line = 0;
    std::uint32_t column = 0;
};

Where where(const toml::source_region& region) {
    return {static_cast<std::uint32_t>(region.begin.line),
            static_cast<std::uint32_t>(region.begin.column)};
}

[[noreturn]] void fail(const std::string& source, Where at, const std::string& reason) {
    throw SubscriptionError(source, at.line, at.column, reason);
}

std::string_view type_name(const toml::node& node) {
    switch (node.type()) {
    case toml::node_type::string:
        return "a string";
    case toml::node_type::integer:
        return "an integer";
    case toml::node_type::floating_point:
        return "a float";
    case toml::node_type::boolean:
        return "a boolean";
    case toml::node_type::array:
        return "an array";
    case toml::node_type::table:
        return "a table";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
        return "a date/time";
    default:
        return "nothing";
    }
}

// Checks of single values, shared by load_toml (with positions) and validate (without).
constexpr std::size_t kMaxQueryBytes = 256 * 1024;
constexpr std::size_t kMaxStringBytes = 4096;
constexpr std::size_t kMaxAllowedClients = 4096;
constexpr std::size_t kMaxOutputs = 64;

void check_glob(const std::string& source, Where at, std::string_view pattern,
                std::string_view key = "allowed_clients") {
    const std::string k(key);
    if (pattern.empty()) fail(source, at, k + ": empty pattern");
    if (pattern.size() > 1024) fail(source, at, k + ": pattern longer than 1024 bytes");
    for (char c : pattern) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f || c == ' ')
            fail(source, at,
                 k + ": pattern '" + std::string(pattern) +
                     "' contains a space or control character");
        // '\\' is a literal character: NTLM identities are DOMAIN\\USER.
        if (c == '[' || c == ']')
            fail(source, at,
                 k + ": pattern '" + std::string(pattern) + "' uses '" + std::string(1, c) +
                     "' (only '*' and '?' are supported)");
    }
}

void check_name(const std::string& source, Where at, std::string_view name) {
    if (name.empty()) fail(source, at, "name: must not be empty");
    if (name.size() > 256) fail(source, at, "name: longer than 256 bytes");
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) fail(source, at, "name: contains a control character");
    }
}

void check_uri(const std::string& source, Where at, std::string_view uri) {
    if (uri.empty() || uri.front() != '/') fail(source, at, "uri: must start with '/'");
    for (char c : uri) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f || c == '?' || c == '#')
            fail(source, at, "uri: must be a plain path (no spaces, control characters, '?', '#')");
    }
}

void check_output(const std::string& source, Where at, const Output& output) {
    // The driver's own checks (keys, values), without opening anything.
    try {
        wec::output::check_settings(output.driver, output.options);
    } catch (const wec::output::OutputError& e) {
        fail(source, at, "outputs: " + std::string(e.what()));
    }
}

constexpr std::string_view kOutputFormatNames[] = {"raw", "json", "raw_json", "nxlog", "ecs"};

std::optional<OutputFormat> parse_output_format(std::string_view text) {
    for (std::size_t i = 0; i < std::size(kOutputFormatNames); ++i)
        if (text == kOutputFormatNames[i]) return static_cast<OutputFormat>(i);
    return std::nullopt;
}

std::optional<ContentFormat> parse_content_format(std::string_view text) {
    std::string l;
    for (char c : text)
        l += lower(c);
    if (l == "raw") return ContentFormat::Raw;
    if (l == "renderedtext") return ContentFormat::RenderedText;
    return std::nullopt;
}

// ---- TOML reading ---------------------------------------------------------------------------

class Reader {
public:
    Reader(std::string source, bool check_query)
        : source_(std::move(source)), check_query_(check_query) {}

    [[noreturn]] void fail_at(const toml::node& node, const std::string& reason) const {
        fail(source_, where(node.source()), reason);
    }

    std::string string(const toml::node& node, std::string_view key,
                       std::size_t max = kMaxStringBytes) const {
        const auto* value = node.as_string();
        if (value == nullptr)
            fail_at(node,
                    std::string(key) + ": expected a string, got " + std::string(type_name(node)));
        if (value->get().size() > max)
            fail_at(node, std::string(key) + ": longer than " + std::to_string(max) + " bytes");
        return value->get();
    }

    bool boolean(const toml::node& node, std::string_view key) const {
        const auto* value = node.as_boolean();
        if (value == nullptr)
            fail_at(node,
                    std::string(key) + ": expected a boolean, got " + std::string(type_name(node)));
        return value->get();
    }

    std::uint32_t integer(const toml::node& node, std::string_view key, std::int64_t min,
                          std::int64_t max) const {
        const auto* value = node.as_integer();
        if (value == nullptr)
            fail_at(node, std::string(key) + ": expected an integer, got " +
                              std::string(type_name(node)));
        std::int64_t v = value->get();
        if (v < min || v > max)
            fail_at(node, std::string(key) + ": " + std::to_string(v) + " is out of range [" +
                              std::to_string(min) + ", " + std::to_string(max) + "]");
        return static_cast<std::uint32_t>(v);
    }

    std::vector<std::pair<std::string, const toml::node*>>
    string_array(const toml::node& node, std::string_view key, std::size_t max_items) const {
        const auto* array = node.as_array();
        if (array == nullptr)
            fail_at(node, std::string(key) + ": expected an array of strings, got " +
                              std::string(type_name(node)));
        if (array->size() > max_items)
            fail_at(node,
                    std::string(key) + ": more than " + std::to_string(max_items) + " entries");
        std::vector<std::pair<std::string, const toml::node*>> out;
        for (const auto& item : *array)
            out.emplace_back(string(item, key), &item);
        return out;
    }

    Output output(const toml::node& node) const {
        const auto* table = node.as_table();
        if (table == nullptr)
            fail_at(node, "outputs: expected a table, got " + std::string(type_name(node)));
        Output out;
        bool have_driver = false;
        std::map<std::string, const toml::node*> nodes; // where each setting was given
        for (const auto& [key, value] : *table) {
            const std::string k(key.str());
            if (k == "driver") {
                out.driver = string(value, "outputs.driver", 64);
                if (!wec::output::is_known_driver(out.driver))
                    fail_at(value, "outputs.driver: unknown driver '" + out.driver + "' (known: " +
                                       std::string(wec::output::known_drivers()) + ")");
                have_driver = true;
            } else if (k == "format") {
                const std::string name = string(value, "outputs.format", 64);
                auto format = parse_output_format(name);
                if (!format)
                    fail_at(value, "outputs.format: unknown format '" + name +
                                       "' (known: raw, json, raw_json, nxlog, ecs)");
                out.format = *format;
            } else if (k == "queue") {
                const auto* i = value.as_integer();
                if (!i || i->get() < 1 || i->get() > kMaxOutputQueue)
                    fail_at(value, "outputs.queue: expected an integer in [1, " +
                                       std::to_string(kMaxOutputQueue) +
                                       "] (batches that may wait for this output)");
                out.queue = static_cast<std::uint32_t>(i->get());
            } else if (const auto* options = value.as_table(); options && k == "options") {
                option_table(*options, "options.", out, nodes, 1);
            } else {
                option(key, value, k, out, nodes);
            }
        }
        if (!have_driver) fail_at(node, "outputs: missing key 'driver'");
        try {
            wec::output::check_settings(out.driver, out.options);
        } catch (const wec::output::SettingError& e) {
            // At the offending key's value when there is one, else at the table.
            auto at = nodes.find(e.key());
            fail_at(at != nodes.end() ? *at->second : node, "outputs: " + std::string(e.what()));
        }
        return out;
    }

    // One driver setting (a string, integer or boolean) named `name` in Output::options.
    void option(const toml::key& key, const toml::node& value, const std::string& name, Output& out,
                std::map<std::string, const toml::node*>& nodes) const {
        if (nodes.count(name))
            fail(source_, where(key.source()), "outputs." + name + ": given twice");
        if (value.is_string()) {
            out.options[name] = string(value, "outputs." + name);
        } else if (const auto* i = value.as_integer()) {
            out.options[name] = i->get();
        } else if (const auto* b = value.as_boolean()) {
            out.options[name] = b->get();
        } else {
            fail(source_, where(key.source()),
                 "outputs." + name + ": expected a string, integer or boolean, got " +
                     std::string(type_name(value)));
        }
        nodes[name] = &value;
    }

    // [outputs.options] (the kafka driver's librdkafka properties): flattened to settings named
    // "options.<name>". A dotted key (`sasl.mechanism = "PLAIN"`, a nested table in TOML) and a
    // quoted one (`"sasl.mechanism" = "PLAIN"`) both give "options.sasl.mechanism".
    void option_table(const toml::table& table, const std::string& prefix, Output& out,
                      std::map<std::string, const toml::node*>& nodes, int depth) const {
        for (const auto& [key, value] : table) {
            const std::string name = prefix + std::string(key.str());
            if (const auto* sub = value.as_table()) {
                if (depth >= 8) fail_at(value, "outputs." + name + ": nested too deep");
                option_table(*sub, name + ".", out, nodes, depth + 1);
            } else {
                option(key, value, name, out, nodes);
            }
        }
    }

    Subscription read(const toml::table& root) const {
        Subscription sub;
        bool have_name = false;
        const toml::node* query_node = nullptr;
        const toml::node* channels_node = nullptr;
        const toml::node* xpath_node = nullptr;
        std::vector<std::string> channels;
        std::string xpath = "*";

        for (const auto& [key, value] : root) {
            const std::string k(key.str());
            if (k == "name") {
                sub.name = string(value, k);
                check_name(source_, where(value.source()), sub.name);
                have_name = true;
            } else if (k == "uuid") {
                sub.uuid = string(value, k, 64);
                if (!is_uuid(sub.uuid))
                    fail_at(value, "uuid: expected 8-4-4-4-12 hexadecimal digits");
                for (auto& c : sub.uuid)
                    c = static_cast<char>(std::toupper(c));
            } else if (k == "description") {
                sub.description = string(value, k);
            } else if (k == "query") {
                sub.query = string(value, k, kMaxQueryBytes);
                query_node = &value;
            } else if (k == "channels") {
                channels_node = &value;
                for (auto& [channel, node] : string_array(value, k, kMaxSelectPaths + 1)) {
                    if (channel.empty()) fail_at(*node, "channels: empty channel name");
                    channels.push_back(std::move(channel));
                }
                if (channels.empty()) fail_at(value, "channels: must list at least one channel");
            } else if (k == "xpath") {
                xpath = string(value, k, kMaxQueryBytes);
                xpath_node = &value;
            } else if (k == "content_format") {
                auto format = parse_content_format(string(value, k, 64));
                if (!format) fail_at(value, "content_format: must be \"Raw\" or \"RenderedText\"");
                sub.content_format = *format;
            } else if (k == "heartbeat_interval") {
                sub.heartbeat_interval_s = integer(value, k, 1, 7 * 24 * 3600);
            } else if (k == "max_latency") {
                sub.max_latency_s = integer(value, k, 1, 7 * 24 * 3600);
            } else if (k == "max_envelope_size") {
                sub.max_envelope_size = integer(value, k, 8192, 0x7fffffff);
            } else if (k == "max_elements") {
                sub.max_elements = integer(value, k, 1, 0x7fffffff);
            } else if (k == "read_existing_events") {
                sub.read_existing_events = boolean(value, k);
            } else if (k == "ignore_channel_error") {
                sub.ignore_channel_error = boolean(value, k);
            } else if (k == "locale") {
                sub.locale = string(value, k, 85);
            } else if (k == "data_locale") {
                sub.data_locale = string(value, k, 85);
            } else if (k == "allowed_clients") {
                for (auto& [pattern, node] : string_array(value, k, kMaxAllowedClients)) {
                    check_glob(source_, where(node->source()), pattern);
                    sub.allowed_clients.push_back(std::move(pattern));
                }
            } else if (k == "denied_clients") {
                for (auto& [pattern, node] : string_array(value, k, kMaxAllowedClients)) {
                    check_glob(source_, where(node->source()), pattern, k);
                    sub.denied_clients.push_back(std::move(pattern));
                }
            } else if (k == "uri") {
                sub.uri = string(value, k);
                check_uri(source_, where(value.source()), *sub.uri);
            } else if (k == "enabled") {
                sub.enabled = boolean(value, k);
            } else if (k == "connection_retry_count") {
                sub.connection_retry_count = integer(value, k, 0, 1000000);
            } else if (k == "connection_retry_interval") {
                sub.connection_retry_interval_s = integer(value, k, 1, 7 * 24 * 3600);
            } else if (k == "outputs") {
                const auto* array = value.as_array();
                if (array == nullptr)
                    fail_at(value, "outputs: expected an array of tables ([[outputs]]), got " +
                                       std::string(type_name(value)));
                if (array->size() > kMaxOutputs)
                    fail_at(value, "outputs: more than " + std::to_string(kMaxOutputs));
                for (const auto& item : *array)
                    sub.outputs.push_back(output(item));
            } else {
                fail(source_, where(key.source()), "unknown key '" + k + "'");
            }
        }

        if (!have_name) fail(source_, {}, "missing key 'name'");
        if (query_node != nullptr && channels_node != nullptr)
            fail_at(*channels_node, "channels: give either 'query' or 'channels', not both");
        if (xpath_node != nullptr && channels_node == nullptr)
            fail_at(*xpath_node, "xpath: only valid together with 'channels'");
        if (query_node == nullptr && channels_node == nullptr)
            fail(source_, {}, "missing key 'query' (or 'channels')");
        if (channels_node != nullptr) {
            if (channels.size() > kMaxSelectPaths)
                fail_at(*channels_node, "channels: more than " + std::to_string(kMaxSelectPaths) +
                                            " Select paths (Windows limit)");
            sub.query = build_query(channels, xpath);
            try {
                if (check_query_) validate_query(sub.query, source_);
            } catch (const SubscriptionError& e) {
                fail(source_, where((xpath_node ? xpath_node : channels_node)->source()),
                     e.reason());
            }
        } else {
            try {
                if (check_query_) validate_query(sub.query, source_);
            } catch (const SubscriptionError& e) {
                fail(source_, where(query_node->source()), e.reason());
            }
        }
        return sub;
    }

private:
    std::string source_;
    bool check_query_;
};

// ---- TOML writing ---------------------------------------------------------------------------

std::string toml_string(std::string_view text) {
    bool literal_ok = text.find('\'') == std::string_view::npos;
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) literal_ok = false;
    }
    // Literal strings keep XML and backslashes readable.
    if (literal_ok &&
        (text.find('"') != std::string_view::npos || text.find('\\') != std::string_view::npos)) {
        std::string literal;
        literal.reserve(text.size() + 2);
        literal += '\'';
        literal.append(text);
        literal += '\'';
        return literal;
    }
    std::string out = "\"";
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\r':
            out += "\\r";
            break;
        default:
            if (u < 0x20 || u == 0x7f) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04X", u);
                out += buf;
            } else {
                out += c;
            }
        }
    }
    out += '"';
    return out;
}

// A multi-line literal string for text of several lines that needs no escape (no control
// character but tab and line feed, no ''' inside, not ending with a quote), else toml_string().
std::string toml_text(std::string_view text) {
    bool multi = text.find('\n') != std::string_view::npos &&
                 text.find("'''") == std::string_view::npos && text.back() != '\'';
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\n' && c != '\t') || u == 0x7f) multi = false;
    }
    if (!multi) return toml_string(text);
    // The line break right after the opening delimiter is not part of the string.
    return "'''\n" + std::string(text) + "'''";
}

bool bare_key(std::string_view key) {
    if (key.empty()) return false;
    for (char c : key)
        if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_' && c != '-') return false;
    return true;
}

// ---- hashing --------------------------------------------------------------------------------

std::array<unsigned char, 32> sha256(std::string_view data) {
    Handle<EVP_MD_CTX, EVP_MD_CTX_free> ctx(EVP_MD_CTX_new());
    std::array<unsigned char, 32> digest{};
    unsigned int length = 0;
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
        EVP_DigestFinal_ex(ctx.get(), digest.data(), &length) != 1 || length != digest.size())
        throw wec::Error("subscription: SHA-256 failed (OpenSSL)");
    return digest;
}

std::string uuid_text(const unsigned char* bytes) {
    std::string out;
    out.reserve(36);
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        append_hex_upper({bytes + i, 1}, out);
    }
    return out;
}

void put_field(std::string& out, std::string_view tag, std::string_view value) {
    out += tag;
    out += ':';
    out += std::to_string(value.size());
    out += ':';
    out += value;
    out += ';';
}

} // namespace

SubscriptionError::SubscriptionError(std::string source, std::uint32_t line, std::uint32_t column,
                                     const std::string& reason)
    : wec::Error(format_error(source, line, column, reason)), source_(std::move(source)),
      line_(line), column_(column), reason_(reason) {}

std::string_view to_string(ContentFormat format) {
    return format == ContentFormat::Raw ? "Raw" : "RenderedText";
}
std::string_view to_string(OutputFormat format) {
    return kOutputFormatNames[static_cast<std::size_t>(format)];
}

std::size_t count_clauses(std::string_view xpath) {
    std::size_t operators = 0;
    std::size_t i = 0;
    while (i < xpath.size()) {
        char c = xpath[i];
        if (c == '\'' || c == '"') {
            auto end = xpath.find(c, i + 1);
            if (end == std::string_view::npos) break;
            i = end + 1;
            continue;
        }
        if (is_name_char(c)) {
            std::size_t start = i;
            while (i < xpath.size() && is_name_char(xpath[i]))
                ++i;
            auto word = xpath.substr(start, i - start);
            if (word == "and" || word == "or") ++operators;
            continue;
        }
        ++i;
    }
    return operators + 1;
}

std::string build_query(std::span<const std::string> channels, std::string_view xpath) {
    std::string out = "<QueryList><Query Id=\"0\">";
    for (const auto& channel : channels)
        out += "<Select Path=\"" + text::xml_escape(channel) + "\">" + text::xml_escape(xpath) +
               "</Select>";
    out += "</Query></QueryList>";
    return out;
}

namespace {

// Problems beyond this many are summarized by validate_query (a query of 10,000 bad Selects
// must not make a 10,000-line error).
constexpr std::size_t kMaxQueryProblems = 100;

class QueryChecker {
public:
    explicit QueryChecker(std::string_view query) : query_(query) {}

    std::vector<QueryProblem> run() {
        if (query_.size() > kMaxQueryBytes) {
            add(std::nullopt, "longer than " + std::to_string(kMaxQueryBytes) + " bytes");
            return std::move(problems_);
        }
        pugi::xml_document doc;
        auto result =
            doc.load_buffer(query_.data(), query_.size(), pugi::parse_default, pugi::encoding_utf8);
        if (!result) {
            add(static_cast<std::size_t>(std::max<std::ptrdiff_t>(result.offset, 0)),
                std::string("not well-formed XML (") + result.description() + ")");
            return std::move(problems_);
        }
        pugi::xml_node root;
        for (auto child : doc.children()) {
            if (child.type() == pugi::node_element) {
                if (root) {
                    add(at(child), "more than one root element");
                    return std::move(problems_);
                }
                root = child;
            } else if (child.type() == pugi::node_pcdata || child.type() == pugi::node_cdata) {
                add(at(child), "text outside the root element");
            }
        }
        if (!root) {
            add(std::nullopt, "the root element must be <QueryList>");
            return std::move(problems_);
        }
        if (std::string_view(root.name()) != "QueryList") {
            add(at(root),
                "the root element must be <QueryList>, not <" + std::string(root.name()) + ">");
            return std::move(problems_);
        }
        std::size_t selects = 0;
        std::size_t number = 0; // Select and Suppress elements, in document order
        for (auto query_node : root.children()) {
            if (query_node.type() != pugi::node_element) continue;
            if (std::string_view(query_node.name()) != "Query") {
                add(at(query_node),
                    std::string("unexpected element <") + query_node.name() + "> in <QueryList>");
                continue;
            }
            std::string_view query_path = query_node.attribute("Path").value();
            for (auto select : query_node.children()) {
                if (select.type() != pugi::node_element) continue;
                std::string_view tag = select.name();
                if (tag != "Select" && tag != "Suppress") {
                    add(at(select),
                        std::string("unexpected element <") + select.name() + "> in <Query>");
                    continue;
                }
                ++number;
                QueryProblem where;
                where.element = std::string(tag);
                where.select = number;
                std::string_view path = select.attribute("Path").value();
                where.path = std::string(path.empty() ? query_path : path);
                if (path.empty() && query_path.empty())
                    add(at(select), "has no Path (and its <Query> has none)", where);
                std::string_view text = select.child_value();
                if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
                    add(at(select), "has an empty XPath", where);
                if (tag != "Select") continue;
                ++selects;
                auto clauses = count_clauses(text);
                if (clauses > kMaxClausesPerSelect)
                    add(at(select),
                        "has " + std::to_string(clauses) + " clauses, more than " +
                            std::to_string(kMaxClausesPerSelect) +
                            " (Windows would forward nothing)",
                        where);
                if (selects == kMaxSelectPaths + 1) first_over_ = problem(at(select), "", where);
            }
        }
        if (selects == 0) add(std::nullopt, "no <Select> in the <QueryList>");
        if (selects > kMaxSelectPaths) {
            auto p = *first_over_;
            p.message = "is over the limit: the QueryList has " + std::to_string(selects) +
                        " Selects, more than " + std::to_string(kMaxSelectPaths) +
                        " (Windows limit)";
            problems_.push_back(std::move(p));
        }
        return std::move(problems_);
    }

private:
    // The offset of a node's '<' (pugixml points at its name).
    std::optional<std::size_t> at(const pugi::xml_node& node) const {
        auto offset = node.offset_debug();
        if (offset < 0) return std::nullopt;
        auto o = static_cast<std::size_t>(offset);
        if (node.type() == pugi::node_element && o > 0 && o <= query_.size() &&
            query_[o - 1] == '<')
            --o;
        return o;
    }

    QueryProblem problem(std::optional<std::size_t> offset, std::string message,
                         QueryProblem base = {}) const {
        base.message = std::move(message);
        if (offset) {
            base.offset = *offset;
            std::tie(base.line, base.column) = text::line_column(query_, *offset);
        }
        return base;
    }

    void add(std::optional<std::size_t> offset, std::string message, QueryProblem base = {}) {
        problems_.push_back(problem(offset, std::move(message), std::move(base)));
    }

    std::string_view query_;
    std::vector<QueryProblem> problems_;
    std::optional<QueryProblem> first_over_;
};

} // namespace

std::string QueryProblem::describe() const {
    std::string out;
    if (line != 0)
        out += "line " + std::to_string(line) + ", column " + std::to_string(column) + ": ";
    if (select != 0) {
        out += element + " #" + std::to_string(select);
        if (!path.empty()) out += " (Path '" + path + "')";
        out += ' ';
    }
    out += message;
    return out;
}

std::vector<QueryProblem> check_query(std::string_view query) {
    return QueryChecker(query).run();
}

void validate_query(std::string_view query, const std::string& source_name) {
    auto problems = check_query(query);
    if (problems.empty()) return;
    std::string reason = "query: " + problems.front().describe();
    if (problems.size() > 1) {
        reason += " (and " + std::to_string(problems.size() - 1) + " more:";
        std::size_t shown = 0;
        for (std::size_t i = 1; i < problems.size() && shown < kMaxQueryProblems; ++i, ++shown)
            reason += (shown ? "; " : " ") + problems[i].describe();
        if (problems.size() - 1 > shown)
            reason += "; ... " + std::to_string(problems.size() - 1 - shown) + " not shown";
        reason += ")";
    }
    fail(source_name, {}, reason);
}

Subscription load_toml(std::string_view text, std::string source_name, bool check_query) {
    toml::table root;
    try {
        root = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
        auto at = where(e.source());
        throw SubscriptionSyntaxError(source_name, at.line, at.column,
                                      std::string(e.description()));
    }
    return Reader(source_name, check_query).read(root);
}

Subscription load_toml_file(const std::string& path) {
    auto bytes = wec::read_file(path);
    return load_toml(wec::as_chars(bytes), path);
}

void validate(const Subscription& sub, const std::string& source_name, bool check_query) {
    check_name(source_name, {}, sub.name);
    if (!sub.uuid.empty() && !is_uuid(sub.uuid))
        fail(source_name, {}, "uuid: expected 8-4-4-4-12 hexadecimal digits");
    if (check_query) validate_query(sub.query, source_name);
    if (sub.heartbeat_interval_s == 0) fail(source_name, {}, "heartbeat_interval: must be > 0");
    if (sub.max_latency_s == 0) fail(source_name, {}, "max_latency: must be > 0");
    if (sub.max_envelope_size < 8192) fail(source_name, {}, "max_envelope_size: must be >= 8192");
    if (sub.max_elements && *sub.max_elements == 0)
        fail(source_name, {}, "max_elements: must be > 0");
    if (sub.connection_retry_interval_s == 0)
        fail(source_name, {}, "connection_retry_interval: must be > 0");
    for (const auto& pattern : sub.allowed_clients)
        check_glob(source_name, {}, pattern);
    for (const auto& pattern : sub.denied_clients)
        check_glob(source_name, {}, pattern, "denied_clients");
    if (sub.uri) check_uri(source_name, {}, *sub.uri);
    for (const auto& output : sub.outputs)
        check_output(source_name, {}, output);
}

std::string to_toml(const Subscription& sub) {
    std::ostringstream out;
    out << "name = " << toml_string(sub.name) << '\n';
    if (!sub.uuid.empty()) out << "uuid = " << toml_string(sub.uuid) << '\n';
    if (!sub.description.empty()) out << "description = " << toml_string(sub.description) << '\n';
    out << "enabled = " << (sub.enabled ? "true" : "false") << '\n';
    out << "query = " << toml_text(sub.query) << '\n';
    out << "content_format = " << toml_string(to_string(sub.content_format)) << '\n';
    out << "heartbeat_interval = " << sub.heartbeat_interval_s << '\n';
    out << "max_latency = " << sub.max_latency_s << '\n';
    out << "max_envelope_size = " << sub.max_envelope_size << '\n';
    if (sub.max_elements) out << "max_elements = " << *sub.max_elements << '\n';
    out << "read_existing_events = " << (sub.read_existing_events ? "true" : "false") << '\n';
    out << "ignore_channel_error = " << (sub.ignore_channel_error ? "true" : "false") << '\n';
    if (sub.locale) out << "locale = " << toml_string(*sub.locale) << '\n';
    if (sub.data_locale) out << "data_locale = " << toml_string(*sub.data_locale) << '\n';
    out << "connection_retry_count = " << sub.connection_retry_count << '\n';
    out << "connection_retry_interval = " << sub.connection_retry_interval_s << '\n';
    out << "allowed_clients = [";
    for (std::size_t i = 0; i < sub.allowed_clients.size(); ++i)
        out << (i ? ", " : "") << toml_string(sub.allowed_clients[i]);
    out << "]\n";
    if (!sub.denied_clients.empty()) {
        out << "denied_clients = [";
        for (std::size_t i = 0; i < sub.denied_clients.size(); ++i)
            out << (i ? ", " : "") << toml_string(sub.denied_clients[i]);
        out << "]\n";
    }
    if (sub.uri) out << "uri = " << toml_string(*sub.uri) << '\n';
    for (const auto& output : sub.outputs) {
        out << "\n[[outputs]]\n";
        out << "driver = " << toml_string(output.driver) << '\n';
        out << "format = " << toml_string(to_string(output.format)) << '\n';
        if (output.queue != kDefaultOutputQueue) out << "queue = " << output.queue << '\n';
        // Settings, then the "options.<name>" ones as an [outputs.options] table (see load).
        constexpr std::string_view kOptions = "options.";
        auto put = [&out](std::string_view key, const OptionValue& value) {
            out << (bare_key(key) ? std::string(key) : toml_string(key)) << " = ";
            if (const auto* s = std::get_if<std::string>(&value))
                out << toml_string(*s);
            else if (const auto* i = std::get_if<std::int64_t>(&value))
                out << *i;
            else
                out << (std::get<bool>(value) ? "true" : "false");
            out << '\n';
        };
        bool options = false;
        for (const auto& [key, value] : output.options)
            if (key.rfind(kOptions, 0) != 0) put(key, value);
        for (const auto& [key, value] : output.options) {
            if (key.rfind(kOptions, 0) != 0) continue;
            if (!options) out << "[outputs.options]\n";
            options = true;
            put(std::string_view(key).substr(kOptions.size()), value);
        }
    }
    return out.str();
}

std::string public_version(const Subscription& sub) {
    // Length-prefixed fields: no two different definitions serialize the same way. "v1" names
    // this layout; changing it changes every version (all clients re-subscribe once).
    std::string data = "wec-subscription-version-v1;";
    put_field(data, "uuid", sub.uuid);
    put_field(data, "name", sub.name);
    put_field(data, "query", sub.query);
    put_field(data, "content_format", to_string(sub.content_format));
    put_field(data, "heartbeat", std::to_string(sub.heartbeat_interval_s));
    put_field(data, "latency", std::to_string(sub.max_latency_s));
    put_field(data, "envelope", std::to_string(sub.max_envelope_size));
    put_field(data, "max_elements", sub.max_elements ? std::to_string(*sub.max_elements) : "-");
    put_field(data, "read_existing", sub.read_existing_events ? "1" : "0");
    put_field(data, "ignore_channel_error", sub.ignore_channel_error ? "1" : "0");
    put_field(data, "locale", sub.locale ? "=" + *sub.locale : "-");
    put_field(data, "data_locale", sub.data_locale ? "=" + *sub.data_locale : "-");
    put_field(data, "retry_count", std::to_string(sub.connection_retry_count));
    put_field(data, "retry_interval", std::to_string(sub.connection_retry_interval_s));
    auto digest = sha256(data);
    return uuid_text(digest.data());
}

bool glob_match(std::string_view pattern, std::string_view text) {
    // Iterative matching with one backtrack point: O(pattern * text) at worst.
    std::size_t p = 0, t = 0;
    std::size_t star = std::string_view::npos, star_t = 0;
    while (t < text.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            star_t = t;
        } else if (p < pattern.size() &&
                   (pattern[p] == '?' || lower(pattern[p]) == lower(text[t]))) {
            ++p;
            ++t;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            t = ++star_t;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*')
        ++p;
    return p == pattern.size();
}

bool allows(const Subscription& sub, std::string_view client_identity) {
    for (const auto& pattern : sub.denied_clients)
        if (glob_match(pattern, client_identity)) return false;
    if (sub.allowed_clients.empty()) return true;
    for (const auto& pattern : sub.allowed_clients)
        if (glob_match(pattern, client_identity)) return true;
    return false;
}

std::string new_uuid() {
    std::array<unsigned char, 16> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        std::random_device device;
        for (auto& b : bytes)
            b = static_cast<unsigned char>(device());
    }
    bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);
    bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
    return uuid_text(bytes.data());
}

bool is_uuid(std::string_view text) {
    if (text.size() != 36) return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-') return false;
        } else if (std::isxdigit(static_cast<unsigned char>(text[i])) == 0) {
            return false;
        }
    }
    return true;
}

} // namespace wec::subscription

#include "config/config.hpp"

#include "common/files.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <netdb.h>
#include <set>
#include <toml++/toml.h>
#include <unistd.h>

namespace wec::config {
namespace {

std::string where(const std::string& source, const toml::node& node) {
    const auto& src = node.source();
    return source + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
}

[[noreturn]] void fail(const std::string& source, const toml::node& node, const std::string& why) {
    throw ConfigError(where(source, node) + ": " + why);
}

void check_keys(const toml::table& table, const std::set<std::string_view>& known,
                const std::string& source, std::string_view section) {
    for (const auto& [key, value] : table)
        if (!known.count(key.str()))
            fail(source, value,
                 "unknown key '" + std::string(key.str()) + "'" +
                     (section.empty() ? "" : " in [" + std::string(section) + "]") +
                     " (see docs/configuration.md)");
}

// A float as the TOML text would spell it, for error messages.
std::string float_text(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d); // shortest exact form
    return ec == std::errc{} ? std::string(buf, end) : std::string("a float");
}

template <typename T>
T get(const toml::table& t, std::string_view key, T fallback, const std::string& source) {
    const toml::node* n = t.get(key);
    if (!n) return fallback;
    if constexpr (std::is_same_v<T, std::string>) {
        if (auto v = n->value<std::string>()) return *v;
        fail(source, *n, "'" + std::string(key) + "' must be a string");
    } else if constexpr (std::is_same_v<T, bool>) {
        // as_boolean, not value<bool>: toml++ converts an integer (`= 1`) to a boolean.
        if (const auto* b = n->as_boolean()) return b->get();
        fail(source, *n, "'" + std::string(key) + "' must be true or false");
    } else {
        const std::string must = "'" + std::string(key) + "' must be a non-negative integer";
        constexpr auto max = std::numeric_limits<T>::max();
        if (const auto* i = n->as_integer()) {
            std::int64_t v = i->get();
            if (v < 0 || static_cast<std::uint64_t>(v) > max)
                fail(source, *n, must + " up to " + std::to_string(max));
            return static_cast<T>(v);
        }
        // A whole float (e.g. 1e4) is accepted when in range. Range-checked here, before any
        // conversion: toml++'s value<int64_t>() casts the double first, which is undefined
        // behaviour for NaN, infinities and anything beyond the range of int64.
        if (const auto* f = n->as_floating_point()) {
            double d = f->get();
            // max + 1.0 is a power of two, exact as a double (max itself may not be).
            if (!(d >= 0 && d < static_cast<double>(max) + 1.0) || d != std::floor(d))
                fail(source, *n, must + " up to " + std::to_string(max) + ", not " + float_text(d));
            return static_cast<T>(d);
        }
        fail(source, *n, must);
    }
}

std::vector<std::string> get_strings(const toml::table& t, std::string_view key,
                                     const std::string& source) {
    std::vector<std::string> out;
    const toml::node* n = t.get(key);
    if (!n) return out;
    const auto* arr = n->as_array();
    if (!arr) fail(source, *n, "'" + std::string(key) + "' must be an array of strings");
    for (const auto& item : *arr) {
        auto v = item.value<std::string>();
        if (!v) fail(source, item, "'" + std::string(key) + "' must hold strings only");
        out.push_back(*v);
    }
    return out;
}

AuthKind parse_auth(const std::string& text, const std::string& source, const toml::node& node) {
    if (text == "kerberos") return AuthKind::Kerberos;
    if (text == "tls") return AuthKind::Tls;
    if (text == "negotiate") return AuthKind::Negotiate;
    if (text == "basic") return AuthKind::Basic;
    fail(source, node,
         "auth must be \"kerberos\", \"negotiate\", \"tls\" or \"basic\", not \"" + text + "\"");
}

} // namespace

std::string_view to_string(AuthKind kind) {
    return kind == AuthKind::Kerberos    ? "kerberos"
           : kind == AuthKind::Negotiate ? "negotiate"
           : kind == AuthKind::Basic     ? "basic"
                                         : "tls";
}

ServeConfig parse(std::string_view toml_text, const std::string& source) {
    toml::table root;
    try {
        root = toml::parse(toml_text, source);
    } catch (const toml::parse_error& e) {
        throw ConfigError(source + ":" + std::to_string(e.source().begin.line) + ":" +
                          std::to_string(e.source().begin.column) + ": " +
                          std::string(e.description()));
    }
    check_keys(root,
               {"hostname", "node_name", "db", "log_level", "listeners", "limits", "io_threads",
                "worker_threads", "handler_threads", "heartbeat_flush_interval", "replay_cache",
                "store_busy_timeout_ms", "bookmark_sync_interval_ms", "drain_timeout", "metrics"},
               source, "");
    ServeConfig c;
    c.hostname = get<std::string>(root, "hostname", c.hostname, source);
    c.node_name = get<std::string>(root, "node_name", c.node_name, source);
    c.db = get<std::string>(root, "db", c.db, source);
    c.log_level = get<std::string>(root, "log_level", c.log_level, source);
    if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" &&
        c.log_level != "error")
        fail(source, *root.get("log_level"), "log_level must be debug, info, warn or error");
    c.io_threads = get<std::uint32_t>(root, "io_threads", 0, source);
    c.worker_threads = get<std::uint32_t>(root, "worker_threads", 0, source);
    c.handler_threads = get<std::string>(root, "handler_threads", c.handler_threads, source);
    if (c.handler_threads != "auto" && c.handler_threads != "io" && c.handler_threads != "workers")
        fail(source, *root.get("handler_threads"), "handler_threads must be auto, io or workers");
    c.heartbeat_flush_s =
        get<std::uint32_t>(root, "heartbeat_flush_interval", c.heartbeat_flush_s, source);
    c.replay_cache = get<std::string>(root, "replay_cache", c.replay_cache, source);
    c.store_busy_timeout_ms =
        get<std::uint32_t>(root, "store_busy_timeout_ms", c.store_busy_timeout_ms, source);
    c.bookmark_sync_interval_ms =
        get<std::uint32_t>(root, "bookmark_sync_interval_ms", c.bookmark_sync_interval_ms, source);
    if (c.bookmark_sync_interval_ms > 3600000)
        fail(source, *root.get("bookmark_sync_interval_ms"),
             "bookmark_sync_interval_ms must be at most 3600000 (one hour)");
    c.drain_timeout_s = get<std::uint32_t>(root, "drain_timeout", c.drain_timeout_s, source);
    if (c.drain_timeout_s > 3600)
        fail(source, *root.get("drain_timeout"), "drain_timeout must be at most 3600 (seconds)");

    if (const toml::node* n = root.get("limits")) {
        const auto* t = n->as_table();
        if (!t) fail(source, *n, "[limits] must be a table");
        check_keys(*t,
                   {"max_body_bytes", "max_header_bytes", "idle_timeout", "read_timeout",
                    "max_connections"},
                   source, "limits");
        c.limits.max_body_bytes =
            get<std::size_t>(*t, "max_body_bytes", c.limits.max_body_bytes, source);
        c.limits.max_header_bytes =
            get<std::size_t>(*t, "max_header_bytes", c.limits.max_header_bytes, source);
        c.limits.idle_timeout_s =
            get<std::uint32_t>(*t, "idle_timeout", c.limits.idle_timeout_s, source);
        c.limits.read_timeout_s =
            get<std::uint32_t>(*t, "read_timeout", c.limits.read_timeout_s, source);
        c.limits.max_connections =
            get<std::size_t>(*t, "max_connections", c.limits.max_connections, source);
        if (c.limits.max_body_bytes < 4096)
            fail(source, *n, "limits.max_body_bytes must be at least 4096");
    }

    if (const toml::node* n = root.get("metrics")) {
        const auto* t = n->as_table();
        if (!t) fail(source, *n, "[metrics] must be a table");
        check_keys(*t, {"address"}, source, "metrics");
        c.metrics_address = get<std::string>(*t, "address", "", source);
        if (c.metrics_address.empty() || c.metrics_address.find(':') == std::string::npos)
            fail(source, t->get("address") ? *t->get("address") : *n,
                 "metrics.address must be ADDRESS:PORT, e.g. \"127.0.0.1:9985\"");
    }

    if (const toml::node* n = root.get("listeners")) {
        const auto* arr = n->as_array();
        if (!arr) fail(source, *n, "listeners must be an array of tables ([[listeners]])");
        for (const auto& item : *arr) {
            const auto* t = item.as_table();
            if (!t) fail(source, item, "each [[listeners]] entry must be a table");
            check_keys(*t,
                       {"address", "auth", "public_port", "keytab", "service_names", "cert", "key",
                        "ca", "crl", "proxy_protocol", "reuse_port", "ntlm_users", "ntlm_allow_v1",
                        "basic_users"},
                       source, "listeners");
            Listener l;
            l.address = get<std::string>(*t, "address", l.address, source);
            if (const toml::node* a = t->get("auth"))
                l.auth = parse_auth(get<std::string>(*t, "auth", "", source), source, *a);
            if (t->get("public_port"))
                l.public_port = get<std::uint16_t>(*t, "public_port", 0, source);
            l.keytab = get<std::string>(*t, "keytab", "", source);
            l.service_names = get_strings(*t, "service_names", source);
            l.cert = get<std::string>(*t, "cert", "", source);
            l.key = get<std::string>(*t, "key", "", source);
            l.ca = get_strings(*t, "ca", source);
            l.crl = get_strings(*t, "crl", source);
            l.proxy_protocol = get<bool>(*t, "proxy_protocol", false, source);
            l.reuse_port = get<bool>(*t, "reuse_port", false, source);
            l.ntlm_users = get<std::string>(*t, "ntlm_users", "", source);
            l.ntlm_allow_v1 = get<bool>(*t, "ntlm_allow_v1", false, source);
            if ((!l.ntlm_users.empty() || l.ntlm_allow_v1) && l.auth != AuthKind::Negotiate)
                fail(source, *t, "ntlm_users and ntlm_allow_v1 need auth = \"negotiate\"");
            l.basic_users = get<std::string>(*t, "basic_users", "", source);
            if (!l.basic_users.empty() && l.auth != AuthKind::Basic)
                fail(source, *t, "basic_users needs auth = \"basic\"");
            c.listeners.push_back(std::move(l));
        }
    }
    return c;
}

ServeConfig load_file(const std::string& path) {
    std::vector<std::uint8_t> bytes;
    try {
        bytes = read_file(path);
    } catch (const wec::Error& e) {
        throw ConfigError(e.what());
    }
    return parse(as_chars(bytes), path);
}

std::string local_fqdn() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) return "localhost";
    addrinfo hints{};
    hints.ai_flags = AI_CANONNAME;
    addrinfo* res = nullptr;
    std::string name = host;
    if (::getaddrinfo(host, nullptr, &hints, &res) == 0 && res) {
        if (res->ai_canonname && std::strchr(res->ai_canonname, '.')) name = res->ai_canonname;
        ::freeaddrinfo(res);
    }
    return name;
}

void finalize(ServeConfig& c) {
    if (c.hostname.empty()) c.hostname = local_fqdn();
    if (c.listeners.empty()) c.listeners.push_back(Listener{});
    for (auto& l : c.listeners) {
        if (l.address.empty()) l.address = uses_tls(l.auth) ? "0.0.0.0:5986" : "0.0.0.0:5985";
        if (uses_gss(l.auth) && l.service_names.empty())
            l.service_names = {"HTTP/" + c.hostname, "HOST/" + c.hostname};
        if (l.auth == AuthKind::Tls) {
            if (l.cert.empty() || l.key.empty())
                throw ConfigError("TLS listener " + l.address +
                                  " needs a server certificate and key "
                                  "(cert/key, or --cert/--key; `wec pki init` makes a lab PKI)");
            if (l.ca.empty())
                throw ConfigError("TLS listener " + l.address +
                                  " needs the CA certificates that issue "
                                  "client certificates (ca, or --ca; Windows sends only its leaf)");
        }
        if (l.auth == AuthKind::Basic) {
            if (l.cert.empty() || l.key.empty())
                throw ConfigError("Basic listener " + l.address +
                                  " needs TLS (cert/key, or --cert/--key): Basic sends the "
                                  "password in clear, it is refused on plain HTTP");
            if (l.basic_users.empty())
                throw ConfigError("Basic listener " + l.address +
                                  " needs basic_users (or --basic-users): a USER:HASH file");
        }
    }
}

} // namespace wec::config

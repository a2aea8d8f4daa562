#include "config/config.hpp"
#include "subscription/subscription.hpp"

#include <gtest/gtest.h>

namespace {

using namespace wec::config;

std::string error_of(const std::string& text) {
    try {
        parse(text, "test.toml");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

TEST(Config, EmptyFileGivesEmbeddedDefaults) {
    auto c = parse("", "empty.toml");
    EXPECT_EQ(c.db, "sqlite:./var/wec.db");
    EXPECT_TRUE(c.listeners.empty());
    c.hostname = "wec.example.org";
    finalize(c);
    ASSERT_EQ(c.listeners.size(), 1u);
    EXPECT_EQ(c.listeners[0].address, "0.0.0.0:5985");
    EXPECT_EQ(c.listeners[0].auth, AuthKind::Kerberos);
    EXPECT_EQ(c.listeners[0].service_names,
              (std::vector<std::string>{"HTTP/wec.example.org", "HOST/wec.example.org"}));
    EXPECT_EQ(c.limits.max_body_bytes, 512000u);
    EXPECT_EQ(c.store_busy_timeout_ms, 10000u);
    EXPECT_EQ(c.bookmark_sync_interval_ms, 1000u);
    EXPECT_EQ(c.drain_timeout_s, 30u);
    EXPECT_EQ(c.handler_threads, "auto");
}

TEST(Config, HandlerThreadsIsAutoIoOrWorkers) {
    for (const char* v : {"auto", "io", "workers"})
        EXPECT_EQ(parse(std::string("handler_threads = \"") + v + "\"\n", "t").handler_threads, v);
    try {
        parse("handler_threads = \"pool\"\n", "t.toml");
        FAIL() << "an unknown value was accepted";
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("t.toml:1"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("handler_threads must be auto, io or workers"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_THROW(parse("handler_threads = true\n", "t"), ConfigError);
}

TEST(Config, SampleFileLoads) {
    auto c = load_file(std::string(WEC_SOURCE_DIR) + "/samples/wec.toml");
    EXPECT_EQ(c.hostname, "wec.windomain.local");
    ASSERT_EQ(c.listeners.size(), 1u);
    EXPECT_EQ(c.listeners[0].keytab, "/etc/wec/wec.keytab");
    EXPECT_EQ(c.limits.idle_timeout_s, 120u);
}

TEST(Config, SampleSubscriptionsLoad) {
    for (const char* f : {"security.toml", "system-raw.toml"}) {
        auto s = wec::subscription::load_toml_file(std::string(WEC_SOURCE_DIR) +
                                                   "/samples/subscriptions/" + f);
        EXPECT_FALSE(s.name.empty()) << f;
        EXPECT_EQ(s.outputs.size(), 1u) << f;
    }
}

TEST(Config, ErrorsNameFileLineAndKey) {
    auto e = error_of("hostname = \"x\"\nlisten = 5\n");
    EXPECT_NE(e.find("test.toml:2:"), std::string::npos) << e;
    EXPECT_NE(e.find("unknown key 'listen'"), std::string::npos) << e;

    e = error_of("[limits]\nmax_body_bytes = \"big\"\n");
    EXPECT_NE(e.find("test.toml:2:"), std::string::npos) << e;
    EXPECT_NE(e.find("max_body_bytes"), std::string::npos) << e;

    e = error_of("[[listeners]]\nauth = \"ntlm\"\n");
    EXPECT_NE(e.find("auth must be"), std::string::npos) << e;

    e = error_of("hostname = \n");
    EXPECT_NE(e.find("test.toml:1:"), std::string::npos) << e;

    e = error_of("log_level = \"verbose\"\n");
    EXPECT_NE(e.find("log_level"), std::string::npos) << e;

    e = error_of("[limits]\nmax_body_bytes = 10\n");
    EXPECT_NE(e.find("at least 4096"), std::string::npos) << e;
}

// toml++ converts a float to an integer by casting first: 1e300 in an integer key was undefined
// behaviour (UBSan, config_toml_fuzz). Now range-checked first, with an error naming the key.
TEST(Config, FloatsOutOfRangeInIntegerKeysAreErrorsNamingTheKey) {
    for (const char* value : {"1e300", "-1e300", "nan", "+nan", "-nan", "inf", "+inf", "-inf",
                              "1.5", "-1.0", "18446744073709551616.0", "1e20"}) {
        auto e = error_of(std::string("[limits]\nmax_connections = ") + value + "\n");
        EXPECT_NE(e.find("test.toml:2:"), std::string::npos) << value << ": " << e;
        EXPECT_NE(e.find("'max_connections' must be a non-negative integer"), std::string::npos)
            << value << ": " << e;
    }
    // 32- and 16-bit keys: the bound is theirs.
    auto e = error_of("io_threads = 4294967296.0\n");
    EXPECT_NE(e.find("'io_threads' must be a non-negative integer up to 4294967295"),
              std::string::npos)
        << e;
    e = error_of("io_threads = 1e300\n");
    EXPECT_NE(e.find("'io_threads'"), std::string::npos) << e;
    e = error_of("[[listeners]]\npublic_port = 65536.0\n");
    EXPECT_NE(e.find("'public_port' must be a non-negative integer up to 65535"), std::string::npos)
        << e;
    e = error_of("[limits]\nidle_timeout = -inf\n");
    EXPECT_NE(e.find("'idle_timeout'"), std::string::npos) << e;
    // Out-of-range integers and non-numbers too.
    e = error_of("worker_threads = 4294967296\n");
    EXPECT_NE(e.find("'worker_threads' must be a non-negative integer"), std::string::npos) << e;
    e = error_of("[limits]\nmax_connections = true\n");
    EXPECT_NE(e.find("'max_connections' must be a non-negative integer"), std::string::npos) << e;

    // A whole float within range is still read as that integer.
    auto c = parse("io_threads = 4.0\n[limits]\nmax_connections = 1e4\n", "t");
    EXPECT_EQ(c.io_threads, 4u);
    EXPECT_EQ(c.limits.max_connections, 10000u);
    c = parse("[[listeners]]\npublic_port = 65535.0\n", "t");
    EXPECT_EQ(*c.listeners[0].public_port, 65535);
}

TEST(Config, MissingFileIsAClearError) {
    try {
        load_file("/nonexistent/wec.toml");
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/wec.toml"), std::string::npos);
    }
}

TEST(Config, ListenersAndLimitsAreRead) {
    auto c = parse(R"(
hostname = "h.example"
store_busy_timeout_ms = 1500
bookmark_sync_interval_ms = 0
drain_timeout = 5
[[listeners]]
address = "127.0.0.1:15985"
keytab = "/k"
public_port = 80
service_names = ["HTTP/a"]
reuse_port = true
[limits]
max_connections = 7
)",
                   "t");
    finalize(c);
    ASSERT_EQ(c.listeners.size(), 1u);
    EXPECT_EQ(c.listeners[0].address, "127.0.0.1:15985");
    EXPECT_EQ(*c.listeners[0].public_port, 80);
    EXPECT_EQ(c.listeners[0].service_names, std::vector<std::string>{"HTTP/a"});
    EXPECT_TRUE(c.listeners[0].reuse_port);
    EXPECT_FALSE(parse("[[listeners]]\n", "t").listeners[0].reuse_port);
    EXPECT_THROW(parse("[[listeners]]\nreuse_port = 1\n", "t"), ConfigError);
    EXPECT_EQ(c.limits.max_connections, 7u);
    EXPECT_EQ(c.store_busy_timeout_ms, 1500u);
    EXPECT_EQ(c.bookmark_sync_interval_ms, 0u);
    EXPECT_EQ(parse("bookmark_sync_interval_ms = 3600000\n", "t").bookmark_sync_interval_ms,
              3600000u);
    EXPECT_THROW(parse("bookmark_sync_interval_ms = 3600001\n", "t"), ConfigError);
    EXPECT_THROW(parse("bookmark_sync_interval_ms = -1\n", "t"), ConfigError);
    EXPECT_EQ(c.drain_timeout_s, 5u);
    EXPECT_THROW(parse("drain_timeout = 7200\n", "t"), ConfigError);
}

TEST(Config, MetricsAddressIsRead) {
    EXPECT_EQ(parse("", "t").metrics_address, "");
    auto c = parse("[metrics]\naddress = \"127.0.0.1:9985\"\n", "t");
    EXPECT_EQ(c.metrics_address, "127.0.0.1:9985");
    EXPECT_NE(error_of("[metrics]\nadress = \"127.0.0.1:9985\"\n")
                  .find("unknown key 'adress' in [metrics]"),
              std::string::npos);
    EXPECT_NE(error_of("[metrics]\naddress = \"9985\"\n")
                  .find("test.toml:2:11: metrics.address must be ADDRESS:PORT"),
              std::string::npos)
        << error_of("[metrics]\naddress = \"9985\"\n");
    EXPECT_NE(error_of("metrics = 1\n").find("[metrics] must be a table"), std::string::npos);
}

std::string finalize_error(const std::string& text) {
    try {
        auto c = parse(text, "test.toml");
        c.hostname = "h.example";
        finalize(c);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

TEST(Config, BasicListenerNeedsTlsAndAUsersFile) {
    auto c = parse(R"(
[[listeners]]
address = "127.0.0.1:15986"
auth = "basic"
basic_users = "/etc/wec/basic-users"
cert = "/s.pem"
key = "/s.key"
)",
                   "t");
    finalize(c);
    ASSERT_EQ(c.listeners.size(), 1u);
    EXPECT_EQ(c.listeners[0].auth, AuthKind::Basic);
    EXPECT_EQ(c.listeners[0].basic_users, "/etc/wec/basic-users");
    EXPECT_TRUE(c.listeners[0].ca.empty()); // client certificates are optional with Basic
    EXPECT_TRUE(c.listeners[0].service_names.empty());
    EXPECT_TRUE(uses_tls(AuthKind::Basic));
    EXPECT_FALSE(uses_gss(AuthKind::Basic));
    EXPECT_EQ(to_string(AuthKind::Basic), "basic");

    // Default address: the HTTPS port.
    auto d = parse("[[listeners]]\nauth = \"basic\"\nbasic_users = \"/u\"\ncert = \"/c\"\n"
                   "key = \"/k\"\n",
                   "t");
    finalize(d);
    EXPECT_EQ(d.listeners[0].address, "0.0.0.0:5986");

    // Plain HTTP: refused, naming the listener.
    auto e = finalize_error(
        "[[listeners]]\naddress = \"0.0.0.0:8080\"\nauth = \"basic\"\nbasic_users = \"/u\"\n");
    EXPECT_NE(e.find("Basic listener 0.0.0.0:8080 needs TLS"), std::string::npos) << e;
    EXPECT_NE(e.find("refused on plain HTTP"), std::string::npos) << e;
    e = finalize_error("[[listeners]]\naddress = \"0.0.0.0:8443\"\nauth = \"basic\"\n"
                       "cert = \"/c\"\nkey = \"/k\"\n");
    EXPECT_NE(e.find("Basic listener 0.0.0.0:8443 needs basic_users"), std::string::npos) << e;
    e = error_of("[[listeners]]\nauth = \"tls\"\nbasic_users = \"/u\"\n");
    EXPECT_NE(e.find("basic_users needs auth = \"basic\""), std::string::npos) << e;
    e = error_of("[[listeners]]\nauth = \"digest\"\n");
    EXPECT_NE(e.find("\"tls\" or \"basic\", not \"digest\""), std::string::npos) << e;
}

} // namespace

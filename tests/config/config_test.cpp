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
[[listeners]]
address = "127.0.0.1:15985"
keytab = "/k"
public_port = 80
service_names = ["HTTP/a"]
[limits]
max_connections = 7
)",
                   "t");
    finalize(c);
    ASSERT_EQ(c.listeners.size(), 1u);
    EXPECT_EQ(c.listeners[0].address, "127.0.0.1:15985");
    EXPECT_EQ(*c.listeners[0].public_port, 80);
    EXPECT_EQ(c.listeners[0].service_names, std::vector<std::string>{"HTTP/a"});
    EXPECT_EQ(c.limits.max_connections, 7u);
}

} // namespace

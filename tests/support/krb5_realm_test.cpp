// The test realm itself: KDC up, principals, keytab export, kinit, KDC gone after destruction.
#include "support/krb5_realm.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <string>
#include <sys/types.h>

namespace {

using wec::testing::Krb5Realm;

// Runs a shell command with extra environment variables and returns its output.
std::string run_with_env(const std::map<std::string, std::string>& env, const std::string& cmd) {
    std::string full;
    for (const auto& [k, v] : env)
        full += k + "='" + v + "' ";
    full += cmd + " 2>&1";
    std::string out;
    FILE* p = ::popen(full.c_str(), "r");
    if (p == nullptr) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
        out.append(buf, n);
    ::pclose(p);
    return out;
}

pid_t read_pid(const std::filesystem::path& file) {
    std::ifstream in(file);
    long pid = 0;
    in >> pid;
    return static_cast<pid_t>(pid);
}

TEST(Krb5Realm, StartsPrincipalsKeytabKinitAndStops) {
    std::filesystem::path dir;
    pid_t kdc = 0;
    {
        auto start = std::chrono::steady_clock::now();
        Krb5Realm realm;
        auto elapsed = std::chrono::steady_clock::now() - start;
        EXPECT_LT(elapsed, std::chrono::seconds(5));
        EXPECT_EQ(realm.realm(), "WINDOMAIN.LOCAL");
        EXPECT_GT(realm.kdc_port(), 0);
        dir = realm.dir();
        ASSERT_TRUE(std::filesystem::is_directory(dir));
        EXPECT_TRUE(std::filesystem::exists(dir / "krb5.conf"));
        kdc = read_pid(dir / "krb5kdc.pid");
        ASSERT_GT(kdc, 0);
        EXPECT_EQ(::kill(kdc, 0), 0);

        EXPECT_EQ(realm.add_principal("HTTP/srv.windomain.local"),
                  "HTTP/srv.windomain.local@WINDOMAIN.LOCAL");
        EXPECT_EQ(realm.add_principal("HOST/srv.windomain.local"),
                  "HOST/srv.windomain.local@WINDOMAIN.LOCAL");
        EXPECT_EQ(realm.add_principal("WIN10$"), "WIN10$@WINDOMAIN.LOCAL");
        EXPECT_EQ(realm.add_principal_with_password("alice", "s3cret pw"), "alice@WINDOMAIN.LOCAL");
        EXPECT_THROW(realm.add_principal("WIN10$"), std::runtime_error); // already exists

        auto keytab = realm.export_keytab({"HTTP/srv.windomain.local", "HOST/srv.windomain.local"},
                                          "service.keytab");
        ASSERT_TRUE(std::filesystem::exists(keytab));
        auto listing = run_with_env(realm.env(), "klist -k -e '" + keytab.string() + "'");
        EXPECT_NE(listing.find("HTTP/srv.windomain.local@WINDOMAIN.LOCAL"), std::string::npos)
            << listing;
        EXPECT_NE(listing.find("HOST/srv.windomain.local@WINDOMAIN.LOCAL"), std::string::npos)
            << listing;
        EXPECT_NE(listing.find("aes256-cts-hmac-sha1-96"), std::string::npos) << listing;

        auto client_keytab = realm.export_keytab({"WIN10$"}, "win10.keytab");
        auto ccache = realm.kinit("WIN10$", client_keytab);
        ASSERT_EQ(ccache.rfind("FILE:", 0), 0u);
        auto tickets = run_with_env(realm.env(), "klist -c '" + ccache + "'");
        EXPECT_NE(tickets.find("WIN10$@WINDOMAIN.LOCAL"), std::string::npos) << tickets;
        EXPECT_NE(tickets.find("krbtgt/WINDOMAIN.LOCAL@WINDOMAIN.LOCAL"), std::string::npos)
            << tickets;

        // A service ticket through the KDC over TCP (kvno), proving the KDC serves TGS requests.
        auto kvno = run_with_env(realm.env(), "kvno -c '" + ccache + "' HTTP/srv.windomain.local");
        EXPECT_NE(kvno.find("kvno = "), std::string::npos) << kvno;

        EXPECT_THROW(realm.kinit("nobody", client_keytab), std::runtime_error);
        auto env = realm.env();
        EXPECT_TRUE(env.count("KRB5_CONFIG"));
        EXPECT_TRUE(env.count("KRB5_KDC_PROFILE"));
    }
    // The KDC was our child and has been reaped: the PID no longer exists.
    EXPECT_EQ(::kill(kdc, 0), -1);
    EXPECT_EQ(errno, ESRCH);
    EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(Krb5Realm, TwoRealmsSideBySide) {
    Krb5Realm a;
    Krb5Realm b(Krb5Realm::Options{.realm = "OTHER.TEST", .enctypes = "aes128-cts-hmac-sha1-96"});
    EXPECT_NE(a.kdc_port(), b.kdc_port());
    EXPECT_NE(a.dir(), b.dir());
    EXPECT_EQ(b.add_principal("svc/x.other.test"), "svc/x.other.test@OTHER.TEST");
    auto kt = b.export_keytab({"svc/x.other.test"}, "b.keytab");
    auto listing = run_with_env(b.env(), "klist -k -e '" + kt.string() + "'");
    EXPECT_NE(listing.find("aes128-cts-hmac-sha1-96"), std::string::npos) << listing;
    EXPECT_EQ(listing.find("aes256"), std::string::npos) << listing;
    EXPECT_NE(b.kinit("svc/x.other.test", kt).find("FILE:"), std::string::npos);
}

} // namespace

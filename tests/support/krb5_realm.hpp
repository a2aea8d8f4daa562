// A throwaway MIT Kerberos realm for tests: its own krb5.conf/kdc.conf and database in a temp
// dir, krb5kdc listening on a free 127.0.0.1 port, stopped by PID in the destructor (also when a
// test fails). Never touches /etc: everything goes through KRB5_CONFIG and friends.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace wec::testing {

class Krb5Realm {
public:
    struct Options {
        std::string realm = "WINDOMAIN.LOCAL";
        // Enctypes for keys and tickets (MIT names). Windows uses aes256 by default.
        std::string enctypes = "aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96";
    };

    // Creates the database and starts the KDC. Throws std::runtime_error with the tool output
    // when something fails (missing packages, KDC did not start, ...).
    explicit Krb5Realm(Options options);
    Krb5Realm();
    ~Krb5Realm();
    Krb5Realm(const Krb5Realm&) = delete;
    Krb5Realm& operator=(const Krb5Realm&) = delete;

    const std::string& realm() const;
    const std::filesystem::path& dir() const;
    int kdc_port() const;

    // Creates `name` (e.g. "HTTP/srv.windomain.local" or "WIN10$") with a random key and returns
    // the full principal name "name@REALM".
    std::string add_principal(const std::string& name);
    std::string add_principal_with_password(const std::string& name, const std::string& password);

    // Writes the principals' current keys into a keytab without changing them (ktadd -norandkey).
    std::filesystem::path export_keytab(const std::vector<std::string>& names,
                                        const std::string& file_name);

    // Runs `kadmin.local -q query` against this realm's database and returns its output (e.g.
    // "cpw -randkey HTTP/host" to change a key and bump its kvno). Throws when it fails.
    std::string kadmin(const std::string& query);

    // Gets a TGT for `principal` from `keytab` into a fresh credential cache; returns
    // "FILE:<path>".
    std::string kinit(const std::string& principal, const std::filesystem::path& keytab);

    // The variables that point MIT Kerberos at this realm (KRB5_CONFIG, KRB5_KDC_PROFILE,
    // KRB5CCNAME, KRB5_KTNAME, KRB5RCACHEDIR = a private dir: replay caches stay on), for child
    // processes.
    std::map<std::string, std::string> env() const;
    // Sets env() in this process (tests only) so that in-process GSSAPI/krb5 use this realm.
    void apply_env() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace wec::testing

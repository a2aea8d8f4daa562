// wec::krb against a live MIT KDC: a throwaway realm (wec::testing::Krb5Realm), real tokens made by
// MIT krb5 through python3-gssapi (make_tokens.py: kinit'd client -> AP-REQ, service keytab ->
// AP-REP, wrap_iov in both directions like WinRM), then offline recovery with the keytab only.
#include "krb/krb.hpp"
#include "support/files.hpp"
#include "support/krb5_realm.hpp"
#include "test_util.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

namespace wec::krb {
namespace {

namespace fs = std::filesystem;
using test::load_json;
using test::tohex;
using test::unhex;
using testing::Krb5Realm;
using Bytes = std::vector<std::uint8_t>;

const char* kService = "HTTP/srv.windomain.local";
const std::string kScriptDir = std::string(WEC_SOURCE_DIR) + "/tests/krb";

std::string quote(const std::string& s) { // values have no single quotes
    std::string out = "'";
    out.append(s).append("'");
    return out;
}

// Runs `args` with the realm's environment plus `extra`; throws with the output on failure.
std::string run(const Krb5Realm& realm, const std::map<std::string, std::string>& extra,
                const std::string& args) {
    std::string cmd = "env";
    auto env = realm.env();
    for (const auto& [k, v] : extra)
        env[k] = v;
    for (const auto& [k, v] : env)
        cmd.append(" '").append(k).append("=").append(v).append("'");
    const fs::path log = realm.dir() / "cmd.log";
    cmd += " " + args + " >" + quote(log.string()) + " 2>&1";
    const int rc = std::system(cmd.c_str());
    const std::string out = wec::testing::slurp(log);
    if (rc != 0) throw std::runtime_error("command failed: " + args + "\n" + out);
    return out;
}

struct Realm {
    std::unique_ptr<Krb5Realm> realm;
    fs::path http_keytab;
    fs::path client_keytab;
    std::string client;

    explicit Realm(const std::string& enctypes) {
        Krb5Realm::Options o;
        if (!enctypes.empty()) o.enctypes = enctypes;
        realm = std::make_unique<Krb5Realm>(o);
        realm->add_principal(kService);
        realm->add_principal("HOST/srv.windomain.local");
        client = realm->add_principal("WIN10$");
        http_keytab = realm->export_keytab({kService}, "http.keytab");
        client_keytab = realm->export_keytab({"WIN10$"}, "client.keytab");
    }

    std::string service() const { return std::string(kService) + "@" + realm->realm(); }

    // Fresh credential cache, then make_tokens.py; returns the JSON it wrote.
    nlohmann::json tokens(const std::string& name, const std::string& options,
                          const fs::path& acceptor_keytab) {
        const std::string cc = realm->kinit(client, client_keytab);
        const fs::path out = realm->dir() / (name + ".json");
        run(*realm, {{"KRB5CCNAME", cc}, {"KRB5_KTNAME", "FILE:" + acceptor_keytab.string()}},
            "/usr/bin/python3 " + quote(kScriptDir + "/make_tokens.py") + " " +
                quote(out.string()) + " --service " + quote(service()) + " " + options);
        return load_json(out.string());
    }
};

Direction direction_of(const nlohmann::json& m) {
    return m["direction"] == "initiator" ? Direction::Initiator : Direction::Acceptor;
}

// Recovers the session offline and checks every message byte for byte; returns the session.
SessionKeys recover_and_check(const nlohmann::json& j, const KeySet& keys, std::int32_t enctype) {
    SessionKeys s = SessionKeys::from_ap_req(unhex(j["ap_req"]), keys);
    EXPECT_EQ(s.client().to_string(), j["client"].get<std::string>());
    EXPECT_EQ(s.service().to_string(), j["service"].get<std::string>());
    EXPECT_EQ(s.session_key().enctype, enctype);
    EXPECT_EQ(s.form(), j["mech"] == "krb5" ? TokenForm::Krb5 : TokenForm::Spnego);
    if (!j["ap_rep"].is_null()) {
        // Without mutual authentication SPNEGO still answers (accept-completed, no mech token).
        EXPECT_EQ(s.accept_ap_rep(unhex(j["ap_rep"])), j["mutual"].get<bool>());
        EXPECT_EQ(s.acceptor_subkey().has_value(), j["mutual"].get<bool>());
    }
    // The key MIT uses for the context's wrap tokens (GSS_C_INQ_SSPI_SESSION_KEY).
    const Key& wrap_key = s.acceptor_subkey() ? *s.acceptor_subkey() : *s.initiator_subkey();
    EXPECT_EQ(tohex(wrap_key.bytes), j["gss_key"].get<std::string>());
    EXPECT_EQ(wrap_key.enctype, enctype);
    std::size_t checked = 0, sealed = 0;
    for (const auto& m : j["messages"]) {
        const Unwrapped u = s.unwrap(direction_of(m), unhex(m["header"]), unhex(m["data"]));
        EXPECT_EQ(u.plaintext, unhex(m["plaintext"])) << checked;
        EXPECT_EQ(u.sealed, m["sealed"].get<bool>());
        EXPECT_EQ((u.flags & 0x04) != 0, s.has_ap_rep()); // AcceptorSubkey flag
        if (u.sealed) {
            ++sealed;
            // WinRM framing for AES (both key sizes): L = 60, RRC = 28, EC = 0.
            const Bytes h = unhex(m["header"]);
            EXPECT_EQ(h.size(), enctype == 20 ? 72u : enctype == 19 ? 64u : 60u);
            EXPECT_EQ(h[4] << 8 | h[5], 0);
        }
        ++checked;
    }
    EXPECT_EQ(checked, j["messages"].size());
    EXPECT_GE(sealed, 4u);
    return s;
}

KeySet keys_from(const std::vector<fs::path>& keytabs) {
    KeySet keys;
    for (const auto& k : keytabs)
        keys.add_keytab(k.string());
    return keys;
}

TEST(KrbLive, Aes256RawKrb5AndSpnego) {
    Realm setup("aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96");
    const KeySet keys = keys_from({setup.http_keytab});
    for (const char* mech : {"krb5", "spnego"}) {
        SCOPED_TRACE(mech);
        const auto j = setup.tokens(std::string("aes256-") + mech, std::string("--mech ") + mech,
                                    setup.http_keytab);
        const SessionKeys s = recover_and_check(j, keys, 18);
        EXPECT_EQ(s.ticket_enctype(), 18);
    }
}

TEST(KrbLive, Aes128RawKrb5AndSpnego) {
    Realm setup("aes128-cts-hmac-sha1-96");
    const KeySet keys = keys_from({setup.http_keytab});
    for (const char* mech : {"krb5", "spnego"}) {
        SCOPED_TRACE(mech);
        const auto j = setup.tokens(std::string("aes128-") + mech, std::string("--mech ") + mech,
                                    setup.http_keytab);
        const SessionKeys s = recover_and_check(j, keys, 17);
        EXPECT_EQ(s.ticket_enctype(), 17);
    }
}

TEST(KrbLive, AesSha2ComesThroughKrb5CDecrypt) {
    for (const auto& [name, enctype] : std::vector<std::pair<std::string, int>>{
             {"aes256-cts-hmac-sha384-192", 20}, {"aes128-cts-hmac-sha256-128", 19}}) {
        SCOPED_TRACE(name);
        Realm setup(name);
        const auto j = setup.tokens("sha2", "--mech krb5", setup.http_keytab);
        recover_and_check(j, keys_from({setup.http_keytab}), enctype);
    }
}

TEST(KrbLive, NoMutualAuthUsesTheInitiatorSubkey) {
    Realm setup("");
    for (const char* mech : {"krb5", "spnego"}) {
        SCOPED_TRACE(mech);
        const auto j = setup.tokens(std::string("nomutual-") + mech,
                                    std::string("--no-mutual --mech ") + mech, setup.http_keytab);
        const SessionKeys s = recover_and_check(j, keys_from({setup.http_keytab}), 18);
        EXPECT_FALSE(s.has_ap_rep());
        EXPECT_EQ(s.gss_flags() & 0x02, 0u); // no GSS_C_MUTUAL_FLAG
    }
}

TEST(KrbLive, KeyRotationSeveralKvnosAndWrongKeytabs) {
    Realm setup("");
    // kvno 1 in both files; then change the key and append kvno 2 to the "multi" keytab.
    const fs::path v1 = setup.realm->export_keytab({kService}, "v1.keytab");
    const fs::path multi = setup.realm->export_keytab({kService}, "multi.keytab");
    const auto session1 = setup.tokens("kvno1", "--mech krb5 --sizes 0,100,5000", v1);
    run(*setup.realm, {}, "kadmin.local -q " + quote(std::string("cpw -randkey ") + kService));
    setup.realm->export_keytab({kService}, "multi.keytab");
    const fs::path v2 = setup.realm->export_keytab({kService}, "v2.keytab");
    const auto session2 = setup.tokens("kvno2", "--mech spnego --sizes 0,100,5000", v2);

    const KeySet multi_keys = keys_from({multi});
    ASSERT_EQ(multi_keys.size(), 4u); // kvno 1 and 2, aes256 and aes128
    EXPECT_EQ(recover_and_check(session1, multi_keys, 18).ticket_kvno(), 1u);
    EXPECT_EQ(recover_and_check(session2, multi_keys, 18).ticket_kvno(), 2u);
    // Two --keytab files work the same.
    EXPECT_EQ(recover_and_check(session2, keys_from({v1, v2}), 18).ticket_kvno(), 2u);

    auto reason = [](const nlohmann::json& j, const KeySet& keys) {
        try {
            SessionKeys::from_ap_req(unhex(j["ap_req"]), keys);
        } catch (const DecryptError& e) {
            return e.reason();
        }
        return Reason::NotKerberos;
    };
    // The old keytab for the new ticket, another principal's keytab: candidate keys all fail.
    EXPECT_EQ(reason(session2, keys_from({v1})), Reason::WrongKey);
    const fs::path host = setup.realm->export_keytab({"HOST/srv.windomain.local"}, "host.keytab");
    EXPECT_EQ(reason(session1, keys_from({host})), Reason::WrongKey);
    EXPECT_EQ(reason(session1, KeySet{}), Reason::NoKey);
}

TEST(KrbLive, TamperedAndMissingApRep) {
    Realm setup("");
    const auto j = setup.tokens("tamper", "--mech krb5 --sizes 0,64,1000", setup.http_keytab);
    SessionKeys s = SessionKeys::from_ap_req(unhex(j["ap_req"]), keys_from({setup.http_keytab}));
    const auto& m = j["messages"][2]; // initiator, 64 bytes, sealed
    ASSERT_EQ(m["direction"], "initiator");
    try {
        s.unwrap(Direction::Initiator, unhex(m["header"]), unhex(m["data"]));
        FAIL() << "unwrapped without the AP-REP";
    } catch (const DecryptError& e) {
        EXPECT_EQ(e.reason(), Reason::NoSession);
    }
    s.accept_ap_rep(unhex(j["ap_rep"]));
    Bytes data = unhex(m["data"]);
    data.back() ^= 0xff;
    try {
        s.unwrap(Direction::Initiator, unhex(m["header"]), data);
        FAIL() << "tampered data unwrapped";
    } catch (const DecryptError& e) {
        EXPECT_EQ(e.reason(), Reason::WrongKey);
    }
    EXPECT_EQ(s.unwrap(Direction::Initiator, unhex(m["header"]), unhex(m["data"])).plaintext,
              unhex(m["plaintext"]));
}

// An independent decryptor (impacket: pure-Python keytab, ASN.1 and RFC 3961 crypto, no MIT code).
TEST(KrbLive, ImpacketCrossCheck) {
    // A dependency like the KDC (scripts/install-deps.sh installs python3-impacket): a machine
    // without it fails here, naming it, rather than skipping the cross-check.
    ASSERT_EQ(std::system("/usr/bin/python3 -c 'import impacket' >/dev/null 2>&1"), 0)
        << "python3-impacket is not installed (scripts/install-deps.sh installs it)";
    Realm setup("");
    const auto j = setup.tokens("impacket", "--mech krb5 --sizes 0,1,100,5000", setup.http_keytab);
    const fs::path tokens = setup.realm->dir() / "impacket.json"; // written by tokens()
    const fs::path json = setup.realm->dir() / "impacket-result.json";
    run(*setup.realm, {},
        "/usr/bin/python3 " + quote(kScriptDir + "/impacket_check.py") + " " +
            quote(setup.http_keytab.string()) + " " + quote(tokens.string()) + " " +
            quote(json.string()));
    // impacket_check.py decrypted every sealed message; our decryption must agree byte for byte.
    SessionKeys s = SessionKeys::from_ap_req(unhex(j["ap_req"]), keys_from({setup.http_keytab}));
    s.accept_ap_rep(unhex(j["ap_rep"]));
    const auto results = load_json(json.string());
    EXPECT_EQ(results["acceptor_subkey"].get<std::string>(), tohex(s.acceptor_subkey()->bytes));
    EXPECT_EQ(results["session_key"].get<std::string>(), tohex(s.session_key().bytes));
    std::size_t compared = 0;
    for (std::size_t i = 0; i < j["messages"].size(); ++i) {
        const auto& m = j["messages"][i];
        if (!m["sealed"].get<bool>()) continue;
        const auto& theirs = results["plaintexts"][i];
        ASSERT_FALSE(theirs.is_null());
        const Unwrapped ours = s.unwrap(direction_of(m), unhex(m["header"]), unhex(m["data"]));
        EXPECT_EQ(tohex(ours.plaintext), theirs.get<std::string>());
        ++compared;
    }
    EXPECT_GE(compared, 6u);
}

} // namespace
} // namespace wec::krb

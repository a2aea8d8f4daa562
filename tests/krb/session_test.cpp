// Session recovery and wrap-token unwrapping on golden tokens made by MIT krb5 through
// python3-gssapi (tests/krb/make_tokens.py against a throwaway KDC; the tickets have long expired
// by the time this runs, which is the point: nothing may depend on the current time).
//   golden-krb5-kvno1.json   raw krb5 mech, ticket kvno 1   (keys: http-kvno1.keytab)
//   golden-spnego-kvno2.json SPNEGO, ticket kvno 2 after cpw (keys: http-multi.keytab has 1 and 2)
#include "krb/crypto.hpp"
#include "krb/krb.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

namespace wec::krb {
namespace {

using test::data_path;
using test::load_json;
using test::unhex;
using Bytes = std::vector<std::uint8_t>;

KeySet keyset(const std::string& name) {
    KeySet keys;
    keys.add_keytab(data_path(name));
    return keys;
}

Reason reason_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const DecryptError& e) {
        return e.reason();
    }
    ADD_FAILURE() << "no DecryptError";
    return Reason::NotKerberos;
}

Direction direction_of(const nlohmann::json& m) {
    return m["direction"] == "initiator" ? Direction::Initiator : Direction::Acceptor;
}

void check_all_messages(const SessionKeys& s, const nlohmann::json& j) {
    std::size_t count = 0;
    UnwrapBuffers reused; // shared by all the messages, in both orders
    for (const auto& m : j["messages"]) {
        const Bytes header = unhex(m["header"]);
        const Bytes data = unhex(m["data"]);
        const Unwrapped u = s.unwrap(direction_of(m), header, data);
        EXPECT_EQ(u.plaintext, unhex(m["plaintext"])) << count;
        EXPECT_EQ(u.sealed, m["sealed"].get<bool>()) << count;
        // Also as one contiguous token.
        Bytes whole = header;
        whole.insert(whole.end(), data.begin(), data.end());
        EXPECT_EQ(s.unwrap(direction_of(m), whole).plaintext, u.plaintext);
        // And into reused buffers: the same plaintext, flags and sequence number.
        const UnwrappedView v = s.unwrap_into(direction_of(m), header, data, reused);
        EXPECT_EQ(Bytes(v.plaintext.begin(), v.plaintext.end()), u.plaintext) << count;
        EXPECT_EQ(v.sealed, u.sealed);
        EXPECT_EQ(v.flags, u.flags);
        EXPECT_EQ(v.sequence, u.sequence);
        ++count;
    }
    EXPECT_GE(count, 10u);
    const auto& messages = j["messages"];
    for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
        const auto& m = *it;
        const UnwrappedView v =
            s.unwrap_into(direction_of(m), unhex(m["header"]), unhex(m["data"]), reused);
        EXPECT_EQ(Bytes(v.plaintext.begin(), v.plaintext.end()), unhex(m["plaintext"]));
    }
}

TEST(Session, RawKrb5GoldenBothDirections) {
    const auto j = load_json(data_path("golden-krb5-kvno1.json"));
    const KeySet keys = keyset("http-kvno1.keytab");
    SessionKeys s = SessionKeys::from_ap_req(unhex(j["ap_req"]), keys);
    EXPECT_EQ(s.form(), TokenForm::Krb5);
    EXPECT_EQ(s.client().to_string(), "WIN10$@WINDOMAIN.LOCAL");
    EXPECT_EQ(s.service().to_string(), "HTTP/srv.windomain.local@WINDOMAIN.LOCAL");
    EXPECT_EQ(s.ticket_kvno(), 1u);
    EXPECT_EQ(s.ticket_enctype(), 18);
    EXPECT_EQ(s.session_key().enctype, 18);
    ASSERT_TRUE(s.initiator_subkey().has_value());
    EXPECT_TRUE(s.initiator_sequence().has_value());
    EXPECT_NE(s.gss_flags() & 0x02, 0u); // GSS_C_MUTUAL_FLAG
    EXPECT_FALSE(s.has_ap_rep());
    s.accept_ap_rep(unhex(j["ap_rep"]));
    ASSERT_TRUE(s.acceptor_subkey().has_value());
    // The acceptor subkey is the key MIT reports for the established context.
    EXPECT_EQ(test::tohex(s.acceptor_subkey()->bytes), j["gss_key"].get<std::string>());
    EXPECT_EQ(s.acceptor_subkey()->enctype, j["gss_key_enctype"].get<int>());
    check_all_messages(s, j);

    // WinRM framing: AES256 sealed tokens have L = 60 and RRC = 28.
    const Bytes h = unhex(j["messages"][0]["header"]);
    EXPECT_EQ(h.size(), 60u);
    EXPECT_EQ(h[6], 0);
    EXPECT_EQ(h[7], 28);
}

TEST(Session, SpnegoGoldenWithSeveralKvnos) {
    const auto j = load_json(data_path("golden-spnego-kvno2.json"));
    const KeySet keys = keyset("http-multi.keytab");
    SessionKeys s = SessionKeys::from_ap_req(unhex(j["ap_req"]), keys);
    EXPECT_EQ(s.form(), TokenForm::Spnego);
    EXPECT_EQ(s.ticket_kvno(), 2u);
    s.accept_ap_rep(unhex(j["ap_rep"]));
    EXPECT_EQ(test::tohex(s.acceptor_subkey()->bytes), j["gss_key"].get<std::string>());
    check_all_messages(s, j);

    const ApReqInfo info = parse_ap_req(unhex(j["ap_req"]));
    EXPECT_EQ(info.form, TokenForm::Spnego);
    EXPECT_EQ(info.service.to_string(), "HTTP/srv.windomain.local@WINDOMAIN.LOCAL");
    EXPECT_EQ(info.ticket_kvno, 2u);
    EXPECT_EQ(info.ticket_enctype, 18);
}

// Sessions of several connections on one krb5 context (as the decoder makes them), interleaved,
// through MIT alone and with the OpenSSL fast path: each still unwraps its own tokens.
TEST(Session, SessionsShareOneContext) {
    const auto a = load_json(data_path("golden-krb5-kvno1.json"));
    const auto b = load_json(data_path("golden-spnego-kvno2.json"));
    const KeySet keys_a = keyset("http-kvno1.keytab");
    const KeySet keys_b = keyset("http-multi.keytab");
    for (bool accelerate : {false, true}) {
        auto ctx = std::make_shared<const crypto::Context>(accelerate);
        SessionKeys sa = SessionKeys::from_ap_req(unhex(a["ap_req"]), keys_a, ctx);
        SessionKeys sb = SessionKeys::from_ap_req(unhex(b["ap_req"]), keys_b, ctx);
        EXPECT_GE(ctx.use_count(), 3) << "both sessions hold the caller's context";
        sa.accept_ap_rep(unhex(a["ap_rep"]));
        sb.accept_ap_rep(unhex(b["ap_rep"]));
        check_all_messages(sa, a);
        check_all_messages(sb, b);
        check_all_messages(sa, a);
        EXPECT_EQ(sb.ticket_kvno(), 2u);
        EXPECT_EQ(test::tohex(sa.acceptor_subkey()->bytes), a["gss_key"].get<std::string>());
        ctx.reset();
        check_all_messages(sb, b); // the sessions keep the context alive
    }
}

TEST(Session, OldKeytabGivesWrongKey) {
    // The ticket is for kvno 2; a keytab with only kvno 1 has candidate keys that all fail.
    const auto j = load_json(data_path("golden-spnego-kvno2.json"));
    const KeySet keys = keyset("http-kvno1.keytab");
    EXPECT_EQ(reason_of([&] { SessionKeys::from_ap_req(unhex(j["ap_req"]), keys); }),
              Reason::WrongKey);
}

TEST(Session, EmptyKeySetGivesNoKey) {
    const auto j = load_json(data_path("golden-krb5-kvno1.json"));
    try {
        SessionKeys::from_ap_req(unhex(j["ap_req"]), KeySet{});
        FAIL();
    } catch (const DecryptError& e) {
        EXPECT_EQ(e.reason(), Reason::NoKey);
        EXPECT_NE(std::string(e.what()).find("HTTP/srv.windomain.local@WINDOMAIN.LOCAL"),
                  std::string::npos)
            << e.what();
    }
}

TEST(Session, OnlyOtherEnctypeGivesNoKey) {
    const auto j = load_json(data_path("golden-krb5-kvno1.json"));
    KeySet keys;
    for (auto e : read_keytab(data_path("http-kvno1.keytab")))
        if (e.enctype == 17) keys.add(std::move(e));
    ASSERT_GT(keys.size(), 0u);
    EXPECT_EQ(reason_of([&] { SessionKeys::from_ap_req(unhex(j["ap_req"]), keys); }),
              Reason::NoKey);
}

TEST(Session, MissingApRepIsAClearError) {
    const auto j = load_json(data_path("golden-krb5-kvno1.json"));
    const SessionKeys s = SessionKeys::from_ap_req(unhex(j["ap_req"]), keyset("http-kvno1.keytab"));
    const auto& m = j["messages"][0];
    try {
        s.unwrap(direction_of(m), unhex(m["header"]), unhex(m["data"]));
        FAIL();
    } catch (const DecryptError& e) {
        EXPECT_EQ(e.reason(), Reason::NoSession);
        EXPECT_NE(std::string(e.what()).find("AP-REP"), std::string::npos) << e.what();
    }
}

TEST(Session, NoApReqAtAll) {
    const SessionKeys none;
    EXPECT_FALSE(none.has_session());
    const auto j = load_json(data_path("golden-krb5-kvno1.json"));
    const auto& m = j["messages"][0];
    EXPECT_EQ(reason_of([&] { none.unwrap(Direction::Initiator, unhex(m["header"]), {}); }),
              Reason::NoSession);
    EXPECT_EQ(reason_of([&] { (void)none.client(); }), Reason::NoSession);
    SessionKeys none2;
    EXPECT_EQ(reason_of([&] { none2.accept_ap_rep(unhex(j["ap_rep"])); }), Reason::NoSession);
}

class Established : public ::testing::Test {
protected:
    void SetUp() override {
        j = load_json(data_path("golden-krb5-kvno1.json"));
        s = SessionKeys::from_ap_req(unhex(j["ap_req"]), keyset("http-kvno1.keytab"));
        s.accept_ap_rep(unhex(j["ap_rep"]));
    }
    // A sealed message with at least `min` bytes of plaintext.
    const nlohmann::json& sealed(Direction d, std::size_t min = 1) {
        for (const auto& m : j["messages"])
            if (m["sealed"].get<bool>() && direction_of(m) == d &&
                unhex(m["plaintext"]).size() >= min)
                return m;
        throw std::runtime_error("no such message");
    }
    nlohmann::json j;
    SessionKeys s;
};

TEST_F(Established, TamperedCiphertext) {
    const auto& m = sealed(Direction::Initiator, 100);
    Bytes data = unhex(m["data"]);
    data[data.size() / 2] ^= 0x01;
    EXPECT_EQ(reason_of([&] { s.unwrap(Direction::Initiator, unhex(m["header"]), data); }),
              Reason::WrongKey);
    Bytes header = unhex(m["header"]);
    header[40] ^= 0x80; // inside the rotated checksum/confounder
    EXPECT_EQ(reason_of([&] { s.unwrap(Direction::Initiator, header, unhex(m["data"])); }),
              Reason::WrongKey);
}

TEST_F(Established, TamperedTokenHeader) {
    const auto& m = sealed(Direction::Acceptor);
    Bytes header = unhex(m["header"]);
    header[15] ^= 0x01; // SND_SEQ: not covered by the ciphertext, but by the encrypted copy
    EXPECT_EQ(reason_of([&] { s.unwrap(Direction::Acceptor, header, unhex(m["data"])); }),
              Reason::WrongKey);
}

TEST_F(Established, TamperedIntegrityOnlyToken) {
    for (const auto& m : j["messages"]) {
        if (m["sealed"].get<bool>()) continue;
        Bytes data = unhex(m["data"]);
        ASSERT_FALSE(data.empty());
        data[0] ^= 0x20;
        EXPECT_EQ(reason_of([&] { s.unwrap(direction_of(m), unhex(m["header"]), data); }),
                  Reason::WrongKey);
    }
}

TEST_F(Established, WrongDirection) {
    const auto& m = sealed(Direction::Initiator);
    EXPECT_EQ(
        reason_of([&] { s.unwrap(Direction::Acceptor, unhex(m["header"]), unhex(m["data"])); }),
        Reason::Malformed);
}

TEST_F(Established, MalformedTokens) {
    const auto& m = sealed(Direction::Initiator);
    const Bytes header = unhex(m["header"]);
    EXPECT_EQ(reason_of([&] {
                  s.unwrap(Direction::Initiator, Bytes(header.begin(), header.begin() + 15), {});
              }),
              Reason::Malformed);
    Bytes bad = header;
    bad[3] = 0x00; // filler
    EXPECT_EQ(reason_of([&] { s.unwrap(Direction::Initiator, bad, unhex(m["data"])); }),
              Reason::Malformed);
    bad = header;
    bad[0] = 0x04; // MIC token
    EXPECT_EQ(reason_of([&] { s.unwrap(Direction::Initiator, bad, unhex(m["data"])); }),
              Reason::Malformed);
    bad = header;
    bad[0] = 0x02;
    bad[1] = 0x01; // RFC 4757 (RC4-HMAC) wrap token
    EXPECT_EQ(reason_of([&] { s.unwrap(Direction::Initiator, bad, unhex(m["data"])); }),
              Reason::UnsupportedEnctype);
    // Only the 16-byte header: nothing to decrypt.
    EXPECT_EQ(reason_of([&] {
                  s.unwrap(Direction::Initiator, Bytes(header.begin(), header.begin() + 16), {});
              }),
              Reason::Malformed);
    // Cut anywhere: always a typed error, never a crash.
    Bytes whole = header;
    const Bytes data = unhex(m["data"]);
    whole.insert(whole.end(), data.begin(), data.end());
    for (std::size_t len = 0; len < whole.size(); ++len) {
        try {
            s.unwrap(Direction::Initiator,
                     Bytes(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(len)));
            ADD_FAILURE() << "cut at " << len << " unwrapped";
        } catch (const DecryptError&) {
        }
    }
}

TEST_F(Established, ApRepOfAnotherSession) {
    const auto other = load_json(data_path("golden-spnego-kvno2.json"));
    EXPECT_EQ(reason_of([&] { s.accept_ap_rep(unhex(other["ap_rep"])); }), Reason::WrongKey);
}

TEST_F(Established, AcceptorKeyUsageIsNotTheInitiators) {
    // The acceptor's tokens do not decrypt as initiator tokens even with the flag forced.
    const auto& m = sealed(Direction::Acceptor);
    Bytes header = unhex(m["header"]);
    header[2] &= static_cast<std::uint8_t>(~0x01);
    EXPECT_EQ(reason_of([&] { s.unwrap(Direction::Initiator, header, unhex(m["data"])); }),
              Reason::WrongKey);
}

TEST(Tokens, EveryTruncationOfTheApReqIsTyped) {
    for (const char* name : {"golden-krb5-kvno1.json", "golden-spnego-kvno2.json"}) {
        const auto j = load_json(data_path(name));
        const Bytes req = unhex(j["ap_req"]);
        const KeySet keys = keyset("http-multi.keytab");
        for (std::size_t len = 0; len < req.size(); len += (len < 64 ? 1 : 7)) {
            const Bytes cut(req.begin(), req.begin() + static_cast<std::ptrdiff_t>(len));
            EXPECT_THROW(SessionKeys::from_ap_req(cut, keys), DecryptError) << name << " " << len;
        }
        const Bytes rep = unhex(j["ap_rep"]);
        SessionKeys s = SessionKeys::from_ap_req(req, keys);
        for (std::size_t len = 0; len < rep.size(); ++len) {
            const Bytes cut(rep.begin(), rep.begin() + static_cast<std::ptrdiff_t>(len));
            EXPECT_THROW(s.accept_ap_rep(cut), DecryptError) << name << " " << len;
        }
    }
}

TEST(Tokens, TamperedTicketIsWrongKey) {
    const auto j = load_json(data_path("golden-krb5-kvno1.json"));
    Bytes req = unhex(j["ap_req"]);
    req[200] ^= 0x01; // inside the ticket's cipher
    EXPECT_EQ(reason_of([&] { SessionKeys::from_ap_req(req, keyset("http-kvno1.keytab")); }),
              Reason::WrongKey);
}

TEST(Tokens, NotKerberos) {
    const std::string ntlm = "NTLMSSP\0\1\0\0\0";
    const Bytes ntlm_bytes(ntlm.begin(), ntlm.end());
    EXPECT_EQ(reason_of([&] { parse_ap_req(Bytes(ntlm.begin(), ntlm.begin() + 12)); }),
              Reason::NotKerberos);
    // SPNEGO NegTokenInit offering only NTLM (no mechToken).
    const Bytes spnego_ntlm = {0x60, 0x1c, 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02,
                               0xa0, 0x12, 0x30, 0x10, 0xa0, 0x0e, 0x30, 0x0c, 0x06, 0x0a,
                               0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a};
    EXPECT_EQ(reason_of([&] { parse_ap_req(spnego_ntlm); }), Reason::NotKerberos);
    EXPECT_EQ(reason_of([&] { parse_ap_req(Bytes{}); }), Reason::Malformed);
    EXPECT_EQ(reason_of([&] { parse_ap_req(Bytes{0x42, 0x00}); }), Reason::Malformed);
}

TEST(Tokens, KrbErrorInsteadOfApRep) {
    const auto j = load_json(data_path("golden-krb5-kvno1.json"));
    SessionKeys s = SessionKeys::from_ap_req(unhex(j["ap_req"]), keyset("http-kvno1.keytab"));
    // GSS krb5 token, TOK_ID 03 00, KRB-ERROR { pvno 5, msg-type 30, error-code [6] 41 }
    const Bytes err = {0x60, 0x20, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02,
                       0x02, 0x03, 0x00, 0x7e, 0x11, 0x30, 0x0f, 0xa0, 0x03, 0x02, 0x01, 0x05,
                       0xa1, 0x03, 0x02, 0x01, 0x1e, 0xa6, 0x03, 0x02, 0x01, 0x29};
    try {
        s.accept_ap_rep(err);
        FAIL();
    } catch (const DecryptError& e) {
        EXPECT_EQ(e.reason(), Reason::NoSession);
        EXPECT_NE(std::string(e.what()).find("error-code 41"), std::string::npos) << e.what();
    }
}

TEST(Tokens, BareApReqAndApRep) {
    // Strip the GSS framing (0x60 len OID 01 00): the bare AP-REQ works too.
    const auto j = load_json(data_path("golden-krb5-kvno1.json"));
    const Bytes req = unhex(j["ap_req"]);
    const Bytes rep = unhex(j["ap_rep"]);
    auto strip = [](const Bytes& t) {
        std::size_t pos = 1;
        if (t[pos] & 0x80) pos += t[pos] & 0x7f;
        ++pos;
        pos += 2 + t[pos + 1]; // OID
        pos += 2;              // TOK_ID
        return Bytes(t.begin() + static_cast<std::ptrdiff_t>(pos), t.end());
    };
    const Bytes bare_req = strip(req);
    ASSERT_EQ(bare_req[0], 0x6e);
    SessionKeys s = SessionKeys::from_ap_req(bare_req, keyset("http-kvno1.keytab"));
    EXPECT_EQ(s.form(), TokenForm::Bare);
    const Bytes bare_rep = strip(rep);
    ASSERT_EQ(bare_rep[0], 0x6f);
    s.accept_ap_rep(bare_rep);
    check_all_messages(s, j);
    // An AP-REP where an AP-REQ is expected (and the other way round).
    EXPECT_EQ(reason_of([&] { parse_ap_req(rep); }), Reason::Malformed);
    EXPECT_EQ(reason_of([&] { s.accept_ap_rep(req); }), Reason::Malformed);
}

TEST(Errors, ReasonNames) {
    EXPECT_STREQ(reason_name(Reason::NoKey), "no-key");
    EXPECT_STREQ(reason_name(Reason::WrongKey), "wrong-key");
    EXPECT_STREQ(reason_name(Reason::Malformed), "malformed");
    EXPECT_STREQ(reason_name(Reason::UnsupportedEnctype), "unsupported-enctype");
    EXPECT_STREQ(reason_name(Reason::NoSession), "no-session");
    EXPECT_STREQ(reason_name(Reason::NotKerberos), "not-kerberos");
    const DecryptError e(Reason::Malformed, "x", 7);
    EXPECT_EQ(e.offset(), 7u);
    const wec::Error& base = e;
    EXPECT_NE(std::string(base.what()).find("malformed"), std::string::npos);
}

} // namespace
} // namespace wec::krb

// The OpenSSL fast path of seal/unseal (lib/auth/fast_context.*) against MIT GSSAPI, on real
// contexts from a real MIT KDC: every enctype with a fast path (aes-sha1, RFC 3962, and aes-sha2,
// RFC 8009, each the only one the test KDC issues), raw Kerberos and SPNEGO, both
// directions, MIT on one side and the fast path on the other (WEC_KRB_CRYPTO=mit for one
// context), tampering at every header byte, replay and reordering.
#include "auth/fast_context.hpp"
#include "auth/gss.hpp"
#include "support/krb5_realm.hpp"

#include <cstdlib>
#include <gssapi/gssapi_ext.h>
#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace {

using namespace wec::auth;
using wec::testing::Krb5Realm;
using Bytes = std::vector<std::uint8_t>;

const std::string kHost = "srv.windomain.local";

Bytes pattern(std::size_t size, unsigned seed) {
    Bytes b(size);
    for (std::size_t i = 0; i < size; ++i)
        b[i] = static_cast<std::uint8_t>(i * 13 + seed);
    return b;
}

// Sets WEC_KRB_CRYPTO for the contexts that take their fast path while it is alive.
class CryptoSwitch {
public:
    explicit CryptoSwitch(bool mit) {
        if (mit)
            ::setenv("WEC_KRB_CRYPTO", "mit", 1);
        else
            ::unsetenv("WEC_KRB_CRYPTO");
    }
    ~CryptoSwitch() { ::unsetenv("WEC_KRB_CRYPTO"); }
    CryptoSwitch(const CryptoSwitch&) = delete;
    CryptoSwitch& operator=(const CryptoSwitch&) = delete;
};

class FastContextTest : public ::testing::TestWithParam<std::string> {
protected:
    void SetUp() override {
        realm_ = std::make_unique<Krb5Realm>(Krb5Realm::Options{.enctypes = GetParam()});
        realm_->add_principal("HTTP/" + kHost);
        realm_->add_principal("WIN10$");
        keytab_ = realm_->export_keytab({"HTTP/" + kHost}, "service.keytab").string();
        ccache_ = realm_->kinit("WIN10$", realm_->export_keytab({"WIN10$"}, "win10.keytab"));
        realm_->apply_env();
        creds_ = AcceptorCredentials::from_keytab(keytab_);
    }

    struct Pair {
        ClientContext client;
        ServerContext server;
    };

    // An established pair; `client_mit` / `server_mit` keep that side on MIT.
    Pair pair(Mechanism mech, bool client_mit, bool server_mit, bool set_up_fast_path = true) {
        Pair p{ClientContext(
                   ClientOptions{.target = "HTTP@" + kHost, .mechanism = mech, .ccache = ccache_}),
               ServerContext(creds_)};
        auto out = p.client.step();
        for (int round = 0; round < 5; ++round) {
            auto r = p.server.step(out.output);
            EXPECT_FALSE(r.failed()) << r.error->what();
            if (r.failed() || (r.complete() && r.output.empty())) break;
            out = p.client.step(r.output);
            if (out.complete() && out.output.empty()) break;
        }
        EXPECT_TRUE(p.client.established());
        EXPECT_TRUE(p.server.established());
        if (!set_up_fast_path) return p;
        {
            CryptoSwitch sw(client_mit);
            p.client.fast_path();
        }
        {
            CryptoSwitch sw(server_mit);
            p.server.fast_path();
        }
        EXPECT_EQ(p.client.fast_path() == nullptr, client_mit);
        EXPECT_EQ(p.server.fast_path() == nullptr, server_mit);
        return p;
    }

    std::int32_t expected_enctype() const {
        const std::string& e = GetParam();
        return e == "aes128-cts-hmac-sha1-96"      ? 17
               : e == "aes256-cts-hmac-sha1-96"    ? 18
               : e == "aes128-cts-hmac-sha256-128" ? 19
                                                   : 20;
    }
    // MIT's layout: RRC = header copy + HMAC tag (12, 16 or 24 bytes), HEADER = 32 + RRC.
    std::size_t expected_rrc() const {
        const std::int32_t e = expected_enctype();
        return 16 + (e == 19 ? 16 : e == 20 ? 24 : 12);
    }
    std::size_t expected_header() const { return 32 + expected_rrc(); }

    std::unique_ptr<Krb5Realm> realm_;
    std::string keytab_;
    std::string ccache_;
    AcceptorCredentials creds_;
};

const std::vector<std::size_t> kSizes = {0,  1,  15, 16, 17,   31,    32,
                                         33, 47, 48, 49, 1000, 65536, 100001};

// Every combination of MIT and the fast path on the two sides interoperates, both directions,
// raw Kerberos and SPNEGO, with MIT's token layout (EC 0; sha1: 60-byte header, RRC 28; sha256:
// 64, 32; sha384: 72, 40).
TEST_P(FastContextTest, InteroperatesWithMitBothDirections) {
    for (auto mech : {Mechanism::Kerberos, Mechanism::Spnego}) {
        for (int combo = 0; combo < 4; ++combo) {
            const bool client_mit = combo & 1, server_mit = combo & 2;
            SCOPED_TRACE(std::string(to_string(mech)) + " client " + (client_mit ? "mit" : "fast") +
                         ", server " + (server_mit ? "mit" : "fast"));
            auto p = pair(mech, client_mit, server_mit);
            if (!client_mit) {
                ASSERT_NE(p.client.fast_path(), nullptr);
                EXPECT_EQ(p.client.fast_path()->enctype(), expected_enctype());
            }
            for (std::size_t size : kSizes) {
                const Bytes plain = pattern(size, static_cast<unsigned>(combo));
                auto up = seal(p.client, plain);
                ASSERT_EQ(up.header.size(), expected_header());
                ASSERT_EQ(up.ciphertext.size(), size);
                EXPECT_EQ(up.header[2], 0x06); // Sealed | AcceptorSubkey
                EXPECT_EQ(up.header[6], 0);    // RRC
                EXPECT_EQ(up.header[7], expected_rrc());
                EXPECT_EQ(unseal(p.server, up.header, up.ciphertext), plain) << size;
                auto down = seal(p.server, plain);
                ASSERT_EQ(down.header.size(), expected_header());
                EXPECT_EQ(down.header[7], expected_rrc());
                EXPECT_EQ(down.header[2], 0x07); // SentByAcceptor | Sealed | AcceptorSubkey
                auto data = down.ciphertext;
                unseal_in_place(p.client, down.header, data);
                EXPECT_EQ(data, plain) << size;
            }
        }
    }
}

// seal_append (what the client seals request bodies with): [32-bit LE header length][header]
// [ciphertext] after what `out` held, on the fast path encrypted straight into `out`; unsealed
// by the other side whether it is MIT or the fast path. wrap_into also works in place.
TEST_P(FastContextTest, SealAppendAndWrapIntoUnsealOnBothSides) {
    for (int combo = 0; combo < 4; ++combo) {
        const bool client_mit = combo & 1, server_mit = combo & 2;
        SCOPED_TRACE(std::string("client ") + (client_mit ? "mit" : "fast") + ", server " +
                     (server_mit ? "mit" : "fast"));
        auto p = pair(Mechanism::Kerberos, client_mit, server_mit);
        for (std::size_t size : kSizes) {
            const Bytes plain = pattern(size, static_cast<unsigned>(combo) + 7);
            Bytes out = {0xAA, 0xBB, 0xCC};
            seal_append(p.client, plain, out);
            ASSERT_EQ(out.size(), 3 + 4 + expected_header() + size);
            EXPECT_EQ(Bytes(out.begin(), out.begin() + 3), (Bytes{0xAA, 0xBB, 0xCC}));
            const std::uint32_t hl = out[3] | (out[4] << 8) | (out[5] << 16) |
                                     (static_cast<std::uint32_t>(out[6]) << 24);
            ASSERT_EQ(hl, expected_header());
            const Bytes header(out.begin() + 7, out.begin() + 7 + static_cast<long>(hl));
            const Bytes ciphertext(out.begin() + 7 + static_cast<long>(hl), out.end());
            EXPECT_EQ(header[7], expected_rrc());
            if (size > 16) {
                EXPECT_NE(ciphertext, plain); // encrypted, not copied
            }
            EXPECT_EQ(unseal(p.server, header, ciphertext), plain) << size;
        }
        if (!client_mit) { // in place: the plaintext buffer becomes the ciphertext
            FastContext* fast = p.client.fast_path();
            ASSERT_NE(fast, nullptr);
            ASSERT_EQ(fast->header_size(), expected_header());
            const Bytes plain = pattern(1000, 3);
            Bytes data = plain, header(fast->header_size());
            fast->wrap_into(data, header, data);
            EXPECT_NE(data, plain);
            EXPECT_EQ(unseal(p.server, header, data), plain);
            Bytes wrong(fast->header_size() + 1);
            EXPECT_THROW(fast->wrap_into(plain, wrong, data), GssError);
        }
    }
}

// The self-test copies the first context of an enctype (export/import): that works when the
// first context of the process is a SPNEGO one too (each test runs in its own process).
TEST_P(FastContextTest, SpnegoContextFirstInTheProcess) {
    auto p = pair(Mechanism::Spnego, false, false, /*set_up_fast_path=*/false);
    ASSERT_NE(p.server.fast_path(), nullptr); // the acceptor's context is the one copied
    ASSERT_NE(p.client.fast_path(), nullptr);
    EXPECT_EQ(p.server.fast_path()->enctype(), expected_enctype());
    const Bytes plain = pattern(777, 5);
    auto up = seal(p.client, plain);
    EXPECT_EQ(unseal(p.server, up.header, up.ciphertext), plain);
    auto down = seal(p.server, plain);
    EXPECT_EQ(unseal(p.client, down.header, down.ciphertext), plain);
}

// Any changed byte of a token is refused, whichever side seals; the genuine token still
// decrypts afterwards (a refused token leaves the context and the sequence as they were).
TEST_P(FastContextTest, TamperedTokensAreRefusedBothDirections) {
    for (int combo = 0; combo < 3; ++combo) {
        const bool client_mit = combo == 1, server_mit = combo == 2;
        SCOPED_TRACE(combo);
        auto p = pair(Mechanism::Kerberos, client_mit, server_mit);
        const Bytes plain = pattern(333, 7);
        for (int direction = 0; direction < 2; ++direction) {
            SecurityContext& from =
                direction == 0 ? static_cast<SecurityContext&>(p.client) : p.server;
            SecurityContext& to =
                direction == 0 ? static_cast<SecurityContext&>(p.server) : p.client;
            auto sealed = seal(from, plain);
            for (std::size_t i = 0; i < sealed.header.size(); ++i) {
                for (std::uint8_t bit : {std::uint8_t{0x01}, std::uint8_t{0x80}}) {
                    auto h = sealed.header;
                    h[i] ^= bit;
                    EXPECT_THROW(unseal(to, h, sealed.ciphertext), GssError)
                        << "header byte " << i << " bit " << int{bit};
                }
            }
            for (std::size_t i :
                 {std::size_t{0}, std::size_t{15}, std::size_t{16}, std::size_t{200},
                  std::size_t{316}, std::size_t{317}, std::size_t{332}}) {
                auto d = sealed.ciphertext;
                d[i] ^= 0x10;
                EXPECT_THROW(unseal(to, sealed.header, d), GssError) << "data byte " << i;
            }
            auto shorter = sealed.ciphertext;
            shorter.pop_back();
            EXPECT_THROW(unseal(to, sealed.header, shorter), GssError);
            EXPECT_THROW(
                unseal(to,
                       std::span<const std::uint8_t>(sealed.header).first(sealed.header.size() - 1),
                       sealed.ciphertext),
                GssError);
            EXPECT_EQ(unseal(to, sealed.header, sealed.ciphertext), plain);
            // A token for the other direction (the receiver's own) is refused.
            auto own = seal(to, plain);
            EXPECT_THROW(unseal(to, own.header, own.ciphertext), GssError);
        }
    }
}

// Bodies from 256 bytes on are unsealed by the stitched AES-CBC + HMAC-SHA1 pass (sha1
// enctypes, where the CPU has AES-NI/SHA-NI): at sizes around every boundary of its parts (the
// first 64 bytes, whole 64-byte blocks, the CBC blocks after them, the CTS tail), both
// directions, FastContext::unwrap itself refuses a token flipped in any of those parts or in its
// tag, confounder or header copy, and leaves the data exactly as it came (MIT decides then); the
// intact token opens to the plaintext.
TEST_P(FastContextTest, UnwrapRefusesTamperedBodiesAndLeavesThemIntact) {
    auto p = pair(Mechanism::Kerberos, false, false);
    for (std::size_t size : {255u, 256u, 257u, 271u, 272u, 273u, 287u, 288u, 300u, 319u, 320u, 335u,
                             336u, 1000u, 4097u, 65541u}) {
        const Bytes plain = pattern(size, static_cast<unsigned>(size));
        for (int direction = 0; direction < 2; ++direction) {
            SCOPED_TRACE(testing::Message() << "size " << size << " direction " << direction);
            SecurityContext& from =
                direction == 0 ? static_cast<SecurityContext&>(p.client) : p.server;
            SecurityContext& to =
                direction == 0 ? static_cast<SecurityContext&>(p.server) : p.client;
            FastContext* fast = to.fast_path();
            ASSERT_NE(fast, nullptr);
            const Sealed sealed = seal(from, plain);
            // Header: the encrypted header copy (16..32), the tag, the first ciphertext block.
            for (std::size_t at : {std::size_t{16}, std::size_t{31}, std::size_t{32},
                                   sealed.header.size() - 16, sealed.header.size() - 1}) {
                Bytes h = sealed.header, d = sealed.ciphertext;
                h[at] ^= 0x04;
                EXPECT_EQ(fast->unwrap(h, d), FastContext::Unwrapped::Refused) << "header " << at;
                EXPECT_EQ(d, sealed.ciphertext) << "header " << at;
            }
            for (std::size_t at :
                 {std::size_t{0}, std::size_t{47}, std::size_t{48}, std::size_t{111},
                  std::size_t{112}, size / 2, size - 33, size - 17, size - 16, size - 1}) {
                Bytes d = sealed.ciphertext;
                d[at] ^= 0x40;
                const Bytes tampered = d;
                EXPECT_EQ(fast->unwrap(sealed.header, d), FastContext::Unwrapped::Refused)
                    << "data " << at;
                EXPECT_EQ(d, tampered) << "data " << at;
            }
            Bytes d = sealed.ciphertext;
            EXPECT_EQ(fast->unwrap(sealed.header, d), FastContext::Unwrapped::Ok);
            EXPECT_EQ(d, plain);
        }
    }
    // Replays of a large body stay refused (the caller's sequence check, whatever the path).
    const Bytes big = pattern(70000, 3);
    auto first = seal(p.client, big), second = seal(p.client, big);
    EXPECT_EQ(unseal(p.server, second.header, second.ciphertext), big);
    EXPECT_THROW(unseal(p.server, first.header, first.ciphertext), GssError);   // reordered
    EXPECT_THROW(unseal(p.server, second.header, second.ciphertext), GssError); // replayed
}

// Once the fast path has a context, MIT's copy is parked (exported) on both sides, raw Kerberos
// and SPNEGO; a context left on MIT is not. The fast path works while it is parked; a token the
// fast path refuses imports it again for MIT's verdict (still refused), and the imported context
// is the same one: MIT opens the peer's next token with it, and replays stay refused.
TEST_P(FastContextTest, MitContextParkedUntilATokenNeedsIt) {
    for (auto mech : {Mechanism::Kerberos, Mechanism::Spnego}) {
        SCOPED_TRACE(to_string(mech));
        auto p = pair(mech, false, false);
        EXPECT_TRUE(p.client.parked());
        EXPECT_TRUE(p.server.parked());
        const Bytes plain = pattern(500, 3);
        auto up = seal(p.client, plain);
        EXPECT_EQ(unseal(p.server, up.header, up.ciphertext), plain);
        auto down = seal(p.server, plain);
        EXPECT_EQ(unseal(p.client, down.header, down.ciphertext), plain);
        EXPECT_TRUE(p.client.parked());
        EXPECT_TRUE(p.server.parked());

        // Tampered: the fast path refuses it, MIT (imported for it) refuses it too.
        auto next = seal(p.client, plain);
        auto tampered = next.ciphertext;
        tampered[100] ^= 0x01;
        EXPECT_THROW(unseal(p.server, next.header, tampered), GssError);
        EXPECT_FALSE(p.server.parked());
        EXPECT_EQ(unseal(p.server, next.header, next.ciphertext), plain);
        EXPECT_THROW(unseal(p.server, next.header, next.ciphertext), GssError); // replay

        // The client's MIT context, imported on demand, opens the server's next token itself.
        auto reply = seal(p.server, plain);
        Bytes header = reply.header, data = reply.ciphertext;
        gss_iov_buffer_desc iov[2];
        iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER;
        iov[0].buffer = {header.size(), header.data()};
        iov[1].type = GSS_IOV_BUFFER_TYPE_DATA;
        iov[1].buffer = {data.size(), data.data()};
        OM_uint32 minor = 0;
        int conf = 0;
        gss_qop_t qop = 0;
        ASSERT_FALSE(GSS_ERROR(gss_unwrap_iov(&minor, p.client.handle(), &conf, &qop, iov, 2)));
        EXPECT_FALSE(p.client.parked());
        EXPECT_NE(conf, 0);
        EXPECT_EQ(data, plain);
        // The fast path goes on, with the replay check (the token was already seen by MIT, not
        // by this context's check: the next one still opens, the one before again does not).
        auto later = seal(p.server, plain);
        EXPECT_EQ(unseal(p.client, later.header, later.ciphertext), plain);
        EXPECT_THROW(unseal(p.client, down.header, down.ciphertext), GssError);
    }
    // MIT only (WEC_KRB_CRYPTO=mit): nothing parked.
    auto p = pair(Mechanism::Kerberos, true, true);
    EXPECT_FALSE(p.client.parked());
    EXPECT_FALSE(p.server.parked());
    const Bytes plain = pattern(64, 4);
    auto up = seal(p.client, plain);
    EXPECT_EQ(unseal(p.server, up.header, up.ciphertext), plain);
}

// Replays and reordering are refused on the fast path exactly as on MIT (the sequence number
// must grow); gaps (lost messages) are accepted.
TEST_P(FastContextTest, ReplayAndReorderingRefused) {
    for (bool server_mit : {false, true}) {
        SCOPED_TRACE(server_mit ? "server mit" : "server fast");
        auto p = pair(Mechanism::Kerberos, false, server_mit);
        const Bytes msg = pattern(100, 1);
        std::vector<Sealed> sent;
        for (int i = 0; i < 70; ++i)
            sent.push_back(seal(p.client, msg));
        EXPECT_EQ(unseal(p.server, sent[0].header, sent[0].ciphertext), msg);
        EXPECT_THROW(unseal(p.server, sent[0].header, sent[0].ciphertext), GssError); // replay
        EXPECT_EQ(unseal(p.server, sent[2].header, sent[2].ciphertext), msg);         // gap
        EXPECT_THROW(unseal(p.server, sent[1].header, sent[1].ciphertext), GssError); // reordered
        for (int i = 3; i < 70; ++i)
            EXPECT_EQ(unseal(p.server, sent[i].header, sent[i].ciphertext), msg) << i;
        EXPECT_THROW(unseal(p.server, sent[5].header, sent[5].ciphertext), GssError);
        // The other direction: the server's sequence continues where MIT's left it.
        for (int i = 0; i < 3; ++i) {
            auto down = seal(p.server, msg);
            EXPECT_EQ(unseal(p.client, down.header, down.ciphertext), msg);
            EXPECT_THROW(unseal(p.client, down.header, down.ciphertext), GssError);
        }
    }
}

// MIT wraps a few messages on a context before the fast path takes it over: the fast path's
// sequence numbers continue MIT's (read from the context), so the peer sees no replay.
TEST_P(FastContextTest, ContinuesMitsSequenceNumbers) {
    auto p = pair(Mechanism::Kerberos, false, false, /*set_up_fast_path=*/false);
    const Bytes msg = pattern(64, 3);
    auto sequence = [](const Bytes& header) {
        std::uint64_t seq = 0;
        for (std::size_t b = 8; b < 16; ++b)
            seq = seq << 8 | header[b];
        return seq;
    };
    std::uint64_t mit_last = 0;
    for (int i = 0; i < 3; ++i) {
        Bytes data = msg;
        Bytes header(expected_header());
        gss_iov_buffer_desc iov[3];
        iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER;
        iov[0].buffer = {header.size(), header.data()};
        iov[1].type = GSS_IOV_BUFFER_TYPE_DATA;
        iov[1].buffer = {data.size(), data.data()};
        iov[2].type = GSS_IOV_BUFFER_TYPE_PADDING;
        iov[2].buffer = {0, nullptr};
        OM_uint32 minor = 0;
        int conf = 0;
        ASSERT_FALSE(GSS_ERROR(
            gss_wrap_iov(&minor, p.client.handle(), 1, GSS_C_QOP_DEFAULT, &conf, iov, 3)));
        mit_last = sequence(header); // MIT starts from a random number
        EXPECT_EQ(unseal(p.server, header, data), msg);
    }
    ASSERT_NE(p.client.fast_path(), nullptr);
    auto up = seal(p.client, msg);
    EXPECT_EQ(sequence(up.header), mit_last + 1);
    EXPECT_EQ(unseal(p.server, up.header, up.ciphertext), msg);
    EXPECT_THROW(unseal(p.server, up.header, up.ciphertext), GssError);
}

INSTANTIATE_TEST_SUITE_P(Enctypes, FastContextTest,
                         ::testing::Values("aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96",
                                           "aes128-cts-hmac-sha256-128",
                                           "aes256-cts-hmac-sha384-192"),
                         [](const ::testing::TestParamInfo<std::string>& param_info) {
                             const std::string& e = param_info.param;
                             return std::string(e.rfind("aes256", 0) == 0 ? "Aes256" : "Aes128") +
                                    (e.find("sha384") != std::string::npos   ? "Sha384"
                                     : e.find("sha256") != std::string::npos ? "Sha256"
                                                                             : "");
                         });

} // namespace

// wec::auth against a real MIT KDC (Krb5Realm): raw Kerberos and SPNEGO handshakes, WinRM
// seal/unseal, failure cases, replay detection, and interop with an independent python3-gssapi
// peer (tests/auth/gss_peer.py, needs Debian's python3-gssapi on /usr/bin/python3).
#include "auth/gss.hpp"
#include "support/krb5_realm.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <gssapi/gssapi_krb5.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace {

using namespace wec::auth;
using wec::testing::Krb5Realm;
using Bytes = std::vector<std::uint8_t>;

const std::string kHost = "srv.windomain.local";

Bytes bytes_of(std::string_view s) {
    return Bytes(s.begin(), s.end());
}

std::string to_hex(std::span<const std::uint8_t> b) {
    if (b.empty()) return "-";
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (auto c : b) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

Bytes from_hex(const std::string& s) {
    Bytes out;
    if (s == "-") return out;
    for (size_t i = 0; i + 1 < s.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
    return out;
}

std::vector<std::string> words(const std::string& line) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < line.size()) {
        auto end = line.find(' ', pos);
        if (end == std::string::npos) end = line.size();
        if (end > pos) out.push_back(line.substr(pos, end - pos));
        pos = end + 1;
    }
    return out;
}

// Runs a shell command with the realm's environment; returns output.
std::string run_with_env(const Krb5Realm& realm, const std::string& cmd) {
    std::string full;
    for (const auto& [k, v] : realm.env())
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

std::string kadmin(const Krb5Realm& realm, const std::string& query) {
    return run_with_env(realm, "kadmin.local -r " + realm.realm() + " -q '" + query + "'");
}

// A child process (posix_spawn) talking a line protocol on stdin/stdout; killed by PID.
class Peer {
public:
    Peer(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
        std::signal(SIGPIPE, SIG_IGN); // a dead peer must fail the test, not kill it
        int in[2], out[2];
        if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
            throw std::runtime_error("pipe2 failed");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in[0], 0);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        std::vector<std::string> env_strings;
        for (char** e = environ; *e != nullptr; ++e) {
            std::string kv(*e);
            if (!env.count(kv.substr(0, kv.find('=')))) env_strings.push_back(kv);
        }
        for (const auto& [k, v] : env)
            env_strings.push_back(k + "=" + v);
        std::vector<char*> envp, argv;
        for (auto& s : env_strings)
            envp.push_back(s.data());
        envp.push_back(nullptr);
        std::vector<std::string> args_copy = args;
        for (auto& s : args_copy)
            argv.push_back(s.data());
        argv.push_back(nullptr);
        int rc = posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&fa);
        ::close(in[0]);
        ::close(out[1]);
        to_child_ = in[1];
        from_child_ = out[0];
        if (rc != 0) {
            pid_ = -1;
            throw std::runtime_error("posix_spawn " + args[0] + " failed");
        }
    }
    ~Peer() {
        ::close(to_child_);
        ::close(from_child_);
        if (pid_ > 0) {
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
            int status = 0;
            while (::waitpid(pid_, &status, WNOHANG) == 0) {
                if (std::chrono::steady_clock::now() > deadline) {
                    ::kill(pid_, SIGKILL);
                    ::waitpid(pid_, &status, 0);
                    break;
                }
                ::usleep(5000);
            }
        }
    }
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;

    void send(const std::string& line) {
        std::string l = line + "\n";
        const char* p = l.data();
        size_t left = l.size();
        while (left > 0) {
            ssize_t n = ::write(to_child_, p, left);
            if (n <= 0) throw std::runtime_error("write to peer failed");
            p += n;
            left -= static_cast<size_t>(n);
        }
    }
    // The next line (10 s timeout); throws with the peer's ERROR text.
    std::vector<std::string> receive(const std::string& tag) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        for (;;) {
            auto nl = buffer_.find('\n');
            if (nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                auto w = words(line);
                if (w.empty() || w[0] != tag)
                    throw std::runtime_error("peer: expected " + tag + ", got: " + line);
                w.erase(w.begin());
                return w;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) throw std::runtime_error("peer: timeout waiting for " + tag);
            pollfd pfd{from_child_, POLLIN, 0};
            ::poll(&pfd, 1, static_cast<int>(left.count()));
            char buf[65536];
            ssize_t n = ::read(from_child_, buf, sizeof buf);
            if (n == 0) throw std::runtime_error("peer exited; pending output: " + buffer_);
            if (n > 0) buffer_.append(buf, static_cast<size_t>(n));
        }
    }

private:
    pid_t pid_ = -1;
    int to_child_ = -1;
    int from_child_ = -1;
    std::string buffer_;
};

class AuthTest : public ::testing::Test {
protected:
    void SetUp() override {
        realm_ = std::make_unique<Krb5Realm>();
        realm_->add_principal("HTTP/" + kHost);
        realm_->add_principal("HOST/" + kHost);
        realm_->add_principal("HTTP/other.windomain.local");
        realm_->add_principal("WIN10$");
        service_keytab_ =
            realm_->export_keytab({"HTTP/" + kHost, "HOST/" + kHost}, "service.keytab").string();
        client_keytab_ = realm_->export_keytab({"WIN10$"}, "win10.keytab");
        ccache_ = realm_->kinit("WIN10$", client_keytab_);
        realm_->apply_env();
    }

    ClientContext client(Mechanism mech = Mechanism::Kerberos,
                         std::string target = "HTTP@" + kHost) {
        return ClientContext(
            ClientOptions{.target = std::move(target), .mechanism = mech, .ccache = ccache_});
    }
    AcceptorCredentials creds(std::vector<std::string> names = {}) {
        return AcceptorCredentials::from_keytab(service_keytab_, std::move(names));
    }

    // Runs the handshake to completion on both sides.
    static void handshake(ClientContext& c, ServerContext& s) {
        auto out = c.step();
        ASSERT_FALSE(out.output.empty());
        for (int round = 0; round < 5; ++round) {
            auto r = s.step(out.output);
            ASSERT_FALSE(r.failed()) << r.error->what();
            if (r.complete() && r.output.empty()) break;
            out = c.step(r.output);
            if (out.complete() && out.output.empty()) break;
        }
        ASSERT_TRUE(c.established());
        ASSERT_TRUE(s.established());
    }

    std::unique_ptr<Krb5Realm> realm_;
    std::string service_keytab_;
    std::filesystem::path client_keytab_;
    std::string ccache_;
};

TEST_F(AuthTest, KeytabListing) {
    auto principals = keytab_principals(service_keytab_);
    ASSERT_EQ(principals.size(), 2u);
    EXPECT_EQ(principals[0], "HTTP/srv.windomain.local@WINDOMAIN.LOCAL");
    EXPECT_EQ(principals[1], "HOST/srv.windomain.local@WINDOMAIN.LOCAL");
    auto entries = keytab_entries(service_keytab_);
    ASSERT_EQ(entries.size(), 4u); // aes256 + aes128 each
    EXPECT_EQ(entries[0].enctype, "aes256-cts-hmac-sha1-96");
    EXPECT_EQ(entries[0].kvno, 1u);
    EXPECT_THROW(keytab_principals((realm_->dir() / "missing.keytab").string()), GssError);
    EXPECT_THROW(AcceptorCredentials::from_keytab((realm_->dir() / "missing.keytab").string()),
                 GssError);
    EXPECT_THROW(creds({"HTTP/nothere.windomain.local"}), GssError);
    auto c = creds({"HTTP/" + kHost, "HOST@" + kHost});
    EXPECT_EQ(c.allowed_principals(),
              (std::vector<std::string>{"HTTP/srv.windomain.local@WINDOMAIN.LOCAL",
                                        "HOST/srv.windomain.local@WINDOMAIN.LOCAL"}));
}

TEST_F(AuthTest, RawKerberosHandshakeWithMutualAuth) {
    auto c = client(Mechanism::Kerberos);
    auto first = c.step();
    EXPECT_EQ(first.status, StepResult::Status::ContinueNeeded); // waits for the AP-REP
    ASSERT_GE(first.output.size(), 2u);
    EXPECT_EQ(first.output[0], 0x60);

    ServerContext s(creds({"HTTP/" + kHost, "HOST/" + kHost}));
    auto r = s.step(first.output);
    ASSERT_TRUE(r.complete()) << (r.error ? r.error->what() : "");
    EXPECT_FALSE(r.output.empty()); // AP-REP
    EXPECT_EQ(s.mechanism(), Mechanism::Kerberos);
    EXPECT_EQ(s.mech_oid(), "1.2.840.113554.1.2.2");
    EXPECT_EQ(s.client_name(), "WIN10$@WINDOMAIN.LOCAL");
    EXPECT_EQ(s.service_name(), "HTTP/srv.windomain.local@WINDOMAIN.LOCAL");
    EXPECT_TRUE(s.flags() & GSS_C_CONF_FLAG);
    EXPECT_TRUE(s.flags() & GSS_C_INTEG_FLAG);
    EXPECT_TRUE(s.flags() & GSS_C_MUTUAL_FLAG);

    auto done = c.step(r.output);
    EXPECT_TRUE(done.complete());
    EXPECT_TRUE(done.output.empty());
    EXPECT_TRUE(c.established());
    EXPECT_TRUE(c.flags() & GSS_C_MUTUAL_FLAG);

    // A completed context refuses more tokens.
    EXPECT_TRUE(s.step(first.output).failed());
}

TEST_F(AuthTest, SpnegoHandshake) {
    auto c = client(Mechanism::Spnego);
    ServerContext s(creds());
    handshake(c, s);
    EXPECT_EQ(s.mechanism(), Mechanism::Spnego);
    EXPECT_EQ(c.mechanism(), Mechanism::Spnego);
    EXPECT_EQ(s.client_name(), "WIN10$@WINDOMAIN.LOCAL");
    EXPECT_EQ(s.service_name(), "HTTP/srv.windomain.local@WINDOMAIN.LOCAL");
    auto sealed = seal(c, bytes_of("over spnego"));
    EXPECT_EQ(sealed.header.size(), 60u);
    EXPECT_EQ(unseal(s, sealed.header, sealed.ciphertext), bytes_of("over spnego"));
}

TEST_F(AuthTest, PrincipalTargetFormAndHostSpnFromSameKeytab) {
    {
        auto c = client(Mechanism::Kerberos, "HTTP/" + kHost);
        ServerContext s(creds());
        handshake(c, s);
        EXPECT_EQ(s.service_name(), "HTTP/srv.windomain.local@WINDOMAIN.LOCAL");
    }
    for (auto mech : {Mechanism::Kerberos, Mechanism::Spnego}) {
        auto c = client(mech, "HOST@" + kHost);
        ServerContext s(creds({"HTTP/" + kHost, "HOST/" + kHost}));
        handshake(c, s);
        EXPECT_EQ(s.service_name(), "HOST/srv.windomain.local@WINDOMAIN.LOCAL");
        EXPECT_EQ(s.client_name(), "WIN10$@WINDOMAIN.LOCAL");
    }
}

// Windows labels krb5 with Microsoft's OID 1.2.840.48018.1.2.2 (same length as the standard
// 1.2.840.113554.1.2.2, one byte differs) first in SPNEGO mechTypes; the inner token keeps the
// standard OID. The acceptor takes the MS OID there and also as a raw token's framing OID.
TEST_F(AuthTest, MicrosoftKerberosOidAccepted) {
    const Bytes std_oid = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02};
    for (auto mech : {Mechanism::Kerberos, Mechanism::Spnego}) {
        auto c = client(mech);
        auto token = c.step().output;
        int patched = 0;
        for (size_t i = 0; i + std_oid.size() <= token.size(); ++i) {
            if (std::equal(std_oid.begin(), std_oid.end(), token.begin() + static_cast<long>(i))) {
                token[i + 3] = 0x82;
                ++patched;
                break; // raw: the framing OID; SPNEGO: the first mechTypes entry only
            }
        }
        ASSERT_EQ(patched, 1);
        ServerContext s(creds());
        auto r = s.step(token);
        ASSERT_TRUE(r.complete()) << to_string(mech) << ": " << r.error->what();
        EXPECT_EQ(s.mechanism(), mech);
        EXPECT_EQ(s.client_name(), "WIN10$@WINDOMAIN.LOCAL");
        if (mech == Mechanism::Kerberos) {
            // The acceptor answers under the OID it was asked with (our standard-OID client
            // would refuse that AP-REP framing, so the handshake stops here).
            EXPECT_EQ(s.mech_oid(), "1.2.840.48018.1.2.2");
        } else {
            auto done = c.step(r.output);
            EXPECT_TRUE(done.complete());
            auto sealed = seal(c, bytes_of("ms oid"));
            EXPECT_EQ(unseal(s, sealed.header, sealed.ciphertext), bytes_of("ms oid"));
        }
    }
}

TEST_F(AuthTest, ServiceNotInAllowedListIsRejected) {
    auto c = client(Mechanism::Kerberos, "HOST@" + kHost);
    ServerContext s(creds({"HTTP/" + kHost}));
    auto r = s.step(c.step().output);
    ASSERT_TRUE(r.failed());
    EXPECT_TRUE(r.output.empty());
    EXPECT_NE(std::string(r.error->what()).find("not an allowed service"), std::string::npos)
        << r.error->what();
    EXPECT_FALSE(s.established());
}

TEST_F(AuthTest, SealUnsealBothDirectionsWindowsLayout) {
    auto c = client();
    ServerContext s(creds());
    handshake(c, s);
    for (size_t size :
         {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{1000}, size_t{100000}}) {
        Bytes plain(size);
        for (size_t i = 0; i < size; ++i)
            plain[i] = static_cast<std::uint8_t>(i * 7 + 3);
        auto up = seal(c, plain);
        // RFC 4121 CFX wrap token header as Windows sends it: 05 04, flags, FF, EC, RRC.
        ASSERT_EQ(up.header.size(), 60u);
        EXPECT_EQ(up.ciphertext.size(), plain.size());
        EXPECT_EQ(up.header[0], 0x05);
        EXPECT_EQ(up.header[1], 0x04);
        EXPECT_EQ(up.header[2], 0x06); // Sealed | AcceptorSubkey
        EXPECT_EQ(up.header[3], 0xff);
        EXPECT_EQ((up.header[4] << 8) | up.header[5], 0);  // EC
        EXPECT_EQ((up.header[6] << 8) | up.header[7], 28); // RRC
        // Encrypted, not copied: checked from 16 bytes on, where equal bytes by chance are out of
        // the question (a 1-byte ciphertext equals its plaintext once in 256 runs).
        if (size >= 16) {
            EXPECT_NE(up.ciphertext, plain);
        }
        EXPECT_EQ(unseal(s, up.header, up.ciphertext), plain);

        auto down = seal(s, plain);
        ASSERT_EQ(down.header.size(), 60u);
        EXPECT_EQ(down.ciphertext.size(), plain.size());
        EXPECT_EQ(down.header[2], 0x07); // SentByAcceptor | Sealed | AcceptorSubkey
        EXPECT_EQ((down.header[6] << 8) | down.header[7], 28);
        EXPECT_EQ(unseal(c, down.header, down.ciphertext), plain);
    }
    // In-place variant.
    auto up = seal(c, bytes_of("in place"));
    unseal_in_place(s, up.header, up.ciphertext);
    EXPECT_EQ(up.ciphertext, bytes_of("in place"));
}

TEST_F(AuthTest, TamperedOrReplayedMessagesFail) {
    auto c = client();
    ServerContext s(creds());
    handshake(c, s);
    auto msg = bytes_of("<s:Envelope>events</s:Envelope>");

    auto sealed = seal(c, msg);
    auto bad = sealed.ciphertext;
    bad[5] ^= 0x01;
    EXPECT_THROW(unseal(s, sealed.header, bad), GssError);
    auto bad_header = sealed.header;
    bad_header[40] ^= 0x80;
    EXPECT_THROW(unseal(s, bad_header, sealed.ciphertext), GssError);
    EXPECT_THROW(
        unseal(s, std::span<const std::uint8_t>(sealed.header).first(30), sealed.ciphertext),
        GssError);
    try {
        unseal(s, sealed.header, bad);
        FAIL() << "tampered ciphertext accepted";
    } catch (const GssError& e) {
        EXPECT_EQ(e.operation(), "gss_unwrap_iov");
        EXPECT_TRUE(GSS_ERROR(e.major_status()));
        EXPECT_NE(std::string(e.what()).find("gss_unwrap_iov failed"), std::string::npos);
    }
    // The genuine message still decrypts, once.
    EXPECT_EQ(unseal(s, sealed.header, sealed.ciphertext), msg);
    EXPECT_THROW(unseal(s, sealed.header, sealed.ciphertext), GssError); // replay
    // A message for the other direction (acceptor's own seal) is refused by the acceptor.
    auto own = seal(s, msg);
    EXPECT_THROW(unseal(s, own.header, own.ciphertext), GssError);
    // Next in-order message still works.
    auto next = seal(c, msg);
    EXPECT_EQ(unseal(s, next.header, next.ciphertext), msg);
}

// Issue 9 security review: MIT remembers only the last 64 tokens, and only when the initiator
// asked for replay detection; the sequence number check refuses any replay or reordering.
TEST_F(AuthTest, ReplaysBeyondGssapisWindowAndReorderingAreRefused) {
    auto c = client();
    ServerContext s(creds());
    handshake(c, s);
    auto msg = bytes_of("<s:Envelope>events</s:Envelope>");
    std::vector<Sealed> sent;
    for (int i = 0; i < 70; ++i)
        sent.push_back(seal(c, msg));
    EXPECT_EQ(unseal(s, sent[0].header, sent[0].ciphertext), msg);
    EXPECT_EQ(unseal(s, sent[2].header, sent[2].ciphertext), msg); // a gap is fine (lost message)
    EXPECT_THROW(unseal(s, sent[1].header, sent[1].ciphertext), GssError); // older than the last
    for (int i = 3; i < 70; ++i)
        EXPECT_EQ(unseal(s, sent[i].header, sent[i].ciphertext), msg) << i;
    try {
        unseal(s, sent[0].header, sent[0].ciphertext); // 70 messages later
        FAIL() << "a replay beyond the 64-token window was accepted";
    } catch (const GssError& e) {
        EXPECT_NE(std::string(e.what()).find("replay"), std::string::npos) << e.what();
    }
    auto next = seal(c, msg);
    EXPECT_EQ(unseal(s, next.header, next.ciphertext), msg);
}

TEST_F(AuthTest, WrongServiceKeyFailsCleanly) {
    // The keytab holds kvno 1; the key is then re-randomised (kvno 2) in the KDC.
    auto out = kadmin(*realm_, "cpw -randkey HTTP/" + kHost);
    ASSERT_NE(out.find("randomized"), std::string::npos) << out;
    auto c = client();
    ServerContext s(creds());
    auto r = s.step(c.step().output);
    ASSERT_TRUE(r.failed());
    ASSERT_TRUE(r.error.has_value());
    EXPECT_EQ(r.error->operation(), "gss_accept_sec_context");
    EXPECT_FALSE(s.established());
}

TEST_F(AuthTest, WrongServiceKeySameKvnoFailsCleanly) {
    // Same kvno, different key: the principal is deleted and re-created after the export.
    kadmin(*realm_, "delprinc -force HTTP/" + kHost);
    realm_->add_principal("HTTP/" + kHost);
    auto c = client();
    ServerContext s(creds());
    auto r = s.step(c.step().output);
    ASSERT_TRUE(r.failed());
    EXPECT_NE(std::string(r.error->what()).find("gss_accept_sec_context failed"),
              std::string::npos);
}

TEST_F(AuthTest, UnknownServicePrincipal) {
    // Known to the KDC but not in our keytab: the acceptor refuses the ticket.
    auto c = client(Mechanism::Kerberos, "HTTP@other.windomain.local");
    ServerContext s(creds());
    auto r = s.step(c.step().output);
    ASSERT_TRUE(r.failed());
    // Unknown to the KDC: the initiator cannot even get a ticket.
    auto c2 = client(Mechanism::Kerberos, "HTTP@nowhere.windomain.local");
    EXPECT_THROW(c2.step(), GssError);
}

TEST_F(AuthTest, GarbageTokensFailCleanly) {
    auto good = client().step().output;
    std::vector<Bytes> tokens = {
        Bytes{0x60},
        Bytes{0x60, 0x82, 0xff, 0xff, 0x06},
        Bytes(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(good.size() / 2)),
        Bytes(300, 0xa1),
        bytes_of("NTLMSSP\0"),
    };
    for (const auto& t : tokens) {
        ServerContext s(creds());
        auto r = s.step(t);
        EXPECT_TRUE(r.failed());
        EXPECT_TRUE(s.step(good).failed()); // a failed context stays failed
    }
    ServerContext s(creds());
    EXPECT_TRUE(s.step({}).failed());
}

// MIT 1.20 keeps a replay cache for the acceptor (type "dfl" = file2, in $KRB5RCACHEDIR or
// /var/tmp, per euid); the same AP-REQ presented on a second connection is refused.
TEST_F(AuthTest, ReplayedApReqOnSecondContextFails) {
    auto c = client();
    auto ap_req = c.step().output;
    ServerContext first(creds());
    ASSERT_TRUE(first.step(ap_req).complete());
    ServerContext second(creds()); // fresh credentials too: the cache is on disk, not in memory
    auto r = second.step(ap_req);
    ASSERT_TRUE(r.failed());
    EXPECT_NE(std::string(r.error->what()).find("eplay"), std::string::npos) << r.error->what();
    // The cache file lives in the realm's private KRB5RCACHEDIR.
    bool found = false;
    for (const auto& e : std::filesystem::directory_iterator(realm_->dir() / "rcache"))
        found = found || e.path().filename().string().find("rcache2") != std::string::npos;
    EXPECT_TRUE(found);
}

TEST_F(AuthTest, ReplayCacheCanBeNamedPerCredential) {
    auto rc = "file2:" + (realm_->dir() / "wec.rcache").string();
    auto c = client(Mechanism::Spnego);
    auto token = c.step().output;
    auto named = AcceptorCredentials::from_keytab(service_keytab_, {}, rc);
    ServerContext first(named);
    ASSERT_TRUE(first.step(token).complete());
    EXPECT_TRUE(std::filesystem::exists(realm_->dir() / "wec.rcache"));
    ServerContext second(named);
    EXPECT_TRUE(second.step(token).failed());
}

// ---- interop with python3-gssapi (an independent GSSAPI client/server) -------------------

const char* kPython = "/usr/bin/python3";
const std::string kPeerScript = std::string(WEC_SOURCE_DIR) + "/tests/auth/gss_peer.py";

void python_initiator_against_server(AuthTest& t, const std::vector<std::string>& extra,
                                     ServerContext& s, Mechanism expect) {
    (void)t;
    Bytes request = bytes_of("request from python \xff\x00 with bytes");
    Bytes response = bytes_of("response from wec");
    std::vector<std::string> args = {kPython, kPeerScript, "initiate", "--message",
                                     to_hex(request)};
    args.insert(args.end(), extra.begin(), extra.end());
    // env is already applied to this process (apply_env), posix_spawn passes environ.
    Peer peer(args, {});
    auto tok = peer.receive("TOKEN");
    ASSERT_EQ(tok.size(), 1u);
    auto r = s.step(from_hex(tok[0]));
    ASSERT_TRUE(r.complete()) << (r.error ? r.error->what() : "");
    EXPECT_EQ(s.mechanism(), expect);
    EXPECT_EQ(s.client_name(), "WIN10$@WINDOMAIN.LOCAL");
    peer.send("TOKEN " + to_hex(r.output));
    auto sealed = peer.receive("SEALED");
    ASSERT_EQ(sealed.size(), 2u);
    auto header = from_hex(sealed[0]);
    auto data = from_hex(sealed[1]);
    EXPECT_EQ(header.size(), 60u);
    EXPECT_EQ(data.size(), request.size());
    EXPECT_EQ(unseal(s, header, data), request);
    auto reply = seal(s, response);
    peer.send("SEALED " + to_hex(reply.header) + " " + to_hex(reply.ciphertext));
    auto plain = peer.receive("PLAIN");
    ASSERT_EQ(plain.size(), 1u);
    EXPECT_EQ(from_hex(plain[0]), response);
}

TEST_F(AuthTest, PythonKerberosClientAgainstServerContext) {
    ASSERT_EQ(::access(kPython, X_OK), 0) << "needs /usr/bin/python3 with python3-gssapi";
    ServerContext s(creds());
    python_initiator_against_server(*this, {"--target", "HTTP@" + kHost, "--ccache", ccache_}, s,
                                    Mechanism::Kerberos);
}

TEST_F(AuthTest, PythonSpnegoClientAgainstServerContext) {
    ServerContext s(creds());
    python_initiator_against_server(
        *this, {"--target", "HOST/" + kHost, "--mech", "spnego", "--ccache", ccache_}, s,
        Mechanism::Spnego);
    EXPECT_EQ(s.service_name(), "HOST/srv.windomain.local@WINDOMAIN.LOCAL");
}

TEST_F(AuthTest, ClientContextAgainstPythonAcceptor) {
    for (auto mech : {Mechanism::Kerberos, Mechanism::Spnego}) {
        Bytes request = bytes_of("request from wec client");
        Bytes response = bytes_of("response from python acceptor");
        Peer peer({kPython, kPeerScript, "accept", "--keytab", service_keytab_, "--message",
                   to_hex(response)},
                  realm_->env());
        auto c = client(mech);
        auto out = c.step();
        for (int round = 0; round < 4 && !c.established(); ++round) {
            peer.send("TOKEN " + to_hex(out.output));
            if (round == 0) {
                auto name = peer.receive("CLIENT");
                ASSERT_EQ(name.size(), 1u);
                EXPECT_EQ(name[0], "WIN10$@WINDOMAIN.LOCAL");
            }
            auto reply = peer.receive("TOKEN");
            out = c.step(from_hex(reply.at(0)));
        }
        ASSERT_TRUE(c.established());
        auto sealed = seal(c, request);
        peer.send("SEALED " + to_hex(sealed.header) + " " + to_hex(sealed.ciphertext));
        EXPECT_EQ(from_hex(peer.receive("PLAIN").at(0)), request);
        auto back = peer.receive("SEALED");
        ASSERT_EQ(back.size(), 2u);
        EXPECT_EQ(from_hex(back[0]).size(), 60u);
        EXPECT_EQ(unseal(c, from_hex(back[0]), from_hex(back[1])), response);
    }
}

} // namespace

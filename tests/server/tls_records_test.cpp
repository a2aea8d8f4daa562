// The server's TLS 1.3 records after the handshake (TlsRecords: the SSL object is freed and the
// stream seals and opens application data itself), against an OpenSSL client on a real socket on
// 127.0.0.1: KeyUpdate in both directions, close_notify, refused records, data larger than a
// record in both directions and read in small pieces, and TLS 1.2 still served by OpenSSL.
#include "server/tls_internal.hpp"
#include "server/tls_stream_internal.hpp"
#include "support/test_pki.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <functional>
#include <future>
#include <gtest/gtest.h>
#include <memory>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using wec::server::detail::TlsRecords;
using wec::server::detail::TlsSocketStream;

const wec::testing::TestPki& pki() {
    static const wec::testing::TestPki p("srv.windomain.local");
    return p;
}

// The server's stream, driven from the test's thread: each call runs the operation on the
// stream's own I/O thread and waits for its completion.
class Server {
public:
    Server() {
        wec::server::TlsSettings s;
        s.cert_file = pki()("server.pem").string();
        s.key_file = pki()("server.key").string();
        s.ca_files = {pki()("root.pem").string(), pki()("issuing.pem").string()};
        context_ = wec::server::make_tls_context(s);
        thread_ = std::thread([this] { ioc_.run(); });
    }
    ~Server() {
        if (stream_)
            run<int>([this](auto done) {
                stream_->close();
                stream_.reset();
                done(0);
            });
        work_.reset();
        thread_.join();
    }
    int port() const { return acceptor_.local_endpoint().port(); }

    // Accepts the client's connection (already connected) and starts the handshake.
    std::future<error_code> handshake() {
        stream_.emplace(acceptor_.accept(), context_->ssl);
        auto p = std::make_shared<std::promise<error_code>>();
        auto f = p->get_future();
        asio::post(ioc_, [this, p] {
            stream_->async_handshake(asio::ssl::stream_base::server,
                                     [p](error_code ec) { p->set_value(ec); });
        });
        return f;
    }
    SSL* native_handle() {
        return run<SSL*>([this](auto done) { done(stream_->native_handle()); });
    }
    // Reads `n` bytes (or up to an error) in reads of at most `piece` bytes.
    std::pair<error_code, std::string> read(std::size_t n, std::size_t piece) {
        auto out = std::make_shared<std::string>();
        auto buf = std::make_shared<std::vector<char>>(piece);
        auto ec = run<error_code>([this, n, out, buf](auto done) {
            auto step = std::make_shared<std::function<void()>>();
            *step = [this, n, out, buf, done, step] {
                stream_->async_read_some(asio::buffer(*buf),
                                         [n, out, buf, done, step](error_code e, std::size_t got) {
                                             out->append(buf->data(), got);
                                             if (e || out->size() >= n) {
                                                 done(e);
                                                 *step = nullptr;
                                                 return;
                                             }
                                             (*step)();
                                         });
            };
            (*step)();
        });
        return {ec, *out};
    }
    error_code write(const std::string& data) {
        auto at = std::make_shared<std::size_t>(0);
        return run<error_code>([this, &data, at](auto done) {
            auto step = std::make_shared<std::function<void()>>();
            *step = [this, &data, at, done, step] {
                stream_->async_write_some(asio::buffer(data.data() + *at, data.size() - *at),
                                          [&data, at, done, step](error_code e, std::size_t n) {
                                              *at += n;
                                              if (e || *at == data.size()) {
                                                  done(e);
                                                  *step = nullptr;
                                                  return;
                                              }
                                              (*step)();
                                          });
            };
            (*step)();
        });
    }

private:
    template <class T, class F>
    T run(F f) {
        auto p = std::make_shared<std::promise<T>>();
        auto fut = p->get_future();
        asio::post(ioc_, [f = std::move(f), p]() mutable { f([p](T v) { p->set_value(v); }); });
        return fut.get();
    }

    asio::io_context ioc_;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
        ioc_.get_executor()};
    tcp::acceptor acceptor_{ioc_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
    std::shared_ptr<wec::server::TlsContext> context_;
    std::optional<TlsSocketStream> stream_;
    std::thread thread_;
};

// A blocking OpenSSL client with the client certificate.
class Client {
public:
    explicit Client(int port, int version = TLS1_3_VERSION) : socket_(ioc_) {
        ctx_.reset(SSL_CTX_new(TLS_client_method()));
        std::string cert = pki()("win10.windomain.local.pem").string();
        std::string key = pki()("win10.windomain.local.key").string();
        std::string ca = pki()("root.pem").string();
        if (!ctx_ || SSL_CTX_use_certificate_chain_file(ctx_.get(), cert.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx_.get(), key.c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_load_verify_locations(ctx_.get(), ca.c_str(), nullptr) != 1)
            throw std::runtime_error("client context");
        SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER, nullptr);
        SSL_CTX_set_min_proto_version(ctx_.get(), version);
        SSL_CTX_set_max_proto_version(ctx_.get(), version);
        socket_.connect(
            tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
        ssl_.reset(SSL_new(ctx_.get()));
        SSL_set_fd(ssl_.get(), socket_.native_handle());
        SSL_set_tlsext_host_name(ssl_.get(), "srv.windomain.local");
    }
    bool connect() { return SSL_connect(ssl_.get()) == 1; }
    SSL* ssl() { return ssl_.get(); }
    int fd() { return socket_.native_handle(); }
    bool write(const std::string& s) {
        std::size_t n = 0;
        return SSL_write_ex(ssl_.get(), s.data(), s.size(), &n) == 1 && n == s.size();
    }
    std::string read(std::size_t n) {
        std::string out;
        char buf[4096];
        while (out.size() < n) {
            std::size_t got = 0;
            if (SSL_read_ex(ssl_.get(), buf, sizeof buf, &got) != 1) break;
            out.append(buf, got);
        }
        return out;
    }

private:
    asio::io_context ioc_;
    tcp::socket socket_;
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx_{nullptr, &SSL_CTX_free};
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl_{nullptr, &SSL_free};
};

std::string pattern(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>((i * 131 + seed) % 251);
    return s;
}

// Handshake, then one exchange: the server is on its own records from its first read.
void connect(Server& server, Client& client) {
    auto hs = server.handshake();
    ASSERT_TRUE(client.connect());
    ASSERT_FALSE(hs.get());
}

TEST(TlsRecords, TheSslObjectIsFreedAfterTheFirstTls13Read) {
    Server server;
    Client client(server.port());
    connect(server, client);
    EXPECT_NE(server.native_handle(), nullptr); // the handshake's results are still readable
    ASSERT_TRUE(client.write("ping"));
    auto [ec, got] = server.read(4, 16);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(got, "ping");
    EXPECT_EQ(server.native_handle(), nullptr);
    EXPECT_FALSE(server.write("pong"));
    EXPECT_EQ(client.read(4), "pong");
}

// WEC_TLS_RECORDS=openssl (read when the listener's context is made) keeps OpenSSL's records.
TEST(TlsRecords, TheOpenSslSwitchKeepsOpenSslsRecordLayer) {
    struct Env {
        Env() { ::setenv("WEC_TLS_RECORDS", "openssl", 1); }
        ~Env() { ::unsetenv("WEC_TLS_RECORDS"); }
    };
    std::optional<Server> server;
    {
        Env env;
        server.emplace();
    }
    Client client(server->port());
    connect(*server, client);
    ASSERT_TRUE(client.write("ping"));
    auto [ec, got] = server->read(4, 16);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(got, "ping");
    ASSERT_NE(server->native_handle(), nullptr);
    EXPECT_EQ(SSL_version(server->native_handle()), TLS1_3_VERSION);
    ASSERT_TRUE(client.write(pattern(40000, 5))); // several records, read ahead by OpenSSL
    auto [ec2, big] = server->read(40000, 1000);
    EXPECT_FALSE(ec2) << ec2.message();
    EXPECT_EQ(big, pattern(40000, 5));
    EXPECT_FALSE(server->write("pong"));
    EXPECT_EQ(client.read(4), "pong");
    EXPECT_NE(server->native_handle(), nullptr); // still OpenSSL's
}

TEST(TlsRecords, DataLargerThanARecordBothWaysInSmallReads) {
    Server server;
    Client client(server.port());
    connect(server, client);
    auto up = pattern(100'000, 7);
    std::thread writer([&] { EXPECT_TRUE(client.write(up)); });
    auto [ec, got] = server.read(up.size(), 16); // 16 bytes at a time, as an idle session reads
    writer.join();
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(got == up) << got.size();
    auto down = pattern(300'000, 11);
    std::string back;
    std::thread reader([&] { back = client.read(down.size()); });
    EXPECT_FALSE(server.write(down));
    reader.join();
    EXPECT_TRUE(back == down) << back.size();
}

TEST(TlsRecords, KeyUpdateFromTheClientWithAndWithoutOursRequested) {
    Server server;
    Client client(server.port());
    connect(server, client);
    for (int type :
         {SSL_KEY_UPDATE_REQUESTED, SSL_KEY_UPDATE_NOT_REQUESTED, SSL_KEY_UPDATE_REQUESTED}) {
        ASSERT_EQ(SSL_key_update(client.ssl(), type), 1);
        auto msg = "ping " + std::to_string(type);
        ASSERT_TRUE(client.write(msg)); // the KeyUpdate goes first, under the old key
        auto [ec, got] = server.read(msg.size(), 512);
        ASSERT_FALSE(ec) << ec.message();
        EXPECT_EQ(got, msg);
        // When asked, the server's KeyUpdate precedes its next record; the client must take it.
        EXPECT_FALSE(server.write("pong " + std::to_string(type)));
        EXPECT_EQ(client.read(msg.size()), "pong " + std::to_string(type));
    }
}

TEST(TlsRecords, CloseNotifyIsTheEndOfTheStream) {
    Server server;
    Client client(server.port());
    connect(server, client);
    ASSERT_TRUE(client.write("x"));
    EXPECT_EQ(server.read(1, 16).second, "x");
    SSL_shutdown(client.ssl());
    auto [ec, got] = server.read(1, 16);
    EXPECT_EQ(ec, asio::error::eof) << ec.message();
    EXPECT_EQ(got, "");
}

TEST(TlsRecords, ForgedAndMalformedRecordsAreRefused) {
    struct Case {
        std::string name;
        std::string bytes;
        std::string reason; // OpenSSL's reason text, in the error's message
    };
    std::string forged = {23, 3, 3, 0, 40};
    forged += pattern(40, 3);
    std::vector<Case> cases = {
        {"forged", forged, "decryption failed or bad record mac"},
        {"too long", std::string{23, 3, 3, 0x48, 0x01}, "encrypted length too long"},
        {"too short", std::string{23, 3, 3, 0, 16} + std::string(16, 'x'), "bad length"},
        {"handshake record", std::string{22, 3, 3, 0, 4, 1, 0, 0, 0}, "unexpected record"},
        {"change cipher spec", std::string{20, 3, 3, 0, 1, 1}, "unexpected record"},
    };
    for (const auto& c : cases) {
        Server server;
        Client client(server.port());
        connect(server, client);
        ASSERT_TRUE(client.write("ok"));
        ASSERT_EQ(server.read(2, 16).second, "ok"); // records taken over
        ASSERT_EQ(::send(client.fd(), c.bytes.data(), c.bytes.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(c.bytes.size()));
        auto [ec, got] = server.read(1, 16);
        EXPECT_TRUE(ec) << c.name;
        EXPECT_NE(ec, asio::error::eof) << c.name;
        EXPECT_NE(ec.message().find(c.reason), std::string::npos) << c.name << ": " << ec.message();
        EXPECT_EQ(got, "") << c.name;
    }
}

TEST(TlsRecords, Tls12StaysWithOpenSsl) {
    Server server;
    Client client(server.port(), TLS1_2_VERSION);
    connect(server, client);
    ASSERT_TRUE(client.write("ping"));
    EXPECT_EQ(server.read(4, 16).second, "ping");
    EXPECT_NE(server.native_handle(), nullptr);
    EXPECT_FALSE(server.write("pong"));
    EXPECT_EQ(client.read(4), "pong");
    // Several records at once: OpenSSL's read-ahead, one read taking the records read ahead.
    ASSERT_TRUE(client.write(pattern(40000, 9)));
    auto [ec, big] = server.read(40000, 1000);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(big, pattern(40000, 9));
    EXPECT_NE(server.native_handle(), nullptr);
}

// The record rules of RFC 8446 on TlsRecords itself: the server's records and a peer's (the same
// secrets the other way round) over a non-blocking socket pair; the peer seals inner plaintexts as
// given (content type and padding included), which no TLS library would send.
class RecordPair {
public:
    explicit RecordPair(std::uint16_t cipher = 0x1301) {
        // The errors' messages are OpenSSL's reason strings.
        ::OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS,
                           nullptr);
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds_) != 0)
            throw std::runtime_error("socketpair");
        std::size_t hash = cipher == 0x1302 ? 48 : 32;
        std::vector<std::uint8_t> client(hash, 0x11), server_secret(hash, 0x22);
        server = TlsRecords::from_secrets(cipher, client, server_secret);
        peer = TlsRecords::from_secrets(cipher, server_secret, client);
        if (!server || !peer) throw std::runtime_error("records");
    }
    RecordPair(const RecordPair&) = delete;
    RecordPair& operator=(const RecordPair&) = delete;
    ~RecordPair() {
        ::close(fds_[0]);
        ::close(fds_[1]);
    }
    // The peer seals `inner` (as is) and sends it.
    void send_inner(const std::string& inner) {
        auto record =
            peer->seal_inner({reinterpret_cast<const std::uint8_t*>(inner.data()), inner.size()});
        ASSERT_FALSE(record.empty());
        send_raw(record);
    }
    void send_raw(const std::vector<std::uint8_t>& record) {
        ASSERT_EQ(::send(fds_[1], record.data(), record.size(), MSG_NOSIGNAL),
                  static_cast<ssize_t>(record.size()));
    }
    // Everything the server reads until it would block or fails.
    std::pair<error_code, std::string> server_read() { return read(*server, fds_[0]); }
    std::pair<error_code, std::string> peer_read() { return read(*peer, fds_[1]); }
    error_code server_write(const std::string& data) {
        std::size_t n = 0;
        error_code ec;
        auto status = server->write(fds_[0], data.data(), data.size(), n, ec);
        EXPECT_TRUE(status == TlsRecords::Status::Done || status == TlsRecords::Status::Failed);
        return ec;
    }

    // One read of the server into a buffer of `size` bytes.
    struct OneRead {
        TlsRecords::Status status;
        error_code ec;
        std::string data;
    };
    OneRead server_read_once(std::size_t size) {
        std::string buf(size, '\0');
        std::size_t n = 0;
        error_code ec;
        auto status = server->read(fds_[0], buf.data(), size, n, ec);
        buf.resize(n);
        return {status, ec, buf};
    }

    std::unique_ptr<TlsRecords> server, peer;

private:
    static std::pair<error_code, std::string> read(TlsRecords& r, int fd) {
        std::string out;
        char buf[4096];
        for (;;) {
            std::size_t n = 0;
            error_code ec;
            auto status = r.read(fd, buf, sizeof buf, n, ec);
            out.append(buf, n);
            if (status == TlsRecords::Status::Failed) return {ec, out};
            if (status == TlsRecords::Status::WantRead) return {{}, out};
        }
    }
    int fds_[2] = {-1, -1};
};

std::string inner(const std::string& content, char type, std::size_t padding = 0) {
    return content + type + std::string(padding, '\0');
}
constexpr char kData = 23, kAlertType = 21, kHandshakeType = 22;

TEST(TlsRecordRules, PaddingIsStrippedAndTheTypeIsTheLastNonZeroByte) {
    RecordPair p;
    p.send_inner(inner("abc", kData, 300));
    p.send_inner(inner(std::string("a\0\0b\0", 5), kData, 1)); // zeros inside are content
    auto [ec, got] = p.server_read();
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(got, "abc" + std::string("a\0\0b\0", 5));
}

TEST(TlsRecordRules, AnAllZeroInnerPlaintextIsAnUnexpectedMessage) {
    RecordPair p;
    p.send_inner(std::string(20, '\0'));
    auto [ec, got] = p.server_read();
    EXPECT_NE(ec.message().find("unexpected message"), std::string::npos) << ec.message();
    EXPECT_EQ(got, "");
}

TEST(TlsRecordRules, ZeroLengthApplicationDataRecordsAreAllowed) {
    RecordPair p;
    p.send_inner(inner("", kData));
    p.send_inner(inner("", kData, 7));
    p.send_inner(inner("x", kData));
    auto [ec, got] = p.server_read();
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(got, "x");
}

TEST(TlsRecordRules, AtMost32EmptyRecordsInARowLikeOpenSsl) {
    {
        RecordPair p; // 32 empty records, data, then 32 again: the count starts over
        for (int round = 0; round < 2; ++round) {
            for (int i = 0; i < TlsRecords::kMaxEmptyRecords; ++i)
                p.send_inner(inner("", kData, i % 3));
            p.send_inner(inner(round ? "b" : "a", kData));
        }
        auto [ec, got] = p.server_read();
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(got, "ab");
    }
    RecordPair p; // the 33rd in a row fails the connection
    p.send_inner(inner("a", kData));
    for (int i = 0; i <= TlsRecords::kMaxEmptyRecords; ++i)
        p.send_inner(inner("", kData));
    p.send_inner(inner("b", kData));
    auto [ec, got] = p.server_read();
    EXPECT_NE(ec.message().find("record too small"), std::string::npos) << ec.message();
    EXPECT_EQ(got, "a");
}

TEST(TlsRecordRules, InnerPlaintextOfAtMost2To14Plus1BytesPaddingIncluded) {
    {
        RecordPair p;
        p.send_inner(inner(pattern(16384, 1), kData)); // 2^14 + 1: the limit
        auto [ec, got] = p.server_read();
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(got, pattern(16384, 1));
    }
    for (auto [content, padding] :
         {std::pair<std::size_t, std::size_t>{16384, 1}, {16000, 400}, {0, 16385}}) {
        RecordPair p;
        p.send_inner(inner(pattern(content, 2), kData, padding));
        auto [ec, got] = p.server_read();
        EXPECT_NE(ec.message().find("data length too long"), std::string::npos)
            << content << "+" << padding << ": " << ec.message();
        EXPECT_EQ(got, "");
    }
}

TEST(TlsRecordRules, EachRecordHasItsOwnSequenceNumber) {
    for (int replay = 0; replay < 2; ++replay) {
        RecordPair p;
        auto first = p.peer->seal_inner(std::vector<std::uint8_t>{'a', kData});
        auto second = p.peer->seal_inner(std::vector<std::uint8_t>{'b', kData});
        p.send_raw(first);
        p.send_raw(replay ? first : second);
        if (!replay) p.send_raw(first); // out of order after the second
        auto [ec, got] = p.server_read();
        EXPECT_NE(ec.message().find("decryption failed or bad record mac"), std::string::npos)
            << ec.message();
        EXPECT_EQ(got, replay ? "a" : "ab");
    }
}

TEST(TlsRecordRules, UserCanceledIsIgnoredLikeOpenSslAndOtherAlertsAreFatal) {
    {
        RecordPair p;
        p.send_inner(inner(std::string{1, 90}, kAlertType)); // user_canceled, warning
        p.send_inner(inner("a", kData));
        for (int i = 0; i < 4; ++i) // four in a row are ignored
            p.send_inner(inner(std::string{2, 90}, kAlertType));
        p.send_inner(inner("b", kData));
        auto [ec, got] = p.server_read();
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(got, "ab");
    }
    {
        RecordPair p;
        for (int i = 0; i < 5; ++i)
            p.send_inner(inner(std::string{1, 90}, kAlertType));
        auto [ec, got] = p.server_read();
        EXPECT_NE(ec.message().find("too many warn alerts"), std::string::npos) << ec.message();
    }
    for (char level : {char{1}, char{2}}) { // close_notify at either level
        RecordPair p;
        p.send_inner(inner(std::string{level, 0}, kAlertType));
        p.send_inner(inner("late", kData));
        auto [ec, got] = p.server_read();
        EXPECT_EQ(ec, asio::error::eof) << ec.message();
        EXPECT_EQ(got, "");
        EXPECT_EQ(p.server_read().first, asio::error::eof); // and stays so
        EXPECT_FALSE(p.server_write("reply")) << "a half-closed stream can still be written";
    }
    for (char level : {char{1}, char{2}}) { // another alert, even at warning level: fatal
        RecordPair p;
        p.send_inner(inner(std::string{level, 40}, kAlertType)); // handshake_failure
        auto [ec, got] = p.server_read();
        EXPECT_NE(ec.message().find("handshake failure"), std::string::npos) << ec.message();
        EXPECT_EQ(p.server_read().first, ec); // sticky
        EXPECT_TRUE(p.server_write("reply")); // and no more writes
    }
    for (const std::string& bad : {std::string{1}, std::string{1, 0, 0}}) {
        RecordPair p;
        p.send_inner(inner(bad, kAlertType));
        auto [ec, got] = p.server_read();
        EXPECT_NE(ec.message().find("invalid alert"), std::string::npos) << ec.message();
    }
}

TEST(TlsRecordRules, OnlyAKeyUpdateEndingItsRecordIsAcceptedAfterTheHandshake) {
    struct Case {
        std::string name;
        std::vector<std::string> records; // handshake bytes, one record each
        std::string reason;
    };
    std::vector<Case> cases = {
        {"NewSessionTicket", {std::string{4, 0, 0, 5, 0, 0, 0, 0, 0}}, "unexpected message"},
        {"CertificateRequest", {std::string{13, 0, 0, 1, 0}}, "unexpected message"},
        {"Certificate", {std::string{11, 0, 0, 4, 0, 0, 0, 0}}, "unexpected message"},
        {"KeyUpdate and more", {std::string{24, 0, 0, 1, 0, 24}}, "unexpected message"},
        {"two KeyUpdates", {std::string{24, 0, 0, 1, 0, 24, 0, 0, 1, 0}}, "unexpected message"},
        {"KeyUpdate and more, split",
         {std::string{24, 0, 0}, std::string{1, 0, 24}},
         "unexpected message"},
        {"KeyUpdate split, value 2", {std::string{24, 0, 0, 1}, std::string{2}}, "bad key update"},
        {"KeyUpdate length wrong across records",
         {std::string{24, 0}, std::string{1, 0}},
         "unexpected message"},
        {"empty handshake record", {std::string{}}, "unexpected message"},
        {"KeyUpdate too long", {std::string{24, 0, 0, 2, 0, 0}}, "unexpected message"},
        {"KeyUpdate value 2", {std::string{24, 0, 0, 1, 2}}, "bad key update"},
    };
    for (const auto& c : cases) {
        RecordPair p;
        for (const auto& r : c.records)
            p.send_inner(inner(r, kHandshakeType));
        auto [ec, got] = p.server_read();
        EXPECT_NE(ec.message().find(c.reason), std::string::npos) << c.name << ": " << ec.message();
    }
}

// RFC 8446 5.1: a handshake message may be split over records, so a KeyUpdate too; OpenSSL takes
// one so, and so do we. Nothing else may come between its pieces.
TEST(TlsRecordRules, AKeyUpdateSplitOverRecordsIsTakenAndNothingMayComeBetweenItsPieces) {
    const std::string key_update{24, 0, 0, 1, 0};
    const std::vector<std::vector<std::size_t>> splits = {{1, 4}, {2, 3},          {3, 2},
                                                          {4, 1}, {1, 1, 1, 1, 1}, {2, 2, 1}};
    for (char requested : {char{0}, char{1}}) {
        for (const auto& split : splits) {
            RecordPair p;
            EXPECT_FALSE(p.server_write("z")); // write sequence 1
            p.send_inner(inner("a", kData));
            std::string message = key_update;
            message.back() = requested;
            std::size_t at = 0;
            for (std::size_t n : split) {
                p.send_inner(inner(message.substr(at, n), kHandshakeType));
                at += n;
            }
            ASSERT_TRUE(p.peer->update_write_key());
            p.send_inner(inner("b", kData)); // under the client's new key
            auto [ec, got] = p.server_read();
            EXPECT_FALSE(ec) << split.size() << " pieces: " << ec.message();
            EXPECT_EQ(got, "ab") << split.size() << " pieces";
            // Asked for, ours precedes the server's next record; the peer follows it.
            EXPECT_FALSE(p.server_write("c"));
            auto [peer_ec, peer_got] = p.peer_read();
            EXPECT_FALSE(peer_ec) << peer_ec.message();
            EXPECT_EQ(peer_got, "zc");
            // Our KeyUpdate (asked for) restarts the sequence under the new key: "c" is its 0.
            EXPECT_EQ(p.server->write_sequence(), requested != 0 ? 1u : 2u)
                << "our KeyUpdate only when requested";
        }
    }
    struct Between {
        std::string name;
        std::string inner;
    };
    const std::vector<Between> between = {
        {"application data", inner("x", kData)},
        {"an empty application data record", inner("", kData)},
        {"user_canceled", inner(std::string{1, 90}, kAlertType)},
        {"another handshake message", inner(std::string{4, 0}, kHandshakeType)},
    };
    for (const auto& b : between) {
        RecordPair p;
        p.send_inner(inner(key_update.substr(0, 2), kHandshakeType));
        p.send_inner(b.inner);
        p.send_inner(inner(key_update.substr(2), kHandshakeType));
        auto [ec, got] = p.server_read();
        EXPECT_NE(ec.message().find("unexpected message"), std::string::npos)
            << b.name << ": " << ec.message();
        EXPECT_EQ(got, "") << b.name;
    }
}

// Records already arrived are read with one recv and returned by one read, up to the caller's
// buffer; a record that fails after them is reported by the next read, which gets nothing.
TEST(TlsRecordRules, RecordsAlreadyThereComeInOneReadAndAFailureAfterThemInTheNext) {
    RecordPair p;
    p.send_inner(inner("one ", kData));
    p.send_inner(inner("two ", kData, 7)); // padded
    p.send_inner(inner("", kData));        // empty
    p.send_inner(inner("three", kData));
    auto record = p.peer->seal_inner(std::vector<std::uint8_t>{'x', kData});
    record.back() ^= 1; // forged
    p.send_raw(record);
    auto first = p.server_read_once(100);
    EXPECT_EQ(first.status, TlsRecords::Status::Done);
    EXPECT_FALSE(first.ec) << first.ec.message();
    EXPECT_EQ(first.data, "one two three");
    auto second = p.server_read_once(100);
    EXPECT_EQ(second.status, TlsRecords::Status::Failed);
    EXPECT_NE(second.ec.message().find("bad record mac"), std::string::npos) << second.ec.message();
    EXPECT_EQ(second.data, "");
    EXPECT_EQ(p.server->read_buffer_bytes(), 0u);
}

// A buffer smaller than a record takes it in parts (opened in place, then copied); larger ones get
// whole records (opened straight into them); both give the bytes sent, in order.
TEST(TlsRecordRules, ReadsOfAnySizeGetTheBytesInOrder) {
    std::string sent;
    for (int r = 0; r < 12; ++r)
        sent += pattern(static_cast<std::size_t>(1 + r * 1300), static_cast<unsigned>(r));
    for (std::size_t size : {1u, 7u, 1000u, 4096u, 16384u, 16401u, 70000u}) {
        RecordPair p;
        for (std::size_t at = 0, r = 0; at < sent.size(); ++r) {
            std::size_t len = std::min<std::size_t>(1 + r * 1300, sent.size() - at);
            p.send_inner(inner(sent.substr(at, len), kData, r % 3));
            at += len;
        }
        std::string got;
        for (;;) {
            auto one = p.server_read_once(size);
            ASSERT_FALSE(one.ec) << one.ec.message();
            EXPECT_LE(one.data.size(), size);
            got += one.data;
            if (one.status == TlsRecords::Status::WantRead) break;
        }
        EXPECT_EQ(got, sent) << "reads of " << size;
        EXPECT_EQ(p.server->read_buffer_bytes(), 0u) << "idle: no buffer";
    }
}

// While a record is only partly there, no more than it is kept; idle, nothing.
TEST(TlsRecordRules, APartialRecordKeepsOnlyItsOwnRoom) {
    RecordPair p;
    auto record = p.peer->seal_inner(std::vector<std::uint8_t>(1000, kData));
    std::vector<std::uint8_t> head(record.begin(), record.begin() + 3);
    p.send_raw(head);
    EXPECT_EQ(p.server_read_once(100).status, TlsRecords::Status::WantRead);
    EXPECT_EQ(p.server->read_buffer_bytes(), 5u) << "a header's room";
    std::vector<std::uint8_t> middle(record.begin() + 3, record.begin() + 500);
    p.send_raw(middle);
    EXPECT_EQ(p.server_read_once(100).status, TlsRecords::Status::WantRead);
    EXPECT_EQ(p.server->read_buffer_bytes(), record.size()) << "the record's room";
    std::vector<std::uint8_t> rest(record.begin() + 500, record.end());
    p.send_raw(rest);
    auto one = p.server_read_once(2000);
    EXPECT_EQ(one.status, TlsRecords::Status::Done);
    EXPECT_EQ(one.data, std::string(999, static_cast<char>(kData)));
    EXPECT_EQ(p.server->read_buffer_bytes(), 0u);
}

TEST(TlsRecordRules, ChangeCipherSpecAndUnknownInnerTypesAreRefused) {
    for (char type : {char{20}, char{24}, char{99}, char{127}}) {
        RecordPair p;
        p.send_inner(inner(std::string{1}, type));
        auto [ec, got] = p.server_read();
        EXPECT_NE(ec.message().find("unexpected record"), std::string::npos)
            << int(type) << ": " << ec.message();
    }
}

TEST(TlsRecordRules, ARefusedRecordIsAnsweredWithItsFatalAlert) {
    struct Case {
        std::string inner;
        std::string alert; // OpenSSL's text of the alert the peer receives
    };
    std::vector<Case> cases = {
        {std::string(5, '\0'), "unexpected message"},
        {inner(std::string(16385, 'x'), kData), "record overflow"},
        {inner(std::string{1}, kAlertType), "decode error"},
        {inner(std::string{24, 0, 0, 1, 7}, kHandshakeType), "illegal parameter"},
        {inner(std::string{1}, 20), "unexpected message"},
    };
    for (const auto& c : cases) {
        RecordPair p;
        p.send_inner(c.inner);
        auto [ec, got] = p.server_read();
        EXPECT_TRUE(ec);
        auto [peer_ec, peer_got] = p.peer_read();
        EXPECT_NE(peer_ec.message().find(c.alert), std::string::npos)
            << c.alert << ": " << peer_ec.message();
    }
    {
        RecordPair p; // forged: bad_record_mac
        auto record = p.peer->seal_inner(std::vector<std::uint8_t>{'a', kData});
        record.back() ^= 1;
        p.send_raw(record);
        EXPECT_TRUE(p.server_read().first);
        auto [peer_ec, peer_got] = p.peer_read();
        EXPECT_NE(peer_ec.message().find("bad record mac"), std::string::npos) << peer_ec.message();
    }
    {
        RecordPair p; // the peer's own alert is not answered
        p.send_inner(inner(std::string{2, 40}, kAlertType));
        EXPECT_TRUE(p.server_read().first);
        auto [peer_ec, peer_got] = p.peer_read();
        EXPECT_FALSE(peer_ec) << peer_ec.message();
    }
}

TEST(TlsRecordRules, AesGcmKeysChangeBeforeTheirRecordLimit) {
    for (std::uint16_t cipher : {0x1301, 0x1302}) {
        RecordPair p(cipher);
        p.server->set_sequences(0, TlsRecords::kGcmRecordsPerKey - 1);
        p.peer->set_sequences(TlsRecords::kGcmRecordsPerKey - 1, 0);
        EXPECT_FALSE(p.server_write("a")); // the last record under the first key
        EXPECT_EQ(p.server->write_sequence(), TlsRecords::kGcmRecordsPerKey);
        EXPECT_FALSE(p.server_write("b")); // KeyUpdate, then "b" under the new key
        EXPECT_EQ(p.server->write_sequence(), 1u);
        auto [ec, got] = p.peer_read(); // the peer follows the KeyUpdate
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(got, "ab");
    }
}

TEST(TlsRecordRules, SequenceNumbersNeverWrap) {
    RecordPair p(0x1303); // no record limit per key: the sequence number runs out
    p.server->set_sequences(UINT64_MAX, UINT64_MAX);
    EXPECT_TRUE(p.server_write("x"));
    p.peer->set_sequences(0, UINT64_MAX - 1);
    p.send_inner(inner("y", kData));
    auto [ec, got] = p.server_read();
    EXPECT_TRUE(ec);
    EXPECT_EQ(got, "");
}

TEST(TlsRecordRules, OnlyTls13SuitesAndSecretsOfTheirHashSize) {
    std::vector<std::uint8_t> s32(32, 1), s48(48, 1);
    EXPECT_TRUE(TlsRecords::from_secrets(0x1301, s32, s32));
    EXPECT_TRUE(TlsRecords::from_secrets(0x1302, s48, s48));
    EXPECT_TRUE(TlsRecords::from_secrets(0x1303, s32, s32));
    EXPECT_FALSE(TlsRecords::from_secrets(0x1302, s32, s32));
    EXPECT_FALSE(TlsRecords::from_secrets(0x1301, s48, s32));
    EXPECT_FALSE(TlsRecords::from_secrets(0x1304, s32, s32)); // CCM
    EXPECT_FALSE(TlsRecords::from_secrets(0xc02f, s32, s32));
}

} // namespace

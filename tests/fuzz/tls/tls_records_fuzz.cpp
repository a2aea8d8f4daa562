// The server's own TLS 1.3 record layer (server::detail::TlsRecords) with fixed traffic secrets,
// on a non-blocking socket pair. The first byte picks the suite (AES-128-GCM, AES-256-GCM,
// ChaCha20-Poly1305) and the mode:
//   0: the rest as raw bytes from the peer (record headers, lengths, forged ciphertext): the
//      reader must fail or block, never return more plaintext than it was sent;
//   1: the rest as inner plaintexts sealed by a peer (each: 2-byte length, then the bytes as is,
//      content type and padding included): the reader must return exactly the content of the
//      application-data records up to the first record the rules refuse (checked against a
//      model of RFC 8446 5.4 and 6 written here);
//   2: the rest as application data written by our writer in pieces, opened by the peer's
//      reader: the same bytes come out (differential: seal, then open);
//   3: against OpenSSL itself: an OpenSSL client and server do a real TLS 1.3 handshake over
//      memory BIOs once per suite (the server's keylog callback hands over the secrets, as in
//      wec serve), then our records stand in for the server: what the OpenSSL client seals (in
//      pieces, with KeyUpdates, requested or not) opens to the same bytes with ours, and what
//      ours seal (with the KeyUpdates owed) opens to the same bytes with OpenSSL.
#include "server/tls_stream_internal.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

using wec::server::detail::TlsRecords;

struct Fds {
    int fd[2] = {-1, -1};
    Fds() {
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) != 0) std::abort();
        int size = 1 << 20;
        ::setsockopt(fd[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        ::setsockopt(fd[0], SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    Fds(const Fds&) = delete;
    Fds& operator=(const Fds&) = delete;
    ~Fds() {
        ::close(fd[0]);
        ::close(fd[1]);
    }
};

void send_all(int fd, const std::uint8_t* p, std::size_t n) {
    while (n > 0) {
        auto sent = ::send(fd, p, n, MSG_NOSIGNAL);
        if (sent <= 0) std::abort(); // the buffers are larger than any input
        p += sent;
        n -= static_cast<std::size_t>(sent);
    }
}

// Reads until the reader blocks or fails; true when it failed.
// Reads of `read_size` bytes: smaller than a record (opened in place, handed out in parts) or not
// (opened into the buffer, several records per read).
bool read_all(TlsRecords& r, int fd, std::string& out, std::size_t read_size = 3000) {
    std::vector<char> buf(read_size);
    for (;;) {
        std::size_t n = 0;
        boost::system::error_code ec;
        auto status = r.read(fd, buf.data(), buf.size(), n, ec);
        if (n > buf.size()) std::abort();
        out.append(buf.data(), n);
        if (status == TlsRecords::Status::Failed) {
            if (!ec) std::abort(); // a failure always says why
            return true;
        }
        if (status == TlsRecords::Status::WantRead) return false;
        if (status != TlsRecords::Status::Done) std::abort();
    }
}

// What a handshake inner plaintext does after the handshake (RFC 8446 5.1, 4.6.3): a piece of a
// KeyUpdate split over records (`partial` bytes of it read so far), the piece that completes a
// valid one, or anything refused. Other types: Other.
enum class Handshake { Other, Piece, KeyUpdate, Refused };
Handshake handshake_piece(std::size_t& partial, const std::string& in) {
    std::size_t len = in.size();
    while (len > 0 && in[len - 1] == 0)
        --len;
    if (len == 0 || in[len - 1] != 22) return Handshake::Other;
    --len;
    static constexpr std::uint8_t kHeader[4] = {24, 0, 0, 1};
    if (len == 0 || partial + len > 5) return Handshake::Refused;
    for (std::size_t i = 0; i < len && partial + i < 4; ++i)
        if (static_cast<std::uint8_t>(in[i]) != kHeader[partial + i]) return Handshake::Refused;
    if (partial + len < 5) {
        partial += len;
        return Handshake::Piece;
    }
    partial = 0;
    return static_cast<std::uint8_t>(in[len - 1]) <= 1 ? Handshake::KeyUpdate : Handshake::Refused;
}

// What the reader must return for these inner plaintexts (RFC 8446 5.1, 5.4, 6, 4.6.3), and
// whether it stops at one of them. A completed KeyUpdate is not modelled (the peer's key does not
// change): the inputs stop before one.
struct Expected {
    std::string data;
    bool stops = false;
};
Expected model(const std::vector<std::string>& inners) {
    Expected e;
    int warn = 0;
    std::size_t partial = 0; // a KeyUpdate's pieces read so far
    for (const auto& in : inners) {
        if (in.size() > 16385) return e.stops = true, e;
        std::size_t len = in.size();
        while (len > 0 && in[len - 1] == 0)
            --len;
        if (len == 0) return e.stops = true, e;
        auto type = static_cast<std::uint8_t>(in[--len]);
        if (partial != 0 && type != 22) return e.stops = true, e; // interleaved with a piece
        if (type != 21 && len > 0) warn = 0;
        if (type == 23) {
            e.data.append(in, 0, len);
            continue;
        }
        if (type == 21 && len == 2 && in[1] == 90) {
            if (++warn == 5) return e.stops = true, e;
            continue;
        }
        if (type == 22 && handshake_piece(partial, in) == Handshake::Piece) continue;
        return e.stops = true, e; // alerts, other handshake messages, other types
    }
    return e;
}

// One OpenSSL client connected to our records, kept for the whole run (the sequence numbers of
// both sides advance together from one input to the next).
class OpenSslPeer {
public:
    explicit OpenSslPeer(std::uint16_t suite) {
        std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"),
                                                                &EVP_PKEY_free);
        std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
        if (!key || !cert) std::abort();
        X509_set_version(cert.get(), 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
        X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("fuzz"), -1, -1, 0);
        X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
        X509_set_pubkey(cert.get(), key.get());
        if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) std::abort();
        const char* name = suite == 0x1301   ? "TLS_AES_128_GCM_SHA256"
                           : suite == 0x1302 ? "TLS_AES_256_GCM_SHA384"
                                             : "TLS_CHACHA20_POLY1305_SHA256";
        sctx_.reset(SSL_CTX_new(TLS_server_method()));
        cctx_.reset(SSL_CTX_new(TLS_client_method()));
        for (SSL_CTX* c : {sctx_.get(), cctx_.get()})
            if (!c || SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
                SSL_CTX_set_ciphersuites(c, name) != 1)
                std::abort();
        if (SSL_CTX_use_certificate(sctx_.get(), cert.get()) != 1 ||
            SSL_CTX_use_PrivateKey(sctx_.get(), key.get()) != 1)
            std::abort();
        SSL_CTX_set_num_tickets(sctx_.get(), 0);
        SSL_CTX_set_keylog_callback(sctx_.get(), &keylog);
        server_.reset(SSL_new(sctx_.get()));
        client_.reset(SSL_new(cctx_.get()));
        SSL_set_app_data(server_.get(), this);
        // Each side writes into its own memory BIO; pump() moves the bytes across.
        SSL_set_bio(server_.get(), BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
        SSL_set_bio(client_.get(), BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
        SSL_set_accept_state(server_.get());
        SSL_set_connect_state(client_.get());
        for (int i = 0; i < 20 && !(SSL_is_init_finished(server_.get()) &&
                                    SSL_is_init_finished(client_.get()));
             ++i) {
            SSL_do_handshake(client_.get());
            move(SSL_get_wbio(client_.get()), SSL_get_rbio(server_.get()));
            SSL_do_handshake(server_.get());
            move(SSL_get_wbio(server_.get()), SSL_get_rbio(client_.get()));
        }
        if (!SSL_is_init_finished(server_.get()) || !SSL_is_init_finished(client_.get()) ||
            BIO_ctrl_pending(SSL_get_rbio(server_.get())) != 0 ||
            BIO_ctrl_pending(SSL_get_rbio(client_.get())) != 0 || client_len_ == 0 ||
            server_len_ == 0)
            std::abort();
        ours_ = TlsRecords::from_secrets(suite, {client_secret_, client_len_},
                                         {server_secret_, server_len_});
        if (!ours_) std::abort();
        server_.reset(); // our records stand in for it from here on
    }

    // The client sends `data` in pieces (a KeyUpdate before some), ours read it; then ours send
    // it back in pieces, the client reads it.
    void exchange(const std::uint8_t* data, std::size_t size, std::size_t read_size) {
        Fds fds;
        std::string sent(reinterpret_cast<const char*>(data), size), got;
        for (std::size_t at = 0; at < size;) {
            std::size_t piece = std::min<std::size_t>(1 + (data[at] * 131u) % 20000, size - at);
            if (data[at] % 7 == 0)
                SSL_key_update(client_.get(), data[at] % 2 ? SSL_KEY_UPDATE_REQUESTED
                                                           : SSL_KEY_UPDATE_NOT_REQUESTED);
            std::size_t n = 0;
            if (SSL_write_ex(client_.get(), data + at, piece, &n) != 1 || n != piece) std::abort();
            at += piece;
            std::string wire = drain(SSL_get_wbio(client_.get()));
            send_all(fds.fd[1], reinterpret_cast<const std::uint8_t*>(wire.data()), wire.size());
            if (read_all(*ours_, fds.fd[0], got, read_size)) std::abort();
        }
        if (got != sent) std::abort();
        got.clear();
        for (std::size_t at = 0; at < size;) {
            std::size_t piece = std::min<std::size_t>(1 + (data[at] * 97u) % 20000, size - at);
            for (std::size_t done = 0; done < piece;) {
                std::size_t n = 0;
                boost::system::error_code ec;
                if (ours_->write(fds.fd[0], data + at + done, piece - done, n, ec) !=
                    TlsRecords::Status::Done)
                    std::abort();
                done += n;
            }
            at += piece;
            char buf[4096];
            for (;;) {
                auto got_now = ::recv(fds.fd[1], buf, sizeof buf, 0);
                if (got_now <= 0) break;
                BIO_write(SSL_get_rbio(client_.get()), buf, static_cast<int>(got_now));
            }
            for (std::size_t n = 0; SSL_read_ex(client_.get(), buf, sizeof buf, &n) == 1;)
                got.append(buf, n);
        }
        if (got != sent) std::abort();
        // Whatever the client still owes (its KeyUpdate in reply to ours, never asked for) and
        // would send before its next record is read with that record, next time.
    }

private:
    static void keylog(const SSL* ssl, const char* line) {
        auto* self = static_cast<OpenSslPeer*>(SSL_get_app_data(ssl));
        std::string l(line);
        std::uint8_t* out = nullptr;
        std::size_t* len = nullptr;
        if (l.rfind("CLIENT_TRAFFIC_SECRET_0 ", 0) == 0) {
            out = self->client_secret_;
            len = &self->client_len_;
        } else if (l.rfind("SERVER_TRAFFIC_SECRET_0 ", 0) == 0) {
            out = self->server_secret_;
            len = &self->server_len_;
        } else {
            return;
        }
        std::string hex = l.substr(l.rfind(' ') + 1);
        *len = hex.size() / 2;
        for (std::size_t i = 0; i < *len && i < 48; ++i)
            out[i] = static_cast<std::uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
    }
    static std::string drain(BIO* from) {
        std::string out;
        char buf[4096];
        for (int n; (n = BIO_read(from, buf, sizeof buf)) > 0;)
            out.append(buf, static_cast<std::size_t>(n));
        return out;
    }
    static void move(BIO* from, BIO* to) {
        std::string bytes = drain(from);
        if (!bytes.empty()) BIO_write(to, bytes.data(), static_cast<int>(bytes.size()));
    }

    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> sctx_{nullptr, &SSL_CTX_free},
        cctx_{nullptr, &SSL_CTX_free};
    std::unique_ptr<SSL, decltype(&SSL_free)> server_{nullptr, &SSL_free},
        client_{nullptr, &SSL_free};
    std::uint8_t client_secret_[48] = {}, server_secret_[48] = {};
    std::size_t client_len_ = 0, server_len_ = 0;
    std::unique_ptr<TlsRecords> ours_;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const bool init = [] {
        ::OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS, nullptr);
        return true;
    }();
    (void)init;
    if (size < 1 || size > 65536) return 0; // within the socket pair's buffers
    static constexpr std::uint16_t kSuites[] = {0x1301, 0x1302, 0x1303};
    std::uint16_t suite = kSuites[data[0] % 3];
    int mode = (data[0] / 3) % 4;
    static constexpr std::size_t kReadSizes[] = {3000, 1, 7, 16384, 16401, 70000};
    const std::size_t read_size = kReadSizes[(data[0] / 12) % 6];
    ++data;
    --size;
    std::size_t hash = suite == 0x1302 ? 48 : 32;
    std::vector<std::uint8_t> client(hash), server_secret(hash);
    for (std::size_t i = 0; i < hash; ++i) {
        client[i] = static_cast<std::uint8_t>(i * 7 + 1);
        server_secret[i] = static_cast<std::uint8_t>(i * 13 + 5);
    }
    auto server = TlsRecords::from_secrets(suite, client, server_secret);
    auto peer = TlsRecords::from_secrets(suite, server_secret, client);
    if (!server || !peer) std::abort();
    if (mode == 3) {
        static std::unique_ptr<OpenSslPeer> peers[3];
        auto& openssl = peers[data[-1] % 3];
        if (!openssl) openssl = std::make_unique<OpenSslPeer>(suite);
        openssl->exchange(data, size, read_size);
        return 0;
    }
    Fds fds;

    if (mode == 0) {
        send_all(fds.fd[1], data, size);
        ::shutdown(fds.fd[1], SHUT_WR);
        std::string out;
        if (!read_all(*server, fds.fd[0], out, read_size)) std::abort(); // EOF must end it
        if (out.size() > size) std::abort();
        return 0;
    }
    if (mode == 1) {
        std::vector<std::string> inners;
        std::size_t partial = 0;
        std::string wire;
        for (std::size_t at = 0; at + 2 <= size;) {
            std::size_t len = (std::size_t{data[at]} << 8 | data[at + 1]) % 16400;
            at += 2;
            len = std::min(len, size - at);
            std::string in(reinterpret_cast<const char*>(data + at), len);
            at += len;
            if (handshake_piece(partial, in) == Handshake::KeyUpdate) break; // not modelled
            auto record =
                peer->seal_inner({reinterpret_cast<const std::uint8_t*>(in.data()), in.size()});
            if (record.empty()) std::abort();
            wire.append(record.begin(), record.end());
            inners.push_back(std::move(in));
        }
        send_all(fds.fd[1], reinterpret_cast<const std::uint8_t*>(wire.data()), wire.size());
        std::string out;
        bool failed = read_all(*server, fds.fd[0], out, read_size);
        auto expected = model(inners);
        if (failed != expected.stops || out != expected.data) std::abort();
        return 0;
    }
    // mode 2: our writer, then our reader; pieces of 1 to 20,000 bytes.
    std::string sent, got;
    for (std::size_t at = 0; at < size;) {
        std::size_t piece = 1 + (data[at] * 79u) % 20000;
        piece = std::min(piece, size - at);
        std::size_t done = 0;
        while (done < piece) {
            std::size_t n = 0;
            boost::system::error_code ec;
            auto status = server->write(fds.fd[0], data + at + done, piece - done, n, ec);
            if (status != TlsRecords::Status::Done || n == 0 || n > 16384) std::abort();
            done += n;
        }
        sent.append(reinterpret_cast<const char*>(data + at), piece);
        at += piece;
        if (read_all(*peer, fds.fd[1], got, read_size)) std::abort();
    }
    if (got != sent) std::abort();
    return 0;
}

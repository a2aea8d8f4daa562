#pragma once

// The server's TLS stream: OpenSSL reads and writes the TCP socket itself through a small socket
// BIO, and the stream waits for readiness (socket async_wait) whenever OpenSSL asks for more.
// Unlike boost::asio::ssl::stream, whose engine keeps four 17 KB buffers per connection for its
// whole life (its input and output buffers and the two halves of a BIO pair), this stream owns
// no buffers: with SSL_MODE_RELEASE_BUFFERS OpenSSL frees its record buffers whenever a
// connection is idle. After a TLS 1.3 handshake the stream goes further (TlsRecords): it keeps the
// traffic secrets (from the keylog callback), frees the SSL object (~19 KB: the object, the
// session with the client's decoded certificate, the record ciphers, the handshake's keys and
// transcript) and seals and opens the application-data records itself, so an idle connection
// holds ~200 bytes of TLS state. TLS 1.2 connections keep their SSL object.
//
// The interface is what the HTTP server uses: Beast's AsyncReadStream / AsyncWriteStream, a
// server handshake (optionally with bytes already read, after a PROXY header), a verify callback
// (same signature as asio's), native_handle(), and the timeout interface of beast::tcp_stream
// (expires_after / expires_never cover the operations pending until the deadline; on expiry the
// socket is closed and they complete with beast::error::timeout), kept by a LazyDeadline. It is
// its own lowest layer.

#include "server/deadline.hpp"

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/ssl/verify_context.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <span>
#include <utility>
#include <vector>

namespace wec::server::detail {

// The keylog callback of the listeners' SSL_CTX: hands the TLS 1.3 application traffic secrets to
// the connection's stream (nothing else is kept, nothing is written anywhere).
void tls_keylog(const SSL* ssl, const char* line);

// False when WEC_TLS_RECORDS=openssl is set in the environment: OpenSSL keeps the record layer of
// every connection (a diagnostic switch and a way out); our TlsRecords otherwise.
bool own_tls_records();

// TLS 1.3 application-data records (RFC 8446 5) after the handshake, without the SSL object: AEAD
// with the negotiated suite (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305; the key and IV from the
// traffic secret by HKDF-Expand-Label), close_notify and fatal alerts, the peer's KeyUpdate (and
// ours in reply when asked). Reads and writes the socket itself (non-blocking).
struct CipherFree {
    void operator()(EVP_CIPHER* c) const { EVP_CIPHER_free(c); }
};

class TlsRecords {
public:
    enum class Status : std::uint8_t { Done, WantRead, WantWrite, Failed };

    // Takes over from `ssl` once its TLS 1.3 handshake is done, with the client's and the
    // server's application traffic secrets; nullptr when it cannot (TLS 1.2, another suite,
    // data OpenSSL already read, secrets missing): the SSL object then stays in charge.
    static std::unique_ptr<TlsRecords> take_over(SSL* ssl, std::span<const std::uint8_t> client,
                                                 std::span<const std::uint8_t> server);
    // Records of the TLS 1.3 suite `cipher` (0x1301, 0x1302, 0x1303) opened with the `read`
    // traffic secret and sealed with the `write` one, from sequence number 0; nullptr for another
    // suite or a secret of the wrong size. (take_over's second half; tests and the fuzzer play
    // both ends with it.)
    static std::unique_ptr<TlsRecords> from_secrets(std::uint16_t cipher,
                                                    std::span<const std::uint8_t> read,
                                                    std::span<const std::uint8_t> write);
    TlsRecords(const TlsRecords&) = delete;
    TlsRecords& operator=(const TlsRecords&) = delete;
    ~TlsRecords(); // the keys are cleansed

    // Up to `size` bytes of application data into `data` (n: how many).
    Status read(int fd, void* data, std::size_t size, std::size_t& n,
                boost::system::error_code& ec);
    // One record of up to 16 KB of `data` (n: how many bytes it took). After WantWrite, call
    // again with the same data: the sealed record is still being sent.
    Status write(int fd, const void* data, std::size_t size, std::size_t& n,
                 boost::system::error_code& ec);

    // AES-GCM: a KeyUpdate of ours before this many records are sealed under one key (RFC 8446
    // 5.5: at most 2^24.5 full-size records).
    static constexpr std::uint64_t kGcmRecordsPerKey = std::uint64_t{1} << 24;
    // Consecutive user_canceled alerts ignored before the connection fails (OpenSSL's count).
    static constexpr int kMaxWarnAlerts = 5;
    // Consecutive records that carry no application data (empty application-data records,
    // KeyUpdates) before the connection fails: OpenSSL's cap on empty records, here also on
    // KeyUpdates (each costs a key derivation), so that a peer cannot keep a read busy with them.
    static constexpr int kMaxEmptyRecords = 32;

    // For tests and the fuzzer: one record sealed with the write key whose inner plaintext
    // (content, content type, padding) is `inner` as given, with the next write sequence number.
    std::vector<std::uint8_t> seal_inner(std::span<const std::uint8_t> inner);
    // For tests: the sequence numbers of the next record read and written.
    void set_sequences(std::uint64_t read, std::uint64_t write) {
        read_.seq = read;
        write_.seq = write;
    }
    std::uint64_t write_sequence() const { return write_.seq; }
    // For tests: bytes allocated for reading (0 when idle).
    std::size_t read_buffer_bytes() const { return in_cap_; }
    // For tests: the write key changes as after a KeyUpdate sent (RFC 8446 7.2), where the test
    // sealed that KeyUpdate itself (e.g. split over records) with seal_inner.
    bool update_write_key() { return update(write_); }

private:
    enum class Suite : std::uint8_t { Aes128Gcm, Aes256Gcm, Chacha20Poly1305 };
    struct Direction {
        std::array<std::uint8_t, 48> secret{};
        std::array<std::uint8_t, 32> key{};
        std::array<std::uint8_t, 12> iv{};
        std::uint64_t seq = 0;
    };

    TlsRecords() = default;
    const char* digest() const;
    bool derive(Direction& d) const;
    bool update(Direction& d) const;
    bool crypt(Direction& d, bool seal, const std::uint8_t* header, const std::uint8_t* in,
               std::uint8_t* out, std::size_t len, std::uint8_t* tag);
    Status fill(int fd, std::size_t want, boost::system::error_code& ec);
    void seal(std::uint8_t type, const std::uint8_t* data, std::size_t len);
    void release_in();
    Status read_records(int fd, void* data, std::size_t size, std::size_t& n,
                        boost::system::error_code& ec);
    void send_fatal_alert(int fd, const boost::system::error_code& ec);

    Suite suite_ = Suite::Aes256Gcm;
    std::size_t hash_len_ = 48, key_len_ = 32;
    Direction read_, write_;
    bool key_update_due_ = false;        // the client asked for ours: sent before the next record
    int warn_alerts_ = 0;                // consecutive user_canceled alerts
    int empty_records_ = 0;              // consecutive records without application data
    std::uint8_t partial_handshake_ = 0; // bytes of a KeyUpdate split over records, read so far
    boost::system::error_code read_failed_; // sticky: every later read reports it
    bool fatal_ = false;                    // a fatal error: writes fail as well
    bool sealed_ok_ = true;
    // Bytes read from the socket, several records per recv while a request arrives: those not
    // opened yet are [in_begin_, in_end_); a record opened in place (the caller's buffer could not
    // take it whole) leaves its plaintext in [plain_start_, plain_end_), of which the caller has
    // taken up to plain_begin_. Allocated only while bytes wait in it.
    std::unique_ptr<std::uint8_t[]> in_;
    std::size_t in_cap_ = 0, in_begin_ = 0, in_end_ = 0;
    std::size_t plain_start_ = 0, plain_begin_ = 0, plain_end_ = 0;
    std::unique_ptr<EVP_CIPHER, CipherFree> cipher_; // the suite's AEAD, fetched once
    std::vector<std::uint8_t> out_; // sealed records being sent (only while a write is pending)
    std::size_t out_sent_ = 0, out_plain_ = 0;
};

class TlsSocketStream {
public:
    using tcp = boost::asio::ip::tcp;
    using executor_type = tcp::socket::executor_type;
    using error_code = boost::system::error_code;
    using VerifyCallback = std::function<bool(bool, boost::asio::ssl::verify_context&)>;

    // Throws wec::Error when OpenSSL cannot make the connection's SSL object.
    TlsSocketStream(tcp::socket socket, boost::asio::ssl::context& context);
    TlsSocketStream(TlsSocketStream&&) noexcept = default;
    TlsSocketStream& operator=(TlsSocketStream&&) = delete;
    ~TlsSocketStream();

    executor_type get_executor() { return core_->socket.get_executor(); }
    SSL* native_handle() { return ssl_.get(); }
    tcp::socket& socket() { return core_->socket; }

    void set_verify_callback(VerifyCallback callback);

    // beast::tcp_stream's timeout interface.
    void expires_after(std::chrono::steady_clock::duration after);
    void expires_never();
    void close();

    // Server handshake; `initial` are bytes already read from the socket (all of them are taken:
    // the handler's second argument is their size).
    template <class Handler>
    auto async_handshake(boost::asio::ssl::stream_base::handshake_type,
                         boost::asio::const_buffer initial, Handler&& handler) {
        const auto* p = static_cast<const std::uint8_t*>(initial.data());
        core_->prefix.assign(p, p + initial.size());
        core_->prefix_used = 0;
        SSL_set_accept_state(ssl_.get());
        ++core_->in_flight;
        return boost::asio::async_compose<Handler, void(error_code, std::size_t)>(
            Op<true>{core_.get(), ssl_.get(), Kind::Handshake, nullptr, 0, initial.size()}, handler,
            core_->socket);
    }
    template <class Handler>
    auto async_handshake(boost::asio::ssl::stream_base::handshake_type, Handler&& handler) {
        SSL_set_accept_state(ssl_.get());
        ++core_->in_flight;
        return boost::asio::async_compose<Handler, void(error_code)>(
            Op<false>{core_.get(), ssl_.get(), Kind::Handshake, nullptr, 0, 0}, handler,
            core_->socket);
    }

    template <class MutableBuffers, class Handler>
    auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
        take_over();
        boost::asio::mutable_buffer first;
        for (auto it = boost::asio::buffer_sequence_begin(buffers);
             it != boost::asio::buffer_sequence_end(buffers); ++it)
            if (boost::asio::mutable_buffer b(*it); b.size() > 0) {
                first = b;
                break;
            }
        ++core_->in_flight;
        return boost::asio::async_compose<Handler, void(error_code, std::size_t)>(
            Op<true>{core_.get(), ssl_.get(), Kind::Read, first.data(), first.size(), 0}, handler,
            core_->socket);
    }

    // Reads the socket itself, before the handshake (a PROXY protocol header), under the timeout.
    template <class MutableBuffers, class Handler>
    void async_read_plain(const MutableBuffers& buffers, Handler&& handler) {
        core_->socket.async_read_some(buffers,
                                      [core = core_.get(), h = std::forward<Handler>(handler)](
                                          error_code ec, std::size_t n) mutable {
                                          if (ec && core->timed_out)
                                              ec = boost::beast::error::timeout;
                                          h(ec, n);
                                      });
    }

    // Several small buffers (an HTTP head and body) are sent as one record: copied into a
    // buffer that lives only as long as the operation.
    template <class ConstBuffers, class Handler>
    auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        take_over();
        std::size_t total = 0, pieces = 0;
        boost::asio::const_buffer first;
        for (auto it = boost::asio::buffer_sequence_begin(buffers);
             it != boost::asio::buffer_sequence_end(buffers); ++it) {
            boost::asio::const_buffer b(*it);
            if (b.size() == 0) continue;
            if (pieces++ == 0) first = b;
            total += b.size();
        }
        Op<true> op{core_.get(),  ssl_.get(), Kind::Write, const_cast<void*>(first.data()),
                    first.size(), 0};
        if (pieces > 1 && total <= kCoalesceLimit) {
            op.owned.resize(total);
            boost::asio::buffer_copy(boost::asio::buffer(op.owned), buffers);
            op.data = op.owned.data();
            op.size = op.owned.size();
        }
        ++core_->in_flight;
        return boost::asio::async_compose<Handler, void(error_code, std::size_t)>(
            std::move(op), handler, core_->socket);
    }

private:
    static constexpr std::size_t kCoalesceLimit = 16 * 1024;  // one TLS record
    static constexpr std::size_t kReadAheadBytes = 64 * 1024; // OpenSSL's read buffer

    // What the timer's handler and the BIO reach: on the heap, so that it stays put when the
    // stream moves and outlives it until the timer's last handler has run.
    struct Core : TimedSocket {
        using TimedSocket::TimedSocket;
        bool eof = false;                 // the peer closed its side (recv returned 0)
        int last_errno = 0;               // of the BIO's last failed send/recv
        std::vector<std::uint8_t> prefix; // read before the handshake (PROXY protocol)
        std::size_t prefix_used = 0;
        VerifyCallback verify;
        // TLS 1.3 application traffic secrets (tls_keylog), until the records are taken over.
        std::array<std::uint8_t, 48> client_secret{}, server_secret{};
        std::uint8_t client_secret_len = 0, server_secret_len = 0;
        // Taking over is decided once, at the first operation after the handshake: if OpenSSL
        // then keeps the connection, it keeps it for good (its sequence numbers have moved on).
        bool records_decided = false;
        int in_flight = 0;                   // operations started and not yet complete
        std::unique_ptr<TlsRecords> records; // after a TLS 1.3 handshake: the SSL object is gone
        ~Core();
    };

    enum class Kind : std::uint8_t { Handshake, Read, Write };

    // The error of a failed SSL call, as asio's SSL stream reports it.
    static error_code error_of(Core& core, SSL* ssl, int result);

    template <bool WithSize>
    struct Op {
        Core* core;
        SSL* ssl;
        Kind kind;
        void* data;
        std::size_t size;
        std::size_t handshake_used; // reported by a handshake with initial bytes
        std::vector<std::uint8_t> owned = {};
        bool started = false;
        bool waited = false; // completion is not inline once an asynchronous step ran
        bool done = false;
        error_code result = {};
        std::size_t transferred = 0;

        template <class Self>
        void operator()(Self& self, error_code ec = {}) {
            namespace asio = boost::asio;
            if (done) return finish(self);
            if (started && ec) {
                result = core->timed_out ? error_code(boost::beast::error::timeout) : ec;
                return finish(self);
            }
            started = true;
            if (core->timed_out) {
                result = boost::beast::error::timeout;
                return finish(self);
            }
            if (kind != Kind::Handshake && size == 0) return finish(self);
            if (core->records) return records_step(self);
            ::ERR_clear_error();
            core->last_errno = 0;
            int r = 0;
            std::size_t n = 0;
            switch (kind) {
            case Kind::Handshake:
                r = ::SSL_do_handshake(ssl);
                // From the first application read on, read-ahead into a kReadAheadBytes buffer:
                // one recv takes a record's header and body and the records after it that have
                // arrived (a 200 KB body in ~8 recv, not 2 per 16 KiB record). Not during the
                // handshake, which reads exactly its own records: nothing past it is left in
                // OpenSSL's buffer when it completes. The buffer exists only while a request is
                // read: SSL_MODE_RELEASE_BUFFERS frees it once nothing is left in it.
                if (r == 1) {
                    ::SSL_set_read_ahead(ssl, 1);
                    ::SSL_set_default_read_buffer_len(ssl, kReadAheadBytes);
                }
                break;
            case Kind::Read:
                r = ::SSL_read_ex(ssl, data, size, &n);
                // Records already read ahead (SSL_has_pending) are taken by the same operation,
                // up to the caller's buffer: one completion per recv rather than per record.
                // Whatever stops this (no whole record buffered, an alert) is met again by the
                // next read, which reports it.
                for (std::size_t more = 0; r == 1 && n < size && ::SSL_has_pending(ssl) == 1 &&
                                           ::SSL_read_ex(ssl, static_cast<std::uint8_t*>(data) + n,
                                                         size - n, &more) == 1;)
                    n += more;
                break;
            case Kind::Write:
                r = ::SSL_write_ex(ssl, data, size, &n);
                break;
            }
            if (r == 1) {
                transferred = kind == Kind::Handshake ? handshake_used : n;
                return finish(self);
            }
            switch (::SSL_get_error(ssl, r)) {
            case SSL_ERROR_WANT_READ:
                waited = true;
                return core->socket.async_wait(tcp::socket::wait_read, std::move(self));
            case SSL_ERROR_WANT_WRITE:
                waited = true;
                return core->socket.async_wait(tcp::socket::wait_write, std::move(self));
            default:
                result = error_of(*core, ssl, r);
                return finish(self);
            }
        }

        template <class Self>
        void records_step(Self& self) {
            std::size_t n = 0;
            auto status =
                kind == Kind::Read
                    ? core->records->read(core->socket.native_handle(), data, size, n, result)
                    : core->records->write(core->socket.native_handle(), data, size, n, result);
            switch (status) {
            case TlsRecords::Status::Done:
                transferred = n;
                return finish(self);
            case TlsRecords::Status::WantRead:
                waited = true;
                return core->socket.async_wait(tcp::socket::wait_read, std::move(self));
            case TlsRecords::Status::WantWrite:
                waited = true;
                return core->socket.async_wait(tcp::socket::wait_write, std::move(self));
            case TlsRecords::Status::Failed:
                return finish(self);
            }
        }

        template <class Self>
        void finish(Self& self) {
            if (!waited) { // never complete inside the initiating call
                waited = done = true;
                return boost::asio::post(core->socket.get_executor(), std::move(self));
            }
            --core->in_flight;
            if constexpr (WithSize)
                self.complete(result, transferred);
            else
                self.complete(result);
        }
    };

    friend void tls_keylog(const SSL* ssl, const char* line);

    // False when WEC_TLS_RECORDS=openssl is set in the environment: OpenSSL keeps the record layer
    // of every connection (a diagnostic switch and a way out); our TlsRecords otherwise.
    bool own_tls_records();

    // Hands the records to TlsRecords once a TLS 1.3 handshake is done and no operation is
    // pending, and frees the SSL object (native_handle() is null from then on).
    void take_over();
    static BIO* make_bio(Core& core);
    static int verify_trampoline(int ok, X509_STORE_CTX* ctx);

    std::shared_ptr<Core> core_;
    std::unique_ptr<SSL, decltype(&::SSL_free)> ssl_{nullptr, &::SSL_free};
};

} // namespace wec::server::detail

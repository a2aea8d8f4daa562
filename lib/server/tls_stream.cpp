#include "common/error.hpp"
#include "server/tls_stream_internal.hpp"

#include <cerrno>
#include <cstring>
#include <string_view>
#include <sys/socket.h>

namespace wec::server::detail {

namespace {

namespace asio = boost::asio;

// The BIO between OpenSSL and the socket. Its data is the stream's Core: first the bytes read
// before the handshake (after a PROXY header), then recv(); send() with MSG_NOSIGNAL (a peer
// that went away must not raise SIGPIPE). EAGAIN is "retry", which SSL reports as WANT_READ /
// WANT_WRITE and the stream turns into a wait for readiness.

template <class Core>
int bio_read(BIO* bio, char* out, int len) {
    auto* core = static_cast<Core*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (len <= 0) return 0;
    if (core->prefix_used < core->prefix.size()) {
        auto n = std::min<std::size_t>(static_cast<std::size_t>(len),
                                       core->prefix.size() - core->prefix_used);
        std::memcpy(out, core->prefix.data() + core->prefix_used, n);
        core->prefix_used += n;
        if (core->prefix_used == core->prefix.size()) {
            core->prefix = {};
            core->prefix_used = 0;
        }
        return static_cast<int>(n);
    }
    for (;;) {
        auto n = ::recv(core->socket.native_handle(), out, static_cast<std::size_t>(len), 0);
        if (n > 0) return static_cast<int>(n);
        if (n == 0) {
            core->eof = true;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            BIO_set_retry_read(bio);
            return -1;
        }
        core->last_errno = errno;
        return -1;
    }
}

template <class Core>
int bio_write(BIO* bio, const char* in, int len) {
    auto* core = static_cast<Core*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (len <= 0) return 0;
    for (;;) {
        auto n =
            ::send(core->socket.native_handle(), in, static_cast<std::size_t>(len), MSG_NOSIGNAL);
        if (n >= 0) return static_cast<int>(n);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            BIO_set_retry_write(bio);
            return -1;
        }
        core->last_errno = errno;
        return -1;
    }
}

long bio_ctrl(BIO*, int cmd, long, void*) {
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* bio) {
    BIO_set_init(bio, 1);
    return 1;
}

struct BioMethodDeleter {
    void operator()(BIO_METHOD* m) const { BIO_meth_free(m); }
};

// Made once, read-only afterwards.
template <class Core>
const BIO_METHOD* bio_method() {
    static const std::unique_ptr<BIO_METHOD, BioMethodDeleter> method = [] {
        std::unique_ptr<BIO_METHOD, BioMethodDeleter> m(
            BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wec socket"));
        if (!m || BIO_meth_set_read(m.get(), &bio_read<Core>) != 1 ||
            BIO_meth_set_write(m.get(), &bio_write<Core>) != 1 ||
            BIO_meth_set_ctrl(m.get(), &bio_ctrl) != 1 ||
            BIO_meth_set_create(m.get(), &bio_create) != 1)
            return std::unique_ptr<BIO_METHOD, BioMethodDeleter>();
        return m;
    }();
    return method.get();
}

} // namespace

void tls_keylog(const SSL* ssl, const char* line) {
    auto* core = static_cast<TlsSocketStream::Core*>(SSL_get_app_data(ssl));
    if (!core || !line) return;
    // "CLIENT_TRAFFIC_SECRET_0 <client random, hex> <secret, hex>"
    std::string_view l(line);
    std::array<std::uint8_t, 48>* secret = nullptr;
    std::uint8_t* len = nullptr;
    if (l.starts_with("CLIENT_TRAFFIC_SECRET_0 ")) {
        secret = &core->client_secret;
        len = &core->client_secret_len;
    } else if (l.starts_with("SERVER_TRAFFIC_SECRET_0 ")) {
        secret = &core->server_secret;
        len = &core->server_secret_len;
    } else {
        return;
    }
    auto space = l.rfind(' ');
    std::string_view hex = l.substr(space + 1);
    *len = 0;
    if (hex.size() % 2 != 0 || hex.size() / 2 > secret->size()) return;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    for (std::size_t i = 0; i < hex.size() / 2; ++i) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return;
        (*secret)[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    *len = static_cast<std::uint8_t>(hex.size() / 2);
}

TlsSocketStream::Core::~Core() {
    OPENSSL_cleanse(client_secret.data(), client_secret.size());
    OPENSSL_cleanse(server_secret.data(), server_secret.size());
}

void TlsSocketStream::take_over() {
    if (core_->records_decided || !ssl_ || !::SSL_is_init_finished(ssl_.get())) return;
    // Decided once, at the first read or write after the handshake, before OpenSSL has read
    // ahead (read-ahead starts with the first SSL_read) or sealed an application record: if it
    // cannot be done now (an operation in flight, bytes of ours or OpenSSL's not yet read, TLS
    // 1.2, WEC_TLS_RECORDS=openssl: no secrets), OpenSSL keeps the connection for good, so that
    // no record is ever lost and no sequence number (nonce) used twice.
    core_->records_decided = true;
    if (core_->in_flight == 0 && core_->prefix.empty())
        core_->records = TlsRecords::take_over(
            ssl_.get(), {core_->client_secret.data(), core_->client_secret_len},
            {core_->server_secret.data(), core_->server_secret_len});
    OPENSSL_cleanse(core_->client_secret.data(), core_->client_secret.size());
    OPENSSL_cleanse(core_->server_secret.data(), core_->server_secret.size());
    core_->client_secret_len = core_->server_secret_len = 0;
    if (core_->records) ssl_.reset(); // and its BIO
}

BIO* TlsSocketStream::make_bio(Core& core) {
    const BIO_METHOD* method = bio_method<Core>();
    if (!method) return nullptr;
    BIO* bio = BIO_new(method);
    if (bio) BIO_set_data(bio, &core);
    return bio;
}

TlsSocketStream::TlsSocketStream(tcp::socket socket, boost::asio::ssl::context& context)
    : core_(std::make_shared<Core>(std::move(socket))) {
    ssl_.reset(::SSL_new(context.native_handle()));
    if (!ssl_) throw Error("TLS: cannot create the connection's SSL object");
    ::SSL_set_mode(ssl_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                   SSL_MODE_RELEASE_BUFFERS);
    BIO* bio = make_bio(*core_);
    if (!bio) throw Error("TLS: cannot create the connection's BIO");
    ::SSL_set_bio(ssl_.get(), bio, bio); // one reference, taken by the SSL object
    SSL_set_app_data(ssl_.get(), core_.get());
    boost::system::error_code ignored;
    core_->socket.non_blocking(true, ignored);
}

TlsSocketStream::~TlsSocketStream() {
    if (core_) end_on_strand(std::move(core_), false); // else moved from
}

void TlsSocketStream::set_verify_callback(VerifyCallback callback) {
    core_->verify = std::move(callback);
    ::SSL_set_verify(ssl_.get(), ::SSL_get_verify_mode(ssl_.get()), &verify_trampoline);
}

int TlsSocketStream::verify_trampoline(int ok, X509_STORE_CTX* ctx) {
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(ctx, ::SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* core = ssl ? static_cast<Core*>(SSL_get_app_data(ssl)) : nullptr;
    if (!core || !core->verify) return ok;
    boost::asio::ssl::verify_context vc(ctx);
    return core->verify(ok != 0, vc) ? 1 : 0;
}

void TlsSocketStream::expires_after(std::chrono::steady_clock::duration after) {
    core_->deadline.expires_after(after, core_);
}

void TlsSocketStream::expires_never() {
    core_->deadline.expires_never();
}

void TlsSocketStream::close() {
    core_->deadline.cancel();
    error_code ignored;
    core_->socket.close(ignored);
}

boost::system::error_code TlsSocketStream::error_of(Core& core, SSL* ssl, int result) {
    int code = ::SSL_get_error(ssl, result);
    if (code == SSL_ERROR_ZERO_RETURN) return asio::error::eof; // close_notify
    unsigned long err = ::ERR_peek_error();
    if (code == SSL_ERROR_SSL && err != 0 &&
        ERR_GET_REASON(err) != SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ::ERR_clear_error();
        return {static_cast<int>(err), asio::error::get_ssl_category()};
    }
    ::ERR_clear_error();
    if (core.last_errno != 0) return {core.last_errno, boost::system::system_category()};
    // The peer closed the connection without close_notify (what asio calls a truncated stream).
    if (core.eof || code == SSL_ERROR_SSL) return asio::ssl::error::stream_truncated;
    return asio::ssl::error::unspecified_system_error;
}

} // namespace wec::server::detail

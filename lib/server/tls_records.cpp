#include "server/tls_stream_internal.hpp"

#include <algorithm>
#include <boost/asio/error.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <string_view>
#include <sys/socket.h>

namespace wec::server::detail {

namespace {

namespace asio = boost::asio;

constexpr std::size_t kHeader = 5;
constexpr std::size_t kTag = 16;
constexpr std::size_t kMaxPlain = 16384;            // 2^14
constexpr std::size_t kMaxCipher = kMaxPlain + 256; // RFC 8446 5.2
// Read at once when a request arrives: the records after the one being read that are already
// there (a 150 KB body in a few recv, not two per 16 KB record).
constexpr std::size_t kReadAhead = 64 * 1024;
constexpr std::uint8_t kApplicationData = 23, kAlert = 21, kHandshake = 22;
constexpr std::uint8_t kKeyUpdate = 24;

// An OpenSSL-style error of the SSL library (its text is OpenSSL's reason string).
boost::system::error_code ssl_error(int reason) {
    return {static_cast<int>(ERR_PACK(ERR_LIB_SSL, 0, reason)), asio::error::get_ssl_category()};
}

struct CipherCtxFree {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct KdfCtxFree {
    void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};
struct KdfFree {
    void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};

// HKDF-Expand-Label(secret, label, "", length) of RFC 8446 7.1.
bool expand_label(const char* digest, std::span<const std::uint8_t> secret, const char* label,
                  std::span<std::uint8_t> out) {
    std::uint8_t info[2 + 1 + 255 + 1];
    std::size_t label_len = 6 + std::strlen(label);
    if (label_len > 255 || out.size() > 0xffff) return false;
    std::size_t n = 0;
    info[n++] = static_cast<std::uint8_t>(out.size() >> 8);
    info[n++] = static_cast<std::uint8_t>(out.size());
    info[n++] = static_cast<std::uint8_t>(label_len);
    std::memcpy(info + n, "tls13 ", 6);
    std::memcpy(info + n + 6, label, label_len - 6);
    n += label_len;
    info[n++] = 0; // empty context
    std::unique_ptr<EVP_KDF, KdfFree> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
    if (!kdf) return false;
    std::unique_ptr<EVP_KDF_CTX, KdfCtxFree> ctx(EVP_KDF_CTX_new(kdf.get()));
    if (!ctx) return false;
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digest), 0),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
                                          const_cast<std::uint8_t*>(secret.data()), secret.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
        OSSL_PARAM_construct_end()};
    bool ok = EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) == 1;
    OPENSSL_cleanse(info, sizeof info);
    return ok;
}

} // namespace

bool own_tls_records() {
    const char* v = std::getenv("WEC_TLS_RECORDS");
    return v == nullptr || std::string_view(v) != "openssl";
}

TlsRecords::~TlsRecords() {
    OPENSSL_cleanse(&read_, sizeof read_);
    OPENSSL_cleanse(&write_, sizeof write_);
    if (!out_.empty()) OPENSSL_cleanse(out_.data(), out_.size());
    release_in();
}

std::unique_ptr<TlsRecords> TlsRecords::take_over(SSL* ssl, std::span<const std::uint8_t> client,
                                                  std::span<const std::uint8_t> server) {
    if (!ssl || !SSL_is_init_finished(ssl) || SSL_version(ssl) != TLS1_3_VERSION ||
        SSL_has_pending(ssl) || SSL_get_shutdown(ssl) != 0)
        return nullptr;
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
    if (!cipher) return nullptr;
    // The client's secret opens what we read, the server's seals what we write.
    return from_secrets(static_cast<std::uint16_t>(SSL_CIPHER_get_id(cipher) & 0xffff), client,
                        server);
}

std::unique_ptr<TlsRecords> TlsRecords::from_secrets(std::uint16_t cipher,
                                                     std::span<const std::uint8_t> read,
                                                     std::span<const std::uint8_t> write) {
    auto records = std::unique_ptr<TlsRecords>(new TlsRecords());
    switch (cipher) {
    case 0x1301: // TLS_AES_128_GCM_SHA256
        records->suite_ = Suite::Aes128Gcm;
        records->hash_len_ = 32;
        records->key_len_ = 16;
        break;
    case 0x1302: // TLS_AES_256_GCM_SHA384
        records->suite_ = Suite::Aes256Gcm;
        records->hash_len_ = 48;
        records->key_len_ = 32;
        break;
    case 0x1303: // TLS_CHACHA20_POLY1305_SHA256
        records->suite_ = Suite::Chacha20Poly1305;
        records->hash_len_ = 32;
        records->key_len_ = 32;
        break;
    default:
        return nullptr;
    }
    if (read.size() != records->hash_len_ || write.size() != records->hash_len_) return nullptr;
    // Fetched once per connection: a legacy EVP_aes_*_gcm() is fetched again at every init.
    records->cipher_.reset(EVP_CIPHER_fetch(nullptr,
                                            records->suite_ == Suite::Aes128Gcm ? "AES-128-GCM"
                                            : records->suite_ == Suite::Aes256Gcm
                                                ? "AES-256-GCM"
                                                : "ChaCha20-Poly1305",
                                            nullptr));
    if (!records->cipher_) return nullptr;
    std::copy(read.begin(), read.end(), records->read_.secret.begin());
    std::copy(write.begin(), write.end(), records->write_.secret.begin());
    if (!records->derive(records->read_) || !records->derive(records->write_)) return nullptr;
    return records;
}

const char* TlsRecords::digest() const {
    return hash_len_ == 48 ? "SHA384" : "SHA256";
}

bool TlsRecords::derive(Direction& d) const {
    d.seq = 0;
    return expand_label(digest(), {d.secret.data(), hash_len_}, "key", {d.key.data(), key_len_}) &&
           expand_label(digest(), {d.secret.data(), hash_len_}, "iv", d.iv);
}

bool TlsRecords::update(Direction& d) const {
    std::array<std::uint8_t, 48> next{};
    bool ok = expand_label(digest(), {d.secret.data(), hash_len_}, "traffic upd",
                           {next.data(), hash_len_});
    if (ok)
        std::copy(next.begin(), next.begin() + static_cast<std::ptrdiff_t>(hash_len_),
                  d.secret.begin());
    OPENSSL_cleanse(next.data(), next.size());
    return ok && derive(d);
}

// Seals or opens one record: `len` bytes (plaintext or ciphertext) from `in` to `out` (the same
// place, or a buffer that does not overlap it), the tag after the input, the header as additional
// data. The nonce is the IV xor the record's sequence number, which then advances (a nonce is
// never used twice with one key).
bool TlsRecords::crypt(Direction& d, bool seal, const std::uint8_t* header, const std::uint8_t* in,
                       std::uint8_t* out, std::size_t len, std::uint8_t* tag) {
    if (d.seq == UINT64_MAX) return false; // RFC 8446 5.3: rekey or close; we close
    std::array<std::uint8_t, 12> nonce = d.iv;
    for (int i = 0; i < 8; ++i)
        nonce[11 - static_cast<std::size_t>(i)] ^= static_cast<std::uint8_t>(d.seq >> (8 * i));
    ++d.seq;
    std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx(EVP_CIPHER_CTX_new());
    int done = 0;
    bool ok = ctx && EVP_CipherInit_ex(ctx.get(), cipher_.get(), nullptr, d.key.data(),
                                       nonce.data(), seal ? 1 : 0) == 1;
    ok = ok && EVP_CipherUpdate(ctx.get(), nullptr, &done, header, kHeader) == 1;
    ok = ok && EVP_CipherUpdate(ctx.get(), out, &done, in, static_cast<int>(len)) == 1;
    if (ok && !seal) ok = EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kTag, tag) == 1;
    int last = 0;
    ok = ok && EVP_CipherFinal_ex(ctx.get(), out + done, &last) == 1;
    if (ok && seal) ok = EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kTag, tag) == 1;
    OPENSSL_cleanse(nonce.data(), nonce.size());
    return ok;
}

void TlsRecords::seal(std::uint8_t type, const std::uint8_t* data, std::size_t len) {
    std::size_t at = out_.size();
    std::size_t body = len + 1 + kTag;
    out_.resize(at + kHeader + body);
    std::uint8_t* h = out_.data() + at;
    h[0] = kApplicationData;
    h[1] = 0x03;
    h[2] = 0x03;
    h[3] = static_cast<std::uint8_t>(body >> 8);
    h[4] = static_cast<std::uint8_t>(body);
    if (len) std::memcpy(h + kHeader, data, len);
    h[kHeader + len] = type;
    sealed_ok_ = sealed_ok_ &&
                 crypt(write_, true, h, h + kHeader, h + kHeader, len + 1, h + kHeader + len + 1);
}

std::vector<std::uint8_t> TlsRecords::seal_inner(std::span<const std::uint8_t> inner) {
    std::vector<std::uint8_t> record(kHeader + inner.size() + kTag);
    std::uint8_t* h = record.data();
    std::size_t body = inner.size() + kTag;
    h[0] = kApplicationData;
    h[1] = 0x03;
    h[2] = 0x03;
    h[3] = static_cast<std::uint8_t>(body >> 8);
    h[4] = static_cast<std::uint8_t>(body);
    if (!inner.empty()) std::memcpy(h + kHeader, inner.data(), inner.size());
    if (!crypt(write_, true, h, h + kHeader, h + kHeader, inner.size(), h + kHeader + inner.size()))
        record.clear();
    return record;
}

void TlsRecords::release_in() {
    if (plain_start_ < plain_end_)
        OPENSSL_cleanse(in_.get() + plain_start_, plain_end_ - plain_start_);
    in_.reset();
    in_cap_ = in_begin_ = in_end_ = 0;
    plain_start_ = plain_begin_ = plain_end_ = 0;
}

// Reads what has arrived into in_ (at least `want` bytes fit, and up to kReadAhead: the records
// after this one that are already there). Done when some bytes came; WantRead when none are
// there, holding no more than the part of a record read so far (read() frees an empty buffer).
TlsRecords::Status TlsRecords::fill(int fd, std::size_t want, boost::system::error_code& ec) {
    const std::size_t have = in_end_ - in_begin_;
    if (in_begin_ != 0 && have != 0) std::memmove(in_.get(), in_.get() + in_begin_, have);
    in_begin_ = 0;
    in_end_ = have;
    const std::size_t cap = std::max(want, kReadAhead);
    if (in_cap_ < cap) {
        auto bigger = std::make_unique_for_overwrite<std::uint8_t[]>(cap);
        if (have != 0) std::memcpy(bigger.get(), in_.get(), have);
        in_ = std::move(bigger);
        in_cap_ = cap;
    }
    for (;;) {
        auto got = ::recv(fd, in_.get() + in_end_, in_cap_ - in_end_, 0);
        if (got > 0) {
            in_end_ += static_cast<std::size_t>(got);
            return Status::Done;
        }
        if (got == 0) { // closed without close_notify
            ec = asio::ssl::error::stream_truncated;
            return Status::Failed;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (have != 0 && in_cap_ > want) { // the part of the record read so far, no more room
                auto part = std::make_unique_for_overwrite<std::uint8_t[]>(want);
                std::memcpy(part.get(), in_.get(), have);
                in_ = std::move(part);
                in_cap_ = want;
            }
            return Status::WantRead;
        }
        ec = {errno, boost::system::system_category()};
        return Status::Failed;
    }
}

TlsRecords::Status TlsRecords::read(int fd, void* data, std::size_t size, std::size_t& n,
                                    boost::system::error_code& ec) {
    n = 0;
    if (read_failed_) {
        ec = read_failed_;
        return Status::Failed;
    }
    auto status = read_records(fd, data, size, n, ec);
    if (status == Status::Failed) {
        read_failed_ = ec;
        fatal_ = ec != asio::error::eof;
        release_in();
        send_fatal_alert(fd, ec);
        // The records before the one that failed are the caller's: this read returns them and
        // the next one the failure (sticky).
        if (n > 0) {
            ec = {};
            return Status::Done;
        }
    } else if (in_begin_ == in_end_ && plain_begin_ == plain_end_) {
        release_in(); // nothing left in it: no buffer between reads
    }
    return status;
}

// RFC 8446 6.2: a record refused is answered with the fatal alert that names why (as OpenSSL
// would), sealed and sent once without waiting (the connection is closed next); not when the peer
// sent an alert or closed, nor while a record of ours is still being sent.
void TlsRecords::send_fatal_alert(int fd, const boost::system::error_code& ec) {
    if (ec.category() != asio::error::get_ssl_category() || !out_.empty()) return;
    int alert = 0;
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
        alert = SSL_AD_BAD_RECORD_MAC;
        break;
    case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
    case SSL_R_DATA_LENGTH_TOO_LONG:
        alert = SSL_AD_RECORD_OVERFLOW;
        break;
    case SSL_R_BAD_LENGTH:
    case SSL_R_INVALID_ALERT:
        alert = SSL_AD_DECODE_ERROR;
        break;
    case SSL_R_UNEXPECTED_MESSAGE:
    case SSL_R_UNEXPECTED_RECORD:
    case SSL_R_TOO_MANY_WARN_ALERTS:
    case SSL_R_RECORD_TOO_SMALL:
        alert = SSL_AD_UNEXPECTED_MESSAGE;
        break;
    case SSL_R_BAD_KEY_UPDATE:
        alert = SSL_AD_ILLEGAL_PARAMETER;
        break;
    default:
        return; // an alert of the peer's, or our own failure
    }
    const std::uint8_t body[2] = {SSL3_AL_FATAL, static_cast<std::uint8_t>(alert)};
    sealed_ok_ = true;
    seal(kAlert, body, sizeof body);
    if (sealed_ok_) (void)::send(fd, out_.data(), out_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    std::vector<std::uint8_t>().swap(out_);
}

TlsRecords::Status TlsRecords::read_records(int fd, void* data, std::size_t size, std::size_t& n,
                                            boost::system::error_code& ec) {
    auto* const dst = static_cast<std::uint8_t*>(data);
    for (;;) {
        if (plain_begin_ < plain_end_) { // the rest of a record opened in place
            const std::size_t k = std::min(size - n, plain_end_ - plain_begin_);
            std::memcpy(dst + n, in_.get() + plain_begin_, k);
            n += k;
            plain_begin_ += k;
            if (plain_begin_ < plain_end_) return Status::Done; // the caller's buffer is full
            OPENSSL_cleanse(in_.get() + plain_start_, plain_end_ - plain_start_);
            plain_start_ = plain_begin_ = plain_end_ = 0;
        }
        if (n == size) return Status::Done;
        // The next record's header, checked as soon as it is there; then the whole record.
        const std::size_t buffered = in_end_ - in_begin_;
        std::size_t want = kHeader;
        if (buffered >= kHeader) {
            const std::uint8_t* h = in_.get() + in_begin_;
            if (h[0] != kApplicationData) {
                ec = ssl_error(SSL_R_UNEXPECTED_RECORD);
                return Status::Failed;
            }
            const std::size_t len = std::size_t{h[3]} << 8 | h[4];
            if (len > kMaxCipher || len < 1 + kTag) {
                ec = ssl_error(len > kMaxCipher ? SSL_R_ENCRYPTED_LENGTH_TOO_LONG
                                                : SSL_R_BAD_LENGTH);
                return Status::Failed;
            }
            want = kHeader + len;
        }
        if (buffered < want) {
            if (n > 0) return Status::Done; // what the whole records gave; more on the next read
            const Status status = fill(fd, want, ec);
            if (status != Status::Done) return status;
            continue;
        }
        // One whole record: opened straight into the caller's buffer when its inner plaintext
        // fits there (no copy, no plaintext left in ours), else in place.
        std::uint8_t* const record = in_.get() + in_begin_;
        in_begin_ += want;
        std::size_t len = want - kHeader - kTag;
        const bool direct = size - n >= len;
        std::uint8_t* const body = direct ? dst + n : record + kHeader;
        if (!crypt(read_, false, record, record + kHeader, body, len, record + kHeader + len)) {
            ec = ssl_error(SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC);
            return Status::Failed;
        }
        if (!direct) {
            plain_start_ = plain_begin_ = plain_end_ = static_cast<std::size_t>(body - in_.get());
            plain_end_ += len; // cleansed once taken, whatever it holds
        }
        // RFC 8446 5.4: the inner plaintext (content, type, padding) is at most 2^14 + 1 bytes;
        // its type is the last non-zero byte, and a record of zeros only has none.
        if (len > kMaxPlain + 1) {
            ec = ssl_error(SSL_R_DATA_LENGTH_TOO_LONG); // record_overflow
            return Status::Failed;
        }
        while (len > 0 && body[len - 1] == 0) // padding
            --len;
        if (len == 0) {
            ec = ssl_error(SSL_R_UNEXPECTED_MESSAGE);
            return Status::Failed;
        }
        std::uint8_t type = body[--len];
        if (!direct) { // the caller takes application data from there; nothing else
            if (type == kApplicationData && len > 0)
                plain_end_ = plain_begin_ + len;
            else
                plain_start_ = plain_begin_ = plain_end_ = 0;
        }
        if (partial_handshake_ != 0 && type != kHandshake) {
            // RFC 8446 5.1: the pieces of a handshake message are not interleaved with other
            // record types.
            ec = ssl_error(SSL_R_UNEXPECTED_MESSAGE);
            return Status::Failed;
        }
        if (type != kAlert && len > 0) warn_alerts_ = 0; // as OpenSSL counts them
        if (type == kApplicationData && len > 0) {
            empty_records_ = 0;
            if (direct) n += len;
            continue;
        }
        if ((type == kApplicationData || type == kHandshake) &&
            ++empty_records_ > kMaxEmptyRecords) {
            ec = ssl_error(SSL_R_RECORD_TOO_SMALL); // as OpenSSL after 32 empty records
            return Status::Failed;
        }
        if (type == kApplicationData) continue; // empty: the next record
        if (type == kAlert) {
            // RFC 8446 6: close_notify ends the stream (as asio's SSL stream reports it);
            // user_canceled is ignored, as OpenSSL does, up to kMaxWarnAlerts in a row; any other
            // alert is fatal, whatever its level.
            if (len != 2) {
                ec = ssl_error(SSL_R_INVALID_ALERT);
                return Status::Failed;
            }
            if (body[1] == SSL_AD_USER_CANCELLED) {
                if (++warn_alerts_ == kMaxWarnAlerts) {
                    ec = ssl_error(SSL_R_TOO_MANY_WARN_ALERTS);
                    return Status::Failed;
                }
                continue;
            }
            ec = body[1] == SSL_AD_CLOSE_NOTIFY ? boost::system::error_code(asio::error::eof)
                                                : ssl_error(SSL_AD_REASON_OFFSET + body[1]);
            return Status::Failed;
        }
        if (type == kHandshake) {
            // After the handshake a client may only send KeyUpdate (no post-handshake
            // authentication is asked for, no tickets are sent). RFC 8446 5.1: a handshake
            // message may be split over several records (nothing else between them: see
            // above), and one that precedes a key change must end its record. Anything else
            // (NewSessionTicket, Certificate, a second message, bytes after the KeyUpdate) is
            // refused.
            static constexpr std::uint8_t kKeyUpdateHeader[4] = {kKeyUpdate, 0, 0, 1};
            const std::size_t have = partial_handshake_;
            if (len == 0 || have + len > 5) { // 5.1: no empty handshake records either
                ec = ssl_error(SSL_R_UNEXPECTED_MESSAGE);
                return Status::Failed;
            }
            for (std::size_t i = 0; i < len && have + i < 4; ++i) {
                if (body[i] != kKeyUpdateHeader[have + i]) {
                    ec = ssl_error(SSL_R_UNEXPECTED_MESSAGE);
                    return Status::Failed;
                }
            }
            if (have + len < 5) { // a piece: the rest follows in the next handshake record
                partial_handshake_ = static_cast<std::uint8_t>(have + len);
                continue;
            }
            partial_handshake_ = 0;
            const std::uint8_t value = body[len - 1];
            if (value > 1 || !update(read_)) { // 4.6.3: update_not_requested or _requested
                ec = ssl_error(SSL_R_BAD_KEY_UPDATE);
                return Status::Failed;
            }
            if (value == 1) key_update_due_ = true; // update_requested
            continue;
        }
        // change_cipher_spec (only allowed during the handshake) and unknown types.
        ec = ssl_error(SSL_R_UNEXPECTED_RECORD);
        return Status::Failed;
    }
}

TlsRecords::Status TlsRecords::write(int fd, const void* data, std::size_t size, std::size_t& n,
                                     boost::system::error_code& ec) {
    n = 0;
    if (fatal_) {
        ec = read_failed_;
        return Status::Failed;
    }
    if (out_.empty()) {
        sealed_ok_ = true;
        // RFC 8446 5.5: an AES-GCM key seals at most 2^24.5 records; ours changes before.
        if (suite_ != Suite::Chacha20Poly1305 && write_.seq >= kGcmRecordsPerKey)
            key_update_due_ = true;
        if (key_update_due_) {
            // Our KeyUpdate (update_not_requested), under the old key, then the new key.
            const std::uint8_t key_update[5] = {kKeyUpdate, 0, 0, 1, 0};
            seal(kHandshake, key_update, sizeof key_update);
            sealed_ok_ = sealed_ok_ && update(write_);
            key_update_due_ = false;
        }
        out_plain_ = std::min(size, kMaxPlain);
        seal(kApplicationData, static_cast<const std::uint8_t*>(data), out_plain_);
        out_sent_ = 0;
        if (!sealed_ok_) {
            OPENSSL_cleanse(out_.data(), out_.size());
            std::vector<std::uint8_t>().swap(out_);
            ec = ssl_error(ERR_R_INTERNAL_ERROR);
            return Status::Failed;
        }
    }
    while (out_sent_ < out_.size()) {
        auto sent = ::send(fd, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
        if (sent >= 0) {
            out_sent_ += static_cast<std::size_t>(sent);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::WantWrite;
        ec = {errno, boost::system::system_category()};
        return Status::Failed;
    }
    std::vector<std::uint8_t>().swap(out_);
    out_sent_ = 0;
    n = out_plain_;
    return Status::Done;
}

} // namespace wec::server::detail

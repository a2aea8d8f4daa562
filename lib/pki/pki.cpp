#include "pki/pki.hpp"

#include "common/files.hpp"
#include "common/handle.hpp"
#include "common/openssl.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace wec::pki {
namespace {

namespace fs = std::filesystem;

// ---- RAII owners for OpenSSL handles --------------------------------------------------------

using PkeyPtr = Handle<EVP_PKEY, EVP_PKEY_free>;
using X509Ptr = Handle<X509, X509_free>;
using NamePtr = Handle<X509_NAME, X509_NAME_free>;
using ExtPtr = Handle<X509_EXTENSION, X509_EXTENSION_free>;
using P12Ptr = Handle<PKCS12, PKCS12_free>;
using BioPtr = Handle<BIO, BIO_free_all>;
using BnPtr = Handle<BIGNUM, BN_free>;
using GenNamesPtr = Handle<GENERAL_NAMES, GENERAL_NAMES_free>;
using GenNamePtr = Handle<GENERAL_NAME, GENERAL_NAME_free>;
using EkuPtr = Handle<EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free>;
using AsnTimePtr = Handle<ASN1_TIME, ASN1_TIME_free>;

struct OsslFree {
    void operator()(void* p) const noexcept { OPENSSL_free(p); }
};
struct X509StackFree { // a stack that does not own its certificates
    void operator()(STACK_OF(X509) * s) const noexcept { sk_X509_free(s); }
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackFree>;

// ---- errors ----------------------------------------------------------------------------------

[[noreturn]] void fail(const std::string& what, PkiError::Kind kind = PkiError::Kind::Runtime) {
    std::string queue = openssl::errors();
    throw PkiError(queue.empty() ? what : what + " (OpenSSL: " + queue + ")", kind);
}

[[noreturn]] void bad_input(const std::string& what) {
    throw PkiError(what, PkiError::Kind::Input);
}

// ---- small helpers ---------------------------------------------------------------------------

std::string thumbprint(const X509* cert) {
    auto hex = openssl::sha1_thumbprint(cert);
    if (hex.empty()) fail("cannot compute a SHA-1 thumbprint");
    return hex;
}

std::string bio_string(BIO* bio) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

BioPtr mem_bio() {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio) fail("out of memory (BIO)");
    return bio;
}

std::string cert_pem(X509* cert) {
    auto bio = mem_bio();
    if (!PEM_write_bio_X509(bio.get(), cert)) fail("cannot encode a certificate as PEM");
    return bio_string(bio.get());
}

std::string key_pem(EVP_PKEY* key) {
    auto bio = mem_bio();
    if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr))
        fail("cannot encode a private key as PEM");
    return bio_string(bio.get());
}

std::string path_in(const std::string& dir, const std::string& file) {
    return (fs::path(dir) / file).string();
}

bool exists(const std::string& path) {
    std::error_code ec;
    return fs::symlink_status(path, ec).type() != fs::file_type::not_found && !ec;
}

// Writes through a temporary file in the same directory and renames it over `path`, so that a
// reader never sees half a key and the mode is right from the first byte (mkstemp creates 0600).
void write_atomic(const std::string& path, std::string_view data, mode_t mode) {
    std::string tmpl = path + ".tmp.XXXXXX";
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back('\0');
    UniqueFd fd(::mkstemp(name.data()));
    if (!fd) throw PkiError("cannot create " + path + ": " + std::strerror(errno));
    std::string tmp(name.data());
    auto bail = [&](const char* what) {
        int err = errno;
        ::unlink(tmp.c_str());
        throw PkiError(std::string("cannot ") + what + " " + path + ": " + std::strerror(err));
    };
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) bail("write");
        done += static_cast<std::size_t>(n);
    }
    if (::fchmod(fd.get(), mode) != 0) bail("set the mode of");
    if (::fsync(fd.get()) != 0) bail("flush");
    if (::rename(tmp.c_str(), path.c_str()) != 0) bail("rename a temporary file to");
}

void ensure_dir(const std::string& dir) {
    std::error_code ec;
    if (fs::is_directory(dir, ec)) return;
    if (exists(dir)) bad_input(dir + " exists and is not a directory");
    fs::create_directories(dir, ec);
    if (ec) throw PkiError("cannot create directory " + dir + ": " + ec.message());
    fs::permissions(dir, fs::perms::owner_all, ec); // holds CA and server keys
    if (ec) throw PkiError("cannot set the mode of " + dir + ": " + ec.message());
}

// Host names: letters, digits, '-', '_' and '.', labels of 1..63, at most 64 characters in all
// (the limit of a certificate's common name, which holds it).
void check_host_name(const std::string& name, const char* what) {
    if (name.empty()) bad_input(std::string(what) + " is empty");
    if (name.size() > 64)
        bad_input(std::string(what) + " '" + name +
                  "' is longer than 64 characters, the limit of a certificate common name");
    std::size_t label = 0;
    for (std::size_t i = 0; i <= name.size(); ++i) {
        char c = i < name.size() ? name[i] : '.';
        if (c == '.') {
            if (label == 0 || name[i - label] == '-' || name[i - 1] == '-')
                bad_input(std::string(what) + " '" + name +
                          "' is not a valid DNS name (empty label, or a label that starts or "
                          "ends with '-')");
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok)
            bad_input(std::string(what) + " '" + name + "' is not a valid DNS name: character '" +
                      std::string(1, c) + "' is not allowed (use letters, digits, '-' and '.')");
        if (++label > 63)
            bad_input(std::string(what) + " '" + name + "' has a label longer than 63 characters");
    }
}

bool is_ip_address(const std::string& text) {
    unsigned char buf[16];
    return ::inet_pton(AF_INET, text.c_str(), buf) == 1 ||
           ::inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

// wec::read_file, with the error re-thrown as a pki::PkiError.
std::vector<std::uint8_t> read_bytes(const std::string& path) {
    try {
        return read_file(path);
    } catch (const PkiError&) {
        throw;
    } catch (const wec::Error& e) {
        throw PkiError(e.what(), PkiError::Kind::Input);
    }
}

// ---- keys and certificates -------------------------------------------------------------------

PkeyPtr generate_key(KeyType type) {
    EVP_PKEY* key = nullptr;
    switch (type) {
    case KeyType::EcP384:
        key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
        break;
    case KeyType::EcP256:
        key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
        break;
    case KeyType::Rsa2048:
        key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048});
        break;
    case KeyType::Rsa3072:
        key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{3072});
        break;
    case KeyType::Rsa4096:
        key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{4096});
        break;
    }
    if (!key) fail("cannot generate a " + std::string(to_string(type)) + " key");
    return PkeyPtr(key);
}

bool is_rsa(EVP_PKEY* key) {
    return EVP_PKEY_is_a(key, "RSA") == 1;
}

// The signature hash matching the issuer key's strength: SHA-384 for P-384, SHA-512 for P-521.
const EVP_MD* digest_for(EVP_PKEY* issuer_key) {
    if (EVP_PKEY_is_a(issuer_key, "EC") == 1) {
        int bits = EVP_PKEY_get_bits(issuer_key);
        if (bits > 384) return EVP_sha512();
        if (bits > 256) return EVP_sha384();
    }
    return EVP_sha256();
}

NamePtr make_name(const std::string& cn, const std::string& org) {
    NamePtr name(X509_NAME_new());
    if (!name) fail("out of memory (X509_NAME)");
    auto add = [&](const char* field, const std::string& value) {
        if (!X509_NAME_add_entry_by_txt(name.get(), field, MBSTRING_UTF8,
                                        reinterpret_cast<const unsigned char*>(value.c_str()), -1,
                                        -1, 0))
            fail(std::string("cannot set ") + field + "=" + value + " in a certificate name");
    };
    if (!org.empty()) add("O", org);
    add("CN", cn);
    return name;
}

GenNamesPtr make_san(const std::vector<std::string>& dns, const std::vector<std::string>& ips) {
    GenNamesPtr names(GENERAL_NAMES_new());
    if (!names) fail("out of memory (GENERAL_NAMES)");
    auto add = [&](int type, const std::string& value) {
        GenNamePtr gn(a2i_GENERAL_NAME(nullptr, nullptr, nullptr, type, value.c_str(), 0));
        if (!gn) fail("cannot encode subjectAltName entry " + value);
        if (!sk_GENERAL_NAME_push(names.get(), gn.get())) fail("out of memory (subjectAltName)");
        gn.release();
    };
    for (const auto& d : dns)
        add(GEN_DNS, d);
    for (const auto& ip : ips)
        add(GEN_IPADD, ip);
    return names;
}

struct CertSpec {
    const X509_NAME* subject = nullptr;
    EVP_PKEY* subject_key = nullptr;
    X509* issuer = nullptr; // nullptr: self-signed
    EVP_PKEY* issuer_key = nullptr;
    Validity validity;
    std::vector<std::pair<int, std::string>> extensions; // nid, OpenSSL config value
    GENERAL_NAMES* san = nullptr;
};

X509Ptr make_cert(const CertSpec& spec) {
    if (spec.validity.days <= 0) bad_input("certificate validity must be at least one day");
    X509Ptr cert(X509_new());
    if (!cert) fail("out of memory (X509)");
    if (!X509_set_version(cert.get(), X509_VERSION_3)) fail("cannot set the certificate version");

    // 159 random bits with the top bit set: positive, non-zero, 20 bytes in DER (RFC 5280 limit).
    BnPtr bn(BN_new());
    if (!bn || !BN_rand(bn.get(), 159, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) ||
        !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())))
        fail("cannot make a random serial number");

    std::time_t now = std::time(nullptr);
    std::time_t not_before = spec.validity.not_before ? *spec.validity.not_before : now - 3600;
    std::time_t start = spec.validity.not_before ? *spec.validity.not_before : now;
    std::time_t not_after = start + static_cast<std::time_t>(spec.validity.days) * 86400;
    if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), not_before) ||
        !ASN1_TIME_set(X509_getm_notAfter(cert.get()), not_after))
        fail("cannot set the validity period");

    if (!X509_set_subject_name(cert.get(), spec.subject) ||
        !X509_set_issuer_name(cert.get(),
                              spec.issuer ? X509_get_subject_name(spec.issuer) : spec.subject) ||
        !X509_set_pubkey(cert.get(), spec.subject_key))
        fail("cannot set the certificate names or key");

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, spec.issuer ? spec.issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    for (const auto& [nid, value] : spec.extensions) {
        ExtPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
        if (!ext || !X509_add_ext(cert.get(), ext.get(), -1))
            fail(std::string("cannot add the ") + OBJ_nid2sn(nid) + " extension '" + value + "'");
    }
    if (spec.san &&
        !X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, spec.san, 0, X509V3_ADD_DEFAULT))
        fail("cannot add the subjectAltName extension");

    if (X509_sign(cert.get(), spec.issuer_key, digest_for(spec.issuer_key)) <= 0)
        fail("cannot sign the certificate");
    return cert;
}

std::string leaf_key_usage(EVP_PKEY* key) {
    return is_rsa(key) ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature";
}

// ---- reading ---------------------------------------------------------------------------------

bool looks_like_pem(std::span<const std::uint8_t> data) {
    return as_chars(data).find("-----BEGIN") != std::string_view::npos;
}

// Every certificate of a PEM blob (other PEM blocks are skipped), or the one of a DER blob.
std::vector<X509Ptr> parse_certs(std::span<const std::uint8_t> data) {
    std::vector<X509Ptr> out;
    if (data.size() > static_cast<std::size_t>(INT32_MAX)) return out;
    if (looks_like_pem(data)) {
        BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
        if (!bio) fail("out of memory (BIO)");
        while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
            out.emplace_back(x);
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
            ERR_clear_error(); // the normal end of the file
    } else {
        const unsigned char* p = data.data();
        if (X509* x = d2i_X509(nullptr, &p, static_cast<long>(data.size()))) out.emplace_back(x);
    }
    return out;
}

X509Ptr read_cert(const std::string& path) {
    auto data = read_bytes(path);
    ERR_clear_error();
    auto certs = parse_certs(data);
    if (certs.empty()) fail("no certificate in " + path, PkiError::Kind::Input);
    return std::move(certs.front());
}

PkeyPtr read_key(const std::string& path) {
    auto data = read_bytes(path);
    if (data.size() > (1u << 20)) bad_input(path + " is too large for a private key");
    ERR_clear_error();
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    if (!bio) fail("out of memory (BIO)");
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>(""));
    if (!key)
        fail("cannot read the private key in " + path + " (unencrypted PEM expected)",
             PkiError::Kind::Input);
    return PkeyPtr(key);
}

std::string name_text(const X509_NAME* name) {
    auto bio = mem_bio();
    if (X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) fail("cannot print a name");
    return bio_string(bio.get());
}

std::time_t to_time(const ASN1_TIME* t) {
    std::tm tm{};
    if (!ASN1_TIME_to_tm(t, &tm)) fail("invalid certificate time");
    return ::timegm(&tm);
}

std::string iso(std::time_t t) {
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string random_password(std::size_t length) {
    // No look-alikes (0/O, 1/l/I) and nothing a shell or certutil would interpret.
    static constexpr std::string_view alphabet =
        "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    std::string out;
    while (out.size() < length) {
        unsigned char buf[64];
        if (RAND_bytes(buf, sizeof buf) != 1) fail("cannot generate a random password");
        for (unsigned char b : buf) {
            // Rejection sampling: keep the distribution uniform.
            if (b >= 256 - 256 % alphabet.size()) continue;
            out.push_back(alphabet[b % alphabet.size()]);
            if (out.size() == length) break;
        }
    }
    return out;
}

std::string first_dns_name(X509* cert) {
    GenNamesPtr names(static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    if (!names) return {};
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
        if (gn->type == GEN_DNS)
            return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                               static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName)));
    }
    return {};
}

CertInfo describe(X509* cert, const std::string& file, std::time_t now, int warn_days) {
    CertInfo info;
    info.file = file;
    info.subject = name_text(X509_get_subject_name(cert));
    info.issuer = name_text(X509_get_issuer_name(cert));
    BnPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
    if (!serial) fail("cannot read the serial number in " + file);
    std::unique_ptr<char, OsslFree> hex(BN_bn2hex(serial.get()));
    if (!hex) fail("out of memory (serial)");
    info.serial = hex.get();
    std::time_t nb = to_time(X509_get0_notBefore(cert));
    std::time_t na = to_time(X509_get0_notAfter(cert));
    info.not_before = iso(nb);
    info.not_after = iso(na);
    info.thumbprint = thumbprint(cert);

    EkuPtr eku(static_cast<EXTENDED_KEY_USAGE*>(
        X509_get_ext_d2i(cert, NID_ext_key_usage, nullptr, nullptr)));
    if (eku) {
        for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
            const ASN1_OBJECT* obj = sk_ASN1_OBJECT_value(eku.get(), i);
            int nid = OBJ_obj2nid(obj);
            if (nid != NID_undef) {
                info.ekus.emplace_back(OBJ_nid2sn(nid));
            } else {
                char buf[128];
                OBJ_obj2txt(buf, sizeof buf, obj, 1);
                info.ekus.emplace_back(buf);
            }
        }
    }
    GenNamesPtr names(static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    if (names) {
        for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
            const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
            if (gn->type == GEN_DNS) {
                info.dns_names.emplace_back(
                    reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                    static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName)));
            } else if (gn->type == GEN_IPADD) {
                int len = ASN1_STRING_length(gn->d.iPAddress);
                const unsigned char* p = ASN1_STRING_get0_data(gn->d.iPAddress);
                char buf[INET6_ADDRSTRLEN] = {};
                if (len == 4) ::inet_ntop(AF_INET, p, buf, sizeof buf);
                if (len == 16) ::inet_ntop(AF_INET6, p, buf, sizeof buf);
                if (buf[0]) info.ip_addresses.emplace_back(buf);
            }
        }
    }
    info.is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;

    std::int64_t left = static_cast<std::int64_t>(na) - static_cast<std::int64_t>(now);
    info.days_left = left >= 0 ? (left + 86399) / 86400 : -((-left + 86399) / 86400);
    if (na < now)
        info.expiry = Expiry::Expired;
    else if (nb > now)
        info.expiry = Expiry::NotYetValid;
    else if (left < static_cast<std::int64_t>(warn_days) * 86400)
        info.expiry = Expiry::ExpiresSoon;
    ERR_clear_error();
    return info;
}

} // namespace

// ---- public API ------------------------------------------------------------------------------

std::string_view to_string(KeyType type) {
    switch (type) {
    case KeyType::EcP384:
        return "p384";
    case KeyType::EcP256:
        return "p256";
    case KeyType::Rsa2048:
        return "rsa2048";
    case KeyType::Rsa3072:
        return "rsa3072";
    case KeyType::Rsa4096:
        return "rsa4096";
    }
    return "?";
}

KeyType parse_key_type(std::string_view text) {
    std::string t(text);
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
    t.erase(std::remove(t.begin(), t.end(), '-'), t.end());
    if (t == "p384" || t == "ec" || t == "ecp384" || t == "ecdsa") return KeyType::EcP384;
    if (t == "p256" || t == "ecp256") return KeyType::EcP256;
    if (t == "rsa" || t == "rsa2048") return KeyType::Rsa2048;
    if (t == "rsa3072") return KeyType::Rsa3072;
    if (t == "rsa4096") return KeyType::Rsa4096;
    bad_input("unknown key type '" + std::string(text) +
              "': use p384, p256, rsa2048, rsa3072 or rsa4096");
}

KeyType rsa_key_type(int bits) {
    switch (bits) {
    case 2048:
        return KeyType::Rsa2048;
    case 3072:
        return KeyType::Rsa3072;
    case 4096:
        return KeyType::Rsa4096;
    default:
        bad_input("unsupported RSA key size " + std::to_string(bits) + ": use 2048, 3072 or 4096");
    }
}

std::string_view to_string(Expiry e) {
    switch (e) {
    case Expiry::Ok:
        return "ok";
    case Expiry::ExpiresSoon:
        return "expires-soon";
    case Expiry::Expired:
        return "expired";
    case Expiry::NotYetValid:
        return "not-yet-valid";
    }
    return "?";
}

std::string gpo_string(std::string_view fqdn, std::string_view issuer_thumbprint, int port) {
    return "Server=HTTPS://" + std::string(fqdn) + ":" + std::to_string(port) +
           "/wsman/,Refresh=60,IssuerCA=" + std::string(issuer_thumbprint);
}

InitResult init(const std::string& dir, const std::string& fqdn, const InitOptions& options) {
    check_host_name(fqdn, "host name");
    for (const auto& d : options.dns_names)
        check_host_name(d, "DNS name");
    for (const auto& ip : options.ip_addresses)
        if (!is_ip_address(ip)) bad_input("'" + ip + "' is not an IPv4 or IPv6 address");
    if (options.port <= 0 || options.port > 65535)
        bad_input("port " + std::to_string(options.port) + " is out of range");

    InitResult r;
    r.ca_cert = path_in(dir, "ca.pem");
    r.ca_key = path_in(dir, "ca.key");
    r.server_cert = path_in(dir, "server.pem");
    r.server_key = path_in(dir, "server.key");
    if (!options.force) {
        for (const auto* p : {&r.ca_cert, &r.ca_key, &r.server_cert, &r.server_key})
            if (exists(*p))
                bad_input(dir + " already holds a PKI (" + *p +
                          " exists); use --force to replace it (client certificates issued by "
                          "the old CA then stop working), or choose another --dir");
    }
    ensure_dir(dir);
    ERR_clear_error();

    // The CA.
    auto ca_key = generate_key(options.key);
    std::string ca_cn = "wec CA " + fqdn;
    if (ca_cn.size() > 64) ca_cn.resize(64);
    auto ca_name = make_name(ca_cn, "wec");
    CertSpec ca_spec;
    ca_spec.subject = ca_name.get();
    ca_spec.subject_key = ca_key.get();
    ca_spec.issuer_key = ca_key.get();
    ca_spec.validity = options.ca_validity;
    ca_spec.extensions = {{NID_basic_constraints, "critical,CA:TRUE"},
                          {NID_key_usage, "critical,keyCertSign,cRLSign"},
                          {NID_subject_key_identifier, "hash"}};
    auto ca = make_cert(ca_spec);

    // The collector's server certificate.
    auto server_key = generate_key(options.key);
    auto server_name = make_name(fqdn, "");
    std::vector<std::string> dns{fqdn};
    for (const auto& d : options.dns_names)
        if (std::find(dns.begin(), dns.end(), d) == dns.end()) dns.push_back(d);
    auto san = make_san(dns, options.ip_addresses);
    CertSpec server_spec;
    server_spec.subject = server_name.get();
    server_spec.subject_key = server_key.get();
    server_spec.issuer = ca.get();
    server_spec.issuer_key = ca_key.get();
    server_spec.validity = options.server_validity;
    server_spec.extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                              {NID_key_usage, leaf_key_usage(server_key.get())},
                              {NID_ext_key_usage, "serverAuth"},
                              {NID_subject_key_identifier, "hash"},
                              {NID_authority_key_identifier, "keyid:always"}};
    server_spec.san = san.get();
    auto server = make_cert(server_spec);

    write_atomic(r.ca_key, key_pem(ca_key.get()), 0600);
    write_atomic(r.server_key, key_pem(server_key.get()), 0600);
    write_atomic(r.ca_cert, cert_pem(ca.get()), 0644);
    write_atomic(r.server_cert, cert_pem(server.get()) + cert_pem(ca.get()), 0644);

    r.ca_thumbprint = thumbprint(ca.get());
    r.gpo_string = gpo_string(fqdn, r.ca_thumbprint, options.port);
    return r;
}

namespace {

// The client certificate for the Windows host `name` (CN and SAN DNS), signed by the CA.
X509Ptr client_certificate(const std::string& name, EVP_PKEY* key, X509* ca, EVP_PKEY* ca_key,
                           const Validity& validity) {
    auto subject = make_name(name, "");
    auto san = make_san({name}, {});
    CertSpec spec;
    spec.subject = subject.get();
    spec.subject_key = key;
    spec.issuer = ca;
    spec.issuer_key = ca_key;
    spec.validity = validity;
    spec.extensions = {{NID_basic_constraints, "critical,CA:FALSE"},
                       {NID_key_usage, leaf_key_usage(key)},
                       {NID_ext_key_usage, "clientAuth"},
                       {NID_subject_key_identifier, "hash"},
                       {NID_authority_key_identifier, "keyid:always"}};
    spec.san = san.get();
    return make_cert(spec);
}

// The PKCS#12 file for Windows (DER): key, certificate and CA. PBE-SHA1-3DES (legacy) and AES-256
// (PBES2) are both in OpenSSL 3's default provider; RC2 (the old certificate-bag default) would
// need the legacy provider.
std::string client_pfx(const std::string& name, EVP_PKEY* key, X509* cert, X509* ca,
                       const std::string& password, bool legacy) {
    X509StackPtr chain(sk_X509_new_null());
    if (!chain || !sk_X509_push(chain.get(), ca)) fail("out of memory (certificate chain)");
    int nid = legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC : NID_aes_256_cbc;
    P12Ptr p12(PKCS12_create(password.c_str(), name.c_str(), key, cert, chain.get(), nid, nid,
                             PKCS12_DEFAULT_ITER, -1 /* MAC below */, 0));
    if (!p12) fail("cannot build the PKCS#12 file for " + name);
    const EVP_MD* mac_md = legacy ? EVP_sha1() : EVP_sha256();
    if (!PKCS12_set_mac(p12.get(), password.c_str(), -1, nullptr, 0, PKCS12_DEFAULT_ITER, mac_md))
        fail("cannot add the PKCS#12 integrity MAC for " + name);
    unsigned char* der = nullptr;
    int der_len = i2d_PKCS12(p12.get(), &der);
    if (der_len <= 0) fail("cannot encode the PKCS#12 file for " + name);
    std::unique_ptr<unsigned char, OsslFree> der_owner(der);
    return std::string(reinterpret_cast<const char*>(der), static_cast<std::size_t>(der_len));
}

// The collector's name as its server certificate in DIR gives it (first SAN DNS name); empty
// when there is none or it cannot be read.
std::string collector_name(const std::string& dir) {
    std::string server_pem = path_in(dir, "server.pem");
    if (!exists(server_pem)) return {};
    try {
        return first_dns_name(read_cert(server_pem).get());
    } catch (const wec::Error&) {
        return {}; // the collector's name is optional
    }
}

} // namespace

ClientResult issue_client(const std::string& dir, const std::string& name,
                          const ClientOptions& options) {
    check_host_name(name, "client name");
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (lower == "ca" || lower == "server")
        bad_input("client name '" + name + "' would overwrite the " + lower +
                  " files; use the Windows host's FQDN");

    ClientResult r;
    std::string ca_cert_path = path_in(dir, "ca.pem");
    std::string ca_key_path = path_in(dir, "ca.key");
    if (!exists(ca_cert_path) || !exists(ca_key_path))
        bad_input("no CA in " + dir + " (" + ca_cert_path + " and " + ca_key_path +
                  " expected); run `wec pki init --dir " + dir +
                  " --hostname <collector FQDN>` "
                  "first");
    r.cert = path_in(dir, name + ".pem");
    r.key = path_in(dir, name + ".key");
    r.pfx = path_in(dir, name + ".pfx");
    if (!options.force)
        for (const auto* p : {&r.cert, &r.key, &r.pfx})
            if (exists(*p))
                bad_input(*p + " already exists; use --force to issue a new certificate for " +
                          name + ", or remove the old files");

    auto ca = read_cert(ca_cert_path);
    auto ca_key = read_key(ca_key_path);
    if (X509_check_private_key(ca.get(), ca_key.get()) != 1)
        fail(ca_key_path + " is not the key of " + ca_cert_path, PkiError::Kind::Input);
    if (!(X509_get_extension_flags(ca.get()) & EXFLAG_CA))
        bad_input(ca_cert_path + " is not a CA certificate (basicConstraints CA:TRUE missing)");
    ERR_clear_error();

    auto key = generate_key(options.key);
    auto cert = client_certificate(name, key.get(), ca.get(), ca_key.get(), options.validity);

    r.password_generated = options.pfx_password.empty();
    r.pfx_password = r.password_generated ? random_password(20) : options.pfx_password;
    std::string pfx =
        client_pfx(name, key.get(), cert.get(), ca.get(), r.pfx_password, options.legacy_pfx);
    r.pfx_algorithms = options.legacy_pfx
                           ? "PBE-SHA1-3DES (key and certificates), MAC SHA-1, 2048 iterations"
                           : "AES-256-CBC/PBKDF2-HMAC-SHA256 (key and certificates), MAC "
                             "SHA-256, 2048 iterations";

    write_atomic(r.key, key_pem(key.get()), 0600);
    write_atomic(r.cert, cert_pem(cert.get()), 0644);
    write_atomic(r.pfx, pfx, 0600);

    r.thumbprint = thumbprint(cert.get());
    r.ca_thumbprint = thumbprint(ca.get());
    r.rsa_key = is_rsa(key.get());
    r.collector = collector_name(dir);
    ERR_clear_error();
    return r;
}

ShowResult show(const std::string& dir, std::time_t now, int warn_days) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        bad_input(dir + " is not a directory; run `wec pki init --dir " + dir +
                  " --hostname <FQDN>` to create a PKI there");
    std::vector<std::string> files;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (!it->is_regular_file(ec)) continue;
        std::string ext = it->path().extension().string();
        if (ext == ".pem" || ext == ".crt" || ext == ".cer") files.push_back(it->path().filename());
    }
    if (ec) throw PkiError("cannot list " + dir + ": " + ec.message());
    std::sort(files.begin(), files.end(), [](const std::string& a, const std::string& b) {
        return std::make_pair(a != "ca.pem", a) < std::make_pair(b != "ca.pem", b);
    });

    ShowResult r;
    std::set<std::string> seen;
    for (const auto& f : files) {
        std::string path = path_in(dir, f);
        std::vector<std::uint8_t> data;
        try {
            data = read_bytes(path);
        } catch (const PkiError& e) {
            r.warnings.push_back(e.what());
            continue;
        }
        ERR_clear_error();
        auto certs = parse_certs(data);
        ERR_clear_error();
        if (certs.empty()) {
            r.warnings.push_back(path + ": no certificate found in it");
            continue;
        }
        for (auto& c : certs) {
            CertInfo info = describe(c.get(), path, now, warn_days);
            if (!seen.insert(info.thumbprint).second) continue;
            std::string who = info.subject + " (" + path + ")";
            switch (info.expiry) {
            case Expiry::Expired:
                r.errors.push_back(who + " expired on " + info.not_after +
                                   (info.is_ca ? "; create a new PKI with `wec pki init --force`"
                                               : "; issue a new certificate"));
                break;
            case Expiry::ExpiresSoon:
                r.warnings.push_back(who + " expires in " + std::to_string(info.days_left) +
                                     (info.days_left == 1 ? " day" : " days") + ", on " +
                                     info.not_after);
                break;
            case Expiry::NotYetValid:
                r.warnings.push_back(who + " is not valid before " + info.not_before +
                                     " (check the clock)");
                break;
            case Expiry::Ok:
                break;
            }
            r.certificates.push_back(std::move(info));
        }
    }
    return r;
}

std::string sha1_thumbprint(std::span<const std::uint8_t> pem_or_der_cert) {
    ERR_clear_error();
    auto certs = parse_certs(pem_or_der_cert);
    if (certs.empty()) fail("no certificate found (PEM or DER expected)", PkiError::Kind::Input);
    return thumbprint(certs.front().get());
}

std::string sha1_thumbprint_file(const std::string& path) {
    return thumbprint(read_cert(path).get());
}

} // namespace wec::pki

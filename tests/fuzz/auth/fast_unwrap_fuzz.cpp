// Differential fuzzing of the OpenSSL fast path of unseal (lib/auth/fast_context.*) against MIT's
// gss_unwrap_iov, on tokens of real context pairs, one per enctype family (aes256-sha1-96,
// RFC 3962; aes128-sha256-128 and aes256-sha384-192, RFC 8009), each established once against a
// throwaway MIT KDC issuing only that enctype, which is stopped before fuzzing starts. Every input
// goes to each pair, and either is a token (a header of MIT's size for that enctype: 60, 64 or 72
// bytes, and the data) or, from a genuine token sealed for the input's plaintext, the bytes to
// XOR into it (and where to cut it). The fast path may leave a token to MIT (NotHandled), but it
// must never accept what MIT refuses, refuse what MIT accepts, or decrypt to other bytes, and a
// token it does not accept must be left unchanged.
#include "auth/fast_context.hpp"
#include "auth/gss.hpp"
#include "support/krb5_realm.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <gssapi/gssapi_ext.h>
#include <memory>
#include <span>
#include <vector>

namespace {

using namespace wec::auth;
using Bytes = std::vector<std::uint8_t>;

struct Pair {
    std::unique_ptr<ClientContext> client;
    std::unique_ptr<ServerContext> server;
};

Pair establish(const char* enctype) {
    wec::testing::Krb5Realm realm(wec::testing::Krb5Realm::Options{.enctypes = enctype});
    realm.add_principal("HTTP/srv.windomain.local");
    realm.add_principal("WIN10$");
    const auto keytab = realm.export_keytab({"HTTP/srv.windomain.local"}, "service.keytab");
    const auto ccache = realm.kinit("WIN10$", realm.export_keytab({"WIN10$"}, "win10.keytab"));
    realm.apply_env();
    Pair p;
    p.client = std::make_unique<ClientContext>(ClientOptions{
        .target = "HTTP@srv.windomain.local", .mechanism = Mechanism::Kerberos, .ccache = ccache});
    p.server = std::make_unique<ServerContext>(AcceptorCredentials::from_keytab(keytab.string()));
    auto out = p.client->step();
    auto r = p.server->step(out.output);
    if (!r.complete()) std::abort();
    p.client->step(r.output);
    if (!p.client->established() || p.server->fast_path() == nullptr ||
        p.client->fast_path() == nullptr) {
        std::fprintf(stderr, "fast_unwrap_fuzz: no fast path on the %s test context\n", enctype);
        std::abort();
    }
    // The fast path parked MIT's contexts (exported, gss.hpp); importing one back needs the
    // realm's krb5.conf, which goes with the realm: take them back now, so that MIT judges every
    // input on a live context.
    p.server->handle();
    p.client->handle();
    return p; // the realm (KDC, files) goes; the live contexts need neither any more
}

std::vector<Pair>& pairs() {
    static std::vector<Pair> p = [] {
        std::vector<Pair> v;
        for (const char* e : {"aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha256-128",
                              "aes256-cts-hmac-sha384-192"})
            v.push_back(establish(e));
        return v;
    }();
    return p;
}

// MIT's HEADER size for the pair's enctype (what seal() gives).
std::size_t header_size(Pair& p) {
    return seal(*p.client, Bytes{}).header.size();
}

bool mit_unwrap(gss_ctx_id_t ctx, Bytes header, Bytes& data) {
    gss_iov_buffer_desc iov[2];
    iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER;
    iov[0].buffer = {header.size(), header.data()};
    iov[1].type = GSS_IOV_BUFFER_TYPE_DATA;
    iov[1].buffer = {data.size(), data.data()};
    OM_uint32 minor = 0;
    int conf = 0;
    gss_qop_t qop = 0;
    const OM_uint32 major = gss_unwrap_iov(&minor, ctx, &conf, &qop, iov, 2);
    return !GSS_ERROR(major) && conf != 0 && iov[1].buffer.length == data.size();
}

void one(Pair& p, std::size_t header_len, const std::uint8_t* data, std::size_t size) {
    Bytes header, body;
    if (data[0] & 1) { // the input is the token
        const std::size_t h = std::min<std::size_t>(size - 1, header_len);
        header.assign(data + 1, data + 1 + h);
        body.assign(data + 1 + h, data + size);
    } else { // a genuine token, then the input's bytes XORed into it
        const std::size_t plain = std::min<std::size_t>(size - 1, 600);
        Bytes text(data + 1, data + 1 + plain);
        const Sealed sealed = seal(*p.client, text);
        header = sealed.header;
        body = sealed.ciphertext;
        const std::size_t total = header.size() + body.size();
        for (std::size_t i = 1 + plain, k = 0; i + 1 < size; i += 2, ++k) {
            const std::size_t at = data[i] * 7u % total;
            (at < header.size() ? header[at] : body[at - header.size()]) ^= data[i + 1];
        }
        if (data[0] & 2)
            body.resize(body.size() - std::min<std::size_t>(body.size(), data[0] >> 2));
    }
    if (header.empty()) return;
    Bytes fast_body = body;
    const auto verdict = p.server->fast_path()->unwrap(header, fast_body);
    Bytes mit_body = body;
    const bool mit_ok = mit_unwrap(p.server->handle(), header, mit_body);
    switch (verdict) {
    case FastContext::Unwrapped::Ok:
        if (!mit_ok || fast_body != mit_body) std::abort();
        break;
    case FastContext::Unwrapped::Refused:
        if (mit_ok || fast_body != body) std::abort();
        break;
    case FastContext::Unwrapped::NotHandled:
        if (fast_body != body) std::abort();
        break;
    }
}

std::vector<std::size_t>& header_sizes() {
    static std::vector<std::size_t> sizes = [] {
        std::vector<std::size_t> v;
        for (Pair& p : pairs())
            v.push_back(header_size(p));
        return v;
    }();
    return sizes;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    header_sizes();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    for (std::size_t i = 0; i < pairs().size(); ++i)
        one(pairs()[i], header_sizes()[i], data, size);
    return 0;
}

// CPU per message of seal(), unseal() and seal()+unseal() on established Kerberos contexts, MIT's
// libk5crypto (the fast path switched off for the context, as WEC_KRB_CRYPTO=mit does) against
// the OpenSSL fast path (lib/auth/fast_context.*), for the four aes enctypes: one throwaway MIT
// KDC per enctype, issuing only that enctype. Sizes: a heartbeat-sized body and WinRM batches.
//
// Usage: seal_bench [--benchmark_filter=...]   (figures: the CPU column, per message)
#include "auth/fast_context.hpp"
#include "auth/gss.hpp"
#include "support/krb5_realm.hpp"

#include <benchmark/benchmark.h>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using namespace wec::auth;
using wec::testing::Krb5Realm;

const std::string kHost = "srv.windomain.local";

// An established Kerberos pair of one realm; `mit`: both sides stay on MIT.
struct Pair {
    ClientContext client;
    ServerContext server;
};

std::unique_ptr<Pair> establish(Krb5Realm& realm, const std::string& ccache,
                                const std::string& keytab, bool mit) {
    realm.apply_env();
    auto p = std::make_unique<Pair>(
        Pair{ClientContext(ClientOptions{
                 .target = "HTTP@" + kHost, .mechanism = Mechanism::Kerberos, .ccache = ccache}),
             ServerContext(AcceptorCredentials::from_keytab(keytab))});
    auto out = p->client.step();
    for (int round = 0; round < 5 && !p->server.established(); ++round) {
        auto r = p->server.step(out.output);
        if (r.failed()) throw std::runtime_error(r.error->what());
        if (!r.output.empty()) out = p->client.step(r.output);
    }
    if (!p->client.established() || !p->server.established())
        throw std::runtime_error("context not established");
    if (mit)
        ::setenv("WEC_KRB_CRYPTO", "mit", 1);
    else
        ::unsetenv("WEC_KRB_CRYPTO");
    const bool fast_client = p->client.fast_path() != nullptr;
    const bool fast_server = p->server.fast_path() != nullptr;
    ::unsetenv("WEC_KRB_CRYPTO");
    if (fast_client == mit || fast_server == mit)
        throw std::runtime_error("the fast path is not as asked (self-test failed?)");
    return p;
}

std::vector<std::uint8_t> body(std::size_t size) {
    std::vector<std::uint8_t> b(size);
    for (std::size_t i = 0; i < size; ++i)
        b[i] = static_cast<std::uint8_t>(i * 13 + 7);
    return b;
}

void seal_only(benchmark::State& state, Pair* p) {
    const auto plain = body(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        auto sealed = seal(p->client, plain);
        benchmark::DoNotOptimize(sealed);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// The client seals, the server unseals (in place, as the collector does): one message's
// protection on both ends.
void round_trip(benchmark::State& state, Pair* p) {
    const auto plain = body(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        auto sealed = seal(p->client, plain);
        unseal_in_place(p->server, sealed.header, sealed.ciphertext);
        benchmark::DoNotOptimize(sealed);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// The server unseals only (in place, as the collector does): tokens are sealed by the client in
// batches with the clock stopped, then unsealed in order (each once: sequence numbers increase).
void unseal_only(benchmark::State& state, Pair* p) {
    const auto plain = body(static_cast<std::size_t>(state.range(0)));
    std::vector<Sealed> batch;
    std::size_t next = 0;
    for (auto _ : state) {
        if (next == batch.size()) {
            state.PauseTiming();
            batch.clear();
            for (int i = 0; i < 32; ++i)
                batch.push_back(seal(p->client, plain));
            next = 0;
            state.ResumeTiming();
        }
        Sealed& token = batch[next++];
        unseal_in_place(p->server, token.header, token.ciphertext);
        benchmark::DoNotOptimize(token.ciphertext.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

} // namespace

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    struct Realm {
        std::string enctype;
        std::unique_ptr<Krb5Realm> realm;
        std::unique_ptr<Pair> mit, fast;
    };
    std::vector<Realm> realms;
    for (const char* e : {"aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96",
                          "aes128-cts-hmac-sha256-128", "aes256-cts-hmac-sha384-192"}) {
        Realm r{e, std::make_unique<Krb5Realm>(Krb5Realm::Options{.enctypes = e}), {}, {}};
        r.realm->add_principal("HTTP/" + kHost);
        r.realm->add_principal("WIN10$");
        const auto keytab = r.realm->export_keytab({"HTTP/" + kHost}, "service.keytab").string();
        const auto ccache = r.realm->kinit("WIN10$", r.realm->export_keytab({"WIN10$"}, "c.kt"));
        r.mit = establish(*r.realm, ccache, keytab, true);
        r.fast = establish(*r.realm, ccache, keytab, false);
        realms.push_back(std::move(r));
    }
    for (auto& r : realms) {
        for (const auto& [name, pair] : {std::pair{"mit", r.mit.get()}, {"fast", r.fast.get()}}) {
            const std::string suffix = "/" + r.enctype + "/" + name;
            benchmark::RegisterBenchmark(("seal" + suffix).c_str(), seal_only, pair)
                ->Arg(200)
                ->Arg(16384)
                ->Arg(65536);
            benchmark::RegisterBenchmark(("seal+unseal" + suffix).c_str(), round_trip, pair)
                ->Arg(200)
                ->Arg(16384)
                ->Arg(65536);
            benchmark::RegisterBenchmark(("unseal" + suffix).c_str(), unseal_only, pair)
                ->Arg(200)
                ->Arg(16384)
                ->Arg(65536)
                ->Arg(204800);
        }
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

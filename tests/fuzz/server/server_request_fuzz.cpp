// Arbitrary bytes as what a client sends on one connection: the server's own HTTP parser and limits
// (parse_requests), then each request through the collector's connection handler, twice: as an
// unauthenticated Kerberos connection (must answer 401/4xx without parsing the body) and as a TLS
// connection with a verified client certificate (SLDC, charset, SOAP, the collector with a real
// SQLite store and a subscription whose output is /dev/null).
#include "common/log.hpp"
#include "pipeline/collector.hpp"
#include "server/http_server.hpp"
#include "server/wef_connection.hpp"
#include "store/store.hpp"
#include "subscription/subscription.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <unistd.h>

namespace {

using namespace wec;

// Built once per process: the fuzzer calls the entry point millions of times.
struct World {
    std::FILE* null_log = std::fopen("/dev/null", "w");
    Logger log{null_log, LogLevel::Error};
    std::filesystem::path dir;
    std::unique_ptr<store::Store> store;
    std::unique_ptr<store::HeartbeatBatcher> heartbeats;
    std::unique_ptr<pipeline::Collector> collector;
    server::WefEndpoint kerberos, tls;
    server::Limits limits;

    World() {
        char tmpl[] = "/tmp/wec-server-fuzz-XXXXXX";
        dir = ::mkdtemp(tmpl);
        store = store::open("sqlite:" + (dir / "wec.db").string());
        auto sub = subscription::load_toml(
            "name = \"fuzz\"\n"
            "uuid = \"5B1D4A2C-7D3E-4F40-9A11-222233334444\"\n"
            "query = '<QueryList><Query Id=\"0\"><Select Path=\"Security\">*</Select></Query>"
            "</QueryList>'\n"
            "[[outputs]]\ndriver = \"files\"\npath = \"/dev/null\"\nformat = \"json\"\n"
            "[[outputs]]\ndriver = \"files\"\npath = \"/dev/null\"\nformat = \"raw\"\n",
            "fuzz.toml");
        store->put_subscription(sub);
        heartbeats = std::make_unique<store::HeartbeatBatcher>(*store);
        pipeline::CollectorConfig config;
        config.hostname = "wec.fuzz.local";
        collector = std::make_unique<pipeline::Collector>(log, *store, *heartbeats, config);
        for (auto* ep : {&kerberos, &tls}) {
            ep->log = &log;
            ep->collector = collector.get();
            ep->max_body_bytes = 512000;
        }
        limits.max_body_bytes = 600 * 1024;
    }
    ~World() {
        collector.reset();
        heartbeats.reset();
        store.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        std::fclose(null_log);
    }
};

World& world() {
    static World w;
    return w;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& w = world();
    server::PeerInfo anonymous;
    anonymous.address = "127.0.0.1";
    server::PeerInfo certified = anonymous;
    certified.tls = true;
    certified.tls_subject_cn = "win10.windomain.local";
    certified.tls_issuer_thumbprint = "0123456789ABCDEF0123456789ABCDEF01234567";
    server::WefConnection unauthenticated(w.kerberos, anonymous);
    server::WefConnection authenticated(w.tls, certified);
    auto result = server::parse_requests({data, size}, w.limits, [&](server::HttpRequest& request) {
        auto copy = request;
        auto r = unauthenticated.handle(request);
        // No credentials on this listener: nothing may succeed.
        if (r.status < 400) __builtin_trap();
        auto t = authenticated.handle(copy);
        if (t.status < 200 || t.status > 599) __builtin_trap();
    });
    if (result.status != 0 && result.status != 400 && result.status != 431) __builtin_trap();
    return 0;
}

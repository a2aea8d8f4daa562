// `wec serve` behind a real haproxy (TCP mode, PROXY protocol v2, health checks that send a PROXY
// header, a source address of its own): sources reach the collector through the balancer, the
// collector sees each source's own address (logs, {ip} of the output path), the balancer's health
// checks leave no warning in the log, and a connection that bypasses the balancer is refused.
#include "client/client.hpp"
#include "support/files.hpp"
#include "support/pki_suite.hpp"
#include "support/process.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <thread>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace client = wec::client;

const std::string kHost = "srv.windomain.local";
const std::string kSource = "win10.windomain.local";

class ServeProxy : public PkiSuite<> {
protected:
    static void SetUpTestSuite() { make_pki({kSource}); }

    TempDir dir;
    int node_port = free_port();
    int front_port = free_port();
    std::unique_ptr<Process> server, haproxy;

    void SetUp() override {
        ASSERT_TRUE(fs::exists("/usr/sbin/haproxy"))
            << "haproxy is not installed (scripts/install-deps.sh installs it)";
        const std::string db = "sqlite:" + (dir.path() / "wec.db").string();
        std::ofstream(dir.path() / "sub.toml")
            << "name = \"security\"\nquery = '<QueryList><Query Id=\"0\"><Select "
               "Path=\"Security\">*</Select></Query></QueryList>'\n[[outputs]]\ndriver = "
               "\"files\"\npath = \""
            << (dir.path() / "events" / "{ip}.json").string() << "\"\nformat = \"json\"\n";
        auto r = run({WEC_EXE, "sub", "apply", (dir.path() / "sub.toml").string(), "--db", db});
        ASSERT_EQ(r.exit_code, 0) << r.output;
        std::ofstream(dir.path() / "wec.toml")
            << "hostname = \"" << kHost << "\"\ndb = \"" << db << "\"\n[[listeners]]\naddress = "
            << "\"127.0.0.1:" << node_port << "\"\nauth = \"tls\"\ncert = \""
            << pki("server.pem").string() << "\"\nkey = \"" << pki("server.key").string()
            << "\"\nca = [\"" << pki("root.pem").string() << "\", \"" << pki("issuing.pem").string()
            << "\"]\nproxy_protocol = true\npublic_port = " << front_port << "\n";
        server = std::make_unique<Process>(
            std::vector<std::string>{WEC_EXE, "serve", "--config",
                                     (dir.path() / "wec.toml").string()},
            std::map<std::string, std::string>{}, dir.path() / "serve.log");
        ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();

        // The balancer connects from 127.0.0.9, the sources from 127.0.0.1: without the PROXY
        // header the collector would see every source as 127.0.0.9.
        std::ofstream(dir.path() / "haproxy.cfg")
            << "global\n  maxconn 1000\ndefaults\n  mode tcp\n  timeout connect 5s\n"
            << "  timeout client 60s\n  timeout server 60s\nfrontend wef\n  bind 127.0.0.1:"
            << front_port
            << "\n  default_backend nodes\nbackend nodes\n  server n1 127.0.0.1:" << node_port
            << " send-proxy-v2 check check-send-proxy inter 100ms source 127.0.0.9\n";
        haproxy = std::make_unique<Process>(
            std::vector<std::string>{"/usr/sbin/haproxy", "-f",
                                     (dir.path() / "haproxy.cfg").string(), "-db"},
            std::map<std::string, std::string>{}, dir.path() / "haproxy.log");
        for (int i = 0; i < 200 && !accepts_connections(front_port); ++i)
            std::this_thread::sleep_for(25ms);
        ASSERT_TRUE(accepts_connections(front_port)) << haproxy->output();
    }
    void TearDown() override {
        if (HasFailure()) {
            std::cerr << "---- wec serve ----\n"
                      << slurp(dir.path() / "serve.log") << "---- haproxy ----\n"
                      << slurp(dir.path() / "haproxy.log");
        }
        haproxy.reset();
        server.reset();
    }

    client::SourceOptions source_options(int port) const {
        client::SourceOptions o;
        o.manager = client::Url::parse("https://127.0.0.1:" + std::to_string(port) + "/wsman/");
        o.tls.cert_file = pki(kSource + ".pem").string();
        o.tls.key_file = pki(kSource + ".key").string();
        o.tls.ca_file = pki("root.pem").string();
        o.tls.server_name = kHost;
        o.machine_id = kSource;
        o.timeout = 10s;
        return o;
    }
};

TEST_F(ServeProxy, SourcesThroughHaproxyKeepTheirAddressAndHealthChecksAreQuiet) {
    client::Source source(source_options(front_port));
    auto subs = source.enumerate();
    source.end();
    ASSERT_EQ(subs.size(), 1u);
    client::EventGenerator gen(kSource);
    for (int batch = 0; batch < 20; ++batch) {
        std::vector<std::string> events;
        for (int i = 0; i < 10; ++i)
            events.push_back(gen.next());
        source.send_events(subs[0], events, gen.bookmark());
    }
    // A second of health checks (one every 100 ms, each a PROXY header then a close).
    std::this_thread::sleep_for(1s);

    // The output path's {ip} is the source's address, not the balancer's.
    EXPECT_EQ(lines_of(slurp(dir.path() / "events" / "127.0.0.1.json")).size(), 200u);
    EXPECT_FALSE(fs::exists(dir.path() / "events" / "127.0.0.9.json"));
    auto log = slurp(dir.path() / "serve.log");
    EXPECT_EQ(count_of(log, "action=Events status=200"), 20u) << log;
    EXPECT_EQ(count_of(log, "address=127.0.0.9"), 0u) << log;
    EXPECT_EQ(count_of(log, " warn ") - count_of(log, " warn running as root") -
                  count_of(log, " warn max_connections"),
              0u)
        << "health checks or proxied requests logged warnings:\n"
        << log;

    // Straight to the node, without the balancer's header: refused.
    client::Source direct(source_options(node_port));
    EXPECT_THROW(direct.enumerate(), std::exception);
    EXPECT_TRUE(server->wait_for_output("expects a PROXY protocol header", 5s));
}

} // namespace

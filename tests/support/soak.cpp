#include "support/soak.hpp"

#include "support/test_pki.hpp"
#include "support/wef_realm.hpp"
#include "wsman/wsman.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unistd.h>
#include <vector>

namespace wec::testing {
namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kHost = "srv.windomain.local";
const std::string kTlsClient = "win10.windomain.local"; // CN of the client certificate
const std::string kNtlmUser = "LAB\\alice";             // an account of the NTLM users file
const std::string kBasicUser = "labhost";               // an account of the Basic users file
const std::string kPassword = "Secret1!";               // both accounts' password

// A users file `wec serve` accepts (not readable by others).
fs::path write_users_file(const fs::path& path, const std::string& lines) {
    std::ofstream(path) << lines;
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write);
    return path;
}

// A SHA-512 crypt(3) hash of `password` (`openssl passwd -6`), for the Basic users file.
std::string sha512_crypt(const std::string& password) {
    auto r = run({"openssl", "passwd", "-6", password});
    auto hash = r.output;
    while (!hash.empty() && (hash.back() == '\n' || hash.back() == '\r'))
        hash.pop_back();
    if (r.exit_code != 0 || hash.rfind("$6$", 0) != 0)
        throw std::runtime_error("openssl passwd -6 failed: " + r.output);
    return hash;
}

// One request of a workload and what its answer must be.
struct Request {
    bool push = true; // on the subscription's NotifyTo URL (else the manager URL)
    std::string target;
    std::string soap;
    bool compress = false;
    std::string message_id;
    wsman::Action expect = wsman::Action::Ack;
};

void record(SoakResult& r, const std::string& error) {
    if (error.empty()) {
        ++r.ok;
        return;
    }
    if (r.failed++ == 0) r.first_error = error;
}

// Wall time and CPU of the server and of this process over one workload.
class Stopwatch {
public:
    explicit Stopwatch(int pid)
        : pid_(pid), start_(std::chrono::steady_clock::now()), server_(cpu_seconds(pid)),
          client_(cpu_seconds(::getpid())) {}
    void stop(SoakResult& r) const {
        r.seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        r.server_cpu = cpu_seconds(pid_) - server_;
        r.client_cpu = cpu_seconds(::getpid()) - client_;
    }

private:
    int pid_;
    std::chrono::steady_clock::time_point start_;
    double server_, client_;
};

} // namespace

const char* to_string(SoakKind kind) {
    switch (kind) {
    case SoakKind::Kerberos:
        return "kerberos";
    case SoakKind::Spnego:
        return "spnego";
    case SoakKind::Tls:
        return "tls";
    case SoakKind::Ntlm:
        return "ntlm";
    case SoakKind::Basic:
        return "basic";
    }
    return "?";
}

Footprint footprint(int pid) {
    Footprint f;
    const std::string proc = "/proc/" + std::to_string(pid);
    std::ifstream in(proc + "/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmRSS:", 0) == 0) f.rss_kb = std::stol(line.substr(6));
    std::error_code ec;
    long n = 0;
    for (fs::directory_iterator it(proc + "/fd", ec), end; !ec && it != end; it.increment(ec))
        ++n;
    if (!ec) f.fds = n;
    return f;
}

struct SoakServer::Impl {
    SoakKind kind;
    std::optional<WefRealm> realm; // Kerberos, SPNEGO
    std::optional<TestPki> pki;    // TLS
    TempDir dir;
    std::string db;
    int port = 0;
    std::unique_ptr<Process> server; // stopped before the realm, PKI and directory go

    client::Url manager;
    std::unique_ptr<client::Source> source; // the subscription's headers (session id, identifier)
    wsman::Subscription subscription;
    client::Url push;
    client::ConnectionOptions manager_options, push_options;
    client::EventGenerator events;

    bool https() const { return kind == SoakKind::Tls || kind == SoakKind::Basic; }

    Impl(SoakKind k, const std::string& wec_exe) : kind(k) {
        db = "sqlite:" + (dir.path() / "wec.db").string();
        std::vector<std::string> auth;
        std::map<std::string, std::string> env;
        if (https()) {
            pki.emplace(kHost);
            auth = {"--auth", kind == SoakKind::Tls ? "tls" : "basic",
                    "--cert", (*pki)("server.pem").string(),
                    "--key",  (*pki)("server.key").string()};
            if (kind == SoakKind::Tls) {
                auth.insert(auth.end(), {"--ca", (*pki)("root.pem").string(), "--ca",
                                         (*pki)("issuing.pem").string()});
            } else {
                auto users = write_users_file(dir.path() / "basic-users",
                                              kBasicUser + ":" + sha512_crypt(kPassword) + "\n");
                auth.insert(auth.end(), {"--basic-users", users.string()});
            }
        } else {
            realm.emplace(kHost);
            // The client core runs in this process: MIT Kerberos is pointed at the test realm.
            realm->realm.apply_env();
            ::setenv("KRB5CCNAME", realm->ccache.c_str(), 1);
            env = realm->realm.env();
            auth = {"--auth", kind == SoakKind::Ntlm ? "negotiate" : "kerberos", "--keytab",
                    realm->service_keytab.string()};
            if (kind == SoakKind::Ntlm) {
                auto users =
                    write_users_file(dir.path() / "ntlm-users", "LAB:alice:" + kPassword + "\n");
                auth.insert(auth.end(), {"--ntlm-users", users.string()});
            }
        }

        auto sub = dir.path() / "security.toml";
        std::ofstream(sub) << "name = \"security\"\n"
                           << "query = '<QueryList><Query Id=\"0\"><Select "
                              "Path=\"Security\">*</Select></Query></QueryList>'\n"
                           << "content_format = \"RenderedText\"\n"
                           << "[[outputs]]\ndriver = \"files\"\npath = \""
                           << (dir.path() / "events" / "{client}.json").string()
                           << "\"\nformat = \"json\"\n";
        auto r = run({wec_exe, "sub", "apply", sub.string(), "--db", db});
        if (r.exit_code != 0) throw std::runtime_error("wec sub apply failed: " + r.output);

        port = free_port();
        std::vector<std::string> argv{wec_exe, "serve", "--listen",
                                      "127.0.0.1:" + std::to_string(port)};
        argv.insert(argv.end(), auth.begin(), auth.end());
        argv.insert(argv.end(), {"--hostname", kHost, "--db", db});
        server = std::make_unique<Process>(argv, env, dir.path() / "serve.log");
        if (!server->wait_for_output("wec serve started", 20s))
            throw std::runtime_error("wec serve did not start:\n" + server->output());

        client::SourceOptions so;
        manager = client::Url::parse((https() ? "https://127.0.0.1:" : "http://127.0.0.1:") +
                                     std::to_string(port) +
                                     (https() ? "/wsman/" : "/wsman/SubscriptionManager/WEC"));
        so.manager = manager;
        so.timeout = 60s;
        if (https()) {
            if (kind == SoakKind::Tls) {
                so.tls.cert_file = (*pki)(kTlsClient + ".pem").string();
                so.tls.key_file = (*pki)(kTlsClient + ".key").string();
            } else {
                so.tls.basic_user = kBasicUser;
                so.tls.basic_password = kPassword;
            }
            so.tls.ca_file = (*pki)("root.pem").string();
            so.tls.server_name = kHost;
            so.tls_context = client::make_tls_context(so.tls); // shared by every connection
        } else {
            so.service = "HTTP@" + kHost;
            so.mechanism = kind == SoakKind::Spnego ? auth::Mechanism::Spnego
                           : kind == SoakKind::Ntlm ? auth::Mechanism::Ntlm
                                                    : auth::Mechanism::Kerberos;
            so.ccache = realm->ccache;
            if (kind == SoakKind::Ntlm) {
                so.ntlm_user = kNtlmUser;
                so.ntlm_password = kPassword;
            }
        }
        source = std::make_unique<client::Source>(so);
        auto subs = source->enumerate();
        source->end();
        for (const auto& s : subs)
            if (s.name == "security") subscription = s;
        if (subscription.notify_to.empty())
            throw std::runtime_error("the subscription \"security\" was not offered");
        push = source->push_url(subscription);

        manager_options.host = "127.0.0.1";
        manager_options.port = static_cast<std::uint16_t>(port);
        manager_options.timeout = 60s;
        if (https()) {
            manager_options.tls = true;
            manager_options.tls_options = so.tls;
            manager_options.tls_context = so.tls_context;
        } else {
            manager_options.service = so.service;
            manager_options.mechanism = so.mechanism;
            manager_options.ccache = so.ccache;
            manager_options.ntlm_user = so.ntlm_user;
            manager_options.ntlm_password = so.ntlm_password;
        }
        push_options = manager_options;
        push_options.port = push.port;
        // Windows announces SLDC on every request of a subscription that uses it.
        push_options.sldc_header = subscription.compression == "SLDC";
    }

    // Enumerate on the manager URL.
    Request enumerate() {
        auto sh = source->headers_for(subscription);
        wsman::SourceHeaders h;
        h.to = manager.str();
        h.machine_id = sh.machine_id;
        h.message_id = sh.message_id;
        h.session_id = sh.session_id;
        Request r;
        r.push = false;
        r.target = manager.target;
        r.soap = wsman::build_enumerate(h);
        r.message_id = h.message_id;
        r.expect = wsman::Action::EnumerateResponse;
        return r;
    }
    // Heartbeat, or Events with two generated events and the bookmark after them, on the
    // subscription's NotifyTo URL; answered with an Ack.
    Request push_request(bool with_events) {
        auto h = source->headers_for(subscription);
        Request r;
        r.target = push.target;
        if (with_events) {
            std::string batch[2] = {events.next(), events.next()};
            std::string_view views[2] = {batch[0], batch[1]};
            r.soap = wsman::build_events(h, views, events.bookmark());
        } else {
            r.soap = wsman::build_heartbeat(h);
        }
        r.compress = push_options.sldc_header;
        r.message_id = h.message_id;
        return r;
    }

    // "" when `r` is the answer `req` must get, else what is wrong with it.
    static std::string check(const Request& req, const client::Response& r) {
        const char* what = req.expect == wsman::Action::Ack ? "Ack" : "EnumerateResponse";
        if (r.status != 200)
            return std::string(what) + " expected, HTTP " + std::to_string(r.status);
        if (!r.message) return std::string(what) + " expected, no SOAP reply";
        if (r.message->action != req.expect)
            return std::string(what) + " expected, got " +
                   std::string(wsman::to_string(r.message->action));
        if (r.message->relates_to != req.message_id)
            return "RelatesTo '" + r.message->relates_to + "' != MessageID '" + req.message_id +
                   "'";
        return {};
    }

    asio::awaitable<void> cycle_lane(std::size_t count, std::size_t& next, SoakResult& result) {
        auto ex = co_await asio::this_coro::executor;
        for (std::size_t i = next++; i < count; i = next++) {
            Request req = i % 3 == 0 ? enumerate() : push_request(i % 3 == 2);
            std::string error;
            try {
                client::AsyncConnection c(ex, req.push ? push_options : manager_options);
                co_await c.connect(req.target);
                auto r = co_await c.post(req.target, req.soap, req.compress);
                error = check(req, r);
                c.close();
            } catch (const std::exception& e) {
                error = e.what();
            }
            record(result, error);
        }
    }

    asio::awaitable<void> keep_alive_lane(client::AsyncConnection& c, std::size_t count,
                                          SoakResult& result) {
        for (std::size_t i = 0; i < count; ++i) {
            Request req = push_request(i % 2 == 1);
            std::string error;
            try {
                if (!c.authenticated()) throw std::runtime_error("connection not authenticated");
                auto r = co_await c.post(req.target, req.soap, req.compress);
                error = check(req, r);
            } catch (const std::exception& e) {
                error = e.what();
            }
            record(result, error);
        }
    }
};

SoakServer::SoakServer(SoakKind kind, const std::string& wec_exe)
    : impl_(std::make_unique<Impl>(kind, wec_exe)) {}
SoakServer::~SoakServer() = default;

SoakKind SoakServer::kind() const {
    return impl_->kind;
}
int SoakServer::pid() const {
    return impl_->server->pid();
}
std::string SoakServer::log() const {
    return impl_->server->output();
}
bool SoakServer::running() const {
    return impl_->server->running();
}

SoakResult SoakServer::warm_up(std::size_t cycles_count, std::size_t requests,
                               std::size_t connections) {
    SoakResult total;
    auto add = [&total](const SoakResult& r) {
        if (r.failed && !total.failed) total.first_error = r.first_error;
        total.ok += r.ok;
        total.failed += r.failed;
        total.seconds += r.seconds;
        total.server_cpu += r.server_cpu;
        total.client_cpu += r.client_cpu;
    };
    add(cycles(cycles_count));
    add(keep_alive(requests / 2, connections));
    add(keep_alive(requests - requests / 2, connections));
    return total;
}

SoakResult SoakServer::cycles(std::size_t count, std::size_t in_flight) {
    SoakResult result;
    asio::io_context ioc(1);
    std::size_t next = 0;
    Stopwatch watch(pid());
    for (std::size_t lane = 0; lane < std::max<std::size_t>(in_flight, 1); ++lane)
        asio::co_spawn(ioc, impl_->cycle_lane(count, next, result), asio::detached);
    ioc.run();
    watch.stop(result);
    return result;
}

SoakResult SoakServer::keep_alive(std::size_t requests, std::size_t connections) {
    SoakResult result;
    connections = std::max<std::size_t>(connections, 1);
    asio::io_context ioc(1);
    std::vector<std::unique_ptr<client::AsyncConnection>> conns;
    for (std::size_t i = 0; i < connections; ++i) {
        conns.push_back(
            std::make_unique<client::AsyncConnection>(ioc.get_executor(), impl_->push_options));
        asio::co_spawn(ioc, conns.back()->connect(impl_->push.target),
                       [&result](std::exception_ptr e) {
                           if (!e) return;
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::exception& x) {
                               record(result, std::string("connect: ") + x.what());
                           }
                       });
    }
    ioc.run();
    ioc.restart();
    Stopwatch watch(pid());
    for (std::size_t i = 0; i < connections; ++i) {
        // The first `requests % connections` connections take one more.
        std::size_t share = requests / connections + (i < requests % connections ? 1 : 0);
        asio::co_spawn(ioc, impl_->keep_alive_lane(*conns[i], share, result), asio::detached);
    }
    ioc.run();
    watch.stop(result);
    for (auto& c : conns)
        c->close();
    return result;
}

Footprint SoakServer::quiet(std::chrono::milliseconds stable,
                            std::chrono::milliseconds timeout) const {
    auto now = std::chrono::steady_clock::now();
    auto deadline = now + timeout, since = now;
    auto f = footprint(pid());
    for (;;) {
        std::this_thread::sleep_for(50ms);
        auto g = footprint(pid());
        now = std::chrono::steady_clock::now();
        if (g.fds != f.fds) since = now;
        f = g;
        if (now - since >= stable || now >= deadline) return f;
    }
}

Footprint SoakServer::settle(long fds, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto f = footprint(pid());
        if ((f.fds >= 0 && f.fds <= fds) || std::chrono::steady_clock::now() >= deadline) return f;
        std::this_thread::sleep_for(50ms);
    }
}

} // namespace wec::testing

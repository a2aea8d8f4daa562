#include "server/service.hpp"

#include "auth/gss.hpp"
#include "metrics/metrics.hpp"
#include "pipeline/collector.hpp"
#include "server/http_server.hpp"
#include "server/metrics_endpoint.hpp"
#include "server/tls.hpp"
#include "server/wef_connection.hpp"
#include "store/store.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace wec::server {

namespace {
// A secret that other users can read is worth a warning at every start.
void warn_if_exposed(Logger& log, const std::string& path, std::string_view what) {
    struct stat st {};
    if (path.empty() || ::stat(path.c_str(), &st) != 0) return;
    if (st.st_mode & S_IROTH)
        log.warn(std::string(what) + " is readable by every user of this host",
                 {{"file", path}, {"hint", "chmod 0600 (or 0640 with a dedicated group)"}});
}
} // namespace

struct CollectorService::Impl {
    Logger& log;
    config::ServeConfig config;
    // Metrics (docs/metrics.md): declared first, so that they outlive everything that counts.
    metrics::Registry registry;
    RequestMetrics requests{registry};
    std::unique_ptr<store::Store> store;
    std::unique_ptr<store::HeartbeatBatcher> heartbeats;
    std::unique_ptr<pipeline::Collector> collector;
    std::unique_ptr<HttpServer> http;
    std::vector<std::unique_ptr<WefEndpoint>> endpoints;
    std::vector<std::uint16_t> ports;
    std::vector<std::string> notes; // startup summary
    // TLS listeners: their index in the server and what their context is made from (SIGHUP).
    std::vector<std::pair<std::size_t, TlsSettings>> tls_listeners;
    bool running = false;
    bool handlers_on_io = false;      // make_http_server's choice (handler_threads)
    std::atomic<bool> serving{false}; // listeners accepting (/readyz)
    bool tick_failing = false;        // owner's thread only
    std::uint64_t tick_errors = 0;
    // The --metrics listener: a server of its own (one thread of each kind), so that scrapes and
    // health checks neither count as WinRM connections nor wait behind busy workers. Declared
    // last: stopped first, before what its handler reads.
    MetricsEndpoint metrics_endpoint;
    std::unique_ptr<HttpServer> metrics_http;
    std::optional<std::uint16_t> metrics_port;

    Impl(Logger& l, config::ServeConfig c) : log(l), config(std::move(c)) {}

    // The steps of CollectorService's constructor, in order.
    void open_store();
    void make_http_server();
    pipeline::CollectorConfig make_collector();
    void warn_about_privileges() const;
    // One WinRM listener: its endpoint (authentication), bound; `issuer_hint` gets the thumbprint
    // of a TLS listener's client CA for the GPO note.
    void make_listener(const config::Listener& l, std::string& issuer_hint);
    // What authenticates on `l`, set up on `endpoint` (and `tls`); returns it for the summary.
    std::string set_up_auth(const config::Listener& l, WefEndpoint& endpoint,
                            std::shared_ptr<TlsContext>& tls, std::string& issuer_hint);
    void make_metrics_listener(CollectorService& service);
    // The startup summary's last lines: the GPO values, the subscriptions served.
    void gpo_notes(const pipeline::CollectorConfig& pc, const std::string& issuer_hint);
    void subscription_notes();
};

void CollectorService::Impl::open_store() {
    const auto& c = config;
    store::OpenOptions store_options;
    store_options.busy_timeout = std::chrono::milliseconds(c.store_busy_timeout_ms);
    store_options.bookmark_sync_interval = std::chrono::milliseconds(c.bookmark_sync_interval_ms);
    store_options.log = &log;
    store = store::open(c.db, store_options);
    // What an acked bookmark survives (docs/state-store.md, Durability).
    const std::string durability = store->bookmark_durability();
    // A shared store (PostgreSQL) may be down at start: the node still starts and answers 503
    // until it is reachable.
    try {
        notes.push_back("store: " + store->describe() + " (schema " +
                        std::to_string(store->schema_version()) +
                        (durability.empty() ? "" : "; " + durability) + ")");
    } catch (const store::StoreError& e) {
        notes.push_back("store: " + store->describe() +
                        " UNAVAILABLE (requests get 503 until it is reachable): " + e.what());
    }
    store::HeartbeatBatcher::Options hb;
    hb.interval = std::chrono::seconds(c.heartbeat_flush_s ? c.heartbeat_flush_s : 1);
    heartbeats = std::make_unique<store::HeartbeatBatcher>(*store, hb);
}

void CollectorService::Impl::make_http_server() {
    const auto& c = config;
    unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    Limits limits;
    // The raw HTTP body also holds the multipart framing and the wrap token header.
    limits.max_body_bytes = c.limits.max_body_bytes + 64 * 1024;
    limits.max_header_bytes = c.limits.max_header_bytes;
    limits.idle_timeout = std::chrono::seconds(c.limits.idle_timeout_s);
    limits.read_timeout = std::chrono::seconds(c.limits.read_timeout_s);
    limits.max_connections = c.limits.max_connections;
    // Handlers on the I/O threads save two thread hand-offs per request; with a store across the
    // network each commit waits for a round trip, and more batches in flight (on workers) share
    // each one.
    handlers_on_io =
        c.handler_threads == "io" || (c.handler_threads == "auto" && store && store->local());
    const std::size_t io = c.io_threads ? c.io_threads : cores;
    // Workers block on disk (output writes, bookmark and output fsyncs): enough of them keep the
    // cores busy and let concurrent batches share one bookmark commit. With handlers on the I/O
    // threads they stand in for the network while handlers block.
    const std::size_t workers = c.worker_threads ? c.worker_threads : std::max(8u, 4 * cores);
    http = std::make_unique<HttpServer>(
        log, limits, io, workers, handlers_on_io ? HandlerThreads::io : HandlerThreads::workers);
    notes.push_back(handlers_on_io
                        ? "threads: " + std::to_string(io) + " I/O, handling requests (up to " +
                              std::to_string(workers) +
                              " workers stand in for the network while handlers block)"
                        : "threads: " + std::to_string(io) + " I/O, " + std::to_string(workers) +
                              " workers handling requests");
}

pipeline::CollectorConfig CollectorService::Impl::make_collector() {
    const auto& c = config;
    pipeline::CollectorConfig pc;
    pc.hostname = c.hostname;
    pc.node_name = c.node_name;
    pc.handlers_on_io_threads = handlers_on_io;
    pc.metrics = &registry;
    for (const auto& l : c.listeners) {
        auto ep = parse_endpoint(l.address);
        if (config::uses_gss(l.auth))
            pc.http_port = l.public_port.value_or(ep.port);
        else
            pc.https_port = l.public_port.value_or(ep.port);
    }
    collector = std::make_unique<pipeline::Collector>(log, *store, *heartbeats, pc);
    notes.push_back("node: " + collector->node() +
                    (c.node_name.empty() ? " (the host name: no node_name set)" : ""));
    // Processes sharing a port each need their own node name, or {node} paths are the same and
    // they append to the same files (docs/cluster.md).
    const bool shared_port = std::any_of(c.listeners.begin(), c.listeners.end(),
                                         [](const auto& l) { return l.reuse_port; });
    if (shared_port && c.node_name.empty())
        log.warn("reuse_port without node_name: every process on this port is node '" +
                 collector->node() +
                 "'; give each its own node_name (--node-name) and put {node} in files "
                 "paths, so that they do not append to the same files");
    return pc;
}

void CollectorService::Impl::warn_about_privileges() const {
    const auto& c = config;
    if (::geteuid() == 0)
        log.warn("running as root: wec serve needs no privilege (ports above 1024, its own "
                 "files); run it as its own user (see docs/security.md)");
    for (const auto& l : c.listeners) {
        if (config::uses_gss(l.auth))
            warn_if_exposed(log, l.keytab, "keytab");
        else
            warn_if_exposed(log, l.key, "TLS private key");
    }
}

void CollectorService::Impl::make_listener(const config::Listener& l, std::string& issuer_hint) {
    auto endpoint = std::make_unique<WefEndpoint>();
    endpoint->log = &log;
    endpoint->collector = collector.get();
    endpoint->max_body_bytes = config.limits.max_body_bytes;
    endpoint->metrics = &requests;
    std::shared_ptr<TlsContext> tls;
    std::string auth_note = set_up_auth(l, *endpoint, tls, issuer_hint);
    const WefEndpoint* ep_ptr = endpoint.get();
    auto port = http->add_listener(
        {parse_endpoint(l.address), l.address,
         [ep_ptr](const PeerInfo& peer) { return std::make_unique<WefConnection>(*ep_ptr, peer); },
         tls, l.proxy_protocol, l.reuse_port});
    ports.push_back(port);
    endpoints.push_back(std::move(endpoint));
    notes.push_back("listener: " + l.address + " (bound port " + std::to_string(port) + ", " +
                    std::string(config::to_string(l.auth)) +
                    (l.proxy_protocol ? ", PROXY protocol required" : "") +
                    (l.reuse_port ? ", reuse_port" : "") + ") " + auth_note);
}

std::string CollectorService::Impl::set_up_auth(const config::Listener& l, WefEndpoint& endpoint,
                                                std::shared_ptr<TlsContext>& tls,
                                                std::string& issuer_hint) {
    const auto& c = config;
    std::string auth_note;
    if (config::uses_tls(l.auth)) {
        TlsSettings settings{l.cert, l.key, l.ca, l.crl, l.auth == config::AuthKind::Tls};
        tls = make_tls_context(settings);
        for (const auto& w : tls_warnings(*tls))
            log.warn(w, {{"listener", l.address}});
        tls_listeners.emplace_back(ports.size(), std::move(settings));
        std::string thumbs;
        for (const auto& t : ca_thumbprints(*tls))
            thumbs += (thumbs.empty() ? "" : ", ") + t;
        issuer_hint = ca_thumbprints(*tls).size() == 1
                          ? ca_thumbprints(*tls).front()
                          : "<thumbprint of the CA that issued the host's certificate>";
        auth_note = "certificate " + l.cert + ", " +
                    (thumbs.empty() ? "no client certificates" : "client CAs " + thumbs) +
                    (l.crl.empty() ? "" : ", CRL checked");
    }
    if (l.auth == config::AuthKind::Basic) {
        endpoint.basic =
            std::make_shared<const auth::BasicUsers>(auth::BasicUsers::load(l.basic_users));
        log.warn("Basic authentication on this listener: for labs and test rigs only (a "
                 "password, sent on every request; use Kerberos or client certificates in "
                 "production)",
                 {{"listener", l.address}, {"users", l.basic_users}});
        auth_note = "Basic (" + std::to_string(endpoint.basic->size()) + " accounts of " +
                    l.basic_users + "), " + auth_note;
    }
    if (l.auth == config::AuthKind::Negotiate) {
        // NTLM through gss-ntlmssp; Kerberos too when the keytab exists (below).
        if (l.ntlm_allow_v1)
            log.warn("NTLMv1 and LM responses are accepted on this listener (ntlm_allow_v1): "
                     "they are weak, use them only for old lab clients",
                     {{"listener", l.address}});
        endpoint.ntlm = auth::NtlmAcceptor::create({l.ntlm_users, c.hostname, l.ntlm_allow_v1});
        endpoint.ntlm_warned = std::make_shared<auth::OncePerKey>();
        auth_note = "NTLM (" +
                    (l.ntlm_users.empty() ? std::string("domain accounts via winbind")
                                          : "accounts of " + l.ntlm_users) +
                    (l.ntlm_allow_v1 ? ", NTLMv1 allowed" : ", NTLMv2 only") + ")";
        if (!l.keytab.empty() && std::filesystem::exists(l.keytab)) {
            endpoint.credentials =
                auth::AcceptorCredentials::from_keytab(l.keytab, l.service_names, c.replay_cache);
            std::string spns;
            for (const auto& p : auth::keytab_principals(l.keytab))
                spns += (spns.empty() ? "" : ", ") + p;
            auth_note += " and Kerberos: keytab " + l.keytab + " (" + spns + ")";
        } else if (!l.keytab.empty()) {
            endpoint.pending_keytab =
                std::make_shared<PendingKeytab>(l.keytab, l.service_names, c.replay_cache);
            auth_note += "; Kerberos once keytab " + l.keytab + " appears";
        }
    }
    if (l.auth == config::AuthKind::Kerberos) {
        if (l.keytab.empty() || !std::filesystem::exists(l.keytab)) {
            auth_note = "MISSING keytab" + (l.keytab.empty() ? std::string() : " " + l.keytab) +
                        ": Windows hosts cannot authenticate until one with " +
                        l.service_names.front() +
                        " is configured (--keytab); it is loaded once it appears there";
            // Picked up without a restart once it is provisioned at that path.
            if (!l.keytab.empty())
                endpoint.pending_keytab =
                    std::make_shared<PendingKeytab>(l.keytab, l.service_names, c.replay_cache);
        } else {
            endpoint.credentials =
                auth::AcceptorCredentials::from_keytab(l.keytab, l.service_names, c.replay_cache);
            std::string spns;
            for (const auto& p : auth::keytab_principals(l.keytab))
                spns += (spns.empty() ? "" : ", ") + p;
            auth_note = "keytab " + l.keytab + " (" + spns + ")";
        }
    }
    return auth_note;
}

void CollectorService::Impl::gpo_notes(const pipeline::CollectorConfig& pc,
                                       const std::string& issuer_hint) {
    const auto& c = config;
    for (const auto& l : c.listeners) {
        if (config::uses_gss(l.auth))
            notes.push_back("GPO for domain hosts: Server=http://" + c.hostname + ":" +
                            std::to_string(pc.http_port) +
                            "/wsman/SubscriptionManager/WEC,Refresh=60");
        else if (l.auth == config::AuthKind::Tls)
            notes.push_back("GPO for certificate hosts: Server=HTTPS://" + c.hostname + ":" +
                            std::to_string(pc.https_port) +
                            "/wsman/,Refresh=60,IssuerCA=" + issuer_hint);
    }
}

void CollectorService::Impl::make_metrics_listener(CollectorService& service) {
    const auto& c = config;
    Limits ml; // GET requests of a scraper or a load balancer's health check
    ml.max_body_bytes = 4096;
    ml.max_header_bytes = 8192;
    ml.idle_timeout = std::chrono::seconds(60);
    ml.read_timeout = std::chrono::seconds(10);
    ml.max_connections = 64;
    metrics_http = std::make_unique<HttpServer>(log, ml, 1, 1);
    metrics_endpoint.log = &log;
    metrics_endpoint.scrape = [&service] { return service.scrape(); };
    metrics_endpoint.not_ready = [&service] { return service.not_ready(); };
    const MetricsEndpoint* mep = &metrics_endpoint;
    ListenerConfig listener;
    listener.endpoint = parse_endpoint(c.metrics_address);
    listener.name = c.metrics_address;
    listener.factory = [mep](const PeerInfo&) { return std::make_unique<MetricsConnection>(*mep); };
    metrics_port = metrics_http->add_listener(std::move(listener));
    notes.push_back("metrics: http://" + c.metrics_address + " (bound port " +
                    std::to_string(*metrics_port) +
                    "): /metrics, /healthz, /readyz; plain HTTP, no authentication");
}

void CollectorService::Impl::subscription_notes() {
    auto names = collector->subscription_names();
    std::string list;
    for (const auto& n : names)
        list += (list.empty() ? "" : ", ") + n;
    auto health = collector->store_health();
    if (!health.ok)
        notes.push_back("subscriptions: NOT loaded, the store failed (retrying): " + health.error);
    else
        notes.push_back("subscriptions: " + (names.empty()
                                                 ? std::string("NONE enabled: add one with "
                                                               "`wec sub apply FILE --db " +
                                                               store->describe() + "`")
                                                 : list));
    for (const auto& b : health.broken)
        notes.push_back("subscription " + b.name + " (uuid " + b.uuid +
                        ") NOT served: its stored definition cannot be read: " + b.error);
}

CollectorService::CollectorService(Logger& log, config::ServeConfig cfg)
    : impl_(std::make_unique<Impl>(log, std::move(cfg))) {
    auto& s = *impl_;
    config::finalize(s.config);
    const auto& c = s.config;
    // Process-wide, before any thread starts (see auth/ntlm.hpp); per-listener policy stays ours.
    for (const auto& l : c.listeners)
        if (l.auth == config::AuthKind::Negotiate && l.ntlm_allow_v1)
            auth::let_gss_ntlmssp_accept_v1();
    s.open_store();
    s.make_http_server();
    const auto pc = s.make_collector();
    s.warn_about_privileges();
    std::string issuer_hint;
    for (const auto& l : c.listeners)
        s.make_listener(l, issuer_hint);
    s.gpo_notes(pc, issuer_hint);
    if (!c.metrics_address.empty()) s.make_metrics_listener(*this);
    s.subscription_notes();
}

CollectorService::~CollectorService() {
    try {
        stop();
    } catch (...) {
    }
}

void CollectorService::start() {
    impl_->heartbeats->start();
    impl_->http->start();
    impl_->running = true;
    impl_->serving = true;
    if (impl_->metrics_http) impl_->metrics_http->start();
}

void CollectorService::stop() {
    auto& s = *impl_;
    if (!s.running) return;
    s.running = false;
    s.serving = false; // /readyz answers 503 while the listeners drain
    s.http->stop(std::chrono::seconds(s.config.drain_timeout_s));
    s.heartbeats->stop();
    if (s.metrics_http) s.metrics_http->stop(std::chrono::seconds(2));
}

void CollectorService::tick() {
    auto& s = *impl_;
    try {
        s.collector->refresh(); // handles store errors itself (logged, counted, backed off)
        if (s.tick_failing) s.log.info("periodic work succeeds again");
        s.tick_failing = false;
    } catch (const std::exception& e) {
        ++s.tick_errors;
        if (!s.tick_failing)
            s.log.error("periodic work failed; still serving, retrying every tick",
                        {{"error", e.what()}});
        s.tick_failing = true;
    }
}

pipeline::StoreHealth CollectorService::store_health() const {
    return impl_->collector->store_health();
}

std::uint64_t CollectorService::tick_errors() const {
    return impl_->tick_errors;
}

void CollectorService::reopen_outputs() {
    impl_->collector->reopen_outputs();
}

bool CollectorService::reload_tls() {
    auto& s = *impl_;
    bool ok = true;
    for (const auto& [index, settings] : s.tls_listeners) {
        try {
            auto fresh = make_tls_context(settings);
            for (const auto& w : tls_warnings(*fresh))
                s.log.warn(w, {{"listener", s.config.listeners.at(index).address}});
            s.http->set_tls_context(index, std::move(fresh));
            s.log.info("TLS certificate, CAs and CRLs reloaded",
                       {{"listener", s.config.listeners.at(index).address}});
        } catch (const std::exception& e) {
            ok = false;
            s.log.error("TLS reload failed: the listener keeps its previous certificate and CRLs",
                        {{"listener", s.config.listeners.at(index).address}, {"error", e.what()}});
        }
    }
    return ok;
}

std::vector<std::string> CollectorService::summary() const {
    return impl_->notes;
}

std::vector<std::uint16_t> CollectorService::ports() const {
    return impl_->ports;
}

std::optional<std::uint16_t> CollectorService::metrics_port() const {
    return impl_->metrics_port;
}

std::string CollectorService::not_ready() const {
    const auto& s = *impl_;
    if (!s.serving) return "the listeners are not accepting (starting or stopping)";
    auto health = s.collector->store_health();
    if (!health.ok) return "state store unreachable: " + health.error;
    return {};
}

// The counters of the registry and of the requests, then what is read at scrape time: the
// server's connection counts, the store's health, hosts and queue depths (no store query).
std::string CollectorService::scrape() const {
    using metrics::Type;
    const auto& s = *impl_;
    metrics::Exposition out;
    s.registry.write(out);
    s.requests.write(out);

    auto family = [&](const char* name, const char* help, Type type, auto value) {
        out.family(name, help, type);
        out.sample(name, {}, value);
    };
    auto server = s.http->stats();
    family("wec_connections_open", "WinRM connections open now.", Type::Gauge,
           server.connections_open);
    family("wec_connections_total", "WinRM connections accepted.", Type::Counter,
           server.connections_total);
    family("wec_connections_refused_total",
           "Connections closed at once because max_connections were open.", Type::Counter,
           server.connections_refused);
    family("wec_limit_violations_total",
           "Requests answered 400/431 by the HTTP layer (too large, malformed).", Type::Counter,
           server.limit_violations);
    out.family("wec_tls_handshake_failures_total",
               "TLS handshakes that failed, by reason: certificate (the client's was refused: "
               "untrusted, expired, revoked, no clientAuth EKU), no_certificate, protocol.",
               Type::Counter);
    for (auto [reason, n] : {std::pair{"certificate", server.tls_refused_certificate},
                             {"no_certificate", server.tls_no_certificate},
                             {"protocol", server.tls_protocol_errors}})
        out.sample("wec_tls_handshake_failures_total", {{"reason", reason}}, n);
    family("wec_proxy_refused_total",
           "Connections refused on a PROXY protocol listener for want of a valid header.",
           Type::Counter, server.proxy_refused);
    const std::string stand_ins_help =
        "Times a worker ran the network because request handlers had held every I/O thread for " +
        std::to_string(kStandInAfter.count()) +
        " ms (handler_threads = io): a store or output that blocks.";
    family("wec_handler_stand_ins_total", stand_ins_help.c_str(), Type::Counter, server.stand_ins);

    auto health = s.collector->store_health();
    family("wec_store_up", "1 when the last query of the state store succeeded.", Type::Gauge,
           health.ok ? 1 : 0);
    family("wec_store_errors_total",
           "State store errors: failed reloads and requests refused with 503 for the store.",
           Type::Counter, health.errors);
    family("wec_heartbeat_flush_failures_total",
           "Batched heartbeat writes to the store that failed (retried).", Type::Counter,
           health.heartbeat_flush_failures);

    auto gauges = s.collector->gauges();
    out.family("wec_output_queue_depth", "Batches waiting in the output's queue.", Type::Gauge);
    for (const auto& g : gauges)
        for (const auto& q : g.queues)
            out.sample("wec_output_queue_depth", {{"subscription", g.name}, {"output", q.output}},
                       q.waiting);
    out.family("wec_output_queue_capacity",
               "Batches the output's queue holds; beyond, batches are refused (queue_full).",
               Type::Gauge);
    for (const auto& g : gauges)
        for (const auto& q : g.queues)
            out.sample("wec_output_queue_capacity",
                       {{"subscription", g.name}, {"output", q.output}}, q.capacity);
    out.family("wec_hosts",
               "Hosts of the subscription by state, as `wec status` classifies them: active "
               "(events within the heartbeat interval), alive (heartbeats only), dead (neither). "
               "From what this node saw, and the store held at its start.",
               Type::Gauge);
    for (const auto& g : gauges)
        for (auto [state, n] :
             {std::pair{"active", g.active}, {"alive", g.alive}, {"dead", g.dead}})
            out.sample("wec_hosts", {{"subscription", g.name}, {"state", state}}, n);

    out.family("wec_build_info", "Always 1; the version of wec serve in a label.", Type::Gauge);
    out.sample("wec_build_info", {{"version", WEC_VERSION}}, 1);
    return out.take();
}

} // namespace wec::server

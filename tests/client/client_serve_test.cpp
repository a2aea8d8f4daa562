// The client core (lib/client) against the real `wec serve` binary and a real MIT KDC: the full
// WEF sequence in both Kerberos forms and both MIME forms, and the negative cases a collector
// must get right (tampering, replay, limits, bad SLDC, unknown subscription, client not allowed,
// bad multipart framing, unsealed body, unsupported Content-Encoding, failing output with several
// outputs, a malformed event inside a batch, kill -9 without losing acknowledged events).
#include "client/client.hpp"
#include "client/load.hpp"
#include "event/event.hpp"
#include "evtx/evtx.hpp"
#include "http/http.hpp"
#include "support/files.hpp"
#include "support/krb5_realm.hpp"
#include "support/process.hpp"
#include "support/wef_realm.hpp"
#include "text/text.hpp"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace client = wec::client;

const std::string kHost = "srv.windomain.local";
const std::string kClient = "WIN10$@WINDOMAIN.LOCAL";

std::string record_id_of(const nlohmann::json& j) {
    const auto& id = j["System"]["EventRecordID"];
    return id.is_string() ? id.get<std::string>() : id.dump();
}

// The client core runs in this process: MIT Kerberos is pointed at the test realm.
struct Realm : WefRealm {
    Realm() : WefRealm(kHost) {
        realm.apply_env();
        ::setenv("KRB5CCNAME", ccache.c_str(), 1);
    }
};
class ClientServe : public ::testing::Test {
protected:
    static inline std::unique_ptr<Realm> realm_;
    static void SetUpTestSuite() { realm_ = std::make_unique<Realm>(); }
    static void TearDownTestSuite() { realm_.reset(); }

    TempDir dir;
    std::string db;
    int port = 0;
    std::unique_ptr<Process> server;

    void SetUp() override { db = "sqlite:" + (dir.path() / "wec.db").string(); }
    void TearDown() override {
        if (server && HasFailure()) std::cerr << "---- wec serve log ----\n" << server->output();
    }

    fs::path json_file() const { return dir.path() / "events" / "security" / (kClient + ".json"); }

    // `extra`: more top-level TOML lines (uuid, allowed_clients, ...); one JSON files output each.
    void apply_subscription(const std::string& name, const std::vector<fs::path>& outputs,
                            const std::string& extra = {}) {
        auto file = dir.path() / (name + ".toml");
        std::ofstream toml(file);
        toml << "name = \"" << name << "\"\n"
             << "query = '<QueryList><Query Id=\"0\"><Select "
                "Path=\"Security\">*</Select></Query></QueryList>'\n"
             << extra;
        for (const auto& output : outputs)
            toml << "[[outputs]]\ndriver = \"files\"\npath = \"" << output.string()
                 << "\"\nformat = \"json\"\n";
        toml.close();
        auto r = run({WEC_EXE, "sub", "apply", file.string(), "--db", db});
        ASSERT_EQ(r.exit_code, 0) << r.output;
    }
    void apply_subscription(const std::string& name, const fs::path& output) {
        apply_subscription(name, std::vector<fs::path>{output});
    }
    void apply_security() {
        apply_subscription("security", dir.path() / "events" / "{subscription}" / "{client}.json");
    }

    void start_server(const std::string& config_toml = {}) {
        port = free_port();
        std::vector<std::string> argv{
            WEC_EXE,      "serve",    "--listen", "127.0.0.1:" + std::to_string(port),
            "--auth",     "kerberos", "--keytab", realm_->service_keytab.string(),
            "--hostname", kHost,      "--db",     db};
        if (!config_toml.empty()) {
            auto cfg = dir.path() / "wec.toml";
            std::ofstream(cfg) << config_toml;
            argv.push_back("--config");
            argv.push_back(cfg.string());
        }
        server = std::make_unique<Process>(argv, realm_->realm.env(), dir.path() / "serve.log");
        ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    }

    client::SourceOptions source_options(wec::auth::Mechanism mech = wec::auth::Mechanism::Kerberos,
                                         bool tab = false) const {
        client::SourceOptions o;
        o.manager = client::Url::parse("http://127.0.0.1:" + std::to_string(port) +
                                       "/wsman/SubscriptionManager/WEC");
        o.service = "HTTP@" + kHost;
        o.mechanism = mech;
        o.ccache = realm_->ccache;
        o.tab_form = tab;
        o.timeout = 15s;
        return o;
    }

    // Enumerate + End; returns the subscription named `name`.
    wec::wsman::Subscription subscribe(client::Source& source,
                                       const std::string& name = "security") {
        auto subs = source.enumerate();
        source.end();
        for (auto& s : subs)
            if (s.name == name) return s;
        ADD_FAILURE() << "subscription " << name << " not offered";
        return {};
    }

    // apply_security(), start_server(`config_toml`), then a source subscribed to "security":
    // the push connection of its subscription (authenticated) and its target, for posting
    // hand-made bodies. The source lives as long as the test.
    struct Push {
        client::Source& source;
        wec::wsman::Subscription sub;
        client::Connection& connection;
        std::string target;
    };
    Push push_security(const std::string& config_toml = {}) {
        apply_security();
        start_server(config_toml);
        pusher_ = std::make_unique<client::Source>(source_options());
        auto sub = subscribe(*pusher_);
        auto& c = pusher_->push_connection(sub);
        return {*pusher_, sub, c, pusher_->push_url(sub).target};
    }
    std::unique_ptr<client::Source> pusher_; // after `server`: destroyed before it

    client::ConnectionOptions connection_options(const wec::wsman::Subscription&) const {
        client::ConnectionOptions c;
        c.host = "127.0.0.1";
        c.port = static_cast<std::uint16_t>(port);
        c.service = "HTTP@" + kHost;
        c.ccache = realm_->ccache;
        c.sldc_header = true;
        c.timeout = 15s;
        return c;
    }

    std::string events_soap(client::Source& source, const wec::wsman::Subscription& sub,
                            const std::vector<std::string>& events, const std::string& bookmark) {
        std::vector<std::string_view> v(events.begin(), events.end());
        return wec::wsman::build_events(source.headers_for(sub), v, bookmark);
    }

    std::vector<std::string> generate(std::size_t n, std::uint64_t first_record = 5000) {
        client::EventGenerator gen("win10.windomain.local", 7, first_record);
        std::vector<std::string> out;
        for (std::size_t i = 0; i < n; ++i)
            out.push_back(gen.next());
        return out;
    }

    // A Security-channel BookmarkList at `record`.
    static std::string bookmark_at(std::uint64_t record) {
        return client::security_bookmark(record);
    }

    // Sends a batch the collector must refuse with HTTP `status`.
    static void expect_refused(client::Source& source, const wec::wsman::Subscription& sub,
                               const std::vector<std::string>& events, const std::string& bookmark,
                               unsigned status) {
        try {
            source.send_events(sub, events, bookmark);
            ADD_FAILURE() << "expected HTTP " << status;
        } catch (const client::ClientError& e) {
            EXPECT_EQ(e.http_status(), status) << e.what();
        }
    }
};

// ---- the full sequence, in every form
// ------------------------------------------------------------

struct Form {
    wec::auth::Mechanism mech;
    bool tab;
};

class ClientServeForms : public ClientServe, public ::testing::WithParamInterface<Form> {};

TEST_P(ClientServeForms, FullSequence) {
    apply_security();
    start_server();
    client::Source source(source_options(GetParam().mech, GetParam().tab));

    // auth -> Enumerate -> End
    auto subs = source.enumerate();
    ASSERT_EQ(subs.size(), 1u);
    auto sub = subs[0];
    EXPECT_EQ(sub.name, "security");
    EXPECT_EQ(sub.compression, "SLDC");
    EXPECT_TRUE(sub.bookmark.empty()) << sub.bookmark;
    EXPECT_NE(sub.notify_to.find("/wsman/subscriptions/"), std::string::npos) << sub.notify_to;
    source.end();

    // new connection -> Heartbeat -> Events (SLDC-compressed by our compressor)
    auto hb = source.heartbeat(sub);
    EXPECT_EQ(hb.reply.action, wec::wsman::Action::Ack);
    client::EventGenerator gen("win10.windomain.local", 3, 7000);
    std::vector<std::string> events;
    for (int i = 0; i < 25; ++i)
        events.push_back(gen.next());
    auto ack = source.send_events(sub, events, gen.bookmark());
    EXPECT_EQ(ack.reply.relates_to, ack.message_id);

    // re-Enumerate (new connection) shows the stored bookmark
    client::Source again(source_options(GetParam().mech, GetParam().tab));
    auto subs2 = again.enumerate();
    again.end();
    ASSERT_EQ(subs2.size(), 1u);
    EXPECT_NE(subs2[0].bookmark.find("RecordId=\"7024\""), std::string::npos) << subs2[0].bookmark;
    EXPECT_NE(subs2[0].bookmark.find("Channel=\"Security\""), std::string::npos)
        << subs2[0].bookmark;

    // SubscriptionEnd
    EXPECT_EQ(source.subscription_end(sub), 204u);

    // The 25 events are in the JSON file of this client, in order, with their content.
    auto lines = lines_of(slurp(json_file()));
    ASSERT_EQ(lines.size(), 25u) << json_file();
    auto first = nlohmann::json::parse(lines.front());
    EXPECT_EQ(record_id_of(first), "7000");
    EXPECT_EQ(first["System"]["Computer"], "win10.windomain.local");
    EXPECT_EQ(first["System"]["Channel"], "Security");
    EXPECT_EQ(first["OpenWEC"]["Client"], kClient);
    EXPECT_EQ(first["OpenWEC"]["Subscription"]["Name"], "security");
    EXPECT_TRUE(first.contains("EventData")) << lines.front();
    EXPECT_EQ(record_id_of(nlohmann::json::parse(lines.back())), "7024");
    std::string id = first["System"]["EventID"].is_string()
                         ? first["System"]["EventID"].get<std::string>()
                         : first["System"]["EventID"].dump();
    EXPECT_TRUE(id == "4624" || id == "4688") << id;
}

INSTANTIATE_TEST_SUITE_P(AllForms, ClientServeForms,
                         ::testing::Values(Form{wec::auth::Mechanism::Kerberos, false},
                                           Form{wec::auth::Mechanism::Kerberos, true},
                                           Form{wec::auth::Mechanism::Spnego, false},
                                           Form{wec::auth::Mechanism::Spnego, true}),
                         [](const ::testing::TestParamInfo<Form>& p) {
                             return std::string(p.param.mech == wec::auth::Mechanism::Spnego
                                                    ? "spnego"
                                                    : "kerberos") +
                                    (p.param.tab ? "_tab" : "_notab");
                         });

// ---- negative cases -----------------------------------------------------------------------------

TEST_F(ClientServe, TamperedCiphertextIs400AndNothingStored) {
    apply_security();
    start_server();
    client::Source source(source_options());
    auto sub = subscribe(source);
    auto& c = source.push_connection(sub);
    auto body = c.prepare(events_soap(source, sub, generate(5), "<BookmarkList/>"), true);
    // Flip a byte of the ciphertext (just before the closing boundary).
    std::string closing = "--Encrypted Boundary--\r\n";
    ASSERT_GT(body.body.size(), closing.size() + 10);
    body.body[body.body.size() - closing.size() - 5] ^= 0x40;
    auto r = c.post_prepared(source.push_url(sub).target, std::move(body));
    EXPECT_EQ(r.status, 400u) << r.text();
    EXPECT_FALSE(fs::exists(json_file()));
    EXPECT_TRUE(server->wait_for_output("cannot decrypt", 5s)) << server->output();
}

TEST_F(ClientServe, RequestReplayedOnAnotherConnectionIs400) {
    apply_security();
    start_server();
    client::Source source(source_options());
    auto sub = subscribe(source);
    auto target = source.push_url(sub).target;

    client::Connection one(connection_options(sub));
    one.connect(target);
    auto body = one.prepare(events_soap(source, sub, generate(4), "<BookmarkList/>"), true);
    auto copy = body;
    auto r1 = one.post_prepared(target, std::move(body));
    ASSERT_EQ(r1.status, 200u) << r1.text();

    client::Connection two(connection_options(sub));
    two.connect(target); // its own, valid authentication
    auto r2 = two.post_prepared(target, copy);
    EXPECT_EQ(r2.status, 400u) << r2.text();

    // Only the original batch was written.
    EXPECT_EQ(lines_of(slurp(json_file())).size(), 4u);
}

TEST_F(ClientServe, BodyLargerThanTheLimitIs400) {
    auto [source, sub, c, target] = push_security("[limits]\nmax_body_bytes = 8192\n");

    // One event of ~20 KB of highly compressible text: small on the wire, large once decompressed.
    auto big = generate(1);
    big[0].insert(big[0].find("</EventData>"),
                  "<Data Name='Padding'>" + std::string(20000, 'A') + "</Data>");
    auto compressed = c.prepare(events_soap(source, sub, big, "<BookmarkList/>"), true);
    ASSERT_LT(compressed.body.size(), 8192u);
    auto r = c.post_prepared(target, std::move(compressed));
    EXPECT_EQ(r.status, 400u) << r.text();
    EXPECT_NE(r.text().find("decompression"), std::string::npos) << r.text();

    // The same, uncompressed: too large after decryption already.
    if (!c.is_open()) c.connect(target);
    auto plain = c.prepare(events_soap(source, sub, big, "<BookmarkList/>"), false);
    auto r2 = c.post_prepared(target, std::move(plain));
    EXPECT_EQ(r2.status, 400u) << r2.text();
    EXPECT_FALSE(fs::exists(json_file()));

    // A batch under the limit still goes through.
    if (!c.is_open()) c.connect(target);
    auto ack = source.send_events(sub, generate(1), "<BookmarkList/>");
    EXPECT_EQ(ack.reply.action, wec::wsman::Action::Ack);
}

TEST_F(ClientServe, TruncatedBodyIsClosedAfterTheReadTimeout) {
    apply_security();
    start_server("[limits]\nread_timeout = 1\n");
    client::ConnectionOptions o;
    o.host = "127.0.0.1";
    o.port = static_cast<std::uint16_t>(port);
    o.timeout = 15s;
    o.service = "HTTP@" + kHost;
    o.ccache = realm_->ccache;
    client::Connection c(o);
    // Authenticated first: an unauthenticated head is answered 401 before its body is read.
    c.connect("/wsman/SubscriptionManager/WEC");
    std::string request = "POST /wsman/SubscriptionManager/WEC HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Content-Type: application/soap+xml;charset=UTF-16\r\n"
                          "Content-Length: 1000\r\nConnection: Keep-Alive\r\n\r\n" +
                          std::string(100, 'x');
    auto start = std::chrono::steady_clock::now();
    try {
        auto r = c.exchange_raw(request);
        ADD_FAILURE() << "expected the connection to be closed, got HTTP " << r.status;
    } catch (const client::ClientError& e) {
        EXPECT_EQ(e.kind(), client::ErrorKind::Transport) << e.what();
    }
    auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_GE(elapsed, 900ms);
    EXPECT_LT(elapsed, 10s);
}

TEST_F(ClientServe, BadSldcFallsBackToRawAndFailsAsSoap) {
    auto [source, sub, c, target] = push_security();

    // Not an SLDC record (a literal before any scheme) and not SOAP either.
    std::vector<std::uint8_t> garbage{0x00, 0x01, 'n', 'o', 't', ' ', 's', 'l', 'd', 'c'};
    auto r = c.post_prepared(target, c.prepare_bytes(garbage, true));
    EXPECT_EQ(r.status, 400u) << r.text();
    EXPECT_NE(r.text().find("malformed SOAP"), std::string::npos) << r.text();

    // An uncompressed body announced as SLDC (Windows' End, SubscriptionEnd) is taken as is.
    if (!c.is_open()) c.connect(target);
    auto soap = wec::wsman::build_heartbeat(source.headers_for(sub));
    auto plain = c.prepare(soap, false);
    auto r2 = c.post_prepared(target, std::move(plain), client::RequestOptions{{}, true});
    EXPECT_EQ(r2.status, 200u) << r2.text();
    ASSERT_TRUE(r2.message);
    EXPECT_EQ(r2.message->action, wec::wsman::Action::Ack);
}

TEST_F(ClientServe, UnknownSubscriptionIs404) {
    apply_security();
    start_server();
    client::Source source(source_options());
    auto sub = subscribe(source);
    auto fake = sub;
    fake.notify_to = "http://" + kHost + ":" + std::to_string(port) +
                     "/wsman/subscriptions/0BADC0DE-0000-4000-8000-000000000000";
    expect_refused(source, fake, generate(1), "<BookmarkList/>", 404);
    EXPECT_FALSE(fs::exists(json_file()));
}

TEST_F(ClientServe, FailingOutputIs503ThenTheRetryIsWritten) {
    // The output's parent directory is a regular file: nothing can be created under it (this
    // works as root too, where permissions would not).
    auto blocker = dir.path() / "out";
    apply_subscription("security", blocker / "{client}.json");
    std::ofstream(blocker) << "not a directory\n";
    start_server();
    client::Source source(source_options());
    auto sub = subscribe(source);
    auto events = generate(10, 9000);
    std::string bookmark = bookmark_at(9009);
    expect_refused(source, sub, events, bookmark, 503);
    {
        client::Source check(source_options());
        auto s = subscribe(check);
        EXPECT_TRUE(s.bookmark.empty()) << "bookmark stored for a failed batch: " << s.bookmark;
    }

    // Fixed: the same batch is resent and written.
    fs::remove(blocker);
    auto ack = source.send_events(sub, events, bookmark);
    EXPECT_EQ(ack.reply.action, wec::wsman::Action::Ack);
    auto lines = lines_of(slurp(blocker / (kClient + ".json")));
    ASSERT_EQ(lines.size(), 10u);
    EXPECT_EQ(record_id_of(nlohmann::json::parse(lines.front())), "9000");
    client::Source check(source_options());
    auto s = subscribe(check);
    EXPECT_NE(s.bookmark.find("RecordId=\"9009\""), std::string::npos) << s.bookmark;
}

TEST_F(ClientServe, KillDuringStreamLosesNoAcknowledgedEvent) {
    apply_security();
    start_server();
    std::set<std::string> acked;
    std::atomic<int> batches{0};
    std::string error;
    std::thread sender([&] {
        try {
            client::Source source(source_options());
            auto sub = subscribe(source);
            client::EventGenerator gen("win10.windomain.local", 11, 20000);
            for (int b = 0; b < 100000; ++b) {
                std::vector<std::string> events;
                for (int i = 0; i < 20; ++i)
                    events.push_back(gen.next());
                source.send_events(sub, events, gen.bookmark());
                for (std::uint64_t id = gen.last_record() - 19; id <= gen.last_record(); ++id)
                    acked.insert(std::to_string(id));
                ++batches;
            }
        } catch (const std::exception& e) {
            error = e.what();
        }
    });
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (batches < 20 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(10ms);
    server->signal(SIGKILL);
    sender.join();
    EXPECT_GE(batches.load(), 20);
    EXPECT_FALSE(error.empty()); // the stream was cut by the kill

    std::set<std::string> written;
    for (const auto& line : lines_of(slurp(json_file()))) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded()) written.insert(record_id_of(j));
    }
    std::size_t missing = 0;
    for (const auto& id : acked)
        missing += written.count(id) == 0;
    EXPECT_EQ(missing, 0u) << acked.size() << " acked, " << written.size() << " written";
    EXPECT_GE(written.size(), acked.size());
}

// ---- protocol status codes (docs/protocol.md section 5) -----------------------------------------

TEST_F(ClientServe, ClientNotAllowedBySubscriptionIs403) {
    apply_security();
    const std::string denied_uuid = "6A1E0F3C-2B4D-4E5F-8A9B-0C1D2E3F4A5B";
    apply_subscription(
        "restricted", {dir.path() / "restricted" / "{client}.json"},
        "uuid = \"" + denied_uuid +
            "\"\nallowed_clients = [\"OTHER$@WINDOMAIN.LOCAL\", \"*@OTHER.REALM\"]\n");
    // Control: a case-insensitive glob that matches this client's principal.
    apply_subscription("permitted", {dir.path() / "permitted" / "{client}.json"},
                       "allowed_clients = [\"win10$@*\"]\n");
    // Allowed by one pattern, denied by another: the denial wins (Windows' DeniedSubjectList).
    apply_subscription("denied", {dir.path() / "denied" / "{client}.json"},
                       "allowed_clients = [\"*$@WINDOMAIN.LOCAL\"]\n"
                       "denied_clients = [\"WIN1?$@WINDOMAIN.LOCAL\"]\n");
    start_server();
    client::Source source(source_options());

    // Only the subscriptions this client is allowed are offered...
    auto subs = source.enumerate();
    source.end();
    std::set<std::string> offered;
    for (const auto& s : subs)
        offered.insert(s.name);
    EXPECT_EQ(offered, (std::set<std::string>{"security", "permitted"}));
    wec::wsman::Subscription security;
    for (const auto& s : subs)
        if (s.name == "security") security = s;
    ASSERT_EQ(security.name, "security");

    // ...and pushing to the NotifyTo address of the other one anyway is refused with 403.
    auto denied = security;
    denied.notify_to =
        "http://" + kHost + ":" + std::to_string(port) + "/wsman/subscriptions/" + denied_uuid;
    expect_refused(source, denied, generate(3), "<BookmarkList/>", 403);
    EXPECT_TRUE(server->wait_for_output("client not allowed by subscription restricted", 5s))
        << server->output();
    EXPECT_FALSE(fs::exists(dir.path() / "restricted"));
    EXPECT_FALSE(fs::exists(json_file()));

    // The subscription it is allowed still takes its events.
    auto ack = source.send_events(security, generate(2), "<BookmarkList/>");
    EXPECT_EQ(ack.reply.action, wec::wsman::Action::Ack);
    EXPECT_EQ(lines_of(slurp(json_file())).size(), 2u);
    EXPECT_FALSE(fs::exists(dir.path() / "restricted"));
}

TEST_F(ClientServe, OriginalContentLengthMismatchIs400) {
    auto [source, sub, c, target] = push_security();
    auto body = c.prepare(events_soap(source, sub, generate(5), "<BookmarkList/>"), true);

    // OriginalContent: type=...;Length=<N>: change N, keeping its number of digits (the body
    // size and the rest of the framing stay exactly the same).
    std::string_view text(reinterpret_cast<const char*>(body.body.data()), body.body.size());
    auto at = text.find("Length=");
    ASSERT_NE(at, std::string_view::npos);
    at += 7;
    auto end = text.find_first_not_of("0123456789", at);
    ASSERT_NE(end, std::string_view::npos);
    ASSERT_GT(end, at);
    std::string original(text.substr(at, end - at));
    auto& last = body.body[end - 1];
    last = last == '9' ? '8' : static_cast<std::uint8_t>(last + 1);
    std::string changed(reinterpret_cast<const char*>(body.body.data()) + at, end - at);
    ASSERT_NE(changed, original);
    ASSERT_EQ(changed.size(), original.size());

    auto r = c.post_prepared(target, std::move(body));
    EXPECT_EQ(r.status, 400u) << r.text();
    EXPECT_NE(r.text().find("OriginalContent Length=" + changed), std::string::npos) << r.text();
    EXPECT_FALSE(fs::exists(json_file()));

    // The correct batch after it is taken.
    if (!c.is_open()) c.connect(target);
    auto ack = source.send_events(sub, generate(5), "<BookmarkList/>");
    EXPECT_EQ(ack.reply.action, wec::wsman::Action::Ack);
    EXPECT_EQ(lines_of(slurp(json_file())).size(), 5u);
}

TEST_F(ClientServe, MultipartWithoutClosingBoundaryIs400) {
    auto [source, sub, c, target] = push_security();
    auto body = c.prepare(events_soap(source, sub, generate(3), "<BookmarkList/>"), true);
    const std::string closing = "--Encrypted Boundary--\r\n";
    ASSERT_GT(body.body.size(), closing.size());
    ASSERT_TRUE(std::equal(closing.begin(), closing.end(), body.body.end() - closing.size()));
    body.body.resize(body.body.size() - closing.size());

    auto r = c.post_prepared(target, std::move(body));
    EXPECT_EQ(r.status, 400u) << r.text();
    EXPECT_NE(r.text().find("closing boundary"), std::string::npos) << r.text();
    EXPECT_FALSE(fs::exists(json_file()));
}

TEST_F(ClientServe, PlainBodyAfterKerberosAuthenticationIs400) {
    auto [source, sub, c, target] = push_security();
    ASSERT_TRUE(c.authenticated());

    // A well-formed SOAP Events message, UTF-16LE + BOM, but not sealed (the HTTPS form).
    client::PreparedBody plain;
    wec::text::append_utf8_to_utf16le(events_soap(source, sub, generate(2), "<BookmarkList/>"),
                                      plain.body, true);
    plain.content_type = std::string(wec::http::kDefaultOriginalType);
    auto r = c.post_prepared(target, std::move(plain));
    EXPECT_EQ(r.status, 400u) << r.text();
    EXPECT_FALSE(r.sealed);
    EXPECT_NE(r.text().find("multipart/encrypted"), std::string::npos) << r.text();
    EXPECT_TRUE(server->wait_for_output("unencrypted body on a Kerberos listener", 5s))
        << server->output();
    EXPECT_FALSE(fs::exists(json_file()));
}

TEST_F(ClientServe, UnsupportedContentEncodingIs400) {
    auto [source, sub, c, target] = push_security();

    // An SLDC body announced as gzip: the collector cannot read it and must say so.
    auto gzip = c.prepare(events_soap(source, sub, generate(3, 100), "<BookmarkList/>"), true);
    auto r = c.post_prepared(target, std::move(gzip),
                             client::RequestOptions{{{"Content-Encoding", "gzip"}}, false});
    EXPECT_EQ(r.status, 400u) << r.text();
    EXPECT_NE(r.text().find("unsupported Content-Encoding 'gzip'"), std::string::npos) << r.text();
    EXPECT_TRUE(server->wait_for_output("unsupported Content-Encoding 'gzip'", 5s))
        << server->output();
    // A readable (uncompressed) SOAP body announced with another encoding is refused as well,
    // not silently taken as is.
    if (!c.is_open()) c.connect(target);
    auto deflate = c.prepare(events_soap(source, sub, generate(3, 150), "<BookmarkList/>"), false);
    auto r1 = c.post_prepared(target, std::move(deflate),
                              client::RequestOptions{{{"Content-Encoding", "deflate"}}, false});
    EXPECT_EQ(r1.status, 400u) << r1.text();
    EXPECT_NE(r1.text().find("'deflate'"), std::string::npos) << r1.text();
    EXPECT_FALSE(fs::exists(json_file()));

    // SLDC is still accepted in any case...
    if (!c.is_open()) c.connect(target);
    auto sldc = c.prepare(events_soap(source, sub, generate(3, 200), "<BookmarkList/>"), true);
    auto r2 = c.post_prepared(target, std::move(sldc),
                              client::RequestOptions{{{"Content-Encoding", "sldc"}}, false});
    EXPECT_EQ(r2.status, 200u) << r2.text();
    ASSERT_TRUE(r2.message);
    EXPECT_EQ(r2.message->action, wec::wsman::Action::Ack);

    // ...and so is no Content-Encoding at all (auth POST included).
    auto o = connection_options(sub);
    o.sldc_header = false;
    client::Connection bare(o);
    bare.connect(target);
    auto r3 = bare.post_prepared(
        target, bare.prepare(events_soap(source, sub, generate(3, 300), "<BookmarkList/>"), false));
    EXPECT_EQ(r3.status, 200u) << r3.text();
    ASSERT_TRUE(r3.message);
    EXPECT_EQ(r3.message->action, wec::wsman::Action::Ack);

    auto lines = lines_of(slurp(json_file()));
    ASSERT_EQ(lines.size(), 6u);
    EXPECT_EQ(record_id_of(nlohmann::json::parse(lines[0])), "200");
    EXPECT_EQ(record_id_of(nlohmann::json::parse(lines[3])), "300");
}

// ---- outputs and events -------------------------------------------------------------------------

TEST_F(ClientServe, BookmarkMovesOnlyAfterEveryOutputWrote) {
    // Two outputs: the first writable, the second's parent directory a regular file.
    auto first = dir.path() / "first";
    auto blocker = dir.path() / "second";
    apply_subscription("security", {first / "{client}.json", blocker / "{client}.json"});
    std::ofstream(blocker) << "not a directory\n";
    start_server();
    client::Source source(source_options());
    auto sub = subscribe(source);
    auto events = generate(10, 9000);
    std::string bookmark = bookmark_at(9009);
    expect_refused(source, sub, events, bookmark, 503);
    EXPECT_TRUE(server->wait_for_output("output failed: its batches are refused with 503", 5s))
        << server->output();
    {
        client::Source check(source_options());
        auto s = subscribe(check);
        EXPECT_TRUE(s.bookmark.empty())
            << "bookmark stored though an output failed: " << s.bookmark;
    }

    // Fixed: the resent batch reaches both outputs (the first may hold it twice).
    fs::remove(blocker);
    auto ack = source.send_events(sub, events, bookmark);
    EXPECT_EQ(ack.reply.action, wec::wsman::Action::Ack);
    auto second_lines = lines_of(slurp(blocker / (kClient + ".json")));
    ASSERT_EQ(second_lines.size(), 10u);
    for (std::size_t i = 0; i < second_lines.size(); ++i)
        EXPECT_EQ(record_id_of(nlohmann::json::parse(second_lines[i])), std::to_string(9000 + i));
    auto first_lines = lines_of(slurp(first / (kClient + ".json")));
    EXPECT_TRUE(first_lines.size() == 10u || first_lines.size() == 20u) << first_lines.size();
    std::set<std::string> in_first;
    for (const auto& line : first_lines)
        in_first.insert(record_id_of(nlohmann::json::parse(line)));
    EXPECT_EQ(in_first.size(), 10u);
    EXPECT_EQ(*in_first.begin(), "9000");
    EXPECT_EQ(*in_first.rbegin(), "9009");

    client::Source check(source_options());
    auto s = subscribe(check);
    EXPECT_NE(s.bookmark.find("RecordId=\"9009\""), std::string::npos) << s.bookmark;
}

TEST_F(ClientServe, MalformedEventIsStoredWithAnErrorAndTheBatchAcked) {
    apply_security();
    start_server();
    client::Source source(source_options());
    auto sub = subscribe(source);
    auto events = generate(3, 6000);
    const std::string truncated = "<Event><System>";
    events[1] = truncated;
    std::string bookmark = bookmark_at(6002);
    auto ack = source.send_events(sub, events, bookmark);
    EXPECT_EQ(ack.reply.action, wec::wsman::Action::Ack);
    EXPECT_EQ(ack.reply.relates_to, ack.message_id);

    auto lines = lines_of(slurp(json_file()));
    ASSERT_EQ(lines.size(), 3u);
    auto before = nlohmann::json::parse(lines[0]);
    auto bad = nlohmann::json::parse(lines[1]);
    auto after = nlohmann::json::parse(lines[2]);
    // The complete events around it, whole and without an error.
    EXPECT_EQ(record_id_of(before), "6000");
    EXPECT_EQ(record_id_of(after), "6002");
    for (const auto* j : {&before, &after}) {
        EXPECT_EQ((*j)["System"]["Computer"], "win10.windomain.local");
        EXPECT_TRUE(j->contains("EventData")) << j->dump();
        EXPECT_FALSE((*j)["OpenWEC"].contains("Error")) << j->dump();
    }
    // The truncated one: kept as is, with the reason.
    ASSERT_TRUE(bad["OpenWEC"].contains("Error")) << lines[1];
    const auto& error = bad["OpenWEC"]["Error"];
    EXPECT_EQ(error["OriginalContent"], truncated);
    ASSERT_TRUE(error["Type"].is_string()) << lines[1];
    EXPECT_FALSE(error["Type"].get<std::string>().empty()) << lines[1];
    ASSERT_TRUE(error["Message"].is_string()) << lines[1];
    EXPECT_FALSE(error["Message"].get<std::string>().empty()) << lines[1];
    EXPECT_EQ(bad["OpenWEC"]["Client"], kClient);

    // The batch was acknowledged, so its bookmark is stored.
    client::Source check(source_options());
    auto s = subscribe(check);
    EXPECT_NE(s.bookmark.find("RecordId=\"6002\""), std::string::npos) << s.bookmark;
}

// ---- wec replay ---------------------------------------------------------------------------------

TEST_F(ClientServe, ReplayCommandPushesGeneratedEvents) {
    apply_security();
    start_server();
    auto env = realm_->realm.env();
    env["KRB5CCNAME"] = realm_->ccache;
    auto r = run({WEC_EXE,
                  "replay",
                  "--url",
                  "http://127.0.0.1:" + std::to_string(port) + "/wsman/SubscriptionManager/WEC",
                  "--service",
                  "HTTP@" + kHost,
                  "--subscription",
                  "security",
                  "--events",
                  "600",
                  "--batch",
                  "50",
                  "--hosts",
                  "3",
                  "--connections",
                  "2",
                  "--rate",
                  "100000",
                  "--json",
                  "--check",
                  json_file().string()},
                 env, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto start = r.output.find('{');
    ASSERT_NE(start, std::string::npos) << r.output;
    auto j = nlohmann::json::parse(r.output.substr(start));
    EXPECT_EQ(j["events_acked"], 600);
    // Each generated event is unique by (Computer, Channel, EventRecordID): all found in the
    // collector's JSON output, once.
    EXPECT_EQ(j["check"]["sent"], 600) << j.dump();
    EXPECT_EQ(j["check"]["acked"], 600);
    EXPECT_EQ(j["check"]["found"], 600);
    EXPECT_EQ(j["check"]["lost"], 0);
    EXPECT_EQ(j["check"]["duplicated"], 0);
    EXPECT_EQ(j["check"]["unexpected"], 0);
    EXPECT_EQ(j["check"]["unreadable_lines"], 0);
    EXPECT_EQ(j["batches_failed"], 0);
    EXPECT_GT(j["events_per_second"].get<double>(), 0.0);
    // All three simulated hosts share the one Kerberos identity: one file.
    EXPECT_EQ(lines_of(slurp(json_file())).size(), 600u);

    auto bad = run({WEC_EXE, "replay", "--url", "ftp://x", "--service", "HTTP@" + kHost}, env, 20s);
    EXPECT_EQ(bad.exit_code, 2) << bad.output;
}

// ---- wec replay --from: a capture decoded by `wec decode --format json`, replayed -------------

// Runs `ARGV... [<stdin_file] >out 2>err` (arguments have no spaces/quotes) with stdout and
// stderr kept apart.
struct Split {
    int exit_code = -1;
    std::string out, err;
};
Split run_split(const fs::path& work, const std::string& command,
                const std::map<std::string, std::string>& env = {}) {
    static int n = 0;
    auto out = work / ("cmd-" + std::to_string(++n) + ".out");
    auto err = work / ("cmd-" + std::to_string(n) + ".err");
    auto r = run({"/bin/sh", "-c", command + " >" + out.string() + " 2>" + err.string()}, env, 90s);
    return {r.exit_code, slurp(out), slurp(err)};
}

TEST_F(ClientServe, ReplayFromDecodedCapture) {
    const std::string sample = std::string(WEC_SOURCE_DIR) + "/samples/captures/";
    const std::string decode = std::string(WEC_EXE) + " decode " + sample + "wef-kerberos.pcap" +
                               " --keytab " + sample + "wec.keytab";
    auto jsonl = dir.path() / "capture.jsonl";
    auto d = run_split(dir.path(), decode + " --format json");
    ASSERT_EQ(d.exit_code, 0) << d.err;
    std::ofstream(jsonl, std::ios::binary) << d.out;
    auto expected = run_split(dir.path(), decode + " --events --event-format raw");
    ASSERT_EQ(expected.exit_code, 0) << expected.err;
    auto expected_events = lines_of(expected.out);
    ASSERT_EQ(expected_events.size(), 21u);
    std::string last_bookmark;
    std::size_t records = 0, events_messages = 0;
    for (const auto& line : lines_of(d.out)) {
        auto j = nlohmann::json::parse(line);
        ++records;
        if (j["direction"] == "request" && j.value("action", "") == "Events") {
            ++events_messages;
            last_bookmark = j["bookmark"];
        }
    }
    ASSERT_EQ(events_messages, 1u);
    ASSERT_FALSE(last_bookmark.empty());

    // A fresh collector (this suite's own realm) writing raw XML, one event a line.
    auto toml = dir.path() / "replayed.toml";
    std::ofstream(toml) << "name = \"replayed\"\n"
                        << "query = '<QueryList><Query Id=\"0\"><Select "
                           "Path=\"Security\">*</Select></Query></QueryList>'\n"
                        << "[[outputs]]\ndriver = \"files\"\npath = \""
                        << (dir.path() / "events" / "{subscription}" / "{client}.xml").string()
                        << "\"\nformat = \"raw\"\n";
    auto applied = run({WEC_EXE, "sub", "apply", toml.string(), "--db", db});
    ASSERT_EQ(applied.exit_code, 0) << applied.output;
    start_server();

    auto env = realm_->realm.env();
    env["KRB5CCNAME"] = realm_->ccache;
    const std::string url =
        "http://127.0.0.1:" + std::to_string(port) + "/wsman/SubscriptionManager/WEC";
    const std::string replay = std::string(WEC_EXE) + " replay --url " + url + " --service HTTP@" +
                               kHost + " --timeout 20";
    auto r = run_split(dir.path(), replay + " --from " + jsonl.string() + " --json", env);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["records"], records);
    EXPECT_EQ(j["events_messages"], 1);
    EXPECT_EQ(j["messages_acked"], 1);
    EXPECT_EQ(j["messages_failed"], 0);
    EXPECT_EQ(j["events_sent"], 21);
    EXPECT_EQ(j["events_acked"], 21);
    EXPECT_EQ(j["skipped"], 0);
    EXPECT_EQ(j["subscription"], "replayed");
    EXPECT_EQ(j["machine"], "win10.windomain.local"); // the recorded m:MachineID
    EXPECT_EQ(j["mechanism"], "kerberos");
    EXPECT_GE(j["seconds"].get<double>(), 0.0);
    EXPECT_GT(j["events_per_second"].get<double>(), 0.0);
    EXPECT_FALSE(j.contains("error")) << j.dump();

    // The collector wrote exactly the recorded events, in order, under the replaying identity.
    auto raw = dir.path() / "events" / "replayed" / (kClient + ".xml");
    EXPECT_EQ(lines_of(slurp(raw)), expected_events);
    // ... and stored the recorded bookmark (re-Enumerate hands it back).
    client::Source check(source_options());
    auto s = subscribe(check, "replayed");
    EXPECT_EQ(s.bookmark, last_bookmark);

    // The pipeline form, from stdin, with an unusable Events record appended: the good batch is
    // replayed, the bad record reported with its line, exit 1; the human summary says so.
    auto broken = dir.path() / "broken.jsonl";
    {
        std::ofstream f(broken, std::ios::binary);
        f << d.out << R"({"v":1,"direction":"request","action":"Events","body":"<s:Envelope><x"})"
          << "\n";
    }
    auto p = run_split(dir.path(), "cat " + broken.string() + " | " + replay + " --from -", env);
    EXPECT_EQ(p.exit_code, 1) << p.out << p.err;
    EXPECT_NE(p.err.find("-:" + std::to_string(records + 1) + ": skipped"), std::string::npos)
        << p.err;
    EXPECT_NE(p.out.find("events acked:   21 of 21 sent"), std::string::npos) << p.out;
    EXPECT_NE(p.out.find("skipped:        1 records"), std::string::npos) << p.out;
    EXPECT_EQ(lines_of(slurp(raw)).size(), 42u);

    // Malformed JSON: exit 2, the line named. A subscription that is not offered: exit 3.
    // Generated-mode options with --from: exit 2.
    auto garbage = dir.path() / "garbage.jsonl";
    std::ofstream(garbage) << "{\"v\":1}\n{not json\n";
    auto g = run_split(dir.path(), replay + " --from " + garbage.string(), env);
    EXPECT_EQ(g.exit_code, 2) << g.out << g.err;
    EXPECT_NE(g.err.find(garbage.string() + ":2: malformed JSON"), std::string::npos) << g.err;
    auto u =
        run_split(dir.path(), replay + " --from " + jsonl.string() + " --subscription nope", env);
    EXPECT_EQ(u.exit_code, 3) << u.out << u.err;
    EXPECT_NE(u.err.find("'nope' is not offered"), std::string::npos) << u.err;
    for (const char* option :
         {"--events 10", "--hosts 2", "--connections 2", "--batch 5", "--sldc-level best"}) {
        auto x = run_split(dir.path(), replay + " --from " + jsonl.string() + " " + option, env);
        EXPECT_EQ(x.exit_code, 2) << option << ": " << x.err;
    }
    // A compressor level that does not exist: exit 2, the choices named.
    auto level = run_split(dir.path(), replay + " --events 10 --sldc-level fastest", env);
    EXPECT_EQ(level.exit_code, 2) << level.err;
    EXPECT_NE(level.err.find("fast"), std::string::npos) << level.err;
    EXPECT_NE(level.err.find("best"), std::string::npos) << level.err;
    EXPECT_EQ(lines_of(slurp(raw)).size(), 42u);
}

// ---- wec replay --evtx / --xml: event logs replayed as Windows sources -------------------------

TEST_F(ClientServe, ReplayEvtxWritesEveryRecordAsRaw) {
    // Two subscriptions writing raw XML, one event a line, each to its own file.
    for (const std::string name : {"replayed", "fleet"}) {
        auto toml = dir.path() / (name + ".toml");
        std::ofstream(toml) << "name = \"" << name << "\"\n"
                            << "query = '<QueryList><Query Id=\"0\"><Select "
                               "Path=\"Security\">*</Select></Query></QueryList>'\n"
                            << "[[outputs]]\ndriver = \"files\"\npath = \""
                            << (dir.path() / "events" / "{subscription}" / "{client}.xml").string()
                            << "\"\nformat = \"raw\"\n";
        auto applied = run({WEC_EXE, "sub", "apply", toml.string(), "--db", db});
        ASSERT_EQ(applied.exit_code, 0) << applied.output;
    }
    start_server();
    auto env = realm_->realm.env();
    env["KRB5CCNAME"] = realm_->ccache;
    const std::string replay =
        std::string(WEC_EXE) + " replay --url http://127.0.0.1:" + std::to_string(port) +
        "/wsman/SubscriptionManager/WEC" + " --service HTTP@" + kHost + " --timeout 20";

    // What the records are, read here by lib/evtx (checked against python-evtx in tests/evtx).
    const auto evtx_file = fs::path(WEC_TEST_DATA) / "evtx" / "security.evtx";
    std::vector<std::string> expected;
    std::set<std::string> computers;
    std::uint64_t last_id = 0;
    {
        wec::evtx::Reader reader(evtx_file);
        wec::evtx::Record record;
        while (reader.next(record)) {
            std::string line;
            wec::event::format_raw(record.xml, line);
            expected.push_back(line);
            computers.insert(record.computer);
            last_id = std::max(last_id, record.record_id);
        }
    }
    ASSERT_EQ(expected.size(), 2261u);
    ASSERT_GT(computers.size(), 1u);

    auto r = run_split(dir.path(),
                       replay + " --evtx " + evtx_file.string() +
                           " --subscription replayed --batch 150 --json",
                       env);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["input"], "evtx");
    EXPECT_EQ(j["files"], 1);
    EXPECT_EQ(j["events_read"], 2261);
    EXPECT_EQ(j["skipped"], 0);
    EXPECT_EQ(j["hosts"], 1);
    EXPECT_EQ(j["events_sent"], 2261);
    EXPECT_EQ(j["events_acked"], 2261);
    EXPECT_EQ(j["messages_acked"], 16); // ceil(2261 / 150)
    EXPECT_EQ(j["messages_failed"], 0);

    // The collector wrote every record, in record order, exactly as rendered.
    auto raw = dir.path() / "events" / "replayed" / (kClient + ".xml");
    auto written = lines_of(slurp(raw));
    ASSERT_EQ(written.size(), expected.size());
    for (std::size_t k = 0; k < expected.size(); ++k)
        ASSERT_EQ(written[k], expected[k]) << "record " << k;
    // The bookmark carries the channel's last RecordId.
    client::Source check(source_options());
    auto s = subscribe(check, "replayed");
    EXPECT_NE(s.bookmark.find("Channel=\"Security\" RecordId=\"" + std::to_string(last_id) + "\""),
              std::string::npos)
        << s.bookmark;

    // --check-only: the written file against the same input, all found once. Then a copy with a
    // line deleted and another duplicated, rotated into a plain and a gzipped part: 1 lost (exit
    // 1), 1 duplicated.
    const std::string raw_arg = " --check '" + raw.string() + "'";
    auto c = run_split(
        dir.path(),
        replay + " --evtx " + evtx_file.string() + " --check-only" + raw_arg + " --json", env);
    ASSERT_EQ(c.exit_code, 0) << c.out << c.err;
    auto cj = nlohmann::json::parse(c.out)["check"];
    EXPECT_EQ(cj["sent"], 2261) << cj.dump();
    EXPECT_EQ(cj["found"], 2261);
    EXPECT_EQ(cj["lost"], 0);
    EXPECT_EQ(cj["duplicated"], 0);
    EXPECT_EQ(cj["unexpected"], 0);
    auto tampered = dir.path() / "tampered";
    fs::create_directories(tampered);
    {
        std::ofstream a(tampered / "part1.xml", std::ios::binary), b(tampered / "part2.xml");
        for (std::size_t k = 0; k < written.size(); ++k) {
            if (k == 10) continue; // lost
            auto& out = k < 1000 ? a : b;
            out << written[k] << "\n";
            if (k == 1500) out << written[k] << "\n"; // duplicated
        }
    }
    auto gz = run({"gzip", (tampered / "part2.xml").string()});
    ASSERT_EQ(gz.exit_code, 0) << gz.output;
    ASSERT_TRUE(fs::exists(tampered / "part2.xml.gz"));
    auto t = run_split(dir.path(),
                       replay + " --evtx " + evtx_file.string() + " --check-only --check " +
                           tampered.string() + " --json",
                       env);
    EXPECT_EQ(t.exit_code, 1) << t.out << t.err;
    auto tj = nlohmann::json::parse(t.out)["check"];
    EXPECT_EQ(tj["files"], 2);
    EXPECT_EQ(tj["sent"], 2261) << tj.dump();
    EXPECT_EQ(tj["acked"], 2261);
    EXPECT_EQ(tj["found"], 2260);
    EXPECT_EQ(tj["lost"], 1);
    EXPECT_EQ(tj["duplicated"], 1);
    EXPECT_EQ(tj["unexpected"], 0);
    ASSERT_EQ(tj["lost_examples"].size(), 1u);
    EXPECT_EQ(tj["lost_examples"][0]["record_id"],
              std::stoull(wec::evtx::first_value(written[10], "EventRecordID")));
    EXPECT_EQ(tj["duplicated_examples"][0]["record_id"],
              std::stoull(wec::evtx::first_value(written[1500], "EventRecordID")));
    // The human report says the same.
    auto th = run_split(dir.path(),
                        replay + " --evtx " + evtx_file.string() + " --check-only --check " +
                            tampered.string(),
                        env);
    EXPECT_EQ(th.exit_code, 1);
    EXPECT_NE(th.out.find("2261 sent, 2261 acked, 2260 found, 1 lost, 1 duplicated, 0 unexpected"),
              std::string::npos)
        << th.out;

    // The collector's raw output replayed again as event XML, one simulated host per Computer,
    // two at a time.
    auto f = run_split(dir.path(),
                       replay + " --xml '" + raw.string() + "'" +
                           " --subscription fleet --split-by-computer --connections 2 --json",
                       env);
    ASSERT_EQ(f.exit_code, 0) << f.out << f.err;
    auto fj = nlohmann::json::parse(f.out);
    EXPECT_EQ(fj["input"], "xml");
    EXPECT_EQ(fj["events_acked"], 2261);
    EXPECT_EQ(fj["hosts"], computers.size());
    std::set<std::string> machines;
    for (const auto& h : fj["per_host"])
        machines.insert(h["machine"].get<std::string>());
    EXPECT_EQ(machines, computers);
    auto fleet = lines_of(slurp(dir.path() / "events" / "fleet" / (kClient + ".xml")));
    auto sorted_expected = expected;
    std::sort(fleet.begin(), fleet.end());
    std::sort(sorted_expected.begin(), sorted_expected.end());
    EXPECT_EQ(fleet, sorted_expected);

    // A damaged log: the readable records are replayed, the others skipped and reported, exit 1.
    auto bytes = slurp(evtx_file);
    for (std::size_t k = 0x2098 + 40; k < 0x2098 + 56; ++k) // inside the 4th record
        bytes[k] = '\xFF';
    auto damaged = dir.path() / "damaged.evtx";
    std::ofstream(damaged, std::ios::binary) << bytes;
    auto d = run_split(dir.path(),
                       replay + " --evtx " + damaged.string() +
                           " --subscription replayed --json --speed 1e9 --rate 1e7",
                       env);
    EXPECT_EQ(d.exit_code, 1) << d.out << d.err;
    auto dj = nlohmann::json::parse(d.out);
    EXPECT_GT(dj["skipped"].get<int>(), 0);
    EXPECT_EQ(dj["events_acked"], dj["events_read"]);
    EXPECT_EQ(dj["events_read"].get<int>() + dj["skipped"].get<int>(), 2261);
    EXPECT_NE(d.err.find("damaged.evtx:record "), std::string::npos) << d.err;

    // --xml's input forms (read with --check-only: nothing sent, the events read are checked):
    // one event per file, a SOAP Events envelope with events in CDATA, JSON Lines of strings and
    // of objects, and a line that is no event (skipped: exit 1).
    auto forms = dir.path() / "forms";
    fs::create_directories(forms);
    std::ofstream(forms / "a-one.xml") << "<?xml version=\"1.0\"?>\n" << written[0] << "\n";
    std::ofstream(forms / "b-envelope.xml")
        << "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" "
           "xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\"><s:Body><w:Events>"
        << "<w:Event Action=\"x\"><![CDATA[" << written[1] << "]]></w:Event>"
        << "<w:Event Action=\"x\"><![CDATA[" << written[2] << "]]></w:Event>"
        << "</w:Events></s:Body></s:Envelope>";
    std::ofstream(forms / "c-lines.jsonl") << nlohmann::json(written[3]).dump() << "\n"
                                           << nlohmann::json({{"xml", written[4]}}).dump() << "\n"
                                           << "{\"other\": 1}\n";
    auto x =
        run_split(dir.path(),
                  replay + " --xml " + forms.string() + " --check-only" + raw_arg + " --json", env);
    EXPECT_EQ(x.exit_code, 1) << x.out << x.err;
    auto xj = nlohmann::json::parse(x.out)["check"];
    EXPECT_EQ(xj["sent"], 5) << xj.dump();
    EXPECT_EQ(xj["found"], 5);
    EXPECT_EQ(xj["lost"], 0);
    EXPECT_EQ(xj["unexpected"], 2256);
    EXPECT_NE(x.err.find("c-lines.jsonl:3: skipped: not an <Event> document"), std::string::npos)
        << x.err;

    // Nothing there: usage error.
    auto missing = run_split(dir.path(), replay + " --evtx " + (dir.path() / "none").string(), env);
    EXPECT_EQ(missing.exit_code, 2) << missing.err;
}

} // namespace

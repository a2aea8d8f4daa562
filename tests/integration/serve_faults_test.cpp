// Faults an operator causes on a running `wec serve` (the real binary, a real MIT KDC, the client
// core of lib/client as the Windows source):
//  - the service key is changed in the KDC and the keytab replaced under the running collector
//    (renamed over, overwritten in place, or appended to by `ktadd`): new tickets are accepted
//    without a restart, sessions authenticated before the change go on, and a ticket of the old
//    kvno is accepted exactly when the keytab still holds the old key (else 401, the collector
//    lives on);
//  - a SIGHUP storm under load, with logrotate moving the output file away in the middle: the
//    collector stays up and every acknowledged event is in the output files, once, as a whole line.
#include "auth/gss.hpp"
#include "client/client.hpp"
#include "support/files.hpp"
#include "support/krb5_realm.hpp"
#include "support/pki_suite.hpp"
#include "support/process.hpp"
#include "support/subscription.hpp"
#include "support/wef_realm.hpp"
#include "wsman/wsman.hpp"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sys/stat.h>
#include <thread>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace client = wec::client;

const std::string kHost = "srv.windomain.local";
const std::string kHttp = "HTTP/" + kHost;
const std::string kHostSpn = "HOST/" + kHost;

std::uint64_t record_id_of(const nlohmann::json& j) {
    const auto& id = j["System"]["EventRecordID"];
    return id.is_string() ? std::stoull(id.get<std::string>()) : id.get<std::uint64_t>();
}

// The lines of an output file as parsed JSON events; a line that does not parse, or a file that
// does not end with a newline, fails the test (a torn line).
std::vector<std::uint64_t> record_ids_in(const fs::path& file) {
    std::vector<std::uint64_t> ids;
    auto text = slurp(file);
    if (text.empty()) return ids;
    EXPECT_EQ(text.back(), '\n') << file << " ends inside a line";
    std::size_t line_no = 0;
    for (const auto& line : lines_of(text)) {
        ++line_no;
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_object() || !j.contains("System")) {
            ADD_FAILURE() << file << ":" << line_no
                          << " is not a whole event: " << line.substr(0, 200);
            continue;
        }
        ids.push_back(record_id_of(j));
    }
    return ids;
}

std::vector<std::string> generate(std::size_t n, std::uint64_t first_record,
                                  const std::string& computer = "win10.windomain.local") {
    client::EventGenerator gen(computer, first_record, first_record);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(gen.next());
    return out;
}

std::string bookmark_at(std::uint64_t record) {
    return client::security_bookmark(record);
}

// Enumerate + End; the one subscription offered.
wec::wsman::Subscription subscribe(client::Source& source) {
    auto subs = source.enumerate();
    source.end();
    if (subs.size() != 1) throw std::runtime_error(std::to_string(subs.size()) + " subscriptions");
    return subs.front();
}

// ---- keytab replaced while running ---------------------------------------------------------

// How the operator puts the new key in place.
enum class Rotation {
    Renamed,     // new keytab (new key only) written to a temp file, renamed over the old one
    Overwritten, // new keytab (new key only) written over the old file in place (same inode)
    Appended,    // `ktadd -k <live keytab> HTTP/host`: new key appended, the old one kept
};

void PrintTo(Rotation r, std::ostream* os) {
    *os << (r == Rotation::Renamed       ? "Renamed"
            : r == Rotation::Overwritten ? "Overwritten"
                                         : "Appended");
}

class ServeKeytab : public ::testing::Test {
protected:
    TempDir dir;
    std::string db;
    int port = 0;
    std::unique_ptr<WefRealm> realm;
    fs::path keytab; // the collector's keytab (its own copy, in the test dir)
    std::unique_ptr<Process> server;

    void SetUp() override {
        db = "sqlite:" + (dir.path() / "wec.db").string();
        // A realm per test: each test changes the service key.
        realm = std::make_unique<WefRealm>(kHost);
        realm->realm.apply_env(); // the client core runs in this process
        keytab = dir.path() / "wec.keytab";
        fs::copy_file(realm->service_keytab, keytab);

        apply_subscription(dir.path() / "security.toml",
                           security_subscription(dir.path() / "events" / "{client}.json"), db);

        port = free_port();
        server = std::make_unique<Process>(
            std::vector<std::string>{WEC_EXE, "serve", "--listen",
                                     "127.0.0.1:" + std::to_string(port), "--auth", "kerberos",
                                     "--keytab", keytab.string(), "--hostname", kHost, "--db", db},
            realm->realm.env(), dir.path() / "serve.log");
        ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    }

    void TearDown() override {
        if (server && HasFailure()) std::cerr << "---- wec serve log ----\n" << server->output();
    }

    client::SourceOptions source_options(const std::string& ccache) const {
        client::SourceOptions o;
        o.manager = client::Url::parse("http://127.0.0.1:" + std::to_string(port) +
                                       "/wsman/SubscriptionManager/WEC");
        o.service = "HTTP@" + kHost;
        o.ccache = ccache;
        o.timeout = 15s;
        return o;
    }

    // A fresh credential cache with WIN10$'s TGT.
    std::string new_ccache() {
        return realm->realm.kinit("WIN10$@" + realm->realm.realm(), realm->client_keytab);
    }

    // `kvno -c ccache HTTP/host`: gets (or finds) the service ticket in the cache; its kvno.
    unsigned service_ticket_kvno(const std::string& ccache) {
        auto r = run({"kvno", "-c", ccache, kHttp}, realm->realm.env(), 30s);
        EXPECT_EQ(r.exit_code, 0) << r.output;
        auto pos = r.output.find("kvno = ");
        if (pos == std::string::npos) return 0;
        return static_cast<unsigned>(std::stoul(r.output.substr(pos + 7)));
    }

    std::set<unsigned> keytab_kvnos(const std::string& principal) {
        std::set<unsigned> out;
        for (const auto& e : wec::auth::keytab_entries(keytab.string()))
            if (e.principal == principal + "@" + realm->realm.realm()) out.insert(e.kvno);
        return out;
    }

    // The operator's change: a new random key for HTTP/host in the KDC, put into the keytab.
    void rotate(Rotation how) {
        if (how == Rotation::Appended) {
            // ktadd without -norandkey: new key (kvno + 1), appended to the live keytab.
            realm->realm.kadmin("ktadd -k " + keytab.string() + " " + kHttp);
            return;
        }
        realm->realm.kadmin("cpw -randkey " + kHttp);
        auto fresh = dir.path() / "wec.keytab.new";
        realm->realm.kadmin("ktadd -norandkey -k " + fresh.string() + " " + kHttp + " " + kHostSpn);
        if (how == Rotation::Renamed) {
            fs::rename(fresh, keytab);
            return;
        }
        struct stat before {};
        ASSERT_EQ(::stat(keytab.c_str(), &before), 0);
        {
            std::ofstream out(keytab, std::ios::binary | std::ios::trunc);
            out << slurp(fresh);
            ASSERT_TRUE(out.good());
        }
        struct stat after {};
        ASSERT_EQ(::stat(keytab.c_str(), &after), 0);
        ASSERT_EQ(before.st_ino, after.st_ino) << "not overwritten in place";
        fs::remove(fresh);
    }

    std::size_t authentications() const { return count_of(server->output(), "authenticated via"); }
};

class ServeKeytabRotation : public ServeKeytab, public ::testing::WithParamInterface<Rotation> {};

TEST_P(ServeKeytabRotation, NewTicketsAcceptedOldSessionsGoOnOldTicketsAsTheKeytabSays) {
    const Rotation how = GetParam();

    // Session A: authenticated with a ticket of kvno 1, kept open across the change.
    const auto old_ccache = new_ccache();
    ASSERT_EQ(service_ticket_kvno(old_ccache), 1u);
    client::Source a(source_options(old_ccache));
    auto sub_a = subscribe(a);
    a.send_events(sub_a, generate(5, 1000), bookmark_at(1004));

    rotate(how);
    if (HasFatalFailure()) return;
    EXPECT_EQ(keytab_kvnos(kHttp),
              (how == Rotation::Appended ? std::set<unsigned>{1, 2} : std::set<unsigned>{2}));

    // (a) A ticket of the new kvno on a new connection: accepted, no restart.
    const auto new_ccache_name = new_ccache();
    ASSERT_EQ(service_ticket_kvno(new_ccache_name), 2u);
    client::Source b(source_options(new_ccache_name));
    wec::wsman::Subscription sub_b;
    ASSERT_NO_THROW(sub_b = subscribe(b)) << "new kvno refused";
    ASSERT_NO_THROW(b.send_events(sub_b, generate(5, 2000), bookmark_at(2004)));

    // (b) Session A goes on on its established context: no new authentication on the collector.
    const auto auths_before = authentications();
    EXPECT_TRUE(a.push_connection(sub_a).authenticated());
    EXPECT_NO_THROW(a.heartbeat(sub_a));
    EXPECT_NO_THROW(a.send_events(sub_a, generate(5, 3000), bookmark_at(3004)));
    EXPECT_EQ(authentications(), auths_before) << "session A re-authenticated";

    // (c) A ticket of the old kvno, issued before the change, on a new connection.
    ASSERT_EQ(service_ticket_kvno(old_ccache), 1u); // still cached
    client::Source c(source_options(old_ccache));
    std::size_t expected_events = 15;
    if (how == Rotation::Appended) {
        wec::wsman::Subscription sub_c;
        ASSERT_NO_THROW(sub_c = subscribe(c)) << "old kvno refused with old+new keys";
        EXPECT_NO_THROW(c.send_events(sub_c, generate(5, 4000), bookmark_at(4004)));
        expected_events += 5;
    } else {
        try {
            c.enumerate();
            ADD_FAILURE() << "a ticket of the old kvno was accepted with only the new key";
        } catch (const client::ClientError& e) {
            EXPECT_EQ(e.kind(), client::ErrorKind::Auth) << e.what();
            EXPECT_EQ(e.http_status(), 401u) << e.what();
        }
        EXPECT_TRUE(server->wait_for_output("status=401", 5s)) << server->output();
    }

    // The collector lives on and keeps serving both new and old sessions.
    EXPECT_TRUE(server->running());
    EXPECT_NO_THROW(b.send_events(sub_b, generate(5, 5000), bookmark_at(5004)));
    EXPECT_NO_THROW(a.heartbeat(sub_a));
    expected_events += 5;
    auto ids = record_ids_in(dir.path() / "events" / "WIN10$@WINDOMAIN.LOCAL.json");
    EXPECT_EQ(ids.size(), expected_events);
    EXPECT_EQ(server->output().find("status=500"), std::string::npos) << server->output();

    server->signal(SIGTERM);
    EXPECT_EQ(server->wait(20s), 0) << server->output();
}

INSTANTIATE_TEST_SUITE_P(Operator, ServeKeytabRotation,
                         ::testing::Values(Rotation::Renamed, Rotation::Overwritten,
                                           Rotation::Appended),
                         [](const ::testing::TestParamInfo<Rotation>& p) {
                             std::ostringstream os;
                             PrintTo(p.param, &os);
                             return os.str();
                         });

// An in-place rewrite caught early (an empty or cut file) while sources connect: those
// authentications get 401, the collector lives on, established sessions go on, and the complete
// keytab is used as soon as it is back.
TEST_F(ServeKeytab, TornKeytabRefusesNewTicketsWith401UntilComplete) {
    const auto ccache = new_ccache();
    client::Source a(source_options(ccache));
    auto sub_a = subscribe(a);
    a.send_events(sub_a, generate(5, 1000), bookmark_at(1004));

    const auto good = slurp(keytab);
    ASSERT_GT(good.size(), 20u);
    // Empty, half the version header, inside the first entry. (Cut further on, the entries
    // before the cut still open tickets: MIT reads a torn tail as the end of the keytab.)
    for (auto size : {std::size_t{0}, std::size_t{1}, std::size_t{10}}) {
        {
            std::ofstream out(keytab, std::ios::binary | std::ios::trunc);
            out << good.substr(0, size);
        }
        client::Source c(source_options(ccache));
        try {
            c.enumerate();
            ADD_FAILURE() << "accepted with a keytab of " << size << " of " << good.size()
                          << " bytes";
        } catch (const client::ClientError& e) {
            EXPECT_EQ(e.http_status(), 401u) << size << " bytes: " << e.what();
        }
        ASSERT_TRUE(server->running()) << "keytab of " << size << " bytes";
        EXPECT_NO_THROW(a.heartbeat(sub_a)) << "established session, keytab of " << size;
    }
    EXPECT_EQ(count_of(server->output(), "status=401"), 3u) << server->output();

    {
        std::ofstream out(keytab, std::ios::binary | std::ios::trunc);
        out << good;
    }
    client::Source b(source_options(ccache));
    wec::wsman::Subscription sub_b;
    ASSERT_NO_THROW(sub_b = subscribe(b));
    EXPECT_NO_THROW(b.send_events(sub_b, generate(5, 2000), bookmark_at(2004)));
    EXPECT_EQ(record_ids_in(dir.path() / "events" / "WIN10$@WINDOMAIN.LOCAL.json").size(), 10u);
    EXPECT_EQ(server->output().find("status=500"), std::string::npos) << server->output();
    server->signal(SIGTERM);
    EXPECT_EQ(server->wait(20s), 0) << server->output();
}

// A collector started before its keytab was provisioned picks it up once it is there.
TEST_F(ServeKeytab, AKeytabProvisionedAfterStartIsPickedUpWithoutARestart) {
    server->signal(SIGTERM);
    ASSERT_EQ(server->wait(20s), 0) << server->output();
    auto later = dir.path() / "provisioned-later.keytab";
    port = free_port();
    server = std::make_unique<Process>(
        std::vector<std::string>{WEC_EXE, "serve", "--listen", "127.0.0.1:" + std::to_string(port),
                                 "--auth", "kerberos", "--keytab", later.string(), "--hostname",
                                 kHost, "--db", db},
        realm->realm.env(), dir.path() / "serve-later.log");
    ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    const auto ccache = new_ccache();
    {
        client::Source early(source_options(ccache));
        try {
            early.enumerate();
            ADD_FAILURE() << "authenticated without a keytab";
        } catch (const client::ClientError& e) {
            EXPECT_EQ(e.http_status(), 401u) << e.what();
        }
    }
    fs::copy_file(keytab, later);
    std::this_thread::sleep_for(1100ms); // one retry a second at most
    client::Source source(source_options(ccache));
    wec::wsman::Subscription sub;
    ASSERT_NO_THROW(sub = subscribe(source)) << server->output();
    EXPECT_NO_THROW(source.send_events(sub, generate(3, 100), bookmark_at(102)));
    EXPECT_NE(server->output().find("keytab loaded"), std::string::npos) << server->output();
    server->signal(SIGTERM);
    EXPECT_EQ(server->wait(20s), 0) << server->output();
}

// ---- SIGHUP storm under load ---------------------------------------------------------------

class ServeSighupStorm : public PkiSuite<> {
protected:
    TempDir dir;
    std::string db;
    int port = 0;
    std::unique_ptr<Process> server;

    void TearDown() override {
        if (server && HasFailure()) {
            auto log = server->output();
            std::cerr << "---- wec serve log (last 20 KB) ----\n"
                      << log.substr(log.size() > 20000 ? log.size() - 20000 : 0);
        }
    }
};

TEST_F(ServeSighupStorm, EveryAckedEventIsInTheOutputOnceAsAWholeLine) {
    constexpr int kSignals = 500;
    constexpr auto kInterval = 2ms;
    constexpr std::size_t kThreads = 4;
    constexpr std::size_t kBatch = 20;
    const std::string identity = "win10.windomain.local";

    db = "sqlite:" + (dir.path() / "wec.db").string();
    const auto output = dir.path() / "events" / (identity + ".json");
    apply_subscription(dir.path() / "security.toml",
                       security_subscription(dir.path() / "events" / "{client}.json"), db);
    port = free_port();
    server = std::make_unique<Process>(
        std::vector<std::string>{WEC_EXE, "serve", "--listen", "127.0.0.1:" + std::to_string(port),
                                 "--auth", "tls", "--cert", pki("server.pem").string(), "--key",
                                 pki("server.key").string(), "--ca", pki("root.pem").string(),
                                 "--ca", pki("issuing.pem").string(), "--hostname", kHost, "--db",
                                 db},
        std::map<std::string, std::string>{}, dir.path() / "serve.log");
    ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();

    client::SourceOptions options;
    options.manager = client::Url::parse("HTTPS://127.0.0.1:" + std::to_string(port) + "/wsman/");
    options.tls.cert_file = pki(identity + ".pem").string();
    options.tls.key_file = pki(identity + ".key").string();
    options.tls.ca_file = pki("root.pem").string();
    options.tls.server_name = kHost;
    options.tls_context = client::make_tls_context(options.tls);
    options.timeout = 30s;

    // The load: kThreads sources, each with its own range of record ids, sending batches until
    // the storm is over (and a few more after it). Every acked record id is kept.
    std::atomic<bool> storm_over{false};
    std::mutex mutex;
    std::set<std::uint64_t> acked;
    std::vector<std::string> errors;
    std::atomic<std::uint64_t> batches{0};
    std::vector<std::thread> load;
    for (std::size_t t = 0; t < kThreads; ++t) {
        load.emplace_back([&, t] {
            try {
                client::Source source(options);
                auto sub = subscribe(source);
                const std::uint64_t base = (t + 1) * 10'000'000;
                client::EventGenerator gen(identity, t + 1, base);
                std::size_t after_storm = 0;
                while (after_storm < 5) {
                    if (storm_over) ++after_storm;
                    std::vector<std::string> events;
                    for (std::size_t i = 0; i < kBatch; ++i)
                        events.push_back(gen.next());
                    source.send_events(sub, events, gen.bookmark());
                    ++batches;
                    std::lock_guard lock(mutex);
                    for (std::uint64_t id = gen.last_record() + 1 - kBatch; id <= gen.last_record();
                         ++id)
                        acked.insert(id);
                }
            } catch (const std::exception& e) {
                std::lock_guard lock(mutex);
                errors.push_back(e.what());
            }
        });
    }

    // The storm, with logrotate's move in the middle (twice). No assertion may leave this loop
    // while the load threads run: failures are recorded, the threads joined, then checked.
    std::vector<fs::path> rotated;
    std::uint64_t batches_at_rotation = 0;
    int signals_sent = 0;
    std::string storm_error;
    for (int i = 0; i < kSignals && storm_error.empty(); ++i) {
        if (i == kSignals / 3 || i == 2 * kSignals / 3) {
            // Let some batches land in the current file first.
            for (int w = 0; w < 2000 && !fs::exists(output); ++w)
                std::this_thread::sleep_for(5ms);
            auto to = output.string() + "." + std::to_string(rotated.size() + 1);
            std::error_code ec;
            fs::rename(output, to, ec);
            if (ec) storm_error = "cannot move " + output.string() + " away: " + ec.message();
            rotated.push_back(to);
            batches_at_rotation = batches;
        }
        if (!server->signal(SIGHUP))
            storm_error = "collector gone after " + std::to_string(i) + " SIGHUPs";
        else
            ++signals_sent;
        std::this_thread::sleep_for(kInterval);
    }
    storm_over = true;
    for (auto& th : load)
        th.join();
    ASSERT_EQ(storm_error, "");
    ASSERT_EQ(signals_sent, kSignals);
    ASSERT_TRUE(errors.empty()) << errors.size() << " sources failed, first: " << errors.front();
    EXPECT_GT(batches.load(), batches_at_rotation) << "no batch after the last rotation";
    ASSERT_TRUE(server->running());

    // Every acked event is in one of the files (rotated + the new one at the original path),
    // exactly once, on a whole line.
    std::map<std::uint64_t, int> seen;
    std::size_t lines = 0;
    std::string per_file;
    std::vector<fs::path> files = rotated;
    files.push_back(output);
    for (const auto& f : files) {
        auto ids = record_ids_in(f);
        EXPECT_FALSE(ids.empty()) << f << " holds no event";
        lines += ids.size();
        per_file += (per_file.empty() ? "" : " + ") + std::to_string(ids.size());
        for (auto id : ids)
            ++seen[id];
    }
    std::size_t missing = 0, duplicated = 0;
    for (auto id : acked)
        if (!seen.count(id)) ++missing;
    for (const auto& [id, n] : seen)
        if (n > 1) ++duplicated;
    EXPECT_EQ(missing, 0u);
    EXPECT_EQ(duplicated, 0u);
    EXPECT_EQ(lines, acked.size()); // nothing but the acked events (no batch failed)

    const auto log = server->output();
    const auto reopened = count_of(log, "SIGHUP: re-opening output files");
    EXPECT_GT(reopened, 2u);
    std::cout << "[ figures  ] " << signals_sent << " SIGHUPs sent every " << kInterval.count()
              << " ms, " << reopened << " handled (pending signals coalesce); " << batches.load()
              << " batches / " << acked.size() << " events acked in " << files.size() << " files ("
              << per_file << " lines); missing " << missing << ", duplicated " << duplicated
              << "\n";

    server->signal(SIGTERM);
    EXPECT_EQ(server->wait(20s), 0) << log;
}

} // namespace

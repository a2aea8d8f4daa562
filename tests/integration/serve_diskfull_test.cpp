// Storage faults under a running `wec serve` (issue 9, "Faults"): the real binary over HTTPS
// with a client certificate (openssl-CLI PKI), and the client core of lib/client as the Windows
// source, which sends each Events batch again (same SOAP, same MessageID) until it is acked.
//  - The output directory is a tiny tmpfs that fills up: the batch that does not fit is answered
//    503 with Retry-After and no Ack, the bookmark does not move, the file keeps only whole lines;
//    once space is freed the same batch is acked without a restart, and the output holds every
//    acked event exactly once (with and without `fsync = true`).
//  - Another process holds `BEGIN EXCLUSIVE` on the collector's SQLite database: the source's
//    Events get 503 (not 500; the collector lives on), and once the lock is released the next
//    resend is acked and its bookmark stored. The collector's busy timeout
//    (`store_busy_timeout_ms`, 1 s here) is what the 503 waits for.
//  - The collector's PostgreSQL store (a server started by the test) is stopped under load, then
//    started again: 503 meanwhile, acked again without a restart, nothing acked is missing; and
//    a collector started while PostgreSQL is down starts, answers 503, and serves once it is up.
#include "client/client.hpp"
#include "support/files.hpp"
#include "support/pki_suite.hpp"
#include "support/postgres_server.hpp"
#include "support/process.hpp"
#include "wsman/wsman.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace client = wec::client;
using SteadyClock = std::chrono::steady_clock;

const std::string kHost = "srv.windomain.local";
const std::string kIdentity = "win10.windomain.local"; // the client certificate's identity
constexpr std::size_t kBatch = 10;                     // events per batch (~1.5 KB each)
constexpr auto kRetryDelay = 200ms; // the source's pause between resends (not Retry-After: 5 s)

double seconds(SteadyClock::duration d) {
    return std::chrono::duration<double>(d).count();
}

// A tmpfs of `size` mounted on `dir` (created), unmounted by the destructor (lazily when still
// busy). Needs CAP_SYS_ADMIN; failing to mount is a test failure, never a skip.
class TmpfsMount {
public:
    TmpfsMount(fs::path dir, const std::string& size) : dir_(std::move(dir)) {
        fs::create_directories(dir_);
        const std::string data = "size=" + size + ",mode=0755";
        if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, data.c_str()) != 0) {
            const int err = errno;
            error_ = "mount -t tmpfs -o " + data + " tmpfs " + dir_.string() +
                     " failed: " + std::strerror(err) +
                     (err == EPERM ? " (this test must run as root / with CAP_SYS_ADMIN)" : "");
            return;
        }
        mounted_ = true;
    }
    ~TmpfsMount() {
        if (mounted_ && ::umount2(dir_.c_str(), 0) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
    }
    TmpfsMount(const TmpfsMount&) = delete;
    TmpfsMount& operator=(const TmpfsMount&) = delete;

    bool mounted() const { return mounted_; }
    const std::string& error() const { return error_; }

private:
    fs::path dir_;
    bool mounted_ = false;
    std::string error_;
};

// Bytes an unprivileged writer may still allocate on the filesystem of `dir`.
std::uint64_t free_bytes(const fs::path& dir) {
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) != 0) return 0;
    return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
}

// Writes up to `size` bytes of filler into `file` (stops early at ENOSPC); returns what it wrote.
std::uint64_t write_filler(const fs::path& file, std::uint64_t size) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return 0;
    const std::string chunk(4096, 'x');
    std::uint64_t written = 0;
    while (written < size) {
        const auto n =
            ::write(fd, chunk.data(), std::min<std::uint64_t>(chunk.size(), size - written));
        if (n <= 0) break;
        written += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
    return written;
}

std::uint64_t record_id_of(const nlohmann::json& j) {
    const auto& id = j["System"]["EventRecordID"];
    return id.is_string() ? std::stoull(id.get<std::string>()) : id.get<std::uint64_t>();
}

// The record ids of an output file, one per line; a line that is not a whole JSON event, or a
// file that does not end with a newline, fails the test (a torn line).
std::vector<std::uint64_t> record_ids_in(const fs::path& file) {
    std::vector<std::uint64_t> ids;
    const auto text = slurp(file);
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

// The RecordId of the bookmark the store holds for the client (read with python3's sqlite3
// module, read-only: independent of wec's store code); 0 when there is none, -1 on failure.
long long stored_bookmark_record(const fs::path& db_file, const std::string& client) {
    const char* script =
        "import re, sqlite3, sys\n"
        "db = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True, timeout=5)\n"
        "rows = db.execute('SELECT bookmark FROM bookmarks WHERE client = ?', "
        "(sys.argv[2],)).fetchall()\n"
        "if len(rows) > 1: sys.exit('%d bookmarks' % len(rows))\n"
        "m = re.search(r'RecordId=\"(\\d+)\"', rows[0][0]) if rows else None\n"
        "print('record=%s' % (m.group(1) if m else '0'))\n";
    auto r = run({"/usr/bin/python3", "-c", script, db_file.string(), client}, {}, 30s);
    std::smatch m;
    if (r.exit_code != 0 || !std::regex_search(r.output, m, std::regex("record=(\\d+)"))) {
        ADD_FAILURE() << "reading the bookmark from " << db_file << ": " << r.output;
        return -1;
    }
    return std::stoll(m[1].str());
}

// The same from a PostgreSQL store (read with the test's own libpq query, not wec's store).
long long stored_bookmark_record(const PostgresServer& pg, const std::string& database,
                                 const std::string& client) {
    std::vector<std::string> rows;
    try {
        rows = pg.query(database, "SELECT bookmark FROM bookmarks WHERE client = $1", {client});
    } catch (const std::exception& e) {
        ADD_FAILURE() << "reading the bookmark: " << e.what();
        return -1;
    }
    if (rows.size() > 1) ADD_FAILURE() << rows.size() << " bookmarks for " << client;
    std::smatch m;
    if (rows.empty() || !std::regex_search(rows[0], m, std::regex("RecordId=\"(\\d+)\""))) return 0;
    return std::stoll(m[1].str());
}

// Every acked event is in the output as a whole line; only events of refused batches may be
// there more than once (written before the bookmark failed). Returns the duplicates.
std::size_t expect_acked_in_output(const fs::path& output, const std::vector<std::uint64_t>& acked,
                                   const std::vector<std::uint64_t>& refused) {
    std::map<std::uint64_t, int> seen;
    const auto ids = record_ids_in(output);
    for (auto id : ids)
        ++seen[id];
    std::size_t missing = 0, duplicated = 0, unexpected_duplicates = 0;
    for (auto id : acked)
        if (!seen.count(id)) ++missing;
    for (const auto& [id, n] : seen) {
        if (n == 1) continue;
        duplicated += static_cast<std::size_t>(n - 1);
        if (std::find(refused.begin(), refused.end(), id) == refused.end()) ++unexpected_duplicates;
    }
    EXPECT_EQ(missing, 0u);
    EXPECT_EQ(unexpected_duplicates, 0u);
    EXPECT_EQ(ids.size(), acked.size() + duplicated);
    return duplicated;
}

// ---- the source ----------------------------------------------------------------------------

// One HTTP answer to an Events batch.
struct Attempt {
    unsigned status = 0;
    std::string retry_after; // the header, as sent
    bool ack = false;        // an Ack relating to the batch's MessageID
    SteadyClock::time_point sent;
    SteadyClock::time_point answered;
};

// One Events batch as the source sent it, with every answer it got.
struct Batch {
    std::vector<std::uint64_t> ids;
    std::vector<Attempt> attempts;
    bool acked() const { return !attempts.empty() && attempts.back().ack; }
    std::size_t refusals() const {
        return static_cast<std::size_t>(std::count_if(
            attempts.begin(), attempts.end(), [](const Attempt& a) { return a.status == 503; }));
    }
};

// A Windows-like source on its own thread: Enumerate, then Events batches of kBatch generated
// events, each sent again (the same SOAP, the same MessageID) every kRetryDelay while the
// collector answers 503, until it is acked. It starts a batch only while fewer than allow()'s
// number were started. Any other answer, or a transport error, ends it (error()).
class Sender {
public:
    explicit Sender(client::SourceOptions options) : options_(std::move(options)) {
        thread_ = std::thread([this] { run(); });
    }
    ~Sender() { stop(); }
    Sender(const Sender&) = delete;
    Sender& operator=(const Sender&) = delete;

    void allow(std::size_t batches) {
        std::lock_guard lock(mutex_);
        allowed_ = batches;
        cv_.notify_all();
    }
    void stop() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
            cv_.notify_all();
        }
        if (thread_.joinable()) thread_.join();
    }
    // Waits until `n` batches are acked (false: timeout, or the source failed).
    bool wait_acked(std::size_t n, std::chrono::milliseconds timeout) {
        return wait_until(timeout, [&] { return acked_locked() >= n; });
    }
    // Waits until the collector answered 503 `n` times in all.
    bool wait_refusals(std::size_t n, std::chrono::milliseconds timeout) {
        return wait_until(timeout, [&] { return refusals_locked() >= n; });
    }
    std::vector<Batch> batches() const {
        std::lock_guard lock(mutex_);
        return batches_;
    }
    std::size_t acked() const {
        std::lock_guard lock(mutex_);
        return acked_locked();
    }
    std::string error() const {
        std::lock_guard lock(mutex_);
        return error_;
    }

private:
    template <typename Pred>
    bool wait_until(std::chrono::milliseconds timeout, Pred pred) {
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, timeout, [&] { return pred() || !error_.empty() || finished_; });
        return pred();
    }
    std::size_t acked_locked() const {
        return static_cast<std::size_t>(std::count_if(batches_.begin(), batches_.end(),
                                                      [](const Batch& b) { return b.acked(); }));
    }
    std::size_t refusals_locked() const {
        std::size_t n = 0;
        for (const auto& b : batches_)
            n += b.refusals();
        return n;
    }

    void run() {
        try {
            client::Source source(options_);
            auto subs = source.enumerate();
            source.end();
            if (subs.size() != 1)
                throw std::runtime_error(std::to_string(subs.size()) + " subscriptions offered");
            const auto& sub = subs.front();
            client::EventGenerator gen(kIdentity, 1, 1000);
            for (std::size_t index = 0;; ++index) {
                {
                    std::unique_lock lock(mutex_);
                    cv_.wait(lock, [&] { return stop_ || batches_.size() < allowed_; });
                    if (stop_) break;
                }
                Batch batch;
                std::vector<std::string> events;
                for (std::size_t i = 0; i < kBatch; ++i) {
                    events.push_back(gen.next());
                    batch.ids.push_back(gen.last_record());
                }
                {
                    std::lock_guard lock(mutex_);
                    batches_.push_back(batch);
                }
                std::vector<std::string_view> views(events.begin(), events.end());
                const auto headers = source.headers_for(sub); // one MessageID for every resend
                const auto soap = wec::wsman::build_events(headers, views, gen.bookmark());
                const auto target = source.push_url(sub).target;
                for (;;) {
                    Attempt a;
                    a.sent = SteadyClock::now();
                    auto r = source.push_connection(sub).post(target, soap, options_.compress);
                    a.answered = SteadyClock::now();
                    a.status = r.status;
                    a.retry_after = r.header("Retry-After");
                    a.ack = r.status == 200 && r.message &&
                            r.message->action == wec::wsman::Action::Ack &&
                            r.message->relates_to == headers.message_id;
                    std::unique_lock lock(mutex_);
                    batches_[index].attempts.push_back(a);
                    cv_.notify_all();
                    if (a.ack) break;
                    if (r.status != 503) {
                        error_ = "batch " + std::to_string(index + 1) + " answered HTTP " +
                                 std::to_string(r.status) +
                                 (r.status == 200 ? " without an Ack" : "") + ": " +
                                 r.text().substr(0, 300);
                        finished_ = true;
                        return;
                    }
                    if (cv_.wait_for(lock, kRetryDelay, [&] { return stop_; })) {
                        finished_ = true;
                        return;
                    }
                }
            }
        } catch (const std::exception& e) {
            std::lock_guard lock(mutex_);
            error_ = e.what();
        }
        std::lock_guard lock(mutex_);
        finished_ = true;
        cv_.notify_all();
    }

    client::SourceOptions options_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<Batch> batches_;
    std::size_t allowed_ = 0;
    bool stop_ = false;
    bool finished_ = false;
    std::string error_;
    std::thread thread_;
};

// What the source saw, for the checks and the figures.
struct Tally {
    std::size_t batches_acked = 0;
    std::size_t events_acked = 0;
    std::size_t refusals = 0; // 503 answers
    std::size_t refusals_without_retry_after = 0;
    std::size_t refusals_with_ack = 0; // must stay 0
    std::size_t other_statuses = 0;    // neither 200 nor 503
    double refused_seconds = 0;        // from the first 503 of a batch to its Ack, summed
    std::vector<std::uint64_t> acked_ids;
    std::vector<std::uint64_t> refused_ids; // events of batches answered 503 at least once
    std::uint64_t last_acked_record = 0;
};

Tally tally(const std::vector<Batch>& batches) {
    Tally t;
    for (const auto& b : batches) {
        std::optional<SteadyClock::time_point> first_refusal;
        for (const auto& a : b.attempts) {
            if (a.status == 503) {
                ++t.refusals;
                if (!first_refusal) first_refusal = a.sent;
                if (a.ack) ++t.refusals_with_ack;
                if (a.retry_after.empty() ||
                    a.retry_after.find_first_not_of("0123456789") != std::string::npos ||
                    std::stoul(a.retry_after) == 0)
                    ++t.refusals_without_retry_after;
            } else if (a.status != 200) {
                ++t.other_statuses;
            }
        }
        if (first_refusal) t.refused_ids.insert(t.refused_ids.end(), b.ids.begin(), b.ids.end());
        if (!b.acked()) continue;
        ++t.batches_acked;
        t.events_acked += b.ids.size();
        t.acked_ids.insert(t.acked_ids.end(), b.ids.begin(), b.ids.end());
        t.last_acked_record = b.ids.back();
        if (first_refusal)
            t.refused_seconds += seconds(b.attempts.back().answered - *first_refusal);
    }
    return t;
}

// ---- the collector -------------------------------------------------------------------------

class ServeStorageFaults : public PkiSuite<> {
protected:
    TempDir dir;                       // destroyed last
    std::unique_ptr<TmpfsMount> tmpfs; // unmounted after the collector is stopped
    std::unique_ptr<Process> server;   // stopped first
    fs::path db_file;
    int port = 0;

    void TearDown() override {
        if (server && HasFailure()) {
            auto log = server->output();
            std::cerr << "---- wec serve log (last 20 KB) ----\n"
                      << log.substr(log.size() > 20000 ? log.size() - 20000 : 0);
        }
    }

    // Stores the subscription (JSON files output into `output_dir`) and starts the collector,
    // on SQLite (wec.db in the temp dir) unless `db` names another store.
    void start(const fs::path& output_dir, bool fsync, std::string db = {}) {
        apply(output_dir, fsync, db);
        if (HasFatalFailure()) return;
        launch(db);
    }

    void apply(const fs::path& output_dir, bool fsync, std::string& db) {
        db_file = dir.path() / "wec.db";
        if (db.empty()) db = "sqlite:" + db_file.string();
        auto file = dir.path() / "security.toml";
        std::ofstream(file) << "name = \"security\"\n"
                            << "query = '<QueryList><Query Id=\"0\"><Select "
                               "Path=\"Security\">*</Select></Query></QueryList>'\n"
                            << "[[outputs]]\ndriver = \"files\"\npath = \""
                            << (output_dir / "{client}.json").string()
                            << "\"\nformat = \"json\"\nfsync = " << (fsync ? "true" : "false")
                            << "\n";
        auto applied = run({WEC_EXE, "sub", "apply", file.string(), "--db", db});
        ASSERT_EQ(applied.exit_code, 0) << applied.output;
    }

    void launch(const std::string& db) {
        port = free_port();
        // A lock held by another process turns into a 503 after 1 s instead of the default 10 s.
        auto config = dir.path() / "wec.toml";
        std::ofstream(config) << "store_busy_timeout_ms = 1000\n";
        server = std::make_unique<Process>(
            std::vector<std::string>{WEC_EXE,      "serve",
                                     "--config",   config.string(),
                                     "--listen",   "127.0.0.1:" + std::to_string(port),
                                     "--auth",     "tls",
                                     "--cert",     pki("server.pem").string(),
                                     "--key",      pki("server.key").string(),
                                     "--ca",       pki("root.pem").string(),
                                     "--ca",       pki("issuing.pem").string(),
                                     "--hostname", kHost,
                                     "--db",       db},
            std::map<std::string, std::string>{}, dir.path() / "serve.log");
        ASSERT_TRUE(server->wait_for_output("wec serve started", 20s)) << server->output();
    }

    client::SourceOptions source_options() const {
        client::SourceOptions o;
        o.manager = client::Url::parse("HTTPS://127.0.0.1:" + std::to_string(port) + "/wsman/");
        o.tls.cert_file = pki(kIdentity + ".pem").string();
        o.tls.key_file = pki(kIdentity + ".key").string();
        o.tls.ca_file = pki("root.pem").string();
        o.tls.server_name = kHost;
        o.timeout = 30s; // well above the store's busy timeout
        return o;
    }

    // The collector lives on, never answered 500, and stops cleanly.
    void expect_clean_stop() {
        ASSERT_TRUE(server->running()) << "the collector exited";
        const auto log = server->output();
        EXPECT_EQ(log.find("status=500"), std::string::npos);
        server->signal(SIGTERM);
        EXPECT_EQ(server->wait(20s), 0);
    }
};

// ---- output directory on a full filesystem -------------------------------------------------

class ServeDiskFull : public ServeStorageFaults, public ::testing::WithParamInterface<bool> {};

TEST_P(ServeDiskFull, RefusedWith503NoTornLineAndAckedOnceSpaceIsBack) {
    const bool fsync = GetParam();
    const auto out_dir = dir.path() / "out";
    tmpfs = std::make_unique<TmpfsMount>(out_dir, "256k");
    ASSERT_TRUE(tmpfs->mounted()) << tmpfs->error();
    start(out_dir, fsync);
    if (HasFatalFailure()) return;
    const auto output = out_dir / (kIdentity + ".json");
    const auto filler = out_dir / "filler";

    Sender source(source_options());
    source.allow(3);
    ASSERT_TRUE(source.wait_acked(3, 30s)) << source.error();
    const auto size_before = fs::file_size(output);
    const std::uint64_t batch_bytes = size_before / 3;
    ASSERT_GT(batch_bytes, 8192u) << "batches too small to be cut by the full filesystem";

    // Fill the filesystem so that less than half a batch still fits: the next batch is written
    // in part (a torn line), then refused.
    const std::uint64_t free_at_start = free_bytes(out_dir);
    const std::uint64_t leave = batch_bytes / 2 / 4096 * 4096;
    ASSERT_GT(free_at_start, leave + batch_bytes);
    write_filler(filler, free_at_start - leave);
    const std::uint64_t free_when_full = free_bytes(out_dir);
    ASSERT_LT(free_when_full + 4096, batch_bytes) << "the filesystem is not full enough";

    // Batch 4 does not fit: 503 with Retry-After, no Ack, again and again.
    source.allow(4);
    ASSERT_TRUE(source.wait_refusals(3, 30s)) << source.error();
    {
        const auto batches = source.batches();
        ASSERT_EQ(batches.size(), 4u);
        EXPECT_FALSE(batches[3].acked());
        const auto t = tally(batches);
        EXPECT_EQ(t.refusals_with_ack, 0u);
        EXPECT_EQ(t.refusals_without_retry_after, 0u);
        // Nothing moved: the bookmark is batch 3's, the file holds batches 1-3 as whole lines
        // (the part of batch 4 that fitted was cut off again).
        EXPECT_EQ(stored_bookmark_record(db_file, kIdentity),
                  static_cast<long long>(batches[2].ids.back()));
        EXPECT_EQ(fs::file_size(output), size_before);
        EXPECT_EQ(record_ids_in(output), t.acked_ids);
    }
    EXPECT_TRUE(server->wait_for_output("No space left on device", 5s));

    // Space is back: the same batch is acked, no restart; then two more batches.
    fs::remove(filler);
    ASSERT_TRUE(source.wait_acked(4, 30s)) << source.error();
    source.allow(6);
    ASSERT_TRUE(source.wait_acked(6, 30s)) << source.error();
    source.stop();
    ASSERT_EQ(source.error(), "");

    const auto t = tally(source.batches());
    EXPECT_EQ(t.batches_acked, 6u);
    EXPECT_EQ(t.other_statuses, 0u);
    EXPECT_EQ(t.refusals_with_ack, 0u);
    EXPECT_EQ(t.refusals_without_retry_after, 0u);
    EXPECT_EQ(stored_bookmark_record(db_file, kIdentity),
              static_cast<long long>(t.last_acked_record));
    // Every acked event exactly once, in order, each a whole line; nothing else.
    const auto lines = record_ids_in(output);
    EXPECT_EQ(lines, t.acked_ids);
    const auto log = server->output();
    // Every refusal is in the request log; the output's failure and recovery are logged once
    // each, not once per batch.
    const auto refused = count_of(log, "action=Events status=503");
    EXPECT_EQ(refused, t.refusals);
    EXPECT_EQ(count_of(log, "output failed: its batches are refused with 503"), 1u) << log;
    EXPECT_EQ(count_of(log, "output works again"), 1u) << log;

    std::cout << "[ figures  ] fsync=" << (fsync ? "true" : "false") << ": batch " << batch_bytes
              << " B, " << free_when_full << " B free when full; " << t.refusals
              << " 503s (Retry-After " << source.batches()[3].attempts.front().retry_after
              << " s; resent every " << kRetryDelay.count() << " ms) over "
              << seconds(source.batches()[3].attempts.back().answered -
                         source.batches()[3].attempts.front().sent)
              << " s until the Ack; " << t.batches_acked << " batches / " << t.events_acked
              << " events acked, " << lines.size() << " lines in the output\n";
    expect_clean_stop();
}

INSTANTIATE_TEST_SUITE_P(Output, ServeDiskFull, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) {
                             return p.param ? "Fsync" : "NoFsync";
                         });

// ---- SQLite database locked by another process ---------------------------------------------

TEST_F(ServeStorageFaults, DatabaseLockedByAnotherProcessGives503ThenRecovers) {
    const auto out_dir = dir.path() / "events";
    start(out_dir, false);
    if (HasFatalFailure()) return;
    const auto output = out_dir / (kIdentity + ".json");

    Sender source(source_options());
    source.allow(1'000'000); // keeps sending
    ASSERT_TRUE(source.wait_acked(3, 30s)) << source.error();

    // Another process takes the write lock and holds it until told to let go (at most 60 s).
    const auto release = dir.path() / "release-lock";
    const char* script = "import os, sqlite3, sys, time\n"
                         "db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)\n"
                         "db.execute('BEGIN EXCLUSIVE')\n"
                         "print('locked', flush=True)\n"
                         "deadline = time.monotonic() + 60\n"
                         "while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:\n"
                         "    time.sleep(0.02)\n"
                         "db.execute('ROLLBACK')\n"
                         "print('released', flush=True)\n";
    Process locker({"/usr/bin/python3", "-c", script, db_file.string(), release.string()}, {},
                   dir.path() / "locker.log");
    ASSERT_TRUE(locker.wait_for_output("locked", 30s)) << locker.output();
    const auto locked_at = SteadyClock::now();

    // The batch in flight waits out the busy timeout, then is refused with 503.
    const bool refused = source.wait_refusals(1, 40s);
    const auto refused_at = SteadyClock::now();
    const std::size_t acked_when_refused = source.acked();
    std::optional<long long> bookmark_while_locked;
    if (refused) bookmark_while_locked = stored_bookmark_record(db_file, kIdentity);
    std::ofstream(release).close();
    ASSERT_TRUE(locker.wait_for_output("released", 10s)) << locker.output();
    EXPECT_EQ(locker.wait(10s), 0) << locker.output();
    const auto released_at = SteadyClock::now();
    ASSERT_TRUE(refused) << "no 503 while the database was locked for "
                         << seconds(refused_at - locked_at) << " s; " << source.error();
    ASSERT_TRUE(server->running()) << "the collector exited";

    // The next resend is acked; three more batches after it.
    ASSERT_TRUE(source.wait_acked(acked_when_refused + 4, 40s)) << source.error();
    source.stop();
    ASSERT_EQ(source.error(), "");

    const auto batches = source.batches();
    const auto t = tally(batches);
    EXPECT_GE(t.refusals, 1u);
    EXPECT_EQ(t.other_statuses, 0u);
    EXPECT_EQ(t.refusals_with_ack, 0u);
    EXPECT_EQ(t.refusals_without_retry_after, 0u);
    // While locked, the bookmark was the last acked batch's.
    std::uint64_t last_before = 0;
    for (std::size_t i = 0; i < batches.size() && i < acked_when_refused; ++i)
        last_before = batches[i].ids.back();
    ASSERT_TRUE(bookmark_while_locked.has_value());
    EXPECT_EQ(*bookmark_while_locked, static_cast<long long>(last_before));
    // After the release: the bookmark of the last acked batch is stored.
    EXPECT_EQ(stored_bookmark_record(db_file, kIdentity),
              static_cast<long long>(t.last_acked_record));

    // Every acked event is in the output as a whole line. The output is written before the
    // bookmark: a batch refused because the bookmark could not be stored is in the output once
    // per refusal too (at-least-once), and only those are duplicated.
    const auto duplicated = expect_acked_in_output(output, t.acked_ids, t.refused_ids);
    EXPECT_EQ(count_of(server->output(), "bookmark not stored; batch refused with 503"),
              t.refusals);

    // The refused batch: from the first send that met the lock to its Ack.
    const Batch* hit = nullptr;
    for (const auto& b : batches)
        if (b.refusals() > 0 && !hit) hit = &b;
    ASSERT_NE(hit, nullptr);
    std::cout << "[ figures  ] lock held " << seconds(released_at - locked_at) << " s; first 503 "
              << seconds(hit->attempts.front().answered - hit->attempts.front().sent)
              << " s after its send (busy timeout 1 s), Retry-After "
              << hit->attempts.front().retry_after << " s; " << t.refusals << " 503s, Ack "
              << seconds(hit->attempts.back().answered - released_at) << " s after the release; "
              << t.batches_acked << " batches / " << t.events_acked << " events acked, "
              << t.events_acked + duplicated << " lines in the output (" << duplicated
              << " duplicates of refused events)\n";
    expect_clean_stop();
}

// ---- PostgreSQL stopped under load, and down at start -----------------------------------------

TEST_F(ServeStorageFaults, PostgresStoppedUnderLoadGives503ThenRecovers) {
    PostgresServer pg;
    const auto database = pg.create_database();
    const auto out_dir = dir.path() / "events";
    start(out_dir, false, pg.url(database));
    if (HasFatalFailure()) return;

    Sender source(source_options());
    source.allow(1'000'000); // keeps sending
    ASSERT_TRUE(source.wait_acked(3, 30s)) << source.error();

    pg.stop("fast");
    const auto stopped_at = SteadyClock::now();
    const bool refused = source.wait_refusals(1, 40s);
    const std::size_t acked_when_refused = source.acked();
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(source.acked(), acked_when_refused) << "acked without the database";
    pg.start();
    const auto started_at = SteadyClock::now();
    ASSERT_TRUE(refused) << "no 503 while PostgreSQL was down; " << source.error();
    ASSERT_TRUE(server->running()) << "the collector exited";
    ASSERT_TRUE(source.wait_acked(acked_when_refused + 4, 40s)) << source.error();
    source.stop();
    ASSERT_EQ(source.error(), "");

    const auto batches = source.batches();
    const auto t = tally(batches);
    EXPECT_GE(t.refusals, 1u);
    EXPECT_EQ(t.other_statuses, 0u);
    EXPECT_EQ(t.refusals_with_ack, 0u);
    EXPECT_EQ(t.refusals_without_retry_after, 0u);
    EXPECT_EQ(stored_bookmark_record(pg, database, kIdentity),
              static_cast<long long>(t.last_acked_record));
    const auto duplicated =
        expect_acked_in_output(out_dir / (kIdentity + ".json"), t.acked_ids, t.refused_ids);
    // The loss and the recovery are logged once each, not per request.
    const auto log = server->output();
    EXPECT_EQ(count_of(log, "state store unavailable"), 1u) << log;
    EXPECT_EQ(count_of(log, "state store available again"), 1u) << log;

    // The first Ack after the restart.
    double resumed = -1;
    for (const auto& b : batches)
        for (const auto& a : b.attempts)
            if (a.ack && a.answered > started_at && resumed < 0)
                resumed = seconds(a.answered - started_at);
    std::cout << "[ figures  ] PostgreSQL down " << seconds(started_at - stopped_at) << " s, "
              << t.refusals << " 503s; first Ack " << resumed << " s after it was started again; "
              << t.batches_acked << " batches acked, " << duplicated
              << " duplicated lines (refused batches)\n";
    expect_clean_stop();
}

TEST_F(ServeStorageFaults, StartedWhilePostgresIsDownServes503ThenServes) {
    PostgresServer pg;
    const auto database = pg.create_database();
    std::string db = pg.url(database);
    const auto out_dir = dir.path() / "events";
    apply(out_dir, false, db);
    if (HasFatalFailure()) return;
    pg.stop("fast");
    launch(db);
    if (HasFatalFailure()) return;
    EXPECT_NE(server->output().find("UNAVAILABLE"), std::string::npos) << server->output();

    // Enumerate: 503 (not an empty list) while the database is down.
    auto enumerate_status = [&]() -> unsigned {
        try {
            client::Source probe(source_options());
            probe.enumerate();
            return 200;
        } catch (const client::ClientError& e) {
            return e.http_status();
        }
    };
    EXPECT_EQ(enumerate_status(), 503u);
    EXPECT_EQ(enumerate_status(), 503u);

    pg.start();
    const auto started_at = SteadyClock::now();
    unsigned status = 0;
    while (SteadyClock::now() - started_at < 30s && (status = enumerate_status()) == 503)
        std::this_thread::sleep_for(100ms);
    ASSERT_EQ(status, 200u) << server->output();
    std::cout << "[ figures  ] Enumerate served " << seconds(SteadyClock::now() - started_at)
              << " s after PostgreSQL was started\n";

    Sender source(source_options());
    source.allow(3);
    ASSERT_TRUE(source.wait_acked(3, 30s)) << source.error();
    source.stop();
    const auto t = tally(source.batches());
    EXPECT_EQ(stored_bookmark_record(pg, database, kIdentity),
              static_cast<long long>(t.last_acked_record));
    expect_acked_in_output(out_dir / (kIdentity + ".json"), t.acked_ids, t.refused_ids);
    EXPECT_EQ(count_of(server->output(), "state store available again"), 1u);
    expect_clean_stop();
}

} // namespace

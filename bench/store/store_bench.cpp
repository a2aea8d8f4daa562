// State store benchmark (issue 11): put_bookmark (the Ack point: committed when it returns) from
// concurrent writers, SQLite (a file in a temp dir, WAL; every commit fsynced, then the default:
// a client's first bookmark and at most one commit per second fsynced) against PostgreSQL (a
// PostgreSQL 15 started here in a temp dir, fsync on, synchronous_commit on: the durability a
// real deployment has; every commit waiting for the WAL flush, then the default as SQLite's).
// Prints put_bookmark calls/s (each one committed) and latency p50/p99. Then the PostgreSQL pool
// size: the same writers plus readers (bookmark lookups and revision polls, what Enumerate and the
// reload do) with 1 connection and with 4. A plain executable (threads and percentiles; Google
// Benchmark adds nothing here).
//
//   store_bench [--writers N] [--readers N] [--seconds S] [--clients N]
#include "store/store.hpp"
#include "support/postgres_server.hpp"
#include "support/process.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace store = wec::store;

struct Args {
    int writers = 8;
    int readers = 4;
    double seconds = 5;
    int clients = 1000; // distinct (client) rows the writers cycle through
    std::chrono::microseconds read_interval{1000}; // per reader
};

struct Latencies {
    std::vector<double> ms;
    double percentile(double p) {
        if (ms.empty()) return 0;
        std::sort(ms.begin(), ms.end());
        auto at = static_cast<std::size_t>(p * static_cast<double>(ms.size() - 1));
        return ms[at];
    }
};

struct Result {
    double writes_per_s = 0;
    double write_p50 = 0, write_p99 = 0;
    double reads_per_s = 0;
    double read_p50 = 0, read_p99 = 0;
    std::uint64_t errors = 0;
};

Result run(store::Store& db, const Args& args, int readers) {
    const std::string uuid = "0F1E2D3C-4B5A-4978-8796-A5B4C3D2E1F0";
    const std::string bookmark =
        "<BookmarkList><Bookmark Channel=\"Security\" RecordId=\"123456789\" "
        "IsCurrent=\"true\"/></BookmarkList>";
    // Warm up: connections opened, rows present.
    for (int c = 0; c < args.clients; c += 50)
        db.put_bookmark("WIN" + std::to_string(c) + "$@D.LOCAL", uuid, bookmark);
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> errors{0};
    std::vector<Latencies> writes(static_cast<std::size_t>(args.writers));
    std::vector<Latencies> reads(static_cast<std::size_t>(readers));
    std::vector<std::thread> threads;
    auto start = Clock::now();
    for (int w = 0; w < args.writers; ++w)
        threads.emplace_back([&, w] {
            auto& lat = writes[static_cast<std::size_t>(w)];
            for (int i = 0; !stop; ++i) {
                auto client =
                    "WIN" + std::to_string((w + i * args.writers) % args.clients) + "$@D.LOCAL";
                auto t0 = Clock::now();
                try {
                    db.put_bookmark(client, uuid, bookmark);
                } catch (const std::exception&) {
                    ++errors;
                }
                lat.ms.push_back(
                    std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            }
        });
    for (int r = 0; r < readers; ++r)
        threads.emplace_back([&, r] {
            auto& lat = reads[static_cast<std::size_t>(r)];
            auto next = Clock::now();
            for (int i = 0; !stop; ++i) {
                // Paced (a server reads per Enumerate and polls the revision; it does not spin).
                next += args.read_interval;
                std::this_thread::sleep_until(next);
                auto t0 = Clock::now();
                try {
                    if (i % 2 == 0)
                        (void)db.bookmark(
                            "WIN" + std::to_string((r + i) % args.clients) + "$@D.LOCAL", uuid);
                    else
                        (void)db.revision();
                } catch (const std::exception&) {
                    ++errors;
                }
                lat.ms.push_back(
                    std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            }
        });
    std::this_thread::sleep_for(std::chrono::duration<double>(args.seconds));
    stop = true;
    for (auto& t : threads)
        t.join();
    double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    Latencies all_writes, all_reads;
    for (auto& l : writes)
        all_writes.ms.insert(all_writes.ms.end(), l.ms.begin(), l.ms.end());
    for (auto& l : reads)
        all_reads.ms.insert(all_reads.ms.end(), l.ms.begin(), l.ms.end());
    Result r;
    r.writes_per_s = static_cast<double>(all_writes.ms.size()) / elapsed;
    r.write_p50 = all_writes.percentile(0.50);
    r.write_p99 = all_writes.percentile(0.99);
    r.reads_per_s = static_cast<double>(all_reads.ms.size()) / elapsed;
    r.read_p50 = all_reads.percentile(0.50);
    r.read_p99 = all_reads.percentile(0.99);
    r.errors = errors;
    return r;
}

void print(const char* name, const Result& r, bool with_reads) {
    std::printf("%-60s %9.0f put_bookmark/s  p50 %6.2f ms  p99 %6.2f ms", name, r.writes_per_s,
                r.write_p50, r.write_p99);
    if (with_reads)
        std::printf("  | %8.0f reads/s  p50 %6.2f ms  p99 %6.2f ms", r.reads_per_s, r.read_p50,
                    r.read_p99);
    if (r.errors) std::printf("  (%llu errors)", static_cast<unsigned long long>(r.errors));
    std::printf("\n");
    std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
    Args args;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--writers"))
            args.writers = std::stoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--readers"))
            args.readers = std::stoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--seconds"))
            args.seconds = std::stod(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--clients"))
            args.clients = std::stoi(argv[i + 1]);
        else {
            std::fprintf(stderr, "usage: store_bench [--writers N] [--readers N] [--seconds S] "
                                 "[--clients N]\n");
            return 2;
        }
    }
    std::printf("store_bench: %d writers, %.1f s per run, %d clients\n", args.writers, args.seconds,
                args.clients);
    wec::testing::TempDir dir;
    // The writers alone on a fresh database from `url(ms)`, with every bookmark commit synced
    // (bookmark_sync_interval_ms = 0), then with the default.
    const auto both_policies = [&](auto url, const char* every, const char* dflt) {
        for (int ms : {0, 1000}) {
            store::OpenOptions o;
            o.bookmark_sync_interval = std::chrono::milliseconds(ms);
            auto db = store::open(url(ms), o);
            print(ms == 0 ? every : dflt, run(*db, args, 0), false);
        }
    };
    both_policies(
        [&](int ms) {
            return "sqlite:" + (dir.path() / ("wec-" + std::to_string(ms) + ".db")).string();
        },
        "sqlite, every commit fsynced (bookmark_sync_interval_ms = 0)",
        "sqlite, first bookmarks + 1 commit/s fsynced (default)");
    wec::testing::PostgresServer server({/*fsync=*/true});
    both_policies([&](int) { return server.url(server.create_database()); },
                  "postgres, every commit waits for the WAL flush (0)",
                  "postgres, first bookmarks + 1 commit/s wait (default)");
    std::printf("with %d readers, each one read per %lld us (bookmark lookups, revision polls):\n",
                args.readers, static_cast<long long>(args.read_interval.count()));
    {
        auto db = store::open("sqlite:" + (dir.path() / "wec2.db").string());
        print("sqlite", run(*db, args, args.readers), true);
    }
    for (std::size_t pool : {1u, 4u}) {
        store::OpenOptions o;
        o.max_connections = pool;
        auto db = store::open(server.url(server.create_database()), o);
        std::string name = "postgres, pool of " + std::to_string(pool);
        print(name.c_str(), run(*db, args, args.readers), true);
    }
    return 0;
}

// The files output's fdatasync, observed and failed on purpose: this executable is linked with
// `-Wl,--wrap=fdatasync`, so the driver's calls go through __wrap_fdatasync below, which counts
// them, can hold them (to line writers up behind one sync) and can fail them (EIO).
#include "common/files.hpp"
#include "output/output.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <thread>
#include <unistd.h>

extern "C" int __real_fdatasync(int fd);

namespace {

namespace fs = std::filesystem;
using namespace wec::output;

// What __wrap_fdatasync does; reset by each test.
struct SyncControl {
    std::mutex mutex;
    std::condition_variable changed;
    int calls = 0;           // fdatasync calls so far
    int waiting = 0;         // calls held at the gate now
    bool gate_open = true;   // false: calls wait until it opens
    std::map<int, int> fail; // call number (1-based) → errno to fail it with

    void reset() {
        std::lock_guard lock(mutex);
        calls = waiting = 0;
        gate_open = true;
        fail.clear();
    }
    void close_gate() {
        std::lock_guard lock(mutex);
        gate_open = false;
    }
    void open_gate() {
        std::lock_guard lock(mutex);
        gate_open = true;
        changed.notify_all();
    }
    void fail_call(int n, int err) {
        std::lock_guard lock(mutex);
        fail[n] = err;
    }
    int call_count() {
        std::lock_guard lock(mutex);
        return calls;
    }
    // Waits (a generous bound, only so that a broken driver fails instead of hanging) until
    // `n` calls are held at the gate at the same time.
    bool wait_held(int n) {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, std::chrono::seconds(60), [&] { return waiting >= n; });
    }
};

SyncControl& control() {
    static SyncControl c;
    return c;
}

} // namespace

extern "C" int __wrap_fdatasync(int fd) {
    SyncControl& c = control();
    int err = 0;
    {
        std::unique_lock lock(c.mutex);
        const int n = ++c.calls;
        ++c.waiting;
        c.changed.notify_all();
        c.changed.wait(lock, [&] { return c.gate_open; });
        --c.waiting;
        if (auto it = c.fail.find(n); it != c.fail.end()) err = it->second;
    }
    if (err) {
        errno = err;
        return -1;
    }
    return __real_fdatasync(fd);
}

namespace {

using wec::testing::slurp;
using wec::testing::TempDir;

BatchInfo info(std::string_view client = "host") {
    BatchInfo b;
    b.client = client;
    return b;
}

std::string batch(int writer, int lines = 5) {
    std::string s;
    for (int i = 0; i < lines; ++i)
        s += "w" + std::to_string(writer) + "-l" + std::to_string(i) + "\n";
    return s;
}

// Waits until `file` holds `size` bytes (writers write before they wait for their sync).
bool wait_size(const fs::path& file, std::uintmax_t size) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::error_code ec;
    while (fs::file_size(file, ec) != size || ec) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::yield();
    }
    return true;
}

// Joins on every path, so that a failed ASSERT never leaves a joinable thread behind.
struct Threads {
    std::vector<std::thread> list;
    ~Threads() {
        control().open_gate();
        for (auto& t : list)
            if (t.joinable()) t.join();
    }
};

class SyncFault : public testing::Test {
protected:
    void SetUp() override { control().reset(); }
    void TearDown() override { control().reset(); }
};

constexpr int kWriters = 8;

// While one fdatasync runs, seven more batches to the same file are written; they all wait for
// the next fdatasync, which one of them issues for all: 8 batches, 2 fdatasync calls.
TEST_F(SyncFault, ConcurrentBatchesToOneFileShareOneFdatasync) {
    TempDir tmp;
    const fs::path file = tmp.path() / "e.log";
    auto d = make_driver("files", {{"path", file.string()}, {"fsync", true}});
    control().close_gate();
    std::atomic<int> failed{0};
    Threads threads;
    auto writer = [&](int w) {
        try {
            d->write(info(), batch(w));
        } catch (const OutputError&) {
            ++failed;
        }
    };
    threads.list.emplace_back(writer, 0);
    ASSERT_TRUE(control().wait_held(1));
    for (int w = 1; w < kWriters; ++w)
        threads.list.emplace_back(writer, w);
    ASSERT_TRUE(wait_size(file, kWriters * batch(0).size()));
    control().open_gate();
    for (auto& t : threads.list)
        t.join();
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(control().call_count(), 2);
    std::string text = slurp(file);
    for (int w = 0; w < kWriters; ++w)
        EXPECT_NE(text.find(batch(w)), std::string::npos) << "w" << w << " missing or split";
}

// Different files sync in parallel: all eight fdatasync calls are in progress at once (the
// old driver held one lock across every fdatasync, so only one could ever be).
TEST_F(SyncFault, DifferentFilesSyncInParallel) {
    TempDir tmp;
    auto d =
        make_driver("files", {{"path", (tmp.path() / "{client}.log").string()}, {"fsync", true}});
    control().close_gate();
    Threads threads;
    for (int w = 0; w < kWriters; ++w)
        threads.list.emplace_back([&, w] { d->write(info("h" + std::to_string(w)), batch(w)); });
    ASSERT_TRUE(control().wait_held(kWriters)) << "fdatasync calls are serialised";
    control().open_gate();
    for (auto& t : threads.list)
        t.join();
    EXPECT_EQ(control().call_count(), kWriters);
    for (int w = 0; w < kWriters; ++w)
        EXPECT_EQ(slurp(tmp.path() / ("h" + std::to_string(w) + ".log")), batch(w));
}

// A failed fdatasync refuses the batch and removes it from the file; the next batch lands right
// after the earlier ones.
TEST_F(SyncFault, FailedSyncRemovesTheBatch) {
    TempDir tmp;
    const fs::path file = tmp.path() / "e.log";
    auto d = make_driver("files", {{"path", file.string()}, {"fsync", true}});
    d->write(info(), batch(1));
    control().fail_call(2, EIO);
    try {
        d->write(info(), batch(2));
        FAIL() << "a failed fdatasync was acked";
    } catch (const OutputError& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("cannot sync " + file.string()), std::string::npos) << what;
        EXPECT_NE(what.find(std::strerror(EIO)), std::string::npos) << what;
        EXPECT_NE(what.find("truncated back to " + std::to_string(batch(1).size())),
                  std::string::npos)
            << what;
    }
    EXPECT_EQ(slurp(file), batch(1));
    d->write(info(), batch(3));
    EXPECT_EQ(slurp(file), batch(1) + batch(3));
    EXPECT_EQ(control().call_count(), 3);
}

// A failed group commit refuses every batch it was to cover, and only those: the batch synced
// before stays, the seven written during that sync are removed and their writers get the error.
TEST_F(SyncFault, FailedGroupCommitRefusesEveryBatchItCovered) {
    TempDir tmp;
    const fs::path file = tmp.path() / "e.log";
    auto d = make_driver("files", {{"path", file.string()}, {"fsync", true}});
    control().close_gate();
    control().fail_call(2, EIO);
    std::atomic<int> failed{0}, acked{0};
    Threads threads;
    auto writer = [&](int w) {
        try {
            d->write(info(), batch(w));
            ++acked;
        } catch (const OutputError&) {
            ++failed;
        }
    };
    threads.list.emplace_back(writer, 0);
    ASSERT_TRUE(control().wait_held(1));
    for (int w = 1; w < kWriters; ++w)
        threads.list.emplace_back(writer, w);
    ASSERT_TRUE(wait_size(file, kWriters * batch(0).size()));
    control().open_gate();
    for (auto& t : threads.list)
        t.join();
    EXPECT_EQ(acked.load(), 1);
    EXPECT_EQ(failed.load(), kWriters - 1);
    EXPECT_EQ(control().call_count(), 2);
    EXPECT_EQ(slurp(file), batch(0));
    // The sources send again: all accepted, after the batch acked before.
    for (int w = 1; w < kWriters; ++w)
        d->write(info(), batch(w));
    std::string expected = batch(0);
    for (int w = 1; w < kWriters; ++w)
        expected += batch(w);
    EXPECT_EQ(slurp(file), expected);
}

} // namespace

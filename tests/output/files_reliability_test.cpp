// The files output under faults and concurrency: a full filesystem (a real tiny tmpfs) never
// leaves a partial line, concurrent fsync'd writers never tear or interleave batches, and
// reopen() (logrotate) during writes loses nothing.
#include "common/files.hpp"
#include "output/output.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <iostream>
#include <map>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <thread>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using namespace wec::output;

using wec::testing::slurp;
using wec::testing::TempDir;

BatchInfo info(std::string_view client = "host") {
    BatchInfo b;
    b.ip = "127.0.0.1";
    b.client = client;
    b.subscription_name = "s";
    b.subscription_uuid = "u";
    b.received = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    return b;
}

// "w<writer> b<batch> l<line> xxx…\n", always kLineBytes long.
constexpr std::size_t kLineBytes = 100;
std::string line(int writer, int batch, int index) {
    std::string s = "w" + std::to_string(writer) + " b" + std::to_string(batch) + " l" +
                    std::to_string(index) + " ";
    s.resize(kLineBytes - 1, 'x');
    return s + '\n';
}
std::string make_batch(int writer, int batch, int lines) {
    std::string s;
    for (int i = 0; i < lines; ++i)
        s += line(writer, batch, i);
    return s;
}

// Checks that `text` is a sequence of whole batches of `lines_per_batch` lines, each contiguous
// and in order, and counts them in `seen` by (writer, batch). Returns what is wrong, or "".
std::string check_batches(const std::string& text, int lines_per_batch,
                          std::map<std::pair<int, int>, int>& seen) {
    if (text.size() % kLineBytes != 0) return "size " + std::to_string(text.size()) + " is torn";
    int w = -1, b = -1, next = 0;
    for (std::size_t pos = 0; pos < text.size(); pos += kLineBytes) {
        std::string got = text.substr(pos, kLineBytes);
        int lw = -1, lb = -1, ll = -1;
        if (std::sscanf(got.c_str(), "w%d b%d l%d ", &lw, &lb, &ll) != 3 || got != line(lw, lb, ll))
            return "torn line at offset " + std::to_string(pos) + ": " + got;
        if (next == 0) {
            if (ll != 0) return "batch starts with line " + std::to_string(ll) + ": " + got;
            w = lw;
            b = lb;
            ++seen[{w, b}];
        } else if (lw != w || lb != b || ll != next) {
            return "batch w" + std::to_string(w) + " b" + std::to_string(b) +
                   " interrupted at offset " + std::to_string(pos) + " by: " + got;
        }
        next = (ll + 1) % lines_per_batch;
    }
    return next == 0 ? "" : "last batch incomplete";
}

// ---------------------------------------------------------------------------------------------
// A full filesystem.

// The file holds exactly `expected` (a short diagnosis instead of two 40 KB strings otherwise).
void expect_content(const fs::path& file, const std::string& expected) {
    const std::string got = slurp(file);
    if (got == expected) return;
    std::size_t at = 0;
    while (at < got.size() && at < expected.size() && got[at] == expected[at])
        ++at;
    ADD_FAILURE() << file << " holds " << got.size() << " bytes, expected " << expected.size()
                  << "; first difference at offset " << at << ": \""
                  << got.substr(at > 20 ? at - 20 : 0, 60) << "\"";
}

// A directory where writes run out of room: a 64 KiB tmpfs mounted for the test, or, where mount
// is not permitted, a file size limit (RLIMIT_FSIZE with SIGXFSZ ignored, so writes fail with
// EFBIG). Unmounted / restored in the destructor, whatever the test's outcome.
class SmallFilesystem {
public:
    explicit SmallFilesystem(const fs::path& dir) : dir_(dir) {
        fs::create_directories(dir_);
        if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=64k,mode=0700") == 0) {
            mounted_ = true;
            method_ = "a 64 KiB tmpfs (ENOSPC)";
        } else if (errno == EPERM) {
            method_ = "RLIMIT_FSIZE (EFBIG; mount not permitted)";
            ::getrlimit(RLIMIT_FSIZE, &old_limit_);
            old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
            limited_ = true;
        } else {
            error_ = std::string("mount tmpfs: ") + std::strerror(errno);
        }
    }
    ~SmallFilesystem() {
        if (mounted_ && ::umount2(dir_.c_str(), 0) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
        if (limited_) {
            ::setrlimit(RLIMIT_FSIZE, &old_limit_);
            std::signal(SIGXFSZ, old_handler_);
        }
    }
    SmallFilesystem(const SmallFilesystem&) = delete;
    SmallFilesystem& operator=(const SmallFilesystem&) = delete;

    const std::string& error() const { return error_; }
    const std::string& method() const { return method_; }

    // Leaves between 1 and `room` bytes of room for a file that holds `used` bytes.
    void fill(std::size_t used, std::size_t room) {
        if (limited_) {
            rlimit lim = old_limit_;
            lim.rlim_cur = used + room;
            ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0) << std::strerror(errno);
            return;
        }
        // Fill the tmpfs, then give back `room` bytes (whole pages).
        const fs::path filler = dir_ / "filler";
        {
            std::ofstream out(filler, std::ios::binary);
            std::string chunk(4096, 'f');
            while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size())))
                out.flush();
        }
        fs::resize_file(filler, fs::file_size(filler) > room ? fs::file_size(filler) - room : 0);
        struct statvfs st {};
        ASSERT_EQ(::statvfs(dir_.c_str(), &st), 0);
        std::size_t free_bytes = st.f_bavail * st.f_frsize;
        ASSERT_GT(free_bytes, 0u);
        ASSERT_LE(free_bytes, room);
    }

    // Makes room again.
    void free_space() {
        if (limited_) {
            ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old_limit_), 0);
            return;
        }
        fs::remove(dir_ / "filler");
    }

private:
    fs::path dir_;
    bool mounted_ = false;
    bool limited_ = false;
    rlimit old_limit_{};
    void (*old_handler_)(int) = SIG_DFL;
    std::string method_;
    std::string error_;
};

class FullDisk : public testing::TestWithParam<bool> {};

TEST_P(FullDisk, FailedBatchIsRemovedAndTheSameBatchSucceedsOnceThereIsRoom) {
    const bool fsync = GetParam();
    TempDir tmp;
    SmallFilesystem small(tmp.path() / "small");
    ASSERT_EQ(small.error(), "");
    std::cout << "[ fault    ] using " << small.method() << '\n';
    RecordProperty("fault", small.method());
    const fs::path file = tmp.path() / "small" / "events.log";
    // Declared after `small`: closed before the filesystem is unmounted.
    auto driver = make_driver("files", {{"path", file.string()}, {"fsync", fsync}});

    const std::string a = make_batch(1, 1, 10), b = make_batch(1, 2, 10);
    driver->write(info(), a);
    driver->write(info(), b);
    expect_content(file, a + b);

    // 40 KB batch, 12 KiB of room: the first part of the batch gets written, then the write fails.
    const std::string c = make_batch(1, 3, 400);
    small.fill(a.size() + b.size(), 12 * 1024);
    if (HasFatalFailure()) return;
    try {
        driver->write(info(), c);
        FAIL() << "a 40 KB batch fitted in 12 KiB";
    } catch (const OutputError& e) {
        std::string what = e.what();
        EXPECT_NE(what.find(file.string()), std::string::npos) << what;
        EXPECT_TRUE(what.find(std::strerror(ENOSPC)) != std::string::npos ||
                    what.find(std::strerror(EFBIG)) != std::string::npos)
            << what;
        EXPECT_NE(what.find("truncated back to " + std::to_string(a.size() + b.size())),
                  std::string::npos)
            << what;
    }
    // Only whole lines, exactly the batches acked before.
    expect_content(file, a + b);

    // Still full: refused again, still clean.
    EXPECT_THROW(driver->write(info(), c), OutputError);
    expect_content(file, a + b);

    // Room again: the batch the source sends again lands right after the earlier ones.
    small.free_space();
    if (HasFatalFailure()) return;
    driver->write(info(), c);
    expect_content(file, a + b + c);
}

INSTANTIATE_TEST_SUITE_P(Files, FullDisk, testing::Bool(),
                         [](const auto& p) { return p.param ? "Fsync" : "NoFsync"; });

TEST(FilesDriver, FileWithATornLastLineGetsALineBreakFirst) {
    TempDir tmp;
    wec::write_file((tmp.path() / "torn.log").string(), wec::as_bytes("{\"partial\":"));
    wec::write_file((tmp.path() / "whole.log").string(), wec::as_bytes("{\"whole\":1}\n"));
    auto d = make_driver("files", {{"path", (tmp.path() / "{client}.log").string()}});
    d->write(info("torn"), "{\"a\":1}\n");
    d->write(info("torn"), "{\"a\":2}\n");
    d->write(info("whole"), "{\"a\":1}\n");
    EXPECT_EQ(slurp(tmp.path() / "torn.log"), "{\"partial\":\n{\"a\":1}\n{\"a\":2}\n");
    EXPECT_EQ(slurp(tmp.path() / "whole.log"), "{\"whole\":1}\n{\"a\":1}\n");
}

// ---------------------------------------------------------------------------------------------
// Concurrency, with fsync on.

constexpr int kWriters = 8, kBatches = 40, kLines = 20;

void expect_all_batches(const std::vector<fs::path>& files, int writers, int batches) {
    std::map<std::pair<int, int>, int> seen;
    std::size_t total_lines = 0;
    for (const auto& f : files) {
        if (!fs::exists(f)) continue;
        std::string text = slurp(f);
        total_lines += text.size() / kLineBytes;
        EXPECT_EQ(check_batches(text, kLines, seen), "") << f;
    }
    EXPECT_EQ(total_lines, static_cast<std::size_t>(writers) * batches * kLines);
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(writers) * batches);
    for (const auto& [key, count] : seen)
        EXPECT_EQ(count, 1) << "w" << key.first << " b" << key.second;
}

TEST(FilesDriverConcurrency, FsyncedBatchesToOneFile) {
    TempDir tmp;
    auto d = make_driver("files", {{"path", (tmp.path() / "e.log").string()}, {"fsync", true}});
    std::vector<std::thread> threads;
    for (int w = 0; w < kWriters; ++w)
        threads.emplace_back([&, w] {
            for (int b = 0; b < kBatches; ++b)
                d->write(info(), make_batch(w, b, kLines));
        });
    for (auto& t : threads)
        t.join();
    expect_all_batches({tmp.path() / "e.log"}, kWriters, kBatches);
}

// Every writer spreads its batches over 6 files, with room for only 2 open files: files are
// evicted and opened again while other writers are in the middle of a batch or of its fdatasync.
TEST(FilesDriverConcurrency, FsyncedBatchesToManyFilesWithEviction) {
    TempDir tmp;
    auto d = make_driver("files", {{"path", (tmp.path() / "{client}.log").string()},
                                   {"fsync", true},
                                   {"max_open_files", std::int64_t{2}}});
    std::vector<std::thread> threads;
    for (int w = 0; w < kWriters; ++w)
        threads.emplace_back([&, w] {
            for (int b = 0; b < kBatches; ++b)
                d->write(info("f" + std::to_string((w + b) % 6)), make_batch(w, b, kLines));
        });
    for (auto& t : threads)
        t.join();
    std::vector<fs::path> files;
    for (int f = 0; f < 6; ++f) {
        files.push_back(tmp.path() / ("f" + std::to_string(f) + ".log"));
        EXPECT_TRUE(fs::exists(files.back())) << files.back();
    }
    expect_all_batches(files, kWriters, kBatches);
}

// One file per writer (the usual `{client}` layout).
TEST(FilesDriverConcurrency, FsyncedBatchesToOneFileEach) {
    TempDir tmp;
    auto d =
        make_driver("files", {{"path", (tmp.path() / "{client}.log").string()}, {"fsync", true}});
    std::vector<std::thread> threads;
    for (int w = 0; w < kWriters; ++w)
        threads.emplace_back([&, w] {
            for (int b = 0; b < kBatches; ++b)
                d->write(info("f" + std::to_string(w)), make_batch(w, b, kLines));
        });
    for (auto& t : threads)
        t.join();
    for (int w = 0; w < kWriters; ++w) {
        std::map<std::pair<int, int>, int> seen;
        auto f = tmp.path() / ("f" + std::to_string(w) + ".log");
        EXPECT_EQ(check_batches(slurp(f), kLines, seen), "") << f;
        EXPECT_EQ(seen.size(), static_cast<std::size_t>(kBatches)) << f;
        for (const auto& [key, count] : seen)
            EXPECT_EQ(key.first, w) << f;
    }
}

// logrotate during the load: rename the file away, then reopen() (and a reopen() without a
// rename, which must keep writing to the same file). No batch is lost or torn across the files.
class Reopen : public testing::TestWithParam<bool> {};

TEST_P(Reopen, DuringConcurrentWritesLosesNoBatch) {
    TempDir tmp;
    const fs::path file = tmp.path() / "e.log";
    auto d = make_driver("files", {{"path", file.string()}, {"fsync", GetParam()}});
    // Each writer writes 10 batches per phase and waits for the rotation before its next phase;
    // a rotation happens once all but a few batches of its phase are written, so that it races
    // with the writers still in the middle of theirs.
    constexpr int writers = 6, per_phase = 10, rotations = 5, batches = per_phase * (rotations + 1);
    std::atomic<int> done{0}, rotated{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w)
        threads.emplace_back([&, w] {
            for (int b = 0; b < batches; ++b) {
                while (rotated.load() < b / per_phase)
                    std::this_thread::yield();
                d->write(info(), make_batch(w, b, kLines));
                ++done;
            }
        });
    std::vector<fs::path> files;
    for (int r = 1; r <= rotations; ++r) {
        while (done.load() < r * writers * per_phase - writers / 2)
            std::this_thread::yield();
        files.push_back(tmp.path() / ("e.log." + std::to_string(r)));
        std::error_code ec;
        fs::rename(file, files.back(), ec);
        EXPECT_FALSE(ec) << "rename " << file << ": " << ec.message();
        d->reopen();
        d->reopen(); // nothing renamed: the same file, kept with its lock
        rotated = r;
    }
    for (auto& t : threads)
        t.join();
    files.push_back(file);
    for (const auto& f : files) {
        ASSERT_TRUE(fs::exists(f)) << f;
        EXPECT_GT(fs::file_size(f), 0u) << f;
    }
    expect_all_batches(files, writers, batches);
}

INSTANTIATE_TEST_SUITE_P(Files, Reopen, testing::Bool(),
                         [](const auto& p) { return p.param ? "Fsync" : "NoFsync"; });

} // namespace

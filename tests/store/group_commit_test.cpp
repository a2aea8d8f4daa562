// BookmarkGroupCommit on its own (store/group_commit_internal.hpp): concurrent writers share
// commits, each write is committed exactly once before its put() returns, commits never overlap,
// and a failed commit fails every write it carried and only those.
#include "store/group_commit_internal.hpp"

#include <atomic>
#include <chrono>
#include <gtest/gtest.h>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using wec::store::detail::BookmarkGroupCommit;
using wec::store::detail::BookmarkWrite;
using namespace std::chrono_literals;

BookmarkWrite write_of(int thread, int i) {
    return {"SUB", "client" + std::to_string(thread), "bookmark " + std::to_string(i), i};
}

TEST(GroupCommit, EveryWriteIsCommittedOnceBeforePutReturnsAndCommitsNeverOverlap) {
    BookmarkGroupCommit group;
    constexpr int kThreads = 8, kWrites = 200;
    std::mutex m;
    std::map<std::string, int> committed; // "client/bookmark" -> times committed
    std::atomic<int> in_commit{0}, overlaps{0}, commits{0};
    auto commit = [&](std::span<const BookmarkWrite* const> writes) {
        if (in_commit.fetch_add(1) != 0) ++overlaps;
        ++commits;
        std::this_thread::sleep_for(200us); // an fsync: writers pile up behind it
        {
            std::lock_guard lock(m);
            for (const auto* w : writes)
                ++committed[w->client + "/" + w->bookmark];
        }
        --in_commit;
    };
    std::atomic<int> not_yet_committed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kWrites; ++i) {
                auto w = write_of(t, i);
                auto key = w.client + "/" + w.bookmark;
                group.put(std::move(w), commit);
                std::lock_guard lock(m);
                if (committed[key] != 1) ++not_yet_committed;
            }
        });
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(not_yet_committed, 0);
    EXPECT_EQ(overlaps, 0);
    EXPECT_EQ(committed.size(), static_cast<std::size_t>(kThreads * kWrites));
    for (const auto& [key, times] : committed)
        EXPECT_EQ(times, 1) << key;
    // Shared commits: fewer commits than writes (8 writers behind 200 us commits).
    EXPECT_LT(commits.load(), kThreads * kWrites);
}

TEST(GroupCommit, AFailedCommitFailsTheWritesItCarriedAndTheNextOnesGoOn) {
    BookmarkGroupCommit group;
    constexpr int kThreads = 6, kWrites = 100;
    std::atomic<int> commits{0};
    std::mutex m;
    std::map<std::string, bool> outcome_by_commit; // client/bookmark -> committed ok
    auto commit = [&](std::span<const BookmarkWrite* const> writes) {
        bool fail = commits.fetch_add(1) % 3 == 1; // every third commit fails
        std::this_thread::sleep_for(100us);
        std::lock_guard lock(m);
        for (const auto* w : writes)
            outcome_by_commit[w->client + "/" + w->bookmark] = !fail;
        if (fail) throw std::runtime_error("disk full");
    };
    std::atomic<int> mismatches{0}, failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kWrites; ++i) {
                auto w = write_of(t, i);
                auto key = w.client + "/" + w.bookmark;
                bool ok = true;
                try {
                    group.put(std::move(w), commit);
                } catch (const std::runtime_error& e) {
                    ok = false;
                    ++failures;
                    if (std::string(e.what()) != "disk full") ++mismatches;
                }
                std::lock_guard lock(m);
                auto it = outcome_by_commit.find(key);
                if (it == outcome_by_commit.end() || it->second != ok) ++mismatches;
            }
        });
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(mismatches, 0);
    EXPECT_GT(failures, 0);
    EXPECT_LT(failures, kThreads * kWrites);
}

} // namespace

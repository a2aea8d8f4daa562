// output::WriteQueue: jobs run on the queue's own threads in order, a full queue refuses at once
// (the collector's back-pressure), drain() runs what was queued, and a job may drop the last
// reference to its own queue.
#include "output/queue.hpp"

#include <atomic>
#include <condition_variable>
#include <future>
#include <gtest/gtest.h>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using wec::output::WriteQueue;

namespace {

// Holds jobs until opened.
class Gate {
public:
    void wait() {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return open_; });
    }
    void open() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        cv_.notify_all();
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
};

TEST(WriteQueue, RunsJobsInOrderOnItsOwnThread) {
    WriteQueue queue("test", 1, 100);
    std::vector<int> order;
    std::promise<std::thread::id> where;
    for (int i = 0; i < 50; ++i)
        ASSERT_TRUE(queue.try_post([&order, i] { order.push_back(i); }));
    ASSERT_TRUE(queue.try_post([&where] { where.set_value(std::this_thread::get_id()); }));
    EXPECT_NE(where.get_future().get(), std::this_thread::get_id());
    queue.drain();
    ASSERT_EQ(order.size(), 50u);
    for (int i = 0; i < 50; ++i)
        EXPECT_EQ(order[i], i);
    EXPECT_EQ(queue.stats().posted, 51u);
}

TEST(WriteQueue, AFullQueueRefusesAtOnceAndAcceptsOnceItDrains) {
    WriteQueue queue("test", 1, 3);
    Gate gate;
    std::promise<void> started;
    ASSERT_TRUE(queue.try_post([&] {
        started.set_value();
        gate.wait();
    }));
    started.get_future().wait(); // the first job runs: three more may wait
    std::atomic<int> ran{0};
    for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(queue.try_post([&ran] { ++ran; }));
    EXPECT_FALSE(queue.try_post([&ran] { ran += 100; }));
    EXPECT_FALSE(queue.try_post([&ran] { ran += 100; }));
    auto s = queue.stats();
    EXPECT_EQ(s.waiting, 3u);
    EXPECT_EQ(s.running, 1u);
    EXPECT_EQ(s.refused, 2u);
    EXPECT_EQ(s.peak_waiting, 3u);
    gate.open();
    queue.drain();
    EXPECT_EQ(ran.load(), 3);
    EXPECT_FALSE(queue.try_post([] {})) << "a drained queue takes nothing";
}

TEST(WriteQueue, SeveralThreadsRunJobsAtOnce) {
    WriteQueue queue("test", 4, 16);
    std::mutex mutex;
    std::condition_variable cv;
    int inside = 0;
    int peak = 0;
    for (int i = 0; i < 4; ++i)
        ASSERT_TRUE(queue.try_post([&] {
            std::unique_lock lock(mutex);
            peak = std::max(peak, ++inside);
            cv.notify_all();
            // Every job waits until all four are inside: only four threads make that possible.
            cv.wait(lock, [&] { return peak == 4; });
        }));
    queue.drain();
    EXPECT_EQ(peak, 4);
}

TEST(WriteQueue, DrainRunsQueuedJobsAndExceptionsAreCounted) {
    std::atomic<int> ran{0};
    {
        WriteQueue queue("test", 2, 100);
        for (int i = 0; i < 20; ++i)
            ASSERT_TRUE(queue.try_post([&ran] { ++ran; }));
        ASSERT_TRUE(queue.try_post([] { throw std::runtime_error("boom"); }));
        queue.drain();
        EXPECT_EQ(queue.stats().exceptions, 1u);
    }
    EXPECT_EQ(ran.load(), 20);
}

TEST(WriteQueue, AJobMayDropTheLastReferenceToItsQueue) {
    for (int round = 0; round < 50; ++round) {
        auto queue = std::make_shared<WriteQueue>("test", 2, 4);
        std::promise<void> gone;
        auto* raw = queue.get();
        ASSERT_TRUE(raw->try_post([q = std::move(queue), &gone]() mutable {
            q.reset(); // destroys the queue from one of its own threads
            gone.set_value();
        }));
        ASSERT_EQ(gone.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
    }
}

} // namespace

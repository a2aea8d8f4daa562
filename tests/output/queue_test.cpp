// output::WriteQueue: jobs run on the queue's own threads in order, a full queue refuses at once
// (the collector's back-pressure), drain() runs what was queued, and a job may drop the last
// reference to its own queue.
#include "output/queue.hpp"
#include "support/gate.hpp"

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

using wec::testing::Gate; // holds jobs until opened

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

namespace {

TEST(WriteQueue, RunOrPostRunsOnTheCallersThreadWhenAWriterIsFree) {
    WriteQueue queue("test", 1, 4);
    std::thread::id where;
    ASSERT_TRUE(queue.run_or_post([&where] { where = std::this_thread::get_id(); }));
    EXPECT_EQ(where, std::this_thread::get_id()) << "done before run_or_post returned";
    ASSERT_TRUE(queue.run_or_post([] { throw std::runtime_error("boom"); }));
    auto s = queue.stats();
    EXPECT_EQ(s.posted, 2u);
    EXPECT_EQ(s.run_inline, 2u);
    EXPECT_EQ(s.exceptions, 1u);
    EXPECT_EQ(s.running, 0u);
}

TEST(WriteQueue, RunOrPostQueuesBehindBusyWritersInOrderAndKeepsTheLimits) {
    WriteQueue queue("test", 1, 2);
    Gate gate;
    std::promise<void> started;
    std::thread::id first_thread;
    // A job run by run_or_post() on another thread takes the queue's only writer.
    std::thread caller([&] {
        EXPECT_TRUE(queue.run_or_post([&] {
            first_thread = std::this_thread::get_id();
            started.set_value();
            gate.wait();
        }));
    });
    started.get_future().wait();
    std::vector<int> order;
    std::mutex order_mutex;
    std::promise<std::thread::id> second_thread;
    EXPECT_TRUE(queue.run_or_post([&] {
        second_thread.set_value(std::this_thread::get_id());
        std::lock_guard lock(order_mutex);
        order.push_back(1);
    })) << "queued: the writer is busy";
    EXPECT_TRUE(queue.try_post([&] {
        std::lock_guard lock(order_mutex);
        order.push_back(2);
    }));
    EXPECT_FALSE(queue.run_or_post([] {})) << "two wait: the queue is full";
    auto s = queue.stats();
    EXPECT_EQ(s.waiting, 2u) << "not started while the only writer is taken";
    EXPECT_EQ(s.running, 1u);
    EXPECT_EQ(s.refused, 1u);
    gate.open();
    caller.join();
    auto second = second_thread.get_future().get();
    EXPECT_NE(second, std::this_thread::get_id());
    EXPECT_NE(second, first_thread) << "a queued job runs on the queue's thread";
    queue.drain();
    EXPECT_EQ(order, (std::vector<int>{1, 2}));
    EXPECT_EQ(queue.stats().run_inline, 1u);
}

TEST(WriteQueue, DrainWaitsForJobsRunOnOtherThreads) {
    auto queue = std::make_unique<WriteQueue>("test", 2, 4);
    Gate gate;
    std::promise<void> started;
    std::atomic<bool> finished{false};
    std::thread caller([&] {
        queue->run_or_post([&] {
            started.set_value();
            gate.wait();
            finished = true;
        });
    });
    started.get_future().wait();
    std::thread opener([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        gate.open();
    });
    queue->drain();
    EXPECT_TRUE(finished.load()) << "drain() returned while a job still ran";
    EXPECT_FALSE(queue->run_or_post([] {})) << "a drained queue takes nothing";
    opener.join();
    caller.join();
}

TEST(WriteQueue, AJobRunByRunOrPostMayDropTheLastReferenceToItsQueue) {
    auto queue = std::make_shared<WriteQueue>("test", 2, 4);
    auto* raw = queue.get();
    bool ran = false;
    ASSERT_TRUE(raw->run_or_post([q = std::move(queue), &ran]() mutable {
        q.reset(); // destroys the queue from inside the job, on the caller's thread
        ran = true;
    }));
    EXPECT_TRUE(ran);
}

} // namespace

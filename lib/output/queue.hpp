// A bounded queue of batches in front of one output, with its own writer threads: what lets a
// collector hand a batch to several outputs at once and answer the source when the last one is
// done, without a request thread waiting on a slow output. When `capacity` batches already wait,
// try_post() refuses at once: the caller answers 503 and the source sends the batch again later
// (back-pressure instead of unbounded memory).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace wec::output {

class WriteQueue {
public:
    using Job = std::function<void()>;

    // `threads` writer threads (at least 1) run the jobs, in the order posted; at most
    // `capacity` jobs (at least 1) wait, not counting those being run.
    WriteQueue(std::string name, std::size_t threads, std::size_t capacity);
    // drain(), then releases the threads.
    ~WriteQueue();
    WriteQueue(const WriteQueue&) = delete;
    WriteQueue& operator=(const WriteQueue&) = delete;

    // Queues `job`, or returns false (and drops it) when the queue is full or drained. A job must
    // not throw (an exception is caught, counted and dropped).
    bool try_post(Job job);

    // Runs `job` on the calling thread when a writer thread would take it at once (nothing waits
    // and fewer than `threads` jobs run), which saves the hand-off to a writer thread and its
    // wake-up; otherwise queues it as try_post() does. Returns false (and drops the job) when
    // try_post() would refuse it. Jobs still start in the order they came: one runs here only
    // when none waits, and the writer threads never run more than `threads` jobs at once, those
    // run here included. The job's exceptions are caught and counted as on the threads.
    bool run_or_post(Job job);

    // True when try_post() would refuse now (a hint: another thread may post or take meanwhile).
    bool full() const;

    // Refuses new jobs, runs those already queued, and waits for the threads to end and for the
    // jobs that run_or_post() runs on other threads (called from one of the queue's own jobs,
    // that thread is left to finish by itself). Idempotent.
    void drain();

    struct Stats {
        std::size_t waiting = 0;      // jobs queued, not started
        std::size_t running = 0;      // jobs being run (by run_or_post() too)
        std::uint64_t posted = 0;     // jobs accepted (run_or_post() included)
        std::uint64_t run_inline = 0; // of which run by run_or_post() on the caller's thread
        std::uint64_t refused = 0;    // try_post() calls refused (full or drained)
        std::uint64_t exceptions = 0; // jobs that threw
        std::size_t peak_waiting = 0; // most jobs seen waiting at once
    };
    Stats stats() const;
    std::size_t capacity() const { return capacity_; }
    const std::string& name() const { return name_; }

    // What the threads share; they hold it, not the queue, so that a job may drop the last
    // reference to its own queue.
    struct State;

private:
    std::string name_;
    std::size_t capacity_;
    std::shared_ptr<State> state_;
    std::vector<std::thread> threads_;
};

} // namespace wec::output

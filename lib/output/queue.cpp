#include "output/queue.hpp"

#include <algorithm>
#include <pthread.h>

namespace wec::output {

struct WriteQueue::State {
    std::size_t capacity;
    std::size_t threads; // jobs that may run at once
    std::mutex mutex;
    std::condition_variable ready;
    std::condition_variable inline_done; // drain() waits on it for jobs run by run_or_post()
    std::deque<Job> jobs;
    std::vector<std::thread::id> running_inline; // threads in a job of run_or_post()
    bool draining = false;
    Stats stats;

    State(std::size_t c, std::size_t t) : capacity(c), threads(t) {}

    // A writer thread takes a job when one waits and a writer is free (jobs of run_or_post()
    // take writers too); when draining, it runs what is left whatever runs elsewhere.
    bool can_take() const { return !jobs.empty() && (draining || stats.running < threads); }

    static bool run_one(Job& job) {
        try {
            job();
            return false;
        } catch (...) {
            return true;
        }
    }

    void run() {
        std::unique_lock lock(mutex);
        for (;;) {
            ready.wait(lock, [this] { return draining || can_take(); });
            if (jobs.empty()) return; // draining and nothing left
            Job job = std::move(jobs.front());
            jobs.pop_front();
            ++stats.running;
            lock.unlock();
            const bool threw = run_one(job);
            job = nullptr; // release what the job holds before taking the lock again
            lock.lock();
            --stats.running;
            if (threw) ++stats.exceptions;
        }
    }
};

WriteQueue::WriteQueue(std::string name, std::size_t threads, std::size_t capacity)
    : name_(std::move(name)), capacity_(std::max<std::size_t>(capacity, 1)),
      state_(std::make_shared<State>(capacity_, std::max<std::size_t>(threads, 1))) {
    threads = std::max<std::size_t>(threads, 1);
    threads_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) {
        threads_.emplace_back([state = state_] { state->run(); });
        // Shows in top -H and gdb (the kernel keeps 15 characters).
        pthread_setname_np(threads_.back().native_handle(), ("out:" + name_).substr(0, 15).c_str());
    }
}

WriteQueue::~WriteQueue() {
    drain();
}

bool WriteQueue::try_post(Job job) {
    // Once the job is queued and the lock released, a worker may run it at once, and a job may
    // drop the last reference to this queue (AJobMayDropTheLastReferenceToItsQueue): `this` can
    // be gone before notify_one. So the state is reached through a reference of our own, never
    // through `this` after the unlock (ThreadSanitizer found the read of the freed state_).
    std::shared_ptr<State> state = state_;
    {
        std::lock_guard lock(state->mutex);
        auto& s = *state;
        if (s.draining || s.jobs.size() >= s.capacity) {
            ++s.stats.refused;
            return false;
        }
        s.jobs.push_back(std::move(job));
        ++s.stats.posted;
        s.stats.peak_waiting = std::max(s.stats.peak_waiting, s.jobs.size());
    }
    state->ready.notify_one();
    return true;
}

bool WriteQueue::run_or_post(Job job) {
    // As in try_post(): the job may drop the last reference to this queue, so only `state` is
    // used once it has started.
    std::shared_ptr<State> state = state_;
    const auto me = std::this_thread::get_id();
    {
        std::unique_lock lock(state->mutex);
        auto& s = *state;
        if (s.draining || !s.jobs.empty() || s.stats.running >= s.threads) {
            lock.unlock();
            return try_post(std::move(job)); // refused when draining or full
        }
        ++s.stats.posted;
        ++s.stats.run_inline;
        ++s.stats.running;
        s.running_inline.push_back(me);
    }
    const bool threw = State::run_one(job);
    job = nullptr; // release what the job holds before taking the lock again
    bool wake_writer = false;
    {
        std::lock_guard lock(state->mutex);
        auto& s = *state;
        --s.stats.running;
        if (threw) ++s.stats.exceptions;
        std::erase(s.running_inline, me);
        // A job queued meanwhile may have waited for this writer.
        wake_writer = !s.jobs.empty();
        if (s.draining) s.inline_done.notify_all();
    }
    if (wake_writer) state->ready.notify_one();
    return true;
}

void WriteQueue::drain() {
    std::shared_ptr<State> state = state_;
    {
        std::lock_guard lock(state->mutex);
        state->draining = true;
    }
    state->ready.notify_all();
    for (auto& t : threads_) {
        if (!t.joinable()) continue;
        if (t.get_id() == std::this_thread::get_id())
            t.detach(); // our own job dropped the queue: this thread ends by itself
        else
            t.join();
    }
    // Jobs that run_or_post() runs on other threads end too (not one that this thread runs: it
    // dropped the queue from inside that job).
    const auto me = std::this_thread::get_id();
    std::unique_lock lock(state->mutex);
    state->inline_done.wait(lock, [&] {
        return std::all_of(state->running_inline.begin(), state->running_inline.end(),
                           [&](const auto& id) { return id == me; });
    });
}

bool WriteQueue::full() const {
    std::lock_guard lock(state_->mutex);
    return state_->draining || state_->jobs.size() >= state_->capacity;
}

WriteQueue::Stats WriteQueue::stats() const {
    std::lock_guard lock(state_->mutex);
    Stats s = state_->stats;
    s.waiting = state_->jobs.size();
    return s;
}

} // namespace wec::output

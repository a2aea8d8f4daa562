#include "output/queue.hpp"

#include <algorithm>
#include <pthread.h>

namespace wec::output {

struct WriteQueue::State {
    std::size_t capacity;
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<Job> jobs;
    bool draining = false;
    Stats stats;

    explicit State(std::size_t c) : capacity(c) {}

    void run() {
        std::unique_lock lock(mutex);
        for (;;) {
            ready.wait(lock, [this] { return draining || !jobs.empty(); });
            if (jobs.empty()) return; // draining and nothing left
            Job job = std::move(jobs.front());
            jobs.pop_front();
            ++stats.running;
            lock.unlock();
            bool threw = false;
            try {
                job();
            } catch (...) {
                threw = true;
            }
            job = nullptr; // release what the job holds before taking the lock again
            lock.lock();
            --stats.running;
            if (threw) ++stats.exceptions;
        }
    }
};

WriteQueue::WriteQueue(std::string name, std::size_t threads, std::size_t capacity)
    : name_(std::move(name)), capacity_(std::max<std::size_t>(capacity, 1)),
      state_(std::make_shared<State>(capacity_)) {
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

void WriteQueue::drain() {
    {
        std::lock_guard lock(state_->mutex);
        state_->draining = true;
    }
    state_->ready.notify_all();
    for (auto& t : threads_) {
        if (!t.joinable()) continue;
        if (t.get_id() == std::this_thread::get_id())
            t.detach(); // our own job dropped the queue: this thread ends by itself
        else
            t.join();
    }
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

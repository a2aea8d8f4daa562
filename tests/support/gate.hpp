// A gate that threads under test wait at until the test opens it, counting who waits (so that a
// test can tell when they all got there). Header-only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace wec::testing {

class Gate {
public:
    // Blocks until open().
    void wait() {
        std::unique_lock lock(mutex_);
        ++waiting_;
        cv_.notify_all();
        cv_.wait(lock, [this] { return open_; });
    }
    void open() {
        {
            std::lock_guard lock(mutex_);
            open_ = true;
        }
        cv_.notify_all();
    }
    // True once `n` threads have called wait() (false after `limit`).
    bool reached_by(int n, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, limit, [&] { return waiting_ >= n; });
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
    int waiting_ = 0;
};

} // namespace wec::testing

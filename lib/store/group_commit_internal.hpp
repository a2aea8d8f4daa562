// Bookmark writes of concurrent batches share one commit (internal to lib/store): the first writer
// that finds no commit in progress becomes the leader and commits everything queued so far in one
// transaction; the others wait for the commit that carries their write. Both backends use it, each
// with its own statement.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace wec::store::detail {

struct BookmarkWrite {
    std::string subscription_uuid; // uppercase
    std::string client;
    std::string bookmark;
    std::int64_t updated_at = 0; // ms since the epoch
};

class BookmarkGroupCommit {
public:
    // Commits the writes given, in arrival order (the last write of a client wins), in one
    // transaction; throws on failure.
    using Commit = std::function<void(std::span<const BookmarkWrite* const>)>;

    // Returns once `write` is committed; rethrows the error of the commit that carried it (every
    // write of a failed group gets it).
    void put(BookmarkWrite write, const Commit& commit) {
        Pending me{std::move(write), false, nullptr};
        std::unique_lock lock(mutex_);
        pending_.push_back(&me);
        while (!me.done) {
            if (leader_active_) {
                cv_.wait(lock);
                continue;
            }
            leader_active_ = true;
            std::vector<Pending*> batch;
            batch.swap(pending_);
            lock.unlock();
            std::exception_ptr error;
            try {
                std::vector<const BookmarkWrite*> writes;
                writes.reserve(batch.size());
                for (const auto* p : batch)
                    writes.push_back(&p->write);
                commit(writes);
            } catch (...) {
                error = std::current_exception();
            }
            lock.lock();
            for (auto* p : batch) {
                p->error = error;
                p->done = true;
            }
            leader_active_ = false;
            cv_.notify_all();
        }
        if (me.error) std::rethrow_exception(me.error);
    }

private:
    struct Pending {
        BookmarkWrite write;
        bool done = false;
        std::exception_ptr error;
    };
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<Pending*> pending_;
    bool leader_active_ = false;
};

} // namespace wec::store::detail

// Bookmark writes of concurrent batches share one commit (internal to lib/store): the first writer
// that finds no commit in progress becomes the leader and commits everything queued so far in one
// transaction; the others wait for the commit that carries their write. Both backends use it, each
// with its own statement.
#pragma once

#include "store/store.hpp"

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
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

    // Returns once `write` is committed; when the commit that carried it failed, the leader
    // rethrows the commit's error and every other writer of that group throws a StoreError with
    // its message: an exception object is never shared between threads (its reference count lives
    // in libstdc++, which ThreadSanitizer cannot see).
    //
    // Wake-ups are targeted: a waiter sleeps on its own condition variable and is woken once,
    // either because the commit that carried its write is done or because it is to lead the next
    // commit (the first write that arrived during the last one). A commit does not wake the
    // writers queued behind it that it did not carry.
    void put(BookmarkWrite write, const Commit& commit) {
        auto me = std::make_shared<Pending>(std::move(write));
        std::unique_lock lock(mutex_);
        pending_.push_back(me);
        if (leader_active_) {
            me->wake.wait(lock, [&me] { return me->done || me->lead; });
            if (me->done) {
                if (me->failed) throw StoreError(me->error);
                return;
            }
        }
        // The leader: commits everything queued so far (this write included).
        leader_active_ = true;
        std::vector<std::shared_ptr<Pending>> batch;
        batch.swap(pending_);
        lock.unlock();
        std::exception_ptr error;
        std::string message;
        try {
            std::vector<const BookmarkWrite*> writes;
            writes.reserve(batch.size());
            for (const auto& p : batch)
                writes.push_back(&p->write);
            commit(writes);
        } catch (const std::exception& e) {
            error = std::current_exception();
            message = e.what();
        } catch (...) {
            error = std::current_exception();
            message = "bookmark commit failed";
        }
        std::shared_ptr<Pending> next;
        lock.lock();
        for (auto& p : batch) {
            if (error && p != me) {
                p->failed = true;
                p->error = message;
            }
            p->done = true;
        }
        if (pending_.empty()) {
            leader_active_ = false;
        } else {
            next = pending_.front();
            next->lead = true; // leader_active_ stays set: nobody else takes over
        }
        lock.unlock();
        // Notified after the unlock, so that a waiter woken does not find the mutex still held
        // and sleep again on it. The batch's references keep each condition variable alive: a
        // waiter that saw `done` may already have returned.
        for (auto& p : batch)
            if (p != me) p->wake.notify_one();
        if (next) next->wake.notify_one();
        if (error) std::rethrow_exception(error);
    }

private:
    struct Pending {
        explicit Pending(BookmarkWrite w) : write(std::move(w)) {}
        BookmarkWrite write;
        bool done = false;
        bool lead = false; // to commit what is queued now (set when done is not)
        bool failed = false;
        std::string error; // the failed commit's message
        std::condition_variable wake;
    };
    std::mutex mutex_;
    std::vector<std::shared_ptr<Pending>> pending_; // shared with the leader that notifies them
    bool leader_active_ = false;
};

} // namespace wec::store::detail

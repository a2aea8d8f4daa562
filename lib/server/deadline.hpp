#pragma once

// A connection's one deadline (issue 15). Beast's tcp_stream, like the first TLS stream, armed a
// timer for every read and write and cancelled it on completion: a timerfd_settime for most
// operations and a cancelled wait whose completion could wake the other I/O thread. Here an
// operation only stores its deadline as a time point. One wait per connection is in flight at
// a time: when it ends it compares the clock with the stored deadline and waits again for it if
// it moved on (so it fires at most once per timeout period on a busy connection), or reports the
// expiry. Only a deadline brought closer than the wait in flight (a drain's few seconds after a
// 120 s keep-alive wait) re-arms it at once.
//
// Everything runs on the connection's strand (the timer shares the socket's executor).

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

namespace wec::server::detail {

class LazyDeadline {
public:
    using clock = std::chrono::steady_clock;

    template <class Executor>
    explicit LazyDeadline(const Executor& executor) : timer_(executor) {}

    // The deadline is `after` from now. `owner` holds this object as its member `deadline` and
    // has an expire() member: the wait keeps it alive and calls owner->expire() once the
    // deadline has passed.
    template <class Owner>
    void expires_after(clock::duration after, const std::shared_ptr<Owner>& owner) {
        deadline_ = clock::now() + after;
        if (waiting_ && armed_ <= deadline_) return; // that wait ends first and waits on
        arm(owner);
    }

    // No deadline: the wait in flight, if any, ends without effect and is not renewed.
    void expires_never() { deadline_ = clock::time_point::max(); }

    // For good (the connection closes): the wait in flight completes at once, aborted, and
    // releases its owner.
    void cancel() {
        deadline_ = clock::time_point::max();
        ++generation_;
        if (waiting_) timer_.cancel();
        waiting_ = false;
    }

    // For tests: whether a wait is in flight, and when it ends.
    bool waiting() const { return waiting_; }
    clock::time_point armed() const { return armed_; }

private:
    template <class Owner>
    void arm(const std::shared_ptr<Owner>& owner) {
        armed_ = deadline_;
        waiting_ = true;
        auto generation = ++generation_;
        timer_.expires_at(armed_); // aborts a wait in flight (then stale: another generation)
        timer_.async_wait([owner, generation](const boost::system::error_code& ec) {
            LazyDeadline& d = owner->deadline;
            if (generation != d.generation_) return; // re-armed or cancelled since
            d.waiting_ = false;
            if (ec || d.deadline_ == clock::time_point::max()) return;
            if (clock::now() < d.deadline_) return d.arm(owner); // moved on: wait again
            owner->expire();
        });
    }

    boost::asio::steady_timer timer_;
    clock::time_point deadline_ = clock::time_point::max();
    clock::time_point armed_{};    // what the wait in flight waits for
    std::uint64_t generation_ = 0; // of the wait in flight; older ones are stale
    bool waiting_ = false;
};

// What both server streams' cores share: the socket and its deadline, whose expiry closes the
// socket (pending operations complete and report the timeout).
struct TimedSocket {
    explicit TimedSocket(boost::asio::ip::tcp::socket s)
        : socket(std::move(s)), deadline(socket.get_executor()) {}
    boost::asio::ip::tcp::socket socket;
    LazyDeadline deadline;
    bool timed_out = false;
    void expire() {
        timed_out = true;
        boost::system::error_code ignored;
        socket.close(ignored);
    }
};

// A stream's end: its core may be let go on a worker thread (the session's last reference
// dropped there) while the deadline's wait completes on the connection's strand, so the deadline
// is cancelled (and the socket closed, when `close`) on the strand, at once when this is it,
// the core kept alive until then.
template <class Core>
void end_on_strand(std::shared_ptr<Core> core, bool close) {
    auto executor = core->socket.get_executor();
    boost::asio::dispatch(executor, [core = std::move(core), close] {
        core->deadline.cancel();
        if (!close) return;
        boost::system::error_code ignored;
        core->socket.close(ignored); // now, not when the aborted wait lets go of the core
    });
}

} // namespace wec::server::detail

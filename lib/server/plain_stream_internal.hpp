#pragma once

// The server's plain (HTTP) stream: a TCP socket with beast::tcp_stream's timeout interface
// (expires_after / expires_never cover the operations pending until the deadline; on expiry the
// socket is closed and they complete with beast::error::timeout), kept by one LazyDeadline per
// connection instead of a timer armed and cancelled around every read and write. It is its own
// lowest layer.

#include "server/deadline.hpp"

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>
#include <chrono>
#include <memory>
#include <type_traits>
#include <utility>

namespace wec::server::detail {

class PlainSocketStream {
public:
    using tcp = boost::asio::ip::tcp;
    using executor_type = tcp::socket::executor_type;
    using error_code = boost::system::error_code;

    explicit PlainSocketStream(tcp::socket socket)
        : core_(std::make_shared<Core>(std::move(socket))) {}
    PlainSocketStream(PlainSocketStream&&) noexcept = default;
    PlainSocketStream& operator=(PlainSocketStream&&) = delete;
    ~PlainSocketStream() {
        if (core_) end_on_strand(std::move(core_), true); // else moved from
    }

    executor_type get_executor() { return core_->socket.get_executor(); }
    tcp::socket& socket() { return core_->socket; }

    void expires_after(std::chrono::steady_clock::duration after) {
        core_->deadline.expires_after(after, core_);
    }
    void expires_never() { core_->deadline.expires_never(); }
    void close() {
        core_->deadline.cancel();
        error_code ignored;
        core_->socket.close(ignored);
    }

    template <class MutableBuffers, class Handler>
    void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
        core_->socket.async_read_some(buffers, Completion<std::decay_t<Handler>>{
                                                   core_.get(), std::forward<Handler>(handler)});
    }
    template <class ConstBuffers, class Handler>
    void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
        core_->socket.async_write_some(buffers, Completion<std::decay_t<Handler>>{
                                                    core_.get(), std::forward<Handler>(handler)});
    }

    // What the deadline's wait reaches: on the heap, so that it stays put when the stream moves.
    struct Core : TimedSocket {
        using TimedSocket::TimedSocket;
    };

    // An operation's handler, whose error becomes beast::error::timeout once the deadline has
    // closed the socket. Keeps the handler's executor, allocator and continuation hint (Beast's
    // composed operations and the session's continuation() depend on them). The handler's
    // owner (the session) keeps the stream, and so the core, alive until it has run.
    template <class Handler>
    struct Completion {
        Core* core;
        Handler handler;
        void operator()(error_code ec, std::size_t n) {
            if (ec && core->timed_out) ec = boost::beast::error::timeout;
            handler(ec, n);
        }
        friend bool asio_handler_is_continuation(Completion* self) {
            return boost_asio_handler_cont_helpers::is_continuation(self->handler);
        }
    };

private:
    std::shared_ptr<Core> core_;
};

} // namespace wec::server::detail

template <class Handler, class Executor>
struct boost::asio::associated_executor<wec::server::detail::PlainSocketStream::Completion<Handler>,
                                        Executor> {
    using type = boost::asio::associated_executor_t<Handler, Executor>;
    static type get(const wec::server::detail::PlainSocketStream::Completion<Handler>& c,
                    const Executor& e = Executor()) noexcept {
        return boost::asio::get_associated_executor(c.handler, e);
    }
};

template <class Handler, class Allocator>
struct boost::asio::associated_allocator<
    wec::server::detail::PlainSocketStream::Completion<Handler>, Allocator> {
    using type = boost::asio::associated_allocator_t<Handler, Allocator>;
    static type get(const wec::server::detail::PlainSocketStream::Completion<Handler>& c,
                    const Allocator& a = Allocator()) noexcept {
        return boost::asio::get_associated_allocator(c.handler, a);
    }
};

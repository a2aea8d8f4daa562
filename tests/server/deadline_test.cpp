// LazyDeadline (issue 15): one wait per connection, re-armed only when it ends early or when the
// deadline comes closer than it.
#include "server/deadline.hpp"

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <gtest/gtest.h>
#include <memory>

namespace {

using namespace std::chrono_literals;
using wec::server::detail::LazyDeadline;
using Clock = LazyDeadline::clock;

struct Owner {
    explicit Owner(boost::asio::io_context& ioc) : deadline(ioc.get_executor()) {}
    LazyDeadline deadline;
    int expired = 0;
    Clock::time_point expired_at{};
    void expire() {
        ++expired;
        expired_at = Clock::now();
    }
};

TEST(LazyDeadline, MovingTheDeadlineOnLeavesTheWaitInFlight) {
    boost::asio::io_context ioc;
    auto owner = std::make_shared<Owner>(ioc);
    owner->deadline.expires_after(50ms, owner);
    ASSERT_TRUE(owner->deadline.waiting());
    auto armed = owner->deadline.armed();
    owner->deadline.expires_after(200ms, owner); // later: no new wait
    owner->deadline.expires_never();
    owner->deadline.expires_after(100ms, owner);
    EXPECT_EQ(owner->deadline.armed(), armed);
}

TEST(LazyDeadline, ExpiresAtTheStoredDeadlineNotAtTheFirstWait) {
    boost::asio::io_context ioc;
    auto owner = std::make_shared<Owner>(ioc);
    auto begin = Clock::now();
    owner->deadline.expires_after(30ms, owner);
    owner->deadline.expires_after(150ms, owner); // moved on before the wait ends
    ioc.run();
    EXPECT_EQ(owner->expired, 1);
    EXPECT_GE(owner->expired_at - begin, 150ms);
    EXPECT_FALSE(owner->deadline.waiting());
}

TEST(LazyDeadline, ADeadlineBroughtCloserReArmsAtOnce) {
    boost::asio::io_context ioc;
    auto owner = std::make_shared<Owner>(ioc);
    auto begin = Clock::now();
    owner->deadline.expires_after(60s, owner);
    owner->deadline.expires_after(50ms, owner);
    EXPECT_LE(owner->deadline.armed(), Clock::now() + 50ms);
    ioc.run(); // would take a minute if the 60 s wait were still the one in flight
    EXPECT_EQ(owner->expired, 1);
    EXPECT_GE(owner->expired_at - begin, 50ms);
    EXPECT_LT(owner->expired_at - begin, 10s);
}

TEST(LazyDeadline, NoDeadlineMeansNoExpiryAndCancelReleasesTheOwner) {
    boost::asio::io_context ioc;
    auto owner = std::make_shared<Owner>(ioc);
    owner->deadline.expires_after(20ms, owner);
    owner->deadline.expires_never();
    ioc.run(); // the wait ends, finds no deadline and is not renewed
    EXPECT_EQ(owner->expired, 0);
    EXPECT_FALSE(owner->deadline.waiting());
    EXPECT_EQ(owner.use_count(), 1);

    ioc.restart();
    owner->deadline.expires_after(60s, owner);
    EXPECT_EQ(owner.use_count(), 2); // the wait holds it
    owner->deadline.cancel();
    ioc.run(); // the aborted wait completes at once
    EXPECT_EQ(owner->expired, 0);
    EXPECT_EQ(owner.use_count(), 1);
}

} // namespace

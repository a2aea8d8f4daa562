// The kafka driver against librdkafka's mock cluster (real Kafka protocol brokers of this process
// on 127.0.0.1): what a real consumer reads back is compared with every event written (content,
// key, topic from the templates), concurrent writers, an outage of every broker (refused, counted,
// logged once, then recovery with nothing accepted lost), and the settings' checks.
#include "common/handle.hpp"
#include "output/output.hpp"
#include "support/captured_log.hpp"
#include "support/kafka_mock.hpp"

#include <algorithm>
#include <chrono>
#include <dirent.h>
#include <functional>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace wec::output;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;
using wec::testing::CapturedLog;

using wec::testing::Cluster;
using wec::testing::consume;
using wec::testing::Message;

BatchInfo batch(std::string_view machine = "win10.windomain.local") {
    BatchInfo b;
    b.ip = "192.168.58.100";
    b.client = "WIN10$@WINDOMAIN.LOCAL";
    b.machine = machine;
    b.subscription_name = "Security events";
    b.subscription_uuid = "8B18D83D-2964-4F35-AC3B-6F4E6FFA727B";
    return b;
}

// `count` distinct events "<tag> <i> {...}", one per line.
std::vector<std::string> events(const std::string& tag, int count) {
    std::vector<std::string> out;
    for (int i = 0; i < count; ++i)
        out.push_back("{\"tag\":\"" + tag + "\",\"n\":" + std::to_string(i) + ",\"pad\":\"" +
                      std::string(100, 'x') + "\"}");
    return out;
}

std::string lines(const std::vector<std::string>& events) {
    std::string out;
    for (const auto& e : events)
        out += e + "\n";
    return out;
}

std::size_t threads_of_process() {
    std::size_t n = 0;
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/proc/self/task"), &::closedir);
    while (const dirent* e = ::readdir(dir.get()))
        if (e->d_name[0] != '.') ++n;
    return n;
}

TEST(KafkaOutput, EveryEventIsConsumedWithItsKeyAndTopic) {
    Cluster cluster;
    CapturedLog log;
    auto driver = make_driver("kafka",
                              {{"brokers", cluster.brokers()},
                               {"topic", "wec.{subscription}-{machine}"},
                               {"timeout_ms", std::int64_t{10000}}},
                              log.get());
    // Two batches of one machine, one of another whose name has characters topics cannot have.
    auto first = events("a", 40), second = events("b", 40), third = events("c", 10);
    driver->write(batch(), lines(first));
    driver->write(batch(), lines(second));
    driver->write(batch("srv 01/eu"), lines(third));

    // One key per machine: one partition, in order.
    auto got = consume(cluster.brokers(), "wec.Security_events-win10.windomain.local", 80);
    std::vector<Message> want;
    for (const auto* list : {&first, &second})
        for (const auto& e : *list)
            want.push_back(
                {"wec.Security_events-win10.windomain.local", "win10.windomain.local", e});
    EXPECT_EQ(got, want);
    auto other = consume(cluster.brokers(), "wec.Security_events-srv_01_eu", 10);
    want.clear();
    for (const auto& e : third)
        want.push_back({"wec.Security_events-srv_01_eu", "srv 01/eu", e});
    EXPECT_EQ(other, want);

    EXPECT_EQ(driver->stats().refused, 0u);
    EXPECT_EQ(driver->stats().connects, 1u);
    EXPECT_EQ(log.count("output connected"), 1u);
    EXPECT_EQ(log.count("output unavailable"), 0u);
}

TEST(KafkaOutput, KeyTemplateOptionsAndReopen) {
    Cluster cluster;
    auto driver = make_driver("kafka", {{"brokers", cluster.brokers()},
                                        {"topic", "{subscription_uuid}"},
                                        {"key", "{client}|{ip}|{node}"},
                                        {"options.compression.type", "lz4"},
                                        {"options.linger.ms", std::int64_t{1}},
                                        {"options.enable.idempotence", true}});
    auto before = events("before", 20), after = events("after", 20);
    BatchInfo info = batch();
    info.node = "wec-1";
    driver->write(info, lines(before));
    // SIGHUP: the next batch goes through a new producer.
    driver->reopen();
    driver->write(info, lines(after));
    const std::string topic = "8B18D83D-2964-4F35-AC3B-6F4E6FFA727B";
    auto got = consume(cluster.brokers(), topic, 40);
    std::vector<Message> want;
    for (const auto* list : {&before, &after})
        for (const auto& e : *list)
            want.push_back({topic, "WIN10$@WINDOMAIN.LOCAL|192.168.58.100|wec-1", e});
    EXPECT_EQ(got, want);
}

TEST(KafkaOutput, ConcurrentWritersLoseNothingAndKeepEachKeysOrder) {
    Cluster cluster;
    auto driver =
        make_driver("kafka", {{"brokers", cluster.brokers()}, {"topic", "wec-{subscription}"}});
    constexpr int kThreads = 4, kBatches = 15, kLines = 20;
    std::vector<std::thread> writers;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; ++t)
        writers.emplace_back([&, t] {
            const std::string machine = "host" + std::to_string(t);
            for (int b = 0; b < kBatches; ++b) {
                try {
                    driver->write(batch(machine),
                                  lines(events(machine + "-" + std::to_string(b), kLines)));
                } catch (const OutputError&) {
                    ++failures;
                }
            }
        });
    for (auto& w : writers)
        w.join();
    ASSERT_EQ(failures.load(), 0);

    auto got = consume(cluster.brokers(), "wec-Security_events", kThreads * kBatches * kLines);
    std::map<std::string, std::vector<std::string>> by_key;
    for (const auto& m : got)
        by_key[m.key].push_back(m.value);
    ASSERT_EQ(by_key.size(), std::size_t{kThreads});
    for (int t = 0; t < kThreads; ++t) {
        const std::string machine = "host" + std::to_string(t);
        std::vector<std::string> want;
        for (int b = 0; b < kBatches; ++b)
            for (auto& e : events(machine + "-" + std::to_string(b), kLines))
                want.push_back(e);
        EXPECT_EQ(by_key[machine], want) << machine;
    }
}

TEST(KafkaOutput, BrokersDownRefuseThenRecoverWithoutLoss) {
    Cluster cluster;
    CapturedLog log;
    auto driver = make_driver("kafka",
                              {{"brokers", cluster.brokers()},
                               {"topic", "outage"},
                               {"timeout_ms", std::int64_t{1500}},
                               {"options.reconnect.backoff.max.ms", std::int64_t{200}}},
                              log.get());
    std::vector<std::string> accepted;
    int n = 0;
    auto attempt = [&] {
        auto e = events("batch" + std::to_string(n++), 10);
        driver->write(batch(), lines(e));
        accepted.insert(accepted.end(), e.begin(), e.end());
    };
    attempt();

    cluster.down();
    EXPECT_THROW(attempt(), OutputError);
    EXPECT_GE(driver->stats().refused, 1u);
    // While down: every batch refused, at once during the backoff (250 ms after a first
    // failure), after the timeout once the backoff has passed.
    for (int i = 0; i < 3; ++i)
        EXPECT_THROW(attempt(), OutputError);
    std::this_thread::sleep_for(milliseconds(300));
    EXPECT_THROW(attempt(), OutputError);
    EXPECT_GE(driver->stats().refused, 5u);
    EXPECT_EQ(log.count("output unavailable"), 1u);

    cluster.up();
    bool recovered = false;
    for (auto end = Clock::now() + seconds(30); !recovered && Clock::now() < end;) {
        try {
            attempt();
            recovered = true;
        } catch (const OutputError&) {
            std::this_thread::sleep_for(milliseconds(100));
        }
    }
    ASSERT_TRUE(recovered);
    attempt();
    EXPECT_EQ(log.count("output recovered"), 1u);
    EXPECT_EQ(log.count("output unavailable"), 1u);

    // Every event of an accepted batch is there (refused batches may have been delivered too).
    const std::set<std::string> want(accepted.begin(), accepted.end());
    std::set<std::string> seen;
    consume(cluster.brokers(), "outage", [&](const std::vector<Message>& got) {
        if (!got.empty()) seen.insert(got.back().value);
        return std::includes(seen.begin(), seen.end(), want.begin(), want.end());
    });
    std::vector<std::string> missing;
    std::set_difference(want.begin(), want.end(), seen.begin(), seen.end(),
                        std::back_inserter(missing));
    EXPECT_TRUE(missing.empty()) << missing.size() << " accepted events lost, e.g. "
                                 << missing.front();
}

TEST(KafkaOutput, AFailedDeliveryReportRefusesTheBatch) {
    Cluster cluster;
    CapturedLog log;
    auto driver =
        make_driver("kafka", {{"brokers", cluster.brokers()}, {"topic", "refused"}}, log.get());
    auto first = events("first", 5), second = events("second", 5), third = events("third", 5);
    driver->write(batch(), lines(first));
    // A permanent error (not retried by librdkafka): the report fails, the batch is refused.
    cluster.fail_produce(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, 1);
    try {
        driver->write(batch(), lines(second));
        ADD_FAILURE() << "the batch was accepted";
    } catch (const OutputError& e) {
        EXPECT_NE(std::string(e.what()).find("delivery failed"), std::string::npos) << e.what();
    }
    EXPECT_EQ(driver->stats().refused, 1u);
    // The source sends the batch again, after the backoff.
    bool accepted = false;
    for (auto end = Clock::now() + seconds(20); !accepted && Clock::now() < end;) {
        try {
            driver->write(batch(), lines(second));
            accepted = true;
        } catch (const OutputError&) {
            std::this_thread::sleep_for(milliseconds(100));
        }
    }
    ASSERT_TRUE(accepted);
    driver->write(batch(), lines(third));
    std::set<std::string> seen;
    for (const auto& m : consume(cluster.brokers(), "refused", 15))
        seen.insert(m.value);
    for (const auto* list : {&first, &second, &third})
        for (const auto& e : *list)
            EXPECT_EQ(seen.count(e), 1u) << e;
    EXPECT_EQ(log.count("output unavailable"), 1u);
    EXPECT_EQ(log.count("output recovered"), 1u);
}

TEST(KafkaOutput, AFatalProducerErrorIsOvercomeByANewProducer) {
    Cluster cluster;
    CapturedLog log;
    auto driver =
        make_driver("kafka", {{"brokers", cluster.brokers()}, {"topic", "fatal"}}, log.get());
    auto first = events("first", 5), second = events("second", 5);
    driver->write(batch(), lines(first));
    // A sequence desynchronisation is fatal to an idempotent producer: it takes no more messages.
    cluster.fail_produce(RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, 1);
    EXPECT_THROW(driver->write(batch(), lines(events("lost", 5))), OutputError);
    bool accepted = false;
    for (auto end = Clock::now() + seconds(20); !accepted && Clock::now() < end;) {
        try {
            driver->write(batch(), lines(second));
            accepted = true;
        } catch (const OutputError&) {
            std::this_thread::sleep_for(milliseconds(100));
        }
    }
    ASSERT_TRUE(accepted);
    EXPECT_EQ(log.count("kafka producer failed"), 1u);
    std::set<std::string> seen;
    consume(cluster.brokers(), "fatal", [&](const std::vector<Message>& got) {
        if (!got.empty()) seen.insert(got.back().value);
        return seen.count(first.front()) && seen.count(second.back());
    });
    for (const auto* list : {&first, &second})
        for (const auto& e : *list)
            EXPECT_EQ(seen.count(e), 1u) << e;
    EXPECT_EQ(log.count("output recovered"), 1u);
}

TEST(KafkaOutput, DestroyedWhileBrokersAreDownDoesNotHang) {
    Cluster cluster;
    auto driver = make_driver(
        "kafka",
        {{"brokers", cluster.brokers()}, {"topic", "t"}, {"timeout_ms", std::int64_t{500}}});
    cluster.down();
    EXPECT_THROW(driver->write(batch(), lines(events("x", 5))), OutputError);
    driver.reset(); // flushes for at most min(timeout_ms, 2 s), then purges
    SUCCEED();
}

TEST(KafkaOutput, MakingTheDriverCreatesNothing) {
    const std::size_t before = threads_of_process();
    auto driver = make_driver("kafka", {{"brokers", "127.0.0.1:9"}, {"topic", "t"}});
    EXPECT_NO_THROW(check_settings("kafka", {{"brokers", "127.0.0.1:9"}, {"topic", "t"}}));
    EXPECT_EQ(threads_of_process(), before); // no rd_kafka_t (it starts threads at once)
    EXPECT_EQ(driver->describe(), "kafka:127.0.0.1:9/t");
    EXPECT_GT(driver->concurrency(), 1u); // batches are awaited in parallel
}

// The SettingError of check_settings("kafka", s); fails the test when there is none.
SettingError setting_error(const Settings& s) {
    try {
        check_settings("kafka", s);
    } catch (const SettingError& e) {
        return e;
    }
    ADD_FAILURE() << "no error";
    return SettingError("", "");
}

TEST(KafkaOutput, SettingsAreChecked) {
    const Settings base{{"brokers", "127.0.0.1:9092,[::1]:9093"}, {"topic", "wec-{machine}"}};
    EXPECT_NO_THROW(check_settings("kafka", base));
    auto with = [&](const std::string& key, SettingValue value) {
        Settings s = base;
        s[key] = std::move(value);
        return s;
    };
    auto without = [&](const std::string& key) {
        Settings s = base;
        s.erase(key);
        return s;
    };

    auto e = setting_error(without("brokers"));
    EXPECT_EQ(e.key(), "");
    EXPECT_STREQ(e.what(), "driver 'kafka' needs a 'brokers' key");
    EXPECT_STREQ(setting_error(without("topic")).what(), "driver 'kafka' needs a 'topic' key");
    EXPECT_EQ(setting_error(with("brokers", "localhost")).key(), "brokers");
    EXPECT_EQ(setting_error(with("brokers", "a:1,,b:2")).key(), "brokers");

    e = setting_error(with("topic", "wec-{date}"));
    EXPECT_EQ(e.key(), "topic");
    EXPECT_NE(std::string(e.what()).find("unknown {date}"), std::string::npos) << e.what();
    e = setting_error(with("topic", "wec/{machine}"));
    EXPECT_EQ(e.key(), "topic");
    EXPECT_NE(std::string(e.what()).find("not valid in a Kafka topic name"), std::string::npos);
    EXPECT_EQ(setting_error(with("topic", std::string(250, 'x'))).key(), "topic");
    EXPECT_EQ(setting_error(with("key", "{nope}")).key(), "key");
    EXPECT_NO_THROW(check_settings("kafka", with("key", "any text / {ip}")));
    EXPECT_NO_THROW(check_settings("kafka", with("topic", "wec-{node}")));
    EXPECT_NE(std::string(setting_error(with("key", "{nope}")).what()).find("{node}"),
              std::string::npos);
    EXPECT_EQ(setting_error(with("timeout_ms", std::int64_t{0})).key(), "timeout_ms");
    EXPECT_EQ(setting_error(with("port", std::int64_t{1})).key(), "port");

    // The delivery promise cannot be weakened.
    e = setting_error(with("options.acks", std::int64_t{1}));
    EXPECT_EQ(e.key(), "options.acks");
    EXPECT_NE(std::string(e.what()).find("needs acks=all"), std::string::npos) << e.what();
    EXPECT_EQ(setting_error(with("options.request.required.acks", "0")).key(),
              "options.request.required.acks");
    e = setting_error(with("options.enable.idempotence", false));
    EXPECT_EQ(e.key(), "options.enable.idempotence");
    EXPECT_NE(std::string(e.what()).find("enable.idempotence=true"), std::string::npos);
    EXPECT_NO_THROW(check_settings("kafka", with("options.acks", "all")));
    EXPECT_NO_THROW(check_settings("kafka", with("options.acks", std::int64_t{-1})));
    EXPECT_EQ(setting_error(with("options.bootstrap.servers", "x:1")).key(),
              "options.bootstrap.servers");
    EXPECT_EQ(setting_error(with("options.transactional.id", "x")).key(),
              "options.transactional.id");
    EXPECT_EQ(setting_error(with("options.delivery.report.only.error", true)).key(),
              "options.delivery.report.only.error");

    // Every option is checked by librdkafka, whose message is quoted.
    e = setting_error(with("options.no.such.property", "1"));
    EXPECT_EQ(e.key(), "options.no.such.property");
    EXPECT_NE(std::string(e.what()).find("No such configuration property"), std::string::npos)
        << e.what();
    e = setting_error(with("options.linger.ms", "soon"));
    EXPECT_EQ(e.key(), "options.linger.ms");
    EXPECT_NE(std::string(e.what()).find("Invalid value"), std::string::npos) << e.what();
    EXPECT_NO_THROW(check_settings("kafka", with("options.security.protocol", "plaintext")));

    // Other drivers take no options table.
    try {
        check_settings("tcp", {{"address", "127.0.0.1:1"}, {"options.linger.ms", "1"}});
        ADD_FAILURE() << "no error";
    } catch (const SettingError& error) {
        EXPECT_EQ(error.key(), "options.linger.ms");
        EXPECT_NE(std::string(error.what()).find("for driver 'kafka' only"), std::string::npos)
            << error.what();
    }
}

} // namespace

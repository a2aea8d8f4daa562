// Kafka for tests: librdkafka's mock cluster (real Kafka protocol brokers, in this process, on
// 127.0.0.1 ephemeral ports) and a real librdkafka consumer that reads a topic back. Link
// PkgConfig::WEC_RDKAFKA.
#pragma once

#include "common/handle.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace wec::testing {

using KafkaConf = wec::Handle<rd_kafka_conf_t, rd_kafka_conf_destroy>;
using KafkaHandle = wec::Handle<rd_kafka_t, rd_kafka_destroy>;
using MockCluster = wec::Handle<rd_kafka_mock_cluster_t, rd_kafka_mock_cluster_destroy>;
using KafkaMessage = wec::Handle<rd_kafka_message_t, rd_kafka_message_destroy>;
using Metadata = wec::Handle<const rd_kafka_metadata_t, rd_kafka_metadata_destroy>;
using PartitionList =
    wec::Handle<rd_kafka_topic_partition_list_t, rd_kafka_topic_partition_list_destroy>;

inline void quiet(const rd_kafka_t*, int, const char*, const char*) {}

inline KafkaConf conf(std::initializer_list<std::pair<const char*, std::string>> properties) {
    KafkaConf c(rd_kafka_conf_new());
    rd_kafka_conf_set_log_cb(c.get(), &quiet);
    char error[512];
    for (const auto& [name, value] : properties)
        if (rd_kafka_conf_set(c.get(), name, value.c_str(), error, sizeof error) !=
            RD_KAFKA_CONF_OK)
            throw std::runtime_error(error);
    return c;
}

inline KafkaHandle make_handle(rd_kafka_type_t type, KafkaConf c) {
    char error[512];
    KafkaHandle rk(rd_kafka_new(type, c.get(), error, sizeof error));
    if (!rk) throw std::runtime_error(error);
    (void)c.release();
    return rk;
}

// Three mock brokers on 127.0.0.1 (ephemeral ports), owned by a handle of their own.
class Cluster {
public:
    Cluster() : rk_(make_handle(RD_KAFKA_PRODUCER, conf({}))) {
        mock_.reset(rd_kafka_mock_cluster_new(rk_.get(), 3));
        if (!mock_) throw std::runtime_error("rd_kafka_mock_cluster_new failed");
    }
    ~Cluster() { mock_.reset(); }
    rd_kafka_mock_cluster_t* mock() const { return mock_.get(); }
    std::string brokers() const { return rd_kafka_mock_cluster_bootstraps(mock_.get()); }
    void down() { rd_kafka_mock_broker_set_down(mock_.get(), -1); }
    void up() { rd_kafka_mock_broker_set_up(mock_.get(), -1); }
    // The next `count` Produce requests are answered with `error`.
    void fail_produce(rd_kafka_resp_err_t error, std::size_t count) {
        constexpr std::int16_t kProduce = 0; // the Produce request's ApiKey
        std::vector<rd_kafka_resp_err_t> errors(count, error);
        rd_kafka_mock_push_request_errors_array(mock_.get(), kProduce, errors.size(),
                                                errors.data());
    }

private:
    KafkaHandle rk_;
    MockCluster mock_;
};

struct Message {
    std::string topic;
    std::string key;
    std::string value;
    bool operator<(const Message& o) const {
        return std::tie(topic, key, value) < std::tie(o.topic, o.key, o.value);
    }
    bool operator==(const Message& o) const = default;
};

// Reads `topic` from the beginning of every partition with a real consumer until `done` says so
// or `limit` passed. Messages of one partition come in order.
inline std::vector<Message> consume(const std::string& brokers, const std::string& topic,
                                    const std::function<bool(const std::vector<Message>&)>& done,
                                    std::chrono::seconds limit = std::chrono::seconds(20)) {
    auto rk = make_handle(RD_KAFKA_CONSUMER, conf({{"bootstrap.servers", brokers},
                                                   {"group.id", "wec-test"},
                                                   {"enable.auto.commit", "false"}}));
    // The partitions of the topic.
    using Topic = wec::Handle<rd_kafka_topic_t, rd_kafka_topic_destroy>;
    Topic t(rd_kafka_topic_new(rk.get(), topic.c_str(), nullptr));
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk.get(), 0, t.get(), &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        throw std::runtime_error("no metadata for " + topic);
    Metadata owned(md);
    PartitionList parts(rd_kafka_topic_partition_list_new(8));
    for (int i = 0; i < md->topics[0].partition_cnt; ++i)
        rd_kafka_topic_partition_list_add(parts.get(), topic.c_str(),
                                          md->topics[0].partitions[i].id)
            ->offset = RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk.get(), parts.get()) != RD_KAFKA_RESP_ERR_NO_ERROR)
        throw std::runtime_error("assign failed");
    std::vector<Message> out;
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done(out) && std::chrono::steady_clock::now() < end) {
        KafkaMessage m(rd_kafka_consumer_poll(rk.get(), 200));
        if (!m || m->err) continue;
        Message msg;
        msg.topic = rd_kafka_topic_name(m->rkt);
        if (m->key) msg.key.assign(static_cast<const char*>(m->key), m->key_len);
        msg.value.assign(static_cast<const char*>(m->payload), m->len);
        out.push_back(std::move(msg));
    }
    rd_kafka_consumer_close(rk.get());
    return out;
}

// ... until `want` messages arrived.
inline std::vector<Message> consume(const std::string& brokers, const std::string& topic,
                                    std::size_t want) {
    return consume(brokers, topic, [want](const auto& got) { return got.size() >= want; });
}

} // namespace wec::testing

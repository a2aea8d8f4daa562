// `driver = "kafka"`: one Kafka message per event, through librdkafka's idempotent producer.
//
// Keys: `brokers = "HOST:PORT,HOST:PORT"` (required; the bootstrap servers), `topic` (required; a
// template), `key` (a template, default "{machine}"), `timeout_ms` (default 10000: how long a
// batch may wait for its delivery reports), and `options.<name>` (the subscription's
// [outputs.options] table): librdkafka properties passed as they are (`security.protocol`,
// `sasl.*`, `ssl.*`, `compression.type`, `linger.ms`...).
//
// Templates know {subscription}, {subscription_uuid}, {client}, {machine}, {ip} and {node} (the
// writing node's name, BatchInfo::node); any other {key} is refused when the settings are
// checked. In the topic, the values are made valid topic characters (every character outside
// [A-Za-z0-9._-] becomes '_', an empty value "unknown"), the literal text must be made of them
// already, and the name is cut to 249 characters. The key is the expanded text as it is (an empty
// key: no key, librdkafka picks the partition).
//
// Delivery promise: the producer has `enable.idempotence=true` and `acks=all` (options that would
// weaken this, `acks` other than all/-1, `enable.idempotence=false` and
// `delivery.report.only.error=true`, are refused, as are `bootstrap.servers` (use `brokers`),
// `transactional.id` and `plugin.library.paths`). Each line of a batch (without its '\n') is one
// message; write() returns only when the delivery report of every message of the batch said it
// was written (acknowledged by all in-sync replicas). A failed report, a message that cannot be
// queued, or `timeout_ms` passing first refuses the batch (output::OutputError: 503, the source
// sends the whole batch again, so consumers may see duplicates). `message.timeout.ms` defaults to
// `timeout_ms`, so that librdkafka gives up the messages of a refused batch about when write()
// gives up on them; `linger.ms` defaults to 1 (librdkafka's default, 5, costs each waiting writer
// that much per batch). An event larger than `message.max.bytes` (librdkafka's default 1000000)
// refuses its batch every time: raise that option.
//
// Concurrency: write() runs on several threads at once (concurrency() = 16 writer threads of the
// collector's queue for this output); all share one producer. Each batch gets
// an id, passed to librdkafka as every message's opaque; a poll thread of the producer serves the
// delivery reports, counts them against the batch's outstanding messages and wakes its writer
// (condition variable; no busy wait). Reports of a batch whose writer already gave up are dropped.
//
// Lifetime: make_driver creates nothing: the options are checked on a throwaway rd_kafka_conf_t,
// and the producer (rd_kafka_t and its poll thread) is created by the first write(). After a
// fatal producer error (idempotence state lost), the next write() creates a new producer.
// reopen() (SIGHUP) also recreates the producer, to reconnect and re-read the `ssl.*` files: the
// next write() starts a new one, the batches in flight finish on the old one, which is flushed
// and destroyed when the last of them is done. Destroying a producer flushes what is left (only
// messages of refused batches can be left) for at most min(timeout_ms, 2 s), then purges.
//
// Failures: after a refused batch, further batches are refused at once until the backoff (250 ms
// doubling to 5 s, see net::LinkState) has passed; "output unavailable" is logged once when the
// output starts failing and "output recovered" once when a batch is delivered again. stats():
// `refused` batches, `connects` = first delivery plus each recovery. librdkafka's own log lines go
// to the log at debug level (configuration warnings at warn level).
#include "common/dynlib.hpp"
#include "common/handle.hpp"
#include "output/drivers_internal.hpp"
#include "output/net_internal.hpp"
#include "output/settings_internal.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <librdkafka/rdkafka.h>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace wec::output {
namespace net = detail::net;
namespace {

using Clock = std::chrono::steady_clock;
// librdkafka (and what it pulls in: SASL, zstd, lz4...) is opened by the first kafka driver, not by
// every `wec` command at start-up (common/dynlib.hpp). The functions this file calls:
// clang-format off
#define WEC_RDKAFKA_FUNCTIONS(X) \
    X(rd_kafka_conf_destroy) \
    X(rd_kafka_conf_get) \
    X(rd_kafka_conf_new) \
    X(rd_kafka_conf_set) \
    X(rd_kafka_conf_set_dr_msg_cb) \
    X(rd_kafka_conf_set_error_cb) \
    X(rd_kafka_conf_set_log_cb) \
    X(rd_kafka_conf_set_opaque) \
    X(rd_kafka_destroy) \
    X(rd_kafka_err2str) \
    X(rd_kafka_error_code) \
    X(rd_kafka_error_destroy) \
    X(rd_kafka_fatal_error) \
    X(rd_kafka_flush) \
    X(rd_kafka_new) \
    X(rd_kafka_opaque) \
    X(rd_kafka_poll) \
    X(rd_kafka_produceva) \
    X(rd_kafka_purge) \
    X(rd_kafka_queue_destroy) \
    X(rd_kafka_queue_get_main) \
    X(rd_kafka_queue_yield)
// clang-format on

struct Librdkafka {
    SharedLibrary library{"librdkafka.so.1", "librdkafka1"};
    WEC_RDKAFKA_FUNCTIONS(WEC_DYNLIB_FUNCTION)
};
#undef WEC_RDKAFKA_FUNCTIONS

// Throws OutputError when librdkafka cannot be opened (tried again by the next call).
const Librdkafka& rdkafka() {
    try {
        static const Librdkafka loaded;
        return loaded;
    } catch (const LibraryError& e) {
        throw OutputError(std::string("driver 'kafka': ") + e.what());
    }
}

// Handles exist only once the library is loaded.
void destroy_conf(rd_kafka_conf_t* conf) noexcept {
    rdkafka().rd_kafka_conf_destroy(conf);
}
void destroy_handle(rd_kafka_t* rk) noexcept {
    rdkafka().rd_kafka_destroy(rk);
}
void destroy_queue(rd_kafka_queue_t* queue) noexcept {
    rdkafka().rd_kafka_queue_destroy(queue);
}

using KafkaConf = Handle<rd_kafka_conf_t, destroy_conf>;
using KafkaHandle = Handle<rd_kafka_t, destroy_handle>;
using KafkaQueue = Handle<rd_kafka_queue_t, destroy_queue>;

constexpr std::size_t kMaxTopic = 249; // Kafka's limit on a topic name
constexpr std::chrono::milliseconds kCloseFlushMax{2000};
constexpr int kPollMs = 250; // the poll thread's wait (it is woken at once when stopped)
constexpr std::string_view kOptionPrefix = "options.";
// Default of linger.ms (librdkafka's is 5): every write() waits for its batch's reports, so time
// spent lingering is a writer's throughput lost (see bench/output/kafka_bench).
constexpr int kDefaultLingerMs = 1;
// Batches the collector lets write() work on at once: one writer's rate is bounded by the round
// trip to the brokers, concurrent batches hide it (about 8x from 1 to 16 writers in the bench).
constexpr std::size_t kWriters = 16;

bool topic_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

// A `topic` or `key` template, parsed once.
class Template {
public:
    enum class Field { Literal, Ip, Client, Machine, Subscription, SubscriptionUuid, Node };

    // Throws SettingError naming `key` for an unknown {key} or, in a topic, a character that is
    // not valid in a topic name.
    static Template parse(detail::SettingsReader& r, std::string_view key, const std::string& text,
                          bool topic) {
        Template t;
        t.topic_ = topic;
        std::string literal;
        for (std::size_t i = 0; i < text.size();) {
            if (text[i] == '{') {
                auto close = text.find('}', i);
                if (close != std::string::npos) {
                    std::string_view name(text.data() + i + 1, close - i - 1);
                    Field field = Field::Literal;
                    if (name == "ip")
                        field = Field::Ip;
                    else if (name == "client")
                        field = Field::Client;
                    else if (name == "machine")
                        field = Field::Machine;
                    else if (name == "subscription")
                        field = Field::Subscription;
                    else if (name == "subscription_uuid")
                        field = Field::SubscriptionUuid;
                    else if (name == "node")
                        field = Field::Node;
                    else
                        r.fail(key, "has an unknown {" + std::string(name) +
                                        "} (known: {subscription}, {subscription_uuid}, "
                                        "{client}, {machine}, {ip}, {node})");
                    if (!literal.empty()) t.parts_.push_back({Field::Literal, std::move(literal)});
                    literal.clear();
                    t.parts_.push_back({field, {}});
                    i = close + 1;
                    continue;
                }
            }
            if (topic && !topic_char(text[i]))
                r.fail(key, "has '" + std::string(1, text[i]) +
                                "', not valid in a Kafka topic name (A-Z a-z 0-9 . _ - and "
                                "{keys})");
            literal.push_back(text[i++]);
        }
        if (!literal.empty()) t.parts_.push_back({Field::Literal, std::move(literal)});
        if (topic) {
            std::size_t fixed = 0;
            for (const auto& p : t.parts_)
                fixed += p.text.size();
            if (fixed > kMaxTopic)
                r.fail(key, "is longer than " + std::to_string(kMaxTopic) + " characters");
        }
        return t;
    }

    std::string expand(const BatchInfo& b) const {
        std::string out;
        for (const auto& p : parts_) {
            if (p.field == Field::Literal) {
                out += p.text;
                continue;
            }
            std::string_view value = value_of(p.field, b);
            if (!topic_) {
                out += value;
                continue;
            }
            if (value.empty()) value = "unknown";
            for (char c : value)
                out.push_back(topic_char(c) ? c : '_');
        }
        if (topic_) {
            if (out.size() > kMaxTopic) out.resize(kMaxTopic);
            if (out == "." || out == "..") out.assign(out.size(), '_'); // names Kafka refuses
        }
        return out;
    }

private:
    struct Part {
        Field field;
        std::string text; // Literal
    };

    static std::string_view value_of(Field f, const BatchInfo& b) {
        switch (f) {
        case Field::Ip:
            return b.ip;
        case Field::Client:
            return b.client;
        case Field::Machine:
            return b.machine;
        case Field::Subscription:
            return b.subscription_name;
        case Field::SubscriptionUuid:
            return b.subscription_uuid;
        case Field::Node:
            return b.node;
        case Field::Literal:
            break;
        }
        return {};
    }

    std::vector<Part> parts_;
    bool topic_ = false;
};

struct KafkaSettings {
    std::string brokers;
    std::string topic_text;
    Template topic;
    Template key;
    std::chrono::milliseconds timeout{net::kDefaultTimeoutMs};
    std::vector<std::pair<std::string, std::string>> options; // librdkafka name, value
};

std::string conf_value(const rd_kafka_conf_t* conf, const char* name) {
    char buf[64];
    std::size_t size = sizeof buf;
    if (rdkafka().rd_kafka_conf_get(conf, name, buf, &size) != RD_KAFKA_CONF_OK) return {};
    return buf;
}

// Sets one of the driver's own properties; `key` names the setting it comes from.
void conf_set(rd_kafka_conf_t* conf, const char* name, const std::string& value,
              std::string_view key) {
    char error[512];
    if (rdkafka().rd_kafka_conf_set(conf, name, value.c_str(), error, sizeof error) !=
        RD_KAFKA_CONF_OK)
        throw SettingError(std::string(key), "'" + std::string(key) +
                                                 "' of driver 'kafka' is refused by librdkafka (" +
                                                 name + "): " + error);
}

// The producer's configuration: brokers, the delivery promise's settings, then the options, each
// checked by librdkafka. Throws SettingError naming the option at fault.
KafkaConf make_conf(const KafkaSettings& s) {
    KafkaConf conf(rdkafka().rd_kafka_conf_new());
    conf_set(conf.get(), "bootstrap.servers", s.brokers, "brokers");
    conf_set(conf.get(), "client.id", "wec", "brokers");
    conf_set(conf.get(), "enable.idempotence", "true", "brokers");
    conf_set(conf.get(), "acks", "all", "brokers");
    conf_set(conf.get(), "message.timeout.ms", std::to_string(s.timeout.count()), "timeout_ms");
    conf_set(conf.get(), "linger.ms", std::to_string(kDefaultLingerMs), "brokers");
    for (const auto& option : s.options) {
        // Not a structured binding: clang 14 cannot capture one in the lambda below.
        const std::string& name = option.first;
        const std::string& value = option.second;
        const std::string key = std::string(kOptionPrefix) + name;
        // Errors quote the value, unless it may be a secret (sasl.password, ssl.key.password...).
        const bool secret =
            name.find("password") != std::string::npos || name.find("secret") != std::string::npos;
        const std::string shown = secret ? "(not shown)" : value;
        auto refuse = [&](const std::string& why) {
            throw SettingError(key, "option '" + name + "' of driver 'kafka' " + why);
        };
        if (name == "bootstrap.servers" || name == "metadata.broker.list")
            refuse("is refused: give the brokers in 'brokers'");
        if (name == "transactional.id")
            refuse("is refused: the driver awaits each batch's delivery, not transactions");
        if (name == "plugin.library.paths") refuse("is refused: the collector loads no plugins");
        char error[512];
        if (rdkafka().rd_kafka_conf_set(conf.get(), name.c_str(), value.c_str(), error,
                                        sizeof error) != RD_KAFKA_CONF_OK)
            refuse("= '" + shown + "' is refused by librdkafka: " + error);
        if (conf_value(conf.get(), "acks") != "-1")
            refuse("= '" + shown +
                   "' is refused: the driver needs acks=all (-1), so that a delivered batch is "
                   "on every in-sync replica");
        if (conf_value(conf.get(), "enable.idempotence") != "true")
            refuse("= '" + shown +
                   "' is refused: the driver needs enable.idempotence=true (no duplicates or "
                   "reordering from the producer's own retries)");
        if (conf_value(conf.get(), "delivery.report.only.error") != "false")
            refuse("= '" + shown +
                   "' is refused: the driver awaits the delivery report of every message");
    }
    return conf;
}

// One batch waiting for its delivery reports (on its writer's stack; registered with the
// producer while the writer waits).
struct Pending {
    std::size_t outstanding = 0;
    std::size_t failed = 0;
    std::string error; // the first failure
    std::condition_variable done;
};

// One librdkafka producer and the thread that serves its callbacks.
class Producer {
public:
    Producer(const KafkaSettings& settings, Logger* log, std::string name)
        : log_(log), name_(std::move(name)),
          close_flush_(std::min(settings.timeout, kCloseFlushMax)) {
        KafkaConf conf = make_conf(settings);
        rdkafka().rd_kafka_conf_set_opaque(conf.get(), this);
        rdkafka().rd_kafka_conf_set_dr_msg_cb(conf.get(), &Producer::on_delivery);
        rdkafka().rd_kafka_conf_set_error_cb(conf.get(), &Producer::on_error);
        rdkafka().rd_kafka_conf_set_log_cb(conf.get(), &Producer::on_log);
        char error[512];
        // rd_kafka_new takes the configuration only when it succeeds.
        rk_.reset(rdkafka().rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), error, sizeof error));
        if (!rk_) throw OutputError(std::string("cannot create the Kafka producer: ") + error);
        (void)conf.release();
        queue_.reset(rdkafka().rd_kafka_queue_get_main(rk_.get()));
        poller_ = std::thread([this] {
            while (!stop_.load())
                rdkafka().rd_kafka_poll(rk_.get(), kPollMs);
        });
    }

    ~Producer() {
        stop_ = true;
        rdkafka().rd_kafka_queue_yield(queue_.get());
        poller_.join();
        // No writer is waiting any more: what is left belongs to refused batches.
        rdkafka().rd_kafka_flush(rk_.get(), static_cast<int>(close_flush_.count()));
        rdkafka().rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                                                RD_KAFKA_PURGE_F_NON_BLOCKING);
        rdkafka().rd_kafka_poll(rk_.get(), 0);
        queue_.reset();
        rk_.reset();
    }

    Producer(const Producer&) = delete;
    Producer& operator=(const Producer&) = delete;

    bool fatal() const { return fatal_.load(); }

    // Produces one message per line of `lines` and waits for every delivery report, or throws
    // OutputError saying what failed.
    void send(const std::string& topic, const std::string& key, std::string_view lines,
              Clock::time_point deadline) {
        Pending pending;
        std::uint64_t id = 0;
        std::size_t count = 0;
        for (std::string_view rest = lines; !rest.empty(); ++count) {
            auto nl = rest.find('\n');
            rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
        }
        {
            std::lock_guard lock(mutex_);
            id = ++next_id_;
            pending.outstanding = count;
            batches_.emplace(id, &pending);
        }
        struct Unregister {
            Producer& p;
            std::uint64_t id;
            ~Unregister() {
                std::lock_guard lock(p.mutex_);
                p.batches_.erase(id);
            }
        } unregister{*this, id};

        std::size_t queued = 0;
        for (std::string_view rest = lines; !rest.empty(); ++queued) {
            auto nl = rest.find('\n');
            std::string_view line = rest.substr(0, nl);
            rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
            // rd_kafka_produceva, not the rd_kafka_producev macros (GNU statement expressions,
            // refused by clang with -Werror).
            rd_kafka_vu_t vu[5] = {};
            vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
            vu[0].u.cstr = topic.c_str();
            vu[1].vtype = RD_KAFKA_VTYPE_KEY;
            vu[1].u.mem.ptr = key.empty() ? nullptr : const_cast<char*>(key.data());
            vu[1].u.mem.size = key.size();
            vu[2].vtype = RD_KAFKA_VTYPE_VALUE;
            vu[2].u.mem.ptr = const_cast<char*>(line.data());
            vu[2].u.mem.size = line.size();
            vu[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
            vu[3].u.i = RD_KAFKA_MSG_F_COPY;
            vu[4].vtype = RD_KAFKA_VTYPE_OPAQUE;
            vu[4].u.ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(id));
            rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
            if (rd_kafka_error_t* e = rdkafka().rd_kafka_produceva(rk_.get(), vu, 5)) {
                err = rdkafka().rd_kafka_error_code(e);
                rdkafka().rd_kafka_error_destroy(e);
            }
            if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
                throw OutputError("cannot queue message " + std::to_string(queued + 1) + " of " +
                                  std::to_string(count) + " for topic '" + topic +
                                  "': " + produce_error(err));
        }

        std::unique_lock lock(mutex_);
        pending.done.wait_until(lock, deadline, [&] {
            return pending.outstanding == 0 || pending.failed > 0 || fatal_.load();
        });
        if (pending.failed > 0)
            throw OutputError("delivery failed for " + std::to_string(pending.failed) + " of " +
                              std::to_string(count) + " messages to topic '" + topic +
                              "': " + pending.error);
        if (pending.outstanding > 0) {
            std::string what = fatal_ ? "the producer failed (" + last_error_ + ") with "
                                      : "delivery not confirmed in time for ";
            what += std::to_string(pending.outstanding) + " of " + std::to_string(count) +
                    " messages to topic '" + topic + "'";
            if (!fatal_ && !last_error_.empty()) what += " (last error: " + last_error_ + ")";
            throw OutputError(what);
        }
    }

private:
    std::string produce_error(rd_kafka_resp_err_t err) {
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return "the producer's queue is full (queue.buffering.max.messages / "
                   "queue.buffering.max.kbytes)";
        if (err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
            return "an event is larger than message.max.bytes";
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
            std::lock_guard lock(mutex_);
            return "the producer failed: " + last_error_;
        }
        return rdkafka().rd_kafka_err2str(err);
    }

    static void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
        auto* self = static_cast<Producer*>(opaque);
        auto id = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(m->_private));
        std::lock_guard lock(self->mutex_);
        auto it = self->batches_.find(id);
        if (it == self->batches_.end()) return; // its writer gave up
        Pending& p = *it->second;
        if (p.outstanding > 0) --p.outstanding;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (p.failed++ == 0) p.error = rdkafka().rd_kafka_err2str(m->err);
            p.done.notify_one();
        } else if (p.outstanding == 0) {
            p.done.notify_one();
        }
    }

    static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
        auto* self = static_cast<Producer*>(opaque);
        std::string text =
            reason ? reason : rdkafka().rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(err));
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
            char fatal[512];
            rdkafka().rd_kafka_fatal_error(rk, fatal, sizeof fatal);
            text = fatal;
            if (self->log_)
                self->log_->error("kafka producer failed; a new one is made for the next batch",
                                  {{"output", self->name_}, {"error", text}});
        }
        std::lock_guard lock(self->mutex_);
        self->last_error_ = text;
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
            self->fatal_ = true;
            for (auto& [id, pending] : self->batches_)
                pending->done.notify_one();
        }
    }

    static void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
        auto* self = static_cast<Producer*>(rdkafka().rd_kafka_opaque(rk));
        if (!self || !self->log_) return;
        std::string_view fac = facility ? facility : "";
        bool config = fac == "CONFWARN";
        self->log_->log(config ? LogLevel::Warn : LogLevel::Debug, "librdkafka",
                        {{"output", self->name_},
                         {"level", std::to_string(level)},
                         {"facility", fac},
                         {"text", text ? text : ""}});
    }

    Logger* log_;
    std::string name_;
    std::chrono::milliseconds close_flush_;
    KafkaHandle rk_;
    KafkaQueue queue_;
    std::thread poller_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> fatal_{false};
    std::mutex mutex_; // batches_, next_id_, last_error_ and every Pending
    std::unordered_map<std::uint64_t, Pending*> batches_;
    std::uint64_t next_id_ = 0;
    std::string last_error_;
};

class KafkaDriver final : public Driver {
public:
    KafkaDriver(KafkaSettings settings, Logger* log)
        : settings_(std::move(settings)), log_(log),
          name_("kafka:" + settings_.brokers + "/" + settings_.topic_text), state_(log, name_) {}

    void write(const BatchInfo& batch, std::string_view lines) override {
        if (lines.empty()) return;
        const auto deadline = Clock::now() + settings_.timeout;
        {
            std::lock_guard lock(state_mutex_);
            state_.check_due(Clock::now());
        }
        const std::string topic = settings_.topic.expand(batch);
        const std::string key = settings_.key.expand(batch);
        try {
            producer()->send(topic, key, lines, deadline);
        } catch (const OutputError& e) {
            std::lock_guard lock(state_mutex_);
            up_ = false;
            throw state_.failed(e.what());
        }
        std::lock_guard lock(state_mutex_);
        if (!up_) state_.connected();
        up_ = true;
        state_.delivered();
    }

    void reopen() override { reopen_requested_ = true; }
    std::string describe() const override { return name_; }
    DriverStats stats() const override { return state_.stats(); }
    // Writers mostly wait for delivery reports, and batches produced together share requests.
    std::size_t concurrency() const override { return kWriters; }

private:
    // The producer, made on the first batch, after reopen() and after a fatal error.
    std::shared_ptr<Producer> producer() {
        std::shared_ptr<Producer> old; // destroyed (flushed) after the lock is released
        std::lock_guard lock(producer_mutex_);
        if (producer_ && (reopen_requested_.exchange(false) || producer_->fatal()))
            old = std::move(producer_);
        if (!producer_) {
            reopen_requested_ = false; // a new producer is what reopen() asks for
            producer_ = std::make_shared<Producer>(settings_, log_, name_);
        }
        return producer_;
    }

    const KafkaSettings settings_;
    Logger* log_;
    const std::string name_;
    std::mutex producer_mutex_;
    std::shared_ptr<Producer> producer_;
    std::atomic<bool> reopen_requested_{false};
    std::mutex state_mutex_; // state_ and up_ (LinkState is not thread-safe)
    net::LinkState state_;
    bool up_ = false;
};

} // namespace

std::unique_ptr<Driver> detail::make_kafka_driver(const Settings& settings, Logger* log) {
    detail::SettingsReader r("kafka", settings);
    KafkaSettings s;
    s.brokers = r.required_string("brokers");
    {
        std::string_view rest = s.brokers;
        while (true) {
            auto comma = rest.find(',');
            std::string_view one = rest.substr(0, comma);
            while (!one.empty() && one.front() == ' ')
                one.remove_prefix(1);
            while (!one.empty() && one.back() == ' ')
                one.remove_suffix(1);
            try {
                net::parse_host_port(one);
            } catch (const OutputError& e) {
                r.fail("brokers", "has an invalid broker: " + std::string(e.what()) +
                                      " (expected \"HOST:PORT,HOST:PORT\")");
            }
            if (comma == std::string_view::npos) break;
            rest.remove_prefix(comma + 1);
        }
    }
    s.topic_text = r.required_string("topic");
    s.topic = Template::parse(r, "topic", s.topic_text, true);
    s.key = Template::parse(r, "key", r.string("key").value_or("{machine}"), false);
    s.timeout = net::read_timeout(r);
    for (const auto& [key, value] : settings) {
        if (key.compare(0, kOptionPrefix.size(), kOptionPrefix) != 0) continue;
        r.known({std::string_view(key)});
        std::string name = key.substr(kOptionPrefix.size());
        std::string text;
        if (const auto* str = std::get_if<std::string>(&value))
            text = *str;
        else if (const auto* i = std::get_if<std::int64_t>(&value))
            text = std::to_string(*i);
        else
            text = std::get<bool>(value) ? "true" : "false";
        s.options.emplace_back(std::move(name), std::move(text));
    }
    r.finish();
    make_conf(s); // every option checked by librdkafka; the configuration is dropped
    return std::make_unique<KafkaDriver>(std::move(s), log);
}

} // namespace wec::output

// pipeline::Collector with network outputs: an Events message goes out as syslog (the fields
// taken from each event's XML), a receiver that is gone makes the batch answer 503 with no
// bookmark stored, and once it is back the same batch is accepted without a restart. A receiver
// that stops reading holds only its own output: the other outputs and subscriptions go on, its
// queue fills, and then its batches are refused at once (503) until it reads again. The metrics
// (docs/metrics.md) count exactly what happened: events received and written, batches refused by
// reason, queue depth, hosts.
#include "common/handle.hpp"
#include "event/event.hpp"
#include "metrics/metrics.hpp"
#include "output/net_peers.hpp"
#include "pipeline/collector.hpp"
#include "store/sqlite_store.hpp"
#include "subscription/subscription.hpp"
#include "support/files.hpp"
#include "support/process.hpp"
#include "wsman/bookmark.hpp"
#include "wsman/wsman.hpp"

#include <deque>
#include <fstream>
#include <future>
#include <gtest/gtest.h>
#include <sstream>
#include <thread>

namespace ws = wec::wsman;
using namespace wec;
using namespace std::chrono_literals;
using wec::testing::count_of;
using wec::testing::slurp;

namespace {

constexpr std::string_view kEvents[] = {
    "<Event xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\"><System>"
    "<Provider Name=\"Microsoft-Windows-Security-Auditing\"/><EventID>4625</EventID>"
    "<Level>0</Level><TimeCreated SystemTime=\"2026-01-01T00:00:00.1234567Z\"/>"
    "<EventRecordID>1</EventRecordID><Channel>Security</Channel><Computer>win10.d.local"
    "</Computer></System></Event>",
    "<Event xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\"><System>"
    "<Provider Name=\"Service Control Manager\"/><EventID>7031</EventID><Level>2</Level>"
    "<TimeCreated SystemTime=\"2026-01-01T00:00:01Z\"/><EventRecordID>2</EventRecordID>"
    "<Channel>System</Channel><Computer>dc01.d.local</Computer></System></Event>",
};

// A counter of the registry (the same object the collector adds to).
std::uint64_t counter(metrics::Registry& registry, const std::string& name,
                      const metrics::Labels& labels) {
    return registry.counter(name, "", labels)->value();
}

constexpr std::string_view kSecurityQuery =
    R"(query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>')";

// Stores subscription `name` (kSecurityQuery, then `outputs`: [[outputs]] tables); its UUID.
std::string put_subscription(store::Store& store, const std::string& name,
                             const std::string& outputs) {
    auto sub = subscription::load_toml(
        "name = \"" + name + "\"\n" + std::string(kSecurityQuery) + "\n" + outputs, name + ".toml");
    return store.put_subscription(sub).subscription.uuid;
}
std::string files_output(const std::filesystem::path& path) {
    return "[[outputs]]\ndriver = \"files\"\npath = \"" + path.string() + "\"\n";
}
// A unix datagram output with more settings (`extra`: "key = value" lines).
std::string unix_output(const std::filesystem::path& path, const std::string& extra) {
    return "[[outputs]]\ndriver = \"unix\"\npath = \"" + path.string() + "\"\n" + extra;
}

// Events batches of one client (kEvents, bookmark at `record`) for a collector's subscriptions;
// each message lives until its reply.
struct Batches {
    explicit Batches(pipeline::Collector& c) : collector(c) {}
    pipeline::Collector& collector;
    pipeline::ClientInfo client{"WIN10$@D.LOCAL", "10.0.0.5", pipeline::Transport::Http, "", ""};
    std::deque<ws::Message> messages;

    static std::string path_of(const std::string& uuid) { return "/wsman/subscriptions/" + uuid; }
    const ws::Message& events(const std::string& uuid, int record) {
        ws::SourceHeaders h;
        h.to = "http://wec.d.local:5985/wsman/subscriptions/" + uuid;
        h.machine_id = "win10.d.local";
        messages.push_back(ws::parse(ws::build_events(
            h, std::span(kEvents),
            ws::bookmark_list({{{"Security", static_cast<std::uint64_t>(record)}}, "Security"}))));
        return messages.back();
    }
    // Answered when the collector replies (handle_async).
    std::future<pipeline::Reply> send(const std::string& uuid, int record) {
        auto replied = std::make_shared<std::promise<pipeline::Reply>>();
        collector.handle_async(client, path_of(uuid), events(uuid, record),
                               [replied](pipeline::Reply r) { replied->set_value(std::move(r)); });
        return replied->get_future();
    }
    pipeline::Reply handle(const std::string& uuid, int record) {
        return collector.handle(client, path_of(uuid), events(uuid, record));
    }
};

TEST(CollectorOutputs, SyslogOutputGetsTheFieldsAndAFailingReceiverRefusesTheBatch) {
    wec::testing::TempDir dir;
    auto socket = dir.path() / "syslog.sock";
    wec::FilePtr log_file(std::fopen((dir.path() / "wec.log").c_str(), "w"));
    Logger log(log_file.get(), LogLevel::Info);
    store::SqliteStore store((dir.path() / "wec.db").string());
    store::HeartbeatBatcher heartbeats(store);
    auto def = subscription::load_toml(
        R"(name = "security"
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
[[outputs]]
driver = "syslog"
address = "unix:)" +
            socket.string() +
            R"("
facility = "auth"
)",
        "test");
    auto uuid = store.put_subscription(def).subscription.uuid;
    metrics::Registry registry;
    pipeline::CollectorConfig config;
    config.hostname = "wec.d.local";
    config.metrics = &registry;
    pipeline::Collector collector(log, store, heartbeats, config);
    pipeline::ClientInfo client{"WIN10$@D.LOCAL", "10.0.0.5", pipeline::Transport::Http, "", ""};
    const std::string path = "/wsman/subscriptions/" + uuid;
    auto events = [&](int record) {
        ws::SourceHeaders h;
        h.to = "http://wec.d.local:5985" + path;
        h.machine_id = "win10.d.local";
        return ws::parse(ws::build_events(
            h, std::span(kEvents),
            ws::bookmark_list({{{"Security", static_cast<std::uint64_t>(record)}}, "Security"})));
    };

    std::vector<std::string> got;
    {
        wec::testing::UnixDatagramPeer peer(socket);
        auto reply = collector.handle(client, path, events(1));
        ASSERT_EQ(reply.status, 200u) << reply.note;
        got = peer.drain();
    }
    ASSERT_EQ(got.size(), 2u);
    std::string line;
    event::format_raw(kEvents[0], line);
    EXPECT_EQ(got[0], "<38>1 2026-01-01T00:00:00.123456Z win10.d.local wec - 4625 - " + line);
    line.clear();
    event::format_raw(kEvents[1], line);
    EXPECT_EQ(got[1], "<35>1 2026-01-01T00:00:01Z dc01.d.local wec - 7031 - " + line);

    // The receiver is gone: 503, no Ack, the bookmark stays where it was.
    auto refused = collector.handle(client, path, events(2));
    EXPECT_EQ(refused.status, 503u);
    EXPECT_TRUE(refused.soap.empty());
    EXPECT_NE(refused.note.find("syslog:unix:" + socket.string()), std::string::npos)
        << refused.note;
    EXPECT_NE(store.bookmark(client.identity, uuid)->find("RecordId=\"1\""), std::string::npos);

    // Back: the source's retry is accepted (after the driver's backoff), no restart.
    wec::testing::UnixDatagramPeer peer(socket);
    pipeline::Reply reply;
    std::uint64_t batches = 2, failed = 1;
    for (int i = 0; i < 100; ++i) {
        reply = collector.handle(client, path, events(2));
        ++batches;
        if (reply.status == 200) break;
        ++failed;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(reply.status, 200u) << reply.note;
    EXPECT_EQ(peer.drain().size(), 2u);
    EXPECT_NE(store.bookmark(client.identity, uuid)->find("RecordId=\"2\""), std::string::npos);

    // Every batch was received, two were written, the others refused by the failing driver.
    const std::string output = "syslog:unix:" + socket.string();
    EXPECT_EQ(counter(registry, "wec_events_received_total", {{"subscription", "security"}}),
              2 * batches);
    EXPECT_EQ(counter(registry, "wec_events_written_total",
                      {{"subscription", "security"}, {"output", output}}),
              4u);
    EXPECT_EQ(counter(registry, "wec_batches_refused_total",
                      {{"subscription", "security"}, {"output", output}, {"reason", "failed"}}),
              failed);
    EXPECT_EQ(counter(registry, "wec_batches_refused_total",
                      {{"subscription", "security"}, {"output", output}, {"reason", "queue_full"}}),
              0u);
}

TEST(CollectorOutputs, AReceiverThatStopsReadingHoldsOnlyItsOwnOutputThenFillsItsQueue) {
    wec::testing::TempDir dir;
    auto socket = dir.path() / "agent.sock";
    auto log_path = dir.path() / "wec.log";
    wec::FilePtr log_file(std::fopen(log_path.c_str(), "w"));
    std::setvbuf(log_file.get(), nullptr, _IOLBF, 0);
    Logger log(log_file.get(), LogLevel::Info);
    store::SqliteStore store((dir.path() / "wec.db").string());
    store::HeartbeatBatcher heartbeats(store);
    // "slow": a files output and a unix output whose receiver does not read (the kernel queues 10
    // datagrams, then send() waits), with room for 2 waiting batches. "other": files only.
    const auto slow_uuid =
        put_subscription(store, "slow",
                         files_output(dir.path() / "slow.log") +
                             unix_output(socket, "timeout_ms = 60000\nqueue = 2\n"));
    const auto other_uuid =
        put_subscription(store, "other", files_output(dir.path() / "other.log"));
    metrics::Registry registry;
    pipeline::CollectorConfig config;
    config.hostname = "wec.d.local";
    config.metrics = &registry;
    pipeline::Collector collector(log, store, heartbeats, config);
    Batches batches(collector);
    const auto& client = batches.client;
    auto send = [&](int record) { return batches.send(slow_uuid, record); };

    wec::testing::UnixDatagramPeer peer(socket);
    // Five batches of two events fill the receiver's queue of ten datagrams.
    for (int record = 1; record <= 5; ++record)
        ASSERT_EQ(batches.handle(slow_uuid, record).status, 200u);

    // Batch 6 waits in the unix output; its files output has it already, and it is not acked.
    auto sixth = send(6);
    const auto slow_log = dir.path() / "slow.log";
    for (int i = 0; i < 1000 && count_of(slurp(slow_log), "<Event xmlns") < 12; ++i)
        std::this_thread::sleep_for(10ms);
    EXPECT_EQ(count_of(slurp(slow_log), "<Event xmlns"), 12u) << "files waited for the unix output";
    EXPECT_EQ(sixth.wait_for(300ms), std::future_status::timeout)
        << "acked before the unix receiver had it";
    EXPECT_NE(store.bookmark(client.identity, slow_uuid)->find("RecordId=\"5\""),
              std::string::npos);

    // Another subscription is not held up by it.
    EXPECT_EQ(batches.handle(other_uuid, 1).status, 200u);

    // Two more batches wait in the queue; the next ones are refused at once, logged once.
    auto seventh = send(7);
    auto eighth = send(8);
    for (int record = 9; record <= 11; ++record) {
        auto refused = batches.handle(slow_uuid, record);
        EXPECT_EQ(refused.status, 503u);
        EXPECT_GT(refused.retry_after_s, 0u);
        EXPECT_NE(refused.note.find("queue full"), std::string::npos) << refused.note;
    }
    EXPECT_EQ(count_of(slurp(log_path), "output queue full"), 1u) << slurp(log_path);
    // What /metrics shows meanwhile: two batches wait for the unix output (one is being written),
    // none for the files output; one host, active, in each subscription.
    const std::string unix_output = "unix:" + socket.string();
    const std::string files_output = "files:" + (dir.path() / "slow.log").string();
    auto gauges = collector.gauges();
    // The files output's writers take batches 7 and 8 off its queue at their own pace.
    for (int i = 0; i < 1000 && gauges.size() == 2 && gauges[1].queues.size() == 2 &&
                    gauges[1].queues[0].waiting != 0;
         ++i) {
        std::this_thread::sleep_for(10ms);
        gauges = collector.gauges();
    }
    ASSERT_EQ(gauges.size(), 2u);
    EXPECT_EQ(gauges[1].name, "slow");
    ASSERT_EQ(gauges[1].queues.size(), 2u);
    EXPECT_EQ(gauges[1].queues[0].output, files_output);
    EXPECT_EQ(gauges[1].queues[0].waiting, 0u);
    EXPECT_EQ(gauges[1].queues[1].output, unix_output);
    EXPECT_EQ(gauges[1].queues[1].waiting, 2u);
    EXPECT_EQ(gauges[1].queues[1].capacity, 2u);
    EXPECT_EQ(gauges[1].active, 1u);
    EXPECT_EQ(gauges[1].alive + gauges[1].dead, 0u);
    EXPECT_EQ(gauges[0].name, "other");
    EXPECT_EQ(gauges[0].active, 1u);

    // The receiver reads again: the waiting batches are written and acked, in order.
    std::size_t received = 0;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (eighth.wait_for(10ms) != std::future_status::ready &&
           std::chrono::steady_clock::now() < deadline)
        received += peer.drain().size();
    ASSERT_EQ(sixth.get().status, 200u);
    ASSERT_EQ(seventh.get().status, 200u);
    ASSERT_EQ(eighth.get().status, 200u);
    received += peer.drain().size();
    EXPECT_EQ(received, 16u); // batches 1 to 8, two events each
    EXPECT_NE(store.bookmark(client.identity, slow_uuid)->find("RecordId=\"8\""),
              std::string::npos);
    EXPECT_EQ(batches.handle(slow_uuid, 12).status, 200u);
    EXPECT_EQ(count_of(slurp(log_path), "output queue accepts batches again"), 1u)
        << slurp(log_path);
    // A batch refused for a full queue went to no output at all: the files output of "slow"
    // has batches 1-8 and 12, once each.
    EXPECT_EQ(count_of(slurp(slow_log), "<Event xmlns"), 18u);

    // 12 batches of 2 events received; batches 9-11 refused for the unix output's full queue
    // (the files output was not asked); the other 9 written by both.
    auto slow_labels = [](const std::string& output) {
        return metrics::Labels{{"subscription", "slow"}, {"output", output}};
    };
    auto refused_labels = [&](const std::string& output, const std::string& reason) {
        auto l = slow_labels(output);
        l.push_back({"reason", reason});
        return l;
    };
    EXPECT_EQ(counter(registry, "wec_events_received_total", {{"subscription", "slow"}}), 24u);
    EXPECT_EQ(counter(registry, "wec_events_written_total", slow_labels(files_output)), 18u);
    EXPECT_EQ(counter(registry, "wec_events_written_total", slow_labels(unix_output)), 18u);
    EXPECT_EQ(
        counter(registry, "wec_batches_refused_total", refused_labels(unix_output, "queue_full")),
        3u);
    EXPECT_EQ(
        counter(registry, "wec_batches_refused_total", refused_labels(files_output, "queue_full")),
        0u);
    EXPECT_EQ(counter(registry, "wec_batches_refused_total", refused_labels(unix_output, "failed")),
              0u);
    EXPECT_EQ(counter(registry, "wec_events_received_total", {{"subscription", "other"}}), 2u);
}

// With requests on the server's I/O threads, a batch for a network output is handed to the
// output's writer thread (the receiver's latency must not hold an I/O thread): handle_async
// returns before the receiver has it. A files output is still written by the calling thread:
// the reply comes before handle_async returns.
TEST(CollectorOutputs, OnIoThreadsOnlyLocalOutputsAreWrittenByTheCallingThread) {
    wec::testing::TempDir dir;
    auto socket = dir.path() / "agent.sock";
    Logger log(stderr, LogLevel::Warn);
    store::SqliteStore store((dir.path() / "wec.db").string());
    store::HeartbeatBatcher heartbeats(store);
    const auto net_uuid =
        put_subscription(store, "net", unix_output(socket, "timeout_ms = 3000\n"));
    const auto local_uuid =
        put_subscription(store, "local", files_output(dir.path() / "local.log"));
    pipeline::CollectorConfig config;
    config.hostname = "wec.d.local";
    config.handlers_on_io_threads = true;
    pipeline::Collector collector(log, store, heartbeats, config);
    Batches batches(collector);

    // Files: written, committed and answered before handle_async returned.
    auto answered = batches.send(local_uuid, 1);
    ASSERT_EQ(answered.wait_for(0s), std::future_status::ready);
    EXPECT_EQ(answered.get().status, 200u);

    // Unix datagrams: five batches of two events fill the receiver's queue of ten datagrams;
    // the sixth waits in the writer thread, not in handle_async (written here, it would have
    // returned only after timeout_ms, refused).
    wec::testing::UnixDatagramPeer peer(socket);
    for (int record = 1; record <= 5; ++record)
        ASSERT_EQ(batches.send(net_uuid, record).get().status, 200u);
    auto sixth = batches.send(net_uuid, 6);
    EXPECT_EQ(sixth.wait_for(300ms), std::future_status::timeout)
        << "written before the receiver read";
    // Reading lets the writer on (its datagrams may arrive while this reads).
    auto received = peer.drain().size();
    ASSERT_EQ(sixth.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(sixth.get().status, 200u);
    received += peer.drain().size();
    EXPECT_EQ(received, 12u);
}

} // namespace

// pipeline::Collector with network outputs: an Events message goes out as syslog (the fields
// taken from each event's XML), a receiver that is gone makes the batch answer 503 with no
// bookmark stored, and once it is back the same batch is accepted without a restart.
#include "event/event.hpp"
#include "output/net_peers.hpp"
#include "pipeline/collector.hpp"
#include "store/sqlite_store.hpp"
#include "subscription/subscription.hpp"
#include "support/process.hpp"
#include "wsman/wsman.hpp"

#include <gtest/gtest.h>
#include <thread>

namespace ws = wec::wsman;
using namespace wec;
using namespace std::chrono_literals;

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

TEST(CollectorOutputs, SyslogOutputGetsTheFieldsAndAFailingReceiverRefusesTheBatch) {
    wec::testing::TempDir dir;
    auto socket = dir.path() / "syslog.sock";
    struct Close {
        void operator()(std::FILE* f) const { std::fclose(f); }
    };
    std::unique_ptr<std::FILE, Close> log_file(std::fopen((dir.path() / "wec.log").c_str(), "w"));
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
    pipeline::CollectorConfig config;
    config.hostname = "wec.d.local";
    pipeline::Collector collector(log, store, heartbeats, config);
    pipeline::ClientInfo client{"WIN10$@D.LOCAL", "10.0.0.5", pipeline::Transport::Http, ""};
    const std::string path = "/wsman/subscriptions/" + uuid;
    auto events = [&](int record) {
        ws::SourceHeaders h;
        h.to = "http://wec.d.local:5985" + path;
        h.machine_id = "win10.d.local";
        return ws::parse(ws::build_events(
            h, std::span(kEvents),
            "<BookmarkList><Bookmark Channel=\"Security\" RecordId=\"" + std::to_string(record) +
                "\" IsCurrent=\"true\"/></BookmarkList>"));
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
    for (int i = 0; i < 100; ++i) {
        reply = collector.handle(client, path, events(2));
        if (reply.status == 200) break;
        std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(reply.status, 200u) << reply.note;
    EXPECT_EQ(peer.drain().size(), 2u);
    EXPECT_NE(store.bookmark(client.identity, uuid)->find("RecordId=\"2\""), std::string::npos);
}

} // namespace

// pipeline::Collector driven directly (no sockets, no Kerberos), as its header says tests do: the
// status of every route (200/204/400/403/404/503), a failing output driver, and output drivers
// kept across reloads when their definition did not change.
#include "common/handle.hpp"
#include "pipeline/collector.hpp"
#include "store/sqlite_store.hpp"
#include "subscription/subscription.hpp"
#include "support/line_receiver.hpp"
#include "support/process.hpp"
#include "wsman/bookmark.hpp"
#include "wsman/wsman.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

namespace fs = std::filesystem;
namespace sub = wec::subscription;
namespace ws = wec::wsman;
using namespace wec;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kEvent =
    "<Event xmlns=\"http://schemas.microsoft.com/win/2004/08/events/event\"><System>"
    "<Provider Name=\"Microsoft-Windows-Security-Auditing\"/><EventID>4624</EventID>"
    "<TimeCreated SystemTime=\"2026-01-01T00:00:00.000Z\"/><EventRecordID>1</EventRecordID>"
    "<Channel>Security</Channel><Computer>win10.d.local</Computer></System></Event>";

constexpr std::string_view kManager = "/wsman/SubscriptionManager/WEC";

std::string bookmark(int record) {
    return wec::wsman::bookmark_list(
        {{{"Security", static_cast<std::uint64_t>(record)}}, "Security"});
}

class CollectorRoutes : public ::testing::Test {
protected:
    wec::testing::TempDir dir;
    fs::path log_path = dir.path() / "wec.log";
    FilePtr log_file{std::fopen(log_path.c_str(), "w")};
    Logger log{log_file.get(), LogLevel::Info};
    store::SqliteStore store{(dir.path() / "wec.db").string()};
    store::HeartbeatBatcher heartbeats{store};
    pipeline::ClientInfo client{"WIN10$@D.LOCAL", "10.0.0.5", pipeline::Transport::Http, "",
                                "Kerberos"};

    pipeline::CollectorConfig config() const {
        pipeline::CollectorConfig c;
        c.hostname = "wec.d.local";
        c.reload_interval = 0ms; // every request looks at the store revision
        c.retry_initial = 1ms;
        c.retry_max = 4ms;
        return c;
    }

    // A subscription with `extra` TOML lines and one output (`output`: the [[outputs]] keys).
    std::string add(const std::string& name, const std::string& output,
                    const std::string& extra = {}) {
        auto s = sub::load_toml("name = \"" + name + R"("
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
)" + extra + "\n[[outputs]]\n" + output +
                                    "\n",
                                "test");
        return store.put_subscription(s).subscription.uuid;
    }
    std::string files_output() const {
        return "driver = \"files\"\npath = \"" +
               (dir.path() / "out" / "{subscription}.log").string() + "\"\nformat = \"raw\"";
    }

    static std::string path_of(const std::string& uuid) { return "/wsman/subscriptions/" + uuid; }
    static ws::SourceHeaders headers(std::string_view path) {
        ws::SourceHeaders h;
        h.to = "http://wec.d.local:5985" + std::string(path);
        h.machine_id = "win10.d.local";
        return h;
    }
    static ws::Message events(const std::string& uuid, int record) {
        std::string_view one = kEvent;
        return ws::parse(
            ws::build_events(headers(path_of(uuid)), std::span(&one, 1), bookmark(record)));
    }
    static ws::Message heartbeat(std::string_view path) {
        return ws::parse(ws::build_heartbeat(headers(path)));
    }
    static ws::Message end(std::string_view path) {
        return ws::parse(ws::build_end(headers(path)));
    }
    static ws::Message enumerate() { return ws::parse(ws::build_enumerate(headers(kManager))); }
    static ws::Message subscription_end(std::string_view path) {
        ws::SubscriptionEndBody body;
        body.status = "http://schemas.xmlsoap.org/ws/2004/08/eventing/SourceCancelling";
        return ws::parse(ws::build_subscription_end(headers(path), body));
    }
};

TEST_F(CollectorRoutes, EveryRouteAnswersItsStatus) {
    auto open = add("open", files_output());
    auto closed = add("closed", files_output(), "allowed_clients = [\"OTHER$@D.LOCAL\"]");
    auto disabled = add("disabled", files_output(), "enabled = false");
    pipeline::Collector collector(log, store, heartbeats, config());

    // The subscription manager URL: Enumerate lists what this client may see, End is 204, any
    // other action is not valid there.
    auto listed = collector.handle(client, kManager, enumerate());
    EXPECT_EQ(listed.status, 200u) << listed.note;
    EXPECT_NE(listed.soap.find(open), std::string::npos);
    EXPECT_EQ(listed.soap.find(closed), std::string::npos); // not allowed for this client
    EXPECT_EQ(listed.soap.find(disabled), std::string::npos);
    EXPECT_EQ(collector.handle(client, kManager, end(kManager)).status, 204u);
    auto wrong = collector.handle(client, kManager, heartbeat(kManager));
    EXPECT_EQ(wrong.status, 400u);
    EXPECT_NE(wrong.note.find("not valid at the subscription manager URL"), std::string::npos)
        << wrong.note;

    // A subscription URL.
    auto ack = collector.handle(client, path_of(open), events(open, 1));
    EXPECT_EQ(ack.status, 200u) << ack.note;
    EXPECT_NE(ack.soap.find("Ack"), std::string::npos);
    EXPECT_EQ(store.bookmark(client.identity, open), bookmark(1));
    auto beat = collector.handle(client, path_of(open), heartbeat(path_of(open)));
    EXPECT_EQ(beat.status, 200u) << beat.note;
    EXPECT_FALSE(beat.soap.empty());
    EXPECT_EQ(collector.handle(client, path_of(open), end(path_of(open))).status, 204u);
    EXPECT_EQ(collector.handle(client, path_of(open), subscription_end(path_of(open))).status,
              204u);
    auto misplaced = collector.handle(client, path_of(open), enumerate());
    EXPECT_EQ(misplaced.status, 400u);
    EXPECT_NE(misplaced.note.find("not valid at a subscription URL"), std::string::npos)
        << misplaced.note;

    // Unknown, disabled and not-allowed subscriptions.
    const std::string unknown = "00000000-0000-4000-8000-000000000000";
    auto missing = collector.handle(client, path_of(unknown), events(unknown, 1));
    EXPECT_EQ(missing.status, 404u) << missing.note;
    EXPECT_EQ(collector.handle(client, path_of(disabled), events(disabled, 1)).status, 404u);
    auto refused = collector.handle(client, path_of(closed), events(closed, 1));
    EXPECT_EQ(refused.status, 403u) << refused.note;
    EXPECT_FALSE(store.bookmark(client.identity, closed));

    // The subscription path is matched whatever the case of its UUID.
    std::string lower = path_of(open);
    for (auto& c : lower)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(collector.handle(client, lower, events(open, 2)).status, 200u);
}

TEST_F(CollectorRoutes, AFailingOutputDriverRefusesTheBatchWith503AndNothingIsAcked) {
    // An output that cannot be made (its directory would be under a regular file) and one that
    // fails when written (nothing listens at its address once the receiver is gone).
    std::ofstream(dir.path() / "not-a-dir") << "x";
    auto unmakeable =
        add("unmakeable", "driver = \"files\"\npath = \"" +
                              (dir.path() / "not-a-dir" / "{subscription}.log").string() + "\"");
    auto gone = [&] {
        wec::testing::TcpLineReceiver receiver;
        return add("gone", "driver = \"tcp\"\naddress = \"127.0.0.1:" +
                               std::to_string(receiver.port()) + "\"\ntimeout_ms = 2000");
    }();
    auto fine = add("fine", files_output());
    pipeline::Collector collector(log, store, heartbeats, config());

    for (const auto& uuid : {unmakeable, gone}) {
        auto reply = collector.handle(client, path_of(uuid), events(uuid, 1));
        EXPECT_EQ(reply.status, 503u) << reply.note;
        EXPECT_GT(reply.retry_after_s, 0u);
        EXPECT_TRUE(reply.soap.empty()); // no Ack: the source keeps the batch
        EXPECT_FALSE(store.bookmark(client.identity, uuid));
    }
    // Heartbeats do not go to outputs: still answered.
    EXPECT_EQ(collector.handle(client, path_of(gone), heartbeat(path_of(gone))).status, 200u);
    // The other subscriptions are served.
    EXPECT_EQ(collector.handle(client, path_of(fine), events(fine, 1)).status, 200u);
}

TEST_F(CollectorRoutes, OutputDriversAreKeptAcrossReloadsUnlessTheirDefinitionChanged) {
    wec::testing::TcpLineReceiver receiver;
    const std::string output =
        "driver = \"tcp\"\naddress = \"127.0.0.1:" + std::to_string(receiver.port()) + "\"";
    auto uuid = add("kept", output);
    pipeline::Collector collector(log, store, heartbeats, config());
    ASSERT_EQ(collector.handle(client, path_of(uuid), events(uuid, 1)).status, 200u);
    EXPECT_EQ(receiver.accepted(), 1u);

    // Another subscription changes the store revision: everything is reloaded, the unchanged
    // tcp output keeps its driver and so its connection.
    add("other", files_output());
    ASSERT_EQ(collector.handle(client, path_of(uuid), events(uuid, 2)).status, 200u);
    EXPECT_EQ(receiver.accepted(), 1u);
    EXPECT_EQ(collector.subscription_names().size(), 2u);

    // A changed definition of that output makes a new driver (a new connection).
    auto s = store.subscription_by_name("kept");
    ASSERT_TRUE(s);
    s->outputs.at(0).format = sub::OutputFormat::Json;
    store.put_subscription(*s);
    ASSERT_EQ(collector.handle(client, path_of(uuid), events(uuid, 3)).status, 200u);
    EXPECT_EQ(receiver.accepted(), 2u);
    EXPECT_EQ(receiver.lines().size(), 3u);
}

} // namespace

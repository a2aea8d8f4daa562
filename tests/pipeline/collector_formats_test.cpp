// pipeline::Collector writing one subscription's events through files outputs in every format
// (raw, json, raw_json, nxlog, ecs): each output gets one line per event in its format, the
// events are those of the batch, and the collector's metadata is in every JSON format.
#include "common/handle.hpp"
#include "event/event.hpp"
#include "pipeline/collector.hpp"
#include "store/sqlite_store.hpp"
#include "subscription/subscription.hpp"
#include "support/files.hpp"
#include "support/process.hpp"
#include "wsman/wsman.hpp"

#include <cstdio>
#include <filesystem>
#include <gtest/gtest.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace fs = std::filesystem;
namespace sub = wec::subscription;
namespace ws = wec::wsman;
using namespace wec;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

using wec::testing::TempDir;

using wec::FilePtr;

// The real Windows events of tests/data/event (OpenWEC's fixtures).
std::vector<std::string> fixture_events() {
    std::vector<std::string> out;
    for (const char* dir : {"json", "nxlog"}) {
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(fs::path(WEC_TEST_DATA) / "event" / dir))
            if (e.path().extension() == ".xml") files.push_back(e.path());
        std::sort(files.begin(), files.end());
        for (const auto& f : files)
            out.push_back(wec::testing::slurp(f));
    }
    return out;
}

TEST(CollectorFormats, FilesOutputsWriteEveryFormat) {
    TempDir dir;
    FilePtr log_file{std::fopen((dir.path() / "log").c_str(), "w")};
    Logger log{log_file.get(), LogLevel::Info};
    store::SqliteStore store{(dir.path() / "wec.db").string(), {}};
    store::HeartbeatBatcher heartbeats{store};

    const fs::path out = dir.path() / "out";
    std::string toml = R"(name = "formats"
uri = "/wsman/formats"
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
)";
    // Two json outputs: the batch is formatted once per format, both get the same lines.
    int n = 0;
    for (const char* f : {"raw", "json", "raw_json", "nxlog", "ecs", "json"}) {
        toml += std::string("[[outputs]]\ndriver = \"files\"\nformat = \"") + f + "\"\npath = \"" +
                (out / (std::to_string(n++) + "-" + f + ".log")).string() + "\"\n";
    }
    auto uuid = store.put_subscription(sub::load_toml(toml, "formats.toml")).subscription.uuid;

    pipeline::CollectorConfig config;
    config.hostname = "wec.d.local";
    config.node_name = "node-1";
    pipeline::Collector collector(log, store, heartbeats, config);
    pipeline::ClientInfo client{"WIN10$@D.LOCAL", "10.0.0.5", pipeline::Transport::Http, "", ""};

    const auto events = fixture_events();
    ASSERT_EQ(events.size(), 13u);
    std::vector<std::string_view> views(events.begin(), events.end());
    ws::SourceHeaders h;
    h.to = "http://wec.d.local:5985/wsman/subscriptions/" + uuid;
    h.machine_id = "win10.d.local";
    const std::string body = ws::build_events(h, views, "<BookmarkList/>");
    const ws::Message message = ws::parse(body);
    ASSERT_EQ(message.events.size(), events.size());
    for (int batch = 0; batch < 2; ++batch) {
        auto reply = collector.handle(client, "/wsman/subscriptions/" + uuid, message);
        ASSERT_EQ(reply.status, 200u) << reply.note;
        EXPECT_EQ(reply.events, events.size());
    }

    auto lines = [&](const std::string& name) {
        return wec::testing::lines_of(wec::testing::slurp(out / name));
    };
    const auto raw = lines("0-raw.log");
    const auto js = lines("1-json.log");
    const auto raw_json = lines("2-raw_json.log");
    const auto nxlog = lines("3-nxlog.log");
    const auto ecs = lines("4-ecs.log");
    EXPECT_EQ(lines("5-json.log"), js);
    for (const auto* l : {&raw, &js, &raw_json, &nxlog, &ecs})
        ASSERT_EQ(l->size(), 2 * events.size());

    for (std::size_t i = 0; i < raw.size(); ++i) {
        SCOPED_TRACE(i);
        // The event as delivered (the SOAP layer trims the fixture's final line break).
        const std::string_view xml = message.events[i % events.size()].xml;
        EXPECT_EQ(events[i % events.size()].rfind(xml, 0), 0u);
        const auto parsed = event::parse(xml);
        ASSERT_TRUE(parsed.system);
        const std::uint32_t id = parsed.system->event_id;

        std::string one_line;
        event::format_raw(xml, one_line);
        EXPECT_EQ(raw[i], one_line);

        const json j = json::parse(js[i]);
        EXPECT_EQ(j.at("System").at("EventID"), id);
        EXPECT_EQ(j.at("OpenWEC").at("IpAddress"), "10.0.0.5");
        EXPECT_EQ(j.at("OpenWEC").at("Client"), "WIN10$@D.LOCAL");
        EXPECT_EQ(j.at("OpenWEC").at("Node"), "node-1");
        EXPECT_EQ(j.at("OpenWEC").at("Subscription").at("Uuid"), uuid);

        const json rj = json::parse(raw_json[i]);
        EXPECT_EQ(rj.at("data"), xml);
        EXPECT_EQ(rj.at("meta"), j.at("OpenWEC")); // no parse error in the fixtures

        const json nx = json::parse(nxlog[i]);
        EXPECT_EQ(nx.at("EventID"), id);
        EXPECT_EQ(nx.at("Hostname"), parsed.system->computer);
        EXPECT_EQ(nx.at("OpenWEC").at("Subscription").at("Name"), "formats");

        const json e = json::parse(ecs[i]);
        EXPECT_EQ(e.at("event").at("code"), std::to_string(id));
        EXPECT_EQ(e.at("winlog").at("event_id"), std::to_string(id));
        EXPECT_EQ(e.at("host").at("name"), parsed.system->computer);
        EXPECT_EQ(e.at("wec").at("ip_address"), "10.0.0.5");
        EXPECT_EQ(e.at("wec").at("client"), "WIN10$@D.LOCAL");
        EXPECT_EQ(e.at("wec").at("node"), "node-1");
        EXPECT_EQ(e.at("wec").at("subscription").at("name"), "formats");
        EXPECT_EQ(e.at("wec").at("subscription").at("uri"), "/wsman/formats");
        // The same instant: "2026-…T…:…:…(.fraction)Z" and "…(.fraction)+00:00".
        EXPECT_EQ(e.at("event").at("created").get<std::string>().substr(0, 19),
                  j.at("OpenWEC").at("TimeReceived").get<std::string>().substr(0, 19));
    }
}

// {node} in a files path: the collector's node_name, or this machine's host name when it has none
// (the JSON events then have no OpenWEC.Node, as before).
TEST(CollectorFormats, NodeInAFilesPathIsTheNodeNameElseTheHostName) {
    TempDir dir;
    FilePtr log_file{std::fopen((dir.path() / "log").c_str(), "w")};
    Logger log{log_file.get(), LogLevel::Info};
    store::SqliteStore store{(dir.path() / "wec.db").string(), {}};
    store::HeartbeatBatcher heartbeats{store};
    const fs::path out = dir.path() / "out";
    auto uuid = store
                    .put_subscription(sub::load_toml(
                        R"(name = "nodes"
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
[[outputs]]
driver = "files"
format = "json"
path = ")" + (out / "{node}" / "{subscription}.log").string() +
                            "\"\n",
                        "nodes.toml"))
                    .subscription.uuid;
    const auto events = fixture_events();
    std::vector<std::string_view> views(events.begin(), events.begin() + 1);
    ws::SourceHeaders h;
    h.to = "http://wec.d.local:5985/wsman/subscriptions/" + uuid;
    h.machine_id = "win10.d.local";
    const ws::Message message = ws::parse(ws::build_events(h, views, "<BookmarkList/>"));
    pipeline::ClientInfo client{"WIN10$@D.LOCAL", "10.0.0.5", pipeline::Transport::Http, "", ""};

    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    for (const std::string node_name : {"node-1", ""}) {
        pipeline::CollectorConfig config;
        config.hostname = "wec.d.local";
        config.node_name = node_name;
        pipeline::Collector collector(log, store, heartbeats, config);
        auto reply = collector.handle(client, "/wsman/subscriptions/" + uuid, message);
        ASSERT_EQ(reply.status, 200u) << reply.note;
        const auto file = out / (node_name.empty() ? std::string(host) : node_name) / "nodes.log";
        const auto lines = wec::testing::lines_of(wec::testing::slurp(file));
        ASSERT_EQ(lines.size(), 1u) << file;
        EXPECT_EQ(json::parse(lines[0]).at("OpenWEC").contains("Node"), !node_name.empty());
    }
}

} // namespace

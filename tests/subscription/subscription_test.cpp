#include "output/output.hpp"
#include "subscription/subscription.hpp"

#include <gtest/gtest.h>
#include <regex>
#include <set>
#include <string>

namespace sub = wec::subscription;

namespace {

const char* kMinimal = R"(name = "security"
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
[[outputs]]
driver = "files"
path = "/var/log/wec/{client}.json"
format = "json"
)";

const std::string kQuery =
    R"(<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>)";

// The message of the SubscriptionError thrown by load_toml(text, "sub.toml").
std::string error_of(const std::string& text) {
    try {
        sub::load_toml(text, "sub.toml");
    } catch (const sub::SubscriptionError& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("unexpected exception type: ") + e.what();
    }
    return "no error";
}

std::string with_query(const std::string& rest) {
    return "name = \"s\"\nquery = '" + kQuery + "'\n" + rest;
}

std::string ors(std::size_t clauses) {
    std::string xpath = "*[System[(EventID=1";
    for (std::size_t i = 2; i <= clauses; ++i)
        xpath += " or EventID=" + std::to_string(i);
    return xpath + ")]]";
}

sub::Subscription full() {
    sub::Subscription s;
    s.uuid = "0F1E2D3C-4B5A-4978-8796-A5B4C3D2E1F0";
    s.name = "it's \"full\"";
    s.description = "line1\nline2\ttab \\ backslash";
    s.query =
        R"(<QueryList><Query Id="0" Path="Security"><Select Path="Security">*[System[(Level&lt;=3)]]</Select><Suppress Path="Security">*[System[(EventID=4662)]]</Suppress></Query></QueryList>)";
    s.content_format = sub::ContentFormat::RenderedText;
    s.heartbeat_interval_s = 600;
    s.max_latency_s = 900;
    s.max_envelope_size = 150000;
    s.max_elements = 20;
    s.read_existing_events = true;
    s.ignore_channel_error = false;
    s.locale = "fr-FR";
    s.data_locale = "en-US";
    s.allowed_clients = {"*$@WINDOMAIN.LOCAL", "dc?$@OTHER.LOCAL"};
    s.denied_clients = {"KIOSK*$@WINDOMAIN.LOCAL"};
    s.uri = "/wsman/dc";
    s.enabled = false;
    s.connection_retry_count = 7;
    s.connection_retry_interval_s = 120;
    sub::Output a;
    a.driver = "files";
    a.format = sub::OutputFormat::Json;
    a.options = {{"path", std::string("/var/log/wec/{client}.json")},
                 {"max_open_files", std::int64_t{65536}},
                 {"fsync", true}};
    sub::Output b;
    b.driver = "files";
    b.format = sub::OutputFormat::Raw;
    b.options = {{"path", std::string("/var/log/wec/raw/{machine}.xml")}};
    sub::Output c;
    c.driver = "syslog";
    c.options = {{"address", std::string("tls://siem.example.org:6514")},
                 {"app_name", std::string("it's")},
                 {"ca", std::string("/etc/wec/siem \"ca\".pem")},
                 {"timeout_ms", std::int64_t{2500}}};
    s.outputs = {a, b, c};
    return s;
}

} // namespace

TEST(SubscriptionToml, MinimalDefinitionLoadsWithDefaults) {
    auto s = sub::load_toml(kMinimal, "minimal.toml");
    EXPECT_EQ(s.name, "security");
    EXPECT_EQ(s.query, kQuery);
    EXPECT_TRUE(s.uuid.empty());
    EXPECT_EQ(s.content_format, sub::ContentFormat::Raw);
    EXPECT_EQ(s.heartbeat_interval_s, 3600u);
    EXPECT_EQ(s.max_latency_s, 30u);
    EXPECT_EQ(s.max_envelope_size, 512000u);
    EXPECT_FALSE(s.max_elements.has_value());
    EXPECT_FALSE(s.read_existing_events);
    EXPECT_TRUE(s.ignore_channel_error);
    EXPECT_FALSE(s.locale.has_value());
    EXPECT_FALSE(s.data_locale.has_value());
    EXPECT_TRUE(s.allowed_clients.empty());
    EXPECT_FALSE(s.uri.has_value());
    EXPECT_TRUE(s.enabled);
    EXPECT_EQ(s.connection_retry_count, 5u);
    EXPECT_EQ(s.connection_retry_interval_s, 60u);
    ASSERT_EQ(s.outputs.size(), 1u);
    EXPECT_EQ(s.outputs[0].driver, "files");
    EXPECT_EQ(s.outputs[0].format, sub::OutputFormat::Json);
    ASSERT_EQ(s.outputs[0].options.size(), 1u);
    EXPECT_EQ(std::get<std::string>(s.outputs[0].options.at("path")), "/var/log/wec/{client}.json");
}

TEST(SubscriptionToml, AllKeys) {
    auto s = sub::load_toml(R"(name = "all"
uuid = "0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0"
description = "everything"
channels = ["Security", "System"]
xpath = "*[System[(Level=1 or Level=2)]]"
content_format = "RenderedText"
heartbeat_interval = 600
max_latency = 900
max_envelope_size = 150000
max_elements = 10
read_existing_events = true
ignore_channel_error = false
locale = "en-US"
data_locale = "fr-FR"
allowed_clients = ["*$@WINDOMAIN.LOCAL"]
uri = "/wsman/dc"
enabled = false
connection_retry_count = 3
connection_retry_interval = 30
[[outputs]]
driver = "files"
path = "/tmp/{client}.xml"
max_open_files = 4096
fsync = false
)",
                            "all.toml");
    EXPECT_EQ(s.uuid, "0F1E2D3C-4B5A-4978-8796-A5B4C3D2E1F0");
    EXPECT_EQ(s.description, "everything");
    EXPECT_EQ(
        s.query,
        R"(<QueryList><Query Id="0"><Select Path="Security">*[System[(Level=1 or Level=2)]]</Select>)"
        R"(<Select Path="System">*[System[(Level=1 or Level=2)]]</Select></Query></QueryList>)");
    EXPECT_EQ(s.content_format, sub::ContentFormat::RenderedText);
    EXPECT_EQ(s.heartbeat_interval_s, 600u);
    EXPECT_EQ(s.max_latency_s, 900u);
    EXPECT_EQ(s.max_envelope_size, 150000u);
    EXPECT_EQ(s.max_elements, 10u);
    EXPECT_TRUE(s.read_existing_events);
    EXPECT_FALSE(s.ignore_channel_error);
    EXPECT_EQ(s.locale, "en-US");
    EXPECT_EQ(s.data_locale, "fr-FR");
    EXPECT_EQ(s.allowed_clients, std::vector<std::string>{"*$@WINDOMAIN.LOCAL"});
    EXPECT_EQ(s.uri, "/wsman/dc");
    EXPECT_FALSE(s.enabled);
    EXPECT_EQ(s.connection_retry_count, 3u);
    EXPECT_EQ(s.connection_retry_interval_s, 30u);
    ASSERT_EQ(s.outputs.size(), 1u);
    EXPECT_EQ(s.outputs[0].format, sub::OutputFormat::Raw); // default
    EXPECT_EQ(std::get<std::int64_t>(s.outputs[0].options.at("max_open_files")), 4096);
    EXPECT_EQ(std::get<bool>(s.outputs[0].options.at("fsync")), false);
}

TEST(SubscriptionToml, EveryOutputFormatReadsAndRoundTrips) {
    const std::pair<const char*, sub::OutputFormat> formats[] = {
        {"raw", sub::OutputFormat::Raw},
        {"json", sub::OutputFormat::Json},
        {"raw_json", sub::OutputFormat::RawJson},
        {"nxlog", sub::OutputFormat::Nxlog},
        {"ecs", sub::OutputFormat::Ecs}};
    for (const auto& [name, format] : formats) {
        SCOPED_TRACE(name);
        auto s = sub::load_toml(with_query(std::string("[[outputs]]\ndriver = \"files\"\n"
                                                       "path = \"/x\"\nformat = \"") +
                                           name + "\"\n"),
                                "f.toml");
        ASSERT_EQ(s.outputs.size(), 1u);
        EXPECT_EQ(s.outputs[0].format, format);
        EXPECT_EQ(sub::to_string(format), name);
        EXPECT_EQ(sub::load_toml(sub::to_toml(s), "again.toml"), s);
    }
}

TEST(SubscriptionToml, ChannelsWithDefaultXPathAndEscaping) {
    auto s = sub::load_toml("name = \"c\"\nchannels = [\"Security\", \"A&B\\\"C\"]\n", "c.toml");
    EXPECT_EQ(s.query, R"(<QueryList><Query Id="0"><Select Path="Security">*</Select>)"
                       R"(<Select Path="A&amp;B&quot;C">*</Select></Query></QueryList>)");
    EXPECT_NO_THROW(sub::validate_query(s.query));
}

TEST(SubscriptionToml, ErrorsNameFileLineColumnAndReason) {
    EXPECT_EQ(error_of(with_query("foo = 1\n")), "sub.toml:3:1: unknown key 'foo'");
    EXPECT_EQ(error_of(with_query("\nheartbeat_interval = \"x\"\n")),
              "sub.toml:4:22: heartbeat_interval: expected an integer, got a string");
    EXPECT_EQ(error_of(with_query("enabled = 1\n")),
              "sub.toml:3:11: enabled: expected a boolean, got an integer");
    EXPECT_EQ(error_of(with_query("max_latency = 0\n")),
              "sub.toml:3:15: max_latency: 0 is out of range [1, 604800]");
    EXPECT_EQ(error_of(with_query("content_format = \"Xml\"\n")),
              "sub.toml:3:18: content_format: must be \"Raw\" or \"RenderedText\"");
    EXPECT_EQ(error_of("query = '" + kQuery + "'\n"), "sub.toml: missing key 'name'");
    EXPECT_EQ(error_of("name = \"x\"\n"), "sub.toml: missing key 'query' (or 'channels')");
    EXPECT_EQ(error_of("name = \"x\"\nname = \"y\"\n").substr(0, 11), "sub.toml:2:");
    EXPECT_EQ(error_of("name = \"\"\nchannels = [\"A\"]\n"),
              "sub.toml:1:8: name: must not be empty");
    EXPECT_EQ(error_of("name = \"x\"\nquery = 'a' 'b'\n").substr(0, 11), "sub.toml:2:");
}

TEST(SubscriptionToml, QueryMustBeAWellFormedQueryList) {
    auto e = error_of("name = \"s\"\n\nquery = '<QueryList><Query>'\n");
    EXPECT_EQ(e, "sub.toml:3:9: query: line 1, column 18: not well-formed XML (Start-end tags "
                 "mismatch)");
    EXPECT_EQ(error_of("name = \"s\"\nquery = '<Foo/>'\n"),
              "sub.toml:2:9: query: line 1, column 1: the root element must be <QueryList>, not "
              "<Foo>");
    EXPECT_EQ(error_of("name = \"s\"\nquery = '<QueryList/><QueryList/>'\n"),
              "sub.toml:2:9: query: line 1, column 13: more than one root element");
    EXPECT_EQ(error_of("name = \"s\"\nquery = '<QueryList><Query Id=\"0\"></Query></QueryList>'\n"),
              "sub.toml:2:9: query: no <Select> in the <QueryList>");
    EXPECT_EQ(
        error_of(
            "name = \"s\"\nquery = '<QueryList><Query><Select>*</Select></Query></QueryList>'\n"),
        "sub.toml:2:9: query: line 1, column 19: Select #1 has no Path (and its <Query> has none)");
    EXPECT_EQ(error_of("name = \"s\"\nquery = '<QueryList><Query><Select Path=\"A\"> "
                       "</Select></Query></QueryList>'\n"),
              "sub.toml:2:9: query: line 1, column 19: Select #1 (Path 'A') has an empty XPath");
    EXPECT_EQ(error_of("name = \"s\"\nquery = \"\"\"\n<QueryList>\n<Query "
                       "Id=\"0\"><Foo/></Query>\n</QueryList>\"\"\"\n"),
              "sub.toml:2:9: query: line 2, column 15: unexpected element <Foo> in <Query> (and 1 "
              "more: no <Select> in the <QueryList>)");
}

TEST(SubscriptionToml, SelectPathLimit) {
    std::string ok = "<QueryList><Query Id=\"0\">";
    for (int i = 0; i < 256; ++i)
        ok += "<Select Path=\"C" + std::to_string(i) + "\">*</Select>";
    std::string too_many = ok + "<Select Path=\"X\">*</Select></Query></QueryList>";
    ok += "</Query></QueryList>";
    EXPECT_NO_THROW(sub::load_toml("name = \"s\"\nquery = '" + ok + "'\n", "s.toml"));
    EXPECT_EQ(error_of("name = \"s\"\nquery = '" + too_many + "'\n"),
              "sub.toml:2:9: query: line 1, column 7596: Select #257 (Path 'X') is over the limit: "
              "the QueryList has 257 Selects, more than 256 (Windows limit)");

    std::string channels = "name = \"s\"\nchannels = [";
    for (int i = 0; i < 257; ++i)
        channels += (i ? ", \"C" : "\"C") + std::to_string(i) + "\"";
    channels += "]\n";
    EXPECT_EQ(error_of(channels),
              "sub.toml:2:12: channels: more than 256 Select paths (Windows limit)");
}

TEST(SubscriptionToml, ClauseLimit) {
    EXPECT_EQ(sub::count_clauses("*"), 1u);
    EXPECT_EQ(sub::count_clauses("*[System[(EventID=1 or EventID=2) and Level=3]]"), 3u);
    EXPECT_EQ(sub::count_clauses("*[EventData[Data='a or b and c']]"), 1u); // inside a literal
    EXPECT_EQ(sub::count_clauses("*[System[Provider[@Name='x']] and\nEventData]"), 2u);
    EXPECT_EQ(sub::count_clauses("*[System[orange=1 and band=2]]"), 2u); // whole words only
    EXPECT_EQ(sub::count_clauses(ors(22)), 22u);

    EXPECT_NO_THROW(sub::load_toml(
        "name = \"s\"\nchannels = [\"Security\"]\nxpath = \"" + ors(22) + "\"\n", "s.toml"));
    EXPECT_EQ(error_of("name = \"s\"\nchannels = [\"Security\"]\nxpath = \"" + ors(23) + "\"\n"),
              "sub.toml:3:9: query: line 1, column 26: Select #1 (Path 'Security') has 23 "
              "clauses, more than 22 (Windows would forward nothing)");
    std::string q = "<QueryList><Query Id=\"0\"><Select Path=\"Security\">" + ors(23) +
                    "</Select></Query></QueryList>";
    EXPECT_THROW(sub::validate_query(q), sub::SubscriptionError);
    // Suppress paths do not count.
    q = "<QueryList><Query Id=\"0\"><Select Path=\"Security\">*</Select><Suppress "
        "Path=\"Security\">" +
        ors(30) + "</Suppress></Query></QueryList>";
    EXPECT_NO_THROW(sub::validate_query(q));
}

TEST(SubscriptionQuery, CheckQueryListsEveryProblemWithItsSelectAndPosition) {
    // The second Select is too long, the fourth has no Path: both are reported, each with its
    // line and column in the query and its number (Suppress elements count in the numbering).
    std::string q = "<QueryList>\n"
                    "  <Query Id=\"0\" Path=\"Security\">\n"
                    "    <Select Path=\"Security\">*[System[EventID=4624]]</Select>\n"
                    "    <Select>" +
                    ors(23) +
                    "</Select>\n"
                    "    <Suppress Path=\"Security\">*[EventData[Data[1]='S-1-5-18']]</Suppress>\n"
                    "  </Query>\n"
                    "  <Query Id=\"1\">\n"
                    "    <Select>*</Select>\n"
                    "  </Query>\n"
                    "</QueryList>";
    auto problems = sub::check_query(q);
    ASSERT_EQ(problems.size(), 2u);
    EXPECT_EQ(problems[0].line, 4u);
    EXPECT_EQ(problems[0].column, 5u);
    EXPECT_EQ(problems[0].select, 2u);
    EXPECT_EQ(problems[0].path, "Security"); // inherited from its <Query>
    EXPECT_EQ(q.substr(problems[0].offset, 8), "<Select>");
    EXPECT_EQ(problems[0].describe(),
              "line 4, column 5: Select #2 (Path 'Security') has 23 clauses, more than 22 "
              "(Windows would forward nothing)");
    EXPECT_EQ(problems[1].describe(),
              "line 8, column 5: Select #4 has no Path (and its <Query> has none)");
    try {
        sub::validate_query(q, "q.xml");
        ADD_FAILURE() << "validate_query accepted the query";
    } catch (const sub::SubscriptionError& e) {
        EXPECT_EQ(std::string(e.what()), "q.xml: query: " + problems[0].describe() +
                                             " (and 1 more: " + problems[1].describe() + ")");
    }

    // Not well-formed: one problem, where the parser stopped; columns count characters.
    problems = sub::check_query("<QueryList>\n<Query Id=\"é\"><Select Path=\"A\">*</Selec>");
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_EQ(problems[0].line, 2u);
    EXPECT_EQ(problems[0].column, 35u); // at "Selec": 34 characters before it, 35 bytes
    EXPECT_EQ(problems[0].message.rfind("not well-formed XML (", 0), 0u) << problems[0].message;
    EXPECT_TRUE(sub::check_query(kQuery).empty());
    EXPECT_EQ(sub::check_query("").at(0).describe(),
              "line 1, column 1: not well-formed XML (No document element found)");
}

TEST(SubscriptionToml, QueryAndChannelsAreExclusive) {
    EXPECT_EQ(error_of(with_query("channels = [\"A\"]\n")),
              "sub.toml:3:12: channels: give either 'query' or 'channels', not both");
    EXPECT_EQ(error_of(with_query("xpath = \"*\"\n")),
              "sub.toml:3:9: xpath: only valid together with 'channels'");
    EXPECT_EQ(error_of("name = \"s\"\nchannels = []\n"),
              "sub.toml:2:12: channels: must list at least one channel");
    EXPECT_EQ(error_of("name = \"s\"\nchannels = [\"A\", 3]\n"),
              "sub.toml:2:18: channels: expected a string, got an integer");
}

TEST(SubscriptionToml, OutputErrors) {
    EXPECT_EQ(error_of(with_query("[[outputs]]\ndriver = \"amqp\"\n")),
              "sub.toml:4:10: outputs.driver: unknown driver 'amqp' (known: " +
                  std::string(wec::output::known_drivers()) + ")");
    EXPECT_EQ(
        error_of(with_query("[[outputs]]\ndriver = \"files\"\npath = \"/x\"\nformat = \"xml\"\n")),
        "sub.toml:6:10: outputs.format: unknown format 'xml' (known: raw, json, raw_json, nxlog, "
        "ecs)");
    // Names are exact (lowercase), as OpenWEC's are not: "Json" is not "json".
    EXPECT_EQ(
        error_of(with_query("[[outputs]]\ndriver = \"files\"\npath = \"/x\"\nformat = \"Json\"\n")),
        "sub.toml:6:10: outputs.format: unknown format 'Json' (known: raw, json, raw_json, nxlog, "
        "ecs)");
    EXPECT_EQ(error_of(with_query("[[outputs]]\ndriver = \"files\"\npath = \"/x\"\nformat = 1\n")),
              "sub.toml:6:10: outputs.format: expected a string, got an integer");
    EXPECT_EQ(error_of(with_query("[[outputs]]\npath = \"/x\"\n")),
              "sub.toml:3:1: outputs: missing key 'driver'");
    EXPECT_EQ(error_of(with_query("[[outputs]]\ndriver = \"files\"\n")),
              "sub.toml:3:1: outputs: driver 'files' needs a 'path' key");
    EXPECT_EQ(error_of(with_query("[[outputs]]\ndriver = \"files\"\npath = 3\n")),
              "sub.toml:5:8: outputs: 'path' of driver 'files' must be a non-empty string");
    EXPECT_EQ(error_of(with_query("[outputs]\ndriver = \"files\"\n")),
              "sub.toml:3:1: outputs: expected an array of tables ([[outputs]]), got a table");
    EXPECT_EQ(error_of(with_query("[[outputs]]\ndriver = \"files\"\npath = \"/x\"\nx = 1.5\n")),
              "sub.toml:6:1: outputs.x: expected a string, integer or boolean, got a float");
    EXPECT_EQ(error_of(with_query("[[outputs]]\ndriver = \"files\"\npath = \"/x/{host}.log\"\n")),
              "sub.toml:5:8: outputs: 'path' of driver 'files' names an unknown key {host} "
              "(known: {ip}, {client}, {machine}, {subscription}, {subscription_uuid}, {node}, "
              "{date})");
    EXPECT_EQ(error_of(with_query("[[outputs]]\ndriver = \"files\"\npath = \"/x\"\nqueue = 0\n")),
              "sub.toml:6:9: outputs.queue: expected an integer in [1, 65536] (batches that may "
              "wait for this output)");
}

// `queue` (batches that may wait for an output) is kept, and written back only when set.
TEST(SubscriptionToml, OutputQueueRoundTrips) {
    auto def = sub::load_toml(
        with_query("[[outputs]]\ndriver = \"files\"\npath = \"/x\"\nqueue = 8\n"), "sub.toml");
    ASSERT_EQ(def.outputs.size(), 1u);
    EXPECT_EQ(def.outputs[0].queue, 8u);
    EXPECT_EQ(sub::load_toml(sub::to_toml(def), "again.toml"), def);
    auto plain =
        sub::load_toml(with_query("[[outputs]]\ndriver = \"files\"\npath = \"/x\"\n"), "sub.toml");
    EXPECT_EQ(plain.outputs[0].queue, sub::kDefaultOutputQueue);
    EXPECT_EQ(sub::to_toml(plain).find("queue"), std::string::npos);
}

// Each driver checks its keys and values; the error points at the offending value.
TEST(SubscriptionToml, NetworkOutputErrors) {
    auto out = [](const std::string& keys) { return error_of(with_query("[[outputs]]\n" + keys)); };
    EXPECT_EQ(out("driver = \"files\"\npath = \"/x\"\nfsycn = true\n"),
              "sub.toml:6:9: outputs: unknown key 'fsycn' for driver 'files' (known: fsync, "
              "max_open_files, path)");
    EXPECT_EQ(out("driver = \"tcp\"\naddress = \"siem.example.org\"\n"),
              "sub.toml:5:11: outputs: 'address' of driver 'tcp' is invalid: 'siem.example.org' "
              "has no port (expected HOST:PORT)");
    EXPECT_EQ(out("driver = \"tcp\"\naddress = \"::1:514\"\n"),
              "sub.toml:5:11: outputs: 'address' of driver 'tcp' is invalid: '::1:514': write an "
              "IPv6 address in brackets, e.g. [::1]:514");
    EXPECT_EQ(out("driver = \"tcp\"\naddress = \"h:70000\"\n"),
              "sub.toml:5:11: outputs: 'address' of driver 'tcp' is invalid: 'h:70000': the port "
              "must be a number in [1, 65535]");
    EXPECT_EQ(out("driver = \"tcp\"\naddress = \"h:1\"\nca = \"/ca.pem\"\n"),
              "sub.toml:6:6: outputs: 'ca' of driver 'tcp' is only valid with tls = true");
    EXPECT_EQ(out("driver = \"tcp\"\naddress = \"h:1\"\ntls = true\ncert = \"/c.pem\"\n"),
              "sub.toml:7:8: outputs: 'cert' of driver 'tcp' needs 'key' as well (a client "
              "certificate and its key)");
    EXPECT_EQ(out("driver = \"tcp\"\naddress = \"h:1\"\ntls = \"yes\"\n"),
              "sub.toml:6:7: outputs: 'tls' of driver 'tcp' must be true or false");
    EXPECT_EQ(out("driver = \"tcp\"\naddress = \"h:1\"\ntimeout_ms = 0\n"),
              "sub.toml:6:14: outputs: 'timeout_ms' of driver 'tcp' must be an integer in [1, "
              "600000]");
    EXPECT_EQ(out("driver = \"tcp\"\n"),
              "sub.toml:3:1: outputs: driver 'tcp' needs a 'address' key");
    EXPECT_EQ(out("driver = \"redis\"\naddress = \"h:1\"\nlist = \"wec:{host}\"\n"),
              "sub.toml:6:8: outputs: 'list' of driver 'redis' names an unknown key {host} "
              "(known: {ip}, {client}, {machine}, {subscription}, {subscription_uuid}, {node}, "
              "{date})");
    EXPECT_EQ(out("driver = \"redis\"\naddress = \"h:1\"\n"),
              "sub.toml:3:1: outputs: driver 'redis' needs a 'list' key");
    EXPECT_EQ(out("driver = \"syslog\"\naddress = \"siem:514\"\n"),
              "sub.toml:5:11: outputs: 'address' of driver 'syslog' is invalid: 'siem:514' has no "
              "known scheme (expected udp://HOST:PORT, tcp://HOST:PORT, tls://HOST:PORT or "
              "unix:PATH)");
    EXPECT_EQ(out("driver = \"syslog\"\naddress = \"unix:\"\n"),
              "sub.toml:5:11: outputs: 'address' of driver 'syslog' is invalid: 'unix:' has no "
              "path (expected udp://HOST:PORT, tcp://HOST:PORT, tls://HOST:PORT or unix:PATH)");
    EXPECT_EQ(out("driver = \"syslog\"\naddress = \"udp://h\"\nfacility = \"local9\"\n"),
              "sub.toml:6:12: outputs: 'facility' of driver 'syslog' is unknown: 'local9' (known: "
              "kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp, ntp, "
              "security, console, clock, local0, local1, local2, local3, local4, local5, local6, "
              "local7)");
    EXPECT_EQ(out("driver = \"syslog\"\naddress = \"tcp://h\"\nframing = \"nul\"\n"),
              "sub.toml:6:11: outputs: 'framing' of driver 'syslog' must be \"octet-counting\" or "
              "\"lf\", not 'nul'");
    EXPECT_EQ(out("driver = \"syslog\"\naddress = \"udp://h\"\nframing = \"lf\"\n"),
              "sub.toml:6:11: outputs: 'framing' of driver 'syslog' is only valid with tcp:// and "
              "tls:// addresses");
    EXPECT_EQ(out("driver = \"syslog\"\naddress = \"tcp://h\"\nserver_name = \"h\"\n"),
              "sub.toml:6:15: outputs: 'server_name' of driver 'syslog' is only valid with a "
              "tls:// address");
    EXPECT_EQ(out("driver = \"syslog\"\naddress = \"udp://h\"\napp_name = \"my app\"\n"),
              "sub.toml:6:12: outputs: 'app_name' of driver 'syslog' must be printable ASCII "
              "without spaces (RFC 5424)");
    EXPECT_EQ(out("driver = \"syslog\"\naddress = \"udp://h\"\npath = \"/x\"\n"),
              "sub.toml:6:8: outputs: unknown key 'path' for driver 'syslog' (known: address, "
              "app_name, ca, cert, facility, framing, key, server_name, timeout_ms)");
    EXPECT_EQ(out("driver = \"unix\"\npath = \"/" + std::string(120, 'x') + "\"\n"),
              "sub.toml:5:8: outputs: 'path' of driver 'unix' is longer than 107 bytes (a socket "
              "path)");
    EXPECT_EQ(out("driver = \"unix\"\naddress = \"/dev/log\"\n"),
              "sub.toml:3:1: outputs: driver 'unix' needs a 'path' key");

    // And every valid form is accepted.
    for (const char* keys :
         {"driver = \"tcp\"\naddress = \"[::1]:5140\"\ntls = true\nca = \"/ca.pem\"\ncert = "
          "\"/c.pem\"\nkey = \"/c.key\"\nserver_name = \"siem\"\ntimeout_ms = 500\n",
          "driver = \"syslog\"\naddress = \"udp://127.0.0.1\"\nfacility = \"auth\"\n",
          "driver = \"syslog\"\naddress = \"tls://siem:6514\"\nframing = \"lf\"\nca = \"/ca\"\n",
          "driver = \"syslog\"\naddress = \"unix:/dev/log\"\napp_name = \"wec-dc\"\n",
          "driver = \"unix\"\npath = \"/run/vector.sock\"\nformat = \"json\"\n"})
        EXPECT_EQ(out(keys), "no error") << keys;
}

// [outputs.options]: librdkafka properties of the kafka driver, flattened to "options.<name>"
// settings (dotted and quoted keys alike), checked by the driver, and written back as a table.
TEST(SubscriptionToml, KafkaOptionsTableReadsValidatesAndRoundTrips) {
    auto s = sub::load_toml(with_query("[[outputs]]\n"
                                       "driver = \"kafka\"\n"
                                       "brokers = \"k1:9092,k2:9092\"\n"
                                       "topic = \"wec-{subscription}\"\n"
                                       "format = \"ecs\"\n"
                                       "[outputs.options]\n"
                                       "\"security.protocol\" = \"sasl_ssl\"\n"
                                       "sasl.mechanism = \"PLAIN\"\n"
                                       "linger.ms = 20\n"
                                       "enable.idempotence = true\n"
                                       "[[outputs]]\n"
                                       "driver = \"files\"\n"
                                       "path = \"/x\"\n"),
                            "k.toml");
    ASSERT_EQ(s.outputs.size(), 2u);
    const auto& o = s.outputs[0].options;
    EXPECT_EQ(std::get<std::string>(o.at("options.security.protocol")), "sasl_ssl");
    EXPECT_EQ(std::get<std::string>(o.at("options.sasl.mechanism")), "PLAIN");
    EXPECT_EQ(std::get<std::int64_t>(o.at("options.linger.ms")), 20);
    EXPECT_EQ(std::get<bool>(o.at("options.enable.idempotence")), true);
    EXPECT_EQ(o.size(), 6u); // brokers, topic and the four options
    EXPECT_EQ(s.outputs[1].options.size(), 1u);
    EXPECT_NO_THROW(sub::validate(s));

    const std::string text = sub::to_toml(s);
    EXPECT_NE(text.find("[outputs.options]\n\"enable.idempotence\" = true\n\"linger.ms\" = 20\n"),
              std::string::npos)
        << text;
    EXPECT_EQ(sub::load_toml(text, "again.toml"), s) << text;
}

TEST(SubscriptionToml, KafkaOutputErrors) {
    auto out = [](const std::string& keys) {
        return error_of(with_query("[[outputs]]\ndriver = \"kafka\"\nbrokers = \"k:9092\"\n"
                                   "topic = \"t\"\n" +
                                   keys));
    };
    // At the option's value.
    EXPECT_EQ(out("[outputs.options]\nacks = 1\n"),
              "sub.toml:8:8: outputs: option 'acks' of driver 'kafka' = '1' is refused: the "
              "driver needs acks=all (-1), so that a delivered batch is on every in-sync replica");
    EXPECT_EQ(out("[outputs.options]\nlinger.ms = \"soon\"\n"),
              "sub.toml:8:13: outputs: option 'linger.ms' of driver 'kafka' = 'soon' is refused by "
              "librdkafka: Invalid value for configuration property \"queue.buffering.max.ms\"");
    EXPECT_EQ(out("topik = \"x\"\n"),
              "sub.toml:7:9: outputs: unknown key 'topik' for driver 'kafka' (known: brokers, key, "
              "timeout_ms, topic)");
    EXPECT_EQ(out("key = \"{host}\"\n"),
              "sub.toml:7:7: outputs: 'key' of driver 'kafka' has an unknown {host} (known: "
              "{subscription}, {subscription_uuid}, {client}, {machine}, {ip}, {node})");
    EXPECT_EQ(out("[outputs.options]\n\"linger.ms\" = 1\nlinger.ms = 2\n"),
              "sub.toml:8:1: outputs.options.linger.ms: given twice");
    EXPECT_EQ(out("[outputs.options]\ndebug = [\"all\"]\n"),
              "sub.toml:8:1: outputs.options.debug: expected a string, integer or boolean, got an "
              "array");
    // Only the kafka driver takes options.
    EXPECT_EQ(error_of(with_query("[[outputs]]\ndriver = \"files\"\npath = \"/x\"\n"
                                  "[outputs.options]\nlinger.ms = 1\n")),
              "sub.toml:7:13: outputs: 'options.linger.ms': driver 'files' takes no "
              "[outputs.options] table (librdkafka properties, for driver 'kafka' only)");
}

TEST(SubscriptionToml, BadGlobs) {
    EXPECT_EQ(error_of(with_query("allowed_clients = [\"ok*\",\n  \"bad[x]\"]\n")),
              "sub.toml:4:3: allowed_clients: pattern 'bad[x]' uses '[' (only '*' and '?' are "
              "supported)");
    EXPECT_EQ(error_of(with_query("allowed_clients = [\"\"]\n")),
              "sub.toml:3:20: allowed_clients: empty pattern");
    EXPECT_EQ(
        error_of(with_query("allowed_clients = [\"a b\"]\n")),
        "sub.toml:3:20: allowed_clients: pattern 'a b' contains a space or control character");
    EXPECT_EQ(error_of(with_query("allowed_clients = \"*\"\n")),
              "sub.toml:3:19: allowed_clients: expected an array of strings, got a string");
}

TEST(SubscriptionToml, SyntaxErrorsCarryThePosition) {
    auto e = error_of("name = \"s\"\n\nquery = \n");
    EXPECT_EQ(e.rfind("sub.toml:3:", 0), 0u) << e;
    e = error_of("name = \"unterminated\n");
    EXPECT_EQ(e.rfind("sub.toml:1:", 0), 0u) << e;
    try {
        sub::load_toml("a = [\n1,\n2,,\n]\n", "f.toml");
        FAIL() << "no error";
    } catch (const sub::SubscriptionError& error) {
        EXPECT_EQ(error.source(), "f.toml");
        EXPECT_EQ(error.line(), 3u);
        EXPECT_GT(error.column(), 0u);
        EXPECT_FALSE(error.reason().empty());
    }
}

TEST(SubscriptionToml, RoundTrip) {
    auto s = full();
    auto text = sub::to_toml(s);
    auto back = sub::load_toml(text, "roundtrip.toml");
    EXPECT_EQ(back, s) << text;

    auto minimal = sub::load_toml(kMinimal, "m.toml");
    EXPECT_EQ(sub::load_toml(sub::to_toml(minimal), "m2.toml"), minimal);
    EXPECT_NO_THROW(sub::validate(s));
}

TEST(SubscriptionToml, MissingFileIsAnError) {
    EXPECT_THROW(sub::load_toml_file("/nonexistent/wec/sub.toml"), wec::Error);
}

TEST(SubscriptionVersion, DeterministicAndUuidFormatted) {
    auto s = full();
    auto v = sub::public_version(s);
    EXPECT_TRUE(std::regex_match(
        v, std::regex("[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")))
        << v;
    EXPECT_EQ(sub::public_version(full()), v);
    EXPECT_EQ(sub::public_version(sub::load_toml(sub::to_toml(s), "x")), v);
}

TEST(SubscriptionVersion, IgnoresCollectorSideSettings) {
    auto base = full();
    auto v = sub::public_version(base);
    auto s = base;
    s.outputs.clear();
    EXPECT_EQ(sub::public_version(s), v);
    s = base;
    s.outputs[0].options["path"] = std::string("/elsewhere");
    s.outputs[1].format = sub::OutputFormat::Json;
    EXPECT_EQ(sub::public_version(s), v);
    s = base;
    s.allowed_clients = {"*"};
    EXPECT_EQ(sub::public_version(s), v);
    s = base;
    s.denied_clients = {"x*"};
    EXPECT_EQ(sub::public_version(s), v);
    s = base;
    s.enabled = !s.enabled;
    EXPECT_EQ(sub::public_version(s), v);
    s = base;
    s.uri.reset();
    s.description = "changed";
    EXPECT_EQ(sub::public_version(s), v);
}

TEST(SubscriptionVersion, ChangesWithWhatClientsSee) {
    auto base = full();
    std::set<std::string> versions{sub::public_version(base)};
    auto expect_new = [&](const sub::Subscription& s, const char* what) {
        EXPECT_TRUE(versions.insert(sub::public_version(s)).second) << what;
    };
    auto s = base;
    s.query = kQuery;
    expect_new(s, "query");
    s = base;
    s.content_format = sub::ContentFormat::Raw;
    expect_new(s, "content format");
    s = base;
    s.heartbeat_interval_s = 3600;
    expect_new(s, "heartbeat");
    s = base;
    s.max_latency_s = 30;
    expect_new(s, "latency");
    s = base;
    s.max_envelope_size = 512000;
    expect_new(s, "envelope");
    s = base;
    s.max_elements.reset();
    expect_new(s, "max elements");
    s = base;
    s.read_existing_events = false;
    expect_new(s, "read existing");
    s = base;
    s.ignore_channel_error = true;
    expect_new(s, "ignore channel error");
    s = base;
    s.locale.reset();
    expect_new(s, "locale");
    s = base;
    s.data_locale = "de-DE";
    expect_new(s, "data locale");
    s = base;
    s.connection_retry_count = 1;
    expect_new(s, "retry count");
    s = base;
    s.connection_retry_interval_s = 1;
    expect_new(s, "retry interval");
    s = base;
    s.name = "other";
    expect_new(s, "name");
    s = base;
    s.uuid = sub::new_uuid();
    expect_new(s, "uuid");
}

TEST(SubscriptionGlob, Matching) {
    EXPECT_TRUE(sub::glob_match("*", ""));
    EXPECT_TRUE(sub::glob_match("*", "anything"));
    EXPECT_TRUE(sub::glob_match("*$@WINDOMAIN.LOCAL", "WIN10$@WINDOMAIN.LOCAL"));
    EXPECT_TRUE(sub::glob_match("*$@WINDOMAIN.LOCAL", "win10$@windomain.local")); // case
    EXPECT_FALSE(sub::glob_match("*$@WINDOMAIN.LOCAL", "alice@WINDOMAIN.LOCAL"));
    EXPECT_FALSE(sub::glob_match("*$@WINDOMAIN.LOCAL", "WIN10$@WINDOMAIN.LOCAL.EVIL"));
    EXPECT_TRUE(sub::glob_match("DC?$@*", "DC1$@X"));
    EXPECT_FALSE(sub::glob_match("DC?$@*", "DC12$@X"));
    EXPECT_FALSE(sub::glob_match("DC?$@*", "DC$@X"));
    EXPECT_TRUE(sub::glob_match("a*b*c", "aXXbYYbZZc"));
    EXPECT_FALSE(sub::glob_match("a*b*c", "aXXbYYbZZ"));
    EXPECT_TRUE(sub::glob_match("**a**", "a"));
    EXPECT_TRUE(sub::glob_match("exact", "EXACT"));
    EXPECT_FALSE(sub::glob_match("exact", "exact2"));
    EXPECT_FALSE(sub::glob_match("", "x"));
    // Pathological pattern stays fast (no exponential backtracking).
    std::string text(5000, 'a');
    EXPECT_FALSE(sub::glob_match("*a*a*a*a*a*a*a*a*b", text));
}

TEST(SubscriptionGlob, Allows) {
    auto s = sub::load_toml(kMinimal, "m.toml");
    EXPECT_TRUE(sub::allows(s, "anyone@ANY"));
    s.allowed_clients = {"*$@WINDOMAIN.LOCAL", "admin@OTHER"};
    EXPECT_TRUE(sub::allows(s, "WIN10$@windomain.local"));
    EXPECT_TRUE(sub::allows(s, "ADMIN@other"));
    EXPECT_FALSE(sub::allows(s, "user@WINDOMAIN.LOCAL"));
}

TEST(SubscriptionGlob, NtlmDomainBackslashUserIdentitiesMatchLiterally) {
    auto s =
        sub::load_toml(with_query("allowed_clients = ['LAB\\*$', 'LAB\\alice']\n"), "sub.toml");
    EXPECT_EQ(s.allowed_clients, (std::vector<std::string>{"LAB\\*$", "LAB\\alice"}));
    EXPECT_EQ(sub::load_toml(sub::to_toml(s), "again.toml"), s);
    EXPECT_TRUE(sub::allows(s, "LAB\\WIN10$"));
    EXPECT_TRUE(sub::allows(s, "lab\\ALICE"));
    EXPECT_FALSE(sub::allows(s, "LAB\\bob"));
    EXPECT_FALSE(sub::allows(s, "OTHER\\WIN10$"));
}

TEST(SubscriptionGlob, DeniedClientsWinOverAllowedOnes) {
    auto s = sub::load_toml(kMinimal, "m.toml");
    s.denied_clients = {"KIOSK*"};
    EXPECT_TRUE(sub::allows(s, "WIN10$@WINDOMAIN.LOCAL")); // nothing allowed-listed: all but denied
    EXPECT_FALSE(sub::allows(s, "kiosk07$@WINDOMAIN.LOCAL"));
    s.allowed_clients = {"*$@WINDOMAIN.LOCAL"};
    EXPECT_TRUE(sub::allows(s, "WIN10$@WINDOMAIN.LOCAL"));
    EXPECT_FALSE(sub::allows(s, "KIOSK07$@WINDOMAIN.LOCAL")); // allowed, but denied wins
    EXPECT_FALSE(sub::allows(s, "user@OTHER"));
}

TEST(SubscriptionToml, DeniedClientsLoadValidateAndRoundTrip) {
    auto s = sub::load_toml(
        with_query("denied_clients = [\"KIOSK*$@WINDOMAIN.LOCAL\", \"lab-??\"]\n"), "sub.toml");
    EXPECT_EQ(s.denied_clients, (std::vector<std::string>{"KIOSK*$@WINDOMAIN.LOCAL", "lab-??"}));
    EXPECT_EQ(sub::load_toml(sub::to_toml(s), "again.toml"), s);
    EXPECT_EQ(error_of(with_query("denied_clients = [\"ok\",\n  \"bad]\"]\n")),
              "sub.toml:4:3: denied_clients: pattern 'bad]' uses ']' (only '*' and '?' are "
              "supported)");
    EXPECT_EQ(error_of(with_query("denied_clients = [\"\"]\n")),
              "sub.toml:3:19: denied_clients: empty pattern");
    s.denied_clients = {"a b"};
    try {
        sub::validate(s, "check");
        ADD_FAILURE() << "validate accepted a pattern with a space";
    } catch (const sub::SubscriptionError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "check: denied_clients: pattern 'a b' contains a space or control character");
    }
    // Not written when empty: definitions stored before the key existed keep their text.
    s.denied_clients.clear();
    EXPECT_EQ(sub::to_toml(s).find("denied_clients"), std::string::npos);
}

TEST(SubscriptionUuid, NewUuidsAreUppercaseAndDistinct) {
    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        auto u = sub::new_uuid();
        EXPECT_TRUE(sub::is_uuid(u)) << u;
        EXPECT_EQ(u[14], '4');
        for (char c : u)
            EXPECT_FALSE(c >= 'a' && c <= 'f') << u;
        seen.insert(u);
    }
    EXPECT_EQ(seen.size(), 100u);
    EXPECT_FALSE(sub::is_uuid("not-a-uuid"));
    EXPECT_FALSE(sub::is_uuid("0F1E2D3C-4B5A-4978-8796-A5B4C3D2E1FG"));
}

TEST(SubscriptionToml, MultiLineQueryIsWrittenAsAMultiLineString) {
    auto s = sub::load_toml(kMinimal, "sub.toml");
    s.query = "<QueryList>\n  <Query Id=\"0\">\n    <Select Path=\"Security\">*</Select>\n  "
              "</Query>\n</QueryList>\n";
    auto text = sub::to_toml(s);
    EXPECT_NE(text.find("query = '''\n<QueryList>\n  <Query Id=\"0\">\n"), std::string::npos)
        << text;
    EXPECT_EQ(sub::load_toml(text, "again.toml"), s);
    // Text a literal string cannot hold keeps the escaped one-line form.
    s.query = "<QueryList>\n<Query Id=\"0\"><Select Path=\"A\">*[EventData[Data='x''']]</Select>"
              "</Query></QueryList>";
    text = sub::to_toml(s);
    EXPECT_EQ(text.find("'''"), text.find("x'''") + 1); // only the one in the query
    EXPECT_EQ(sub::load_toml(text, "again.toml", false), s);
}

TEST(SubscriptionToml, SyntaxErrorsHaveTheirOwnType) {
    EXPECT_THROW(sub::load_toml("name = ", "x.toml"), sub::SubscriptionSyntaxError);
    try {
        sub::load_toml("name = \"x\"\n", "x.toml");
    } catch (const sub::SubscriptionSyntaxError&) {
        ADD_FAILURE() << "a missing key is not a syntax error";
    } catch (const sub::SubscriptionError&) {
    }
}

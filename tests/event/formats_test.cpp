// The formats of issue #10 next to raw and json: raw_json (OpenWEC's RawJson), ecs (Winlogbeat's
// fields), the names of the formats and the batch formatter the collector uses. Every output is
// parsed back with nlohmann::json, also for odd and malformed events.
#include "event/event.hpp"
#include "event/json_writer_internal.hpp"
#include "event_fixtures.hpp"
#include "json_escape_reference.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

using nlohmann::json;
using wec::event::Format;
using wec::event::Metadata;
using namespace wec::event::testing;
namespace ev = wec::event;

json parse_json(const std::string& text) {
    EXPECT_TRUE(json::accept(text)) << text.substr(0, 2000);
    return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

std::string formatted(Format format, std::string_view xml, const Metadata& md) {
    auto parsed = ev::parse(xml);
    std::string out;
    ev::format_event(format, xml, parsed, md, out);
    return out;
}

json ecs_of(std::string_view xml, const Metadata& md = default_metadata()) {
    return parse_json(formatted(Format::Ecs, xml, md));
}

// A minimal event: `system` is inserted in <System> after the mandatory Computer/EventID.
std::string event_xml(const std::string& system, const std::string& rest = "") {
    return "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
           "<Provider Name='P'/><EventID>7</EventID><Computer>pc.d.local</Computer>" +
           system + "</System>" + rest + "</Event>";
}

// Every fixture event, as "<dir>/<name>".
std::vector<std::string> all_fixtures() {
    std::vector<std::string> out;
    for (const char* dir : {"json", "nxlog"})
        for (const auto& name : fixtures(dir))
            out.push_back(std::string(dir) + "/" + name);
    return out;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& p) {
    std::string n = p.param;
    std::replace(n.begin(), n.end(), '/', '_');
    return n;
}

// ---- names ---------------------------------------------------------------------------------

TEST(EventFormats, NamesRoundTripAndAreExact) {
    for (std::size_t i = 0; i < ev::kFormatCount; ++i) {
        auto f = static_cast<Format>(i);
        EXPECT_EQ(ev::parse_format(ev::to_string(f)), f);
    }
    EXPECT_EQ(ev::to_string(Format::RawJson), "raw_json");
    EXPECT_EQ(ev::to_string(Format::Ecs), "ecs");
    for (const char* bad : {"", "JSON", "Raw", "rawjson", "raw-json", "ecs ", "gelf"})
        EXPECT_FALSE(ev::parse_format(bad)) << bad;
    EXPECT_FALSE(ev::needs_parse(Format::Raw));
    EXPECT_FALSE(ev::needs_parse(Format::RawJson));
    EXPECT_TRUE(ev::needs_parse(Format::Json));
    EXPECT_TRUE(ev::needs_parse(Format::Nxlog));
    EXPECT_TRUE(ev::needs_parse(Format::Ecs));
}

// ---- raw_json ------------------------------------------------------------------------------

// {"meta": <the OpenWEC block of the Json fixture>, "data": <the XML verbatim>}.
class RawJsonFixture : public ::testing::TestWithParam<std::string> {};
TEST_P(RawJsonFixture, MetaIsOpenWECBlockAndDataIsTheXml) {
    const std::string xml = read_file(kData / (GetParam() + ".xml"));
    const json expected = json::parse(read_file(kData / (GetParam() + ".expected.json")));
    json meta = expected.at("OpenWEC");
    meta.erase("Error"); // RawJson does not parse the event
    std::string out;
    ev::format_raw_json(xml, metadata_from(expected), out);
    const json actual = parse_json(out);
    EXPECT_EQ(actual, json({{"meta", meta}, {"data", xml}}))
        << json::diff(json({{"meta", meta}, {"data", xml}}), actual).dump(2);
    EXPECT_EQ(out.find('\n'), std::string::npos); // one line, whatever the XML
    EXPECT_EQ(out.rfind("{\"meta\":{\"IpAddress\":", 0), 0u) << out.substr(0, 80);
}
INSTANTIATE_TEST_SUITE_P(Event, RawJsonFixture, ::testing::ValuesIn(all_fixtures()), test_name);

TEST(EventRawJson, AnythingIsKeptAsValidJson) {
    Metadata md = default_metadata();
    md.node = "n1";
    md.subscription_uri = "/wsman/dc";
    const std::string garbage = "not xml \x01\x02 \"quoted\" \\ \xff\xfe caf\xc3\xa9";
    const json j = parse_json(formatted(Format::RawJson, garbage, md));
    EXPECT_EQ(j.at("data"),
              "not xml \xEF\xBF\xBD\xEF\xBF\xBD \"quoted\" \\ \xEF\xBF\xBD\xEF\xBF\xBD "
              "caf\xc3\xa9");
    EXPECT_EQ(j.at("meta").at("Node"), "n1");
    EXPECT_EQ(j.at("meta").at("Subscription").at("Uri"), "/wsman/dc");
    EXPECT_FALSE(j.at("meta").contains("Error"));
}

// ---- ecs -----------------------------------------------------------------------------------

// Each fixture against tests/data/event/ecs/<dir>_<name>.json. The expected documents were
// checked field by field against Winlogbeat's rules (docs/subscriptions.md) by an independent
// implementation; WEC_UPDATE_GOLDEN=1 rewrites them from the current formatter (and fails each
// test: that run compared nothing).
class EcsFixture : public ::testing::TestWithParam<std::string> {};
TEST_P(EcsFixture, MatchesExpected) {
    const std::string xml = read_file(kData / (GetParam() + ".xml"));
    const json openwec = json::parse(read_file(kData / (GetParam() + ".expected.json")));
    std::string name = GetParam();
    std::replace(name.begin(), name.end(), '/', '_');
    const fs::path golden = kData / "ecs" / (name + ".json");
    const json actual = ecs_of(xml, metadata_from(openwec));
    if (std::getenv("WEC_UPDATE_GOLDEN")) {
        std::ofstream(golden) << actual.dump(2) << '\n';
        // A rewriting run compared nothing: it must not count as a passing one.
        FAIL() << "rewrote " << golden << " (WEC_UPDATE_GOLDEN is set): review the diff and run "
               << "again without it";
    }
    const json expected = json::parse(read_file(golden));
    EXPECT_EQ(actual, expected) << json::diff(expected, actual).dump(2);
}
INSTANTIATE_TEST_SUITE_P(Event, EcsFixture, ::testing::ValuesIn(all_fixtures()), test_name);

TEST(EventEcs, SecurityAuditFailure) {
    const json j = ecs_of(read_file(kData / "nxlog" / "event_4625.xml"));
    EXPECT_EQ(j.at("@timestamp"), "2024-03-14T13:54:16.6138329Z");
    EXPECT_EQ(j.at("event").at("code"), "4625"); // a string, as Winlogbeat writes it
    EXPECT_EQ(j.at("event").at("kind"), "event");
    EXPECT_EQ(j.at("event").at("outcome"), "failure");
    EXPECT_EQ(j.at("event").at("provider"), "Microsoft-Windows-Security-Auditing");
    EXPECT_EQ(j.at("event").at("action"), "Logon");
    EXPECT_EQ(j.at("log").at("level"), "information");
    EXPECT_EQ(j.at("host").at("name"), "WKS10001");
    const json& w = j.at("winlog");
    EXPECT_EQ(w.at("event_id"), "4625");
    EXPECT_EQ(w.at("record_id"), 1444);
    EXPECT_EQ(w.at("channel"), "Security");
    EXPECT_EQ(w.at("computer_name"), "WKS10001");
    EXPECT_EQ(w.at("keywords"), json::array({"Audit Failure"}));
    EXPECT_EQ(w.at("provider_guid"), "{54849625-5478-4994-a5ba-3e3b0328c30d}");
    EXPECT_EQ(w.at("process").at("pid"), 780);
    EXPECT_EQ(w.at("process").at("thread").at("id"), 8372);
    EXPECT_EQ(w.at("activity_id"), "{b073a4bf-7611-0000-bca5-73b01176da01}");
    EXPECT_FALSE(w.contains("version")); // 0: left out, as Winlogbeat does
    EXPECT_EQ(w.at("event_data").at("TargetUserName"), "user");
    EXPECT_EQ(w.at("event_data").at("LogonType"), "2");
    EXPECT_EQ(w.at("event_data").at("IpPort"), "0");
    EXPECT_EQ(j.at("ecs").at("version"), "8.0.0");
    EXPECT_EQ(j.at("wec").at("client"), "WIN10$@WINDOMAIN.LOCAL");
    EXPECT_EQ(j.at("wec").at("subscription").at("name"), "Test");
    EXPECT_EQ(j.at("event").at("created"), "2022-12-14T16:07:03.324Z");
}

TEST(EventEcs, UnnamedDataAreParamsByPositionAndBinaryIsKept) {
    // 5719: <Data>WINDOMAIN</Data><Data>%%1311</Data><Binary>5E0000C0</Binary>
    json w = ecs_of(read_file(kData / "json" / "event_5719.xml")).at("winlog");
    EXPECT_EQ(w.at("event_data"),
              json({{"param1", "WINDOMAIN"}, {"param2", "%%1311"}, {"Binary", "5E0000C0"}}));
    // Empty <Data> are dropped but still count: param<N> is the position among the children.
    w = ecs_of(event_xml("", "<EventData><Data></Data><Data>b</Data><Data Name='N'></Data>"
                             "<Data>d</Data><Data Name='E'>e</Data></EventData>"))
            .at("winlog");
    EXPECT_EQ(w.at("event_data"), json({{"param2", "b"}, {"param4", "d"}, {"E", "e"}}));
    // Nothing left: no event_data at all.
    w = ecs_of(event_xml("", "<EventData><Data></Data><Data Name='x'></Data></EventData>"))
            .at("winlog");
    EXPECT_FALSE(w.contains("event_data"));
}

TEST(EventEcs, NamesWithoutRenderingInfoComeFromWindowsCommonNames) {
    struct Case {
        std::string system;
        json level, opcode, task, keywords, outcome;
    };
    const json none; // null: field left out
    const Case cases[] = {
        {"<Level>0</Level><Task>0</Task><Opcode>0</Opcode><Keywords>0x8020000000000000</Keywords>",
         "information", "Info", "None", json::array({"Audit Success"}), "success"},
        {"<Level>1</Level><Opcode>9</Opcode><Keywords>0x10000000000000</Keywords>", "critical",
         "Send", "None", json::array({"Audit Failure"}), "failure"},
        {"<Level>2</Level><Task>12544</Task><Opcode>10</Opcode>", "error", none, none, none, none},
        {"<Level>3</Level><Keywords>0x80000000000000</Keywords>", "warning", none, "None",
         json::array({"Classic"}), none},
        {"<Level>4</Level><Keywords>0xd000000000000</Keywords>", "information", none, "None",
         json::array({"Response Time", "WDI Diag", "SQM"}), none},
        {"<Level>5</Level><Keywords>0x0</Keywords>", "verbose", none, "None", none, none},
        {"<Level>16</Level><Keywords>junk</Keywords>", none, none, "None", none, none},
        {"", "information", none, "None", none, none}, // missing Level reads as 0
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.system);
        const json j = ecs_of(event_xml(c.system));
        auto get = [&](const json& o, const char* a, const char* b) {
            return o.contains(a) && o.at(a).contains(b) ? o.at(a).at(b) : json();
        };
        EXPECT_EQ(get(j, "log", "level"), c.level);
        EXPECT_EQ(get(j, "winlog", "opcode"), c.opcode);
        EXPECT_EQ(get(j, "winlog", "task"), c.task);
        EXPECT_EQ(get(j, "event", "action"), c.task);
        EXPECT_EQ(get(j, "winlog", "keywords"), c.keywords);
        EXPECT_EQ(get(j, "event", "outcome"), c.outcome);
    }
    // RenderingInfo wins; its level is lowercased.
    const json j = ecs_of(event_xml("<Level>2</Level><Opcode>0</Opcode>",
                                    "<RenderingInfo Culture='en-US'><Message>m</Message>"
                                    "<Level>Fehler</Level><Task>Anmeldung</Task><Opcode>Start"
                                    "</Opcode><Keywords><Keyword>K1</Keyword><Keyword>K2"
                                    "</Keyword></Keywords></RenderingInfo>"));
    EXPECT_EQ(j.at("log").at("level"), "fehler");
    EXPECT_EQ(j.at("winlog").at("task"), "Anmeldung");
    EXPECT_EQ(j.at("winlog").at("opcode"), "Start");
    EXPECT_EQ(j.at("winlog").at("keywords"), json::array({"K1", "K2"}));
    EXPECT_EQ(j.at("message"), "m");
}

TEST(EventEcs, TimestampIsSystemTimeInUtcAsGoWritesIt) {
    const Metadata md = default_metadata(); // received 2022-12-14T16:07:03.324Z
    auto ts = [&](const std::string& system_time) {
        return ecs_of(event_xml("<TimeCreated SystemTime='" + system_time + "'/>"), md)
            .at("@timestamp");
    };
    EXPECT_EQ(ts("2022-12-14T16:06:51.0643605Z"), "2022-12-14T16:06:51.0643605Z");
    EXPECT_EQ(ts("2022-12-14T16:06:51.1000000Z"), "2022-12-14T16:06:51.1Z");
    EXPECT_EQ(ts("2022-12-14T16:06:51.0000000Z"), "2022-12-14T16:06:51Z");
    EXPECT_EQ(ts("2022-12-14T16:06:51Z"), "2022-12-14T16:06:51Z");
    EXPECT_EQ(ts("2022-12-14T18:36:51.5+02:30"), "2022-12-14T16:06:51.5Z");
    EXPECT_EQ(ts("2022-12-31T23:00:00-01:00"), "2023-01-01T00:00:00Z");
    EXPECT_EQ(ts("2024-02-29T00:00:00.1234567891234Z"), "2024-02-29T00:00:00.123456789Z");
    EXPECT_EQ(ts("1601-01-01T00:00:00Z"), "1601-01-01T00:00:00Z"); // FILETIME 0
    EXPECT_EQ(ts("9999-12-31T23:59:59.9999999Z"), "9999-12-31T23:59:59.9999999Z");
    // Not a valid time: the time received instead.
    for (const char* bad :
         {"", "yesterday", "2022-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2022-12-14T24:00:00Z",
          "2022-12-14T16:06:51", "2022-12-14 16:06:51Z", "2022-12-14T16:06:51.Z",
          "2022-12-14T16:06:51Zjunk", "2022-12-14T16:06:51+2:00"})
        EXPECT_EQ(ts(bad), "2022-12-14T16:07:03.324Z") << bad;
    EXPECT_EQ(ecs_of(event_xml(""), md).at("@timestamp"), "2022-12-14T16:07:03.324Z");
}

TEST(EventEcs, UserDataFieldsAsWinlogbeatReadsThem) {
    const json j = ecs_of(
        event_xml("", "<UserData><EventXML xmlns='urn:x'><Param1>a</Param1><Data>b</Data><Empty/>"
                      "<Item Name='Named'>c</Item><Param1>dup</Param1><Nested><X>y</X></Nested>"
                      "<Trail>line&#13;\n</Trail></EventXML></UserData>"));
    EXPECT_EQ(j.at("winlog").at("user_data"), json({{"Param1", "a"},
                                                    {"param2", "b"},
                                                    {"Named", "c"},
                                                    {"Trail", "line"},
                                                    {"xml_name", "EventXML"}}))
        << j.dump(2);
    // UserData whose element has no children (1100, ServiceShutdown): no user_data.
    const json k = ecs_of(read_file(kData / "json" / "event_1100.xml"));
    EXPECT_FALSE(k.at("winlog").contains("user_data"));
    EXPECT_EQ(k.at("event").at("action"), "Service shutdown");
}

TEST(EventEcs, LineEndingsAreWindowsFreeAndTrailingOnesDropped) {
    const json j = ecs_of(event_xml(
        "", "<EventData><Data Name='A'>x&#13;\ny&#13;\n</Data><Data Name='B'>&#13;&#13;\n</Data>"
            "<Data Name='C'>\n</Data><Data Name='D'>keep&#13;</Data></EventData>"
            "<RenderingInfo Culture='en-US'><Message>one&#13;\n&#13;\ntwo&#13;\n</Message>"
            "</RenderingInfo>"));
    EXPECT_EQ(j.at("message"), "one\n\ntwo");
    EXPECT_EQ(j.at("winlog").at("event_data"),
              json({{"A", "x\ny"}, {"B", "\r"}, {"C", ""}, {"D", "keep\r"}}));
}

TEST(EventEcs, ParseErrorsKeepTheOriginalAndSayWhy) {
    Metadata md = default_metadata();
    // No Computer: System cannot be fed.
    std::string xml = "<Event><System><EventID>1</EventID></System><EventData><Data Name='a'>b"
                      "</Data></EventData></Event>";
    json j = ecs_of(xml, md);
    EXPECT_EQ(j.at("error").at("type"), "FailedToFeedEvent");
    EXPECT_NE(j.at("error").at("message").get<std::string>().find("System"), std::string::npos);
    EXPECT_EQ(j.at("event").at("original"), xml);
    EXPECT_EQ(j.at("@timestamp"), "2022-12-14T16:07:03.324Z");
    EXPECT_FALSE(j.contains("host"));
    // Not XML at all.
    xml = "\x01garbage<";
    j = ecs_of(xml, md);
    EXPECT_EQ(j.at("error").at("type"), "Unrecoverable");
    EXPECT_EQ(j.at("event").at("original"), "\xEF\xBF\xBDgarbage<");
    EXPECT_FALSE(j.contains("winlog"));
    // ProcessingErrorData: its code is error.code.
    j = ecs_of(event_xml("", "<ProcessingErrorData><ErrorCode>15005</ErrorCode><DataItemName>x"
                             "</DataItemName><EventPayload>00</EventPayload>"
                             "</ProcessingErrorData>"),
               md);
    EXPECT_EQ(j.at("error").at("code"), 15005);
}

// ---- every format, odd events --------------------------------------------------------------

TEST(EventFormatsOdd, EveryFormatWritesValidJsonOrOneXmlLine) {
    const std::string huge(1 << 20, 'h');
    const std::string odd[] = {
        read_file(kData / "json" / "event_111.xml"), // no EventData
        event_xml("<Security UserID='S-1-5-18'/>",
                  "<UserData><E xmlns='u'><A>1</A><Data>2</Data></E></UserData>"),
        event_xml("", "<EventData><Binary>00FF10</Binary></EventData>"),
        event_xml("", "<BinaryEventData>DEADBEEF</BinaryEventData>"),
        event_xml("", "<DebugData><Component>c</Component><Message>m</Message></DebugData>"),
        "<Event><System><EventID>4624</EventID><Channel>Security</Channel></System></Event>",
        event_xml("<Channel>Sécurité</Channel>",
                  "<EventData><Data Name='Nom'>café 日本 😀</Data><Data>Ünïcødé</Data></EventData>"
                  "<RenderingInfo Culture='fr-FR'><Message>Événement</Message><Level>"
                  "Informations</Level></RenderingInfo>"),
        event_xml("", std::string("<EventData><Data Name='ctl'>a\x01"
                                  "b\x1f"
                                  "c&#1;d\te\"f\\g</Data></EventData>")),
        event_xml("", "<EventData><Data Name='big'>" + huge + "</Data><Data>" + huge +
                          "</Data></EventData><RenderingInfo Culture='en-US'><Message>" + huge +
                          "</Message></RenderingInfo>"),
        event_xml("", std::string("<EventData><Data Name='bad'>\xc3\x28\xff</Data></EventData>")),
        event_xml("<TimeCreated SystemTime='2022-12-14T16:06:51.0643605Z'/>",
                  "<RenderingInfo Culture='en-US'><Message>cut"), // truncated
        "",
        "not xml",
        "<Event>",
    };
    const Metadata md = default_metadata();
    for (const auto& xml : odd) {
        SCOPED_TRACE(xml.substr(0, 120));
        auto parsed = ev::parse(xml);
        for (std::size_t i = 0; i < ev::kFormatCount; ++i) {
            const auto f = static_cast<Format>(i);
            SCOPED_TRACE(std::string(ev::to_string(f)));
            std::string out;
            ev::format_event(f, xml, parsed, md, out);
            EXPECT_EQ(out.find('\n'), std::string::npos);
            if (f == Format::Raw) continue;
            const json j = parse_json(out);
            ASSERT_TRUE(j.is_object());
            if (f == Format::Ecs) {
                EXPECT_TRUE(j.contains("@timestamp"));
                EXPECT_EQ(j.contains("error"), parsed.error.has_value());
            }
        }
    }

    // What is kept of the odd values.
    json j = ecs_of(odd[6], md);
    EXPECT_EQ(j.at("winlog").at("event_data").at("Nom"), "café 日本 😀");
    EXPECT_EQ(j.at("winlog").at("event_data").at("param2"), "Ünïcødé");
    EXPECT_EQ(j.at("winlog").at("channel"), "Sécurité");
    EXPECT_EQ(j.at("log").at("level"), "informations");
    j = ecs_of(odd[7], md);
    EXPECT_EQ(j.at("winlog").at("event_data").at("ctl"), "a\xEF\xBF\xBD"
                                                         "b\xEF\xBF\xBD"
                                                         "c\xEF\xBF\xBD"
                                                         "d\te\"f\\g");
    j = ecs_of(odd[8], md);
    EXPECT_EQ(j.at("winlog").at("event_data").at("big").get<std::string>().size(), huge.size());
    EXPECT_EQ(j.at("winlog").at("event_data").at("param2").get<std::string>().size(), huge.size());
    EXPECT_EQ(j.at("message").get<std::string>().size(), huge.size());
    j = ecs_of(odd[2], md);
    EXPECT_EQ(j.at("winlog").at("event_data").at("Binary"), "00FF10");
    j = ecs_of(odd[1], md);
    EXPECT_EQ(j.at("winlog").at("user").at("identifier"), "S-1-5-18");
    EXPECT_EQ(j.at("winlog").at("user_data"),
              json({{"A", "1"}, {"param2", "2"}, {"xml_name", "E"}}));
    j = ecs_of(odd[5], md); // no Computer
    EXPECT_EQ(j.at("error").at("type"), "FailedToFeedEvent");
    j = ecs_of(odd[10], md); // RenderingInfo cut: recovered
    EXPECT_EQ(j.at("error").at("type"), "RawContentRecovered");
    EXPECT_EQ(j.at("@timestamp"), "2022-12-14T16:06:51.0643605Z");
    EXPECT_EQ(j.at("winlog").at("event_id"), "7");
}

// ---- the batch formatter -------------------------------------------------------------------

TEST(EventBatchFormatter, EachFormatIsWhatItsFormatterWritesOneLinePerEvent) {
    const Metadata md = default_metadata();
    std::vector<std::string> xmls;
    for (const auto& f : all_fixtures())
        xmls.push_back(read_file(kData / (f + ".xml")));
    xmls.push_back("not xml");

    const Format all[] = {Format::Raw, Format::Json, Format::RawJson, Format::Nxlog, Format::Ecs};
    ev::BatchFormatter batch(all);
    batch.reserve(1000, xmls.size());
    for (int round = 0; round < 2; ++round) { // the second round reuses the buffers
        batch.clear();
        for (const auto& xml : xmls)
            batch.add(xml, md);
        for (Format f : all) {
            SCOPED_TRACE(std::string(ev::to_string(f)));
            std::string expected;
            for (const auto& xml : xmls) {
                expected += formatted(f, xml, md);
                expected += '\n';
            }
            EXPECT_EQ(batch.lines(f), expected);
        }
    }

    const Format some[] = {Format::RawJson, Format::Ecs};
    ev::BatchFormatter two(some);
    two.add(xmls[0], md);
    EXPECT_TRUE(two.lines(Format::Json).empty());
    EXPECT_TRUE(two.lines(Format::Raw).empty());
    EXPECT_EQ(two.lines(Format::RawJson), formatted(Format::RawJson, xmls[0], md) + "\n");
    EXPECT_EQ(two.lines(Format::Ecs), formatted(Format::Ecs, xmls[0], md) + "\n");
}

} // namespace

// The JSON escaper's word-at-a-time steps (16 bytes with SSE2, then the last 1 to 15 bytes as
// overlapping words) against a byte-at-a-time reference: every special byte at every position of
// strings up to 40 bytes, so each lands in the vector block and in each kind of tail in turn.
TEST(EventJsonEscaping, EveryPositionOfEverySpecialByteMatchesTheByteLoop) {
    auto reference = [](std::string_view s) {
        return wec::event::testing::reference_json_string(s);
    };
    const std::string specials[] = {
        "\"",   "\\",   "\n",       "\r",           "\t",   std::string(1, '\0'),
        "\x01", "\x1F", "\xC3\xA9", "\xE2\x82\xAC", "\xFF", "\xC3"};
    const std::string plain = "a !#~\x7F\x20\x21\x5B\x5D"; // the neighbours of each threshold
    int compared = 0;
    for (std::size_t len = 0; len <= 40; ++len) {
        std::string base;
        for (std::size_t i = 0; i < len; ++i)
            base += plain[i % plain.size()];
        for (std::size_t at = 0; at <= len; ++at) {
            for (const auto& sp : specials) {
                std::string s = base;
                s.insert(at, sp);
                std::string out;
                wec::event::detail::append_string(out, s);
                ASSERT_EQ(out, reference(s)) << "length " << len << ", at " << at;
                ++compared;
            }
        }
    }
    EXPECT_EQ(compared, 12 * (41 * 42 / 2));
}

// The same at every alignment of the input, each string the last bytes of an allocation of its
// own size (so that a read past its end is one past the heap block: ASan builds report it),
// with a special byte at every position and a second one after it.
TEST(EventJsonEscaping, EveryAlignmentAndLengthAroundTheVectorWidthMatchesTheByteLoop) {
    int compared = 0;
    for (std::size_t len = 1; len <= 48; ++len) {
        for (std::size_t align = 0; align < 16; ++align) {
            for (std::size_t at = 0; at < len; ++at) {
                for (const char* sp : {"\n", "\"", "\xC3\xA9", "\x01"}) {
                    std::string s(len, 'a');
                    for (std::size_t i = 0; i < len; ++i)
                        s[i] = static_cast<char>('a' + (i + align) % 26);
                    const std::string_view special(sp);
                    const std::size_t n = std::min(special.size(), len - at);
                    s.replace(at, n, special.substr(0, n));
                    if (at + 5 < len) s[at + 5] = '\\';
                    auto block = std::make_unique<char[]>(align + s.size());
                    std::memcpy(block.get() + align, s.data(), s.size());
                    const std::string_view in(block.get() + align, s.size());
                    std::string out = "x";
                    wec::event::detail::append_string(out, in);
                    ASSERT_EQ(out, "x" + wec::event::testing::reference_json_string(s))
                        << "length " << len << ", align " << align << ", at " << at;
                    ++compared;
                }
            }
        }
    }
    EXPECT_EQ(compared, 4 * 16 * (48 * 49 / 2));
}

#if defined(__SSE2__)
// copy_tail, the escaper's last 1 to 15 bytes of a run: for every length, every special byte at
// every position (alone and before a second one), it copies exactly the rem bytes (the bytes
// around the output are untouched), reads none past them (the input ends its heap block) and
// returns the position of the first special byte, as a byte loop finds it.
TEST(EventJsonEscaping, TailCopiesItsBytesAndFindsTheFirstSpecialAtEveryPosition) {
    const unsigned char specials[] = {'"', '\\', '\n', '\r', '\t', 0, 0x1F, 0x80, 0xC3, 0xFF};
    int compared = 0;
    for (std::size_t rem = 1; rem <= 15; ++rem) {
        for (std::size_t at = 0; at <= rem; ++at) { // at == rem: none
            for (const unsigned char sp : specials) {
                for (const bool second : {false, true}) {
                    std::string bytes;
                    for (std::size_t i = 0; i < rem; ++i)
                        bytes += static_cast<char>(i % 2 == 0 ? 'A' + i : 0x7F - i); // plain
                    if (at < rem) bytes[at] = static_cast<char>(sp);
                    if (second && at + 1 < rem) bytes[rem - 1] = '"';
                    const std::vector<unsigned char> in(bytes.begin(), bytes.end());
                    std::size_t expected = 0;
                    auto is_special = [](unsigned char c) {
                        return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
                    };
                    while (expected < rem && !is_special(in[expected]))
                        ++expected;
                    char out[40];
                    std::memset(out, '#', sizeof out);
                    const std::size_t got = wec::event::detail::copy_tail(out + 8, in.data(), rem);
                    ASSERT_EQ(expected, at); // the filler is plain
                    ASSERT_EQ(got, expected) << "rem " << rem << ", at " << at;
                    ASSERT_EQ(std::memcmp(out + 8, in.data(), rem), 0) << "rem " << rem;
                    ASSERT_EQ(std::string(out, 8), std::string(8, '#'));
                    ASSERT_EQ(std::string(out + 8 + rem, sizeof out - 8 - rem),
                              std::string(sizeof out - 8 - rem, '#'));
                    ++compared;
                }
            }
        }
    }
    EXPECT_EQ(compared, 2 * 10 * (15 * 16 / 2 + 15));
}
#endif

namespace {

// Deterministic bytes for the escaping tests: mostly plain ASCII, with every kind of special
// byte and UTF-8 sequence (valid, truncated, overlong, stray continuation bytes).
class EscapeInput {
public:
    explicit EscapeInput(std::uint64_t seed) : state_(seed) {}
    std::string next(std::size_t len) {
        static const std::string pieces[] = {"\"",
                                             "\\",
                                             "\n",
                                             "\r\n",
                                             "\r",
                                             "\t",
                                             std::string(1, '\0'),
                                             "\x01",
                                             "\x1F",
                                             "\xC3\xA9",
                                             "\xE2\x82\xAC",
                                             "\xF0\x9F\x98\x80",
                                             "\xFF",
                                             "\xC3",
                                             "\x80",
                                             "\xE2\x82",
                                             "\xC0\xAF",
                                             "\xED\xA0\x80",
                                             "\x7F",
                                             "<&>'"};
        std::string s;
        while (s.size() < len) {
            const std::uint64_t r = rand();
            if (r % 8 != 0)
                s += static_cast<char>(' ' + (r >> 8) % 95);
            else
                s += pieces[(r >> 8) % std::size(pieces)];
        }
        return s;
    }
    std::uint64_t rand() {
        state_ ^= state_ << 13;
        state_ ^= state_ >> 7;
        state_ ^= state_ << 17;
        return state_;
    }

private:
    std::uint64_t state_;
};

} // namespace

TEST(EventJsonEscaping, RandomStringsMatchTheByteLoop) {
    EscapeInput input(0x9E3779B97F4A7C15ULL);
    std::string out = "kept";
    for (int i = 0; i < 20000; ++i) {
        const std::string s = input.next(input.rand() % 300);
        const std::size_t before = out.size();
        wec::event::detail::append_string(out, s);
        ASSERT_EQ(std::string_view(out).substr(before),
                  wec::event::testing::reference_json_string(s))
            << "string " << i;
    }
    EXPECT_EQ(out.substr(0, 5), "kept\"");
}

// Strings longer than the escaper's slice (16 KB) are escaped slice by slice: a sequence or an
// escape across a slice's end must come out as in one go.
TEST(EventJsonEscaping, LongStringsAcrossSlicesMatchTheByteLoop) {
    const std::string specials[] = {
        "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xC3\xA9", "\xE2\x82", "\xFF", "\r\n",
        "\"",           "\x80\x80"};
    int compared = 0;
    for (std::size_t slices : {1, 3}) {
        for (std::size_t at = 16384 * slices - 6; at <= 16384 * slices + 2; ++at) {
            for (const auto& sp : specials) {
                std::string s(16384 * slices + 40, 'x');
                s.replace(at, sp.size(), sp);
                std::string out;
                wec::event::detail::append_string(out, s);
                ASSERT_EQ(out, wec::event::testing::reference_json_string(s))
                    << "at " << at << ", slices " << slices;
                ++compared;
            }
        }
    }
    EXPECT_EQ(compared, 2 * 9 * 8);
}

namespace {

// What the two Writer tests below write: escaped keys, CR LF as LF, a number, a literal key.
void write_sample(wec::event::detail::Writer& w, const std::string& key, const std::string& value,
                  int i) {
    w.begin_object();
    w.field(key, value);
    w.field_lf(key, value);
    w.num_field("n", static_cast<std::uint64_t>(i));
    w.field("literal", "v");
    w.end_object();
}

} // namespace

// The Writer: escaped keys, CR LF as LF (field_lf, also over 16 KB), numbers and literal keys,
// appended after what `out` held, with nothing left past its end.
TEST(EventJsonWriter, WritesWhatTheByteLoopWritesAfterWhatOutHeld) {
    EscapeInput input(42);
    for (int i = 0; i < 2000; ++i) {
        const std::string key = input.next(input.rand() % 40);
        const std::string value = input.next(i % 100 == 0 ? 40000 : input.rand() % 400);
        std::string out = "line\n";
        out.reserve(out.size() + i % 7); // any capacity
        {
            wec::event::detail::Writer w(out);
            write_sample(w, key, value, i);
        }
        using wec::event::testing::reference_json_string;
        const std::string expected =
            "line\n{" + reference_json_string(key) + ":" + reference_json_string(value) + "," +
            reference_json_string(key) + ":" + reference_json_string(value, /*crlf_as_lf=*/true) +
            ",\"n\":" + std::to_string(i) + ",\"literal\":\"v\"}";
        ASSERT_EQ(out, expected) << "case " << i;
    }
}

// The same Writer into a FormatBuffer (BatchFormatter's buffer: grown without zero-fill) writes
// what it writes into a std::string, after whatever the buffer held and whatever its capacity.
TEST(EventJsonWriter, IntoAFormatBufferWritesWhatItWritesIntoAString) {
    EscapeInput input(7);
    wec::event::FormatBuffer buf;
    std::string expected;
    for (int i = 0; i < 2000; ++i) {
        const std::string key = input.next(input.rand() % 40);
        const std::string value = input.next(i % 100 == 0 ? 40000 : input.rand() % 400);
        if (i % 50 == 0) { // sometimes a fresh buffer, with or without capacity
            buf = wec::event::FormatBuffer();
            expected.clear();
            buf.reserve(static_cast<std::size_t>(i % 3) * 100);
        }
        {
            wec::event::detail::Writer w(buf);
            write_sample(w, key, value, i);
        }
        {
            wec::event::detail::Writer w(expected);
            write_sample(w, key, value, i);
        }
        buf.push_back('\n');
        expected += '\n';
        ASSERT_EQ(buf.view(), expected) << "case " << i;
        ASSERT_LE(buf.size(), buf.capacity());
    }
}

TEST(EventFormatBuffer, AppendsAndKeepsItsBytesAsItGrows) {
    wec::event::FormatBuffer b;
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.view(), "");
    std::string expected;
    for (int i = 0; i < 5000; ++i) {
        const std::string piece = std::to_string(i) + ",";
        b.append(piece);
        b.push_back(';');
        expected += piece + ';';
    }
    EXPECT_EQ(b.view(), expected);
    const std::size_t cap = b.capacity();
    b.clear();
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.capacity(), cap); // kept for the next batch
    b.append("abc", 3);
    b.reserve(cap * 4);
    EXPECT_EQ(b.view(), "abc");
    EXPECT_GE(b.capacity(), cap * 4);
    wec::event::FormatBuffer moved = std::move(b);
    EXPECT_EQ(moved.view(), "abc");
}

#include "event/event.hpp"
#include "event_fixtures.hpp"

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

namespace {

using nlohmann::json;
using wec::event::Metadata;
using namespace wec::event::testing;
namespace fs = std::filesystem;

json to_json(std::string_view xml, const Metadata& md, bool nxlog = false) {
    auto ev = wec::event::parse(xml);
    std::string out;
    if (nxlog)
        wec::event::format_nxlog(ev, md, out);
    else
        wec::event::format_json(ev, md, out);
    EXPECT_TRUE(json::accept(out)) << out;
    return json::parse(out);
}

void compare_fixture(const std::string& dir, const std::string& name) {
    std::string xml = read_file(kData / dir / (name + ".xml"));
    json expected = json::parse(read_file(kData / dir / (name + ".expected.json")));
    json actual = to_json(xml, metadata_from(expected), dir == "nxlog");
    EXPECT_EQ(actual, expected) << "diff (expected -> actual): "
                                << json::diff(expected, actual).dump(2);
}

class JsonFixture : public ::testing::TestWithParam<std::string> {};
TEST_P(JsonFixture, MatchesOpenWEC) {
    compare_fixture("json", GetParam());
}
INSTANTIATE_TEST_SUITE_P(Event, JsonFixture, ::testing::ValuesIn(fixtures("json")),
                         [](const auto& p) { return p.param; });

class NxlogFixture : public ::testing::TestWithParam<std::string> {};
TEST_P(NxlogFixture, MatchesOpenWEC) {
    compare_fixture("nxlog", GetParam());
}
INSTANTIATE_TEST_SUITE_P(Event, NxlogFixture, ::testing::ValuesIn(fixtures("nxlog")),
                         [](const auto& p) { return p.param; });

TEST(EventFixtures, AllPresent) {
    EXPECT_EQ(fixtures("json").size(), 6u);
    EXPECT_EQ(fixtures("nxlog").size(), 7u);
}

// Raw output is one line and means the same XML: re-parsing it gives the same JSON.
class RawFixture : public ::testing::TestWithParam<std::string> {};
TEST_P(RawFixture, OneLineAndLossless) {
    std::string xml = read_file(kData / "json" / (GetParam() + ".xml"));
    std::string raw;
    wec::event::format_raw(xml, raw);
    EXPECT_EQ(raw.find('\n'), std::string::npos);
    EXPECT_EQ(raw.find('\r'), std::string::npos);
    Metadata md = default_metadata();
    EXPECT_EQ(to_json(raw, md), to_json(xml, md));
}
INSTANTIATE_TEST_SUITE_P(Event, RawFixture, ::testing::ValuesIn(fixtures("json")),
                         [](const auto& p) { return p.param; });

TEST(EventRaw, SingleLineInputIsCopiedVerbatim) {
    std::string xml = read_file(kData / "json" / "event_1100.xml");
    std::string out = "prefix:";
    wec::event::format_raw(xml, out);
    EXPECT_EQ(out, "prefix:" + xml);
}

TEST(EventRaw, LineBreaksInMarkupTextAndCData) {
    std::string xml = "<?xml version='1.0'?>\r\n<Event\n a='x\ny'><Data>l1\r\nl2\rl3</Data>"
                      "<Data><![CDATA[c1\nc2]]></Data><!-- c\n --></Event>\n";
    std::string raw;
    wec::event::format_raw(xml, raw);
    EXPECT_EQ(raw, "<?xml version='1.0'?><Event  a='x y'><Data>l1&#10;l2&#10;l3</Data>"
                   "<Data><![CDATA[c1]]>&#10;<![CDATA[c2]]></Data><!-- c  --></Event>");
}

namespace {

// format_raw as first written: one byte at a time through the state machine. The optimized one
// jumps between the characters that matter and must give exactly the same output.
std::string reference_format_raw(std::string_view xml) {
    std::string out;
    enum class St { Text, Tag, Quote, Comment, CData, PI, Doctype };
    St st = St::Text;
    char quote = 0;
    int depth = 0, bracket = 0;
    bool self_closing_candidate = false, end_tag = false;
    const std::size_t n = xml.size();
    for (std::size_t i = 0; i < n; ++i) {
        const char c = xml[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i + 1 < n && xml[i + 1] == '\n') ++i;
            if (st == St::Text)
                out += depth > 0 ? "&#10;" : "";
            else if (st == St::CData)
                out += "]]>&#10;<![CDATA[";
            else
                out += ' ';
            continue;
        }
        out += c;
        const std::string_view rest = xml.substr(i);
        switch (st) {
        case St::Text:
            if (c != '<') break;
            if (rest.starts_with("<!--")) {
                st = St::Comment;
            } else if (rest.starts_with("<![CDATA[")) {
                st = St::CData;
                out += rest.substr(1, 8);
                i += 8;
            } else if (rest.starts_with("<?")) {
                st = St::PI;
            } else if (rest.starts_with("<!")) {
                st = St::Doctype;
                bracket = 0;
            } else {
                st = St::Tag;
                end_tag = rest.starts_with("</");
                self_closing_candidate = false;
            }
            break;
        case St::Tag:
            if (c == '"' || c == '\'') {
                quote = c;
                st = St::Quote;
                self_closing_candidate = false;
            } else if (c == '>') {
                if (end_tag)
                    depth = depth > 0 ? depth - 1 : 0;
                else if (!self_closing_candidate)
                    ++depth;
                st = St::Text;
            } else if (c != ' ' && c != '\t') {
                self_closing_candidate = c == '/';
            }
            break;
        case St::Quote:
            if (c == quote) st = St::Tag;
            break;
        case St::Comment:
            if (c == '>' && i >= 2 && xml[i - 1] == '-' && xml[i - 2] == '-') st = St::Text;
            break;
        case St::CData:
            if (c == '>' && i >= 2 && xml[i - 1] == ']' && xml[i - 2] == ']') st = St::Text;
            break;
        case St::PI:
            if (c == '>' && xml[i - 1] == '?') st = St::Text;
            break;
        case St::Doctype:
            if (c == '[')
                ++bracket;
            else if (c == ']')
                --bracket;
            else if (c == '>' && bracket <= 0)
                st = St::Text;
            break;
        }
    }
    return out;
}

std::string format_raw(std::string_view xml) {
    std::string out;
    wec::event::format_raw(xml, out);
    return out;
}

} // namespace

TEST(EventRaw, SelfClosingAndDepthAcrossLineBreaks) {
    // Whitespace and line breaks between '/' and '>', '/' inside an attribute value, end tags.
    EXPECT_EQ(format_raw("<a><b/\r\n>x\ny</a>\n"), "<a><b/ >x&#10;y</a>");
    EXPECT_EQ(format_raw("<a><b x='/'>x\ny</b></a>"), "<a><b x='/'>x&#10;y</b></a>");
    EXPECT_EQ(format_raw("<b x='1' / \t>x\n<c\n/>"), "<b x='1' / \t>x<c />");
    EXPECT_EQ(format_raw("<a\n>\n</a\n>\n"), "<a >&#10;</a >");
    EXPECT_EQ(format_raw("<!---->\n<?p?>\n<a>\n<![CDATA[]]>\n</a>"),
              "<!----><?p?><a>&#10;<![CDATA[]]>&#10;</a>");
}

// Fixtures with CRLF line breaks and with line breaks inserted at every position: same output as
// the byte-at-a-time reference.
TEST(EventRaw, MatchesReferenceOnFixtures) {
    for (const char* dir : {"json", "nxlog"}) {
        for (const auto& name : fixtures(dir)) {
            std::string xml = read_file(kData / dir / (name + ".xml"));
            EXPECT_EQ(format_raw(xml), reference_format_raw(xml)) << name;
            std::string crlf;
            for (char c : xml)
                crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
            EXPECT_EQ(format_raw(crlf), reference_format_raw(crlf)) << name;
            if (xml.size() > 1500) continue;
            for (std::size_t at = 0; at <= xml.size(); ++at) {
                std::string with_break = xml;
                with_break.insert(at, at % 2 ? "\n" : "\r\n");
                ASSERT_EQ(format_raw(with_break), reference_format_raw(with_break))
                    << name << " break at " << at;
            }
        }
    }
}

// Random sequences of the tokens the state machine reacts to, with text runs of all lengths.
TEST(EventRaw, MatchesReferenceOnRandomMarkup) {
    const std::vector<std::string> tokens = {"<",
                                             ">",
                                             "</",
                                             "/",
                                             "/>",
                                             "'",
                                             "\"",
                                             "<!--",
                                             "-->",
                                             "--",
                                             "<![CDATA[",
                                             "]]>",
                                             "]",
                                             "[",
                                             "<?",
                                             "?>",
                                             "?",
                                             "<!",
                                             "<!DOCTYPE d [",
                                             " ",
                                             "\t",
                                             "\r",
                                             "\n",
                                             "\r\n",
                                             "a",
                                             "bcdefghijklmnopqrstuvwxyz0123456789",
                                             "=",
                                             "\xC3\xA9"};
    std::mt19937 rng(7);
    for (int iter = 0; iter < 20000; ++iter) {
        std::string xml;
        const auto count = rng() % 60;
        for (unsigned k = 0; k < count; ++k)
            xml += tokens[rng() % tokens.size()];
        ASSERT_EQ(format_raw(xml), reference_format_raw(xml)) << xml;
    }
}

TEST(EventParse, TruncatedRenderingInfoIsRecovered) {
    std::string xml = read_file(kData / "json" / "event_4688.xml");
    std::size_t cut = xml.find("Creator Process ID");
    ASSERT_NE(cut, std::string::npos);
    std::string truncated = xml.substr(0, cut);

    auto ev = wec::event::parse(truncated);
    ASSERT_TRUE(ev.error);
    EXPECT_EQ(ev.error->type, wec::event::ErrorType::RawContentRecovered);
    EXPECT_FALSE(ev.rendering_info);

    json j = to_json(truncated, default_metadata());
    ASSERT_TRUE(j.contains("System"));
    EXPECT_EQ(j["System"]["EventID"], 4688);
    EXPECT_EQ(j["EventData"]["SubjectUserName"], "WIN10$");
    EXPECT_FALSE(j.contains("RenderingInfo"));
    const json& err = j["OpenWEC"]["Error"];
    EXPECT_EQ(err["Type"], "RawContentRecovered");
    EXPECT_EQ(err["OriginalContent"], truncated);
    EXPECT_NE(err["Message"].get<std::string>().find("but Raw content could be recovered"),
              std::string::npos);
}

TEST(EventParse, TruncatedBeforeRenderingInfoFailsToRecover) {
    std::string xml = read_file(kData / "json" / "event_4688.xml");
    // Break the XML in EventData, keep a RenderingInfo after it.
    std::string broken = xml;
    broken.replace(broken.find("</EventData>"), 12, "</Oops>");
    json j = to_json(broken, default_metadata());
    EXPECT_FALSE(j.contains("System"));
    EXPECT_FALSE(j.contains("EventData"));
    EXPECT_EQ(j["OpenWEC"]["Error"]["Type"], "FailedToRecoverRawContent");
    EXPECT_EQ(j["OpenWEC"]["Error"]["OriginalContent"], broken);
}

TEST(EventParse, NonXmlKeepsOnlyTheError) {
    const std::string garbage = "this is \x01 not XML at all \xff";
    json j = to_json(garbage, default_metadata());
    EXPECT_EQ(j.size(), 1u) << j.dump();
    const json& err = j["OpenWEC"]["Error"];
    EXPECT_EQ(err["Type"], "Unrecoverable");
    EXPECT_NE(err["Message"].get<std::string>().find("Failed to parse event XML: "),
              std::string::npos);
    // Invalid bytes are replaced in the JSON rendering of the original content.
    EXPECT_EQ(err["OriginalContent"], "this is \xEF\xBF\xBD not XML at all \xEF\xBF\xBD");

    std::string raw;
    wec::event::format_raw(garbage, raw);
    EXPECT_EQ(raw, garbage); // raw is the text as received
}

TEST(EventParse, EmptyInput) {
    json j = to_json("", default_metadata());
    EXPECT_EQ(j["OpenWEC"]["Error"]["Type"], "Unrecoverable");
}

TEST(EventParse, MissingComputerFailsToFeed) {
    std::string xml = "<Event><System><EventID>4</EventID></System><EventData><Data>x</Data>"
                      "</EventData></Event>";
    json j = to_json(xml, default_metadata());
    EXPECT_FALSE(j.contains("System"));
    EXPECT_FALSE(j.contains("EventData")); // feeding stops at the failing node
    EXPECT_EQ(j["OpenWEC"]["Error"]["Type"], "FailedToFeedEvent");
    EXPECT_EQ(j["OpenWEC"]["Error"]["Message"],
              "Could not feed event from document: Parsing failure in System");
}

TEST(EventParse, ForbiddenCharactersAreReplacedNotFatal) {
    std::string xml = read_file(kData / "json" / "event_5719.xml");
    std::string bad = xml;
    bad.replace(bad.find("WINDOMAIN</Data>"), 9,
                "WIN\x05"
                "DOM&#5;AIN");
    bad.replace(bad.find("%%1311"), 6,
                "<![CDATA[a\x05"
                "b]]>");
    auto ev = wec::event::parse(bad);
    EXPECT_FALSE(ev.error) << ev.error->message;
    json j = to_json(bad, default_metadata());
    EXPECT_EQ(j["EventData"]["Data"][0], "WIN\xEF\xBF\xBD"
                                         "DOM\xEF\xBF\xBD"
                                         "AIN");
    EXPECT_EQ(j["EventData"]["Data"][1], "a\xEF\xBF\xBD"
                                         "b");
    EXPECT_EQ(j["RenderingInfo"]["Level"], "Error");
}

TEST(EventParse, InvalidUtf8IsReplaced) {
    std::string xml = "<Event><System><EventID>1</EventID><Computer>c\xC3\x28</Computer></System>"
                      "<EventData><Data Name='n\xED\xA0\x80'>\xF0\x9F\x98\x80</Data></EventData>"
                      "</Event>";
    json j = to_json(xml, default_metadata());
    EXPECT_EQ(j["System"]["Computer"], "c\xEF\xBF\xBD(");
    EXPECT_EQ(j["EventData"]["n\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"], "\xF0\x9F\x98\x80");
}

// JSON strings are scanned 16 bytes at a time: every kind of character that needs work, at every
// position around those blocks, must come out as the byte-at-a-time rules say.
TEST(EventJson, EscapesAtEveryPositionAroundBlocks) {
    struct Special {
        std::string xml;      // as written in the event XML
        std::string expected; // the JSON string value once parsed back
    };
    const std::vector<Special> specials = {
        {"\"", "\""},
        {"\\", "\\"},
        {"&#10;", "\n"},
        {"\t", "\t"},
        {"&#13;", "\r"},
        {"\x05", "\xEF\xBF\xBD"},
        {"\xC3\xA9", "\xC3\xA9"},
        {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},
        {"\xFF", "\xEF\xBF\xBD"},
        {"\x7F", "\x7F"},
    };
    for (const auto& sp : specials) {
        for (std::size_t at = 0; at <= 40; ++at) {
            for (std::size_t len :
                 {std::size_t{15}, std::size_t{16}, std::size_t{17}, std::size_t{47}}) {
                if (at > len) continue;
                const std::string before(at, 'a'), after(len - at, 'b');
                std::string xml = "<Event><System><EventID>1</EventID><Computer>c</Computer>"
                                  "</System><EventData><Data Name='x'>" +
                                  before + sp.xml + after + "</Data></EventData></Event>";
                json j = to_json(xml, default_metadata());
                ASSERT_EQ(j["EventData"]["x"], before + sp.expected + after)
                    << "special " << json(sp.expected).dump() << " at " << at << " len " << len;
            }
        }
    }
}

// After a collector restart the first batch may carry event 111 of the EventForwarder
// (SubscriptionBookmarkEvent with a backward BookmarkList): an ordinary event, formatted like
// OpenWEC's fixture, its bookmark list neither an error nor a field.
TEST(EventParse, SubscriptionBookmarkEventWithBackwardBookmarkList) {
    const std::string fixture = read_file(kData / "json" / "event_111.xml");
    std::string xml = fixture;
    const std::string list =
        "<SubscriptionId>{8B18D83D-2964-4F35-AC3B-6F4E6FFA727B}</SubscriptionId>"
        "<BookmarkList Direction='backward'><Bookmark Channel='Security' RecordId='4711' "
        "IsCurrent='true'/></BookmarkList>";
    const auto at = xml.find("<SubscriptionId></SubscriptionId>");
    ASSERT_NE(at, std::string::npos);
    xml.replace(at, std::string("<SubscriptionId></SubscriptionId>").size(), list);
    auto ev = wec::event::parse(xml);
    EXPECT_FALSE(ev.error) << ev.error->message;
    EXPECT_EQ(to_json(xml, default_metadata()), to_json(fixture, default_metadata()));
    EXPECT_EQ(to_json(xml, default_metadata())["System"]["EventID"], 111);
}

TEST(EventParse, NamedDataLastValueWinsAndTypesFollowOpenWEC) {
    std::string xml =
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        "<Provider Name='P'/><EventID Qualifiers='x'>7</EventID><Version>300</Version>"
        "<Level>+2</Level><Task> 1</Task><Keywords>0x1</Keywords>"
        "<TimeCreated SystemTime='t'/><EventRecordID>18446744073709551615</EventRecordID>"
        "<Correlation ActivityID='{a}' RelatedActivityID='{b}'/>"
        "<Execution ProcessID='1' ThreadID='2' ProcessorID='3' SessionID='4' KernelTime='5' "
        "UserTime='6' ProcessorTime='7'/><Channel>C</Channel><Computer>H</Computer>"
        "<Container>K</Container><Security UserID='S-1-5-18'/></System>"
        "<EventData><Data Name='a'>1</Data><Data Name='a'>2</Data><Data> </Data><Data/>"
        "<Binary>00</Binary></EventData></Event>";
    json j = to_json(xml, default_metadata());
    json sys = j["System"];
    EXPECT_FALSE(sys.contains("EventIDQualifiers"));
    EXPECT_FALSE(sys.contains("Version")); // 300 does not fit u8
    EXPECT_EQ(sys["Level"], 2);
    EXPECT_FALSE(sys.contains("Task")); // leading space: invalid
    EXPECT_EQ(sys["EventRecordID"], 18446744073709551615ull);
    EXPECT_EQ(sys["Correlation"], json::parse(R"({"ActivityID":"{a}","RelatedActivityID":"{b}"})"));
    EXPECT_EQ(sys["Execution"], json::parse(R"({"ProcessID":1,"ThreadID":2,"ProcessorID":3,
        "SessionID":4,"KernelTime":5,"UserTime":6,"ProcessorTime":7})"));
    EXPECT_EQ(sys["Container"], "K");
    EXPECT_EQ(sys["UserID"], "S-1-5-18");
    EXPECT_EQ(j["EventData"], json::parse(R"({"a":"2","Data":[" "],"Binary":"00"})"));
}

TEST(EventParse, OtherDataKinds) {
    auto md = default_metadata();
    std::string sys = "<System><EventID>1</EventID><Computer>c</Computer></System>";
    json j = to_json("<Event>" + sys + "<BinaryEventData>0A0B</BinaryEventData></Event>", md);
    EXPECT_EQ(j["BinaryEventData"], "0A0B");
    j = to_json("<Event>" + sys +
                    "<DebugData><SequenceNumber>5</SequenceNumber><Component>X</Component>"
                    "<Function>f</Function></DebugData></Event>",
                md);
    EXPECT_EQ(j["DebugData"],
              json::parse(R"({"SequenceNumber":5,"Component":"X","Function":"f","Message":""})"));
    j = to_json("<Event>" + sys +
                    "<ProcessingErrorData><ErrorCode>15005</ErrorCode><DataItemName>D"
                    "</DataItemName><EventPayload>AB</EventPayload></ProcessingErrorData></Event>",
                md);
    EXPECT_EQ(j["ProcessingErrorData"],
              json::parse(R"({"ErrorCode":15005,"DataItemName":"D","EventPayload":"AB"})"));
    j = to_json("<Event>" + sys +
                    "<ProcessingErrorData><ErrorCode>x</ErrorCode></ProcessingErrorData></Event>",
                md);
    EXPECT_EQ(j["OpenWEC"]["Error"]["Type"], "FailedToFeedEvent");
    EXPECT_TRUE(j.contains("System"));
    j = to_json("<Event>" + sys + "<UserData><A x=\"1\">&amp;<UserData/></A>\n</UserData></Event>",
                md);
    EXPECT_EQ(j["UserData"], "<A x=\"1\">&amp;<UserData/></A>\n");

    json n = to_json("<Event>" + sys +
                         "<DebugData><Component>X</Component></DebugData>"
                         "<RenderingInfo Culture='en'><Message>m</Message></RenderingInfo></Event>",
                     md, true);
    EXPECT_EQ(n["Component"], "X");
    EXPECT_EQ(n["Message"], "m"); // the rendered message comes last and wins
}

TEST(EventParse, ReuseGivesSameResult) {
    wec::event::Event ev;
    auto md = default_metadata();
    for (int round = 0; round < 2; ++round) {
        for (const auto& name : fixtures("json")) {
            std::string xml = read_file(kData / "json" / (name + ".xml"));
            wec::event::parse(xml, ev);
            std::string out;
            wec::event::format_json(ev, md, out);
            EXPECT_EQ(json::parse(out), to_json(xml, md)) << name;
        }
    }
}

TEST(EventTime, Rfc3339LikeChrono) {
    using namespace std::chrono;
    auto base = sys_days(year(2022) / 12 / 14) + hours(16) + minutes(7) + seconds(3);
    auto fmt = [](system_clock::time_point tp) {
        std::string s;
        wec::event::format_time(tp, s);
        return s;
    };
    EXPECT_EQ(fmt(time_point_cast<system_clock::duration>(base)), "2022-12-14T16:07:03+00:00");
    EXPECT_EQ(fmt(time_point_cast<system_clock::duration>(base + milliseconds(324))),
              "2022-12-14T16:07:03.324+00:00");
    EXPECT_EQ(fmt(time_point_cast<system_clock::duration>(base + microseconds(324001))),
              "2022-12-14T16:07:03.324001+00:00");
    EXPECT_EQ(fmt(time_point_cast<system_clock::duration>(base + nanoseconds(5))),
              "2022-12-14T16:07:03.000000005+00:00");
    EXPECT_EQ(fmt(system_clock::time_point{}), "1970-01-01T00:00:00+00:00");
}

// Many named <Data> (past the 16 compared one by one, into the name index): one entry per name in
// first-seen order, the last value wins; names of every length, long ones differing only in
// their middle bytes (the index hashes every byte), also through the DOM path.
TEST(EventDataNames, ManyNamesKeepFirstSeenOrderAndTheLastValue) {
    std::vector<std::string> names;
    for (int i = 0; i < 120; ++i) {
        std::string name = "N" + std::to_string(i);
        if (i % 3 == 1) name = "SameStart_" + std::to_string(i) + "_SameEnd0"; // 20+ bytes
        if (i % 3 == 2)
            name = "SameStartLong-" + std::string(static_cast<std::size_t>(i % 17), 'm') +
                   std::to_string(i) + "-xxSameEnd";
        names.push_back(name);
    }
    std::string xml =
        "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
        "<EventID>1</EventID><Computer>c</Computer></System><EventData>";
    std::map<std::string, std::string> last;
    for (int round = 0; round < 3; ++round) {
        for (std::size_t i = 0; i < names.size(); i += static_cast<std::size_t>(round + 1)) {
            const std::string value = names[i] + "=" + std::to_string(round);
            xml += "<Data Name='" + names[i] + "'>" + value + "</Data>";
            last[names[i]] = value;
        }
    }
    xml += "</EventData></Event>";
    for (auto parse :
         {static_cast<void (*)(std::string_view, wec::event::Event&)>(&wec::event::parse),
          &wec::event::parse_dom}) {
        wec::event::Event ev;
        parse(xml, ev);
        ASSERT_FALSE(ev.error);
        ASSERT_EQ(ev.event_data.named.size(), names.size());
        for (std::size_t i = 0; i < names.size(); ++i) {
            EXPECT_EQ(ev.event_data.named[i].name, names[i]);
            EXPECT_EQ(ev.event_data.named[i].value, last[names[i]]);
        }
    }
}

} // namespace

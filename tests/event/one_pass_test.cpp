// The one-pass event parser (`parse`) against the DOM parser it replaced (`parse_dom`, pugixml):
// the same Json, Nxlog and ECS output, byte for byte, for every event of the test data (the
// OpenWEC fixtures, the real Windows Events message, the fuzzer's corpus), for every cut of
// the fixtures, and for hand-written corner cases of the XML. The real events must take the one
// pass (`parse_one_pass`), not the DOM fallback.
#include "event/event.hpp"
#include "event_fixtures.hpp"
#include "wsman/wsman.hpp"

#include <algorithm>
#include <filesystem>
#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace {

namespace ev = wec::event;
namespace fs = std::filesystem;
using namespace wec::event::testing;

// Every format that reads the parsed event, one after the other, plus whether an error was
// recorded (and which).
std::string outputs(const ev::Event& e) {
    const ev::Metadata md = default_metadata();
    std::string out;
    ev::format_json(e, md, out);
    out += '\n';
    ev::format_nxlog(e, md, out);
    out += '\n';
    ev::format_ecs(e, md, out);
    out += '\n';
    if (e.error) {
        out += std::string(ev::to_string(e.error->type)) + ": " + e.error->message;
    }
    return out;
}

// parse() and parse_dom() agree; returns whether the one pass took the input.
bool same_as_dom(std::string_view xml, const std::string& what) {
    ev::Event dom, fast, alone;
    ev::parse_dom(xml, dom);
    ev::parse(xml, fast);
    const std::string expected = outputs(dom);
    EXPECT_EQ(outputs(fast), expected) << what;
    bool took = ev::parse_one_pass(xml, alone);
    if (took) {
        EXPECT_EQ(outputs(alone), expected) << what;
    }
    return took;
}

std::vector<std::string> fixture_events() {
    std::vector<std::string> out;
    for (const char* dir : {"json", "nxlog"})
        for (const auto& name : fixtures(dir))
            out.push_back(read_file(kData / dir / (name + ".xml")));
    return out;
}

std::vector<std::string> message_events() {
    auto message =
        wec::wsman::parse_owned(read_file(fs::path(WEC_TEST_DATA) / "wsman" / "events.xml"));
    std::vector<std::string> out;
    for (const auto& e : message.events)
        out.emplace_back(e.xml);
    return out;
}

TEST(OnePass, FixturesTakeTheOnePassAndMatch) {
    auto events = fixture_events();
    ASSERT_EQ(events.size(), 13u);
    for (std::size_t i = 0; i < events.size(); ++i)
        EXPECT_TRUE(same_as_dom(events[i], "fixture " + std::to_string(i)))
            << "the one pass left fixture " << i << " to the DOM";
}

TEST(OnePass, RealWindowsMessageTakesTheOnePassAndMatches) {
    auto events = message_events();
    ASSERT_EQ(events.size(), 21u);
    for (std::size_t i = 0; i < events.size(); ++i)
        EXPECT_TRUE(same_as_dom(events[i], "message event " + std::to_string(i)));
}

TEST(OnePass, FuzzCorpusMatches) {
    const fs::path corpus = fs::path(WEC_TEST_DATA).parent_path() / "fuzz" / "event" / "corpus";
    std::size_t files = 0, taken = 0;
    for (const auto& entry : fs::directory_iterator(corpus)) {
        std::string xml = read_file(entry.path());
        taken += same_as_dom(xml, entry.path().filename().string()) ? 1 : 0;
        ++files;
    }
    EXPECT_GT(files, 100u);
    EXPECT_GT(taken, 0u);
}

// Every prefix of the fixtures (Windows cuts RenderingInfo): invalid XML, the recovery, and the
// one pass's give-ups all agree with the DOM.
TEST(OnePass, EveryCutOfTheFixturesMatches) {
    for (const auto& xml : fixture_events()) {
        const std::size_t step = xml.size() > 4000 ? 7 : 1;
        for (std::size_t n = 0; n < xml.size(); n += step)
            same_as_dom(std::string_view(xml).substr(0, n), "cut at " + std::to_string(n));
    }
}

// Each fixture with one byte replaced by characters the parser treats specially.
TEST(OnePass, SpecialBytesInTheFixturesMatch) {
    const char specials[] = {'<', '>', '&', '\r', '\n', '\t', '"', '\'', '/', ']', ' ', ':', '\0'};
    for (const auto& xml : fixture_events()) {
        const std::size_t step = xml.size() > 2000 ? 17 : 5;
        for (std::size_t at = 0; at < xml.size(); at += step) {
            for (char c : specials) {
                std::string m = xml;
                m[at] = c;
                same_as_dom(m, "byte " + std::to_string(at) + " = " + std::to_string(c));
            }
        }
    }
}

std::string event_xml(const std::string& system, const std::string& rest = "") {
    return "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
           "<Provider Name='P'/><EventID>7</EventID><Computer>pc.d.local</Computer>" +
           system + "</System>" + rest + "</Event>";
}

TEST(OnePass, CornerCasesMatch) {
    const std::vector<std::string> taken = {
        // references, line ends, CDATA, whitespace in attributes
        event_xml("", "<EventData><Data Name='a'>x &amp; &lt;y&gt; &quot;&apos; &#65;&#x42;"
                      "&#x10FFFF;&#xD800;&#233;&#128512;</Data></EventData>"),
        event_xml("", "<EventData><Data Name='a'>&unknown; &amp &#; &#x; &#12a; &#xZ; &</Data>"
                      "</EventData>"),
        event_xml("", "<EventData><Data>a\r\nb\rc\n\rd&#13;&#10;</Data></EventData>"),
        event_xml("", "<EventData><Data>a<![CDATA[<b>\r\n&amp;]]]]>c<![CDATA[]]></Data>"
                      "<Data><![CDATA[]]></Data><Data></Data><Data/><Data> </Data></EventData>"),
        event_xml("<Keywords>0x80</Keywords><Keywords/>"),
        event_xml("<Security UserID = \"S-1\ta\r\nb\rc\nd&#9;e&#13;\" />"),
        event_xml("<TimeCreated SystemTime='2022-01-01T00:00:00Z' a=\"'\" b='\"'/>"),
        event_xml("", "<EventData><Data Name='a'>1</Data><Data Name='a'>2</Data>"
                      "<Data Name='b'>t<x>u</x>v</Data><Binary>00FF</Binary></EventData>"),
        event_xml("", "<UserData><E xmlns='u'><A>1</A><B Name='n'>2</B><Data>3</Data>"
                      "<Data>4</Data><A>5</A><C/></E><F><G>6</G></F></UserData>"),
        event_xml("", "<UserData/>"),
        event_xml("", "<UserData>text only</UserData>"),
        event_xml("", "<BinaryEventData>0A0B</BinaryEventData>"),
        event_xml("", "<DebugData><SequenceNumber>5</SequenceNumber><FlagsName>f</FlagsName>"
                      "<Component>c</Component><Message>m\r\n</Message></DebugData>"),
        event_xml("", "<ProcessingErrorData><ErrorCode>15005</ErrorCode><DataItemName>d"
                      "</DataItemName><EventPayload>AB</EventPayload></ProcessingErrorData>"),
        event_xml("", "<RenderingInfo Culture='en-US'><Message>m</Message><Keywords>"
                      "<Keyword>k1</Keyword><Other>o</Other><Keyword/><Keyword>k2</Keyword>"
                      "</Keywords></RenderingInfo>"),
        event_xml("<Execution ProcessID='+4' ThreadID='8' ProcessorID='300' SessionID='x'/>"),
        "  \r\n<e:Event xmlns:e='x'><e:System><e:EventID Qualifiers='16384'>1</e:EventID>"
        "<e:Computer>c</e:Computer></e:System ></e:Event >\n\t ",
        "<Event><System><EventID>1</EventID><Computer>c</Computer></System><System><EventID>2"
        "</EventID><Computer>d</Computer></System><Unknown a='1'><x/></Unknown></Event>",
        "<Event><System><EventID>1</EventID><Computer>c</Computer></System></Event>",
        "<Event/>",
    };
    for (std::size_t i = 0; i < taken.size(); ++i)
        EXPECT_TRUE(same_as_dom(taken[i], "taken " + std::to_string(i))) << i;

    const std::vector<std::string> others = {
        // left to the DOM: feed failures, markup the one pass does not take, invalid XML
        event_xml("<TimeCreated/>"),
        event_xml("<Execution ProcessID='x' ThreadID='1'/>"),
        "<Event><System><EventID>x</EventID><Computer>c</Computer></System></Event>",
        "<Event><System><EventID>1</EventID></System></Event>",
        event_xml("", "<ProcessingErrorData><ErrorCode>x</ErrorCode></ProcessingErrorData>"),
        "<?xml version='1.0'?>" + event_xml(""),
        "\xEF\xBB\xBF" + event_xml(""),
        "<!DOCTYPE Event>" + event_xml(""),
        event_xml("<!-- c -->"),
        event_xml("<?pi x?>"),
        event_xml("", "<EventData><Data>&#0;</Data></EventData>"),
        event_xml("", "<EventData><Data>&#x110000;</Data></EventData>"),
        event_xml("", "<EventData><Data>&#000000065;</Data></EventData>"),
        event_xml("", std::string("<EventData><Data>a\0b</Data></EventData>", 39)),
        event_xml("", "<EventData><D\xC3\xA9>1</D\xC3\xA9></EventData>"),
        "<Event><System><EventID>1</EventID><Computer>c<!--x-->d</Computer></System></Event>",
        event_xml("", "<EventData><Data></Datum></EventData>"),
        event_xml("", "<EventData><Data a='1'b='2'/></EventData>"),
        event_xml("", "<EventData><Data a=1/></EventData>"),
        event_xml("", "<EventData><Data a='1/></EventData>"),
        event_xml("", "<EventData><Data/ ></EventData>"),
        event_xml("", "<RenderingInfo Culture='en-US'><Message>cut"),
        event_xml("", "<RenderingInfo Culture='en-US'><Message>a</Message></RenderingInfo>x<y/>"),
        event_xml("") + "<Second/>",
        event_xml("") + "text",
        "text" + event_xml(""),
        std::string(200, '<'),
        "",
        "   ",
        "<",
        "<Event>",
        "<Event></Event",
        event_xml("", std::string(100, '<') + "a>" + std::string(100, '<') + "/a>"),
    };
    std::string deep;
    for (int i = 0; i < 100; ++i)
        deep += "<a>";
    for (int i = 0; i < 100; ++i)
        deep += "</a>";
    std::vector<std::string> all = others;
    all.push_back(event_xml("", "<EventData>" + deep + "</EventData>"));
    for (std::size_t i = 0; i < all.size(); ++i)
        same_as_dom(all[i], "other " + std::to_string(i));
    // These must not be taken by the one pass (so that the DOM's verdict stands).
    ev::Event e;
    for (std::size_t i = 0; i < 15; ++i)
        EXPECT_FALSE(ev::parse_one_pass(others[i], e)) << i;
}

// Many named <Data>, names repeated: one entry per name in first-seen order, the last value wins
// (the index behind it grows past 16, 32 and 64 names and is reused by the next events).
TEST(OnePass, ManyNamedDataKeepFirstSeenOrderAndLastValue) {
    ev::Event e;
    for (std::size_t names : {5u, 20u, 40u, 300u, 17u, 71u}) {
        std::string data;
        std::vector<std::string> expected_value(names);
        for (std::size_t i = 0; i < names * 3; ++i) {
            const std::size_t n =
                (i * 7) % names; // every name (7 is prime to each count), scrambled
            data += "<Data Name='n" + std::to_string(n) + "'>v" + std::to_string(i) + "</Data>";
            expected_value[n] = "v" + std::to_string(i);
        }
        const std::string xml = event_xml("", "<EventData>" + data + "</EventData>");
        ev::parse(xml, e);
        ASSERT_FALSE(e.error) << names;
        ASSERT_EQ(e.event_data.named.size(), names);
        for (std::size_t k = 0; k < names; ++k) {
            const std::size_t n = (k * 7) % names; // first-seen order
            EXPECT_EQ(e.event_data.named[k].name, "n" + std::to_string(n)) << names << " " << k;
            EXPECT_EQ(e.event_data.named[k].value, expected_value[n]) << names << " " << k;
        }
        same_as_dom(xml, "named " + std::to_string(names));
    }
}

// Sibling start tags that share their first bytes up to the first attribute value (the one pass
// then takes the name and that attribute's name from the previous sibling's): every ordered pair
// of these siblings, in EventData, UserData and System, nested too.
TEST(OnePass, SiblingsSharingTheirFirstBytesMatch) {
    const std::vector<std::string> siblings = {
        "<Data Name='a'>x</Data>",
        "<Data Name='b'>y</Data>",
        "<Data Name=\"a\">z</Data>",
        "<Data Name='a' Other='o'>w</Data>",
        "<Data Name='a'/>",
        "<Data Name=''/>",
        "<Data Name='' />",
        "<Data  Name='a'>v</Data>",
        "<Data\tName='a'>v2</Data>",
        "<Data Name = 'a'>u</Data>",
        "<Data Name='a'>u2</Data >",
        "<Data NameX='a'>t</Data>",
        "<Data Nam='a'>t2</Data>",
        "<DataX Name='a'>s</DataX>",
        "<Dat Name='a'>r</Dat>",
        "<x:Data x:Name='a' xmlns:x='u'>q</x:Data>",
        "<x:Data Name='a'>p</x:Data>",
        "<y:Data Name='a'>p2</y:Data>",
        "<Data Name='a&amp;b'>o</Data>",
        "<Data Name='&#97;'>o2</Data>",
        "<Data Name='a\tb\r\nc'>n</Data>",
        "<Data>m</Data>",
        "<Data/>",
        "<Binary>00</Binary>",
        "<Data Name='a'>1<Data Name='a'>2</Data><Data Name='b'>3</Data>4</Data>",
        "<Data Name='a'><x:Data Name='c'/>5</Data>",
        "<Data Name='a'>x</Datum>", // mismatched end tag: the DOM's verdict
        "<Data Name='a'y='1'>x</Data>",
    };
    std::size_t taken = 0;
    std::size_t cases = 0;
    for (const auto& a : siblings) {
        for (const auto& b : siblings) {
            const std::string three = a + b + a;
            const std::vector<std::string> xmls = {
                event_xml("", "<EventData>" + three + "</EventData>"),
                event_xml("", "<UserData><E>" + three + "</E></UserData>"),
                event_xml("<Security UserID='1'/>" + three + "<Security UserID='2'/>"),
                event_xml("", "<EventData><Data Name='p'>" + three + "</Data></EventData>"),
            };
            for (const auto& xml : xmls) {
                ++cases;
                if (same_as_dom(xml, xml)) ++taken;
            }
        }
    }
    EXPECT_GT(taken, cases / 2); // most of them are well-formed and take the one pass
}

// Random named <Data> (names drawn from a small pool of similar names, repeated at random
// places), one Event reused: one entry per name in first-seen order, the last value wins, and
// the DOM path agrees.
TEST(OnePass, RandomRepeatedDataNamesMatch) {
    std::uint64_t r = 0x9E3779B97F4A7C15ULL;
    auto next = [&r](std::uint64_t n) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        return r % n;
    };
    ev::Event e;
    for (int round = 0; round < 400; ++round) {
        std::vector<std::string> pool(1 + next(48));
        for (auto& name : pool) {
            const std::size_t length = 1 + next(20);
            for (std::size_t i = 0; i < length; ++i)
                name += "ab_"[next(3)];
        }
        std::vector<std::pair<std::string, std::string>> expected; // first-seen order
        std::string data;
        const std::size_t count = next(70);
        for (std::size_t i = 0; i < count; ++i) {
            const std::string& name = pool[next(pool.size())];
            const std::string value = "v" + std::to_string(i);
            data += "<Data Name='" + name + "'>" + value + "</Data>";
            auto it = std::find_if(expected.begin(), expected.end(),
                                   [&](const auto& nv) { return nv.first == name; });
            if (it == expected.end())
                expected.emplace_back(name, value);
            else
                it->second = value;
        }
        const std::string xml = event_xml("", "<EventData>" + data + "</EventData>");
        ASSERT_TRUE(ev::parse_one_pass(xml, e)) << round;
        ASSERT_EQ(e.event_data.named.size(), expected.size()) << round;
        for (std::size_t k = 0; k < expected.size(); ++k) {
            EXPECT_EQ(e.event_data.named[k].name, expected[k].first) << round << " " << k;
            EXPECT_EQ(e.event_data.named[k].value, expected[k].second) << round << " " << k;
        }
        if (round % 8 == 0) same_as_dom(xml, "round " + std::to_string(round));
    }
}

// Text that moves down after a folded CR LF or a reference, stopped after every length of run
// (0 to 40 bytes) by each stop ('<', '&', CR): the bytes moved before the stop are copied as
// words, and never past it.
TEST(OnePass, TextMovedDownStopsAtEveryLength) {
    const std::string run = "0123456789abcdefghijklmnopqrstuvwxyzABCDE";
    for (const char* before : {"\r\n", "&amp;", "\r", "&#x10FFFF;"}) {
        for (std::size_t k = 0; k <= 40; ++k) {
            for (const char* stop : {"</Data>", "&lt;x</Data>", "\r\ny</Data>", "\rz</Data>"}) {
                const std::string text = std::string(before) + run.substr(0, k) + stop;
                const std::string xml =
                    event_xml("", "<EventData><Data Name='a'>" + text + "<Data Name='b'>" + text +
                                      "</EventData>");
                EXPECT_TRUE(same_as_dom(xml, xml)) << k;
            }
        }
    }
}

} // namespace

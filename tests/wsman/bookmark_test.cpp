// wsman::bookmark_list / parse_bookmark_list against the bookmark of a real Windows source
// (tests/data/wsman/events.xml, a copy of samples/windows/events.xml) and on channel names XML
// must escape.
#include "common/files.hpp"
#include "wsman/bookmark.hpp"
#include "wsman/wsman.hpp"

#include <gtest/gtest.h>
#include <string>
#include <string_view>
#include <vector>

namespace ws = wec::wsman;

namespace {

ws::Message windows_events() {
    const auto bytes = wec::read_file(std::string(WEC_TEST_DATA) + "/wsman/events.xml");
    return ws::parse(std::string(wec::as_chars(bytes)));
}

// The text of the first <name>…</name> of an event ("" when absent).
std::string element_text(std::string_view xml, const std::string& name) {
    const auto b = xml.find("<" + name + ">");
    if (b == std::string_view::npos) return {};
    const auto from = b + name.size() + 2;
    return std::string(xml.substr(from, xml.find('<', from) - from));
}

// What a collector stores of an Events message carrying `bookmark` (parsed back, re-serialized).
std::string as_collector_stores(const std::string& bookmark) {
    ws::SourceHeaders h;
    h.to = "http://127.0.0.1/wsman/subscriptions/X";
    h.machine_id = "win10.windomain.local";
    const std::vector<std::string_view> none;
    return ws::parse(ws::build_events(h, none, bookmark)).bookmark;
}

} // namespace

TEST(Bookmark, RebuildsTheWindowsSampleFromItsEvents) {
    const auto m = windows_events();
    ASSERT_EQ(m.events.size(), 21u);
    ws::Bookmark b;
    for (const auto& e : m.events) {
        const auto channel = element_text(e.xml, "Channel");
        b.records[channel] = std::stoull(element_text(e.xml, "EventRecordID"));
        b.current = channel;
    }
    EXPECT_EQ(ws::bookmark_list(b), m.bookmark);
    EXPECT_EQ(m.bookmark, "<BookmarkList><Bookmark Channel=\"Microsoft-Windows-WinRM/Operational\" "
                          "RecordId=\"149161\" IsCurrent=\"true\"/></BookmarkList>");
}

TEST(Bookmark, ParsesTheWindowsSample) {
    const auto b = ws::parse_bookmark_list(windows_events().bookmark);
    ASSERT_EQ(b.records.size(), 1u);
    EXPECT_EQ(b.records.at("Microsoft-Windows-WinRM/Operational"), 149161u);
    EXPECT_EQ(b.current, "Microsoft-Windows-WinRM/Operational");
}

TEST(Bookmark, OneChannel) {
    EXPECT_EQ(ws::bookmark_list({{{"Security", 1234}}, "Security"}),
              "<BookmarkList><Bookmark Channel=\"Security\" RecordId=\"1234\" "
              "IsCurrent=\"true\"/></BookmarkList>");
}

TEST(Bookmark, SeveralChannelsInNameOrderIsCurrentOnTheLastWritten) {
    const ws::Bookmark b{{{"System", 7}, {"Application", 18446744073709551615u}, {"Security", 3}},
                         "Security"};
    const auto xml = ws::bookmark_list(b);
    EXPECT_EQ(xml, "<BookmarkList>"
                   "<Bookmark Channel=\"Application\" RecordId=\"18446744073709551615\"/>"
                   "<Bookmark Channel=\"Security\" RecordId=\"3\" IsCurrent=\"true\"/>"
                   "<Bookmark Channel=\"System\" RecordId=\"7\"/>"
                   "</BookmarkList>");
    const auto back = ws::parse_bookmark_list(xml);
    EXPECT_EQ(back.records, b.records);
    EXPECT_EQ(back.current, "Security");
}

TEST(Bookmark, ExactlyOneIsCurrentWhenTheCurrentChannelIsNotListed) {
    for (const std::string current : {"", "Setup"}) {
        const auto xml = ws::bookmark_list({{{"Application", 1}, {"System", 2}}, current});
        EXPECT_EQ(xml, "<BookmarkList><Bookmark Channel=\"Application\" RecordId=\"1\"/>"
                       "<Bookmark Channel=\"System\" RecordId=\"2\" IsCurrent=\"true\"/>"
                       "</BookmarkList>")
            << current;
    }
}

TEST(Bookmark, NoChannelNoBookmark) {
    EXPECT_EQ(ws::bookmark_list({{}, "Security"}), "");
    EXPECT_TRUE(ws::parse_bookmark_list("").records.empty());
}

TEST(Bookmark, EscapesChannelNames) {
    const std::string odd = "O'Brien & Sons <Ops> \"Audit\"";
    const ws::Bookmark b{{{odd, 5}, {"Security", 9}}, odd};
    const auto xml = ws::bookmark_list(b);
    EXPECT_EQ(xml, "<BookmarkList><Bookmark Channel=\"O'Brien &amp; Sons &lt;Ops> "
                   "&quot;Audit&quot;\" RecordId=\"5\" IsCurrent=\"true\"/>"
                   "<Bookmark Channel=\"Security\" RecordId=\"9\"/></BookmarkList>");
    // Well-formed, names read back as they were, and a collector stores it byte for byte.
    const auto back = ws::parse_bookmark_list(xml);
    EXPECT_EQ(back.records, b.records);
    EXPECT_EQ(back.current, odd);
    EXPECT_EQ(as_collector_stores(xml), xml);
}

TEST(Bookmark, WhitespaceInChannelNamesReadsBack) {
    const ws::Bookmark b{{{"a\tb\r\nc", 1}}, "a\tb\r\nc"};
    const auto xml = ws::bookmark_list(b);
    EXPECT_NE(xml.find("Channel=\"a&#9;b&#13;&#10;c\""), std::string::npos) << xml;
    for (const auto& stored : {xml, as_collector_stores(xml)}) {
        const auto back = ws::parse_bookmark_list(stored);
        EXPECT_EQ(back.records, b.records) << stored;
        EXPECT_EQ(back.current, b.current) << stored;
    }
}

TEST(Bookmark, ParsesLeniently) {
    const auto b = ws::parse_bookmark_list(
        "<BookmarkList><Bookmark Channel='A&amp;B' RecordId='12'/><Bookmark RecordId='3'/>"
        "<Bookmark Channel='C' RecordId='x1' IsCurrent='true'/></BookmarkList>");
    EXPECT_EQ(b.records, (std::map<std::string, std::uint64_t>{{"A&B", 12}, {"C", 0}}));
    EXPECT_EQ(b.current, "C");
    EXPECT_TRUE(ws::parse_bookmark_list("<BookmarkList><Bookmark").records.empty());
    EXPECT_TRUE(ws::parse_bookmark_list("<Other><Bookmark Channel='A' RecordId='1'/></Other>")
                    .records.empty());
}

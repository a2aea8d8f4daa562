// The bookmarks lib/client sends. client::split_batch's (what `wec replay` sends when it cuts a
// recorded batch or reads events without one): built by wsman::bookmark_list from the events'
// plain channel names (XML entities decoded once, escaped once), IsCurrent on the channel of the
// last event read, carried across parts and batches, and the recorded bookmark taken over as is.
// security_bookmark: what generated events (EventGenerator, the load driver) carry.
#include "client/replay.hpp"
#include "wsman/bookmark.hpp"

#include <gtest/gtest.h>
#include <map>
#include <string>
#include <vector>

namespace {

namespace client = wec::client;
namespace ws = wec::wsman;

std::string event(const std::string& channel_text, std::uint64_t record) {
    std::string channel = channel_text.empty() ? "" : "<Channel>" + channel_text + "</Channel>";
    return "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
           "<EventID>4624</EventID><EventRecordID>" +
           std::to_string(record) + "</EventRecordID>" + channel +
           "<Computer>win10.windomain.local</Computer></System></Event>";
}

std::vector<client::BatchPart> split(const client::RecordedBatch& batch, ws::Bookmark& state,
                                     std::size_t max_elements) {
    client::BatchLimits limits;
    limits.max_elements = max_elements;
    ws::SourceHeaders headers;
    headers.to = "http://127.0.0.1:5985/wsman/subscriptions/X";
    headers.machine_id = "win10.windomain.local";
    std::vector<std::pair<std::size_t, std::size_t>> dropped;
    auto parts = client::split_batch(batch, limits, headers, state, {}, dropped);
    EXPECT_TRUE(dropped.empty());
    return parts;
}

} // namespace

TEST(ReplaySplit, BookmarksOfThePartsFromTheirEvents) {
    client::RecordedBatch batch;
    batch.events = {event("Security", 10), event("A&amp;B's &lt;log&gt;", 3), event("Security", 11),
                    event("System", 7), event("Security", 12)};
    ws::Bookmark state;
    const auto parts = split(batch, state, 2);
    ASSERT_EQ(parts.size(), 3u);
    const std::string odd = "<Bookmark Channel=\"A&amp;B's &lt;log>\" RecordId=\"3\"";
    EXPECT_EQ(parts[0].bookmark, "<BookmarkList>" + odd + " IsCurrent=\"true\"/>" +
                                     "<Bookmark Channel=\"Security\" RecordId=\"10\"/>"
                                     "</BookmarkList>");
    EXPECT_EQ(parts[1].bookmark, "<BookmarkList>" + odd + "/>" +
                                     "<Bookmark Channel=\"Security\" RecordId=\"11\"/>"
                                     "<Bookmark Channel=\"System\" RecordId=\"7\" "
                                     "IsCurrent=\"true\"/></BookmarkList>");
    EXPECT_EQ(parts[2].bookmark,
              "<BookmarkList>" + odd + "/>" +
                  "<Bookmark Channel=\"Security\" RecordId=\"12\" "
                  "IsCurrent=\"true\"/>"
                  "<Bookmark Channel=\"System\" RecordId=\"7\"/></BookmarkList>");
    EXPECT_EQ(state.records.at("A&B's <log>"), 3u);
    EXPECT_EQ(state.current, "Security");
}

TEST(ReplaySplit, IsCurrentStaysOnTheLastChannelWrittenWhenAPartNamesNone) {
    ws::Bookmark state;
    client::RecordedBatch first;
    first.events = {event("System", 5), event("Application", 8)};
    split(first, state, 0);
    client::RecordedBatch second;
    second.events = {event("", 1), event("", 2), event("System", 6)};
    const auto parts = split(second, state, 2);
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(parts[0].bookmark,
              "<BookmarkList><Bookmark Channel=\"Application\" RecordId=\"8\" IsCurrent=\"true\"/>"
              "<Bookmark Channel=\"System\" RecordId=\"5\"/></BookmarkList>");
    EXPECT_EQ(parts[1].bookmark,
              "<BookmarkList><Bookmark Channel=\"Application\" RecordId=\"8\"/>"
              "<Bookmark Channel=\"System\" RecordId=\"6\" IsCurrent=\"true\"/></BookmarkList>");
}

TEST(ReplaySplit, TheRecordedBookmarkEndsTheBatchAndIsTheNewState) {
    const std::string recorded =
        "<BookmarkList><Bookmark Channel=\"Microsoft-Windows-WinRM/Operational\" "
        "RecordId=\"149161\" IsCurrent=\"true\"/><Bookmark Channel=\"Q&amp;A\" "
        "RecordId=\"4\"/></BookmarkList>";
    client::RecordedBatch batch;
    batch.events = {event("Microsoft-Windows-WinRM/Operational", 149160),
                    event("Microsoft-Windows-WinRM/Operational", 149161)};
    batch.bookmark = recorded;
    ws::Bookmark state;
    const auto parts = split(batch, state, 1);
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(parts[0].bookmark, "<BookmarkList><Bookmark "
                                 "Channel=\"Microsoft-Windows-WinRM/Operational\" "
                                 "RecordId=\"149160\" IsCurrent=\"true\"/></BookmarkList>");
    EXPECT_EQ(parts[1].bookmark, recorded);
    EXPECT_EQ(state.records.at("Q&A"), 4u);
    EXPECT_EQ(state.current, "Microsoft-Windows-WinRM/Operational");
    EXPECT_EQ(ws::bookmark_list(state), recorded);
}

TEST(SecurityBookmark, OneSecurityChannelCurrent) {
    EXPECT_EQ(client::security_bookmark(4711),
              "<BookmarkList><Bookmark Channel=\"Security\" RecordId=\"4711\" "
              "IsCurrent=\"true\"/></BookmarkList>");
    client::EventGenerator gen("win10.windomain.local", 1, 1000);
    for (int i = 0; i < 3; ++i)
        gen.next();
    EXPECT_EQ(gen.last_record(), 1002u);
    const auto b = ws::parse_bookmark_list(gen.bookmark());
    EXPECT_EQ(b.records, (std::map<std::string, std::uint64_t>{{"Security", 1002}}));
    EXPECT_EQ(b.current, "Security");
    EXPECT_EQ(gen.bookmark(), client::security_bookmark(1002));
}

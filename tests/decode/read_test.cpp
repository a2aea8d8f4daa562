// decode::EventsBatchReader: the JSON Lines of `wec decode --format json` read back (what
// `wec replay --from` sends): only Events requests, parsed again from their body, in order, with
// their bookmark; unusable Events requests skipped and reported with their line; malformed lines
// an InputError naming the line.
#include "decode/read.hpp"
#include "support/files.hpp"
#include "wsman/bookmark.hpp"
#include "wsman/wsman.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>

namespace {

namespace dec = wec::decode;
namespace wsman = wec::wsman;
using Json = nlohmann::json;

// A schema-1 record (only the fields the reader looks at, plus a few it must ignore).
std::string record(const std::string& direction, const std::string& action,
                   const std::optional<std::string>& body, int index = 0) {
    Json j;
    j["v"] = 1;
    j["input"] = "capture.pcap";
    j["connection"] = 1;
    j["index"] = index;
    j["direction"] = direction;
    if (!action.empty()) j["action"] = action;
    j["encryption"] = {{"state", body ? "decrypted" : "undecryptable"}};
    if (!body) j["encryption"]["reason"] = "wrong-key";
    j["errors"] = Json::array();
    if (body) j["body"] = *body;
    return j.dump() + "\n";
}

std::string bookmark(int record_id) {
    return wec::wsman::bookmark_list(
        {{{"Security", static_cast<std::uint64_t>(record_id)}}, "Security"});
}

std::string events_body(const std::vector<std::string_view>& events, const std::string& bm) {
    wsman::SourceHeaders h;
    h.to = "http://srv:5985/wsman/subscriptions/ABC";
    h.machine_id = "win10.windomain.local";
    h.identifier = "ABC";
    return wsman::build_events(h, events, bm);
}

struct Read {
    std::vector<dec::EventsBatch> batches;
    std::vector<dec::SkippedRecord> skipped;
    dec::ReadStats stats;
};

Read read_all(const std::string& text) {
    std::istringstream in(text);
    Read r;
    r.stats = dec::read_events_batches(
        in, [&](dec::EventsBatch&& b) { r.batches.push_back(std::move(b)); },
        [&](const dec::SkippedRecord& s) { r.skipped.push_back(s); }, "in.jsonl");
    return r;
}

const std::string kEvent1 = "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>"
                            "<System><EventID>4624</EventID></System></Event>";
// "]]>" inside an event is split over CDATA sections by the sender and must come back whole.
const std::string kEvent2 =
    "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>"
    "<EventData><Data>a ]]&gt; b</Data><Data>]]></Data></EventData></Event>";

TEST(DecodeRead, OnlyEventsRequestsInOrderWithTheirBookmark) {
    wsman::SourceHeaders h;
    h.to = "http://srv:5985/wsman/subscriptions/ABC";
    const std::string windows =
        wec::testing::slurp(std::string(WEC_TEST_DATA) + "/wsman/events.xml");
    ASSERT_FALSE(windows.empty());
    std::string text;
    text += record("request", "Enumerate", wsman::build_enumerate(h));                    // 1
    text += record("request", "Events", events_body({kEvent1, kEvent2}, bookmark(7)), 1); // 2
    text += record("response", "Ack", std::string("<not parsed/>"), 1);                   // 3
    text += record("request", "Heartbeat", wsman::build_heartbeat(h), 2);                 // 4
    text += "\n";                                                                         // 5
    text += record("request", "Events", std::string("<s:Envelope><unclosed"), 3);         // 6
    text += record("request", "Events", std::nullopt, 4);                                 // 7
    text += record("request", "Events", wsman::build_heartbeat(h), 5);                    // 8
    text += record("request", "Events", windows, 6);                                      // 9
    text += record("response", "Events", events_body({kEvent1}, bookmark(99)), 6);        // 10
    text += record("request", "", std::nullopt, 7);                                       // 11

    auto r = read_all(text);
    EXPECT_EQ(r.stats.records, 10u); // the blank line is not a record
    EXPECT_EQ(r.stats.batches, 2u);
    EXPECT_EQ(r.stats.events, 23u);
    EXPECT_EQ(r.stats.skipped, 3u);

    ASSERT_EQ(r.batches.size(), 2u);
    EXPECT_EQ(r.batches[0].line, 2u);
    EXPECT_EQ(r.batches[0].events, (std::vector<std::string>{kEvent1, kEvent2}));
    EXPECT_EQ(r.batches[0].bookmark, bookmark(7));
    EXPECT_EQ(r.batches[0].machine, "win10.windomain.local");

    // A real Windows Events body: what wsman::parse gives is what is handed out.
    auto parsed = wsman::parse(windows);
    EXPECT_EQ(r.batches[1].line, 9u);
    ASSERT_EQ(r.batches[1].events.size(), 21u);
    for (std::size_t i = 0; i < 21; ++i)
        EXPECT_EQ(r.batches[1].events[i], parsed.events[i].xml) << i;
    EXPECT_EQ(r.batches[1].bookmark, parsed.bookmark);
    EXPECT_NE(r.batches[1].bookmark.find("RecordId=\"149161\""), std::string::npos);

    ASSERT_EQ(r.skipped.size(), 3u);
    EXPECT_EQ(r.skipped[0].line, 6u);
    EXPECT_NE(r.skipped[0].reason.find("does not parse"), std::string::npos) << r.skipped[0].reason;
    EXPECT_EQ(r.skipped[1].line, 7u);
    EXPECT_NE(r.skipped[1].reason.find("without a body"), std::string::npos) << r.skipped[1].reason;
    EXPECT_NE(r.skipped[1].reason.find("wrong-key"), std::string::npos) << r.skipped[1].reason;
    EXPECT_EQ(r.skipped[2].line, 8u);
    EXPECT_NE(r.skipped[2].reason.find("Heartbeat"), std::string::npos) << r.skipped[2].reason;
}

TEST(DecodeRead, PullReaderHandsOutOneBatchAtATime) {
    std::string text = record("request", "Events", events_body({kEvent1}, bookmark(1))) +
                       record("request", "Events", events_body({kEvent2, kEvent1}, bookmark(3)));
    // CRLF line ends and no final newline are accepted.
    text.insert(text.find('\n'), "\r");
    text.pop_back();
    std::istringstream in(text);
    dec::EventsBatchReader reader(in, "x");
    dec::EventsBatch b;
    ASSERT_TRUE(reader.next(b));
    EXPECT_EQ(b.events, std::vector<std::string>{kEvent1});
    EXPECT_EQ(b.bookmark, bookmark(1));
    ASSERT_TRUE(reader.next(b));
    EXPECT_EQ(b.line, 2u);
    EXPECT_EQ(b.events, (std::vector<std::string>{kEvent2, kEvent1}));
    EXPECT_EQ(b.bookmark, bookmark(3));
    EXPECT_FALSE(reader.next(b));
    EXPECT_FALSE(reader.next(b));
    EXPECT_EQ(reader.stats().batches, 2u);
    EXPECT_EQ(reader.line(), 2u);
}

// The InputError message of reading `text`, "" when none.
std::string error_of(const std::string& text, dec::ReadLimits limits = {}) {
    std::istringstream in(text);
    dec::EventsBatchReader reader(in, "in.jsonl", {}, limits);
    dec::EventsBatch b;
    try {
        while (reader.next(b)) {
        }
    } catch (const dec::InputError& e) {
        return e.what();
    }
    return {};
}

TEST(DecodeRead, MalformedLinesAreInputErrorsNamingTheLine) {
    const std::string good = record("request", "Events", events_body({kEvent1}, bookmark(1)));
    EXPECT_EQ(error_of(good + good), "");

    auto e = error_of(good + "{\"v\":1, \"direction\": \"request\"\n" + good);
    EXPECT_EQ(e.rfind("in.jsonl:2: malformed JSON", 0), 0u) << e;
    e = error_of(good + good + "[1,2]\n");
    EXPECT_EQ(e, "in.jsonl:3: not a JSON object");
    e = error_of("{\"direction\":\"request\",\"action\":\"Events\"}\n");
    EXPECT_EQ(e.rfind("in.jsonl:1: not a `wec decode --format json` record of schema version 1", 0),
              0u)
        << e;
    EXPECT_NE(error_of("{\"v\":2}\n").find("\"v\": 2"), std::string::npos);
    // A line longer than the limit is refused before it is parsed.
    e = error_of(good + good, dec::ReadLimits{good.size() / 2});
    EXPECT_EQ(e.rfind("in.jsonl:1: line longer than", 0), 0u) << e;
}

} // namespace

#include "subscription/query_check.hpp"
#include "subscription/subscription.hpp"

#include <algorithm>
#include <gtest/gtest.h>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace sub = wec::subscription;

namespace {

std::string one_select(const std::string& xpath, const std::string& path = "Security") {
    return "<QueryList>\n  <Query Id=\"0\">\n    <Select Path=\"" + path + "\">" + xpath +
           "</Select>\n  </Query>\n</QueryList>";
}

std::vector<sub::Finding> with_rule(const std::vector<sub::Finding>& findings,
                                    const std::string& rule) {
    std::vector<sub::Finding> out;
    for (const auto& f : findings)
        if (f.rule == rule) out.push_back(f);
    return out;
}

std::string all(const std::vector<sub::Finding>& findings) {
    std::string out;
    for (const auto& f : findings)
        out += f.describe() + "\n";
    return out;
}

std::string id_xpath(const std::vector<std::uint32_t>& ids, const std::string& provider = {}) {
    std::string terms;
    for (std::size_t i = 0; i < ids.size(); ++i)
        terms += (i ? " or " : "") + std::string("EventID=") + std::to_string(ids[i]);
    if (provider.empty()) return "*[System[(" + terms + ")]]";
    return "*[System[Provider[@Name='" + provider + "'] and (" + terms + ")]]";
}

sub::EventFacts facts(std::uint32_t id, const std::string& channel,
                      const std::string& provider = "P") {
    sub::EventFacts f;
    f.event_id = id;
    f.channel = channel;
    f.provider = provider;
    return f;
}

// The EventIDs in [0, limit) of `channel`/`provider` the query selects.
std::set<std::uint32_t> selected_ids(const std::string& query, std::uint32_t limit,
                                     const std::string& channel = "Security",
                                     const std::string& provider = "P") {
    std::set<std::uint32_t> out;
    for (std::uint32_t id = 0; id < limit; ++id)
        if (sub::query_matches(query, facts(id, channel, provider))) out.insert(id);
    return out;
}

} // namespace

TEST(QueryXPath, AcceptsTheSubsetWindowsEvaluates) {
    for (const char* xpath : {
             "*",
             "Event/System[EventID=4624]",
             "*[System[EventID=4624]]",
             "*[System[(EventID=4624 or EventID=4625) and Level<=3]]",
             "*[System[Provider[@Name='Microsoft-Windows-Security-Auditing']]]",
             "*[EventData[Data[@Name='LogonType']='2']]",
             "*[EventData[Data[@Name='SubjectUserSid']!=\"S-1-5-18\"]]",
             "*[System[band(Keywords,4503599627370496)]]",
             "*[System[band(Keywords, 0x8010000000000000)]]",
             "*[System[TimeCreated[timediff(@SystemTime) <= 86400000]]]",
             "*[System[not(EventID=4662)]]",
             "*[System[EventID>=4624 and EventID<=4634 and Level>1 and Level<5 and Level!=2]]",
             "*[UserData[*]]",
             "*[EventData[Data]]",
             " *[ System [ ( EventID = 1 ) ] ] ",
             "*[System[(EventID=4624)]] and *[EventData[Data[@Name='LogonType']='10']]",
             "(*[System[EventID=1]] or *[System[EventID=2]]) and *[EventData[Data='x']]",
             "*[System[Provider[@Name='Microsoft-Windows-Security-Auditing'] and Task = 12544 "
             "and (band(Keywords,9007199254740992)) and (EventID=4624)]]",
             "*[System[TimeCreated[@SystemTime>='2020-01-01T00:00:00.000Z']]]",
             "*[UserData/*/Param1='x']",
         })
        EXPECT_NO_THROW(sub::parse_xpath(xpath)) << xpath;
}

TEST(QueryXPath, RefusesWhatWindowsDoesNotEvaluateWithItsOffset) {
    struct Case {
        const char* xpath;
        std::size_t offset;
        const char* says;
    };
    for (const auto& c : std::vector<Case>{
             {"*[EventData[contains(Data, 'x')]]", 12, "function 'contains()'"},
             {"*[System[starts-with(Provider, 'M')]]", 9, "function 'starts-with()'"},
             {"//System", 0, "absolute path"},
             {"*[System//EventID=1]", 8, "'//'"},
             {"*[System[EventID=1] | *[System[EventID=2]]]", 20, "unions"},
             {"*[System[EventID=1+1]]", 18, "arithmetic"},
             {"*[System[EventID=1 div 2]]", 19, "arithmetic ('div')"},
             {"*[System[1]]", 9, "positional"},
             {"*[System[EventID=Level]]", 17, "two fields"},
             {"*[System[TimeCreated[timediff(@SystemTime)]]]", 21, "timediff"},
             {"*[System[TimeCreated[timediff(@Foo) < 5]]]", 30, "@SystemTime"},
             {"*[System[EventID=1]", 19, "end of the XPath"},
             {"*[System[EventID=1]]]", 20, "unbalanced ']'"},
             {"*[System[EventID='1]]", 17, "string not closed"},
             {"*[child::System]", 2, "axes"},
             {"*[System[EventID=$x]]", 17, "variables"},
             {"System[EventID=1]", 0, "must start with '*' or 'Event'"},
             {"*[..]", 2, "'.' and '..'"},
             {"*[System[band(1, 2)]]", 14, "first argument"},
             {"*[System[EventID=1]] and not(*[System[Level=1]])", 25, "whole event"},
             {"*[System[EventID=1]] and EventData[Data]", 25, "must start with"},
             {"*[System[EventID=1]] or", 23, "end of the XPath"},
         }) {
        try {
            sub::parse_xpath(c.xpath);
            ADD_FAILURE() << "accepted: " << c.xpath;
        } catch (const sub::XPathError& e) {
            EXPECT_EQ(e.offset(), c.offset) << c.xpath << ": " << e.message();
            EXPECT_NE(e.message().find(c.says), std::string::npos)
                << c.xpath << ": " << e.message();
        }
    }
}

TEST(QueryXPath, DeepNestingIsAnErrorNotACrash) {
    std::string xpath =
        "*[" + std::string(100000, '(') + "EventID=1" + std::string(100000, ')') + "]";
    EXPECT_THROW(sub::parse_xpath(xpath), sub::XPathError);
    std::string steps = "*";
    for (int i = 0; i < 10000; ++i)
        steps += "[a";
    EXPECT_THROW(sub::parse_xpath(steps), sub::XPathError);
}

TEST(QueryLint, XPathErrorIsLocatedInsideTheQuery) {
    // Line 3 of the query; the column counts characters (the "é" is one).
    std::string q = "<QueryList><Query Id=\"0\">\n<!-- é -->\n"
                    "<Select Path=\"Security\">*[System[EventID=1 and\n"
                    "  contains(Data, 'x')]]</Select></Query></QueryList>";
    auto findings = sub::lint_query(q);
    auto xpath = with_rule(findings, "xpath");
    ASSERT_EQ(xpath.size(), 1u) << all(findings);
    EXPECT_EQ(xpath[0].severity, sub::Severity::Error);
    EXPECT_EQ(xpath[0].where.line, 4u);
    EXPECT_EQ(xpath[0].where.column, 3u);
    EXPECT_EQ(xpath[0].where.select, 1u);
    EXPECT_EQ(xpath[0].where.path, "Security");
    EXPECT_EQ(q.substr(xpath[0].where.offset, 8), "contains");
    EXPECT_TRUE(sub::has_errors(findings));
}

TEST(QueryLint, EntitiesAreDecodedAndOffsetsStayInTheRawText) {
    auto q = one_select("*[System[Level&lt;=3 and EventID=1 | 2]]");
    auto xpath = with_rule(sub::lint_query(q), "xpath");
    ASSERT_EQ(xpath.size(), 1u);
    EXPECT_EQ(q.substr(xpath[0].where.offset, 1), "|");
    EXPECT_TRUE(sub::lint_query(one_select("*[System[Level&lt;=3]]")).empty());
}

TEST(QueryLint, EveryRuleHasAFailingAndAPassingCase) {
    // Not well-formed.
    EXPECT_EQ(with_rule(sub::lint_query("<QueryList><Query>"), "query").size(), 1u);
    EXPECT_TRUE(sub::lint_query(one_select("*")).empty());
    // A Select without a Path.
    auto no_path =
        sub::lint_query("<QueryList><Query Id=\"0\"><Select>*</Select></Query></QueryList>");
    ASSERT_EQ(with_rule(no_path, "query").size(), 1u) << all(no_path);
    EXPECT_NE(no_path[0].describe().find("has no Path"), std::string::npos);
    EXPECT_TRUE(
        sub::lint_query("<QueryList><Query Id=\"0\" Path=\"Security\"><Select>*</Select></Query>"
                        "</QueryList>")
            .empty());
    // XPath outside the subset.
    EXPECT_EQ(with_rule(sub::lint_query(one_select("*[position()=1]")), "xpath").size(), 1u);
    EXPECT_TRUE(sub::lint_query(one_select("*[System[Level=1]]")).empty());
    // Clauses: 22 pass, 23 fail, naming the Select and the count.
    std::vector<std::uint32_t> ids;
    for (std::uint32_t i = 0; i < 23; ++i)
        ids.push_back(1000 + 2 * i);
    auto over = sub::lint_query(one_select(id_xpath(ids)));
    ASSERT_EQ(over.size(), 1u) << all(over);
    EXPECT_NE(over[0].describe().find("Select #1 (Path 'Security') has 23 clauses"),
              std::string::npos)
        << over[0].describe();
    ids.pop_back();
    EXPECT_TRUE(sub::lint_query(one_select(id_xpath(ids))).empty());
    // Selects: 256 pass, 257 fail.
    auto selects = [](std::size_t n) {
        std::string q = "<QueryList><Query Id=\"0\">";
        for (std::size_t i = 0; i < n; ++i)
            q += "<Select Path=\"Log" + std::to_string(i) + "\">*</Select>";
        return q + "</Query></QueryList>";
    };
    EXPECT_TRUE(sub::lint_query(selects(256)).empty());
    auto too_many = sub::lint_query(selects(257));
    ASSERT_EQ(too_many.size(), 1u);
    EXPECT_NE(too_many[0].describe().find("Select #257 (Path 'Log256')"), std::string::npos)
        << too_many[0].describe();
    EXPECT_NE(too_many[0].describe().find("257 Selects"), std::string::npos);
    // Channel name shape (warnings: the query is still valid).
    for (const char* bad :
         {"C:\\Windows\\System32\\winevt\\Logs\\Security.evtx", "Microsoft-Windows-Sysmon",
          "Security/", "Sec*", " Security", "Microsoft-Windows-A/B/C"}) {
        auto f = sub::lint_query(one_select("*", bad));
        ASSERT_EQ(with_rule(f, "channel").size(), 1u) << bad << "\n" << all(f);
        EXPECT_EQ(f[0].severity, sub::Severity::Warning);
        EXPECT_FALSE(sub::has_errors(f));
    }
    for (const char* good :
         {"Security", "Microsoft-Windows-Sysmon/Operational", "Windows PowerShell",
          "Microsoft-Windows-Windows Defender/Operational",
          "Microsoft-Windows-AppLocker/EXE and DLL", "Microsoft-Windows-TaskScheduler/Operational"})
        EXPECT_TRUE(sub::lint_query(one_select("*", good)).empty()) << good;
    // Duplicate Selects (whitespace and Path case do not matter); a Suppress repeated in another
    // Query is not a duplicate.
    auto dup = sub::lint_query(
        "<QueryList><Query Id=\"0\"><Select Path=\"Security\">*[System[EventID=1]]</Select>"
        "<Select Path=\"security\"> *[System[EventID=1]] </Select></Query></QueryList>");
    ASSERT_EQ(with_rule(dup, "duplicate").size(), 1u) << all(dup);
    EXPECT_NE(dup[0].describe().find("Select #2 (Path 'security') repeats Select #1"),
              std::string::npos)
        << dup[0].describe();
    EXPECT_TRUE(
        sub::lint_query("<QueryList><Query Id=\"0\"><Select Path=\"Security\">*</Select>"
                        "<Suppress Path=\"Security\">*[System[EventID=1]]</Suppress></Query>"
                        "<Query Id=\"1\"><Select Path=\"System\">*</Select>"
                        "<Suppress Path=\"Security\">*[System[EventID=1]]</Suppress></Query>"
                        "</QueryList>")
            .empty());
    // read_existing_events on a busy log.
    sub::Subscription s;
    s.name = "s";
    s.query = one_select("*");
    EXPECT_TRUE(sub::lint(s).empty());
    s.read_existing_events = true;
    auto flood = sub::lint(s);
    ASSERT_EQ(with_rule(flood, "read-existing").size(), 1u) << all(flood);
    EXPECT_FALSE(sub::has_errors(flood));
    s.query = one_select("*", "Microsoft-Windows-TaskScheduler/Operational");
    EXPECT_TRUE(sub::lint(s).empty());
}

TEST(QueryLint, EveryProblemIsListedNotOnlyTheFirst) {
    std::string q = "<QueryList><Query Id=\"0\">"
                    "<Select Path=\"Security\">*[contains(a,'b')]</Select>"
                    "<Select Path=\"System\">*[System[1]]</Select>"
                    "<Select>*</Select>"
                    "</Query></QueryList>";
    auto findings = sub::lint_query(q);
    EXPECT_EQ(with_rule(findings, "xpath").size(), 2u) << all(findings);
    EXPECT_EQ(with_rule(findings, "query").size(), 1u) << all(findings);
}

TEST(QueryFix, CompactsAndSplitsAnOverLongSelect) {
    std::vector<std::uint32_t> ids;
    for (std::uint32_t i = 4624; i <= 4634; ++i)
        ids.push_back(i);
    for (std::uint32_t i = 0; i < 20; ++i)
        ids.push_back(5000 + 2 * i); // not consecutive: stay single terms
    auto q = one_select(id_xpath(ids));
    ASSERT_TRUE(sub::has_errors(sub::lint_query(q)));
    auto fix = sub::fix_query(q);
    ASSERT_EQ(fix.changes.size(), 1u);
    EXPECT_NE(fix.query.find("(EventID&gt;=4624 and EventID&lt;=4634)"), std::string::npos)
        << fix.query;
    EXPECT_TRUE(sub::lint_query(fix.query).empty()) << all(sub::lint_query(fix.query)) << fix.query;
    EXPECT_EQ(selected_ids(fix.query, 6000), selected_ids(q, 6000));
    // The text around the Select is kept.
    EXPECT_EQ(fix.query.substr(0, 38), q.substr(0, 38));
    EXPECT_EQ(fix.query.substr(fix.query.size() - 23), q.substr(q.size() - 23));
}

TEST(QueryFix, KeepsTheSameEventIdsOverRandomIdLists) {
    std::mt19937 rng(12345);
    int split = 0; // rounds that needed more than one Select
    for (int round = 0; round < 60; ++round) {
        std::uniform_int_distribution<std::uint32_t> count(1, 120);
        std::uniform_int_distribution<std::uint32_t> id(0, 299);
        std::vector<std::uint32_t> ids(count(rng));
        for (auto& i : ids)
            i = id(rng);
        bool provider = round % 2 == 1;
        auto q = one_select(id_xpath(ids, provider ? "P" : ""));
        auto fix = sub::fix_query(q);
        SCOPED_TRACE(q);
        if (fix.query.find("<Select", fix.query.find("<Select") + 1) != std::string::npos) ++split;
        EXPECT_FALSE(sub::has_errors(sub::lint_query(fix.query)))
            << all(sub::lint_query(fix.query)) << fix.query;
        std::set<std::uint32_t> expected(ids.begin(), ids.end());
        EXPECT_EQ(selected_ids(fix.query, 300), expected) << fix.query;
        if (provider) { // the Provider test stays in every Select
            EXPECT_TRUE(selected_ids(fix.query, 300, "Security", "Q").empty()) << fix.query;
        }
        EXPECT_TRUE(selected_ids(fix.query, 300, "System").empty());
    }
    EXPECT_GT(split, 20);
}

TEST(QueryFix, LeavesWhatItCannotSplitAndDropsRepeats) {
    // 23 clauses joined by `and` (no disjunction to split): unchanged, still an error.
    std::string terms = "Level!=0";
    for (int i = 1; i < 23; ++i)
        terms += " and Level!=" + std::to_string(i);
    auto q = one_select("*[System[" + terms + "]]");
    auto fix = sub::fix_query(q);
    EXPECT_EQ(fix.query, q);
    EXPECT_TRUE(fix.changes.empty());
    // A disjunction under not() cannot be split either.
    std::string ors = "EventID=0";
    for (int i = 1; i < 30; ++i)
        ors += " or EventID=" + std::to_string(i * 3);
    auto negated = one_select("*[System[not(" + ors + ")]]");
    EXPECT_EQ(sub::fix_query(negated).query, negated);
    // Repeated Selects in one Query: the repeat goes.
    std::string dup = "<QueryList>\n<Query Id=\"0\">\n  <Select Path=\"Security\">*</Select>\n"
                      "  <Select Path=\"Security\">*</Select>\n</Query>\n</QueryList>";
    auto fixed = sub::fix_query(dup);
    EXPECT_EQ(fixed.query,
              "<QueryList>\n<Query Id=\"0\">\n  <Select Path=\"Security\">*</Select>\n</Query>\n"
              "</QueryList>");
    EXPECT_TRUE(sub::lint_query(fixed.query).empty());
}

TEST(QueryFix, CompactIds) {
    EXPECT_EQ(sub::compact_ids({5, 1, 2, 3, 9, 2}),
              (std::vector<sub::IdRange>{{1, 3}, {5, 5}, {9, 9}}));
    EXPECT_EQ(sub::compact_ids({4294967295u, 4294967294u}),
              (std::vector<sub::IdRange>{{4294967294u, 4294967295u}}));
    EXPECT_TRUE(sub::compact_ids({}).empty());
}

TEST(QueryFix, SplitsATopLevelDisjunctionKeepingTheOtherTest) {
    std::string ors;
    for (int i = 0; i < 30; ++i)
        ors += std::string(i ? " or " : "") + "*[System[EventID=" + std::to_string(10 * i) + "]]";
    auto q = one_select("(" + ors + ") and *[System[Provider[@Name='P']]]");
    auto fix = sub::fix_query(q);
    EXPECT_FALSE(sub::has_errors(sub::lint_query(fix.query))) << fix.query;
    EXPECT_EQ(selected_ids(fix.query, 300), selected_ids(q, 300));
    EXPECT_EQ(selected_ids(q, 300).size(), 30u);
    EXPECT_TRUE(selected_ids(fix.query, 300, "Security", "Q").empty());
}

TEST(QueryMatches, SelectAndSuppress) {
    std::string q = "<QueryList><Query Id=\"0\"><Select Path=\"Security\">*[System[(EventID=1 or "
                    "EventID=2)]]</Select><Suppress Path=\"Security\">*[System[EventID=2]]"
                    "</Suppress></Query></QueryList>";
    EXPECT_TRUE(sub::query_matches(q, facts(1, "Security")));
    EXPECT_FALSE(sub::query_matches(q, facts(2, "Security")));
    EXPECT_FALSE(sub::query_matches(q, facts(1, "System")));
}

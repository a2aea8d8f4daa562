// What `wec sub validate` (and apply/import) checks in a subscription's query beyond
// check_query(): each Select/Suppress XPath parsed with the subset the Windows event log accepts,
// warnings for the common mistakes that make Windows forward nothing or far too much, and the
// `--fix` rewrite of Selects over Windows' clause limit (split on the same Path, consecutive
// EventIDs compacted into ranges), which keeps the same set of events.
#pragma once

#include "subscription/subscription.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wec::subscription {

// ---- the XPath subset -----------------------------------------------------------------------
//
// Windows' event log evaluates a restricted XPath 1.0: paths from `*` (or `Event`) with
// predicates, possibly joined by `and`/`or` (`*[System[...]] and *[EventData[...]]`); inside them
// element steps (`System`, `EventData`, `Data`, ...) with their own predicates, attributes
// (`@Name`), comparisons (= != < <= > >=) of a path with a number or a string, `and`, `or`,
// `not(...)`, parentheses, `band(path, number)` and `timediff(@SystemTime) <= N`. No other
// function, axis, `//`, union, arithmetic or position.

struct XPathStep;

struct XPathExpr {
    enum class Kind { Or, And, Not, Path, Compare, Band, TimeDiff, Number, String };
    Kind kind = Kind::Path;
    std::size_t begin = 0; // byte offsets in the XPath text: [begin, end)
    std::size_t end = 0;
    std::vector<XPathExpr> args;  // Or/And: operands; Not: 1; Compare: 2; Band: path, number
    std::vector<XPathStep> steps; // Path
    std::string text;             // Compare: the operator; Number/String: the value
};

struct XPathStep {
    std::string name; // element or attribute name, or "*"
    bool attribute = false;
    std::vector<XPathExpr> predicates;
};

// A construct outside the subset, or a syntax error, at a byte offset of the XPath.
class XPathError : public wec::Error {
public:
    XPathError(std::size_t offset, const std::string& message);
    std::size_t offset() const { return offset_; }
    const std::string& message() const { return message_; }

private:
    std::size_t offset_;
    std::string message_;
};

// Parses a Select's XPath (a location path such as `*[System[EventID=4624]]`, or several joined
// by and/or: then an Or/And of Paths). Throws
// XPathError. Nesting deeper than 64 levels is an error (never a stack overflow).
XPathExpr parse_xpath(std::string_view xpath);

// ---- findings -------------------------------------------------------------------------------

enum class Severity { Error, Warning };

struct Finding {
    Severity severity = Severity::Error;
    // "query" (check_query: XML, Path, empty XPath, limits), "xpath", "channel", "duplicate",
    // "read-existing"
    std::string rule;
    QueryProblem where; // position in the query, the Select, the message
    // "error: line 3, column 9: Select #2 (Path 'Security') has 23 clauses, ..."
    std::string describe() const;
};

// Every problem of a query: check_query()'s errors, XPath outside the subset (line:column of the
// construct inside the query), and warnings: a Path not shaped like a Windows log name, a Select
// repeated (same Path and XPath).
std::vector<Finding> lint_query(std::string_view query);
// lint_query() plus the definition's own warnings: read_existing_events on a busy channel
// (Security, Sysmon, PowerShell, ForwardedEvents: every host sends its whole log on first
// connect).
std::vector<Finding> lint(const Subscription& subscription);
bool has_errors(const std::vector<Finding>& findings);

// ---- --fix ----------------------------------------------------------------------------------

struct QueryFix {
    std::string query;                // the query, rewritten where it could be
    std::vector<std::string> changes; // what was rewritten ("Select #2 (Path 'Security'): ...")
};

// Rewrites every Select over kMaxClausesPerSelect clauses whose XPath holds a disjunction that
// can be split (reached through predicates and `and` only, never under `not`): its EventID terms
// are compacted (runs of 3 or more consecutive IDs become `(EventID>=A and EventID<=B)`) and the
// disjunction is split over as many Selects on the same Path as needed, so that the union of the
// new Selects selects the same events. Repeated Selects (same element, Path and XPath) are
// dropped. The rest of the text is kept byte for byte. A query that is not well-formed is
// returned unchanged.
QueryFix fix_query(std::string_view query);

// Consecutive IDs as ranges, sorted, duplicates merged: {5,1,2,3,9} -> [1,3] [5,5] [9,9].
struct IdRange {
    std::uint32_t first = 0;
    std::uint32_t last = 0;
    bool operator==(const IdRange&) const = default;
};
std::vector<IdRange> compact_ids(std::vector<std::uint32_t> ids);

// What an event is, for select_matches(): the fields the usual filters test.
struct EventFacts {
    std::uint32_t event_id = 0;
    std::uint32_t level = 4;
    std::string provider; // Provider/@Name
    std::string channel;
};
// True when the event would be selected by the query: some Select whose Path is the event's
// channel matches and no Suppress on it does. Evaluates System/EventID, Level,
// Provider[@Name], Channel and and/or/not; any other test is false. For tests (--fix keeps the
// same events) and `wec sub validate` examples, not for filtering events.
bool query_matches(std::string_view query, const EventFacts& event);

} // namespace wec::subscription

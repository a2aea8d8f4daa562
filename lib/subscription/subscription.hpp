// A WEF subscription as the operator defines it (TOML, `wec sub apply`) and as the store keeps it:
// what clients are asked to send (query, format, timings) plus collector-side settings (allowed
// clients, URI, outputs). `public_version()` hashes only what clients see.
#pragma once

#include "common/error.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace wec::subscription {

// An invalid definition. what() = "FILE:LINE:COLUMN: reason" (line/column omitted when unknown).
class SubscriptionError : public wec::Error {
public:
    SubscriptionError(std::string source, std::uint32_t line, std::uint32_t column,
                      const std::string& reason);
    const std::string& source() const { return source_; }
    std::uint32_t line() const { return line_; }     // 1-based, 0 = unknown
    std::uint32_t column() const { return column_; } // 1-based, 0 = unknown
    const std::string& reason() const { return reason_; }

private:
    std::string source_;
    std::uint32_t line_;
    std::uint32_t column_;
    std::string reason_;
};

// A definition that is not TOML at all (a syntax error), as opposed to an invalid one.
class SubscriptionSyntaxError : public SubscriptionError {
public:
    using SubscriptionError::SubscriptionError;
};

enum class ContentFormat { Raw, RenderedText };
// Event formats of an output (event::Format has the same values in the same order).
enum class OutputFormat { Raw, Json, RawJson, Nxlog, Ecs };

// Driver-specific output settings, kept generic (each driver validates its own keys: see
// output::check_settings).
using OptionValue = std::variant<std::string, std::int64_t, bool>;

// Default of an output's `queue`: batches that may wait for it before sources get 503.
inline constexpr std::uint32_t kDefaultOutputQueue = 64;
inline constexpr std::uint32_t kMaxOutputQueue = 65536;

struct Output {
    std::string driver;                         // "files", "tcp", "syslog", "unix"
    OutputFormat format = OutputFormat::Raw;    // "raw" | "json" | "raw_json" | "nxlog" | "ecs"
    std::uint32_t queue = kDefaultOutputQueue;  // batches waiting for this output, at most
    std::map<std::string, OptionValue> options; // e.g. path = "/var/log/wec/{client}.json"
    bool operator==(const Output&) const = default;
};

// Limits Windows enforces on queries (docs/protocol.md section 6).
inline constexpr std::size_t kMaxSelectPaths = 256;
inline constexpr std::size_t kMaxClausesPerSelect = 22;

struct Subscription {
    std::string uuid; // UPPERCASE 8-4-4-4-12; empty in a fresh definition (the store assigns it)
    std::string name; // unique
    std::string description;
    std::string query; // the <QueryList> XML
    ContentFormat content_format = ContentFormat::Raw;
    std::uint32_t heartbeat_interval_s = 3600;
    // w:MaxTime, how long a source may hold events before sending a batch. 30 s as OpenWEC and the
    // Windows "MinLatency" delivery mode (Windows "Normal" uses 900 s).
    std::uint32_t max_latency_s = 30;
    std::uint32_t max_envelope_size = 512000;
    std::optional<std::uint32_t> max_elements;
    bool read_existing_events = false;
    bool ignore_channel_error = true;
    std::optional<std::string> locale;        // e.g. "en-US"
    std::optional<std::string> data_locale;   // e.g. "en-US"
    std::vector<std::string> allowed_clients; // principal globs; empty = every client
    std::vector<std::string> denied_clients;  // principal globs refused even when allowed
    std::optional<std::string> uri;           // only listed at this URI path (e.g. "/wsman/dc")
    bool enabled = true;
    std::uint32_t connection_retry_count = 5;
    std::uint32_t connection_retry_interval_s = 60;
    std::vector<Output> outputs;

    bool operator==(const Subscription&) const = default;
};

// Parses and validates a TOML definition. Keys: name, uuid, description, query | (channels
// [+ xpath, default "*"]), content_format ("Raw"|"RenderedText"), heartbeat_interval,
// max_latency, max_envelope_size, max_elements, read_existing_events, ignore_channel_error,
// locale, data_locale, allowed_clients, denied_clients, uri, enabled, connection_retry_count,
// connection_retry_interval, [[outputs]] (driver, format, driver keys). Throws SubscriptionError
// naming source_name, the line and column, and the reason (SubscriptionSyntaxError when the text
// is not TOML). With check_query false the query is not checked (`wec sub validate` lists its
// problems itself: lint()).
Subscription load_toml(std::string_view text, std::string source_name, bool check_query = true);
// Reads and parses a file (errors name the path).
Subscription load_toml_file(const std::string& path);
// A TOML text that load_toml() reads back to an equal Subscription. A query of several lines is
// written as a multi-line literal string when it can be.
std::string to_toml(const Subscription& subscription);

// Checks a definition (the same rules as load_toml, without line numbers); throws
// SubscriptionError with source `source_name`.
void validate(const Subscription& subscription, const std::string& source_name = "subscription",
              bool check_query = true);

// One problem of a <QueryList>, located in the query text.
struct QueryProblem {
    std::size_t offset = 0;   // byte offset in the query text (meaningful when line != 0)
    std::uint32_t line = 0;   // 1-based; 0 = the problem is the whole query
    std::uint32_t column = 0; // 1-based, in characters
    std::size_t select = 0; // 1-based number of the <Select>/<Suppress> (document order), 0 = none
    std::string element;    // "Select" or "Suppress" when select != 0
    std::string path;       // its Path (or its <Query>'s)
    std::string message;    // what is wrong, without the position
    // "line 3, column 9: Select #2 (Path 'Security') has 23 clauses, ..."
    std::string describe() const;
};

// Every problem that makes Windows refuse a query or forward nothing: not well-formed XML, root
// other than <QueryList>, unexpected elements, a Select/Suppress without a Path or with an empty
// XPath, more than kMaxClausesPerSelect clauses in a Select, more than kMaxSelectPaths Selects.
// Empty when the query is valid. A query that is not well-formed gives one problem only.
std::vector<QueryProblem> check_query(std::string_view query);
// Throws SubscriptionError (source_name, line 0) when check_query finds a problem; the reason is
// "query: " + the first problem, then the others (at most 100 shown).
void validate_query(std::string_view query, const std::string& source_name = "query");
// Counts the clauses of one Select XPath: 1 + the number of `and`/`or` operators outside string
// literals, at any bracket depth (an approximation of what Windows counts).
std::size_t count_clauses(std::string_view xpath);
// <QueryList><Query Id="0"><Select Path="C1">xpath</Select>...</Query></QueryList>, escaped.
std::string build_query(std::span<const std::string> channels, std::string_view xpath);

// A deterministic UUID-formatted (UPPERCASE) hash of what clients see in the Subscribe envelope:
// uuid (it is in the NotifyTo address), name, query, content format, heartbeat, latency, envelope
// size, max elements, read existing, ignore channel error, locales, connection retry. Not outputs,
// allowed or denied clients, uri, description or enabled.
std::string public_version(const Subscription& subscription);

// Case-insensitive glob: `*` any run (also empty), `?` one character; everything else literal.
bool glob_match(std::string_view pattern, std::string_view text);
// True when no denied_clients pattern matches the client identity and allowed_clients is empty
// or one of its patterns matches it (a denial wins over an allowance).
bool allows(const Subscription& subscription, std::string_view client_identity);

// A random (version 4) UUID, UPPERCASE.
std::string new_uuid();
// True for 8-4-4-4-12 hex digits (either case).
bool is_uuid(std::string_view text);

std::string_view to_string(ContentFormat format);
std::string_view to_string(OutputFormat format);

} // namespace wec::subscription

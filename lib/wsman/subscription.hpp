// A WEF subscription as clients see it: the Subscribe envelope a collector lists in its
// EnumerateResponse. One function renders it, for `wec serve` and `wec sub render` alike.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace wec::wsman {

enum class ContentFormat { Raw, RenderedText };

// HTTP + Kerberos/SPNEGO: profile …/secprofile/http/spnego-kerberos.
struct KerberosPolicy {};
// HTTPS + client certificates: profile …/secprofile/https/mutual, with the SHA-1 thumbprints (hex)
// of the CAs allowed to issue client certificates (auth:Thumbprint Role="issuer").
struct TlsPolicy {
    std::vector<std::string> issuer_thumbprints;
};
using AuthPolicy = std::variant<KerberosPolicy, TlsPolicy>;

struct SubscriptionSpec {
    std::string uuid;    // stable id of the subscription (the caller puts it in notify_to)
    std::string version; // bare UUID; m:Version and e:Identifier (as Windows does). Changing it
                         // makes clients re-subscribe at their next Refresh.
    std::string name;
    ContentFormat content_format = ContentFormat::Raw;
    std::uint64_t heartbeat_interval_ms = 3'600'000;
    std::uint32_t connection_retry_count = 5;
    std::uint64_t connection_retry_interval_ms = 60'000;
    std::uint64_t max_latency_ms = 30'000; // w:MaxTime: how long a source may batch events
    std::uint32_t max_envelope_size = 512000;
    std::optional<std::uint32_t> max_elements;
    bool read_existing_events = false; // with no bookmark: start at the earliest event
    bool ignore_channel_error = true;
    std::optional<std::string> locale;      // e.g. "en-US"
    std::optional<std::string> data_locale; // e.g. "en-US"
    std::string notify_to;                  // where sources push, e.g. http://host:5985/wsman/…
    AuthPolicy auth;
    std::string query;                   // <QueryList> XML, inserted as XML
    std::optional<std::string> bookmark; // <BookmarkList> XML stored for this client
    bool send_bookmarks = true;
};

// The essentials of a Subscribe envelope, as parsed (from an EnumerateResponse or a Subscribe).
struct Subscription {
    std::string version;        // m:Version text ("uuid:…"); empty for a bare Subscribe message
    std::string envelope;       // the whole Subscribe s:Envelope, serialized compactly
    std::string name;           // the SubscriptionName option
    std::string content_format; // "Raw" | "RenderedText"
    std::string compression;    // "SLDC"
    bool read_existing_events = false;
    bool ignore_channel_error = false;
    std::string end_to;
    std::string notify_to;  // e:NotifyTo/a:Address
    std::string identifier; // e:Identifier of NotifyTo (trimmed)
    std::string heartbeats; // duration, e.g. "PT3600.000S"
    std::string connection_retry;
    std::optional<std::uint32_t> connection_retry_total;
    std::string max_time;
    std::optional<std::uint32_t> max_elements;
    std::optional<std::uint32_t> max_envelope_size;
    std::string locale;
    std::string data_locale;
    std::string content_encoding;
    std::string auth_profile;
    std::vector<std::string> issuer_thumbprints;
    std::string query;    // the <QueryList> XML of w:Filter
    std::string bookmark; // the <BookmarkList> XML, or the text (…/bookmark/earliest)
    bool send_bookmarks = false;
};

inline constexpr std::string_view kBookmarkEarliest =
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/bookmark/earliest";
inline constexpr std::string_view kProfileKerberos =
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/spnego-kerberos";
inline constexpr std::string_view kProfileTls =
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual";

// The Subscribe s:Envelope (UTF-8, no XML declaration). Throws wec::Error when the query or the
// bookmark is not well-formed XML (it would corrupt the whole EnumerateResponse).
std::string build_subscribe_envelope(const SubscriptionSpec& spec);

// xs:duration as Windows writes it: format_duration(3600000) == "PT3600.000S",
// format_duration(60000, 1) == "PT60.0S".
std::string format_duration(std::uint64_t ms, int decimals = 3);
// Parses PnDTnHnMn.nS (no years/months); nullopt when malformed.
std::optional<std::uint64_t> parse_duration_ms(std::string_view duration);

// NotifyTo addresses: `<scheme>://<host>:<port>/wsman/subscriptions/<UUID>`, the URL a source
// pushes a subscription's events to.
inline constexpr std::string_view kSubscriptionsPath = "/wsman/subscriptions/";

// The subscription UUID in such a path (`/wsman/subscriptions/<uuid>[/...][?...]`, the prefix
// compared case-insensitively), uppercase; empty when the path is not under it.
std::string subscription_from_path(std::string_view path);

// The path of a URL ("http://host:5985/wsman/x?y" -> "/wsman/x?y"; "" when it has none); a
// string without a scheme is taken as a path already.
std::string_view path_of_url(std::string_view url);

} // namespace wec::wsman

// Windows Event Collector subscription XML (what `wecutil gs NAME /f:xml` prints and `wecutil cs
// FILE` reads) to and from a Subscription, so that subscriptions move between a Windows collector
// and wec with one command and nothing silently lost: whatever does not map is named in a warning,
// and the Windows-only settings worth keeping (LogFile, TransportName, the SDDL, ...) are kept as
// "[wecutil] Key: value" lines at the end of the description, from which the writer restores them.
#pragma once

#include "subscription/subscription.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::subscription {

inline constexpr std::string_view kWecutilNamespace =
    "http://schemas.microsoft.com/2006/03/windows/events/subscription";
// The resource URI of every event-log subscription (<Uri>).
inline constexpr std::string_view kEventLogUri =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/EventLog";
// What Event Viewer writes in <AllowedSourceDomainComputers> by default (Domain Computers), and
// what the writer uses when the description keeps no other SDDL.
inline constexpr std::string_view kDefaultDomainComputersSddl = "O:NSG:BAD:P(A;;GA;;;DC)S:";
// Largest subscription XML file read (the largest query is 256 KiB).
inline constexpr std::size_t kMaxWindowsXmlBytes = 4 * 1024 * 1024;

// A subscription XML file wec cannot take. what() = "FILE:LINE:COLUMN: reason".
class WindowsXmlError : public SubscriptionError {
public:
    enum class Kind {
        Unreadable,         // too large, or holds a NUL character
        Malformed,          // not well-formed XML
        Namespace,          // the root is not <Subscription> in kWecutilNamespace
        CollectorInitiated, // SubscriptionType CollectorInitiated (wec serves source-initiated
                            // only)
        Uri,                // <Uri> is not kEventLogUri
        Invalid,            // a value wec cannot take: a bad boolean or number, an unknown mode or
                            // content format, no SubscriptionId or Query, an invalid query, ...
    };
    WindowsXmlError(Kind kind, std::string source, std::uint32_t line, std::uint32_t column,
                    const std::string& reason);
    Kind kind() const { return kind_; }

private:
    Kind kind_;
};

// Something of the file that wec does not use as Windows does, or at all.
struct XmlWarning {
    std::string element;      // e.g. "LogFile", "Delivery/Batching/MaxLatencyTime"; "" = the file
    std::uint32_t line = 0;   // 1-based, 0 = unknown
    std::uint32_t column = 0; // 1-based, in characters
    std::string message;
    // "LINE:COLUMN: ELEMENT: MESSAGE" (the parts that are known)
    std::string describe() const;
};

struct WindowsImport {
    Subscription subscription; // valid (validate() passes); uuid empty
    std::vector<XmlWarning> warnings;
};

struct WindowsReadOptions {
    // Refuse a query check_query() finds a problem in. `wec sub validate` turns it off to list
    // every problem itself (lint()).
    bool check_query = true;
};

// Reads a subscription XML file: UTF-8 (with or without a BOM) or UTF-16 LE/BE with a BOM, as
// wecutil writes it. Throws WindowsXmlError naming source_name, the line and column.
WindowsImport read_windows_xml(std::span<const std::uint8_t> bytes, const std::string& source_name,
                               const WindowsReadOptions& options = {});
WindowsImport read_windows_xml_file(const std::string& path,
                                    const WindowsReadOptions& options = {});

// True when `bytes` start like an XML document (a UTF-16 BOM, or '<' after an optional UTF-8 BOM
// and whitespace) rather than a TOML definition.
bool looks_like_xml(std::span<const std::uint8_t> bytes);

// Windows' ConfigurationMode. Each mode but Custom stands for fixed delivery values.
enum class ConfigurationMode { Normal, Custom, MinLatency, MinBandwidth };
std::string_view to_string(ConfigurationMode mode);

struct DeliveryValues {
    std::optional<std::uint32_t> max_items; // events per batch; unset = no limit
    std::uint32_t max_latency_s = 0;
    std::uint32_t heartbeat_s = 0;
};
// The delivery values Windows uses for a mode other than Custom (for Custom: wec's defaults).
DeliveryValues delivery_values(ConfigurationMode mode);

struct WindowsXmlOptions {
    // Write <SubscriptionType>SourceInitiated</SubscriptionType>. Without it the file suits
    // `wecutil ss NAME /c:FILE` (updating a subscription, whose type cannot change).
    bool subscription_type = true;
};

struct WindowsExport {
    std::string xml;                   // UTF-8, what `wecutil cs FILE` accepts
    std::vector<std::string> warnings; // settings that have no place in the XML
};

// The subscription as Windows subscription XML: SourceInitiated, ConfigurationMode Custom with
// its delivery values (seconds -> milliseconds), the query in CDATA, elements in the order
// wecutil writes them. read_windows_xml() of the result gives the subscription back (outputs,
// uri and the other collector-side settings aside: they are in `warnings`).
WindowsExport to_windows_xml(const Subscription& subscription,
                             const WindowsXmlOptions& options = {});

// One access control entry of an SDDL DACL, e.g. "(A;;GA;;;DC)".
struct SddlAce {
    std::string type;    // "A" allow, "D" deny, or another ACE type as written
    std::string rights;  // e.g. "GA"
    std::string sid;     // as written: an alias ("DC") or "S-1-..."
    std::string account; // what the SID is ("Domain Computers (S-1-5-21-<domain>-515)"), or a
                         // description of an unknown one
};
struct Sddl {
    std::vector<SddlAce> dacl;
    std::string error; // why the string could not be parsed ("" when it could)
};
// Parses the DACL (D:) of an SDDL string; never throws.
Sddl parse_sddl(std::string_view sddl);
// What a SID is ("Domain Computers (S-1-5-21-<domain>-515)"), for the well-known ones wecutil
// files use; "" for others.
std::string well_known_sid(std::string_view sid);

} // namespace wec::subscription

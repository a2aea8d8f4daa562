// Windows subscription XML (wecutil) <-> Subscription: the mapping of every element, the
// warnings for what does not map, typed errors with positions, and round trips.
#include "common/files.hpp"
#include "subscription/subscription.hpp"
#include "subscription/windows_xml.hpp"
#include "text/text.hpp"

#include <algorithm>
#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace sub = wec::subscription;

namespace {

std::string data(const std::string& name) {
    return std::string(WEC_TEST_DATA) + "/subscriptions/" + name;
}

sub::WindowsImport read_text(const std::string& xml, const std::string& source = "t.xml") {
    return sub::read_windows_xml(wec::as_bytes(xml), source);
}

// The WindowsXmlError of reading `xml`; fails the test when there is none.
sub::WindowsXmlError error_of(const std::string& xml) {
    try {
        read_text(xml);
    } catch (const sub::WindowsXmlError& e) {
        return e;
    }
    ADD_FAILURE() << "no WindowsXmlError for:\n" << xml;
    return sub::WindowsXmlError(sub::WindowsXmlError::Kind::Invalid, "", 0, 0, "none");
}

// The warning about `element`, or nullptr.
const sub::XmlWarning* warning(const sub::WindowsImport& r, const std::string& element) {
    for (const auto& w : r.warnings)
        if (w.element == element) return &w;
    return nullptr;
}

std::string all_warnings(const sub::WindowsImport& r) {
    std::string out;
    for (const auto& w : r.warnings)
        out += w.describe() + "\n";
    return out;
}

const std::string kHead =
    "<Subscription xmlns=\"http://schemas.microsoft.com/2006/03/windows/events/subscription\">\n";
const std::string kQueryElement = "  <Query><![CDATA[<QueryList><Query Id=\"0\"><Select "
                                  "Path=\"Security\">*</Select></Query></QueryList>]]></Query>\n";

// A minimal valid file with `body` (elements) added after the SubscriptionId.
std::string minimal(const std::string& body) {
    return kHead + "  <SubscriptionId>s</SubscriptionId>\n" + body + kQueryElement +
           "</Subscription>\n";
}

std::string custom_delivery(const std::string& latency_ms, const std::string& heartbeat_ms) {
    return minimal("  <ConfigurationMode>Custom</ConfigurationMode>\n"
                   "  <Delivery Mode=\"Push\"><Batching><MaxLatencyTime>" +
                   latency_ms + "</MaxLatencyTime></Batching><PushSettings><Heartbeat Interval=\"" +
                   heartbeat_ms + "\"/></PushSettings></Delivery>\n");
}

} // namespace

TEST(WindowsXmlRead, CustomSubscriptionAsPublishedCollectionsWriteIt) {
    auto r = sub::read_windows_xml_file(data("logon-custom.xml"));
    const auto& s = r.subscription;
    EXPECT_EQ(s.name, "Logon-Logoff");
    EXPECT_TRUE(s.uuid.empty());
    EXPECT_TRUE(s.enabled);
    EXPECT_EQ(s.content_format, sub::ContentFormat::RenderedText);
    // Milliseconds in the XML, seconds in wec.
    EXPECT_EQ(s.max_latency_s, 300u);         // <MaxLatencyTime>300000</MaxLatencyTime>
    EXPECT_EQ(s.heartbeat_interval_s, 1800u); // <Heartbeat Interval="1800000"/>
    EXPECT_EQ(s.max_elements, 10u);
    EXPECT_FALSE(s.read_existing_events);
    EXPECT_EQ(s.locale, "en-US");
    EXPECT_TRUE(s.allowed_clients.empty());
    EXPECT_TRUE(s.denied_clients.empty());
    // The query is the CDATA as written (outer whitespace aside): comments, Suppress, escapes.
    auto file = wec::read_file(data("logon-custom.xml"));
    std::string text(wec::as_chars(file));
    auto begin = text.find("<QueryList>");
    auto end = text.find("</QueryList>") + std::string("</QueryList>").size();
    EXPECT_EQ(s.query, text.substr(begin, end - begin));
    EXPECT_NE(s.query.find("<!-- the machine's own account is noise -->"), std::string::npos);
    EXPECT_NE(s.query.find("<Suppress Path=\"Security\">"), std::string::npos);
    EXPECT_NE(s.query.find("EventID &gt;=4800"), std::string::npos);
    // Windows-only settings that are not the defaults stay in the description.
    EXPECT_EQ(s.description,
              "Interactive and network logons, logoffs and lock/unlock.\n"
              "[wecutil] LogFile: WEC-Logon\n"
              "[wecutil] AllowedSourceDomainComputers: O:NSG:NSD:(A;;GA;;;DC)(A;;GA;;;NS)(A;;GA;;;"
              "DD)");

    // Every setting that does not map is named, with its position.
    const auto* w = warning(r, "LogFile");
    ASSERT_NE(w, nullptr) << all_warnings(r);
    EXPECT_EQ(w->line, 37u);
    EXPECT_EQ(w->column, 3u);
    EXPECT_NE(w->message.find("'WEC-Logon' not applicable"), std::string::npos) << w->message;
    w = warning(r, "AllowedSourceDomainComputers");
    ASSERT_NE(w, nullptr) << all_warnings(r);
    EXPECT_EQ(w->line, 39u);
    for (const char* part :
         {"allows Domain Computers (S-1-5-21-<domain>-515), Network Service (S-1-5-20), Domain "
          "Controllers (S-1-5-21-<domain>-516)",
          "allowed_clients = [\"*$@YOUR.REALM\"]", "wec does not evaluate Windows groups",
          "kept in the description"})
        EXPECT_NE(w->message.find(part), std::string::npos) << part << " in " << w->message;
    w = warning(r, "");
    ASSERT_NE(w, nullptr) << all_warnings(r);
    EXPECT_NE(w->message.find("TransportName 'http'"), std::string::npos) << w->message;
    EXPECT_EQ(r.warnings.size(), 3u) << all_warnings(r);
    EXPECT_EQ(r.warnings[0].describe().rfind("37:3: LogFile: 'WEC-Logon' not applicable", 0), 0u)
        << r.warnings[0].describe();
}

TEST(WindowsXmlRead, MillisecondsBecomeSeconds) {
    struct Case {
        const char* latency_ms;
        const char* heartbeat_ms;
        std::uint32_t latency_s;
        std::uint32_t heartbeat_s;
        std::size_t warnings;
    };
    for (const auto& c : std::vector<Case>{{"30000", "3600000", 30, 3600, 0},
                                           {"900000", "900000", 900, 900, 0},
                                           {"1000", "21600000", 1, 21600, 0},
                                           {"1500", "2499", 2, 2, 2}, // rounded, said
                                           {"10", "0", 1, 1, 2},      // below 1 s
                                           {"700000000", "604800000", 604800, 604800, 1}}) {
        auto r = read_text(custom_delivery(c.latency_ms, c.heartbeat_ms));
        EXPECT_EQ(r.subscription.max_latency_s, c.latency_s) << c.latency_ms;
        EXPECT_EQ(r.subscription.heartbeat_interval_s, c.heartbeat_s) << c.heartbeat_ms;
        auto delivery = std::count_if(r.warnings.begin(), r.warnings.end(), [](const auto& w) {
            return w.element.rfind("Delivery", 0) == 0;
        });
        EXPECT_EQ(static_cast<std::size_t>(delivery), c.warnings) << all_warnings(r);
    }
    auto r = sub::read_windows_xml_file(data("custom-milliseconds.xml"));
    EXPECT_EQ(r.subscription.max_latency_s, 1u);
    EXPECT_EQ(r.subscription.heartbeat_interval_s, 2u);
    EXPECT_EQ(r.subscription.max_elements, 1u);
    const auto* w = warning(r, "Delivery/Batching/MaxLatencyTime");
    ASSERT_NE(w, nullptr) << all_warnings(r);
    EXPECT_EQ(w->describe(), "10:7: Delivery/Batching/MaxLatencyTime: 10 ms is below wec's "
                             "smallest value, 1 s: 1 s is used");
    w = warning(r, "Delivery/PushSettings/Heartbeat");
    ASSERT_NE(w, nullptr) << all_warnings(r);
    EXPECT_EQ(w->message, "1500 ms is not a whole number of seconds: 2 s is used");

    // And back: seconds -> milliseconds.
    auto x = sub::to_windows_xml(sub::read_windows_xml_file(data("logon-custom.xml")).subscription);
    EXPECT_NE(x.xml.find("<MaxLatencyTime>300000</MaxLatencyTime>"), std::string::npos) << x.xml;
    EXPECT_NE(x.xml.find("<Heartbeat Interval=\"1800000\"/>"), std::string::npos) << x.xml;
    EXPECT_NE(x.xml.find("<MaxItems>10</MaxItems>"), std::string::npos) << x.xml;
}

TEST(WindowsXmlRead, ConfigurationModesMeanWindowsDeliveryValues) {
    auto normal = sub::delivery_values(sub::ConfigurationMode::Normal);
    EXPECT_EQ(normal.max_items, 5u);
    EXPECT_EQ(normal.max_latency_s, 900u);
    EXPECT_EQ(normal.heartbeat_s, 900u);
    auto latency = sub::delivery_values(sub::ConfigurationMode::MinLatency);
    EXPECT_FALSE(latency.max_items);
    EXPECT_EQ(latency.max_latency_s, 30u);
    EXPECT_EQ(latency.heartbeat_s, 3600u);
    auto bandwidth = sub::delivery_values(sub::ConfigurationMode::MinBandwidth);
    EXPECT_FALSE(bandwidth.max_items);
    EXPECT_EQ(bandwidth.max_latency_s, 21600u);
    EXPECT_EQ(bandwidth.heartbeat_s, 21600u);

    auto r = sub::read_windows_xml_file(data("normal.xml"));
    EXPECT_EQ(r.subscription.max_elements, 5u);
    EXPECT_EQ(r.subscription.max_latency_s, 900u);
    EXPECT_EQ(r.subscription.heartbeat_interval_s, 900u);
    EXPECT_EQ(r.subscription.description, "");
    EXPECT_EQ(r.warnings.size(), 1u) << all_warnings(r); // the SDDL explanation only

    // MinBandwidth with other Delivery values: Windows ignores them, and says which.
    r = sub::read_windows_xml_file(data("minbandwidth.xml"));
    EXPECT_FALSE(r.subscription.max_elements);
    EXPECT_EQ(r.subscription.max_latency_s, 21600u);
    EXPECT_EQ(r.subscription.heartbeat_interval_s, 21600u);
    const auto* w = warning(r, "Delivery");
    ASSERT_NE(w, nullptr) << all_warnings(r);
    EXPECT_EQ(w->line, 9u);
    EXPECT_EQ(w->message,
              "MaxItems 50, MaxLatencyTime 60000 ms ignored, as Windows does: ConfigurationMode "
              "MinBandwidth means max_latency 21600 s, heartbeat_interval 21600 s "
              "(ConfigurationMode Custom would use the Delivery values)");
    // TransportPort is kept; the default SDDL, TransportName and LogFile are not.
    EXPECT_EQ(r.subscription.description,
              "Slow links: MinBandwidth. The Delivery values below are ignored by Windows.\n"
              "[wecutil] TransportPort: 5985");

    // MinLatency without a Delivery element; no ConfigurationMode at all = Normal.
    r = read_text(minimal("  <ConfigurationMode>MinLatency</ConfigurationMode>\n"));
    EXPECT_EQ(r.subscription.max_latency_s, 30u);
    EXPECT_EQ(r.subscription.heartbeat_interval_s, 3600u);
    r = read_text(minimal(""));
    EXPECT_EQ(r.subscription.max_latency_s, 900u);
    ASSERT_NE(warning(r, "ConfigurationMode"), nullptr) << all_warnings(r);
    // Custom without values: wec's defaults, named.
    r = read_text(minimal("  <ConfigurationMode>Custom</ConfigurationMode>\n"));
    EXPECT_EQ(r.subscription.max_latency_s, 30u);
    EXPECT_EQ(r.subscription.heartbeat_interval_s, 3600u);
    ASSERT_NE(warning(r, "Delivery/Batching/MaxLatencyTime"), nullptr) << all_warnings(r);
    ASSERT_NE(warning(r, "Delivery/PushSettings/Heartbeat"), nullptr) << all_warnings(r);
    EXPECT_EQ(error_of(minimal("  <ConfigurationMode>Fast</ConfigurationMode>\n")).reason(),
              "ConfigurationMode: expected Normal, Custom, MinLatency or MinBandwidth, got 'Fast'");
}

TEST(WindowsXmlRead, Utf16WithByteOrderMarkAsWecutilWritesIt) {
    auto le = sub::read_windows_xml_file(data("wecutil-export-utf16le.xml"));
    auto be = sub::read_windows_xml_file(data("wecutil-export-utf16be.xml"));
    EXPECT_EQ(le.subscription, be.subscription);
    const auto& s = le.subscription;
    EXPECT_EQ(s.name, "Servers Sécurité");
    EXPECT_FALSE(s.enabled);
    EXPECT_TRUE(s.read_existing_events);
    EXPECT_EQ(s.content_format, sub::ContentFormat::Raw); // Events
    EXPECT_EQ(s.locale, "fr-FR");
    EXPECT_EQ(s.max_latency_s, 30u);
    EXPECT_EQ(s.heartbeat_interval_s, 3600u);
    EXPECT_EQ(s.query, "<QueryList><Query Id=\"0\"><Select Path=\"System\">*[System[(Level=1 or "
                       "Level=2 or Level=3)]]</Select><Select Path=\"Microsoft-Windows-Windows "
                       "Defender/Operational\">*</Select></Query></QueryList>");
    EXPECT_EQ(s.allowed_clients,
              (std::vector<std::string>{"*.dmz.example.org", "bastion01.example.org"}));
    EXPECT_EQ(s.denied_clients, std::vector<std::string>{"test-*.dmz.example.org"});
    EXPECT_EQ(s.description,
              "Exported with wecutil gs \"Servers Sécurité\" /f:xml\n"
              "[wecutil] TransportName: HTTPS\n"
              "[wecutil] IssuerCA: "
              "3B8F2C1A9D4E5F60718293A4B5C6D7E8F9012345,AA11BB22CC33DD44EE55FF66007788990A1B2C3D\n"
              "[wecutil] AllowedSourceDomainComputers: "
              "O:NSG:BAD:P(A;;GA;;;S-1-5-21-3623811015-3361044348-30300820-515)(A;;GA;;;S-1-5-21-"
              "3623811015-3361044348-30300820-1107)(D;;GA;;;S-1-5-21-3623811015-3361044348-"
              "30300820-516)S:");
    // Positions count lines of the decoded text (CRLF = one line break).
    const auto* w = warning(le, "TransportName");
    ASSERT_NE(w, nullptr) << all_warnings(le);
    EXPECT_EQ(w->line, 21u);
    EXPECT_EQ(w->column, 2u); // after a tab
    w = warning(le, "AllowedSourceDomainComputers");
    ASSERT_NE(w, nullptr) << all_warnings(le);
    EXPECT_EQ(w->line, 39u);
    for (const char* part :
         {"allows Domain Computers (S-1-5-21-<domain>-515), a domain group or account "
          "(S-1-5-21-3623811015-3361044348-30300820-1107, RID 1107) whose members wec cannot "
          "look up and denies Domain Controllers (S-1-5-21-<domain>-516)"})
        EXPECT_NE(w->message.find(part), std::string::npos) << w->message;
    w = warning(le, "AllowedSourceNonDomainComputers/AllowedSubjectList");
    ASSERT_NE(w, nullptr) << all_warnings(le);
    EXPECT_NE(w->message.find("mapped to allowed_clients"), std::string::npos);
    w = warning(le, "AllowedSourceNonDomainComputers/AllowedIssuerCAList");
    ASSERT_NE(w, nullptr) << all_warnings(le);
    EXPECT_EQ(w->line, 27u);
    EXPECT_NE(w->message.find("docs/tls.md"), std::string::npos);

    // The same text in UTF-8, with and without a BOM, reads the same.
    auto bytes = wec::read_file(data("wecutil-export-utf16le.xml"));
    auto utf8 = wec::text::utf16_to_utf8(bytes);
    EXPECT_EQ(read_text(utf8).subscription, s);
    EXPECT_EQ(read_text("\xEF\xBB\xBF" + utf8).subscription, s);
    // UTF-16 LE without a BOM too (the first character, '<', gives it away).
    auto no_bom = std::vector<std::uint8_t>(bytes.begin() + 2, bytes.end());
    EXPECT_EQ(sub::read_windows_xml(no_bom, "x").subscription, s);
    EXPECT_TRUE(sub::looks_like_xml(bytes));
    EXPECT_TRUE(sub::looks_like_xml(wec::as_bytes("\xEF\xBB\xBF\n  <Subscription/>")));
    EXPECT_FALSE(sub::looks_like_xml(wec::as_bytes("name = \"x\"\n")));
    EXPECT_FALSE(sub::looks_like_xml({}));
}

TEST(WindowsXmlRead, CollectorInitiatedIsRefusedWithTheReason) {
    try {
        sub::read_windows_xml_file(data("collector-initiated.xml"));
        FAIL() << "read a collector-initiated subscription";
    } catch (const sub::WindowsXmlError& e) {
        EXPECT_EQ(e.kind(), sub::WindowsXmlError::Kind::CollectorInitiated);
        EXPECT_EQ(e.line(), 3u);
        EXPECT_EQ(e.column(), 3u);
        std::string what = e.what();
        EXPECT_EQ(what.rfind(data("collector-initiated.xml") + ":3:3: SubscriptionType: "
                                                               "CollectorInitiated is not "
                                                               "supported",
                             0),
                  0u)
            << what;
        EXPECT_NE(what.find("Configure target Subscription Manager"), std::string::npos);
    }
}

TEST(WindowsXmlRead, ErrorsAreTypedAndPositioned) {
    using Kind = sub::WindowsXmlError::Kind;
    auto e = error_of(kHead + "  <SubscriptionId>x</SubscriptionID>\n</Subscription>\n");
    EXPECT_EQ(e.kind(), Kind::Malformed);
    EXPECT_EQ(e.line(), 2u);
    EXPECT_EQ(std::string(e.what()).rfind("t.xml:2:", 0), 0u) << e.what();

    e = error_of("<Subscription xmlns=\"http://schemas.microsoft.com/windows/events/2004/08/"
                 "events\"><SubscriptionId>x</SubscriptionId></Subscription>");
    EXPECT_EQ(e.kind(), Kind::Namespace);
    EXPECT_EQ(std::string(e.what()),
              "t.xml:1:1: namespace 'http://schemas.microsoft.com/windows/events/2004/08/events' "
              "is not the Windows subscription namespace "
              "'http://schemas.microsoft.com/2006/03/windows/events/subscription'");
    e = error_of("<?xml version=\"1.0\"?>\n<QueryList/>");
    EXPECT_EQ(e.kind(), Kind::Namespace);
    EXPECT_EQ(e.line(), 2u);

    e = error_of(minimal("  <Uri>http://schemas.microsoft.com/wbem/wsman/1/windows/Wmi</Uri>\n"));
    EXPECT_EQ(e.kind(), Kind::Uri);
    EXPECT_EQ(e.line(), 3u);
    EXPECT_EQ(e.column(), 3u);
    // The URI compares case-insensitively, as Windows does.
    EXPECT_NO_THROW(read_text(
        minimal("  <Uri>HTTP://schemas.microsoft.com/wbem/wsman/1/windows/eventlog</Uri>\n")));

    e = error_of(minimal("  <Enabled>yes</Enabled>\n"));
    EXPECT_EQ(e.kind(), Kind::Invalid);
    EXPECT_EQ(std::string(e.what()), "t.xml:3:3: Enabled: expected true or false, got 'yes'");
    e = error_of(minimal("  <Enabled>true</Enabled>\n  <Enabled>false</Enabled>\n"));
    EXPECT_EQ(std::string(e.what()), "t.xml:4:3: Enabled: given twice (first at line 3, column 3)");
    e = error_of(minimal("  <ContentFormat>Xml</ContentFormat>\n"));
    EXPECT_EQ(e.reason(), "ContentFormat: expected Events or RenderedText, got 'Xml'");
    e = error_of(custom_delivery("30 s", "1000"));
    EXPECT_EQ(e.reason(), "MaxLatencyTime: expected a non-negative integer, got '30 s'");
    e = error_of(minimal("  <SubscriptionType>Push</SubscriptionType>\n"));
    EXPECT_EQ(e.kind(), Kind::Invalid);
    e = error_of(kHead + kQueryElement + "</Subscription>");
    EXPECT_EQ(std::string(e.what()), "t.xml:1:1: Subscription: no <SubscriptionId>");
    e = error_of(kHead + "<SubscriptionId>x</SubscriptionId></Subscription>");
    EXPECT_EQ(e.reason(), "Subscription: no <Query>");
    e = error_of(kHead + "<SubscriptionId> </SubscriptionId>" + kQueryElement + "</Subscription>");
    EXPECT_EQ(e.reason(), "SubscriptionId: must not be empty");
    e = error_of(std::string("<Subscription>\0</Subscription>", 30));
    EXPECT_EQ(e.kind(), Kind::Unreadable);
    std::string huge(sub::kMaxWindowsXmlBytes + 1, ' ');
    EXPECT_EQ(error_of(huge).kind(), Kind::Unreadable);
    // A query Windows cannot parse is an error at its position in the file.
    e = error_of(kHead + "<SubscriptionId>x</SubscriptionId>\n<Query><![CDATA[<QueryList>\n"
                         "<Query Id=\"0\"><Select>*</Select></Query></QueryList>]]></Query>\n"
                         "</Subscription>");
    EXPECT_EQ(std::string(e.what()),
              "t.xml:4:15: Query: Select #1 has no Path (and its <Query> has none)");
}

TEST(WindowsXmlRead, QueryOverWindowsLimitsIsAnErrorAtTheSelect) {
    try {
        sub::read_windows_xml_file(data("too-many-clauses.xml"));
        FAIL() << "read a Select of 23 clauses";
    } catch (const sub::WindowsXmlError& e) {
        EXPECT_EQ(e.kind(), sub::WindowsXmlError::Kind::Invalid);
        EXPECT_EQ(e.line(), 11u);
        EXPECT_EQ(e.column(), 9u);
        EXPECT_EQ(e.reason(), "Query: Select #2 (Path 'Security') has 23 clauses, more than 22 "
                              "(Windows would forward nothing)");
    }
    // More than 256 Selects: the first one over is named.
    std::string q = "<QueryList><Query Id=\"0\">";
    for (int i = 0; i < 257; ++i)
        q += "\n<Select Path=\"C" + std::to_string(i) + "\">*</Select>";
    q += "</Query></QueryList>";
    auto e = error_of(kHead + "<SubscriptionId>x</SubscriptionId>\n<Query><![CDATA[" + q +
                      "]]></Query></Subscription>");
    EXPECT_EQ(e.line(), 260u); // Select #1 is on line 4
    EXPECT_EQ(e.reason(), "Query: Select #257 (Path 'C256') is over the limit: the QueryList has "
                          "257 Selects, more than 256 (Windows limit)");
    // A query that is not well-formed.
    e = error_of(kHead + "<SubscriptionId>x</SubscriptionId>\n<Query><![CDATA[<QueryList><Query>"
                         "]]></Query></Subscription>");
    EXPECT_EQ(e.line(), 3u);
    EXPECT_EQ(e.reason().rfind("Query: not well-formed XML", 0), 0u) << e.reason();
}

TEST(WindowsXmlRead, WhatDoesNotMapIsNamed) {
    auto r = read_text(kHead +
                       "  <SubscriptionId>s</SubscriptionId>\n"
                       "  <Expires>2030-01-01T00:00:00.000Z</Expires>\n"
                       "  <CommonUserName>EXAMPLE\\svc</CommonUserName>\n"
                       "  <Frobnicate>1</Frobnicate>\n"
                       "  <Locale Language=\"de-DE\" Region=\"x\"/>\n"
                       "  <Delivery Mode=\"Pull\"><PullSettings/></Delivery>\n" +
                       kQueryElement +
                       "  <AllowedSourceNonDomainComputers><AllowedSubjectList><Subject>bad "
                       "subject</Subject></AllowedSubjectList></AllowedSourceNonDomainComputers>\n"
                       "  <AllowedSourceDomainComputers></AllowedSourceDomainComputers>\n"
                       "</Subscription>");
    for (const char* element :
         {"Expires", "CommonUserName", "Frobnicate", "Locale", "Delivery", "Delivery/PullSettings",
          "AllowedSourceNonDomainComputers/AllowedSubjectList/Subject",
          "AllowedSourceDomainComputers", "Uri", "SubscriptionType", "ConfigurationMode",
          "ContentFormat"})
        EXPECT_NE(warning(r, element), nullptr) << element << " not named in:\n" << all_warnings(r);
    EXPECT_EQ(warning(r, "Frobnicate")->describe(), "5:3: Frobnicate: unknown element, ignored");
    EXPECT_NE(warning(r, "AllowedSourceDomainComputers")
                  ->message.find("empty: on Windows no "
                                 "domain computer"),
              std::string::npos);
    EXPECT_TRUE(r.subscription.allowed_clients.empty());
    EXPECT_EQ(r.subscription.locale, "de-DE");
    // Without ContentFormat Windows renders the text.
    EXPECT_EQ(r.subscription.content_format, sub::ContentFormat::RenderedText);
    EXPECT_NE(warning(r, "ContentFormat"), nullptr) << all_warnings(r);
    // Expires and the empty SDDL are kept for the way back.
    EXPECT_EQ(r.subscription.description, "[wecutil] Expires: 2030-01-01T00:00:00.000Z\n"
                                          "[wecutil] AllowedSourceDomainComputers:");

    // No namespace: read, with a warning (wecutil would want it).
    r = read_text("<Subscription><SubscriptionId>s</SubscriptionId>" + kQueryElement +
                  "</Subscription>");
    EXPECT_EQ(r.subscription.name, "s");
    EXPECT_NE(warning(r, "Subscription"), nullptr) << all_warnings(r);
}

TEST(WindowsXmlSddl, ParsesTheDaclAndNamesWellKnownSids) {
    auto sddl =
        sub::parse_sddl("O:NSG:BAD:P(A;;GA;;;DC)(A;;GA;;;NS)(D;;GA;;;S-1-5-21-1-2-3-516)S:");
    ASSERT_EQ(sddl.error, "");
    ASSERT_EQ(sddl.dacl.size(), 3u);
    EXPECT_EQ(sddl.dacl[0].type, "A");
    EXPECT_EQ(sddl.dacl[0].rights, "GA");
    EXPECT_EQ(sddl.dacl[0].sid, "DC");
    EXPECT_EQ(sddl.dacl[0].account, "Domain Computers (S-1-5-21-<domain>-515)");
    EXPECT_EQ(sddl.dacl[1].account, "Network Service (S-1-5-20)");
    EXPECT_EQ(sddl.dacl[2].type, "D");
    EXPECT_EQ(sddl.dacl[2].account, "Domain Controllers (S-1-5-21-<domain>-516)");
    EXPECT_EQ(sub::well_known_sid("S-1-5-11"), "Authenticated Users (S-1-5-11)");
    EXPECT_EQ(sub::well_known_sid("WD"), "Everyone (S-1-1-0)");
    EXPECT_EQ(sub::well_known_sid("s-1-5-21-11-22-33-515"),
              "Domain Computers (S-1-5-21-<domain>-515)");
    EXPECT_EQ(sub::well_known_sid("S-1-5-21-11-22-33-1515"), "");
    EXPECT_EQ(sub::well_known_sid("S-1-5-20-1"), "");
    // Conditional ACEs nest parentheses; the SACL is not read.
    sddl = sub::parse_sddl("D:(XA;;GA;;;WD;(@User.Dept == \"IT\"))S:(AU;SA;GA;;;WD)");
    ASSERT_EQ(sddl.error, "");
    ASSERT_EQ(sddl.dacl.size(), 1u);
    EXPECT_EQ(sddl.dacl[0].type, "XA");
    EXPECT_EQ(sddl.dacl[0].account, "Everyone (S-1-1-0)");
    EXPECT_NE(sub::parse_sddl("D:(A;;GA;;;DC").error, "");
    EXPECT_NE(sub::parse_sddl("D:(A;;GA)").error, "");
    EXPECT_NE(sub::parse_sddl("D:A;;GA;;;DC)").error, "");
    EXPECT_TRUE(sub::parse_sddl("").dacl.empty());
}

TEST(WindowsXmlWrite, WritesWhatWecutilCreates) {
    sub::Subscription s;
    s.name = "Sysmon & <friends>";
    s.description = "Process creation";
    s.query = "<QueryList><Query Id=\"0\"><Select Path=\"Microsoft-Windows-Sysmon/Operational\">"
              "*[EventData[Data[@Name='Image']=']]>']]</Select></Query></QueryList>";
    s.max_latency_s = 45;
    s.heartbeat_interval_s = 600;
    s.max_elements = 20;
    s.read_existing_events = true;
    s.locale = "en-GB";
    s.denied_clients = {"lab-*"};
    auto x = sub::to_windows_xml(s);
    // Elements in the order wecutil writes them.
    std::size_t at = 0;
    for (const char* tag :
         {"<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
          "<Subscription xmlns=\"http://schemas.microsoft.com/2006/03/windows/events/"
          "subscription\">",
          "<SubscriptionId>Sysmon &amp; &lt;friends&gt;</SubscriptionId>",
          "<SubscriptionType>SourceInitiated</SubscriptionType>",
          "<Description>Process creation</Description>",
          "<Enabled>true</Enabled>",
          "<Uri>http://schemas.microsoft.com/wbem/wsman/1/windows/EventLog</Uri>",
          "<ConfigurationMode>Custom</ConfigurationMode>",
          "<Delivery Mode=\"Push\">",
          "<MaxItems>20</MaxItems>",
          "<MaxLatencyTime>45000</MaxLatencyTime>",
          "<Heartbeat Interval=\"600000\"/>",
          "<Query><![CDATA[<QueryList>",
          "']]]]><![CDATA[>']]</Select>",
          "<ReadExistingEvents>true</ReadExistingEvents>",
          "<TransportName>HTTP</TransportName>",
          "<ContentFormat>Events</ContentFormat>",
          "<Locale Language=\"en-GB\"/>",
          "<LogFile>ForwardedEvents</LogFile>",
          "<PublisherName>Microsoft-Windows-EventCollector</PublisherName>",
          "<AllowedSourceNonDomainComputers>",
          "<DeniedSubjectList>",
          "<Subject>lab-*</Subject>",
          "<AllowedSourceDomainComputers>O:NSG:BAD:P(A;;GA;;;DC)S:</AllowedSourceDomainComputers>",
          "</Subscription>"}) {
        auto found = x.xml.find(tag, at);
        ASSERT_NE(found, std::string::npos) << tag << " (in order) in:\n" << x.xml;
        at = found;
    }
    // Read back: the same subscription.
    auto back = read_text(x.xml).subscription;
    EXPECT_EQ(back, s);
    ASSERT_EQ(x.warnings.size(), 1u);
    EXPECT_NE(x.warnings[0].find("DeniedSubjectList"), std::string::npos);

    // For `wecutil ss NAME /c:FILE`: no SubscriptionType.
    auto update = sub::to_windows_xml(s, {.subscription_type = false});
    EXPECT_EQ(update.xml.find("SubscriptionType"), std::string::npos);
    EXPECT_EQ(read_text(update.xml).subscription, s);

    // Collector-side settings have no element: each is named.
    s.outputs.push_back({"files", sub::OutputFormat::Json, 64, {{"path", std::string("/x")}}});
    s.uri = "/wsman/dc";
    s.data_locale = "en-US";
    s.max_envelope_size = 150000;
    s.ignore_channel_error = false;
    s.connection_retry_count = 9;
    s.allowed_clients = {"*$@EXAMPLE.ORG"};
    x = sub::to_windows_xml(s);
    std::string all;
    for (const auto& w : x.warnings)
        all += w + "\n";
    for (const char* part : {"outputs: not exported", "uri '/wsman/dc'", "data_locale 'en-US'",
                             "max_envelope_size 150000", "ignore_channel_error",
                             "connection_retry_count", "patterns with '@' are Kerberos principals"})
        EXPECT_NE(all.find(part), std::string::npos) << part << " in:\n" << all;
}

TEST(WindowsXmlRoundTrip, XmlToSubscriptionToXmlToSubscriptionIsEqual) {
    for (const char* file :
         {"logon-custom.xml", "wecutil-export-utf16le.xml", "wecutil-export-utf16be.xml",
          "minbandwidth.xml", "normal.xml", "custom-milliseconds.xml"}) {
        SCOPED_TRACE(file);
        auto first = sub::read_windows_xml_file(data(file)).subscription;
        auto xml = sub::to_windows_xml(first);
        EXPECT_TRUE(xml.warnings.empty() ||
                    xml.warnings[0].find("AllowedSubjectList") != std::string::npos);
        auto second = read_text(xml.xml, "exported.xml");
        EXPECT_EQ(second.subscription, first) << xml.xml;
        // The Windows-only settings are back in their elements, not in the description.
        EXPECT_EQ(sub::to_windows_xml(second.subscription).xml, xml.xml);
        // And the TOML a store keeps gives the same subscription.
        EXPECT_EQ(sub::load_toml(sub::to_toml(first), "stored.toml"), first);
        EXPECT_EQ(sub::public_version(second.subscription), sub::public_version(first));
    }
    auto first = sub::read_windows_xml_file(data("wecutil-export-utf16le.xml")).subscription;
    auto xml = sub::to_windows_xml(first).xml;
    for (const char* element :
         {"<TransportName>HTTPS</TransportName>",
          "<IssuerCA>3B8F2C1A9D4E5F60718293A4B5C6D7E8F9012345</IssuerCA>",
          "<IssuerCA>AA11BB22CC33DD44EE55FF66007788990A1B2C3D</IssuerCA>",
          "<AllowedSourceDomainComputers>O:NSG:BAD:P(A;;GA;;;S-1-5-21-3623811015-3361044348-"
          "30300820-515)",
          "<Description>Exported with wecutil gs \"Servers Sécurité\" /f:xml</Description>",
          "<Subject>bastion01.example.org</Subject>", "<ContentFormat>Events</ContentFormat>"})
        EXPECT_NE(xml.find(element), std::string::npos) << element << " in:\n" << xml;
}

TEST(WindowsXmlRoundTrip, DescriptionTrailerOnlyWhereTheReaderPutsIt) {
    // Operator text that merely looks like kept settings stays where it is.
    for (const char* description :
         {"[wecutil] LogFile: ForwardedEvents", // a default value: the reader never keeps it
          "notes\n[wecutil] LogFile: X\n",      // ends with a line break
          "[wecutil] LogFile: X\n[wecutil] TransportName: HTTPS", // out of order
          "[wecutil] Colour: blue", "x\n[wecutil] LogFile:", "x \n[wecutil] LogFile: A"}) {
        SCOPED_TRACE(description);
        sub::Subscription s;
        s.name = "s";
        s.query = "<QueryList><Query Id=\"0\"><Select Path=\"A\">*</Select></Query></QueryList>";
        s.description = description;
        auto xml = sub::to_windows_xml(s).xml;
        EXPECT_NE(xml.find("<LogFile>ForwardedEvents</LogFile>"), std::string::npos);
        auto back = read_text(xml).subscription;
        auto again = read_text(sub::to_windows_xml(back).xml).subscription;
        EXPECT_EQ(again, back);
    }
    sub::Subscription s;
    s.name = "s";
    s.query = "<QueryList><Query Id=\"0\"><Select Path=\"A\">*</Select></Query></QueryList>";
    s.description =
        "Ops notes\n[wecutil] LogFile: WEC-Ops\n[wecutil] AllowedSourceDomainComputers:";
    auto xml = sub::to_windows_xml(s).xml;
    EXPECT_NE(xml.find("<Description>Ops notes</Description>"), std::string::npos) << xml;
    EXPECT_NE(xml.find("<LogFile>WEC-Ops</LogFile>"), std::string::npos) << xml;
    EXPECT_NE(xml.find("<AllowedSourceDomainComputers></AllowedSourceDomainComputers>"),
              std::string::npos)
        << xml;
    EXPECT_EQ(read_text(xml).subscription, s);
}

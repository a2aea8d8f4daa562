#include "common/files.hpp"
#include "text/text.hpp"
#include "wsman/subscription.hpp"
#include "wsman/wsman.hpp"

#include <algorithm>
#include <gtest/gtest.h>
#include <optional>
#include <pugixml.hpp>

namespace ws = wec::wsman;

namespace {

std::string data_path(const std::string& name) {
    return std::string(WEC_TEST_DATA) + "/wsman/" + name;
}

std::string load(const std::string& name) {
    const auto bytes = wec::read_file(data_path(name));
    return std::string(wec::as_chars(bytes));
}

ws::Message parse_file(const std::string& name) {
    return ws::parse(load(name));
}

// Asserts that `fn` throws a ParseError with `code` whose what() mentions `needle`.
template <typename F>
void expect_error(F&& fn, ws::ErrorCode code, std::string_view needle) {
    try {
        fn();
        ADD_FAILURE() << "no ParseError, expected " << ws::to_string(code);
    } catch (const ws::ParseError& e) {
        EXPECT_EQ(e.code(), code) << e.what();
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

bool is_new_message_id(std::string_view id) {
    if (id.size() != 41 || id.substr(0, 5) != "uuid:") return false;
    for (std::size_t i = 5; i < id.size(); ++i) {
        const char c = id[i];
        const bool dash = i == 13 || i == 18 || i == 23 || i == 28;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
    }
    return true;
}

std::string_view between(std::string_view s, std::string_view open, std::string_view close) {
    const auto a = s.find(open);
    if (a == std::string_view::npos) return {};
    const auto b = s.find(close, a + open.size());
    if (b == std::string_view::npos) return {};
    return s.substr(a + open.size(), b - a - open.size());
}

ws::SubscriptionSpec sample_spec() {
    ws::SubscriptionSpec spec;
    spec.uuid = "B6BDBB59-FB07-4EE5-841F-EBEC9D67CDD4";
    spec.version = "219C5353-5F3D-4CD7-A644-F6B69E57C1C1";
    spec.name = "Toto";
    spec.content_format = ws::ContentFormat::RenderedText;
    spec.locale = "en-US";
    spec.data_locale = "en-US";
    spec.notify_to = "HTTP://srv.windomain.local:5985/wsman/subscriptions/"
                     "B6BDBB59-FB07-4EE5-841F-EBEC9D67CDD4/1";
    spec.query = "<QueryList><Query Id=\"0\"><Select Path=\"Microsoft-Windows-WinRM/Operational\">"
                 "*[System[(Level=1  or Level=2)]]</Select></Query></QueryList>";
    spec.bookmark = "<BookmarkList><Bookmark Channel=\"Microsoft-Windows-WinRM/Operational\" "
                    "RecordId=\"149140\" IsCurrent=\"true\"/></BookmarkList>";
    return spec;
}

} // namespace

// ---------------------------------------------------------------- samples from Windows

TEST(WsmanSamples, Enumerate) {
    const auto m = parse_file("enumerate.xml");
    EXPECT_EQ(m.action, ws::Action::Enumerate);
    EXPECT_EQ(m.action_uri, "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate");
    EXPECT_EQ(m.to, "http://srv.windomain.local:5985/wsman/SubscriptionManager/WEC");
    EXPECT_EQ(m.message_id, "uuid:E9802257-6A7D-4C0D-BFA4-E81C7B1C447E");
    EXPECT_EQ(m.resource_uri,
              "http://schemas.microsoft.com/wbem/wsman/1/SubscriptionManager/Subscription");
    EXPECT_EQ(m.machine_id, "win10.windomain.local");
    EXPECT_EQ(m.reply_to, "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous");
    EXPECT_EQ(m.max_envelope_size, 512000u);
    EXPECT_EQ(m.locale, "en-US");
    EXPECT_EQ(m.data_locale, "en-US");
    EXPECT_EQ(m.session_id, "uuid:D25DD033-C406-44AB-8443-85E1BC794F10");
    EXPECT_EQ(m.operation_id, "uuid:03A3D1BB-9B16-4847-9F04-C9A8ED38E1E4");
    EXPECT_EQ(m.sequence_id, "1");
    EXPECT_EQ(m.operation_timeout, "PT60.000S");
    EXPECT_FALSE(m.ack_requested);
    EXPECT_TRUE(m.other_headers.empty());
    ASSERT_TRUE(m.enumerate);
    EXPECT_TRUE(m.enumerate->optimize_enumeration);
    EXPECT_EQ(m.enumerate->max_elements, 32000u);
    EXPECT_EQ(m.replaced_chars, 0u);
}

TEST(WsmanSamples, EnumerateUtf16MatchesXml) {
    const auto raw = wec::read_file(data_path("enumerate.utf16"));
    ASSERT_EQ(raw[0], 0xFF);
    ASSERT_EQ(raw[1], 0xFE);
    const auto a = ws::parse_body(raw, "UTF-16");
    const auto b = parse_file("enumerate.xml");
    EXPECT_EQ(a.action, b.action);
    EXPECT_EQ(a.to, b.to);
    EXPECT_EQ(a.message_id, b.message_id);
    EXPECT_EQ(a.resource_uri, b.resource_uri);
    EXPECT_EQ(a.machine_id, b.machine_id);
    EXPECT_EQ(a.reply_to, b.reply_to);
    EXPECT_EQ(a.max_envelope_size, b.max_envelope_size);
    EXPECT_EQ(a.locale, b.locale);
    EXPECT_EQ(a.data_locale, b.data_locale);
    EXPECT_EQ(a.session_id, b.session_id);
    EXPECT_EQ(a.operation_id, b.operation_id);
    EXPECT_EQ(a.sequence_id, b.sequence_id);
    EXPECT_EQ(a.operation_timeout, b.operation_timeout);
    ASSERT_TRUE(a.enumerate);
    EXPECT_EQ(a.enumerate->max_elements, b.enumerate->max_elements);
    EXPECT_EQ(a.enumerate->optimize_enumeration, b.enumerate->optimize_enumeration);
    // The text layer alone, too (no charset hint: the BOM decides).
    const auto c = ws::parse(wec::text::utf16_to_utf8(raw));
    EXPECT_EQ(c.message_id, b.message_id);
}

TEST(WsmanSamples, HeartbeatXmlAndUtf16) {
    for (const auto& m : {parse_file("heartbeat.xml"),
                          ws::parse_body(wec::read_file(data_path("heartbeat.utf16")))}) {
        EXPECT_EQ(m.action, ws::Action::Heartbeat);
        EXPECT_EQ(m.message_id, "uuid:EEC04F74-A27D-4C3A-AEF5-BC5BF54359BA");
        EXPECT_EQ(m.to, "http://srv.windomain.local:5985/wsman/subscriptions/"
                        "B6BDBB59-FB07-4EE5-841F-EBEC9D67CDD4/1");
        EXPECT_EQ(m.machine_id, "win10.windomain.local");
        EXPECT_EQ(m.identifier, "219C5353-5F3D-4CD7-A644-F6B69E57C1C1");
        EXPECT_EQ(m.operation_id, "uuid:EA2EE566-2CC1-49A0-A726-BCE7DC356E22");
        EXPECT_TRUE(m.ack_requested);
        EXPECT_TRUE(m.events.empty());
        EXPECT_TRUE(m.bookmark.empty());
    }
}

TEST(WsmanSamples, Events) {
    const auto m = parse_file("events.xml");
    EXPECT_EQ(m.action, ws::Action::Events);
    EXPECT_EQ(m.message_id, "uuid:31652DEB-C9E8-45D6-B3E8-90AC64D48422");
    EXPECT_EQ(m.machine_id, "win10.windomain.local");
    EXPECT_EQ(m.identifier, "219C5353-5F3D-4CD7-A644-F6B69E57C1C1");
    EXPECT_TRUE(m.ack_requested);
    EXPECT_EQ(m.bookmark.rfind("<BookmarkList>", 0), 0u) << m.bookmark;
    EXPECT_NE(m.bookmark.find("RecordId=\"149161\""), std::string::npos) << m.bookmark;
    EXPECT_NE(m.bookmark.find("Channel=\"Microsoft-Windows-WinRM/Operational\""),
              std::string::npos);
    EXPECT_EQ(m.bookmark.find('\n'), std::string::npos); // compact
    ASSERT_EQ(m.events.size(), 21u);
    EXPECT_EQ(m.events[0].action, "http://schemas.dmtf.org/wbem/wsman/1/wsman/Event");
    EXPECT_EQ(m.events[0].xml.substr(0, 6), "<Event");
    EXPECT_EQ(m.events[0].xml.substr(m.events[0].xml.size() - 8), "</Event>");
    EXPECT_EQ(between(m.events[0].xml, "<EventRecordID>", "</"), "149141");
    EXPECT_EQ(between(m.events[20].xml, "<EventRecordID>", "</"), "149161");
    for (const auto& e : m.events)
        EXPECT_NE(e.xml.find("<System>"), std::string_view::npos);
}

TEST(WsmanSamples, EventsOutliveCopiesOfTheMessage) {
    ws::Message copy;
    {
        const auto m = parse_file("events.xml");
        copy = m;
    }
    ASSERT_EQ(copy.events.size(), 21u);
    EXPECT_EQ(between(copy.events[3].xml, "<EventRecordID>", "</"), "149144");
}

TEST(WsmanSamples, Ack) {
    const auto m = parse_file("ack.xml");
    EXPECT_EQ(m.action, ws::Action::Ack);
    EXPECT_EQ(m.message_id, "uuid:12AAFC00-5BB5-42B5-BE85-077D7C02B8E9");
    EXPECT_EQ(m.relates_to, "uuid:EEC04F74-A27D-4C3A-AEF5-BC5BF54359BA");
    EXPECT_EQ(m.to, "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous");
    EXPECT_EQ(m.operation_id, "uuid:EA2EE566-2CC1-49A0-A726-BCE7DC356E22");
    EXPECT_EQ(m.sequence_id, "1");
}

TEST(WsmanSamples, End) {
    const auto m = parse_file("end.xml");
    EXPECT_EQ(m.action, ws::Action::End);
    EXPECT_EQ(m.message_id, "uuid:3244F96B-8ECA-4A06-90DE-8A1DED23AB1F");
    EXPECT_EQ(m.resource_uri, "http://schemas.microsoft.com/wbem/wsman/1/wsman/FullDuplex");
    EXPECT_EQ(m.operation_id, "uuid:50485065-8F54-44F2-8525-DBCBE293E317");
}

TEST(WsmanSamples, SubscriptionEnd) {
    const auto m = parse_file("subscription-end.xml");
    EXPECT_EQ(m.action, ws::Action::SubscriptionEnd);
    EXPECT_EQ(m.message_id, "uuid:21DF76D2-A1ED-4333-BEAB-378AFB012DEE");
    EXPECT_EQ(m.identifier, "0C98CAE1-EDA4-4C92-82D9-A8A20EB518D2");
    EXPECT_EQ(m.machine_id, "win10.windomain.local");
    EXPECT_EQ(m.operation_timeout, "PT0.500S");
    ASSERT_TRUE(m.subscription_end);
    const auto& se = *m.subscription_end;
    EXPECT_EQ(se.manager_address, "http://wec.windomain.local:5985/wsman/subscriptions/"
                                  "0C98CAE1-EDA4-4C92-82D9-A8A20EB518D2");
    EXPECT_EQ(se.manager_identifier, "820FEC3F-E3BD-4064-A4FD-BA8D550C4432");
    EXPECT_EQ(se.status, "http://schemas.xmlsoap.org/ws/2004/08/eventing/SourceCancelling");
    ASSERT_TRUE(se.fault);
    EXPECT_EQ(se.fault->code, "1717");
    EXPECT_EQ(se.fault->machine, "win10.windomain.local");
    EXPECT_EQ(se.fault->message, "Windows Event Forward Plugin failed to read events.");
}

TEST(WsmanSamples, EnumerateResponse) {
    const auto m = parse_file("enumerate-response.xml");
    EXPECT_EQ(m.action, ws::Action::EnumerateResponse);
    EXPECT_EQ(m.relates_to, "uuid:E9802257-6A7D-4C0D-BFA4-E81C7B1C447E");
    ASSERT_TRUE(m.enumerate_response);
    const auto& er = *m.enumerate_response;
    EXPECT_TRUE(er.enumeration_context.empty());
    EXPECT_TRUE(er.end_of_sequence);
    ASSERT_EQ(er.subscriptions.size(), 1u);
    const auto& s = er.subscriptions[0];
    EXPECT_EQ(s.version, "uuid:219C5353-5F3D-4CD7-A644-F6B69E57C1C1");
    EXPECT_EQ(s.name, "Toto");
    EXPECT_EQ(s.content_format, "RenderedText");
    EXPECT_EQ(s.compression, "SLDC");
    EXPECT_TRUE(s.ignore_channel_error);
    EXPECT_FALSE(s.read_existing_events);
    EXPECT_EQ(s.notify_to, "HTTP://srv.windomain.local:5985/wsman/subscriptions/"
                           "B6BDBB59-FB07-4EE5-841F-EBEC9D67CDD4/1");
    EXPECT_EQ(s.end_to, s.notify_to);
    EXPECT_EQ(s.identifier, "219C5353-5F3D-4CD7-A644-F6B69E57C1C1");
    EXPECT_EQ(s.heartbeats, "PT3600.000S");
    EXPECT_EQ(ws::parse_duration_ms(s.heartbeats), 3'600'000u);
    EXPECT_EQ(s.connection_retry, "PT60.0S");
    EXPECT_EQ(s.connection_retry_total, 5u);
    EXPECT_EQ(s.max_time, "PT30.000S");
    EXPECT_EQ(s.max_envelope_size, 512000u);
    EXPECT_FALSE(s.max_elements);
    EXPECT_EQ(s.locale, "en-US");
    EXPECT_EQ(s.content_encoding, "UTF-16");
    EXPECT_EQ(s.auth_profile, ws::kProfileKerberos);
    EXPECT_TRUE(s.issuer_thumbprints.empty());
    EXPECT_EQ(s.query.rfind("<QueryList>", 0), 0u) << s.query;
    EXPECT_NE(s.query.find("Path=\"Microsoft-Windows-WinRM/Operational\""), std::string::npos);
    EXPECT_NE(s.bookmark.find("RecordId=\"149140\""), std::string::npos) << s.bookmark;
    EXPECT_TRUE(s.send_bookmarks);
    // The raw envelope stands alone and parses as a Subscribe message.
    EXPECT_EQ(s.envelope.rfind("<s:Envelope", 0), 0u);
    const auto sub = ws::parse(s.envelope);
    EXPECT_EQ(sub.action, ws::Action::Subscribe);
    EXPECT_EQ(sub.message_id, "uuid:A666D835-B462-465E-ACEE-BA6354EA0E58");
    ASSERT_TRUE(sub.subscribe);
    EXPECT_EQ(sub.subscribe->name, "Toto");
    EXPECT_EQ(sub.subscribe->bookmark, s.bookmark);
}

TEST(WsmanSamples, PrefixesDoNotMatter) {
    std::string xml = load("heartbeat.xml");
    // Rename the prefixes a: -> addr: and s: -> soap: (namespace URIs unchanged).
    auto replace_all = [&xml](std::string_view from, std::string_view to) {
        for (auto pos = xml.find(from); pos != std::string::npos;
             pos = xml.find(from, pos + to.size()))
            xml.replace(pos, from.size(), to);
    };
    replace_all("<a:", "<addr:");
    replace_all("</a:", "</addr:");
    replace_all("xmlns:a=", "xmlns:addr=");
    replace_all("<s:", "<soap:");
    replace_all("</s:", "</soap:");
    replace_all("xmlns:s=", "xmlns:soap=");
    replace_all(" s:mustUnderstand", " soap:mustUnderstand");
    const auto m = ws::parse(xml);
    EXPECT_EQ(m.action, ws::Action::Heartbeat);
    EXPECT_EQ(m.message_id, "uuid:EEC04F74-A27D-4C3A-AEF5-BC5BF54359BA");
    // A wrong namespace on the Envelope is not an envelope.
    std::string bad = xml;
    bad.replace(bad.find("http://www.w3.org/2003/05/soap-envelope"), 10, "urn:other:");
    expect_error([&] { ws::parse(bad); }, ws::ErrorCode::NotEnvelope, "Envelope");
}

TEST(WsmanSamples, UnknownHeadersAreKept) {
    std::string xml = load("heartbeat.xml");
    xml.replace(
        xml.find("<w:AckRequested/>"), 0,
        "<x:Extra xmlns:x=\"urn:x\" Id=\"7\"><x:In>v</x:In></x:Extra><w:Custom>1</w:Custom>");
    const auto m = ws::parse(xml);
    ASSERT_EQ(m.other_headers.size(), 2u);
    EXPECT_EQ(m.other_headers[0].ns, "urn:x");
    EXPECT_EQ(m.other_headers[0].name, "Extra");
    EXPECT_EQ(m.other_headers[0].xml,
              "<x:Extra xmlns:x=\"urn:x\" Id=\"7\"><x:In>v</x:In></x:Extra>");
    EXPECT_EQ(m.other_headers[1].name, "Custom");
    // The w prefix was declared on the Envelope: the kept XML declares it itself.
    EXPECT_EQ(m.other_headers[1].xml,
              "<w:Custom xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\">1</w:Custom>");
}

// ---------------------------------------------------------------- forbidden characters

TEST(WsmanEvents, ControlCharacterInsideCdataIsReplaced) {
    std::string xml = load("events.xml");
    const auto pos = xml.find("Activity Transfer</Message>");
    ASSERT_NE(pos, std::string::npos);
    xml.insert(pos + 8, "\x05"); // "Activity\x05 Transfer"
    const auto m = ws::parse(xml);
    ASSERT_EQ(m.events.size(), 21u);
    EXPECT_EQ(m.replaced_chars, 1u);
    EXPECT_NE(m.events[0].xml.find("<Message>Activity\xEF\xBF\xBD Transfer</Message>"),
              std::string_view::npos);
    EXPECT_EQ(between(m.events[0].xml, "<EventRecordID>", "</"), "149141");
}

TEST(WsmanEvents, InvalidUtf16InsideEventIsReplaced) {
    const std::string xml = load("events.xml");
    auto u16 = wec::text::utf8_to_utf16le(xml, true);
    // Turn the 'A' of "Activity Transfer" into a lone high surrogate.
    const auto at = xml.find("Activity Transfer</Message>");
    u16[2 + 2 * at] = 0x00;
    u16[2 + 2 * at + 1] = 0xD8;
    const auto m = ws::parse_body(u16, "UTF-16");
    ASSERT_EQ(m.events.size(), 21u);
    EXPECT_NE(m.events[0].xml.find("\xEF\xBF\xBD"
                                   "ctivity Transfer"),
              std::string_view::npos);
}

// The CDATA fast path gives what parsing the whole text gives, on every Windows sample.
TEST(WsmanEvents, CdataFastPathEqualsWholeParseOnSamples) {
    for (const char* name :
         {"events.xml", "heartbeat.xml", "enumerate.xml", "enumerate-response.xml",
          "subscription-end.xml", "ack.xml", "end.xml"}) {
        const std::string xml = load(name);
        const auto fast = ws::parse(xml);
        const auto whole = ws::detail::parse_whole(xml);
        EXPECT_EQ(fast.action, whole.action) << name;
        EXPECT_EQ(fast.message_id, whole.message_id) << name;
        EXPECT_EQ(fast.bookmark, whole.bookmark) << name;
        EXPECT_EQ(fast.other_headers.size(), whole.other_headers.size()) << name;
        ASSERT_EQ(fast.events.size(), whole.events.size()) << name;
        for (std::size_t i = 0; i < fast.events.size(); ++i) {
            EXPECT_EQ(fast.events[i].xml, whole.events[i].xml) << name << " event " << i;
            EXPECT_EQ(fast.events[i].action, whole.events[i].action) << name << " event " << i;
        }
    }
}

// Long CDATA sections are cut out before pugixml parses the envelope; wherever the cut is not an
// event's, the whole text is parsed instead. Each case compares with what the CDATA held.
TEST(WsmanEvents, LongCdataOutsideEventsIsKept) {
    const std::string long_text(200, 'q');
    std::string xml = load("events.xml");
    // A long CDATA in an unknown header: serialized as is.
    xml.replace(xml.find("<w:AckRequested/>"), 0,
                "<x:Extra xmlns:x=\"urn:x\"><![CDATA[" + long_text + "]]></x:Extra>");
    const auto m = ws::parse(xml);
    ASSERT_EQ(m.events.size(), 21u);
    ASSERT_EQ(m.other_headers.size(), 1u);
    EXPECT_NE(m.other_headers[0].xml.find("<![CDATA[" + long_text + "]]>"), std::string::npos);
    EXPECT_EQ(between(m.events[20].xml, "<EventRecordID>", "</"),
              between(ws::parse(load("events.xml")).events[20].xml, "<EventRecordID>", "</"));
}

TEST(WsmanEvents, LongCdataTextInCommentsAndHeaderValues) {
    const std::string long_text(100, 'z');
    std::string xml = load("events.xml");
    // "<![CDATA[" inside a comment is not a CDATA section; a header value may be one.
    xml.replace(xml.find("<s:Header>"), 0, "<!-- <![CDATA[ " + long_text + " ]]> -->");
    const std::string id = "uuid:" + long_text;
    xml.replace(xml.find("uuid:31652DEB"), 41, "<![CDATA[" + id + "]]>");
    const auto m = ws::parse(xml);
    EXPECT_EQ(m.message_id, id);
    ASSERT_EQ(m.events.size(), 21u);
    EXPECT_EQ(m.events[0].xml.substr(0, 6), "<Event");
}

TEST(WsmanEvents, EventSplitOverSeveralCdataSections) {
    const std::string a = "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'>" +
                          std::string(80, 'a') + "]]";
    const std::string b = ">" + std::string(80, 'b') + "</Event>";
    std::string xml = load("events.xml");
    const auto first = xml.find("<w:Event ");
    const auto end = xml.find("</w:Event>", first) + 10;
    xml.replace(first, end - first,
                "<w:Event Action=\"x\"><![CDATA[" + a + "]]><![CDATA[" + b + "]]></w:Event>");
    const auto m = ws::parse(xml);
    ASSERT_EQ(m.events.size(), 21u);
    EXPECT_EQ(m.events[0].xml, a + b);
    EXPECT_EQ(m.events[0].action, "x");
}

// w:Event is recognised by its namespace, resolved in each event's own scope: other prefixes bound
// to the same URI count, an event that rebinds its prefix or uses another namespace does not.
TEST(WsmanEvents, EventNamespaceInEachEventsScope) {
    const std::string w = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
    std::string xml = load("events.xml");
    const auto original = ws::parse(xml);
    ASSERT_EQ(original.events.size(), 21u);
    xml.replace(xml.find("<w:Events>"), 10,
                "<w:Events xmlns:v=\"" + w + "\" xmlns:o=\"urn:other\">");
    // Events 1..6 renamed (open and close tags); 0 and 7..20 stay w:Event.
    const std::vector<std::pair<std::string, std::string>> renamed = {
        {"v:Event", ""},                       // counted: v is bound to wsman
        {"o:Event", ""},                       // another namespace
        {"w:Event", " xmlns:w=\"urn:other\""}, // w rebound on the event itself
        {"q:Event", ""},                       // unbound prefix
        {"Event", " xmlns=\"" + w + "\""},     // counted: default namespace
        {"w:Event", " xmlns:x=\"urn:x\""},     // counted: other declarations only
    };
    std::size_t pos = xml.find("<w:Event ");
    for (const auto& [name, decl] : renamed) {
        pos = xml.find("<w:Event ", pos + 1);
        const auto close = xml.find("</w:Event>", pos);
        xml.replace(close, 10, "</" + name + ">");
        xml.replace(pos, 8, "<" + name + decl);
    }
    const auto m = ws::parse(xml);
    ASSERT_EQ(m.events.size(), 18u);
    const std::vector<std::size_t> kept = {0,  1,  5,  6,  7,  8,  9,  10, 11,
                                           12, 13, 14, 15, 16, 17, 18, 19, 20};
    for (std::size_t i = 0; i < kept.size(); ++i)
        EXPECT_EQ(m.events[i].xml, original.events[kept[i]].xml) << i;
    const auto whole = ws::detail::parse_whole(xml);
    ASSERT_EQ(whole.events.size(), 18u);
}

TEST(WsmanEvents, ShortAndLongCdataEventsAndErrors) {
    std::string xml = load("events.xml");
    const auto first = xml.find("<w:Event ");
    const auto end = xml.find("</w:Event>", first) + 10;
    xml.replace(first, end - first, "<w:Event Action=\"y\"><![CDATA[<Event/>]]></w:Event>");
    const auto m = ws::parse(xml);
    ASSERT_EQ(m.events.size(), 21u);
    EXPECT_EQ(m.events[0].xml, "<Event/>");
    EXPECT_EQ(m.events[1].xml.substr(0, 6), "<Event");
    // An unterminated CDATA or a broken envelope after the events: the same typed errors, with
    // offsets in the text given (not in a shortened copy).
    std::string cut = load("events.xml");
    cut.resize(cut.rfind("]]>"));
    EXPECT_THROW(ws::parse(cut), ws::ParseError);
    std::string broken = load("events.xml");
    const auto body_end = broken.find("</s:Body>");
    broken.replace(body_end, 9, "</s:Bodx>");
    try {
        (void)ws::parse(broken);
        ADD_FAILURE() << "no error";
    } catch (const ws::ParseError& e) {
        EXPECT_EQ(e.code(), ws::ErrorCode::NotXml);
        EXPECT_GE(e.offset(), body_end);
        EXPECT_LE(e.offset(), body_end + 9);
    }
}

// ---------------------------------------------------------------- replies from the collector

TEST(WsmanBuild, AckRelatesToRequestByteForByte) {
    const std::vector<std::string> ids = {
        "uuid:EEC04F74-A27D-4C3A-AEF5-BC5BF54359BA", "uuid:eec04f74-a27d-4c3a-aef5-bc5bf54359ba",
        "uuid:EeC04f74-A27d-4C3A-aef5-Bc5bf54359BA", "urn:odd&<id>"};
    for (const std::string& id : ids) {
        ws::SourceHeaders h;
        h.to = "http://collector/wsman/subscriptions/x";
        h.message_id = id;
        h.operation_id = std::string("uuid:op-1");
        h.sequence_id = std::string("3");
        h.identifier = std::string("ID");
        const auto request = ws::parse(ws::build_heartbeat(h));
        EXPECT_EQ(request.message_id, id);
        const std::string ack = ws::build_ack(request);
        const auto parsed = ws::parse(ack);
        EXPECT_EQ(parsed.action, ws::Action::Ack);
        EXPECT_EQ(parsed.relates_to, id);
        EXPECT_TRUE(is_new_message_id(parsed.message_id)) << parsed.message_id;
        EXPECT_EQ(parsed.to, "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous");
        EXPECT_EQ(parsed.operation_id, "uuid:op-1");
        EXPECT_EQ(parsed.sequence_id, "3");

        const auto er = ws::parse(ws::build_enumerate_response(request, {}));
        EXPECT_EQ(er.relates_to, id);
    }
}

TEST(WsmanBuild, AckOfSampleHeartbeatLooksLikeWindows) {
    const auto request = parse_file("heartbeat.xml");
    const std::string ack = ws::build_ack(request);
    EXPECT_NE(ack.find("<a:RelatesTo>uuid:EEC04F74-A27D-4C3A-AEF5-BC5BF54359BA</a:RelatesTo>"),
              std::string::npos);
    EXPECT_NE(ack.find("<p:OperationID s:mustUnderstand=\"false\">"
                       "uuid:EA2EE566-2CC1-49A0-A726-BCE7DC356E22</p:OperationID>"),
              std::string::npos);
    EXPECT_NE(ack.find("<s:Body></s:Body>"), std::string::npos);
}

TEST(WsmanBuild, EnumerateResponseRoundTrip) {
    const auto request = parse_file("enumerate.xml");
    auto spec = sample_spec();
    ws::SubscriptionSpec tls = sample_spec();
    tls.name = "Tls & <Co>";
    tls.version = "uuid:11111111-2222-3333-4444-555555555555";
    tls.content_format = ws::ContentFormat::Raw;
    tls.auth = ws::TlsPolicy{{"0123456789ABCDEF0123456789ABCDEF01234567"}};
    tls.bookmark.reset();
    tls.read_existing_events = true;
    tls.max_elements = 20;
    tls.heartbeat_interval_ms = 900'000;
    tls.max_latency_ms = 1500;
    tls.connection_retry_count = 3;
    tls.connection_retry_interval_ms = 30'000;
    tls.ignore_channel_error = false;
    tls.send_bookmarks = false;
    tls.locale.reset();
    tls.data_locale.reset();
    const std::vector<ws::SubscriptionSpec> specs = {spec, tls};
    const std::string xml = ws::build_enumerate_response(request, specs);
    EXPECT_GT(xml.find("OperationID"), xml.find("<w:Items>")); // only inside the envelopes
    EXPECT_NE(xml.find("<n:EnumerationContext></n:EnumerationContext>"), std::string::npos);

    const auto m = ws::parse(xml);
    EXPECT_EQ(m.action, ws::Action::EnumerateResponse);
    EXPECT_EQ(m.relates_to, "uuid:E9802257-6A7D-4C0D-BFA4-E81C7B1C447E");
    EXPECT_TRUE(is_new_message_id(m.message_id));
    EXPECT_TRUE(m.operation_id.empty());
    ASSERT_TRUE(m.enumerate_response);
    EXPECT_TRUE(m.enumerate_response->enumeration_context.empty());
    EXPECT_TRUE(m.enumerate_response->end_of_sequence);
    ASSERT_EQ(m.enumerate_response->subscriptions.size(), 2u);

    const auto& a = m.enumerate_response->subscriptions[0];
    EXPECT_EQ(a.version, "uuid:219C5353-5F3D-4CD7-A644-F6B69E57C1C1");
    EXPECT_EQ(a.identifier, "219C5353-5F3D-4CD7-A644-F6B69E57C1C1");
    EXPECT_EQ(a.name, "Toto");
    EXPECT_EQ(a.content_format, "RenderedText");
    EXPECT_EQ(a.compression, "SLDC");
    EXPECT_EQ(a.notify_to, spec.notify_to);
    EXPECT_EQ(a.end_to, spec.notify_to);
    EXPECT_EQ(a.heartbeats, "PT3600.000S");
    EXPECT_EQ(a.connection_retry, "PT60.0S");
    EXPECT_EQ(a.connection_retry_total, 5u);
    EXPECT_EQ(a.max_time, "PT30.000S");
    EXPECT_EQ(a.max_envelope_size, 512000u);
    EXPECT_EQ(a.locale, "en-US");
    EXPECT_EQ(a.data_locale, "en-US");
    EXPECT_EQ(a.content_encoding, "UTF-16");
    EXPECT_EQ(a.auth_profile, ws::kProfileKerberos);
    EXPECT_EQ(a.query, spec.query);
    EXPECT_EQ(a.bookmark, "<BookmarkList><Bookmark Channel=\"Microsoft-Windows-WinRM/Operational\" "
                          "RecordId=\"149140\" IsCurrent=\"true\"/></BookmarkList>");
    EXPECT_TRUE(a.ignore_channel_error);
    EXPECT_FALSE(a.read_existing_events);
    EXPECT_TRUE(a.send_bookmarks);

    const auto& b = m.enumerate_response->subscriptions[1];
    EXPECT_EQ(b.version, "uuid:11111111-2222-3333-4444-555555555555");
    EXPECT_EQ(b.identifier, "11111111-2222-3333-4444-555555555555");
    EXPECT_EQ(b.name, "Tls & <Co>");
    EXPECT_EQ(b.content_format, "Raw");
    EXPECT_EQ(b.auth_profile, ws::kProfileTls);
    ASSERT_EQ(b.issuer_thumbprints.size(), 1u);
    EXPECT_EQ(b.issuer_thumbprints[0], "0123456789ABCDEF0123456789ABCDEF01234567");
    EXPECT_TRUE(b.read_existing_events);
    EXPECT_EQ(b.bookmark, ws::kBookmarkEarliest);
    EXPECT_EQ(b.max_elements, 20u);
    EXPECT_EQ(b.heartbeats, "PT900.000S");
    EXPECT_EQ(b.max_time, "PT1.500S");
    EXPECT_EQ(b.connection_retry, "PT30.0S");
    EXPECT_EQ(b.connection_retry_total, 3u);
    EXPECT_FALSE(b.ignore_channel_error);
    EXPECT_FALSE(b.send_bookmarks);
    EXPECT_TRUE(b.locale.empty());
    EXPECT_NE(b.envelope.find("<auth:Thumbprint Role=\"issuer\">"), std::string::npos);
}

TEST(WsmanBuild, SubscribeEnvelopeParsesAsSubscribe) {
    const auto spec = sample_spec();
    const auto m = ws::parse(ws::build_subscribe_envelope(spec));
    EXPECT_EQ(m.action, ws::Action::Subscribe);
    EXPECT_EQ(m.resource_uri, "http://schemas.microsoft.com/wbem/wsman/1/windows/EventLog");
    EXPECT_EQ(m.max_envelope_size, 512000u);
    ASSERT_TRUE(m.subscribe);
    EXPECT_EQ(m.subscribe->name, "Toto");
    EXPECT_EQ(m.subscribe->query, spec.query);
}

TEST(WsmanBuild, SubscribeRejectsBadQueryOrPolicy) {
    auto spec = sample_spec();
    spec.query = "<QueryList><Query>";
    EXPECT_THROW(ws::build_subscribe_envelope(spec), wec::Error);
    spec = sample_spec();
    spec.bookmark = "not xml";
    EXPECT_THROW(ws::build_subscribe_envelope(spec), wec::Error);
    spec = sample_spec();
    spec.auth = ws::TlsPolicy{};
    EXPECT_THROW(ws::build_subscribe_envelope(spec), wec::Error);
    // A declaration in the stored query is dropped, not inserted mid-document.
    spec = sample_spec();
    spec.query = "<?xml version=\"1.0\"?>\n" + spec.query;
    const auto m = ws::parse(ws::build_subscribe_envelope(spec));
    EXPECT_EQ(m.subscribe->query, sample_spec().query);
}

// ---------------------------------------------------------------- what a source sends

ws::SourceHeaders source_headers() {
    ws::SourceHeaders h;
    h.to = "http://srv.windomain.local:5985/wsman/subscriptions/B6BDBB59/1";
    h.machine_id = "win10.windomain.local";
    h.session_id = "uuid:981C530F-BE2A-4AAB-BACB-6FB4CD1A14AB";
    h.identifier = "219C5353-5F3D-4CD7-A644-F6B69E57C1C1";
    return h;
}

TEST(WsmanBuild, EnumerateRoundTrip) {
    auto h = source_headers();
    h.to = "http://srv.windomain.local:5985/wsman/SubscriptionManager/WEC";
    const auto m = ws::parse(ws::build_enumerate(h, 1234));
    EXPECT_EQ(m.action, ws::Action::Enumerate);
    EXPECT_EQ(m.to, h.to);
    EXPECT_EQ(m.machine_id, "win10.windomain.local");
    EXPECT_EQ(m.resource_uri,
              "http://schemas.microsoft.com/wbem/wsman/1/SubscriptionManager/Subscription");
    EXPECT_EQ(m.session_id, h.session_id);
    EXPECT_TRUE(is_new_message_id(m.message_id));
    EXPECT_TRUE(is_new_message_id(m.operation_id));
    EXPECT_EQ(m.locale, "en-US");
    EXPECT_EQ(m.operation_timeout, "PT60.000S");
    EXPECT_TRUE(m.identifier.empty());
    ASSERT_TRUE(m.enumerate);
    EXPECT_TRUE(m.enumerate->optimize_enumeration);
    EXPECT_EQ(m.enumerate->max_elements, 1234u);
}

TEST(WsmanBuild, HeartbeatRoundTrip) {
    auto h = source_headers();
    h.raw_headers.push_back("<x:Ref xmlns:x=\"urn:x\">r</x:Ref>");
    const auto m = ws::parse(ws::build_heartbeat(h));
    EXPECT_EQ(m.action, ws::Action::Heartbeat);
    EXPECT_EQ(m.identifier, h.identifier);
    EXPECT_TRUE(m.ack_requested);
    EXPECT_TRUE(m.events.empty());
    ASSERT_EQ(m.other_headers.size(), 1u);
    EXPECT_EQ(m.other_headers[0].xml, "<x:Ref xmlns:x=\"urn:x\">r</x:Ref>");
}

TEST(WsmanBuild, EventsRoundTripIncludingCdataTerminator) {
    const auto sample = parse_file("events.xml");
    std::vector<std::string_view> events(sample.events.size());
    for (std::size_t i = 0; i < events.size(); ++i)
        events[i] = sample.events[i].xml;
    const std::string tricky =
        "<Event><EventData><Data>a]]>b]]]]>c&amp;<x/></Data></EventData></Event>";
    events.push_back(tricky);
    const auto h = source_headers();
    const std::string xml = ws::build_events(h, events, sample.bookmark);
    const auto m = ws::parse(xml);
    EXPECT_EQ(m.action, ws::Action::Events);
    EXPECT_EQ(m.bookmark, sample.bookmark);
    EXPECT_TRUE(m.ack_requested);
    ASSERT_EQ(m.events.size(), 22u);
    for (std::size_t i = 0; i < events.size(); ++i)
        EXPECT_EQ(m.events[i].xml, events[i]) << i;
    EXPECT_EQ(m.events[0].action, "http://schemas.dmtf.org/wbem/wsman/1/wsman/Event");
}

TEST(WsmanBuild, EndRoundTrip) {
    ws::SourceHeaders h;
    h.message_id = "uuid:3244F96B-8ECA-4A06-90DE-8A1DED23AB1F";
    h.operation_id = "uuid:50485065-8F54-44F2-8525-DBCBE293E317";
    const auto m = ws::parse(ws::build_end(h));
    EXPECT_EQ(m.action, ws::Action::End);
    EXPECT_EQ(m.message_id, h.message_id);
    EXPECT_EQ(m.operation_id, h.operation_id);
    EXPECT_EQ(m.resource_uri, "http://schemas.microsoft.com/wbem/wsman/1/wsman/FullDuplex");
}

TEST(WsmanBuild, SubscriptionEndRoundTrip) {
    const auto sample = parse_file("subscription-end.xml");
    auto h = source_headers();
    h.operation_timeout = "PT0.500S";
    const auto m = ws::parse(ws::build_subscription_end(h, *sample.subscription_end));
    EXPECT_EQ(m.action, ws::Action::SubscriptionEnd);
    EXPECT_EQ(m.identifier, h.identifier);
    EXPECT_EQ(m.operation_timeout, "PT0.500S");
    ASSERT_TRUE(m.subscription_end);
    EXPECT_EQ(m.subscription_end->manager_address, sample.subscription_end->manager_address);
    EXPECT_EQ(m.subscription_end->manager_identifier, "820FEC3F-E3BD-4064-A4FD-BA8D550C4432");
    EXPECT_EQ(m.subscription_end->status, sample.subscription_end->status);
    ASSERT_TRUE(m.subscription_end->fault);
    EXPECT_EQ(m.subscription_end->fault->code, "1717");
    EXPECT_EQ(m.subscription_end->fault->machine, "win10.windomain.local");
    EXPECT_EQ(m.subscription_end->fault->message, sample.subscription_end->fault->message);
}

TEST(WsmanBuild, MessageIdsAreFreshUppercaseUuids) {
    const auto a = ws::new_message_id();
    const auto b = ws::new_message_id();
    EXPECT_TRUE(is_new_message_id(a)) << a;
    EXPECT_NE(a, b);
    EXPECT_EQ(a[19], '4'); // version 4
}

TEST(WsmanBuild, Durations) {
    EXPECT_EQ(ws::format_duration(3'600'000), "PT3600.000S");
    EXPECT_EQ(ws::format_duration(60'000, 1), "PT60.0S");
    EXPECT_EQ(ws::format_duration(60'050, 1), "PT60.050S"); // never loses precision
    EXPECT_EQ(ws::format_duration(500), "PT0.500S");
    EXPECT_EQ(ws::parse_duration_ms("PT0.500S"), 500u);
    EXPECT_EQ(ws::parse_duration_ms(" PT60.0S\n"), 60'000u);
    EXPECT_EQ(ws::parse_duration_ms("P1DT1H1M1.5S"), 90'061'500u);
    EXPECT_EQ(ws::parse_duration_ms("PT"), std::nullopt);
    EXPECT_EQ(ws::parse_duration_ms("60"), std::nullopt);
    EXPECT_EQ(ws::parse_duration_ms("PT1.5M"), std::nullopt);
    EXPECT_EQ(ws::parse_duration_ms("PT99999999999999999999S"), std::nullopt);
}

TEST(WsmanBuild, ActionUris) {
    EXPECT_EQ(ws::action_from_uri(ws::action_uri(ws::Action::Heartbeat)), ws::Action::Heartbeat);
    EXPECT_EQ(ws::action_from_uri("urn:nope"), ws::Action::Unknown);
    EXPECT_EQ(ws::to_string(ws::Action::SubscriptionEnd), "SubscriptionEnd");
}

// ---------------------------------------------------------------- protocol facts (reference 2, 4)
// What Windows needs in the Subscribe envelope and the replies, checked element- and
// attribute-aware (namespace URIs, not prefixes) on wec's output and on Windows' own sample alike.

namespace {

constexpr std::string_view kNsSoap = "http://www.w3.org/2003/05/soap-envelope";
constexpr std::string_view kNsEnumeration = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";
constexpr std::string_view kNsEventing = "http://schemas.xmlsoap.org/ws/2004/08/eventing";
constexpr std::string_view kNsWsman = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
constexpr std::string_view kNsSubscription =
    "http://schemas.microsoft.com/wbem/wsman/1/subscription";
constexpr std::string_view kNsXsi = "http://www.w3.org/2001/XMLSchema-instance";
constexpr std::string_view kNsXml = "http://www.w3.org/XML/1998/namespace";
constexpr std::string_view kDeliveryModeEvents =
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/Events";
constexpr std::string_view kEventQueryDialect =
    "http://schemas.microsoft.com/win/2004/08/events/eventquery";

std::string_view local_part(std::string_view qname) {
    const auto colon = qname.find(':');
    return colon == std::string_view::npos ? qname : qname.substr(colon + 1);
}

// Namespace URI of a qualified name used on `scope`, resolved through the xmlns declarations of
// `scope` and its ancestors. An unprefixed attribute has no namespace.
std::string resolve_ns(pugi::xml_node scope, std::string_view qname, bool attribute) {
    const auto colon = qname.find(':');
    if (colon == std::string_view::npos && attribute) return {};
    const std::string prefix(colon == std::string_view::npos ? "" : qname.substr(0, colon));
    if (prefix == "xml") return std::string(kNsXml);
    const std::string decl = prefix.empty() ? "xmlns" : "xmlns:" + prefix;
    for (auto n = scope; n; n = n.parent())
        if (auto a = n.attribute(decl.c_str())) return a.value();
    return {};
}

bool is_xmlns(std::string_view name) {
    return name == "xmlns" || name.substr(0, 6) == "xmlns:";
}

bool named(pugi::xml_node n, std::string_view ns, std::string_view local) {
    return n.type() == pugi::node_element && local_part(n.name()) == local &&
           resolve_ns(n, n.name(), false) == ns;
}

// The child elements of `parent` named {ns}local.
std::vector<pugi::xml_node> children_ns(pugi::xml_node parent, std::string_view ns,
                                        std::string_view local) {
    std::vector<pugi::xml_node> out;
    for (auto c : parent.children())
        if (named(c, ns, local)) out.push_back(c);
    return out;
}

// The only child element {ns}local of `parent`; an empty node (and a failure) otherwise.
pugi::xml_node only_child(pugi::xml_node parent, std::string_view ns, std::string_view local) {
    const auto found = children_ns(parent, ns, local);
    EXPECT_EQ(found.size(), 1u) << "{" << ns << "}" << local << " under " << parent.name();
    return found.size() == 1 ? found[0] : pugi::xml_node();
}

// Attribute {ns}local of `node`, nullopt when absent.
std::optional<std::string> attr_ns(pugi::xml_node node, std::string_view ns,
                                   std::string_view local) {
    for (auto a : node.attributes()) {
        if (is_xmlns(a.name())) continue;
        if (local_part(a.name()) == local && resolve_ns(node, a.name(), true) == ns)
            return std::string(a.value());
    }
    return std::nullopt;
}

// The w:Option elements of w:OptionSet named `name` (the Name attribute).
std::vector<pugi::xml_node> options_named(pugi::xml_node option_set, std::string_view name) {
    std::vector<pugi::xml_node> out;
    for (auto o : children_ns(option_set, kNsWsman, "Option"))
        if (attr_ns(o, "", "Name") == std::string(name)) out.push_back(o);
    return out;
}

// A w:Option given as xsi:nil="true": no content at all (no text, no element).
void expect_nil_option(pugi::xml_node option_set, std::string_view name, const std::string& who) {
    const auto found = options_named(option_set, name);
    ASSERT_EQ(found.size(), 1u) << who << ": option " << name;
    EXPECT_EQ(attr_ns(found[0], kNsXsi, "nil"), "true") << who << ": option " << name;
    EXPECT_FALSE(found[0].first_child()) << who << ": option " << name << " has content";
}

// Element skeleton of a subtree: one line per element (depth, {ns}local, its non-xmlns
// attributes as {ns}local=value, in document order). Text content is left out.
void skeleton(pugi::xml_node n, int depth, std::vector<std::string>& out) {
    if (n.type() != pugi::node_element) return;
    std::string line = std::string(static_cast<std::size_t>(depth) * 2, ' ') + "{" +
                       resolve_ns(n, n.name(), false) + "}" + std::string(local_part(n.name()));
    for (auto a : n.attributes()) {
        if (is_xmlns(a.name())) continue;
        line += " {" + resolve_ns(n, a.name(), true) + "}" + std::string(local_part(a.name())) +
                "=\"" + a.value() + "\"";
    }
    out.push_back(std::move(line));
    for (auto c : n.children())
        skeleton(c, depth + 1, out);
}

std::vector<std::string> skeleton_of(pugi::xml_node n) {
    std::vector<std::string> out;
    skeleton(n, 0, out);
    return out;
}

std::string joined(const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines)
        s += l + "\n";
    return s;
}

struct XmlDoc {
    pugi::xml_document doc;
    explicit XmlDoc(const std::string& xml) {
        const auto r =
            doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
        EXPECT_TRUE(r) << r.description() << " at " << r.offset;
    }
    pugi::xml_node root() const { return doc.document_element(); }
};

// s:Body/n:EnumerateResponse/w:Items/m:Subscription[i]/s:Envelope of an EnumerateResponse.
std::vector<pugi::xml_node> listed_subscribe_envelopes(pugi::xml_node envelope) {
    std::vector<pugi::xml_node> out;
    const auto body = only_child(envelope, kNsSoap, "Body");
    const auto response = only_child(body, kNsEnumeration, "EnumerateResponse");
    const auto items = only_child(response, kNsWsman, "Items");
    for (auto sub : children_ns(items, kNsSubscription, "Subscription"))
        out.push_back(only_child(sub, kNsSoap, "Envelope"));
    return out;
}

// Section 4.2 of the reference: what Windows needs in a listed Subscribe envelope.
void expect_windows_subscribe(pugi::xml_node envelope, std::uint32_t max_envelope_size,
                              const std::string& who) {
    SCOPED_TRACE(who);
    ASSERT_TRUE(named(envelope, kNsSoap, "Envelope"));
    const auto header = only_child(envelope, kNsSoap, "Header");
    const auto body = only_child(envelope, kNsSoap, "Body");
    const auto subscribe = only_child(body, kNsEventing, "Subscribe");
    ASSERT_TRUE(subscribe);

    // Options: CDATA and IgnoreChannelError as xsi:nil; Compression SLDC.
    const auto option_set = only_child(header, kNsWsman, "OptionSet");
    ASSERT_TRUE(option_set);
    expect_nil_option(option_set, "CDATA", who);
    expect_nil_option(option_set, "IgnoreChannelError", who);
    const auto compression = options_named(option_set, "Compression");
    ASSERT_EQ(compression.size(), 1u);
    EXPECT_STREQ(compression[0].text().get(), "SLDC");

    // e:Delivery Mode=".../wsman/Events" holding w:MaxEnvelopeSize Policy="Notify".
    const auto delivery = only_child(subscribe, kNsEventing, "Delivery");
    ASSERT_TRUE(delivery);
    EXPECT_EQ(attr_ns(delivery, "", "Mode"), std::string(kDeliveryModeEvents));
    const auto size = only_child(delivery, kNsWsman, "MaxEnvelopeSize");
    ASSERT_TRUE(size);
    EXPECT_EQ(attr_ns(size, "", "Policy"), "Notify");
    EXPECT_EQ(std::string(size.text().get()), std::to_string(max_envelope_size));
    // The header's w:MaxEnvelopeSize is the other one: mustUnderstand, no Policy.
    const auto header_size = only_child(header, kNsWsman, "MaxEnvelopeSize");
    EXPECT_EQ(attr_ns(header_size, kNsSoap, "mustUnderstand"), "true");
    EXPECT_FALSE(attr_ns(header_size, "", "Policy"));

    // w:Filter Dialect=".../eventquery" right after e:Delivery, holding the <QueryList>.
    const auto filter = only_child(subscribe, kNsWsman, "Filter");
    ASSERT_TRUE(filter);
    EXPECT_EQ(attr_ns(filter, "", "Dialect"), std::string(kEventQueryDialect));
    EXPECT_EQ(filter.previous_sibling(), delivery);
    const auto query_list = filter.first_child();
    EXPECT_TRUE(named(query_list, "", "QueryList")) << query_list.name();
}

} // namespace

TEST(WsmanFacts, SubscribeEnvelopeCarriesWhatWindowsNeeds) {
    // Windows' own EnumerateResponse: the reference facts hold there (checks the checker).
    const std::string windows_xml = load("enumerate-response.xml");
    const XmlDoc windows(windows_xml);
    const auto windows_envelopes = listed_subscribe_envelopes(windows.root());
    ASSERT_EQ(windows_envelopes.size(), 1u);
    expect_windows_subscribe(windows_envelopes[0], 512000, "Windows sample");

    // wec's envelope, alone and as listed in its EnumerateResponse.
    auto spec = sample_spec();
    const std::string wec_xml = ws::build_subscribe_envelope(spec);
    const XmlDoc wec(wec_xml);
    expect_windows_subscribe(wec.root(), 512000, "build_subscribe_envelope");

    spec.max_envelope_size = 153600;
    const std::vector<ws::SubscriptionSpec> specs = {spec};
    const XmlDoc response(ws::build_enumerate_response(parse_file("enumerate.xml"), specs));
    const auto listed = listed_subscribe_envelopes(response.root());
    ASSERT_EQ(listed.size(), 1u);
    expect_windows_subscribe(listed[0], 153600, "build_enumerate_response");

    // The exact spelling of the reference (section 4.2), as Windows writes it, in both texts.
    for (const std::string_view fragment :
         {std::string_view(
              "<e:Delivery Mode=\"http://schemas.dmtf.org/wbem/wsman/1/wsman/Events\">"),
          std::string_view("<w:Filter Dialect=\"http://schemas.microsoft.com/win/2004/08/events/"
                           "eventquery\">"),
          std::string_view("<w:MaxEnvelopeSize Policy=\"Notify\">512000</w:MaxEnvelopeSize>"),
          std::string_view("<w:Option Name=\"CDATA\" xsi:nil=\"true\"/>"),
          std::string_view("<w:Option Name=\"IgnoreChannelError\" xsi:nil=\"true\"/>"),
          std::string_view("<w:Option Name=\"Compression\">SLDC</w:Option>")}) {
        EXPECT_NE(windows_xml.find(fragment), std::string::npos) << "Windows sample: " << fragment;
        EXPECT_NE(wec_xml.find(fragment), std::string::npos) << "wec: " << fragment;
    }
}

TEST(WsmanFacts, SubscribeEnvelopeHasTheElementSkeletonOfWindows) {
    // sample_spec() describes the subscription of Windows' sample: element for element, attribute
    // for attribute (namespace-resolved; prefixes, whitespace and text aside), wec writes the
    // same Subscribe envelope, in the same order.
    const XmlDoc windows(load("enumerate-response.xml"));
    const auto windows_envelopes = listed_subscribe_envelopes(windows.root());
    ASSERT_EQ(windows_envelopes.size(), 1u);
    const XmlDoc wec(ws::build_subscribe_envelope(sample_spec()));
    EXPECT_EQ(joined(skeleton_of(wec.root())), joined(skeleton_of(windows_envelopes[0])));
}

TEST(WsmanFacts, EnumerateResponseBodyHasTheElementSkeletonOfWindows) {
    const XmlDoc windows(load("enumerate-response.xml"));
    const std::vector<ws::SubscriptionSpec> specs = {sample_spec()};
    const XmlDoc wec(ws::build_enumerate_response(parse_file("enumerate.xml"), specs));
    EXPECT_EQ(attr_ns(wec.root(), kNsXml, "lang"), "en-US");
    EXPECT_EQ(attr_ns(wec.root(), kNsXml, "lang"), attr_ns(windows.root(), kNsXml, "lang"));
    const auto wec_body = only_child(wec.root(), kNsSoap, "Body");
    const auto windows_body = only_child(windows.root(), kNsSoap, "Body");
    EXPECT_EQ(joined(skeleton_of(wec_body)), joined(skeleton_of(windows_body)));
    // The enumeration context is empty (a non-empty one makes Windows switch to Pull).
    const auto context = only_child(only_child(wec_body, kNsEnumeration, "EnumerateResponse"),
                                    kNsEnumeration, "EnumerationContext");
    EXPECT_TRUE(context && !context.first_child());
}

TEST(WsmanFacts, OptionalNilOptionsOnlyWhenSet) {
    auto spec = sample_spec();
    spec.ignore_channel_error = false;
    spec.read_existing_events = true;
    spec.bookmark.reset();
    const XmlDoc doc(ws::build_subscribe_envelope(spec));
    const auto option_set =
        only_child(only_child(doc.root(), kNsSoap, "Header"), kNsWsman, "OptionSet");
    EXPECT_TRUE(options_named(option_set, "IgnoreChannelError").empty());
    expect_nil_option(option_set, "ReadExistingEvents", "read_existing_events");
    expect_nil_option(option_set, "CDATA", "read_existing_events");
    // No stored bookmark + ReadExistingEvents: the "earliest" bookmark text.
    const auto subscribe =
        only_child(only_child(doc.root(), kNsSoap, "Body"), kNsEventing, "Subscribe");
    const auto bookmark = only_child(subscribe, kNsWsman, "Bookmark");
    EXPECT_EQ(std::string(bookmark.text().get()), ws::kBookmarkEarliest);

    spec.read_existing_events = false;
    const XmlDoc plain(ws::build_subscribe_envelope(spec));
    const auto plain_options =
        only_child(only_child(plain.root(), kNsSoap, "Header"), kNsWsman, "OptionSet");
    EXPECT_TRUE(options_named(plain_options, "ReadExistingEvents").empty());
    EXPECT_TRUE(
        children_ns(only_child(only_child(plain.root(), kNsSoap, "Body"), kNsEventing, "Subscribe"),
                    kNsWsman, "Bookmark")
            .empty());
}

TEST(WsmanFacts, RepliesHaveNoXmlDeclaration) {
    const auto heartbeat = parse_file("heartbeat.xml");
    const auto enumerate = parse_file("enumerate.xml");
    const std::vector<ws::SubscriptionSpec> two = {sample_spec(), sample_spec()};
    const std::vector<std::pair<std::string, std::string>> replies = {
        {"Ack", ws::build_ack(heartbeat)},
        {"EnumerateResponse (none)", ws::build_enumerate_response(enumerate, {})},
        {"EnumerateResponse (two)", ws::build_enumerate_response(enumerate, two)},
        {"Subscribe envelope", ws::build_subscribe_envelope(sample_spec())},
    };
    for (const auto& [what, xml] : replies) {
        EXPECT_EQ(xml.rfind("<s:Envelope", 0), 0u) << what << ": " << xml.substr(0, 80);
        EXPECT_EQ(xml.find("<?xml"), std::string::npos) << what;
        // On the wire (section 2): UTF-16LE, a BOM, then directly the envelope.
        std::vector<std::uint8_t> wire;
        wec::text::encode_body(xml, wec::text::Encoding::Utf16LE, wire);
        const std::vector<std::uint8_t> start = {0xFF, 0xFE, '<', 0, 's', 0, ':', 0};
        ASSERT_GE(wire.size(), start.size()) << what;
        EXPECT_TRUE(std::equal(start.begin(), start.end(), wire.begin())) << what;
    }
}

TEST(WsmanFacts, SourceMessagesHaveNoXmlDeclaration) {
    // Like Windows' samples: what the client/emulator sends starts with the envelope too.
    const auto h = source_headers();
    const std::vector<std::string_view> events = {"<Event/>"};
    const auto sample = parse_file("subscription-end.xml");
    for (const std::string& xml :
         {ws::build_enumerate(h), ws::build_heartbeat(h), ws::build_events(h, events, {}),
          ws::build_end(h), ws::build_subscription_end(h, *sample.subscription_end)}) {
        EXPECT_EQ(xml.rfind("<s:Envelope", 0), 0u) << xml.substr(0, 80);
        EXPECT_EQ(xml.find("<?xml"), std::string::npos);
    }
    for (const char* name : {"enumerate.xml", "enumerate-response.xml", "heartbeat.xml",
                             "events.xml", "ack.xml", "end.xml", "subscription-end.xml"}) {
        EXPECT_EQ(load(name).rfind("<s:Envelope", 0), 0u) << name;
    }
}

// ---------------------------------------------------------------- malformed input

TEST(WsmanErrors, NotXml) {
    try {
        ws::parse("this is not xml <<<");
        FAIL();
    } catch (const ws::ParseError& e) {
        EXPECT_EQ(e.code(), ws::ErrorCode::NotXml);
        EXPECT_NE(std::string(e.what()).find("offset"), std::string::npos);
    }
    expect_error([] { ws::parse(""); }, ws::ErrorCode::NotXml, "XML");
}

TEST(WsmanErrors, Truncated) {
    const std::string xml = load("events.xml");
    expect_error([&] { ws::parse(std::string_view(xml).substr(0, xml.size() / 2)); },
                 ws::ErrorCode::NotXml, "offset");
}

TEST(WsmanErrors, NoEnvelope) {
    expect_error([] { ws::parse("<Envelope><Header/></Envelope>"); }, ws::ErrorCode::NotEnvelope,
                 "Envelope");
}

TEST(WsmanErrors, NoHeader) {
    expect_error(
        [] {
            ws::parse("<s:Envelope "
                      "xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body/></s:Envelope>");
        },
        ws::ErrorCode::MissingHeader, "s:Header");
}

TEST(WsmanErrors, NoActionNoMessageId) {
    std::string xml = load("heartbeat.xml");
    std::string no_action = xml;
    const auto a = no_action.find("<a:Action");
    no_action.erase(a, no_action.find("</a:Action>") + 11 - a);
    expect_error([&] { ws::parse(no_action); }, ws::ErrorCode::MissingAction, "a:Action");
    std::string no_id = xml;
    const auto b = no_id.find("<a:MessageID>");
    no_id.erase(b, no_id.find("</a:MessageID>") + 14 - b);
    expect_error([&] { ws::parse(no_id); }, ws::ErrorCode::MissingMessageId, "a:MessageID");
}

TEST(WsmanErrors, EventsWithoutBodyOrEvents) {
    std::string xml = load("events.xml");
    std::string no_body = xml.substr(0, xml.find("<s:Body>")) + "</s:Envelope>";
    expect_error([&] { ws::parse(no_body); }, ws::ErrorCode::MissingBody, "s:Body");
    std::string no_events = xml.substr(0, xml.find("<s:Body>")) + "<s:Body/></s:Envelope>";
    try {
        ws::parse(no_events);
        FAIL();
    } catch (const ws::ParseError& e) {
        EXPECT_EQ(e.code(), ws::ErrorCode::MissingElement);
        EXPECT_EQ(e.element(), "w:Events");
        EXPECT_NE(std::string(e.what()).find("w:Events"), std::string::npos);
    }
}

TEST(WsmanErrors, MissingBodyElements) {
    std::string se = load("subscription-end.xml");
    se = se.substr(0, se.find("<s:Body>")) + "<s:Body></s:Body></s:Envelope>";
    expect_error([&] { ws::parse(se); }, ws::ErrorCode::MissingElement, "e:SubscriptionEnd");
    std::string en = load("enumerate.xml");
    en = en.substr(0, en.find("<s:Body>")) + "<s:Body></s:Body></s:Envelope>";
    expect_error([&] { ws::parse(en); }, ws::ErrorCode::MissingElement, "n:Enumerate");
}

TEST(WsmanErrors, DeeplyNestedGarbage) {
    std::string deep;
    for (int i = 0; i < 200000; ++i)
        deep += "<x>";
    expect_error([&] { ws::parse(deep); }, ws::ErrorCode::NotXml, "offset");
    // Well-formed, deep, inside an unknown header and inside the events: no recursion anywhere.
    std::string xml = load("heartbeat.xml");
    std::string nest;
    for (int i = 0; i < 100000; ++i)
        nest += "<y:d xmlns:y=\"urn:y\">";
    for (int i = 0; i < 100000; ++i)
        nest += "</y:d>";
    xml.replace(xml.find("<w:AckRequested/>"), 0, nest);
    const auto m = ws::parse(xml);
    ASSERT_EQ(m.other_headers.size(), 1u);
    EXPECT_GT(m.other_headers[0].xml.size(), 100000u);
}

TEST(WsmanErrors, BinaryNoise) {
    std::string noise;
    for (int i = 0; i < 4096; ++i)
        noise.push_back(static_cast<char>((i * 131) & 0xFF));
    EXPECT_THROW(ws::parse(noise), ws::ParseError);
    EXPECT_THROW(ws::parse_body(wec::as_bytes(noise)), ws::ParseError);
}

// NotifyTo URLs: the collector routes by the subscription in the path, `wec decode` names the
// subscription of each request the same way.
TEST(NotifyTo, SubscriptionFromPathAndPathOfUrl) {
    EXPECT_EQ(
        ws::subscription_from_path("/wsman/subscriptions/98e45910-0087-477b-bc9b-53602d62d532"),
        "98E45910-0087-477B-BC9B-53602D62D532");
    EXPECT_EQ(ws::subscription_from_path("/WSMAN/Subscriptions/abc/extra?x=1"), "ABC");
    EXPECT_EQ(ws::subscription_from_path("/wsman/subscriptions/abc?x=/y"), "ABC");
    EXPECT_EQ(ws::subscription_from_path("/wsman/subscriptions/"), "");
    EXPECT_EQ(ws::subscription_from_path("/wsman/SubscriptionManager/WEC"), "");
    EXPECT_EQ(ws::subscription_from_path(""), "");
    EXPECT_EQ(ws::path_of_url("http://wec.d.local:5985/wsman/subscriptions/X?y"),
              "/wsman/subscriptions/X?y");
    EXPECT_EQ(ws::path_of_url("https://wec.d.local:5986"), "");
    EXPECT_EQ(ws::path_of_url("/already/a/path"), "/already/a/path");
    EXPECT_EQ(ws::subscription_from_path(
                  ws::path_of_url("HTTP://wec.d.local:5985/wsman/subscriptions/ab-cd")),
              "AB-CD");
}

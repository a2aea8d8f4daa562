#include "wsman/names_internal.hpp"
#include "wsman/subscription.hpp"
#include "wsman/wsman.hpp"
#include "wsman/xml_writer_internal.hpp"

#include <algorithm>
#include <cctype>
#include <pugixml.hpp>

namespace wec::wsman {
namespace ns = detail::ns;
namespace uri = detail::uri;
namespace {

// Escapes character data (and attribute values: quotes and whitespace too, so that an attribute
// reads back byte for byte).
void esc(std::string& o, std::string_view s, bool attribute = false) {
    for (char c : s) {
        switch (c) {
        case '&':
            o += "&amp;";
            break;
        case '<':
            o += "&lt;";
            break;
        case '>':
            o += "&gt;";
            break;
        case '"':
            if (attribute)
                o += "&quot;";
            else
                o += c;
            break;
        case '\t':
        case '\n':
        case '\r':
            if (attribute) {
                o += "&#";
                o += std::to_string(static_cast<int>(c));
                o += ';';
            } else {
                o += c;
            }
            break;
        default:
            o += c;
        }
    }
}

void elem(std::string& o, std::string_view tag, std::string_view value,
          std::string_view attrs = {}) {
    o += '<';
    o += tag;
    o += attrs;
    o += '>';
    esc(o, value);
    o += "</";
    o += tag;
    o += '>';
}

std::string_view bare_uuid(std::string_view u) {
    if (u.size() >= 5 && u.substr(0, 5) == "uuid:") u.remove_prefix(5);
    return u;
}

// Re-serializes an XML fragment (a QueryList, a BookmarkList) compactly, so that what goes into a
// Subscribe envelope is always one well-formed element, never a declaration or stray text.
void append_fragment(std::string& o, std::string_view xml, std::string_view what,
                     const SubscriptionSpec& spec) {
    pugi::xml_document doc;
    const auto r =
        doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
    if (!r || !doc.document_element()) {
        throw wec::Error(
            "subscription '" + spec.name + "': " + std::string(what) + " is not well-formed XML" +
            (r ? std::string(" (no element)")
               : " (offset " + std::to_string(r.offset) + ": " + r.description() + ")"));
    }
    detail::StringWriter w(o);
    doc.document_element().print(w, "", pugi::format_raw, pugi::encoding_utf8);
}

constexpr std::string_view kEnvelopeOpen =
    "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\""
    " xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\""
    " xmlns:e=\"http://schemas.xmlsoap.org/ws/2004/08/eventing\""
    " xmlns:n=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\""
    " xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\""
    " xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\">";

constexpr std::string_view kMustUnderstand = " s:mustUnderstand=\"true\"";
constexpr std::string_view kMayIgnore = " s:mustUnderstand=\"false\"";

void locale_elements(std::string& o, std::string_view locale, std::string_view data_locale) {
    if (!locale.empty()) {
        o += "<w:Locale xml:lang=\"";
        esc(o, locale, true);
        o += "\" s:mustUnderstand=\"false\"/>";
    }
    if (!data_locale.empty()) {
        o += "<p:DataLocale xml:lang=\"";
        esc(o, data_locale, true);
        o += "\" s:mustUnderstand=\"false\"/>";
    }
}

// The header of a message a source sends, in the order Windows uses.
void source_header(std::string& o, const SourceHeaders& h, std::string_view resource_uri,
                   std::string_view action, bool with_identifier, std::string_view bookmark,
                   bool ack_requested) {
    o += "<s:Header>";
    elem(o, "a:To", h.to);
    if (!resource_uri.empty()) elem(o, "w:ResourceURI", resource_uri, kMustUnderstand);
    if (!h.machine_id.empty()) {
        o += "<m:MachineID xmlns:m=\"";
        o += ns::machineid;
        o += "\" s:mustUnderstand=\"false\">";
        esc(o, h.machine_id);
        o += "</m:MachineID>";
    }
    o += "<a:ReplyTo>";
    elem(o, "a:Address", uri::anonymous, kMustUnderstand);
    o += "</a:ReplyTo>";
    elem(o, "a:Action", action, kMustUnderstand);
    elem(o, "w:MaxEnvelopeSize", std::to_string(h.max_envelope_size), kMustUnderstand);
    elem(o, "a:MessageID", h.message_id.empty() ? new_message_id() : h.message_id);
    locale_elements(o, h.locale, h.data_locale);
    if (!h.session_id.empty()) elem(o, "p:SessionId", h.session_id, kMayIgnore);
    elem(o, "p:OperationID", h.operation_id.empty() ? new_message_id() : h.operation_id,
         kMayIgnore);
    if (!h.sequence_id.empty()) elem(o, "p:SequenceId", h.sequence_id, kMayIgnore);
    if (!h.operation_timeout.empty()) elem(o, "w:OperationTimeout", h.operation_timeout);
    if (with_identifier && !h.identifier.empty()) {
        o += "<e:Identifier xmlns:e=\"";
        o += ns::eventing;
        o += "\">";
        esc(o, h.identifier);
        o += "</e:Identifier>";
    }
    for (const auto& raw : h.raw_headers)
        o += raw;
    if (!bookmark.empty()) {
        o += "<w:Bookmark>";
        o += bookmark;
        o += "</w:Bookmark>";
    }
    if (ack_requested) o += "<w:AckRequested/>";
    o += "</s:Header>";
}

void append_cdata(std::string& o, std::string_view text) {
    o += "<![CDATA[";
    for (;;) {
        const auto pos = text.find("]]>");
        if (pos == std::string_view::npos) break;
        // "]]>" cannot appear in a CDATA section: end it after "]]" and start a new one at ">".
        o.append(text.substr(0, pos + 2));
        o += "]]><![CDATA[";
        text.remove_prefix(pos + 2);
    }
    o += text;
    o += "]]>";
}

} // namespace

std::string build_ack(const Message& request) {
    std::string o;
    o.reserve(1024);
    o += "<s:Envelope xml:lang=\"en-US\" xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\""
         " xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\""
         " xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\""
         " xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\"><s:Header>";
    elem(o, "a:Action", uri::ack);
    elem(o, "a:MessageID", new_message_id());
    if (!request.operation_id.empty()) elem(o, "p:OperationID", request.operation_id, kMayIgnore);
    if (!request.sequence_id.empty()) elem(o, "p:SequenceId", request.sequence_id);
    elem(o, "a:To", uri::anonymous);
    elem(o, "a:RelatesTo", request.message_id);
    o += "</s:Header><s:Body></s:Body></s:Envelope>";
    return o;
}

std::string build_enumerate_response(const Message& request,
                                     std::span<const SubscriptionSpec> subscriptions) {
    std::string o;
    o.reserve(1024 + subscriptions.size() * 4096);
    o += "<s:Envelope xml:lang=\"en-US\" xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\""
         " xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\""
         " xmlns:n=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\""
         " xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\""
         " xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\"><s:Header>";
    elem(o, "a:Action", uri::enumerate_response);
    elem(o, "a:MessageID", new_message_id());
    elem(o, "a:To", uri::anonymous);
    // No p:OperationID: echoing it announces "robust connections", which wec does not implement.
    elem(o, "a:RelatesTo", request.message_id);
    o += "</s:Header><s:Body><n:EnumerateResponse><n:EnumerationContext></n:EnumerationContext>"
         "<w:Items>";
    for (const SubscriptionSpec& spec : subscriptions) {
        o += "<m:Subscription xmlns:m=\"";
        o += ns::subscription;
        o += "\"><m:Version>uuid:";
        esc(o, bare_uuid(spec.version));
        o += "</m:Version>";
        o += build_subscribe_envelope(spec);
        o += "</m:Subscription>";
    }
    o += "</w:Items><w:EndOfSequence/></n:EnumerateResponse></s:Body></s:Envelope>";
    return o;
}

std::string build_subscribe_envelope(const SubscriptionSpec& spec) {
    std::string o;
    o.reserve(4096 + spec.query.size() + (spec.bookmark ? spec.bookmark->size() : 0));
    const std::string locale = spec.locale.value_or("");
    const std::string data_locale = spec.data_locale.value_or("");
    const std::string_view identifier = bare_uuid(spec.version);

    o += kEnvelopeOpen;
    o += "<s:Header>";
    elem(o, "a:To", uri::anonymous);
    elem(o, "w:ResourceURI", uri::resource_eventlog, kMustUnderstand);
    o += "<a:ReplyTo>";
    elem(o, "a:Address", uri::anonymous, kMustUnderstand);
    o += "</a:ReplyTo>";
    elem(o, "a:Action", uri::subscribe, kMustUnderstand);
    elem(o, "w:MaxEnvelopeSize", std::to_string(spec.max_envelope_size), kMustUnderstand);
    elem(o, "a:MessageID", new_message_id());
    locale_elements(o, locale, data_locale);
    elem(o, "p:OperationID", new_message_id(), kMayIgnore);
    elem(o, "p:SequenceId", "1", kMayIgnore);
    o += "<w:OptionSet xmlns:xsi=\"";
    o += ns::xsi;
    o += "\">";
    elem(o, "w:Option", spec.name, " Name=\"SubscriptionName\"");
    elem(o, "w:Option", "SLDC", " Name=\"Compression\"");
    o += "<w:Option Name=\"CDATA\" xsi:nil=\"true\"/>";
    elem(o, "w:Option", spec.content_format == ContentFormat::Raw ? "Raw" : "RenderedText",
         " Name=\"ContentFormat\"");
    if (spec.ignore_channel_error) o += "<w:Option Name=\"IgnoreChannelError\" xsi:nil=\"true\"/>";
    if (spec.read_existing_events) o += "<w:Option Name=\"ReadExistingEvents\" xsi:nil=\"true\"/>";
    o += "</w:OptionSet></s:Header>";

    auto endpoint = [&](bool with_policy) {
        elem(o, "a:Address", spec.notify_to);
        o += "<a:ReferenceProperties>";
        elem(o, "e:Identifier", identifier);
        o += "</a:ReferenceProperties>";
        if (!with_policy) return;
        o += "<c:Policy xmlns:c=\"";
        o += ns::policy;
        o += "\" xmlns:auth=\"";
        o += ns::auth;
        o += "\"><c:ExactlyOne>";
        if (const auto* tls = std::get_if<TlsPolicy>(&spec.auth)) {
            if (tls->issuer_thumbprints.empty())
                throw wec::Error("subscription '" + spec.name +
                                 "': TLS policy without an issuer thumbprint");
            // One alternative per accepted issuing CA.
            for (const std::string& thumbprint : tls->issuer_thumbprints) {
                o += "<c:All><auth:Authentication Profile=\"";
                o += kProfileTls;
                o += "\"><auth:ClientCertificate>";
                elem(o, "auth:Thumbprint", thumbprint, " Role=\"issuer\"");
                o += "</auth:ClientCertificate></auth:Authentication></c:All>";
            }
        } else {
            o += "<c:All><auth:Authentication Profile=\"";
            o += kProfileKerberos;
            o += "\"></auth:Authentication></c:All>";
        }
        o += "</c:ExactlyOne></c:Policy>";
    };

    o += "<s:Body><e:Subscribe><e:EndTo>";
    endpoint(false);
    o += "</e:EndTo><e:Delivery Mode=\"";
    o += uri::events;
    o += "\">";
    elem(o, "w:Heartbeats", format_duration(spec.heartbeat_interval_ms));
    o += "<e:NotifyTo>";
    endpoint(true);
    o += "</e:NotifyTo>";
    elem(o, "w:ConnectionRetry", format_duration(spec.connection_retry_interval_ms, 1),
         " Total=\"" + std::to_string(spec.connection_retry_count) + "\"");
    elem(o, "w:MaxTime", format_duration(spec.max_latency_ms));
    if (spec.max_elements) elem(o, "w:MaxElements", std::to_string(*spec.max_elements));
    elem(o, "w:MaxEnvelopeSize", std::to_string(spec.max_envelope_size), " Policy=\"Notify\"");
    locale_elements(o, locale, data_locale);
    o += "<w:ContentEncoding>UTF-16</w:ContentEncoding></e:Delivery><w:Filter Dialect=\"";
    o += uri::event_query_dialect;
    o += "\">";
    append_fragment(o, spec.query, "query", spec);
    o += "</w:Filter>";
    if (spec.bookmark && !spec.bookmark->empty()) {
        o += "<w:Bookmark>";
        append_fragment(o, *spec.bookmark, "bookmark", spec);
        o += "</w:Bookmark>";
    } else if (spec.read_existing_events) {
        elem(o, "w:Bookmark", kBookmarkEarliest);
    }
    if (spec.send_bookmarks) o += "<w:SendBookmarks/>";
    o += "</e:Subscribe></s:Body></s:Envelope>";
    return o;
}

std::string build_enumerate(const SourceHeaders& headers, std::uint32_t max_elements) {
    std::string o;
    o.reserve(2048);
    o += kEnvelopeOpen;
    source_header(o, headers, uri::resource_subscription, uri::enumerate, false, {}, false);
    o += "<s:Body><n:Enumerate><w:OptimizeEnumeration/>";
    elem(o, "w:MaxElements", std::to_string(max_elements));
    o += "</n:Enumerate></s:Body></s:Envelope>";
    return o;
}

std::string build_heartbeat(const SourceHeaders& headers) {
    std::string o;
    o.reserve(2048);
    o += kEnvelopeOpen;
    source_header(o, headers, {}, uri::heartbeat, true, {}, true);
    o += "<s:Body><w:Events></w:Events></s:Body></s:Envelope>";
    return o;
}

std::string build_events(const SourceHeaders& headers, std::span<const std::string_view> events,
                         std::string_view bookmark) {
    std::size_t size = 2048 + bookmark.size();
    for (auto e : events)
        size += e.size() + 128;
    std::string o;
    o.reserve(size);
    o += kEnvelopeOpen;
    source_header(o, headers, {}, uri::events, true, bookmark, true);
    o += "<s:Body><w:Events>";
    for (std::string_view e : events) {
        o += "<w:Event Action=\"";
        o += uri::event;
        o += "\">";
        append_cdata(o, e);
        o += "</w:Event>";
    }
    o += "</w:Events></s:Body></s:Envelope>";
    return o;
}

std::string build_end(const SourceHeaders& headers) {
    std::string o;
    o.reserve(1024);
    o += kEnvelopeOpen;
    o += "<s:Header>";
    elem(o, "a:To", uri::anonymous);
    elem(o, "w:ResourceURI", uri::resource_full_duplex, kMustUnderstand);
    elem(o, "a:Action", uri::end, kMustUnderstand);
    elem(o, "a:MessageID", headers.message_id.empty() ? new_message_id() : headers.message_id);
    elem(o, "p:OperationID",
         headers.operation_id.empty() ? new_message_id() : headers.operation_id);
    o += "</s:Header><s:Body></s:Body></s:Envelope>";
    return o;
}

std::string build_subscription_end(const SourceHeaders& headers, const SubscriptionEndBody& body) {
    std::string o;
    o.reserve(2048);
    o += kEnvelopeOpen;
    source_header(o, headers, {}, uri::subscription_end, true, {}, true);
    o += "<s:Body><e:SubscriptionEnd><e:SubscriptionManager>";
    elem(o, "a:Address", body.manager_address);
    if (!body.manager_identifier.empty()) {
        o += "<a:ReferenceProperties>";
        elem(o, "e:Identifier", body.manager_identifier);
        o += "</a:ReferenceProperties>";
    }
    o += "</e:SubscriptionManager>";
    elem(o, "e:Status", body.status.empty() ? uri::source_cancelling : body.status);
    if (body.fault) {
        o += "<f:WSManFault xmlns:f=\"";
        o += ns::wsmanfault;
        o += "\" Code=\"";
        esc(o, body.fault->code, true);
        o += "\" Machine=\"";
        esc(o, body.fault->machine, true);
        o += "\"><f:Message><f:ProviderFault provider=\"Unknown provider\" path=\"Unknown path\">"
             "<t:ProviderError xmlns:t=\"";
        o += ns::eventlog;
        o += "\">";
        esc(o, body.fault->message);
        o += "</t:ProviderError></f:ProviderFault></f:Message></f:WSManFault>";
    }
    o += "</e:SubscriptionEnd></s:Body></s:Envelope>";
    return o;
}

std::string subscription_from_path(std::string_view path) {
    if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
    if (path.size() <= kSubscriptionsPath.size()) return {};
    if (!std::equal(
            kSubscriptionsPath.begin(), kSubscriptionsPath.end(), path.begin(),
            [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); }))
        return {};
    auto rest = path.substr(kSubscriptionsPath.size());
    std::string uuid(rest.substr(0, rest.find('/')));
    for (char& c : uuid)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return uuid;
}

std::string_view path_of_url(std::string_view url) {
    auto scheme = url.find("://");
    if (scheme == std::string_view::npos) return url;
    auto slash = url.find('/', scheme + 3);
    return slash == std::string_view::npos ? std::string_view{} : url.substr(slash);
}

} // namespace wec::wsman

// Namespace and action URIs of WS-Management as used by Windows Event Forwarding (MS-WSMV),
// internal to lib/wsman (its parser and builders).
#pragma once

#include <string_view>

namespace wec::wsman::detail::ns {

inline constexpr std::string_view soap = "http://www.w3.org/2003/05/soap-envelope";
inline constexpr std::string_view addressing = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
inline constexpr std::string_view enumeration = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";
inline constexpr std::string_view eventing = "http://schemas.xmlsoap.org/ws/2004/08/eventing";
inline constexpr std::string_view wsman = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
inline constexpr std::string_view msft = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd";
inline constexpr std::string_view machineid = "http://schemas.microsoft.com/wbem/wsman/1/machineid";
inline constexpr std::string_view subscription =
    "http://schemas.microsoft.com/wbem/wsman/1/subscription";
inline constexpr std::string_view policy = "http://schemas.xmlsoap.org/ws/2002/12/policy";
inline constexpr std::string_view auth = "http://schemas.microsoft.com/wbem/wsman/1/authentication";
inline constexpr std::string_view wsmanfault =
    "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault";
inline constexpr std::string_view eventlog =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/EventLog";
inline constexpr std::string_view xsi = "http://www.w3.org/2001/XMLSchema-instance";
inline constexpr std::string_view xml = "http://www.w3.org/XML/1998/namespace";

} // namespace wec::wsman::detail::ns

namespace wec::wsman::detail::uri {

inline constexpr std::string_view anonymous =
    "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";
inline constexpr std::string_view enumerate =
    "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate";
inline constexpr std::string_view enumerate_response =
    "http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse";
inline constexpr std::string_view subscribe =
    "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe";
inline constexpr std::string_view subscription_end =
    "http://schemas.xmlsoap.org/ws/2004/08/eventing/SubscriptionEnd";
inline constexpr std::string_view events = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Events";
inline constexpr std::string_view heartbeat =
    "http://schemas.dmtf.org/wbem/wsman/1/wsman/Heartbeat";
inline constexpr std::string_view ack = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Ack";
inline constexpr std::string_view end = "http://schemas.microsoft.com/wbem/wsman/1/wsman/End";
inline constexpr std::string_view event = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Event";

inline constexpr std::string_view resource_subscription =
    "http://schemas.microsoft.com/wbem/wsman/1/SubscriptionManager/Subscription";
inline constexpr std::string_view resource_eventlog =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/EventLog";
inline constexpr std::string_view resource_full_duplex =
    "http://schemas.microsoft.com/wbem/wsman/1/wsman/FullDuplex";
inline constexpr std::string_view source_cancelling =
    "http://schemas.xmlsoap.org/ws/2004/08/eventing/SourceCancelling";
inline constexpr std::string_view event_query_dialect =
    "http://schemas.microsoft.com/win/2004/08/events/eventquery";

} // namespace wec::wsman::detail::uri

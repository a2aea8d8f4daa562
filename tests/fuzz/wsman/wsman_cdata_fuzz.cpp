// Differential: wsman::parse (which cuts long CDATA sections out before pugixml sees them) must
// give exactly what parsing the whole text gives (wsman::detail::parse_whole): the same error
// code and offset, or the same message, header by header and event by event.
#include "wsman/wsman.hpp"

#include <cstdlib>
#include <string>

namespace {

namespace ws = wec::wsman;

std::string summary(const ws::Message& m) {
    std::string s;
    auto add = [&s](std::string_view v) {
        s += std::to_string(v.size());
        s += ':';
        s += v;
        s += '|';
    };
    add(std::to_string(static_cast<int>(m.action)));
    for (std::string_view v : {std::string_view(m.action_uri), std::string_view(m.message_id),
                               std::string_view(m.relates_to), std::string_view(m.to),
                               std::string_view(m.machine_id), std::string_view(m.identifier),
                               std::string_view(m.bookmark), std::string_view(m.operation_id)})
        add(v);
    add(std::to_string(m.replaced_chars));
    for (const auto& h : m.other_headers) {
        add(h.ns);
        add(h.name);
        add(h.xml);
    }
    for (const auto& e : m.events) {
        add(e.xml);
        add(e.action);
    }
    add(m.enumerate ? "enumerate" : "");
    add(m.enumerate_response ? m.enumerate_response->enumeration_context : "-");
    if (m.enumerate_response)
        for (const auto& sub : m.enumerate_response->subscriptions)
            add(sub.envelope);
    add(m.subscribe ? m.subscribe->envelope : "-");
    add(m.subscription_end ? m.subscription_end->status : "-");
    return s;
}

std::string outcome(std::string_view text, bool whole) {
    try {
        return "ok " + summary(whole ? ws::detail::parse_whole(text) : ws::parse(text));
    } catch (const ws::ParseError& e) {
        return "error " + std::to_string(static_cast<int>(e.code())) + " " +
               std::to_string(e.offset()) + " " + e.what();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (outcome(text, false) != outcome(text, true)) std::abort();
    return 0;
}

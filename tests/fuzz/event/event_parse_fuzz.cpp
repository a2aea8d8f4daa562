// Arbitrary bytes -> parse -> Json, Nxlog, RawJson, ECS and Raw: never crashes, the JSON outputs
// are always valid (they parse back), the raw output is one line.
#include "event/event.hpp"

#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view xml(reinterpret_cast<const char*>(data), size);
    wec::event::Metadata md;
    md.ip_address = "192.0.2.1";
    md.client = "WIN10$@EXAMPLE";
    md.subscription_uuid = "u";
    md.subscription_version = "v";
    md.subscription_name = "n";
    md.node = "node";

    auto ev = wec::event::parse(xml);
    std::string out;
    wec::event::format_json(ev, md, out);
    auto j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("OpenWEC")) std::abort();
    if (ev.error && !j["OpenWEC"].contains("Error")) std::abort();

    out.clear();
    wec::event::format_nxlog(ev, md, out);
    if (!nlohmann::json::accept(out)) std::abort();

    out.clear();
    wec::event::format_raw_json(xml, md, out);
    if (!nlohmann::json::accept(out)) std::abort();

    out.clear();
    wec::event::format_ecs(ev, md, out);
    j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object() || !j.contains("@timestamp")) std::abort();
    if (ev.error && !j.contains("error")) std::abort();

    out.clear();
    wec::event::format_raw(xml, out);
    if (out.find('\n') != std::string::npos || out.find('\r') != std::string::npos) std::abort();
    return 0;
}

// Arbitrary bytes -> the one-pass parser (`parse`, and `parse_one_pass` alone when it takes the
// input) against the DOM parser it replaced (`parse_dom`): the same Json, Nxlog and ECS output
// and the same error, byte for byte.
#include "event/event.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

std::string outputs(const wec::event::Event& ev) {
    wec::event::Metadata md;
    md.ip_address = "192.0.2.1";
    md.client = "WIN10$@EXAMPLE";
    md.subscription_uuid = "u";
    md.subscription_version = "v";
    md.subscription_name = "n";
    std::string out;
    wec::event::format_json(ev, md, out);
    out += '\n';
    wec::event::format_nxlog(ev, md, out);
    out += '\n';
    wec::event::format_ecs(ev, md, out);
    if (ev.error) {
        out += '\n';
        out += wec::event::to_string(ev.error->type);
        out += ev.error->message;
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view xml(reinterpret_cast<const char*>(data), size);
    wec::event::Event dom, fast;
    wec::event::parse_dom(xml, dom);
    wec::event::parse(xml, fast);
    const std::string expected = outputs(dom);
    if (outputs(fast) != expected) {
        std::fprintf(stderr, "parse differs from parse_dom\n");
        std::abort();
    }
    wec::event::Event alone;
    if (wec::event::parse_one_pass(xml, alone) && outputs(alone) != expected) {
        std::fprintf(stderr, "parse_one_pass differs from parse_dom\n");
        std::abort();
    }
    return 0;
}

// Parses arbitrary bytes as a UTF-8 and as a UTF-16 SOAP body: only wsman::ParseError may escape.
// Whatever parses must also survive the replies built from it.
#include "wsman/wsman.hpp"

#include <span>

namespace {

void exercise(const wec::wsman::Message& m) {
    const std::string ack = wec::wsman::build_ack(m);
    const auto again = wec::wsman::parse(ack);
    if (again.relates_to != m.message_id) __builtin_trap();
    std::size_t total = 0;
    for (const auto& e : m.events)
        total += e.xml.size() + e.action.size();
    (void)total;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        exercise(wec::wsman::parse(text));
    } catch (const wec::wsman::ParseError&) {
    }
    try {
        exercise(wec::wsman::parse_body(std::span<const std::uint8_t>(data, size), "UTF-16"));
    } catch (const wec::wsman::ParseError&) {
    }
    return 0;
}

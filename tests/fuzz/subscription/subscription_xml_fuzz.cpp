// read_windows_xml on arbitrary bytes: a Subscription with its warnings, or a WindowsXmlError,
// nothing else. Whatever reads must also write back (to_windows_xml) to XML that reads to the same
// subscription, and survive the TOML a store keeps (to_toml -> load_toml) unchanged.
#include "common/files.hpp"
#include "subscription/subscription.hpp"
#include "subscription/windows_xml.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace sub = wec::subscription;
    std::span<const std::uint8_t> bytes(data, size);
    (void)sub::parse_sddl(wec::as_chars(bytes));
    (void)sub::looks_like_xml(bytes);
    sub::WindowsImport first;
    try {
        first = sub::read_windows_xml(bytes, "fuzz.xml");
    } catch (const sub::WindowsXmlError&) {
        return 0;
    }
    for (const auto& w : first.warnings)
        (void)w.describe();
    // Past this point nothing may throw: an exception is a bug the fuzzer reports.
    auto xml = sub::to_windows_xml(first.subscription);
    auto again = sub::read_windows_xml(wec::as_bytes(xml.xml), "roundtrip.xml");
    if (!(again.subscription == first.subscription)) std::abort();
    if (!(sub::to_windows_xml(again.subscription).xml == xml.xml)) std::abort();
    if (!(sub::load_toml(sub::to_toml(first.subscription), "stored.toml") == first.subscription))
        std::abort();
    return 0;
}

// config::parse on arbitrary text: a ServeConfig or a ConfigError naming the problem, nothing
// else; what parses must also survive finalize() (which may reject it with a ConfigError).
#include "config/config.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace cfg = wec::config;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        cfg::ServeConfig c = cfg::parse(text, "fuzz.toml");
        if (c.hostname.empty()) c.hostname = "collector.example.org"; // no DNS lookups
        cfg::finalize(c);
    } catch (const cfg::ConfigError&) {
    }
    return 0;
}

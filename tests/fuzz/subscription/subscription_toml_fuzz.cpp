// load_toml on arbitrary text: a Subscription or a SubscriptionError, nothing else. Whatever
// loads must also survive to_toml -> load_toml unchanged, and hash without throwing.
#include "subscription/subscription.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace sub = wec::subscription;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        auto s = sub::load_toml(text, "fuzz.toml");
        (void)sub::public_version(s);
        (void)sub::allows(s, "WIN10$@WINDOMAIN.LOCAL");
        auto again = sub::load_toml(sub::to_toml(s), "roundtrip.toml");
        if (!(again == s)) std::abort();
    } catch (const sub::SubscriptionError&) {
    }
    return 0;
}

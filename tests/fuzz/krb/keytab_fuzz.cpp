// Fuzzes the keytab parser and KeySet lookups.
#include "krb/keytab.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        wec::krb::KeySet keys;
        keys.add_keytab_data(std::span<const std::uint8_t>(data, size), "fuzz.keytab");
        const auto p = wec::krb::Principal::parse("HTTP/srv.windomain.local@WINDOMAIN.LOCAL");
        for (const auto& e : keys.entries()) {
            (void)e.principal.to_string();
            keys.candidates(e.principal, e.enctype, e.kvno);
        }
        keys.candidates(p, 18, 2u);
    } catch (const wec::krb::KeytabError&) {
    }
    return 0;
}

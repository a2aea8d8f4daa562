// Fuzzes what reads NTLM bytes from the network or a capture: the NTLMSSP message parser (raw and
// found inside SPNEGO tokens), SPNEGO's preferred-mechanism peek, the AUTHENTICATE policy, and
// unsealing (signature || sealed) on a session with fixed keys. The first byte selects the target.
#include "auth/ntlm.hpp"
#include "auth/ntlm_keys.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    std::span<const std::uint8_t> in(data + 1, size - 1);
    using namespace wec::auth;
    try {
        switch (data[0] % 2) {
        case 0: {
            (void)spnego_preferred_mech(in);
            (void)spnego_prefers_ntlm(in);
            if (auto m = find_ntlm_message(in)) {
                check_authenticate_policy(*m, false);
                // A CHALLENGE parsed from the same input pairs with any AUTHENTICATE.
                if (m->type == 3) {
                    NtlmMessage challenge;
                    challenge.type = 2;
                    challenge.server_challenge.assign(8, 0x11);
                    (void)NtlmSession::derive(challenge, *m, nt_hash("Secret1!"));
                }
            }
            break;
        }
        case 1: {
            std::array<std::uint8_t, 16> key{};
            key.fill(0x55);
            auto session = NtlmSession::from_exported_key(key, 0xe28a8233);
            if (in.size() >= 16)
                (void)session.unseal(NtlmDirection::ClientToServer, in.first(16), in.subspan(16));
            break;
        }
        }
    } catch (const NtlmError&) {
    }
    return 0;
}

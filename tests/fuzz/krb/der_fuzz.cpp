// Fuzzes the DER reader and everything that parses tokens: AP-REQ / SPNEGO (with a real keytab, so
// inputs close to the golden AP-REQ reach the crypto), AP-REP, and wrap tokens on a real session
// recovered from tests/data/krb golden tokens. The first input byte selects the target.
#include "krb/der.hpp"
#include "krb/krb.hpp"

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <vector>

namespace {

using namespace wec::krb;

std::vector<std::uint8_t> unhex(const std::string& hex) {
    std::vector<std::uint8_t> out(hex.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<std::uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
    return out;
}

struct Golden {
    KeySet keys;
    std::vector<std::uint8_t> ap_req;
    std::vector<std::uint8_t> ap_rep;
    SessionKeys session;

    Golden() {
        const std::string dir = std::string(WEC_TEST_DATA) + "/krb/";
        keys.add_keytab(dir + "http-kvno1.keytab");
        std::ifstream in(dir + "golden-krb5-kvno1.json");
        const auto j = nlohmann::json::parse(in);
        ap_req = unhex(j["ap_req"]);
        ap_rep = unhex(j["ap_rep"]);
        session = SessionKeys::from_ap_req(ap_req, keys);
        session.accept_ap_rep(ap_rep);
    }
};

const Golden& golden() {
    static const Golden g; // read-only after construction
    return g;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const Golden& g = golden();
    const std::uint8_t mode = data[0] % 5;
    const std::span<const std::uint8_t> in(data + 1, size - 1);
    try {
        switch (mode) {
        case 0:
            der::walk(in);
            break;
        case 1:
            parse_ap_req(in);
            break;
        case 2:
            SessionKeys::from_ap_req(in, g.keys);
            break;
        case 3: {
            SessionKeys s = SessionKeys::from_ap_req(g.ap_req, g.keys);
            s.accept_ap_rep(in);
            break;
        }
        case 4: {
            if (in.empty()) break;
            const std::size_t split = in[0] < in.size() ? in[0] : in.size() - 1;
            const auto token = in.subspan(1);
            const auto cut = std::min(split, token.size());
            const Direction d = (in[0] & 1) ? Direction::Acceptor : Direction::Initiator;
            g.session.unwrap(d, token.first(cut), token.subspan(cut));
            break;
        }
        }
    } catch (const DecryptError&) {
    }
    return 0;
}

// NTLM secrets from the command line and a secrets file (`wec decode`, `wec replay --pcap`).
#include "decode/ntlm_secrets.hpp"

#include "auth/ntlm_keys.hpp"

#include <fstream>

namespace wec::decode {

std::vector<Options::NtlmSecret> parse_ntlm_secrets(std::istream& in, const std::string& name) {
    std::vector<Options::NtlmSecret> out;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        const auto colon = line.rfind(':');
        const std::string where = name + ":" + std::to_string(n) + ": ";
        if (colon == std::string::npos)
            throw auth::NtlmError(where + "expected [DOMAIN\\]USER:NTHASH");
        try {
            out.push_back({line.substr(0, colon), auth::nt_hash_from_hex(line.substr(colon + 1))});
        } catch (const auth::NtlmError& e) {
            throw auth::NtlmError(where + e.what());
        }
    }
    return out;
}

std::vector<Options::NtlmSecret> ntlm_secrets(const std::vector<std::string>& passwords,
                                              const std::vector<std::string>& nt_hashes,
                                              const std::string& secrets_file) {
    std::vector<Options::NtlmSecret> out;
    for (const auto& p : passwords)
        out.push_back({"", auth::nt_hash(p)});
    for (const auto& h : nt_hashes)
        out.push_back({"", auth::nt_hash_from_hex(h)});
    if (secrets_file.empty()) return out;
    std::ifstream in(secrets_file);
    if (!in) throw auth::NtlmError("cannot read " + secrets_file);
    auto lines = parse_ntlm_secrets(in, secrets_file);
    out.insert(out.end(), lines.begin(), lines.end());
    return out;
}

} // namespace wec::decode

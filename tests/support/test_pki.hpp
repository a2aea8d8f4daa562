// A throwaway PKI made with the openssl CLI (independent of wec's own `wec pki`), for HTTPS tests:
// tests/integration/make_test_pki.sh builds a root and an issuing CA, server certificates (P-256,
// P-384, RSA) for one host name, good and bad client certificates, a second CA and a CRL; and
// optionally more good client certificates (`clients`: their CNs, files "<CN>.pem"/"<CN>.key").
#pragma once

#include "support/process.hpp"

#include <cctype>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace wec::testing {

class TestPki {
public:
    explicit TestPki(const std::string& host, const std::vector<std::string>& clients = {}) {
        std::vector<std::string> argv{std::string(WEC_SOURCE_DIR) +
                                          "/tests/integration/make_test_pki.sh",
                                      dir_.path().string(), host};
        argv.insert(argv.end(), clients.begin(), clients.end());
        auto r = run(argv);
        if (r.exit_code != 0) throw std::runtime_error("make_test_pki.sh failed: " + r.output);
    }
    // A file of the PKI, e.g. "ca.pem", "win10.windomain.local.key".
    std::filesystem::path operator()(const std::string& file) const { return dir_.path() / file; }

private:
    TempDir dir_;
};

// `openssl x509 -fingerprint -sha1` of a certificate, as 40 uppercase hex digits ("" on failure).
inline std::string openssl_sha1_thumbprint(const std::filesystem::path& pem) {
    auto r = run({"openssl", "x509", "-in", pem.string(), "-noout", "-fingerprint", "-sha1"});
    auto eq = r.output.find('=');
    if (r.exit_code != 0 || eq == std::string::npos) return {};
    std::string hex;
    for (char c : r.output.substr(eq + 1))
        if (std::isxdigit(static_cast<unsigned char>(c)))
            hex.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    return hex;
}

} // namespace wec::testing

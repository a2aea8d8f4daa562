#include "auth/basic.hpp"

#include "text/base64.hpp"

#include <cerrno>
#include <crypt.h>
#include <cstring>
#include <fstream>
#include <memory>
#include <openssl/crypto.h>
#include <sys/stat.h>

namespace wec::auth {

std::optional<BasicCredentials> parse_basic_authorization(std::string_view header) {
    auto space = header.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    auto scheme = header.substr(0, space);
    if (scheme.size() != 5) return std::nullopt;
    for (std::size_t i = 0; i < 5; ++i)
        if ((scheme[i] | 0x20) != "basic"[i]) return std::nullopt;
    auto rest = header.substr(space + 1);
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t'))
        rest.remove_prefix(1);
    while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t'))
        rest.remove_suffix(1);
    auto decoded = text::base64_decode(rest);
    if (!decoded) return std::nullopt;
    std::string text(decoded->begin(), decoded->end());
    auto colon = text.find(':');
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    return BasicCredentials{text.substr(0, colon), text.substr(colon + 1)};
}

BasicUsers BasicUsers::load(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        throw BasicError("Basic users file " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        throw BasicError("Basic users file " + path + " is not a regular file");
    if (st.st_mode & (S_IROTH | S_IWOTH))
        throw BasicError("Basic users file " + path +
                         " is readable or writable by any user (it holds password hashes): "
                         "chmod o-rw " +
                         path);
    std::ifstream in(path);
    if (!in) throw BasicError("Basic users file " + path + " cannot be read");
    BasicUsers users;
    std::size_t number = 0;
    std::string line;
    while (std::getline(in, line)) {
        ++number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        auto where = "Basic users file " + path + ":" + std::to_string(number) + ": ";
        auto colon = line.find(':');
        if (colon == std::string::npos || colon == 0)
            throw BasicError(where + "expected USER:HASH");
        auto user = line.substr(0, colon);
        auto hash = line.substr(colon + 1);
        if (!(hash.starts_with("$y$") || hash.starts_with("$6$")))
            throw BasicError(where + "the hash of '" + user +
                             "' is not yescrypt ($y$) or SHA-512 ($6$): DES, MD5 and other "
                             "kinds are refused (mkpasswd -m yescrypt, or openssl passwd -6)");
        if (!users.hashes_.emplace(user, hash).second)
            throw BasicError(where + "user '" + user + "' appears twice");
    }
    if (users.hashes_.empty()) throw BasicError("Basic users file " + path + " holds no account");
    return users;
}

bool BasicUsers::verify(std::string_view user, std::string_view password) const {
    if (hashes_.empty()) return false;
    auto it = hashes_.find(user);
    // An unknown user costs one hash too (with another account's setting), so that the time of a
    // refusal does not tell which user names exist.
    bool known = it != hashes_.end();
    const std::string& hash = known ? it->second : hashes_.begin()->second;
    if (password.find('\0') != std::string_view::npos) return false;
    auto data = std::make_unique<crypt_data>();
    std::string pass(password);
    const char* out = ::crypt_rn(pass.c_str(), hash.c_str(), data.get(), sizeof *data);
    if (!known || !out || out[0] == '*') return false;
    std::size_t n = std::strlen(out);
    return n == hash.size() && CRYPTO_memcmp(out, hash.data(), n) == 0;
}

} // namespace wec::auth

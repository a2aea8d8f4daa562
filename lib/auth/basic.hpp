// HTTP Basic authentication for lab HTTPS listeners (`auth = "basic"`): a users file of
// `USER:HASH` lines where HASH is a crypt(3) hash (yescrypt `$y$` or SHA-512 `$6$`, verified
// through libxcrypt), and the `Authorization: Basic base64(user:password)` header.
#pragma once

#include "common/error.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace wec::auth {

class BasicError : public wec::Error {
public:
    using wec::Error::Error;
};

struct BasicCredentials {
    std::string user;
    std::string password;
};

// `Basic <base64(user:password)>` (scheme case-insensitive, strict base64, a ':' required);
// nullopt for anything else.
std::optional<BasicCredentials> parse_basic_authorization(std::string_view header);

// The accounts of a `basic_users` file. Loading refuses a file readable or writable by others,
// a line that is not USER:HASH, and any hash kind other than yescrypt or SHA-512 crypt (the
// error names the file and line).
class BasicUsers {
public:
    static BasicUsers load(const std::string& path);
    // True when `user` exists and crypt(password, its hash) equals its hash (constant-time
    // comparison). Slow by design (the hash's cost).
    bool verify(std::string_view user, std::string_view password) const;
    std::size_t size() const { return hashes_.size(); }

private:
    std::map<std::string, std::string, std::less<>> hashes_;
};

} // namespace wec::auth

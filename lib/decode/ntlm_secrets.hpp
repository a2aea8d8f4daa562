// The NTLM secrets `wec decode` and `wec replay --pcap` take: --password, --nt-hash and an
// --ntlm-secrets file of `[DOMAIN\]USER:NTHASH` lines (blank lines and `#` comments ignored, CRLF
// accepted; the hash after the last ':'), as decode::Options::ntlm_secrets.
#pragma once

#include "decode/decode.hpp"

#include <istream>
#include <string>
#include <vector>

namespace wec::decode {

// The lines of `in`; `name` (the file's name) prefixes errors as "NAME:LINE: ...". Throws
// auth::NtlmError.
std::vector<Options::NtlmSecret> parse_ntlm_secrets(std::istream& in, const std::string& name);

// Passwords and hex NT hashes (for any user), then the lines of `secrets_file` when not empty.
// Throws auth::NtlmError (a bad hash, a bad line, a file that cannot be read).
std::vector<Options::NtlmSecret> ntlm_secrets(const std::vector<std::string>& passwords,
                                              const std::vector<std::string>& nt_hashes,
                                              const std::string& secrets_file);

} // namespace wec::decode

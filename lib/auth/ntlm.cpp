// NTLMSSP message parsing and the Negotiate listener's NTLM policy (see ntlm.hpp).
#include "auth/ntlm.hpp"

#include "auth/ntlm_keys.hpp"
#include "common/hex.hpp"
#include "text/text.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sys/stat.h>

namespace wec::auth {
namespace {

std::uint16_t u16(std::span<const std::uint8_t> b, std::size_t at) {
    return static_cast<std::uint16_t>(b[at] | (b[at + 1] << 8));
}

std::uint32_t u32(std::span<const std::uint8_t> b, std::size_t at) {
    return static_cast<std::uint32_t>(b[at]) | (static_cast<std::uint32_t>(b[at + 1]) << 8) |
           (static_cast<std::uint32_t>(b[at + 2]) << 16) |
           (static_cast<std::uint32_t>(b[at + 3]) << 24);
}

// A security buffer (length, max length, offset) at `at`, checked against the message bytes.
std::span<const std::uint8_t> field(std::span<const std::uint8_t> b, std::size_t at,
                                    const char* name) {
    if (at + 8 > b.size())
        throw NtlmError("NTLMSSP message too short for the " + std::string(name) +
                        " field at offset " + std::to_string(at));
    std::size_t length = u16(b, at);
    std::size_t offset = u32(b, at + 4);
    if (length == 0) return {};
    if (offset > b.size() || length > b.size() - offset)
        throw NtlmError("NTLMSSP " + std::string(name) + " (offset " + std::to_string(offset) +
                        ", length " + std::to_string(length) + ") lies outside the " +
                        std::to_string(b.size()) + "-byte message");
    return b.subspan(offset, length);
}

// UTF-16LE (unpaired surrogates become U+FFFD) or 8-bit OEM (taken as Latin-1) to UTF-8.
std::string text(std::span<const std::uint8_t> bytes, bool unicode) {
    std::string out;
    if (!unicode) {
        for (auto c : bytes)
            text::append_code_point(out, c);
        return out;
    }
    for (std::size_t i = 0; i + 1 < bytes.size(); i += 2) {
        std::uint32_t cp = u16(bytes, i);
        if (cp >= 0xd800 && cp < 0xdc00 && i + 3 < bytes.size()) {
            std::uint32_t low = u16(bytes, i + 2);
            if (low >= 0xdc00 && low < 0xe000) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                i += 2;
            } else {
                cp = 0xfffd;
            }
        } else if (cp >= 0xd800 && cp < 0xe000) {
            cp = 0xfffd;
        }
        text::append_code_point(out, cp);
    }
    return out;
}

// One DER TLV: tag, then the content. Returns nullopt when malformed or truncated.
struct Tlv {
    std::uint8_t tag = 0;
    std::span<const std::uint8_t> content;
    std::size_t size = 0; // header + content
};

std::optional<Tlv> der(std::span<const std::uint8_t> b) {
    if (b.size() < 2) return std::nullopt;
    Tlv t;
    t.tag = b[0];
    std::size_t pos = 1;
    std::size_t length = b[pos++];
    if (length & 0x80) {
        std::size_t n = length & 0x7f;
        if (n == 0 || n > 4 || pos + n > b.size()) return std::nullopt;
        length = 0;
        for (std::size_t i = 0; i < n; ++i)
            length = (length << 8) | b[pos++];
    }
    if (length > b.size() - pos) return std::nullopt;
    t.content = b.subspan(pos, length);
    t.size = pos + length;
    return t;
}

bool equals(std::span<const std::uint8_t> a, std::string_view b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), b.size()) == 0;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

} // namespace

bool is_ntlmssp(std::span<const std::uint8_t> token) {
    return token.size() >= kNtlmSignature.size() &&
           std::memcmp(token.data(), kNtlmSignature.data(), kNtlmSignature.size()) == 0;
}

NtlmMessage parse_ntlm_message(std::span<const std::uint8_t> b) {
    if (!is_ntlmssp(b)) throw NtlmError("not an NTLMSSP message (no NTLMSSP signature)");
    if (b.size() < 16) throw NtlmError("NTLMSSP message of " + std::to_string(b.size()) + " bytes");
    NtlmMessage m;
    m.type = u32(b, 8);
    switch (m.type) {
    case 1:
        m.flags = u32(b, 12);
        break;
    case 2: {
        if (b.size() < 32) throw NtlmError("NTLMSSP CHALLENGE shorter than 32 bytes");
        m.flags = u32(b, 20);
        bool unicode = (m.flags & kNtlmNegotiateUnicode) != 0;
        m.target_name = text(field(b, 12, "TargetName"), unicode);
        m.server_challenge.assign(b.begin() + 24, b.begin() + 32);
        if (b.size() >= 48) {
            auto info = field(b, 40, "TargetInfo");
            m.target_info.assign(info.begin(), info.end());
        }
        break;
    }
    case 3: {
        if (b.size() < 64) throw NtlmError("NTLMSSP AUTHENTICATE shorter than 64 bytes");
        m.flags = u32(b, 60);
        bool unicode = (m.flags & kNtlmNegotiateUnicode) != 0;
        auto lm = field(b, 12, "LmChallengeResponse");
        auto nt = field(b, 20, "NtChallengeResponse");
        m.lm_response.assign(lm.begin(), lm.end());
        m.nt_response.assign(nt.begin(), nt.end());
        m.domain = text(field(b, 28, "DomainName"), unicode);
        m.user = text(field(b, 36, "UserName"), unicode);
        m.workstation = text(field(b, 44, "Workstation"), unicode);
        auto key = field(b, 52, "EncryptedRandomSessionKey");
        m.encrypted_session_key.assign(key.begin(), key.end());
        break;
    }
    default:
        throw NtlmError("NTLMSSP message type " + std::to_string(m.type) + " is not 1, 2 or 3");
    }
    // The message proper ends with its last payload field; keep its bytes (the AUTHENTICATE's
    // are needed for the MIC): up to the end of the furthest field, at least the fixed header.
    static constexpr std::size_t kFields1[] = {16, 24};
    static constexpr std::size_t kFields2[] = {12, 40};
    static constexpr std::size_t kFields3[] = {12, 20, 28, 36, 44, 52};
    std::span<const std::size_t> fields = m.type == 1   ? std::span<const std::size_t>(kFields1)
                                          : m.type == 2 ? std::span<const std::size_t>(kFields2)
                                                        : std::span<const std::size_t>(kFields3);
    std::size_t end = m.type == 3 ? 88 : m.type == 2 ? 48 : 16;
    for (auto at : fields) {
        if (at + 8 > b.size()) continue;
        std::size_t length = u16(b, at);
        std::size_t offset = u32(b, at + 4);
        if (length && offset <= b.size() && length <= b.size() - offset)
            end = std::max(end, offset + length);
    }
    end = std::min(end, b.size());
    m.raw.assign(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(end));
    return m;
}

std::optional<NtlmMessage> find_ntlm_message(std::span<const std::uint8_t> token) {
    auto it = std::search(token.begin(), token.end(), kNtlmSignature.begin(), kNtlmSignature.end(),
                          [](std::uint8_t a, char b) { return a == static_cast<std::uint8_t>(b); });
    if (it == token.end()) return std::nullopt;
    return parse_ntlm_message(token.subspan(static_cast<std::size_t>(it - token.begin())));
}

std::optional<std::vector<std::uint8_t>> spnego_preferred_mech(std::span<const std::uint8_t> t) {
    // [APPLICATION 0] { OID spnego, [0] NegTokenInit { SEQUENCE { [0] MechTypeList { OID ... }}}}
    auto app = der(t);
    if (!app || app->tag != 0x60) return std::nullopt;
    auto oid = der(app->content);
    if (!oid || oid->tag != 0x06 || !equals(oid->content, "\x2b\x06\x01\x05\x05\x02"))
        return std::nullopt;
    auto init = der(app->content.subspan(oid->size));
    if (!init || init->tag != 0xa0) return std::nullopt;
    auto seq = der(init->content);
    if (!seq || seq->tag != 0x30) return std::nullopt;
    auto list_tag = der(seq->content);
    if (!list_tag || list_tag->tag != 0xa0) return std::nullopt;
    auto list = der(list_tag->content);
    if (!list || list->tag != 0x30) return std::nullopt;
    auto first = der(list->content);
    if (!first || first->tag != 0x06) return std::nullopt;
    return std::vector<std::uint8_t>(first->content.begin(), first->content.end());
}

bool spnego_prefers_ntlm(std::span<const std::uint8_t> token) {
    auto mech = spnego_preferred_mech(token);
    return mech && equals(*mech, kNtlmOidDer);
}

void check_authenticate_policy(const NtlmMessage& m, bool allow_v1) {
    if (m.type != 3) return;
    if (m.user.empty()) throw NtlmError("anonymous NTLM authentication is refused");
    if (!m.ntlm_v2() && !allow_v1)
        throw NtlmError("NTLMv1/LM response from " + m.domain + "\\" + m.user +
                        " refused (only NTLMv2 is accepted; ntlm_allow_v1 = true allows it)");
}

std::size_t check_ntlm_users_file(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        throw NtlmError("NTLM users file " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw NtlmError("NTLM users file " + path + " is not a regular file");
    if (st.st_mode & (S_IROTH | S_IWOTH))
        throw NtlmError("NTLM users file " + path +
                        " is readable or writable by any user (it holds passwords): chmod o-rw " +
                        path);
    std::ifstream in(path);
    if (!in) throw NtlmError("NTLM users file " + path + " cannot be read");
    std::size_t accounts = 0, number = 0;
    std::string line;
    while (std::getline(in, line)) {
        ++number;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        if (std::count(line.begin(), line.end(), ':') < 2)
            throw NtlmError("NTLM users file " + path + ":" + std::to_string(number) +
                            ": expected DOMAIN:USER:PASSWORD");
        ++accounts;
    }
    if (accounts == 0) throw NtlmError("NTLM users file " + path + " holds no account");
    return accounts;
}

std::string ntlm_users_file_domain(const std::string& path, std::string_view user) {
    std::ifstream in(path);
    std::string line;
    auto wanted = lower(user);
    while (std::getline(in, line)) {
        auto a = line.find(':');
        if (a == std::string::npos) continue;
        auto b = line.find(':', a + 1);
        if (b == std::string::npos) continue;
        if (lower(std::string_view(line).substr(a + 1, b - a - 1)) == wanted)
            return line.substr(0, a);
    }
    return {};
}

std::string ntlm_users_as_smbpasswd(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw NtlmError("NTLM users file " + path + " cannot be read");
    std::string out, line;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        auto a = line.find(':');
        auto b = a == std::string::npos ? a : line.find(':', a + 1);
        if (b == std::string::npos) continue; // refused by check_ntlm_users_file
        // The password is the rest of the line (it may hold ':').
        auto hash = nt_hash(std::string_view(line).substr(b + 1));
        // gss-ntlmssp splits DOMAIN\USER at the backslash; an empty domain stays an empty
        // domain (not a wildcard), as in the DOMAIN:USER:PASSWORD form.
        out += line.substr(0, a) + "\\" + line.substr(a + 1, b - a - 1) +
               ":0:XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX:" + hex_upper(hash) +
               ":[U          ]:LCT-00000000:\n";
    }
    return out;
}

void let_gss_ntlmssp_accept_v1() {
    ::setenv("LM_COMPAT_LEVEL", "2", 1);
}

bool OncePerKey::first(const std::string& key) {
    std::lock_guard lock(mutex_);
    return seen_.insert(key).second;
}

} // namespace wec::auth

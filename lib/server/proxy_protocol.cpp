#include "server/proxy_protocol.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <charconv>
#include <cstring>
#include <netinet/in.h>
#include <string_view>

namespace wec::server::proxy {

namespace {

constexpr std::array<std::uint8_t, 12> kV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::string_view kV1Prefix = "PROXY ";

Result invalid(std::string why) {
    Result r;
    r.status = Status::Invalid;
    r.error = std::move(why);
    return r;
}

// A prefix of `data` that is still a prefix of `expected` (more bytes may complete it).
bool prefix_of(std::span<const std::uint8_t> data, std::span<const std::uint8_t> expected) {
    auto n = std::min(data.size(), expected.size());
    return std::equal(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n),
                      expected.begin());
}

bool parse_port(std::string_view text, std::uint16_t& port) {
    if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
    unsigned value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value > 65535) return false;
    port = static_cast<std::uint16_t>(value);
    return true;
}

// The address in its canonical text form (what inet_ntop prints), or empty if it is not one.
std::string canonical_address(std::string_view text, int family) {
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return {};
    char in[INET6_ADDRSTRLEN] = {};
    std::memcpy(in, text.data(), text.size());
    unsigned char bytes[sizeof(in6_addr)];
    if (inet_pton(family, in, bytes) != 1) return {};
    char out[INET6_ADDRSTRLEN];
    return inet_ntop(family, bytes, out, sizeof out) ? std::string(out) : std::string();
}

Result parse_v1(std::span<const std::uint8_t> data) {
    std::string_view text(reinterpret_cast<const char*>(data.data()),
                          std::min(data.size(), kMaxV1Bytes));
    auto crlf = text.find("\r\n");
    if (crlf == std::string_view::npos) {
        if (data.size() >= kMaxV1Bytes) return invalid("PROXY v1 header longer than 107 bytes");
        if (text.find_first_of("\r\n") != std::string_view::npos &&
            text.find('\r') != text.size() - 1)
            return invalid("PROXY v1 header with a bare CR or LF");
        return {};
    }
    Result r;
    r.status = Status::Complete;
    r.length = crlf + 2;
    r.header.version = 1;
    auto line = text.substr(kV1Prefix.size(), crlf - kV1Prefix.size());
    // "TCP4 SRC DST SPORT DPORT", "TCP6 ...", or "UNKNOWN[ anything]".
    std::string_view fields[5];
    std::size_t n = 0;
    while (!line.empty() && n < 5) {
        auto space = line.find(' ');
        fields[n++] = line.substr(0, space);
        line = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);
    }
    if (n >= 1 && fields[0] == "UNKNOWN") {
        r.header.local = true;
        return r;
    }
    if (n != 5 || !line.empty()) return invalid("PROXY v1 header without 5 fields");
    int family = fields[0] == "TCP4" ? AF_INET : fields[0] == "TCP6" ? AF_INET6 : 0;
    if (!family)
        return invalid("PROXY v1 protocol '" + std::string(fields[0].substr(0, 16)) +
                       "' (expected TCP4, TCP6 or UNKNOWN)");
    r.header.source_address = canonical_address(fields[1], family);
    r.header.destination_address = canonical_address(fields[2], family);
    if (r.header.source_address.empty() || r.header.destination_address.empty())
        return invalid("PROXY v1 header with an address that is not " +
                       std::string(fields[0] == "TCP4" ? "IPv4" : "IPv6"));
    if (!parse_port(fields[3], r.header.source_port) ||
        !parse_port(fields[4], r.header.destination_port))
        return invalid("PROXY v1 header with an invalid port");
    return r;
}

Result parse_v2(std::span<const std::uint8_t> data) {
    if (data.size() < 16) return {};
    const std::uint8_t ver_cmd = data[12], fam = data[13];
    const std::size_t length = (std::size_t{data[14]} << 8) | data[15];
    if ((ver_cmd >> 4) != 2)
        return invalid("PROXY v2 header with version " + std::to_string(ver_cmd >> 4));
    const unsigned command = ver_cmd & 0x0F;
    if (command > 1) return invalid("PROXY v2 header with command " + std::to_string(command));
    if (16 + length > kMaxV2Bytes)
        return invalid("PROXY v2 header of " + std::to_string(16 + length) + " bytes (at most " +
                       std::to_string(kMaxV2Bytes) + ")");
    if (data.size() < 16 + length) return {};
    Result r;
    r.status = Status::Complete;
    r.length = 16 + length;
    r.header.version = 2;
    const unsigned family = fam >> 4, transport = fam & 0x0F;
    if (command == 0 || family == 0 || family == 3 || transport == 0) {
        // LOCAL, or an address we would not use: the connection's own address stays. The
        // address block (if any) is skipped with the rest.
        r.header.local = true;
        return r;
    }
    if (family > 3 || transport > 2)
        return invalid("PROXY v2 header with address family/transport " + std::to_string(fam));
    if (transport != 1) return invalid("PROXY v2 header for a datagram (UDP) connection");
    const auto* a = data.data() + 16;
    char text[INET6_ADDRSTRLEN];
    if (family == 1) {
        if (length < 12) return invalid("PROXY v2 IPv4 header shorter than its addresses");
        r.header.source_address = inet_ntop(AF_INET, a, text, sizeof text);
        r.header.destination_address = inet_ntop(AF_INET, a + 4, text, sizeof text);
        r.header.source_port = static_cast<std::uint16_t>((a[8] << 8) | a[9]);
        r.header.destination_port = static_cast<std::uint16_t>((a[10] << 8) | a[11]);
    } else {
        if (length < 36) return invalid("PROXY v2 IPv6 header shorter than its addresses");
        r.header.source_address = inet_ntop(AF_INET6, a, text, sizeof text);
        r.header.destination_address = inet_ntop(AF_INET6, a + 16, text, sizeof text);
        r.header.source_port = static_cast<std::uint16_t>((a[32] << 8) | a[33]);
        r.header.destination_port = static_cast<std::uint16_t>((a[34] << 8) | a[35]);
        // An IPv4 client seen through an IPv6 balancer: the IPv4 form, as for direct connections.
        in6_addr v6;
        std::memcpy(&v6, a, sizeof v6);
        if (IN6_IS_ADDR_V4MAPPED(&v6))
            r.header.source_address = inet_ntop(AF_INET, a + 12, text, sizeof text);
    }
    return r;
}

} // namespace

Result parse(std::span<const std::uint8_t> data) {
    if (data.empty()) return {};
    if (data[0] == kV2Signature[0]) {
        if (!prefix_of(data, kV2Signature))
            return invalid("the connection does not start with a PROXY protocol header");
        return parse_v2(data);
    }
    std::span<const std::uint8_t> v1(reinterpret_cast<const std::uint8_t*>(kV1Prefix.data()),
                                     kV1Prefix.size());
    if (!prefix_of(data, v1))
        return invalid("the connection does not start with a PROXY protocol header");
    if (data.size() < kV1Prefix.size()) return {};
    return parse_v1(data);
}

} // namespace wec::server::proxy

#include "wsman/wsman.hpp"

#include "wsman/names_internal.hpp"

#include <charconv>
#include <random>

namespace wec::wsman {
namespace uri = detail::uri;

std::string_view action_uri(Action action) {
    switch (action) {
    case Action::Enumerate:
        return uri::enumerate;
    case Action::EnumerateResponse:
        return uri::enumerate_response;
    case Action::Subscribe:
        return uri::subscribe;
    case Action::Events:
        return uri::events;
    case Action::Heartbeat:
        return uri::heartbeat;
    case Action::Ack:
        return uri::ack;
    case Action::End:
        return uri::end;
    case Action::SubscriptionEnd:
        return uri::subscription_end;
    case Action::Unknown:
        break;
    }
    return {};
}

Action action_from_uri(std::string_view u) {
    for (Action a :
         {Action::Enumerate, Action::EnumerateResponse, Action::Subscribe, Action::Events,
          Action::Heartbeat, Action::Ack, Action::End, Action::SubscriptionEnd}) {
        if (action_uri(a) == u) return a;
    }
    return Action::Unknown;
}

std::string_view to_string(Action action) {
    switch (action) {
    case Action::Enumerate:
        return "Enumerate";
    case Action::EnumerateResponse:
        return "EnumerateResponse";
    case Action::Subscribe:
        return "Subscribe";
    case Action::Events:
        return "Events";
    case Action::Heartbeat:
        return "Heartbeat";
    case Action::Ack:
        return "Ack";
    case Action::End:
        return "End";
    case Action::SubscriptionEnd:
        return "SubscriptionEnd";
    case Action::Unknown:
        break;
    }
    return "Unknown";
}

std::string_view to_string(ErrorCode code) {
    switch (code) {
    case ErrorCode::NotXml:
        return "NotXml";
    case ErrorCode::NotEnvelope:
        return "NotEnvelope";
    case ErrorCode::MissingHeader:
        return "MissingHeader";
    case ErrorCode::MissingBody:
        return "MissingBody";
    case ErrorCode::MissingAction:
        return "MissingAction";
    case ErrorCode::MissingMessageId:
        return "MissingMessageId";
    case ErrorCode::MissingElement:
        return "MissingElement";
    }
    return "?";
}

ParseError::ParseError(ErrorCode code, std::string message, std::string element, std::size_t offset)
    : wec::Error("wsman: " + message), code_(code), element_(std::move(element)), offset_(offset) {}

std::string new_message_id() {
    // One engine per thread: no lock, no shared state; seeded from the OS.
    thread_local std::mt19937_64 engine = [] {
        std::random_device rd;
        std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
        return std::mt19937_64(seq);
    }();
    std::uint64_t hi = engine(), lo = engine();
    hi = (hi & ~0xF000ull) | 0x4000ull;                        // version 4
    lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull; // RFC 4122 variant
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out = "uuid:";
    out.reserve(5 + 36);
    auto put = [&out](std::uint64_t v, int nibbles) {
        for (int i = nibbles - 1; i >= 0; --i)
            out.push_back(digits[(v >> (4 * i)) & 0xF]);
    };
    put(hi >> 32, 8);
    out.push_back('-');
    put(hi >> 16, 4);
    out.push_back('-');
    put(hi, 4);
    out.push_back('-');
    put(lo >> 48, 4);
    out.push_back('-');
    put(lo, 12);
    return out;
}

std::string format_duration(std::uint64_t ms, int decimals) {
    if (decimals < 0) decimals = 0;
    if (decimals > 3) decimals = 3;
    const std::uint64_t div = decimals == 0 ? 1000 : decimals == 1 ? 100 : decimals == 2 ? 10 : 1;
    if ((ms % 1000) % div != 0) decimals = 3; // never lose precision
    std::string out = "PT" + std::to_string(ms / 1000);
    if (decimals > 0) {
        const std::string frac = std::to_string(1000 + ms % 1000); // "1xyz"
        out += '.';
        out.append(frac, 1, static_cast<std::size_t>(decimals));
    }
    out += 'S';
    return out;
}

std::optional<std::uint64_t> parse_duration_ms(std::string_view d) {
    while (!d.empty() &&
           (d.front() == ' ' || d.front() == '\t' || d.front() == '\r' || d.front() == '\n'))
        d.remove_prefix(1);
    while (!d.empty() &&
           (d.back() == ' ' || d.back() == '\t' || d.back() == '\r' || d.back() == '\n'))
        d.remove_suffix(1);
    if (d.size() < 3 || d.front() != 'P') return std::nullopt;
    d.remove_prefix(1);
    constexpr std::uint64_t kMax = std::uint64_t{1} << 62;
    std::uint64_t total = 0;
    bool time = false, any = false;
    while (!d.empty()) {
        if (d.front() == 'T') {
            if (time) return std::nullopt;
            time = true;
            d.remove_prefix(1);
            continue;
        }
        std::uint64_t whole = 0;
        auto [ptr, ec] = std::from_chars(d.data(), d.data() + d.size(), whole);
        if (ec != std::errc{} || whole > kMax / 86'400'000) return std::nullopt;
        d.remove_prefix(static_cast<std::size_t>(ptr - d.data()));
        std::uint64_t frac_ms = 0;
        bool has_frac = false;
        if (!d.empty() && d.front() == '.') {
            d.remove_prefix(1);
            std::uint64_t scale = 100;
            std::size_t digits = 0;
            while (!d.empty() && d.front() >= '0' && d.front() <= '9') {
                frac_ms += static_cast<std::uint64_t>(d.front() - '0') * scale;
                scale /= 10;
                d.remove_prefix(1);
                ++digits;
            }
            if (digits == 0) return std::nullopt;
            has_frac = true;
        }
        if (d.empty()) return std::nullopt;
        const char unit = d.front();
        d.remove_prefix(1);
        std::uint64_t mult = 0;
        if (!time && unit == 'D')
            mult = 86'400'000;
        else if (time && unit == 'H')
            mult = 3'600'000;
        else if (time && unit == 'M')
            mult = 60'000;
        else if (time && unit == 'S')
            mult = 1000;
        else
            return std::nullopt;
        if (has_frac && unit != 'S') return std::nullopt;
        total += whole * mult + frac_ms;
        if (total > kMax) return std::nullopt;
        any = true;
    }
    if (!any) return std::nullopt;
    return total;
}

} // namespace wec::wsman

// Shared helpers of the capture tests: temp dirs, extraction into plain structs.
#pragma once

#include "capture/capture.hpp"
#include "support/temp_dir.hpp"

#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace wec::test {

using wec::testing::TempDir;

struct Msg {
    std::uint64_t connection = 0, index = 0;
    std::optional<std::uint64_t> request_index;
    bool request = false;
    capture::Direction direction{};
    std::string start_line, body;
    std::vector<std::pair<std::string, std::string>> headers;
    bool after_gap = false, truncated = false, chunked = false;
    capture::FourTuple tuple;
    capture::TimeNs first = 0, last = 0;
};

struct Result {
    std::vector<Msg> messages;
    std::vector<capture::Note> gaps, errors;
    capture::Stats stats;

    std::vector<std::string> bodies(bool requests) const {
        std::vector<std::string> out;
        for (const auto& m : messages) {
            if (m.request == requests) out.push_back(m.body);
        }
        return out;
    }
    std::string error_text() const {
        std::string s;
        for (const auto& e : errors)
            s += e.text + "\n";
        for (const auto& g : gaps)
            s += "gap: " + g.text + "\n";
        return s;
    }
};

inline capture::Callbacks collect(Result& r) {
    capture::Callbacks cb;
    cb.on_message = [&r](const capture::HttpMessage& m) {
        Msg x;
        x.connection = m.connection_id;
        x.index = m.index;
        x.request_index = m.request_index;
        x.request = m.is_request;
        x.direction = m.direction;
        x.start_line = std::string(m.start_line);
        x.body.assign(m.body.begin(), m.body.end());
        for (const auto& h : m.headers)
            x.headers.emplace_back(h.name, h.value);
        x.after_gap = m.after_gap;
        x.truncated = m.truncated;
        x.chunked = m.chunked;
        x.tuple = m.tuple;
        x.first = m.first_time;
        x.last = m.last_time;
        r.messages.push_back(std::move(x));
    };
    cb.on_gap = [&r](const capture::Note& n) { r.gaps.push_back(n); };
    cb.on_error = [&r](const capture::Note& n) { r.errors.push_back(n); };
    return cb;
}

inline Result extract(const std::string& path, const capture::Limits& limits = {}) {
    Result r;
    r.stats = capture::extract_http(path, collect(r), limits);
    return r;
}

// Deterministic binary body with CRLFs, NULs and HTTP-looking text inside.
inline std::string random_body(std::size_t n, unsigned seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s)
        c = static_cast<char>(rng() & 0xff);
    const std::string noise = "\r\n\r\nHTTP/1.1 200 OK\r\nPOST / HTTP/1.1\r\n";
    if (n > noise.size() * 3) s.replace(n / 2, noise.size(), noise);
    return s;
}

inline std::string post(const std::string& body, const std::string& path = "/wsman") {
    return "POST " + path +
           " HTTP/1.1\r\nConnection: Keep-Alive\r\nContent-Type: application/soap+xml;"
           "charset=UTF-16\r\nUser-Agent: Microsoft WinRM Client\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nHost: wec.example.org:5985\r\n\r\n" + body;
}

inline std::string response(const std::string& body, int status = 200) {
    return "HTTP/1.1 " + std::to_string(status) +
           " OK\r\nServer: Microsoft-HTTPAPI/2.0\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

} // namespace wec::test

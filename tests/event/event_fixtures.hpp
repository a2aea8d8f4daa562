// Shared by the event tests: the OpenWEC fixtures (tests/data/event/{json,nxlog}) and their
// metadata.
#pragma once

#include "event/event.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace wec::event::testing {

using nlohmann::json;
namespace fs = std::filesystem;

inline const fs::path kData = fs::path(WEC_TEST_DATA) / "event";

inline std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    EXPECT_TRUE(in) << "cannot open " << p;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// "2022-12-14T16:07:03.324+00:00" (or +HH:MM / Z) -> time_point.
inline std::chrono::system_clock::time_point parse_time(const std::string& s) {
    int y, mo, d, h, mi, se;
    EXPECT_EQ(std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &se), 6) << s;
    std::size_t pos = 19;
    std::int64_t nanos = 0;
    if (pos < s.size() && s[pos] == '.') {
        int digits = 0;
        ++pos;
        while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
            if (digits < 9) nanos = nanos * 10 + (s[pos] - '0');
            ++digits;
            ++pos;
        }
        for (; digits < 9; ++digits)
            nanos *= 10;
    }
    int offset_min = 0;
    if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        int oh = std::stoi(s.substr(pos + 1, 2));
        int om = std::stoi(s.substr(pos + 4, 2));
        offset_min = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    }
    using namespace std::chrono;
    auto days =
        sys_days(year(y) / month(static_cast<unsigned>(mo)) / day(static_cast<unsigned>(d)));
    return time_point_cast<system_clock::duration>(days + hours(h) + minutes(mi) + seconds(se) +
                                                   nanoseconds(nanos) - minutes(offset_min));
}

inline Metadata metadata_from(const json& expected) {
    const json& o = expected.at("OpenWEC");
    Metadata md;
    md.ip_address = o.at("IpAddress");
    md.client = o.at("Client");
    md.time_received = parse_time(o.at("TimeReceived"));
    const json& s = o.at("Subscription");
    md.subscription_uuid = s.at("Uuid");
    md.subscription_version = s.at("Version");
    md.subscription_name = s.at("Name");
    if (s.contains("Uri")) md.subscription_uri = s.at("Uri");
    if (s.contains("ClientRevision")) md.subscription_client_revision = s.at("ClientRevision");
    if (s.contains("ServerRevision")) md.subscription_server_revision = s.at("ServerRevision");
    if (o.contains("Node")) md.node = o.at("Node");
    return md;
}

inline Metadata default_metadata() {
    Metadata md;
    md.ip_address = "192.168.58.100";
    md.client = "WIN10$@WINDOMAIN.LOCAL";
    md.time_received = parse_time("2022-12-14T16:07:03.324+00:00");
    md.subscription_uuid = "8B18D83D-2964-4F35-AC3B-6F4E6FFA727B";
    md.subscription_version = "188BB736-9441-5C66-188B-B73694415C66";
    md.subscription_name = "Test";
    return md;
}

inline std::vector<std::string> fixtures(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(kData / dir)) {
        std::string f = e.path().filename().string();
        if (f.size() > 4 && f.ends_with(".xml")) names.push_back(f.substr(0, f.size() - 4));
    }
    std::sort(names.begin(), names.end());
    return names;
}

} // namespace wec::event::testing

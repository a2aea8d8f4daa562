#include "replay_check.hpp"

#include "common/error.hpp"
#include "evtx/evtx.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <zlib.h>

namespace wec::tool {
namespace fs = std::filesystem;

namespace {

constexpr std::size_t kExamples = 10;

std::uint64_t to_uint(const nlohmann::json& j) {
    if (j.is_number_unsigned()) return j.get<std::uint64_t>();
    if (j.is_number_integer())
        return static_cast<std::uint64_t>(std::max<long long>(0, j.get<long long>()));
    if (j.is_string()) {
        try {
            return std::stoull(j.get<std::string>());
        } catch (const std::exception&) {
        }
    }
    return 0;
}

std::string str(const nlohmann::json& j, const char* a, const char* b = nullptr) {
    const nlohmann::json* p = &j;
    for (const char* k : {a, b}) {
        if (!k) break;
        if (!p->is_object() || !p->contains(k)) return {};
        p = &(*p)[k];
    }
    return p->is_string() ? p->get<std::string>() : std::string();
}

bool key_of_xml(const std::string& xml, EventKey& key) {
    key.machine = evtx::first_value(xml, "Computer");
    key.channel = evtx::first_value(xml, "Channel");
    auto id = evtx::first_value(xml, "EventRecordID");
    key.record_id = 0;
    try {
        if (!id.empty()) key.record_id = std::stoull(id);
    } catch (const std::exception&) {
    }
    return key.record_id != 0 || !key.machine.empty();
}

// One line of any of the files output's formats: raw (XML), json ("System"), raw_json ("data"),
// nxlog ("Hostname"/"Channel"/"RecordNumber"), ecs ("winlog").
bool key_of_line(const std::string& line, EventKey& key) {
    if (line[0] == '<') return key_of_xml(line, key);
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object()) return false;
    if (j.contains("System") && j["System"].is_object()) {
        key.machine = str(j, "System", "Computer");
        key.channel = str(j, "System", "Channel");
        key.record_id =
            j["System"].contains("EventRecordID") ? to_uint(j["System"]["EventRecordID"]) : 0;
        return true;
    }
    if (j.contains("data") && j["data"].is_string())
        return key_of_xml(j["data"].get<std::string>(), key);
    if (j.contains("winlog") && j["winlog"].is_object()) {
        key.machine = str(j, "winlog", "computer_name");
        key.channel = str(j, "winlog", "channel");
        key.record_id = j["winlog"].contains("record_id") ? to_uint(j["winlog"]["record_id"]) : 0;
        return true;
    }
    if (j.contains("Hostname")) {
        key.machine = str(j, "Hostname");
        key.channel = str(j, "Channel");
        key.record_id = j.contains("RecordNumber") ? to_uint(j["RecordNumber"]) : 0;
        return true;
    }
    return false;
}

template <class OnLine>
void read_lines(const fs::path& file, OnLine&& on_line) {
    std::string line;
    if (file.extension() == ".gz") {
        struct GzCloser {
            void operator()(gzFile_s* f) const { gzclose(f); }
        };
        std::unique_ptr<gzFile_s, GzCloser> gz(gzopen(file.c_str(), "rb"));
        if (!gz) throw Error(file.string() + ": cannot open");
        char buffer[65536];
        for (;;) {
            int n = gzread(gz.get(), buffer, sizeof buffer);
            if (n < 0) throw Error(file.string() + ": not a readable gzip file");
            if (n == 0) break;
            for (int k = 0; k < n; ++k) {
                if (buffer[k] == '\n') {
                    on_line(line);
                    line.clear();
                } else {
                    line += buffer[k];
                }
            }
        }
        if (!line.empty()) on_line(line);
        return;
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(file.string() + ": cannot open");
    while (std::getline(in, line))
        on_line(line);
}

} // namespace

std::map<EventKey, std::uint64_t> read_written(const std::vector<std::string>& paths,
                                               CheckReport& report) {
    std::vector<fs::path> files;
    for (const auto& p : paths) {
        std::error_code ec;
        if (fs::is_directory(p, ec)) {
            std::vector<fs::path> found;
            for (const auto& e : fs::recursive_directory_iterator(p, ec))
                if (e.is_regular_file()) found.push_back(e.path());
            std::sort(found.begin(), found.end());
            files.insert(files.end(), found.begin(), found.end());
        } else if (fs::exists(p, ec)) {
            files.emplace_back(p);
        } else {
            throw Error(p + ": no such file or directory");
        }
    }
    std::map<EventKey, std::uint64_t> counts;
    EventKey key;
    for (const auto& file : files) {
        ++report.files;
        read_lines(file, [&](std::string& line) {
            while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
                line.pop_back();
            if (line.empty()) return;
            ++report.lines;
            if (key_of_line(line, key))
                ++counts[key];
            else
                ++report.unreadable;
        });
    }
    return counts;
}

CheckReport check_written(const std::map<EventKey, bool>& sent,
                          const std::vector<std::string>& paths) {
    CheckReport r;
    auto found = read_written(paths, r);
    for (const auto& [key, acked] : sent) {
        ++r.sent;
        if (acked) ++r.acked;
        auto it = found.find(key);
        const std::uint64_t n = it == found.end() ? 0 : it->second;
        if (n > 0) ++r.found;
        if (n > 1 && ++r.duplicated <= kExamples) r.duplicated_examples.push_back(key);
        if (n == 0 && acked && ++r.lost <= kExamples) r.lost_examples.push_back(key);
    }
    for (const auto& [key, n] : found)
        if (!sent.count(key) && ++r.unexpected <= kExamples) r.unexpected_examples.push_back(key);
    return r;
}

} // namespace wec::tool

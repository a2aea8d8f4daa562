#include "replay_input.hpp"

#include "common/error.hpp"
#include "evtx/evtx.hpp"
#include "wsman/bookmark.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>
#include <sstream>
#include <thread>

namespace wec::tool {
namespace fs = std::filesystem;

namespace {

std::uint64_t to_uint(const std::string& s) {
    try {
        return s.empty() ? 0 : std::stoull(s);
    } catch (const std::exception&) {
        return 0;
    }
}

InputEvent event_of(std::string xml) {
    InputEvent e;
    e.time_ns = system_time_ns(evtx::first_value(xml, "TimeCreated", "SystemTime"));
    e.channel = evtx::first_value(xml, "Channel");
    e.computer = evtx::first_value(xml, "Computer");
    e.record_id = to_uint(evtx::first_value(xml, "EventRecordID"));
    e.xml = std::move(xml);
    return e;
}

std::string trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
}

std::string local_name(const char* name) {
    std::string s(name);
    auto colon = s.find(':');
    return colon == std::string::npos ? s : s.substr(colon + 1);
}

void read_xml_file(const fs::path& file, const std::function<void(InputEvent&&)>& on_event,
                   const std::function<void(const InputSkip&)>& on_skip, InputStats& stats) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(file.string() + ": cannot open");
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    const std::string head = trim(text.substr(0, 64));
    auto skip = [&](const std::string& where, const std::string& reason) {
        ++stats.skipped;
        on_skip(InputSkip{file.string() + where, reason});
    };
    // Line-oriented: raw XML (one <Event> a line, as the files output's raw format writes it),
    // JSON strings, or JSON objects with the XML under "xml" (or "data", as raw_json writes it).
    std::istringstream lines(text);
    std::string line;
    bool line_oriented = !head.empty() && head[0] == '{';
    if (!line_oriented && head.rfind("<Event", 0) == 0 && head.rfind("<Events", 0) != 0) {
        // One event per line when the first line is a whole event.
        auto first = trim(text.substr(0, text.find('\n')));
        line_oriented = first.size() > 8 && first.substr(first.size() - 8) == "</Event>" &&
                        std::count(text.begin(), text.end(), '\n') > 1;
    }
    if (!line_oriented && !head.empty() && head[0] == '"') line_oriented = true;
    if (line_oriented) {
        std::uint64_t n = 0;
        while (std::getline(lines, line)) {
            ++n;
            auto t = trim(line);
            if (t.empty()) continue;
            std::string xml;
            if (t[0] == '<') {
                xml = t;
            } else {
                try {
                    auto j = nlohmann::json::parse(t);
                    if (j.is_string())
                        xml = j.get<std::string>();
                    else if (j.is_object() && j.contains("xml") && j["xml"].is_string())
                        xml = j["xml"].get<std::string>();
                    else if (j.is_object() && j.contains("data") && j["data"].is_string())
                        xml = j["data"].get<std::string>();
                } catch (const nlohmann::json::exception& e) {
                    skip(":" + std::to_string(n), std::string("malformed JSON: ") + e.what());
                    continue;
                }
            }
            if (xml.rfind("<Event", 0) != 0) {
                skip(":" + std::to_string(n), "not an <Event> document");
                continue;
            }
            ++stats.events;
            on_event(event_of(std::move(xml)));
        }
        return;
    }
    pugi::xml_document doc;
    auto parsed = doc.load_buffer(text.data(), text.size(), pugi::parse_default);
    if (!parsed) {
        skip(":offset " + std::to_string(parsed.offset), parsed.description());
        return;
    }
    auto root = doc.document_element();
    if (local_name(root.name()) == "Event") {
        ++stats.events;
        on_event(event_of(trim(text.substr(text.find("<Event")))));
        return;
    }
    // An envelope: every <Event> element under it (a w:Events body's w:Event holds its event as
    // text or CDATA).
    std::uint64_t n = 0;
    for (auto node : root.select_nodes("//*[local-name()='Event']")) {
        auto e = node.node();
        ++n;
        std::string xml;
        if (e.first_child().type() == pugi::node_element) continue; // a w:Event's own child
        if (e.first_child().type() == pugi::node_cdata ||
            e.first_child().type() == pugi::node_pcdata) {
            xml = trim(e.text().get());
        } else {
            std::ostringstream out;
            e.print(out, "", pugi::format_raw);
            xml = out.str();
        }
        if (xml.rfind("<Event", 0) != 0) {
            skip(":event " + std::to_string(n), "not an <Event> document");
            continue;
        }
        ++stats.events;
        on_event(event_of(std::move(xml)));
    }
}

} // namespace

std::optional<std::int64_t> system_time_ns(std::string_view t) {
    // YYYY-MM-DDTHH:MM:SS[.f...][Z]
    if (t.size() < 19 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != ' ') ||
        t[13] != ':' || t[16] != ':')
        return std::nullopt;
    auto num = [&](std::size_t at, std::size_t n) -> std::optional<int> {
        int v = 0;
        for (std::size_t k = at; k < at + n; ++k) {
            if (t[k] < '0' || t[k] > '9') return std::nullopt;
            v = v * 10 + (t[k] - '0');
        }
        return v;
    };
    auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2),
         s = num(17, 2);
    if (!y || !mo || !d || !h || !mi || !s) return std::nullopt;
    std::chrono::year_month_day ymd{std::chrono::year(*y), std::chrono::month(*mo),
                                    std::chrono::day(*d)};
    if (!ymd.ok() || *h > 23 || *mi > 59 || *s > 60) return std::nullopt;
    std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::sys_days(ymd).time_since_epoch())
                          .count() +
                      ((*h * 60LL + *mi) * 60LL + *s) * 1000000000LL;
    if (t.size() > 19 && t[19] == '.') {
        std::int64_t scale = 100000000;
        for (std::size_t k = 20; k < t.size() && t[k] >= '0' && t[k] <= '9'; ++k) {
            ns += (t[k] - '0') * scale;
            scale /= 10;
        }
    }
    return ns;
}

void Pacer::wait(std::size_t events, std::optional<std::int64_t> time) {
    if (rate_ <= 0 && speed_ <= 0) return;
    auto now = std::chrono::steady_clock::now();
    if (!started_) {
        started_ = true;
        start_ = now;
    }
    auto due = start_;
    if (rate_ > 0)
        due = std::max(
            due, start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(static_cast<double>(sent_) / rate_)));
    if (speed_ > 0 && time) {
        if (!first_time_) first_time_ = time;
        if (*time > *first_time_)
            due = std::max(
                due, start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                  std::chrono::duration<double>(
                                      static_cast<double>(*time - *first_time_) / 1e9 / speed_)));
    }
    sent_ += events;
    if (due > now) std::this_thread::sleep_until(due);
}

std::vector<fs::path> input_files(const std::vector<std::string>& args,
                                  const std::string& extension) {
    std::vector<fs::path> out;
    for (const auto& arg : args) {
        std::error_code ec;
        if (fs::is_directory(arg, ec)) {
            std::vector<fs::path> files;
            for (const auto& entry : fs::directory_iterator(arg, ec))
                if (entry.is_regular_file() &&
                    (extension.empty() || entry.path().extension() == extension))
                    files.push_back(entry.path());
            std::sort(files.begin(), files.end());
            out.insert(out.end(), files.begin(), files.end());
        } else if (fs::exists(arg, ec)) {
            out.emplace_back(arg);
        } else {
            throw Error(arg + ": no such file or directory");
        }
    }
    return out;
}

InputStats read_inputs(const std::vector<fs::path>& files, bool evtx,
                       const std::function<void(InputEvent&&)>& on_event,
                       const std::function<void(const InputSkip&)>& on_skip) {
    InputStats stats;
    for (const auto& file : files) {
        ++stats.files;
        if (!evtx) {
            read_xml_file(file, on_event, on_skip, stats);
            continue;
        }
        evtx::Reader reader(file, [&](const evtx::SkippedRecord& s) {
            ++stats.skipped;
            on_skip(InputSkip{file.string() + ":record " + std::to_string(s.index), s.reason});
        });
        evtx::Record r;
        while (reader.next(r)) {
            ++stats.events;
            on_event(InputEvent{std::move(r.xml), std::move(r.channel), std::move(r.computer),
                                r.record_id, system_time_ns(r.time_created)});
        }
    }
    return stats;
}

BatchCutter::BatchCutter(std::vector<InputEvent> events, std::string machine, std::size_t batch)
    : events_(std::move(events)), machine_(std::move(machine)),
      batch_(std::max<std::size_t>(batch, 1)) {}

bool BatchCutter::next(client::RecordedBatch& out) {
    if (cursor_ >= events_.size()) return false;
    out.events.clear();
    out.machine = machine_;
    out.line = cursor_ + 1;
    for (std::size_t k = 0; k < batch_ && cursor_ < events_.size(); ++k, ++cursor_) {
        auto& e = events_[cursor_];
        if (!e.channel.empty()) {
            auto& last = last_.records[e.channel];
            last = std::max(last, e.record_id);
            last_.current = e.channel;
        }
        out.events.push_back(std::move(e.xml));
    }
    out.bookmark = wsman::bookmark_list(last_);
    return true;
}

} // namespace wec::tool

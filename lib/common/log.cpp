#include "common/log.hpp"

#include <chrono>
#include <ctime>

namespace wec {
namespace {

const char* level_name(LogLevel level) {
    switch (level) {
    case LogLevel::Debug:
        return "debug";
    case LogLevel::Info:
        return "info";
    case LogLevel::Warn:
        return "warn";
    case LogLevel::Error:
        return "error";
    }
    return "?";
}

// Values with spaces, quotes or '=' are quoted so that lines stay machine-splittable.
void append_value(std::string& line, std::string_view v) {
    bool quote = v.empty() || v.find_first_of(" \t\"=\n") != std::string_view::npos;
    if (!quote) {
        line.append(v);
        return;
    }
    line.push_back('"');
    for (char c : v) {
        if (c == '"' || c == '\\') line.push_back('\\');
        if (c == '\n') {
            line.append("\\n");
            continue;
        }
        line.push_back(c);
    }
    line.push_back('"');
}

} // namespace

void Logger::log(LogLevel level, std::string_view message, std::initializer_list<Field> fields) {
    if (!enabled(level)) return;
    auto now = std::chrono::system_clock::now();
    auto secs = std::chrono::system_clock::to_time_t(now);
    auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[64];
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(millis.count()));
    std::string line;
    line.reserve(128);
    line.append(stamp).append(" ").append(level_name(level)).append(" ").append(message);
    for (const auto& [key, value] : fields) {
        line.push_back(' ');
        line.append(key).push_back('=');
        append_value(line, value);
    }
    line.push_back('\n');
    std::lock_guard lock(mutex_);
    std::fwrite(line.data(), 1, line.size(), sink_);
    std::fflush(sink_);
}

} // namespace wec

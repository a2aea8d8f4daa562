// A small structured logger: one line per record, `time level message key=value ...`.
// Thread-safe; owned by whoever runs the program (no global logger) and passed by reference.
#pragma once

#include <cstdio>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace wec {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

class Logger {
public:
    using Field = std::pair<std::string_view, std::string_view>;

    explicit Logger(std::FILE* sink = stderr, LogLevel min_level = LogLevel::Info)
        : sink_(sink), min_level_(min_level) {}

    void set_level(LogLevel level) { min_level_ = level; }
    bool enabled(LogLevel level) const { return level >= min_level_ && sink_ != nullptr; }

    void log(LogLevel level, std::string_view message, std::initializer_list<Field> fields = {});
    void debug(std::string_view m, std::initializer_list<Field> f = {}) {
        log(LogLevel::Debug, m, f);
    }
    void info(std::string_view m, std::initializer_list<Field> f = {}) {
        log(LogLevel::Info, m, f);
    }
    void warn(std::string_view m, std::initializer_list<Field> f = {}) {
        log(LogLevel::Warn, m, f);
    }
    void error(std::string_view m, std::initializer_list<Field> f = {}) {
        log(LogLevel::Error, m, f);
    }

private:
    std::FILE* sink_;
    LogLevel min_level_;
    std::mutex mutex_;
};

} // namespace wec

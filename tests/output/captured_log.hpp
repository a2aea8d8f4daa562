// A logger writing to a temp file, for the output tests to count the lines a driver logged.
#pragma once

#include "common/log.hpp"

#include <cstdio>
#include <string>

namespace wec::testing {

// A logger writing to a temp file, to count its lines.
class CapturedLog {
public:
    CapturedLog() : file_(std::tmpfile()), log_(file_, wec::LogLevel::Info) {}
    ~CapturedLog() { std::fclose(file_); }
    wec::Logger* get() { return &log_; }
    std::string text() {
        std::fflush(file_);
        std::rewind(file_);
        std::string out;
        char buf[4096];
        while (std::size_t n = std::fread(buf, 1, sizeof buf, file_))
            out.append(buf, n);
        std::fseek(file_, 0, SEEK_END);
        return out;
    }
    std::size_t count(const std::string& needle) {
        std::string t = text();
        std::size_t n = 0;
        for (auto pos = t.find(needle); pos != std::string::npos; pos = t.find(needle, pos + 1))
            ++n;
        return n;
    }

private:
    std::FILE* file_;
    wec::Logger log_;
};

} // namespace wec::testing

// A logger whose lines a test reads back: a wec::Logger writing to a temporary file (removed when
// it is closed), for tests to find or count what a component logged.
#pragma once

#include "common/handle.hpp"
#include "common/log.hpp"
#include "support/files.hpp"

#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

namespace wec::testing {

class CapturedLog {
public:
    explicit CapturedLog(wec::LogLevel level = wec::LogLevel::Info)
        : file_(open()), log_(file_.get(), level) {}
    wec::Logger* get() { return &log_; }
    // Everything logged so far.
    std::string text() {
        std::fflush(file_.get());
        std::rewind(file_.get());
        std::string out;
        char buf[4096];
        while (std::size_t n = std::fread(buf, 1, sizeof buf, file_.get()))
            out.append(buf, n);
        std::fseek(file_.get(), 0, SEEK_END);
        return out;
    }
    // How many times `needle` was logged (count_of the text).
    std::size_t count(std::string_view needle) { return count_of(text(), needle); }

private:
    static std::FILE* open() {
        std::FILE* f = std::tmpfile();
        if (f == nullptr) throw std::runtime_error("CapturedLog: tmpfile() failed");
        return f;
    }
    wec::FilePtr file_;
    wec::Logger log_;
};

} // namespace wec::testing

// The subscription most `wec serve` tests run with, applied by the real `wec sub apply`
// (WEC_EXE, a compile definition of the test targets that use this header).
#pragma once

#include "support/process.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace wec::testing {

// "security": every event of the Security log, stored as JSON lines by the files output at
// `events` (a path template, e.g. <dir>/events/{client}.json). `extra` (TOML lines, each ending
// with a newline) goes before the output.
inline std::string security_subscription(const std::filesystem::path& events,
                                         const std::string& extra = {}) {
    return "name = \"security\"\n"
           "query = '<QueryList><Query Id=\"0\"><Select "
           "Path=\"Security\">*</Select></Query></QueryList>'\n" +
           extra + "[[outputs]]\ndriver = \"files\"\npath = \"" + events.string() +
           "\"\nformat = \"json\"\n";
}

// Writes `toml` to `file` and applies it to the database `db` ("sqlite:<path>", ...) with
// `wec sub apply`; throws std::runtime_error with wec's output when that fails (a test fails
// with it).
inline void apply_subscription(const std::filesystem::path& file, const std::string& toml,
                               const std::string& db) {
    std::ofstream(file) << toml;
    auto r = run({WEC_EXE, "sub", "apply", file.string(), "--db", db});
    if (r.exit_code != 0)
        throw std::runtime_error("wec sub apply " + file.string() + " failed: " + r.output);
}

} // namespace wec::testing

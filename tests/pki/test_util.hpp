// Helpers of the pki tests on top of tests/support (TempDir, Process, run, free_port, slurp,
// count_of, openssl_sha1_thumbprint): shell command lines for the `openssl` and `curl` CLIs as
// independent checkers (pipelines, quoted temp paths), and file modes.
#pragma once

#include "support/files.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/test_pki.hpp"

#include <string>
#include <sys/stat.h>

namespace pkitest {

using namespace wec::testing;

// Runs a shell command line (test-controlled: temp paths and literals) through support's run();
// `merge_stderr` false: stdout alone (stderr discarded).
inline RunResult sh(const std::string& command, bool merge_stderr = true) {
    return run({"/bin/sh", "-c", merge_stderr ? command : command + " 2>/dev/null"});
}

inline unsigned mode_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return 0;
    return st.st_mode & 07777;
}

} // namespace pkitest

// Child processes for integration tests: started with an environment of the test's choosing,
// output captured to a file, stopped by PID in the destructor (also when the test fails).
#pragma once

#include "support/temp_dir.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace wec::testing {

class Process {
public:
    // Starts argv[0] (looked up in PATH if it has no '/') with the current environment plus
    // `env`; stdout and stderr go to `log_file`. Throws std::runtime_error if it cannot start.
    Process(std::vector<std::string> argv, std::map<std::string, std::string> env,
            std::filesystem::path log_file);
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    int pid() const { return pid_; }
    // Sends a signal; returns false if the process is gone.
    bool signal(int sig);
    // Waits for the exit; returns the exit code (128+signal when killed), or -1 on timeout.
    int wait(std::chrono::milliseconds timeout);
    bool running();
    std::string output() const; // what it wrote so far
    // Waits until `needle` appears in the output (true) or the timeout passes / it exits (false).
    bool wait_for_output(const std::string& needle, std::chrono::milliseconds timeout);

private:
    int pid_ = -1;
    int status_ = -1;
    std::filesystem::path log_;
};

struct RunResult {
    int exit_code = -1;
    std::string output; // stdout + stderr
};

// Runs a command to completion (bounded by `timeout`; killed after it) and captures its output.
RunResult run(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(120));

// True when `program` is an executable file in a directory of PATH (a test whose peer is missing
// fails with ASSERT_TRUE(has_program(...)) << "how to install it": it is never skipped).
bool has_program(const std::string& program);

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

// True when something accepts TCP connections on 127.0.0.1:`port` now (a peer the test started
// is listening); the probe connection is closed at once.
bool accepts_connections(int port);

} // namespace wec::testing

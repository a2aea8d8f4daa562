// Helpers for the pki tests: shell commands (the `openssl` and `curl`
// CLIs as independent checkers), a free local port and a time-bounded background process.
#pragma once

#include "support/temp_dir.hpp"

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace pkitest {

using wec::testing::TempDir;

struct Result {
    int exit_code = -1;
    std::string out; // stdout and stderr, merged
};

// Runs a shell command (arguments are test-controlled: temp paths and literals).
inline Result run(const std::string& command, bool merge_stderr = true) {
    Result r;
    std::string cmd = merge_stderr ? command + " 2>&1" : command;
    std::FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf{};
    std::size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
        r.out.append(buf.data(), n);
    int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline unsigned mode_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return 0;
    return st.st_mode & 07777;
}

inline std::size_t count(const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1))
        ++n;
    return n;
}

// `openssl x509 -fingerprint -sha1` of the first certificate, colons removed.
inline std::string openssl_sha1(const std::string& pem) {
    auto r = run("openssl x509 -in '" + pem + "' -noout -fingerprint -sha1");
    auto eq = r.out.find('=');
    if (r.exit_code != 0 || eq == std::string::npos) return "openssl failed: " + r.out;
    std::string out;
    for (char c : r.out.substr(eq + 1))
        if (c != ':' && c != '\n') out.push_back(c);
    return out;
}

// A port that was free a moment ago on 127.0.0.1.
inline int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return 0;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
        port = ntohs(addr.sin_port);
    ::close(fd);
    return port;
}

// A background process (argv, no shell) with stdout+stderr in `log`; killed by PID when it goes
// out of scope.
class Background {
public:
    Background(const std::vector<std::string>& argv, std::string log) : log_(std::move(log)) {
        pid_ = ::fork();
        if (pid_ == 0) {
            std::FILE* f = std::fopen(log_.c_str(), "w");
            if (!f) ::_exit(127);
            ::dup2(::fileno(f), 1);
            ::dup2(::fileno(f), 2);
            std::FILE* devnull = std::fopen("/dev/null", "r");
            if (devnull) ::dup2(::fileno(devnull), 0);
            std::vector<char*> args;
            for (const auto& a : argv)
                args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
    }
    ~Background() {
        if (pid_ > 0 && !reaped_) {
            ::kill(pid_, SIGTERM);
            int status = 0;
            for (int i = 0; i < 50 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            if (::waitpid(pid_, &status, WNOHANG) == 0) {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
            }
        }
    }
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;

    bool started() const { return pid_ > 0; }
    std::string output() const { return slurp(log_); }

    // Waits (bounded) until the output contains `text`.
    bool wait_for(const std::string& text, std::chrono::milliseconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            if (output().find(text) != std::string::npos) return true;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) { // exited early
                reaped_ = true;
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }

private:
    std::string log_;
    pid_t pid_ = -1;
    bool reaped_ = false;
};

} // namespace pkitest

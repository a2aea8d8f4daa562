// A real redis-server for tests (Debian's redis-server, scripts/install-deps.sh): started on a free
// port of 127.0.0.1 and a unix socket in the test's dir, without persistence unless the test asks
// for it, stopped by PID (also when the test fails); never the system's service.
#pragma once

#include "support/process.hpp"

#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace wec::testing {

// `extra`: more arguments (persistence, a password, TLS...). start() again after kill() uses the
// same port and dir.
class RedisServer {
public:
    explicit RedisServer(std::filesystem::path dir, std::vector<std::string> extra = {})
        : dir_(std::move(dir)), port_(free_port()), extra_(std::move(extra)) {
        start();
    }

    void start() {
        std::vector<std::string> argv{"redis-server", "--port", std::to_string(port_)};
        for (const char* arg : {"--bind", "127.0.0.1", "--save", "", "--daemonize", "no"})
            argv.emplace_back(arg);
        for (const auto& arg :
             {std::string("--dir"), dir_.string(), std::string("--unixsocket"), socket()})
            argv.push_back(arg);
        argv.insert(argv.end(), extra_.begin(), extra_.end());
        process_ =
            std::make_unique<Process>(argv, std::map<std::string, std::string>{},
                                      dir_ / ("redis-" + std::to_string(++starts_) + ".log"));
        if (!process_->wait_for_output("Ready to accept connections", std::chrono::seconds(20)))
            throw std::runtime_error("redis-server did not start (scripts/install-deps.sh "
                                     "installs redis-server): " +
                                     process_->output());
    }
    // SIGKILL: a crash, nothing flushed on the way out.
    void kill() {
        process_->signal(SIGKILL);
        process_->wait(std::chrono::seconds(10));
    }

    // redis-cli (Debian's redis-tools) against this server's TCP port.
    RunResult cli(std::vector<std::string> args) const {
        args.insert(args.begin(), {"redis-cli", "-p", std::to_string(port_)});
        return run(args);
    }

    int port() const { return port_; }
    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    std::string socket() const { return (dir_ / "redis.sock").string(); }

private:
    std::filesystem::path dir_;
    int port_;
    std::vector<std::string> extra_;
    int starts_ = 0;
    std::unique_ptr<Process> process_;
};

} // namespace wec::testing

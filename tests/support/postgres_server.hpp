// A throwaway PostgreSQL 15 server for tests: `initdb` in a temporary directory, started with
// `pg_ctl` on a free 127.0.0.1 port (as the `postgres` user when the test runs as root: initdb and
// pg_ctl refuse root), trust authentication on loopback only. The destructor stops it by PID
// (`pg_ctl stop -m immediate`, SIGKILL if that fails) and removes the directory. The server is
// a daemon, not a child: should this process die without its destructors (a ctest timeout, a
// signal, a crash), a guard process it started does the same.
#pragma once

#include "support/process.hpp"

#include <string>
#include <vector>

namespace wec::testing {

class PostgresServer {
public:
    struct Options {
        bool fsync = false; // off for tests; on for benchmarks that measure commits
    };

    // Throws std::runtime_error (with the server log) when it cannot be started.
    explicit PostgresServer(Options options);
    PostgresServer() : PostgresServer(Options{}) {}
    ~PostgresServer();
    PostgresServer(const PostgresServer&) = delete;
    PostgresServer& operator=(const PostgresServer&) = delete;

    // The server of this test process, started on first use and stopped at exit. Tests that stop
    // or restart a server make their own instead.
    static PostgresServer& shared();

    int port() const { return port_; }
    // "postgres://postgres@127.0.0.1:PORT/DATABASE".
    std::string url(const std::string& database) const;
    // A new empty database (unique name); returns its name.
    std::string create_database();

    // Runs one statement on `database` with text parameters ($1, $2, ...); returns the first
    // column of each row. Throws std::runtime_error with the server's message.
    std::vector<std::string> query(const std::string& database, const std::string& sql,
                                   const std::vector<std::string>& params = {}) const;

    // Stops the server (pg_ctl stop, `mode` fast or immediate; SIGKILL by PID if it is still
    // there) / starts it again on the same port and data.
    void stop(const std::string& mode = "immediate");
    void start();
    bool running() const { return pid_ > 0; }
    std::string log() const;

private:
    std::vector<std::string> as_postgres(std::vector<std::string> argv) const;
    void write_config() const;
    void start_guard();

    Options options_;
    TempDir dir_;
    std::string data_;
    std::string run_; // socket directory and server log
    int port_ = 0;
    int pid_ = -1;
    int databases_ = 0;
    int guard_pid_ = -1;
    int guard_fd_ = -1; // write end of the guard's stdin
};

} // namespace wec::testing

#include "support/postgres_server.hpp"

#include "common/handle.hpp"
#include "support/files.hpp"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <libpq-fe.h>
#include <pwd.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace wec::testing {
namespace {

namespace fs = std::filesystem;

const std::string kBin = "/usr/lib/postgresql/15/bin/";

using ConnPtr = wec::Handle<PGconn, PQfinish>;
using ResultPtr = wec::Handle<PGresult, PQclear>;

// Running (a zombie waiting for init to reap it is not: the postmaster is not our child).
bool alive(int pid) {
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) return false;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    auto close = line.rfind(')');
    return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

// When running as root: the directory becomes the `postgres` user's.
void give_to_postgres(const std::string& path) {
    if (::geteuid() != 0) return;
    const passwd* pw = ::getpwnam("postgres");
    if (!pw) throw std::runtime_error("running as root and there is no `postgres` user");
    if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0)
        throw std::runtime_error("cannot give " + path + " to postgres");
}

} // namespace

PostgresServer::PostgresServer(Options options) : options_(options) {
    if (!fs::exists(kBin + "initdb"))
        throw std::runtime_error("PostgreSQL 15 is not installed (" + kBin +
                                 "initdb): run scripts/install-deps.sh");
    data_ = (dir_.path() / "data").string();
    run_ = (dir_.path() / "run").string();
    fs::create_directory(data_);
    fs::create_directory(run_);
    // initdb and the server refuse root: they run as `postgres`, which must reach the
    // directories (the temporary directory is 0700 root).
    if (::geteuid() == 0) ::chmod(dir_.path().c_str(), 0755);
    give_to_postgres(data_);
    give_to_postgres(run_);
    std::vector<std::string> initdb{kBin + "initdb", "-D",        data_, "-A",   "trust",     "-U",
                                    "postgres",      "--no-sync", "-E",  "UTF8", "--locale=C"};
    // Tests: 1 MB WAL segments, a smaller cluster made faster. Benchmarks: the default.
    if (!options_.fsync) initdb.push_back("--wal-segsize=1");
    auto init = run(as_postgres(initdb));
    if (init.exit_code != 0) throw std::runtime_error("initdb failed:\n" + init.output);
    for (int attempt = 0;; ++attempt) {
        port_ = free_port();
        write_config();
        try {
            start();
            break;
        } catch (const std::runtime_error&) {
            // Most likely the port was taken between free_port() and the bind: another one.
            if (attempt == 4) throw;
        }
    }
    start_guard();
}

// /bin/sh reading a pipe whose only writer is this process: "done" from the destructor ends it;
// end of file without it (this process died) makes it stop the server and remove the directory.
void PostgresServer::start_guard() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return; // no guard: only the destructor cleans up
    const std::string pg_ctl = (::geteuid() == 0 ? "/usr/sbin/runuser -u postgres -- " : "") +
                               kBin + "pg_ctl -D \"$1\" -m immediate -w -t 10 stop";
    const std::string script =
        "read line; [ \"$line\" = done ] && exit 0; " + pg_ctl +
        " || kill -KILL \"$(head -n 1 \"$1/postmaster.pid\")\"; sleep 1; rm -rf \"$2\"";
    std::vector<std::string> argv{"/bin/sh",           "-c", script, "wec-postgres-guard", data_,
                                  dir_.path().string()};
    std::vector<char*> cargv;
    for (auto& a : argv)
        cargv.push_back(a.data());
    cargv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    int rc = ::posix_spawn(&pid, "/bin/sh", &actions, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[0]);
    if (rc != 0) {
        ::close(fds[1]);
        return;
    }
    guard_pid_ = pid;
    guard_fd_ = fds[1];
}

PostgresServer::~PostgresServer() {
    try {
        stop();
    } catch (...) {
    }
    if (guard_fd_ >= 0) {
        const char done[] = "done\n";
        [[maybe_unused]] auto n = ::write(guard_fd_, done, sizeof done - 1);
        ::close(guard_fd_);
    }
    if (guard_pid_ > 0) ::waitpid(guard_pid_, nullptr, 0);
}

PostgresServer& PostgresServer::shared() {
    static PostgresServer server;
    return server;
}

std::vector<std::string> PostgresServer::as_postgres(std::vector<std::string> argv) const {
    if (::geteuid() != 0) return argv;
    std::vector<std::string> out{"/usr/sbin/runuser", "-u", "postgres", "--"};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
}

void PostgresServer::write_config() const {
    // Appended: later settings win, so a retry on another port just adds a line.
    std::ofstream conf(data_ + "/postgresql.conf", std::ios::app);
    conf << "\nport = " << port_ << "\nlisten_addresses = '127.0.0.1'\n"
         << "unix_socket_directories = '" << run_ << "'\n"
         << "fsync = " << (options_.fsync ? "on" : "off") << "\n"
         << "shared_buffers = 32MB\nmax_connections = 200\n";
}

void PostgresServer::start() {
    if (running()) return;
    auto started = run(as_postgres(
        {kBin + "pg_ctl", "-D", data_, "-l", run_ + "/server.log", "-w", "-t", "60", "start"}));
    std::ifstream pidfile(data_ + "/postmaster.pid");
    int pid = -1;
    if (started.exit_code != 0 || !(pidfile >> pid) || !alive(pid)) {
        if (pid > 0 && alive(pid)) ::kill(pid, SIGKILL);
        throw std::runtime_error("pg_ctl start failed:\n" + started.output + "\n" + log());
    }
    pid_ = pid;
}

void PostgresServer::stop(const std::string& mode) {
    if (!running()) return;
    auto stopped =
        run(as_postgres({kBin + "pg_ctl", "-D", data_, "-m", mode, "-w", "-t", "30", "stop"}));
    if (stopped.exit_code != 0 || alive(pid_)) {
        ::kill(pid_, SIGKILL);
        for (int i = 0; i < 500 && alive(pid_); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
}

std::string PostgresServer::log() const {
    return slurp(run_ + "/server.log");
}

std::string PostgresServer::url(const std::string& database) const {
    return "postgres://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

std::string PostgresServer::create_database() {
    std::string name = "wec_test_" + std::to_string(++databases_);
    // A name made here (no parameter can name a database).
    query("postgres", "CREATE DATABASE " + name);
    return name;
}

std::vector<std::string> PostgresServer::query(const std::string& database, const std::string& sql,
                                               const std::vector<std::string>& params) const {
    ConnPtr conn(PQconnectdb(url(database).c_str()));
    if (!conn || PQstatus(conn.get()) != CONNECTION_OK)
        throw std::runtime_error("cannot connect to " + url(database) + ": " +
                                 (conn ? PQerrorMessage(conn.get()) : "out of memory"));
    PQsetNoticeProcessor(
        conn.get(), [](void*, const char*) {}, nullptr);
    std::vector<const char*> values;
    for (const auto& p : params)
        values.push_back(p.c_str());
    ResultPtr result(PQexecParams(conn.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                                  values.data(), nullptr, nullptr, 0));
    auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        throw std::runtime_error(sql + ": " + PQerrorMessage(conn.get()));
    std::vector<std::string> rows;
    for (int row = 0; row < PQntuples(result.get()); ++row)
        rows.emplace_back(PQgetvalue(result.get(), row, 0));
    return rows;
}

} // namespace wec::testing

// Throwaway MIT Kerberos realm for tests (see krb5_realm.hpp).
#include "support/krb5_realm.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netinet/in.h>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace wec::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("Krb5Realm: " + what);
}

std::string errno_text(const std::string& what) {
    return what + ": " + std::strerror(errno);
}

// Finds an MIT tool on PATH or in the sbin directories (which are not always on PATH).
std::string find_tool(const std::string& name) {
    std::vector<std::string> dirs;
    if (const char* path = std::getenv("PATH")) {
        std::stringstream ss(path);
        std::string d;
        while (std::getline(ss, d, ':'))
            if (!d.empty()) dirs.push_back(d);
    }
    for (const char* d : {"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin"})
        dirs.emplace_back(d);
    for (const auto& d : dirs) {
        std::string candidate = d + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    fail("'" + name + "' not found (install krb5-kdc, krb5-admin-server and krb5-user)");
}

// argv/envp arrays prepared before fork() (nothing is allocated in the child).
struct ExecArgs {
    std::vector<std::string> storage;
    std::vector<std::string> env_storage;
    std::vector<char*> argv;
    std::vector<char*> envp;

    ExecArgs(const std::vector<std::string>& args, const std::map<std::string, std::string>& env)
        : storage(args) {
        std::map<std::string, std::string> merged;
        for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
            std::string_view kv(*e);
            auto eq = kv.find('=');
            if (eq == std::string_view::npos) continue;
            merged[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
        }
        for (const auto& [k, v] : env)
            merged[k] = v;
        for (const auto& [k, v] : merged)
            env_storage.push_back(k + "=" + v);
        for (auto& s : storage)
            argv.push_back(s.data());
        argv.push_back(nullptr);
        for (auto& s : env_storage)
            envp.push_back(s.data());
        envp.push_back(nullptr);
    }
};

// fork/exec with stdin from /dev/null and stdout+stderr to `out_fd`. With `die_with_parent`
// the child gets SIGTERM when the thread that started it dies (so a crashed test leaves no KDC).
pid_t spawn(const ExecArgs& args, int out_fd, bool die_with_parent) {
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0) fail(errno_text("open /dev/null"));
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(devnull);
        fail(errno_text("fork"));
    }
    if (pid == 0) {
        if (die_with_parent) {
            ::prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (::getppid() != parent) ::_exit(127);
        }
        ::dup2(devnull, 0);
        ::dup2(out_fd, 1);
        ::dup2(out_fd, 2);
        ::setpgid(0, 0); // own process group: terminal signals to the test do not hit it twice
        ::execve(args.argv[0], args.argv.data(), args.envp.data());
        ::_exit(127);
    }
    ::close(devnull);
    return pid;
}

struct ToolResult {
    int status = -1; // exit code, or -1 when killed by a signal
    std::string output;
};

// Runs a tool to completion (bounded: 30 s) and returns its exit status and combined output.
ToolResult run_tool(const std::vector<std::string>& args,
                    const std::map<std::string, std::string>& env) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) fail(errno_text("pipe2"));
    ExecArgs exec_args(args, env);
    pid_t pid;
    try {
        pid = spawn(exec_args, fds[1], false);
    } catch (...) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw;
    }
    ::close(fds[1]);
    ToolResult result;
    char buf[4096];
    auto deadline = Clock::now() + std::chrono::seconds(30);
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    bool timed_out = false;
    for (;;) {
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n > 0) {
            result.output.append(buf, static_cast<size_t>(n));
            continue;
        }
        if (n == 0) break;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) break;
        if (Clock::now() > deadline) {
            timed_out = true;
            ::kill(pid, SIGKILL);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) result.output += "\n(timed out after 30 s)";
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
    std::string out;
    for (const auto& s : v) {
        if (!out.empty()) out += sep;
        out += s;
    }
    return out;
}

std::vector<std::string> split_ws(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string w;
    while (ss >> w)
        out.push_back(w);
    return out;
}

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out) fail("cannot write " + path.string());
}

std::string read_text(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A loopback port that is free for both TCP and UDP right now (the KDC listens on both).
int pick_free_port() {
    for (int attempt = 0; attempt < 50; ++attempt) {
        int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (tcp < 0) fail(errno_text("socket"));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        socklen_t len = sizeof addr;
        if (::bind(tcp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::getsockname(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            ::close(tcp);
            fail(errno_text("bind/getsockname on 127.0.0.1"));
        }
        int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        bool udp_ok = udp >= 0 && ::bind(udp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        if (udp >= 0) ::close(udp);
        ::close(tcp);
        if (udp_ok) return ntohs(addr.sin_port);
    }
    fail("no free loopback port found");
}

bool port_accepts(int port) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(s);
    return ok;
}

// Waits for `pid` to exit for at most `timeout`; true when it was reaped.
bool wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) return true;
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

} // namespace

struct Krb5Realm::Impl {
    Options options;
    fs::path dir;
    int port = 0;
    pid_t kdc_pid = -1;
    std::map<std::string, std::string> env;
    std::string kdc_bin, kdb5_util_bin, kadmin_bin, kinit_bin;
    int ccache_counter = 0;

    fs::path krb5_conf() const { return dir / "krb5.conf"; }
    fs::path kdc_conf() const { return dir / "kdc.conf"; }

    void make_dir() {
        const char* tmp = std::getenv("TMPDIR");
        std::string base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
        std::string templ = base + "/wec-krb5-XXXXXX";
        std::vector<char> buf(templ.begin(), templ.end());
        buf.push_back('\0');
        if (::mkdtemp(buf.data()) == nullptr) fail(errno_text("mkdtemp " + templ));
        dir = fs::absolute(fs::path(buf.data()));
    }

    void write_configs() {
        const std::string& r = options.realm;
        std::string domain = lower(r);
        std::string ports = std::to_string(port);
        std::string enctypes = options.enctypes;
        std::vector<std::string> supported;
        for (const auto& e : split_ws(enctypes))
            supported.push_back(e + ":normal");

        std::ostringstream k;
        k << "[libdefaults]\n"
          << "  default_realm = " << r << "\n"
          << "  dns_lookup_kdc = false\n"
          << "  dns_lookup_realm = false\n"
          << "  dns_canonicalize_hostname = false\n"
          << "  rdns = false\n"
          << "  udp_preference_limit = 1\n"
          << "  permitted_enctypes = " << enctypes << "\n"
          << "  default_tkt_enctypes = " << enctypes << "\n"
          << "  default_tgs_enctypes = " << enctypes << "\n"
          << "  forwardable = true\n"
          << "  ticket_lifetime = 10h\n"
          << "  default_ccache_name = FILE:" << (dir / "ccache").string() << "\n"
          << "  default_keytab_name = FILE:" << (dir / "default.keytab").string() << "\n"
          << "\n[realms]\n"
          << "  " << r << " = {\n"
          << "    kdc = 127.0.0.1:" << ports << "\n"
          << "  }\n"
          << "\n[domain_realm]\n"
          << "  ." << domain << " = " << r << "\n"
          << "  " << domain << " = " << r << "\n";
        write_text(krb5_conf(), k.str());

        std::ostringstream d;
        d << "[kdcdefaults]\n"
          << "  kdc_listen = 127.0.0.1:" << ports << "\n"
          << "  kdc_tcp_listen = 127.0.0.1:" << ports << "\n"
          << "\n[realms]\n"
          << "  " << r << " = {\n"
          << "    database_name = " << (dir / "principal").string() << "\n"
          << "    key_stash_file = " << (dir / "stash").string() << "\n"
          << "    acl_file = " << (dir / "kadm5.acl").string() << "\n"
          << "    master_key_type = aes256-cts-hmac-sha1-96\n"
          << "    supported_enctypes = " << join(supported, " ") << "\n"
          << "    max_life = 10h 0m 0s\n"
          << "    max_renewable_life = 7d 0h 0m 0s\n"
          << "  }\n"
          << "\n[logging]\n"
          << "  kdc = FILE:" << (dir / "kdc.log").string() << "\n"
          << "  admin_server = FILE:" << (dir / "kadmin.log").string() << "\n"
          << "  default = FILE:" << (dir / "krb5lib.log").string() << "\n";
        write_text(kdc_conf(), d.str());
        write_text(dir / "kadm5.acl", "*/admin@" + r + " *\n");
    }

    void make_env() {
        fs::create_directories(dir / "rcache");
        env = {
            {"KRB5_CONFIG", krb5_conf().string()},
            {"KRB5_KDC_PROFILE", kdc_conf().string()},
            {"KRB5CCNAME", "FILE:" + (dir / "ccache").string()},
            {"KRB5_KTNAME", "FILE:" + (dir / "default.keytab").string()},
            {"KRB5_CLIENT_KTNAME", "FILE:" + (dir / "client.keytab").string()},
            // Replay caches stay ON but private to this realm (the default is /var/tmp).
            {"KRB5RCACHEDIR", (dir / "rcache").string()},
        };
    }

    ToolResult run(const std::vector<std::string>& args) const { return run_tool(args, env); }

    std::string kadmin(const std::string& query) const {
        auto res = run({kadmin_bin, "-r", options.realm, "-q", query});
        if (res.status != 0) fail("kadmin.local -q '" + query + "' failed:\n" + res.output);
        return res.output;
    }

    // Starts krb5kdc on `port`; true when it accepts connections, false when it exited early
    // (e.g. the port was taken meanwhile). Throws on a timeout.
    bool start_kdc() {
        fs::path pidfile = dir / "krb5kdc.pid";
        fs::path outfile = dir / "krb5kdc.out";
        int out = ::open(outfile.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out < 0) fail(errno_text("open " + outfile.string()));
        ExecArgs args({kdc_bin, "-n", "-P", pidfile.string(), "-r", options.realm}, env);
        pid_t pid;
        try {
            pid = spawn(args, out, true);
        } catch (...) {
            ::close(out);
            throw;
        }
        ::close(out);
        kdc_pid = pid;
        auto deadline = Clock::now() + std::chrono::seconds(10);
        while (Clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                kdc_pid = -1;
                return false;
            }
            // Ready = listening and the pidfile written (it is written after the sockets).
            if (port_accepts(port) && read_text(pidfile).find(std::to_string(pid)) == 0)
                return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        stop_kdc();
        fail("krb5kdc did not accept connections on 127.0.0.1:" + std::to_string(port) +
             " within 10 s:\n" + read_text(outfile) + read_text(dir / "kdc.log"));
    }

    void stop_kdc() noexcept {
        if (kdc_pid <= 0) return;
        ::kill(kdc_pid, SIGTERM);
        if (!wait_exit(kdc_pid, std::chrono::seconds(5))) {
            ::kill(kdc_pid, SIGKILL);
            wait_exit(kdc_pid, std::chrono::seconds(5));
        }
        kdc_pid = -1;
    }

    void cleanup() noexcept {
        stop_kdc();
        if (!dir.empty() && std::getenv("WEC_KEEP_KRB5_REALM") == nullptr) {
            std::error_code ec;
            fs::remove_all(dir, ec);
        }
    }
};

Krb5Realm::Krb5Realm() : Krb5Realm(Options{}) {}

Krb5Realm::Krb5Realm(Options options) : impl_(std::make_unique<Impl>()) {
    Impl& m = *impl_;
    m.options = std::move(options);
    if (m.options.realm.empty()) fail("empty realm name");
    if (split_ws(m.options.enctypes).empty()) fail("no enctypes");
    m.kdc_bin = find_tool("krb5kdc");
    m.kdb5_util_bin = find_tool("kdb5_util");
    m.kadmin_bin = find_tool("kadmin.local");
    m.kinit_bin = find_tool("kinit");
    m.make_dir();
    try {
        m.make_env();
        m.port = pick_free_port();
        m.write_configs();
        auto created = m.run({m.kdb5_util_bin, "-r", m.options.realm, "create", "-s", "-P",
                              "wec-test-master-password"});
        if (created.status != 0) fail("kdb5_util create failed:\n" + created.output);
        bool started = false;
        std::string last_output;
        for (int attempt = 0; attempt < 5 && !started; ++attempt) {
            if (attempt > 0) {
                m.port = pick_free_port();
                m.write_configs();
            }
            started = m.start_kdc();
            if (!started)
                last_output = read_text(m.dir / "krb5kdc.out") + read_text(m.dir / "kdc.log");
        }
        if (!started) fail("krb5kdc exited during startup (5 attempts):\n" + last_output);
    } catch (...) {
        m.cleanup();
        throw;
    }
}

Krb5Realm::~Krb5Realm() {
    if (impl_) impl_->cleanup();
}

const std::string& Krb5Realm::realm() const {
    return impl_->options.realm;
}
const std::filesystem::path& Krb5Realm::dir() const {
    return impl_->dir;
}
int Krb5Realm::kdc_port() const {
    return impl_->port;
}

std::string Krb5Realm::add_principal(const std::string& name) {
    std::string out = impl_->kadmin("addprinc -randkey " + name);
    if (out.find("created") == std::string::npos) fail("addprinc " + name + " failed:\n" + out);
    return name + "@" + impl_->options.realm;
}

std::string Krb5Realm::add_principal_with_password(const std::string& name,
                                                   const std::string& password) {
    if (password.find('"') != std::string::npos) fail("password must not contain '\"'");
    std::string out = impl_->kadmin("addprinc -pw \"" + password + "\" " + name);
    if (out.find("created") == std::string::npos) fail("addprinc " + name + " failed:\n" + out);
    return name + "@" + impl_->options.realm;
}

std::filesystem::path Krb5Realm::export_keytab(const std::vector<std::string>& names,
                                               const std::string& file_name) {
    if (names.empty()) fail("export_keytab: no principals");
    fs::path path =
        fs::path(file_name).is_absolute() ? fs::path(file_name) : impl_->dir / file_name;
    std::string out =
        impl_->kadmin("ktadd -norandkey -k " + path.string() + " " + join(names, " "));
    for (const auto& n : names) {
        if (out.find("Entry for principal " + n + " ") == std::string::npos)
            fail("ktadd " + n + " failed:\n" + out);
    }
    return path;
}

std::string Krb5Realm::kadmin(const std::string& query) {
    return impl_->kadmin(query);
}

std::string Krb5Realm::kinit(const std::string& principal, const std::filesystem::path& keytab) {
    fs::path cc = impl_->dir / ("ccache_" + std::to_string(++impl_->ccache_counter));
    std::string name = "FILE:" + cc.string();
    auto res = impl_->run({impl_->kinit_bin, "-k", "-t", keytab.string(), "-c", name, principal});
    if (res.status != 0) fail("kinit " + principal + " failed:\n" + res.output);
    return name;
}

std::map<std::string, std::string> Krb5Realm::env() const {
    return impl_->env;
}

void Krb5Realm::apply_env() const {
    for (const auto& [k, v] : impl_->env)
        ::setenv(k.c_str(), v.c_str(), 1);
}

} // namespace wec::testing

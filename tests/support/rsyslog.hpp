// A real rsyslogd for tests: its own configuration in a temp dir, inputs on free loopback ports
// (imudp, imtcp with octet counting, imptcp, imuxsock on a socket in the dir, optionally TLS),
// every input written by omfile to <input>.log with a template that keeps rsyslog's parse of each
// field.
#pragma once

#include "support/files.hpp"
#include "support/process.hpp"

#include <arpa/inet.h>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <netinet/in.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace wec::testing {

// What rsyslog parsed out of one message (template `fields` below).
struct Parsed {
    std::string pri, timestamp, hostname, app, procid, msgid, sd, msg;
};

class Rsyslog {
public:
    static constexpr const char* kBinary = "/usr/sbin/rsyslogd";

    // `tls_dir`: a test PKI for the TLS input (empty: no TLS input).
    explicit Rsyslog(const std::filesystem::path& dir, const std::filesystem::path& tls_dir = {})
        : dir_(dir) {
        udp_ = free_port();
        tcp_ = free_port();
        ptcp_ = free_port();
        tls_ = free_port();
        const std::string d = dir.string();
        std::ofstream conf(dir / "rsyslog.conf");
        conf << "global(workDirectory=\"" << d
             << "\" maxMessageSize=\"128k\" parser.escapeControlCharactersOnReceive=\"off\")\n"
             << "module(load=\"imudp\")\nmodule(load=\"imtcp\")\nmodule(load=\"imptcp\")\n"
             << "module(load=\"imuxsock\" SysSock.Use=\"off\")\n"
             << "template(name=\"fields\" type=\"string\" string=\"%pri%|%timereported:::date-"
                "rfc3339%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\\n\")\n"
             << "input(type=\"imudp\" address=\"127.0.0.1\" port=\"" << udp_
             << "\" ruleset=\"udp\")\n"
             << "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"" << tcp_
             << "\" ruleset=\"tcp\")\n"
             << "input(type=\"imptcp\" address=\"127.0.0.1\" port=\"" << ptcp_
             << "\" ruleset=\"ptcp\")\n"
             << "input(type=\"imuxsock\" socket=\"" << d << "/log.sock\" ruleset=\"unix\" "
             << "useSpecialParser=\"off\" parseHostname=\"on\" ignoreTimestamp=\"off\")\n";
        if (!tls_dir.empty()) {
            conf << "input(type=\"imtcp\" address=\"127.0.0.1\" port=\"" << tls_
                 << "\" ruleset=\"tls\" streamDriver.name=\"ossl\" streamDriver.mode=\"1\" "
                 << "streamDriver.authMode=\"x509/certvalid\" streamDriver.CAFile=\""
                 << (tls_dir / "cas.pem").string() << "\" streamDriver.CertFile=\""
                 << (tls_dir / "server.pem").string() << "\" streamDriver.KeyFile=\""
                 << (tls_dir / "server.key").string() << "\")\n";
        }
        for (const char* r : {"udp", "tcp", "ptcp", "unix", "tls"})
            conf << "ruleset(name=\"" << r << "\") { action(type=\"omfile\" file=\"" << d << "/"
                 << r << ".log\" template=\"fields\") }\n";
        with_tls_ = !tls_dir.empty();
    }

    void start() {
        if (!std::filesystem::exists(kBinary))
            throw std::runtime_error(std::string(kBinary) +
                                     " is not installed (scripts/install-deps.sh installs rsyslog "
                                     "and rsyslog-openssl)");
        process_ = std::make_unique<Process>(
            std::vector<std::string>{kBinary, "-n", "-f", (dir_ / "rsyslog.conf").string(), "-i",
                                     (dir_ / "rsyslog.pid").string()},
            std::map<std::string, std::string>{}, dir_ / "rsyslogd.out");
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (!ready()) {
            if (std::chrono::steady_clock::now() > end || !process_->running())
                throw std::runtime_error("rsyslogd did not start: " + process_->output());
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        // UDP: probe until a datagram makes it to the file.
        int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(udp_));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const std::string probe = "<134>1 - - probe - - - probe";
        bool seen = false;
        while (!seen && std::chrono::steady_clock::now() < end) {
            ::sendto(fd, probe.data(), probe.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            seen = std::filesystem::exists(dir_ / "udp.log");
        }
        ::close(fd);
        if (!seen) throw std::runtime_error("rsyslogd's UDP input does not answer");
    }
    void stop() { process_.reset(); } // SIGTERM, waited for

    int udp() const { return udp_; }
    int tcp() const { return tcp_; }
    int ptcp() const { return ptcp_; }
    int tls() const { return tls_; }
    std::filesystem::path socket() const { return dir_ / "log.sock"; }

    // The messages of one input (probes left out), once there are at least `n`.
    std::vector<Parsed> messages(const std::string& input, std::size_t n) const {
        auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        for (;;) {
            auto got = parse(slurp(dir_ / (input + ".log")));
            if (got.size() >= n || std::chrono::steady_clock::now() > end) return got;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

private:
    bool ready() const {
        if (!std::filesystem::exists(socket())) return false;
        for (int port : {tcp_, ptcp_})
            if (!accepts_connections(port)) return false;
        return !with_tls_ || accepts_connections(tls_);
    }
    static std::vector<Parsed> parse(const std::string& text) {
        std::vector<Parsed> out;
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);) {
            Parsed p;
            std::string* fields[] = {&p.pri,    &p.timestamp, &p.hostname, &p.app,
                                     &p.procid, &p.msgid,     &p.sd};
            std::size_t pos = 0;
            bool ok = true;
            for (auto* f : fields) {
                auto bar = line.find('|', pos);
                if (bar == std::string::npos) {
                    ok = false;
                    break;
                }
                *f = line.substr(pos, bar - pos);
                pos = bar + 1;
            }
            if (!ok) continue;
            p.msg = line.substr(pos);
            if (p.app != "probe") out.push_back(std::move(p));
        }
        return out;
    }

    std::filesystem::path dir_;
    int udp_ = 0, tcp_ = 0, ptcp_ = 0, tls_ = 0;
    bool with_tls_ = false;
    std::unique_ptr<Process> process_;
};

} // namespace wec::testing

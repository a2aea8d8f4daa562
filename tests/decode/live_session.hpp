// Records real WEF traffic for `wec decode` tests, benches and the shipped sample: a throwaway MIT
// KDC on 127.0.0.1, the real `wec serve` binary, independent Python clients (python3-gssapi) and
// curl, all captured by tcpdump on lo. Everything is stopped by PID (destructors included).
#pragma once

#include "support/krb5_realm.hpp"
#include "support/process.hpp"

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace wec::test {

using namespace std::chrono_literals;

inline const std::string kDecodeHost = "srv.windomain.local";
inline const std::string kSubscriptionUuid = "9F5C1B9E-3C0B-4E57-9D6A-0D1E5A7C4B21";

class LiveSession {
public:
    // wec_exe: the `wec` binary; dir: where everything is written (must exist).
    LiveSession(std::string wec_exe, fs::path dir)
        : wec_(std::move(wec_exe)), dir_(std::move(dir)) {
        realm_.add_principal("HTTP/" + kDecodeHost);
        realm_.add_principal("HOST/" + kDecodeHost);
        realm_.add_principal("WIN10$");
        keytab_ =
            realm_.export_keytab({"HTTP/" + kDecodeHost, "HOST/" + kDecodeHost}, "wec.keytab");
        fs::copy_file(keytab_, dir_ / "wec.keytab", fs::copy_options::overwrite_existing);
        keytab_ = dir_ / "wec.keytab";
        auto client_keytab = realm_.export_keytab({"WIN10$"}, "win10.keytab");
        ccache_ = realm_.kinit("WIN10$@" + realm_.realm(), client_keytab);

        std::string db = "sqlite:" + (dir_ / "wec.db").string();
        auto sub = dir_ / "security.toml";
        std::ofstream(sub) << "name = \"security\"\nuuid = \"" << kSubscriptionUuid << "\"\n"
                           << "query = '<QueryList><Query Id=\"0\"><Select "
                              "Path=\"Microsoft-Windows-WinRM/Operational\">*</Select></Query>"
                              "</QueryList>'\n"
                           << "[[outputs]]\ndriver = \"files\"\npath = \""
                           << (dir_ / "serve-events.json").string() << "\"\nformat = \"json\"\n"
                           << "[[outputs]]\ndriver = \"files\"\npath = \""
                           << (dir_ / "serve-events.xml").string() << "\"\nformat = \"raw\"\n";
        auto r = testing::run({wec_, "sub", "apply", sub.string(), "--db", db});
        if (r.exit_code != 0) throw std::runtime_error("wec sub apply failed: " + r.output);

        port_ = testing::free_port();
        serve_ = std::make_unique<testing::Process>(
            std::vector<std::string>{
                wec_, "serve", "--listen", "127.0.0.1:" + std::to_string(port_), "--auth",
                "kerberos", "--keytab", keytab_.string(), "--hostname", kDecodeHost, "--db", db},
            realm_.env(), dir_ / "serve.log");
        if (!serve_->wait_for_output("wec serve started", 20s))
            throw std::runtime_error("wec serve did not start: " + serve_->output());

        pcap_ = dir_ / "capture.pcap";
        tcpdump_ = std::make_unique<testing::Process>(
            // A 32 MB kernel buffer: a loaded machine must not make tcpdump drop packets.
            std::vector<std::string>{"tcpdump", "-i", "lo", "--immediate-mode", "-U", "-s", "0",
                                     "-B", "32768", "-Z", "root", "-w", pcap_.string(),
                                     "tcp port " + std::to_string(port_) + " or port " +
                                         std::to_string(realm_.kdc_port())},
            std::map<std::string, std::string>{}, dir_ / "tcpdump.log");
        if (!tcpdump_->wait_for_output("listening on", 10s))
            throw std::runtime_error("tcpdump could not start: " + tcpdump_->output());
        std::this_thread::sleep_for(300ms);
    }

    ~LiveSession() {
        tcpdump_.reset();
        serve_.reset();
    }
    LiveSession(const LiveSession&) = delete;
    LiveSession& operator=(const LiveSession&) = delete;

    std::map<std::string, std::string> client_env() const {
        auto e = realm_.env();
        e["KRB5CCNAME"] = ccache_;
        return e;
    }
    std::string url(const std::string& path = "/wsman/SubscriptionManager/WEC") const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }

    // The independent Python client of tests/interop replaying the real Windows messages.
    std::vector<std::string> python_argv(const std::string& mech, bool tab) const {
        std::vector<std::string> argv{"/usr/bin/python3",
                                      std::string(WEC_SOURCE_DIR) + "/tests/interop/wef_client.py",
                                      "--url",
                                      url(),
                                      "--service",
                                      "HTTP@" + kDecodeHost,
                                      "--mech",
                                      mech,
                                      "--samples",
                                      std::string(WEC_TEST_DATA) + "/wsman",
                                      "--subscription",
                                      "security"};
        if (tab) argv.push_back("--tab");
        return argv;
    }
    void python(const std::string& mech, bool tab) const {
        auto r = testing::run(python_argv(mech, tab), client_env(), 60s);
        if (r.exit_code != 0) throw std::runtime_error("wef_client.py failed: " + r.output);
    }
    // Two clients at once: their connections interleave in the capture.
    void python_concurrently(const std::string& mech1, bool tab1, const std::string& mech2,
                             bool tab2) const {
        testing::Process a(python_argv(mech1, tab1), client_env(), dir_ / "client-a.log");
        testing::Process b(python_argv(mech2, tab2), client_env(), dir_ / "client-b.log");
        int ra = a.wait(60s), rb = b.wait(60s);
        if (ra != 0 || rb != 0)
            throw std::runtime_error("concurrent clients failed: " + a.output() + b.output());
    }
    // curl --negotiate: a plain SPNEGO authentication (401 challenge, then AP-REQ / AP-REP).
    void curl() const {
        auto r = testing::run(
            {"curl", "-s", "-S", "--negotiate", "-u", ":", "-X", "POST", "-H",
             "Content-Type: application/soap+xml;charset=UTF-16", "-d", "", "-o", "/dev/null", "-w",
             "%{http_code}", "http://" + kDecodeHost + ":" + std::to_string(port_) + "/wsman",
             "--resolve", kDecodeHost + ":" + std::to_string(port_) + ":127.0.0.1"},
            client_env(), 30s);
        if (r.exit_code != 0 || r.output.find("200") == std::string::npos)
            throw std::runtime_error("curl --negotiate failed: " + r.output);
    }
    // SLDC-compressed Events (the body file is an SLDC record), `count` times on one connection.
    // With `while_holding`, the connection stays open after the first Events while that runs:
    // the other connections it makes interleave with this one in the capture, deterministically.
    void sldc_events(const fs::path& body, int count, const std::string& mech = "kerberos",
                     const std::function<void()>& while_holding = {}) const {
        std::vector<std::string> argv{"/usr/bin/python3",
                                      std::string(WEC_SOURCE_DIR) +
                                          "/tests/decode/events_client.py",
                                      "--url",
                                      url(),
                                      "--service",
                                      "HTTP@" + kDecodeHost,
                                      "--mech",
                                      mech,
                                      "--enumerate",
                                      std::string(WEC_TEST_DATA) + "/wsman/enumerate.utf16",
                                      "--notify-path",
                                      "/wsman/subscriptions/" + kSubscriptionUuid,
                                      "--body",
                                      body.string(),
                                      "--count",
                                      std::to_string(count)};
        if (!while_holding) {
            auto r = testing::run(argv, client_env(), 120s);
            if (r.exit_code != 0) throw std::runtime_error("events_client.py failed: " + r.output);
            return;
        }
        auto release = dir_ / "events-client.release";
        argv.insert(argv.end(), {"--hold-until", release.string()});
        testing::Process p(argv, client_env(), dir_ / "events-client.log");
        if (!p.wait_for_output("\"holding\"", 60s))
            throw std::runtime_error("events_client.py did not reach its hold: " + p.output());
        while_holding();
        std::ofstream(release).close();
        if (p.wait(60s) != 0) throw std::runtime_error("events_client.py failed: " + p.output());
    }

    // Stops tcpdump (SIGINT: it flushes) and then wec serve (SIGTERM: outputs are flushed).
    // Returns how many packets tcpdump reported dropped by the kernel (the capture is then
    // incomplete through no fault of the code under test: callers record the session again).
    int stop() {
        std::this_thread::sleep_for(500ms); // let the last packets reach the capture file
        int dropped = 0;
        if (tcpdump_) {
            tcpdump_->signal(SIGINT);
            tcpdump_->wait(10s);
            auto out = tcpdump_->output();
            auto at = out.find(" packets dropped by kernel");
            if (at != std::string::npos) {
                auto start = out.rfind('\n', at);
                dropped = std::atoi(out.c_str() + (start == std::string::npos ? 0 : start + 1));
            }
        }
        if (serve_) {
            serve_->signal(SIGTERM);
            serve_->wait(20s);
        }
        return dropped;
    }

    const fs::path& pcap() const { return pcap_; }
    const fs::path& keytab() const { return keytab_; }
    const fs::path& dir() const { return dir_; }
    const testing::Krb5Realm& realm() const { return realm_; }
    int port() const { return port_; }
    std::string serve_log() const { return serve_ ? serve_->output() : std::string(); }

private:
    std::string wec_;
    fs::path dir_;
    testing::Krb5Realm realm_;
    fs::path keytab_, pcap_;
    std::string ccache_;
    int port_ = 0;
    std::unique_ptr<testing::Process> serve_, tcpdump_;
};

} // namespace wec::test

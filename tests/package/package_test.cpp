// The Debian package (`make package`): cpack runs on this build into a temporary directory, then
// the .deb is taken apart with dpkg-deb and each piece checked with the tool that consumes it:
// systemd-analyze (verify, security), the config loader, `wec sub apply`, logrotate, groff, sh and
// shellcheck. Installing it needs a machine of its own (it creates a user and a service); what the
// maintainer scripts do is checked by reading them.
#include "config/config.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <grp.h>
#include <gtest/gtest.h>
#include <map>
#include <pwd.h>
#include <regex>
#include <set>
#include <sstream>
#include <unistd.h>

namespace {

using namespace wec::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

class Package : public ::testing::Test {
protected:
    static inline std::unique_ptr<TempDir> dir_;
    static inline fs::path deb_;
    static inline std::string cpack_output_;

    static fs::path root() { return dir_->path() / "root"; }       // dpkg-deb -x
    static fs::path control() { return dir_->path() / "control"; } // dpkg-deb -e

    static void SetUpTestSuite() {
        dir_ = std::make_unique<TempDir>();
        // The package of this build tree, as `make package` makes it, but into a directory of
        // the test's own.
        auto r = run({WEC_CPACK, "--config", std::string(WEC_BINARY_DIR) + "/CPackConfig.cmake",
                      "-G", "DEB", "-B", (dir_->path() / "out").string()},
                     {}, 300s);
        cpack_output_ = r.output;
        if (r.exit_code != 0) return;
        for (const auto& e : fs::directory_iterator(dir_->path() / "out"))
            if (e.path().extension() == ".deb") deb_ = e.path();
        if (deb_.empty()) return;
        run({"dpkg-deb", "-x", deb_.string(), root().string()});
        run({"dpkg-deb", "-e", deb_.string(), control().string()});
    }
    static void TearDownTestSuite() { dir_.reset(); }

    void SetUp() override {
        ASSERT_FALSE(deb_.empty()) << "cpack made no .deb:\n" << cpack_output_;
    }

    static std::string field(const std::string& name) {
        auto r = run({"dpkg-deb", "-f", deb_.string(), name});
        EXPECT_EQ(r.exit_code, 0) << r.output;
        auto v = r.output;
        while (!v.empty() && (v.back() == '\n' || v.back() == ' '))
            v.pop_back();
        return v;
    }

    // The subcommands `wec --help` lists (each has a man page).
    static std::vector<std::string> subcommands() {
        auto r = run({WEC_EXE, "--help"});
        std::vector<std::string> out;
        bool in = false;
        for (const auto& line : lines_of(r.output)) {
            if (line == "Subcommands:") {
                in = true;
            } else if (in && line.rfind("  ", 0) == 0) {
                out.push_back(line.substr(2, line.find(' ', 2) - 2));
            } else if (in) {
                break;
            }
        }
        return out;
    }
};

TEST_F(Package, ContentsListEveryPieceOwnedByRoot) {
    auto r = run({"dpkg-deb", "--contents", deb_.string()});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::map<std::string, std::string> entries; // path -> "mode owner"
    for (const auto& line : lines_of(r.output)) {
        std::istringstream in(line);
        std::string mode, owner, size, date, time, path;
        in >> mode >> owner >> size >> date >> time >> path;
        entries[path] = mode + " " + owner;
        EXPECT_EQ(owner, "root/root") << line;
    }
    std::vector<std::string> expected = {
        "./usr/bin/wec",
        "./usr/share/bash-completion/completions/wec",
        "./usr/share/zsh/vendor-completions/_wec",
        "./usr/share/fish/vendor_completions.d/wec.fish",
        "./lib/systemd/system/wec.service",
        "./etc/wec/wec.toml",
        "./etc/logrotate.d/wec",
        "./usr/share/man/man1/wec.1.gz",
        "./usr/share/doc/wec/install.md",
        "./usr/share/doc/wec/examples/subscriptions/security.toml",
    };
    auto commands = subcommands();
    ASSERT_GE(commands.size(), 9u);
    for (const auto& c : commands)
        expected.push_back("./usr/share/man/man1/wec-" + c + ".1.gz");
    for (const auto& path : expected)
        EXPECT_TRUE(entries.count(path)) << path << " missing from the package:\n" << r.output;
    EXPECT_EQ(entries["./usr/bin/wec"], "-rwxr-xr-x root/root");
    EXPECT_EQ(entries["./etc/wec/wec.toml"], "-rw-r--r-- root/root"); // postinst: root:wec 0640
    // Nothing of a developer's install prefix leaked in.
    for (const auto& [path, mode] : entries)
        EXPECT_EQ(path.find("/usr/local"), std::string::npos) << path;
}

TEST_F(Package, ControlFields) {
    EXPECT_EQ(field("Package"), "wec");
    EXPECT_EQ(field("Version"), WEC_VERSION_STRING);
    auto arch = run({"dpkg", "--print-architecture"}).output;
    arch.erase(arch.find_last_not_of("\n") + 1);
    EXPECT_EQ(field("Architecture"), arch);
    EXPECT_EQ(field("Section"), "admin");
    EXPECT_EQ(field("Priority"), "optional");
    EXPECT_NE(field("Maintainer").find('<'), std::string::npos) << field("Maintainer");
    auto description = field("Description");
    EXPECT_EQ(description.rfind("Windows Event Forwarding collector and toolkit\n", 0), 0u)
        << description;
    EXPECT_NE(description.find("wec.service"), std::string::npos) << description;
    // Depends: adduser (postinst), what dpkg-shlibdeps found in the binary, with versions, and the
    // libraries wec opens when first used (dlopen: kafka output, stores, libevtx).
    auto depends = field("Depends");
    for (const char* dep : {"adduser", "libc6 (>= ", "libstdc++6 (>= ", "libssl3 (>= ",
                            "libkrb5-3 (>= ", "libgssapi-krb5-2 (>= ", "libsqlite3-0 (>= 3.20.0)",
                            "libpq5 (>= 12)", "librdkafka1 (>= 1.6.0)", "libevtx1"})
        EXPECT_NE(depends.find(dep), std::string::npos) << dep << " not in Depends: " << depends;
    EXPECT_NE(field("Recommends").find("logrotate"), std::string::npos);
}

TEST_F(Package, PackagedBinaryRuns) {
    auto r = run({(root() / "usr/bin/wec").string(), "--version"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, std::string("wec ") + WEC_VERSION_STRING + "\n");
    // Stripped (CPACK_STRIP_FILES): no symbol table left.
    auto nm = run({"nm", (root() / "usr/bin/wec").string()});
    EXPECT_NE(nm.output.find("no symbols"), std::string::npos) << nm.output.substr(0, 200);
}

TEST_F(Package, ConffilesAndMaintainerScripts) {
    auto conffiles = lines_of(slurp(control() / "conffiles"));
    std::set<std::string> got(conffiles.begin(), conffiles.end());
    EXPECT_EQ(got, (std::set<std::string>{"/etc/wec/wec.toml", "/etc/logrotate.d/wec"}));
    for (const char* script : {"postinst", "prerm", "postrm"}) {
        auto path = control() / script;
        ASSERT_TRUE(fs::exists(path)) << script;
        auto perms = fs::status(path).permissions();
        EXPECT_EQ(perms & fs::perms::all, fs::perms(0755)) << script;
        auto sh = run({"sh", "-n", path.string()});
        EXPECT_EQ(sh.exit_code, 0) << script << ": " << sh.output;
        auto check = run({"shellcheck", "--shell=sh", path.string()});
        EXPECT_EQ(check.exit_code, 0) << script << ": " << check.output;
    }
    auto postinst = slurp(control() / "postinst");
    EXPECT_NE(postinst.find("adduser --quiet --system --group --home /var/lib/wec"),
              std::string::npos);
    EXPECT_NE(postinst.find("chown root:wec /etc/wec"), std::string::npos);
    EXPECT_NE(postinst.find("systemctl --system daemon-reload"), std::string::npos);
    EXPECT_NE(slurp(control() / "prerm").find("systemctl stop wec.service"), std::string::npos);
}

// The unit as systemd reads it: every required setting, and nothing systemd would ignore.
TEST_F(Package, UnitHasTheRequiredSettings) {
    auto text = slurp(root() / "lib/systemd/system/wec.service");
    ASSERT_FALSE(text.empty());
    // A small parser of our own: [Section] then Key=Value lines (repeatable keys accumulate).
    std::map<std::string, std::vector<std::string>> keys; // "Section.Key" -> values
    std::string section;
    for (const auto& raw : lines_of(text)) {
        auto line = raw.substr(0, raw.find_last_not_of(" \t") + 1);
        if (line.empty() || line[0] == '#' || line[0] == ';') continue;
        if (line.front() == '[') {
            section = line.substr(1, line.size() - 2);
            continue;
        }
        auto eq = line.find('=');
        ASSERT_NE(eq, std::string::npos) << "not Key=Value: " << line;
        keys[section + "." + line.substr(0, eq)].push_back(line.substr(eq + 1));
    }
    const std::vector<std::pair<std::string, std::string>> required = {
        {"Service.Type", "notify"},
        {"Service.User", "wec"},
        {"Service.Group", "wec"},
        {"Service.ExecStart", "/usr/bin/wec serve --config /etc/wec/wec.toml"},
        {"Service.ExecReload", "/bin/kill -HUP $MAINPID"},
        {"Service.Restart", "on-failure"},
        {"Service.StateDirectory", "wec"},
        {"Service.LogsDirectory", "wec"},
        {"Service.ConfigurationDirectory", "wec"},
        {"Service.ProtectSystem", "strict"},
        {"Service.ProtectHome", "yes"},
        {"Service.PrivateTmp", "yes"},
        {"Service.NoNewPrivileges", "yes"},
        {"Service.CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"},
        {"Service.AmbientCapabilities", "CAP_NET_BIND_SERVICE"},
        {"Service.LimitNOFILE", "1048576"},
        {"Service.RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
        {"Service.SystemCallFilter", "@system-service"},
        {"Install.WantedBy", "multi-user.target"},
    };
    for (const auto& [key, value] : required) {
        const auto& values = keys[key];
        EXPECT_NE(std::find(values.begin(), values.end(), value), values.end())
            << key << "=" << value << " missing (has: " << ::testing::PrintToString(values) << ")";
    }
    // Set once only (a second line would override or extend the first).
    for (const char* key : {"Service.Type", "Service.User", "Service.ExecStart",
                            "Service.CapabilityBoundingSet", "Service.AmbientCapabilities"})
        EXPECT_EQ(keys[key].size(), 1u) << key;
}

TEST_F(Package, SystemdAnalyzeVerifiesTheUnit) {
    auto which = run({"sh", "-c", "command -v systemd-analyze"});
    ASSERT_EQ(which.exit_code, 0)
        << "systemd-analyze is missing (Debian package systemd, scripts/install-deps.sh): the "
           "unit was checked only by UnitHasTheRequiredSettings";
    // systemd-analyze checks that ExecStart= is executable and that man: pages in Documentation=
    // exist: point both at the package's own files (the binary and the man pages, not installed
    // on this machine). Nothing else of the unit changes.
    auto unit = slurp(root() / "lib/systemd/system/wec.service");
    auto bin = (root() / "usr/bin/wec").string();
    auto at = unit.find("ExecStart=/usr/bin/wec ");
    ASSERT_NE(at, std::string::npos);
    unit.replace(at + 10, 12, bin);
    auto copy = dir_->path() / "verify" / "wec.service";
    fs::create_directories(copy.parent_path());
    std::ofstream(copy) << unit;
    std::map<std::string, std::string> env{{"MANPATH", (root() / "usr/share/man").string()}};
    auto verify = run({"systemd-analyze", "verify", copy.string()}, env);
    std::cout << "systemd-analyze verify: exit " << verify.exit_code << ", output: '"
              << verify.output << "'\n";
    EXPECT_EQ(verify.exit_code, 0) << verify.output;
    // Warnings (unknown keys, unparsable values) do not change the exit code: none allowed.
    EXPECT_EQ(verify.output, "");

    // The hardening as systemd scores it (0 = fully confined, 10 = none); 2.0 is "OK".
    auto security = run({"systemd-analyze", "security", "--offline=yes", "--threshold=20",
                         "--no-pager", copy.string()},
                        env);
    auto pos = security.output.find("Overall exposure level");
    ASSERT_NE(pos, std::string::npos) << security.output;
    std::cout << security.output.substr(pos) << "\n";
    EXPECT_EQ(security.exit_code, 0) << security.output.substr(pos);
}

TEST_F(Package, ConfigFileIsTheServiceLayout) {
    auto cfg = wec::config::load_file((root() / "etc/wec/wec.toml").string());
    EXPECT_EQ(cfg.db, "sqlite:/var/lib/wec/wec.db");
    EXPECT_EQ(cfg.replay_cache, "file2:/var/lib/wec/rcache");
    ASSERT_EQ(cfg.listeners.size(), 1u);
    EXPECT_EQ(cfg.listeners[0].address, "0.0.0.0:5985");
    EXPECT_EQ(cfg.listeners[0].auth, wec::config::AuthKind::Kerberos);
    EXPECT_EQ(cfg.listeners[0].keytab, "/etc/wec/wec.keytab");
    EXPECT_TRUE(cfg.hostname.empty()); // this machine's FQDN
}

TEST_F(Package, ExampleSubscriptionWritesUnderVarLogWec) {
    auto file = root() / "usr/share/doc/wec/examples/subscriptions/security.toml";
    auto text = slurp(file);
    EXPECT_NE(text.find("path = \"/var/log/wec/{subscription}/{client}.json\""), std::string::npos)
        << text;
    TempDir db;
    auto r = run({WEC_EXE, "sub", "apply", file.string(), "--db",
                  "sqlite:" + (db.path() / "wec.db").string()});
    EXPECT_EQ(r.exit_code, 0) << r.output;
}

// logrotate run for real on the packaged file, its /var/log/wec moved to a temporary directory.
TEST_F(Package, LogrotateRotatesEventFiles) {
    auto conf = slurp(root() / "etc/logrotate.d/wec");
    ASSERT_NE(conf.find("su wec wec"), std::string::npos);
    ASSERT_NE(conf.find("systemctl reload wec.service"), std::string::npos);
    TempDir work;
    auto logs = work.path() / "log";
    conf = std::regex_replace(conf, std::regex("/var/log/wec"), logs.string());
    // The wec user does not exist here: rotate as whoever runs the test.
    std::string su;
    if (geteuid() == 0) {
        const passwd* pw = getpwuid(geteuid());
        const group* gr = getgrgid(getegid());
        ASSERT_TRUE(pw && gr);
        su = std::string("su ") + pw->pw_name + " " + gr->gr_name;
    }
    conf = std::regex_replace(conf, std::regex("su wec wec"), su);
    std::ofstream(work.path() / "wec.conf") << conf;
    for (const char* f : {"a.json", "security/host1.json", "ecs/2024-03-14.ndjson",
                          "security/2024-03-14/host2.xml", "a.json.1"}) {
        fs::create_directories((logs / f).parent_path());
        std::ofstream(logs / f) << "event\n";
    }
    auto r = run({"logrotate", "--force", "--verbose", "--state", (work.path() / "state").string(),
                  (work.path() / "wec.conf").string()});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output.find("error"), std::string::npos) << r.output;
    for (const char* f : {"a.json", "security/host1.json", "ecs/2024-03-14.ndjson",
                          "security/2024-03-14/host2.xml"}) {
        EXPECT_FALSE(fs::exists(logs / f)) << f << " not rotated (nocreate: wec makes it anew)";
        EXPECT_TRUE(fs::exists(logs / (std::string(f) + ".1"))) << f << ".1\n" << r.output;
    }
    // The previous generation moved on, compressed now (delaycompress).
    EXPECT_TRUE(fs::exists(logs / "a.json.2.gz")) << r.output;
}

TEST_F(Package, ManPagesRenderWithoutWarnings) {
    auto pages = root() / "usr/share/man/man1";
    int count = 0;
    for (const auto& e : fs::directory_iterator(pages)) {
        ++count;
        auto name = e.path().filename().string();
        auto r =
            run({"sh", "-c", "zcat '" + e.path().string() + "' | groff -man -ww -z -Tutf8 2>&1"});
        EXPECT_EQ(r.exit_code, 0) << name;
        EXPECT_EQ(r.output, "") << name;
    }
    EXPECT_EQ(count, static_cast<int>(subcommands().size()) + 1);
    auto serve = run({"sh", "-c",
                      "zcat '" + (pages / "wec-serve.1.gz").string() +
                          "' | groff -man -Tascii -P-c -P-b -P-u 2>&1"});
    // groff justifies lines with extra spaces: compare with runs of blanks collapsed.
    std::string flat;
    for (char ch : serve.output)
        if (!(ch == ' ' && !flat.empty() && flat.back() == ' ')) flat += ch;
    for (const char* text : {"wec-serve - Run the collector", "--listen", "--proxy-protocol",
                             "NOTIFY_SOCKET", "SIGHUP", "/etc/wec/wec.toml"})
        EXPECT_NE(flat.find(text), std::string::npos) << text << "\n" << serve.output;
    auto top = run(
        {"sh", "-c",
         "zcat '" + (pages / "wec.1.gz").string() + "' | groff -man -Tascii -P-c -P-b -P-u 2>&1"});
    for (const auto& c : subcommands())
        EXPECT_NE(top.output.find("wec-" + c + "(1)"), std::string::npos) << c;
}

} // namespace

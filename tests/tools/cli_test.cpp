// The `wec` binary as scripts see it: command tree, exit codes, completions, the sldc filter.
#include "common/files.hpp"
#include "support/postgres_server.hpp"
#include "support/temp_dir.hpp"
#include "wsman/wsman.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace {

struct Result {
    int exit_code = -1;
    std::string out; // stdout and stderr, merged
};

// Runs `wec <args>` through the shell (args are trusted test literals); `env`: "NAME=value ..."
// assignments for this command only.
Result wec(const std::string& args, const std::string& env = "") {
    std::string cmd = env + " '" + WEC_EXE + "' " + args + " 2>&1";
    Result r;
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

std::string data(const std::string& name) {
    return std::string(WEC_TEST_DATA) + "/" + name;
}

TEST(Cli, HelpListsEverySubcommand) {
    auto r = wec("--help");
    EXPECT_EQ(r.exit_code, 0);
    for (const char* sub :
         {"serve", "decode", "replay", "sub", "status", "db", "pki", "sldc", "completion"})
        EXPECT_NE(r.out.find(sub), std::string::npos) << sub << " missing from:\n" << r.out;
}

TEST(Cli, VersionPrintsProjectVersion) {
    auto r = wec("--version");
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("wec " WEC_VERSION_STRING), std::string::npos) << r.out;
}

TEST(Cli, NoSubcommandPrintsHelpAndExitsTwo) {
    auto r = wec("");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << r.out;
}

TEST(Cli, UnknownOptionIsAUsageError) {
    auto r = wec("sldc compress --no-such-flag");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.out.find("no-such-flag"), std::string::npos) << r.out;
}

TEST(Cli, SubcommandGroupsWithoutASubcommandAreUsageErrors) {
    for (const char* sub : {"sub", "sldc", "pki", "db"}) {
        auto r = wec(sub);
        EXPECT_EQ(r.exit_code, 2) << sub;
        EXPECT_NE(r.out.find("subcommand"), std::string::npos) << r.out;
    }
}

TEST(Cli, ServeWithAMissingConfigFileExitsTwoNamingIt) {
    auto r = wec("serve --config /nonexistent/wec.toml");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.out.find("/nonexistent/wec.toml"), std::string::npos) << r.out;
}

TEST(Cli, ServeWithABadListenAddressExitsTwo) {
    wec::testing::TempDir tmp;
    auto r = wec("serve --listen nowhere --db sqlite:" + tmp.file("wec.db"));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.out.find("nowhere"), std::string::npos) << r.out;
}

// Issue #15: librdkafka, libpq (and GnuTLS, LDAP, SASL... that it pulls in), libsqlite3 and libevtx
// are opened by the kafka output, the stores and the libevtx EVTX reader when first used, not by
// every command at start-up. The dynamic loader's trace (LD_DEBUG=files) lists every file it opens,
// at start-up ("needed by") and by dlopen ("dynamically loaded by").
TEST(Cli, CommandsLoadOnlyTheLibrariesTheyUse) {
    wec::testing::TempDir tmp;
    const std::vector<std::string> on_demand = {"librdkafka", "libpq",   "libgnutls", "libldap",
                                                "libsasl2",   "libevtx", "libsqlite3"};
    struct Case {
        std::string args;
        int exit_code;
        std::vector<std::string> loaded;
    };
    const std::vector<Case> cases = {
        {"--version", 0, {}},
        {"sldc decompress '" + data("sldc/heartbeat.sldc") + "' -o " + tmp.file("out"), 0, {}},
        {"sub list --db sqlite:" + tmp.file("wec.db"), 0, {"libsqlite3"}},
        // Nothing listens on port 1: the store fails while running (3), after loading libpq.
        {"sub list --db postgres://wec@127.0.0.1:1/wec",
         3,
         {"libpq", "libgnutls", "libldap", "libsasl2"}},
    };
    for (const auto& c : cases) {
        auto r = wec(c.args, "LD_DEBUG=files");
        EXPECT_EQ(r.exit_code, c.exit_code) << c.args << ": " << r.out;
        EXPECT_NE(r.out.find("file=libstdc++.so.6"), std::string::npos) << "no trace: " << r.out;
        for (const auto& library : on_demand) {
            bool expected = std::find(c.loaded.begin(), c.loaded.end(), library) != c.loaded.end();
            EXPECT_EQ(r.out.find("file=" + library) != std::string::npos, expected)
                << c.args << (expected ? " did not load " : " loaded ") << library;
        }
    }
}

// `wec sub` on a store in a temp dir: the scripting contract of issue #3.
struct SubCommands : ::testing::Test {
    wec::testing::TempDir tmp;
    std::filesystem::path dir = tmp.path();
    std::string db = " --db sqlite:" + (dir / "wec.db").string();
    std::string write(const std::string& name, const std::string& text) {
        auto p = dir / name;
        wec::write_file(p.string(), wec::as_bytes(text));
        return p.string();
    }
};

TEST_F(SubCommands, ApplyListShowDisableRemove) {
    auto file = write("security.toml", R"(name = "security"
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
[[outputs]]
driver = "files"
path = "/var/log/wec/{client}.json"
format = "json"
)");
    auto r = wec("sub apply '" + file + "'" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("created security"), std::string::npos) << r.out;
    r = wec("sub apply '" + file + "'" + db);
    EXPECT_NE(r.out.find("unchanged security"), std::string::npos) << r.out;

    r = wec("sub list --json" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("\"name\": \"security\""), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("\"enabled\": true"), std::string::npos) << r.out;

    r = wec("sub show security" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("name = \"security\""), std::string::npos) << r.out;

    EXPECT_EQ(wec("sub disable security" + db).exit_code, 0);
    r = wec("sub list --json" + db);
    EXPECT_NE(r.out.find("\"enabled\": false"), std::string::npos) << r.out;

    EXPECT_EQ(wec("sub rm security" + db).exit_code, 0);
    r = wec("sub show security" + db);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.out.find("no subscription named 'security'"), std::string::npos) << r.out;
}

TEST_F(SubCommands, InvalidDefinitionIsRejectedWithFileAndLine) {
    auto file =
        write("bad.toml", "name = \"x\"\nquery = '<QueryList/>'\nheartbeat_interval = \"soon\"\n");
    auto r = wec("sub apply '" + file + "'" + db);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.out.find(file + ":3"), std::string::npos) << r.out;
    r = wec("sub list" + db);
    EXPECT_NE(r.out.find("no subscriptions"), std::string::npos) << r.out;
}

// An unknown output format is refused with file:line:column before anything is stored; the
// formats of issue #10 are accepted.
TEST_F(SubCommands, ApplyRefusesAnUnknownOutputFormat) {
    const std::string head = "name = \"s\"\n"
                             "query = '<QueryList><Query Id=\"0\"><Select Path=\"Security\">*"
                             "</Select></Query></QueryList>'\n"
                             "[[outputs]]\ndriver = \"files\"\npath = \"/var/log/wec/x\"\n";
    auto file = write("bad.toml", head + "format = \"gelf\"\n");
    auto r = wec("sub apply '" + file + "'" + db);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find(file + ":6:10: outputs.format: unknown format 'gelf' (known: raw, json, "
                                "raw_json, nxlog, ecs)"),
              std::string::npos)
        << r.out;
    r = wec("sub list" + db);
    EXPECT_NE(r.out.find("no subscriptions"), std::string::npos) << r.out;

    for (const char* format : {"raw_json", "nxlog", "ecs"}) {
        file = write(std::string(format) + ".toml", head + "format = \"" + format + "\"\n");
        r = wec("sub apply '" + file + "'" + db);
        EXPECT_EQ(r.exit_code, 0) << format << ": " << r.out;
        r = wec("sub show s" + db);
        EXPECT_NE(r.out.find(std::string("format = \"") + format + "\""), std::string::npos)
            << r.out;
    }
}

TEST_F(SubCommands, StatusOfAnEmptyStore) {
    auto r = wec("status --json" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out, "[]\n");
}

// A row whose definition this wec cannot read (written directly, as damage or a newer wec
// would): `wec status` lists it with its error next to the others, and exits 1 (something to
// report) instead of failing.
TEST_F(SubCommands, StatusListsAnUnreadableSubscriptionWithItsError) {
    auto file = write("security.toml", R"(name = "security"
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
[[outputs]]
driver = "files"
path = "/var/log/wec/{client}.json"
)");
    ASSERT_EQ(wec("sub apply '" + file + "'" + db).exit_code, 0);
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open((dir / "wec.db").c_str(), &raw), SQLITE_OK);
    int rc = sqlite3_exec(raw,
                          "INSERT INTO subscriptions (uuid, name, enabled, definition, updated_at) "
                          "VALUES ('0F1E2D3C-4B5A-4978-8796-A5B4C3D2E1F0', 'application', 1, "
                          "'name = [garbage', 0)",
                          nullptr, nullptr, nullptr);
    sqlite3_close(raw);
    ASSERT_EQ(rc, SQLITE_OK);

    auto r = wec("status" + db);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("application: NOT SERVED, its stored definition cannot be read: "),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("security: 0 active, 0 alive, 0 dead"), std::string::npos) << r.out;

    r = wec("status --json" + db);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    auto json = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_TRUE(json.is_array()) << r.out;
    ASSERT_EQ(json.size(), 2u) << r.out;
    EXPECT_EQ(json[0]["subscription"], "application"); // ordered by name
    EXPECT_EQ(json[0]["uuid"], "0F1E2D3C-4B5A-4978-8796-A5B4C3D2E1F0");
    EXPECT_EQ(json[0]["enabled"], true);
    ASSERT_TRUE(json[0]["error"].is_string());
    EXPECT_NE(json[0]["error"].get<std::string>().find("subscription 'application'"),
              std::string::npos);
    EXPECT_FALSE(json[0].contains("hosts"));
    EXPECT_EQ(json[1]["subscription"], "security");
    EXPECT_FALSE(json[1].contains("error"));
    EXPECT_EQ(json[1]["dead"], 0);

    // Removing it (`wec sub rm` does not need to read the definition) clears the report.
    EXPECT_EQ(wec("sub rm application" + db).exit_code, 0);
    EXPECT_EQ(wec("status" + db).exit_code, 0);
}

// Windows subscription XML: import -> export -> import stores the same subscription, and
// nothing is stored when one file of the batch cannot be imported.
TEST_F(SubCommands, ImportExportImportKeepsTheSameSubscription) {
    auto logon = data("subscriptions/logon-custom.xml");
    auto utf16 = data("subscriptions/wecutil-export-utf16le.xml");
    auto refused = data("subscriptions/collector-initiated.xml");

    auto r = wec("sub import '" + logon + "' '" + refused + "'" + db);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("collector-initiated.xml:3:3: SubscriptionType: CollectorInitiated is "
                         "not supported"),
              std::string::npos)
        << r.out;
    r = wec("sub list --json" + db);
    EXPECT_EQ(nlohmann::json::parse(r.out).size(), 0u) << r.out; // nothing stored

    r = wec("sub import '" + logon + "' '" + utf16 +
            "' --dry-run --db sqlite:" + (dir / "dry.db").string());
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("would import Logon-Logoff"), std::string::npos) << r.out;
    EXPECT_FALSE(std::filesystem::exists(dir / "dry.db")); // --dry-run opens no store

    r = wec("sub import '" + logon + "' '" + utf16 + "' --json" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto report = nlohmann::json::parse(r.out);
    ASSERT_EQ(report.size(), 2u) << r.out;
    EXPECT_EQ(report[0]["name"], "Logon-Logoff");
    EXPECT_EQ(report[0]["change"], "created");
    EXPECT_EQ(report[0]["warnings"][0]["element"], "LogFile");
    EXPECT_EQ(report[0]["warnings"][0]["line"], 37);
    EXPECT_EQ(report[1]["name"], "Servers Sécurité");
    auto version = report[0]["version"].get<std::string>();

    // Milliseconds in the XML, seconds in the store.
    r = wec("sub show Logon-Logoff" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("max_latency = 300\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("heartbeat_interval = 1800\n"), std::string::npos) << r.out;

    auto exported = (dir / "exported").string();
    r = wec("sub export --all --format xml -o '" + exported + "'" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto again = (dir / "exported" / "Logon-Logoff.xml").string();
    auto xml = wec::read_file(again);
    EXPECT_NE(std::string(wec::as_chars(xml)).find("<LogFile>WEC-Logon</LogFile>"),
              std::string::npos);
    r = wec("sub import '" + again + "' '" + (dir / "exported" / "Servers_Sécurité.xml").string() +
            "' --json" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    report = nlohmann::json::parse(r.out);
    ASSERT_EQ(report.size(), 2u) << r.out;
    EXPECT_EQ(report[0]["change"], "unchanged");
    EXPECT_EQ(report[0]["version"], version);
    EXPECT_EQ(report[1]["change"], "unchanged");

    // One subscription to standard output; TOML too.
    r = wec("sub export Logon-Logoff --as wecutil --no-type" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out.find("SubscriptionType"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("<MaxLatencyTime>300000</MaxLatencyTime>"), std::string::npos) << r.out;
    r = wec("sub export nope --format xml" + db);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_EQ(wec("sub export --format xml" + db).exit_code, 2); // neither NAME nor --all

    // apply points XML at import.
    r = wec("sub apply '" + logon + "'" + db);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.out.find("use `wec sub import"), std::string::npos) << r.out;
}

TEST_F(SubCommands, ConvertBetweenXmlAndToml) {
    auto toml = (dir / "minbandwidth.toml").string();
    auto r = wec("sub convert '" + data("subscriptions/minbandwidth.xml") + "' --to toml -o '" +
                 toml + "'");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    // Warnings on standard error, and as comments at the top of the definition.
    EXPECT_NE(r.out.find("warning: 9:3: Delivery: MaxItems 50, MaxLatencyTime 60000 ms ignored"),
              std::string::npos)
        << r.out;
    auto text = std::string(wec::as_chars(wec::read_file(toml)));
    EXPECT_EQ(text.rfind("# Converted from ", 0), 0u) << text;
    EXPECT_NE(text.find("#   9:3: Delivery:"), std::string::npos) << text;
    EXPECT_NE(text.find("max_latency = 21600\n"), std::string::npos) << text;
    EXPECT_FALSE(std::filesystem::exists(dir / "wec.db")); // no store

    // The TOML applies as it is, and converts back to XML.
    r = wec("sub apply '" + toml + "'" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    r = wec("sub convert '" + toml + "' --to xml");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("<MaxLatencyTime>21600000</MaxLatencyTime>"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("<TransportPort>5985</TransportPort>"), std::string::npos) << r.out;

    r = wec("sub convert '" + data("subscriptions/too-many-clauses.xml") + "' --to toml");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.out.find("too-many-clauses.xml:11:9: Query: Select #2 (Path 'Security') has 23 "
                         "clauses"),
              std::string::npos)
        << r.out;
    EXPECT_NE(wec("sub convert '" + toml + "' --to json").exit_code, 0);
}

// `wec db` on SQLite: migrate creates the schema, status counts what `wec sub` stored.
TEST_F(SubCommands, DbMigrateAndStatus) {
    auto r = wec("db migrate" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("schema version 2, up to date"), std::string::npos) << r.out;
    auto file = write("security.toml", R"(name = "security"
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
[[outputs]]
driver = "files"
path = "/var/log/wec/{client}.json"
)");
    ASSERT_EQ(wec("sub apply '" + file + "'" + db).exit_code, 0);
    r = wec("db status" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("subscriptions      1\n"), std::string::npos) << r.out;
    r = wec("db status --json" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto json = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_TRUE(json.is_object()) << r.out;
    EXPECT_EQ(json["store"], "sqlite:" + (dir / "wec.db").string());
    EXPECT_EQ(json["schema_version"], 2);
    EXPECT_EQ(json["subscriptions"], 1);
    EXPECT_EQ(json["bookmarks"], 0);
    EXPECT_EQ(json["hosts"], 0);
}

// The same commands against PostgreSQL (a server started by the test): `wec sub`, `wec status`
// and `wec db` work unchanged with a postgres:// URL; with the server gone `wec db status` is a
// run-time failure (3) naming the database without the password.
TEST_F(SubCommands, SubStatusAndDbOnPostgres) {
    wec::testing::PostgresServer server;
    const auto url = server.url(server.create_database());
    const auto pg = " --db " + url;
    auto r = wec("db migrate" + pg);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find(url + ": schema version 2, up to date"), std::string::npos) << r.out;

    auto file = write("security.toml", R"(name = "security"
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
[[outputs]]
driver = "files"
path = "/var/log/wec/{client}.json"
)");
    r = wec("sub apply '" + file + "'" + pg);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("created security"), std::string::npos) << r.out;
    r = wec("sub apply '" + file + "'" + pg);
    EXPECT_NE(r.out.find("unchanged security"), std::string::npos) << r.out;
    r = wec("sub list --json" + pg);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto list = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_TRUE(list.is_array()) << r.out;
    ASSERT_EQ(list.size(), 1u) << r.out;
    EXPECT_EQ(list[0]["name"], "security");
    EXPECT_EQ(list[0]["enabled"], true);
    r = wec("status --json" + pg);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("\"subscription\": \"security\""), std::string::npos) << r.out;
    r = wec("db status --json" + pg);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto status = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_TRUE(status.is_object()) << r.out;
    EXPECT_EQ(status["store"], url);
    EXPECT_EQ(status["subscriptions"], 1);
    EXPECT_EQ(status["revision"], 1);

    server.stop();
    const auto with_password =
        " --db postgres://postgres:s3cret@127.0.0.1:" + std::to_string(server.port()) + "/postgres";
    r = wec("db status" + with_password);
    EXPECT_EQ(r.exit_code, 3) << r.out;
    EXPECT_NE(r.out.find("127.0.0.1"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("s3cret"), std::string::npos) << r.out;
    // docs/exit-codes.md: a store that fails while the command runs is 3; a store URL or file
    // that cannot be used as given is 2.
    for (const char* command : {"sub list", "sub show security", "status", "db migrate"}) {
        r = wec(std::string(command) + with_password);
        EXPECT_EQ(r.exit_code, 3) << command << ": " << r.out;
        EXPECT_EQ(r.out.find("s3cret"), std::string::npos) << r.out;
    }
    r = wec("sub list --db bogus://x");
    EXPECT_EQ(r.exit_code, 2) << r.out;
    r = wec("status --db /proc/nonexistent/wec.db");
    EXPECT_EQ(r.exit_code, 2) << r.out;
    for (const char* command : {"db migrate", "db status"}) {
        r = wec(std::string(command) + " --db bogus://x");
        EXPECT_EQ(r.exit_code, 2) << command << ": " << r.out;
        r = wec(std::string(command) + " --db /proc/nonexistent/wec.db");
        EXPECT_EQ(r.exit_code, 2) << command << ": " << r.out;
    }
}

// A library that cannot be opened when a command first needs it: a clear error naming the file and
// the package, and the exit code of an unusable store URL or output (2). The dynamic loader finds
// a file that is no library first (LD_LIBRARY_PATH).
TEST_F(SubCommands, PostgresStoreWithoutLibpqExitsTwoNamingTheLibrary) {
    write("libpq.so.5", "not a library\n");
    const std::string env = "LD_LIBRARY_PATH='" + dir.string() + "'";
    for (const char* command : {"sub list", "status", "db status"}) {
        auto r = wec(std::string(command) + " --db postgres://wec:s3cret@127.0.0.1:1/wec", env);
        EXPECT_EQ(r.exit_code, 2) << command << ": " << r.out;
        EXPECT_NE(r.out.find("cannot load libpq.so.5 (install the package libpq5)"),
                  std::string::npos)
            << command << ": " << r.out;
        EXPECT_EQ(r.out.find("s3cret"), std::string::npos) << r.out;
    }
}

TEST_F(SubCommands, KafkaOutputWithoutLibrdkafkaExitsTwoNamingTheLibrary) {
    auto file = write("kafka.toml", R"(name = "k"
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
[[outputs]]
driver = "kafka"
brokers = "127.0.0.1:1"
topic = "wec"
)");
    auto r = wec("sub apply '" + file + "'" + db); // librdkafka checks the settings
    ASSERT_EQ(r.exit_code, 0) << r.out;
    write("librdkafka.so.1", "not a library\n");
    const std::string env = "LD_LIBRARY_PATH='" + dir.string() + "'";
    r = wec("sub apply '" + file + "'" + db, env);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("driver 'kafka': cannot load librdkafka.so.1 (install the package "
                         "librdkafka1)"),
              std::string::npos)
        << r.out;
    // The collector does not start.
    r = wec("serve --listen 127.0.0.1:0" + db, env);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("cannot load librdkafka.so.1"), std::string::npos) << r.out;
}

TEST(Cli, CompletionFilesAreCurrent) {
    // completions/ is generated from the CLI definition; `make completions` refreshes it.
    const std::pair<const char*, const char*> files[] = {{"bash", "completions/wec.bash"},
                                                         {"zsh", "completions/_wec"},
                                                         {"fish", "completions/wec.fish"}};
    for (auto [shell, file] : files) {
        auto r = wec(std::string("completion ") + shell);
        ASSERT_EQ(r.exit_code, 0) << r.out;
        auto committed = wec::read_file(std::string(WEC_SOURCE_DIR) + "/" + file);
        EXPECT_EQ(r.out, std::string(wec::as_chars(committed)))
            << file << " is stale: run `make completions`";
    }
}

TEST(Cli, BashCompletionIsValidAndCompletesNestedCommands) {
    std::string script = std::string(WEC_SOURCE_DIR) + "/completions/wec.bash";
    std::string cmd =
        "bash -c 'source \"" + script +
        "\"; COMP_WORDS=(wec sldc de); COMP_CWORD=2; _wec; echo \"${COMPREPLY[*]}\"' 2>&1";
    std::FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    char buf[256] = {};
    std::string out;
    while (std::fgets(buf, sizeof buf, p))
        out += buf;
    EXPECT_EQ(::pclose(p), 0);
    EXPECT_EQ(out, "decompress\n");
}

std::string shell_output(const std::string& cmd) {
    std::FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return "popen failed";
    char buf[512] = {};
    std::string out;
    while (std::fgets(buf, sizeof buf, p))
        out += buf;
    const int rc = ::pclose(p);
    return rc == 0 ? out : out + "(exit status " + std::to_string(rc) + ")";
}

// The zsh script, loaded by compinit from completions/ and driven through a pseudo-terminal.
TEST(Cli, ZshCompletionCompletesCommandsOptionsAndValues) {
    const std::string run = "zsh -f '" + std::string(WEC_SOURCE_DIR) +
                            "/tests/tools/zsh_complete.zsh' '" + WEC_SOURCE_DIR + "/completions' ";
    EXPECT_EQ(shell_output(run + "'wec sldc de'"), "decompress\n");
    EXPECT_EQ(shell_output(run + "'wec sub '"),
              "apply\nconvert\ndisable\nenable\nexport\nimport\nlist\nnew\nrender\nrm\nshow\n"
              "validate\n");
    EXPECT_EQ(shell_output(run + "'wec serve --auth '"), "basic\nkerberos\nnegotiate\ntls\n");
    EXPECT_EQ(shell_output(run + "'wec decode --ev'"), "--event-format\n--events\n");
}

TEST(Cli, FishCompletionCompletesCommandsOptionsAndValues) {
    const std::string run = "fish --no-config -c 'source " + std::string(WEC_SOURCE_DIR) +
                            "/completions/wec.fish; complete -C\"$argv\"' ";
    auto first_words = [](const std::string& out) {
        std::string words;
        std::size_t at = 0;
        while (at < out.size()) {
            auto nl = out.find('\n', at);
            if (nl == std::string::npos) nl = out.size();
            words += out.substr(at, std::min(out.find('\t', at), nl) - at) + " ";
            at = nl + 1;
        }
        return words;
    };
    EXPECT_EQ(first_words(shell_output(run + "'wec sldc de'")), "decompress ");
    EXPECT_EQ(first_words(shell_output(run + "'wec serve --auth '")),
              "basic kerberos negotiate tls ");
    EXPECT_EQ(first_words(shell_output(run + "'wec decode --event-f'")), "--event-format ");
}

TEST(Cli, SldcDecompressesTheRealHeartbeat) {
    wec::testing::TempDir tmp;
    auto out = tmp.file("heartbeat.utf16");
    auto r = wec("sldc decompress '" + data("sldc/heartbeat.sldc") + "' -o '" + out + "'");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(wec::read_file(out), wec::read_file(data("sldc/heartbeat.utf16")));
}

TEST(Cli, SldcRoundTripsThroughPipes) {
    auto r = wec("sldc compress < '" + data("sldc/enumerate.utf16") + "' | '" + WEC_EXE +
                 "' sldc decompress | cmp - '" + data("sldc/enumerate.utf16") + "' && echo same");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("same"), std::string::npos) << r.out;
}

// --level fast: a greedy record, larger than the optimal parse's, that decompresses to the same
// bytes; a level that does not exist is a usage error naming the choices.
TEST(Cli, SldcCompressLevels) {
    wec::testing::TempDir tmp;
    const auto input = data("sldc/events.utf16");
    const auto best = tmp.file("best.sldc"), fast = tmp.file("fast.sldc"), out = tmp.file("out");
    auto r = wec("sldc compress '" + input + "' -o '" + best + "'");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    r = wec("sldc compress --level fast '" + input + "' -o '" + fast + "'");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_GT(wec::read_file(fast).size(), wec::read_file(best).size());
    r = wec("sldc decompress '" + fast + "' -o '" + out + "'");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(wec::read_file(out), wec::read_file(input));
    r = wec("sldc compress --level best '" + input + "' -o '" + out + "'");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(wec::read_file(out), wec::read_file(best)) << "best is the default";
    r = wec("sldc compress --level quick '" + input + "'");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.out.find("fast"), std::string::npos) << r.out;
}

TEST(Cli, SldcRejectsGarbageWithBitOffsetAndExitTwo) {
    auto r = wec("sldc decompress '" + data("sldc/heartbeat.utf16") + "'");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.out.find("bit"), std::string::npos) << r.out;
}

// `wec sub validate`: every problem listed, exit 0 / 1 / 2, JSON report.
TEST_F(SubCommands, ValidateListsEveryProblemWithItsExitCode) {
    std::string ors;
    for (int i = 1; i <= 30; ++i)
        ors += " or EventID=" + std::to_string(1000 + 3 * i);
    auto bad = write("bad.toml", "name = \"bad\"\nquery = '''\n<QueryList>\n  <Query Id=\"0\">\n"
                                 "    <Select Path=\"Security\">*[System[(EventID=1" +
                                     ors +
                                     ")]]</Select>\n"
                                     "    <Select Path=\"System\">*[System[contains(Provider, "
                                     "'x')]]</Select>\n"
                                     "    <Select Path=\"Sysmon\">*[EventData[1]]</Select>\n"
                                     "  </Query>\n</QueryList>\n'''\n");
    auto r = wec("sub validate '" + bad + "'");
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("Select #1 (Path 'Security') has 31 clauses, more than 22"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("error: query: line 4, column 36: Select #2 (Path 'System') XPath not "
                         "supported by Windows: function 'contains()'"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("line 5, column 39: Select #3 (Path 'Sysmon') XPath not supported"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("invalid (3 errors, 0 warnings)"), std::string::npos) << r.out;
    // The query is in the file as written: the file's line and column come first.
    EXPECT_NE(r.out.find("bad.toml:6:36: error: query: line 4, column 36: Select #2"),
              std::string::npos)
        << r.out;

    auto good = write("good.toml", "name = \"good\"\nchannels = [\"Security\"]\n"
                                   "xpath = \"*[System[EventID=4624]]\"\n");
    r = wec("sub validate '" + good + "'");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("good.toml: valid (0 warnings)"), std::string::npos) << r.out;
    // A valid and an invalid file: 1, both reported.
    r = wec("sub validate '" + good + "' '" + bad + "'");
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("good.toml: valid"), std::string::npos) << r.out;
    // Not TOML, or missing: 2.
    auto syntax = write("syntax.toml", "name = \n");
    r = wec("sub validate '" + syntax + "' '" + bad + "'");
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("syntax.toml: unreadable"), std::string::npos) << r.out;
    EXPECT_EQ(wec("sub validate '" + (dir / "none.toml").string() + "'").exit_code, 2);

    r = wec("sub validate --json '" + bad + "' '" + good + "' 2>/dev/null");
    ASSERT_EQ(r.exit_code, 1) << r.out;
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j.size(), 2u);
    EXPECT_FALSE(j[0]["valid"].get<bool>());
    ASSERT_EQ(j[0]["errors"].size(), 3u) << j.dump(2);
    EXPECT_EQ(j[0]["errors"][1]["rule"], "xpath");
    EXPECT_EQ(j[0]["errors"][1]["line"], 4);
    EXPECT_EQ(j[0]["errors"][1]["column"], 36);
    EXPECT_EQ(j[0]["errors"][1]["path"], "System");
    EXPECT_EQ(j[0]["errors"][1]["file_line"], 6);
    EXPECT_EQ(j[0]["errors"][1]["file_column"], 36);
    EXPECT_TRUE(j[1]["valid"].get<bool>());

    // Warnings alone keep exit 0.
    auto warn = write("warn.toml", "name = \"w\"\nchannels = [\"Security\", \"Microsoft-Windows-"
                                   "Sysmon\"]\nread_existing_events = true\n");
    r = wec("sub validate '" + warn + "'");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("warning: query: line 1, column 26: Select #1 (Path 'Security') "
                         "read_existing_events = true on 'Security'"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("Path 'Microsoft-Windows-Sysmon' has no '/'"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("valid (2 warnings)"), std::string::npos) << r.out;
}

// `--fix` writes a definition that validates, TOML and wecutil XML alike.
TEST_F(SubCommands, ValidateFixWritesADefinitionThatValidates) {
    std::string ors;
    for (int i = 0; i < 45; ++i)
        ors += (i ? " or EventID=" : "EventID=") + std::to_string(i < 20 ? 4700 + i : 5000 + 2 * i);
    auto big = write("big.toml", "name = \"big\"\nchannels = [\"Security\"]\nxpath = \"*[System[(" +
                                     ors + ")]]\"\n");
    EXPECT_EQ(wec("sub validate '" + big + "'").exit_code, 1);
    auto fixed = (dir / "fixed.toml").string();
    auto r = wec("sub validate '" + big + "' --fix -o '" + fixed + "'");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("fixed: Select #1 (Path 'Security'): 45 clauses rewritten as 2 Selects"),
              std::string::npos)
        << r.out;
    auto text = std::string(wec::as_chars(wec::read_file(fixed)));
    EXPECT_NE(text.find("(EventID&gt;=4700 and EventID&lt;=4719)"), std::string::npos) << text;
    r = wec("sub validate '" + fixed + "'");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(wec("sub apply '" + fixed + "'" + db).exit_code, 0);

    // wecutil XML: the fixed file is XML again, and wec imports it.
    auto xml = data("subscriptions/too-many-clauses.xml");
    EXPECT_EQ(wec("sub validate '" + xml + "'").exit_code, 1);
    r = wec("sub validate '" + xml + "' --fix 2>/dev/null");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out.rfind("<?xml", 0), 0u) << r.out;
    auto fixed_xml = write("fixed.xml", r.out);
    EXPECT_EQ(wec("sub validate '" + fixed_xml + "'").exit_code, 0);
    r = wec("sub import '" + fixed_xml + "'" + db);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    // Several files go to a directory.
    r = wec("sub validate '" + big + "' '" + xml + "' --fix -o '" + (dir / "out").string() + "'");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_TRUE(std::filesystem::exists(dir / "out" / "big.toml"));
    EXPECT_TRUE(std::filesystem::exists(dir / "out" / "too-many-clauses.xml"));
    EXPECT_EQ(wec("sub validate '" + big + "' '" + xml + "' --fix").exit_code, 2);
}

// apply and import refuse what validate calls an error, and print its warnings.
TEST_F(SubCommands, ApplyAndImportRunTheValidateChecks) {
    auto bad = write("bad.toml", "name = \"bad\"\nchannels = [\"Security\"]\n"
                                 "xpath = \"*[EventData[Data[starts-with(., 'x')]]]\"\n");
    auto r = wec("sub apply '" + bad + "'" + db);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("error: query: line 1, column 67: Select #1 (Path 'Security') XPath not "
                         "supported by Windows: function 'starts-with()'"),
              std::string::npos)
        << r.out;
    r = wec("sub list --json" + db);
    EXPECT_EQ(nlohmann::json::parse(r.out).size(), 0u) << r.out;
    // A query written as it is in the file: its position in the file comes first.
    auto literal = write("literal.toml", "name = \"l\"\nquery = '<QueryList><Query Id=\"0\">"
                                         "<Select Path=\"Security\">*[System[1]]</Select></Query>"
                                         "</QueryList>'\n");
    r = wec("sub apply '" + literal + "'" + db);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("literal.toml:2:68: error: query: line 1, column 59: Select #1"),
              std::string::npos)
        << r.out;

    auto flood = write("flood.toml", "name = \"flood\"\nchannels = [\"Security\"]\n"
                                     "read_existing_events = true\n");
    r = wec("sub apply '" + flood + "'" + db);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("wec sub apply: " + flood + ": warning: query:"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("created flood"), std::string::npos) << r.out;

    auto xml = write("bad.xml", R"(<?xml version="1.0" encoding="UTF-8"?>
<Subscription xmlns="http://schemas.microsoft.com/2006/03/windows/events/subscription">
  <SubscriptionId>bad-xml</SubscriptionId>
  <Query><![CDATA[<QueryList><Query Id="0"><Select Path="Security">*[System[EventID=1 or count(x)=1]]</Select></Query></QueryList>]]></Query>
</Subscription>
)");
    r = wec("sub import '" + xml + "'" + db);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("function 'count()'"), std::string::npos) << r.out;
    EXPECT_EQ(wec("sub show bad-xml" + db).exit_code, 2);
}

// `wec sub new` prints what validate and apply accept, as TOML or wecutil XML.
TEST_F(SubCommands, NewPrintsADefinitionValidateAndApplyAccept) {
    auto r = wec("sub new logons --channel Security --event-id 4624,4625,4634-4647 --level "
                 "0,information --provider Microsoft-Windows-Security-Auditing --content-format "
                 "rendered --mode normal --output 'files:/var/log/wec/{machine}.json'");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("# Subscription 'logons'"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("*[System[Provider[@Name='Microsoft-Windows-Security-Auditing'] and "
                         "(Level=0 or Level=4) and (EventID=4624 or EventID=4625 or "
                         "(EventID&gt;=4634 and EventID&lt;=4647))]]"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("content_format = \"RenderedText\""), std::string::npos);
    EXPECT_NE(r.out.find("max_latency = 900\n"), std::string::npos);
    EXPECT_NE(r.out.find("max_elements = 5"), std::string::npos);
    EXPECT_NE(r.out.find("path = \"/var/log/wec/{machine}.json\""), std::string::npos);
    auto file = write("logons.toml", r.out);
    r = wec("sub validate '" + file + "'");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("valid (0 warnings)"), std::string::npos) << r.out;
    EXPECT_EQ(wec("sub apply '" + file + "'" + db).exit_code, 0);

    // A long ID list becomes several Selects on each channel, still valid.
    std::string ids;
    for (int i = 0; i < 60; ++i)
        ids += (i ? "," : "") + std::to_string(100 + 2 * i);
    r = wec("sub new many --channel Security --channel System --event-id " + ids);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto many = write("many.toml", r.out);
    EXPECT_EQ(wec("sub validate '" + many + "'").exit_code, 0);

    r = wec("sub new logons --event-id 4624 --as wecutil");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("<SubscriptionType>SourceInitiated</SubscriptionType>"), std::string::npos)
        << r.out;
    auto xml = write("logons.xml", r.out);
    EXPECT_EQ(wec("sub import --dry-run '" + xml + "'").exit_code, 0);

    EXPECT_EQ(wec("sub new x --event-id 5-1").exit_code, 2);
    EXPECT_EQ(wec("sub new x --output tcp:host:1").exit_code, 2);
    EXPECT_EQ(wec("sub new x --mode fast").exit_code, 2);
}

// `wec sub render`: the Subscribe envelope of `wec serve`, which the collector's parser reads back.
TEST_F(SubCommands, RenderIsParsedBackByTheCollectorsParser) {
    auto file = write("logons.toml", R"(name = "logons"
channels = ["Security"]
xpath = "*[System[EventID=4624 or EventID=4625]]"
content_format = "RenderedText"
heartbeat_interval = 600
max_latency = 120
max_elements = 7
)");
    ASSERT_EQ(wec("sub apply '" + file + "'" + db).exit_code, 0);
    auto listed = nlohmann::json::parse(wec("sub list --json" + db).out);
    auto uuid = listed[0]["uuid"].get<std::string>();
    auto version = listed[0]["version"].get<std::string>();

    auto r = wec("sub render logons --as wsman --hostname wec.example.org --client "
                 "'WKS01$@WINDOMAIN.LOCAL'" +
                 db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto msg = wec::wsman::parse(r.out);
    ASSERT_EQ(msg.action, wec::wsman::Action::Subscribe) << r.out;
    ASSERT_TRUE(msg.subscribe.has_value());
    const auto& s = *msg.subscribe;
    EXPECT_EQ(s.name, "logons");
    EXPECT_EQ(s.content_format, "RenderedText");
    EXPECT_EQ(s.notify_to, "http://wec.example.org:5985/wsman/subscriptions/" + uuid);
    EXPECT_EQ(s.identifier, version);
    EXPECT_EQ(s.heartbeats, "PT600.000S");
    EXPECT_EQ(s.max_time, "PT120.000S");
    EXPECT_EQ(s.max_elements, 7u);
    EXPECT_EQ(s.auth_profile, wec::wsman::kProfileKerberos);
    EXPECT_NE(s.query.find("<Select Path=\"Security\">*[System[EventID=4624 or EventID=4625]]"),
              std::string::npos)
        << s.query;
    EXPECT_TRUE(s.send_bookmarks);

    r = wec("sub render logons --as wsman --hostname wec.example.org --port 443 --tls-issuer "
            "0123456789ABCDEF0123456789ABCDEF01234567" +
            db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    msg = wec::wsman::parse(r.out);
    ASSERT_TRUE(msg.subscribe.has_value());
    EXPECT_EQ(msg.subscribe->notify_to, "https://wec.example.org:443/wsman/subscriptions/" + uuid);
    EXPECT_EQ(msg.subscribe->auth_profile, wec::wsman::kProfileTls);
    EXPECT_EQ(msg.subscribe->issuer_thumbprints,
              std::vector<std::string>{"0123456789ABCDEF0123456789ABCDEF01234567"});

    r = wec("sub render logons --as querylist" + db);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(
        r.out,
        nlohmann::json::parse(wec("sub list --json" + db).out)[0]["query"].get<std::string>() +
            "\n");
    // A definition file renders without a store.
    r = wec("sub render '" + file + "' --as wsman --hostname h 2>/dev/null");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(wec::wsman::parse(r.out).subscribe->name, "logons");
    EXPECT_EQ(wec("sub render nothing" + db).exit_code, 2);
}

} // namespace

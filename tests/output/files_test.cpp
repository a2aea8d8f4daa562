#include "common/files.hpp"
#include "output/output.hpp"
#include "support/temp_dir.hpp"

#include <filesystem>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using namespace wec::output;

using wec::testing::TempDir;

BatchInfo batch() {
    BatchInfo b;
    b.ip = "192.168.58.100";
    b.client = "WIN10$@WINDOMAIN.LOCAL";
    b.machine = "win10.windomain.local";
    b.subscription_name = "Security events";
    b.subscription_uuid = "8B18D83D-2964-4F35-AC3B-6F4E6FFA727B";
    b.received =
        std::chrono::system_clock::time_point(std::chrono::seconds(1700000000)); // 2023-11-14
    return b;
}

std::string slurp(const fs::path& p) {
    auto bytes = wec::read_file(p.string());
    return std::string(wec::as_chars(bytes));
}

TEST(PathTemplate, ExpandsEveryPlaceholder) {
    EXPECT_EQ(
        expand_path_template(
            "/x/{ip}/{client}/{machine}/{subscription}/{subscription_uuid}/{date}.log", batch()),
        "/x/192.168.58.100/WIN10$@WINDOMAIN.LOCAL/win10.windomain.local/Security_events/"
        "8B18D83D-2964-4F35-AC3B-6F4E6FFA727B/2023-11-14.log");
    EXPECT_EQ(expand_path_template("{unknown}/{ip", batch()), "{unknown}/{ip");
}

TEST(PathTemplate, NodeIsTheWritingNodesNameSanitised) {
    BatchInfo b = batch();
    b.node = "wec-1.example.org";
    EXPECT_EQ(expand_path_template("/var/log/wec/{node}/{subscription}/{client}.json", b),
              "/var/log/wec/wec-1.example.org/Security_events/WIN10$@WINDOMAIN.LOCAL.json");
    b.node = "../etc";
    auto p = expand_path_template("/var/log/wec/{node}.json", b);
    EXPECT_EQ(p.find(".."), std::string::npos) << p;
    EXPECT_EQ(fs::path(p).parent_path(), "/var/log/wec");
    b.node = ""; // never from the collector (it falls back to the host name)
    EXPECT_EQ(expand_path_template("/x/{node}.json", b), "/x/unknown.json");
    EXPECT_NO_THROW(check_template("/var/log/{node}/{date}.json"));
}

TEST(PathTemplate, AnUnknownKeyIsASettingErrorNamingIt) {
    EXPECT_NO_THROW(check_template("/var/log/{date}/{subscription}/{client}-{ip}.json"));
    EXPECT_NO_THROW(check_template("/var/log/{machine}/{subscription_uuid}/{ip"));
    try {
        make_driver("files", {{"path", std::string("/var/log/{clinet}.json")}});
        FAIL() << "an unknown template key was accepted";
    } catch (const SettingError& e) {
        EXPECT_EQ(e.key(), "path");
        EXPECT_NE(std::string(e.what()).find("unknown key {clinet}"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("{client}"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("{node}"), std::string::npos) << e.what();
    }
}

TEST(PathTemplate, ClientNamesCannotEscapeTheDirectory) {
    BatchInfo b = batch();
    b.client = "../../etc/passwd";
    auto p = expand_path_template("/var/log/wec/{client}.json", b);
    EXPECT_EQ(p.find(".."), std::string::npos) << p;
    EXPECT_EQ(fs::path(p).parent_path(), "/var/log/wec");
    EXPECT_EQ(sanitize_path_component(""), "_");
    EXPECT_EQ(sanitize_path_component(".."), "__.");
}

TEST(FilesDriver, AppendsBatchesCreatingDirectories) {
    TempDir dir;
    auto d =
        make_driver("files", {{"path", (dir.path() / "{subscription}/{client}.json").string()}});
    d->write(batch(), "{\"a\":1}\n{\"a\":2}\n");
    d->write(batch(), "{\"a\":3}\n");
    auto file = dir.path() / "Security_events" / "WIN10$@WINDOMAIN.LOCAL.json";
    EXPECT_EQ(slurp(file), "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
}

TEST(FilesDriver, ReopenFollowsLogrotate) {
    TempDir dir;
    auto d = make_driver("files", {{"path", (dir.path() / "events.log").string()}});
    d->write(batch(), "one\n");
    fs::rename(dir.path() / "events.log", dir.path() / "events.log.1");
    d->write(batch(), "two\n"); // still the old (renamed) file until reopen
    d->reopen();
    d->write(batch(), "three\n");
    EXPECT_EQ(slurp(dir.path() / "events.log.1"), "one\ntwo\n");
    EXPECT_EQ(slurp(dir.path() / "events.log"), "three\n");
}

TEST(FilesDriver, UnwritableDirectoryIsAnErrorNamingThePath) {
    if (::geteuid() == 0) {
        // root ignores permissions: use a path under a regular file instead.
        TempDir dir;
        wec::write_file((dir.path() / "file").string(), wec::as_bytes("x"));
        auto d = make_driver("files", {{"path", (dir.path() / "file" / "sub" / "e.log").string()}});
        try {
            d->write(batch(), "x\n");
            FAIL() << "write under a regular file succeeded";
        } catch (const OutputError& e) {
            EXPECT_NE(std::string(e.what()).find((dir.path() / "file").string()), std::string::npos)
                << e.what();
        }
        return;
    }
    TempDir dir;
    fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec);
    auto d = make_driver("files", {{"path", (dir.path() / "sub/e.log").string()}});
    EXPECT_THROW(d->write(batch(), "x\n"), OutputError);
}

TEST(FilesDriver, ConcurrentBatchesNeverInterleave) {
    TempDir dir;
    auto d = make_driver(
        "files", {{"path", (dir.path() / "e.log").string()}, {"max_open_files", std::int64_t{1}}});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            std::string lines;
            for (int i = 0; i < 50; ++i)
                lines += "thread" + std::to_string(t) + "-line" + std::to_string(i) + "\n";
            BatchInfo b = batch();
            for (int k = 0; k < 50; ++k)
                d->write(b, lines);
        });
    for (auto& th : threads)
        th.join();
    auto text = slurp(dir.path() / "e.log");
    // Every batch is contiguous: count batch starts ("-line0\n") and check the following line.
    std::size_t batches = 0, pos = 0;
    while ((pos = text.find("-line0\n", pos)) != std::string::npos) {
        auto start = text.rfind('\n', pos);
        std::string who = text.substr(start == std::string::npos ? 0 : start + 1,
                                      pos - (start == std::string::npos ? 0 : start + 1));
        auto next = text.find('\n', pos) + 1;
        EXPECT_EQ(text.compare(next, who.size() + 6, who + "-line1"), 0);
        ++batches;
        pos = next;
    }
    EXPECT_EQ(batches, 200u);
}

TEST(Drivers, UnknownDriverAndMissingPathAreClearErrors) {
    EXPECT_THROW(make_driver("carrier-pigeon", {}), OutputError);
    EXPECT_THROW(make_driver("files", {}), OutputError);
}

} // namespace

// Interoperability of both compression levels with an independent SLDC decoder: the Python test
// collector's (tests/interop/wef_collector.py --self-test-sldc DIR decodes every X.sldc of DIR and
// compares it with X.utf16).
#include "common/files.hpp"
#include "sldc/sldc.hpp"
#include "support/process.hpp"

#include <cstdint>
#include <gtest/gtest.h>
#include <random>
#include <string>
#include <vector>

namespace {

using Bytes = std::vector<std::uint8_t>;
namespace fs = std::filesystem;

Bytes data(const std::string& name) {
    return wec::read_file(std::string(WEC_TEST_DATA) + "/sldc/" + name);
}

void write(const fs::path& path, const Bytes& bytes) {
    wec::write_file(path.string(), bytes);
}

std::size_t count(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++n;
    return n;
}

TEST(SldcPython, FastAndBestOutputDecodedByPythonCollector) {
    wec::testing::TempDir dir;
    std::vector<std::pair<std::string, Bytes>> inputs;
    for (const char* name : {"heartbeat", "enumerate", "events"})
        inputs.emplace_back(name, data(std::string(name) + ".utf16"));
    // Short distances, overlapping copies and copies across the window edge.
    Bytes runs;
    std::mt19937 rng(7);
    while (runs.size() < 5000) {
        const auto b = static_cast<std::uint8_t>(rng());
        for (std::size_t k = 0, n = 1 + rng() % 300; k < n; ++k)
            runs.push_back(b);
        for (std::size_t k = 0, n = rng() % 20; k < n; ++k)
            runs.push_back(static_cast<std::uint8_t>(rng()));
    }
    inputs.emplace_back("runs", runs);
    for (const auto& [name, in] : inputs) {
        for (const auto level : {wec::sldc::Level::Fast, wec::sldc::Level::Best}) {
            const std::string stem = name + (level == wec::sldc::Level::Fast ? "-fast" : "-best");
            write(dir.path() / (stem + ".sldc"), wec::sldc::compress(in, level));
            write(dir.path() / (stem + ".utf16"), in);
        }
    }
    const auto result = wec::testing::run(
        {"/usr/bin/python3", std::string(WEC_SOURCE_DIR) + "/tests/interop/wef_collector.py",
         "--self-test-sldc", dir.path().string()});
    EXPECT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find(std::to_string(2 * inputs.size()) + " passed, 0 failed"),
              std::string::npos)
        << result.output;
    EXPECT_EQ(count(result.output, "FAIL"), 0u) << result.output;
    for (const auto& [name, in] : inputs)
        EXPECT_NE(result.output.find("ok " + name + "-fast.sldc -> " + std::to_string(in.size()) +
                                     " bytes"),
                  std::string::npos)
            << name << "\n"
            << result.output;
}

} // namespace

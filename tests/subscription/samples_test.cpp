// samples/subscriptions: every definition loads, passes `wec sub validate`'s checks without a
// warning, and is listed in the README with each channel it reads.
#include "common/files.hpp"
#include "subscription/query_check.hpp"
#include "subscription/subscription.hpp"

#include <filesystem>
#include <gtest/gtest.h>
#include <pugixml.hpp>
#include <string>

namespace fs = std::filesystem;
namespace sub = wec::subscription;

namespace {

const fs::path kSamples = fs::path(WEC_SOURCE_DIR) / "samples" / "subscriptions";

// The README line of a file ("| `name.toml` | ...").
std::string readme_row(const std::string& readme, const std::string& file) {
    auto at = readme.find("| `" + file + "` |");
    if (at == std::string::npos) return {};
    return readme.substr(at, readme.find('\n', at) - at);
}

} // namespace

TEST(SubscriptionSamples, EachIsValidWithoutWarningAndListedInTheReadme) {
    auto readme = std::string(wec::as_chars(wec::read_file((kSamples / "README.md").string())));
    std::size_t count = 0;
    for (const auto& entry : fs::directory_iterator(kSamples)) {
        if (entry.path().extension() != ".toml") continue;
        ++count;
        auto file = entry.path().filename().string();
        SCOPED_TRACE(file);
        sub::Subscription s;
        ASSERT_NO_THROW(s = sub::load_toml_file(entry.path().string()));
        for (const auto& f : sub::lint(s))
            ADD_FAILURE() << f.describe();
        EXPECT_FALSE(s.outputs.empty());
        auto row = readme_row(readme, file);
        ASSERT_FALSE(row.empty()) << "not in README.md";
        pugi::xml_document doc;
        ASSERT_TRUE(doc.load_string(s.query.c_str()));
        for (auto query : doc.document_element().children("Query"))
            for (auto select : query.children("Select")) {
                std::string path = select.attribute("Path").value();
                auto slash = path.find('/');
                // "…/MSI and Script" stands for a channel of the provider named before it.
                bool listed = row.find("`" + path + "`") != std::string::npos ||
                              (slash != std::string::npos &&
                               row.find("`…" + path.substr(slash) + "`") != std::string::npos);
                EXPECT_TRUE(listed) << path << " not in the README row: " << row;
            }
    }
    EXPECT_GE(count, 15u);
}

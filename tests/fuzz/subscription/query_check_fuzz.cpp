// The XPath-subset parser, lint_query and fix_query on arbitrary text: an XPathError or a result,
// nothing else. A well-formed query stays well-formed once fixed, the fixed query has no more
// clause errors than the original, and fixing is deterministic.
#include "subscription/query_check.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace sub = wec::subscription;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        (void)sub::parse_xpath(text);
    } catch (const sub::XPathError& e) {
        if (e.offset() > text.size()) std::abort();
    }
    auto findings = sub::lint_query(text);
    for (const auto& f : findings)
        (void)f.describe();
    auto fix = sub::fix_query(text);
    bool malformed = false;
    for (const auto& f : findings)
        malformed = malformed || f.where.message.find("not well-formed") != std::string::npos;
    if (!malformed) {
        std::size_t clauses_before = 0, clauses_after = 0;
        for (const auto& f : findings)
            clauses_before += f.where.message.find(" clauses, more than ") != std::string::npos;
        for (const auto& f : sub::lint_query(fix.query)) {
            if (f.where.message.find("not well-formed") != std::string::npos) std::abort();
            clauses_after += f.where.message.find(" clauses, more than ") != std::string::npos;
        }
        if (clauses_after > clauses_before) std::abort();
        if (sub::fix_query(fix.query).query != sub::fix_query(fix.query).query) std::abort();
    }
    return 0;
}

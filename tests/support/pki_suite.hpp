// PkiSuite: the base of a GoogleTest fixture whose suite shares one TestPki (test_pki.hpp).
#pragma once

#include "support/test_pki.hpp"

#include <filesystem>
#include <gtest/gtest.h>
#include <memory>
#include <string>
#include <vector>

namespace wec::testing {

// The base of a fixture whose tests share one TestPki (made once per suite: make_test_pki.sh
// takes seconds), server name kTestPkiHost: `pki("server.pem")`. A suite that needs more client
// certificates or another host name declares its own SetUpTestSuite calling make_pki(...);
// `Base` is the fixture this one extends (::testing::Test or a fixture of the test file).
inline const std::string kTestPkiHost = "srv.windomain.local";

template <class Base = ::testing::Test>
class PkiSuite : public Base {
public:
    static void SetUpTestSuite() { make_pki(); }
    static void TearDownTestSuite() { pki_.reset(); }

protected:
    static void make_pki(const std::vector<std::string>& clients = {},
                         const std::string& host = kTestPkiHost) {
        pki_ = std::make_unique<TestPki>(host, clients);
    }
    // A file of the suite's PKI, e.g. pki("root.pem").
    static std::filesystem::path pki(const std::string& file) { return (*pki_)(file); }

private:
    static inline std::unique_ptr<TestPki> pki_;
};

} // namespace wec::testing

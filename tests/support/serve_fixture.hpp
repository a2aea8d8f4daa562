// The fixture of tests that run `wec serve` (WEC_EXE) with the suite's test PKI (PkiSuite): a
// temp dir, the SQLite database `db` with the subscription "security" applied (its events as
// JSON lines in <dir>/events/{client}.json), `port` and the `server` process the test starts
// (stopped by PID when the test ends), whose log is printed when the test failed.
#pragma once

#include "support/pki_suite.hpp"
#include "support/process.hpp"
#include "support/subscription.hpp"

#include <gtest/gtest.h>
#include <iostream>
#include <memory>
#include <string>

namespace wec::testing {

class ServeFixture : public PkiSuite<> {
protected:
    TempDir dir;
    std::string db = "sqlite:" + (dir.path() / "wec.db").string();
    int port = 0;
    std::unique_ptr<Process> server;

    void SetUp() override { apply_security(); }
    void TearDown() override {
        if (server && HasFailure()) std::cerr << "---- wec serve log ----\n" << server->output();
    }

    // The subscription "security", `extra` TOML lines added (e.g. allowed_clients).
    void apply_security(const std::string& extra = {}) {
        apply_subscription(dir.path() / "security.toml",
                           security_subscription(dir.path() / "events" / "{client}.json", extra),
                           db);
    }
};

} // namespace wec::testing

// Shared by the store tests: subscription definitions, times, and a second connection to the
// database under test (as another program would have: `sqlite3`, `psql`, a newer wec).
#pragma once

#include "common/handle.hpp"
#include "store/store.hpp"
#include "subscription/subscription.hpp"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdexcept>
#include <string>
#include <vector>

namespace wec::store::testing {

inline subscription::Subscription make_sub(const std::string& name) {
    return subscription::load_toml("name = \"" + name + R"("
query = '<QueryList><Query Id="0"><Select Path="Security">*</Select></Query></QueryList>'
[[outputs]]
driver = "files"
path = "/var/log/wec/{client}.json"
format = "json"
)",
                                   name + ".toml");
}

inline TimePoint at(std::int64_t seconds) {
    return TimePoint(std::chrono::seconds(seconds));
}

// A connection of its own to the store's database: "sqlite:PATH" or "postgres://...".
// exec() runs SQL whose parameters are written $1, $2, ... for both backends; it throws
// std::runtime_error with the database's message.
class RawConnection {
public:
    explicit RawConnection(const std::string& url) {
        if (url.starts_with("sqlite:")) {
            sqlite3* raw = nullptr;
            int rc = sqlite3_open(url.substr(7).c_str(), &raw);
            sqlite_.reset(raw);
            if (rc != SQLITE_OK) throw std::runtime_error("cannot open " + url);
        } else {
            pg_.reset(PQconnectdb(url.c_str()));
            if (!pg_ || PQstatus(pg_.get()) != CONNECTION_OK)
                throw std::runtime_error("cannot connect to " + url);
            PQsetNoticeProcessor(
                pg_.get(), [](void*, const char*) {}, nullptr);
        }
    }

    void exec(const std::string& sql, const std::vector<std::string>& params = {}) {
        if (sqlite_) {
            if (params.empty()) {
                char* error = nullptr;
                int rc = sqlite3_exec(sqlite_.get(), sql.c_str(), nullptr, nullptr, &error);
                std::string message = error ? error : "";
                sqlite3_free(error);
                if (rc != SQLITE_OK) throw std::runtime_error(sql + ": " + message);
                return;
            }
            sqlite3_stmt* raw = nullptr;
            int rc = sqlite3_prepare_v2(sqlite_.get(), sql.c_str(), -1, &raw, nullptr);
            wec::Handle<sqlite3_stmt, sqlite3_finalize> stmt(raw);
            for (std::size_t i = 0; rc == SQLITE_OK && i < params.size(); ++i)
                rc = sqlite3_bind_text(stmt.get(), static_cast<int>(i + 1), params[i].c_str(), -1,
                                       SQLITE_TRANSIENT);
            if (rc == SQLITE_OK) rc = sqlite3_step(stmt.get()) == SQLITE_DONE ? SQLITE_OK : rc;
            if (rc != SQLITE_OK)
                throw std::runtime_error(sql + ": " + sqlite3_errmsg(sqlite_.get()));
            return;
        }
        std::vector<const char*> values;
        for (const auto& p : params)
            values.push_back(p.c_str());
        wec::Handle<PGresult, PQclear> result(
            params.empty() ? PQexec(pg_.get(), sql.c_str())
                           : PQexecParams(pg_.get(), sql.c_str(), static_cast<int>(values.size()),
                                          nullptr, values.data(), nullptr, nullptr, 0));
        auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
        if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
            throw std::runtime_error(sql + ": " + PQerrorMessage(pg_.get()));
    }

    // Inserts a subscription row directly (as another program, or a newer wec, would).
    void insert_subscription(const std::string& uuid, const std::string& name, bool enabled,
                             const std::string& definition) {
        exec("INSERT INTO subscriptions (uuid, name, enabled, definition, updated_at) "
             "VALUES ($1, $2, " +
                 std::string(enabled ? "TRUE" : "FALSE") + ", $3, 0)",
             {uuid, name, definition});
    }

private:
    wec::Handle<sqlite3, sqlite3_close> sqlite_;
    wec::Handle<PGconn, PQfinish> pg_;
};

} // namespace wec::store::testing

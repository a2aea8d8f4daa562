// `wec db`: the state store itself, for operators: `migrate` applies pending schema migrations
// (what `wec serve` also does at start), `status` shows the schema version and row counts.
#include "commands.hpp"
#include "store/store.hpp"

#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace wec::tool {
namespace {

struct DbOptions {
    std::string db = "sqlite:./var/wec.db";
    bool json = false;
};

struct Report {
    std::string store; // describe(): never the password
    store::StoreStats stats;
};

// Opening applies pending migrations (a bad URL or an unusable file: StoreError, exit 2 through
// main); reading the counts needs the database itself: a PostgreSQL server that cannot be reached
// is a run-time failure (3).
int with_report(const DbOptions& o, const char* command,
                const std::function<void(const Report&)>& print) {
    auto db = store::open(o.db);
    Report report{db->describe(), {}};
    try {
        report.stats = db->stats();
    } catch (const store::StoreError& e) {
        std::fprintf(stderr, "wec db %s: %s\n", command, e.what());
        return kRuntime;
    }
    print(report);
    return kOk;
}

nlohmann::json to_json(const Report& r) {
    return {{"store", r.store},
            {"schema_version", r.stats.schema_version},
            {"revision", r.stats.revision},
            {"subscriptions", r.stats.subscriptions},
            {"bookmarks", r.stats.bookmarks},
            {"hosts", r.stats.hosts},
            {"subscription_ends", r.stats.subscription_ends}};
}

int run_migrate(const DbOptions& o) {
    return with_report(o, "migrate", [&](const Report& r) {
        if (o.json)
            std::cout << to_json(r).dump(2) << "\n";
        else
            std::printf("%s: schema version %d, up to date\n", r.store.c_str(),
                        r.stats.schema_version);
    });
}

int run_db_status(const DbOptions& o) {
    return with_report(o, "status", [&](const Report& r) {
        if (o.json) {
            std::cout << to_json(r).dump(2) << "\n";
            return;
        }
        std::printf("store              %s\n", r.store.c_str());
        std::printf("schema version     %d\n", r.stats.schema_version);
        std::printf("revision           %llu\n", static_cast<unsigned long long>(r.stats.revision));
        std::printf("subscriptions      %llu\n",
                    static_cast<unsigned long long>(r.stats.subscriptions));
        std::printf("bookmarks          %llu\n",
                    static_cast<unsigned long long>(r.stats.bookmarks));
        std::printf("hosts              %llu\n", static_cast<unsigned long long>(r.stats.hosts));
        std::printf("subscription ends  %llu\n",
                    static_cast<unsigned long long>(r.stats.subscription_ends));
    });
}

} // namespace

void add_db(CLI::App& app, Action& action) {
    auto* db = app.add_subcommand("db", "State store maintenance: schema migrations and status");
    db->require_subcommand(1);
    db->footer("Examples:\n"
               "  wec db migrate --db postgres://wec@db1.example.org/wec\n"
               "  wec db status --db sqlite:/var/lib/wec/wec.db --json\n"
               "The password is best given by PGPASSWORD or ~/.pgpass rather than in the URL.");

    auto migrate = std::make_shared<DbOptions>();
    auto* m = db->add_subcommand("migrate",
                                 "Apply pending schema migrations (wec serve also does at start)");
    m->add_option("--db", migrate->db, "State store URL")->capture_default_str();
    m->add_flag("--json", migrate->json, "JSON output for scripts");
    m->callback([&action, migrate] { action = [migrate] { return run_migrate(*migrate); }; });

    auto status = std::make_shared<DbOptions>();
    auto* s = db->add_subcommand("status", "Show the schema version and row counts");
    s->add_option("--db", status->db, "State store URL")->capture_default_str();
    s->add_flag("--json", status->json, "JSON output for scripts");
    s->callback([&action, status] { action = [status] { return run_db_status(*status); }; });
}

} // namespace wec::tool

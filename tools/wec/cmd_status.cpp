// `wec status`: per subscription, which hosts are active (events within the heartbeat interval),
// alive (heartbeats only) or dead (nothing), with last seen, address and the authentication
// mechanism each used. A stored subscription whose definition cannot be read is listed with its
// error (exit 1).
#include "commands.hpp"
#include "store/store.hpp"

#include <cstdio>
#include <ctime>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace wec::tool {
namespace {

struct StatusOptions {
    std::string db = "sqlite:./var/wec.db";
    bool json = false;
};

std::string iso(store::TimePoint t) {
    std::time_t secs = store::Clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

int run_status(const StatusOptions& o) {
    auto store = store::open(o.db);
    auto now = store::Clock::now();
    auto listing = store->list_subscriptions();
    // Readable and unreadable subscriptions, merged by name (both lists are ordered by name).
    nlohmann::json out = nlohmann::json::array();
    auto broken = listing.broken.begin();
    auto add_broken_before = [&](const std::string* name) {
        for (; broken != listing.broken.end() && (!name || broken->name < *name); ++broken)
            out.push_back({{"subscription", broken->name},
                           {"uuid", broken->uuid},
                           {"enabled", broken->enabled},
                           {"error", broken->error}});
    };
    for (const auto& sub : listing.subscriptions) {
        add_broken_before(&sub.name);
        nlohmann::json hosts = nlohmann::json::array();
        std::size_t counts[3] = {0, 0, 0};
        for (const auto& h : store->hosts(sub.uuid)) {
            auto st = store::classify(h, std::chrono::seconds(sub.heartbeat_interval_s), now);
            ++counts[static_cast<int>(st)];
            hosts.push_back(
                {{"client", h.client},
                 {"status", store::to_string(st)},
                 {"address", h.address},
                 {"machine", h.machine_id},
                 {"mechanism", h.mechanism},
                 {"first_seen", iso(h.first_seen)},
                 {"last_seen", iso(h.last_seen)},
                 {"last_event_seen",
                  h.last_event_seen ? nlohmann::json(iso(*h.last_event_seen)) : nlohmann::json()}});
        }
        out.push_back({{"subscription", sub.name},
                       {"uuid", sub.uuid},
                       {"enabled", sub.enabled},
                       {"active", counts[0]},
                       {"alive", counts[1]},
                       {"dead", counts[2]},
                       {"hosts", hosts}});
    }
    add_broken_before(nullptr);
    // Something to report: a subscription that `wec serve` cannot serve.
    int rc = listing.broken.empty() ? kOk : kPartial;
    if (o.json) {
        std::cout << out.dump(2) << "\n";
        return rc;
    }
    if (out.empty()) std::puts("no subscriptions");
    for (const auto& s : out) {
        if (s.contains("error")) {
            std::printf("%s%s: NOT SERVED, its stored definition cannot be read: %s\n",
                        s["subscription"].get<std::string>().c_str(),
                        s["enabled"].get<bool>() ? "" : " (disabled)",
                        s["error"].get<std::string>().c_str());
            continue;
        }
        std::printf("%s%s: %zu active, %zu alive, %zu dead\n",
                    s["subscription"].get<std::string>().c_str(),
                    s["enabled"].get<bool>() ? "" : " (disabled)", s["active"].get<std::size_t>(),
                    s["alive"].get<std::size_t>(), s["dead"].get<std::size_t>());
        for (const auto& h : s["hosts"]) {
            // A host last seen before wec recorded mechanisms (schema version 1) shows "-".
            auto mechanism = h["mechanism"].get<std::string>();
            std::printf(
                "  %-7s %-40s %-16s %-8s last seen %s\n", h["status"].get<std::string>().c_str(),
                h["client"].get<std::string>().c_str(), h["address"].get<std::string>().c_str(),
                mechanism.empty() ? "-" : mechanism.c_str(),
                h["last_seen"].get<std::string>().c_str());
        }
    }
    return rc;
}

} // namespace

void add_status(CLI::App& app, Action& action) {
    auto opts = std::make_shared<StatusOptions>();
    auto* s = app.add_subcommand("status",
                                 "Show which hosts are active, alive or dead, per subscription");
    s->add_option("--db", opts->db, "State store URL")->capture_default_str();
    s->add_flag("--json", opts->json, "JSON output for scripts");
    s->footer("Example:\n  wec status --db sqlite:/var/lib/wec/wec.db --json | jq '.[].dead'");
    s->callback([&action, opts] { action = [opts] { return run_status(*opts); }; });
}

} // namespace wec::tool

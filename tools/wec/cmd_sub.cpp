// `wec sub`: subscriptions in the state store (apply, list, show, rm, enable, disable).
#include "commands.hpp"
#include "store/store.hpp"
#include "subscription/subscription.hpp"

#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace wec::tool {
namespace {

struct SubOptions {
    std::string db = "sqlite:./var/wec.db";
    std::vector<std::string> files;
    std::string name;
    bool json = false;
};

nlohmann::json to_json(const subscription::Subscription& s) {
    nlohmann::json outputs = nlohmann::json::array();
    for (const auto& o : s.outputs) {
        nlohmann::json j{{"driver", o.driver}, {"format", subscription::to_string(o.format)}};
        for (const auto& [k, v] : o.options)
            std::visit([&, key = k](const auto& x) { j[key] = x; }, v);
        outputs.push_back(std::move(j));
    }
    return {{"uuid", s.uuid},
            {"name", s.name},
            {"version", subscription::public_version(s)},
            {"enabled", s.enabled},
            {"content_format", subscription::to_string(s.content_format)},
            {"heartbeat_interval", s.heartbeat_interval_s},
            {"max_latency", s.max_latency_s},
            {"allowed_clients", s.allowed_clients},
            {"denied_clients", s.denied_clients},
            {"uri", s.uri ? nlohmann::json(*s.uri) : nlohmann::json()},
            {"query", s.query},
            {"outputs", outputs}};
}

int run_apply(const SubOptions& o) {
    // Validate every file first: nothing is applied when one of them is invalid.
    std::vector<subscription::Subscription> defs;
    for (const auto& f : o.files) {
        try {
            defs.push_back(subscription::load_toml_file(f));
        } catch (const subscription::SubscriptionError& e) {
            std::fprintf(stderr, "wec sub apply: %s\n", e.what());
            return kUsage;
        }
    }
    auto store = store::open(o.db);
    for (const auto& d : defs) {
        auto r = store->put_subscription(d);
        const char* what = r.change == store::Change::Created   ? "created"
                           : r.change == store::Change::Updated ? "updated"
                                                                : "unchanged";
        std::printf("%s %s (uuid %s, version %s)\n", what, r.subscription.name.c_str(),
                    r.subscription.uuid.c_str(),
                    subscription::public_version(r.subscription).c_str());
    }
    return kOk;
}

int run_list(const SubOptions& o) {
    auto store = store::open(o.db);
    auto subs = store->subscriptions();
    if (o.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& s : subs)
            arr.push_back(to_json(s));
        std::cout << arr.dump(2) << "\n";
        return kOk;
    }
    if (subs.empty()) {
        std::puts("no subscriptions (add one with `wec sub apply FILE`)");
        return kOk;
    }
    std::printf("%-24s %-8s %-13s %-36s %s\n", "NAME", "ENABLED", "FORMAT", "UUID", "OUTPUTS");
    for (const auto& s : subs)
        std::printf("%-24s %-8s %-13s %-36s %zu\n", s.name.c_str(), s.enabled ? "yes" : "no",
                    std::string(subscription::to_string(s.content_format)).c_str(), s.uuid.c_str(),
                    s.outputs.size());
    return kOk;
}

int run_show(const SubOptions& o) {
    auto store = store::open(o.db);
    auto s = store->subscription_by_name(o.name);
    if (!s) {
        std::fprintf(stderr, "wec sub show: no subscription named '%s' (see `wec sub list`)\n",
                     o.name.c_str());
        return kUsage;
    }
    if (o.json)
        std::cout << to_json(*s).dump(2) << "\n";
    else
        std::cout << subscription::to_toml(*s);
    return kOk;
}

int run_rm(const SubOptions& o) {
    auto store = store::open(o.db);
    if (!store->delete_subscription(o.name)) {
        std::fprintf(stderr, "wec sub rm: no subscription named '%s'\n", o.name.c_str());
        return kUsage;
    }
    std::printf("removed %s\n", o.name.c_str());
    return kOk;
}

int run_enable(const SubOptions& o, bool enable) {
    auto store = store::open(o.db);
    if (!store->set_enabled(o.name, enable)) {
        std::fprintf(stderr, "wec sub %s: no subscription named '%s'\n",
                     enable ? "enable" : "disable", o.name.c_str());
        return kUsage;
    }
    std::printf("%s %s\n", enable ? "enabled" : "disabled", o.name.c_str());
    return kOk;
}

CLI::App* with_db(CLI::App* app, SubOptions& o) {
    app->add_option("--db", o.db, "State store URL")->capture_default_str();
    return app;
}

} // namespace

void add_sub(CLI::App& app, Action& action) {
    auto* sub = app.add_subcommand("sub", "Manage subscriptions in the state store");
    sub->require_subcommand(1);
    sub->footer("Examples:\n"
                "  wec sub apply samples/subscriptions/security.toml --db sqlite:var/wec.db\n"
                "  wec sub list --json\n"
                "  wec sub disable security\n"
                "A running `wec serve` picks up changes within seconds.");

    auto apply = std::make_shared<SubOptions>();
    auto* a = with_db(
        sub->add_subcommand("apply", "Create or update subscriptions from TOML files (by name)"),
        *apply);
    a->add_option("files", apply->files, "Subscription definitions (TOML)")
        ->required()
        ->check(CLI::ExistingFile);
    a->callback([&action, apply] { action = [apply] { return run_apply(*apply); }; });

    auto list = std::make_shared<SubOptions>();
    auto* l = with_db(sub->add_subcommand("list", "List subscriptions"), *list);
    l->add_flag("--json", list->json, "JSON output for scripts");
    l->callback([&action, list] { action = [list] { return run_list(*list); }; });

    auto show = std::make_shared<SubOptions>();
    auto* s =
        with_db(sub->add_subcommand("show", "Show one subscription as TOML (or JSON)"), *show);
    s->add_option("name", show->name, "Subscription name")->required();
    s->add_flag("--json", show->json, "JSON output for scripts");
    s->callback([&action, show] { action = [show] { return run_show(*show); }; });

    auto rm = std::make_shared<SubOptions>();
    auto* r = with_db(
        sub->add_subcommand("rm", "Delete a subscription with its bookmarks and host states"), *rm);
    r->add_option("name", rm->name, "Subscription name")->required();
    r->callback([&action, rm] { action = [rm] { return run_rm(*rm); }; });

    for (bool enable : {true, false}) {
        auto opts = std::make_shared<SubOptions>();
        auto* e = with_db(
            sub->add_subcommand(enable ? "enable" : "disable",
                                enable ? "Enable a subscription" : "Disable a subscription"),
            *opts);
        e->add_option("name", opts->name, "Subscription name")->required();
        e->callback([&action, opts, enable] {
            action = [opts, enable] { return run_enable(*opts, enable); };
        });
    }
}

} // namespace wec::tool

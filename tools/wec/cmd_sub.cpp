// `wec sub`: subscriptions in the state store (apply, list, show, rm, enable, disable), and
// Windows subscription XML (import, convert, export); validate, new and render are in
// cmd_sub_tools.cpp.
#include "commands.hpp"
#include "common/files.hpp"
#include "store/store.hpp"
#include "subscription/subscription.hpp"
#include "subscription/windows_xml.hpp"

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace wec::tool {
namespace {

struct SubOptions {
    std::string db = "sqlite:./var/wec.db";
    std::vector<std::string> files;
    std::string name;
    bool json = false;
    bool dry_run = false;        // import
    std::string to;              // convert: "toml" | "xml"
    std::string format = "toml"; // export: "toml" | "xml" | "wecutil"
    std::string output;          // convert, export: -o FILE (DIR with export --all)
    bool all = false;            // export
    bool no_type = false;        // convert, export: no <SubscriptionType>
};

const char* change_name(store::Change change) {
    return change == store::Change::Created   ? "created"
           : change == store::Change::Updated ? "updated"
                                              : "unchanged";
}

nlohmann::json to_json(const subscription::XmlWarning& w) {
    return {{"element", w.element}, {"line", w.line}, {"column", w.column}, {"message", w.message}};
}

void print_warnings(const char* command, const std::string& what,
                    const std::vector<std::string>& warnings) {
    for (const auto& w : warnings)
        std::fprintf(stderr, "wec sub %s: %s: warning: %s\n", command, what.c_str(), w.c_str());
}

std::vector<std::string> described(const std::vector<subscription::XmlWarning>& warnings) {
    std::vector<std::string> out;
    for (const auto& w : warnings)
        out.push_back(w.describe());
    return out;
}

bool wants_xml(const std::string& format) {
    return format == "xml" || format == "wecutil";
}

// The text of a subscription in a format, with what could not be written.
std::string render(const subscription::Subscription& s, bool xml, bool subscription_type,
                   std::vector<std::string>& warnings) {
    if (!xml) return subscription::to_toml(s);
    auto out = subscription::to_windows_xml(s, {.subscription_type = subscription_type});
    warnings.insert(warnings.end(), out.warnings.begin(), out.warnings.end());
    return std::move(out.xml);
}

// A file name for a subscription name: ASCII letters and digits, '.', '_', '-' and non-ASCII
// characters kept, others (spaces, '/', ...) '_'.
std::string file_name_for(const std::string& name) {
    std::string out;
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        out += (std::isalnum(u) != 0 || u >= 0x80 || c == '.' || c == '_' || c == '-') ? c : '_';
    }
    if (out.empty() || out.front() == '.') out.insert(out.begin(), '_');
    return out;
}

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
            {"description", s.description},
            {"uri", s.uri ? nlohmann::json(*s.uri) : nlohmann::json()},
            {"query", s.query},
            {"outputs", outputs}};
}

int run_apply(const SubOptions& o) {
    // Validate every file first: nothing is applied when one of them is invalid.
    std::vector<subscription::Subscription> defs;
    for (const auto& f : o.files) {
        std::vector<std::uint8_t> bytes;
        try {
            bytes = wec::read_file(f);
            if (subscription::looks_like_xml(bytes)) {
                std::fprintf(stderr,
                             "wec sub apply: %s: Windows subscription XML, not a TOML definition: "
                             "use `wec sub import %s`\n",
                             f.c_str(), f.c_str());
                return kUsage;
            }
            defs.push_back(subscription::load_toml(wec::as_chars(bytes), f));
        } catch (const wec::Error& e) {
            std::fprintf(stderr, "wec sub apply: %s\n", e.what());
            return kUsage;
        }
        if (!lint_for("apply", f, defs.back(), nullptr, wec::as_chars(bytes))) {
            std::fprintf(stderr,
                         "wec sub apply: %s: refused: Windows would not read its query "
                         "(nothing applied)\n",
                         f.c_str());
            return kUsage;
        }
    }
    auto store = store::open(o.db);
    for (const auto& d : defs) {
        auto r = store->put_subscription(d);
        std::printf("%s %s (uuid %s, version %s)\n", change_name(r.change),
                    r.subscription.name.c_str(), r.subscription.uuid.c_str(),
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

int run_import(const SubOptions& o) {
    // Read every file first: nothing is stored when one of them cannot be imported.
    struct Item {
        std::string file;
        subscription::WindowsImport imported;
    };
    std::vector<Item> items;
    std::map<std::string, std::string> files_by_name;
    for (const auto& f : o.files) {
        try {
            items.push_back({f, subscription::read_windows_xml_file(f)});
        } catch (const wec::Error& e) {
            std::fprintf(stderr, "wec sub import: %s\n", e.what());
            return kUsage;
        }
        std::vector<std::string> query_warnings;
        if (!lint_for("import", f, items.back().imported.subscription, &query_warnings)) {
            std::fprintf(stderr,
                         "wec sub import: %s: refused: Windows would not read its query "
                         "(nothing imported)\n",
                         f.c_str());
            return kUsage;
        }
        for (auto& w : query_warnings)
            items.back().imported.warnings.push_back({"Query", 0, 0, std::move(w)});
        const auto& name = items.back().imported.subscription.name;
        if (auto [it, fresh] = files_by_name.emplace(name, f); !fresh) {
            std::fprintf(stderr, "wec sub import: %s and %s both define subscription '%s'\n",
                         it->second.c_str(), f.c_str(), name.c_str());
            return kUsage;
        }
    }
    if (!o.json)
        for (const auto& item : items)
            print_warnings("import", item.file, described(item.imported.warnings));
    std::unique_ptr<store::Store> store;
    if (!o.dry_run) store = store::open(o.db);
    nlohmann::json report = nlohmann::json::array();
    for (const auto& item : items) {
        const auto& s = item.imported.subscription;
        nlohmann::json warnings = nlohmann::json::array();
        for (const auto& w : item.imported.warnings)
            warnings.push_back(to_json(w));
        if (o.dry_run) {
            if (o.json)
                report.push_back({{"file", item.file},
                                  {"name", s.name},
                                  {"change", "none (dry run)"},
                                  {"warnings", warnings}});
            else
                std::printf("would import %s from %s (%zu warnings; nothing stored: --dry-run)\n",
                            s.name.c_str(), item.file.c_str(), item.imported.warnings.size());
            continue;
        }
        auto r = store->put_subscription(s);
        auto version = subscription::public_version(r.subscription);
        if (o.json)
            report.push_back({{"file", item.file},
                              {"name", r.subscription.name},
                              {"change", change_name(r.change)},
                              {"uuid", r.subscription.uuid},
                              {"version", version},
                              {"warnings", warnings}});
        else
            std::printf("%s %s from %s (uuid %s, version %s, %zu warnings)\n",
                        change_name(r.change), r.subscription.name.c_str(), item.file.c_str(),
                        r.subscription.uuid.c_str(), version.c_str(),
                        item.imported.warnings.size());
    }
    if (o.json) std::cout << report.dump(2) << "\n";
    return kOk;
}

int run_convert(const SubOptions& o) {
    const auto& file = o.files.front();
    subscription::Subscription s;
    std::vector<std::string> warnings;
    bool from_xml = false;
    try {
        auto bytes = wec::read_file(file);
        from_xml = subscription::looks_like_xml(bytes);
        if (from_xml) {
            auto imported = subscription::read_windows_xml(bytes, file);
            s = std::move(imported.subscription);
            warnings = described(imported.warnings);
        } else {
            s = subscription::load_toml(wec::as_chars(bytes), file);
        }
    } catch (const wec::Error& e) {
        std::fprintf(stderr, "wec sub convert: %s\n", e.what());
        return kUsage;
    }
    bool xml = wants_xml(o.to);
    std::string text = render(s, xml, !o.no_type, warnings);
    if (!xml && from_xml) {
        // The review list travels with the definition.
        std::string head = "# Converted from " + file +
                           " (Windows subscription XML) by `wec sub "
                           "convert`.\n";
        if (!warnings.empty()) head += "# Review (also printed on standard error):\n";
        for (const auto& w : warnings)
            head += "#   " + w + "\n";
        text = head + "\n" + text;
    }
    print_warnings("convert", file, warnings);
    wec::write_file(o.output.empty() ? "-" : o.output, wec::as_bytes(text));
    return kOk;
}

int run_export(const SubOptions& o) {
    bool xml = wants_xml(o.format);
    auto store = store::open(o.db);
    if (!o.all) {
        auto s = store->subscription_by_name(o.name);
        if (!s) {
            std::fprintf(stderr,
                         "wec sub export: no subscription named '%s' (see `wec sub list`)\n",
                         o.name.c_str());
            return kUsage;
        }
        std::vector<std::string> warnings;
        auto text = render(*s, xml, !o.no_type, warnings);
        print_warnings("export", s->name, warnings);
        wec::write_file(o.output.empty() ? "-" : o.output, wec::as_bytes(text));
        return kOk;
    }
    if (o.output.empty()) {
        std::fprintf(stderr, "wec sub export: --all writes one file per subscription: give the "
                             "directory with -o DIR\n");
        return kUsage;
    }
    std::filesystem::create_directories(o.output);
    std::set<std::string> used;
    for (const auto& s : store->subscriptions()) {
        std::string base = file_name_for(s.name);
        std::string name = base;
        for (int n = 2; !used.insert(name).second; ++n)
            name = base + "-" + std::to_string(n);
        auto path = (std::filesystem::path(o.output) / (name + (xml ? ".xml" : ".toml"))).string();
        std::vector<std::string> warnings;
        auto text = render(s, xml, !o.no_type, warnings);
        print_warnings("export", s.name, warnings);
        wec::write_file(path, wec::as_bytes(text));
        std::printf("exported %s to %s\n", s.name.c_str(), path.c_str());
    }
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
                "  wec sub import Authentication.xml        (from `wecutil gs NAME /f:xml`)\n"
                "  wec sub export security --format xml      (for `wecutil cs FILE`)\n"
                "  wec sub list --json\n"
                "  wec sub validate samples/subscriptions/*.toml\n"
                "  wec sub new logons --event-id 4624,4625,4634 > logons.toml\n"
                "  wec sub render security --as wsman --client 'WKS01$@WINDOMAIN.LOCAL'\n"
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

    auto import = std::make_shared<SubOptions>();
    auto* im = with_db(sub->add_subcommand("import", "Create or update subscriptions from Windows "
                                                     "subscription XML (wecutil gs NAME /f:xml)"),
                       *import);
    im->add_option("files", import->files, "Windows subscription XML files (UTF-8 or UTF-16)")
        ->required()
        ->check(CLI::ExistingFile);
    im->add_flag("--dry-run", import->dry_run,
                 "Read, check and report every file; store nothing (no store is opened)");
    im->add_flag("--json", import->json, "JSON report on standard output (warnings included)");
    im->footer(
        "Each file's SubscriptionId is the name: an existing subscription of that name is\n"
        "updated (it keeps its uuid). Nothing is stored when one file cannot be imported.\n"
        "Whatever wec does not use as Windows does is a warning naming the element, line and\n"
        "column (the run still succeeds); Windows-only settings such as LogFile are kept in the\n"
        "description and restored by `wec sub export --format xml`.\n"
        "Examples:\n"
        "  wecutil gs Authentication /f:xml > Authentication.xml    (on the Windows collector)\n"
        "  wec sub import Authentication.xml --dry-run\n"
        "  wec sub import wef-subscriptions/*.xml --db sqlite:var/wec.db\n"
        "Exit status: 0 imported (warnings or not), 2 a file cannot be read or imported\n"
        "(malformed XML, CollectorInitiated, another Uri, a query Windows would refuse).");
    im->callback([&action, import] { action = [import] { return run_import(*import); }; });

    auto convert = std::make_shared<SubOptions>();
    auto* cv = sub->add_subcommand(
        "convert", "Convert a definition between Windows subscription XML and TOML (no store)");
    cv->add_option("file", convert->files, "Input: Windows subscription XML or a TOML definition")
        ->required()
        ->expected(1)
        ->check(CLI::ExistingFile);
    cv->add_option("--to", convert->to, "Output format")
        ->required()
        ->check(CLI::IsMember({"toml", "xml", "wecutil"}));
    cv->add_option("-o,--output", convert->output, "Write to FILE (default: standard output)");
    cv->add_flag("--no-type", convert->no_type,
                 "XML without <SubscriptionType>, for `wecutil ss NAME /c:FILE` updates");
    cv->footer("The input format is detected (XML starts with '<' or a UTF-16 byte order mark).\n"
               "Warnings go to standard error, and to the top of a TOML output as comments.\n"
               "Examples:\n"
               "  wec sub convert Authentication.xml --to toml -o authentication.toml\n"
               "  wec sub convert security.toml --to xml -o Security.xml\n"
               "  wecutil cs Security.xml                             (on a Windows collector)");
    cv->callback([&action, convert] { action = [convert] { return run_convert(*convert); }; });

    auto exp = std::make_shared<SubOptions>();
    auto* ex = with_db(
        sub->add_subcommand("export", "Write stored subscriptions as Windows subscription XML or "
                                      "TOML"),
        *exp);
    auto* ex_name = ex->add_option("name", exp->name, "Subscription name");
    auto* ex_all = ex->add_flag("--all", exp->all, "Every subscription, one file each in -o DIR");
    ex_name->excludes(ex_all);
    ex->add_option("--format,--as", exp->format, "xml (wecutil) or toml")
        ->capture_default_str()
        ->check(CLI::IsMember({"toml", "xml", "wecutil"}));
    ex->add_option("-o,--output", exp->output,
                   "Write to FILE (default: standard output); with --all, the directory");
    ex->add_flag("--no-type", exp->no_type,
                 "XML without <SubscriptionType>, for `wecutil ss NAME /c:FILE` updates");
    ex->footer("XML is what `wecutil cs FILE` accepts: SourceInitiated, ConfigurationMode Custom\n"
               "with the subscription's delivery values in milliseconds, the query in CDATA.\n"
               "Settings with no XML element (outputs, uri, ...) are named on standard error.\n"
               "Examples:\n"
               "  wec sub export security --format xml -o Security.xml\n"
               "  wec sub export --all --format xml -o exported/\n"
               "  wec sub export security --format toml > security.toml");
    ex->callback([&action, exp] {
        if (!exp->all && exp->name.empty())
            throw CLI::ValidationError("export", "give a subscription NAME or --all");
        action = [exp] { return run_export(*exp); };
    });

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
    add_sub_tools(*sub, action);
}

} // namespace wec::tool

// `wec sub validate | new | render`: check a definition the way Windows will read its query,
// write a new one, and show what the collector sends to sources for it.
#include "commands.hpp"
#include "common/files.hpp"
#include "config/config.hpp"
#include "pipeline/collector.hpp"
#include "store/store.hpp"
#include "subscription/query_check.hpp"
#include "subscription/subscription.hpp"
#include "subscription/windows_xml.hpp"
#include "text/text.hpp"
#include "wsman/subscription.hpp"

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace wec::tool {

namespace sub = wec::subscription;

namespace {

// ---- validate -------------------------------------------------------------------------------

struct ValidateOptions {
    std::vector<std::string> files;
    bool fix = false;
    std::string output;
    bool json = false;
};

// One file as validate saw it.
struct Checked {
    std::string file;
    bool readable = true;
    bool xml = false;
    std::optional<sub::Subscription> definition;
    std::vector<nlohmann::json> errors; // {rule, message, [line, column, select, path]}
    std::vector<nlohmann::json> warnings;
    std::vector<std::string> changes; // --fix
    // Where the query is in the file, when it is there as written (a literal TOML string, XML
    // CDATA in UTF-8): problems then also get the file's line and column.
    std::string text;
    std::optional<std::size_t> query_at;
};

nlohmann::json finding_json(const sub::Finding& f) {
    nlohmann::json j{{"rule", f.rule}, {"message", "query: " + f.where.describe()}};
    if (f.where.line != 0) {
        j["line"] = f.where.line;
        j["column"] = f.where.column;
    }
    if (f.where.select != 0) {
        j["select"] = f.where.select;
        j["element"] = f.where.element;
        j["path"] = f.where.path;
    }
    return j;
}

// Where `query` is in `text`, when it is there once.
std::optional<std::size_t> unique_offset(std::string_view text, std::string_view query) {
    if (query.empty()) return std::nullopt;
    auto at = text.find(query);
    if (at == std::string_view::npos || text.find(query, at + 1) != std::string_view::npos)
        return std::nullopt;
    return at;
}

void add_findings(Checked& c, const std::vector<sub::Finding>& findings) {
    for (const auto& f : findings) {
        auto j = finding_json(f);
        if (c.query_at && f.where.line != 0) {
            auto [line, column] = wec::text::line_column(c.text, *c.query_at + f.where.offset);
            j["file_line"] = line;
            j["file_column"] = column;
        }
        (f.severity == sub::Severity::Error ? c.errors : c.warnings).push_back(std::move(j));
    }
}

Checked check_file(const std::string& file) {
    Checked c;
    c.file = file;
    std::vector<std::uint8_t> bytes;
    try {
        bytes = wec::read_file(file);
    } catch (const wec::Error& e) {
        c.readable = false;
        c.errors.push_back({{"rule", "read"}, {"message", e.what()}});
        return c;
    }
    c.xml = sub::looks_like_xml(bytes);
    try {
        if (c.xml) {
            auto imported = sub::read_windows_xml(bytes, file, {.check_query = false});
            for (const auto& w : imported.warnings)
                c.warnings.push_back({{"rule", "wecutil"}, {"message", w.describe()}});
            c.definition = std::move(imported.subscription);
        } else {
            c.definition = sub::load_toml(wec::as_chars(bytes), file, false);
        }
    } catch (const sub::SubscriptionSyntaxError& e) {
        c.readable = false;
        c.errors.push_back({{"rule", "syntax"}, {"message", e.what()}});
        return c;
    } catch (const sub::WindowsXmlError& e) {
        bool unreadable = e.kind() == sub::WindowsXmlError::Kind::Unreadable ||
                          e.kind() == sub::WindowsXmlError::Kind::Malformed;
        c.readable = !unreadable;
        c.errors.push_back({{"rule", unreadable ? "syntax" : "definition"}, {"message", e.what()}});
        return c;
    } catch (const wec::Error& e) {
        c.errors.push_back({{"rule", "definition"}, {"message", e.what()}});
        return c;
    }
    const auto& query = c.definition->query;
    bool utf16 = bytes.size() >= 2 &&
                 ((bytes[0] == 0xFF && bytes[1] == 0xFE) || (bytes[0] == 0xFE && bytes[1] == 0xFF));
    if (!utf16) {
        c.text = std::string(wec::as_chars(bytes));
        c.query_at = unique_offset(c.text, query);
    }
    add_findings(c, sub::lint(*c.definition));
    return c;
}

std::string text_of(const Checked& c) {
    if (!c.xml) return sub::to_toml(*c.definition);
    auto out = sub::to_windows_xml(*c.definition);
    for (const auto& w : out.warnings)
        std::fprintf(stderr, "wec sub validate: %s: fixed XML: %s\n", c.file.c_str(), w.c_str());
    return out.xml;
}

int run_validate(const ValidateOptions& o) {
    if (o.fix && o.output.empty() && o.files.size() > 1) {
        std::fprintf(stderr, "wec sub validate: --fix with several files writes one file each: "
                             "give the directory with -o DIR\n");
        return kUsage;
    }
    if (o.fix && o.output.empty() && o.json) {
        std::fprintf(stderr, "wec sub validate: --fix --json: give -o OUT (standard output "
                             "holds the report)\n");
        return kUsage;
    }
    // With --fix and no -o the repaired definition is on standard output: the report goes to
    // standard error.
    std::FILE* report = o.fix && o.output.empty() ? stderr : stdout;
    std::vector<Checked> results;
    for (const auto& f : o.files) {
        auto c = check_file(f);
        if (o.fix && c.definition) {
            auto fix = sub::fix_query(c.definition->query);
            c.changes = fix.changes;
            c.definition->query = fix.query;
            c.query_at.reset(); // the problems are now in the repaired query
            c.errors.erase(std::remove_if(c.errors.begin(), c.errors.end(),
                                          [](const nlohmann::json& j) {
                                              return j.value("rule", "") != "wecutil";
                                          }),
                           c.errors.end());
            c.warnings.erase(std::remove_if(c.warnings.begin(), c.warnings.end(),
                                            [](const nlohmann::json& j) {
                                                return j.value("rule", "") != "wecutil";
                                            }),
                             c.warnings.end());
            add_findings(c, sub::lint(*c.definition));
            auto text = text_of(c);
            std::string out = o.output;
            if (!out.empty() && o.files.size() > 1) {
                std::filesystem::create_directories(o.output);
                out = (std::filesystem::path(o.output) / std::filesystem::path(f).filename())
                          .string();
            }
            wec::write_file(out.empty() ? "-" : out, wec::as_bytes(text));
        }
        results.push_back(std::move(c));
    }
    int code = kOk;
    for (const auto& c : results) {
        if (!c.readable)
            code = kUsage;
        else if (!c.errors.empty() && code == kOk)
            code = kPartial;
    }
    if (o.json) {
        nlohmann::json arr = nlohmann::json::array();
        for (const auto& c : results)
            arr.push_back({{"file", c.file},
                           {"format", c.xml ? "wecutil" : "toml"},
                           {"readable", c.readable},
                           {"valid", c.readable && c.errors.empty()},
                           {"name", c.definition ? c.definition->name : ""},
                           {"errors", c.errors},
                           {"warnings", c.warnings},
                           {"fixed", c.changes}});
        std::cout << arr.dump(2) << "\n";
        return code;
    }
    for (const auto& c : results) {
        for (const auto& ch : c.changes)
            std::fprintf(report, "%s: fixed: %s\n", c.file.c_str(), ch.c_str());
        auto print = [&](const nlohmann::json& j, const char* severity) {
            std::string message = j.value("message", "");
            if (j.contains("file_line")) {
                // FILE:LINE:COLUMN in the file, then the position in the query.
                std::fprintf(report, "%s:%zu:%zu: %s: %s\n", c.file.c_str(),
                             j["file_line"].get<std::size_t>(), j["file_column"].get<std::size_t>(),
                             severity, message.c_str());
                return;
            }
            // Errors from the readers already start with the file name.
            if (message.rfind(c.file + ":", 0) == 0) {
                message = message.substr(c.file.size() + 1);
                if (!message.empty() && message.front() == ' ') message.erase(0, 1);
            }
            std::fprintf(report, "%s: %s: %s\n", c.file.c_str(), severity, message.c_str());
        };
        for (const auto& e : c.errors)
            print(e, "error");
        for (const auto& w : c.warnings)
            print(w, "warning");
        if (!c.readable)
            std::fprintf(report, "%s: unreadable\n", c.file.c_str());
        else if (c.errors.empty())
            std::fprintf(report, "%s: valid (%zu warning%s)\n", c.file.c_str(), c.warnings.size(),
                         c.warnings.size() == 1 ? "" : "s");
        else
            std::fprintf(report, "%s: invalid (%zu error%s, %zu warning%s)\n", c.file.c_str(),
                         c.errors.size(), c.errors.size() == 1 ? "" : "s", c.warnings.size(),
                         c.warnings.size() == 1 ? "" : "s");
    }
    return code;
}

// ---- new ------------------------------------------------------------------------------------

struct NewOptions {
    std::string name;
    std::vector<std::string> channels;
    std::string event_ids;
    std::string levels;
    std::string provider;
    std::string content_format = "raw";
    std::string mode = "min-latency";
    std::string output;
    std::string as = "toml";
};

std::vector<std::string> split_list(const std::string& list) {
    std::vector<std::string> out;
    std::string item;
    for (char c : list + ",") {
        if (c == ',' || c == ' ') {
            if (!item.empty()) out.push_back(item);
            item.clear();
        } else {
            item += c;
        }
    }
    return out;
}

std::uint32_t number(const std::string& text, std::uint32_t max, const char* what) {
    std::uint32_t v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || p != text.data() + text.size() || v > max)
        throw wec::Error(std::string("wec sub new: ") + what + ": '" + text +
                         "' is not a number from 0 to " + std::to_string(max));
    return v;
}

// "4624,4625,4634-4647" -> ranges.
std::vector<sub::IdRange> parse_ids(const std::string& list) {
    std::vector<std::uint32_t> ids;
    std::vector<sub::IdRange> ranges;
    for (const auto& item : split_list(list)) {
        auto dash = item.find('-');
        if (dash == std::string::npos) {
            ids.push_back(number(item, 65535, "--event-id"));
            continue;
        }
        auto first = number(item.substr(0, dash), 65535, "--event-id");
        auto last = number(item.substr(dash + 1), 65535, "--event-id");
        if (first > last)
            throw wec::Error("wec sub new: --event-id: range '" + item + "' ends before it starts");
        for (auto id = first; id <= last; ++id)
            ids.push_back(id);
    }
    return sub::compact_ids(std::move(ids));
}

std::vector<std::uint32_t> parse_levels(const std::string& list) {
    std::vector<std::uint32_t> out;
    for (const auto& item : split_list(list)) {
        std::string l;
        for (char c : item)
            l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (l == "critical")
            out.push_back(1);
        else if (l == "error")
            out.push_back(2);
        else if (l == "warning")
            out.push_back(3);
        else if (l == "information" || l == "info")
            out.push_back(4);
        else if (l == "verbose")
            out.push_back(5);
        else
            out.push_back(number(item, 255, "--level"));
    }
    return out;
}

std::string toml_basic(const std::string& text) {
    std::string out = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// The XPath of one channel's Select.
std::string new_xpath(const NewOptions& o) {
    std::vector<std::string> terms;
    if (!o.provider.empty()) {
        if (o.provider.find('\'') != std::string::npos)
            throw wec::Error("wec sub new: --provider: a provider name cannot hold a quote (')");
        terms.push_back("Provider[@Name='" + o.provider + "']");
    }
    auto join = [](const std::vector<std::string>& items) {
        std::string out;
        for (std::size_t i = 0; i < items.size(); ++i)
            out += (i ? " or " : "") + items[i];
        return items.size() > 1 ? "(" + out + ")" : out;
    };
    if (!o.levels.empty()) {
        std::vector<std::string> levels;
        for (auto l : parse_levels(o.levels))
            levels.push_back("Level=" + std::to_string(l));
        terms.push_back(join(levels));
    }
    if (!o.event_ids.empty()) {
        std::vector<std::string> ids;
        for (const auto& r : parse_ids(o.event_ids)) {
            if (r.last - r.first >= 2)
                ids.push_back("(EventID>=" + std::to_string(r.first) +
                              " and EventID<=" + std::to_string(r.last) + ")");
            else
                for (auto id = r.first; id <= r.last; ++id)
                    ids.push_back("EventID=" + std::to_string(id));
        }
        terms.push_back(join(ids));
    }
    if (terms.empty()) return "*";
    std::string out;
    for (std::size_t i = 0; i < terms.size(); ++i)
        out += (i ? " and " : "") + terms[i];
    return "*[System[" + out + "]]";
}

int run_new(const NewOptions& o) {
    auto channels = o.channels.empty() ? std::vector<std::string>{"Security"} : o.channels;
    auto xpath = new_xpath(o);
    std::string query = "<QueryList>\n  <Query Id=\"0\">\n";
    for (const auto& ch : channels)
        query += "    <Select Path=\"" + text::xml_escape(ch) + "\">" + text::xml_escape(xpath) +
                 "</Select>\n";
    query += "  </Query>\n</QueryList>\n";
    auto fix = sub::fix_query(query); // a long --event-id list: several Selects per channel
    query = fix.query;

    sub::Subscription s;
    s.name = o.name;
    s.query = query;
    s.content_format =
        o.content_format == "rendered" ? sub::ContentFormat::RenderedText : sub::ContentFormat::Raw;
    auto mode = o.mode == "normal"          ? sub::ConfigurationMode::Normal
                : o.mode == "min-bandwidth" ? sub::ConfigurationMode::MinBandwidth
                                            : sub::ConfigurationMode::MinLatency;
    auto delivery = sub::delivery_values(mode);
    s.max_latency_s = delivery.max_latency_s;
    s.heartbeat_interval_s = delivery.heartbeat_s;
    s.max_elements = delivery.max_items;
    std::string output_path = "./var/events/{subscription}/{client}.json";
    if (!o.output.empty()) {
        if (o.output.rfind("files:", 0) != 0 || o.output.size() == 6)
            throw wec::Error("wec sub new: --output: expected files:PATH (other drivers: edit the "
                             "[[outputs]] table, docs/subscriptions.md)");
        output_path = o.output.substr(6);
    }
    sub::Output out;
    out.driver = "files";
    out.format = sub::OutputFormat::Json;
    out.options["path"] = output_path;
    s.outputs.push_back(out);
    sub::validate(s, "wec sub new", false); // the name, the output path template

    if (o.as == "wecutil" || o.as == "xml") {
        auto xml = sub::to_windows_xml(s);
        std::cout << xml.xml;
        return kOk;
    }
    std::string t;
    t += "# Subscription '" + o.name + "', written by `wec sub new`.\n";
    t += "# Check it with `wec sub validate FILE`, store it with `wec sub apply FILE --db URL`;\n";
    t += "# every key is described in docs/subscriptions.md.\n";
    t += "name = " + toml_basic(o.name) + "\n";
    t += "description = \"\"\n";
    t += "# What sources send: one <Select> per channel (Windows' limits: 256 Selects, 22 "
         "clauses\n# per Select; `wec sub validate` checks them).\n";
    t += "query = '''\n" + query + "'''\n";
    t += "# \"Raw\": the event XML. \"RenderedText\" adds the message, level and task names "
         "(2-3x larger).\n";
    t += "content_format = \"" + std::string(sub::to_string(s.content_format)) + "\"\n";
    t += "# Delivery (Windows' " + std::string(sub::to_string(mode)) +
         " mode): how long a source may hold events\n# before sending a batch, and how often an "
         "idle source says it is alive (seconds).\n";
    t += "max_latency = " + std::to_string(s.max_latency_s) + "\n";
    t += "heartbeat_interval = " + std::to_string(s.heartbeat_interval_s) + "\n";
    if (s.max_elements)
        t += "max_elements = " + std::to_string(*s.max_elements) + "    # events per batch\n";
    else
        t += "# max_elements = 100    # events per batch (default: no limit)\n";
    t += "# true: a host without a bookmark first sends everything its logs hold (a flood on "
         "busy logs).\n";
    t += "read_existing_events = false\n";
    t += "# Principal globs allowed to use it (default: every client), and refused even when "
         "allowed.\n";
    t += "# allowed_clients = [\"*$@YOUR.REALM\"]\n";
    t += "# denied_clients = [\"DC*$@YOUR.REALM\"]\n";
    t += "\n# Where events go: files, tcp, syslog, unix, kafka, redis (docs/subscriptions.md).\n";
    t += "[[outputs]]\n";
    t += "driver = \"files\"\n";
    t += "path = " + toml_basic(output_path) + "\n";
    t += "format = \"json\"    # raw, json, raw_json, nxlog, ecs\n";
    // What is printed must be what validate and apply accept.
    auto again = sub::load_toml(t, "wec sub new");
    if (sub::has_errors(sub::lint(again)))
        throw wec::Error("wec sub new: the definition written does not validate (a bug)");
    std::cout << t;
    return kOk;
}

// ---- render ---------------------------------------------------------------------------------

struct RenderOptions {
    std::string name;
    std::string db = "sqlite:./var/wec.db";
    std::string as = "wsman";
    std::string client;
    std::string tls_issuer;
    std::string hostname;
    std::uint16_t port = 0;
};

int run_render(const RenderOptions& o) {
    std::optional<sub::Subscription> s;
    std::optional<std::string> bookmark;
    if (std::filesystem::is_regular_file(o.name)) {
        auto bytes = wec::read_file(o.name);
        s = sub::looks_like_xml(bytes) ? sub::read_windows_xml(bytes, o.name).subscription
                                       : sub::load_toml(wec::as_chars(bytes), o.name);
        if (s->uuid.empty()) {
            s->uuid = "00000000-0000-0000-0000-000000000000";
            std::fprintf(stderr,
                         "wec sub render: %s has no uuid: the store assigns one; "
                         "00000000-0000-0000-0000-000000000000 is shown\n",
                         o.name.c_str());
        }
    } else {
        auto store = store::open(o.db);
        s = store->subscription_by_name(o.name);
        if (!s) {
            std::fprintf(stderr,
                         "wec sub render: no subscription named '%s' (see `wec sub list`), and "
                         "no such file\n",
                         o.name.c_str());
            return kUsage;
        }
        if (!o.client.empty()) bookmark = store->bookmark(o.client, s->uuid);
    }
    if (o.as == "querylist") {
        std::cout << s->query << (s->query.empty() || s->query.back() != '\n' ? "\n" : "");
        return kOk;
    }
    if (!o.client.empty() && !sub::allows(*s, o.client))
        std::fprintf(stderr,
                     "wec sub render: note: '%s' is not offered this subscription "
                     "(allowed_clients/denied_clients)\n",
                     o.client.c_str());
    if (!s->enabled)
        std::fprintf(stderr, "wec sub render: note: '%s' is disabled: no source is offered it\n",
                     s->name.c_str());
    pipeline::CollectorConfig config;
    config.hostname = o.hostname.empty() ? config::local_fqdn() : o.hostname;
    pipeline::ClientInfo client;
    client.identity = o.client;
    if (!o.tls_issuer.empty()) {
        client.transport = pipeline::Transport::Https;
        client.issuer_thumbprint = o.tls_issuer;
    }
    if (o.port != 0) config.http_port = config.https_port = o.port;
    auto spec = pipeline::subscription_spec(*s, sub::public_version(*s), config, client, bookmark);
    std::cout << wsman::build_subscribe_envelope(spec) << "\n";
    return kOk;
}

} // namespace

bool lint_for(const char* command, const std::string& file, const sub::Subscription& s,
              std::vector<std::string>* warnings, std::string_view text) {
    auto findings = sub::lint(s);
    auto query_at = unique_offset(text, s.query);
    for (const auto& f : findings) {
        if (warnings != nullptr && f.severity == sub::Severity::Warning) {
            warnings->push_back("query: " + f.where.describe());
            continue;
        }
        std::string where = file;
        if (query_at && f.where.line != 0) {
            auto [line, column] = wec::text::line_column(text, *query_at + f.where.offset);
            where += ":" + std::to_string(line) + ":" + std::to_string(column);
        }
        std::fprintf(stderr, "wec sub %s: %s: %s: query: %s\n", command, where.c_str(),
                     f.severity == sub::Severity::Error ? "error" : "warning",
                     f.where.describe().c_str());
    }
    return !sub::has_errors(findings);
}

void add_sub_tools(CLI::App& sub, Action& action) {
    auto v = std::make_shared<ValidateOptions>();
    auto* va = sub.add_subcommand(
        "validate", "Check definitions (TOML or wecutil XML) as Windows will read their query");
    va->add_option("files", v->files, "TOML definitions or Windows subscription XML files")
        ->required();
    va->add_flag("--fix", v->fix,
                 "Write the definition repaired: over-long Selects split on the same Path, "
                 "consecutive EventIDs as ranges, repeated Selects removed");
    va->add_option("-o,--output", v->output,
                   "With --fix: write to FILE (several inputs: into DIR); default: standard "
                   "output");
    va->add_flag("--json", v->json, "JSON report on standard output");
    va->footer(
        "Checks: the QueryList is well-formed; each Select/Suppress has a Path and an XPath in\n"
        "the subset the Windows event log evaluates (*, System[...], EventData[Data[@Name='x']\n"
        "='y'], and/or/not(), = != < <= > >=, band(), timediff(@SystemTime) <= N, parentheses);\n"
        "at most 22 clauses per Select and 256 Selects per QueryList. An error names the line and\n"
        "column inside the query and the Select. Warnings: a Path not shaped like a Windows log\n"
        "name, repeated Selects, read_existing_events on a busy log such as Security.\n"
        "`wec sub apply` and `wec sub import` run the same checks (errors refuse the file).\n"
        "Examples:\n"
        "  wec sub validate samples/subscriptions/*.toml\n"
        "  wec sub validate Authentication.xml --json\n"
        "  wec sub validate big.toml --fix -o big-fixed.toml\n"
        "  wec sub validate wef-subscriptions/*.xml --fix -o fixed/\n"
        "Exit status: 0 every file is valid (warnings or not), 1 a file is invalid (every\n"
        "problem listed), 2 a file cannot be read or is not TOML/XML at all.");
    va->callback([&action, v] { action = [v] { return run_validate(*v); }; });

    auto n = std::make_shared<NewOptions>();
    auto* ne = sub.add_subcommand("new", "Print a new commented definition (TOML, or wecutil XML)");
    ne->add_option("name", n->name, "Subscription name")->required();
    ne->add_option("--channel", n->channels, "Channel (event log) to read; repeat for several")
        ->default_str("Security");
    ne->add_option("--event-id", n->event_ids, "Event IDs and ranges, e.g. 4624,4625,4740-4767");
    ne->add_option("--level", n->levels,
                   "Levels: numbers or critical, error, warning, information, verbose");
    ne->add_option("--provider", n->provider, "Provider name, e.g. Microsoft-Windows-Sysmon");
    ne->add_option("--content-format", n->content_format, "raw (event XML) or rendered (+ text)")
        ->capture_default_str()
        ->check(CLI::IsMember({"raw", "rendered"}));
    ne->add_option("--mode", n->mode, "Delivery values of this Windows mode")
        ->capture_default_str()
        ->check(CLI::IsMember({"normal", "min-latency", "min-bandwidth"}));
    ne->add_option("--output", n->output,
                   "files:PATH, a files output (template keys {client}, "
                   "{machine}, {subscription}, {node}, {date}, ...)");
    ne->add_option("--as", n->as, "toml, or wecutil XML (for `wecutil cs FILE`)")
        ->capture_default_str()
        ->check(CLI::IsMember({"toml", "wecutil", "xml"}));
    ne->footer("The definition printed passes `wec sub validate` and `wec sub apply` as it is; a\n"
               "long --event-id list is compacted into ranges and split over several Selects.\n"
               "Examples:\n"
               "  wec sub new logons --event-id 4624,4625,4634,4647,4648 > logons.toml\n"
               "  wec sub new sysmon --channel Microsoft-Windows-Sysmon/Operational \\\n"
               "      --output 'files:/var/log/wec/sysmon/{machine}.json' > sysmon.toml\n"
               "  wec sub new errors --channel System --channel Application --level 1,2,3 \\\n"
               "      --content-format rendered --mode normal\n"
               "  wec sub new logons --event-id 4624-4634 --as wecutil > Logons.xml");
    ne->callback([&action, n] { action = [n] { return run_new(*n); }; });

    auto r = std::make_shared<RenderOptions>();
    auto* re = sub.add_subcommand(
        "render", "Print the Subscribe envelope sources get for a subscription (or its query)");
    re->add_option("name", r->name, "Subscription name in the store, or a definition file")
        ->required();
    re->add_option("--db", r->db, "State store URL")->capture_default_str();
    re->add_option("--as", r->as, "wsman (the Subscribe envelope) or querylist")
        ->capture_default_str()
        ->check(CLI::IsMember({"wsman", "querylist"}));
    re->add_option("--client", r->client,
                   "The source's principal (its stored bookmark is included)");
    re->add_option("--tls-issuer", r->tls_issuer,
                   "A source over HTTPS whose certificate this CA issued (SHA-1 thumbprint)");
    re->add_option("--hostname", r->hostname,
                   "Public host name in NotifyTo (default: this host's FQDN, as wec serve)");
    re->add_option("--port", r->port, "Public port in NotifyTo (default: 5985, HTTPS 5986)");
    re->footer("The envelope is made by the code `wec serve` answers an Enumerate with: the same\n"
               "NotifyTo, version, delivery values, authentication policy and bookmark.\n"
               "Examples:\n"
               "  wec sub render security --as wsman --client 'WKS01$@WINDOMAIN.LOCAL'\n"
               "  wec sub render security --as wsman --tls-issuer "
               "0123456789ABCDEF0123456789ABCDEF01234567\n"
               "  wec sub render samples/subscriptions/sysmon.toml --as querylist");
    re->callback([&action, r] { action = [r] { return run_render(*r); }; });
}

} // namespace wec::tool

// `wec decode`: decrypt, decompress and explain WEF traffic from captures (or lone bodies),
// offline.
#include "auth/ntlm_keys.hpp"
#include "commands.hpp"
#include "decode/decode.hpp"
#include "decode/ntlm_secrets.hpp"
#include "krb/keytab.hpp"

#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace wec::tool {
namespace {

struct DecodeOptions {
    std::vector<std::string> inputs;
    std::vector<std::string> keytabs;
    std::vector<std::string> passwords, nt_hashes; // NTLM secrets (any account)
    std::string ntlm_secrets;                      // USER:NTHASH lines
    std::string format = "text";
    bool verbose = false;
    bool events = false;
    std::string event_format = "json";
    std::string export_dir;
    std::string color = "auto";
    std::string progress = "auto";
    bool quiet = false;
    bool json = false; // the summary as one JSON object (last line of stderr)
};

// One problem for the summary: damage of a capture file (where in the file), a gap or an error
// (which connection).
struct Problem {
    std::string input;
    std::string kind; // a damage kind ("bad-length", ...), "gap" or "error"
    std::uint64_t offset = 0, record = 0, connection = 0, bytes = 0;
    std::string text;
};
constexpr std::size_t kMaxProblems = 100;   // listed in the JSON summary (the rest are counted)
constexpr std::size_t kMaxDamageLines = 10; // damage lines of the text summary

// Buffered stdout: one fwrite per ~1 MB.
class Out {
public:
    Out() {
        // Into a pipe (`| jq`, `| wc`), a 1 MB pipe buffer instead of 64 KB: the reader is woken
        // 16 times less often (about a third of the wall time of `--events | wc -l` otherwise).
        struct stat st {};
        if (::fstat(1, &st) == 0 && S_ISFIFO(st.st_mode)) (void)::fcntl(1, F_SETPIPE_SZ, 1 << 20);
    }
    ~Out() { flush(); }
    std::string buf;
    // --events: the formatter writes each event into room it does not zero-fill first (a
    // std::string would be resized, so zero-filled, ahead of every event).
    event::FormatBuffer events;
    void maybe_flush() {
        if (buf.size() + events.size() >= (1u << 20)) flush();
    }
    void flush() {
        if (!buf.empty()) std::fwrite(buf.data(), 1, buf.size(), stdout);
        if (!events.empty()) std::fwrite(events.view().data(), 1, events.size(), stdout);
        buf.clear();
        events.clear();
        std::fflush(stdout);
    }
};

std::string human_bytes(double b) {
    char s[32];
    if (b >= 1e9)
        std::snprintf(s, sizeof s, "%.1f GB", b / 1e9);
    else if (b >= 1e6)
        std::snprintf(s, sizeof s, "%.1f MB", b / 1e6);
    else if (b >= 1e3)
        std::snprintf(s, sizeof s, "%.1f kB", b / 1e3);
    else
        std::snprintf(s, sizeof s, "%.0f B", b);
    return s;
}

class Printer : public decode::Sink {
public:
    Printer(const DecodeOptions& o, Out& out, bool color, bool progress)
        : o_(o), out_(out), progress_(progress) {
        text_.verbose = o.verbose;
        text_.color = color;
        event_format_ = event::parse_format(o.event_format).value_or(event::Format::Json);
        start_ = std::chrono::steady_clock::now();
    }

    std::map<std::string, std::uint64_t> reasons; // undecryptable/auth failures by reason
    std::uint64_t exported = 0;
    std::vector<Problem> problems; // the first kMaxProblems
    std::vector<Problem> damage;   // the first kMaxProblems damage reports
    std::uint64_t problems_omitted = 0, damage_omitted = 0;
    std::vector<std::string> input_errors; // inputs that could not be read (exit code 2)

    void on_record(const decode::Record& r) override {
        if (r.encryption == decode::Encryption::Undecryptable)
            ++reasons[r.reason];
        else if (!r.auth_error.empty())
            ++reasons["auth " + r.auth_reason];
        if (o_.events) {
            decode::append_events(r, event_format_, out_.events);
        } else if (o_.format == "json") {
            decode::format_json(r, out_.buf);
            out_.buf.push_back('\n');
        } else {
            if (r.from_capture && seen_.insert(r.connection).second) {
                out_.buf += "\n";
            }
            decode::format_text(r, text_, out_.buf);
        }
        if (!o_.export_dir.empty() && !decode::export_body(r, o_.export_dir).empty()) ++exported;
        out_.maybe_flush();
    }

    void on_note(const std::string& input, const capture::Note& n) override {
        if (n.kind != capture::NoteKind::Warning) keep(input, n);
        if (o_.quiet && n.kind == capture::NoteKind::Warning) return;
        clear_progress();
        std::string where = input;
        if (n.connection_id != 0)
            where += ": [c" + std::to_string(n.connection_id) + "] " + n.tuple.src.to_string() +
                     " -> " + n.tuple.dst.to_string();
        const char* kind = n.kind == capture::NoteKind::Gap      ? "gap"
                           : n.kind == capture::NoteKind::Error  ? "error"
                           : n.kind == capture::NoteKind::Damage ? "damaged capture"
                                                                 : "warning";
        std::string text = n.text;
        if (n.kind == capture::NoteKind::Gap && text.empty())
            text = std::to_string(n.bytes) + " bytes missing";
        std::fprintf(stderr, "wec decode: %s: %s: %s\n", where.c_str(), kind, text.c_str());
    }

    void keep(const std::string& input, const capture::Note& n) {
        Problem p;
        p.input = input;
        p.kind = n.kind == capture::NoteKind::Damage ? std::string(capture::to_string(n.damage))
                 : n.kind == capture::NoteKind::Gap  ? "gap"
                                                     : "error";
        p.offset = n.offset;
        p.record = n.record;
        p.connection = n.connection_id;
        p.bytes = n.bytes;
        p.text = n.text;
        if (n.kind == capture::NoteKind::Damage) {
            if (damage.size() < kMaxProblems)
                damage.push_back(p);
            else
                ++damage_omitted;
        }
        if (problems.size() < kMaxProblems)
            problems.push_back(std::move(p));
        else
            ++problems_omitted;
    }

    void on_progress(std::uint64_t done, std::uint64_t total) override {
        if (!progress_) return;
        auto now = std::chrono::steady_clock::now();
        if (now - last_ < std::chrono::milliseconds(100) && done < total) return;
        last_ = now;
        double secs = std::chrono::duration<double>(now - start_).count();
        std::string line = "\r";
        if (total > 0) {
            int pct =
                static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total));
            if (pct > 100) pct = 100;
            int fill = pct * 30 / 100;
            line += "[" + std::string(static_cast<std::size_t>(fill), '#') +
                    std::string(static_cast<std::size_t>(30 - fill), '.') + "] " +
                    std::to_string(pct) + "% ";
        }
        line += human_bytes(static_cast<double>(done));
        if (secs > 0.2) line += "  " + human_bytes(static_cast<double>(done) / secs) + "/s";
        line += "   ";
        std::fputs(line.c_str(), stderr);
        shown_ = true;
    }

    void clear_progress() {
        if (!shown_) return;
        std::fputs("\r\033[K", stderr);
        shown_ = false;
    }

private:
    const DecodeOptions& o_;
    Out& out_;
    bool progress_;
    decode::TextOptions text_;
    decode::EventFormat event_format_;
    std::set<std::uint64_t> seen_;
    std::chrono::steady_clock::time_point start_, last_{};
    bool shown_ = false;
};

void print_text_summary(const decode::Stats& s, const Printer& printer, bool no_keytab,
                        const std::string& export_dir);
void print_json_summary(const decode::Stats& s, const Printer& printer, bool no_keytab, int code);

int run_decode(const DecodeOptions& o) {
    krb::KeySet keys;
    for (const auto& k : o.keytabs)
        keys.add_keytab(k); // a bad keytab is a usage error (exit 2)
    if (!o.export_dir.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(o.export_dir, ec);
        if (ec) {
            std::fprintf(stderr, "wec decode: cannot create %s: %s\n", o.export_dir.c_str(),
                         ec.message().c_str());
            return kUsage;
        }
    }
    bool color = o.color == "always" || (o.color == "auto" && ::isatty(1) != 0);
    bool progress = o.progress == "always" || (o.progress == "auto" && ::isatty(2) != 0);
    Out out;
    Printer printer(o, out, color, progress);
    decode::Options options;
    try {
        options.ntlm_secrets = decode::ntlm_secrets(o.passwords, o.nt_hashes, o.ntlm_secrets);
    } catch (const auth::NtlmError& e) {
        std::fprintf(stderr, "wec decode: %s\n", e.what());
        return kUsage;
    }
    // Events only: the body text is not printed, so it is parsed in place.
    options.keep_soap_text = !o.events || !o.export_dir.empty();
    decode::Decoder decoder(keys, printer, options);
    bool input_error = false;
    for (const auto& input : o.inputs) {
        try {
            decoder.decode(input);
        } catch (const decode::InputError& e) {
            printer.clear_progress();
            std::fprintf(stderr, "wec decode: %s\n", e.what());
            input_error = true;
            printer.input_errors.emplace_back(e.what());
        }
    }
    out.flush();
    printer.clear_progress();

    const auto& s = decoder.stats();
    int code = input_error ? kUsage : s.partial() ? kPartial : kOk;
    if (o.json) {
        print_json_summary(s, printer, keys.size() == 0, code);
    } else if (!o.quiet) {
        print_text_summary(s, printer, keys.size() == 0, o.export_dir);
    }
    return code;
}

void print_text_summary(const decode::Stats& s, const Printer& printer, bool no_keytab,
                        const std::string& export_dir) {
    std::string line =
        "wec decode: " + std::to_string(s.connections) + " connection" +
        (s.connections == 1 ? "" : "s") + ", " + std::to_string(s.messages) + " messages (" +
        std::to_string(s.requests) + " requests, " + std::to_string(s.responses) + " responses), " +
        std::to_string(s.decrypted) + " decrypted, " + std::to_string(s.plain) + " plain, " +
        std::to_string(s.undecryptable) + " undecryptable, " + std::to_string(s.failed) +
        " failed, " + std::to_string(s.events) + " events";
    if (s.gaps > 0)
        line += ", " + std::to_string(s.gaps) + " gaps (" + std::to_string(s.gap_bytes) +
                " bytes missing)";
    if (s.errors > 0) line += ", " + std::to_string(s.errors) + " capture errors";
    if (printer.exported > 0)
        line += "; " + std::to_string(printer.exported) + " bodies exported to " + export_dir;
    std::fprintf(stderr, "%s\n", line.c_str());
    if (s.damaged > 0 || s.cut_packets > 0 || s.short_packets > 0) {
        // What was damaged, and where.
        auto plural = [](std::uint64_t n, const char* one, const char* many) {
            return std::to_string(n) + " " + (n == 1 ? one : many);
        };
        std::string d = "wec decode: DAMAGED CAPTURE:";
        if (s.damaged > 0)
            d += " " + plural(s.damaged, "damaged record or block", "damaged records or blocks") +
                 " (" + std::to_string(s.skipped_bytes) + " bytes skipped),";
        if (s.cut_packets > 0)
            d += " " + plural(s.cut_packets, "packet", "packets") +
                 " cut by the snapshot length (" + std::to_string(s.cut_bytes) +
                 " TCP payload bytes missing),";
        if (s.short_packets > 0)
            d += " " +
                 plural(s.short_packets, "packet too short for its headers",
                        "packets too short for their headers") +
                 ",";
        d.pop_back();
        std::fprintf(stderr, "%s\n", d.c_str());
        // Where: "<input>: record 1 at offset 24: bad-length", the details were printed above.
        std::size_t shown = 0;
        for (const auto& p : printer.damage) {
            if (shown++ == kMaxDamageLines) break;
            std::string where = p.text.substr(0, p.text.find(": "));
            std::fprintf(stderr, "wec decode:   %s: %s: %s\n", p.input.c_str(), where.c_str(),
                         p.kind.c_str());
        }
        std::uint64_t all = printer.damage.size() + printer.damage_omitted;
        if (all > kMaxDamageLines)
            std::fprintf(stderr, "wec decode:   ... and %llu more\n",
                         static_cast<unsigned long long>(all - kMaxDamageLines));
    }
    if (!printer.reasons.empty()) {
        std::string r = "wec decode: not decrypted:";
        for (const auto& [reason, n] : printer.reasons)
            r += " " + std::to_string(n) + " " + reason + ",";
        r.pop_back();
        if (no_keytab) r += " (no --keytab given)";
        std::fprintf(stderr, "%s\n", r.c_str());
    }
}

void print_json_summary(const decode::Stats& s, const Printer& printer, bool no_keytab, int code) {
    nlohmann::json j;
    j["inputs"] = s.inputs;
    j["capture_bytes"] = s.capture_bytes;
    j["packets"] = s.packets;
    j["connections"] = s.connections;
    j["messages"] = s.messages;
    j["requests"] = s.requests;
    j["responses"] = s.responses;
    j["decrypted"] = s.decrypted;
    j["plain"] = s.plain;
    j["undecryptable"] = s.undecryptable;
    j["failed"] = s.failed;
    j["events"] = s.events;
    j["gaps"] = s.gaps;
    j["gap_bytes"] = s.gap_bytes;
    j["errors"] = s.errors;
    j["damaged"] = s.damaged;
    j["skipped_bytes"] = s.skipped_bytes;
    j["cut_packets"] = s.cut_packets;
    j["cut_bytes"] = s.cut_bytes;
    j["short_packets"] = s.short_packets;
    j["not_decrypted"] = nlohmann::json::object();
    for (const auto& [reason, n] : printer.reasons)
        j["not_decrypted"][reason] = n;
    j["no_keytab"] = no_keytab;
    auto list = nlohmann::json::array();
    for (const auto& p : printer.problems) {
        nlohmann::json e;
        e["input"] = p.input;
        e["kind"] = p.kind;
        if (p.kind != "gap" && p.kind != "error") {
            e["offset"] = p.offset;
            e[p.kind == "cut-packet" || p.kind == "short-packet" ? "packet" : "record"] = p.record;
        } else {
            e["connection"] = p.connection;
            if (p.record != 0) e["packet"] = p.record;
        }
        e["bytes"] = p.bytes;
        e["text"] = p.text;
        list.push_back(std::move(e));
    }
    j["problems"] = std::move(list);
    j["problems_omitted"] = printer.problems_omitted;
    j["input_errors"] = printer.input_errors;
    j["exit_code"] = code;
    std::fprintf(stderr, "%s\n",
                 j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

} // namespace

void add_decode(CLI::App& app, Action& action) {
    auto o = std::make_shared<DecodeOptions>();
    auto* sub = app.add_subcommand(
        "decode", "Decrypt, decompress and print WEF traffic from pcap/pcapng captures (offline)");
    sub->add_option("inputs", o->inputs, "Capture files or message bodies ('-' for stdin)")
        ->required()
        ->type_name("FILE...");
    sub->add_option("-k,--keytab", o->keytabs,
                    "Keytab with the collector's HTTP/ and HOST/ keys (repeatable; MIT format)")
        ->type_name("FILE")
        ->check(CLI::ExistingFile);
    sub->add_option("--password", o->passwords,
                    "NTLM: an account's password, to derive the session keys of NTLM sessions "
                    "(repeatable)")
        ->type_name("PASS");
    sub->add_option("--nt-hash", o->nt_hashes,
                    "NTLM: an account's NT hash, 32 hex digits "
                    "(repeatable)")
        ->type_name("HEX");
    sub->add_option("--ntlm-secrets", o->ntlm_secrets,
                    "NTLM: file of [DOMAIN\\]USER:NTHASH lines (the secret is tried for that "
                    "user only)")
        ->type_name("FILE")
        ->check(CLI::ExistingFile);
    sub->add_option("-f,--format", o->format, "Transcript format")
        ->check(CLI::IsMember({"text", "json"}))
        ->capture_default_str();
    sub->add_flag("-v,--verbose", o->verbose, "Text format: also print the pretty-printed SOAP");
    sub->add_flag("-e,--events", o->events,
                  "Print only the forwarded events, one per line (as wec serve writes them)");
    sub->add_option("--event-format", o->event_format,
                    "Format of --events (the formats of wec serve outputs)")
        ->check(CLI::IsMember(std::vector<std::string>(std::begin(event::kFormatNames),
                                                       std::end(event::kFormatNames))))
        ->capture_default_str();
    sub->add_option("--export-bodies", o->export_dir,
                    "Write each decrypted, decompressed body to DIR (one file per message)")
        ->type_name("DIR");
    sub->add_option("--color", o->color, "Colour the text transcript")
        ->check(CLI::IsMember({"auto", "always", "never"}))
        ->capture_default_str();
    sub->add_option("--progress", o->progress, "Progress bar on stderr")
        ->check(CLI::IsMember({"auto", "always", "never"}))
        ->capture_default_str();
    sub->add_flag("-q,--quiet", o->quiet, "No summary and no capture warnings on stderr");
    sub->add_flag("--json", o->json,
                  "The summary as one JSON object, the last line of stderr (even with -q)");
    sub->footer(
        "Reads pcap/pcapng captures (gzip too, '-' for stdin) of WinRM/WEF traffic, reassembles\n"
        "TCP, recovers each connection's Kerberos session from the AP-REQ/AP-REP with the\n"
        "service keytab, unwraps and decompresses every body and prints what was said - or only\n"
        "the forwarded events, formatted exactly as `wec serve` writes them. A lone message body\n"
        "(SOAP in UTF-8/UTF-16 or an SLDC record) is accepted instead of a capture.\n\n"
        "Examples:\n"
        "  wec decode samples/captures/wef-kerberos.pcap --keytab samples/captures/wec.keytab\n"
        "  wec decode capture.pcapng.gz -k wec.keytab -v                # with the SOAP bodies\n"
        "  wec decode capture.pcap -k wec.keytab --format json | jq -c '{time, action, events}'\n"
        "  wec decode capture.pcap -k wec.keytab --events > events.jsonl  # as wec serve writes\n"
        "  wec decode capture.pcap -k wec.keytab --events --event-format raw\n"
        "  wec decode capture.pcap -k wec.keytab --events --event-format ecs   # Elastic\n"
        "  wec decode capture.pcap -k wec.keytab --export-bodies bodies/\n"
        "  tcpdump -i eth0 -U -w - 'tcp port 5985' | wec decode - -k wec.keytab\n"
        "  wec decode body.sldc                    # a lone body copied out of Wireshark\n"
        "The keytab is the collector's (HTTP/<fqdn> and HOST/<fqdn>, every kvno in use).\n"
        "Summary and problems go to stderr (--json: the summary as JSON, its last line).\n"
        "Exit: 0 everything decoded, 1 some messages could not be (undecryptable, cut, gaps) or\n"
        "the capture is damaged (cut, bad lengths: what and where on stderr), 2 usage or an\n"
        "input that is not a capture or a body.\n"
        "Output schema and details: docs/decode.md");
    sub->callback([&action, o] { action = [o] { return run_decode(*o); }; });
}

} // namespace wec::tool

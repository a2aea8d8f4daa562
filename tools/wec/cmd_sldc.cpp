// `wec sldc compress|decompress`: SLDC as a filter, for bodies copied out of captures or logs.
#include "commands.hpp"
#include "common/files.hpp"
#include "sldc/sldc.hpp"

#include <cstdio>
#include <memory>
#include <string>

namespace wec::tool {
namespace {

struct SldcOptions {
    std::string input = "-";
    std::string output = "-";
    std::size_t max_output = 64u << 20;
};

int run_compress(const SldcOptions& o) {
    auto data = read_file(o.input);
    write_file(o.output, sldc::compress(data));
    return kOk;
}

int run_decompress(const SldcOptions& o) {
    auto data = read_file(o.input);
    try {
        write_file(o.output, sldc::decompress(data, o.max_output));
    } catch (const sldc::Error& e) {
        std::fprintf(stderr, "wec sldc decompress: %s: %s\n",
                     o.input == "-" ? "<stdin>" : o.input.c_str(), e.what());
        return kUsage;
    }
    return kOk;
}

} // namespace

void add_sldc(CLI::App& app, Action& action) {
    auto* sldc = app.add_subcommand("sldc", "Compress or decompress SLDC (ECMA-321) bodies");
    sldc->require_subcommand(1);
    sldc->footer("Examples:\n"
                 "  wec sldc decompress body.sldc -o body.xml      # a body saved from a capture\n"
                 "  wec sldc compress < message.xml > message.sldc\n"
                 "  wec sldc decompress < body.sldc | iconv -f UTF-16 -t UTF-8");

    auto copts = std::make_shared<SldcOptions>();
    auto* c = sldc->add_subcommand("compress", "Compress FILE (or stdin) as Windows does");
    c->add_option("file", copts->input, "Input file ('-' for stdin)")->capture_default_str();
    c->add_option("-o,--output", copts->output, "Output file ('-' for stdout)")
        ->capture_default_str();
    c->callback([&action, copts] { action = [copts] { return run_compress(*copts); }; });

    auto dopts = std::make_shared<SldcOptions>();
    auto* d = sldc->add_subcommand("decompress", "Decompress one SLDC record from FILE (or stdin)");
    d->add_option("file", dopts->input, "Input file ('-' for stdin)")->capture_default_str();
    d->add_option("-o,--output", dopts->output, "Output file ('-' for stdout)")
        ->capture_default_str();
    d->add_option("--max-output", dopts->max_output, "Refuse to produce more than this many bytes")
        ->capture_default_str();
    d->callback([&action, dopts] { action = [dopts] { return run_decompress(*dopts); }; });
}

} // namespace wec::tool

// `wec sldc compress|decompress`: SLDC as a filter, for bodies copied out of captures or logs.
#include "commands.hpp"
#include "common/files.hpp"
#include "sldc/sldc.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <string>
#include <unistd.h>

namespace wec::tool {
namespace {

struct SldcOptions {
    std::string input = "-";
    std::string output = "-";
    std::size_t max_output = 64u << 20;
    std::string level = "best"; // compress: the optimal parse, or fast (greedy)
};

int run_compress(const SldcOptions& o) {
    auto data = read_file(o.input);
    write_file(o.output, sldc::compress(data, *sldc::level_named(o.level))); // checked by --level
    return kOk;
}

// An open file descriptor (standard input/output are borrowed, not closed).
class Fd {
public:
    Fd(int fd, bool owned) : fd_(fd), owned_(owned) {}
    ~Fd() {
        if (owned_ && fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    // close() for an owned descriptor, reporting its error (a full disk may show only here).
    int close() {
        const int rc = owned_ && fd_ >= 0 ? ::close(fd_) : 0;
        fd_ = -1;
        return rc;
    }

private:
    int fd_;
    bool owned_;
};

// Streams: reads 64 KB at a time and writes the output as it is decoded (fixed memory whatever
// the sizes). On an SLDC error, what was decoded before it has been written.
int run_decompress(const SldcOptions& o) {
    const bool from_stdin = o.input == "-", to_stdout = o.output == "-";
    Fd in(from_stdin ? 0 : ::open(o.input.c_str(), O_RDONLY | O_CLOEXEC), !from_stdin);
    if (in.get() < 0) throw Error("cannot open " + o.input + ": " + std::strerror(errno));
    const std::string in_name = from_stdin ? "<stdin>" : o.input;
    const std::string out_name = to_stdout ? "standard output" : o.output;
    std::unique_ptr<Fd> out; // opened at the first output, as write_file did after decoding
    std::size_t written = 0;
    const sldc::ReadFn read = [&](std::span<std::uint8_t> buffer) -> std::size_t {
        for (;;) {
            const ssize_t n = ::read(in.get(), buffer.data(), buffer.size());
            if (n >= 0) return static_cast<std::size_t>(n);
            if (errno != EINTR) throw Error("cannot read " + in_name + ": " + std::strerror(errno));
        }
    };
    auto open_output = [&] {
        if (out) return;
        const int fd =
            to_stdout ? 1
                      : ::open(o.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) throw Error("cannot create " + o.output + ": " + std::strerror(errno));
        out = std::make_unique<Fd>(fd, !to_stdout);
    };
    const sldc::WriteFn write = [&](std::span<const std::uint8_t> piece) {
        open_output();
        while (!piece.empty()) {
            const ssize_t n = ::write(out->get(), piece.data(), piece.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                throw Error("cannot write " + out_name + ": " + std::strerror(errno));
            }
            piece = piece.subspan(static_cast<std::size_t>(n));
            written += static_cast<std::size_t>(n);
        }
    };
    try {
        sldc::decompress(read, write, o.max_output);
    } catch (const sldc::SldcError& e) {
        std::fprintf(stderr, "wec sldc decompress: %s: %s", in_name.c_str(), e.what());
        if (written > 0) std::fprintf(stderr, " (%zu bytes written before it)", written);
        std::fprintf(stderr, "\n");
        return kUsage;
    }
    open_output(); // an empty record still creates (or empties) the output file
    if (out->close() != 0) throw Error("cannot write " + out_name + ": " + std::strerror(errno));
    return kOk;
}

} // namespace

void add_sldc(CLI::App& app, Action& action) {
    auto* sldc = app.add_subcommand("sldc", "Compress or decompress SLDC (ECMA-321) bodies");
    sldc->require_subcommand(1);
    sldc->footer(
        "Examples:\n"
        "  wec sldc decompress body.sldc -o body.xml      # a body saved from a capture\n"
        "  wec sldc compress < message.xml > message.sldc\n"
        "  wec sldc compress --level fast big.utf16 -o big.sldc  # greedy: several times faster\n"
        "  wec sldc decompress < body.sldc | iconv -f UTF-16 -t UTF-8");

    auto copts = std::make_shared<SldcOptions>();
    auto* c = sldc->add_subcommand(
        "compress", "Compress FILE (or stdin) into one SLDC record, as Windows does by default");
    c->add_option("file", copts->input, "Input file ('-' for stdin)")->capture_default_str();
    c->add_option("-o,--output", copts->output, "Output file ('-' for stdout)")
        ->capture_default_str();
    c->add_option("--level", copts->level,
                  "best (an optimal parse: records shaped like Windows' own) or fast (greedy: "
                  "several times faster, ~15% larger)")
        ->capture_default_str()
        ->check(CLI::IsMember(sldc::level_names()));
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

#include "common/files.hpp"

#include "common/error.hpp"
#include "common/handle.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace wec {
namespace {

std::string describe(const std::string& path) {
    return path == "-" ? "<stdin/stdout>" : path;
}

} // namespace

std::vector<std::uint8_t> read_file(const std::string& path) {
    FilePtr owned;
    std::FILE* f = stdin;
    if (path != "-") {
        owned.reset(std::fopen(path.c_str(), "rb"));
        if (!owned) throw Error("cannot open " + path + ": " + std::strerror(errno));
        f = owned.get();
    }
    std::vector<std::uint8_t> data;
    std::uint8_t chunk[65536];
    for (;;) {
        std::size_t n = std::fread(chunk, 1, sizeof chunk, f);
        data.insert(data.end(), chunk, chunk + n);
        if (n < sizeof chunk) break;
    }
    if (std::ferror(f)) throw Error("cannot read " + describe(path) + ": " + std::strerror(errno));
    return data;
}

void write_file(const std::string& path, std::span<const std::uint8_t> data) {
    FilePtr owned;
    std::FILE* f = stdout;
    if (path != "-") {
        owned.reset(std::fopen(path.c_str(), "wb"));
        if (!owned) throw Error("cannot create " + path + ": " + std::strerror(errno));
        f = owned.get();
    }
    if (std::fwrite(data.data(), 1, data.size(), f) != data.size() || std::fflush(f) != 0)
        throw Error("cannot write " + describe(path) + ": " + std::strerror(errno));
}

} // namespace wec

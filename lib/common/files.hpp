// Whole-file helpers with errors that name the file.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec {

// Reads a whole file (or standard input for "-") as bytes. Throws wec::Error naming the path.
std::vector<std::uint8_t> read_file(const std::string& path);

// Writes bytes to a file (or standard output for "-"), replacing it. Throws wec::Error naming the
// path.
void write_file(const std::string& path, std::span<const std::uint8_t> data);

inline std::string_view as_chars(std::span<const std::uint8_t> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
inline std::span<const std::uint8_t> as_bytes(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

} // namespace wec

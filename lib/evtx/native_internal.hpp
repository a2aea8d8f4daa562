// Our own EVTX reader (the default of evtx::Reader): file header, chunks, records, and the
// records' binary XML rendered straight into the Windows-shaped XML that normalize_xml makes of
// libevtx's rendering, byte for byte, into a reused buffer. Which chunks and records are read
// or skipped follows libevtx (20181227) too, found by comparing the two on damaged files: its
// header and record CRCs only flag damage, so they refuse nothing here either.
#pragma once

#include "common/handle.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace wec::evtx::detail {

class Renderer; // binxml.cpp

// One EVTX file read chunk by chunk (64 KiB in memory at a time). Throws OpenError.
class NativeFile {
public:
    explicit NativeFile(const std::filesystem::path& file);
    ~NativeFile();
    NativeFile(const NativeFile&) = delete;
    NativeFile& operator=(const NativeFile&) = delete;

    // Records in the file's chunks, as libevtx counts them.
    std::uint64_t size() const { return total_; }
    // Renders record `index` (ascending calls are cheap) into `xml`; `header_id` is the record
    // header's identifier. False with `reason` set when the record cannot be read or rendered.
    bool read(std::uint64_t index, std::string& xml, std::uint64_t& header_id, std::string& reason);

private:
    struct Chunk {
        std::uint64_t offset = 0;
        std::uint64_t first_index = 0;
        std::uint32_t records = 0;
    };
    bool load_chunk(std::size_t k, std::string& reason);

    std::filesystem::path path_;
    UniqueFd fd_;
    std::vector<Chunk> chunks_;
    std::uint64_t total_ = 0;
    std::vector<std::uint8_t> data_; // the current chunk
    std::size_t current_ = SIZE_MAX;
    std::vector<std::uint32_t> offsets_; // record offsets in the current chunk
    std::unique_ptr<Renderer> renderer_;
};

// Scans the records of a 64 KiB chunk the way libevtx does: their offsets, in order (appended).
void scan_records(const std::uint8_t* chunk, std::size_t size, std::vector<std::uint32_t>& out);
// first_value into `out` (its capacity reused).
void first_value_to(std::string& out, std::string_view xml, std::string_view name,
                    std::string_view attribute = {});
// A byte normalize_xml reads as part of an element or attribute name. libevtx writes names as
// they are, so a name holding any other byte does not read back as itself ("Event " comes back
// as "Event", "Ev nt" not at all).
constexpr bool name_byte(char c) {
    return c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '>' && c != '/' && c != '=' &&
           c != '<' && c != '"' && c != '\'' && c != '\0';
}
// What libevtx makes of a 64 KiB chunk: records read from it, not a chunk (skipped), or a
// damaged chunk header (libevtx refuses the file).
enum class ChunkState { usable, unused, bad };
ChunkState chunk_state(const std::uint8_t* chunk, std::size_t size);

} // namespace wec::evtx::detail

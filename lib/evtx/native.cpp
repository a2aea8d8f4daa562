// NativeFile: the file header, the chunks and the records' places in them, read with pread into
// one 64 KiB buffer; each record's binary XML rendered by Renderer (binxml.cpp).
#include "common/bytes.hpp"
#include "evtx/binxml_internal.hpp"
#include "evtx/evtx.hpp"
#include "evtx/native_internal.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>

namespace wec::evtx::detail {
namespace {

constexpr std::size_t kFileHeader = 4096;
constexpr std::size_t kChunkSize = 65536;
constexpr std::size_t kChunkHeader = 512;
constexpr std::size_t kRecordHeader = 24;

// Reads exactly `size` bytes at `offset`; false on a short read or an error.
bool read_at(int fd, std::uint8_t* data, std::size_t size, std::uint64_t offset) {
    std::size_t done = 0;
    while (done < size) {
        const auto n = ::pread(fd, data + done, size - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
    }
    return true;
}

} // namespace

ChunkState chunk_state(const std::uint8_t* chunk, std::size_t size) {
    if (size < kChunkSize || std::memcmp(chunk, "ElfChnk", 8) != 0) return ChunkState::unused;
    const std::uint32_t free_space = load_le32(chunk + 48);
    if (load_le32(chunk + 40) != 128 || free_space < kChunkHeader || free_space > kChunkSize)
        return ChunkState::bad;
    return ChunkState::usable;
}

void scan_records(const std::uint8_t* chunk, std::size_t size, std::vector<std::uint32_t>& out) {
    // Up to the last record's offset (the free-space offset is not a bound, as for libevtx).
    const std::uint32_t last = load_le32(chunk + 44);
    const std::size_t end = size;
    std::size_t offset = kChunkHeader;
    while (offset + kRecordHeader <= end && offset <= last) {
        const std::uint8_t* r = chunk + offset;
        if (load_le32(r) != 0x00002a2a) break;
        const std::uint32_t record_size = load_le32(r + 4);
        if (record_size < kRecordHeader + 4 || record_size > end - offset) break;
        if (load_le32(r + record_size - 4) != record_size) break;
        out.push_back(static_cast<std::uint32_t>(offset));
        offset += record_size;
    }
}

NativeFile::NativeFile(const std::filesystem::path& file)
    : path_(file), data_(kChunkSize), renderer_(std::make_unique<Renderer>()) {
    fd_ = UniqueFd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_) throw OpenError(file.string() + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0 || !S_ISREG(st.st_mode))
        throw OpenError(file.string() + ": not a regular file");
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
    std::uint8_t header[kFileHeader];
    if (!read_at(fd_.get(), header, sizeof header, 0) || std::memcmp(header, "ElfFile", 8) != 0)
        throw OpenError(file.string() + ": not a readable EVTX file: no EVTX file header");
    // As libevtx: a header block size other than 4096 yields no chunks; a file marked dirty
    // (flag 1: not closed cleanly) has all the chunks that fit in it, a clean one the number its
    // header says (at most those that fit).
    if (std::size_t{load_le16(header + 40)} != kFileHeader) return;
    const std::uint64_t fit = (file_size - kFileHeader) / kChunkSize;
    const std::uint64_t in_header = load_le16(header + 42);
    const std::uint64_t chunks = (load_le32(header + 120) & 1) ? fit : std::min(fit, in_header);
    std::vector<std::uint32_t> offsets;
    for (std::uint64_t n = 0; n < chunks; ++n) {
        const std::uint64_t at = kFileHeader + n * kChunkSize;
        if (!read_at(fd_.get(), data_.data(), kChunkSize, at)) break;
        const auto state = chunk_state(data_.data(), kChunkSize);
        if (state == ChunkState::bad) // libevtx refuses the file
            throw OpenError(file.string() + ": not a readable EVTX file: chunk " +
                            std::to_string(n) + ": bad chunk header");
        if (state == ChunkState::unused) continue;
        offsets.clear();
        scan_records(data_.data(), kChunkSize, offsets);
        if (offsets.empty()) continue;
        chunks_.push_back(Chunk{at, total_, static_cast<std::uint32_t>(offsets.size())});
        total_ += offsets.size();
    }
}

NativeFile::~NativeFile() = default;

bool NativeFile::load_chunk(std::size_t k, std::string& reason) {
    current_ = SIZE_MAX;
    offsets_.clear();
    if (!read_at(fd_.get(), data_.data(), kChunkSize, chunks_[k].offset)) {
        reason = "cannot read the chunk at offset " + std::to_string(chunks_[k].offset);
        return false;
    }
    if (chunk_state(data_.data(), kChunkSize) == ChunkState::usable)
        scan_records(data_.data(), kChunkSize, offsets_);
    current_ = k;
    renderer_->begin_chunk(data_.data(), kChunkSize);
    return true;
}

bool NativeFile::read(std::uint64_t index, std::string& xml, std::uint64_t& header_id,
                      std::string& reason) {
    std::size_t k = current_ < chunks_.size() ? current_ : 0;
    if (k < chunks_.size() && index < chunks_[k].first_index) k = 0;
    while (k < chunks_.size() && index >= chunks_[k].first_index + chunks_[k].records)
        ++k;
    if (k >= chunks_.size()) {
        reason = "cannot read the record: no such record";
        return false;
    }
    if (k != current_ && !load_chunk(k, reason)) return false;
    const std::uint64_t n = index - chunks_[k].first_index;
    if (n >= offsets_.size()) {
        reason = "cannot read the record: the chunk changed since the file was opened";
        return false;
    }
    const std::uint32_t at = offsets_[n];
    const std::uint8_t* r = data_.data() + at;
    const std::uint32_t size = load_le32(r + 4);
    header_id = load_le64(r + 8);
    try {
        renderer_->render(at + static_cast<std::uint32_t>(kRecordHeader), at + size - 4, xml);
    } catch (const BinXmlError& e) {
        reason = std::string("cannot render the record: ") + e.what();
        return false;
    }
    return true;
}

} // namespace wec::evtx::detail

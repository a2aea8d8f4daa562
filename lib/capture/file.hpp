// The capture file layer (file.cpp): pcap/pcapng files, plain or gzip, read packet by packet
// with damage reported and skipped; and the classification of a file by its first bytes.
#pragma once

#include "capture/types.hpp"

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::capture {

struct Packet {
    TimeNs time = 0;
    int linktype = 0;                   // LINKTYPE_* value of the capture (of its interface)
    std::span<const std::uint8_t> data; // captured bytes (valid until the next call to next())
    std::uint32_t original_length = 0;  // length on the wire
    std::uint64_t index = 0;            // 1-based packet number in the file
    std::uint64_t offset = 0;           // file offset of its record or block (after gunzip)
};

// Reads pcap (microsecond or nanosecond, either byte order) and pcapng (every section and
// interface, each with its link type and timestamp resolution) files, plain or gzip-compressed
// (concatenated members too), with bounded memory. "-" reads standard input.
//
// Damage does not stop the reader: a record or block with an invalid length is reported and the
// reader resynchronises on the next offset where a chain of valid records (blocks) starts; a file
// that ends inside a record is reported as cut. Each problem is queued as a Note of kind
// NoteKind::Damage (file offset, record or block number, bytes skipped) for take_damage().
class CaptureReader {
public:
    static CaptureReader open(const std::string& path);
    // Takes ownership of an open FILE* (closed by the reader). name is used in messages. `head`:
    // bytes already read from the start of `file` (to tell its kind), read again first.
    static CaptureReader from_file(std::FILE* file, std::string name,
                                   std::vector<std::uint8_t> head = {});

    CaptureReader(CaptureReader&&) noexcept;
    CaptureReader& operator=(CaptureReader&&) noexcept;
    ~CaptureReader();

    // The next packet; false at the end of the file (or of what could be read of it). Throws
    // CaptureError on a read error of the underlying file.
    bool next(Packet& out);
    // The oldest damage report not yet taken (kind NoteKind::Damage); false when none is queued.
    bool take_damage(Note& out);

    int linktype() const; // of the file (pcap) or of its first interface (pcapng)
    const std::string& name() const;
    std::uint64_t bytes_read() const;    // capture bytes consumed so far (after gunzip)
    std::uint64_t damage_count() const;  // damage reports so far (taken or not)
    std::uint64_t skipped_bytes() const; // bytes passed over by resynchronisation

private:
    struct Impl;
    explicit CaptureReader(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Single-file detection (for `wec decode body.bin`)

enum class FileKind { Pcap, Pcapng, Gzip, Sldc, Utf16Xml, Utf8Xml, MultipartEncrypted, Unknown };

// Classifies the first bytes of a file (a few hundred bytes are enough).
FileKind detect_file_kind(std::span<const std::uint8_t> head);
std::string_view to_string(FileKind kind);

} // namespace wec::capture

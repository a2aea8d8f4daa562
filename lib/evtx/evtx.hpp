// Windows event log files (.evtx): the records in file order, each rendered to the event XML a
// Windows source forwards for ContentFormat=Raw:
//   <Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>...</System>
//   <EventData>...</EventData></Event>
// on one line, attributes in single quotes, every System element and attribute the record holds,
// EventData or UserData as recorded, binary data as hex (normalize_xml says what is rewritten).
//
// Two readers give the same bytes: our own (the default: file, chunks, records and binary XML
// rendered straight into that shape, ~10x faster) and libyal's libevtx followed by normalize_xml
// (Engine::libevtx, or the environment variable WEC_EVTX_READER=libevtx; the reference the
// tests compare ours with). A record that cannot be read or rendered is skipped, counted and
// reported, never fatal.
#pragma once

#include "common/error.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace wec::evtx {

// The file cannot be opened or is not an EVTX file ("FILE: why").
class OpenError : public wec::Error {
public:
    using wec::Error::Error;
};

// libevtx's XML of a record is not well-formed enough to be rewritten ("offset N: why").
class FormatError : public wec::Error {
public:
    using wec::Error::Error;
};

namespace detail {
class NativeFile;
} // namespace detail

enum class Engine {
    automatic, // native unless the environment says WEC_EVTX_READER=libevtx
    native,    // our own reader
    libevtx,   // libevtx + normalize_xml
};

struct Record {
    std::uint64_t index = 0;     // 0-based position in the file
    std::uint64_t record_id = 0; // System/EventRecordID (libevtx's record identifier if absent)
    std::string xml;             // the event as a Windows source sends it (see above)
    std::string channel;         // System/Channel ("" when absent)
    std::string computer;        // System/Computer ("" when absent)
    std::string time_created;    // TimeCreated/@SystemTime as rendered ("" when absent)
};

struct SkippedRecord {
    std::uint64_t index = 0;
    std::string reason;
};

struct ReadStats {
    std::uint64_t records = 0; // records handed out
    std::uint64_t skipped = 0; // records that could not be read or rendered
};

class Reader {
public:
    using SkipHandler = std::function<void(const SkippedRecord&)>;
    // Throws OpenError. `on_skip` (optional) hears of every skipped record when it is skipped.
    explicit Reader(const std::filesystem::path& file, SkipHandler on_skip = {},
                    Engine engine = Engine::automatic);
    ~Reader();
    Reader(Reader&&) noexcept;
    Reader& operator=(Reader&&) noexcept;
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    // Records in the file according to its chunks (read or skipped, not yet handed out).
    std::uint64_t size() const;
    // The next readable record (false at the end); unreadable ones are skipped on the way.
    bool next(Record& out);
    const ReadStats& stats() const { return stats_; }
    // The reader in use (never Engine::automatic).
    Engine engine() const { return native_ ? Engine::native : Engine::libevtx; }

private:
    struct Handles;
    bool next_libevtx(Record& out);
    bool next_native(Record& out);
    void skip(std::uint64_t index, const std::string& reason);

    std::unique_ptr<Handles> handles_;
    std::unique_ptr<detail::NativeFile> native_;
    std::string reason_;
    std::filesystem::path file_;
    SkipHandler on_skip_;
    ReadStats stats_;
    std::uint64_t next_index_ = 0;
    std::uint64_t count_ = 0;
};

// libevtx's XML of one record rewritten the way Windows renders it: pretty-printing whitespace
// dropped (text between a start tag and its end tag is kept as is), an XML declaration dropped,
// attributes in single quotes, the Event namespace declared on the root, empty elements outside
// System written <X></X> (inside System <X/>), TimeCreated's 100 ns digits trimmed to Windows'
// seven, GUIDs of Provider/Correlation in lower case. Throws FormatError on unbalanced tags, an
// unterminated tag or attribute, or nesting deeper than 256.
std::string normalize_xml(std::string_view libevtx_xml);

// The text of the first element `name` in `xml` with the five predefined entities and numeric
// character references decoded ("" when absent); `attribute` non-empty: that attribute's value.
std::string first_value(std::string_view xml, std::string_view name,
                        std::string_view attribute = {});

} // namespace wec::evtx

// evtx::Reader: our own reader (native.cpp, binxml.cpp), or libevtx's file and record handles
// owned by small RAII types (every libevtx error freed and turned into a message) followed by
// normalize_xml.
#include "common/dynlib.hpp"
#include "evtx/evtx.hpp"
#include "evtx/native_internal.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>

// Debian's libevtx-dev declares the libbfio file-IO-handle functions when libbfio is built in,
// but does not depend on libbfio-dev: without its header those declarations are left out (they
// are not used here; files are opened by path).
#include <libevtx/features.h>
#undef LIBEVTX_HAVE_BFIO
#include <libevtx.h>

namespace wec::evtx {
namespace {

// A record's XML larger than this is not rendered (a template expanding without bound).
constexpr std::size_t kMaxXmlBytes = std::size_t{16} << 20;
// The first rendering buffer (most records' XML is a few KB).
constexpr std::size_t kFirstBuffer = 64 << 10;

// libevtx (the reference reader, Engine::libevtx) is opened when first used, not by every `wec`
// command at start-up (common/dynlib.hpp). The functions this file calls:
// clang-format off
#define WEC_LIBEVTX_FUNCTIONS(X) \
    X(libevtx_error_free) \
    X(libevtx_error_sprint) \
    X(libevtx_file_close) \
    X(libevtx_file_free) \
    X(libevtx_file_get_number_of_records) \
    X(libevtx_file_get_record_by_index) \
    X(libevtx_file_initialize) \
    X(libevtx_file_open) \
    X(libevtx_record_free) \
    X(libevtx_record_get_identifier) \
    X(libevtx_record_get_utf8_xml_string) \
    X(libevtx_record_get_utf8_xml_string_size)
// clang-format on

struct Libevtx {
    SharedLibrary library{"libevtx.so.1", "libevtx1"};
    WEC_LIBEVTX_FUNCTIONS(WEC_DYNLIB_FUNCTION)
};
#undef WEC_LIBEVTX_FUNCTIONS

// Throws OpenError naming `file` when libevtx cannot be opened (tried again by the next call).
const Libevtx& libevtx(const std::filesystem::path& file) {
    try {
        static const Libevtx loaded;
        return loaded;
    } catch (const LibraryError& e) {
        throw OpenError(file.string() + ": the libevtx reader: " + e.what());
    }
}
// Once a libevtx handle exists, the library is loaded.
const Libevtx& libevtx() {
    return libevtx({});
}

// Owns a libevtx_error_t and says what it holds.
class LibError {
public:
    LibError() = default;
    ~LibError() {
        if (error_) libevtx().libevtx_error_free(&error_);
    }
    LibError(const LibError&) = delete;
    LibError& operator=(const LibError&) = delete;
    libevtx_error_t** out() { return &error_; }
    // libevtx's messages, innermost last, joined with "; ".
    std::string text() const {
        if (!error_) return "unknown libevtx error";
        char buffer[2048] = {};
        if (libevtx().libevtx_error_sprint(error_, buffer, sizeof buffer) < 0)
            return "libevtx error";
        std::string s(buffer);
        std::string out;
        std::size_t start = 0;
        while (start < s.size()) {
            auto end = s.find('\n', start);
            if (end == std::string::npos) end = s.size();
            if (end > start) {
                if (!out.empty()) out += "; ";
                out.append(s, start, end - start);
            }
            start = end + 1;
        }
        return out.empty() ? "libevtx error" : out;
    }

private:
    libevtx_error_t* error_ = nullptr;
};

struct RecordDeleter {
    void operator()(libevtx_record_t* record) const {
        libevtx().libevtx_record_free(&record, nullptr);
    }
};
using RecordHandle = std::unique_ptr<libevtx_record_t, RecordDeleter>;

std::uint64_t to_uint(const std::string& s) {
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size() ? v : 0;
}

} // namespace

struct Reader::Handles {
    libevtx_file_t* file = nullptr;
    bool open = false;
    Handles() = default;
    Handles(const Handles&) = delete;
    Handles& operator=(const Handles&) = delete;
    ~Handles() {
        if (open) libevtx().libevtx_file_close(file, nullptr);
        if (file) libevtx().libevtx_file_free(&file, nullptr);
    }
};

Reader::Reader(const std::filesystem::path& file, SkipHandler on_skip, Engine engine)
    : file_(file), on_skip_(std::move(on_skip)) {
    if (engine == Engine::automatic) {
        const char* env = std::getenv("WEC_EVTX_READER");
        engine = env && std::string_view(env) == "libevtx" ? Engine::libevtx : Engine::native;
    }
    if (engine == Engine::native) {
        native_ = std::make_unique<detail::NativeFile>(file_);
        count_ = native_->size();
        return;
    }
    libevtx(file_); // loaded, or OpenError
    handles_ = std::make_unique<Handles>();
    LibError error;
    if (libevtx().libevtx_file_initialize(&handles_->file, error.out()) != 1)
        throw OpenError(file_.string() + ": " + error.text());
    if (libevtx().libevtx_file_open(handles_->file, file_.c_str(), LIBEVTX_OPEN_READ,
                                    error.out()) != 1)
        throw OpenError(file_.string() + ": not a readable EVTX file: " + error.text());
    handles_->open = true;
    int count = 0;
    if (libevtx().libevtx_file_get_number_of_records(handles_->file, &count, error.out()) != 1)
        throw OpenError(file_.string() + ": cannot count records: " + error.text());
    count_ = count > 0 ? static_cast<std::uint64_t>(count) : 0;
}

Reader::~Reader() = default;
Reader::Reader(Reader&&) noexcept = default;
Reader& Reader::operator=(Reader&&) noexcept = default;

std::uint64_t Reader::size() const {
    return count_;
}

void Reader::skip(std::uint64_t index, const std::string& reason) {
    ++stats_.skipped;
    if (on_skip_) on_skip_(SkippedRecord{index, reason});
}

bool Reader::next(Record& out) {
    return native_ ? next_native(out) : next_libevtx(out);
}

bool Reader::next_native(Record& out) {
    while (next_index_ < count_) {
        const auto index = next_index_++;
        std::uint64_t header_id = 0;
        if (!native_->read(index, out.xml, header_id, reason_)) {
            skip(index, reason_);
            continue;
        }
        out.index = index;
        detail::first_value_to(out.channel, out.xml, "Channel");
        detail::first_value_to(out.computer, out.xml, "Computer");
        detail::first_value_to(out.time_created, out.xml, "TimeCreated", "SystemTime");
        detail::first_value_to(reason_, out.xml, "EventRecordID");
        out.record_id = to_uint(reason_);
        if (out.record_id == 0) out.record_id = header_id;
        ++stats_.records;
        return true;
    }
    return false;
}

bool Reader::next_libevtx(Record& out) {
    std::string raw;
    while (next_index_ < count_) {
        const auto index = next_index_++;
        auto skip = [&](const std::string& reason) { this->skip(index, reason); };
        LibError error;
        libevtx_record_t* handle = nullptr;
        if (libevtx().libevtx_file_get_record_by_index(handles_->file, static_cast<int>(index),
                                                       &handle, error.out()) != 1 ||
            !handle) {
            skip("cannot read the record: " + error.text());
            continue;
        }
        RecordHandle record(handle);
        // libevtx renders the record for the size query and again for the string: render once
        // into a buffer that is usually large enough, and ask for the size only when it is not.
        raw.resize(std::max<std::size_t>(raw.capacity(), kFirstBuffer));
        if (libevtx().libevtx_record_get_utf8_xml_string(
                record.get(), reinterpret_cast<std::uint8_t*>(raw.data()), raw.size(), nullptr) !=
            1) {
            std::size_t size = 0;
            if (libevtx().libevtx_record_get_utf8_xml_string_size(record.get(), &size,
                                                                  error.out()) != 1 ||
                size == 0) {
                skip("cannot render the record: " + error.text());
                continue;
            }
            if (size > kMaxXmlBytes) {
                skip("the record's XML is " + std::to_string(size) + " bytes (limit " +
                     std::to_string(kMaxXmlBytes) + ")");
                continue;
            }
            raw.assign(size, '\0');
            if (libevtx().libevtx_record_get_utf8_xml_string(
                    record.get(), reinterpret_cast<std::uint8_t*>(raw.data()), size, error.out()) !=
                1) {
                skip("cannot render the record: " + error.text());
                continue;
            }
        }
        raw.resize(std::strlen(raw.c_str()));
        try {
            out.xml = normalize_xml(raw);
        } catch (const FormatError& e) {
            skip(std::string("libevtx rendered malformed XML: ") + e.what());
            continue;
        }
        out.index = index;
        out.channel = first_value(out.xml, "Channel");
        out.computer = first_value(out.xml, "Computer");
        out.time_created = first_value(out.xml, "TimeCreated", "SystemTime");
        out.record_id = to_uint(first_value(out.xml, "EventRecordID"));
        if (out.record_id == 0) {
            std::uint64_t id = 0;
            if (libevtx().libevtx_record_get_identifier(record.get(), &id, nullptr) == 1)
                out.record_id = id;
        }
        ++stats_.records;
        return true;
    }
    return false;
}

} // namespace wec::evtx

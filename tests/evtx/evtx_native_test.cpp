// Our own EVTX reader (evtx::Engine::native) against the libevtx path (Engine::libevtx, the
// reference): for every record of every EVTX file of tests/data/evtx, and of damaged and cut
// copies of security.evtx, the same record count, the same records skipped (by index) and
// byte-identical XML and Record fields.
#include "evtx/evtx.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>

namespace {

namespace fs = std::filesystem;
namespace evtx = wec::evtx;
using namespace wec::testing;

const fs::path kData = fs::path(WEC_TEST_DATA) / "evtx";

struct Read {
    std::uint64_t size = 0;
    std::vector<evtx::Record> records;
    std::vector<evtx::SkippedRecord> skipped;
};

Read read_all(const fs::path& file, evtx::Engine engine) {
    Read r;
    evtx::Reader reader(
        file, [&](const evtx::SkippedRecord& s) { r.skipped.push_back(s); }, engine);
    EXPECT_EQ(reader.engine(), engine);
    r.size = reader.size();
    evtx::Record record;
    while (reader.next(record))
        r.records.push_back(record);
    EXPECT_EQ(reader.stats().records, r.records.size());
    EXPECT_EQ(reader.stats().skipped, r.skipped.size());
    EXPECT_EQ(r.records.size() + r.skipped.size(), r.size);
    return r;
}

// Returns the number of records compared.
std::size_t expect_identical(const fs::path& file) {
    SCOPED_TRACE(file.string());
    const auto reference = read_all(file, evtx::Engine::libevtx);
    const auto ours = read_all(file, evtx::Engine::native);
    EXPECT_EQ(ours.size, reference.size);
    EXPECT_EQ(ours.skipped.size(), reference.skipped.size());
    for (std::size_t k = 0; k < std::min(ours.skipped.size(), reference.skipped.size()); ++k) {
        EXPECT_EQ(ours.skipped[k].index, reference.skipped[k].index);
        EXPECT_NE(ours.skipped[k].reason.find("cannot"), std::string::npos)
            << ours.skipped[k].reason;
    }
    EXPECT_EQ(ours.records.size(), reference.records.size());
    std::size_t compared = 0;
    for (std::size_t k = 0; k < std::min(ours.records.size(), reference.records.size()); ++k) {
        const auto& a = ours.records[k];
        const auto& b = reference.records[k];
        EXPECT_EQ(a.index, b.index);
        EXPECT_EQ(a.xml, b.xml) << "record " << a.index;
        if (a.index != b.index || a.xml != b.xml) break; // one difference is enough to read
        EXPECT_EQ(a.record_id, b.record_id) << "record " << a.index;
        EXPECT_EQ(a.channel, b.channel) << "record " << a.index;
        EXPECT_EQ(a.computer, b.computer) << "record " << a.index;
        EXPECT_EQ(a.time_created, b.time_created) << "record " << a.index;
        ++compared;
    }
    return compared;
}

TEST(EvtxNative, EveryRecordOfEverySampleIsByteIdenticalToLibevtx) {
    std::size_t files = 0, records = 0;
    for (const auto& entry : fs::directory_iterator(kData)) {
        if (entry.path().extension() != ".evtx") continue;
        ++files;
        records += expect_identical(entry.path());
    }
    EXPECT_EQ(files, 4u);
    // security 2,261 + system 1,601 + issue_38 1 + dns_log_malformed 5.
    EXPECT_EQ(records, 2261u + 1601u + 1u + 5u);
}

TEST(EvtxNative, DamagedAndCutFilesAreReadAsLibevtxReadsThem) {
    TempDir dir;
    const auto original = slurp(kData / "security.evtx");
    auto write = [&](const std::string& name, const std::string& bytes) {
        auto file = dir.path() / name;
        std::ofstream(file, std::ios::binary) << bytes;
        return file;
    };
    // Record data of the first chunk overwritten: the chunk's records up to the damage.
    auto damaged = original;
    for (std::size_t k = 0x1000 + 0x2000; k < 0x1000 + 0x6000; ++k)
        damaged[k] = static_cast<char>(0xA5 ^ (k * 31));
    EXPECT_EQ(expect_identical(write("damaged.evtx", damaged)), 2179u);
    // Cut in the middle of a chunk: the whole chunks before it.
    EXPECT_EQ(
        expect_identical(write("cut.evtx", original.substr(0, 0x1000 + 0x10000 * 3 + 0x7000))),
        260u);
    // One record's substitution values overwritten: that record skipped.
    auto one = original;
    for (std::size_t k = 0x2098 + 40; k < 0x2098 + 56; ++k)
        one[k] = '\xFF';
    EXPECT_EQ(expect_identical(write("one.evtx", one)), 2260u);
    // A chunk header's signature broken: the chunk's records are not counted.
    auto unsigned_chunk = original;
    unsigned_chunk[0x1000 + 0x10000] = 'X';
    EXPECT_EQ(expect_identical(write("unsigned.evtx", unsigned_chunk)), 2261u - 86u);
    // Only the file header, and no file header.
    EXPECT_EQ(expect_identical(write("header.evtx", original.substr(0, 0x1000))), 0u);
    EXPECT_THROW(evtx::Reader(write("text.evtx", "not an event log\n"), {}, evtx::Engine::native),
                 evtx::OpenError);
    EXPECT_THROW(evtx::Reader(dir.path() / "missing.evtx", {}, evtx::Engine::native),
                 evtx::OpenError);
}

// Every byte of dns_log_malformed.evtx's records (its chunk from the chunk header on) flipped,
// one at a time: our reader and libevtx count, skip and render the same records.
TEST(EvtxNative, EveryByteOfTheRecordsFlippedReadsAsLibevtx) {
    TempDir dir;
    const auto original = slurp(kData / "dns_log_malformed.evtx");
    ASSERT_EQ(original.size(), 0x1000u + 0x10000u);
    const auto file = dir.path() / "flipped.evtx";
    std::size_t flips = 0;
    for (std::size_t at = 0x1000 + 0x200; at < 0x1000 + 0x1400; ++at) {
        auto bytes = original;
        bytes[at] = static_cast<char>(bytes[at] ^ 0xFF);
        std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
        SCOPED_TRACE("byte " + std::to_string(at) + " flipped");
        expect_identical(file);
        ++flips;
        if (::testing::Test::HasFailure()) break; // one difference is enough to read
    }
    EXPECT_EQ(flips, 0x1200u);
}

// A value in element content after a child element (the fuzzer's find: the BinXml value that
// holds EventData turned into an ANSI or UTF-16 string, so Event has System and text): libevtx
// prints an element's value instead of its children (the record comes out as Event with the
// string only, System gone); ours refuses the record. The other records are the same.
TEST(EvtxNative, TextAfterAChildElementRefusesTheRecord) {
    TempDir dir;
    const auto original = slurp(kData / "dns_log_malformed.evtx");
    // Record 3's value 19 (its EventData, binary XML) descriptor's type byte.
    constexpr std::size_t kType = 8656;
    ASSERT_EQ(static_cast<unsigned char>(original.at(kType)), 0x21u);
    for (const char type : {'\x02', '\x01'}) {
        SCOPED_TRACE("value type " + std::to_string(type));
        auto bytes = original;
        bytes[kType] = type;
        const auto file = dir.path() / "mixed.evtx";
        std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
        const auto reference = read_all(file, evtx::Engine::libevtx);
        const auto ours = read_all(file, evtx::Engine::native);
        ASSERT_EQ(reference.size, 5u);
        ASSERT_EQ(ours.size, 5u);
        const auto mixed = std::find_if(reference.records.begin(), reference.records.end(),
                                        [](const auto& r) { return r.index == 3; });
        ASSERT_NE(mixed, reference.records.end());
        EXPECT_EQ(mixed->xml.find("<System>"), std::string::npos) << mixed->xml;
        ASSERT_EQ(ours.skipped.size(), reference.skipped.size() + 1);
        const auto refused = std::find_if(ours.skipped.begin(), ours.skipped.end(),
                                          [](const auto& s) { return s.index == 3; });
        ASSERT_NE(refused, ours.skipped.end());
        EXPECT_NE(refused->reason.find("text after an element in the same element"),
                  std::string::npos)
            << refused->reason;
        ASSERT_EQ(ours.records.size() + 1, reference.records.size());
        std::size_t same = 0;
        for (const auto& r : ours.records) {
            const auto it = std::find_if(reference.records.begin(), reference.records.end(),
                                         [&](const auto& x) { return x.index == r.index; });
            ASSERT_NE(it, reference.records.end());
            EXPECT_EQ(r.xml, it->xml) << "record " << r.index;
            ++same;
        }
        EXPECT_EQ(same, 4u);
    }
}

// An element name that is not an XML name (the fuzzer's find: "Event" damaged into "Even "):
// libevtx writes it as it is and normalize_xml reads "<Even  xmlns=…>…</Even >" back as "Even",
// so the reference renders a record with another name; a space inside ("Ev nt") does not parse
// and the reference skips. Ours refuses both.
TEST(EvtxNative, ANameThatIsNotAnXmlNameRefusesTheRecord) {
    TempDir dir;
    const auto original = slurp(kData / "dns_log_malformed.evtx");
    // The UTF-16 characters of the root element's name in the chunk's first template.
    constexpr std::size_t kName = 4693;
    ASSERT_EQ(original.substr(kName, 10), std::string("E\0v\0e\0n\0t\0", 10));
    const auto file = dir.path() / "name.evtx";
    auto bytes = original;
    bytes[kName + 8] = ' ';
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    const auto reference = read_all(file, evtx::Engine::libevtx);
    const auto ours = read_all(file, evtx::Engine::native);
    ASSERT_FALSE(reference.records.empty());
    for (const auto& r : reference.records)
        EXPECT_EQ(r.xml.rfind("<Even xmlns=", 0), 0u) << r.xml;
    EXPECT_TRUE(ours.records.empty());
    ASSERT_EQ(ours.skipped.size(), 5u);
    for (const auto& s : ours.skipped)
        EXPECT_NE(s.reason.find("a name that is not an XML name"), std::string::npos) << s.reason;
    // A space inside the name: neither reader renders those records.
    bytes = original;
    bytes[kName + 4] = ' ';
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    EXPECT_EQ(expect_identical(file), 0u);
}

TEST(EvtxNative, EnvironmentSelectsTheReader) {
    const auto file = kData / "issue_38.evtx";
    ::unsetenv("WEC_EVTX_READER");
    EXPECT_EQ(evtx::Reader(file).engine(), evtx::Engine::native);
    ::setenv("WEC_EVTX_READER", "libevtx", 1);
    EXPECT_EQ(evtx::Reader(file).engine(), evtx::Engine::libevtx);
    EXPECT_EQ(evtx::Reader(file, {}, evtx::Engine::native).engine(), evtx::Engine::native);
    ::unsetenv("WEC_EVTX_READER");
}

} // namespace

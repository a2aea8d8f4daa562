// lib/evtx: every record of real Windows event logs read and rendered, then checked field by
// field (System elements and attributes, EventData name/value pairs and Binary, UserData leaves)
// against python-evtx's rendering of the same file (tests/evtx/evtx_fields.py); damaged files
// are read without a crash, their bad records skipped and counted.
#include "evtx/evtx.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

#include <algorithm>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>

namespace {

namespace fs = std::filesystem;
namespace evtx = wec::evtx;
using namespace wec::testing;

const fs::path kData = fs::path(WEC_TEST_DATA) / "evtx";
constexpr std::string_view kNs = "http://schemas.microsoft.com/win/2004/08/events/event";

struct Fields {
    std::map<std::string, std::string> system;
    std::vector<std::pair<std::string, std::string>> data;
    std::vector<std::pair<std::string, std::string>> user_data;
};

std::string local(const char* name) {
    std::string s(name);
    auto colon = s.rfind(':');
    return colon == std::string::npos ? s : s.substr(colon + 1);
}

void leaves(const pugi::xml_node& node, const std::string& path,
            std::vector<std::pair<std::string, std::string>>& out) {
    bool children = false;
    for (auto child : node.children())
        if (child.type() == pugi::node_element) {
            children = true;
            leaves(child, path + "/" + local(child.name()), out);
        }
    if (!children) out.emplace_back(path, node.text().get());
}

// The same flattening as evtx_fields.py, of our XML.
Fields fields_of(const std::string& xml) {
    pugi::xml_document doc;
    auto parsed = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default);
    EXPECT_TRUE(parsed) << parsed.description() << ": " << xml;
    Fields f;
    auto event = doc.child("Event");
    EXPECT_EQ(std::string_view(event.attribute("xmlns").value()), kNs) << xml;
    for (auto child : event.child("System").children()) {
        if (child.type() != pugi::node_element) continue;
        std::string name = child.name();
        std::string text = child.text().get();
        if (text.find_first_not_of(" \t\r\n") != std::string::npos) f.system[name] = text;
        for (auto a : child.attributes())
            f.system[name + "@" + local(a.name())] = a.value();
    }
    for (auto child : event.child("EventData").children()) {
        if (child.type() != pugi::node_element) continue;
        std::string name =
            std::string(child.name()) == "Binary" ? "Binary" : child.attribute("Name").value();
        f.data.emplace_back(name, child.text().get());
    }
    for (auto child : event.child("UserData").children())
        if (child.type() == pugi::node_element) leaves(child, local(child.name()), f.user_data);
    return f;
}

std::string base64_to_hex(const std::string& b64) {
    static const std::string chars =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string bytes;
    unsigned buffer = 0;
    int bits = 0;
    for (char c : b64) {
        auto p = chars.find(c);
        if (p == std::string::npos) continue;
        buffer = (buffer << 6) | static_cast<unsigned>(p);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes += static_cast<char>((buffer >> bits) & 0xFF);
        }
    }
    std::string hex;
    for (unsigned char c : bytes) {
        const char* digits = "0123456789ABCDEF";
        hex += digits[c >> 4];
        hex += digits[c & 15];
    }
    return hex;
}

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// "2016-07-08T18:12:51.6816408Z" (ours) vs "2016-07-08 18:12:51.681641" (python-evtx, in
// microseconds): the same second, fractions within 5 microseconds.
void expect_same_time(const std::string& ours, const std::string& theirs, std::uint64_t index) {
    ASSERT_GE(ours.size(), 20u) << ours;
    EXPECT_EQ(ours.substr(0, 10) + " " + ours.substr(11, 8), theirs.substr(0, 19)) << index;
    auto fraction = [](const std::string& s, std::size_t at, int digits) {
        long long v = 0;
        int n = 0;
        for (std::size_t k = at;
             k < s.size() && n < digits && std::isdigit(static_cast<unsigned char>(s[k])); ++k, ++n)
            v = v * 10 + (s[k] - '0');
        for (; n < digits; ++n)
            v *= 10;
        return v;
    };
    long long ticks = ours.size() > 20 && ours[19] == '.' ? fraction(ours, 20, 7) : 0;
    long long micros = theirs.size() > 20 && theirs[19] == '.' ? fraction(theirs, 20, 6) : 0;
    // python-evtx converts through a double: up to a few microseconds off.
    EXPECT_LE(std::llabs(ticks - micros * 10), 50) << index << ": " << ours << " vs " << theirs;
    EXPECT_EQ(ours.back(), 'Z') << ours;
}

bool is_guid(const std::string& v) {
    return v.size() == 38 && v.front() == '{' && v.back() == '}';
}
bool is_time(const std::string& v) {
    return v.size() >= 20 && v[10] == 'T' && v.back() == 'Z';
}

// A value of ours against python-evtx's: equal, or the same GUID or boolean in another case
// (Windows writes "true"), or the same time in python-evtx's form.
void expect_same_value(const std::string& mine, const std::string& theirs, std::uint64_t index,
                       const std::string& what) {
    if ((is_guid(mine) && is_guid(theirs)) || theirs == "True" || theirs == "False") // Python's
        EXPECT_EQ(lower(mine), lower(theirs)) << "record " << index << " " << what;
    else if (is_time(mine) && theirs.size() >= 19 && theirs[10] == ' ')
        expect_same_time(mine, theirs, index);
    else
        EXPECT_EQ(mine, theirs) << "record " << index << " " << what;
}

// Known differences of python-evtx's rendering, counted (see expect_same).
struct Divergences {
    std::size_t string_arrays = 0;      // records
    std::size_t control_characters = 0; // values
    std::size_t empty_arrays = 0;       // values
};
Divergences divergences;

void expect_same(const Fields& ours, const nlohmann::json& theirs, std::uint64_t index) {
    std::map<std::string, std::string> expected;
    for (auto& [k, v] : theirs["system"].items())
        expected[k] = v.get<std::string>();
    for (const auto& [key, value] : expected) {
        auto it = ours.system.find(key);
        if (value.empty()) { // python-evtx prints absent substitutions as empty attributes
            if (it != ours.system.end()) {
                EXPECT_EQ(it->second, "") << index << " " << key;
            }
            continue;
        }
        ASSERT_NE(it, ours.system.end()) << "record " << index << ": no " << key;
        expect_same_value(it->second, value, index, key);
    }
    for (const auto& [key, value] : ours.system)
        EXPECT_TRUE(expected.count(key)) << "record " << index << ": " << key << " only in ours";
    const auto& data = theirs["data"];
    // python-evtx renders a string-array substitution (classic EventLog events) as one <Data> of
    // "<string>...</string>" items where libevtx, like Windows, writes one <Data> per string:
    // then every non-empty value of ours must be one of its items.
    for (const auto& d : data)
        if (d[1].get<std::string>().rfind("<string>", 0) == 0) {
            ++divergences.string_arrays;
            for (const auto& [name, value] : ours.data) {
                if (name.empty() && !value.empty()) {
                    EXPECT_NE(d[1].get<std::string>().find("<string>" + value + "</string>"),
                              std::string::npos)
                        << "record " << index << ": " << value;
                }
            }
            return;
        }
    // An empty string array: python-evtx renders one empty unnamed <Data>, libevtx none.
    std::vector<std::pair<std::string, std::string>> expected_data;
    for (const auto& d : data) {
        if (d[0] == "" && d[1] == "" && ours.data.size() < data.size()) {
            ++divergences.empty_arrays;
            continue;
        }
        expected_data.emplace_back(d[0], d[1]);
    }
    ASSERT_EQ(ours.data.size(), expected_data.size()) << "record " << index;
    for (std::size_t k = 0; k < expected_data.size(); ++k) {
        auto [name, value] = expected_data[k];
        EXPECT_EQ(ours.data[k].first, name) << "record " << index << " data " << k;
        const auto& mine = ours.data[k].second;
        // Binary data: hex in ours (as Windows renders it), base64 in python-evtx's.
        if (mine != value && value.size() % 4 == 0 &&
            (name == "Binary" || mine == base64_to_hex(value)))
            value = base64_to_hex(value);
        // A value of C0 control characters only (U+FFFD in ours): python-evtx renders it empty.
        if (value.empty() && !mine.empty() && mine.size() % 3 == 0 &&
            mine.find_first_not_of("\xEF\xBF\xBD") == std::string::npos) {
            ++divergences.control_characters;
            continue;
        }
        expect_same_value(mine, value, index, "data " + name);
    }
    const auto& user = theirs["user_data"];
    ASSERT_EQ(ours.user_data.size(), user.size()) << "record " << index;
    for (std::size_t k = 0; k < user.size(); ++k) {
        EXPECT_EQ(ours.user_data[k].first, user[k][0].get<std::string>()) << index;
        expect_same_value(ours.user_data[k].second, user[k][1].get<std::string>(), index,
                          ours.user_data[k].first);
    }
}

// python-evtx's fields of every record of `file`, by index.
std::vector<nlohmann::json> python_fields(const fs::path& file) {
    TempDir dir;
    auto out = dir.path() / "fields.jsonl";
    auto r = run({"/bin/sh", "-c",
                  std::string("/usr/bin/python3 ") + EVTX_FIELDS_PY + " '" + file.string() +
                      "' > '" + out.string() + "'"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::vector<nlohmann::json> lines;
    for (const auto& line : lines_of(slurp(out)))
        lines.push_back(nlohmann::json::parse(line));
    return lines;
}

struct Read {
    std::vector<evtx::Record> records;
    std::vector<evtx::SkippedRecord> skipped;
    std::uint64_t size = 0;
};
Read read_all(const fs::path& file) {
    Read r;
    evtx::Reader reader(file, [&](const evtx::SkippedRecord& s) { r.skipped.push_back(s); });
    r.size = reader.size();
    evtx::Record record;
    while (reader.next(record))
        r.records.push_back(record);
    EXPECT_EQ(reader.stats().records, r.records.size());
    EXPECT_EQ(reader.stats().skipped, r.skipped.size());
    return r;
}

void check_against_python(const std::string& name, std::size_t expected_records,
                          std::size_t string_arrays, std::size_t control_characters,
                          std::size_t empty_arrays) {
    divergences = {};
    auto file = kData / name;
    auto ours = read_all(file);
    auto theirs = python_fields(file);
    EXPECT_EQ(ours.size, expected_records);
    ASSERT_EQ(ours.records.size(), expected_records);
    EXPECT_TRUE(ours.skipped.empty()) << ours.skipped.front().reason;
    ASSERT_EQ(theirs.size(), expected_records);
    for (std::size_t i = 0; i < ours.records.size(); ++i) {
        const auto& r = ours.records[i];
        ASSERT_EQ(r.index, i);
        ASSERT_FALSE(theirs[i].contains("error")) << theirs[i].dump();
        auto f = fields_of(r.xml);
        expect_same(f, theirs[i], i);
        // The Record's own fields agree with the XML.
        EXPECT_EQ(r.channel, f.system["Channel"]);
        EXPECT_EQ(r.computer, f.system["Computer"]);
        EXPECT_EQ(std::to_string(r.record_id), f.system["EventRecordID"]);
        EXPECT_EQ(r.time_created, f.system["TimeCreated@SystemTime"]);
        // One line, Windows' shape.
        EXPECT_EQ(r.xml.rfind("<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/"
                              "event'><System><Provider ",
                              0),
                  0u)
            << r.xml;
        EXPECT_EQ(r.xml.find("\n  <"), std::string::npos) << r.xml;
        if (::testing::Test::HasFailure()) return; // one record's differences are enough to read
    }
    EXPECT_EQ(divergences.string_arrays, string_arrays);
    EXPECT_EQ(divergences.control_characters, control_characters);
    EXPECT_EQ(divergences.empty_arrays, empty_arrays);
}

TEST(Evtx, SecurityLogMatchesPythonEvtx) {
    check_against_python("security.evtx", 2261, 0, 2, 0);
}
TEST(Evtx, SystemLogMatchesPythonEvtx) {
    check_against_python("system.evtx", 1601, 50, 0, 8);
}
TEST(Evtx, Issue38MatchesPythonEvtx) {
    check_against_python("issue_38.evtx", 1, 0, 0, 0);
}

TEST(Evtx, WindowsShapeOfARecord) {
    auto r = read_all(kData / "system.evtx");
    ASSERT_GT(r.records.size(), 2u);
    // A Service Control Manager event with Qualifiers, EventSourceName and binary data as hex.
    const auto& xml = r.records[1].xml;
    EXPECT_NE(xml.find("<Provider Name='Service Control Manager' "
                       "Guid='{555908d1-a6d7-4695-8e1e-26931d2012f4}' EventSourceName='Service "
                       "Control Manager'/><EventID Qualifiers='16384'>7036</EventID>"),
              std::string::npos)
        << xml;
    EXPECT_NE(xml.find("<TimeCreated SystemTime='2012-03-14T04:17:38.2763"), std::string::npos)
        << xml;
    EXPECT_NE(xml.find("<Binary>540072007500730074006500640049006E007300740061006C006C00650072002F"
                       "0031000000</Binary></EventData></Event>"),
              std::string::npos)
        << xml;
    EXPECT_EQ(r.records[1].record_id, 12050u);
    EXPECT_EQ(r.records[1].channel, "System");
    EXPECT_EQ(r.records[1].computer, "WKS-WIN764BITB.shieldbase.local");
}

TEST(Evtx, DamagedLogIsReadWithoutCrash) {
    // Damaged on purpose upstream: python-evtx renders 1 of its 5 records; we read them all or
    // skip and count, never crash, and what python-evtx renders agrees.
    auto ours = read_all(kData / "dns_log_malformed.evtx");
    EXPECT_EQ(ours.records.size() + ours.skipped.size(), 5u);
    EXPECT_GE(ours.records.size(), 1u);
    auto theirs = python_fields(kData / "dns_log_malformed.evtx");
    ASSERT_EQ(theirs.size(), 5u);
    for (const auto& r : ours.records) {
        ASSERT_LT(r.index, theirs.size());
        if (!theirs[r.index].contains("error"))
            expect_same(fields_of(r.xml), theirs[r.index], r.index);
    }
}

TEST(Evtx, CorruptedChunksAreSkippedAndCounted) {
    TempDir dir;
    auto original = slurp(kData / "security.evtx");
    ASSERT_GT(original.size(), 0x11000u + 0x10000u);
    // Overwrite record data inside the first chunk (the file header is 4 KiB, a chunk 64 KiB with
    // a 512-byte header): records there cannot be parsed any more.
    auto damaged = original;
    for (std::size_t k = 0x1000 + 0x2000; k < 0x1000 + 0x6000; ++k)
        damaged[k] = static_cast<char>(0xA5 ^ (k * 31));
    auto file = dir.path() / "damaged.evtx";
    std::ofstream(file, std::ios::binary) << damaged;
    auto r = read_all(file);
    EXPECT_GT(r.records.size(), 0u);
    EXPECT_LT(r.records.size(), 2261u);
    for (const auto& s : r.skipped)
        EXPECT_FALSE(s.reason.empty());
    // Cut in the middle of a chunk: the whole chunks before it are read.
    auto cut = dir.path() / "cut.evtx";
    std::ofstream(cut, std::ios::binary) << original.substr(0, 0x1000 + 0x10000 * 3 + 0x7000);
    auto c = read_all(cut);
    EXPECT_GT(c.records.size(), 0u);
    EXPECT_LE(c.records.size() + c.skipped.size(), 2261u);

    // One record's substitution data overwritten (the 4th record starts at 0x2098): skipped and
    // counted, the others read.
    auto one = original;
    for (std::size_t k = 0x2098 + 40; k < 0x2098 + 56; ++k)
        one[k] = '\xFF';
    auto one_file = dir.path() / "one.evtx";
    std::ofstream(one_file, std::ios::binary) << one;
    auto o = read_all(one_file);
    EXPECT_GE(o.skipped.size(), 1u);
    EXPECT_EQ(o.records.size() + o.skipped.size(), 2261u);
    ASSERT_FALSE(o.skipped.empty());
    EXPECT_EQ(o.skipped.front().index, 3u);
    EXPECT_NE(o.skipped.front().reason.find("cannot"), std::string::npos)
        << o.skipped.front().reason;

    EXPECT_THROW(evtx::Reader(dir.path() / "missing.evtx"), evtx::OpenError);
    auto text = dir.path() / "text.evtx";
    std::ofstream(text) << "not an event log\n";
    EXPECT_THROW(evtx::Reader{text}, evtx::OpenError);
}

TEST(Evtx, NormalizeRewritesLibevtxXml) {
    EXPECT_EQ(evtx::normalize_xml("<?xml version=\"1.0\"?>\n<Event xmlns=\"" + std::string(kNs) +
                                  "\">\n  <System>\n    <Provider Name=\"A'B\" "
                                  "Guid=\"{ABCDEF00-0000-0000-0000-000000000000}\"/>\n    "
                                  "<TimeCreated SystemTime=\"2016-07-08T18:12:51.681640800Z\"/>\n"
                                  "    <Security/>\n  </System>\n  <EventData>\n    <Data "
                                  "Name=\"x\">  a &amp; b\r\n c </Data>\n    <Data Name=\"e\"/>\n"
                                  "    <Data Name=\"s\"> </Data>\n    <Data "
                                  "Name=\"c\">\x03</Data>\n  </EventData>\n</Event>\n\0"),
              "<Event xmlns='" + std::string(kNs) +
                  "'><System><Provider Name='A&apos;B' "
                  "Guid='{abcdef00-0000-0000-0000-000000000000}'/><TimeCreated "
                  "SystemTime='2016-07-08T18:12:51.6816408Z'/><Security/></System><EventData>"
                  "<Data Name='x'>  a &amp; b\r\n c </Data><Data Name='e'></Data><Data "
                  "Name='s'> </Data><Data Name='c'>\xEF\xBF\xBD</Data></EventData></Event>");
    // No namespace: added. Empty EventData outside System: <X></X>.
    EXPECT_EQ(evtx::normalize_xml("<Event><System/><EventData/></Event>"),
              "<Event xmlns='" + std::string(kNs) +
                  "'><System></System><EventData></EventData></Event>");
    for (const char* bad :
         {"", "<Event>", "<Event></System>", "<Event a=b></Event>", "<Event a=\"b></Event>",
          "<Event/><Event/>", "text", "<Event></Event>x", "<Event><</Event>", "<Event a></Event>"})
        EXPECT_THROW(evtx::normalize_xml(bad), evtx::FormatError) << bad;
    EXPECT_THROW(evtx::normalize_xml(std::string(300, '<')), evtx::FormatError);
    std::string deep;
    for (int k = 0; k < 300; ++k)
        deep += "<a>";
    EXPECT_THROW(evtx::normalize_xml(deep), evtx::FormatError);
}

TEST(Evtx, FirstValueDecodesEntities) {
    std::string xml = "<Event><System><Computer>a&amp;b&#x41;&#66;</Computer><TimeCreated "
                      "SystemTime='t&apos;1'/></System></Event>";
    EXPECT_EQ(evtx::first_value(xml, "Computer"), "a&bAB");
    EXPECT_EQ(evtx::first_value(xml, "TimeCreated", "SystemTime"), "t'1");
    EXPECT_EQ(evtx::first_value(xml, "Channel"), "");
    EXPECT_EQ(evtx::first_value(xml, "TimeCreated", "Other"), "");
}

} // namespace

// `wec decode` on damaged copies of the shipped sample capture (samples/captures/, a real WEF
// session: 20 HTTP messages, 21 events), damaged here at run time the ways real captures are: cut
// inside a record header or inside the last packet, a bad record length (first, middle, too large
// or plausible but wrong), a damaged magic, a cut gzip file, pcapng with an oversized or damaged
// block, packets cut by the snapshot length, a lost segment. Each is decoded by the real binary:
// exit code 1 (docs/exit-codes.md), the damage said with its file offset and record or block
// number (stderr and the --json summary), and the messages that precede the damage (or that the
// reader recovers after it) printed exactly as from the intact capture.
#include "support/files.hpp"
#include "support/process.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>
#include <zlib.h>

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using wec::testing::lines_of;
using wec::testing::slurp;
using wec::testing::TempDir;

const std::string kSample = std::string(WEC_SOURCE_DIR) + "/samples/captures/wef-kerberos.pcap";
const std::string kKeytab = std::string(WEC_SOURCE_DIR) + "/samples/captures/wec.keytab";

// --- pcap and pcapng, written by hand -----------------------------------------------------------

std::uint32_t get32(const std::string& s, std::size_t at) {
    return static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[at])) |
           static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[at + 1])) << 8 |
           static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[at + 2])) << 16 |
           static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[at + 3])) << 24;
}
void put32(std::string& s, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        s.push_back(static_cast<char>(v >> (8 * i)));
}
void set32(std::string& s, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
        s[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
}

struct Record {
    std::uint64_t offset = 0; // of its 16-byte header in the file
    std::uint32_t sec = 0, usec = 0, caplen = 0, len = 0;
    std::string data;
};

// A little-endian microsecond pcap file (as tcpdump wrote the sample).
struct Pcap {
    std::string header; // 24 bytes
    std::vector<Record> records;

    static Pcap parse(const std::string& bytes) {
        Pcap p;
        if (bytes.size() < 24 || get32(bytes, 0) != 0xa1b2c3d4)
            throw std::runtime_error("the sample is not a little-endian microsecond pcap");
        p.header = bytes.substr(0, 24);
        for (std::size_t off = 24; off + 16 <= bytes.size();) {
            Record r;
            r.offset = off;
            r.sec = get32(bytes, off);
            r.usec = get32(bytes, off + 4);
            r.caplen = get32(bytes, off + 8);
            r.len = get32(bytes, off + 12);
            r.data = bytes.substr(off + 16, r.caplen);
            off += 16 + r.caplen;
            p.records.push_back(std::move(r));
        }
        return p;
    }
    std::string bytes() const {
        std::string out = header;
        for (const auto& r : records) {
            put32(out, r.sec);
            put32(out, r.usec);
            put32(out, static_cast<std::uint32_t>(r.data.size()));
            put32(out, r.len);
            out += r.data;
        }
        return out;
    }
    std::uint32_t linktype() const { return get32(header, 20); }
};

// The same packets as pcapng: section header, one interface, one enhanced packet block each.
// `offsets` receives the offset of every block.
std::string to_pcapng(const Pcap& p, std::vector<std::uint64_t>* offsets = nullptr) {
    std::string out;
    auto block = [&](std::uint32_t type, const std::string& body) {
        if (offsets != nullptr) offsets->push_back(out.size());
        std::uint32_t len = static_cast<std::uint32_t>(12 + body.size());
        put32(out, type);
        put32(out, len);
        out += body;
        put32(out, len);
    };
    std::string shb;
    put32(shb, 0x1A2B3C4D);
    put32(shb, 1);   // version 1.0
    put32(shb, ~0u); // section length: unknown
    put32(shb, ~0u);
    block(0x0A0D0D0A, shb);
    std::string idb;
    put32(idb, p.linktype()); // link type, reserved
    put32(idb, 262144);       // snaplen
    block(1, idb);
    for (const auto& r : p.records) {
        std::uint64_t ts = std::uint64_t{r.sec} * 1000000 + r.usec;
        std::string epb;
        put32(epb, 0);
        put32(epb, static_cast<std::uint32_t>(ts >> 32));
        put32(epb, static_cast<std::uint32_t>(ts));
        put32(epb, static_cast<std::uint32_t>(r.data.size()));
        put32(epb, r.len);
        epb += r.data;
        epb.append((4 - r.data.size() % 4) % 4, '\0');
        block(6, epb);
    }
    return out;
}

std::string gzip(const std::string& data, const fs::path& path) {
    gzFile gz = gzopen(path.c_str(), "wb");
    if (gz == nullptr) throw std::runtime_error("gzopen failed");
    gzwrite(gz, data.data(), static_cast<unsigned>(data.size()));
    gzclose(gz);
    return slurp(path);
}

// --- running wec decode ----------------------------------------------------------------------

struct Decoded {
    int exit_code = -1;
    std::string out, err;
    std::vector<Json> records;
    Json summary; // the --json summary: the last line of stderr

    // Records by (connection, direction, index), without the "input" field (the file name).
    std::map<std::tuple<std::uint64_t, std::string, std::uint64_t>, Json> by_key() const {
        std::map<std::tuple<std::uint64_t, std::string, std::uint64_t>, Json> m;
        for (auto r : records) {
            r.erase("input");
            m[{r["connection"].get<std::uint64_t>(), r["direction"].get<std::string>(),
               r["index"].get<std::uint64_t>()}] = r;
        }
        return m;
    }
    // The damage problems of the summary.
    std::vector<Json> damage() const {
        std::vector<Json> d;
        for (const auto& p : summary["problems"])
            if (p["kind"] != "gap" && p["kind"] != "error") d.push_back(p);
        return d;
    }
};

class DecodeDamage : public ::testing::Test {
protected:
    static inline std::string sample_bytes;
    static inline Pcap sample;
    static inline Decoded intact;

    static void SetUpTestSuite() {
        sample_bytes = slurp(kSample);
        sample = Pcap::parse(sample_bytes);
    }

    TempDir dir;
    int runs = 0;

    fs::path write(const std::string& name, const std::string& bytes) {
        auto path = dir.path() / name;
        std::ofstream(path, std::ios::binary) << bytes;
        return path;
    }

    // `wec decode FILE -k KEYTAB --format json --json ARGS` (FILE "-": `stdin` is read).
    Decoded decode(const std::string& file, const std::string& args = "",
                   const fs::path& stdin_file = {}) {
        auto out = dir.path() / ("run-" + std::to_string(++runs) + ".out");
        auto err = dir.path() / ("run-" + std::to_string(runs) + ".err");
        std::string cmd = std::string(WEC_EXE) + " decode " + file + " -k " + kKeytab +
                          " --format json --json " + args + " >" + out.string() + " 2>" +
                          err.string();
        if (!stdin_file.empty()) cmd += " <" + stdin_file.string();
        Decoded d;
        d.exit_code = wec::testing::run({"/bin/sh", "-c", cmd}).exit_code;
        d.out = slurp(out);
        d.err = slurp(err);
        for (const auto& l : lines_of(d.out))
            d.records.push_back(Json::parse(l));
        auto errs = lines_of(d.err);
        if (!errs.empty() && errs.back().front() == '{') d.summary = Json::parse(errs.back());
        return d;
    }

    // The intact sample's decode (the reference every damaged copy is compared with).
    const Decoded& reference() {
        if (intact.records.empty()) intact = decode(kSample);
        return intact;
    }

    // Every complete record of `d` (not cut, no errors, not after a gap) is the intact capture's
    // record with the same key, unchanged; the others at least exist there. Returns the number of
    // records of `d`.
    std::size_t expect_records_unchanged(const Decoded& d) {
        auto ref = reference().by_key();
        auto got = d.by_key();
        for (const auto& [key, r] : got) {
            std::string name = "record c" + std::to_string(std::get<0>(key)) + " " +
                               std::get<1>(key) + " " + std::to_string(std::get<2>(key));
            auto it = ref.find(key);
            if (it == ref.end()) {
                ADD_FAILURE() << name << ": the intact capture does not have it";
                continue;
            }
            if (r.value("truncated", false) || r.value("after_gap", false) ||
                !r.value("errors", Json::array()).empty()) {
                continue;
            }
            EXPECT_TRUE(r == it->second)
                << name << " differs: " << Json::diff(it->second, r).dump().substr(0, 600);
        }
        return got.size();
    }

    // Exit code 1, exactly one damage report of `kind` at `offset` (record or block `record`),
    // whose text is on stderr; the counts of the summary agree.
    void expect_damage(const Decoded& d, const std::string& kind, std::uint64_t offset,
                       std::uint64_t record, const std::string& text) {
        EXPECT_EQ(d.exit_code, 1) << d.err;
        ASSERT_TRUE(d.summary.is_object()) << "no --json summary on stderr:\n" << d.err;
        EXPECT_EQ(d.summary["exit_code"], 1);
        auto damage = d.damage();
        ASSERT_EQ(damage.size(), 1u) << d.summary.dump(2);
        EXPECT_EQ(damage[0]["kind"], kind) << d.summary.dump(2);
        EXPECT_EQ(damage[0]["offset"], offset) << d.summary.dump(2);
        EXPECT_EQ(damage[0]["record"], record) << d.summary.dump(2);
        EXPECT_NE(damage[0]["text"].get<std::string>().find(text), std::string::npos)
            << damage[0]["text"];
        EXPECT_NE(d.err.find("damaged capture: " + damage[0]["text"].get<std::string>()),
                  std::string::npos)
            << d.err;
        EXPECT_EQ(d.summary["damaged"], 1);
    }
};

// --- the tests ----------------------------------------------------------------------------------

TEST_F(DecodeDamage, IntactCaptureExitsZeroAsPcapAndPcapng) {
    const auto& d = reference();
    EXPECT_EQ(d.exit_code, 0) << d.err;
    ASSERT_EQ(d.records.size(), 20u) << d.err;
    EXPECT_EQ(d.summary["events"], 21);
    EXPECT_EQ(d.summary["damaged"], 0);
    EXPECT_EQ(d.summary["cut_packets"], 0);
    EXPECT_EQ(d.summary["gaps"], 0);
    EXPECT_TRUE(d.summary["problems"].empty());
    EXPECT_EQ(d.summary["exit_code"], 0);
    EXPECT_EQ(d.summary["packets"], sample.records.size());

    // The same packets as pcapng, and gzip-compressed: the same records.
    auto ng = decode(write("s.pcapng", to_pcapng(sample)).string());
    EXPECT_EQ(ng.exit_code, 0) << ng.err;
    EXPECT_EQ(expect_records_unchanged(ng), 20u);
    auto gz = dir.path() / "s.pcap.gz";
    gzip(sample_bytes, gz);
    auto z = decode(gz.string());
    EXPECT_EQ(z.exit_code, 0) << z.err;
    EXPECT_EQ(expect_records_unchanged(z), 20u);
}

TEST_F(DecodeDamage, FileEndingInsideTheLastRecordHeader) {
    const auto& last = sample.records.back();
    auto d = decode(write("cut.pcap", sample_bytes.substr(0, last.offset + 8)).string());
    auto n = sample.records.size();
    expect_damage(d, "truncated-header", last.offset, n,
                  "record " + std::to_string(n) + " at offset " + std::to_string(last.offset) +
                      ": the file ends inside its header (8 of 16 bytes)");
    // The last record was an ACK: every message is still there.
    EXPECT_EQ(expect_records_unchanged(d), 20u);
    EXPECT_EQ(d.summary["events"], 21);
}

TEST_F(DecodeDamage, CutLastPacket) {
    const auto& last = sample.records.back();
    auto d = decode(write("cut.pcap", sample_bytes.substr(0, last.offset + 16 + 2)).string());
    auto n = sample.records.size();
    expect_damage(d, "truncated-record", last.offset, n,
                  "the file ends inside its data (2 of " + std::to_string(last.caplen) +
                      " bytes): packet lost");
    EXPECT_EQ(expect_records_unchanged(d), 20u);
    // The text summary says it too (what and where).
    auto cut2 = write("cut2.pcap", sample_bytes.substr(0, last.offset + 16 + 2));
    auto t = wec::testing::run({WEC_EXE, "decode", cut2.string(), "-k", kKeytab, "--events"});
    EXPECT_EQ(t.exit_code, 1);
    EXPECT_NE(t.output.find("DAMAGED CAPTURE: 1 damaged record or block (0 bytes skipped)"),
              std::string::npos)
        << t.output;
    EXPECT_NE(t.output.find("cut2.pcap: record " + std::to_string(n) + " at offset " +
                            std::to_string(last.offset) + ": truncated-record"),
              std::string::npos)
        << t.output;
}

TEST_F(DecodeDamage, CutInTheMiddleKeepsTheMessagesBeforeIt) {
    // Cut inside the largest packet (the SLDC Events body).
    auto big =
        std::max_element(sample.records.begin(), sample.records.end(),
                         [](const Record& a, const Record& b) { return a.caplen < b.caplen; });
    auto index = static_cast<std::uint64_t>(big - sample.records.begin()) + 1;
    auto d = decode(
        write("mid.pcap", sample_bytes.substr(0, big->offset + 16 + big->caplen / 2)).string());
    expect_damage(d, "truncated-record", big->offset, index, "the file ends inside its data");
    // What a clean cut just before that record gives (the messages complete before it) is all
    // printed, unchanged.
    auto before = decode(write("before.pcap", sample_bytes.substr(0, big->offset)).string());
    EXPECT_TRUE(before.damage().empty()) << before.err;
    std::size_t complete = 0;
    auto got = d.by_key();
    for (const auto& [key, r] : before.by_key()) {
        if (r.value("truncated", false)) continue;
        ++complete;
        ASSERT_TRUE(got.count(key)) << "lost: c" << std::get<0>(key) << " " << std::get<1>(key);
        EXPECT_TRUE(got[key] == r) << Json::diff(r, got[key]).dump().substr(0, 600);
    }
    EXPECT_GE(complete, 10u);
    expect_records_unchanged(d);
    // The request whose body was cut is printed as cut (failed), not dropped silently.
    EXPECT_GE(d.summary["failed"].get<int>(), 1);
    EXPECT_EQ(d.summary["events"], 0);
}

TEST_F(DecodeDamage, BadFirstRecordLengthResynchronises) {
    std::string bytes = sample_bytes;
    set32(bytes, 24 + 8, 0x7fffffff); // captured length of record 1
    auto d = decode(write("bad1.pcap", bytes).string());
    auto second = sample.records[1].offset;
    expect_damage(d, "bad-length", 24, 1,
                  "record 1 at offset 24: invalid record header (captured length 2147483647");
    EXPECT_NE(d.err.find("resynchronised at offset " + std::to_string(second) + " (" +
                         std::to_string(second - 24) + " bytes skipped)"),
              std::string::npos)
        << d.err;
    EXPECT_EQ(d.summary["skipped_bytes"], second - 24);
    EXPECT_EQ(d.summary["packets"], sample.records.size() - 1);
    // Record 1 is the first SYN: nothing of HTTP is lost, all 20 messages and 21 events decode.
    EXPECT_EQ(expect_records_unchanged(d), 20u);
    EXPECT_EQ(d.summary["events"], 21);
}

TEST_F(DecodeDamage, PlausibleButWrongFirstLengthIsFoundAtTheNextHeader) {
    // The length of record 1 a few bytes too short or too long: still within the limits, so
    // record 2 is read at a wrong offset, where its header is invalid; the reader goes back and
    // finds the real record 2 (also inside what record 1 claimed).
    for (int delta : {-4, 6, 26}) {
        SCOPED_TRACE("delta " + std::to_string(delta));
        std::string bytes = sample_bytes;
        std::uint32_t wrong_len = sample.records[0].caplen + static_cast<std::uint32_t>(delta);
        set32(bytes, 24 + 8, wrong_len);
        auto d = decode(write("bad2.pcap", bytes).string());
        EXPECT_EQ(d.exit_code, 1) << d.err;
        bool found = false;
        for (const auto& p : d.damage()) {
            if (p["kind"] != "bad-length") continue;
            found = true;
            // Found at the first header read at a wrong offset (or a later one, when garbage
            // happens to look like a record: delta 6 reads an empty record first).
            EXPECT_GE(p["offset"].get<std::uint64_t>(), 24 + 16 + wrong_len);
            EXPECT_NE(p["text"].get<std::string>().find("resynchronised at offset " +
                                                        std::to_string(sample.records[1].offset)),
                      std::string::npos)
                << p["text"];
        }
        EXPECT_TRUE(found) << d.summary.dump(2);
        EXPECT_EQ(expect_records_unchanged(d), 20u);
        EXPECT_EQ(d.summary["events"], 21);
    }
}

TEST_F(DecodeDamage, BadLengthInTheMiddleResynchronises) {
    // A pure ACK in the middle of the capture (no payload to lose).
    std::size_t k = sample.records.size() / 2;
    while (sample.records[k].caplen != 66)
        ++k;
    std::string bytes = sample_bytes;
    set32(bytes, sample.records[k].offset + 8, 0x00ffffff);
    auto d = decode(write("badmid.pcap", bytes).string());
    expect_damage(d, "bad-length", sample.records[k].offset, k + 1,
                  "resynchronised at offset " + std::to_string(sample.records[k + 1].offset) +
                      " (82 bytes skipped)");
    EXPECT_EQ(expect_records_unchanged(d), 20u);
}

TEST_F(DecodeDamage, DamagedMagicIsReadFromTheVersion) {
    std::string bytes = sample_bytes;
    bytes[1] = '\x00';
    auto d = decode(write("magic.pcap", bytes).string());
    expect_damage(d, "bad-magic", 0, 0, "damaged pcap magic number");
    EXPECT_EQ(expect_records_unchanged(d), 20u);
}

TEST_F(DecodeDamage, CutGzipFile) {
    auto gz = gzip(sample_bytes, dir.path() / "full.pcap.gz");
    auto path = write("cut.pcap.gz", gz.substr(0, gz.size() / 2));
    auto d = decode(path.string());
    EXPECT_EQ(d.exit_code, 1) << d.err;
    std::map<std::string, int> kinds;
    for (const auto& p : d.damage())
        ++kinds[p["kind"]];
    EXPECT_EQ(kinds["gzip"], 1) << d.summary.dump(2);
    EXPECT_NE(d.err.find("the gzip data is cut"), std::string::npos) << d.err;
    EXPECT_GE(expect_records_unchanged(d), 1u);
    // The same through standard input.
    auto s = decode("-", "", path);
    EXPECT_EQ(s.exit_code, 1) << s.err;
    EXPECT_EQ(s.summary["damaged"], d.summary["damaged"]);
    EXPECT_EQ(s.records.size(), d.records.size());
}

TEST_F(DecodeDamage, PcapngWithAnOversizedBlockAppended) {
    std::vector<std::uint64_t> offsets;
    std::string ng = to_pcapng(sample, &offsets);
    std::uint64_t at = ng.size();
    put32(ng, 6);
    put32(ng, 0x7ffffff0);
    ng.append(100, 'x');
    auto d = decode(write("big.pcapng", ng).string());
    expect_damage(d, "bad-length", at, offsets.size() + 1,
                  "invalid block length 2147483632 (type 6, limit 16777216); no valid block "
                  "follows: the remaining 108 bytes are unreadable");
    EXPECT_EQ(d.summary["skipped_bytes"], 108);
    EXPECT_EQ(expect_records_unchanged(d), 20u);
}

TEST_F(DecodeDamage, PcapngDamagedBlockInTheMiddleAndCutBlock) {
    std::vector<std::uint64_t> offsets;
    std::string ng = to_pcapng(sample, &offsets);
    // A pure ACK's block (record k) whose length no longer matches its trailing length.
    std::size_t k = sample.records.size() / 2;
    while (sample.records[k].caplen != 66)
        ++k;
    std::uint64_t at = offsets[k + 2]; // after the section header and the interface
    std::uint32_t len = get32(ng, at + 4);
    std::string bad = ng;
    set32(bad, at + 4, len + 400);
    auto d = decode(write("mid.pcapng", bad).string());
    expect_damage(d, "bad-length", at, k + 3,
                  "block length " + std::to_string(len + 400) + " and trailing length");
    EXPECT_EQ(d.summary["skipped_bytes"], len);
    EXPECT_EQ(expect_records_unchanged(d), 20u);

    // Cut inside the last block.
    auto c = decode(write("cut.pcapng", ng.substr(0, offsets.back() + 40)).string());
    expect_damage(c, "truncated-record", offsets.back(), offsets.size(),
                  "the file ends inside the block (40 of " +
                      std::to_string(get32(ng, offsets.back() + 4)) + " bytes): packet lost");
    EXPECT_EQ(expect_records_unchanged(c), 20u);
}

TEST_F(DecodeDamage, PacketsCutByTheSnapshotLength) {
    Pcap cut = sample;
    std::uint64_t cut_packets = 0, cut_bytes = 0, first = 0, first_offset = 0;
    std::uint64_t offset = 24;
    for (std::size_t i = 0; i < cut.records.size(); ++i) {
        auto& r = cut.records[i];
        if (r.data.size() > 200) {
            if (first == 0) {
                first = i + 1;
                first_offset = offset;
            }
            ++cut_packets;
            cut_bytes += r.data.size() - 200;
            r.data.resize(200); // the wire length (r.len) stays
        }
        offset += 16 + r.data.size();
    }
    ASSERT_GT(cut_packets, 0u);
    auto d = decode(write("snap.pcap", cut.bytes()).string());
    EXPECT_EQ(d.exit_code, 1) << d.err;
    EXPECT_EQ(d.summary["cut_packets"], cut_packets);
    EXPECT_EQ(d.summary["cut_bytes"], cut_bytes);
    EXPECT_GT(d.summary["gaps"].get<int>(), 0);
    auto damage = d.damage();
    ASSERT_EQ(damage.size(), 1u) << d.summary.dump(2); // the first one; the others are counted
    EXPECT_EQ(damage[0]["kind"], "cut-packet");
    EXPECT_EQ(damage[0]["packet"], first);
    EXPECT_EQ(damage[0]["offset"], first_offset);
    EXPECT_NE(d.err.find("(snapshot length)"), std::string::npos) << d.err;
    EXPECT_LT(d.records.size(), 20u);
}

TEST_F(DecodeDamage, LostSegmentLosesAMessageAndSaysWhere) {
    // Drop the largest packet (the SLDC Events body): that request is lost to a TCP gap.
    Pcap lost = sample;
    auto big =
        std::max_element(lost.records.begin(), lost.records.end(),
                         [](const Record& a, const Record& b) { return a.caplen < b.caplen; });
    auto dropped = static_cast<std::uint64_t>(big - lost.records.begin()) + 1;
    lost.records.erase(big);
    auto d = decode(write("lost.pcap", lost.bytes()).string());
    EXPECT_EQ(d.exit_code, 1) << d.err;
    EXPECT_TRUE(d.damage().empty()) << d.summary.dump(2); // the file itself is sound
    EXPECT_GE(d.summary["gaps"].get<int>(), 1);
    EXPECT_EQ(d.summary["events"], 0);
    bool gap = false;
    for (const auto& p : d.summary["problems"]) {
        if (p["kind"] != "gap") continue;
        gap = true;
        EXPECT_GT(p["connection"].get<int>(), 0);
        EXPECT_GE(p["packet"].get<std::uint64_t>(), dropped); // found missing at or after it
        EXPECT_GT(p["bytes"].get<std::uint64_t>(), 0u);
    }
    EXPECT_TRUE(gap) << d.summary.dump(2);
    EXPECT_NE(d.err.find("bytes missing from the capture"), std::string::npos) << d.err;
    // Every other request is still there, unchanged.
    auto ref = reference().by_key();
    std::size_t requests = 0;
    for (const auto& [key, r] : d.by_key()) {
        if (std::get<1>(key) != "request") continue;
        ++requests;
        EXPECT_EQ(r, ref[key]);
    }
    EXPECT_EQ(requests, 9u);
}

TEST_F(DecodeDamage, NotACaptureIsStillAnInputError) {
    auto junk = write("junk.bin", "this is not a capture, nor a SOAP body");
    auto d = decode(junk.string());
    EXPECT_EQ(d.exit_code, 2) << d.err;
    EXPECT_EQ(d.summary["exit_code"], 2);
    ASSERT_EQ(d.summary["input_errors"].size(), 1u);
    // A damaged capture next to it is still decoded (and reported).
    const auto& last = sample.records.back();
    auto cut = write("cut.pcap", sample_bytes.substr(0, last.offset + 8));
    auto both = decode(junk.string() + " " + cut.string());
    EXPECT_EQ(both.exit_code, 2);
    EXPECT_EQ(both.summary["damaged"], 1);
    EXPECT_EQ(both.records.size(), 20u);
}

} // namespace

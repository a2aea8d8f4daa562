// CaptureReader: pcap and pcapng files (plain or gzip), read with bounded memory, with damage
// reported (file offset, record or block number) and resynchronisation past invalid lengths;
// and detect_file_kind.
#include "capture/file.hpp"

#include "common/bytes.hpp"
#include "common/handle.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <unistd.h>
#include <zlib.h>

namespace wec::capture {
namespace {

__extension__ using Wide = __int128; // timestamp arithmetic without overflow

constexpr std::size_t kChunk = 256 * 1024;           // read size
constexpr std::uint32_t kPcapRecordLimit = 262144;   // libpcap's MAXIMUM_SNAPLEN
constexpr std::uint32_t kMaxRecord = 16u << 20;      // largest record or pcapng block
constexpr std::uint64_t kResyncLookahead = 4u << 20; // bytes a candidate chain may span
constexpr int kChain = 4;                            // valid records that end a resync
constexpr std::uint32_t kMaxChainTimeStep = 86400;   // seconds between chained records
constexpr std::size_t kMaxQueuedDamage = 1024;       // reports kept until taken
constexpr std::size_t kMaxInterfaces = 65536;        // per pcapng section
constexpr TimeNs kMaxTime = INT64_MAX / 2;           // timestamps are clamped to it
constexpr std::uint32_t kShb = 0x0A0D0D0A, kBom = 0x1A2B3C4D;

std::uint16_t rd16(const std::uint8_t* p, bool big) {
    return big ? load_be16(p) : load_le16(p);
}
std::uint32_t rd32(const std::uint8_t* p, bool big) {
    return big ? load_be32(p) : load_le32(p);
}

std::string at_offset(std::uint64_t offset) {
    return "offset " + std::to_string(offset);
}

// Sequential bytes of a FILE* (after `head`, bytes already read from it), gunzipped when they
// start with the gzip magic (concatenated members too).
class Source {
public:
    Source(FilePtr file, std::vector<std::uint8_t> head, std::string name)
        : file_(std::move(file)), head_(std::move(head)), name_(std::move(name)) {
        while (head_.size() < 2) {
            std::uint8_t b = 0;
            if (raw_file(&b, 1) == 0) break;
            head_.push_back(b);
        }
        gzip_ = head_.size() >= 2 && head_[0] == 0x1f && head_[1] == 0x8b;
        if (gzip_) {
            if (inflateInit2(&z_, 15 + 32) != Z_OK)
                throw CaptureError(name_ + ": zlib init failed");
            z_ready_ = true;
            in_.resize(kChunk);
        }
    }
    ~Source() {
        if (z_ready_) inflateEnd(&z_);
    }
    Source(const Source&) = delete;
    Source& operator=(const Source&) = delete;

    // Up to n bytes; 0 at the end of the data (or of what could be decompressed: see problem()).
    std::size_t read(std::uint8_t* out, std::size_t n) {
        if (!gzip_) return raw(out, n);
        if (done_) return 0;
        z_.next_out = out;
        z_.avail_out = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
        uInt asked = z_.avail_out;
        while (z_.avail_out > 0 && !done_) {
            if (z_.avail_in == 0 && !refill()) {
                if (in_member_) {
                    problem_ = "the gzip data is cut: it ends inside a compressed member (at "
                               "compressed " +
                               at_offset(compressed()) + ")";
                }
                done_ = true;
                break;
            }
            int rc = inflate(&z_, Z_NO_FLUSH);
            if (rc == Z_STREAM_END) {
                in_member_ = false;
                if (z_.avail_in == 0 && !refill()) {
                    done_ = true;
                    break;
                }
                if (z_.next_in[0] != 0x1f) {
                    trailing_ = "data after the end of the gzip stream (at compressed " +
                                at_offset(compressed()) + ") ignored";
                    done_ = true;
                    break;
                }
                inflateReset(&z_);
                in_member_ = true;
            } else if (rc != Z_OK && !(rc == Z_BUF_ERROR && z_.avail_in == 0)) {
                problem_ = std::string("corrupt gzip data (zlib: ") +
                           (z_.msg != nullptr ? z_.msg : "error " + std::to_string(rc)) +
                           ") at compressed " + at_offset(compressed());
                done_ = true;
            }
        }
        return asked - z_.avail_out;
    }

    bool gzip() const { return gzip_; }
    const std::string& problem() const { return problem_; }   // damage of the gzip data
    const std::string& trailing() const { return trailing_; } // a warning

private:
    std::size_t raw_file(std::uint8_t* out, std::size_t n) {
        std::size_t got = std::fread(out, 1, n, file_.get());
        if (got == 0 && std::ferror(file_.get())) {
            throw CaptureError(name_ + ": read error: " + std::strerror(errno));
        }
        return got;
    }
    std::size_t raw(std::uint8_t* out, std::size_t n) {
        if (pos_ < head_.size()) {
            std::size_t k = std::min(n, head_.size() - pos_);
            std::memcpy(out, head_.data() + pos_, k);
            pos_ += k;
            return k;
        }
        return raw_file(out, n);
    }
    bool refill() {
        std::size_t got = raw(in_.data(), in_.size());
        if (got == 0) return false;
        raw_total_ += got;
        z_.next_in = in_.data();
        z_.avail_in = static_cast<uInt>(got);
        return true;
    }
    std::uint64_t compressed() const { return raw_total_ - z_.avail_in; }

    FilePtr file_;
    std::vector<std::uint8_t> head_;
    std::size_t pos_ = 0;
    std::string name_;
    bool gzip_ = false;
    z_stream z_{};
    bool z_ready_ = false;
    bool done_ = false;
    bool in_member_ = true;
    std::uint64_t raw_total_ = 0;
    std::vector<std::uint8_t> in_;
    std::string problem_, trailing_;
};

enum class Format { Pcap, Pcapng };

struct Interface {
    int linktype = 0;
    std::uint32_t snaplen = 0;
    bool binary = false;     // if_tsresol: 2^-exp (else 10^-exp)
    std::uint8_t exp = 6;    // microseconds by default
    std::int64_t offset = 0; // if_tsoffset, seconds
};

TimeNs clamp_time(Wide ns) {
    if (ns < 0) return 0;
    if (ns > kMaxTime) return kMaxTime;
    return static_cast<TimeNs>(ns);
}

TimeNs interface_time(const Interface& i, std::uint64_t ticks) {
    Wide ns = 0;
    if (i.binary) {
        ns = i.exp >= 100 ? 0 : (static_cast<Wide>(ticks) * 1000000000) >> i.exp;
    } else if (i.exp <= 9) {
        Wide mul = 1;
        for (int k = i.exp; k < 9; ++k)
            mul *= 10;
        ns = static_cast<Wide>(ticks) * mul;
    } else if (i.exp - 9 < 20) {
        std::uint64_t div = 1;
        for (int k = 9; k < i.exp; ++k)
            div *= 10;
        ns = static_cast<Wide>(ticks / div);
    }
    return clamp_time(ns + static_cast<Wide>(i.offset) * 1000000000);
}

bool known_block_type(std::uint32_t type) {
    switch (type) {
    case kShb:
    case 1:  // interface description
    case 2:  // packet (obsolete)
    case 3:  // simple packet
    case 4:  // name resolution
    case 5:  // interface statistics
    case 6:  // enhanced packet
    case 9:  // systemd journal export
    case 10: // decryption secrets
    case 0x00000BAD:
    case 0x40000BAD: // custom
        return true;
    default:
        return false;
    }
}

} // namespace

std::string_view to_string(DamageKind kind) {
    switch (kind) {
    case DamageKind::None:
        return "none";
    case DamageKind::BadMagic:
        return "bad-magic";
    case DamageKind::TruncatedHeader:
        return "truncated-header";
    case DamageKind::TruncatedRecord:
        return "truncated-record";
    case DamageKind::BadLength:
        return "bad-length";
    case DamageKind::BadBlock:
        return "bad-block";
    case DamageKind::Gzip:
        return "gzip";
    case DamageKind::CutPacket:
        return "cut-packet";
    case DamageKind::ShortPacket:
        return "short-packet";
    }
    return "none";
}

struct CaptureReader::Impl {
    std::unique_ptr<Source> source;
    std::string name;
    Format format = Format::Pcap;
    int linktype = 0;
    std::uint64_t index = 0; // packets returned
    std::uint64_t damage_count = 0, skipped = 0;
    std::deque<Note> damage;
    bool end = false; // nothing more can be read

    // Window of the decompressed stream: buf[0, len) holds bytes [base, base + len).
    std::vector<std::uint8_t> buf;
    std::size_t len = 0;
    std::uint64_t base = 0;
    bool eof = false;
    std::uint64_t keep = 0; // bytes before this offset may be dropped
    std::uint64_t cur = 0;  // offset of the next record or block

    // pcap
    bool big = false, nanos = false;
    std::uint32_t record_limit = kPcapRecordLimit;
    // Offsets of the data of the last two records returned (0: none): a wrong length of either
    // (a record of garbage read at a wrong offset can look valid) leads to a bad header.
    std::uint64_t prev_data = 0, prev2_data = 0;
    // pcapng
    bool have_section = false;
    std::vector<Interface> interfaces;
    std::uint64_t blocks = 0; // blocks read (their 1-based numbers)
    bool force_shb = false;   // the first block is a section header with a damaged type
    TimeNs last_time = 0;

    // Makes [at, at + n) available as far as the stream has it; returns how much of it is
    // (less than n only at the end of the data). at >= base.
    std::size_t need(std::uint64_t at, std::size_t n) {
        if (at < base) return 0; // never asked for: bytes before `keep` are gone
        std::uint64_t want = at + n;
        while (base + len < want && !eof) {
            if (buf.size() - len < kChunk) {
                std::uint64_t drop = std::min<std::uint64_t>(keep, base + len) - base;
                if (drop > 0) {
                    std::memmove(buf.data(), buf.data() + drop, len - drop);
                    len -= static_cast<std::size_t>(drop);
                    base += drop;
                }
                if (buf.size() - len < kChunk) {
                    // Geometric growth up to what is asked (a 16 MB block is not copied 64 times).
                    std::uint64_t asked = want - base + kChunk;
                    buf.resize(std::max<std::size_t>(
                        len + kChunk,
                        static_cast<std::size_t>(std::min<std::uint64_t>(2 * buf.size(), asked))));
                }
            }
            std::size_t got = source->read(buf.data() + len, buf.size() - len);
            if (got == 0) {
                eof = true;
                source_damage();
            }
            len += got;
        }
        if (at >= base + len) return 0;
        return static_cast<std::size_t>(std::min<std::uint64_t>(n, base + len - at));
    }
    const std::uint8_t* ptr(std::uint64_t at) const { return buf.data() + (at - base); }
    std::uint64_t data_end() const { return base + len; } // the end of the data once eof

    void report(DamageKind kind, std::uint64_t offset, std::uint64_t record, std::uint64_t bytes,
                std::string text) {
        ++damage_count;
        if (damage.size() >= kMaxQueuedDamage) damage.pop_front();
        Note n;
        n.kind = NoteKind::Damage;
        n.damage = kind;
        n.offset = offset;
        n.record = record;
        n.bytes = bytes;
        n.time = last_time;
        n.text = std::move(text);
        damage.push_back(std::move(n));
    }

    void source_damage() {
        if (!source->problem().empty()) {
            report(DamageKind::Gzip, base + len, 0, 0,
                   at_offset(base + len) + " (uncompressed): " + source->problem() +
                       "; the capture ends there");
        }
        if (!source->trailing().empty()) {
            Note n;
            n.kind = NoteKind::Warning;
            n.time = last_time;
            n.text = source->trailing();
            if (damage.size() < kMaxQueuedDamage) damage.push_back(std::move(n));
        }
    }

    std::string resync_text(bool found, std::uint64_t from, std::uint64_t at) {
        if (found) {
            return "; resynchronised at " + at_offset(at) + " (" +
                   std::to_string(at > from ? at - from : 0) + " bytes skipped)";
        }
        return "; no valid " + std::string(format == Format::Pcap ? "record" : "block") +
               " follows: the remaining " + std::to_string(data_end() - from) +
               " bytes are unreadable";
    }

    // --- file header --------------------------------------------------------------------------

    void open() {
        std::size_t got = need(0, 24);
        if (got < 4) throw CaptureError(name + ": not a pcap/pcapng capture (too short)");
        const std::uint8_t* h = ptr(0);
        std::uint32_t le = rd32(h, false);
        if (le == 0xa1b2c3d4 || le == 0xa1b23c4d || le == 0xd4c3b2a1 || le == 0x4d3cb2a1) {
            big = le == 0xd4c3b2a1 || le == 0x4d3cb2a1;
            nanos = le == 0xa1b23c4d || le == 0x4d3cb2a1;
            open_pcap(got);
            return;
        }
        if (le == kShb) {
            format = Format::Pcapng;
            open_pcapng();
            return;
        }
        // Damaged magic: a pcap header is still told by its version (2.4), a pcapng section
        // header by its byte-order magic.
        if (got >= 8 && (rd32(h + 4, false) == 0x00040002 || rd32(h + 4, true) == 0x00020004)) {
            big = rd32(h + 4, true) == 0x00020004;
            std::uint32_t m = rd32(h, big);
            auto same = [](std::uint32_t a, std::uint32_t b) {
                int n = 0;
                for (int i = 0; i < 4; ++i)
                    n += ((a >> (8 * i)) & 0xff) == ((b >> (8 * i)) & 0xff);
                return n;
            };
            nanos = same(m, 0xa1b23c4d) > same(m, 0xa1b2c3d4);
            report(DamageKind::BadMagic, 0, 0, 0,
                   "file header at offset 0: damaged pcap magic number 0x" + hex(m) +
                       ": read as a pcap file (" + (big ? "big" : "little") + "-endian, " +
                       (nanos ? "nanosecond" : "microsecond") + " timestamps) from its version");
            open_pcap(got);
            return;
        }
        if (got >= 12 && (rd32(h + 8, false) == kBom || rd32(h + 8, true) == kBom)) {
            format = Format::Pcapng;
            force_shb = true;
            report(DamageKind::BadMagic, 0, 1, 0,
                   "block 1 at offset 0: damaged pcapng magic (block type 0x" + hex(le) +
                       "): read as a section header from its byte-order magic");
            open_pcapng();
            return;
        }
        throw CaptureError(name + ": not a pcap/pcapng capture (magic 0x" + hex(le) + ")");
    }

    static std::string hex(std::uint32_t v) {
        char s[16];
        std::snprintf(s, sizeof s, "%08x", v);
        return s;
    }

    void open_pcap(std::size_t got) {
        format = Format::Pcap;
        if (got < 24) {
            report(DamageKind::TruncatedHeader, 0, 0, got,
                   "file header at offset 0: the file ends inside it (" + std::to_string(got) +
                       " of 24 bytes)");
            end = true;
            return;
        }
        const std::uint8_t* h = ptr(0);
        std::uint32_t snaplen = rd32(h + 16, big);
        linktype = static_cast<int>(rd32(h + 20, big) & 0x03FFFFFF);
        if (snaplen > kPcapRecordLimit) record_limit = std::min(snaplen, kMaxRecord);
        cur = 24;
        keep = 24;
    }

    void open_pcapng() {
        cur = 0;
        keep = 0;
        // linktype(): of the first interface, when it follows the section header (as in the files
        // of tcpdump, dumpcap and editcap). Nothing is consumed here.
        bool b = false, guessed = false;
        if (!shb_order(0, b, guessed)) return;
        std::uint32_t n = rd32(ptr(4), b);
        if (n < 28 || n % 4 != 0 || n > kMaxRecord || need(n, 12) < 12) return;
        if (rd32(ptr(n), b) != 1) return;
        linktype = rd16(ptr(n + 8), b);
        linktype_known = true;
    }
    bool linktype_known = false;

    // --- pcap -----------------------------------------------------------------------------------

    // Normal reading: only what no valid file has (libpcap refuses the first; the second is a
    // record header read at a wrong offset: a fraction of a second out of range and more bytes
    // captured than sent).
    bool pcap_header_ok(const std::uint8_t* h) const {
        std::uint32_t frac = rd32(h + 4, big), caplen = rd32(h + 8, big), orig = rd32(h + 12, big);
        if (caplen > record_limit) return false;
        bool frac_bad = frac >= (nanos ? 1000000000u : 1000000u);
        return !(frac_bad && caplen > orig);
    }
    // Resynchronisation: what every valid record has.
    bool pcap_header_strict(const std::uint8_t* h) const {
        std::uint32_t frac = rd32(h + 4, big), caplen = rd32(h + 8, big), orig = rd32(h + 12, big);
        return caplen >= 1 && caplen <= record_limit && caplen <= orig && orig <= kMaxRecord &&
               frac < (nanos ? 1000000000u : 1000000u);
    }

    // Does a chain of valid records start at `at`? (kChain of them, or fewer up to the exact end
    // of the file, or at least two before the file is cut or the lookahead is exhausted.) A chain
    // that leads to `avoid` (the damaged record) agrees with the reading that found it damaged:
    // it is no resynchronisation.
    bool pcap_chain(std::uint64_t at, std::uint64_t avoid) {
        int valid = 0;
        std::uint64_t p = at;
        std::uint32_t prev_sec = 0;
        for (;;) {
            if (p == avoid) return false;
            std::size_t got = need(p, 16);
            if (got == 0 && p == data_end()) return valid >= 1;
            if (got < 16) return valid >= 2;
            const std::uint8_t* h = ptr(p);
            if (!pcap_header_strict(h)) return false;
            std::uint32_t sec = rd32(h, big);
            if (valid > 0 && (sec > prev_sec ? sec - prev_sec : prev_sec - sec) > kMaxChainTimeStep)
                return false;
            prev_sec = sec;
            if (++valid >= kChain) return true;
            p += 16 + rd32(h + 8, big);
            if (p - at > kResyncLookahead) return valid >= 2;
        }
    }

    // Scans from `from` for the start of a chain of valid records (not leading to `avoid`); false
    // at the end of the data.
    bool pcap_resync(std::uint64_t from, std::uint64_t avoid, std::uint64_t& found) {
        for (std::uint64_t p = from;; ++p) {
            keep = p;
            if (need(p, 16) < 16) return false;
            if (pcap_header_strict(ptr(p)) && pcap_chain(p, avoid)) {
                found = p;
                return true;
            }
        }
    }

    // After damage at `at`: resynchronises from the data of the last record but one (the length
    // of either may be the wrong one) or just after `at`. `if_cut`: the record at `at` runs past
    // the end of the data; when nothing valid follows, it is reported (with this text) as cut, not
    // as a bad length. Returns false when nothing valid follows.
    bool pcap_recover(std::uint64_t at, std::uint64_t record, std::string what,
                      const std::string& if_cut = {}) {
        std::uint64_t earliest = prev2_data != 0 ? prev2_data : prev_data;
        std::uint64_t from = earliest != 0 ? earliest + 1 : at + 1;
        std::uint64_t found = 0;
        bool ok = pcap_resync(from, at, found);
        if (!ok && !if_cut.empty()) {
            report(DamageKind::TruncatedRecord, at, record, data_end() - at, if_cut);
            end = true;
            cur = data_end();
            return false;
        }
        std::uint64_t skipped_here = ok ? (found > at ? found - at : 0) : data_end() - at;
        if (ok && found < at) what += " (the length of a record before it is wrong)";
        report(DamageKind::BadLength, at, record, skipped_here,
               what + resync_text(ok, at, ok ? found : 0));
        skipped += skipped_here;
        prev_data = prev2_data = 0;
        if (!ok) {
            end = true;
            cur = data_end();
            return false;
        }
        cur = found;
        keep = found;
        return true;
    }

    bool next_pcap(Packet& out) {
        for (;;) {
            std::uint64_t at = cur;
            std::uint64_t record = index + 1;
            std::size_t got = need(at, 16);
            if (got == 0) return false;
            if (got < 16) {
                report(DamageKind::TruncatedHeader, at, record, got,
                       "record " + std::to_string(record) + " at " + at_offset(at) +
                           ": the file ends inside its header (" + std::to_string(got) +
                           " of 16 bytes)");
                cur = data_end();
                return false;
            }
            const std::uint8_t* h = ptr(at);
            std::uint32_t caplen = rd32(h + 8, big), orig = rd32(h + 12, big);
            if (!pcap_header_ok(h)) {
                if (!pcap_recover(at, record,
                                  "record " + std::to_string(record) + " at " + at_offset(at) +
                                      ": invalid record header (captured length " +
                                      std::to_string(caplen) + ", length " + std::to_string(orig) +
                                      ", limit " + std::to_string(record_limit) + ")")) {
                    return false;
                }
                continue;
            }
            std::size_t have = need(at + 16, caplen);
            if (have < caplen) {
                // Cut by the end of the file, or a wrong length: a valid chain in what is left
                // tells the second.
                if (!pcap_recover(at, record,
                                  "record " + std::to_string(record) + " at " + at_offset(at) +
                                      ": captured length " + std::to_string(caplen) +
                                      " runs past the end of the file",
                                  "record " + std::to_string(record) + " at " + at_offset(at) +
                                      ": the file ends inside its data (" + std::to_string(have) +
                                      " of " + std::to_string(caplen) + " bytes): packet lost")) {
                    return false;
                }
                continue;
            }
            h = ptr(at);
            std::uint32_t sec = rd32(h, big), frac = rd32(h + 4, big);
            Wide ns = static_cast<Wide>(sec) * 1000000000 +
                      std::min<Wide>(nanos ? frac : static_cast<Wide>(frac) * 1000, 999999999);
            out.time = clamp_time(ns);
            out.linktype = linktype;
            out.data = std::span<const std::uint8_t>(ptr(at + 16), caplen);
            out.original_length = orig;
            out.index = ++index;
            out.offset = at;
            last_time = out.time;
            prev2_data = prev_data;
            prev_data = at + 16;
            keep = prev2_data != 0 ? prev2_data : prev_data;
            cur = at + 16 + caplen;
            return true;
        }
    }

    // --- pcapng ---------------------------------------------------------------------------------

    bool section_big = false;

    // Byte order of a section header at `at` from its byte-order magic; damaged magic: the order
    // in which its length and trailing length agree. False when neither.
    bool shb_order(std::uint64_t at, bool& b, bool& guessed) {
        guessed = false;
        if (need(at, 12) < 12) return false;
        if (rd32(ptr(at + 8), false) == kBom) {
            b = false;
            return true;
        }
        if (rd32(ptr(at + 8), true) == kBom) {
            b = true;
            return true;
        }
        guessed = true;
        for (bool o : {false, true}) {
            std::uint32_t n = rd32(ptr(at + 4), o);
            if (n < 28 || n % 4 != 0 || n > kMaxRecord) continue;
            if (need(at, n) < n) continue;
            if (rd32(ptr(at + n - 4), o) == n) {
                b = o;
                return true;
            }
        }
        return false;
    }

    // A block that can start a resynchronisation at `at`: known type, sound length, matching
    // trailing length. Sets its length and byte order.
    bool block_strict(std::uint64_t at, std::uint32_t& n, bool& b) {
        if (need(at, 12) < 12) return false;
        std::uint32_t type = rd32(ptr(at), false);
        if (type == kShb) {
            if (rd32(ptr(at + 8), false) == kBom) {
                b = false;
            } else if (rd32(ptr(at + 8), true) == kBom) {
                b = true;
            } else {
                return false;
            }
        } else {
            if (!have_section) return false;
            b = section_big;
            type = rd32(ptr(at), b);
            if (!known_block_type(type)) return false;
        }
        n = rd32(ptr(at + 4), b);
        if (n < 12 || n % 4 != 0 || n > kResyncLookahead) return false;
        if (need(at, n) < n) return false;
        return rd32(ptr(at + n - 4), b) == n;
    }

    bool block_chain(std::uint64_t at) {
        int valid = 0;
        std::uint64_t p = at;
        bool saved = section_big;
        bool saved_have = have_section;
        bool result = false;
        for (;;) {
            std::size_t got = need(p, 12);
            if (got == 0 && p == data_end()) {
                result = valid >= 1;
                break;
            }
            if (got < 12) {
                result = valid >= 2;
                break;
            }
            std::uint32_t n = 0;
            bool b = false;
            if (!block_strict(p, n, b)) {
                result = false;
                break;
            }
            if (rd32(ptr(p), false) == kShb) { // a new section: its own byte order
                section_big = b;
                have_section = true;
            }
            if (++valid >= kChain) {
                result = true;
                break;
            }
            p += n;
            if (p - at > kResyncLookahead) {
                result = valid >= 2;
                break;
            }
        }
        section_big = saved;
        have_section = saved_have;
        return result;
    }

    // After damage of the block at `at`: resynchronises on the next chain of valid blocks.
    // `if_cut` as for pcap_recover.
    bool block_recover(std::uint64_t at, std::string what, const std::string& if_cut = {}) {
        std::uint64_t found = 0;
        bool ok = false;
        for (std::uint64_t p = at + 1;; ++p) {
            keep = p;
            if (need(p, 12) < 12) break;
            std::uint32_t n = 0;
            bool b = false;
            if (block_strict(p, n, b) && block_chain(p)) {
                found = p;
                ok = true;
                break;
            }
        }
        if (!ok && !if_cut.empty()) {
            report(DamageKind::TruncatedRecord, at, blocks, data_end() - at, if_cut);
            end = true;
            cur = data_end();
            return false;
        }
        std::uint64_t skipped_here = ok ? found - at : data_end() - at;
        report(DamageKind::BadLength, at, blocks, skipped_here, what + resync_text(ok, at, found));
        skipped += skipped_here;
        if (!ok) {
            end = true;
            cur = data_end();
            return false;
        }
        cur = found;
        keep = found;
        return true;
    }

    std::string block_name(std::uint64_t at) const {
        return "block " + std::to_string(blocks) + " at " + at_offset(at);
    }

    bool next_pcapng(Packet& out) {
        for (;;) {
            std::uint64_t at = cur;
            keep = at;
            std::size_t got = need(at, 12);
            if (got == 0) return false;
            ++blocks;
            if (got < 8) {
                report(DamageKind::TruncatedHeader, at, blocks, got,
                       block_name(at) + ": the file ends inside its header (" +
                           std::to_string(got) + " of 12 bytes)");
                cur = data_end();
                return false;
            }
            bool b = section_big;
            std::uint32_t type = rd32(ptr(at), b);
            bool is_shb = rd32(ptr(at), false) == kShb || (force_shb && at == 0);
            if (is_shb) {
                bool guessed = false;
                if (!shb_order(at, b, guessed)) {
                    if (!block_recover(at, block_name(at) +
                                               ": section header with a damaged byte-order "
                                               "magic and length")) {
                        return false;
                    }
                    continue;
                }
                if (guessed) {
                    report(DamageKind::BadMagic, at, blocks, 0,
                           block_name(at) +
                               ": section header with a damaged byte-order magic: read as " +
                               (b ? "big" : "little") + "-endian (its lengths agree)");
                }
                type = kShb;
            } else if (!have_section) {
                if (!block_recover(at, block_name(at) + ": block before any section header")) {
                    return false;
                }
                continue;
            }
            std::uint32_t n = rd32(ptr(at + 4), b);
            if (n < 12 || n % 4 != 0 || n > kMaxRecord) {
                if (!block_recover(at, block_name(at) + ": invalid block length " +
                                           std::to_string(n) + " (type " + std::to_string(type) +
                                           ", limit " + std::to_string(kMaxRecord) + ")")) {
                    return false;
                }
                continue;
            }
            std::size_t have = need(at, n);
            if (have < n) {
                if (!block_recover(
                        at,
                        block_name(at) + ": block length " + std::to_string(n) +
                            " runs past the end of the file",
                        block_name(at) + ": the file ends inside the block (" +
                            std::to_string(have) + " of " + std::to_string(n) + " bytes)" +
                            (type == 6 || type == 3 || type == 2 ? ": packet lost" : ""))) {
                    return false;
                }
                continue;
            }
            if (rd32(ptr(at + n - 4), b) != n) {
                if (!block_recover(at, block_name(at) + ": block length " + std::to_string(n) +
                                           " and trailing length " +
                                           std::to_string(rd32(ptr(at + n - 4), b)) + " differ")) {
                    return false;
                }
                continue;
            }
            cur = at + n;
            if (is_shb) {
                section_big = b;
                have_section = true;
                interfaces.clear();
                continue;
            }
            if (block(at, type, n, b, out)) return true;
        }
    }

    void bad_block(std::uint64_t at, std::uint32_t n, const std::string& why) {
        report(DamageKind::BadBlock, at, blocks, n, block_name(at) + ": " + why + "; skipped");
        skipped += n;
    }

    // One sound block of the current section; true when it gave a packet.
    bool block(std::uint64_t at, std::uint32_t type, std::uint32_t n, bool b, Packet& out) {
        const std::uint8_t* p = ptr(at);
        switch (type) {
        case 1: { // interface description
            if (n < 20) {
                bad_block(at, n, "interface description shorter than 20 bytes");
                return false;
            }
            if (interfaces.size() >= kMaxInterfaces) {
                bad_block(at, n, "more than " + std::to_string(kMaxInterfaces) + " interfaces");
                return false;
            }
            Interface i;
            i.linktype = rd16(p + 8, b);
            i.snaplen = rd32(p + 12, b);
            for (std::uint32_t o = 16; o + 4 <= n - 4;) {
                std::uint16_t code = rd16(p + o, b), olen = rd16(p + o + 2, b);
                if (code == 0 || o + 4 + olen > n - 4) break;
                if (code == 9 && olen >= 1) {
                    i.binary = (p[o + 4] & 0x80) != 0;
                    i.exp = p[o + 4] & 0x7f;
                } else if (code == 14 && olen >= 8) {
                    std::uint32_t first = rd32(p + o + 4, b), second = rd32(p + o + 8, b);
                    std::uint64_t v = b ? static_cast<std::uint64_t>(first) << 32 | second
                                        : static_cast<std::uint64_t>(second) << 32 | first;
                    i.offset = static_cast<std::int64_t>(v);
                }
                o += 4 + ((olen + 3u) & ~3u);
            }
            if (!linktype_known) {
                linktype = i.linktype;
                linktype_known = true;
            }
            interfaces.push_back(i);
            return false;
        }
        case 6:   // enhanced packet
        case 2: { // packet (obsolete)
            if (n < 32) {
                bad_block(at, n, "packet block shorter than 32 bytes");
                return false;
            }
            std::uint32_t id = type == 6 ? rd32(p + 8, b) : rd16(p + 8, b);
            std::uint32_t caplen = rd32(p + 20, b), orig = rd32(p + 24, b);
            if (id >= interfaces.size()) {
                bad_block(at, n, "packet of undefined interface " + std::to_string(id));
                return false;
            }
            if (caplen > n - 32) {
                bad_block(at, n,
                          "captured length " + std::to_string(caplen) + " larger than the block");
                return false;
            }
            std::uint64_t ticks =
                static_cast<std::uint64_t>(rd32(p + 12, b)) << 32 | rd32(p + 16, b);
            return packet(out, at, interfaces[id], interface_time(interfaces[id], ticks),
                          ptr(at + 28), caplen, orig);
        }
        case 3: { // simple packet
            if (n < 16) {
                bad_block(at, n, "simple packet block shorter than 16 bytes");
                return false;
            }
            if (interfaces.empty()) {
                bad_block(at, n, "simple packet without an interface");
                return false;
            }
            std::uint32_t orig = rd32(p + 8, b);
            std::uint32_t caplen = std::min(orig, n - 16);
            if (interfaces[0].snaplen != 0) caplen = std::min(caplen, interfaces[0].snaplen);
            return packet(out, at, interfaces[0], last_time, ptr(at + 12), caplen, orig);
        }
        default:
            return false;
        }
    }

    bool packet(Packet& out, std::uint64_t at, const Interface& i, TimeNs time,
                const std::uint8_t* data, std::uint32_t caplen, std::uint32_t orig) {
        out.time = time;
        out.linktype = i.linktype;
        out.data = std::span<const std::uint8_t>(data, caplen);
        out.original_length = orig;
        out.index = ++index;
        out.offset = at;
        last_time = time;
        return true;
    }
};

CaptureReader::CaptureReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CaptureReader::CaptureReader(CaptureReader&&) noexcept = default;
CaptureReader& CaptureReader::operator=(CaptureReader&&) noexcept = default;
CaptureReader::~CaptureReader() = default;

CaptureReader CaptureReader::from_file(std::FILE* file, std::string name,
                                       std::vector<std::uint8_t> head) {
    FilePtr owned(file);
    if (!owned) throw CaptureError("cannot read " + name + ": no file");
    auto impl = std::make_unique<Impl>();
    impl->name = name;
    impl->source = std::make_unique<Source>(std::move(owned), std::move(head), std::move(name));
    impl->open();
    return CaptureReader(std::move(impl));
}

CaptureReader CaptureReader::open(const std::string& path) {
    if (path == "-") {
        int fd = ::dup(0);
        if (fd < 0) throw CaptureError("cannot read <stdin>: " + std::string(std::strerror(errno)));
        std::FILE* f = ::fdopen(fd, "rb");
        if (f == nullptr) {
            ::close(fd);
            throw CaptureError("cannot read <stdin>: " + std::string(std::strerror(errno)));
        }
        return from_file(f, "<stdin>");
    }
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) throw CaptureError("cannot open " + path + ": " + std::strerror(errno));
    return from_file(f, path);
}

bool CaptureReader::next(Packet& out) {
    Impl& m = *impl_;
    if (m.end) return false;
    bool got = m.format == Format::Pcap ? m.next_pcap(out) : m.next_pcapng(out);
    if (!got) m.end = true;
    return got;
}

bool CaptureReader::take_damage(Note& out) {
    if (impl_->damage.empty()) return false;
    out = std::move(impl_->damage.front());
    impl_->damage.pop_front();
    return true;
}

int CaptureReader::linktype() const {
    return impl_->linktype;
}
const std::string& CaptureReader::name() const {
    return impl_->name;
}
std::uint64_t CaptureReader::bytes_read() const {
    return impl_->cur;
}
std::uint64_t CaptureReader::damage_count() const {
    return impl_->damage_count;
}
std::uint64_t CaptureReader::skipped_bytes() const {
    return impl_->skipped;
}

// ---------------------------------------------------------------------------------------------
// Single-file detection

FileKind detect_file_kind(std::span<const std::uint8_t> h) {
    auto n = h.size();
    if (n >= 4) {
        std::uint32_t m = rd32(h.data(), false);
        if (m == 0xa1b2c3d4 || m == 0xd4c3b2a1 || m == 0xa1b23c4d || m == 0x4d3cb2a1) {
            return FileKind::Pcap;
        }
        if (m == 0x0a0d0d0a) return FileKind::Pcapng;
    }
    if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b) return FileKind::Gzip;
    // SLDC: a record starts with a control symbol, nine 1-bits then 4 bits (Reset 1/2, Scheme 1/2).
    if (n >= 2 && h[0] == 0xff && (h[1] & 0x80) != 0) {
        unsigned code = (h[1] >> 3) & 0x0f;
        if (code == 1 || code == 2 || code == 5 || code == 6) return FileKind::Sldc;
    }
    // UTF-16LE/BE with or without BOM, optional leading whitespace, then '<'.
    auto utf16 = [&](std::size_t i, bool le) {
        for (; i + 1 < n; i += 2) {
            std::uint8_t lo = le ? h[i] : h[i + 1], hi = le ? h[i + 1] : h[i];
            if (hi != 0) return false;
            if (lo == '<') return true;
            if (lo != ' ' && lo != '\t' && lo != '\r' && lo != '\n') return false;
        }
        return false;
    };
    if (n >= 2 && h[0] == 0xff && h[1] == 0xfe && utf16(2, true)) return FileKind::Utf16Xml;
    if (n >= 2 && h[0] == 0xfe && h[1] == 0xff && utf16(2, false)) return FileKind::Utf16Xml;
    if (utf16(0, true) || utf16(0, false)) return FileKind::Utf16Xml;
    std::size_t i = 0;
    if (n >= 3 && h[0] == 0xef && h[1] == 0xbb && h[2] == 0xbf) i = 3;
    while (i < n && (h[i] == ' ' || h[i] == '\t' || h[i] == '\r' || h[i] == '\n'))
        ++i;
    if (i < n && h[i] == '<') return FileKind::Utf8Xml;
    static constexpr std::string_view kMultipart = "--Encrypted Boundary";
    if (n >= kMultipart.size() &&
        std::memcmp(h.data(), kMultipart.data(), kMultipart.size()) == 0) {
        return FileKind::MultipartEncrypted;
    }
    // A capture with a damaged magic number: a pcap file header still has its version (2.4), a
    // pcapng section header its byte-order magic (CaptureReader reads both, reporting damage).
    if (n >= 8 && ((h[4] == 2 && h[5] == 0 && h[6] == 4 && h[7] == 0) ||
                   (h[4] == 0 && h[5] == 2 && h[6] == 0 && h[7] == 4))) {
        return FileKind::Pcap;
    }
    if (n >= 12 &&
        (rd32(h.data() + 8, false) == 0x1A2B3C4D || rd32(h.data() + 8, true) == 0x1A2B3C4D)) {
        return FileKind::Pcapng;
    }
    return FileKind::Unknown;
}

std::string_view to_string(FileKind kind) {
    switch (kind) {
    case FileKind::Pcap:
        return "pcap";
    case FileKind::Pcapng:
        return "pcapng";
    case FileKind::Gzip:
        return "gzip";
    case FileKind::Sldc:
        return "sldc";
    case FileKind::Utf16Xml:
        return "utf16-xml";
    case FileKind::Utf8Xml:
        return "utf8-xml";
    case FileKind::MultipartEncrypted:
        return "multipart-encrypted";
    case FileKind::Unknown:
        return "unknown";
    }
    return "unknown";
}

} // namespace wec::capture

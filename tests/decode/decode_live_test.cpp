// `wec decode` on captures the suite records itself: a real MIT KDC, the real `wec serve`, the
// independent Python clients (both Kerberos forms, both MIME forms, two clients at once, SLDC
// compressed Events) and curl --negotiate, captured by tcpdump on lo and decoded with the service
// keytab. The decoded bodies must equal what was sent, byte for byte, and `--events` must print
// what `wec serve` wrote for the same session.
#include "capture/capture.hpp"
#include "krb/keytab.hpp"
#include "live_session.hpp"
#include "pcap_writer.hpp"
#include "support/files.hpp"

#include <algorithm>
#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace {

using namespace wec::test;
using wec::testing::lines_of;
using wec::testing::RunResult;
using wec::testing::slurp;
using wec::testing::TempDir;
using Json = nlohmann::json;
namespace cap = wec::capture;

std::string data(const std::string& rel) {
    return slurp(std::string(WEC_TEST_DATA) + "/" + rel);
}

struct Decoded {
    int exit_code = -1;
    std::string out, err;
    std::vector<Json> records() const {
        std::vector<Json> r;
        for (const auto& l : lines_of(out))
            r.push_back(Json::parse(l));
        return r;
    }
};

// Runs `wec decode ARGS` with stdout and stderr kept apart (arguments have no spaces/quotes).
Decoded decode(const fs::path& work, const std::string& args, const std::string& stdin_file = "") {
    static int n = 0;
    auto out = work / ("decode-" + std::to_string(++n) + ".out");
    auto err = work / ("decode-" + std::to_string(n) + ".err");
    std::string cmd =
        std::string(WEC_EXE) + " decode " + args + " >" + out.string() + " 2>" + err.string();
    if (!stdin_file.empty()) cmd += " <" + stdin_file;
    auto r = wec::testing::run({"/bin/sh", "-c", cmd});
    return {r.exit_code, slurp(out), slurp(err)};
}

// --- capture rewriting --------------------------------------------------------------------------

using Packets = std::vector<std::pair<cap::TimeNs, std::vector<std::uint8_t>>>;

Packets read_packets(const fs::path& pcap, int& linktype) {
    auto reader = cap::CaptureReader::open(pcap.string());
    linktype = reader.linktype();
    Packets out;
    cap::Packet p;
    while (reader.next(p))
        out.emplace_back(p.time, std::vector<std::uint8_t>(p.data.begin(), p.data.end()));
    return out;
}

void write_packets(const fs::path& path, int linktype, const Packets& packets) {
    PcapWriter w(path.string(), static_cast<std::uint32_t>(linktype));
    for (const auto& [t, d] : packets)
        w.write(t, d);
}

// A keytab file (format 0x0502) holding `entries`.
void write_keytab(const fs::path& path, const std::vector<wec::krb::KeytabEntry>& entries) {
    Bytes out{0x05, 0x02};
    for (const auto& e : entries) {
        Bytes b;
        auto str = [&b](const std::string& s) {
            put16(b, static_cast<std::uint16_t>(s.size()));
            for (char ch : s)
                b.push_back(static_cast<std::uint8_t>(ch));
        };
        put16(b, static_cast<std::uint16_t>(e.principal.components.size()));
        str(e.principal.realm);
        for (const auto& c : e.principal.components)
            str(c);
        put32(b, static_cast<std::uint32_t>(e.principal.name_type));
        put32(b, e.timestamp);
        b.push_back(static_cast<std::uint8_t>(e.kvno));
        put16(b, static_cast<std::uint16_t>(e.enctype));
        put16(b, static_cast<std::uint16_t>(e.key.size()));
        b.insert(b.end(), e.key.begin(), e.key.end());
        put32(b, e.kvno);
        put32(out, static_cast<std::uint32_t>(b.size()));
        out.insert(out.end(), b.begin(), b.end());
    }
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
}

// --- the recorded session ----------------------------------------------------------------------

class DecodeLive : public ::testing::Test {
protected:
    static inline std::unique_ptr<TempDir> dir;
    static inline std::unique_ptr<LiveSession> session;
    static inline std::string failure;
    static inline fs::path wrong_keytab;
    static inline std::vector<wec::krb::KeytabEntry> wrong_entries;

    static void SetUpTestSuite() {
        dir = std::make_unique<TempDir>();
        try {
            // An SLDC-compressed Events body, as Windows sends large batches.
            auto events = data("wsman/events.xml");
            std::ofstream(dir->path() / "events.utf16", std::ios::binary) << "\xff\xfe";
            {
                std::ofstream f(dir->path() / "events.utf16", std::ios::binary | std::ios::app);
                for (char c : events)
                    f.put(c).put('\0');
            }
            auto r = wec::testing::run({WEC_EXE, "sldc", "compress",
                                        (dir->path() / "events.utf16").string(), "-o",
                                        (dir->path() / "events.sldc").string()});
            if (r.exit_code != 0) throw std::runtime_error("wec sldc compress: " + r.output);

            // Recorded again (at most 3 times) if tcpdump reports kernel drops.
            for (int attempt = 1;; ++attempt) {
                session.reset();
                for (const char* f : {"capture.pcap", "serve-events.json", "serve-events.xml",
                                      "wec.db", "wec.db-wal", "wec.db-shm"})
                    fs::remove(dir->path() / f);
                session = std::make_unique<LiveSession>(WEC_EXE, dir->path());
                session->python("kerberos", false);
                session->python("kerberos", true);
                session->python("spnego", false);
                session->python("spnego", true);
                session->python_concurrently("kerberos", false, "spnego", true);
                // curl's connection opens and closes while the Events connection is held open.
                session->sldc_events(dir->path() / "events.sldc", 2, "kerberos",
                                     [&] { session->curl(); });
                int dropped = session->stop();
                if (dropped == 0) break;
                if (attempt == 3)
                    throw std::runtime_error("tcpdump dropped " + std::to_string(dropped) +
                                             " packets in 3 recordings (machine overloaded)");
            }

            // Keys of the same service names from another realm: wrong keys.
            wec::testing::Krb5Realm other;
            other.add_principal("HTTP/" + kDecodeHost);
            other.add_principal("HOST/" + kDecodeHost);
            wrong_keytab =
                other.export_keytab({"HTTP/" + kDecodeHost, "HOST/" + kDecodeHost}, "wrong.keytab");
            fs::copy_file(wrong_keytab, dir->path() / "wrong.keytab");
            wrong_keytab = dir->path() / "wrong.keytab";
            wrong_entries = wec::krb::read_keytab(wrong_keytab.string());
        } catch (const std::exception& e) {
            failure = e.what();
            if (session) failure += "\n---- wec serve log ----\n" + session->serve_log();
        }
    }
    static void TearDownTestSuite() {
        // WEC_DECODE_KEEP=DIR keeps the recorded files for a look by hand.
        if (const char* keep = std::getenv("WEC_DECODE_KEEP"); keep != nullptr && dir)
            fs::copy(dir->path(), keep,
                     fs::copy_options::recursive | fs::copy_options::overwrite_existing);
        session.reset();
        dir.reset();
    }
    void SetUp() override { ASSERT_TRUE(failure.empty()) << "recording failed: " << failure; }

    static std::string pcap() { return session->pcap().string(); }
    static std::string keytab() { return session->keytab().string(); }
    static const fs::path& work() { return dir->path(); }
};

// Requests per wef_client.py run: 4 connections, 10 requests; 6 runs.
constexpr int kPythonRuns = 6;

TEST_F(DecodeLive, BodiesEqualWhatWasSentByteForByte) {
    auto bodies = work() / "bodies";
    auto d = decode(work(), pcap() + " --keytab " + keytab() + " --format json --export-bodies " +
                                bodies.string());
    ASSERT_EQ(d.exit_code, 0) << d.err;
    auto records = d.records();
    std::map<std::string, int> actions;
    std::set<std::string> protocols;
    std::set<bool> tabs;
    std::map<std::pair<std::uint64_t, std::uint64_t>, std::string> request_ids;
    int decrypted = 0;
    for (const auto& r : records) {
        ASSERT_EQ(r["v"], 1);
        ASSERT_NE(r["encryption"]["state"], "undecryptable") << r.dump();
        EXPECT_TRUE(r["errors"].empty()) << r.dump();
        if (r["encryption"]["state"] == "decrypted") {
            ++decrypted;
            protocols.insert(r["encryption"]["protocol"].get<std::string>());
            tabs.insert(r["encryption"]["mime_tab"].get<bool>());
        }
        if (r["direction"] != "request" || !r.contains("action")) continue;
        std::string action = r["action"];
        ++actions[action];
        request_ids[{r["connection"], r["index"]}] = r["message_id"];
        auto exported =
            bodies / (std::string("c") +
                      [&] {
                          char b[32];
                          std::snprintf(
                              b, sizeof b, "%06llu-%04llu",
                              static_cast<unsigned long long>(r["connection"].get<std::uint64_t>()),
                              static_cast<unsigned long long>(r["index"].get<std::uint64_t>()));
                          return std::string(b);
                      }() +
                      "-request-" + action + ".xml");
        ASSERT_TRUE(fs::exists(exported)) << exported;
        if (action == "Events") {
            EXPECT_EQ(r["body"], data("wsman/events.xml"));
            EXPECT_EQ(r["events"], 21);
            EXPECT_EQ(r["subscription"]["uuid"], kSubscriptionUuid);
            EXPECT_EQ(r["subscription"]["name"], "security");
            EXPECT_EQ(r["auth"]["client"], "WIN10$@WINDOMAIN.LOCAL");
        } else if (action == "End") {
            EXPECT_EQ(r["body"], data("wsman/end.xml"));
        } else if (action == "SubscriptionEnd") {
            EXPECT_EQ(r["body"], data("wsman/subscription-end.xml"));
        } else if (action == "Enumerate") {
            EXPECT_EQ(slurp(exported), data("wsman/enumerate.utf16"));
        } else if (action == "Heartbeat") {
            EXPECT_EQ(slurp(exported), data("wsman/heartbeat.utf16"));
            EXPECT_EQ(r["decompressed"], true);
            EXPECT_EQ(r["compressed_bytes"], 1006);
            EXPECT_EQ(r["content_encoding"], "SLDC");
        }
    }
    EXPECT_EQ(actions["Enumerate"], 2 * kPythonRuns + 1);
    EXPECT_EQ(actions["End"], kPythonRuns);
    EXPECT_EQ(actions["Heartbeat"], kPythonRuns);
    EXPECT_EQ(actions["Events"], kPythonRuns + 2);
    EXPECT_EQ(actions["SubscriptionEnd"], kPythonRuns);
    EXPECT_EQ(protocols, (std::set<std::string>{"application/HTTP-Kerberos-session-encrypted",
                                                "application/HTTP-SPNEGO-session-encrypted"}));
    EXPECT_EQ(tabs, (std::set<bool>{false, true}));

    // The SLDC-compressed Events: decompressed to exactly the UTF-16 that was compressed.
    int compressed_events = 0;
    for (const auto& r : records)
        if (r.value("action", "") == "Events" && r["decompressed"] == true) ++compressed_events;
    EXPECT_EQ(compressed_events, 2);

    // Every Ack answers its request: RelatesTo repeats the request's MessageID.
    int acks = 0;
    for (const auto& r : records) {
        if (r["direction"] != "response" || r.value("action", "") != "Ack") continue;
        ++acks;
        auto it = request_ids.find({r["connection"], r["request_index"]});
        ASSERT_NE(it, request_ids.end()) << r.dump();
        EXPECT_EQ(r["relates_to"], it->second);
    }
    EXPECT_EQ(acks, 2 * kPythonRuns + 2);

    // Two clients ran at once: some connections overlap in time.
    std::map<std::uint64_t, std::pair<std::string, std::string>> spans;
    for (const auto& r : records) {
        auto& s = spans[r["connection"]];
        if (s.first.empty()) s.first = r["time"];
        s.second = r["time_last"];
    }
    bool overlap = false;
    for (auto a = spans.begin(); a != spans.end(); ++a)
        for (auto b = std::next(a); b != spans.end(); ++b)
            if (b->second.first < a->second.second) overlap = true;
    EXPECT_TRUE(overlap) << "no interleaved connections in the capture";
    EXPECT_NE(d.err.find(std::to_string(decrypted) + " decrypted"), std::string::npos) << d.err;
}

std::string without_time_received(const std::string& line) {
    auto j = Json::parse(line);
    j["OpenWEC"].erase("TimeReceived");
    return j.dump();
}

TEST_F(DecodeLive, EventsAreWhatServeWrote) {
    auto d = decode(work(), pcap() + " -k " + keytab() + " --events --event-format json");
    ASSERT_EQ(d.exit_code, 0) << d.err;
    auto served = lines_of(slurp(work() / "serve-events.json"));
    auto decoded = lines_of(d.out);
    ASSERT_EQ(served.size(), std::size_t{21 * (kPythonRuns + 2)});
    ASSERT_EQ(decoded.size(), served.size());
    std::multiset<std::string> a, b;
    for (const auto& l : served)
        a.insert(without_time_received(l));
    for (const auto& l : decoded)
        b.insert(without_time_received(l));
    EXPECT_TRUE(a == b) << "first served: " << served.front()
                        << "\nfirst decoded: " << decoded.front();
    auto first = Json::parse(decoded.front());
    EXPECT_EQ(first["OpenWEC"]["Subscription"]["Name"], "security");
    EXPECT_EQ(first["OpenWEC"]["Client"], "WIN10$@WINDOMAIN.LOCAL");
    EXPECT_TRUE(first["OpenWEC"].contains("TimeReceived"));

    auto raw = decode(work(), pcap() + " -k " + keytab() + " --events --event-format raw");
    ASSERT_EQ(raw.exit_code, 0) << raw.err;
    auto served_raw = lines_of(slurp(work() / "serve-events.xml"));
    auto decoded_raw = lines_of(raw.out);
    EXPECT_EQ(std::multiset<std::string>(served_raw.begin(), served_raw.end()),
              std::multiset<std::string>(decoded_raw.begin(), decoded_raw.end()));
}

TEST_F(DecodeLive, CurlNegotiateAuthentication) {
    auto d = decode(work(), pcap() + " -k " + keytab() + " --format json");
    ASSERT_EQ(d.exit_code, 0) << d.err;
    bool ap_req = false, ap_rep = false;
    for (const auto& r : d.records()) {
        if (r.value("target", "") != "/wsman" && !r.contains("status")) continue;
        const auto& a = r["auth"];
        if (a["step"] == "ap-req" && a["scheme"] == "Negotiate" && r["target"] == "/wsman") {
            ap_req = true;
            EXPECT_EQ(a["client"], "WIN10$@WINDOMAIN.LOCAL");
            EXPECT_EQ(a["service"], "HTTP/" + kDecodeHost + "@WINDOMAIN.LOCAL");
            EXPECT_EQ(a["enctype"], "aes256-cts-hmac-sha1-96");
            EXPECT_FALSE(a.contains("error"));
        }
        if (a["step"] == "ap-rep" && a["scheme"] == "Negotiate" && !a.contains("error"))
            ap_rep = true;
    }
    EXPECT_TRUE(ap_req && ap_rep);
}

TEST_F(DecodeLive, TextTranscript) {
    auto d = decode(work(), pcap() + " -k " + keytab() + " --color never");
    ASSERT_EQ(d.exit_code, 0) << d.err;
    EXPECT_NE(d.out.find("21 events"), std::string::npos);
    EXPECT_NE(
        d.out.find("auth ap-req Kerberos: WIN10$@WINDOMAIN.LOCAL -> HTTP/srv.windomain.local"),
        std::string::npos);
    EXPECT_NE(d.out.find("decrypted (SPNEGO), SLDC 1006 -> 3042 bytes, UTF-16LE"),
              std::string::npos);
    EXPECT_NE(d.out.find("subscription " + kSubscriptionUuid + " \"security\""), std::string::npos);
    EXPECT_NE(d.out.find("bookmark <BookmarkList>"), std::string::npos);
    EXPECT_EQ(d.out.find("\033["), std::string::npos);
    EXPECT_EQ(d.out.find("| <s:Envelope"), std::string::npos);
    auto v = decode(work(), pcap() + " -k " + keytab() + " -v --color always");
    ASSERT_EQ(v.exit_code, 0) << v.err;
    EXPECT_NE(v.out.find("| <s:Envelope"), std::string::npos);
    EXPECT_NE(v.out.find("\033["), std::string::npos);
}

TEST_F(DecodeLive, WrongKeytabReportsUndecryptableWithReason) {
    auto d = decode(work(), pcap() + " -k " + wrong_keytab.string() + " --format json");
    EXPECT_EQ(d.exit_code, 1) << d.err;
    int undecryptable = 0, events = 0;
    for (const auto& r : d.records()) {
        if (r["encryption"]["state"] == "undecryptable") {
            ++undecryptable;
            EXPECT_EQ(r["encryption"]["reason"], "wrong-key") << r.dump();
        }
        if (r["auth"]["step"] == "ap-req") {
            EXPECT_EQ(r["auth"]["reason"], "wrong-key");
        }
        events += r["events"].get<int>();
    }
    auto good = decode(work(), pcap() + " -k " + keytab() + " --format json");
    int encrypted = 0;
    for (const auto& r : good.records())
        if (r["encryption"]["state"] == "decrypted") ++encrypted;
    EXPECT_EQ(undecryptable, encrypted);
    EXPECT_EQ(encrypted, 10 * kPythonRuns + 6);
    EXPECT_EQ(events, 0);
    EXPECT_NE(d.err.find("wrong-key"), std::string::npos) << d.err;

    auto none = decode(work(), pcap() + " --format json");
    EXPECT_EQ(none.exit_code, 1);
    EXPECT_NE(none.err.find("no-key"), std::string::npos) << none.err;
    EXPECT_NE(none.err.find("no --keytab given"), std::string::npos) << none.err;
}

TEST_F(DecodeLive, KeytabWithSeveralKeysAndKvnos) {
    // Wrong keys first (same names, the ticket's kvno and others), the right ones last.
    auto right = wec::krb::read_keytab(keytab());
    std::vector<wec::krb::KeytabEntry> entries;
    for (auto e : wrong_entries) {
        e.kvno = right.front().kvno; // same kvno as the real key: the wrong one must be skipped
        entries.push_back(e);
        e.kvno = 7;
        entries.push_back(e);
    }
    for (auto e : right) {
        entries.push_back(e);
        e.kvno = 9;
        e.key.assign(e.key.size(), 0x42);
        entries.push_back(e);
    }
    auto multi = work() / "multi.keytab";
    write_keytab(multi, entries);
    ASSERT_EQ(wec::krb::read_keytab(multi.string()).size(), entries.size());
    auto d = decode(work(), pcap() + " -k " + multi.string() + " --format json");
    EXPECT_EQ(d.exit_code, 0) << d.err;
    int decrypted = 0;
    for (const auto& r : d.records()) {
        EXPECT_NE(r["encryption"]["state"], "undecryptable") << r.dump();
        if (r["encryption"]["state"] == "decrypted") ++decrypted;
        if (r["auth"]["step"] == "ap-req") {
            EXPECT_EQ(r["auth"]["kvno"], right.front().kvno);
        }
    }
    EXPECT_EQ(decrypted, 10 * kPythonRuns + 6);
    // Two keytabs given separately work the same.
    auto two =
        decode(work(), pcap() + " -k " + wrong_keytab.string() + " -k " + keytab() + " --events");
    EXPECT_EQ(two.exit_code, 0) << two.err;
    EXPECT_EQ(lines_of(two.out).size(), std::size_t{21 * (kPythonRuns + 2)});
}

TEST_F(DecodeLive, CaptureThatStartsAfterAuthentication) {
    // Drop every packet before the first request that follows an authentication: that
    // connection's AP-REQ/AP-REP are gone.
    cap::TimeNs cut_time = 0;
    cap::Callbacks cb;
    cb.on_message = [&cut_time](const cap::HttpMessage& m) {
        if (cut_time == 0 && m.is_request && m.index == 1) cut_time = m.first_time;
    };
    cap::extract_http(pcap(), cb);
    ASSERT_NE(cut_time, 0);
    int linktype = 0;
    auto packets = read_packets(pcap(), linktype);
    Packets kept;
    for (const auto& p : packets)
        if (p.first >= cut_time) kept.push_back(p);
    ASSERT_LT(kept.size(), packets.size());
    auto cut = work() / "cut.pcap";
    write_packets(cut, linktype, kept);
    auto d = decode(work(), cut.string() + " -k " + keytab() + " --format json");
    EXPECT_EQ(d.exit_code, 1) << d.err;
    int undecryptable = 0, later_decrypted = 0;
    for (const auto& r : d.records()) {
        if (r["encryption"]["state"] == "undecryptable") {
            ++undecryptable;
            EXPECT_EQ(r["encryption"]["reason"], "no-session") << r.dump();
            EXPECT_NE(r["encryption"]["error"].get<std::string>().find("starts after"),
                      std::string::npos);
        } else if (r["encryption"]["state"] == "decrypted") {
            ++later_decrypted;
        }
    }
    EXPECT_GE(undecryptable, 2); // Enumerate and its response at least
    EXPECT_GE(later_decrypted, 10 * kPythonRuns);
    EXPECT_NE(d.err.find("no-session"), std::string::npos) << d.err;
}

TEST_F(DecodeLive, ReorderedAndDuplicatedSegments) {
    int linktype = 0;
    auto packets = read_packets(pcap(), linktype);
    Packets out;
    cap::TcpSegment seg;
    for (std::size_t i = 0; i < packets.size(); ++i) {
        cap::Packet q;
        q.linktype = linktype;
        q.data = packets[i].second;
        bool payload = cap::decode_packet(q, seg) == cap::DecodeStatus::Tcp && !seg.payload.empty();
        if (payload && i % 3 == 0) out.push_back(packets[i]); // duplicate
        if (payload && i + 1 < packets.size() && i % 4 == 1) {
            out.push_back(packets[i + 1]); // swap with the next one
            out.push_back(packets[i]);
            ++i;
            continue;
        }
        out.push_back(packets[i]);
    }
    auto rw = work() / "reordered.pcap";
    write_packets(rw, linktype, out);
    auto a = decode(work(), pcap() + " -k " + keytab() + " --format json");
    auto b = decode(work(), rw.string() + " -k " + keytab() + " --format json");
    ASSERT_EQ(a.exit_code, 0);
    EXPECT_EQ(b.exit_code, 0) << b.err;
    auto bodies = [](const Decoded& d) {
        std::multiset<std::string> s;
        for (const auto& r : d.records())
            s.insert(r["direction"].get<std::string>() + r.value("action", "") +
                     r.value("body", ""));
        return s;
    };
    EXPECT_TRUE(bodies(a) == bodies(b));
    EXPECT_EQ(a.records().size(), b.records().size());
}

TEST_F(DecodeLive, GzipStdinAndSeveralInputs) {
    auto gz = work() / "capture.pcap.gz";
    ASSERT_EQ(std::system(("gzip -c " + pcap() + " > " + gz.string()).c_str()), 0);
    auto d = decode(work(), gz.string() + " -k " + keytab() + " --events");
    EXPECT_EQ(d.exit_code, 0) << d.err;
    EXPECT_EQ(lines_of(d.out).size(), std::size_t{21 * (kPythonRuns + 2)});
    auto s = decode(work(), "- -k " + keytab() + " --events --event-format raw", pcap());
    EXPECT_EQ(s.exit_code, 0) << s.err;
    EXPECT_EQ(lines_of(s.out).size(), std::size_t{21 * (kPythonRuns + 2)});
    // Two inputs: connection ids stay unique.
    auto two = decode(work(), pcap() + " " + gz.string() + " -k " + keytab() + " --format json");
    EXPECT_EQ(two.exit_code, 0) << two.err;
    std::set<std::uint64_t> first, second;
    for (const auto& r : two.records())
        (r["input"] == pcap() ? first : second).insert(r["connection"].get<std::uint64_t>());
    ASSERT_FALSE(first.empty());
    EXPECT_LT(*first.rbegin(), *second.begin());
}

// --- lone bodies and input errors (no live session needed)
// ----------------------------------------

TEST(DecodeBody, SldcHeartbeat) {
    TempDir t;
    auto d = decode(t.path(), std::string(WEC_TEST_DATA) + "/sldc/heartbeat.sldc --format json");
    ASSERT_EQ(d.exit_code, 0) << d.err;
    auto r = d.records().at(0);
    EXPECT_EQ(r["action"], "Heartbeat");
    EXPECT_EQ(r["decompressed"], true);
    EXPECT_EQ(r["content_bytes"], 3042);
    EXPECT_EQ(r["message_id"], "uuid:EEC04F74-A27D-4C3A-AEF5-BC5BF54359BA");
    auto x = decode(t.path(), std::string(WEC_TEST_DATA) + "/sldc/heartbeat.sldc --export-bodies " +
                                  (t.path() / "out").string());
    ASSERT_EQ(x.exit_code, 0) << x.err;
    EXPECT_EQ(slurp(t.path() / "out" / "heartbeat.sldc-Heartbeat.xml"),
              data("sldc/heartbeat.utf16"));
}

TEST(DecodeBody, Utf16AndUtf8Soap) {
    TempDir t;
    auto d = decode(t.path(), std::string(WEC_TEST_DATA) + "/sldc/events.utf16 " + WEC_TEST_DATA +
                                  "/wsman/events.xml --format json");
    ASSERT_EQ(d.exit_code, 0) << d.err;
    auto rs = d.records();
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[0]["text_encoding"], "UTF-16LE");
    EXPECT_EQ(rs[1]["text_encoding"], "UTF-8");
    EXPECT_EQ(rs[0]["events"], 21);
    EXPECT_EQ(rs[1]["body"], data("wsman/events.xml"));
    auto e = decode(t.path(),
                    std::string(WEC_TEST_DATA) + "/sldc/events.utf16 --events --event-format raw");
    EXPECT_EQ(e.exit_code, 0);
    EXPECT_EQ(lines_of(e.out).size(), 21u);
    // Every format of `wec serve` outputs; each line parses back.
    for (const char* format : {"json", "raw_json", "nxlog", "ecs"}) {
        SCOPED_TRACE(format);
        auto f = decode(t.path(), std::string(WEC_TEST_DATA) +
                                      "/wsman/events.xml --events --event-format " + format);
        ASSERT_EQ(f.exit_code, 0) << f.err;
        auto lines = lines_of(f.out);
        ASSERT_EQ(lines.size(), 21u);
        for (const auto& line : lines)
            EXPECT_TRUE(nlohmann::json::accept(line)) << line;
        if (std::string(format) == "ecs") {
            EXPECT_EQ(nlohmann::json::parse(lines[0])["winlog"]["provider_name"],
                      "Microsoft-Windows-WinRM");
        }
    }
    auto bad = decode(t.path(), std::string(WEC_TEST_DATA) +
                                    "/wsman/events.xml --events --event-format gelf");
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("gelf"), std::string::npos) << bad.err;
}

TEST(DecodeBody, LoneMultipartNeedsItsConnection) {
    TempDir t;
    auto f = t.path() / "body.bin";
    std::ofstream(f, std::ios::binary)
        << "--Encrypted Boundary\r\nContent-Type: application/HTTP-Kerberos-session-encrypted\r\n"
           "OriginalContent: type=application/soap+xml;charset=UTF-16;Length=10\r\n"
           "--Encrypted Boundary\r\nContent-Type: application/octet-stream\r\n"
        << std::string(80, 'x') << "--Encrypted Boundary--\r\n";
    auto d = decode(t.path(), f.string() + " --format json");
    EXPECT_EQ(d.exit_code, 1) << d.err;
    auto r = d.records().at(0);
    EXPECT_EQ(r["encryption"]["state"], "undecryptable");
    EXPECT_EQ(r["encryption"]["reason"], "no-session");
}

TEST(DecodeBody, InputErrorsExitTwo) {
    TempDir t;
    auto junk = t.path() / "junk.bin";
    std::ofstream(junk) << "hello, this is not a capture";
    EXPECT_EQ(decode(t.path(), junk.string()).exit_code, 2);
    auto missing = decode(t.path(), (t.path() / "absent.pcap").string());
    EXPECT_EQ(missing.exit_code, 2);
    EXPECT_NE(missing.err.find("absent.pcap"), std::string::npos);
    EXPECT_EQ(decode(t.path(), "--format yaml x").exit_code, 2);
    EXPECT_EQ(decode(t.path(), "").exit_code, 2);
}

TEST(DecodeSample, ShippedCaptureDecodes) {
    TempDir t;
    std::string s = std::string(WEC_SOURCE_DIR) + "/samples/captures/";
    auto d = decode(t.path(), s + "wef-kerberos.pcap --keytab " + s + "wec.keytab --format json");
    ASSERT_EQ(d.exit_code, 0) << d.err;
    int events = 0, decrypted = 0;
    std::set<std::string> actions;
    for (const auto& r : d.records()) {
        events += r["events"].get<int>();
        if (r["encryption"]["state"] == "decrypted") ++decrypted;
        if (r.contains("action")) actions.insert(r["action"]);
    }
    EXPECT_EQ(events, 21);
    EXPECT_EQ(decrypted, 10);
    EXPECT_EQ(actions, (std::set<std::string>{"Ack", "End", "Enumerate", "EnumerateResponse",
                                              "Events", "Heartbeat", "SubscriptionEnd"}));
    auto text = decode(t.path(), s + "wef-kerberos.pcap --keytab " + s + "wec.keytab");
    EXPECT_EQ(text.exit_code, 0);
    EXPECT_NE(text.out.find("21 events"), std::string::npos);
}

} // namespace

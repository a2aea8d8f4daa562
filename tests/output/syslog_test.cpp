// The syslog driver: the exact RFC 5424 bytes (checked on receivers of the test), and delivery to
// a real rsyslogd started by the test with its own configuration (imudp, imtcp with octet counting,
// imptcp with LF framing, imuxsock on a unix datagram socket, imtcp + OpenSSL with a client
// certificate), whose parsed view of every message (PRI, TIMESTAMP, HOSTNAME, APP-NAME, PROCID,
// MSGID, SD, MSG) is compared with what was sent.
#include "event/event.hpp"
#include "output/net_peers.hpp"
#include "output/output.hpp"
#include "support/process.hpp"
#include "support/rsyslog.hpp"
#include "support/test_pki.hpp"

#include <arpa/inet.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <map>
#include <netinet/in.h>
#include <sstream>
#include <sys/socket.h>
#include <thread>

namespace {

namespace fs = std::filesystem;
using wec::testing::Parsed;
using wec::testing::Rsyslog;
using namespace wec::output;
using std::chrono::milliseconds;
using std::chrono::seconds;

// One event sent, and what a receiver must see for it.
struct Event {
    std::string xml;
    int pri = 0; // with facility local0
    std::string timestamp;
    std::string hostname;
    std::string msgid;
};

std::string synthetic_xml(int id, std::optional<int> level, const std::string& time,
                          const std::string& computer, const std::string& text) {
    std::string level_xml = level ? "<Level>" + std::to_string(*level) + "</Level>" : "";
    return "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
           "<Provider Name='wec-test'/><EventID>" +
           std::to_string(id) + "</EventID>" + level_xml + "<TimeCreated SystemTime='" + time +
           "'/><EventRecordID>" + std::to_string(id) +
           "</EventRecordID><Channel>Application</Channel><Computer>" + computer +
           "</Computer></System><EventData><Data Name='text'>" + text +
           "</Data></EventData></Event>";
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Real Windows events (tests/data/event/json) and synthetic ones covering every level, an
// offset time zone, a name with bytes outside printable ASCII and non-ASCII text.
std::vector<Event> events() {
    const std::string data = std::string(WEC_TEST_DATA) + "/event/json/";
    std::vector<Event> out = {
        {slurp(data + "event_1003.xml"), 134, "2022-12-14T16:05:59.707437Z",
         "win10.windomain.local", "1003"},
        {slurp(data + "event_1100.xml"), 134, "2022-12-14T14:39:07.168618Z",
         "win10.windomain.local", "1100"},
        {slurp(data + "event_111.xml"), 134, "2023-02-14T09:14:23.175Z", "win10.windomain.local",
         "111"}, // no Level: informational
        {slurp(data + "event_4688.xml"), 134, "2022-12-14T16:06:51.064360Z",
         "win10.windomain.local", "4688"}, // Level 0 (LogAlways): informational
        {slurp(data + "event_5719.xml"), 131, "2022-12-14T16:04:59.081704Z",
         "win10.windomain.local", "5719"}, // OutputError
        {slurp(data + "event_6013.xml"), 134, "2022-12-14T16:04:43.796556Z",
         "win10.windomain.local", "6013"},
    };
    out.push_back(
        {synthetic_xml(41, 1, "2024-02-29T23:59:59.1234567Z", "dc01.windomain.local", "critical"),
         130, "2024-02-29T23:59:59.123456Z", "dc01.windomain.local", "41"});
    out.push_back({synthetic_xml(1014, 3, "2024-03-01T01:02:03+02:00", "dc02", "warning"), 132,
                   "2024-03-01T01:02:03+02:00", "dc02", "1014"});
    out.push_back({synthetic_xml(7, 5, "2024-03-01T01:02:03.5Z", "h\xC3\xB4te", "verbose"), 135,
                   "2024-03-01T01:02:03.5Z", "h__te", "7"});
    out.push_back(
        {synthetic_xml(4624, 0, "2024-03-01T00:00:00.000000Z", "srv.windomain.local",
                       "caf\xC3\xA9 \xE2\x82\xAC | pipes | and 'quotes' &amp; &lt;tags&gt;"),
         134, "2024-03-01T00:00:00.000000Z", "srv.windomain.local", "4624"});
    return out;
}

// The lines and the XML views the collector would give the driver (format raw or json).
struct Batch {
    std::string lines;
    std::vector<std::string> line_list;
    std::vector<std::string> xml_text;
    std::vector<std::string_view> xml; // into xml_text
};

Batch make_batch(const std::vector<Event>& evs, bool json) {
    Batch b;
    wec::event::Metadata meta;
    meta.ip_address = "192.168.58.100";
    meta.client = "WIN10$@WINDOMAIN.LOCAL";
    meta.subscription_name = "syslog test";
    wec::event::Event parsed;
    for (const auto& e : evs) {
        std::string line;
        if (json) {
            wec::event::parse(e.xml, parsed);
            wec::event::format_json(parsed, meta, line);
        } else {
            wec::event::format_raw(e.xml, line);
        }
        b.lines += line + "\n";
        b.line_list.push_back(line);
        b.xml_text.push_back(e.xml);
    }
    for (const auto& x : b.xml_text)
        b.xml.push_back(x);
    return b;
}

BatchInfo info(const Batch& b) {
    BatchInfo i;
    i.ip = "192.168.58.100";
    i.client = "WIN10$@WINDOMAIN.LOCAL";
    i.machine = "win10-machineid.windomain.local";
    i.subscription_name = "syslog test";
    i.received = std::chrono::system_clock::now();
    i.events = b.xml;
    return i;
}

std::string header(const Event& e, const std::string& app = "wec", int facility = 16) {
    int pri = e.pri - 128 + facility * 8;
    return "<" + std::to_string(pri) + ">1 " + e.timestamp + " " + e.hostname + " " + app + " - " +
           e.msgid + " - ";
}

// ------------------------------------------------------------------------------------------
// The bytes on the wire

TEST(SyslogOutput, Rfc5424DatagramPerEventOverUdp) {
    wec::testing::UdpPeer peer;
    auto evs = events();
    auto b = make_batch(evs, false);
    auto d = make_driver("syslog", {{"address", "udp://127.0.0.1:" + std::to_string(peer.port())},
                                    {"facility", "auth"},
                                    {"app_name", "wec-dc"}});
    d->write(info(b), b.lines);
    auto got = peer.receive(evs.size());
    ASSERT_EQ(got.size(), evs.size());
    for (std::size_t i = 0; i < evs.size(); ++i)
        EXPECT_EQ(got[i], header(evs[i], "wec-dc", 4) + b.line_list[i]);
}

TEST(SyslogOutput, FieldsFallBackToNilWithoutUsableXml) {
    wec::testing::UdpPeer peer;
    auto d = make_driver("syslog", {{"address", "udp://127.0.0.1:" + std::to_string(peer.port())}});
    BatchInfo i;
    i.machine = "win10.windomain.local";
    // No XML given (a caller without events): NILVALUE fields, HOSTNAME from the MachineID.
    d->write(i, "one\ntwo\n");
    // XML that cannot be read, and a SystemTime that is not RFC 3339.
    std::vector<std::string_view> xml = {
        "not xml at all", "<Event><System><EventID>5</EventID><Level>2</Level><TimeCreated "
                          "SystemTime='yesterday'/><Computer>pc</Computer></System></Event>"};
    i.events = xml;
    d->write(i, "three\nfour\n");
    EXPECT_EQ(peer.receive(4),
              (std::vector<std::string>{"<134>1 - win10.windomain.local wec - - - one",
                                        "<134>1 - win10.windomain.local wec - - - two",
                                        "<134>1 - win10.windomain.local wec - - - three",
                                        "<131>1 - pc wec - 5 - four"}));
}

TEST(SyslogOutput, OversizedUdpMessageIsTruncatedAndCounted) {
    wec::testing::UdpPeer peer;
    auto d = make_driver("syslog", {{"address", "udp://127.0.0.1:" + std::to_string(peer.port())}});
    Event e{synthetic_xml(1, 4, "2024-01-01T00:00:00Z", "pc", std::string(100000, 'a')), 134,
            "2024-01-01T00:00:00Z", "pc", "1"};
    auto b = make_batch({e, e}, false);
    d->write(info(b), b.lines);
    auto got = peer.receive(2);
    ASSERT_EQ(got.size(), 2u);
    const std::string expected = (header(e) + b.line_list[0]).substr(0, 65507);
    for (const auto& m : got) {
        EXPECT_EQ(m.size(), 65507u);
        EXPECT_TRUE(m == expected) << m.substr(0, 200); // (not the 64 KiB in the report)
    }
    EXPECT_EQ(d->stats().truncated, 2u);
    EXPECT_EQ(d->stats().refused, 0u);
}

// RFC 6587 octet counting ("LEN SP MSG") and LF framing, parsed back from a TCP receiver.
TEST(SyslogOutput, StreamFramings) {
    auto evs = events();
    auto b = make_batch(evs, true);
    for (bool octets : {true, false}) {
        wec::testing::TcpPeer peer({});
        Settings s{{"address", "tcp://127.0.0.1:" + std::to_string(peer.port())}};
        if (!octets) s["framing"] = std::string("lf");
        auto d = make_driver("syslog", s);
        d->write(info(b), b.lines);
        d->write(info(b), b.lines);
        std::string expected;
        for (int twice = 0; twice < 2; ++twice)
            for (std::size_t i = 0; i < evs.size(); ++i) {
                std::string m = header(evs[i]) + b.line_list[i];
                expected += octets ? std::to_string(m.size()) + " " + m : m + "\n";
            }
        ASSERT_TRUE(peer.wait_for_bytes(expected.size()));
        EXPECT_EQ(peer.received(), expected) << (octets ? "octet-counting" : "lf");
    }
}

// ------------------------------------------------------------------------------------------
// Every event sent arrived exactly once, with the fields expected.
void expect_delivered(const std::vector<Parsed>& got, const std::vector<Event>& evs, const Batch& b,
                      std::size_t copies = 1) {
    ASSERT_EQ(got.size(), evs.size() * copies);
    std::map<std::string, int> seen;
    for (const auto& p : got)
        ++seen[p.msg];
    for (std::size_t i = 0; i < evs.size(); ++i) {
        EXPECT_EQ(seen[b.line_list[i]], static_cast<int>(copies)) << b.line_list[i].substr(0, 200);
        auto it = std::find_if(got.begin(), got.end(),
                               [&](const Parsed& p) { return p.msg == b.line_list[i]; });
        if (it == got.end()) continue;
        EXPECT_EQ(it->pri, std::to_string(evs[i].pri)) << b.line_list[i].substr(0, 200);
        EXPECT_EQ(it->timestamp, evs[i].timestamp);
        EXPECT_EQ(it->hostname, evs[i].hostname);
        EXPECT_EQ(it->app, "wec");
        EXPECT_EQ(it->procid, "-");
        EXPECT_EQ(it->msgid, evs[i].msgid);
        EXPECT_EQ(it->sd, "-");
    }
}

class RsyslogOutput : public ::testing::Test {
protected:
    wec::testing::TempDir dir;
};

TEST_F(RsyslogOutput, Udp) {
    Rsyslog rs(dir.path());
    rs.start();
    auto evs = events();
    auto b = make_batch(evs, false);
    auto d = make_driver("syslog", {{"address", "udp://127.0.0.1:" + std::to_string(rs.udp())}});
    d->write(info(b), b.lines);
    expect_delivered(rs.messages("udp", evs.size()), evs, b);
}

TEST_F(RsyslogOutput, TcpOctetCountingWithJsonEvents) {
    Rsyslog rs(dir.path());
    rs.start();
    auto evs = events();
    // And one event larger than a UDP datagram: whole over a stream.
    evs.push_back({synthetic_xml(9999, 4, "2024-01-01T00:00:00Z", "big", std::string(90000, 'b')),
                   134, "2024-01-01T00:00:00Z", "big", "9999"});
    auto b = make_batch(evs, true);
    auto d = make_driver("syslog", {{"address", "tcp://127.0.0.1:" + std::to_string(rs.tcp())}});
    d->write(info(b), b.lines);
    d->write(info(b), b.lines);
    expect_delivered(rs.messages("tcp", evs.size() * 2), evs, b, 2);
}

TEST_F(RsyslogOutput, TcpLfFraming) {
    Rsyslog rs(dir.path());
    rs.start();
    auto evs = events();
    auto b = make_batch(evs, false);
    auto d = make_driver(
        "syslog", {{"address", "tcp://127.0.0.1:" + std::to_string(rs.ptcp())}, {"framing", "lf"}});
    d->write(info(b), b.lines);
    expect_delivered(rs.messages("ptcp", evs.size()), evs, b);
}

TEST_F(RsyslogOutput, UnixDatagramSocket) {
    Rsyslog rs(dir.path());
    rs.start();
    auto evs = events();
    auto b = make_batch(evs, false);
    auto d = make_driver("syslog", {{"address", "unix:" + rs.socket().string()}});
    d->write(info(b), b.lines);
    expect_delivered(rs.messages("unix", evs.size()), evs, b);
}

TEST_F(RsyslogOutput, TlsWithClientCertificate) {
    wec::testing::TestPki pki("siem.example.org");
    {
        std::ofstream cas(pki("cas.pem"));
        cas << std::ifstream(pki("root.pem")).rdbuf() << std::ifstream(pki("issuing.pem")).rdbuf();
    }
    Rsyslog rs(dir.path(), pki("cas.pem").parent_path());
    rs.start();
    auto evs = events();
    auto b = make_batch(evs, false);
    auto d = make_driver("syslog", {{"address", "tls://127.0.0.1:" + std::to_string(rs.tls())},
                                    {"ca", pki("root.pem").string()},
                                    {"cert", pki("win10.windomain.local.pem").string()},
                                    {"key", pki("win10.windomain.local.key").string()},
                                    {"server_name", "siem.example.org"}});
    d->write(info(b), b.lines);
    d->write(info(b), b.lines);
    expect_delivered(rs.messages("tls", evs.size() * 2), evs, b, 2);
}

// rsyslogd stops: batches are refused (503) at once; it starts again: the driver reconnects by
// itself and the refused batch is delivered once.
TEST_F(RsyslogOutput, RestartedReceiverRecoversWithoutLoss) {
    Rsyslog rs(dir.path());
    rs.start();
    auto evs = events();
    std::vector<Event> first(evs.begin(), evs.begin() + 5), second(evs.begin() + 5, evs.end());
    auto b1 = make_batch(first, false);
    auto b2 = make_batch(second, false);
    auto d = make_driver("syslog", {{"address", "tcp://127.0.0.1:" + std::to_string(rs.tcp())}});
    d->write(info(b1), b1.lines);
    ASSERT_EQ(rs.messages("tcp", first.size()).size(), first.size());
    rs.stop();
    EXPECT_THROW(d->write(info(b2), b2.lines), OutputError);
    EXPECT_THROW(d->write(info(b2), b2.lines), OutputError);
    rs.start();
    auto end = std::chrono::steady_clock::now() + seconds(30);
    bool accepted = false;
    while (!accepted && std::chrono::steady_clock::now() < end) {
        try {
            d->write(info(b2), b2.lines);
            accepted = true;
        } catch (const OutputError&) {
            std::this_thread::sleep_for(milliseconds(100));
        }
    }
    ASSERT_TRUE(accepted);
    auto got = rs.messages("tcp", evs.size());
    auto all = make_batch(evs, false);
    expect_delivered(got, evs, all);
    EXPECT_GE(d->stats().refused, 2u);
    EXPECT_EQ(d->stats().connects, 2u);
}

} // namespace

// wec::decode as a library, on synthesized captures (pcap_writer): plain SOAP over HTTP, a
// multipart body without its authentication, gaps, lone bodies, the JSON schema.
#include "decode/decode.hpp"
#include "pcap_writer.hpp"
#include "support/process.hpp"

#include <fstream>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sstream>

namespace {

using namespace wec::test;
namespace dec = wec::decode;

std::string slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

struct Collect : dec::Sink {
    std::vector<std::string> json;
    std::vector<std::string> actions;
    std::vector<std::string> encryption, reasons;
    std::vector<bool> after_gap;
    std::string events;
    std::string by_format[wec::event::kFormatCount]; // append_events in every format
    // The same into FormatBuffers (what `wec decode --events` writes into): the same bytes.
    wec::event::FormatBuffer by_format_buffer[wec::event::kFormatCount];
    int notes = 0;
    void on_record(const dec::Record& r) override {
        std::string j;
        dec::format_json(r, j);
        json.push_back(j);
        actions.emplace_back(r.action());
        encryption.emplace_back(dec::to_string(r.encryption));
        reasons.push_back(r.reason);
        after_gap.push_back(r.after_gap);
        dec::append_events(r, dec::EventFormat::Json, events);
        for (std::size_t i = 0; i < wec::event::kFormatCount; ++i) {
            dec::append_events(r, static_cast<dec::EventFormat>(i), by_format[i]);
            dec::append_events(r, static_cast<dec::EventFormat>(i), by_format_buffer[i]);
            EXPECT_EQ(by_format_buffer[i].view(), by_format[i]) << "format " << i;
        }
    }
    void on_note(const std::string&, const wec::capture::Note&) override { ++notes; }
};

std::string post(const std::string& target, const std::string& headers, const std::string& body) {
    return "POST " + target + " HTTP/1.1\r\nHost: srv:5985\r\n" + headers +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(DecodeUnit, PlainSoapOverHttp) {
    wec::testing::TempDir t;
    auto events = slurp(std::string(WEC_TEST_DATA) + "/sldc/events.utf16");
    auto heartbeat = slurp(std::string(WEC_TEST_DATA) + "/sldc/heartbeat.sldc");
    Conversation c(50000, 5985);
    c.handshake();
    c.send(true, to_bytes(post("/wsman/subscriptions/b6bdbb59-fb07-4ee5-841f-ebec9d67cdd4",
                               "Content-Type: application/soap+xml;charset=UTF-16\r\n"
                               "Content-Encoding: SLDC\r\n",
                               heartbeat)));
    c.send(false, to_bytes("HTTP/1.1 204 \r\nContent-Length: 0\r\n\r\n"));
    c.send(true, to_bytes(post("/wsman/subscriptions/b6bdbb59-fb07-4ee5-841f-ebec9d67cdd4",
                               "Content-Type: application/soap+xml;charset=UTF-16\r\n", events)));
    c.send(false, to_bytes("HTTP/1.1 204 \r\nContent-Length: 0\r\n\r\n"));
    c.close();
    auto path = (t.path() / "plain.pcap").string();
    write_conversation(path, Link::Ethernet, c, c.segs);

    wec::krb::KeySet keys;
    Collect sink;
    dec::Decoder d(keys, sink);
    d.decode(path);
    ASSERT_EQ(sink.json.size(), 4u);
    EXPECT_EQ(sink.actions[0], "Heartbeat");
    EXPECT_EQ(sink.actions[2], "Events");
    EXPECT_EQ(sink.encryption[0], "plain");
    EXPECT_EQ(sink.encryption[1], "none");
    EXPECT_EQ(d.stats().events, 21u);
    EXPECT_EQ(d.stats().connections, 1u);
    EXPECT_EQ(d.stats().failed, 0u);

    auto r = nlohmann::json::parse(sink.json[2]);
    EXPECT_EQ(r["v"], dec::kSchemaVersion);
    EXPECT_EQ(r["client"], "10.0.0.1:50000");
    EXPECT_EQ(r["server"], "10.0.0.2:5985");
    EXPECT_EQ(r["direction"], "request");
    EXPECT_EQ(r["method"], "POST");
    EXPECT_EQ(r["subscription"]["uuid"], "B6BDBB59-FB07-4EE5-841F-EBEC9D67CDD4");
    // No EnumerateResponse seen: the version comes from the e:Identifier.
    EXPECT_EQ(r["subscription"]["version"], "219C5353-5F3D-4CD7-A644-F6B69E57C1C1");
    EXPECT_EQ(r["events"], 21);
    EXPECT_EQ(r["time"], "2023-11-14T22:13:20.000008+00:00");
    auto resp = nlohmann::json::parse(sink.json[3]);
    EXPECT_EQ(resp["status"], 204);
    EXPECT_EQ(resp["request_index"], 1);
    EXPECT_EQ(resp["client"], "10.0.0.1:50000");
    EXPECT_EQ(resp["subscription"]["uuid"], "B6BDBB59-FB07-4EE5-841F-EBEC9D67CDD4");

    // 21 events with the metadata of the request.
    std::stringstream ss(sink.events);
    int n = 0;
    for (std::string line; std::getline(ss, line); ++n) {
        auto e = nlohmann::json::parse(line);
        EXPECT_EQ(e["OpenWEC"]["IpAddress"], "10.0.0.1");
        EXPECT_EQ(e["OpenWEC"]["Subscription"]["Uuid"], "B6BDBB59-FB07-4EE5-841F-EBEC9D67CDD4");
    }
    EXPECT_EQ(n, 21);

    // The same events in every format, as `wec serve` would write them.
    using F = wec::event::Format;
    auto lines = [&](F f) {
        std::vector<std::string> out;
        std::stringstream in(sink.by_format[static_cast<std::size_t>(f)]);
        for (std::string line; std::getline(in, line);)
            out.push_back(line);
        return out;
    };
    EXPECT_EQ(sink.by_format[static_cast<std::size_t>(F::Json)], sink.events);
    const auto raw = lines(F::Raw), raw_json = lines(F::RawJson), nxlog = lines(F::Nxlog),
               ecs = lines(F::Ecs);
    ASSERT_EQ(raw.size(), 21u);
    ASSERT_EQ(raw_json.size(), 21u);
    ASSERT_EQ(nxlog.size(), 21u);
    ASSERT_EQ(ecs.size(), 21u);
    for (std::size_t i = 0; i < 21; ++i) {
        EXPECT_EQ(raw[i].rfind("<Event", 0), 0u) << raw[i];
        auto rj = nlohmann::json::parse(raw_json[i]);
        EXPECT_EQ(rj["meta"]["IpAddress"], "10.0.0.1");
        EXPECT_EQ(rj["data"].get<std::string>().rfind("<Event", 0), 0u);
        auto nx = nlohmann::json::parse(nxlog[i]);
        EXPECT_EQ(nx["OpenWEC"]["IpAddress"], "10.0.0.1");
        EXPECT_EQ(nx["Hostname"], "win10.windomain.local");
        auto e = nlohmann::json::parse(ecs[i]);
        EXPECT_EQ(e["wec"]["ip_address"], "10.0.0.1");
        EXPECT_EQ(e["wec"]["subscription"]["uuid"], "B6BDBB59-FB07-4EE5-841F-EBEC9D67CDD4");
        EXPECT_EQ(e["event"]["code"], std::to_string(nx["EventID"].get<int>()));
        EXPECT_EQ(e["winlog"]["channel"], nx["Channel"]);
    }
}

TEST(DecodeUnit, EncryptedWithoutAuthenticationAndGaps) {
    wec::testing::TempDir t;
    std::string body = "--Encrypted Boundary\r\nContent-Type: "
                       "application/HTTP-Kerberos-session-encrypted\r\nOriginalContent: "
                       "type=application/soap+xml;charset=UTF-16;Length=20\r\n--Encrypted "
                       "Boundary\r\nContent-Type: application/octet-stream\r\n" +
                       std::string("\x3c\0\0\0", 4) + std::string(60 + 20, 'z') +
                       "--Encrypted Boundary--\r\n";
    std::string ct = "Content-Type: multipart/encrypted;protocol=\"application/"
                     "HTTP-Kerberos-session-encrypted\";boundary=\"Encrypted Boundary\"\r\n";
    Conversation c(50001, 5985);
    c.handshake();
    c.send(true, to_bytes(post("/wsman", ct, body)));
    c.send(false, to_bytes("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n"));
    c.send(true, to_bytes(post("/wsman", ct, body)), 100);
    c.send(true, to_bytes(post("/wsman", ct, body)));
    c.close();
    // Drop the second data segment of the second request: a gap.
    std::vector<Seg> segs;
    int data_segments = 0;
    for (const auto& s : c.segs) {
        if (s.from_client && !s.payload.empty() && ++data_segments == 3) continue;
        segs.push_back(s);
    }
    auto path = (t.path() / "enc.pcap").string();
    write_conversation(path, Link::Sll2, c, segs);

    wec::krb::KeySet keys;
    Collect sink;
    dec::Decoder d(keys, sink);
    d.decode(path);
    ASSERT_GE(sink.json.size(), 3u);
    EXPECT_EQ(sink.encryption[0], "undecryptable");
    EXPECT_EQ(sink.reasons[0], "no-session");
    EXPECT_TRUE(sink.after_gap.back());
    EXPECT_EQ(d.stats().gaps, 1u);
    EXPECT_GE(d.stats().failed, 2u);
    EXPECT_GE(sink.notes, 1);
}

// The body is escaped by hand (speed); the result must be what nlohmann writes, byte for byte.
TEST(DecodeUnit, JsonBodyEscapingIsNlohmanns) {
    using Ordered = nlohmann::ordered_json;
    std::string controls;
    for (int c = 1; c < 0x20; ++c)
        controls.push_back(static_cast<char>(c));
    const std::vector<std::string> bodies = {
        "<a>plain</a>",
        std::string("quote \" backslash \\ slash / del \x7f nul ") + std::string(1, '\0') + "!",
        controls,
        "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd end",
        std::string(5000, 'x') + "\n" + std::string(5000, '\xc3') + "",
    };
    for (const auto& body : bodies) {
        dec::Record r;
        r.from_capture = false;
        r.soap = body;
        r.errors = {"one \"error\""};
        std::string out;
        dec::format_json(r, out);
        Ordered j = Ordered::parse(out, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << out.substr(0, 200);
        EXPECT_EQ(j.dump(-1, ' ', false, Ordered::error_handler_t::replace), out);
        auto last = j.items().begin();
        for (auto it = j.items().begin(); it != j.items().end(); ++it)
            last = it;
        EXPECT_EQ(last.key(), "errors");
        if (body.back() == '\xc3') {
            // Invalid UTF-8: replaced, still valid JSON.
            EXPECT_NE(j["body"].get<std::string>().find("\xef\xbf\xbd"), std::string::npos);
        } else {
            EXPECT_EQ(j["body"].get<std::string>(), body);
        }
    }
}

// The buffers a decoder reuses from message to message (the unwrapped plaintext, the
// decompressed body) leave nothing behind: one decoder over all the inputs, twice, gives the
// records (content included) of a fresh decoder per input. Inputs: the shipped Kerberos capture,
// SLDC and UTF-16 bodies, bodies the body step records an error for (an encoding other than SLDC,
// more than the limit once decompressed), an empty SLDC body, a lone SLDC body.
TEST(DecodeUnit, ReusedBuffersSameRecords) {
    struct Fields : dec::Sink {
        std::vector<std::string> records;
        std::string events[wec::event::kFormatCount];
        void on_record(const dec::Record& r) override {
            std::string f = std::string(dec::to_string(r.encryption)) + "|" + r.text_encoding +
                            "|" + (r.decompressed ? "sldc" : "-") + "|" +
                            std::to_string(r.compressed_bytes) + "|" + r.soap + "|" +
                            std::string(r.action()) + "|" + std::to_string(r.event_count()) + "|" +
                            r.subscription.version;
            for (const auto& e : r.errors)
                f += "|" + e;
            f += "|" + std::string(r.content.begin(), r.content.end());
            records.push_back(f);
            for (std::size_t i = 0; i < wec::event::kFormatCount; ++i)
                dec::append_events(r, static_cast<dec::EventFormat>(i), events[i]);
        }
    };
    wec::testing::TempDir t;
    auto events = slurp(std::string(WEC_TEST_DATA) + "/sldc/events.utf16");
    auto heartbeat = slurp(std::string(WEC_TEST_DATA) + "/sldc/heartbeat.sldc");
    const std::string target = "/wsman/subscriptions/b6bdbb59-fb07-4ee5-841f-ebec9d67cdd4";
    const std::string utf16 = "Content-Type: application/soap+xml;charset=UTF-16\r\n";
    Conversation c(50000, 5985);
    c.handshake();
    c.send(true, to_bytes(post(target, utf16 + "Content-Encoding: SLDC\r\n", heartbeat)));
    c.send(true, to_bytes(post(target, utf16 + "Content-Encoding: SLDC\r\n", events)));
    c.send(true, to_bytes(post(target, utf16 + "Content-Encoding: gzip\r\n", events)));
    c.send(true, to_bytes(post(target, utf16 + "Content-Encoding: SLDC\r\n", "")));
    c.send(true, to_bytes(post(target, utf16, events)));
    c.close();
    const auto plain = (t.path() / "plain.pcap").string();
    write_conversation(plain, Link::Ethernet, c, c.segs);
    const std::string sample_dir = std::string(WEC_TEST_DATA) + "/../../samples/captures/";
    wec::krb::KeySet keys;
    keys.add_keytab(sample_dir + "wec.keytab");

    // The sample last: the subscriptions it announces would name the others' (not the point).
    const std::vector<std::string> inputs = {plain,
                                             std::string(WEC_TEST_DATA) + "/sldc/heartbeat.sldc",
                                             sample_dir + "wef-kerberos.pcap"};
    for (std::size_t limit : {std::size_t{64} << 20, std::size_t{2000}}) {
        dec::Options o;
        o.max_body_bytes = limit;
        Fields reused, fresh;
        std::uint64_t event_count = 0, decrypted = 0;
        for (int pass = 0; pass < 2; ++pass) {
            dec::Decoder one(keys, reused, o);
            for (const auto& input : inputs) {
                one.decode(input);
                dec::Decoder d(keys, fresh, o);
                d.decode(input);
            }
            event_count += one.stats().events;
            decrypted += one.stats().decrypted;
            EXPECT_EQ(one.stats().undecryptable, 0u);
        }
        ASSERT_GE(reused.records.size(), 24u);
        EXPECT_EQ(reused.records, fresh.records) << "limit " << limit;
        for (std::size_t i = 0; i < wec::event::kFormatCount; ++i)
            EXPECT_EQ(reused.events[i], fresh.events[i]) << "limit " << limit;
        EXPECT_GT(decrypted, 10u);
        // SLDC, gzip (refused, read as is: UTF-16), UTF-16, the sample; twice.
        if (limit > 2000) {
            EXPECT_EQ(event_count, 2u * 4 * 21);
        }
    }
}

TEST(DecodeUnit, MemoryInputAndExportNames) {
    auto hb = slurp(std::string(WEC_TEST_DATA) + "/sldc/heartbeat.sldc");
    wec::krb::KeySet keys;
    struct Names : dec::Sink {
        std::vector<std::string> names;
        void on_record(const dec::Record& r) override { names.push_back(dec::export_name(r)); }
    } sink;
    dec::Decoder d(keys, sink);
    d.decode_memory({reinterpret_cast<const std::uint8_t*>(hb.data()), hb.size()}, "hb.sldc");
    ASSERT_EQ(sink.names.size(), 1u);
    EXPECT_EQ(sink.names[0], "hb.sldc-Heartbeat.xml");
    EXPECT_THROW(d.decode_memory({reinterpret_cast<const std::uint8_t*>("garbage!"), 8}, "g"),
                 dec::InputError);
    EXPECT_THROW(d.decode("/nonexistent/file.pcap"), dec::InputError);
}

} // namespace

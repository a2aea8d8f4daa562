// decode::SourceCollector (what `wec replay --pcap` replays): decoded records grouped by source -
// Kerberos principal, NTLM account, else client address - and MachineID (its Events', else its
// connection's Enumerate's, else the first event's <Computer>), batches and bookmarks in capture
// order; requests that cannot be read skipped and reported; identity_matches and computer_of.
#include "decode/sources.hpp"
#include "support/process.hpp"
#include "wsman/bookmark.hpp"
#include "wsman/wsman.hpp"

#include <algorithm>
#include <filesystem>
#include <gtest/gtest.h>
#include <random>

namespace {

namespace dec = wec::decode;
namespace wsman = wec::wsman;

std::string event(const std::string& computer, int record) {
    return "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System>"
           "<EventRecordID>" +
           std::to_string(record) + "</EventRecordID><Channel>Security</Channel><Computer>" +
           computer + "</Computer></System></Event>";
}

std::string bookmark(int record) {
    return wec::wsman::bookmark_list(
        {{{"Security", static_cast<std::uint64_t>(record)}}, "Security"});
}

// A decoded request: `client` and `mechanism` as the decoder sets them once the connection's
// authentication was read, the body parsed as the decoder does.
dec::Record request(std::uint64_t connection, const std::string& client,
                    const std::string& mechanism, const std::string& body) {
    dec::Record r;
    r.connection = connection;
    r.is_request = true;
    r.tuple.src.address = {10, 0, 0, static_cast<std::uint8_t>(connection)};
    r.client = client;
    r.mechanism = mechanism;
    r.body_bytes = body.size();
    r.encryption = dec::Encryption::Decrypted;
    if (!body.empty()) r.message = wsman::parse(body);
    return r;
}

std::string events_body(const std::string& machine, const std::vector<std::string>& events,
                        const std::string& bm) {
    wsman::SourceHeaders h;
    h.to = "http://srv:5985/wsman/subscriptions/X";
    h.machine_id = machine;
    std::vector<std::string_view> v(events.begin(), events.end());
    return wsman::build_events(h, v, bm);
}

TEST(SourceCollector, GroupsBatchesBySourceAndMachineInCaptureOrder) {
    std::vector<dec::SkippedRequest> skipped;
    dec::SourceCollector c([&](const dec::SkippedRequest& s) { skipped.push_back(s); });
    const std::string p1 = "WS1$@WINDOMAIN.LOCAL", p2 = "WS2$@WINDOMAIN.LOCAL";

    c.on_record(request(1, p2, "Kerberos",
                        events_body("ws2.x", {event("ws2.x", 1), event("ws2.x", 2)}, bookmark(2))));
    c.on_record(request(2, p1, "Kerberos", events_body("ws1.x", {event("ws1.x", 7)}, bookmark(7))));
    dec::Record response;
    response.is_request = false;
    response.connection = 1;
    c.on_record(response); // responses are passed over
    auto named = request(1, p2, "Kerberos", events_body("ws2.x", {event("ws2.x", 3)}, bookmark(3)));
    named.subscription.uuid = "9F5C1B9E-3C0B-4E57-9D6A-0D1E5A7C4B21";
    named.subscription.name = "security";
    c.on_record(named);
    // The same principal under another MachineID: another source.
    c.on_record(request(3, p1, "Kerberos", events_body("ws9.x", {event("ws9.x", 1)}, bookmark(1))));
    // NTLM: DOMAIN\user.
    c.on_record(
        request(4, "LAB\\alice", "NTLM", events_body("pc.lab", {event("pc.lab", 5)}, bookmark(5))));
    // An undecryptable request of WS1$: skipped, reported with its message number.
    auto bad = request(2, p1, "Kerberos", "");
    bad.body_bytes = 300;
    bad.encryption = dec::Encryption::Undecryptable;
    bad.reason = "wrong-key";
    c.on_record(bad);

    const auto& s = c.sources();
    ASSERT_EQ(s.size(), 4u);
    EXPECT_EQ(s[0].key, p2);
    EXPECT_EQ(s[0].kind, dec::SourceKind::Kerberos);
    EXPECT_EQ(s[0].machine, "ws2.x");
    ASSERT_EQ(s[0].batches.size(), 2u);
    EXPECT_EQ(s[0].batches[0].events.size(), 2u);
    EXPECT_EQ(s[0].batches[0].events[1], event("ws2.x", 2)); // byte for byte
    EXPECT_EQ(s[0].batches[0].bookmark, bookmark(2));
    EXPECT_EQ(s[0].batches[0].line, 1u); // the message's position in the capture
    EXPECT_EQ(s[0].batches[1].bookmark, bookmark(3));
    EXPECT_EQ(s[0].batches[1].line, 4u);
    EXPECT_EQ(s[0].events, 3u);
    EXPECT_EQ(s[0].subscriptions, std::vector<std::string>{"security"});
    EXPECT_EQ(s[1].key, p1);
    EXPECT_EQ(s[1].machine, "ws1.x");
    EXPECT_EQ(s[2].key, p1);
    EXPECT_EQ(s[2].machine, "ws9.x");
    EXPECT_EQ(s[3].key, "LAB\\alice");
    EXPECT_EQ(s[3].kind, dec::SourceKind::Ntlm);
    EXPECT_EQ(c.batches(), 5u);
    EXPECT_EQ(c.events(), 6u);
    EXPECT_EQ(c.messages(), 7u);
    ASSERT_EQ(skipped.size(), 1u);
    EXPECT_EQ(skipped[0].source, p1);
    EXPECT_EQ(skipped[0].line, 7u);
    EXPECT_NE(skipped[0].reason.find("wrong-key"), std::string::npos) << skipped[0].reason;
    EXPECT_EQ(c.skipped(), 1u);
    EXPECT_EQ(c.undecryptable().at("wrong-key"), 1u);
}

// BatchSpool: batches read back byte for byte (in any order, from any thread), across the
// 1 MB write buffer; the temp file is unlinked from the start.
TEST(BatchSpool, BatchesReadBackByteIdenticalAndNoFileIsLeft) {
    wec::testing::TempDir dir;
    auto files_in = [&] {
        return std::distance(std::filesystem::directory_iterator(dir.path()),
                             std::filesystem::directory_iterator());
    };
    std::vector<wsman::EventsBatch> in;
    std::vector<dec::BatchSpool::Ref> refs;
    {
        dec::BatchSpool spool(dir.path());
        std::mt19937 rng(7);
        for (int k = 0; k < 300; ++k) {
            wsman::EventsBatch b;
            b.line = static_cast<std::uint64_t>(k * 3 + 1);
            b.machine = k % 2 ? "ws" + std::to_string(k) + ".x" : "";
            b.bookmark = k % 5 ? bookmark(k) : "";
            const int n = k == 17 ? 0 : static_cast<int>(rng() % 40);
            for (int e = 0; e < n; ++e)
                b.events.push_back(event("ws.x", k * 100 + e) +
                                   std::string(rng() % 200, static_cast<char>(rng() % 256)));
            if (k == 100) b.events.push_back(std::string(3u << 20, '\0') + "]]>"); // > buffer
            refs.push_back(spool.append(b));
            in.push_back(std::move(b));
        }
        EXPECT_GT(spool.bytes(), 3u << 20);
        EXPECT_EQ(files_in(), 0); // unlinked at once: nothing left behind, even after a crash
        // The last ones still in the buffer, the others in the file: all read back the same.
        std::vector<std::size_t> order(in.size());
        for (std::size_t k = 0; k < order.size(); ++k)
            order[k] = k;
        std::shuffle(order.begin(), order.end(), rng);
        for (auto k : order) {
            const auto out = spool.read(refs[k]);
            ASSERT_EQ(out.line, in[k].line) << k;
            ASSERT_EQ(out.machine, in[k].machine) << k;
            ASSERT_EQ(out.bookmark, in[k].bookmark) << k;
            ASSERT_EQ(out.events, in[k].events) << k;
        }
        EXPECT_THROW((void)spool.read({spool.bytes(), 40}), dec::SpoolError);
    }
    EXPECT_EQ(files_in(), 0);
    EXPECT_THROW(dec::BatchSpool(dir.path() / "missing"), dec::SpoolError);
}

TEST(SourceCollector, WithASpoolKeepsOnlyReferences) {
    wec::testing::TempDir dir;
    dec::BatchSpool spool(dir.path());
    dec::SourceCollector c({}, &spool);
    const std::string p1 = "WS1$@WINDOMAIN.LOCAL";
    c.on_record(request(1, p1, "Kerberos",
                        events_body("ws1.x", {event("ws1.x", 1), event("ws1.x", 2)}, bookmark(2))));
    c.on_record(request(1, p1, "Kerberos", events_body("ws1.x", {event("ws1.x", 3)}, bookmark(3))));
    const auto& s = c.sources();
    ASSERT_EQ(s.size(), 1u);
    EXPECT_TRUE(s[0].batches.empty());
    ASSERT_EQ(s[0].spooled.size(), 2u);
    EXPECT_EQ(s[0].batch_count(), 2u);
    const auto b = spool.read(s[0].spooled[0]);
    EXPECT_EQ(b.events, (std::vector<std::string>{event("ws1.x", 1), event("ws1.x", 2)}));
    EXPECT_EQ(b.bookmark, bookmark(2));
    EXPECT_EQ(b.machine, "ws1.x");
    EXPECT_EQ(b.line, 1u);
    EXPECT_EQ(spool.read(s[0].spooled[1]).line, 2u);
}

TEST(SourceCollector, CapturedSubscriptionMatchesByNameOrUuid) {
    wsman::Subscription offered;
    offered.name = "security";
    offered.notify_to = "http://srv:5985/wsman/subscriptions/9f5c1b9e-3c0b-4e57-9d6a-0d1e5a7c4b21";
    offered.identifier = "uuid:0A1B2C3D-0000-4000-8000-000000000001";
    EXPECT_TRUE(dec::subscription_matches("security", offered));
    EXPECT_FALSE(dec::subscription_matches("Security", offered)); // names: exact
    EXPECT_TRUE(dec::subscription_matches("9F5C1B9E-3C0B-4E57-9D6A-0D1E5A7C4B21", offered));
    EXPECT_TRUE(dec::subscription_matches("0a1b2c3d-0000-4000-8000-000000000001", offered));
    EXPECT_FALSE(dec::subscription_matches("system", offered));
    EXPECT_FALSE(dec::subscription_matches("", offered));
}

TEST(SourceCollector, MachineFromEnumerateElseComputerAndAddressWithoutIdentity) {
    dec::SourceCollector c;
    // Plain HTTP: no identity, split by address. The Enumerate names the machine.
    wsman::SourceHeaders h;
    h.to = "http://srv:5985/wsman/SubscriptionManager/WEC";
    h.machine_id = "from-enumerate.x";
    c.on_record(request(5, "", "", wsman::build_enumerate(h)));
    c.on_record(request(5, "", "", events_body("", {event("computer.x", 1)}, bookmark(1))));
    // Another connection without an Enumerate: the first event's <Computer>.
    c.on_record(request(6, "", "", events_body("", {event("computer.x", 2)}, bookmark(2))));
    const auto& s = c.sources();
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0].kind, dec::SourceKind::Address);
    EXPECT_EQ(s[0].key, "10.0.0.5");
    EXPECT_EQ(s[0].machine, "from-enumerate.x");
    EXPECT_EQ(s[0].batches[0].machine, "from-enumerate.x");
    EXPECT_EQ(s[1].key, "10.0.0.6");
    EXPECT_EQ(s[1].machine, "computer.x");
    EXPECT_EQ(c.skipped(), 0u);
}

TEST(SourceCollector, CutEventsAndUnreadableBodiesAreSkipped) {
    std::vector<dec::SkippedRequest> skipped;
    dec::SourceCollector c([&](const dec::SkippedRequest& s) { skipped.push_back(s); });
    auto cut = request(1, "A@R", "Kerberos", events_body("m", {event("m", 1)}, bookmark(1)));
    cut.truncated = true;
    c.on_record(cut);
    auto garbage = request(1, "A@R", "Kerberos", "");
    garbage.body_bytes = 10;
    garbage.errors.push_back("not XML");
    c.on_record(garbage);
    c.on_record(request(1, "A@R", "Kerberos", "")); // no body at all: nothing to report
    EXPECT_TRUE(c.sources().empty());
    ASSERT_EQ(skipped.size(), 2u);
    EXPECT_NE(skipped[0].reason.find("cut"), std::string::npos);
    EXPECT_NE(skipped[1].reason.find("not XML"), std::string::npos);
}

TEST(SourceCollector, IdentityMatchesAndComputerOf) {
    EXPECT_TRUE(dec::identity_matches("WIN10$@WINDOMAIN.LOCAL", "WIN10$@WINDOMAIN.LOCAL"));
    EXPECT_TRUE(dec::identity_matches("win10$@windomain.local", "WIN10$@WINDOMAIN.LOCAL"));
    EXPECT_TRUE(dec::identity_matches("win10$", "WIN10$@WINDOMAIN.LOCAL"));
    EXPECT_FALSE(dec::identity_matches("win10", "WIN10$@WINDOMAIN.LOCAL"));
    EXPECT_FALSE(dec::identity_matches("WIN10$@OTHER", "WIN10$@WINDOMAIN.LOCAL"));
    EXPECT_TRUE(dec::identity_matches("LAB\\alice", "lab\\ALICE"));
    EXPECT_TRUE(dec::identity_matches("alice", "LAB\\alice"));
    EXPECT_FALSE(dec::identity_matches("OTHER\\alice", "LAB\\alice"));
    EXPECT_FALSE(dec::identity_matches("", "10.0.0.1"));
    EXPECT_EQ(dec::computer_of(event("a.b", 1)), "a.b");
    EXPECT_EQ(dec::computer_of("<Event><Computer>x"), "");
    EXPECT_EQ(dec::computer_of("<Event/>"), "");
}

} // namespace

// The load generator's Events messages (client::run_load, `wec replay`): rendered straight into
// UTF-16 by the send loop, they must be byte for byte the UTF-8 message (wsman::build_events)
// converted, for any batch of the pool, record ids, Computer and bookmark; and compressed at
// either SLDC level they must decode to it.
#include "client/client.hpp"
#include "client/load_internal.hpp"
#include "sldc/sldc.hpp"
#include "text/text.hpp"

#include <gtest/gtest.h>
#include <string>

namespace {

using wec::client::detail::pool_message16;
using wec::client::detail::PoolMessage;

PoolMessage message() {
    PoolMessage m;
    m.headers.to = "http://collector.windomain.local:5985/wsman/subscriptions/4F1A";
    m.headers.machine_id = m.machine;
    m.headers.message_id = "uuid:6D3A9B52-0C41-4F8E-9B1D-2E7C5A8F0B13";
    m.headers.operation_id = "uuid:0B5C0A0E-57A6-4B47-8A3A-8C1D9E2F7A61";
    m.headers.session_id = "uuid:11111111-2222-3333-4444-555555555555";
    m.headers.identifier = "4F1A2B3C-0000-1111-2222-333344445555";
    m.bookmark = wec::client::security_bookmark(1040);
    return m;
}

TEST(LoadMessage, DirectUtf16IsTheUtf8MessageConverted) {
    int cases = 0;
    for (const std::size_t thread : {0u, 3u})
        for (const std::size_t skip : {0u, 5u, 14u}) // 14 + count wraps around the 16-event pool
            for (const std::size_t count : {1u, 7u, 40u})
                for (const std::uint64_t record :
                     {0ull, 999ull, 99994ull, 18446744073709551000ull}) {
                    PoolMessage m = message();
                    m.thread_index = thread;
                    m.skip = skip;
                    m.count = count;
                    m.record = record;
                    m.machine = "host-" + std::to_string(thread * 1000 + skip) + ".windomain.local";
                    SCOPED_TRACE(m.machine + " skip " + std::to_string(skip) + " count " +
                                 std::to_string(count) + " record " + std::to_string(record));
                    const auto direct = pool_message16(m, true);
                    ASSERT_EQ(direct, pool_message16(m, false));
                    // Every event is in it, with its own record id and Computer.
                    const auto text = wec::text::utf16_to_utf8(direct);
                    EXPECT_NE(text.find("<EventRecordID>" + std::to_string(record + count) +
                                        "</EventRecordID>"),
                              std::string::npos);
                    EXPECT_NE(text.find("<Computer>" + m.machine + "</Computer>"),
                              std::string::npos);
                    ++cases;
                }
    EXPECT_EQ(cases, 2 * 3 * 3 * 4);
}

// What the direct rendering does not take (non-ASCII, text that could close the CDATA section)
// goes the generic way: the same bytes still.
TEST(LoadMessage, NonAsciiAndCdataUnsafeValuesGiveTheSameBytes) {
    for (const std::string machine : {"hôte-7.exemple.local", "a]", "]]>x", ">b", "host-1"}) {
        SCOPED_TRACE(machine);
        PoolMessage m = message();
        m.machine = machine;
        m.count = 3;
        EXPECT_EQ(pool_message16(m, true), pool_message16(m, false));
    }
    PoolMessage m = message();
    m.headers.machine_id = "machine-ü";
    m.bookmark = "<BookmarkList><Bookmark Channel=\"Sécurité\" RecordId=\"1\"/></BookmarkList>";
    EXPECT_EQ(pool_message16(m, true), pool_message16(m, false));
}

// Compressed as the send loop does (Level::Fast, one compressor reused) and at Level::Best: valid
// records that decode to the message.
TEST(LoadMessage, CompressedMessagesDecodeToTheMessage) {
    wec::sldc::Compressor fast(wec::sldc::Level::Fast);
    for (const std::size_t count : {1u, 20u, 100u}) {
        SCOPED_TRACE(count);
        PoolMessage m = message();
        m.pool_size = 64;
        m.count = count;
        const auto utf16 = pool_message16(m, true);
        const auto quick = fast.compress(utf16);
        const auto best = wec::sldc::compress(utf16, wec::sldc::Level::Best);
        EXPECT_EQ(wec::sldc::decompress(quick, utf16.size()), utf16);
        EXPECT_EQ(wec::sldc::decompress(best, utf16.size()), utf16);
        EXPECT_LT(quick.size(), utf16.size() / 2); // it does compress
    }
}

} // namespace

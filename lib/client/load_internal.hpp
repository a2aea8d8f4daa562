// Internal to lib/client: the load generator's Events messages, for its own tests.
#pragma once

#include "wsman/wsman.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wec::client::detail {

// One Events message of the load generator (client::run_load): `count` events of the event pool
// of thread `thread_index` (`pool_size` generated events), starting `skip` events into it, with
// `machine` as Computer and the record ids after `record`, in UTF-16LE with its BOM.
// `direct`: rendered as the send loop does (EventPool::build16); otherwise through the UTF-8
// message (wsman::build_events, then text::utf8_to_utf16le). Both must give the same bytes.
struct PoolMessage {
    std::size_t thread_index = 0;
    std::size_t pool_size = 16;
    std::size_t skip = 0;
    std::size_t count = 1;
    std::string machine = "host-0.windomain.local";
    std::uint64_t record = 999;
    std::string bookmark;
    wsman::SourceHeaders headers;
};
std::vector<std::uint8_t> pool_message16(const PoolMessage& m, bool direct);

} // namespace wec::client::detail

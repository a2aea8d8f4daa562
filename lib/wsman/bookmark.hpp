// The <BookmarkList> a source sends in w:Bookmark (and a collector gives back in the Subscribe):
// where the source is in each channel it reads. One builder for every source we play
// (`wec replay`, lib/client's generated events and load driver).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace wec::wsman {

// A source's position: the EventRecordID of the last event read from each channel, and the
// channel of the last event read (the one marked IsCurrent).
struct Bookmark {
    std::map<std::string, std::uint64_t> records; // channel name (plain text) -> EventRecordID
    std::string current;
};

// The <BookmarkList> of `b` as a Windows source sends it (samples/windows/events.xml), compact:
// one <Bookmark Channel="…" RecordId="…"/> per channel, in name order; attribute values in double
// quotes with & < " escaped, as XML requires, and TAB CR LF as character references (so that they
// read back); ' and > stay as they are; exactly one IsCurrent="true", on `b.current`, or on the
// last channel by name when `current` lists none. "" when `records` is empty.
std::string bookmark_list(const Bookmark& b);

// The Bookmark a <BookmarkList> says (entities decoded; a RecordId that is not a number reads as
// 0; a Bookmark without Channel is ignored). Not well-formed XML or another element: no records.
Bookmark parse_bookmark_list(std::string_view xml);

} // namespace wec::wsman

#include "wsman/bookmark.hpp"

#include "text/text.hpp"

#include <charconv>
#include <cstring>
#include <pugixml.hpp>

namespace wec::wsman {

std::string bookmark_list(const Bookmark& b) {
    if (b.records.empty()) return {};
    const std::string& current =
        b.records.count(b.current) != 0 ? b.current : b.records.rbegin()->first;
    std::string out = "<BookmarkList>";
    for (const auto& [channel, id] : b.records) {
        out += "<Bookmark Channel=\"";
        out += text::xml_escape(channel, "&<\"\t\r\n");
        out += "\" RecordId=\"";
        out += std::to_string(id);
        out += channel == current ? "\" IsCurrent=\"true\"/>" : "\"/>";
    }
    out += "</BookmarkList>";
    return out;
}

Bookmark parse_bookmark_list(std::string_view xml) {
    Bookmark b;
    pugi::xml_document doc;
    if (!doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8))
        return b;
    const pugi::xml_node list = doc.document_element();
    if (std::strcmp(list.name(), "BookmarkList") != 0) return b;
    for (const pugi::xml_node e : list.children("Bookmark")) {
        const pugi::xml_attribute channel = e.attribute("Channel");
        if (!channel || *channel.value() == '\0') continue;
        const std::string_view id = e.attribute("RecordId").value();
        std::uint64_t record = 0;
        const auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), record);
        if (ec != std::errc() || end != id.data() + id.size()) record = 0;
        b.records[channel.value()] = record;
        if (std::string_view(e.attribute("IsCurrent").value()) == "true")
            b.current = channel.value();
    }
    return b;
}

} // namespace wec::wsman

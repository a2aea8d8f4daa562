// pugixml's output appended to a std::string (internal to lib/wsman: the parser's compact copies
// of fragments and the builders' serializations).
#pragma once

#include <cstddef>
#include <pugixml.hpp>
#include <string>

namespace wec::wsman::detail {

struct StringWriter : pugi::xml_writer {
    std::string& out;
    explicit StringWriter(std::string& o) : out(o) {}
    void write(const void* data, std::size_t size) override {
        out.append(static_cast<const char*>(data), size);
    }
};

} // namespace wec::wsman::detail

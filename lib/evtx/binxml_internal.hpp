// Binary XML (the EVTX record and template encoding) rendered straight into the Windows-shaped
// event XML of evtx.hpp: what normalize_xml makes of libevtx's rendering, byte for byte.
#pragma once

#include "common/error.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace wec::evtx::detail {

// The binary XML of a record cannot be rendered ("offset N: why", N in the chunk).
class BinXmlError : public wec::Error {
public:
    using wec::Error::Error;
};

class Renderer {
public:
    Renderer();
    // A new chunk (the names seen in the previous one are forgotten).
    void begin_chunk(const std::uint8_t* chunk, std::size_t size);
    // The binary XML fragment at [begin, end) of the chunk rendered into `out` (replaced).
    // Throws BinXmlError.
    void render(std::uint32_t begin, std::uint32_t end, std::string& out);

private:
    struct Value {
        std::uint32_t offset;
        std::uint32_t size;
        std::uint8_t type;
    };
    struct Element {
        std::uint32_t name;           // in names_
        std::uint32_t name_len;       //
        std::size_t tag_start;        // '<' in out_
        std::size_t attrs_end;        // after the attributes in out_
        bool pending;                 // '>' not written yet (no content so far)
        bool removed;                 // an empty array: the element is not written
        bool in_system;               // inside System (written <X/> when empty)
        bool system;                  // System itself (child of the root)
        bool open_before;             // open_ before its start tag
        std::uint32_t data_end;       // where its end tag must end (chunk offset)
        std::uint32_t attributes_end; // where its attribute list must end (0: none)
        bool has_child;               // an element started in its content
        bool has_text;                // text other than whitespace (or CDATA) in its content
    };
    struct Name {
        std::uint32_t generation = 0;
        std::uint32_t pos = 0;
        std::uint32_t len = 0;
    };
    struct Cursor;

    void fragment(Cursor& c, std::size_t frame_base, std::size_t frame_count, int depth);
    void template_instance(Cursor& c, int depth);
    void start_element(Cursor& c, bool has_attributes);
    void close_start(bool empty);
    void end_element();
    void attribute(Cursor& c);
    void finish_attribute();
    void substitution(Cursor& c, std::size_t base, std::size_t count, int depth);
    void value(const Value& v, int depth);
    void scalar(std::uint8_t type, const std::uint8_t* p, std::uint32_t size, std::uint32_t at);
    void array(const Value& v);
    void content_start();
    void finish_text(bool before_end_tag, std::uint32_t at);
    void text_in_content(std::uint32_t at);
    std::uint32_t name_at(std::uint32_t offset, std::uint32_t& len, std::uint32_t at);
    std::uint32_t name_ref(Cursor& c, std::uint32_t offset, std::uint32_t& len);
    void utf16(const std::uint8_t* p, std::size_t units, std::uint32_t at);
    void put_code_point(std::uint32_t cp);
    void put_ascii(std::string_view s);
    [[noreturn]] void fail(std::uint32_t at, const char* what) const;

    const std::uint8_t* chunk_ = nullptr;
    std::size_t chunk_size_ = 0;
    std::uint32_t generation_ = 0;
    std::vector<Name> name_slots_;
    std::string names_;
    std::vector<Value> values_;
    std::vector<Element> stack_;
    std::string* out_ = nullptr;
    bool open_ = false;
    bool root_done_ = false;
    bool system_open_ = false;
    // The current text run (between two pieces of markup) in out_.
    std::size_t run_start_ = 0;
    bool in_run_ = false;
    bool run_blank_ = true;
    // The attribute being written.
    bool in_attribute_ = false;
    bool attribute_has_value_ = false;
    std::size_t attribute_start_ = 0;
    std::size_t attribute_value_ = 0;
    int attribute_special_ = 0; // 1: lower-case GUID, 2: trim the FILETIME
    bool attribute_xmlns_ = false;
    bool root_has_xmlns_ = false;
    bool in_start_tag_ = false; // between an element's name and the close of its start tag
    bool raw_ = false;          // CDATA: no escaping
    bool escape_ = true;        // false: template text and ANSI strings (libevtx's rendering)
    std::uint64_t steps_ = 0;
    std::uint32_t token_at_ = 0; // the token being rendered (for messages)
};

} // namespace wec::evtx::detail

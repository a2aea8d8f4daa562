// RESP2, the Redis serialisation protocol (internal to lib/output, used by the redis driver):
// command encoding and a strict, bounded, incremental reply parser.
//
// Encoding: a command is an array of bulk strings (`*N\r\n` then `$LEN\r\nBYTES\r\n` per
// argument), binary-safe.
//
// Parsing: the five RESP2 reply types — simple string (`+`), error (`-`), integer (`:`), bulk
// string (`$`, `$-1` = null) and array (`*`, `*-1` = null), nested. Bytes may arrive split anywhere
// (feed() takes what was read, replies come out whole). Anything else is refused with a
// ProtocolError naming the stream offset: another type byte (RESP3 included), a line not ended by
// CRLF, a CR or LF inside a simple string or an error, a number that is empty, signed with '+',
// has a leading zero or overflows, a bulk not followed by CRLF. Only the canonical form is
// accepted, so encode_reply() of a parsed reply gives back exactly the bytes it came from. Sizes
// are bounded (Limits): the memory the parser holds never exceeds about max_held_bytes + max_line
// plus what one feed() passes in.
#pragma once

#include "output/output.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace wec::output::detail::resp {

// Malformed or oversized input; offset() is where in the stream (bytes fed before it) it was found.
class ProtocolError : public OutputError {
public:
    ProtocolError(std::uint64_t offset, const std::string& what)
        : OutputError("RESP reply: " + what + " at offset " + std::to_string(offset)),
          offset_(offset) {}
    std::uint64_t offset() const { return offset_; }

private:
    std::uint64_t offset_;
};

struct Reply {
    enum class Type { SimpleString, Error, Integer, Bulk, Array, Null, NullArray };
    Type type = Type::Null;
    std::string text;            // SimpleString, Error, Bulk
    std::int64_t integer = 0;    // Integer
    std::vector<Reply> elements; // Array
};

struct Limits {
    std::size_t max_line = 64 * 1024;        // a header, simple string or error line
    std::size_t max_bulk = 16 * 1024 * 1024; // one bulk string
    std::size_t max_elements = 1024 * 1024;  // one array
    std::size_t max_depth = 16;              // arrays nested in arrays
    // The replies held in memory: the one being parsed plus the complete ones not taken yet
    // (each string and element charged with its size).
    std::size_t max_held_bytes = 64u << 20;
};

// Appends one command (an array of bulk strings) to `out`.
void append_command(std::string& out, std::span<const std::string_view> args);
// For commands built piece by piece: the array header of `count` arguments, then each argument.
void append_array_header(std::string& out, std::size_t count);
void append_bulk(std::string& out, std::string_view arg);

// The wire form of a reply (the inverse of the parser).
void encode_reply(const Reply& reply, std::string& out);
// "integer 3", "error 'WRONGTYPE ...'", ... for messages.
std::string describe(const Reply& reply);

class ReplyParser {
public:
    explicit ReplyParser(Limits limits = {}) : limits_(limits) {}

    // Takes the next bytes of the stream. Throws ProtocolError on malformed or oversized input;
    // after that the parser stays failed (every call throws): the connection must be dropped.
    void feed(std::string_view bytes);
    bool has_reply() const { return !ready_.empty(); }
    std::size_t ready() const { return ready_.size(); }
    // The oldest complete reply (has_reply() must be true).
    Reply take();
    // True when no byte of a reply not yet complete is held (nothing between replies).
    bool idle() const { return pos_ == buffer_.size() && stack_.empty() && !in_bulk_; }
    std::uint64_t offset() const { return consumed_ + pos_; }

private:
    struct Frame {
        Reply array;
        std::size_t remaining = 0;
    };
    struct Ready {
        Reply reply;
        std::size_t charged = 0;
    };
    bool parse_one(); // false: more bytes needed
    [[noreturn]] void fail(std::uint64_t at, const std::string& what);
    std::int64_t number(std::string_view text, std::uint64_t at, bool length);
    void complete(Reply reply);
    void charge(std::size_t bytes, std::uint64_t at);

    Limits limits_;
    std::string buffer_;
    std::size_t pos_ = 0;        // next byte of buffer_ to parse
    std::uint64_t consumed_ = 0; // bytes dropped from the front of buffer_
    bool failed_ = false;
    std::uint64_t failed_at_ = 0;
    std::string failure_;
    bool in_bulk_ = false; // the header of a bulk was read; waiting for its body
    std::size_t bulk_length_ = 0;
    std::vector<Frame> stack_;      // arrays being filled, outermost first
    std::size_t held_bytes_ = 0;    // charged to the reply being built and to ready_
    std::size_t current_bytes_ = 0; // charged to the reply being built
    std::deque<Ready> ready_;
};

} // namespace wec::output::detail::resp

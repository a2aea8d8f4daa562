// The RESP2 encoder and the strict, bounded, incremental reply parser of the redis driver: every
// reply type, bytes split at every position, malformed input (refused at the offset of the
// problem), oversized input (refused before it is buffered), and the round trip.
#include "output/resp_internal.hpp"

#include <array>
#include <gtest/gtest.h>
#include <set>

namespace {

using namespace wec::output::detail::resp;
using Type = Reply::Type;

// Every reply of `wire`, fed at once.
std::vector<Reply> parse_all(std::string_view wire, Limits limits = {}) {
    ReplyParser p(limits);
    p.feed(wire);
    std::vector<Reply> out;
    while (p.has_reply())
        out.push_back(p.take());
    EXPECT_TRUE(p.idle());
    return out;
}

// The error of feeding `wire` (in one piece), or "" when it was accepted.
std::string error_of(std::string_view wire, Limits limits = {}) {
    ReplyParser p(limits);
    try {
        p.feed(wire);
    } catch (const ProtocolError& e) {
        return e.what();
    }
    return "";
}

std::string encode(const std::vector<Reply>& replies) {
    std::string out;
    for (const auto& r : replies)
        encode_reply(r, out);
    return out;
}

TEST(RespEncode, CommandIsAnArrayOfBinarySafeBulkStrings) {
    std::string out;
    const std::string binary("a\r\nb\0c", 6);
    const std::array<std::string_view, 4> args{"RPUSH", "wec:list", "", binary};
    append_command(out, args);
    EXPECT_EQ(out, std::string(
                       "*4\r\n$5\r\nRPUSH\r\n$8\r\nwec:list\r\n$0\r\n\r\n$6\r\na\r\nb\0c\r\n", 47));
    std::string piecewise;
    append_array_header(piecewise, 4);
    for (auto a : args)
        append_bulk(piecewise, a);
    EXPECT_EQ(piecewise, out);
}

TEST(RespParse, EveryReplyType) {
    const std::string wire =
        "+OK\r\n"
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        ":0\r\n:-42\r\n:9223372036854775807\r\n:-9223372036854775808\r\n"
        "$5\r\nhello\r\n$0\r\n\r\n$-1\r\n"
        "*-1\r\n*0\r\n"
        "*3\r\n:1\r\n*2\r\n+a\r\n$1\r\nb\r\n$-1\r\n";
    auto r = parse_all(wire);
    ASSERT_EQ(r.size(), 12u);
    EXPECT_EQ(r[0].type, Type::SimpleString);
    EXPECT_EQ(r[0].text, "OK");
    EXPECT_EQ(r[1].type, Type::Error);
    EXPECT_EQ(r[1].text, "WRONGTYPE Operation against a key holding the wrong kind of value");
    EXPECT_EQ(r[2].type, Type::Integer);
    EXPECT_EQ(r[2].integer, 0);
    EXPECT_EQ(r[3].integer, -42);
    EXPECT_EQ(r[4].integer, INT64_MAX);
    EXPECT_EQ(r[5].integer, INT64_MIN);
    EXPECT_EQ(r[6].type, Type::Bulk);
    EXPECT_EQ(r[6].text, "hello");
    EXPECT_EQ(r[7].type, Type::Bulk);
    EXPECT_EQ(r[7].text, "");
    EXPECT_EQ(r[8].type, Type::Null);
    EXPECT_EQ(r[9].type, Type::NullArray);
    EXPECT_EQ(r[10].type, Type::Array);
    EXPECT_TRUE(r[10].elements.empty());
    ASSERT_EQ(r[11].type, Type::Array);
    ASSERT_EQ(r[11].elements.size(), 3u);
    EXPECT_EQ(r[11].elements[0].integer, 1);
    ASSERT_EQ(r[11].elements[1].elements.size(), 2u);
    EXPECT_EQ(r[11].elements[1].elements[0].text, "a");
    EXPECT_EQ(r[11].elements[1].elements[1].text, "b");
    EXPECT_EQ(r[11].elements[2].type, Type::Null);
    EXPECT_EQ(encode(r), wire); // canonical input: the encoder gives it back
}

TEST(RespParse, BulkStringsAreBinarySafe) {
    const std::string payload("\r\n\0$3\r\n+x\r\n", 12);
    auto r = parse_all("$12\r\n" + payload + "\r\n");
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].text, payload);
}

// The same replies whatever the reads: split into two at every position, and byte by byte.
TEST(RespParse, SplitAnywhere) {
    const std::string wire = "+OK\r\n:12345\r\n$11\r\nhello world\r\n*2\r\n$3\r\nabc\r\n*1\r\n-"
                             "ERR x\r\n$-1\r\n";
    const std::string expected = encode(parse_all(wire));
    ASSERT_EQ(expected, wire);
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
        ReplyParser p;
        p.feed(std::string_view(wire).substr(0, cut));
        std::vector<Reply> got;
        while (p.has_reply())
            got.push_back(p.take());
        p.feed(std::string_view(wire).substr(cut));
        while (p.has_reply())
            got.push_back(p.take());
        EXPECT_EQ(encode(got), wire) << "cut at " << cut;
        EXPECT_TRUE(p.idle());
    }
    // Byte by byte: idle() exactly at the ends of the replies.
    std::set<std::size_t> ends;
    std::size_t end = 0;
    for (const auto& r : parse_all(wire)) {
        std::string one;
        encode_reply(r, one);
        ends.insert(end += one.size());
    }
    ReplyParser p;
    for (std::size_t i = 0; i < wire.size(); ++i) {
        p.feed(std::string_view(wire).substr(i, 1));
        EXPECT_EQ(p.idle(), ends.count(i + 1) == 1) << "after byte " << i;
    }
    EXPECT_EQ(p.ready(), 5u);
}

TEST(RespParse, IdleOnlyBetweenReplies) {
    ReplyParser p;
    EXPECT_TRUE(p.idle());
    p.feed(":1");
    EXPECT_FALSE(p.idle());
    EXPECT_FALSE(p.has_reply());
    p.feed("\r\n$3\r\nab");
    EXPECT_EQ(p.ready(), 1u);
    EXPECT_FALSE(p.idle());
    p.feed("c\r\n");
    EXPECT_TRUE(p.idle());
    EXPECT_EQ(p.ready(), 2u);
    EXPECT_EQ(p.take().integer, 1);
    EXPECT_EQ(p.take().text, "abc");
    EXPECT_EQ(p.offset(), 13u);
}

TEST(RespParse, MalformedInputIsRefusedWhereItIs) {
    struct Case {
        std::string wire;
        std::string error;
    };
    const std::vector<Case> cases = {
        {"!5\r\nhello\r\n", "unknown reply type byte 0x21 at offset 0"}, // RESP3 blob error
        {"_\r\n", "unknown reply type byte 0x5f at offset 0"},           // RESP3 null
        {"+OK\r\n%1\r\n", "unknown reply type byte 0x25 at offset 5"},   // RESP3 map
        {"OK\r\n", "unknown reply type byte 0x4f at offset 0"},          // inline
        {"+OK\n", "LF without CR at offset 3"},                          //
        {"+O\rK\r\n", "CR not followed by LF at offset 2"},              //
        {"-ERR a\nb\r\n", "LF without CR at offset 6"},                  //
        {":\r\n", "empty integer at offset 0"},                          //
        {":-\r\n", "empty integer at offset 0"},                         //
        {":+1\r\n", "integer '+1' is not a number at offset 0"},         //
        {": 1\r\n", "integer ' 1' is not a number at offset 0"},         //
        {":1x\r\n", "integer '1x' is not a number at offset 0"},         //
        {":01\r\n", "integer '01' has a leading zero at offset 0"},      //
        {":-0\r\n", "integer '-0' is not canonical at offset 0"},        //
        {":9223372036854775808\r\n", "out of range at offset 0"},        //
        {":-9223372036854775809\r\n", "out of range at offset 0"},       //
        {"$-2\r\n", "negative length '-2' (only -1, null, is valid) at offset 0"},
        {"*-5\r\n", "negative length '-5' (only -1, null, is valid) at offset 0"},
        {"$03\r\nabc\r\n", "length '03' has a leading zero at offset 0"},   //
        {"$3\r\nabcd\r\n", "bulk string not followed by CRLF at offset 7"}, //
        {"$3\r\nabc\n\r", "bulk string not followed by CRLF at offset 7"},  //
        {"*2\r\n:1\r\n:x\r\n", "integer 'x' is not a number at offset 8"},  //
        {"$99999999999999999999\r\n", "out of range at offset 0"},          //
    };
    for (const auto& c : cases) {
        std::string e = error_of(c.wire);
        EXPECT_NE(e.find(c.error), std::string::npos) << c.wire << " -> " << e;
        EXPECT_EQ(e.rfind("RESP reply: ", 0), 0u) << e;
    }
}

TEST(RespParse, RefusedStreamStaysRefused) {
    ReplyParser p;
    EXPECT_THROW(p.feed("+OK\r\n:x\r\n"), ProtocolError);
    EXPECT_EQ(p.ready(), 1u); // what came before the error is whole
    try {
        p.feed(":1\r\n");
        FAIL() << "accepted after an error";
    } catch (const ProtocolError& e) {
        EXPECT_EQ(e.offset(), 5u);
        EXPECT_NE(std::string(e.what()).find("stream already refused"), std::string::npos);
    }
}

TEST(RespParse, OversizedInputIsRefusedBeforeItIsBuffered) {
    Limits small;
    small.max_line = 16;
    small.max_bulk = 100;
    small.max_elements = 10;
    small.max_depth = 3;
    small.max_held_bytes = 4096;
    // A line without its end: refused once it is longer than the limit, not when CRLF comes.
    EXPECT_NE(error_of("+" + std::string(16, 'a'), small).find("line longer than 16 bytes"),
              std::string::npos);
    EXPECT_EQ(error_of("+" + std::string(15, 'a'), small), ""); // 16 bytes: still waiting
    EXPECT_EQ(error_of("+" + std::string(15, 'a') + "\r\n", small), "");
    // A bulk longer than the limit: refused on its header, its body never awaited.
    EXPECT_NE(error_of("$101\r\n", small).find("bulk string of 101 bytes (more than 100)"),
              std::string::npos);
    EXPECT_EQ(error_of("$100\r\n" + std::string(100, 'x') + "\r\n", small), "");
    EXPECT_NE(error_of("*11\r\n", small).find("array of 11 elements (more than 10)"),
              std::string::npos);
    EXPECT_EQ(error_of("*3\r\n*1\r\n*1\r\n:1\r\n:2\r\n:3\r\n", small), "");
    EXPECT_NE(error_of("*1\r\n*1\r\n*1\r\n*1\r\n", small).find("nested deeper than 3"),
              std::string::npos);
    EXPECT_EQ(error_of("*1\r\n*1\r\n*0\r\n", small), ""); // empty arrays do not nest
    // A huge array of small elements: bounded by the memory it takes.
    std::string many = "*10\r\n";
    for (int i = 0; i < 10; ++i)
        many += "$100\r\n" + std::string(100, 'y') + "\r\n";
    Limits tight = small;
    tight.max_held_bytes = 600;
    EXPECT_NE(error_of(many, tight).find("replies larger than 600 bytes held in memory"),
              std::string::npos);
    // Replies not taken count too; taking them frees their share.
    ReplyParser p(tight);
    const std::string one = "$100\r\n" + std::string(100, 'z') + "\r\n";
    p.feed(one + one);
    EXPECT_EQ(p.ready(), 2u);
    p.take();
    p.take();
    for (int i = 0; i < 20; ++i)
        p.feed(one), p.take();
    std::string pile;
    for (int i = 0; i < 10; ++i)
        pile += one;
    EXPECT_THROW(p.feed(pile), ProtocolError);
}

TEST(RespParse, DescribeForMessages) {
    auto r = parse_all(":7\r\n-ERR bad\r\n$3\r\nabc\r\n*1\r\n:1\r\n+OK\r\n$-1\r\n*-1\r\n");
    ASSERT_EQ(r.size(), 7u);
    EXPECT_EQ(describe(r[0]), "integer 7");
    EXPECT_EQ(describe(r[1]), "error 'ERR bad'");
    EXPECT_EQ(describe(r[2]), "bulk string of 3 bytes");
    EXPECT_EQ(describe(r[3]), "array of 1 elements");
    EXPECT_EQ(describe(r[4]), "simple string 'OK'");
    EXPECT_EQ(describe(r[5]), "null bulk string");
    EXPECT_EQ(describe(r[6]), "null array");
}

} // namespace

// The HTTP layer (http_stream.cpp): HTTP/1.1 messages parsed from one direction of a TCP stream.
#pragma once

#include "capture/types.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace wec::capture {

enum class Direction { ClientToServer, ServerToClient };

struct Header {
    std::string_view name, value;
};

// One HTTP message. Views and spans are valid only during the on_message callback (they point
// into buffers the parser owns for the current message; the fields that do not apply to the kind
// of message, e.g. method for a response, are empty).
struct HttpMessage {
    std::uint64_t connection_id = 0;
    std::uint64_t index = 0; // order of the message within its direction (0-based)
    Direction direction = Direction::ClientToServer; // requests: client->server
    bool is_request = true;
    FourTuple tuple;                          // src = sender of this message
    TimeNs first_time = 0, last_time = 0;     // first and last packet of the message
    std::string_view start_line;              // without CRLF
    std::string_view method, target, version; // requests
    int status = 0;                           // responses
    std::string_view reason;                  // responses
    std::vector<Header> headers;
    std::span<const std::uint8_t> body; // de-chunked
    bool chunked = false;
    bool after_gap = false; // first message after a gap or a mid-stream start
    bool truncated = false; // body cut by the end of the stream (connection closed early)
    std::optional<std::uint64_t> request_index; // responses: index of the request it answers

    // First header of that name (case-insensitive).
    std::optional<std::string_view> header(std::string_view name) const;
};

// Receives the output of the parsers. Default implementations do nothing.
class HttpSink {
public:
    virtual ~HttpSink() = default;
    virtual void on_message(const HttpMessage&) {}
    virtual void on_note(const Note&) {}
};

// Parses the HTTP/1.1 messages of one direction of one connection from a byte stream, pushed in
// pieces of any size. Resynchronises (after a gap or at a mid-stream start) on the next
// recognisable request or status line.
class HttpStreamParser {
public:
    // Answers questions the parser cannot: did the request this response answers use HEAD?
    class Context {
    public:
        virtual ~Context() = default;
        virtual bool next_response_is_to_head() { return false; }
    };

    HttpStreamParser(HttpSink& sink, const Limits& limits, Context* context = nullptr);
    ~HttpStreamParser();
    HttpStreamParser(const HttpStreamParser&) = delete;
    HttpStreamParser& operator=(const HttpStreamParser&) = delete;

    // Identification copied into messages and notes.
    void set_identity(std::uint64_t connection_id, const FourTuple& tuple);
    // Called just before on_message for a fully parsed message (to fill pairing fields).
    std::function<void(HttpMessage&)> on_complete;

    void feed(std::span<const std::uint8_t> data, TimeNs time);
    // `bytes` of the stream are missing: drop the current message and resynchronise.
    void gap(std::uint64_t bytes, TimeNs time);
    // End of the stream: completes a read-until-close body, reports a cut message.
    void finish(TimeNs time);

    std::uint64_t messages() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace wec::capture

#include "output/resp_internal.hpp"

#include <charconv>
#include <cstdio>

namespace wec::output::detail::resp {

namespace {

void append_number(std::string& out, std::int64_t n) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
    (void)ec; // 24 bytes hold any int64
    out.append(buf, end);
}

// A short, printable view of peer-provided text for messages.
std::string printable(std::string_view text, std::size_t max = 200) {
    std::string out;
    for (char c : text.substr(0, max)) {
        auto u = static_cast<unsigned char>(c);
        out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
    }
    if (text.size() > max) out += "...";
    return out;
}

} // namespace

void append_array_header(std::string& out, std::size_t count) {
    out.push_back('*');
    append_number(out, static_cast<std::int64_t>(count));
    out += "\r\n";
}

void append_bulk(std::string& out, std::string_view arg) {
    out.push_back('$');
    append_number(out, static_cast<std::int64_t>(arg.size()));
    out += "\r\n";
    out += arg;
    out += "\r\n";
}

void append_command(std::string& out, std::span<const std::string_view> args) {
    append_array_header(out, args.size());
    for (auto a : args)
        append_bulk(out, a);
}

void encode_reply(const Reply& r, std::string& out) {
    switch (r.type) {
    case Reply::Type::SimpleString:
        out += '+';
        out += r.text;
        out += "\r\n";
        return;
    case Reply::Type::Error:
        out += '-';
        out += r.text;
        out += "\r\n";
        return;
    case Reply::Type::Integer:
        out += ':';
        append_number(out, r.integer);
        out += "\r\n";
        return;
    case Reply::Type::Bulk:
        append_bulk(out, r.text);
        return;
    case Reply::Type::Null:
        out += "$-1\r\n";
        return;
    case Reply::Type::NullArray:
        out += "*-1\r\n";
        return;
    case Reply::Type::Array:
        append_array_header(out, r.elements.size());
        for (const auto& e : r.elements)
            encode_reply(e, out);
        return;
    }
}

std::string describe(const Reply& r) {
    switch (r.type) {
    case Reply::Type::SimpleString:
        return "simple string '" + printable(r.text) + "'";
    case Reply::Type::Error:
        return "error '" + printable(r.text) + "'";
    case Reply::Type::Integer:
        return "integer " + std::to_string(r.integer);
    case Reply::Type::Bulk:
        return "bulk string of " + std::to_string(r.text.size()) + " bytes";
    case Reply::Type::Null:
        return "null bulk string";
    case Reply::Type::NullArray:
        return "null array";
    case Reply::Type::Array:
        return "array of " + std::to_string(r.elements.size()) + " elements";
    }
    return "reply";
}

void ReplyParser::fail(std::uint64_t at, const std::string& what) {
    failed_ = true;
    failed_at_ = at;
    failure_ = what;
    throw ProtocolError(at, what);
}

void ReplyParser::feed(std::string_view bytes) {
    if (failed_) throw ProtocolError(failed_at_, failure_ + " (stream already refused)");
    buffer_.append(bytes);
    while (parse_one()) {
    }
    if (pos_ > 0) {
        buffer_.erase(0, pos_);
        consumed_ += pos_;
        pos_ = 0;
    }
}

Reply ReplyParser::take() {
    Ready r = std::move(ready_.front());
    ready_.pop_front();
    held_bytes_ -= r.charged;
    return std::move(r.reply);
}

void ReplyParser::charge(std::size_t bytes, std::uint64_t at) {
    held_bytes_ += bytes;
    current_bytes_ += bytes;
    if (held_bytes_ > limits_.max_held_bytes)
        fail(at, "replies larger than " + std::to_string(limits_.max_held_bytes) +
                     " bytes held in memory");
}

std::int64_t ReplyParser::number(std::string_view text, std::uint64_t at, bool length) {
    const std::string what = length ? "length" : "integer";
    std::string_view digits = text;
    bool negative = !digits.empty() && digits.front() == '-';
    if (negative) digits.remove_prefix(1);
    if (digits.empty()) fail(at, "empty " + what);
    for (char c : digits)
        if (c < '0' || c > '9') fail(at, what + " '" + printable(text, 32) + "' is not a number");
    if (digits.size() > 1 && digits.front() == '0')
        fail(at, what + " '" + printable(text, 32) + "' has a leading zero");
    if (negative && digits == "0") fail(at, what + " '-0' is not canonical");
    if (length && negative && digits != "1")
        fail(at, "negative length '" + printable(text, 32) + "' (only -1, null, is valid)");
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size())
        fail(at, what + " '" + printable(text, 32) + "' is out of range");
    return value;
}

void ReplyParser::complete(Reply reply) {
    for (;;) {
        if (stack_.empty()) {
            ready_.push_back(Ready{std::move(reply), current_bytes_});
            current_bytes_ = 0;
            return;
        }
        Frame& f = stack_.back();
        f.array.elements.push_back(std::move(reply));
        if (--f.remaining > 0) return;
        reply = std::move(f.array);
        stack_.pop_back();
    }
}

bool ReplyParser::parse_one() {
    if (in_bulk_) {
        const std::size_t need = bulk_length_ + 2;
        if (buffer_.size() - pos_ < need) return false;
        if (buffer_[pos_ + bulk_length_] != '\r' || buffer_[pos_ + bulk_length_ + 1] != '\n')
            fail(consumed_ + pos_ + bulk_length_, "bulk string not followed by CRLF");
        Reply r;
        r.type = Reply::Type::Bulk;
        r.text.assign(buffer_, pos_, bulk_length_);
        pos_ += need;
        in_bulk_ = false;
        complete(std::move(r));
        return true;
    }
    const std::size_t start = pos_;
    if (start == buffer_.size()) return false;
    const std::uint64_t at = consumed_ + start;
    const char type = buffer_[start];
    if (type != '+' && type != '-' && type != ':' && type != '$' && type != '*') {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(type));
        fail(at, std::string("unknown reply type byte ") + hex);
    }
    std::size_t end = buffer_.find_first_of("\r\n", start);
    std::size_t line = (end == std::string::npos ? buffer_.size() : end) - start;
    if (line > limits_.max_line)
        fail(at, "line longer than " + std::to_string(limits_.max_line) + " bytes");
    if (end == std::string::npos) return false;
    if (buffer_[end] == '\n') fail(consumed_ + end, "LF without CR");
    if (end + 1 == buffer_.size()) return false;
    if (buffer_[end + 1] != '\n') fail(consumed_ + end, "CR not followed by LF");
    const std::string_view body(buffer_.data() + start + 1, line - 1);
    switch (type) {
    case '+':
    case '-': {
        charge(sizeof(Reply) + body.size(), at);
        Reply r;
        r.type = type == '+' ? Reply::Type::SimpleString : Reply::Type::Error;
        r.text = std::string(body);
        pos_ = end + 2;
        complete(std::move(r));
        return true;
    }
    case ':': {
        Reply r;
        r.type = Reply::Type::Integer;
        r.integer = number(body, at, false);
        charge(sizeof(Reply), at);
        pos_ = end + 2;
        complete(std::move(r));
        return true;
    }
    case '$': {
        std::int64_t n = number(body, at, true);
        pos_ = end + 2;
        if (n < 0) {
            charge(sizeof(Reply), at);
            complete(Reply{});
            return true;
        }
        if (static_cast<std::uint64_t>(n) > limits_.max_bulk)
            fail(at, "bulk string of " + std::to_string(n) + " bytes (more than " +
                         std::to_string(limits_.max_bulk) + ")");
        charge(sizeof(Reply) + static_cast<std::size_t>(n), at);
        in_bulk_ = true;
        bulk_length_ = static_cast<std::size_t>(n);
        return true;
    }
    default: { // '*'
        std::int64_t n = number(body, at, true);
        if (n > 0 && static_cast<std::uint64_t>(n) > limits_.max_elements)
            fail(at, "array of " + std::to_string(n) + " elements (more than " +
                         std::to_string(limits_.max_elements) + ")");
        if (n > 0 && stack_.size() >= limits_.max_depth)
            fail(at, "arrays nested deeper than " + std::to_string(limits_.max_depth));
        charge(sizeof(Reply), at);
        pos_ = end + 2;
        Reply r;
        r.type = n < 0 ? Reply::Type::NullArray : Reply::Type::Array;
        if (n <= 0) {
            complete(std::move(r));
            return true;
        }
        stack_.push_back(Frame{std::move(r), static_cast<std::size_t>(n)});
        return true;
    }
    }
}

} // namespace wec::output::detail::resp

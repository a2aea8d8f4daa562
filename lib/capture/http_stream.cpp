// HttpStreamParser: HTTP/1.1 messages from one direction of a TCP stream.
#include "capture/http_stream.hpp"

#include "text/ascii.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

namespace wec::capture {
namespace {

constexpr std::size_t kMaxStartLine = 8192;
constexpr std::size_t kMaxChunkLine = 1024;
constexpr std::string_view kCrlfCrlf = "\r\n\r\n";

using text::iequals;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}
bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}
bool is_method_char(char c) {
    return (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}
bool is_target_char(char c) {
    return static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
}

constexpr std::string_view kKnownMethods[] = {"OPTIONS", "CONNECT", "DELETE", "PATCH", "TRACE",
                                              "POST",    "HEAD",    "GET",    "PUT"};

struct StartLine {
    bool request = false;
    std::string_view method, target, version, reason;
    int status = 0;
};

// Validates and splits a start line (without CRLF). Every field of out describes l only (views
// into l; the fields of the other kind of start line are empty).
bool parse_start_line(std::string_view l, StartLine& out) {
    out = StartLine{};
    if (l.size() >= 12 && l.substr(0, 7) == "HTTP/1." && (l[7] == '0' || l[7] == '1') &&
        l[8] == ' ') {
        int st = 0;
        for (int i = 9; i < 12; ++i) {
            if (l[static_cast<std::size_t>(i)] < '0' || l[static_cast<std::size_t>(i)] > '9') {
                return false;
            }
            st = st * 10 + (l[static_cast<std::size_t>(i)] - '0');
        }
        if (st < 100) return false;
        if (l.size() > 12 && l[12] != ' ') return false;
        out.request = false;
        out.version = l.substr(0, 8);
        out.status = st;
        out.reason = l.size() > 13 ? l.substr(13) : std::string_view();
        return true;
    }
    auto sp1 = l.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0 || sp1 > 20) return false;
    auto sp2 = l.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return false;
    std::string_view version = l.substr(sp2 + 1);
    if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." ||
        (version[7] != '0' && version[7] != '1')) {
        return false;
    }
    for (std::size_t i = 0; i < sp1; ++i) {
        if (!is_method_char(l[i])) return false;
    }
    for (std::size_t i = sp1 + 1; i < sp2; ++i) {
        if (!is_target_char(l[i])) return false;
    }
    out.request = true;
    out.method = l.substr(0, sp1);
    out.target = l.substr(sp1 + 1, sp2 - sp1 - 1);
    out.version = version;
    return true;
}

std::string_view as_sv(const std::vector<std::uint8_t>& v, std::size_t from = 0) {
    return {reinterpret_cast<const char*>(v.data()) + from, v.size() - from};
}

} // namespace

std::optional<std::string_view> HttpMessage::header(std::string_view name) const {
    for (const auto& h : headers) {
        if (iequals(h.name, name)) return h.value;
    }
    return std::nullopt;
}

struct HttpStreamParser::Impl {
    enum class State {
        Start,      // beginning of a stream seen from its SYN: must be HTTP, else Ignore
        Resync,     // searching for a start line
        Headers,    // collecting start line + headers
        Body,       // Content-Length body
        ChunkSize,  // chunk-size line
        ChunkData,  // chunk bytes
        ChunkCrlf,  // CRLF after chunk bytes
        Trailers,   // trailer lines after the last chunk
        UntilClose, // response body delimited by the end of the connection
        Skip,       // known number of bytes to drop (oversized body, body with a gap)
        Discard,    // drop everything until the end of the stream
        Ignore,     // not HTTP: drop everything
    };

    HttpSink& sink;
    const Limits& limits;
    Context* context;
    HttpStreamParser* owner = nullptr;

    std::uint64_t connection_id = 0;
    FourTuple tuple;

    State state = State::Start;
    bool from_candidate = false;    // Headers state entered from a resync candidate
    std::size_t candidate_skip = 1; // bytes to drop if that candidate turns out wrong
    bool after_gap = false;
    bool resync_reported = true; // a "resynchronised" note is due when false
    std::uint64_t skipped = 0;   // bytes skipped while resynchronising
    std::uint64_t offset = 0;    // stream offset (bytes fed + gap bytes)
    std::uint64_t message_offset = 0;

    // Headers being collected / resync window. Grows (and may be reallocated) with the input:
    // no view into it outlives the call that made it.
    std::vector<std::uint8_t> buf;
    // Start line + headers of the current message (msg's views point here). Swapped with buf
    // when a header block is complete, then left alone until the next one: the views stay
    // valid while the body is collected and during on_message, whatever buf does meanwhile.
    std::vector<std::uint8_t> head;
    std::size_t resync_scan = 0; // resync: buf positions before this were searched already
    bool first_line_checked = false;
    std::vector<std::uint8_t> replay;    // bytes to process again before the rest of the input
    std::vector<std::uint8_t> replaying; // replay being processed (its storage is reused)
    std::vector<std::uint8_t> body;
    std::uint64_t remaining = 0;
    std::string line; // chunk-size / CRLF / trailer line being collected
    std::size_t trailer_bytes = 0;

    HttpMessage msg;
    bool have_time = false;
    std::uint64_t count = 0;

    Impl(HttpSink& s, const Limits& l, Context* c) : sink(s), limits(l), context(c) {}

    void note(NoteKind kind, std::string text, TimeNs time, std::uint64_t bytes = 0) {
        Note n;
        n.kind = kind;
        n.connection_id = connection_id;
        n.tuple = tuple;
        n.time = time;
        n.bytes = bytes;
        n.text = std::move(text);
        sink.on_note(n);
    }

    std::string where() const { return " (stream offset " + std::to_string(message_offset) + ")"; }

    void begin_message(TimeNs time) {
        if (!have_time) {
            msg.first_time = time;
            have_time = true;
        }
    }

    // Drops the message's views with the message: none survives into the next one.
    void clear_views() {
        msg.start_line = msg.method = msg.target = msg.version = msg.reason = {};
        msg.status = 0;
        msg.headers.clear();
        msg.body = {};
    }

    void reset_message() {
        clear_views();
        buf.clear();
        body.clear();
        first_line_checked = false;
        from_candidate = false;
        have_time = false;
        msg.chunked = false;
        msg.truncated = false;
        line.clear();
        trailer_bytes = 0;
        state = State::Headers;
        message_offset = offset;
    }

    // Between a message's header block and its end (head holds that header block).
    bool in_body() const {
        switch (state) {
        case State::Body:
        case State::ChunkSize:
        case State::ChunkData:
        case State::ChunkCrlf:
        case State::Trailers:
        case State::UntilClose:
            return true;
        default:
            return false;
        }
    }

    void to_resync(TimeNs time, bool keep_buffer) {
        if (keep_buffer && !buf.empty()) {
            std::size_t drop = std::min(candidate_skip, buf.size());
            skipped += drop;
            replay.insert(replay.begin(), buf.begin() + static_cast<std::ptrdiff_t>(drop),
                          buf.end());
        } else {
            skipped += buf.size();
            if (in_body()) skipped += head.size(); // the dropped message's header block
        }
        clear_views();
        buf.clear();
        body.clear();
        line.clear();
        resync_scan = 0;
        first_line_checked = false;
        from_candidate = false;
        have_time = false;
        state = State::Resync;
        (void)time;
    }

    // A start line or header block that is not HTTP.
    void bad_start(std::string_view why, TimeNs time) {
        if (state == State::Start) {
            state = State::Ignore;
            buf.clear();
            return;
        }
        if (!from_candidate) {
            note(NoteKind::Error, std::string(why) + where() + "; resynchronising", time);
            after_gap = true;
            resync_reported = false;
            candidate_skip = 1;
        }
        to_resync(time, true);
    }

    void emit(TimeNs time) {
        msg.last_time = time;
        msg.body = std::span<const std::uint8_t>(body.data(), body.size());
        msg.after_gap = after_gap;
        msg.connection_id = connection_id;
        msg.tuple = tuple;
        msg.index = count++;
        if (owner->on_complete) owner->on_complete(msg);
        sink.on_message(msg);
        after_gap = false;
        reset_message();
        // A kept-alive connection may stay idle for long after a message: it holds no message
        // storage meanwhile, else every open connection would keep its largest body and header
        // block. The next body gets its storage in one allocation (sized by its Content-Length),
        // a few per message in all: nothing next to decrypting and decoding it.
        release(body);
        release(head);
        release(buf);
    }

    static void release(std::vector<std::uint8_t>& v) { std::vector<std::uint8_t>().swap(v); }

    // A header block turned out not to be HTTP: give its bytes back to buf (resync from them).
    void reject_head(std::string_view why, TimeNs time) {
        clear_views();
        buf.swap(head);
        head.clear();
        bad_start(why, time);
    }

    // Start line + headers complete in buf: parse them and choose the body mode.
    void headers_done(TimeNs time) {
        // The message owns its header text: it moves to head (no copy; buf gets head's old
        // storage for the next input) and every view of msg points there.
        head.swap(buf);
        buf.clear();
        std::string_view all = as_sv(head);
        std::size_t pos = all.find('\n');
        std::string_view first = all.substr(0, pos);
        if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
        StartLine start;
        if (!parse_start_line(first, start)) return reject_head("not an HTTP start line", time);
        msg.headers.clear();
        msg.start_line = first;
        msg.is_request = start.request;
        msg.method = start.method;
        msg.target = start.target;
        msg.version = start.version;
        msg.status = start.status;
        msg.reason = start.reason;
        msg.request_index.reset();
        std::size_t p = pos + 1;
        while (p < all.size()) {
            std::size_t e = all.find('\n', p);
            if (e == std::string_view::npos) e = all.size();
            std::string_view l = all.substr(p, e - p);
            if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
            p = e + 1;
            if (l.empty()) break;
            if (l[0] == ' ' || l[0] == '\t') continue; // obsolete line folding: ignored
            auto colon = l.find(':');
            if (colon == std::string_view::npos || colon == 0) {
                return reject_head("header line without a name", time);
            }
            std::string_view name = l.substr(0, colon);
            for (char c : name) {
                if (!is_tchar(c)) return reject_head("invalid header name", time);
            }
            msg.headers.push_back({name, trim(l.substr(colon + 1))});
        }
        if (from_candidate || !resync_reported) {
            if (skipped > 0 && !resync_reported) {
                note(NoteKind::Warning,
                     "resynchronised on the next HTTP message after skipping " +
                         std::to_string(skipped) + " bytes" + where(),
                     time, skipped);
            }
            resync_reported = true;
            skipped = 0;
        }
        from_candidate = false;
        candidate_skip = 1;

        // Body framing.
        auto te = msg.header("Transfer-Encoding");
        auto cl = msg.header("Content-Length");
        bool head_response =
            !msg.is_request && context != nullptr && context->next_response_is_to_head();
        bool no_body = !msg.is_request && (msg.status < 200 || msg.status == 204 ||
                                           msg.status == 304 || head_response);
        if (no_body) return emit(time);
        if (te && te->size() >= 7 && iequals(te->substr(te->size() - 7), "chunked")) {
            msg.chunked = true;
            state = State::ChunkSize;
            return;
        }
        if (cl) {
            std::uint64_t n = 0;
            auto [ptr, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), n);
            if (ec != std::errc() || ptr != cl->data() + cl->size()) {
                note(NoteKind::Error, "invalid Content-Length '" + std::string(*cl) + "'" + where(),
                     time);
                after_gap = true;
                resync_reported = false;
                skipped += head.size();
                to_resync(time, false);
                return;
            }
            if (n > limits.max_body_bytes) {
                note(NoteKind::Error,
                     "body of " + std::to_string(n) + " bytes exceeds the limit of " +
                         std::to_string(limits.max_body_bytes) + "; message skipped" + where(),
                     time, n);
                remaining = n;
                state = State::Skip;
                after_gap = true;
                return;
            }
            if (n == 0) return emit(time);
            body.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(n, 1 << 20)));
            remaining = n;
            state = State::Body;
            return;
        }
        if (msg.is_request) return emit(time);
        state = State::UntilClose;
    }

    // Returns the number of bytes consumed from data.
    std::size_t on_headers(std::span<const std::uint8_t> data, TimeNs time) {
        begin_message(time);
        // Leading empty lines between messages are tolerated.
        if (buf.empty() && !from_candidate) {
            std::size_t k = 0;
            while (k < data.size() && (data[k] == '\r' || data[k] == '\n'))
                ++k;
            if (k > 0) return k;
        }
        std::string_view d(reinterpret_cast<const char*>(data.data()), data.size());
        std::size_t take = d.size();
        bool found = false;
        // The terminator may span the end of buf and the start of data.
        for (std::size_t k = 1; k <= 3 && !found; ++k) {
            if (buf.size() >= k && d.size() >= 4 - k &&
                as_sv(buf, buf.size() - k) == kCrlfCrlf.substr(0, k) &&
                d.substr(0, 4 - k) == kCrlfCrlf.substr(k)) {
                take = 4 - k;
                found = true;
            }
        }
        if (!found) {
            auto e = d.find(kCrlfCrlf);
            if (e != std::string_view::npos) {
                take = e + 4;
                found = true;
            }
        }
        if (buf.size() + take > limits.max_header_bytes) {
            if (state == State::Start) {
                state = State::Ignore;
                return d.size();
            }
            note(NoteKind::Error,
                 "headers exceed the limit of " + std::to_string(limits.max_header_bytes) +
                     " bytes" + where(),
                 time, buf.size());
            after_gap = true;
            resync_reported = false;
            candidate_skip = 1;
            to_resync(time, true);
            return 0;
        }
        std::size_t old = buf.size();
        buf.insert(buf.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
        if (!first_line_checked) {
            std::string_view all = as_sv(buf);
            std::size_t nl = all.find('\n', old);
            if (nl != std::string_view::npos) {
                first_line_checked = true;
                std::string_view first = all.substr(0, nl);
                if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
                StartLine start;
                if (!parse_start_line(first, start)) {
                    bad_start("not an HTTP start line", time);
                    return take;
                }
            } else if (buf.size() > kMaxStartLine) {
                bad_start("start line too long", time);
                return take;
            }
        }
        if (found) {
            if (state == State::Start) state = State::Headers;
            headers_done(time);
        }
        return take;
    }

    // Looks for a request or status line anywhere in buf. Returns true (state Headers, replay
    // set) when one is found.
    bool search_candidate() {
        std::string_view all = as_sv(buf);
        std::size_t from = resync_scan;
        for (;;) {
            std::size_t pos = all.find("HTTP/1.", from);
            if (pos == std::string_view::npos) break;
            if (pos + 12 > all.size()) {
                // Not enough bytes to decide; keep from here (and the request line before it).
                std::size_t drop = pos > kMaxStartLine ? pos - kMaxStartLine : 0;
                trim_window(drop);
                resync_scan = pos - drop;
                return false;
            }
            std::size_t start_at = std::string_view::npos;
            if ((all[pos + 7] == '0' || all[pos + 7] == '1') && all[pos + 8] == ' ' &&
                std::isdigit(static_cast<unsigned char>(all[pos + 9])) &&
                std::isdigit(static_cast<unsigned char>(all[pos + 10])) &&
                std::isdigit(static_cast<unsigned char>(all[pos + 11]))) {
                start_at = pos;
            } else if ((all[pos + 7] == '0' || all[pos + 7] == '1') && all[pos + 8] == '\r' &&
                       all[pos + 9] == '\n' && pos >= 1 && all[pos - 1] == ' ') {
                // Request line: walk back over the target and the method.
                std::size_t t = pos - 1;
                std::size_t lim = pos > kMaxStartLine ? pos - kMaxStartLine : 0;
                while (t > lim && is_target_char(all[t - 1]))
                    --t;
                if (t < pos - 1 && t >= 2 && all[t - 1] == ' ') {
                    std::size_t m_end = t - 1, m = m_end;
                    while (m > 0 && m_end - m < 64 && is_method_char(all[m - 1]))
                        --m;
                    std::string_view run = all.substr(m, m_end - m);
                    for (auto known : kKnownMethods) {
                        if (run.size() >= known.size() &&
                            run.substr(run.size() - known.size()) == known) {
                            m = m_end - known.size();
                            run = known;
                            break;
                        }
                    }
                    if (!run.empty() && run.size() <= 20) start_at = m;
                }
            }
            if (start_at != std::string_view::npos) {
                skipped += start_at;
                candidate_skip = pos - start_at + 1;
                replay.assign(buf.begin() + static_cast<std::ptrdiff_t>(start_at), buf.end());
                buf.clear();
                state = State::Headers;
                from_candidate = true;
                first_line_checked = false;
                have_time = false;
                message_offset = offset; // approximate: offset of the end of the window
                resync_scan = 0;
                return true;
            }
            from = pos + 1;
        }
        trim_window(all.size() > kMaxStartLine + 16 ? all.size() - kMaxStartLine - 16 : 0);
        resync_scan = buf.size() > 7 ? buf.size() - 7 : 0;
        return false;
    }

    void trim_window(std::size_t drop) {
        if (drop == 0) return;
        skipped += drop;
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(drop));
    }

    std::size_t on_chunk_line(std::span<const std::uint8_t> data, TimeNs time, bool trailers) {
        std::size_t i = 0;
        while (i < data.size() && data[i] != '\n')
            ++i;
        bool complete = i < data.size();
        std::size_t take = complete ? i + 1 : i;
        line.append(reinterpret_cast<const char*>(data.data()), take);
        std::size_t limit = trailers ? limits.max_header_bytes : kMaxChunkLine;
        if (line.size() > limit || (trailers && trailer_bytes + line.size() > limit)) {
            note(NoteKind::Error,
                 std::string(trailers ? "trailers" : "chunk-size line") + " too long" + where(),
                 time);
            after_gap = true;
            resync_reported = false;
            to_resync(time, false);
            return take;
        }
        if (!complete) return take;
        std::string_view l = trim(line);
        if (!l.empty() && l.back() == '\n') l.remove_suffix(1);
        l = trim(l);
        if (trailers) {
            trailer_bytes += line.size();
            line.clear();
            if (l.empty()) emit(time);
            return take;
        }
        std::string_view hex = l.substr(0, l.find(';'));
        hex = trim(hex);
        std::uint64_t n = 0;
        auto [ptr, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), n, 16);
        line.clear();
        if (hex.empty() || ec != std::errc() || ptr != hex.data() + hex.size()) {
            note(NoteKind::Error, "invalid chunk size" + where(), time);
            after_gap = true;
            resync_reported = false;
            to_resync(time, false);
            return take;
        }
        if (n == 0) {
            state = State::Trailers;
            return take;
        }
        if (body.size() + n > limits.max_body_bytes) {
            note(NoteKind::Error,
                 "chunked body exceeds the limit of " + std::to_string(limits.max_body_bytes) +
                     " bytes" + where(),
                 time);
            after_gap = true;
            resync_reported = false;
            to_resync(time, false);
            return take;
        }
        remaining = n;
        state = State::ChunkData;
        return take;
    }

    // Processes input until it is consumed or bytes must be replayed first. Returns bytes used.
    std::size_t run(std::span<const std::uint8_t> data, TimeNs time) {
        std::size_t used = 0;
        while (used < data.size() && replay.empty()) {
            auto rest = data.subspan(used);
            switch (state) {
            case State::Start:
            case State::Headers:
                used += on_headers(rest, time);
                break;
            case State::Resync:
                buf.insert(buf.end(), rest.begin(), rest.end());
                used = data.size();
                search_candidate();
                break;
            case State::Body: {
                auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, rest.size()));
                body.insert(body.end(), rest.begin(),
                            rest.begin() + static_cast<std::ptrdiff_t>(n));
                remaining -= n;
                used += n;
                if (remaining == 0) emit(time);
                break;
            }
            case State::ChunkSize:
                used += on_chunk_line(rest, time, false);
                break;
            case State::ChunkData: {
                auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, rest.size()));
                body.insert(body.end(), rest.begin(),
                            rest.begin() + static_cast<std::ptrdiff_t>(n));
                remaining -= n;
                used += n;
                if (remaining == 0) state = State::ChunkCrlf;
                break;
            }
            case State::ChunkCrlf: {
                std::uint8_t c = rest[0];
                used += 1;
                if (c == '\n') {
                    state = State::ChunkSize;
                } else if (c != '\r') {
                    note(NoteKind::Error, "missing CRLF after chunk data" + where(), time);
                    after_gap = true;
                    resync_reported = false;
                    to_resync(time, false);
                }
                break;
            }
            case State::Trailers:
                used += on_chunk_line(rest, time, true);
                break;
            case State::UntilClose: {
                std::size_t room = limits.max_body_bytes - body.size();
                if (rest.size() > room) {
                    note(NoteKind::Error,
                         "body exceeds the limit of " + std::to_string(limits.max_body_bytes) +
                             " bytes; dropped" + where(),
                         time);
                    body.clear();
                    state = State::Discard;
                    break;
                }
                body.insert(body.end(), rest.begin(), rest.end());
                used = data.size();
                break;
            }
            case State::Skip: {
                auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, rest.size()));
                remaining -= n;
                used += n;
                if (remaining == 0) reset_message();
                break;
            }
            case State::Discard:
            case State::Ignore:
                used = data.size();
                break;
            }
        }
        return used;
    }

    void feed(std::span<const std::uint8_t> data, TimeNs time) {
        std::size_t used = 0;
        for (;;) {
            if (!replay.empty()) {
                // run() may set replay again (a resync candidate): work on the bytes elsewhere.
                replaying.swap(replay);
                replay.clear();
                std::size_t u = run(replaying, time);
                if (u < replaying.size())
                    replay.insert(replay.end(), replaying.begin() + static_cast<std::ptrdiff_t>(u),
                                  replaying.end());
                replaying.clear();
                continue;
            }
            if (used >= data.size()) break;
            used += run(data.subspan(used), time);
        }
        offset += data.size();
    }

    void gap(std::uint64_t bytes, TimeNs time) {
        offset += bytes;
        if (state == State::Ignore || state == State::Discard) return;
        if ((state == State::Body || state == State::Skip) && bytes > 0 && bytes <= remaining) {
            if (state == State::Body) {
                note(NoteKind::Error,
                     std::string(msg.is_request ? "request" : "response") + " '" +
                         std::string(msg.start_line.substr(0, 80)) +
                         "' dropped: its body has a gap of " + std::to_string(bytes) + " bytes" +
                         where(),
                     time, bytes);
            }
            remaining -= bytes;
            state = State::Skip;
            body.clear();
            after_gap = true;
            if (remaining == 0) reset_message();
            return;
        }
        bool in_message = state != State::Headers || !buf.empty();
        if (state == State::Start || state == State::Resync) in_message = false;
        if (in_message) {
            note(NoteKind::Error,
                 "message cut by a gap of " + std::to_string(bytes) + " bytes" + where() +
                     "; dropped",
                 time, bytes);
        }
        after_gap = true;
        resync_reported = false;
        candidate_skip = 1;
        replay.clear();
        to_resync(time, false);
    }

    void finish(TimeNs time) {
        if (!replay.empty()) feed({}, time);
        switch (state) {
        case State::UntilClose:
            emit(time);
            break;
        case State::Body:
        case State::ChunkSize:
        case State::ChunkData:
        case State::ChunkCrlf:
        case State::Trailers:
            note(NoteKind::Warning,
                 std::string(msg.is_request ? "request" : "response") + " '" +
                     std::string(msg.start_line.substr(0, 80)) +
                     "' cut by the end of the stream (" + std::to_string(body.size()) +
                     " body bytes)" + where(),
                 time);
            msg.truncated = true;
            emit(time);
            break;
        case State::Headers:
            if (!buf.empty()) { // a message lost: an error, not a warning
                note(NoteKind::Error,
                     "stream ended inside the headers of a message (" + std::to_string(buf.size()) +
                         " bytes)" + where(),
                     time, buf.size());
            }
            break;
        default:
            break;
        }
        state = State::Discard;
        buf.clear();
        body.clear();
    }
};

HttpStreamParser::HttpStreamParser(HttpSink& sink, const Limits& limits, Context* context)
    : impl_(std::make_unique<Impl>(sink, limits, context)) {
    impl_->owner = this;
}
HttpStreamParser::~HttpStreamParser() = default;

void HttpStreamParser::set_identity(std::uint64_t connection_id, const FourTuple& tuple) {
    impl_->connection_id = connection_id;
    impl_->tuple = tuple;
}
void HttpStreamParser::feed(std::span<const std::uint8_t> data, TimeNs time) {
    impl_->feed(data, time);
}
void HttpStreamParser::gap(std::uint64_t bytes, TimeNs time) {
    impl_->gap(bytes, time);
}
void HttpStreamParser::finish(TimeNs time) {
    impl_->finish(time);
}
std::uint64_t HttpStreamParser::messages() const {
    return impl_->count;
}

} // namespace wec::capture

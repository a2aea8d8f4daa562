// TcpReassembler: per-connection, per-direction ordering of TCP segments feeding HTTP parsers.
#include "capture/tcp.hpp"

#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <unordered_map>

namespace wec::capture {
namespace {

struct Key {
    Endpoint a, b; // canonical order: a <= b

    static Key of(const FourTuple& t) {
        if (less(t.src, t.dst)) return {t.src, t.dst};
        return {t.dst, t.src};
    }
    static bool less(const Endpoint& x, const Endpoint& y) {
        if (x.family != y.family) return x.family < y.family;
        int c = std::memcmp(x.address.data(), y.address.data(), x.address.size());
        if (c != 0) return c < 0;
        return x.port < y.port;
    }
    friend bool operator==(const Key&, const Key&) = default;
};

struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept {
        std::uint64_t h = 1469598103934665603ULL;
        auto mix = [&h](const Endpoint& e) {
            std::uint64_t w[2];
            std::memcpy(w, e.address.data(), 16);
            h = (h ^ w[0]) * 1099511628211ULL;
            h = (h ^ w[1]) * 1099511628211ULL;
            h = (h ^ (static_cast<std::uint64_t>(e.port) << 8 | e.family)) * 1099511628211ULL;
        };
        mix(k.a);
        mix(k.b);
        return static_cast<std::size_t>(h ^ (h >> 29));
    }
};

// Counts messages and notes on their way to the user's sink.
class CountingSink : public HttpSink {
public:
    CountingSink(HttpSink& inner, Stats& stats) : inner_(inner), stats_(stats) {}
    void on_message(const HttpMessage& m) override {
        ++(m.is_request ? stats_.requests : stats_.responses);
        inner_.on_message(m);
    }
    void on_note(const Note& n) override {
        if (n.kind == NoteKind::Gap) {
            ++stats_.gaps;
            stats_.gap_bytes += n.bytes;
        } else if (n.kind == NoteKind::Error) {
            ++stats_.errors;
        }
        inner_.on_note(n);
    }

private:
    HttpSink& inner_;
    Stats& stats_;
};

constexpr std::size_t kMaxOutOfOrderSegments = 4096;

struct Pending {
    std::vector<std::uint8_t> data;
    TimeNs time = 0;
};

struct Connection;

struct Half {
    bool started = false;
    bool syn = false;
    bool fin = false;
    bool closed = false;
    std::uint32_t base = 0;   // sequence number of stream offset 0
    std::uint64_t next = 0;   // stream offset of the next expected byte
    std::uint64_t acked = 0;  // highest offset acknowledged by the peer
    std::uint64_t fin_at = 0; // stream offset of the FIN
    std::map<std::uint64_t, Pending> ooo;
    std::size_t ooo_bytes = 0;
    TimeNs last_time = 0;
    FourTuple tuple; // src = sender of this direction
    std::unique_ptr<HttpStreamParser> parser;

    // Stream offset of a sequence number, near `next`; negative when before the stream start.
    std::int64_t offset_of(std::uint32_t seq) const {
        auto delta = static_cast<std::int32_t>(seq - static_cast<std::uint32_t>(base + next));
        return static_cast<std::int64_t>(next) + delta;
    }
};

struct Connection : HttpStreamParser::Context {
    std::uint64_t id = 0;
    Key key;
    Half half[2];
    TimeNs last_seen = 0;
    std::list<Connection*>::iterator lru;
    struct Request {
        std::uint64_t index;
        bool head;
    };
    std::deque<Request> requests;
    std::uint64_t request_count = 0;

    bool next_response_is_to_head() override { return !requests.empty() && requests.front().head; }

    void complete(HttpMessage& m) {
        if (m.is_request) {
            m.direction = Direction::ClientToServer;
            requests.push_back({m.index, m.method == "HEAD"});
            if (requests.size() > 4096) requests.pop_front(); // unanswered: keep it bounded
            ++request_count;
        } else {
            m.direction = Direction::ServerToClient;
            if (!requests.empty()) {
                m.request_index = requests.front().index;
                if (m.status >= 200 || m.status == 101) requests.pop_front();
            }
        }
    }
};

} // namespace

struct TcpReassembler::Impl {
    Limits limits;
    Stats stats;
    CountingSink sink;
    std::unordered_map<Key, std::unique_ptr<Connection>, KeyHash> table;
    std::list<Connection*> lru; // least recently active first
    std::uint64_t next_id = 1;
    std::uint64_t segments_since_sweep = 0;
    std::uint64_t current_packet = 0; // of the segment being added (0 at the end)

    Impl(HttpSink& s, const Limits& l) : limits(l), sink(s, stats) {}

    Connection& create(const TcpSegment& s, const Key& key) {
        auto c = std::make_unique<Connection>();
        c->id = next_id++;
        c->key = key;
        for (int i = 0; i < 2; ++i) {
            Half& h = c->half[i];
            h.tuple = i == 0 ? s.tuple : FourTuple{s.tuple.dst, s.tuple.src};
            h.parser = std::make_unique<HttpStreamParser>(sink, limits, c.get());
            h.parser->set_identity(c->id, h.tuple);
            Connection* raw = c.get();
            h.parser->on_complete = [raw](HttpMessage& m) { raw->complete(m); };
        }
        ++stats.connections;
        Connection& ref = *c;
        lru.push_back(&ref);
        ref.lru = std::prev(lru.end());
        table.emplace(key, std::move(c));
        if (table.size() > limits.max_connections) {
            Connection* oldest = lru.front();
            if (oldest != &ref) {
                ++stats.evicted_connections;
                close(*oldest);
            }
        }
        return ref;
    }

    void note_gap(Half& h, Connection& c, std::uint64_t bytes, TimeNs time) {
        Note n;
        n.kind = NoteKind::Gap;
        n.connection_id = c.id;
        n.tuple = h.tuple;
        n.time = time;
        n.bytes = bytes;
        n.record = current_packet;
        n.text = std::to_string(bytes) + " bytes missing from the capture in " +
                 h.tuple.src.to_string() + " -> " + h.tuple.dst.to_string();
        sink.on_note(n);
        h.parser->gap(bytes, time);
    }

    void deliver(Half& h, std::span<const std::uint8_t> data, TimeNs time) {
        h.parser->feed(data, time);
        h.next += data.size();
    }

    // Delivers buffered segments that are now in order.
    void drain(Half& h) {
        while (!h.ooo.empty()) {
            auto it = h.ooo.begin();
            if (it->first > h.next) break;
            Pending p = std::move(it->second);
            std::uint64_t off = it->first;
            h.ooo.erase(it);
            h.ooo_bytes -= p.data.size();
            std::uint64_t end = off + p.data.size();
            if (end <= h.next) {
                stats.retransmitted_bytes += p.data.size();
                continue;
            }
            auto skip = static_cast<std::size_t>(h.next - off);
            stats.retransmitted_bytes += skip;
            deliver(h, std::span<const std::uint8_t>(p.data).subspan(skip), p.time);
        }
    }

    // Declares the bytes before the first buffered segment lost and delivers what follows.
    void skip_to_buffered(Half& h, Connection& c) {
        if (h.ooo.empty()) return;
        std::uint64_t first = h.ooo.begin()->first;
        if (first > h.next) {
            note_gap(h, c, first - h.next, h.ooo.begin()->second.time);
            h.next = first;
        }
        drain(h);
    }

    void data(Half& h, Connection& c, std::int64_t off, std::span<const std::uint8_t> payload,
              TimeNs time) {
        if (off < 0) { // before the first byte we started from
            auto before = static_cast<std::uint64_t>(-off);
            if (before >= payload.size()) {
                stats.retransmitted_bytes += payload.size();
                return;
            }
            payload = payload.subspan(static_cast<std::size_t>(before));
            off = 0;
        }
        auto uoff = static_cast<std::uint64_t>(off);
        std::uint64_t end = uoff + payload.size();
        if (end <= h.next) {
            stats.retransmitted_bytes += payload.size();
            return;
        }
        if (uoff < h.next) {
            auto trim = static_cast<std::size_t>(h.next - uoff);
            stats.retransmitted_bytes += trim;
            payload = payload.subspan(trim);
            uoff = h.next;
        }
        if (uoff > h.next && uoff <= h.acked) {
            // The peer acknowledged bytes we never saw: they are lost from the capture.
            skip_to_buffered(h, c);
            if (uoff > h.next) {
                note_gap(h, c, uoff - h.next, time);
                h.next = uoff;
            }
        }
        if (uoff == h.next) {
            deliver(h, payload, time);
            drain(h);
            return;
        }
        // Out of order: keep a copy (the longest one if this offset is already buffered).
        auto it = h.ooo.find(uoff);
        if (it != h.ooo.end()) {
            if (it->second.data.size() >= payload.size()) {
                stats.retransmitted_bytes += payload.size();
                return;
            }
            h.ooo_bytes -= it->second.data.size();
            it->second.data.assign(payload.begin(), payload.end());
            it->second.time = time;
        } else {
            h.ooo.emplace(uoff, Pending{{payload.begin(), payload.end()}, time});
        }
        h.ooo_bytes += payload.size();
        // Bounded: past the byte (or segment count) limit, the hole is declared lost.
        while (!h.ooo.empty() && (h.ooo_bytes > limits.max_out_of_order_bytes ||
                                  h.ooo.size() > kMaxOutOfOrderSegments)) {
            skip_to_buffered(h, c);
        }
    }

    void acknowledge(Half& h, Connection& c, std::uint32_t ack) {
        if (!h.started) return;
        std::int64_t off = h.offset_of(ack);
        if (off <= 0) return;
        auto uoff = static_cast<std::uint64_t>(off);
        if (h.fin && uoff > h.fin_at) uoff = h.fin_at; // the FIN takes one sequence number
        if (uoff <= h.acked) return;
        h.acked = uoff;
        // Buffered data the peer has acknowledged past a hole: the hole is lost.
        while (!h.ooo.empty() && h.ooo.begin()->first <= h.acked && h.ooo.begin()->first > h.next) {
            skip_to_buffered(h, c);
        }
        finish_half_if_done(h);
    }

    void finish_half_if_done(Half& h) {
        if (h.fin && !h.closed && h.next >= h.fin_at && h.ooo.empty()) {
            h.closed = true;
            h.parser->finish(h.last_time);
        }
    }

    void close(Connection& c) {
        for (auto& h : c.half) {
            if (!h.closed) {
                while (!h.ooo.empty())
                    skip_to_buffered(h, c);
                if (h.fin && h.next < h.fin_at) note_gap(h, c, h.fin_at - h.next, h.last_time);
                h.closed = true;
                h.parser->finish(h.last_time);
            }
        }
        lru.erase(c.lru);
        table.erase(c.key); // destroys c
    }

    void add(const TcpSegment& s) {
        ++stats.tcp_segments;
        current_packet = s.packet_index;
        Key key = Key::of(s.tuple);
        auto it = table.find(key);
        Connection* c = it == table.end() ? nullptr : it->second.get();
        bool syn_only = (s.flags & tcp_flags::kSyn) && !(s.flags & tcp_flags::kAck);
        if (c != nullptr && syn_only) {
            Half& h = c->half[c->half[0].tuple.src == s.tuple.src ? 0 : 1];
            // A new SYN on a known 4-tuple with another ISN: the port was reused.
            if (h.started && static_cast<std::uint32_t>(s.seq + 1) != h.base) {
                close(*c);
                c = nullptr;
            }
        }
        if (c == nullptr) {
            // Only a SYN or data opens a connection: a lone ACK, FIN or RST (e.g. the last ACK
            // of a closed connection) does not.
            if ((s.flags & tcp_flags::kRst) ||
                (s.payload.empty() && !(s.flags & tcp_flags::kSyn))) {
                return;
            }
            c = &create(s, key);
        }
        c->last_seen = s.time;
        lru.splice(lru.end(), lru, c->lru);
        int side = c->half[0].tuple.src == s.tuple.src ? 0 : 1;
        Half& h = c->half[side];
        Half& peer = c->half[1 - side];
        h.last_time = s.time;

        if (s.flags & tcp_flags::kSyn) {
            if (!h.started) {
                h.started = true;
                h.syn = true;
                h.base = s.seq + 1;
                h.next = 0;
            }
        } else if (!h.started && !(s.flags & tcp_flags::kRst)) {
            // Mid-stream: the start of this direction was not captured.
            h.started = true;
            h.base = s.seq;
            h.next = 0;
            h.parser->gap(0, s.time);
        }
        if (h.started && !h.closed) {
            std::int64_t off = h.offset_of(s.flags & tcp_flags::kSyn ? s.seq + 1 : s.seq);
            if (!s.payload.empty()) data(h, *c, off, s.payload, s.time);
            if ((s.flags & tcp_flags::kFin) && !h.fin) {
                h.fin = true;
                std::int64_t fin = off + static_cast<std::int64_t>(s.payload.size());
                h.fin_at = fin > 0 ? static_cast<std::uint64_t>(fin) : 0;
                if (h.fin_at < h.next) h.fin_at = h.next;
            }
            finish_half_if_done(h);
        }
        if (s.flags & tcp_flags::kAck) acknowledge(peer, *c, s.ack);
        if ((s.flags & tcp_flags::kRst) || (c->half[0].closed && c->half[1].closed)) {
            close(*c);
        }
        if (++segments_since_sweep >= 4096) {
            segments_since_sweep = 0;
            while (!lru.empty() && s.time > lru.front()->last_seen &&
                   s.time - lru.front()->last_seen > limits.idle_timeout) {
                close(*lru.front());
            }
        }
    }

    void finish() {
        current_packet = 0;
        while (!lru.empty())
            close(*lru.front());
    }
};

TcpReassembler::TcpReassembler(HttpSink& sink, const Limits& limits)
    : impl_(std::make_unique<Impl>(sink, limits)) {}
TcpReassembler::~TcpReassembler() = default;
void TcpReassembler::add(const TcpSegment& segment) {
    impl_->add(segment);
}
void TcpReassembler::finish() {
    impl_->finish();
}
std::size_t TcpReassembler::open_connections() const {
    return impl_->table.size();
}
const Stats& TcpReassembler::stats() const {
    return impl_->stats;
}

} // namespace wec::capture

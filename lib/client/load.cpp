#include "client/load.hpp"

#include "client/latency_internal.hpp"
#include "client/load_internal.hpp"
#include "sldc/sldc.hpp"
#include "text/text.hpp"

#include <algorithm>
#include <bit>
#include <boost/asio/io_context.hpp>
#include <charconv>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

namespace wec::client {

std::size_t events_fitting(std::span<const std::size_t> sizes, std::size_t max_envelope) {
    // Envelope overhead (headers, bookmark, w:Event wrappers) in UTF-16 bytes, generously.
    constexpr std::size_t kOverhead = 6000, kPerEvent = 260;
    std::size_t total = kOverhead, n = 0;
    for (auto s : sizes) {
        total += 2 * s + kPerEvent;
        if (total > max_envelope) break;
        ++n;
    }
    return std::max<std::size_t>(n, 1);
}

std::string load_machine_id(std::size_t id) {
    return "host-" + std::to_string(id) + ".windomain.local";
}

namespace {

// A generated event cut around its EventRecordID and Computer values, to be re-stamped per host.
struct EventTemplate {
    std::string_view head, middle, tail; // head RECORD middle COMPUTER tail (in the pool's text)
    // Every piece is ASCII and cannot form "]]>" with what is stamped around it: the event goes
    // into its CDATA section as it is and into UTF-16 by widening (EventPool::build16).
    bool plain = false;
    void stamp(std::uint64_t record, const std::string& computer, std::string& out) const {
        out.clear();
        out.reserve(head.size() + middle.size() + tail.size() + 40);
        out += head;
        out += std::to_string(record);
        out += middle;
        out += computer;
        out += tail;
    }
};

bool is_ascii(std::string_view s) {
    std::uint64_t high = 0; // the top bits of 8 bytes at a time
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, s.data() + i, sizeof w);
        high |= w;
    }
    for (; i < s.size(); ++i)
        high |= static_cast<unsigned char>(s[i]);
    return (high & 0x8080808080808080ull) == 0;
}

// Text that goes into a CDATA section as it is (no "]]>" inside) and cannot form "]]>" with what
// is put before or after it (does not start with '>' or ']', does not end with ']').
bool cdata_safe(std::string_view s) {
    return s.find("]]>") == std::string_view::npos &&
           (s.empty() || (s.front() != '>' && s.front() != ']' && s.back() != ']'));
}

EventTemplate cut(std::string_view e) {
    EventTemplate t;
    const std::string_view rid = "<EventRecordID>", rid_end = "</EventRecordID>";
    const std::string_view comp = "<Computer>", comp_end = "</Computer>";
    auto a = e.find(rid) + rid.size();
    auto b = e.find(rid_end, a);
    auto c = e.find(comp, b) + comp.size();
    auto d = e.find(comp_end, c);
    t.head = e.substr(0, a);
    t.middle = e.substr(b, c - b);
    t.tail = e.substr(d);
    t.plain = is_ascii(e) && cdata_safe(t.head) && cdata_safe(t.middle) && cdata_safe(t.tail);
    return t;
}

// Appends ASCII text as UTF-16LE (4 characters at a time: each byte spread to 16 bits).
void append_ascii16(std::string_view s, sldc::Buffer& out) {
    const std::size_t at = out.size();
    out.resize(at + 2 * s.size()); // not zero-filled: every byte is written below
    std::uint8_t* o = out.data() + at;
    std::size_t i = 0;
    if constexpr (std::endian::native == std::endian::little) {
        for (; i + 4 <= s.size(); i += 4) {
            std::uint32_t four;
            std::memcpy(&four, s.data() + i, sizeof four);
            std::uint64_t w = four;
            w = (w | (w << 16)) & 0x0000FFFF0000FFFFull;
            w = (w | (w << 8)) & 0x00FF00FF00FF00FFull;
            std::memcpy(o + 2 * i, &w, sizeof w);
        }
    }
    for (; i < s.size(); ++i) {
        o[2 * i] = static_cast<std::uint8_t>(s[i]);
        o[2 * i + 1] = 0;
    }
}

// What wsman::build_events writes around each event: `<w:Event Action="..."><![CDATA[` and
// `]]></w:Event>` (found by building a message of one marker event).
std::pair<std::string, std::string> event_wrapper() {
    const std::string_view marker = "\x01";
    const auto one = wsman::build_events({}, std::span<const std::string_view>(&marker, 1), "");
    const auto at = one.find(marker);
    const auto open = one.rfind("<w:Event ", at);
    const std::string_view close = "</w:Event>";
    const auto end = one.find(close, at) + close.size();
    return {one.substr(open, at - open), one.substr(at + 1, end - at - 1)};
}

struct Shared {
    std::mutex mutex;
    std::vector<std::uint32_t> latencies_us;
    std::set<std::string> errors;
    std::string setup_error;
    std::uint64_t soap_bytes = 0;
    double setup_cpu = 0, prepare_cpu = 0, send_cpu = 0;
    std::chrono::steady_clock::time_point first{std::chrono::steady_clock::time_point::max()};
    std::chrono::steady_clock::time_point last{};

    std::map<std::size_t, HostTally> hosts;

    void error(const std::string& e) {
        std::lock_guard lock(mutex);
        if (errors.size() < 8) errors.insert(e);
    }
};

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Payload {
    std::vector<std::uint8_t> sldc;
    std::string message_id;
    std::size_t events = 0;
    std::size_t soap_bytes = 0;
};

// A subscription as a host holds it, with the time of its last message (Heartbeat timer).
struct Offered {
    wsman::Subscription subscription;
    Clock::time_point last_sent;
};

// The Events message a host is sending: built once, resent as is until acknowledged.
struct Pending {
    std::vector<std::string> events;  // uncompressed live messages only
    const Payload* payload = nullptr; // one of the host's `payloads` (cycled), or `&owned`
    Payload owned;                    // taken from the host's `prepared`
    // Compressed live messages: the pool position of the first event, rendered (again, on a
    // resend) into the worker's buffers by EventPool::build16.
    bool live16 = false;
    std::size_t cursor = 0;
    std::size_t soap_bytes = 0; // of the last rendering
    std::string bookmark;
    std::size_t count = 0;
    bool active = false;
};

struct Host {
    std::size_t id = 0;
    std::string machine;
    std::uint64_t sent = 0;
    std::uint64_t acked = 0;
    std::unique_ptr<Source> source;
    std::vector<Payload> payloads;
    std::size_t next_payload = 0;
    std::deque<Payload> prepared;           // LoadOptions::prepare_all: the next messages, in order
    std::map<std::string, Offered> offered; // by name, from the last Enumerate
    std::string target;                     // the subscription the events go to
    std::uint64_t remaining = 0;
    std::uint64_t record = kLoadFirstRecord - 1; // the last record sent
    Pending pending;
    // Windows' retry state: consecutive failures, the rounds of retries spent (a round ends with
    // a new Enumerate), when the next attempt may be made.
    unsigned failures = 0;
    unsigned rounds = 0;
    bool needs_enumerate = false;
    Clock::time_point wait_until{};
    Clock::time_point next_refresh = Clock::time_point::max();
    Clock::time_point idle_until = Clock::time_point::max(); // set once its events are acked
    bool done = false;
    bool gave_up = false;

    const wsman::Subscription& subscription() const { return offered.at(target).subscription; }
};

milliseconds heartbeat_interval(const wsman::Subscription& s) {
    return milliseconds(
        std::max<std::uint64_t>(wsman::parse_duration_ms(s.heartbeats).value_or(3600000), 100));
}

// A generated event pool (generation is not what is measured), re-stamped per host.
class EventPool {
public:
    EventPool(std::size_t thread_index, std::size_t size) {
        EventGenerator gen("host-" + std::to_string(thread_index) + ".windomain.local",
                           thread_index + 1);
        // One block for the text of every event (not thousands of strings, each growing the
        // thread's heap): the templates are views into it, made once it is complete.
        size = std::max<std::size_t>(size, 1);
        text_.reserve(size * 2300);
        std::vector<std::size_t> ends;
        for (std::size_t i = 0; i < size; ++i) {
            const auto e = gen.next();
            sizes_.push_back(e.size() + 32);
            text_ += e;
            ends.push_back(text_.size());
        }
        std::size_t start = 0;
        for (const auto end : ends) {
            pool_.push_back(cut(std::string_view(text_).substr(start, end - start)));
            start = end;
        }
        std::tie(event_open_, event_close_) = event_wrapper();
    }
    EventPool(const EventPool&) = delete; // the templates point into text_
    EventPool& operator=(const EventPool&) = delete;
    // The next batch of `h`: at most `want` events fitting the subscription's MaxEnvelopeSize,
    // with h's own Computer and the record ids after h.record.
    void take(std::size_t want, const Host& h, std::vector<std::string>& out) {
        take(want, h.subscription(), h.machine, h.record, out);
    }
    // The same for a host whose last record is `record`.
    void take(std::size_t want, const wsman::Subscription& sub, const std::string& machine,
              std::uint64_t record, std::vector<std::string>& out) {
        const std::size_t first = cursor_;
        const std::size_t n = reserve(want, sub);
        out.resize(n);
        for (std::size_t i = 0; i < n; ++i)
            pool_[(first + i) % pool_.size()].stamp(record + 1 + i, machine, out[i]);
    }
    // Where the next batch starts; reserve() then takes its events (at most `want`, fitting the
    // subscription's MaxEnvelopeSize) and returns how many: build16() renders them.
    std::size_t cursor() const { return cursor_; }
    std::size_t reserve(std::size_t want, const wsman::Subscription& sub) {
        if (sub.max_elements && *sub.max_elements > 0)
            want = std::min<std::size_t>(want, *sub.max_elements);
        batch_sizes_.clear();
        for (std::size_t i = 0; i < want; ++i)
            batch_sizes_.push_back(sizes_[(cursor_ + i) % pool_.size()]);
        const std::size_t n =
            std::min(events_fitting(batch_sizes_, sub.max_envelope_size.value_or(512000)), want);
        cursor_ += n;
        return n;
    }
    // The Events message of the `n` events from `first` (records after `record`, `machine`'s
    // Computer) in UTF-16LE with its BOM, replacing `out`: the bytes of
    // text::utf8_to_utf16le(wsman::build_events(...), true), without the UTF-8 message between.
    void build16(const wsman::SourceHeaders& headers, std::size_t first, std::size_t n,
                 const std::string& machine, std::uint64_t record, std::string_view bookmark,
                 sldc::Buffer& out) {
        const bool plain_machine = is_ascii(machine) && cdata_safe(machine);
        bool plain = plain_machine && is_ascii(bookmark);
        for (std::size_t i = 0; i < n && plain; ++i)
            plain = pool_[(first + i) % pool_.size()].plain;
        out.clear();
        if (!plain) { // not met by generated events: the generic way
            events_.resize(n);
            for (std::size_t i = 0; i < n; ++i)
                pool_[(first + i) % pool_.size()].stamp(record + 1 + i, machine, events_[i]);
            views_.assign(events_.begin(), events_.end());
            const auto utf16 =
                text::utf8_to_utf16le(wsman::build_events(headers, views_, bookmark), true);
            out.assign(utf16.begin(), utf16.end());
            return;
        }
        const auto envelope = wsman::build_events(headers, {}, bookmark);
        const std::string_view end = "</w:Events></s:Body></s:Envelope>";
        const std::string_view head(envelope.data(), envelope.size() - end.size());
        out.reserve(2 * (envelope.size() + n * (sizes_[first % pool_.size()] + 200)));
        out.push_back(0xFF); // BOM
        out.push_back(0xFE);
        if (is_ascii(head)) {
            append_ascii16(head, out);
        } else {
            const auto utf16 = text::utf8_to_utf16le(head);
            out.insert(out.end(), utf16.begin(), utf16.end());
        }
        char digits[24];
        for (std::size_t i = 0; i < n; ++i) {
            const EventTemplate& t = pool_[(first + i) % pool_.size()];
            append_ascii16(event_open_, out);
            append_ascii16(t.head, out);
            const auto r = std::to_chars(digits, digits + sizeof digits, record + 1 + i);
            append_ascii16(std::string_view(digits, static_cast<std::size_t>(r.ptr - digits)), out);
            append_ascii16(t.middle, out);
            append_ascii16(machine, out);
            append_ascii16(t.tail, out);
            append_ascii16(event_close_, out);
        }
        append_ascii16(end, out);
    }

private:
    std::string text_; // every event's text, one after the other
    std::vector<EventTemplate> pool_;
    std::vector<std::size_t> sizes_;
    std::size_t cursor_ = 0;
    std::string event_open_, event_close_;
    std::vector<std::size_t> batch_sizes_; // reserve()'s scratch
    std::vector<std::string> events_;      // build16()'s scratch (generic way)
    std::vector<std::string_view> views_;
};

// The hosts of one thread, driven one blocking request at a time: set-up (Enumerate, End, push
// connection), the event pool, optional precompression, then the loop that sends each host's
// batches, retries, Heartbeats and refreshes as they fall due.
class Worker {
public:
    Worker(const LoadOptions& o, std::size_t thread_index, Shared& shared, LoadProgress& progress)
        : o_(o), shared_(shared), progress_(progress), pool_(thread_index, o.pregenerated),
          thread_rate_(o.rate > 0 ? o.rate / static_cast<double>(o.threads) : 0) {}

    void setup(const std::vector<std::size_t>& host_ids);
    void precompress();
    void prepare_all();
    void run();
    void finish();

    double setup_cpu = 0, prepare_cpu = 0, send_cpu = 0; // this thread's, by phase

private:
    void enumerate(Host& h);
    void step(Host& h);
    bool heartbeat_due(Host& h, Clock::time_point now);
    void send_batch(Host& h);
    void acked(Host& h, const Ack& ack);
    void failed(Host& h, const std::exception& e);
    void give_up(Host& h);
    Clock::time_point wake(const Host& h) const;
    milliseconds retry_wait(const Host& h, const std::exception& e) const;

    const LoadOptions& o_;
    Shared& shared_;
    LoadProgress& progress_;
    EventPool pool_;
    std::shared_ptr<boost::asio::io_context> io_ = std::make_shared<boost::asio::io_context>(1);
    // Greedy by default (LoadOptions::level): the optimal parse was the generator's bottleneck.
    std::shared_ptr<sldc::Compressor> compressor_ = std::make_shared<sldc::Compressor>(o_.level);
    // A message being built: its UTF-16 SOAP and compressed record, reused from one to the next
    // (no allocation, no page faults per batch).
    sldc::Buffer soap16_;
    sldc::Buffer sldc_;
    std::vector<Host> hosts_;
    std::vector<std::uint32_t> latencies_;
    std::uint64_t soap_bytes_ = 0;
    Clock::time_point first_ = Clock::now();
    Clock::time_point last_ = Clock::now();
    bool any_ = false;
    const double thread_rate_; // --rate: this thread's share, paced from the first send
    std::uint64_t thread_sent_ = 0;
};

// Enumerate + End: the subscriptions offered now. A subscription no longer offered gets a
// SubscriptionEnd; one whose version changed is replaced (new NotifyTo, query, limits). Throws
// when the events' subscription is not offered.
void Worker::enumerate(Host& h) {
    auto subs = h.source->enumerate();
    progress_.enumerations += 1;
    h.source->end();
    const auto now = Clock::now();
    std::map<std::string, Offered> next;
    std::string first = subs.empty() ? std::string() : subs.front().name;
    for (auto& s : subs) {
        std::string name = s.name;
        // Not needed once parsed (the generator does not evaluate the query): memory per host.
        std::string().swap(s.envelope);
        std::string().swap(s.query);
        auto old = h.offered.find(name);
        auto last = old == h.offered.end() ? now : old->second.last_sent;
        next.emplace(std::move(name), Offered{std::move(s), last});
    }
    for (const auto& [name, old] : h.offered) {
        if (next.count(name)) continue;
        try {
            h.source->subscription_end(old.subscription);
            progress_.subscription_ends += 1;
        } catch (const std::exception& e) {
            progress_.errors += 1;
            shared_.error(std::string("SubscriptionEnd of '") + name + "': " + e.what());
        }
    }
    h.offered = std::move(next);
    if (o_.subscription.empty() && (h.target.empty() || !h.offered.count(h.target)))
        h.target = first;
    if (!o_.subscription.empty()) h.target = o_.subscription;
    if (h.target.empty() || !h.offered.count(h.target))
        throw ClientError(ErrorKind::Protocol,
                          (h.target.empty() ? std::string("no subscription")
                                            : "subscription '" + h.target + "'") +
                              " is not offered to " + h.machine + " (" +
                              std::to_string(subs.size()) + " offered)");
    if (o_.refresh.count() > 0) h.next_refresh = now + o_.refresh;
}

void Worker::setup(const std::vector<std::size_t>& host_ids) {
    std::uint64_t per_host = o_.events / std::max<std::size_t>(o_.hosts, 1);
    std::uint64_t extra = o_.events % std::max<std::size_t>(o_.hosts, 1);
    for (auto id : host_ids) {
        Host h;
        h.id = id;
        SourceOptions so = o_.source;
        so.io_context = io_; // one epoll set for the thread's hosts (they take turns)
        so.compressor = compressor_;
        if (!o_.ccaches.empty()) so.ccache = o_.ccaches[id % o_.ccaches.size()];
        so.machine_id = load_machine_id(id);
        h.machine = so.machine_id;
        h.source = std::make_unique<Source>(so);
        h.remaining = per_host + (id < extra ? 1 : 0);
        try {
            enumerate(h);
            h.source->push_connection(h.subscription()); // connect + authenticate before timing
            progress_.hosts_connected += 1;
            if (h.remaining == 0) h.idle_until = Clock::now() + o_.idle;
        } catch (const std::exception& e) {
            std::lock_guard lock(shared_.mutex);
            if (shared_.setup_error.empty()) shared_.setup_error = e.what();
            progress_.batches_failed += 1;
            continue;
        }
        hosts_.push_back(std::move(h));
    }
}

// --precompressed: each host's first messages, SLDC-compressed before the clock starts. Built
// as send_batch builds a live message (straight into UTF-16, compressed into the reused
// buffers): the bytes of utf8_to_utf16le(build_events(...)) without the copies between.
void Worker::precompress() {
    if (o_.precompressed == 0) return;
    for (auto& h : hosts_) {
        for (std::size_t k = 0; k < o_.precompressed; ++k) {
            const std::size_t first = pool_.cursor();
            const std::size_t n = pool_.reserve(o_.batch, h.subscription());
            auto headers = h.source->headers_for(h.subscription());
            pool_.build16(headers, first, n, h.machine, h.record,
                          security_bookmark(h.record + (k + 1) * n), soap16_);
            compressor_->compress(soap16_, sldc_);
            Payload p;
            p.sldc.assign(sldc_.begin(), sldc_.end()); // kept: its exact size only
            p.message_id = headers.message_id;
            p.events = n;
            p.soap_bytes = soap16_.size();
            h.payloads.push_back(std::move(p));
        }
    }
}

// --precompress (LoadOptions::prepare_all): every Events message of every host, rendered and
// compressed as send_batch would build it live, before the clock starts.
void Worker::prepare_all() {
    if (!o_.prepare_all || !o_.source.compress) return;
    for (auto& h : hosts_) {
        std::uint64_t record = h.record;
        for (std::uint64_t left = h.remaining; left > 0;) {
            const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(left, o_.batch));
            const std::size_t first = pool_.cursor();
            const std::size_t n = pool_.reserve(want, h.subscription());
            auto headers = h.source->headers_for(h.subscription());
            pool_.build16(headers, first, n, h.machine, record, security_bookmark(record + n),
                          soap16_);
            Payload p;
            compressor_->compress(soap16_, sldc_);
            p.sldc.assign(sldc_.begin(), sldc_.end()); // kept: its exact size only
            p.message_id = headers.message_id;
            p.events = n;
            p.soap_bytes = soap16_.size();
            h.prepared.push_back(std::move(p));
            record += n;
            left -= n;
        }
    }
}

// The wait before resending: the subscription's ConnectionRetry interval (or --retry-interval,
// never longer), shortened to the reply's Retry-After when it says less.
milliseconds Worker::retry_wait(const Host& h, const std::exception& e) const {
    milliseconds interval(60000);
    if (auto it = h.offered.find(h.target); it != h.offered.end())
        interval = milliseconds(
            wsman::parse_duration_ms(it->second.subscription.connection_retry).value_or(60000));
    if (o_.retry_interval) interval = std::min(interval, *o_.retry_interval);
    if (const auto* ce = dynamic_cast<const ClientError*>(&e); ce && ce->retry_after().count() > 0)
        interval = std::min<milliseconds>(interval, ce->retry_after());
    return interval;
}

void Worker::give_up(Host& h) {
    if (h.pending.active) {
        h.sent += h.pending.count;
        h.pending = {};
    }
    progress_.batches_failed += 1;
    progress_.hosts_connected -= 1;
    h.remaining = 0;
    h.done = true;
    h.gave_up = true;
}

// A request failed: resend after the retry interval, up to the subscription's Total; then
// Enumerate again and start one more round; after that round, the host gives up.
void Worker::failed(Host& h, const std::exception& e) {
    shared_.error(e.what());
    progress_.errors += 1;
    h.source->reset(); // the connection's state is unknown: connect and authenticate anew
    if (o_.retry_interval && o_.retry_interval->count() == 0) return give_up(h);
    unsigned total = 5;
    if (auto it = h.offered.find(h.target); it != h.offered.end())
        total = it->second.subscription.connection_retry_total.value_or(5);
    if (++h.failures > total) {
        if (h.rounds > 0) return give_up(h);
        h.rounds += 1;
        h.failures = 0;
        h.needs_enumerate = true;
    }
    progress_.retries += 1;
    h.wait_until = Clock::now() + retry_wait(h, e);
}

void Worker::acked(Host& h, const Ack& ack) {
    latencies_.push_back(static_cast<std::uint32_t>(ack.latency.count()));
    const auto count = h.pending.count;
    h.record += count;
    h.sent += count;
    h.acked += count;
    h.remaining -= count;
    if (h.pending.payload)
        soap_bytes_ += h.pending.payload->soap_bytes;
    else if (h.pending.live16)
        soap_bytes_ += h.pending.soap_bytes;
    else
        for (const auto& e : h.pending.events)
            soap_bytes_ += 2 * e.size();
    progress_.events_acked += count;
    progress_.batches_ok += 1;
    h.pending.active = false;
    h.pending.payload = nullptr;
    h.pending.owned = Payload{}; // a prepared message's memory, once acknowledged
    h.failures = 0;
    h.rounds = 0;
    last_ = Clock::now();
    h.offered.at(h.target).last_sent = last_;
    if (h.remaining == 0) h.idle_until = last_ + o_.idle;
}

// The next batch of `h` (or the one to resend), paced by --rate.
void Worker::send_batch(Host& h) {
    auto& p = h.pending;
    if (!p.active) {
        p.payload = nullptr;
        if (!h.prepared.empty()) {
            p.owned = std::move(h.prepared.front());
            h.prepared.pop_front();
            p.payload = &p.owned;
        } else if (!h.payloads.empty()) {
            p.payload = &h.payloads[h.next_payload++ % h.payloads.size()];
            if (p.payload->events > h.remaining) p.payload = nullptr; // the tail: built live
        }
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(h.remaining, o_.batch));
        p.live16 = !p.payload && o_.source.compress;
        if (p.live16) {
            p.cursor = pool_.cursor();
            p.count = pool_.reserve(want, h.subscription());
        } else {
            if (!p.payload) pool_.take(want, h, p.events);
            p.count = p.payload ? p.payload->events : p.events.size();
        }
        p.bookmark = security_bookmark(h.record + p.count);
        p.active = true;
        if (thread_rate_ > 0 && any_)
            std::this_thread::sleep_until(
                first_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                             static_cast<double>(thread_sent_) / thread_rate_)));
        if (!any_) {
            first_ = Clock::now();
            any_ = true;
        }
        progress_.events_sent += p.count;
        thread_sent_ += p.count;
    }
    try {
        if (p.live16) { // rendered (again) straight into UTF-16, compressed into reused buffers
            const auto& sub = h.subscription();
            const auto headers = h.source->headers_for(sub);
            pool_.build16(headers, p.cursor, p.count, h.machine, h.record, p.bookmark, soap16_);
            compressor_->compress(soap16_, sldc_);
            p.soap_bytes = soap16_.size();
            return acked(h, h.source->send_compressed(sub, sldc_, headers.message_id));
        }
        auto ack = p.payload
                       ? h.source->send_compressed(h.subscription(), p.payload->sldc,
                                                   p.payload->message_id)
                       : h.source->send_events(h.subscription(),
                                               std::span<const std::string>(p.events), p.bookmark);
        acked(h, ack);
    } catch (const std::exception& e) {
        failed(h, e);
    }
}

// Sends one Heartbeat to a subscription idle past its heartbeat interval; false when none is due.
bool Worker::heartbeat_due(Host& h, Clock::time_point now) {
    for (auto& [name, off] : h.offered) {
        if (now - off.last_sent < heartbeat_interval(off.subscription)) continue;
        try {
            h.source->heartbeat(off.subscription);
            off.last_sent = Clock::now();
            progress_.heartbeats += 1;
            h.failures = 0;
            h.rounds = 0;
        } catch (const std::exception& e) {
            failed(h, e);
        }
        return true;
    }
    return false;
}

// One action of `h` that is due: Enumerate (after a round of retries, or Refresh), a Heartbeat,
// a batch, or the end of its idle time.
void Worker::step(Host& h) {
    auto now = Clock::now();
    if (h.done || now < h.wait_until) return;
    if (h.needs_enumerate || now >= h.next_refresh) {
        // The prepared messages carry the old subscription's headers: build the rest live.
        h.prepared.clear();
        try {
            enumerate(h);
            h.needs_enumerate = false;
        } catch (const std::exception& e) {
            h.needs_enumerate = true;
            failed(h, e);
        }
        return;
    }
    if (heartbeat_due(h, now)) return;
    if (h.remaining > 0) return send_batch(h);
    if (now >= h.idle_until) h.done = true;
}

// When `h` next has something to do.
Clock::time_point Worker::wake(const Host& h) const {
    if (h.done) return Clock::time_point::max();
    if (h.wait_until > Clock::now()) return h.wait_until;
    if (h.needs_enumerate || h.remaining > 0) return Clock::time_point::min();
    auto t = std::min(h.idle_until, h.next_refresh);
    for (const auto& [name, off] : h.offered)
        t = std::min(t, off.last_sent + heartbeat_interval(off.subscription));
    return t;
}

void Worker::run() {
    for (;;) {
        auto next = Clock::time_point::max();
        for (auto& h : hosts_) {
            if (wake(h) <= Clock::now()) step(h);
            next = std::min(next, wake(h));
        }
        if (next == Clock::time_point::max()) break; // every host is done
        if (next > Clock::now()) std::this_thread::sleep_until(next);
    }
}

void Worker::finish() {
    for (const auto& h : hosts_)
        if (!h.gave_up) progress_.hosts_connected -= 1; // the others did when they gave up
    std::lock_guard lock(shared_.mutex);
    for (const auto& h : hosts_)
        shared_.hosts[h.id] = HostTally{h.machine, h.sent, h.acked};
    shared_.latencies_us.insert(shared_.latencies_us.end(), latencies_.begin(), latencies_.end());
    shared_.soap_bytes += soap_bytes_;
    shared_.setup_cpu += setup_cpu;
    shared_.prepare_cpu += prepare_cpu;
    shared_.send_cpu += send_cpu;
    if (any_) {
        shared_.first = std::min(shared_.first, first_);
        shared_.last = std::max(shared_.last, last_);
    }
}

double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void run_thread(const LoadOptions& o, std::vector<std::size_t> host_ids, std::size_t thread_index,
                Shared& shared, LoadProgress& progress) {
    Worker w(o, thread_index, shared, progress);
    const double t0 = thread_cpu_seconds();
    w.setup(host_ids);
    const double t1 = thread_cpu_seconds();
    w.precompress();
    w.prepare_all();
    const double t2 = thread_cpu_seconds();
    w.run();
    const double t3 = thread_cpu_seconds();
    w.setup_cpu = t1 - t0;
    w.prepare_cpu = t2 - t1;
    w.send_cpu = t3 - t2;
    w.finish();
}

} // namespace

LoadResult run_load(const LoadOptions& options, LoadProgress* progress) {
    LoadOptions o = options;
    // https: the client certificate is loaded once and shared by every host's connections.
    if (o.source.manager.tls && !o.source.tls_context)
        o.source.tls_context = make_tls_context(o.source.tls);
    o.hosts = std::max<std::size_t>(o.hosts, 1);
    o.threads = std::clamp<std::size_t>(o.threads, 1, o.hosts);
    o.batch = std::max<std::size_t>(o.batch, 1);
    LoadProgress local;
    LoadProgress& p = progress ? *progress : local;
    Shared shared;
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < o.threads; ++t) {
        std::vector<std::size_t> ids;
        for (std::size_t h = t; h < o.hosts; h += o.threads)
            ids.push_back(h);
        threads.emplace_back(run_thread, std::cref(o), std::move(ids), t, std::ref(shared),
                             std::ref(p));
    }
    for (auto& t : threads)
        t.join();

    LoadResult r;
    r.events_acked = p.events_acked;
    r.batches_ok = p.batches_ok;
    r.batches_failed = p.batches_failed;
    r.retries = p.retries;
    r.request_errors = p.errors;
    r.heartbeats = p.heartbeats;
    r.enumerations = p.enumerations;
    r.subscription_ends = p.subscription_ends;
    r.bytes_sent_soap = shared.soap_bytes;
    r.setup_cpu_seconds = shared.setup_cpu;
    r.prepare_cpu_seconds = shared.prepare_cpu;
    r.send_cpu_seconds = shared.send_cpu;
    r.errors.assign(shared.errors.begin(), shared.errors.end());
    r.setup_error = shared.setup_error;
    for (auto& [id, tally] : shared.hosts)
        r.hosts.push_back(std::move(tally));
    if (shared.last > shared.first)
        r.seconds = std::chrono::duration<double>(shared.last - shared.first).count();
    if (r.seconds > 0) r.events_per_second = static_cast<double>(r.events_acked) / r.seconds;
    const auto lat = detail::summarize_latencies(shared.latencies_us);
    r.p50_ms = lat.p50_ms;
    r.p99_ms = lat.p99_ms;
    r.max_ms = lat.max_ms;
    return r;
}

namespace detail {

std::vector<std::uint8_t> pool_message16(const PoolMessage& m, bool direct) {
    EventPool pool(m.thread_index, m.pool_size);
    wsman::Subscription sub;
    sub.max_envelope_size = 512000000; // no cut: `count` events
    pool.reserve(m.skip, sub);
    const std::size_t first = pool.cursor();
    if (direct) {
        const std::size_t n = pool.reserve(m.count, sub);
        sldc::Buffer out;
        pool.build16(m.headers, first, n, m.machine, m.record, m.bookmark, out);
        return {out.begin(), out.end()};
    }
    std::vector<std::string> events;
    pool.take(m.count, sub, m.machine, m.record, events);
    const std::vector<std::string_view> views(events.begin(), events.end());
    return text::utf8_to_utf16le(wsman::build_events(m.headers, views, m.bookmark), true);
}

} // namespace detail

} // namespace wec::client

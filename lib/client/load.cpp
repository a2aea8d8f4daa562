#include "client/load.hpp"

#include "client/latency.hpp"
#include "sldc/sldc.hpp"
#include "text/text.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>

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
    std::string head, middle, tail; // head RECORD middle COMPUTER tail
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

EventTemplate cut(const std::string& e) {
    EventTemplate t;
    const std::string rid = "<EventRecordID>", rid_end = "</EventRecordID>";
    const std::string comp = "<Computer>", comp_end = "</Computer>";
    auto a = e.find(rid) + rid.size();
    auto b = e.find(rid_end, a);
    auto c = e.find(comp, b) + comp.size();
    auto d = e.find(comp_end, c);
    t.head = e.substr(0, a);
    t.middle = e.substr(b, c - b);
    t.tail = e.substr(d);
    return t;
}

struct Shared {
    std::mutex mutex;
    std::vector<std::uint32_t> latencies_us;
    std::set<std::string> errors;
    std::string setup_error;
    std::uint64_t soap_bytes = 0;
    std::chrono::steady_clock::time_point first{std::chrono::steady_clock::time_point::max()};
    std::chrono::steady_clock::time_point last{};

    std::map<std::size_t, HostTally> hosts;

    void error(const std::string& e) {
        std::lock_guard lock(mutex);
        if (errors.size() < 8) errors.insert(e);
    }
};

struct Payload {
    std::vector<std::uint8_t> sldc;
    std::string message_id;
    std::size_t events = 0;
    std::size_t soap_bytes = 0;
};

struct Host {
    std::size_t id = 0;
    std::string machine;
    std::uint64_t sent = 0;
    std::uint64_t acked = 0;
    std::unique_ptr<Source> source;
    std::vector<Payload> payloads;
    std::size_t next_payload = 0;
    wsman::Subscription subscription;
    std::uint64_t remaining = 0;
    std::uint64_t record = kLoadFirstRecord - 1; // the last record sent
};

void run_thread(const LoadOptions& o, std::vector<std::size_t> host_ids, std::size_t thread_index,
                Shared& shared, LoadProgress& progress) {
    std::vector<Host> hosts;
    std::uint64_t per_host = o.events / std::max<std::size_t>(o.hosts, 1);
    std::uint64_t extra = o.events % std::max<std::size_t>(o.hosts, 1);
    for (auto id : host_ids) {
        Host h;
        h.id = id;
        SourceOptions so = o.source;
        if (!o.ccaches.empty()) so.ccache = o.ccaches[id % o.ccaches.size()];
        so.machine_id = load_machine_id(id);
        h.machine = so.machine_id;
        h.source = std::make_unique<Source>(so);
        h.remaining = per_host + (id < extra ? 1 : 0);
        try {
            auto subs = h.source->enumerate();
            auto it = std::find_if(subs.begin(), subs.end(), [&](const wsman::Subscription& s) {
                return o.subscription.empty() || s.name == o.subscription;
            });
            if (it == subs.end())
                throw Error(ErrorKind::Protocol, "subscription '" + o.subscription +
                                                     "' is not offered to " + so.machine_id + " (" +
                                                     std::to_string(subs.size()) + " offered)");
            h.subscription = *it;
            h.source->end();
            h.source->push_connection(h.subscription); // connect + authenticate before timing
            progress.hosts_connected += 1;
        } catch (const std::exception& e) {
            std::lock_guard lock(shared.mutex);
            if (shared.setup_error.empty()) shared.setup_error = e.what();
            progress.batches_failed += 1;
            continue;
        }
        hosts.push_back(std::move(h));
    }

    // A pool of distinct events (generation is not what is measured).
    EventGenerator gen("host-" + std::to_string(thread_index) + ".windomain.local",
                       thread_index + 1);
    std::vector<EventTemplate> pool;
    std::vector<std::size_t> sizes;
    for (std::size_t i = 0; i < std::max<std::size_t>(o.pregenerated, 1); ++i) {
        auto e = gen.next();
        sizes.push_back(e.size() + 32);
        pool.push_back(cut(e));
    }
    std::size_t cursor = 0;
    std::vector<std::string> stamped; // the events of the batch being built, reused
    // The next batch of `h`: its own Computer and the record ids after h.record.
    auto take_batch = [&](std::size_t want, const Host& h, std::vector<std::string_view>& batch) {
        batch.clear();
        std::vector<std::size_t> batch_sizes;
        for (std::size_t i = 0; i < want; ++i)
            batch_sizes.push_back(sizes[(cursor + i) % pool.size()]);
        std::size_t fit =
            events_fitting(batch_sizes, h.subscription.max_envelope_size.value_or(512000));
        // The subscription's MaxElements caps the events of one message, as Windows honours it.
        std::size_t n = std::min({fit, want,
                                  static_cast<std::size_t>(h.subscription.max_elements.value_or(
                                      std::numeric_limits<std::uint32_t>::max()))});
        n = std::max<std::size_t>(n, 1);
        if (stamped.size() < n) stamped.resize(n);
        for (std::size_t i = 0; i < n; ++i) {
            pool[(cursor + i) % pool.size()].stamp(h.record + 1 + i, h.machine, stamped[i]);
            batch.push_back(stamped[i]);
        }
        cursor += n;
    };
    if (o.precompressed > 0) {
        sldc::Compressor compressor;
        std::vector<std::string_view> batch;
        for (auto& h : hosts) {
            for (std::size_t k = 0; k < o.precompressed; ++k) {
                take_batch(o.batch, h, batch);
                auto headers = h.source->headers_for(h.subscription);
                std::string bookmark = "<BookmarkList><Bookmark Channel=\"Security\" RecordId=\"" +
                                       std::to_string(h.record + (k + 1) * batch.size()) +
                                       "\" IsCurrent=\"true\"/></BookmarkList>";
                auto utf16 =
                    text::utf8_to_utf16le(wsman::build_events(headers, batch, bookmark), true);
                Payload p;
                p.sldc = compressor.compress(utf16);
                p.message_id = headers.message_id;
                p.events = batch.size();
                p.soap_bytes = utf16.size();
                h.payloads.push_back(std::move(p));
            }
        }
    }
    std::vector<std::uint32_t> latencies;
    std::uint64_t soap_bytes = 0;
    auto first = std::chrono::steady_clock::now();
    bool any = false;
    // --rate: this thread's share, paced from the first send.
    const double thread_rate = o.rate > 0 ? o.rate / static_cast<double>(o.threads) : 0;
    std::uint64_t thread_sent = 0;
    for (bool work = true; work;) {
        work = false;
        for (auto& h : hosts) {
            if (h.remaining == 0) continue;
            work = true;
            if (thread_rate > 0 && any) {
                auto due = first + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                       std::chrono::duration<double>(
                                           static_cast<double>(thread_sent) / thread_rate));
                std::this_thread::sleep_until(due);
            }
            std::size_t want =
                static_cast<std::size_t>(std::min<std::uint64_t>(h.remaining, o.batch));
            std::vector<std::string_view> batch;
            const Payload* payload = nullptr;
            if (!h.payloads.empty()) {
                payload = &h.payloads[h.next_payload++ % h.payloads.size()];
                if (payload->events > h.remaining) payload = nullptr; // the tail: built live
            }
            if (!payload) take_batch(want, h, batch);
            std::size_t count = payload ? payload->events : batch.size();
            std::string bookmark = "<BookmarkList><Bookmark Channel=\"Security\" RecordId=\"" +
                                   std::to_string(h.record + count) +
                                   "\" IsCurrent=\"true\"/></BookmarkList>";
            if (!any) {
                first = std::chrono::steady_clock::now();
                any = true;
            }
            progress.events_sent += count;
            thread_sent += count;
            try {
                auto ack = payload ? h.source->send_compressed(h.subscription, payload->sldc,
                                                               payload->message_id)
                                   : h.source->send_events(h.subscription, batch, bookmark);
                latencies.push_back(static_cast<std::uint32_t>(ack.latency.count()));
                h.record += count;
                h.sent += count;
                h.acked += count;
                h.remaining -= count;
                if (payload)
                    soap_bytes += payload->soap_bytes;
                else
                    for (auto e : batch)
                        soap_bytes += 2 * e.size();
                progress.events_acked += count;
                progress.batches_ok += 1;
            } catch (const std::exception& e) {
                shared.error(e.what());
                h.sent += count;
                progress.batches_failed += 1;
                h.remaining = 0; // a failing host stops (a real one would retry later)
                progress.hosts_connected -= 1;
            }
        }
    }
    auto last = std::chrono::steady_clock::now();
    for (const auto& h : hosts)
        if (h.acked == h.sent) progress.hosts_connected -= 1; // the others stopped on failure
    std::lock_guard lock(shared.mutex);
    for (const auto& h : hosts)
        shared.hosts[h.id] = HostTally{h.machine, h.sent, h.acked};
    shared.latencies_us.insert(shared.latencies_us.end(), latencies.begin(), latencies.end());
    shared.soap_bytes += soap_bytes;
    if (any) {
        shared.first = std::min(shared.first, first);
        shared.last = std::max(shared.last, last);
    }
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
    r.bytes_sent_soap = shared.soap_bytes;
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

} // namespace wec::client

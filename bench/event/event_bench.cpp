// Event parse + format throughput (items/s = events/s, one core) on the OpenWEC fixture events
// (tests/data/event, 13 events of 0.3 to 13.7 KB) and on the real sample batch (the 21 events of
// tests/data/wsman/events.xml, a Windows 10 Events message).
#include "client/client.hpp"
#include "event/event.hpp"
#include "text/text.hpp"
#include "wsman/wsman.hpp"

#include <benchmark/benchmark.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace {

namespace fs = std::filesystem;

const std::vector<std::string>& events() {
    static const std::vector<std::string> all = [] {
        std::vector<std::string> v;
        for (const char* dir : {"json", "nxlog"}) {
            for (const auto& e : fs::directory_iterator(fs::path(WEC_TEST_DATA) / "event" / dir)) {
                if (e.path().extension() != ".xml") continue;
                std::ifstream in(e.path(), std::ios::binary);
                std::ostringstream ss;
                ss << in.rdbuf();
                v.push_back(ss.str());
            }
        }
        return v;
    }();
    return all;
}

// The events of the real Events message (tests/data/wsman/events.xml).
const std::vector<std::string>& samples() {
    static const std::vector<std::string> all = [] {
        std::ifstream in(fs::path(WEC_TEST_DATA) / "wsman" / "events.xml", std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        auto message = wec::wsman::parse_owned(ss.str());
        std::vector<std::string> v;
        for (const auto& e : message.events)
            v.emplace_back(e.xml);
        if (v.empty()) throw std::runtime_error("no events in events.xml");
        return v;
    }();
    return all;
}

// What serve_bench and `wec replay` send: lib/client's generated Security events (4624/4688
// shaped, RenderedText, ~1.3-2.2 KB), 64 of them.
const std::vector<std::string>& generated() {
    static const std::vector<std::string> all = [] {
        wec::client::EventGenerator gen;
        std::vector<std::string> v;
        for (int i = 0; i < 64; ++i)
            v.push_back(gen.next());
        return v;
    }();
    return all;
}

wec::event::Metadata metadata() {
    wec::event::Metadata md;
    md.ip_address = "192.168.58.100";
    md.client = "WIN10$@WINDOMAIN.LOCAL";
    md.time_received = std::chrono::system_clock::now();
    md.subscription_uuid = "8B18D83D-2964-4F35-AC3B-6F4E6FFA727B";
    md.subscription_version = "188BB736-9441-5C66-188B-B73694415C66";
    md.subscription_name = "Test";
    md.subscription_uri = "/this/is/a/test";
    md.node = "openwec";
    return md;
}

void finish(benchmark::State& state, std::size_t bytes) {
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * events().size()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

std::size_t total_bytes() {
    std::size_t n = 0;
    for (const auto& e : events())
        n += e.size();
    return n;
}

// The collector's hot path: one Event and one output buffer per worker, reused.
void BM_ParseFormatJson(benchmark::State& state) {
    auto md = metadata();
    wec::event::Event ev;
    std::string out;
    for (auto _ : state) {
        for (const auto& xml : events()) {
            wec::event::parse(xml, ev);
            out.clear();
            wec::event::format_json(ev, md, out);
            benchmark::DoNotOptimize(out.data());
        }
    }
    finish(state, total_bytes());
}
BENCHMARK(BM_ParseFormatJson);

// Same with a fresh Event per event (Event parse(std::string_view)).
void BM_ParseFormatJsonFreshEvent(benchmark::State& state) {
    auto md = metadata();
    std::string out;
    for (auto _ : state) {
        for (const auto& xml : events()) {
            auto ev = wec::event::parse(xml);
            out.clear();
            wec::event::format_json(ev, md, out);
            benchmark::DoNotOptimize(out.data());
        }
    }
    finish(state, total_bytes());
}
BENCHMARK(BM_ParseFormatJsonFreshEvent);

void BM_ParseFormatNxlog(benchmark::State& state) {
    auto md = metadata();
    wec::event::Event ev;
    std::string out;
    for (auto _ : state) {
        for (const auto& xml : events()) {
            wec::event::parse(xml, ev);
            out.clear();
            wec::event::format_nxlog(ev, md, out);
            benchmark::DoNotOptimize(out.data());
        }
    }
    finish(state, total_bytes());
}
BENCHMARK(BM_ParseFormatNxlog);

using EventSet = const std::vector<std::string>& (*)();
using wec::event::Format;

void finish_set(benchmark::State& state, EventSet set) {
    std::size_t bytes = 0;
    for (const auto& e : set())
        bytes += e.size();
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * set().size()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

// What the collector does per event for one format: parse (when the format needs it) + format,
// one Event and one output buffer reused.
void BM_ParseFormat(benchmark::State& state, Format format, EventSet set) {
    auto md = metadata();
    wec::event::Event ev;
    std::string out;
    for (auto _ : state) {
        for (const auto& xml : set()) {
            if (wec::event::needs_parse(format)) wec::event::parse(xml, ev);
            out.clear();
            wec::event::format_event(format, xml, ev, md, out);
            benchmark::DoNotOptimize(out.data());
        }
    }
    finish_set(state, set);
}
BENCHMARK_CAPTURE(BM_ParseFormat, ecs / samples, Format::Ecs, samples);
BENCHMARK_CAPTURE(BM_ParseFormat, nxlog / samples, Format::Nxlog, samples);
BENCHMARK_CAPTURE(BM_ParseFormat, json / samples, Format::Json, samples);
BENCHMARK_CAPTURE(BM_ParseFormat, raw_json / samples, Format::RawJson, samples);
BENCHMARK_CAPTURE(BM_ParseFormat, raw / samples, Format::Raw, samples);
BENCHMARK_CAPTURE(BM_ParseFormat, ecs / fixtures, Format::Ecs, events);
BENCHMARK_CAPTURE(BM_ParseFormat, nxlog / fixtures, Format::Nxlog, events);
BENCHMARK_CAPTURE(BM_ParseFormat, raw_json / fixtures, Format::RawJson, events);
BENCHMARK_CAPTURE(BM_ParseFormat, json / generated, Format::Json, generated);
BENCHMARK_CAPTURE(BM_ParseFormat, ecs / generated, Format::Ecs, generated);
BENCHMARK_CAPTURE(BM_ParseFormat, nxlog / generated, Format::Nxlog, generated);

// The formatter alone on events parsed beforehand.
void BM_FormatOnly(benchmark::State& state, Format format, EventSet set) {
    auto md = metadata();
    std::vector<wec::event::Event> parsed;
    for (const auto& xml : set())
        parsed.push_back(wec::event::parse(xml));
    std::string out;
    for (auto _ : state) {
        for (std::size_t i = 0; i < parsed.size(); ++i) {
            out.clear();
            wec::event::format_event(format, set()[i], parsed[i], md, out);
            benchmark::DoNotOptimize(out.data());
        }
    }
    finish_set(state, set);
}
BENCHMARK_CAPTURE(BM_FormatOnly, ecs / samples, Format::Ecs, samples);
BENCHMARK_CAPTURE(BM_FormatOnly, nxlog / samples, Format::Nxlog, samples);
BENCHMARK_CAPTURE(BM_FormatOnly, json / samples, Format::Json, samples);
BENCHMARK_CAPTURE(BM_FormatOnly, ecs / fixtures, Format::Ecs, events);
BENCHMARK_CAPTURE(BM_FormatOnly, nxlog / fixtures, Format::Nxlog, events);
BENCHMARK_CAPTURE(BM_FormatOnly, json / generated, Format::Json, generated);

// The collector's batch path with every format at once: each event parsed once, five lines.
void BM_BatchAllFormats(benchmark::State& state, EventSet set) {
    auto md = metadata();
    const Format all[] = {Format::Raw, Format::Json, Format::RawJson, Format::Nxlog, Format::Ecs};
    wec::event::BatchFormatter batch(all);
    for (auto _ : state) {
        batch.clear();
        for (const auto& xml : set())
            batch.add(xml, md);
        benchmark::DoNotOptimize(batch.lines(Format::Ecs).data());
    }
    finish_set(state, set);
}
BENCHMARK_CAPTURE(BM_BatchAllFormats, samples, samples);

// What the collector does per request: a new BatchFormatter for the batch (its buffers reserved
// from the batch's size, not reused), each event parsed and written as one json line.
void BM_CollectorBatch(benchmark::State& state, EventSet set) {
    auto md = metadata();
    const Format json[] = {Format::Json};
    std::size_t xml_bytes = 0;
    for (const auto& xml : set())
        xml_bytes += xml.size();
    for (auto _ : state) {
        wec::event::BatchFormatter batch(json);
        batch.reserve(xml_bytes, set().size());
        for (const auto& xml : set())
            batch.add(xml, md);
        benchmark::DoNotOptimize(batch.lines(Format::Json).data());
    }
    finish_set(state, set);
}
BENCHMARK_CAPTURE(BM_CollectorBatch, json / generated, generated);

void BM_ParseOnly(benchmark::State& state) {
    wec::event::Event ev;
    for (auto _ : state) {
        for (const auto& xml : events()) {
            wec::event::parse(xml, ev);
            benchmark::DoNotOptimize(&ev);
        }
    }
    finish(state, total_bytes());
}
BENCHMARK(BM_ParseOnly);

// Parsing alone, by parser: the one pass (`parse`) and the DOM path it replaced (`parse_dom`).
using ParseFn = void (*)(std::string_view, wec::event::Event&);
void BM_Parser(benchmark::State& state, ParseFn parse, const std::vector<std::string>& (*set)()) {
    wec::event::Event ev;
    std::size_t bytes = 0;
    for (const auto& xml : set())
        bytes += xml.size();
    for (auto _ : state) {
        for (const auto& xml : set()) {
            parse(xml, ev);
            benchmark::DoNotOptimize(&ev);
        }
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * set().size()));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}
constexpr ParseFn kOnePass = wec::event::parse;
constexpr ParseFn kDom = wec::event::parse_dom;
BENCHMARK_CAPTURE(BM_Parser, one_pass / samples, kOnePass, samples);
BENCHMARK_CAPTURE(BM_Parser, dom / samples, kDom, samples);
BENCHMARK_CAPTURE(BM_Parser, one_pass / fixtures, kOnePass, events);
BENCHMARK_CAPTURE(BM_Parser, dom / fixtures, kDom, events);
BENCHMARK_CAPTURE(BM_Parser, one_pass / generated, kOnePass, generated);

void BM_FormatJsonOnly(benchmark::State& state) {
    auto md = metadata();
    std::vector<wec::event::Event> parsed;
    for (const auto& xml : events())
        parsed.push_back(wec::event::parse(xml));
    std::string out;
    for (auto _ : state) {
        for (const auto& ev : parsed) {
            out.clear();
            wec::event::format_json(ev, md, out);
            benchmark::DoNotOptimize(out.data());
        }
    }
    finish(state, total_bytes());
}
BENCHMARK(BM_FormatJsonOnly);

// The alternative that was measured and rejected: build an nlohmann::json DOM and dump() it.
void BM_FormatJsonViaNlohmann(benchmark::State& state) {
    auto md = metadata();
    std::vector<wec::event::Event> parsed;
    for (const auto& xml : events())
        parsed.push_back(wec::event::parse(xml));
    auto s = [](std::string_view v) { return std::string(v); };
    for (auto _ : state) {
        for (const auto& ev : parsed) {
            nlohmann::json j;
            if (ev.system) {
                auto& sys = j["System"];
                const auto& es = *ev.system;
                if (es.provider.name) sys["Provider"]["Name"] = s(*es.provider.name);
                if (es.provider.guid) sys["Provider"]["Guid"] = s(*es.provider.guid);
                sys["EventID"] = es.event_id;
                if (es.version) sys["Version"] = *es.version;
                if (es.level) sys["Level"] = *es.level;
                if (es.task) sys["Task"] = *es.task;
                if (es.opcode) sys["Opcode"] = *es.opcode;
                if (es.keywords) sys["Keywords"] = s(*es.keywords);
                if (es.time_created) sys["TimeCreated"] = s(*es.time_created);
                if (es.event_record_id) sys["EventRecordID"] = *es.event_record_id;
                if (es.execution) {
                    sys["Execution"]["ProcessID"] = es.execution->process_id;
                    sys["Execution"]["ThreadID"] = es.execution->thread_id;
                }
                if (es.channel) sys["Channel"] = s(*es.channel);
                sys["Computer"] = s(es.computer);
            }
            if (ev.data_kind == wec::event::DataKind::EventData) {
                auto& ed = j["EventData"];
                ed = nlohmann::json::object();
                for (const auto& nd : ev.event_data.named)
                    ed[s(nd.name)] = s(nd.value);
                for (auto d : ev.event_data.data)
                    ed["Data"].push_back(s(d));
            }
            if (ev.rendering_info && ev.rendering_info->message)
                j["RenderingInfo"]["Message"] = s(*ev.rendering_info->message);
            std::string t;
            wec::event::format_time(md.time_received, t);
            j["OpenWEC"] = {{"IpAddress", md.ip_address},
                            {"TimeReceived", t},
                            {"Principal", md.client},
                            {"Client", md.client},
                            {"Subscription",
                             {{"Uuid", md.subscription_uuid},
                              {"Version", md.subscription_version},
                              {"Name", md.subscription_name}}}};
            std::string out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            benchmark::DoNotOptimize(out.data());
        }
    }
    finish(state, total_bytes());
}
BENCHMARK(BM_FormatJsonViaNlohmann);

void BM_FormatRaw(benchmark::State& state) {
    std::string out;
    for (auto _ : state) {
        for (const auto& xml : events()) {
            out.clear();
            wec::event::format_raw(xml, out);
            benchmark::DoNotOptimize(out.data());
        }
    }
    finish(state, total_bytes());
}
BENCHMARK(BM_FormatRaw);

// The shape of events in captures: one line break, in the first tag ("<Event\n\t\t\t\txmlns=").
void BM_FormatRawBreakInFirstTag(benchmark::State& state) {
    static const std::vector<std::string> shaped = [] {
        std::vector<std::string> v;
        for (std::string xml : events()) {
            std::erase(xml, '\r');
            std::erase(xml, '\n');
            if (xml.starts_with("<Event ")) xml.replace(0, 7, "<Event\n\t\t\t\t");
            v.push_back(xml);
        }
        return v;
    }();
    std::string out;
    std::size_t bytes = 0;
    for (const auto& xml : shaped)
        bytes += xml.size();
    for (auto _ : state) {
        for (const auto& xml : shaped) {
            out.clear();
            wec::event::format_raw(xml, out);
            benchmark::DoNotOptimize(out.data());
        }
    }
    finish(state, bytes);
}
BENCHMARK(BM_FormatRawBreakInFirstTag);

// The text hot paths of a received batch: the fixture events as one UTF-16LE body (with a BOM,
// as Windows sends it) decoded to UTF-8, then checked for characters XML forbids.
const std::vector<std::uint8_t>& utf16_batch() {
    static const std::vector<std::uint8_t> body = [] {
        std::string all;
        for (const auto& xml : events())
            all += xml;
        return wec::text::utf8_to_utf16le(all, true);
    }();
    return body;
}

void BM_Utf16ToUtf8(benchmark::State& state) {
    std::string out;
    for (auto _ : state) {
        out.clear();
        wec::text::append_utf16_to_utf8(utf16_batch(), out);
        benchmark::DoNotOptimize(out.data());
    }
    finish(state, utf16_batch().size());
}
BENCHMARK(BM_Utf16ToUtf8);

void BM_SanitizeXmlChars(benchmark::State& state) {
    std::string text = wec::text::utf16_to_utf8(utf16_batch());
    for (auto _ : state) {
        benchmark::DoNotOptimize(wec::text::sanitize_xml_chars(text));
    }
    finish(state, text.size());
}
BENCHMARK(BM_SanitizeXmlChars);

} // namespace

BENCHMARK_MAIN();

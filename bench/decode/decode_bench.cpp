// Throughput of `wec decode --events` in MB/s of capture, against tshark on the same file.
//
// 1. Records a real session (MIT KDC, `wec serve`, the Python source pushing SLDC-compressed
//    Events sealed with Kerberos, tcpdump on lo).
// 2. Builds a >= 50 MB capture from it: many TCP connections (port 5985, 1448-byte segments, four
//    interleaved at a time), each replaying the real AP-REQ/AP-REP exchange and then the real
//    encrypted Events request and Ack many times (offline decoding does not check sequence
//    numbers for replays, so the same ciphertext can repeat).
// 3. Times `wec decode FILE --keytab K --events` (json and raw) and
//    `tshark -o kerberos.decrypt:TRUE -o kerberos.file:K -V -r FILE` (time-boxed; a partial rate is
//    reported when it does not finish), and prints the figures.
//
// Usage: decode_bench [--size-mb N] [--tshark-seconds S] [--parallel P] [--per-connection M]
//                     [--keep-open]   (needs root for tcpdump)
// --parallel: connections interleaved at a time (4); --per-connection: Events exchanges on each
// (50); --keep-open: no FIN (keep-alive connections left open until the end of the capture, the
// memory the decoder keeps per idle connection then adds up).
// WEC_BENCH_KEEP=DIR keeps the capture and keytab (for profiling).
#include "capture/capture.hpp"
#include "live_session.hpp"
#include "pcap_writer.hpp"
#include "support/process.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace {

using namespace wec::test;
namespace cap = wec::capture;

std::string raw_message(const cap::HttpMessage& m) {
    std::string s(m.start_line);
    s += "\r\n";
    for (const auto& h : m.headers) {
        s.append(h.name).append(": ").append(h.value).append("\r\n");
    }
    s += "\r\n";
    s.append(reinterpret_cast<const char*>(m.body.data()), m.body.size());
    return s;
}

struct Exchange {
    std::string auth_request, auth_response, events_request, events_response;
};

// The first connection that carries Events: its auth exchange and its first Events exchange.
Exchange extract(const fs::path& pcap) {
    std::map<std::uint64_t, std::map<std::pair<bool, std::uint64_t>, std::string>> by_conn;
    std::uint64_t events_conn = 0, events_index = 0;
    cap::Callbacks cb;
    cb.on_message = [&](const cap::HttpMessage& m) {
        by_conn[m.connection_id][{m.is_request, m.index}] = raw_message(m);
        if (events_conn == 0 && m.is_request && m.index >= 1 &&
            m.header("Content-Encoding").value_or("") == "SLDC" && m.body.size() > 2000) {
            events_conn = m.connection_id;
            events_index = m.index;
        }
    };
    cap::extract_http(pcap.string(), cb);
    if (events_conn == 0) throw std::runtime_error("no Events request in the recorded capture");
    auto& c = by_conn[events_conn];
    Exchange x{c[{true, 0}], c[{false, 0}], c[{true, events_index}], c[{false, events_index}]};
    if (x.auth_response.empty() || x.events_response.empty())
        throw std::runtime_error("incomplete exchange in the recorded capture");
    return x;
}

struct Built {
    std::uint64_t bytes = 0, events_messages = 0;
};

struct Shape {
    int parallel = 4;
    int per_connection = 50;
    bool keep_open = false;
};

Built build(const fs::path& out, const Exchange& x, std::uint64_t target_bytes,
            const Shape& shape) {
    Built b;
    PcapWriter w(out.string(), 1);
    std::uint16_t port = 20000;
    std::int64_t time = 1700000000LL * 1000000000LL;
    const Bytes areq = to_bytes(x.auth_request), arep = to_bytes(x.auth_response),
                ereq = to_bytes(x.events_request), erep = to_bytes(x.events_response);
    while (b.bytes < target_bytes) {
        std::vector<Conversation> convs;
        for (int k = 0; k < shape.parallel; ++k) {
            Conversation c(port++, 5985);
            if (port == 0) port = 20000;
            c.time = time;
            c.handshake();
            c.send(true, areq, 1448);
            c.send(false, arep, 1448);
            for (int i = 0; i < shape.per_connection; ++i) {
                c.send(true, ereq, 1448);
                c.send(false, erep, 1448);
                ++b.events_messages;
            }
            if (!shape.keep_open) c.close();
            convs.push_back(std::move(c));
        }
        // Interleave the connections segment by segment.
        std::vector<std::size_t> at(convs.size(), 0);
        for (bool any = true; any;) {
            any = false;
            for (std::size_t k = 0; k < convs.size(); ++k) {
                if (at[k] >= convs[k].segs.size()) continue;
                any = true;
                auto f = frame(Link::Ethernet, convs[k], convs[k].segs[at[k]]);
                w.write(time += 2000, f);
                b.bytes += f.size() + 16;
                ++at[k];
            }
        }
    }
    return b;
}

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::string sh(const std::string& cmd, int& rc) {
    auto r = wec::testing::run({"/bin/sh", "-c", cmd}, {}, std::chrono::hours(1));
    rc = r.exit_code;
    return r.output;
}

} // namespace

int main(int argc, char** argv) {
    std::uint64_t size_mb = 60;
    int tshark_seconds = 180;
    Shape shape;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--keep-open") {
            shape.keep_open = true;
            continue;
        }
        if (i + 1 >= argc) break;
        if (a == "--size-mb")
            size_mb = std::stoull(argv[++i]);
        else if (a == "--tshark-seconds")
            tshark_seconds = std::stoi(argv[++i]);
        else if (a == "--parallel")
            shape.parallel = std::max(1, std::stoi(argv[++i]));
        else if (a == "--per-connection")
            shape.per_connection = std::max(1, std::stoi(argv[++i]));
    }
    try {
        wec::testing::TempDir dir;
        std::printf("decode_bench: recording a real session (KDC, wec serve, Python source)...\n");
        std::fflush(stdout);
        // An SLDC-compressed Events body (the 21 real events, UTF-16LE with a BOM).
        std::string events;
        {
            std::ifstream in(std::string(WEC_TEST_DATA) + "/sldc/events.utf16", std::ios::binary);
            std::stringstream ss;
            ss << in.rdbuf();
            events = ss.str();
        }
        std::ofstream(dir.path() / "events.utf16", std::ios::binary) << events;
        int rc = 0;
        sh(std::string(WEC_EXE) + " sldc compress " + (dir.path() / "events.utf16").string() +
               " -o " + (dir.path() / "events.sldc").string(),
           rc);
        if (rc != 0) throw std::runtime_error("wec sldc compress failed");
        fs::path keytab, recorded;
        {
            LiveSession s(WEC_EXE, dir.path());
            s.sldc_events(dir.path() / "events.sldc", 2);
            s.stop();
            keytab = s.keytab();
            recorded = s.pcap();
        }
        auto x = extract(recorded);
        auto big = dir.path() / "bench.pcap";
        auto built = build(big, x, size_mb * 1000 * 1000, shape);
        double mb = static_cast<double>(fs::file_size(big)) / 1e6;
        std::uint64_t expected_events = built.events_messages * 21;
        std::printf("capture: %s, %.1f MB, %llu Events messages (%llu events), each %zu bytes "
                    "on the wire (SLDC %zu -> %zu bytes UTF-16)\n",
                    big.c_str(), mb, static_cast<unsigned long long>(built.events_messages),
                    static_cast<unsigned long long>(expected_events), x.events_request.size(),
                    fs::file_size(dir.path() / "events.sldc"), events.size());

        auto time_decode = [&](const std::string& format) {
            std::string cmd = std::string(WEC_EXE) + " decode " + big.string() + " --keytab " +
                              keytab.string() + " --events --event-format " + format +
                              " --progress never -q | wc -l";
            double t0 = now_s();
            int code = 0;
            auto out = sh(cmd, code);
            double t = now_s() - t0;
            auto lines = std::strtoull(out.c_str(), nullptr, 10);
            std::printf(
                "wec decode --events --event-format %-4s: %6.2f s  %7.1f MB/s  (%llu events%s)\n",
                format.c_str(), t, mb / t, static_cast<unsigned long long>(lines),
                lines == expected_events ? ", all" : ", MISSING EVENTS");
            std::printf("    command: %s\n", cmd.c_str());
            return mb / t;
        };
        if (const char* keep = std::getenv("WEC_BENCH_KEEP"); keep != nullptr) {
            fs::create_directories(keep);
            fs::copy_file(big, fs::path(keep) / "bench.pcap", fs::copy_options::overwrite_existing);
            fs::copy_file(keytab, fs::path(keep) / "wec.keytab",
                          fs::copy_options::overwrite_existing);
        }
        time_decode("raw"); // warms the page cache too
        double json_rate = time_decode("json");
        double raw_rate = time_decode("raw");
        // The other outputs: the text transcript (default) and JSON Lines with the bodies.
        auto time_output = [&](const std::string& label, const std::string& args) {
            std::string cmd = std::string(WEC_EXE) + " decode " + big.string() + " --keytab " +
                              keytab.string() + " " + args + " --progress never -q | wc -l";
            double t0 = now_s();
            int code = 0;
            auto out = sh(cmd, code);
            double t = now_s() - t0;
            std::printf("wec decode %-28s: %6.2f s  %7.1f MB/s  (%llu lines)\n", label.c_str(), t,
                        mb / t, std::strtoull(out.c_str(), nullptr, 10));
            std::printf("    command: %s\n", cmd.c_str());
            return mb / t;
        };
        double text_rate = time_output("(text transcript)", "");
        double lines_rate = time_output("--format json (with bodies)", "--format json");

        // tshark on the same file, time-boxed; the frames it printed give a partial rate.
        std::uint64_t frames = 0;
        {
            auto reader = cap::CaptureReader::open(big.string());
            cap::Packet p;
            while (reader.next(p))
                ++frames;
        }
        std::string tcmd = "timeout " + std::to_string(tshark_seconds) + " tshark -r " +
                           big.string() +
                           " -o kerberos.decrypt:TRUE -o kerberos.file:" + keytab.string() +
                           " -V 2>/dev/null | grep -c '^Frame [0-9]*:'";
        double t0 = now_s();
        int code = 0;
        auto out = sh(tcmd, code);
        double t = now_s() - t0;
        auto done = std::strtoull(out.c_str(), nullptr, 10);
        if (done == 0) {
            std::printf("tshark: no frames decoded (not installed?)  command: %s\n", tcmd.c_str());
            return 0;
        }
        double fraction = static_cast<double>(done) / static_cast<double>(frames);
        double tshark_rate = mb * fraction / t;
        std::printf(
            "tshark -V with kerberos.decrypt: %6.2f s  %7.2f MB/s  (%s: %llu of %llu frames)\n", t,
            tshark_rate, fraction >= 0.999 ? "complete" : "time-boxed, partial",
            static_cast<unsigned long long>(done), static_cast<unsigned long long>(frames));
        std::printf("    command: %s\n", tcmd.c_str());
        std::printf("speed-up over tshark: --events raw %.1fx, --events json %.1fx, text %.1fx, "
                    "--format json %.1fx (targets: >= 100 MB/s, >= 10x)\n",
                    raw_rate / tshark_rate, json_rate / tshark_rate, text_rate / tshark_rate,
                    lines_rate / tshark_rate);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "decode_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}

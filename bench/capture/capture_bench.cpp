// Throughput of extract_http (pcap -> TCP -> HTTP) in MB/s of capture, on a synthesized ~50 MB
// pcap of keep-alive WEF-like POSTs (multipart-sized binary bodies, 1448-byte segments, four
// interleaved connections), generated into a temporary file.
#include "capture/capture.hpp"
#include "pcap_writer.hpp"

#include <benchmark/benchmark.h>
#include <filesystem>
#include <random>

namespace {

using namespace wec::test;

std::string make_post(const std::string& body) {
    return "POST /wsman/subscriptions/3A0A2C37-1B1A-4E47-9A0E-1F1E1B1D1C1A HTTP/1.1\r\n"
           "Connection: Keep-Alive\r\n"
           "Content-Type: multipart/encrypted;protocol=\"application/"
           "HTTP-Kerberos-session-encrypted\";boundary=\"Encrypted Boundary\"\r\n"
           "User-Agent: Microsoft WinRM Client\r\nContent-Encoding: SLDC\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\nHost: wec.example.org:5985\r\n\r\n" + body;
}

std::string make_response(const std::string& body) {
    return "HTTP/1.1 200 \r\nServer: Microsoft-HTTPAPI/2.0\r\nContent-Type: multipart/encrypted;"
           "protocol=\"application/HTTP-Kerberos-session-encrypted\";boundary=\"Encrypted "
           "Boundary\"\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

struct Capture {
    std::filesystem::path path;
    std::uint64_t size = 0;
    std::uint64_t requests = 0;

    Capture() {
        path = std::filesystem::temp_directory_path() /
               ("wec-capture-bench-" + std::to_string(::getpid()) + ".pcap");
        std::mt19937 rng(42);
        auto random_string = [&rng](std::size_t n) {
            std::string s(n, '\0');
            for (auto& c : s)
                c = static_cast<char>(rng());
            return s;
        };
        std::string pool = random_string(1 << 20);
        {
            PcapWriter w(path.string(), 1);
            std::uint64_t written = 0;
            std::uint16_t port = 49152;
            while (written < 50ull * 1000 * 1000) {
                // Four connections, each with 20 keep-alive POSTs of 8-60 KB, interleaved.
                std::vector<Conversation> convs;
                for (int k = 0; k < 4; ++k) {
                    Conversation c(port++, 5985);
                    c.handshake();
                    for (int i = 0; i < 20; ++i) {
                        std::size_t n = 8000 + rng() % 52000;
                        std::size_t at = rng() % (pool.size() - n);
                        c.send(true, to_bytes(make_post(pool.substr(at, n))), 1448);
                        c.send(false, to_bytes(make_response(pool.substr(0, 1200 + rng() % 300))),
                               1448);
                        ++requests;
                    }
                    c.close();
                    convs.push_back(std::move(c));
                }
                std::size_t most = 0;
                for (const auto& c : convs)
                    most = std::max(most, c.segs.size());
                for (std::size_t i = 0; i < most; ++i) {
                    for (const auto& c : convs) {
                        if (i >= c.segs.size()) continue;
                        auto f = frame(Link::Ethernet, c, c.segs[i]);
                        w.write(c.segs[i].time_ns, f);
                        written += f.size() + 16;
                    }
                }
            }
        }
        size = std::filesystem::file_size(path);
    }
    ~Capture() {
        std::error_code ec;
        std::filesystem::remove(path, ec);
        std::filesystem::remove(path.string() + ".gz", ec);
    }
};

const Capture& capture() {
    static Capture c;
    return c;
}

void BM_ExtractHttp(benchmark::State& state) {
    const Capture& c = capture();
    std::uint64_t messages = 0, body_bytes = 0;
    for (auto _ : state) {
        wec::capture::Callbacks cb;
        cb.on_message = [&](const wec::capture::HttpMessage& m) {
            ++messages;
            body_bytes += m.body.size();
        };
        auto stats = wec::capture::extract_http(c.path.string(), cb);
        if (stats.requests != c.requests) state.SkipWithError("request count mismatch");
        benchmark::DoNotOptimize(body_bytes);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * c.size));
    state.counters["capture_MB"] = static_cast<double>(c.size) / 1e6;
    state.counters["MB/s"] = benchmark::Counter(static_cast<double>(c.size) / 1e6,
                                                benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_ExtractHttp)->Unit(benchmark::kMillisecond)->MinTime(3.0);

void BM_ExtractHttpGzip(benchmark::State& state) {
    const Capture& c = capture();
    static const std::string gz = [&c] {
        std::string out = c.path.string() + ".gz";
        if (std::system(("gzip -1 -c " + c.path.string() + " > " + out).c_str()) != 0)
            return std::string();
        return out;
    }();
    if (gz.empty()) {
        state.SkipWithError("gzip failed");
        return;
    }
    for (auto _ : state) {
        auto stats = wec::capture::extract_http(gz, {});
        if (stats.requests != c.requests) state.SkipWithError("request count mismatch");
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * c.size));
    state.counters["MB/s"] = benchmark::Counter(static_cast<double>(c.size) / 1e6,
                                                benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_ExtractHttpGzip)->Unit(benchmark::kMillisecond)->MinTime(3.0);

} // namespace

BENCHMARK_MAIN();

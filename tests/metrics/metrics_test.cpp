// The Prometheus text exposition writer (format 0.0.4), the registry, and the in-memory host table
// behind `wec_hosts`. The text is compared byte for byte; promtool (Debian `prometheus`) checks it
// independently when it is installed.
#include "metrics/hosts.hpp"
#include "metrics/metrics.hpp"
#include "support/files.hpp"
#include "support/process.hpp"

#include <cmath>
#include <fstream>
#include <gtest/gtest.h>
#include <limits>
#include <thread>

namespace {

using namespace wec::metrics;
using namespace std::chrono_literals;

TEST(Exposition, EscapesLabelValuesAsTheFormatSays) {
    EXPECT_EQ(escape_label_value(R"(C:\logs\"x")"), R"(C:\\logs\\\"x\")");
    EXPECT_EQ(escape_label_value("two\nlines"), "two\\nlines");
    // Anything else, UTF-8 included, stays as it is.
    EXPECT_EQ(escape_label_value("sécurité {a=b}, tab\t"), "sécurité {a=b}, tab\t");
    EXPECT_EQ(escape_help("a \\ b\nc \"q\""), "a \\\\ b\\nc \"q\"");

    Exposition out;
    out.family("wec_x_total", "Help with a \\ and\na new line.", Type::Counter);
    out.sample("wec_x_total", {{"subscription", "a\"b\\c\nd"}, {"output", "files:/x"}},
               std::uint64_t{3});
    EXPECT_EQ(out.text(), "# HELP wec_x_total Help with a \\\\ and\\na new line.\n"
                          "# TYPE wec_x_total counter\n"
                          "wec_x_total{subscription=\"a\\\"b\\\\c\\nd\",output=\"files:/x\"} 3\n");
}

TEST(Exposition, FormatsValues) {
    EXPECT_EQ(format_value(1), "1");
    EXPECT_EQ(format_value(0.005), "0.005");
    EXPECT_EQ(format_value(2.5), "2.5");
    EXPECT_EQ(format_value(-3), "-3");
    EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(format_value(std::nan("")), "NaN");
    // Integers are exact beyond 2^53.
    Exposition out;
    out.family("wec_big_total", "Big.", Type::Counter);
    out.sample("wec_big_total", {}, std::uint64_t{18446744073709551615u});
    EXPECT_NE(out.text().find("wec_big_total 18446744073709551615\n"), std::string::npos);
}

TEST(Exposition, HistogramBucketsAreCumulativeWithInfSumAndCount) {
    Histogram h({0.01, 0.1, 1});
    for (double v : {0.005, 0.01, 0.05, 0.5, 0.5, 3.0, 100.0})
        h.observe(v);
    auto s = h.snapshot();
    // Per bucket: le is inclusive (0.01 goes into le="0.01").
    EXPECT_EQ(s.counts, (std::vector<std::uint64_t>{2, 1, 2, 2}));
    EXPECT_EQ(s.count, 7u);
    EXPECT_DOUBLE_EQ(s.sum, 104.065);

    Exposition out;
    out.family("wec_request_duration_seconds", "Latency.", Type::Histogram);
    out.histogram("wec_request_duration_seconds", {{"action", "Events"}}, s);
    EXPECT_EQ(out.text(), "# HELP wec_request_duration_seconds Latency.\n"
                          "# TYPE wec_request_duration_seconds histogram\n"
                          "wec_request_duration_seconds_bucket{action=\"Events\",le=\"0.01\"} 2\n"
                          "wec_request_duration_seconds_bucket{action=\"Events\",le=\"0.1\"} 3\n"
                          "wec_request_duration_seconds_bucket{action=\"Events\",le=\"1\"} 5\n"
                          "wec_request_duration_seconds_bucket{action=\"Events\",le=\"+Inf\"} 7\n"
                          "wec_request_duration_seconds_sum{action=\"Events\"} " +
                              format_value(s.sum) +
                              "\n"
                              "wec_request_duration_seconds_count{action=\"Events\"} 7\n");
}

TEST(Exposition, EmptyHistogramStillHasEveryBucket) {
    Histogram h({1, 2});
    Exposition out;
    out.family("h_seconds", "H.", Type::Histogram);
    out.histogram("h_seconds", {}, h.snapshot());
    EXPECT_EQ(out.text(), "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
                          "h_seconds_bucket{le=\"1\"} 0\nh_seconds_bucket{le=\"2\"} 0\n"
                          "h_seconds_bucket{le=\"+Inf\"} 0\nh_seconds_sum 0\nh_seconds_count 0\n");
}

TEST(Exposition, RefusesWhatTheFormatDoesNotAllow) {
    Exposition out;
    EXPECT_THROW(out.family("1abc", "x", Type::Counter), MetricsError);
    EXPECT_THROW(out.family("wec-x", "x", Type::Counter), MetricsError);
    out.family("wec_a_total", "A.", Type::Counter);
    EXPECT_THROW(out.family("wec_a_total", "again", Type::Counter), MetricsError); // written twice
    EXPECT_THROW(out.sample("wec_b_total", {}, 1.0), MetricsError);                // another family
    EXPECT_THROW(out.sample("wec_a_total", {{"bad-name", "x"}}, 1.0), MetricsError);
    EXPECT_THROW(out.sample("wec_a_total", {{"__reserved", "x"}}, 1.0), MetricsError);
    EXPECT_THROW(out.sample("wec_a_total", {{"a", "x"}, {"a", "y"}}, 1.0), MetricsError);
    EXPECT_THROW(out.histogram("wec_a_total", {}, Histogram({1}).snapshot()), MetricsError);
    out.family("wec_h", "H.", Type::Histogram);
    EXPECT_THROW(out.histogram("wec_h", {{"le", "1"}}, Histogram({1}).snapshot()), MetricsError);

    EXPECT_THROW(Histogram({}), MetricsError);
    EXPECT_THROW(Histogram({1, 1}), MetricsError);
    EXPECT_THROW(Histogram({2, 1}), MetricsError);
    EXPECT_THROW(Histogram({1, std::numeric_limits<double>::infinity()}), MetricsError);
    EXPECT_TRUE(valid_metric_name("wec:rule_x"));
    EXPECT_FALSE(valid_label_name("a:b"));
}

TEST(Registry, SameLabelsSameObjectAndSortedText) {
    Registry r;
    auto a = r.counter("wec_z_total", "Z.", {{"subscription", "s1"}});
    auto b = r.counter("wec_z_total", "Z.", {{"subscription", "s1"}});
    auto c = r.counter("wec_z_total", "Z.", {{"subscription", "s0"}});
    EXPECT_EQ(a.get(), b.get());
    EXPECT_NE(a.get(), c.get());
    a->inc(2);
    b->inc();
    auto h = r.histogram("wec_a_seconds", "A.", {0.5});
    h->observe(0.25);
    EXPECT_THROW(r.counter("wec_a_seconds", "A.", {}), MetricsError); // a histogram already
    EXPECT_THROW(r.histogram("wec_a_seconds", "A.", {0.1}), MetricsError);
    EXPECT_THROW(r.counter("wec bad", "x", {}), MetricsError);

    Exposition out;
    r.write(out);
    EXPECT_EQ(out.text(), "# HELP wec_a_seconds A.\n# TYPE wec_a_seconds histogram\n"
                          "wec_a_seconds_bucket{le=\"0.5\"} 1\n"
                          "wec_a_seconds_bucket{le=\"+Inf\"} 1\n"
                          "wec_a_seconds_sum 0.25\nwec_a_seconds_count 1\n"
                          "# HELP wec_z_total Z.\n# TYPE wec_z_total counter\n"
                          "wec_z_total{subscription=\"s0\"} 0\n"
                          "wec_z_total{subscription=\"s1\"} 3\n");
}

TEST(Registry, ConcurrentIncrementsAreAllCounted) {
    Registry r;
    auto c = r.counter("wec_n_total", "N.");
    auto h = r.histogram("wec_d_seconds", "D.", {0.5, 1});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 100000; ++i) {
                c->inc();
                h->observe(0.75);
            }
        });
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(c->value(), 400000u);
    auto s = h->snapshot();
    EXPECT_EQ(s.count, 400000u);
    EXPECT_EQ(s.counts[1], 400000u);
    EXPECT_DOUBLE_EQ(s.sum, 300000.0);
}

TEST(HostTable, CountsHostsByStateAsWecStatusDoes) {
    HostTable t;
    const auto now = HostTable::Clock::now();
    const auto interval = std::chrono::seconds(60);
    t.seen("active.d.local", now - 10s, now - 10s);
    t.seen("alive.d.local", now - 10s, now - 600s); // events long ago, heartbeats recent
    t.seen("heartbeats-only.d.local", now - 59s, std::nullopt);
    t.seen("dead.d.local", now - 61s, now - 61s);
    // Out-of-order updates keep the latest times.
    t.seen("late.d.local", now - 5s, now - 5s);
    t.seen("late.d.local", now - 500s, now - 500s);
    auto c = t.count(interval, now);
    EXPECT_EQ(c.active, 2u);
    EXPECT_EQ(c.alive, 2u);
    EXPECT_EQ(c.dead, 1u);
    EXPECT_EQ(t.size(), 5u);
    // Later, everyone is dead.
    c = t.count(interval, now + 1h);
    EXPECT_EQ(c.dead, 5u);
}

// promtool (Debian `prometheus`, in scripts/install-deps.sh) parses what the writer makes, with
// the awkward label values, and finds nothing to lint.
TEST(Exposition, PromtoolAcceptsTheText) {
    ASSERT_TRUE(wec::testing::has_program("promtool"))
        << "promtool is not installed (Debian package prometheus; scripts/install-deps.sh "
           "installs it): the exposition cannot be validated";
    Registry r;
    r.counter("wec_events_received_total", "Events received.",
              {{"subscription", "quote \" backslash \\ newline \n end"}})
        ->inc(5);
    r.histogram("wec_request_duration_seconds", "Request latency.", {0.005, 0.1, 1})->observe(0.05);
    Exposition out;
    r.write(out);
    out.family("wec_build_info", "Build.", Type::Gauge);
    out.sample("wec_build_info", {{"version", "0.1.0"}}, 1);
    wec::testing::TempDir dir;
    auto file = dir.path() / "scrape.txt";
    std::ofstream(file) << out.text();
    auto result = wec::testing::run({"sh", "-c", "promtool check metrics < " + file.string()});
    EXPECT_EQ(result.exit_code, 0) << result.output << "\n" << out.text();
}

} // namespace

// Prometheus metrics without a dependency: counters and histograms cheap enough for the hot path
// (relaxed atomics, no lock, no lookup: callers keep the object they increment), a registry that
// names them, and a writer of the text exposition format 0.0.4 that `GET /metrics` answers with.
//
//   Registry registry;
//   auto received = registry.counter("wec_events_received_total", "Events received.",
//                                    {{"subscription", "security"}}); // once, at set-up
//   received->inc(batch.size());                                      // per batch
//   Exposition out;
//   registry.write(out);                   // plus families computed at scrape time:
//   out.family("wec_up", "Always 1.", Type::Gauge);
//   out.sample("wec_up", {}, 1);
//   std::string body = out.take();
#pragma once

#include "common/error.hpp"

#include <atomic>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace wec::metrics {

// A metric or label name that the format does not allow, a family written twice, a sample outside
// its family: programming errors, reported with the name at fault.
class MetricsError : public wec::Error {
public:
    using wec::Error::Error;
};

// The Content-Type of a scrape.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class Type { Counter, Gauge, Histogram, Untyped };
std::string_view to_string(Type type);

struct Label {
    std::string name;
    std::string value;
};
using Labels = std::vector<Label>;

// [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_metric_name(std::string_view name);
// [a-zA-Z_][a-zA-Z0-9_]*, and not starting with "__" (reserved).
bool valid_label_name(std::string_view name);
// A label value as the format quotes it: backslash, double quote and line feed escaped.
std::string escape_label_value(std::string_view value);
// HELP text: backslash and line feed escaped.
std::string escape_help(std::string_view help);
// A sample value: shortest exact decimal form, "+Inf", "-Inf" or "NaN".
std::string format_value(double value);

// A monotonic count. inc() is one relaxed atomic add.
class Counter {
public:
    void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

// Observations counted in fixed buckets (upper bounds, ascending, +Inf implied), with their sum.
// observe() is a short scan of the bounds and two relaxed atomic updates.
class Histogram {
public:
    // Throws MetricsError when `bounds` is empty, not strictly ascending, or not finite.
    explicit Histogram(std::vector<double> bounds);
    void observe(double value) noexcept;

    struct Snapshot {
        std::vector<double> bounds;
        std::vector<std::uint64_t> counts; // per bucket, NOT cumulative; one more than bounds
                                           // (the last: above every bound)
        double sum = 0;
        std::uint64_t count = 0; // the sum of `counts`
    };
    Snapshot snapshot() const;
    const std::vector<double>& bounds() const { return bounds_; }

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> counts_; // bounds_.size() + 1
    std::atomic<double> sum_{0};
};

// Writes the text exposition format: for each family its # HELP and # TYPE lines, then its
// samples. Checks names, that each family is written once and that samples belong to the family
// being written (throws MetricsError otherwise).
class Exposition {
public:
    void family(std::string_view name, std::string_view help, Type type);
    void sample(std::string_view name, const Labels& labels, double value);
    // Integers are written exactly (a double holds 53 bits only).
    template <std::integral T>
    void sample(std::string_view name, const Labels& labels, T value) {
        begin_sample(name, labels);
        char buf[24];
        auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
        text_.append(buf, end).push_back('\n');
    }
    // <name>_bucket{...,le="..."} (cumulative, ending with le="+Inf"), <name>_sum, <name>_count.
    void histogram(std::string_view name, const Labels& labels, const Histogram::Snapshot& h);

    const std::string& text() const { return text_; }
    std::string take() { return std::move(text_); }

private:
    void begin_sample(std::string_view name, const Labels& labels, const Label* extra = nullptr);

    std::string text_;
    std::string current_; // family being written
    Type current_type_ = Type::Untyped;
    std::set<std::string, std::less<>> written_;
};

// Named counters and histograms, each family with its help text and labelled children. Getting a
// child takes a lock and a lookup: do it once, at set-up (a subscription loaded), and keep the
// returned object for the hot path. The same name and labels give the same object, so counts
// carry over when a subscription is reloaded. Thread-safe. Children are never removed (a
// counter must not go back).
class Registry {
public:
    std::shared_ptr<Counter> counter(const std::string& name, const std::string& help,
                                     Labels labels = {});
    std::shared_ptr<Histogram> histogram(const std::string& name, const std::string& help,
                                         std::vector<double> bounds, Labels labels = {});
    // Every family, by name; children by labels.
    void write(Exposition& out) const;

private:
    struct Family {
        std::string help;
        Type type = Type::Counter;
        std::map<std::string, Labels> labels;                     // key: the label text
        std::map<std::string, std::shared_ptr<Counter>> counters; // same keys
        std::map<std::string, std::shared_ptr<Histogram>> histograms;
    };
    Family& family(const std::string& name, const std::string& help, Type type,
                   const Labels& labels, std::string& key);

    mutable std::mutex mutex_;
    std::map<std::string, Family> families_;
};

} // namespace wec::metrics

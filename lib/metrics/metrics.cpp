#include "metrics/metrics.hpp"

#include <algorithm>
#include <cmath>

namespace wec::metrics {

namespace {

bool name_char(char c, bool first, bool colon) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
    if (colon && c == ':') return true;
    return !first && c >= '0' && c <= '9';
}

void check_metric_name(std::string_view name) {
    if (!valid_metric_name(name))
        throw MetricsError("metric name '" + std::string(name) +
                           "' is not [a-zA-Z_:][a-zA-Z0-9_:]*");
}

void check_labels(std::string_view metric, const Labels& labels) {
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (!valid_label_name(labels[i].name))
            throw MetricsError("metric " + std::string(metric) + ": label name '" + labels[i].name +
                               "' is not [a-zA-Z_][a-zA-Z0-9_]* (or starts with the reserved __)");
        for (std::size_t j = 0; j < i; ++j)
            if (labels[j].name == labels[i].name)
                throw MetricsError("metric " + std::string(metric) + ": label '" + labels[i].name +
                                   "' given twice");
    }
}

// `{a="x",b="y"}`, or "" without labels.
void append_labels(std::string& out, const Labels& labels, const Label* extra) {
    if (labels.empty() && !extra) return;
    out.push_back('{');
    bool first = true;
    auto one = [&](const Label& l) {
        if (!first) out.push_back(',');
        first = false;
        out += l.name;
        out += "=\"";
        out += escape_label_value(l.value);
        out.push_back('"');
    };
    for (const auto& l : labels)
        one(l);
    if (extra) one(*extra);
    out.push_back('}');
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

} // namespace

std::string_view to_string(Type type) {
    switch (type) {
    case Type::Counter:
        return "counter";
    case Type::Gauge:
        return "gauge";
    case Type::Histogram:
        return "histogram";
    case Type::Untyped:
        break;
    }
    return "untyped";
}

bool valid_metric_name(std::string_view name) {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (!name_char(name[i], i == 0, true)) return false;
    return true;
}

bool valid_label_name(std::string_view name) {
    if (name.empty() || name.substr(0, 2) == "__") return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (!name_char(name[i], i == 0, false)) return false;
    return true;
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out.push_back(c);
    }
    return out;
}

std::string escape_help(std::string_view help) {
    std::string out;
    out.reserve(help.size());
    for (char c : help) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out.push_back(c);
    }
    return out;
}

std::string format_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value); // shortest exact form
    return ec == std::errc{} ? std::string(buf, end) : std::string("NaN");
}

// ---- Histogram -------------------------------------------------------------------------------

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
    if (bounds_.empty()) throw MetricsError("histogram without buckets");
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
        if (!std::isfinite(bounds_[i]))
            throw MetricsError("histogram bucket bound " + format_value(bounds_[i]) +
                               " is not finite (+Inf is implied)");
        if (i > 0 && !(bounds_[i] > bounds_[i - 1]))
            throw MetricsError("histogram bucket bounds are not strictly ascending at " +
                               format_value(bounds_[i]));
    }
    counts_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
}

void Histogram::observe(double value) noexcept {
    if (std::isnan(value)) return;
    auto bucket = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                           bounds_.begin()); // value <= le
    counts_[bucket].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot s;
    s.bounds = bounds_;
    s.counts.resize(bounds_.size() + 1);
    for (std::size_t i = 0; i < s.counts.size(); ++i) {
        s.counts[i] = counts_[i].load(std::memory_order_relaxed);
        s.count += s.counts[i];
    }
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
}

// ---- Exposition ------------------------------------------------------------------------------

void Exposition::family(std::string_view name, std::string_view help, Type type) {
    check_metric_name(name);
    if (written_.count(name))
        throw MetricsError("metric family " + std::string(name) + " written twice");
    written_.emplace(name);
    current_ = std::string(name);
    current_type_ = type;
    text_ += "# HELP ";
    text_ += name;
    text_.push_back(' ');
    text_ += escape_help(help);
    text_ += "\n# TYPE ";
    text_ += name;
    text_.push_back(' ');
    text_ += to_string(type);
    text_.push_back('\n');
}

void Exposition::begin_sample(std::string_view name, const Labels& labels, const Label* extra) {
    bool belongs = !current_.empty() && name.substr(0, current_.size()) == current_;
    if (belongs) {
        auto suffix = name.substr(current_.size());
        belongs = current_type_ == Type::Histogram
                      ? suffix == "_bucket" || suffix == "_sum" || suffix == "_count"
                      : suffix.empty();
    }
    if (!belongs)
        throw MetricsError("sample " + std::string(name) + " is not of the family being written (" +
                           (current_.empty() ? std::string("none") : current_) + ")");
    check_labels(name, labels);
    if (extra && ends_with(name, "_bucket"))
        for (const auto& l : labels)
            if (l.name == extra->name)
                throw MetricsError("histogram " + current_ + ": label '" + l.name +
                                   "' is reserved");
    text_ += name;
    append_labels(text_, labels, extra);
    text_.push_back(' ');
}

void Exposition::sample(std::string_view name, const Labels& labels, double value) {
    begin_sample(name, labels);
    text_ += format_value(value);
    text_.push_back('\n');
}

void Exposition::histogram(std::string_view name, const Labels& labels,
                           const Histogram::Snapshot& h) {
    if (current_type_ != Type::Histogram || name != current_)
        throw MetricsError("histogram " + std::string(name) +
                           " outside a histogram family of that name");
    if (h.counts.size() != h.bounds.size() + 1)
        throw MetricsError("histogram " + std::string(name) + ": counts do not match its buckets");
    const std::string bucket = std::string(name) + "_bucket";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= h.bounds.size(); ++i) {
        cumulative += h.counts[i];
        Label le{"le", i < h.bounds.size() ? format_value(h.bounds[i]) : "+Inf"};
        begin_sample(bucket, labels, &le);
        text_ += std::to_string(cumulative);
        text_.push_back('\n');
    }
    sample(std::string(name) + "_sum", labels, h.sum);
    sample(std::string(name) + "_count", labels, cumulative);
}

// ---- Registry --------------------------------------------------------------------------------

Registry::Family& Registry::family(const std::string& name, const std::string& help, Type type,
                                   const Labels& labels, std::string& key) {
    check_metric_name(name);
    check_labels(name, labels);
    if (type == Type::Histogram)
        for (const auto& l : labels)
            if (l.name == "le")
                throw MetricsError("histogram " + name + ": label 'le' is reserved");
    key.clear();
    append_labels(key, labels, nullptr);
    auto [it, inserted] = families_.try_emplace(name);
    if (inserted) {
        it->second.help = help;
        it->second.type = type;
    } else if (it->second.type != type) {
        throw MetricsError("metric " + name + " registered as a " +
                           std::string(to_string(it->second.type)) + " and as a " +
                           std::string(to_string(type)));
    }
    it->second.labels.try_emplace(key, labels);
    return it->second;
}

std::shared_ptr<Counter> Registry::counter(const std::string& name, const std::string& help,
                                           Labels labels) {
    std::lock_guard lock(mutex_);
    std::string key;
    auto& f = family(name, help, Type::Counter, labels, key);
    auto& slot = f.counters[key];
    if (!slot) slot = std::make_shared<Counter>();
    return slot;
}

std::shared_ptr<Histogram> Registry::histogram(const std::string& name, const std::string& help,
                                               std::vector<double> bounds, Labels labels) {
    std::lock_guard lock(mutex_);
    std::string key;
    auto& f = family(name, help, Type::Histogram, labels, key);
    auto& slot = f.histograms[key];
    if (!slot) {
        slot = std::make_shared<Histogram>(std::move(bounds));
    } else if (slot->bounds() != bounds) {
        throw MetricsError("histogram " + name + " registered again with other buckets");
    }
    return slot;
}

void Registry::write(Exposition& out) const {
    std::lock_guard lock(mutex_);
    for (const auto& [name, f] : families_) {
        out.family(name, f.help, f.type);
        for (const auto& [key, labels] : f.labels) {
            if (f.type == Type::Histogram)
                out.histogram(name, labels, f.histograms.at(key)->snapshot());
            else
                out.sample(name, labels, f.counters.at(key)->value());
        }
    }
}

} // namespace wec::metrics

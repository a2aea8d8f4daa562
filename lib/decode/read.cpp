// Reading back `wec decode --format json` (schema 1): the Events requests, parsed again.
#include "decode/read.hpp"

#include <nlohmann/json.hpp>
#include <streambuf>
#include <utility>

namespace wec::decode {

namespace {

// The string value of j[key], "" when absent or not a string.
std::string string_of(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Why an Events request has no body: its encryption state and errors, as decode reported them.
std::string no_body_reason(const nlohmann::json& record) {
    std::string reason = "Events request without a body";
    if (auto enc = record.find("encryption"); enc != record.end() && enc->is_object()) {
        std::string state = string_of(*enc, "state");
        if (state == "undecryptable") {
            reason += " (undecryptable";
            if (auto r = string_of(*enc, "reason"); !r.empty()) reason += ": " + r;
            if (auto e = string_of(*enc, "error"); !e.empty()) reason += ", " + e;
            reason += ")";
        } else if (!state.empty()) {
            reason += " (encryption " + state + ")";
        }
    }
    if (auto t = record.find("truncated"); t != record.end() && t->is_boolean() && t->get<bool>())
        reason += ", truncated";
    if (auto errs = record.find("errors"); errs != record.end() && errs->is_array())
        for (const auto& e : *errs)
            if (e.is_string()) reason += "; " + e.get<std::string>();
    return reason;
}

} // namespace

EventsBatchReader::EventsBatchReader(std::istream& in, std::string name, SkipHandler on_skip,
                                     ReadLimits limits)
    : in_(in), name_(std::move(name)), on_skip_(std::move(on_skip)), limits_(limits) {}

bool EventsBatchReader::read_line(std::string& out) {
    out.clear();
    std::streambuf* sb = in_.rdbuf();
    if (sb == nullptr || in_.bad()) return false;
    bool any = false;
    for (;;) {
        int c;
        try {
            c = sb->sbumpc();
        } catch (const std::exception& e) {
            throw InputError(name_ + ":" + std::to_string(line_ + 1) + ": read error: " + e.what());
        }
        if (c == std::char_traits<char>::eof()) {
            in_.setstate(std::ios::eofbit);
            if (!any) return false;
            break;
        }
        any = true;
        if (c == '\n') break;
        if (out.size() >= limits_.max_line_bytes)
            throw InputError(name_ + ":" + std::to_string(line_ + 1) + ": line longer than " +
                             std::to_string(limits_.max_line_bytes) + " bytes");
        out.push_back(static_cast<char>(c));
    }
    if (!out.empty() && out.back() == '\r') out.pop_back();
    ++line_;
    return true;
}

bool EventsBatchReader::next(EventsBatch& batch) {
    while (read_line(buffer_)) {
        if (buffer_.find_first_not_of(" \t") == std::string::npos) continue; // blank line
        const std::string where = name_ + ":" + std::to_string(line_);
        ++stats_.records;
        nlohmann::json record;
        try {
            record = nlohmann::json::parse(buffer_);
        } catch (const nlohmann::json::exception& e) {
            throw InputError(where + ": malformed JSON: " + e.what());
        }
        if (!record.is_object()) throw InputError(where + ": not a JSON object");
        auto v = record.find("v");
        if (v == record.end() || !v->is_number_integer() ||
            v->get<std::int64_t>() != kSchemaVersion)
            throw InputError(
                where + ": not a `wec decode --format json` record of schema version " +
                std::to_string(kSchemaVersion) +
                " (\"v\": " + (v == record.end() ? std::string("absent") : v->dump()) + ")");
        if (string_of(record, "direction") != "request" || string_of(record, "action") != "Events")
            continue;

        auto skip = [&](std::string reason) {
            ++stats_.skipped;
            if (on_skip_) on_skip_(SkippedRecord{line_, std::move(reason)});
        };
        auto body = record.find("body");
        if (body == record.end() || !body->is_string()) {
            skip(no_body_reason(record));
            continue;
        }
        wsman::Message message;
        try {
            message = wsman::parse(body->get_ref<const std::string&>());
        } catch (const wec::Error& e) {
            skip(std::string("Events body does not parse: ") + e.what());
            continue;
        }
        if (message.action != wsman::Action::Events) {
            skip("the body is a " + std::string(wsman::to_string(message.action)) +
                 " message, not Events");
            continue;
        }
        batch.line = line_;
        batch.events.clear();
        batch.events.reserve(message.events.size());
        for (const auto& e : message.events)
            batch.events.emplace_back(e.xml);
        batch.bookmark = std::move(message.bookmark);
        batch.machine = std::move(message.machine_id);
        ++stats_.batches;
        stats_.events += batch.events.size();
        return true;
    }
    return false;
}

ReadStats read_events_batches(std::istream& in, const std::function<void(EventsBatch&&)>& on_batch,
                              const EventsBatchReader::SkipHandler& on_skip,
                              const std::string& name) {
    EventsBatchReader reader(in, name, on_skip);
    EventsBatch batch;
    while (reader.next(batch))
        on_batch(std::move(batch));
    return reader.stats();
}

} // namespace wec::decode

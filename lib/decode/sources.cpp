// A capture's Events requests grouped by source (`wec replay --pcap`).
#include "decode/sources.hpp"

#include "text/ascii.hpp"

#include <algorithm>

namespace wec::decode {

std::string_view to_string(SourceKind kind) {
    switch (kind) {
    case SourceKind::Kerberos:
        return "kerberos";
    case SourceKind::Ntlm:
        return "ntlm";
    case SourceKind::Address:
        break;
    }
    return "address";
}

std::string computer_of(std::string_view xml) {
    const auto open = xml.find("<Computer>");
    if (open == std::string_view::npos) return {};
    const auto start = open + 10;
    const auto close = xml.find("</Computer>", start);
    if (close == std::string_view::npos) return {};
    return std::string(xml.substr(start, close - start));
}

bool identity_matches(std::string_view pattern, std::string_view key) {
    if (text::iequals(pattern, key)) return true;
    if (pattern.empty() || pattern.find_first_of("@\\") != std::string_view::npos) return false;
    if (auto at = key.rfind('@'); at != std::string_view::npos)
        return text::iequals(pattern, key.substr(0, at));
    if (auto slash = key.find('\\'); slash != std::string_view::npos)
        return text::iequals(pattern, key.substr(slash + 1));
    return false;
}

void SourceCollector::on_record(const Record& r) {
    ++messages_;
    const std::uint64_t line = messages_;
    if (r.encryption == Encryption::Undecryptable) ++undecryptable_[r.reason];
    if (!r.is_request) return;

    std::string key;
    SourceKind kind = SourceKind::Address;
    if (!r.client.empty()) {
        key = r.client;
        kind = r.mechanism == "NTLM" ? SourceKind::Ntlm : SourceKind::Kerberos;
    } else {
        key = r.from_capture ? r.tuple.src.address_string() : r.input; // a lone body: its file
    }

    const wsman::Message* m = r.message ? &*r.message : nullptr;
    if (m && !m->machine_id.empty() && m->action != wsman::Action::Events)
        connection_machine_[r.connection] = m->machine_id; // Enumerate, Heartbeat, ...

    const bool events = m && m->action == wsman::Action::Events;
    if (!events) {
        // A request whose body could not be read: may have been an Events message.
        if (m || r.body_bytes == 0) return;
        std::string reason;
        if (r.encryption == Encryption::Undecryptable) {
            reason = "undecryptable request (" + r.reason;
            if (!r.reason_message.empty()) reason += ": " + r.reason_message;
            reason += ")";
        } else if (r.truncated) {
            reason = "request cut by the end of the capture";
        } else {
            reason = "request body is not a WS-Management message";
            if (!r.errors.empty()) reason += " (" + r.errors.front() + ")";
        }
        ++skipped_;
        if (on_skip_) on_skip_(SkippedRequest{key, line, r.connection, std::move(reason)});
        return;
    }
    if (r.truncated) {
        ++skipped_;
        if (on_skip_)
            on_skip_(SkippedRequest{key, line, r.connection,
                                    "Events message cut by the end of the capture"});
        return;
    }

    std::string machine = m->machine_id;
    if (machine.empty()) {
        if (auto it = connection_machine_.find(r.connection); it != connection_machine_.end())
            machine = it->second;
        else if (!m->events.empty())
            machine = computer_of(m->events.front().xml);
    }
    auto [it, inserted] = index_.try_emplace({key, machine}, sources_.size());
    if (inserted) {
        CapturedSource s;
        s.key = key;
        s.kind = kind;
        s.machine = machine;
        sources_.push_back(std::move(s));
    }
    CapturedSource& source = sources_[it->second];
    const std::string& subscription =
        r.subscription.name.empty() ? r.subscription.uuid : r.subscription.name;
    if (!subscription.empty() && std::find(source.subscriptions.begin(), source.subscriptions.end(),
                                           subscription) == source.subscriptions.end())
        source.subscriptions.push_back(subscription);
    wsman::EventsBatch batch;
    batch.line = line;
    batch.events.reserve(m->events.size());
    for (const auto& e : m->events)
        batch.events.emplace_back(e.xml);
    batch.bookmark = m->bookmark;
    batch.machine = machine;
    source.events += batch.events.size();
    events_ += batch.events.size();
    ++batches_;
    source.batches.push_back(std::move(batch));
}

} // namespace wec::decode

// A capture's Events requests grouped by source (`wec replay --pcap`).
#include "decode/sources.hpp"

#include "text/ascii.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace wec::decode {

namespace {

constexpr std::size_t kSpoolBuffer = 1u << 20; // written in pieces of about 1 MB

// Record layout (native byte order, the file never leaves the process): u64 line, then machine,
// bookmark and each event as u64 length + bytes, the event count (u64) before the events.
void put_u64(std::string& out, std::uint64_t v) {
    char b[8];
    std::memcpy(b, &v, 8);
    out.append(b, 8);
}
void put_text(std::string& out, std::string_view s) {
    put_u64(out, s.size());
    out.append(s);
}

struct Cursor {
    std::string_view data;
    std::uint64_t u64() {
        if (data.size() < 8) throw SpoolError("spool: record cut short");
        std::uint64_t v;
        std::memcpy(&v, data.data(), 8);
        data.remove_prefix(8);
        return v;
    }
    std::string text() {
        const auto n = u64();
        if (n > data.size()) throw SpoolError("spool: record cut short");
        std::string s(data.substr(0, n));
        data.remove_prefix(n);
        return s;
    }
};

std::string errno_text() {
    return std::strerror(errno);
}

} // namespace

BatchSpool::BatchSpool(const std::filesystem::path& dir) {
    std::filesystem::path where = dir;
    if (where.empty()) {
        const char* env = std::getenv("TMPDIR");
        where = env && *env ? env : "/tmp";
    }
    std::string name = (where / "wec-replay-spool-XXXXXX").string();
    fd_ = UniqueFd(::mkostemp(name.data(), O_CLOEXEC));
    if (!fd_)
        throw SpoolError("spool: cannot create a temp file in " + where.string() + ": " +
                         errno_text());
    ::unlink(name.c_str()); // gone with the descriptor, also on a crash
    buffer_.reserve(kSpoolBuffer);
}

void BatchSpool::flush_buffer() {
    std::string_view rest = buffer_;
    while (!rest.empty()) {
        const auto n = ::write(fd_.get(), rest.data(), rest.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw SpoolError("spool: write failed (" + errno_text() + ") after " +
                             std::to_string(flushed_) + " bytes");
        }
        rest.remove_prefix(static_cast<std::size_t>(n));
        flushed_ += static_cast<std::uint64_t>(n);
    }
    buffer_.clear();
}

BatchSpool::Ref BatchSpool::append(const wsman::EventsBatch& b) {
    const std::size_t start = buffer_.size();
    put_u64(buffer_, b.line);
    put_text(buffer_, b.machine);
    put_text(buffer_, b.bookmark);
    put_u64(buffer_, b.events.size());
    for (const auto& e : b.events)
        put_text(buffer_, e);
    const Ref ref{size_, buffer_.size() - start};
    size_ += ref.size;
    if (buffer_.size() >= kSpoolBuffer) flush_buffer();
    return ref;
}

wsman::EventsBatch BatchSpool::read(const Ref& ref) const {
    if (ref.offset + ref.size > size_ || ref.size < 32)
        throw SpoolError("spool: no record at offset " + std::to_string(ref.offset));
    std::string data(ref.size, '\0');
    std::size_t have = 0;
    // From the file up to flushed_, the rest from the buffer.
    while (have < data.size() && ref.offset + have < flushed_) {
        const std::size_t want = static_cast<std::size_t>(
            std::min<std::uint64_t>(data.size() - have, flushed_ - (ref.offset + have)));
        const auto n =
            ::pread(fd_.get(), data.data() + have, want, static_cast<off_t>(ref.offset + have));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            throw SpoolError("spool: read failed at offset " + std::to_string(ref.offset + have) +
                             ": " + (n < 0 ? errno_text() : "end of file"));
        have += static_cast<std::size_t>(n);
    }
    if (have < data.size()) {
        const std::size_t from = static_cast<std::size_t>(ref.offset + have - flushed_);
        std::memcpy(data.data() + have, buffer_.data() + from, data.size() - have);
    }
    Cursor c{data};
    wsman::EventsBatch b;
    b.line = c.u64();
    b.machine = c.text();
    b.bookmark = c.text();
    const auto count = c.u64();
    if (count > c.data.size() / 8) throw SpoolError("spool: record cut short");
    b.events.reserve(static_cast<std::size_t>(count));
    for (std::uint64_t k = 0; k < count; ++k)
        b.events.push_back(c.text());
    return b;
}

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

bool subscription_matches(std::string_view captured, const wsman::Subscription& offered) {
    if (captured.empty()) return false;
    if (offered.name == captured) return true;
    auto strip = [](std::string_view v) {
        if (v.size() > 5 && text::iequals(v.substr(0, 5), "uuid:")) v.remove_prefix(5);
        return v;
    };
    const std::string_view uuid = strip(captured);
    if (!offered.identifier.empty() && text::iequals(strip(offered.identifier), uuid)) return true;
    std::string_view notify = offered.notify_to;
    if (auto q = notify.find('?'); q != std::string_view::npos) notify = notify.substr(0, q);
    const auto slash = notify.rfind('/');
    return slash != std::string_view::npos && text::iequals(notify.substr(slash + 1), uuid);
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
    if (spool_)
        source.spooled.push_back(spool_->append(batch));
    else
        source.batches.push_back(std::move(batch));
}

} // namespace wec::decode

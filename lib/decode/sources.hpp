// The Events requests of a capture grouped by the source that sent them, for `wec replay --pcap`:
// a decode::Sink that keeps, per source, its Events batches (events byte for byte, bookmark,
// m:MachineID) in capture order.
//
// A source is who authenticated the connection and which machine it said it was:
//  - the Kerberos client principal of the connection's AP-REQ (the ticket's cname, decrypted with
//    the service keytab), "WIN10$@WINDOMAIN.LOCAL";
//  - the NTLM account of its AUTHENTICATE, "DOMAIN\user";
//  - else (plain HTTP, no authentication the decoder could read) the client's IP address (a lone
//    body file: its name);
// together with the m:MachineID of its Events (else of an Enumerate on the same connection, else
// the <Computer> of its first event). The same principal with two MachineIDs is two sources.
//
// Memory: without a BatchSpool every Events batch of the capture is held; with one (what `wec
// replay --pcap` does) the batches go to its temp file as they are decoded and each source keeps
// only their places (16 bytes a batch).
#pragma once

#include "common/handle.hpp"
#include "decode/decode.hpp"
#include "wsman/wsman.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wec::decode {

// The spool cannot be created, written or read (disk full, I/O error, a bad reference).
class SpoolError : public wec::Error {
public:
    using wec::Error::Error;
};

// Events batches written to a temp file as they come and read back one at a time: memory does not
// grow with their number or size. The file is created in `dir` (default: $TMPDIR, else /tmp) and
// unlinked at once: it is gone when the spool is destroyed or the process ends, whatever the
// reason. append() from one thread; read() from any number of threads once the appending is done
// (pread on one descriptor).
class BatchSpool {
public:
    struct Ref {
        std::uint64_t offset = 0; // in the spool's byte stream
        std::uint64_t size = 0;
    };
    explicit BatchSpool(const std::filesystem::path& dir = {});

    Ref append(const wsman::EventsBatch& batch);
    wsman::EventsBatch read(const Ref& ref) const;
    std::uint64_t bytes() const { return size_; } // written so far

private:
    void flush_buffer();
    UniqueFd fd_;
    std::string buffer_; // not yet written; at offset flushed_
    std::uint64_t flushed_ = 0, size_ = 0;
};

enum class SourceKind {
    Kerberos, // key: the client principal of the AP-REQ
    Ntlm,     // key: DOMAIN\user of the AUTHENTICATE
    Address,  // key: the client IP address (no identity seen)
};
std::string_view to_string(SourceKind kind); // "kerberos", "ntlm", "address"

struct CapturedSource {
    std::string key; // principal, DOMAIN\user, IP address (or a lone body's file name)
    SourceKind kind = SourceKind::Address;
    std::string machine; // m:MachineID ("" when neither the messages nor the events name one)
    // In capture order. EventsBatch::line is the message's position among all the messages of
    // the capture (1-based): its line in `wec decode --format json`. In memory (`batches`), or in
    // the collector's spool (`spooled`) when it has one.
    std::vector<wsman::EventsBatch> batches;
    std::vector<BatchSpool::Ref> spooled;
    std::size_t batch_count() const { return batches.size() + spooled.size(); }
    std::uint64_t events = 0;
    // The subscriptions its Events went to, in order of first use: the name when the capture
    // holds the EnumerateResponse that offered it, else the uuid of the NotifyTo path.
    std::vector<std::string> subscriptions;
};

// A request that may have carried events but cannot be replayed: its body could not be
// decrypted, was cut by the end of the capture, or does not parse. (It may have been a Heartbeat
// or an Enumerate: without the body nobody can tell.)
struct SkippedRequest {
    std::string source;     // the source's key ("" when unknown)
    std::uint64_t line = 0; // as EventsBatch::line
    std::uint64_t connection = 0;
    std::string reason;
};

class SourceCollector : public Sink {
public:
    using SkipHandler = std::function<void(const SkippedRequest&)>;
    // `spool`: where the batches go (it must outlive the sources); null: kept in memory.
    explicit SourceCollector(SkipHandler on_skip = {}, BatchSpool* spool = nullptr)
        : on_skip_(std::move(on_skip)), spool_(spool) {}

    void on_record(const Record& record) override;
    // From now on the batches go to `spool` (null: memory); it must outlive the sources.
    void set_spool(BatchSpool* spool) { spool_ = spool; }

    // The sources, in the order of their first Events message.
    const std::vector<CapturedSource>& sources() const { return sources_; }
    std::vector<CapturedSource> take() { return std::move(sources_); }

    std::uint64_t messages() const { return messages_; } // records seen
    std::uint64_t batches() const { return batches_; }   // Events messages kept
    std::uint64_t events() const { return events_; }
    std::uint64_t skipped() const { return skipped_; }
    // Why messages could not be decrypted: reason ("wrong-key", "no-session", ...) -> count.
    const std::map<std::string, std::uint64_t>& undecryptable() const { return undecryptable_; }

private:
    SkipHandler on_skip_;
    BatchSpool* spool_ = nullptr;
    std::vector<CapturedSource> sources_;
    std::map<std::pair<std::string, std::string>, std::size_t> index_; // (key, machine) -> source
    std::map<std::uint64_t, std::string> connection_machine_;          // MachineID of its Enumerate
    std::map<std::string, std::uint64_t> undecryptable_;
    std::uint64_t messages_ = 0, batches_ = 0, events_ = 0, skipped_ = 0;
};

// The <Computer> of an event ("" when it has none).
std::string computer_of(std::string_view event_xml);

// True when `pattern` (as given to `wec replay --identity`) names the source key `key`: equal
// ignoring case, or, for a pattern without '@' and '\', equal to the key's name before '@' /
// after '\'.
bool identity_matches(std::string_view pattern, std::string_view key);

// True when the offered subscription `offered` is the captured one `captured` (an entry of
// CapturedSource::subscriptions): the same name, or (a uuid) the same uuid at the end of its
// NotifyTo address (/wsman/subscriptions/<uuid>) or as its e:Identifier, ignoring case.
bool subscription_matches(std::string_view captured, const wsman::Subscription& offered);

} // namespace wec::decode

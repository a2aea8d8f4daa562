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
// Memory: every Events batch of the capture is held (what `wec replay --pcap` sends).
#pragma once

#include "decode/decode.hpp"
#include "wsman/wsman.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wec::decode {

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
    // the capture (1-based): its line in `wec decode --format json`.
    std::vector<wsman::EventsBatch> batches;
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
    explicit SourceCollector(SkipHandler on_skip = {}) : on_skip_(std::move(on_skip)) {}

    void on_record(const Record& record) override;

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

} // namespace wec::decode

// `wec replay --pcap`: a capture decoded (lib/decode: keytab, NTLM secrets) and its Events
// replayed in one step, one simulated source per source of the capture (decode::SourceCollector:
// Kerberos principal, NTLM account or client address, and MachineID), each under the identity
// given for it with --identity PRINCIPAL=CCACHE (docs/replay.md).
#pragma once

#include "client/client.hpp"

#include <CLI/CLI.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace wec::tool {

struct PcapOptions {
    std::vector<std::string> files;      // --pcap: captures (pcap/pcapng, gzip), in order
    std::vector<std::string> keytabs;    // --keytab: the collector's service keys
    std::vector<std::string> passwords;  // --password: NTLM accounts' passwords
    std::vector<std::string> nt_hashes;  // --nt-hash
    std::string ntlm_secrets;            // --ntlm-secrets: [DOMAIN\]USER:NTHASH lines
    std::vector<std::string> identities; // --identity PRINCIPAL=CCACHE
    std::size_t connections = 0;         // --connections when given: sources replayed at once
};

// Declares --pcap and the options that go with it on `replay`. Call it after the other options:
// the exclusions name them. Returns --pcap.
CLI::Option* add_pcap_options(CLI::App& replay, PcapOptions& o);

// What the rest of `wec replay`'s options resolved to.
struct PcapRun {
    client::SourceOptions source;     // manager URL, TLS or Kerberos service, compression, ...
    std::vector<std::string> ccaches; // --ccache: the default identity (at most one)
    std::string subscription;         // --subscription ("" = the first offered)
    std::string mechanism;            // for the summary: kerberos, spnego, ntlm, tls
    bool json = false;
    std::optional<std::chrono::milliseconds> retry_interval{}; // --retry-interval
};

// Decodes the captures (their Events batches spooled to an unlinked temp file), groups them by
// source and replays the sources concurrently (--connections at a time, default all up to
// kDefaultPcapConnections). Returns the exit code (docs/replay.md, EXIT STATUS).
constexpr std::size_t kDefaultPcapConnections = 64;
int run_pcap(const PcapOptions& o, const PcapRun& run);

} // namespace wec::tool

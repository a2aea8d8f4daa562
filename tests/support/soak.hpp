// The soak driver shared by tests/integration/serve_soak_test (short form) and
// bench/serve/soak_bench (long form): the real `wec serve` binary for one listener kind — a real
// MIT KDC (Kerberos, SPNEGO, and the keytab of the NTLM kind's negotiate listener), a users file
// (NTLM, Basic) or an openssl-CLI PKI (TLS with a client certificate, Basic over HTTPS), a store
// with one subscription, a JSON files output — driven by the client core (lib/client, async
// connections on one thread), and the server's RSS and open descriptors read from /proc.
//
// Two workloads, both real WEF requests checked for their answer:
//  - cycles: connect → authenticate (Kerberos/SPNEGO: the empty POST and mutual authentication;
//    NTLM: NEGOTIATE, 401 + CHALLENGE, AUTHENTICATE; TLS: a full handshake, no resumption; Basic:
//    a handshake and the password verified, once per connection) → one request → close. The
//    requests rotate through Enumerate (manager URL), Heartbeat and Events (two generated events
//    and a bookmark) on the subscription's NotifyTo URL.
//  - keep-alive: requests (Heartbeat and Events alternately) spread over a number of connections
//    opened once and kept.
#pragma once

#include "client/client.hpp"
#include "support/proc_stats.hpp" // cpu_seconds
#include "support/process.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <ostream>
#include <string>

namespace wec::testing {

enum class SoakKind {
    Kerberos, // `Authorization: Kerberos` (raw Kerberos tokens), HTTP listener
    Spnego,   // `Authorization: Negotiate` (SPNEGO), HTTP listener
    Tls,      // HTTPS with a client certificate
    Ntlm,     // `Authorization: Negotiate` with raw NTLMSSP (a local account of the users file) on
              // a negotiate listener that has Kerberos too (gss-ntlmssp, sealed bodies)
    Basic     // HTTPS without a client certificate, `Authorization: Basic` (SHA-512 crypt)
};
const char* to_string(SoakKind kind); // "kerberos", "spnego", "tls", "ntlm", "basic"
inline void PrintTo(SoakKind kind, std::ostream* os) {
    *os << to_string(kind);
} // GoogleTest

// Memory and descriptors of a process, from /proc (-1 when it cannot be read).
struct Footprint {
    long rss_kb = -1; // VmRSS
    long fds = -1;    // entries of /proc/PID/fd
};
Footprint footprint(int pid);

// What one workload did.
struct SoakResult {
    std::size_t ok = 0;     // requests answered as the protocol says
    std::size_t failed = 0; // errors and wrong answers
    std::string first_error;
    double seconds = 0;
    double server_cpu = 0; // seconds of CPU (user + system) the server used meanwhile
    double client_cpu = 0; // and this process
    double per_second() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
};

// A running `wec serve` of one listener kind with its realm or PKI, store and subscription.
// Points this process' MIT Kerberos at the test realm (environment variables) for Kerberos and
// SPNEGO. Throws std::runtime_error when the set-up fails. The server is stopped by PID in the
// destructor.
class SoakServer {
public:
    SoakServer(SoakKind kind, const std::string& wec_exe);
    ~SoakServer();
    SoakServer(const SoakServer&) = delete;
    SoakServer& operator=(const SoakServer&) = delete;

    SoakKind kind() const;
    int pid() const;
    std::string log() const; // what the server wrote so far
    bool running() const;

    // Before a baseline: `cycles` cycles, then `requests` keep-alive requests in two rounds of
    // `connections` fresh connections (the first connections size the allocator's arenas,
    // SQLite's cache and the output; a TLS connection holds ~77 KB of buffers while open).
    // Returns what the warm-up did (failed = 0 unless the set-up is broken).
    SoakResult warm_up(std::size_t cycles = 300, std::size_t requests = 1000,
                       std::size_t connections = 50);
    // `count` connect → authenticate → request → close cycles, `in_flight` at a time.
    SoakResult cycles(std::size_t count, std::size_t in_flight = 8);
    // `requests` requests spread evenly over `connections` keep-alive connections (opened and
    // authenticated first; their set-up is not timed), then the connections are closed.
    SoakResult keep_alive(std::size_t requests, std::size_t connections = 50);

    // The footprint once the server's descriptor count has not changed for `stable` (a baseline:
    // the last connections of a warm-up are closed, outputs it opened stay open), at most
    // `timeout`.
    Footprint quiet(std::chrono::milliseconds stable = std::chrono::milliseconds(500),
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
    // Polls the server's footprint until it holds at most `fds` descriptors (connections closed
    // by the clients take a moment to be closed on the server's side) or `timeout` passes;
    // returns the last footprint.
    Footprint settle(long fds, std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace wec::testing

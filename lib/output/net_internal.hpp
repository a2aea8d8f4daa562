// Sockets for the network output drivers (internal to lib/output): addresses, a stream connection
// (plain TCP, TLS or unix) and a datagram socket (UDP or unix) whose every operation has a
// deadline, and the senders the drivers share, which keep one connection, reconnect with backoff
// and log once per change of state.
#pragma once

#include "common/handle.hpp"
#include "common/log.hpp"
#include "output/output.hpp"
#include "output/settings_internal.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace wec::output::detail::net {

using Clock = std::chrono::steady_clock;

// The largest payload of one UDP datagram over IPv4 (65535 - 20 - 8): the bound of every message
// sent as a datagram (UDP and unix sockets).
inline constexpr std::size_t kMaxDatagram = 65507;

// Default of `timeout_ms`: connect + TLS handshake, and the whole write of one batch.
inline constexpr std::int64_t kDefaultTimeoutMs = 10000;
// Reconnect backoff after a failure: doubles from kBackoffInitial up to kBackoffMax.
inline constexpr std::chrono::milliseconds kBackoffInitial{250};
inline constexpr std::chrono::milliseconds kBackoffMax{5000};

// Owns one file descriptor.
using Fd = wec::UniqueFd;

struct HostPort {
    std::string host; // name or address (IPv6 without brackets)
    std::uint16_t port = 0;
    std::string text() const; // "host:port", "[v6]:port"
};

// "host:port" or "[v6]:port". `default_port` is used when the port is left out (0: required).
// Throws OutputError saying what is wrong (the caller adds the key).
HostPort parse_host_port(std::string_view text, std::uint16_t default_port = 0);

// TLS client settings: `ca` (PEM file of trusted CAs; default: the system's), `cert` + `key`
// (client certificate chain and its key, PEM), `server_name` (SNI and the name checked in the
// peer's certificate; default: the host of the address).
struct TlsOptions {
    std::string ca;
    std::string cert;
    std::string key;
    std::string server_name;
};

// Reads the TLS keys; when `enabled` is false, any of them is an error naming `why_disabled`.
std::optional<TlsOptions> read_tls(SettingsReader& reader, bool enabled,
                                   std::string_view why_disabled);
std::chrono::milliseconds read_timeout(SettingsReader& reader);

// A connected stream socket: TCP, plain or TLS, or a unix stream socket. The socket is
// non-blocking and TLS runs over memory BIOs, so that every operation is bounded by its deadline
// and no SIGPIPE is ever raised.
class Stream {
public:
    // Connects (and handshakes, verifying the peer's certificate) before `deadline`, or throws.
    Stream(const HostPort& peer, const TlsOptions* tls, Clock::time_point deadline);
    // Connects to the unix stream socket at `path`, or throws.
    static Stream unix_stream(const std::string& path, Clock::time_point deadline);
    ~Stream();
    Stream(Stream&&) noexcept;
    Stream& operator=(Stream&&) noexcept;

    // False when the peer has closed or reset the connection; what the peer sent is dropped.
    bool alive(Clock::time_point deadline);
    // Writes all of `data` (TLS: SSL_write returned for all of it), or throws: on failure, and
    // when `deadline` passes first (a peer that stopped reading).
    void write(std::string_view data, Clock::time_point deadline);
    // Reads what the peer sent: at least one byte, at most `buffer.size()`, or throws: when the
    // peer closed the connection, on failure, and when `deadline` passes first.
    std::size_t read(std::span<char> buffer, Clock::time_point deadline);

    struct Tls;

private:
    explicit Stream(Fd fd);
    Fd fd_;
    std::unique_ptr<Tls> tls_;
};

// A connected datagram socket: UDP, or a unix datagram socket (such as /dev/log).
class Datagram {
public:
    static Datagram udp(const HostPort& peer);
    static Datagram unix_socket(const std::string& path);

    // Sends one datagram (at most kMaxDatagram bytes), waiting until `deadline` while the
    // receiver's queue is full. Throws on failure or timeout.
    void send(std::string_view message, Clock::time_point deadline);

private:
    explicit Datagram(Fd fd) : fd_(std::move(fd)) {}
    Fd fd_;
};

// Connection state of one network output: backoff after failures, one log line per change of
// state (connected, lost, unavailable, recovered), counters. Not thread-safe: used under the
// sender's lock (counters are atomic and read by stats()).
class LinkState {
public:
    LinkState(Logger* log, std::string name) : log_(log), name_(std::move(name)) {}

    // Throws (counted as refused) while a reconnect is not due yet.
    void check_due(Clock::time_point now);
    void connected();
    // The connection was found closed by the peer between two batches: reconnect now.
    void closed_by_peer();
    // A connect or a write failed: wait before the next attempt. Returns the error to throw.
    OutputError failed(const std::string& what);
    void delivered() { attempts_ = 0; }
    // A batch refused without a verdict on the connection (it waited too long for its turn).
    // Safe without the sender's lock.
    OutputError refused(const std::string& what);
    // A batch the peer refused on a healthy connection (net::Rejected): counted; logged when
    // the peer's message differs from the last one logged, else at most once a minute.
    OutputError rejected(const std::string& what);
    // reopen(): forget the backoff; the sender drops its connection before the next batch.
    void request_reconnect() { reconnect_requested_ = true; }
    bool take_reconnect_request() { return reconnect_requested_.exchange(false); }
    // A message cut to fit in a datagram: counted, logged at most once a minute.
    void truncated(std::size_t from, std::size_t to);
    DriverStats stats() const;

private:
    enum class State { Initial, Up, Lost, Down };
    Logger* log_;
    std::string name_;
    State state_ = State::Initial;
    unsigned attempts_ = 0; // consecutive failures
    Clock::time_point next_attempt_{};
    std::string last_error_;
    std::uint64_t refused_since_down_ = 0;
    std::atomic<bool> reconnect_requested_{false};
    std::atomic<std::uint64_t> refused_{0};
    std::atomic<std::uint64_t> connects_{0};
    std::atomic<std::uint64_t> truncated_{0};
    std::mutex truncate_mutex_; // truncated() runs outside the sender's lock
    Clock::time_point truncate_logged_{};
    std::uint64_t truncated_unlogged_ = 0;
    std::string rejection_logged_;
    Clock::time_point rejection_logged_at_{};
    std::uint64_t rejected_unlogged_ = 0;
};

// What a sender connects to.
struct Target {
    enum class Kind { Tcp, Udp, Unix, UnixStream } kind = Kind::Tcp;
    HostPort address;              // Tcp, Udp
    std::string path;              // Unix (datagram), UnixStream
    std::optional<TlsOptions> tls; // Tcp
};

// The peer answered a request with a refusal that concerns this request only (Redis: WRONGTYPE
// for one key): the batch is refused, the connection stays up and no backoff starts.
class Rejected : public OutputError {
public:
    using OutputError::OutputError;
};

// One stream connection shared by every batch of a driver; batches go one at a time.
class StreamSender {
public:
    // A step of a conversation on the connection, to be done before `deadline`.
    using Step = std::function<void(Stream&, Clock::time_point deadline)>;

    // `greet` (optional) runs on each new connection before its first batch (a login): when it
    // throws, the connection counts as failed.
    StreamSender(Target target, std::chrono::milliseconds timeout, Logger* log, std::string name,
                 Step greet = {})
        : target_(std::move(target)), timeout_(timeout), greet_(std::move(greet)),
          state_(log, std::move(name)) {}
    // Writes `payload` (one whole batch) or throws output::OutputError.
    void send(std::string_view payload);
    // Runs `exchange` (one whole batch: a request and the reading of its replies) on the
    // connection, or throws output::OutputError. When `exchange` throws Rejected, the connection is
    // kept (the batch is refused, counted and logged by LinkState::rejected); when it throws
    // another output::OutputError, the connection is closed and the reconnect backoff starts.
    void exchange(const Step& exchange);
    void reopen() { state_.request_reconnect(); }
    LinkState& state() { return state_; }
    const LinkState& state() const { return state_; }

private:
    Stream open(Clock::time_point deadline) const;
    Target target_;
    std::chrono::milliseconds timeout_;
    Step greet_;
    std::timed_mutex mutex_; // one batch at a time on the connection
    std::optional<Stream> stream_;
    LinkState state_;
};

// One datagram socket shared by every batch of a driver.
class DatagramSender {
public:
    DatagramSender(Target target, std::chrono::milliseconds timeout, Logger* log, std::string name)
        : target_(std::move(target)), timeout_(timeout), state_(log, std::move(name)) {}
    // Sends each message as one datagram (each at most kMaxDatagram bytes) or throws.
    void send(std::span<const std::string_view> messages);
    void reopen() { state_.request_reconnect(); }
    LinkState& state() { return state_; }
    const LinkState& state() const { return state_; }

private:
    Datagram open() const;
    Target target_;
    std::chrono::milliseconds timeout_;
    std::timed_mutex mutex_;
    std::optional<Datagram> socket_;
    LinkState state_;
};

// The length of the longest prefix of `text` of at most `max` bytes that does not end inside a
// UTF-8 sequence.
std::size_t utf8_prefix(std::string_view text, std::size_t max);

} // namespace wec::output::detail::net

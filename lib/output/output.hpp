// Output drivers: where accepted events go. A driver receives one batch (the events of one
// Events message, already formatted, one per line) and must have handed them to its destination
// before write() returns: the collector stores the bookmark and acks only after every driver
// returned. A driver that cannot take a batch throws output::OutputError (the collector answers 503
// and the source sends the batch again).
#pragma once

#include "common/error.hpp"
#include "common/log.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace wec::output {

class OutputError : public wec::Error {
public:
    using wec::Error::Error;
};

// A bad driver setting; key() names it (empty when a required key is missing).
class SettingError : public OutputError {
public:
    SettingError(std::string key, const std::string& what)
        : OutputError(what), key_(std::move(key)) {}
    const std::string& key() const { return key_; }

private:
    std::string key_;
};

// What a driver may use to route a batch (path templates, topics, ...).
struct BatchInfo {
    std::string_view ip;      // client address
    std::string_view client;  // principal or certificate CN
    std::string_view machine; // MachineID header (FQDN) if any
    std::string_view node;    // this collector's node name (node_name, default: the host name)
    std::string_view subscription_name;
    std::string_view subscription_uuid;
    std::chrono::system_clock::time_point received;
    // The XML of each event of the batch (one <Event> document each), in the order of the lines
    // given to write(); empty when the caller has none. Drivers that need fields of the events
    // whatever the format (syslog: time, computer, event id, level) parse them from here.
    std::span<const std::string_view> events;
};

// Counters of a driver, for logs and tests.
struct DriverStats {
    std::uint64_t refused = 0;   // write() calls that threw (batches refused)
    std::uint64_t connects = 0;  // connections established (network drivers)
    std::uint64_t truncated = 0; // messages cut to fit in one datagram
};

class Driver {
public:
    virtual ~Driver() = default;
    // `lines` holds whole lines, each ending with '\n'. Throws output::OutputError on failure.
    virtual void write(const BatchInfo& batch, std::string_view lines) = 0;
    // Re-open files, reconnect sockets (SIGHUP, after logrotate moved files or a peer's
    // certificate changed). Does not block on a write in progress.
    virtual void reopen() {}
    virtual std::string describe() const = 0;
    virtual DriverStats stats() const { return {}; }
    // How many batches the collector lets write() work on at once (its writer threads): more
    // than one only where batches can progress in parallel (different files, a group commit,
    // deliveries awaited from a broker).
    virtual std::size_t concurrency() const { return 1; }
    // True when write() reaches no other process or machine (a file): it seldom blocks for long,
    // so the collector may run it on the thread that decoded the batch even when that thread is
    // also the network's (CollectorConfig::handlers_on_io_threads).
    virtual bool local() const { return false; }
};

// Driver settings as given in a subscription's [[outputs]] table.
using SettingValue = std::variant<std::string, std::int64_t, bool>;
using Settings = std::map<std::string, SettingValue>; // same shape as subscription::Output::options

// `driver = "files"`: `path` is a template with {ip}, {client}, {machine}, {subscription},
// {subscription_uuid}, {node} (BatchInfo::node: the writing process's node name, so that several
// processes or nodes never append to one file) and {date} (UTC, YYYY-MM-DD). Values are sanitised
// so that a client name can never leave the directory ('/' and '..' are replaced). Parent
// directories are created. Files are opened in append mode and kept open (up to `max_open_files`,
// least recently used closed first; a file evicted or re-opened while a writer is using it closes
// when that writer is done). A batch is never interleaved with another one. Writes to different
// files run in parallel; writes to one file are serialised. `fsync = true` also forces each batch
// to disk before returning (slower; default: handed to the OS); concurrent batches to one file
// share one fdatasync (group commit). When a write or fdatasync fails (full disk, I/O error, file
// size limit), the file is truncated back to its size before the refused batch(es), so that the
// batch sent again never follows a partial line; if even that fails, the file is closed and the
// next batch starts on a new line.
//
// `driver = "tcp"`, `driver = "syslog"`, `driver = "unix"`: see tcp.cpp, syslog.cpp, unix.cpp and
// docs/subscriptions.md. They connect on the first write (never in make_driver), keep the
// connection, and after a failure refuse batches at once until a reconnect is due (backoff).
// `driver = "kafka"`: see kafka.cpp (librdkafka; a batch is accepted once every message of it was
// acknowledged).
// `driver = "redis"`: the same; see redis.cpp.
//
// Throws output::OutputError for an unknown driver, an unknown key or a bad value. `log` (optional)
// receives one line per change of a network driver's state (connected, lost, recovered).
std::unique_ptr<Driver> make_driver(std::string_view driver, const Settings& settings,
                                    Logger* log = nullptr);

// The checks of make_driver without creating anything (no file, socket or TLS context): for
// `wec sub apply`, before a definition is stored. Throws SettingError saying which key is wrong,
// or OutputError for an unknown driver.
void check_settings(std::string_view driver, const Settings& settings);
// "files, kafka, redis, syslog, tcp, unix"
std::string_view known_drivers();
bool is_known_driver(std::string_view driver);

// Exposed for tests and for `wec sub` validation.
std::string expand_path_template(std::string_view tmpl, const BatchInfo& batch);
// The keys a template may name: ip, client, machine, subscription, subscription_uuid, node, date.
inline constexpr std::string_view kTemplateKeys =
    "{ip}, {client}, {machine}, {subscription}, {subscription_uuid}, {node}, {date}";
// Throws OutputError naming the first `{key}` of `tmpl` that is not one of kTemplateKeys (a '{'
// with no
// '}' after it is taken literally).
void check_template(std::string_view tmpl);
std::string sanitize_path_component(std::string_view value);

} // namespace wec::output

// Output drivers: where accepted events go. A driver receives one batch (the events of one
// Events message, already formatted, one per line) and must have handed them to the OS before
// write() returns: the collector stores the bookmark and acks only after every driver returned.
#pragma once

#include "common/error.hpp"

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

namespace wec::output {

class Error : public wec::Error {
public:
    using wec::Error::Error;
};

// What a driver may use to route a batch (path templates, topics, ...).
struct BatchInfo {
    std::string_view ip;      // client address
    std::string_view client;  // principal or certificate CN
    std::string_view machine; // MachineID header (FQDN) if any
    std::string_view subscription_name;
    std::string_view subscription_uuid;
    std::chrono::system_clock::time_point received;
};

class Driver {
public:
    virtual ~Driver() = default;
    // `lines` holds whole lines, each ending with '\n'. Throws output::Error on failure.
    virtual void write(const BatchInfo& batch, std::string_view lines) = 0;
    // Re-open files (SIGHUP, after logrotate moved them).
    virtual void reopen() {}
    virtual std::string describe() const = 0;
};

// Driver settings as given in a subscription's [[outputs]] table.
using SettingValue = std::variant<std::string, std::int64_t, bool>;
using Settings = std::map<std::string, SettingValue>; // same shape as subscription::Output::options

// `driver = "files"`: `path` is a template with {ip}, {client}, {machine}, {subscription},
// {subscription_uuid} and {date} (UTC, YYYY-MM-DD). Values are sanitised so that a client name can
// never leave the directory ('/' and '..' are replaced). Parent directories are created. Files are
// opened in append mode and kept open (up to `max_open_files`, least recently used closed first; a
// file evicted or re-opened while a writer is using it closes when that writer is done). A batch is
// never interleaved with another one. Writes to different files run in parallel; writes to one
// file are serialised. `fsync = true` also forces each batch to disk before returning (slower;
// default: handed to the OS); concurrent batches to one file share one fdatasync (group commit).
// When a write or fdatasync fails (full disk, I/O error, file size limit), the file is truncated
// back to its size before the refused batch(es), so that the batch sent again never follows a
// partial line; if even that fails, the file is closed and the next batch starts on a new line.
std::unique_ptr<Driver> make_driver(std::string_view driver, const Settings& settings);

// Exposed for tests and for `wec sub` validation.
std::string expand_path_template(std::string_view tmpl, const BatchInfo& batch);
std::string sanitize_path_component(std::string_view value);

} // namespace wec::output

#include "output/drivers_internal.hpp"
#include "output/net_internal.hpp"
#include "output/settings_internal.hpp"

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <fcntl.h>
#include <filesystem>
#include <list>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>
#include <utility>
#include <vector>

namespace wec::output {
namespace net = detail::net;
namespace {

using net::Fd; // the component's one owner of a file descriptor

// One open output file, shared by the writers using it: an LRU eviction or reopen() only drops the
// driver's reference, and the descriptor is closed when the last writer is done with it.
struct File {
    File(std::string p, Fd f, const struct stat& st, bool newline_first)
        : path(std::move(p)), fd(std::move(f)), dev(st.st_dev), ino(st.st_ino),
          needs_newline(newline_first) {}

    const std::string path;
    const Fd fd;
    const dev_t dev;
    const ino_t ino;

    // Set under write_mutex when the file takes no more batches (a truncate or an fdatasync
    // failed); the driver has forgotten it by then, and a writer that finds it set looks the path
    // up again.
    std::atomic<bool> retired{false};

    // One batch at a time, from the fstat of its starting size to the end of its write (or of
    // the truncate that undoes it).
    std::mutex write_mutex;
    bool needs_newline; // the file did not end with '\n' when opened (a torn line from before)

    // Group commit (fsync = true). A writer whose batch is written waits until a successful
    // fdatasync started after its write; the first waiter to find no sync running issues one for
    // every batch written so far, the others wait for it.
    std::mutex sync_mutex;
    std::condition_variable sync_done;
    std::uint64_t written = 0; // sequence number of the last batch written
    std::uint64_t synced = 0;  // batches up to this one are on disk
    bool syncing = false;      // an fdatasync is running for the waiters
    std::deque<std::pair<std::uint64_t, off_t>> unsynced; // (sequence, file size before it)
    std::string sync_error; // an fdatasync failed: the batches after `synced` were refused
};

// Writes all of `data`; returns 0 or the errno of the write that failed.
int write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return EIO; // no progress and no error: do not spin
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return 0;
}

std::string errno_text(int err) {
    return std::strerror(err);
}

class FilesDriver final : public Driver {
public:
    FilesDriver(std::string tmpl, bool fsync, std::size_t max_open)
        : template_(std::move(tmpl)), fsync_(fsync), max_open_(max_open ? max_open : 1) {}

    void write(const BatchInfo& batch, std::string_view lines) override {
        if (lines.empty()) return;
        std::string path = expand_path_template(template_, batch);
        for (int attempt = 0;; ++attempt) {
            std::shared_ptr<File> file = acquire(path);
            std::uint64_t seq = 0;
            {
                std::lock_guard lock(file->write_mutex);
                if (file->retired) {
                    // It failed (and was forgotten) between our lookup and now: open it again.
                    if (attempt < 3) continue;
                    throw OutputError("cannot write to " + path + ": the file keeps failing");
                }
                off_t before = append(*file, lines);
                if (!fsync_) return;
                std::lock_guard sync_lock(file->sync_mutex);
                seq = ++file->written;
                file->unsynced.emplace_back(seq, before);
            }
            wait_synced(*file, seq);
            return;
        }
    }

    void reopen() override {
        std::unordered_map<std::string, Entry> closing; // closed after the lock is released
        std::lock_guard lock(mutex_);
        for (auto& [path, entry] : open_)
            retire_locked(path, entry.file);
        closing.swap(open_);
        lru_.clear();
    }

    std::string describe() const override { return "files:" + template_; }
    // Different files are written in parallel, and concurrent batches to one file share an
    // fdatasync: four batches at once.
    std::size_t concurrency() const override { return 4; }
    bool local() const override { return true; }

private:
    struct Entry {
        std::shared_ptr<File> file;
        std::list<std::string>::iterator lru;
    };

    // The open file for `path`: the driver's, or a new one. Opening happens outside the lock.
    std::shared_ptr<File> acquire(const std::string& path) {
        {
            std::lock_guard lock(mutex_);
            if (auto it = open_.find(path); it != open_.end()) {
                lru_.splice(lru_.begin(), lru_, it->second.lru);
                return it->second.file;
            }
        }
        std::shared_ptr<File> opened = open_file(path);
        std::vector<std::shared_ptr<File>> closing; // closed after the lock is released
        std::lock_guard lock(mutex_);
        if (auto it = open_.find(path); it != open_.end()) {
            // Another writer opened it meanwhile: use theirs (ours closes here).
            lru_.splice(lru_.begin(), lru_, it->second.lru);
            return it->second.file;
        }
        // A file evicted or reopened while a writer still held it is still open: if the path
        // still names that file, keep using it, so that one file never has two write locks.
        std::shared_ptr<File> file = opened;
        std::erase_if(in_use_, [&](const auto& kv) { return kv.second.expired(); });
        if (auto it = in_use_.find(path); it != in_use_.end()) {
            auto old = it->second.lock();
            if (old && !old->retired && old->dev == opened->dev && old->ino == opened->ino)
                file = std::move(old);
            in_use_.erase(it);
        }
        while (open_.size() >= max_open_) {
            auto victim = open_.find(lru_.back());
            retire_locked(victim->first, victim->second.file);
            closing.push_back(std::move(victim->second.file));
            open_.erase(victim);
            lru_.pop_back();
        }
        lru_.push_front(path);
        open_.emplace(path, Entry{file, lru_.begin()});
        return file;
    }

    static std::shared_ptr<File> open_file(const std::string& path) {
        std::error_code ec;
        auto parent = std::filesystem::path(path).parent_path();
        if (!parent.empty()) std::filesystem::create_directories(parent, ec);
        if (ec)
            throw OutputError("cannot create directory " + parent.string() + ": " + ec.message());
        // Read access only serves the check of the last byte below.
        Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
        if (fd.get() < 0 && errno == EACCES)
            fd = Fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
        if (fd.get() < 0) throw OutputError("cannot open " + path + ": " + errno_text(errno));
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0)
            throw OutputError("cannot stat " + path + ": " + errno_text(errno));
        // A file that does not end with a line break (torn by a crash, or by a failure we could
        // not undo) gets one before our first batch, so that no event is glued to a partial line.
        char last = '\n';
        if (st.st_size > 0 && ::pread(fd.get(), &last, 1, st.st_size - 1) != 1) last = '\n';
        return std::make_shared<File>(path, std::move(fd), st, last != '\n');
    }

    // Appends one batch; on failure removes what it wrote and throws. Called with write_mutex.
    // Returns the file size before the batch.
    off_t append(File& f, std::string_view lines) {
        struct stat st {};
        if (::fstat(f.fd.get(), &st) != 0) {
            int err = errno;
            forget(f);
            throw OutputError("cannot stat " + f.path + ": " + errno_text(err));
        }
        const off_t before = st.st_size;
        int err = f.needs_newline ? write_all(f.fd.get(), "\n") : 0;
        if (err == 0) err = write_all(f.fd.get(), lines);
        if (err == 0) {
            f.needs_newline = false;
            return before;
        }
        // Part of the batch may be in the file: cut it off, so that the batch the source sends
        // again does not follow a partial line.
        std::string what = "cannot write to " + f.path + ": " + errno_text(err);
        if (::ftruncate(f.fd.get(), before) != 0) {
            int terr = errno;
            forget(f);
            throw OutputError(what + "; truncating it back to " + std::to_string(before) +
                              " bytes also failed (" + errno_text(terr) +
                              "), so the file was closed and the next batch starts a new line");
        }
        throw OutputError(what + " (the partial batch was removed: truncated back to " +
                          std::to_string(before) + " bytes)");
    }

    void wait_synced(File& f, std::uint64_t seq) {
        std::unique_lock lock(f.sync_mutex);
        while (f.synced < seq) {
            if (!f.sync_error.empty()) throw OutputError(f.sync_error);
            if (f.syncing) {
                f.sync_done.wait(lock);
                continue;
            }
            // Lead: one fdatasync for every batch written so far, including one being written
            // now (taking its write lock waits for it: it would need the next sync otherwise).
            f.syncing = true;
            lock.unlock();
            std::uint64_t target;
            {
                std::lock_guard wlock(f.write_mutex);
                std::lock_guard slock(f.sync_mutex);
                target = f.written;
            }
            int rc;
            while ((rc = ::fdatasync(f.fd.get())) != 0 && errno == EINTR) {
            }
            const int err = rc == 0 ? 0 : errno;
            if (err) fail_sync(f, err);
            lock.lock();
            f.syncing = false;
            if (!err) {
                f.synced = target;
                while (!f.unsynced.empty() && f.unsynced.front().first <= target)
                    f.unsynced.pop_front();
            }
            f.sync_done.notify_all();
        }
    }

    // An fdatasync failed: none of the batches written since the last successful one is acked,
    // so cut them all off and refuse them (their sources send them again); the file is closed.
    void fail_sync(File& f, int err) {
        std::lock_guard wlock(f.write_mutex);
        std::lock_guard slock(f.sync_mutex);
        std::string what = "cannot sync " + f.path + ": " + errno_text(err);
        struct stat st {};
        if (f.retired) {
            // A truncate failed earlier and the path may be in use by a new descriptor: leave
            // the content alone (a refused batch that stays is only a duplicate).
        } else if (f.unsynced.empty() || ::fstat(f.fd.get(), &st) != 0 ||
                   f.unsynced.front().second >= st.st_size) {
            what += " (the file was closed)";
        } else if (const off_t to = f.unsynced.front().second; ::ftruncate(f.fd.get(), to) != 0) {
            what += "; truncating it back to " + std::to_string(to) + " bytes also failed (" +
                    errno_text(errno) + "), so the file was closed";
        } else {
            what += " (the batches not on disk were removed: truncated back to " +
                    std::to_string(to) + " bytes; the file was closed)";
        }
        f.sync_error = std::move(what);
        forget(f);
    }

    // Takes `f` out of service (called with its write_mutex): writers holding it finish, new
    // batches open the path again.
    void forget(File& f) {
        f.retired = true;
        std::lock_guard lock(mutex_);
        if (auto it = open_.find(f.path); it != open_.end() && it->second.file.get() == &f) {
            lru_.erase(it->second.lru);
            open_.erase(it);
        }
        if (auto it = in_use_.find(f.path); it != in_use_.end() && it->second.lock().get() == &f)
            in_use_.erase(it);
    }

    // The driver lets go of `file`; writers may still hold it (then remember it, see acquire).
    void retire_locked(const std::string& path, const std::shared_ptr<File>& file) {
        if (file.use_count() > 1) in_use_[path] = file;
    }

    std::string template_;
    bool fsync_;
    std::size_t max_open_;
    std::mutex mutex_; // guards open_, lru_ and in_use_, never held during I/O
    std::unordered_map<std::string, Entry> open_;
    std::list<std::string> lru_;
    std::unordered_map<std::string, std::weak_ptr<File>> in_use_;
};

} // namespace

std::string sanitize_path_component(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        unsigned char u = static_cast<unsigned char>(c);
        bool ok = std::isalnum(u) || c == '.' || c == '-' || c == '_' || c == '$' || c == '@';
        out.push_back(ok ? c : '_');
    }
    if (out.empty() || out == "." || out == "..") out = "_" + out;
    // "a..b" is harmless inside one component, but keep names free of ".." altogether.
    for (std::size_t pos; (pos = out.find("..")) != std::string::npos;)
        out[pos] = '_';
    return out;
}

std::string expand_path_template(std::string_view tmpl, const BatchInfo& b) {
    std::string out;
    out.reserve(tmpl.size() + 64);
    for (std::size_t i = 0; i < tmpl.size();) {
        if (tmpl[i] == '{') {
            auto close = tmpl.find('}', i);
            if (close != std::string_view::npos) {
                auto key = tmpl.substr(i + 1, close - i - 1);
                bool known = true;
                if (key == "ip")
                    out += sanitize_path_component(b.ip);
                else if (key == "client")
                    out += sanitize_path_component(b.client);
                else if (key == "machine")
                    out += sanitize_path_component(b.machine.empty() ? "unknown" : b.machine);
                else if (key == "subscription")
                    out += sanitize_path_component(b.subscription_name);
                else if (key == "subscription_uuid")
                    out += sanitize_path_component(b.subscription_uuid);
                else if (key == "node")
                    out += sanitize_path_component(b.node.empty() ? "unknown" : b.node);
                else if (key == "date")
                    out += detail::utc_date(b.received);
                else
                    known = false;
                if (known) {
                    i = close + 1;
                    continue;
                }
            }
        }
        out.push_back(tmpl[i++]);
    }
    return out;
}

void check_template(std::string_view tmpl) {
    for (auto open = tmpl.find('{'); open != std::string_view::npos;
         open = tmpl.find('{', open + 1)) {
        auto close = tmpl.find('}', open);
        if (close == std::string_view::npos) return;
        auto key = tmpl.substr(open, close - open + 1);
        if (kTemplateKeys.find(key) == std::string_view::npos) // each "{...}" of it is a key
            throw OutputError("names an unknown key " + std::string(key.substr(0, 64)) +
                              " (known: " + std::string(kTemplateKeys) + ")");
        open = close;
    }
}

std::string detail::utc_date(std::chrono::system_clock::time_point t) {
    std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    return buf;
}

std::unique_ptr<Driver> detail::make_files_driver(const Settings& settings) {
    detail::SettingsReader r("files", settings);
    std::string path = r.required_string("path");
    try {
        check_template(path);
    } catch (const OutputError& e) {
        r.fail("path", e.what());
    }
    bool fsync = r.boolean("fsync").value_or(false);
    auto max_open = r.integer("max_open_files", 1, 1 << 20).value_or(512);
    r.finish();
    return std::make_unique<FilesDriver>(std::move(path), fsync,
                                         static_cast<std::size_t>(max_open));
}

std::string_view known_drivers() {
    return "files, kafka, redis, syslog, tcp, unix";
}

bool is_known_driver(std::string_view driver) {
    return driver == "files" || driver == "kafka" || driver == "redis" || driver == "syslog" ||
           driver == "tcp" || driver == "unix";
}

std::unique_ptr<Driver> make_driver(std::string_view driver, const Settings& settings,
                                    Logger* log) {
    if (driver == "files") return detail::make_files_driver(settings);
    if (driver == "tcp") return detail::make_tcp_driver(settings, log);
    if (driver == "syslog") return detail::make_syslog_driver(settings, log);
    if (driver == "redis") return detail::make_redis_driver(settings, log);
    if (driver == "unix") return detail::make_unix_driver(settings, log);
    if (driver == "kafka") return detail::make_kafka_driver(settings, log);
    throw OutputError("unknown driver '" + std::string(driver) +
                      "' (known: " + std::string(known_drivers()) + ")");
}

void check_settings(std::string_view driver, const Settings& settings) {
    // Drivers open nothing when they are made (files and sockets are opened by the first write),
    // so making one and dropping it is exactly the check.
    make_driver(driver, settings, nullptr);
}

} // namespace wec::output

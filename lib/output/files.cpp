#include "output/output.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <list>
#include <mutex>
#include <sys/uio.h>
#include <unistd.h>
#include <unordered_map>
#include <utility>

namespace wec::output {
namespace {

// Owns one file descriptor.
class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

std::string date_of(std::chrono::system_clock::time_point t) {
    std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    return buf;
}

class FilesDriver final : public Driver {
public:
    FilesDriver(std::string tmpl, bool fsync, std::size_t max_open)
        : template_(std::move(tmpl)), fsync_(fsync), max_open_(max_open ? max_open : 1) {}

    void write(const BatchInfo& batch, std::string_view lines) override {
        if (lines.empty()) return;
        std::string path = expand_path_template(template_, batch);
        std::lock_guard lock(mutex_);
        int fd = open_locked(path);
        // One write per batch with O_APPEND: concurrent writers never interleave inside a batch.
        const char* p = lines.data();
        std::size_t left = lines.size();
        while (left > 0) {
            ssize_t n = ::write(fd, p, left);
            if (n < 0) {
                if (errno == EINTR) continue;
                int err = errno;
                forget_locked(path);
                throw Error("cannot write to " + path + ": " + std::strerror(err));
            }
            p += n;
            left -= static_cast<std::size_t>(n);
        }
        if (fsync_ && ::fdatasync(fd) != 0) {
            int err = errno;
            forget_locked(path);
            throw Error("cannot sync " + path + ": " + std::strerror(err));
        }
    }

    void reopen() override {
        std::lock_guard lock(mutex_);
        open_.clear();
        lru_.clear();
    }

    std::string describe() const override { return "files:" + template_; }

private:
    struct Entry {
        Fd fd;
        std::list<std::string>::iterator lru;
    };

    int open_locked(const std::string& path) {
        if (auto it = open_.find(path); it != open_.end()) {
            lru_.splice(lru_.begin(), lru_, it->second.lru);
            return it->second.fd.get();
        }
        std::error_code ec;
        auto parent = std::filesystem::path(path).parent_path();
        if (!parent.empty()) std::filesystem::create_directories(parent, ec);
        if (ec) throw Error("cannot create directory " + parent.string() + ": " + ec.message());
        Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640));
        if (fd.get() < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
        while (open_.size() >= max_open_) {
            open_.erase(lru_.back());
            lru_.pop_back();
        }
        lru_.push_front(path);
        int raw = fd.get();
        open_.emplace(path, Entry{std::move(fd), lru_.begin()});
        return raw;
    }

    void forget_locked(const std::string& path) {
        if (auto it = open_.find(path); it != open_.end()) {
            lru_.erase(it->second.lru);
            open_.erase(it);
        }
    }

    std::string template_;
    bool fsync_;
    std::size_t max_open_;
    std::mutex mutex_;
    std::unordered_map<std::string, Entry> open_;
    std::list<std::string> lru_;
};

template <typename T>
const T* get(const Settings& s, std::string_view key) {
    auto it = s.find(std::string(key));
    return it == s.end() ? nullptr : std::get_if<T>(&it->second);
}

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
                else if (key == "date")
                    out += date_of(b.received);
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

std::unique_ptr<Driver> make_driver(std::string_view driver, const Settings& settings) {
    if (driver == "files") {
        const auto* path = get<std::string>(settings, "path");
        if (!path || path->empty()) throw Error("output driver 'files' needs a 'path'");
        const auto* fsync = get<bool>(settings, "fsync");
        const auto* max_open = get<std::int64_t>(settings, "max_open_files");
        return std::make_unique<FilesDriver>(
            *path, fsync && *fsync,
            max_open && *max_open > 0 ? static_cast<std::size_t>(*max_open) : 512);
    }
    throw Error("unknown output driver '" + std::string(driver) + "' (available: files)");
}

} // namespace wec::output

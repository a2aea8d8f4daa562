// Owning wrappers for C library handles (OpenSSL, krb5, ...): a std::unique_ptr whose deleter is
// the library's free function, so that every handle has exactly one owner and is released on
// every path. Usage: `using X509Ptr = wec::Handle<X509, X509_free>;`. Also the two handles of the
// C library every component uses: FilePtr (std::FILE*) and UniqueFd (a POSIX descriptor).
#pragma once

#include <cstdio>
#include <memory>
#include <unistd.h>

namespace wec {

template <auto Free>
struct FreeWith {
    template <class T>
    void operator()(T* p) const noexcept {
        Free(p);
    }
};

template <class T, auto Free>
using Handle = std::unique_ptr<T, FreeWith<Free>>;

inline void close_file(std::FILE* f) noexcept {
    std::fclose(f);
}
// A stream from fopen/fdopen/tmpfile, closed once (fclose's result is not looked at: callers
// that must know whether buffered data reached the file call fflush/fclose themselves).
using FilePtr = Handle<std::FILE, close_file>;

// Owns one file descriptor (closed on destruction and on reset; -1 is "none").
class UniqueFd {
public:
    explicit UniqueFd(int fd = -1) noexcept : fd_(fd) {}
    ~UniqueFd() { reset(); }
    UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
    UniqueFd& operator=(UniqueFd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = o.release();
        }
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept {
        int fd = fd_;
        fd_ = -1;
        return fd;
    }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

} // namespace wec

// The fuzz input as a file that evtx::Reader can open by path (libevtx reads only files): an
// anonymous memfd, opened through /proc/self/fd. Shared by the two EVTX fuzz targets.
#pragma once

#include "common/handle.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

namespace wec::fuzz {

class MemFile {
public:
    MemFile(const std::uint8_t* data, std::size_t size) : fd_(::memfd_create("evtx", 0)) {
        if (fd_ && ::write(fd_.get(), data, size) != static_cast<ssize_t>(size)) fd_.reset();
    }
    bool ok() const { return static_cast<bool>(fd_); }
    std::string path() const { return "/proc/self/fd/" + std::to_string(fd_.get()); }

private:
    UniqueFd fd_;
};

} // namespace wec::fuzz

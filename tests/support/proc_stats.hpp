// What /proc says about a process (Linux): resident memory, open descriptors, CPU time. For
// integration tests that check a child process stays bounded under load.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <unistd.h>

namespace wec::testing {

// A "Field:  N kB" line of /proc/PID/<file> (status, smaps_rollup), in KiB (0 when the process
// or field is gone).
inline std::uint64_t proc_file_kb(int pid, const char* file, const std::string& field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1));
    return 0;
}
// A "VmRSS:"-style field of /proc/PID/status, in KiB.
inline std::uint64_t proc_status_kb(int pid, const std::string& field) {
    return proc_file_kb(pid, "status", field);
}
inline std::uint64_t rss_kb(int pid) {
    return proc_status_kb(pid, "VmRSS");
}
inline std::uint64_t peak_rss_kb(int pid) {
    return proc_status_kb(pid, "VmHWM");
}
// Proportional set size: shared pages (libraries, a forked parent's) divided among the processes
// that map them, so that the PSS of several processes adds up.
inline std::uint64_t pss_kb(int pid) {
    return proc_file_kb(pid, "smaps_rollup", "Pss");
}

// Entries of /proc/PID/fd (0 when the process is gone).
inline std::size_t open_fds(int pid) {
    std::error_code ec;
    std::size_t n = 0;
    for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
         !ec && it != end; it.increment(ec))
        ++n;
    return n;
}

// User + system CPU time of a process so far, in seconds (/proc/PID/stat fields 14 and 15).
inline double cpu_seconds(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto paren = stat.rfind(')'); // the command name may contain spaces
    if (paren == std::string::npos) return 0;
    std::istringstream fields(stat.substr(paren + 2));
    std::string f;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {
        if (i == 14) utime = std::stoull(f);
        if (i == 15) stime = std::stoull(f);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// CPU time the whole machine spent busy so far, every core and process (the kernel's included),
// in seconds: /proc/stat's first line without idle and iowait (guest time is part of user).
inline double machine_busy_seconds() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                       steal = 0;
    in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
    if (!in || cpu != "cpu") return 0;
    return static_cast<double>(user + nice + system + irq + softirq + steal) /
           static_cast<double>(::sysconf(_SC_CLK_TCK));
}

} // namespace wec::testing

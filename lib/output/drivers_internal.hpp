// The drivers' factories (internal to lib/output; make_driver in files.cpp dispatches on the name).
// Each one reads and checks its settings and creates nothing else: files are opened and sockets
// connected on the first write.
#pragma once

#include "output/output.hpp"

#include <chrono>
#include <string>

namespace wec::output::detail {

std::unique_ptr<Driver> make_files_driver(const Settings& settings);
std::unique_ptr<Driver> make_tcp_driver(const Settings& settings, Logger* log);
std::unique_ptr<Driver> make_syslog_driver(const Settings& settings, Logger* log);
std::unique_ptr<Driver> make_unix_driver(const Settings& settings, Logger* log);
std::unique_ptr<Driver> make_kafka_driver(const Settings& settings, Logger* log);
std::unique_ptr<Driver> make_redis_driver(const Settings& settings, Logger* log);

// UTC, YYYY-MM-DD: the {date} of the files driver's paths and the redis driver's keys.
std::string utc_date(std::chrono::system_clock::time_point t);

} // namespace wec::output::detail

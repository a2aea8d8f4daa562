// Base error type of the wec libraries: every error says what failed and where.
#pragma once

#include <stdexcept>
#include <string>

namespace wec {

// Thrown by library code for bad input or failed operations. Components derive their own typed
// errors from it so that tools can catch one type and print `what()`.
class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

} // namespace wec

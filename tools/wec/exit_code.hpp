// The exit code of a command that ends with an exception: one mapping from the kinds of error to
// docs/exit-codes.md, used by main() and by the commands that print their errors themselves.
#pragma once

#include <exception>

namespace wec::tool {

// kUsage (2) for bad input or usage: a wec::Error that says so (the default for a library's
// error, store::StoreUsageError, a pki::PkiError of kind Input); kRuntime (3) for an operation
// that failed while running (store::StoreError, a pki::PkiError of kind Runtime, any other
// exception).
int exit_code_for(const std::exception& e);

// How main() introduces the message: "error" (kUsage), "store failed" (a store::StoreError of
// kRuntime) or "failed".
const char* error_label(const std::exception& e);

} // namespace wec::tool

// A shared library opened with dlopen when a feature first needs it, instead of a DT_NEEDED entry
// of the binary: every `wec` command pays the dynamic loader's work (mapping, relocations,
// constructors) for each library the binary is linked with, so the libraries that only some
// outputs, stores or readers use (librdkafka, libpq and what it pulls in: GnuTLS, LDAP, SASL,
// p11-kit; libsqlite3, libevtx) are opened by the code that uses them, on first use (issue #15;
// docs/performance.md). The Debian package declares them in Depends (cmake/WecPackage.cmake).
//
// Usage: a component lists the functions it calls in a struct of pointers filled by function()
// (one WEC_DYNLIB_FUNCTION each),
// made once in a function-local static (`const` after construction; the initialisation is retried
// when it threw), and calls them through it. The types come from the library's own header, so a
// call that does not match the header does not compile.
#pragma once

#include "common/error.hpp"

#include <memory>
#include <string>

namespace wec {

// A library that cannot be opened, or lacks a function; what() names the file, the Debian package
// that provides it and dlerror()'s text. Components turn it into their own error (OutputError,
// StoreError) with their context.
class LibraryError : public Error {
public:
    using Error::Error;
};

class SharedLibrary {
public:
    // dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE): the search of the dynamic loader (as
    // for the libraries the binary is linked with). Never unloaded (RTLD_NODELETE), so that a
    // thread a library started can outlive this object at exit. `package` names what provides the
    // file (for the error). Throws LibraryError.
    SharedLibrary(std::string soname, std::string package);

    // The address of function `name` (throws LibraryError when the library lacks it).
    template <class Function>
    Function* function(const char* name) const {
        return reinterpret_cast<Function*>(address(name));
    }

    const std::string& soname() const { return soname_; }

private:
    void* address(const char* name) const;

    struct Close {
        void operator()(void* handle) const noexcept;
    };
    std::unique_ptr<void, Close> handle_;
    std::string soname_;
    std::string package_;
};

} // namespace wec

// One member of a component's function table (a struct with a `SharedLibrary library` member
// declared before it): a pointer of the type of the library header's `name`, looked up by name
// when the table is made. Used with an X-macro list of the functions a file calls.
#define WEC_DYNLIB_FUNCTION(name)                                                                  \
    decltype(&::name) name = library.function<decltype(::name)>(#name);

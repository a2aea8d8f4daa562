#include "common/dynlib.hpp"

#include <dlfcn.h>

namespace wec {

namespace {

std::string dl_error() {
    const char* text = ::dlerror();
    return text ? text : "unknown error";
}

} // namespace

void SharedLibrary::Close::operator()(void* handle) const noexcept {
    ::dlclose(handle);
}

SharedLibrary::SharedLibrary(std::string soname, std::string package)
    : soname_(std::move(soname)), package_(std::move(package)) {
    handle_.reset(::dlopen(soname_.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE));
    if (!handle_)
        throw LibraryError("cannot load " + soname_ + " (install the package " + package_ +
                           "): " + dl_error());
}

void* SharedLibrary::address(const char* name) const {
    ::dlerror(); // clear a previous error: a symbol's value may be null
    void* found = ::dlsym(handle_.get(), name);
    if (!found)
        throw LibraryError(soname_ + " has no function " + name + " (package " + package_ +
                           " too old?): " + dl_error());
    return found;
}

} // namespace wec

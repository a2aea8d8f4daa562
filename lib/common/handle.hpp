// Owning wrappers for C library handles (OpenSSL, krb5, ...): a std::unique_ptr whose deleter is
// the library's free function, so that every handle has exactly one owner and is released on
// every path. Usage: `using X509Ptr = wec::Handle<X509, X509_free>;`.
#pragma once

#include <memory>

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

} // namespace wec

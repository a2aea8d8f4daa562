#include "exit_code.hpp"

#include "commands.hpp"
#include "common/error.hpp"
#include "pki/pki.hpp"
#include "store/store.hpp"

namespace wec::tool {

int exit_code_for(const std::exception& e) {
    if (dynamic_cast<const store::StoreUsageError*>(&e)) return kUsage;
    if (dynamic_cast<const store::StoreError*>(&e)) return kRuntime;
    if (const auto* p = dynamic_cast<const pki::PkiError*>(&e))
        return p->kind() == pki::PkiError::Kind::Input ? kUsage : kRuntime;
    if (dynamic_cast<const wec::Error*>(&e)) return kUsage;
    return kRuntime;
}

const char* error_label(const std::exception& e) {
    if (exit_code_for(e) == kUsage) return "error";
    if (dynamic_cast<const store::StoreError*>(&e)) return "store failed";
    return "failed";
}

} // namespace wec::tool

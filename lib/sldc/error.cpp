// sldc::SldcError and the error-code names.
#include "sldc/sldc.hpp"

#include <string>

namespace wec::sldc {

const char* to_string(ErrorCode code) noexcept {
    switch (code) {
    case ErrorCode::Truncated:
        return "input ended before End of Record";
    case ErrorCode::ReservedSymbol:
        return "reserved control symbol";
    case ErrorCode::NoScheme:
        return "data symbol before any Scheme or Reset control symbol";
    case ErrorCode::UnwrittenHistory:
        return "copy pointer refers to unwritten history";
    case ErrorCode::OutputLimit:
        return "output exceeds the size limit";
    }
    return "unknown error";
}

SldcError::SldcError(ErrorCode code, std::size_t bit_offset)
    : wec::Error("SLDC: " + std::string(to_string(code)) + " at bit " + std::to_string(bit_offset)),
      code_(code), bit_offset_(bit_offset) {}

} // namespace wec::sldc

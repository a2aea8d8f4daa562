// Fuzzes the RESP2 reply parser of the redis driver. The first byte chooses how the rest is cut
// into reads; the rest is the stream. Checked: only resp::ProtocolError escapes; the replies and
// the error (message and offset) are the same whether the stream comes in one read or in many;
// the parser accepts only canonical input (encoding the replies gives back exactly the bytes they
// came from); the bounds hold (no reply deeper, longer or larger than the limits allow).
#include "output/resp_internal.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using wec::output::detail::resp::Limits;
using wec::output::detail::resp::ProtocolError;
using wec::output::detail::resp::Reply;
using wec::output::detail::resp::ReplyParser;

// Small limits, so that the fuzzer reaches them.
constexpr Limits kLimits{
    .max_line = 64, .max_bulk = 512, .max_elements = 32, .max_depth = 5, .max_held_bytes = 8192};

struct Outcome {
    std::vector<Reply> replies;
    bool failed = false;
    std::uint64_t offset = 0;
    std::string what;
    bool idle = false;
};

Outcome run(std::string_view in, std::size_t step) {
    Outcome o;
    ReplyParser p(kLimits);
    try {
        for (std::size_t at = 0; at < in.size(); at += step)
            p.feed(in.substr(at, step));
        o.idle = p.idle();
    } catch (const ProtocolError& e) {
        o.failed = true;
        o.offset = e.offset();
        o.what = e.what();
    }
    while (p.has_reply())
        o.replies.push_back(p.take());
    return o;
}

void check_bounds(const Reply& r, std::size_t depth) {
    if (depth > kLimits.max_depth + 1) std::abort();
    if (r.text.size() > kLimits.max_bulk && r.text.size() > kLimits.max_line) std::abort();
    if (r.elements.size() > kLimits.max_elements) std::abort();
    for (const auto& e : r.elements)
        check_bounds(e, depth + 1);
}

std::string encode(const std::vector<Reply>& replies) {
    std::string out;
    for (const auto& r : replies)
        wec::output::detail::resp::encode_reply(r, out);
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::size_t step = data[0] % 17 + 1;
    const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

    const Outcome whole = run(in, in.size() == 0 ? 1 : in.size());
    const Outcome split = run(in, step);
    const std::string a = encode(whole.replies);
    if (a != encode(split.replies) || whole.failed != split.failed ||
        whole.offset != split.offset || whole.what != split.what || whole.idle != split.idle)
        std::abort();
    // Canonical: the replies are exactly the bytes they came from.
    if (in.substr(0, a.size()) != a) std::abort();
    if (whole.failed && (whole.offset < a.size() || whole.offset > in.size())) std::abort();
    if (!whole.failed && whole.idle != (a.size() == in.size())) std::abort();
    for (const auto& r : whole.replies)
        check_bounds(r, 1);
    return 0;
}

// Moves of 4 to 16 bytes as two overlapping words, shared by the event parser (event.cpp) and the
// JSON writer's escaper (json_writer_internal.hpp): both end a vector scan with a short run.
#pragma once

#include <cstddef>
#include <cstring>

namespace wec::event::detail {

template <class Word>
struct WordEnds {
    Word head; // the first sizeof(Word) bytes
    Word tail; // the last sizeof(Word) bytes
};

// Moves n bytes (sizeof(Word) <= n <= 2 * sizeof(Word)) from src to dst as the first and the last
// word, both read before either is stored, so that dst may overlap src from below (dst <= src).
// Returns the two words read, for a caller that also scans them.
template <class Word>
[[gnu::always_inline]] inline WordEnds<Word> move_ends(void* dst, const void* src, std::size_t n) {
    WordEnds<Word> w;
    std::memcpy(&w.head, src, sizeof(Word));
    std::memcpy(&w.tail, static_cast<const char*>(src) + n - sizeof(Word), sizeof(Word));
    std::memcpy(dst, &w.head, sizeof(Word));
    std::memcpy(static_cast<char*>(dst) + n - sizeof(Word), &w.tail, sizeof(Word));
    return w;
}

} // namespace wec::event::detail

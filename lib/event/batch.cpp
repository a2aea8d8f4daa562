// The formats by name, and the batch formatter of the collector.
#include "event/event.hpp"
#include "event/json_writer_internal.hpp"

namespace wec::event {

// ---- Formats by name ----------------------------------------------------------------------------

std::string_view to_string(Format format) {
    return kFormatNames[static_cast<std::size_t>(format)];
}

std::optional<Format> parse_format(std::string_view name) {
    for (std::size_t i = 0; i < kFormatCount; ++i)
        if (kFormatNames[i] == name) return static_cast<Format>(i);
    return std::nullopt;
}

bool needs_parse(Format format) {
    return format != Format::Raw && format != Format::RawJson;
}

void format_event(Format format, std::string_view xml, const Event& parsed, const Metadata& md,
                  std::string& out) {
    switch (format) {
    case Format::Raw:
        format_raw(xml, out);
        return;
    case Format::Json:
        format_json(parsed, md, out);
        return;
    case Format::RawJson:
        format_raw_json(xml, md, out);
        return;
    case Format::Nxlog:
        format_nxlog(parsed, md, out);
        return;
    case Format::Ecs:
        format_ecs(parsed, md, out);
        return;
    }
}

void format_event(Format format, std::string_view xml, const Event& parsed, const Metadata& md,
                  FormatBuffer& out) {
    switch (format) {
    case Format::Raw:
        detail::format_raw(xml, out);
        return;
    case Format::Json:
        detail::format_json(parsed, md, out);
        return;
    case Format::RawJson:
        detail::format_raw_json(xml, md, out);
        return;
    case Format::Nxlog:
        detail::format_nxlog(parsed, md, out);
        return;
    case Format::Ecs:
        detail::format_ecs(parsed, md, out);
        return;
    }
}

void FormatBuffer::reallocate(std::size_t n) {
    auto data = std::make_unique_for_overwrite<char[]>(n);
    if (size_ != 0) std::char_traits<char>::copy(data.get(), data_.get(), size_);
    data_ = std::move(data);
    capacity_ = n;
}

BatchFormatter::BatchFormatter(std::span<const Format> formats) {
    for (Format f : formats) {
        wanted_[static_cast<std::size_t>(f)] = true;
        parse_ = parse_ || needs_parse(f);
    }
}

void BatchFormatter::reserve(std::size_t xml_bytes, std::size_t events) {
    for (std::size_t i = 0; i < kFormatCount; ++i) {
        if (!wanted_[i]) continue;
        const auto f = static_cast<Format>(i);
        // Measured on the fixture events: the parsed formats are about twice the XML.
        std::size_t need = f == Format::Raw       ? xml_bytes + events
                           : f == Format::RawJson ? xml_bytes + xml_bytes / 8 + events * 400
                                                  : xml_bytes * 2 + events * 512;
        out_[i].reserve(need);
    }
}

void BatchFormatter::add(std::string_view xml, const Metadata& md) {
    if (parse_) parse(xml, event_);
    for (std::size_t i = 0; i < kFormatCount; ++i) {
        if (!wanted_[i]) continue;
        format_event(static_cast<Format>(i), xml, event_, md, out_[i]);
        out_[i].push_back('\n');
    }
}

std::string_view BatchFormatter::lines(Format format) const {
    return out_[static_cast<std::size_t>(format)].view();
}

void BatchFormatter::clear() {
    for (auto& o : out_)
        o.clear();
}

} // namespace wec::event

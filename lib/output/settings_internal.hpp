// Reading a driver's settings (internal to lib/output): typed getters that say which key is wrong,
// and a final check that every key was known to the driver.
#pragma once

#include "output/output.hpp"

#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace wec::output::detail {

class SettingsReader {
public:
    SettingsReader(std::string_view driver, const Settings& settings)
        : driver_(driver), settings_(settings) {}

    [[noreturn]] void fail(std::string_view key, std::string_view reason) const {
        throw SettingError(std::string(key), "'" + std::string(key) + "' of driver '" + driver_ +
                                                 "' " + std::string(reason));
    }

    bool has(std::string_view key) const { return settings_.count(std::string(key)) != 0; }

    // A string; nullopt when absent. An empty string is refused.
    std::optional<std::string> string(std::string_view key) {
        const auto* value = find(key);
        if (!value) return std::nullopt;
        const auto* text = std::get_if<std::string>(value);
        if (!text || text->empty()) fail(key, "must be a non-empty string");
        return *text;
    }

    std::string required_string(std::string_view key) {
        if (!has(key))
            throw SettingError({},
                               "driver '" + driver_ + "' needs a '" + std::string(key) + "' key");
        return *string(key);
    }

    std::optional<bool> boolean(std::string_view key) {
        const auto* value = find(key);
        if (!value) return std::nullopt;
        const auto* b = std::get_if<bool>(value);
        if (!b) fail(key, "must be true or false");
        return *b;
    }

    std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max) {
        const auto* value = find(key);
        if (!value) return std::nullopt;
        const auto* i = std::get_if<std::int64_t>(value);
        if (!i || *i < min || *i > max)
            fail(key, "must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                          "]");
        return *i;
    }

    // Throws for the first key no getter asked for.
    void finish() const {
        for (const auto& [key, value] : settings_) {
            if (used_.count(key)) continue;
            if (key.rfind("options.", 0) == 0)
                throw SettingError(key, "'" + key + "': driver '" + driver_ +
                                            "' takes no [outputs.options] table (librdkafka "
                                            "properties, for driver 'kafka' only)");
            std::string known;
            for (const auto& k : used_)
                known += (known.empty() ? "" : ", ") + k;
            throw SettingError(key, "unknown key '" + key + "' for driver '" + driver_ +
                                        "' (known: " + known + ")");
        }
    }

    // Marks keys as known without reading them (keys of another mode, refused separately).
    void known(std::initializer_list<std::string_view> keys) {
        for (auto k : keys)
            used_.emplace(k);
    }

    const std::string& driver() const { return driver_; }

private:
    const SettingValue* find(std::string_view key) {
        used_.emplace(key);
        auto it = settings_.find(std::string(key));
        return it == settings_.end() ? nullptr : &it->second;
    }

    std::string driver_;
    const Settings& settings_;
    std::set<std::string, std::less<>> used_;
};

} // namespace wec::output::detail

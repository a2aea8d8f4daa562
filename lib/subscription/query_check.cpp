#include "subscription/query_check.hpp"

#include "text/ascii.hpp"
#include "text/text.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <pugixml.hpp>
#include <set>
#include <tuple>
#include <utility>

namespace wec::subscription {

namespace {

constexpr int kMaxDepth = 64;

bool name_start(char c) {
    auto u = static_cast<unsigned char>(c);
    return std::isalpha(u) != 0 || c == '_' || u >= 0x80;
}

bool name_char(char c) {
    auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) != 0 || c == '_' || c == '-' || c == '.' || u >= 0x80;
}

// ---- parser ---------------------------------------------------------------------------------

class Parser {
public:
    explicit Parser(std::string_view text) : s_(text) {}

    XPathExpr parse() {
        skip();
        if (pos_ >= s_.size()) error(pos_, "empty XPath (use '*' to select every event)");
        auto top = top_chain(XPathExpr::Kind::Or, "or");
        skip();
        if (pos_ < s_.size()) unexpected();
        return top;
    }

private:
    [[noreturn]] void error(std::size_t at, const std::string& message) const {
        throw XPathError(at, message);
    }

    void skip() {
        while (pos_ < s_.size() && text::is_xml_space(s_[pos_]))
            ++pos_;
    }

    bool at_char(char c) {
        skip();
        return pos_ < s_.size() && s_[pos_] == c;
    }

    // The name at pos_ (after spaces), not consumed; empty when there is none.
    std::string_view peek_name() {
        skip();
        if (pos_ >= s_.size() || !name_start(s_[pos_])) return {};
        std::size_t end = pos_;
        while (end < s_.size() && name_char(s_[end]))
            ++end;
        return s_.substr(pos_, end - pos_);
    }

    bool at_word(std::string_view word) { return peek_name() == word; }

    void expect(char c, std::string_view what) {
        skip();
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return;
        }
        if (pos_ >= s_.size())
            error(pos_, "unexpected end of the XPath: " + std::string(what) + " is missing");
        unexpected(std::string(what) + " expected");
    }

    void enter(std::size_t at) {
        if (++depth_ > kMaxDepth)
            error(at, "nested more than " + std::to_string(kMaxDepth) + " levels deep");
    }

    [[noreturn]] void unexpected(const std::string& expected = {}) {
        skip();
        std::string tail = expected.empty() ? "" : " (" + expected + ")";
        if (pos_ >= s_.size()) error(pos_, "unexpected end of the XPath" + tail);
        char c = s_[pos_];
        if (c == '|') error(pos_, "unions ('|') are not supported: use 'or', or another Select");
        if (c == '+' || c == '-' || c == '*')
            error(pos_, "arithmetic ('" + std::string(1, c) + "') is not supported");
        if (c == '$') error(pos_, "variables ('$') are not supported");
        if (c == ']' || c == ')') error(pos_, "unbalanced '" + std::string(1, c) + "'" + tail);
        auto word = peek_name();
        if (word == "div" || word == "mod")
            error(pos_, "arithmetic ('" + std::string(word) + "') is not supported");
        if (!word.empty()) error(pos_, "unexpected '" + std::string(word) + "'" + tail);
        error(pos_, "unexpected '" + std::string(1, c) + "'" + tail);
    }

    std::optional<std::string> comparison() {
        skip();
        if (pos_ >= s_.size()) return std::nullopt;
        auto rest = s_.substr(pos_);
        for (std::string_view op : {"!=", "<=", ">=", "=", "<", ">"})
            if (rest.substr(0, op.size()) == op) {
                pos_ += op.size();
                return std::string(op);
            }
        return std::nullopt;
    }

    XPathExpr location_path() {
        XPathExpr path;
        path.kind = XPathExpr::Kind::Path;
        skip();
        path.begin = pos_;
        for (;;) {
            skip();
            std::size_t at = pos_;
            if (pos_ >= s_.size()) error(pos_, "unexpected end of the XPath (a step expected)");
            XPathStep step;
            if (s_[pos_] == '@') {
                ++pos_;
                auto name = peek_name();
                if (name.empty()) error(at, "'@' must be followed by an attribute name");
                step.attribute = true;
                step.name = std::string(name);
                pos_ += name.size();
            } else if (s_[pos_] == '*') {
                ++pos_;
                step.name = "*";
            } else if (s_[pos_] == '.') {
                error(at, "'.' and '..' are not supported");
            } else {
                auto name = peek_name();
                if (name.empty()) unexpected("a name expected");
                pos_ += name.size();
                step.name = std::string(name);
            }
            if (s_.substr(pos_, 2) == "::")
                error(at, "axes ('" + step.name + "::') are not supported");
            if (at_char('(') && !step.attribute)
                error(at, "function '" + step.name +
                              "()' is not supported by the Windows event log (only band(), "
                              "timediff() and not())");
            while (at_char('[')) {
                if (step.attribute) error(pos_, "an attribute cannot have a predicate");
                std::size_t open = pos_++;
                enter(open);
                step.predicates.push_back(expr());
                expect(']', "']' closing the '[' at offset " + std::to_string(open));
                --depth_;
            }
            path.end = pos_;
            path.steps.push_back(std::move(step));
            if (!at_char('/')) break;
            if (s_.substr(pos_, 2) == "//")
                error(pos_, "'//' (descendants) is not supported: write each step");
            if (path.steps.back().attribute)
                error(pos_,
                      "an attribute has no children ('/' after '@" + path.steps.back().name + "')");
            ++pos_;
        }
        return path;
    }

    XPathExpr literal_or_path() {
        skip();
        std::size_t at = pos_;
        if (pos_ >= s_.size()) error(pos_, "unexpected end of the XPath (an expression expected)");
        char c = s_[pos_];
        XPathExpr e;
        e.begin = at;
        if (c == '\'' || c == '"') {
            auto close = s_.find(c, pos_ + 1);
            if (close == std::string_view::npos) error(at, "string not closed");
            e.kind = XPathExpr::Kind::String;
            e.text = std::string(s_.substr(pos_ + 1, close - pos_ - 1));
            pos_ = close + 1;
            e.end = pos_;
            return e;
        }
        if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
            std::size_t end = pos_;
            if (s_.substr(pos_, 2) == "0x" || s_.substr(pos_, 2) == "0X") {
                end += 2;
                while (end < s_.size() && std::isxdigit(static_cast<unsigned char>(s_[end])) != 0)
                    ++end;
                if (end == pos_ + 2) error(at, "hexadecimal number without digits");
            } else {
                while (end < s_.size() && std::isdigit(static_cast<unsigned char>(s_[end])) != 0)
                    ++end;
                if (end < s_.size() && s_[end] == '.') {
                    ++end;
                    while (end < s_.size() &&
                           std::isdigit(static_cast<unsigned char>(s_[end])) != 0)
                        ++end;
                }
            }
            if (end < s_.size() && name_char(s_[end]))
                error(at,
                      "malformed number '" + std::string(s_.substr(pos_, end + 1 - pos_)) + "'");
            e.kind = XPathExpr::Kind::Number;
            e.text = std::string(s_.substr(pos_, end - pos_));
            pos_ = end;
            e.end = pos_;
            return e;
        }
        auto word = peek_name();
        if (!word.empty()) {
            std::size_t after = pos_ + word.size();
            std::size_t p = after;
            while (p < s_.size() && text::is_xml_space(s_[p]))
                ++p;
            if (p < s_.size() && s_[p] == '(') {
                if (word == "band") return band(at, p);
                if (word == "timediff") return timediff(at, p);
                error(at, "function '" + std::string(word) +
                              "()' is not supported by the Windows event log (only band(), "
                              "timediff() and not())");
            }
        }
        if (c == '@' || c == '*' || !word.empty() || c == '.') return location_path();
        unexpected("an expression expected");
    }

    // band(path, number): `(` at p.
    XPathExpr band(std::size_t at, std::size_t p) {
        pos_ = p + 1;
        enter(p);
        XPathExpr e;
        e.kind = XPathExpr::Kind::Band;
        e.begin = at;
        auto arg = literal_or_path();
        if (arg.kind != XPathExpr::Kind::Path)
            error(arg.begin, "band()'s first argument must be a field such as Keywords");
        e.args.push_back(std::move(arg));
        expect(',', "',' between band()'s two arguments");
        auto mask = literal_or_path();
        if (mask.kind != XPathExpr::Kind::Number)
            error(mask.begin, "band()'s second argument must be a number");
        e.args.push_back(std::move(mask));
        expect(')', "')' closing band(");
        --depth_;
        e.end = pos_;
        return e;
    }

    // timediff(@SystemTime): `(` at p.
    XPathExpr timediff(std::size_t at, std::size_t p) {
        pos_ = p + 1;
        skip();
        std::size_t arg = pos_;
        if (s_.substr(pos_, 11) != "@SystemTime")
            error(arg, "timediff() takes @SystemTime only (inside TimeCreated[...])");
        pos_ += 11;
        expect(')', "')' closing timediff(");
        XPathExpr e;
        e.kind = XPathExpr::Kind::TimeDiff;
        e.begin = at;
        e.end = pos_;
        return e;
    }

    static bool constant(const XPathExpr& e) {
        return e.kind == XPathExpr::Kind::Number || e.kind == XPathExpr::Kind::String;
    }

    XPathExpr primary() {
        skip();
        if (at_char('(')) {
            std::size_t open = pos_++;
            enter(open);
            auto e = expr();
            expect(')', "')' closing the '(' at offset " + std::to_string(open));
            --depth_;
            return e;
        }
        auto lhs = literal_or_path();
        skip();
        std::size_t op_at = pos_;
        auto op = comparison();
        if (!op) {
            if (constant(lhs))
                error(lhs.begin, "a constant alone is not a test (positional predicates such as "
                                 "[1] are not supported): compare a field with it");
            if (lhs.kind == XPathExpr::Kind::TimeDiff)
                error(lhs.begin, "timediff(@SystemTime) must be compared with a number of "
                                 "milliseconds, e.g. timediff(@SystemTime) <= 86400000");
            return lhs;
        }
        auto rhs = literal_or_path();
        if (constant(lhs) && constant(rhs))
            error(lhs.begin, "comparing two constants is not a test");
        if (!constant(lhs) && !constant(rhs))
            error(rhs.begin, "comparing two fields is not supported: compare a field with a "
                             "number or a string");
        if ((lhs.kind == XPathExpr::Kind::TimeDiff && rhs.kind != XPathExpr::Kind::Number) ||
            (rhs.kind == XPathExpr::Kind::TimeDiff && lhs.kind != XPathExpr::Kind::Number))
            error(op_at, "timediff(@SystemTime) must be compared with a number of milliseconds");
        XPathExpr e;
        e.kind = XPathExpr::Kind::Compare;
        e.begin = lhs.begin;
        e.end = rhs.end;
        e.text = *op;
        e.args.push_back(std::move(lhs));
        e.args.push_back(std::move(rhs));
        return e;
    }

    XPathExpr unary() {
        if (at_word("not")) {
            std::size_t at = pos_;
            std::size_t p = pos_ + 3;
            while (p < s_.size() && text::is_xml_space(s_[p]))
                ++p;
            if (p < s_.size() && s_[p] == '(') {
                pos_ = p + 1;
                enter(p);
                XPathExpr e;
                e.kind = XPathExpr::Kind::Not;
                e.begin = at;
                e.args.push_back(expr());
                expect(')', "')' closing not(");
                --depth_;
                e.end = pos_;
                return e;
            }
        }
        return primary();
    }

    XPathExpr chain(XPathExpr::Kind kind, std::string_view word) {
        auto first = kind == XPathExpr::Kind::Or ? chain(XPathExpr::Kind::And, "and") : unary();
        if (!at_word(word)) return first;
        XPathExpr e;
        e.kind = kind;
        e.begin = first.begin;
        e.args.push_back(std::move(first));
        while (at_word(word)) {
            pos_ += word.size();
            e.args.push_back(kind == XPathExpr::Kind::Or ? chain(XPathExpr::Kind::And, "and")
                                                         : unary());
        }
        e.end = e.args.back().end;
        return e;
    }

    XPathExpr expr() { return chain(XPathExpr::Kind::Or, "or"); }

    // The whole XPath: event paths (`*[...]`, `Event/System[...]`) joined by `and`/`or`, with
    // parentheses, as Event Viewer writes `*[System[...]] and *[EventData[...]]`.
    XPathExpr top_chain(XPathExpr::Kind kind, std::string_view word) {
        auto next = [&] {
            return kind == XPathExpr::Kind::Or ? top_chain(XPathExpr::Kind::And, "and")
                                               : top_path();
        };
        auto first = next();
        if (!at_word(word)) return first;
        XPathExpr e;
        e.kind = kind;
        e.begin = first.begin;
        e.args.push_back(std::move(first));
        while (at_word(word)) {
            pos_ += word.size();
            e.args.push_back(next());
        }
        e.end = e.args.back().end;
        return e;
    }

    XPathExpr top_path() {
        skip();
        std::size_t at = pos_;
        if (pos_ >= s_.size()) error(pos_, "unexpected end of the XPath (a path expected)");
        if (s_[pos_] == '(') {
            ++pos_;
            enter(at);
            auto e = top_chain(XPathExpr::Kind::Or, "or");
            expect(')', "')' closing the '(' at offset " + std::to_string(at));
            --depth_;
            return e;
        }
        if (s_[pos_] == '/')
            error(at, "an absolute path is not supported: start with '*' (e.g. "
                      "*[System[EventID=4624]])");
        auto word = peek_name();
        if (word == "not" || word == "band" || word == "timediff" || word == "contains" ||
            word == "starts-with") {
            std::size_t p = pos_ + word.size();
            while (p < s_.size() && text::is_xml_space(s_[p]))
                ++p;
            if (p < s_.size() && s_[p] == '(')
                error(at, "'" + std::string(word) +
                              "()' cannot test the whole event: put it inside *[...]");
        }
        if (s_[pos_] != '*' && word.empty()) unexpected("a path such as *[System[...]] expected");
        auto path = location_path();
        const auto& first = path.steps.front();
        if (first.attribute || (first.name != "*" && first.name != "Event"))
            error(at, "a Select's XPath must start with '*' or 'Event', not '" + first.name + "'");
        return path;
    }

    std::string_view s_;
    std::size_t pos_ = 0;
    int depth_ = 0;
};

// ---- query text -----------------------------------------------------------------------------

// The text of a Select with, for each of its bytes, the offset in the query it comes from.
struct SelectText {
    std::string text;
    std::vector<std::size_t> raw;
    std::size_t raw_end = 0; // where the text ends in the query

    std::size_t offset_of(std::size_t i) const {
        if (i < raw.size()) return raw[i];
        return raw_end;
    }
};

// Decodes character data from `from` to the next '<' as an XML parser does.
void decode_pcdata(std::string_view query, std::size_t from, SelectText& out) {
    std::size_t i = from;
    while (i < query.size() && query[i] != '<') {
        char c = query[i];
        if (c == '\r') {
            out.text += '\n';
            out.raw.push_back(i);
            i += (i + 1 < query.size() && query[i + 1] == '\n') ? 2 : 1;
            continue;
        }
        if (c == '&') {
            auto semi = query.find(';', i);
            if (semi != std::string_view::npos && semi - i <= 12) {
                auto name = query.substr(i + 1, semi - i - 1);
                std::string value;
                if (name == "lt")
                    value = "<";
                else if (name == "gt")
                    value = ">";
                else if (name == "amp")
                    value = "&";
                else if (name == "quot")
                    value = "\"";
                else if (name == "apos")
                    value = "'";
                else if (name.size() > 1 && name[0] == '#') {
                    std::uint32_t cp = 0;
                    bool hex = name[1] == 'x';
                    auto digits = name.substr(hex ? 2 : 1);
                    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cp,
                                                   hex ? 16 : 10);
                    if (ec == std::errc() && p == digits.data() + digits.size() && cp != 0 &&
                        cp <= 0x10FFFF)
                        text::append_code_point(value, cp);
                }
                if (!value.empty()) {
                    for (char v : value) {
                        out.text += v;
                        out.raw.push_back(i);
                    }
                    i = semi + 1;
                    continue;
                }
            }
        }
        out.text += c;
        out.raw.push_back(i);
        ++i;
    }
    out.raw_end = i;
}

SelectText text_of(const pugi::xml_node& select, std::string_view query) {
    SelectText out;
    out.raw_end = static_cast<std::size_t>(std::max<std::ptrdiff_t>(select.offset_debug(), 0));
    for (auto child : select.children()) {
        auto offset = child.offset_debug();
        if (offset < 0) continue;
        auto o = std::min(static_cast<std::size_t>(offset), query.size());
        if (child.type() == pugi::node_pcdata) {
            decode_pcdata(query, o, out);
        } else if (child.type() == pugi::node_cdata) {
            std::string_view v = child.value();
            for (std::size_t i = 0; i < v.size(); ++i) {
                out.text += v[i];
                out.raw.push_back(std::min(o + i, query.size()));
            }
            out.raw_end = std::min(o + v.size(), query.size());
        }
    }
    return out;
}

// A Select or Suppress of a QueryList, numbered as check_query() does.
struct SelectNode {
    pugi::xml_node node;
    pugi::xml_node query;
    std::size_t number = 0;
    std::string element;
    std::string path;
};

std::vector<SelectNode> selects_of(const pugi::xml_document& doc) {
    std::vector<SelectNode> out;
    auto root = doc.document_element();
    if (std::string_view(root.name()) != "QueryList") return out;
    std::size_t number = 0;
    for (auto query : root.children("Query")) {
        std::string_view query_path = query.attribute("Path").value();
        for (auto select : query.children()) {
            if (select.type() != pugi::node_element) continue;
            std::string_view tag = select.name();
            if (tag != "Select" && tag != "Suppress") continue;
            std::string_view path = select.attribute("Path").value();
            out.push_back({select, query, ++number, std::string(tag),
                           std::string(path.empty() ? query_path : path)});
        }
    }
    return out;
}

std::size_t element_start(const pugi::xml_node& node, std::string_view query) {
    auto o = static_cast<std::size_t>(std::max<std::ptrdiff_t>(node.offset_debug(), 0));
    if (o > 0 && o <= query.size() && query[o - 1] == '<') --o;
    return o;
}

// [start, end) of an element in the query text, end after its closing tag.
std::optional<std::pair<std::size_t, std::size_t>> element_span(const pugi::xml_node& node,
                                                                std::string_view query) {
    std::size_t start = element_start(node, query);
    std::size_t from = start + 1;
    for (auto child : node.children()) {
        auto offset = child.offset_debug();
        if (offset < 0) continue;
        auto o = static_cast<std::size_t>(offset);
        if (child.type() == pugi::node_cdata || child.type() == pugi::node_comment)
            o += std::string_view(child.value()).size();
        from = std::max(from, o);
    }
    auto gt = query.find('>', start);
    if (gt == std::string_view::npos) return std::nullopt;
    if (gt > 0 && query[gt - 1] == '/' && !node.first_child()) return std::pair{start, gt + 1};
    auto close = query.find("</", std::max(from, gt));
    if (close == std::string_view::npos ||
        query.substr(close + 2, std::string_view(node.name()).size()) != node.name())
        return std::nullopt;
    auto end = query.find('>', close);
    if (end == std::string_view::npos) return std::nullopt;
    return std::pair{start, end + 1};
}

std::string normalized(std::string_view xpath) {
    std::string out;
    bool space = false;
    for (char c : xpath) {
        if (text::is_xml_space(c)) {
            space = true;
            continue;
        }
        if (space && !out.empty()) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

QueryProblem located(std::string_view query, std::size_t offset, const SelectNode& s,
                     std::string message) {
    QueryProblem p;
    p.offset = offset;
    std::tie(p.line, p.column) = text::line_column(query, offset);
    p.select = s.number;
    p.element = s.element;
    p.path = s.path;
    p.message = std::move(message);
    return p;
}

// ---- channel names --------------------------------------------------------------------------

// Why a Select Path is not shaped like a Windows log name; "" when it is.
std::string channel_shape(std::string_view path) {
    std::string l = text::to_lower(path);
    if (path.find('\\') != std::string_view::npos || path.find(':') != std::string_view::npos ||
        (l.size() > 5 && l.substr(l.size() - 5) == ".evtx"))
        return "looks like a file, not a log name: Windows forwards events from logs such as "
               "'Security' or 'Microsoft-Windows-Sysmon/Operational'";
    bool shaped = !path.empty() && path.size() <= 255 && !text::is_xml_space(path.front()) &&
                  !text::is_xml_space(path.back());
    std::size_t slashes = 0;
    for (std::size_t i = 0; shaped && i < path.size(); ++i) {
        char c = path[i];
        auto u = static_cast<unsigned char>(c);
        if (c == '/') {
            ++slashes;
            if (i == 0 || i + 1 == path.size() || path[i - 1] == ' ' || path[i + 1] == ' ')
                shaped = false;
        } else if (std::isalnum(u) == 0 && c != ' ' && c != '-' && c != '_' && c != '.' &&
                   u < 0x80) {
            shaped = false;
        }
    }
    if (!shaped || slashes > 1)
        return "is not shaped like a Windows log name (letters, digits, spaces, '-', '_', '.', "
               "and one '/' between the provider and the channel, e.g. 'Security', "
               "'Microsoft-Windows-Sysmon/Operational')";
    if (slashes == 0 && l.rfind("microsoft-windows-", 0) == 0)
        return "has no '/': the logs of Microsoft-Windows-* providers are named like '" +
               std::string(path) + "/Operational' (or /Admin)";
    return {};
}

constexpr std::string_view kBusyChannels[] = {
    "Security",
    "Microsoft-Windows-Sysmon/Operational",
    "Microsoft-Windows-PowerShell/Operational",
    "Windows PowerShell",
    "ForwardedEvents",
};

bool busy(std::string_view path) {
    for (auto b : kBusyChannels)
        if (text::iequals(b, path)) return true;
    return false;
}

// ---- evaluation (query_matches) -------------------------------------------------------------

enum class Ctx { Event, System, Provider, EventID, Level, Channel, ProviderName };

std::vector<Ctx> children(Ctx ctx, const XPathStep& step) {
    auto is = [&](std::string_view n) { return step.name == n || step.name == "*"; };
    std::vector<Ctx> out;
    if (step.attribute) {
        if (ctx == Ctx::Provider && step.name == "Name") out.push_back(Ctx::ProviderName);
        return out;
    }
    switch (ctx) {
    case Ctx::Event:
        if (is("System")) out.push_back(Ctx::System);
        break;
    case Ctx::System:
        if (is("Provider")) out.push_back(Ctx::Provider);
        if (is("EventID")) out.push_back(Ctx::EventID);
        if (is("Level")) out.push_back(Ctx::Level);
        if (is("Channel")) out.push_back(Ctx::Channel);
        break;
    default:
        break;
    }
    return out;
}

std::string value_of(Ctx ctx, const EventFacts& ev) {
    switch (ctx) {
    case Ctx::EventID:
        return std::to_string(ev.event_id);
    case Ctx::Level:
        return std::to_string(ev.level);
    case Ctx::Channel:
        return ev.channel;
    case Ctx::ProviderName:
        return ev.provider;
    default:
        return {};
    }
}

std::optional<double> number(std::string_view s) {
    if (s.empty()) return std::nullopt;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        std::uint64_t v = 0;
        auto [p, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), v, 16);
        if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
        return static_cast<double>(v);
    }
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

bool eval(const XPathExpr& e, Ctx ctx, const EventFacts& ev);

std::vector<Ctx> select_path(const XPathExpr& path, Ctx ctx, const EventFacts& ev, bool top) {
    std::vector<Ctx> set{ctx};
    for (std::size_t i = 0; i < path.steps.size(); ++i) {
        const auto& step = path.steps[i];
        std::vector<Ctx> next;
        if (top && i == 0) {
            next.push_back(Ctx::Event); // '*' or 'Event': the event itself
        } else {
            for (auto c : set)
                for (auto child : children(c, step))
                    next.push_back(child);
        }
        std::vector<Ctx> kept;
        for (auto c : next) {
            bool ok = true;
            for (const auto& pred : step.predicates)
                ok = ok && eval(pred, c, ev);
            if (ok) kept.push_back(c);
        }
        set = std::move(kept);
    }
    return set;
}

// The whole XPath of a Select: event paths joined by and/or.
bool eval_top(const XPathExpr& e, const EventFacts& ev) {
    if (e.kind == XPathExpr::Kind::Or)
        return std::any_of(e.args.begin(), e.args.end(),
                           [&](const XPathExpr& a) { return eval_top(a, ev); });
    if (e.kind == XPathExpr::Kind::And)
        return std::all_of(e.args.begin(), e.args.end(),
                           [&](const XPathExpr& a) { return eval_top(a, ev); });
    return !select_path(e, Ctx::Event, ev, true).empty();
}

bool compare(std::string_view value, std::string_view op, const XPathExpr& literal) {
    if (literal.kind == XPathExpr::Kind::String && (op == "=" || op == "!="))
        return (value == literal.text) == (op == "=");
    auto a = number(value);
    auto b = number(literal.text);
    if (!a || !b) return op == "!=";
    if (op == "=") return *a == *b;
    if (op == "!=") return *a != *b;
    if (op == "<") return *a < *b;
    if (op == "<=") return *a <= *b;
    if (op == ">") return *a > *b;
    return *a >= *b;
}

std::string_view mirrored(std::string_view op) {
    if (op == "<") return ">";
    if (op == "<=") return ">=";
    if (op == ">") return "<";
    if (op == ">=") return "<=";
    return op;
}

bool eval(const XPathExpr& e, Ctx ctx, const EventFacts& ev) {
    using K = XPathExpr::Kind;
    switch (e.kind) {
    case K::Or:
        for (const auto& a : e.args)
            if (eval(a, ctx, ev)) return true;
        return false;
    case K::And:
        for (const auto& a : e.args)
            if (!eval(a, ctx, ev)) return false;
        return true;
    case K::Not:
        return !eval(e.args.front(), ctx, ev);
    case K::Path:
        return !select_path(e, ctx, ev, false).empty();
    case K::Compare: {
        bool path_left = e.args[0].kind == K::Path;
        const auto& path = path_left ? e.args[0] : e.args[1];
        const auto& literal = path_left ? e.args[1] : e.args[0];
        if (path.kind != K::Path) return false; // band(), timediff(): not evaluated
        std::string_view op = path_left ? std::string_view(e.text) : mirrored(e.text);
        for (auto c : select_path(path, ctx, ev, false))
            if (compare(value_of(c, ev), op, literal)) return true;
        return false;
    }
    default:
        return false;
    }
}

// ---- --fix ----------------------------------------------------------------------------------

// The disjunctions of an XPath that may be split: reached through predicates and `and` only.
void splittable(const XPathExpr& e, std::vector<const XPathExpr*>& out) {
    switch (e.kind) {
    case XPathExpr::Kind::Or:
        out.push_back(&e);
        break;
    case XPathExpr::Kind::And:
        for (const auto& a : e.args)
            splittable(a, out);
        break;
    case XPathExpr::Kind::Path:
        for (const auto& step : e.steps)
            for (const auto& p : step.predicates)
                splittable(p, out);
        break;
    default:
        break;
    }
}

void flatten_or(const XPathExpr& e, std::vector<const XPathExpr*>& out) {
    if (e.kind == XPathExpr::Kind::Or) {
        for (const auto& a : e.args)
            flatten_or(a, out);
    } else {
        out.push_back(&e);
    }
}

bool is_event_id(const XPathExpr& e) {
    return e.kind == XPathExpr::Kind::Path && e.steps.size() == 1 && !e.steps[0].attribute &&
           e.steps[0].name == "EventID" && e.steps[0].predicates.empty();
}

std::optional<std::uint32_t> id_value(const XPathExpr& e) {
    if (e.kind != XPathExpr::Kind::Number) return std::nullopt;
    std::uint32_t v = 0;
    const auto& t = e.text;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || p != t.data() + t.size()) return std::nullopt;
    return v;
}

// EventID <op> N, as (op, N); nullopt for anything else.
std::optional<std::pair<std::string, std::uint32_t>> id_compare(const XPathExpr& e) {
    if (e.kind != XPathExpr::Kind::Compare || !is_event_id(e.args[0])) return std::nullopt;
    auto v = id_value(e.args[1]);
    if (!v) return std::nullopt;
    return std::pair{e.text, *v};
}

// EventID=N or (EventID>=A and EventID<=B), as a range.
std::optional<IdRange> id_term(const XPathExpr& e) {
    if (auto c = id_compare(e); c && c->first == "=") return IdRange{c->second, c->second};
    if (e.kind != XPathExpr::Kind::And || e.args.size() != 2) return std::nullopt;
    auto a = id_compare(e.args[0]);
    auto b = id_compare(e.args[1]);
    if (!a || !b) return std::nullopt;
    if (a->first == "<=") std::swap(a, b);
    if (a->first != ">=" || b->first != "<=" || a->second > b->second) return std::nullopt;
    return IdRange{a->second, b->second};
}

std::vector<IdRange> merge(std::vector<IdRange> ranges) {
    std::sort(ranges.begin(), ranges.end(),
              [](const IdRange& a, const IdRange& b) { return a.first < b.first; });
    std::vector<IdRange> out;
    for (const auto& r : ranges) {
        if (!out.empty() && std::uint64_t{r.first} <= std::uint64_t{out.back().last} + 1)
            out.back().last = std::max(out.back().last, r.last);
        else
            out.push_back(r);
    }
    return out;
}

// The XPaths that replace `xpath` (over the clause limit), or nullopt when it cannot be split.
std::optional<std::vector<std::string>> split_xpath(const std::string& xpath) {
    XPathExpr top;
    try {
        top = parse_xpath(xpath);
    } catch (const XPathError&) {
        return std::nullopt;
    }
    std::vector<const XPathExpr*> ors;
    splittable(top, ors);
    const XPathExpr* best = nullptr;
    std::size_t best_size = 0;
    for (const auto* o : ors) {
        std::vector<const XPathExpr*> terms;
        flatten_or(*o, terms);
        if (terms.size() > best_size) {
            best = o;
            best_size = terms.size();
        }
    }
    if (best == nullptr) return std::nullopt;
    std::vector<const XPathExpr*> terms;
    flatten_or(*best, terms);
    std::vector<IdRange> ranges;
    std::vector<std::string> others;
    for (const auto* t : terms) {
        if (auto r = id_term(*t)) {
            ranges.push_back(*r);
        } else {
            std::string text = xpath.substr(t->begin, t->end - t->begin);
            others.push_back(t->kind == XPathExpr::Kind::And ? "(" + text + ")" : text);
        }
    }
    std::vector<std::string> items;
    for (const auto& r : merge(std::move(ranges))) {
        if (std::uint64_t{r.last} - r.first >= 2) {
            items.push_back("(EventID>=" + std::to_string(r.first) +
                            " and EventID<=" + std::to_string(r.last) + ")");
        } else {
            for (std::uint64_t id = r.first; id <= r.last; ++id)
                items.push_back("EventID=" + std::to_string(id));
        }
    }
    items.insert(items.end(), others.begin(), others.end());
    std::string prefix = xpath.substr(0, best->begin);
    std::string suffix = xpath.substr(best->end);
    auto render = [&](const std::vector<std::string>& chunk) {
        std::string out = prefix;
        for (std::size_t i = 0; i < chunk.size(); ++i)
            out += (i ? " or " : "") + chunk[i];
        return out + suffix;
    };
    std::vector<std::string> out;
    std::vector<std::string> chunk;
    for (const auto& item : items) {
        chunk.push_back(item);
        if (count_clauses(render(chunk)) <= kMaxClausesPerSelect) continue;
        chunk.pop_back();
        if (chunk.empty()) return std::nullopt; // one term alone is over the limit
        out.push_back(render(chunk));
        chunk = {item};
        if (count_clauses(render(chunk)) > kMaxClausesPerSelect) return std::nullopt;
    }
    if (!chunk.empty()) out.push_back(render(chunk));
    return out;
}

std::string describe_select(const SelectNode& s) {
    return s.element + " #" + std::to_string(s.number) + " (Path '" + s.path + "')";
}

} // namespace

XPathError::XPathError(std::size_t offset, const std::string& message)
    : wec::Error("XPath offset " + std::to_string(offset) + ": " + message), offset_(offset),
      message_(message) {}

XPathExpr parse_xpath(std::string_view xpath) {
    return Parser(xpath).parse();
}

std::string Finding::describe() const {
    return std::string(severity == Severity::Error ? "error: " : "warning: ") + where.describe();
}

bool has_errors(const std::vector<Finding>& findings) {
    return std::any_of(findings.begin(), findings.end(),
                       [](const Finding& f) { return f.severity == Severity::Error; });
}

std::vector<Finding> lint_query(std::string_view query) {
    std::vector<Finding> out;
    for (auto& p : check_query(query))
        out.push_back({Severity::Error, "query", std::move(p)});
    pugi::xml_document doc;
    if (!doc.load_buffer(query.data(), query.size(), pugi::parse_default, pugi::encoding_utf8))
        return out;
    // element, Path, XPath (and the Query of a Suppress, which only applies there) -> number
    std::map<std::string, std::size_t> seen;
    std::set<std::string> warned_paths;
    std::size_t xpath_errors = 0;
    for (const auto& s : selects_of(doc)) {
        auto text = text_of(s.node, query);
        auto norm = normalized(text.text);
        if (!norm.empty()) {
            try {
                (void)parse_xpath(text.text);
            } catch (const XPathError& e) {
                if (++xpath_errors <= 100)
                    out.push_back({Severity::Error, "xpath",
                                   located(query, text.offset_of(e.offset()), s,
                                           "XPath not supported by Windows: " + e.message())});
            }
        }
        auto start = element_start(s.node, query);
        if (!s.path.empty() && warned_paths.insert(s.path).second) {
            if (auto why = channel_shape(s.path); !why.empty())
                out.push_back({Severity::Warning, "channel",
                               located(query, start, s, "Path '" + s.path + "' " + why)});
        }
        auto key = s.element + '\n' + text::to_lower(s.path) + '\n' + norm;
        if (s.element == "Suppress") key += '\n' + std::to_string(s.query.offset_debug());
        if (auto [it, fresh] = seen.emplace(key, s.number); !fresh)
            out.push_back({Severity::Warning, "duplicate",
                           located(query, start, s,
                                   "repeats " + s.element + " #" + std::to_string(it->second) +
                                       " (same Path and XPath): one of them is enough")});
    }
    std::stable_sort(out.begin(), out.end(), [](const Finding& a, const Finding& b) {
        return std::tie(a.where.line, a.where.column) < std::tie(b.where.line, b.where.column);
    });
    return out;
}

std::vector<Finding> lint(const Subscription& subscription) {
    auto out = lint_query(subscription.query);
    if (!subscription.read_existing_events) return out;
    pugi::xml_document doc;
    const auto& query = subscription.query;
    if (!doc.load_buffer(query.data(), query.size(), pugi::parse_default, pugi::encoding_utf8))
        return out;
    std::set<std::string> warned;
    for (const auto& s : selects_of(doc)) {
        if (s.element != "Select" || !busy(s.path) || !warned.insert(text::to_lower(s.path)).second)
            continue;
        out.push_back({Severity::Warning, "read-existing",
                       located(query, element_start(s.node, query), s,
                               "read_existing_events = true on '" + s.path +
                                   "', a busy log: every host sends all of it on its first "
                                   "connection (a flood); set read_existing_events = false "
                                   "unless you need the history")});
    }
    return out;
}

std::vector<IdRange> compact_ids(std::vector<std::uint32_t> ids) {
    std::vector<IdRange> ranges;
    ranges.reserve(ids.size());
    for (auto id : ids)
        ranges.push_back({id, id});
    return merge(std::move(ranges));
}

QueryFix fix_query(std::string_view query) {
    QueryFix fix;
    fix.query = std::string(query);
    pugi::xml_document doc;
    if (!doc.load_buffer(query.data(), query.size(), pugi::parse_default, pugi::encoding_utf8))
        return fix;
    struct Edit {
        std::size_t start, end;
        std::string text;
    };
    std::vector<Edit> edits;
    std::map<std::string, std::size_t> seen;
    for (const auto& s : selects_of(doc)) {
        if (s.node.find_child(
                [](const pugi::xml_node& n) { return n.type() == pugi::node_element; }))
            continue; // not a plain Select: left alone
        auto text = text_of(s.node, query);
        auto span = element_span(s.node, query);
        if (!span) continue;
        // Repeats are dropped within one Query only (each Query keeps a Select).
        auto key = s.element + '\n' + text::to_lower(s.path) + '\n' + normalized(text.text) + '\n' +
                   std::to_string(s.query.offset_debug());
        if (auto [it, fresh] = seen.emplace(key, s.number); !fresh) {
            // Drop the repeat with the blank it sits on.
            auto start = span->first;
            while (start > 0 && (query[start - 1] == ' ' || query[start - 1] == '\t'))
                --start;
            if (start > 0 && query[start - 1] == '\n') {
                --start;
                if (start > 0 && query[start - 1] == '\r') --start;
            }
            edits.push_back({start, span->second, {}});
            fix.changes.push_back(describe_select(s) + ": removed, it repeats " + s.element + " #" +
                                  std::to_string(it->second));
            continue;
        }
        if (s.element != "Select" || count_clauses(text.text) <= kMaxClausesPerSelect) continue;
        auto parts = split_xpath(text.text);
        if (!parts) continue;
        // The new Selects keep the original's attributes and indentation.
        std::string open = "<Select";
        for (auto a : s.node.attributes())
            open +=
                std::string(" ") + a.name() + "=\"" + text::xml_escape(a.value(), "&<\"") + "\"";
        open += ">";
        std::string indent;
        auto line_start = query.rfind('\n', span->first);
        line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
        auto lead = query.substr(line_start, span->first - line_start);
        bool blank = lead.find_first_not_of(" \t") == std::string_view::npos;
        std::string joint = blank ? "\n" + std::string(lead) : std::string();
        std::string replacement;
        for (std::size_t i = 0; i < parts->size(); ++i)
            replacement +=
                (i ? joint : "") + open + text::xml_escape((*parts)[i], "&<>") + "</Select>";
        edits.push_back({span->first, span->second, replacement});
        fix.changes.push_back(describe_select(s) + ": " + std::to_string(count_clauses(text.text)) +
                              " clauses rewritten as " + std::to_string(parts->size()) + " Select" +
                              (parts->size() > 1 ? "s" : "") +
                              " on the same Path (consecutive EventIDs as ranges)");
    }
    std::sort(edits.begin(), edits.end(),
              [](const Edit& a, const Edit& b) { return a.start > b.start; });
    for (const auto& e : edits)
        fix.query.replace(e.start, e.end - e.start, e.text);
    return fix;
}

bool query_matches(std::string_view query, const EventFacts& event) {
    pugi::xml_document doc;
    if (!doc.load_buffer(query.data(), query.size(), pugi::parse_default, pugi::encoding_utf8))
        return false;
    auto selects = selects_of(doc);
    for (auto q : doc.document_element().children("Query")) {
        bool selected = false;
        bool suppressed = false;
        for (const auto& s : selects) {
            if (s.query != q || !text::iequals(s.path, event.channel)) continue;
            XPathExpr top;
            try {
                top = parse_xpath(text_of(s.node, query).text);
            } catch (const XPathError&) {
                continue;
            }
            if (!eval_top(top, event)) continue;
            (s.element == "Select" ? selected : suppressed) = true;
        }
        if (selected && !suppressed) return true;
    }
    return false;
}

} // namespace wec::subscription

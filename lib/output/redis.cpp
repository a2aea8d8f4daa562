// `driver = "redis"`: each batch appended to a Redis list (RPUSH), e.g. for Logstash's redis input
// (`data_type => "list"`) or any consumer that pops the list.
//
// Keys: `address` (required): "HOST:PORT" (the port defaults to 6379) or "unix:PATH" (a unix
// stream socket, as Redis's `unixsocket`); `list` (required): the key of the list, a template
// with {subscription}, {subscription_uuid}, {client}, {machine} ("unknown" when the client sent no
// MachineID), {ip}, {node} (the writing node's name) and {date} (UTC, YYYY-MM-DD) (an unknown {key}
// is refused when the settings are checked; control characters of the values become '_');
// `password` (AUTH on each new connection), with `username` for an ACL user (AUTH username
// password); `db` (SELECT on each new connection, an integer >= 0); `tls = false`, with TLS `ca`,
// `cert` + `key`, `server_name` as for the tcp driver (not with a unix socket); `timeout_ms`
// (default 10000: connect, TLS handshake, AUTH and SELECT, the write of one batch and the reading
// of Redis's reply, including the wait for the batch in progress before it).
//
// One batch = one `RPUSH list e1 ... eN` (the events are the lines without their '\n'), written
// in one go, then Redis's reply is read and checked: the batch is accepted only when Redis
// answered with the list's new length (an integer >= N). RPUSH is atomic: Redis appended all N
// events, in order, or none. The protocol (RESP2) is our own (resp_internal.hpp) over the
// connections of net_internal.hpp, so that TCP, TLS and unix sockets share the deadlines, backoff
// and logging of the other network drivers.
//
// The connection is opened on the first batch, authenticated and kept; batches go one at a time.
// An error reply that concerns the key only (WRONGTYPE: the key holds another type; NOPERM: the
// ACL user may not write it; MOVED/ASK: a cluster node that does not own it) refuses that batch
// with Redis's message, keeps the connection and starts no backoff, so that other lists keep
// working (logged when the message changes, else at most once a minute). Any other failure —
// connect, TLS, AUTH or SELECT refused, another error reply (OOM, READONLY, LOADING, NOAUTH...),
// a reply that is not an integer, a malformed reply, a timeout — refuses the batch, closes the
// connection, and refuses later batches at once until the reconnect backoff (250 ms doubling to
// 5 s) has passed; the outage and the recovery are logged once each. When the connection fails
// after the RPUSH was sent and before its reply arrived, Redis may have appended the batch
// although it was refused: the source sends it again, and the list may hold it twice.
#include "output/drivers_internal.hpp"
#include "output/net_internal.hpp"
#include "output/resp_internal.hpp"

#include <array>
#include <vector>

namespace wec::output {
namespace net = detail::net;
namespace resp = detail::resp;
namespace {

// The keys of a list template (output::kTemplateKeys, as for the other drivers).
enum class Field { Subscription, SubscriptionUuid, Client, Machine, Ip, Node, Date };

constexpr std::array<std::pair<std::string_view, Field>, 7> kFields{{
    {"subscription", Field::Subscription},
    {"subscription_uuid", Field::SubscriptionUuid},
    {"client", Field::Client},
    {"machine", Field::Machine},
    {"ip", Field::Ip},
    {"node", Field::Node},
    {"date", Field::Date},
}};

// A list template, split into literal text and keys.
class ListTemplate {
public:
    // Throws OutputError naming an unknown {key} (output::check_template; a '{' without '}' is
    // text).
    explicit ListTemplate(std::string_view text) {
        check_template(text);
        std::string literal;
        for (std::size_t i = 0; i < text.size();) {
            const auto close = text[i] == '{' ? text.find('}', i) : std::string_view::npos;
            const Field* field = nullptr;
            if (close != std::string_view::npos)
                for (const auto& [n, f] : kFields)
                    if (n == text.substr(i + 1, close - i - 1)) field = &f;
            if (!field) {
                literal.push_back(text[i++]);
                continue;
            }
            if (!literal.empty()) parts_.push_back({std::move(literal), {}});
            literal.clear();
            parts_.push_back({{}, *field});
            i = close + 1;
        }
        if (!literal.empty()) parts_.push_back({std::move(literal), {}});
    }

    std::string expand(const BatchInfo& b) const {
        std::string out;
        std::string date;
        for (const auto& p : parts_) {
            if (!p.field) {
                out += p.literal;
                continue;
            }
            std::string_view value;
            switch (*p.field) {
            case Field::Subscription:
                value = b.subscription_name;
                break;
            case Field::SubscriptionUuid:
                value = b.subscription_uuid;
                break;
            case Field::Client:
                value = b.client;
                break;
            case Field::Machine:
                value = b.machine.empty() ? std::string_view("unknown") : b.machine;
                break;
            case Field::Ip:
                value = b.ip;
                break;
            case Field::Node:
                value = b.node.empty() ? std::string_view("unknown") : b.node;
                break;
            case Field::Date:
                date = detail::utc_date(b.received);
                value = date;
                break;
            }
            for (char c : value) {
                auto u = static_cast<unsigned char>(c);
                out.push_back(u < 0x20 || u == 0x7f ? '_' : c);
            }
        }
        return out;
    }

private:
    struct Part {
        std::string literal;
        std::optional<Field> field;
    };
    std::vector<Part> parts_;
};

// Redis's replies here are integers, OK and short errors: small bounds.
constexpr resp::Limits kReplyLimits{.max_line = 4096,
                                    .max_bulk = 64 * 1024,
                                    .max_elements = 1024,
                                    .max_depth = 4,
                                    .max_held_bytes = 1 << 20};

// Reads exactly `count` replies, or throws (an extra byte is a protocol error: the connection is
// no longer in step with the requests).
std::vector<resp::Reply> read_replies(net::Stream& s, std::size_t count,
                                      net::Clock::time_point deadline) {
    resp::ReplyParser parser(kReplyLimits);
    std::array<char, 4096> buf;
    while (parser.ready() < count)
        parser.feed(std::string_view(buf.data(), s.read(buf, deadline)));
    if (parser.ready() > count || !parser.idle())
        throw OutputError("Redis sent more than the replies expected");
    std::vector<resp::Reply> out;
    while (parser.has_reply())
        out.push_back(parser.take());
    return out;
}

std::string message_of(const resp::Reply& r) {
    std::string out;
    for (char c : std::string_view(r.text).substr(0, 400)) {
        auto u = static_cast<unsigned char>(c);
        out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
    }
    return out;
}

// OutputError replies that concern one key: the connection is fine and other keys may work.
bool about_the_key(std::string_view error) {
    for (std::string_view code : {"WRONGTYPE ", "NOPERM ", "MOVED ", "ASK "})
        if (error.starts_with(code)) return true;
    return false;
}

class RedisDriver final : public Driver {
public:
    RedisDriver(std::string name, net::Target target, ListTemplate list,
                std::optional<std::string> username, std::optional<std::string> password,
                std::optional<std::int64_t> db, std::chrono::milliseconds timeout, Logger* log)
        : name_(std::move(name)), list_(std::move(list)),
          sender_(std::move(target), timeout, log, name_,
                  greeting(std::move(username), std::move(password), db)) {}

    void write(const BatchInfo& batch, std::string_view lines) override {
        if (lines.empty()) return;
        std::vector<std::string_view> events;
        for (std::size_t at = 0; at < lines.size();) {
            auto nl = lines.find('\n', at);
            if (nl == std::string_view::npos) nl = lines.size();
            events.push_back(lines.substr(at, nl - at));
            at = nl + 1;
        }
        const std::string key = list_.expand(batch);
        std::string command;
        command.reserve(lines.size() + events.size() * 16 + key.size() + 32);
        resp::append_array_header(command, events.size() + 2);
        resp::append_bulk(command, "RPUSH");
        resp::append_bulk(command, key);
        for (auto e : events)
            resp::append_bulk(command, e);
        sender_.exchange([&](net::Stream& s, net::Clock::time_point deadline) {
            s.write(command, deadline);
            const resp::Reply r = std::move(read_replies(s, 1, deadline).front());
            if (r.type == resp::Reply::Type::Integer &&
                r.integer >= static_cast<std::int64_t>(events.size()))
                return;
            if (r.type == resp::Reply::Type::Error) {
                std::string what = "Redis refused RPUSH to '" + key + "': " + message_of(r);
                if (about_the_key(r.text)) throw net::Rejected(what);
                throw OutputError(what);
            }
            throw OutputError("unexpected reply to RPUSH of " + std::to_string(events.size()) +
                              " elements to '" + key + "': " + resp::describe(r));
        });
    }
    void reopen() override { sender_.reopen(); }
    std::string describe() const override { return name_; }
    DriverStats stats() const override { return sender_.state().stats(); }

private:
    // AUTH and SELECT, in one write, on each new connection; each must answer +OK.
    static net::StreamSender::Step greeting(std::optional<std::string> username,
                                            std::optional<std::string> password,
                                            std::optional<std::int64_t> db) {
        std::string request;
        std::vector<std::string> what;
        if (password) {
            if (username) {
                const std::array<std::string_view, 3> auth{"AUTH", *username, *password};
                resp::append_command(request, auth);
                what.push_back("AUTH as '" + *username + "'");
            } else {
                const std::array<std::string_view, 2> auth{"AUTH", *password};
                resp::append_command(request, auth);
                what.push_back("AUTH");
            }
        }
        if (db) {
            const std::string index = std::to_string(*db);
            const std::array<std::string_view, 2> select{"SELECT", index};
            resp::append_command(request, select);
            what.push_back("SELECT " + index);
        }
        if (what.empty()) return {};
        return [request = std::move(request),
                what = std::move(what)](net::Stream& s, net::Clock::time_point deadline) {
            s.write(request, deadline);
            auto replies = read_replies(s, what.size(), deadline);
            for (std::size_t i = 0; i < replies.size(); ++i) {
                const auto& r = replies[i];
                if (r.type == resp::Reply::Type::SimpleString && r.text == "OK") continue;
                if (r.type == resp::Reply::Type::Error)
                    throw OutputError(what[i] + " refused by Redis: " + message_of(r));
                throw OutputError("unexpected reply to " + what[i] + ": " + resp::describe(r));
            }
        };
    }

    std::string name_;
    ListTemplate list_;
    net::StreamSender sender_;
};

} // namespace

std::unique_ptr<Driver> detail::make_redis_driver(const Settings& settings, Logger* log) {
    detail::SettingsReader r("redis", settings);
    const std::string address = r.required_string("address");
    net::Target target;
    std::string name = "redis:";
    if (address.starts_with("unix:")) {
        target.kind = net::Target::Kind::UnixStream;
        target.path = address.substr(5);
        if (target.path.empty()) r.fail("address", "is invalid: '" + address + "' has no path");
        if (target.path.size() >= 108)
            r.fail("address", "is invalid: the path is longer than 107 bytes (a socket path)");
        name += address;
    } else {
        target.kind = net::Target::Kind::Tcp;
        try {
            target.address = net::parse_host_port(address, 6379);
        } catch (const OutputError& e) {
            r.fail("address",
                   std::string("is invalid: ") + e.what() + " (expected HOST:PORT or unix:PATH)");
        }
        name += target.address.text();
    }
    const std::string list_text = r.required_string("list");
    std::optional<ListTemplate> list;
    try {
        list.emplace(list_text);
    } catch (const OutputError& e) {
        r.fail("list", e.what());
    }
    auto password = r.string("password");
    auto username = r.string("username");
    if (username && !password) r.fail("username", "needs 'password' as well (AUTH user password)");
    auto db = r.integer("db", 0, 2147483647);
    bool tls = r.boolean("tls").value_or(false);
    if (tls && target.kind == net::Target::Kind::UnixStream)
        r.fail("tls", "is not available with a unix: address");
    target.tls = net::read_tls(r, tls, "with tls = true");
    if (tls) name += " (tls)";
    auto timeout = net::read_timeout(r);
    r.finish();
    return std::make_unique<RedisDriver>(std::move(name), std::move(target), std::move(*list),
                                         std::move(username), std::move(password), db, timeout,
                                         log);
}

} // namespace wec::output

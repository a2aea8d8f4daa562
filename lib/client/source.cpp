#include "client/client.hpp"

#include <chrono>

namespace wec::client {

Source::Source(SourceOptions options)
    : options_(std::move(options)), session_id_(wsman::new_message_id()) {
    // One TLS context (certificate loaded once) for every connection of this host.
    if (options_.manager.tls && !options_.tls_context)
        options_.tls_context = make_tls_context(options_.tls);
}
Source::~Source() = default;

namespace {

ConnectionOptions connection_options(SourceOptions& o, const Url& url, bool sldc_header) {
    ConnectionOptions c;
    c.host = url.host;
    c.port = url.port;
    c.tls = url.tls;
    if (url.tls) {
        if (!o.tls_context) o.tls_context = make_tls_context(o.tls);
        c.tls_options = o.tls;
        c.tls_context = o.tls_context;
    }
    c.service = o.service;
    c.mechanism = o.mechanism;
    c.ccache = o.ccache;
    c.ntlm_user = o.ntlm_user;
    c.ntlm_password = o.ntlm_password;
    c.tab_form = o.tab_form;
    c.sldc_header = sldc_header;
    c.timeout = o.timeout;
    c.io_context = o.io_context;
    c.compressor = o.compressor;
    return c;
}

std::string status_text(const Response& r) {
    auto text = r.text();
    if (text.size() > 300) text.resize(300);
    return "HTTP " + std::to_string(r.status) + (text.empty() ? "" : ": " + text);
}

// Retry-After in its delay-seconds form (RFC 9110 10.2.3); 0 when absent or an HTTP date.
std::chrono::seconds retry_after(const Response& r) {
    const auto v = r.header("Retry-After");
    if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos)
        return std::chrono::seconds(0);
    return std::chrono::seconds(std::stol(v));
}

} // namespace

std::vector<wsman::Subscription> Source::enumerate() {
    if (!manager_)
        manager_ =
            std::make_unique<Connection>(connection_options(options_, options_.manager, false));
    wsman::SourceHeaders h;
    h.to = options_.manager.str();
    h.machine_id = options_.machine_id;
    h.message_id = wsman::new_message_id();
    h.session_id = session_id_;
    auto soap = wsman::build_enumerate(h);
    auto r = manager_->post(options_.manager.target, soap, false);
    if (r.status != 200)
        throw ClientError(r.status == 401 ? ErrorKind::Auth : ErrorKind::Http,
                          "Enumerate answered " + status_text(r), r.status);
    if (!r.message || r.message->action != wsman::Action::EnumerateResponse ||
        !r.message->enumerate_response)
        throw ClientError(ErrorKind::Protocol,
                          "Enumerate was not answered with an EnumerateResponse", r.status);
    if (r.message->relates_to != h.message_id)
        throw ClientError(ErrorKind::Protocol, "EnumerateResponse RelatesTo '" +
                                                   r.message->relates_to + "' != MessageID '" +
                                                   h.message_id + "'");
    return r.message->enumerate_response->subscriptions;
}

void Source::end() {
    if (!manager_) return;
    wsman::SourceHeaders h;
    h.to = options_.manager.str();
    h.machine_id = options_.machine_id;
    h.session_id = session_id_;
    auto r = manager_->post(options_.manager.target, wsman::build_end(h), false);
    manager_.reset();
    if (r.status != 200 && r.status != 204)
        throw ClientError(ErrorKind::Http, "End answered " + status_text(r), r.status);
}

void Source::reset() {
    manager_.reset();
    push_.clear();
}

Url Source::push_url(const wsman::Subscription& subscription) const {
    Url u = Url::parse(subscription.notify_to);
    if (!options_.follow_notify_host) u.host = options_.manager.host;
    return u;
}

Connection& Source::push_connection(const wsman::Subscription& subscription) {
    Url u = push_url(subscription);
    auto key = u.host + ":" + std::to_string(u.port);
    auto& slot = push_[key];
    // Windows announces SLDC on every request of a subscription that uses it.
    if (!slot)
        slot = std::make_unique<Connection>(
            connection_options(options_, u, subscription.compression == "SLDC"));
    if (!slot->is_open()) slot->connect(u.target);
    return *slot;
}

wsman::SourceHeaders Source::headers_for(const wsman::Subscription& subscription) const {
    wsman::SourceHeaders h;
    h.to = subscription.notify_to;
    h.machine_id = options_.machine_id;
    h.message_id = wsman::new_message_id();
    h.session_id = session_id_;
    h.identifier = subscription.identifier;
    if (subscription.max_envelope_size) h.max_envelope_size = *subscription.max_envelope_size;
    if (!subscription.locale.empty()) h.locale = subscription.locale;
    if (!subscription.data_locale.empty()) h.data_locale = subscription.data_locale;
    return h;
}

Ack Source::expect_ack(Connection& c, const std::string& target, const std::string& soap,
                       const std::string& message_id, bool compress, const char* what) {
    auto start = std::chrono::steady_clock::now();
    return check_ack(c.post(target, soap, compress), message_id, what, start);
}

Ack Source::check_ack(const Response& r, const std::string& message_id, const char* what,
                      std::chrono::steady_clock::time_point start) {
    Ack ack;
    ack.latency = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    ack.message_id = message_id;
    if (r.status != 200)
        throw ClientError(r.status == 401 ? ErrorKind::Auth : ErrorKind::Http,
                          std::string(what) + " answered " + status_text(r), r.status,
                          retry_after(r));
    if (!r.message || r.message->action != wsman::Action::Ack)
        throw ClientError(ErrorKind::Protocol, std::string(what) + " was not answered with an Ack",
                          r.status);
    if (r.message->relates_to != message_id)
        throw ClientError(ErrorKind::Protocol, std::string(what) + " Ack RelatesTo '" +
                                                   r.message->relates_to + "' != MessageID '" +
                                                   message_id + "'");
    ack.reply = *r.message;
    return ack;
}

Ack Source::send_compressed(const wsman::Subscription& subscription,
                            std::span<const std::uint8_t> sldc_record,
                            const std::string& message_id) {
    auto start = std::chrono::steady_clock::now();
    auto& c = push_connection(subscription);
    auto target = push_url(subscription).target;
    return check_ack(c.post_prepared(target, c.prepare_bytes(sldc_record, true)), message_id,
                     "Events", start);
}

Ack Source::heartbeat(const wsman::Subscription& subscription) {
    auto h = headers_for(subscription);
    auto& c = push_connection(subscription);
    return expect_ack(c, push_url(subscription).target, wsman::build_heartbeat(h), h.message_id,
                      options_.compress, "Heartbeat");
}

Ack Source::send_events(const wsman::Subscription& subscription,
                        std::span<const std::string_view> events, std::string_view bookmark) {
    auto h = headers_for(subscription);
    auto& c = push_connection(subscription);
    return expect_ack(c, push_url(subscription).target, wsman::build_events(h, events, bookmark),
                      h.message_id, options_.compress, "Events");
}

Ack Source::send_events(const wsman::Subscription& subscription,
                        std::span<const std::string> events, std::string_view bookmark) {
    std::vector<std::string_view> views(events.begin(), events.end());
    return send_events(subscription, std::span<const std::string_view>(views), bookmark);
}

unsigned Source::subscription_end(const wsman::Subscription& subscription,
                                  std::string_view status) {
    auto h = headers_for(subscription);
    wsman::SubscriptionEndBody body;
    body.manager_address = subscription.notify_to;
    body.manager_identifier = subscription.identifier;
    body.status = std::string(status);
    auto& c = push_connection(subscription);
    auto r = c.post(push_url(subscription).target, wsman::build_subscription_end(h, body), false);
    if (r.status != 200 && r.status != 204)
        throw ClientError(ErrorKind::Http, "SubscriptionEnd answered " + status_text(r), r.status);
    return r.status;
}

} // namespace wec::client

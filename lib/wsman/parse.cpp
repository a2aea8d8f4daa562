#include "text/ascii.hpp"
#include "text/text.hpp"
#include "wsman/names_internal.hpp"
#include "wsman/wsman.hpp"
#include "wsman/xml_writer_internal.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <deque>
#include <pugixml.hpp>

namespace wec::wsman {
namespace ns = detail::ns;
namespace {

using pugi::xml_node;

// What a parsed Message keeps alive: the (sanitized) text parsed in place, so that event views
// point straight into it, and the few event texts that had to be assembled from several parts.
struct Storage {
    std::string text;
    std::deque<std::string> assembled;
    // When the events' CDATA sections were cut out before parsing (see Skeleton): the text pugixml
    // parsed in place, which attribute views (Event::action, ...) point into.
    std::string skeleton;
};

// pugixml scans CDATA one byte at a time looking for "]]>", and the events are almost all of an
// Events body. So long CDATA sections are cut out of a copy of the document (the skeleton keeps
// an empty "<![CDATA[]]>" in their place) and found with memchr instead; an empty CDATA node of
// a w:Event then stands for its cut. The result is only used when the skeleton parsed and every
// cut was claimed by a w:Event (the only place whose CDATA is read as is); otherwise the whole
// text is parsed as before. A cut always starts where pugixml is in the same state in both texts
// (the bytes before it are identical), so a claimed cut is exactly the CDATA pugixml would have
// produced.
struct Skeleton {
    struct Cut {
        std::size_t at = 0; // offset of the empty content in the skeleton
        std::string_view content;
        bool claimed = false;
    };
    const char* base = nullptr; // skeleton data while parsing
    std::vector<Cut> cuts;

    static constexpr std::size_t kMinCut = 64;
    struct Unclaimed {}; // thrown when a cut was not claimed: the skeleton result is not used

    // Fills `out` with the skeleton of `text`; false when nothing is worth cutting.
    bool build(std::string_view text, std::string& out) {
        static constexpr std::string_view kOpen = "<![CDATA[", kClose = "]]>";
        std::size_t copied = 0, from = 0;
        for (;;) {
            const std::size_t open = text.find(kOpen, from);
            if (open == std::string_view::npos) break;
            const std::size_t begin = open + kOpen.size();
            const std::size_t close = text.find(kClose, begin);
            if (close == std::string_view::npos) break;
            if (close - begin >= kMinCut) {
                if (cuts.empty()) out.reserve(text.size() / 4);
                out.append(text.substr(copied, begin - copied));
                cuts.push_back({out.size(), text.substr(begin, close - begin)});
                copied = close;
            }
            from = close + kClose.size();
        }
        if (cuts.empty()) return false;
        out.append(text.substr(copied));
        return true;
    }

    // The content a (CDATA) node stands for, or nullptr when it is not a cut.
    Cut* cut_of(xml_node c) {
        if (base == nullptr || c.type() != pugi::node_cdata) return nullptr;
        const auto at = static_cast<std::size_t>(c.value() - base);
        auto it = std::lower_bound(cuts.begin(), cuts.end(), at,
                                   [](const Cut& x, std::size_t v) { return x.at < v; });
        return it != cuts.end() && it->at == at ? &*it : nullptr;
    }

    bool all_claimed() const {
        return std::all_of(cuts.begin(), cuts.end(), [](const Cut& x) { return x.claimed; });
    }
};

// No EOL normalization: MessageIDs and events are kept byte for byte. No DOCTYPE/PI processing:
// nothing is expanded.
constexpr unsigned kParseOptions = pugi::parse_cdata | pugi::parse_escapes;

std::string_view local_name(std::string_view name) {
    const auto colon = name.find(':');
    return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

std::string_view prefix_of(std::string_view name) {
    const auto colon = name.find(':');
    return colon == std::string_view::npos ? std::string_view{} : name.substr(0, colon);
}

// The namespace URI bound to `prefix` ("" = default namespace) in the scope of `n`.
std::string_view resolve_prefix(xml_node n, std::string_view prefix) {
    if (prefix == "xml") return ns::xml;
    for (xml_node cur = n; cur && cur.type() == pugi::node_element; cur = cur.parent()) {
        for (pugi::xml_attribute a = cur.first_attribute(); a; a = a.next_attribute()) {
            if (std::strncmp(a.name(), "xmlns", 5) != 0) continue; // most are not: no strlen
            const std::string_view an = a.name();
            if (prefix.empty()
                    ? an.size() == 5
                    : an.size() == 6 + prefix.size() && an[5] == ':' && an.substr(6) == prefix)
                return a.value();
        }
    }
    return {};
}

// Whether `n` has an xmlns or xmlns:* attribute (its scope differs from its parent's).
bool declares_namespace(xml_node n) {
    for (pugi::xml_attribute a = n.first_attribute(); a; a = a.next_attribute())
        if (std::strncmp(a.name(), "xmlns", 5) == 0) return true;
    return false;
}

std::string_view ns_of(xml_node n) {
    return resolve_prefix(n, prefix_of(n.name()));
}

bool is(xml_node n, std::string_view nsuri, std::string_view local) {
    return n.type() == pugi::node_element && local_name(n.name()) == local && ns_of(n) == nsuri;
}

xml_node child(xml_node parent, std::string_view nsuri, std::string_view local) {
    for (xml_node c = parent.first_child(); c; c = c.next_sibling())
        if (is(c, nsuri, local)) return c;
    return {};
}

xml_node first_element(xml_node parent) {
    for (xml_node c = parent.first_child(); c; c = c.next_sibling())
        if (c.type() == pugi::node_element) return c;
    return {};
}

// An unprefixed attribute (Name, Code, Mode, …).
std::string_view attr(xml_node n, const char* name) {
    return n.attribute(name).value();
}

std::string_view text(xml_node n) {
    return n.child_value();
}
std::string trimmed(xml_node n) {
    return std::string(text::trim_xml_space(n.child_value()));
}

template <typename T>
std::optional<T> number(std::string_view s) {
    s = text::trim_xml_space(s);
    T v{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

// Visits `root` and its descendants without recursion (input depth is attacker-controlled).
template <typename F>
void walk(xml_node root, F&& visit) {
    xml_node cur = root;
    while (cur) {
        visit(cur);
        if (cur.first_child()) {
            cur = cur.first_child();
            continue;
        }
        while (cur != root && !cur.next_sibling())
            cur = cur.parent();
        if (cur == root) break;
        cur = cur.next_sibling();
    }
}

// Serializes an element compactly, declaring on it the namespaces its subtree uses but that are
// declared by its ancestors, so that the string stands alone.
std::string serialize(xml_node n) {
    std::vector<std::string_view> used;
    auto note = [&used](std::string_view p) {
        if (p == "xml" || p == "xmlns") return;
        for (auto u : used)
            if (u == p) return;
        used.push_back(p);
    };
    walk(n, [&](xml_node c) {
        if (c.type() != pugi::node_element) return;
        note(prefix_of(c.name()));
        for (pugi::xml_attribute a = c.first_attribute(); a; a = a.next_attribute()) {
            const std::string_view an = a.name();
            if (an.size() >= 5 && an.compare(0, 5, "xmlns") == 0) continue;
            if (auto p = prefix_of(an); !p.empty()) note(p);
        }
    });
    std::vector<std::pair<std::string, std::string>> missing;
    for (auto p : used) {
        const std::string decl = p.empty() ? std::string("xmlns") : "xmlns:" + std::string(p);
        if (n.attribute(decl.c_str())) continue;
        const std::string_view inherited = resolve_prefix(n.parent(), p);
        if (!inherited.empty()) missing.emplace_back(decl, std::string(inherited));
    }
    std::string out;
    detail::StringWriter w(out);
    constexpr unsigned flags = pugi::format_raw;
    if (missing.empty()) {
        n.print(w, "", flags, pugi::encoding_utf8);
        return out;
    }
    pugi::xml_document tmp;
    xml_node copy = tmp.append_copy(n);
    for (const auto& [name, value] : missing)
        copy.append_attribute(name.c_str()) = value.c_str();
    copy.print(w, "", flags, pugi::encoding_utf8);
    return out;
}

// The bookmark of w:Bookmark: its element (a BookmarkList) or its text (…/bookmark/earliest).
std::string bookmark_of(xml_node b) {
    if (xml_node e = first_element(b)) return serialize(e);
    return trimmed(b);
}

// The e:Identifier among the reference properties/parameters of an endpoint reference.
std::string identifier_of(xml_node epr) {
    for (const char* holder : {"ReferenceProperties", "ReferenceParameters"}) {
        if (xml_node h = child(epr, ns::addressing, holder))
            if (xml_node id = child(h, ns::eventing, "Identifier")) return trimmed(id);
    }
    return {};
}

ParseError missing(std::string_view element, std::string_view where) {
    return ParseError(ErrorCode::MissingElement,
                      "missing element " + std::string(element) + " in " + std::string(where),
                      std::string(element));
}

void parse_subscription(xml_node env, Subscription& s) {
    if (xml_node header = child(env, ns::soap, "Header")) {
        if (xml_node options = child(header, ns::wsman, "OptionSet")) {
            for (xml_node o = options.first_child(); o; o = o.next_sibling()) {
                if (!is(o, ns::wsman, "Option")) continue;
                const std::string_view name = attr(o, "Name");
                if (name == "SubscriptionName")
                    s.name = trimmed(o);
                else if (name == "ContentFormat")
                    s.content_format = trimmed(o);
                else if (name == "Compression")
                    s.compression = trimmed(o);
                else if (name == "ReadExistingEvents")
                    s.read_existing_events = true;
                else if (name == "IgnoreChannelError")
                    s.ignore_channel_error = true;
            }
        }
        if (xml_node l = child(header, ns::wsman, "Locale")) s.locale = attr(l, "xml:lang");
        if (xml_node l = child(header, ns::msft, "DataLocale")) s.data_locale = attr(l, "xml:lang");
    }
    xml_node body = child(env, ns::soap, "Body");
    if (!body)
        throw ParseError(ErrorCode::MissingBody, "missing s:Body in the Subscribe envelope",
                         "s:Body");
    xml_node sub = child(body, ns::eventing, "Subscribe");
    if (!sub) throw missing("e:Subscribe", "the Subscribe envelope");

    if (xml_node end_to = child(sub, ns::eventing, "EndTo"))
        s.end_to = trimmed(child(end_to, ns::addressing, "Address"));
    if (xml_node d = child(sub, ns::eventing, "Delivery")) {
        s.heartbeats = trimmed(child(d, ns::wsman, "Heartbeats"));
        if (xml_node notify = child(d, ns::eventing, "NotifyTo")) {
            s.notify_to = trimmed(child(notify, ns::addressing, "Address"));
            s.identifier = identifier_of(notify);
            if (xml_node policy = child(notify, ns::policy, "Policy")) {
                walk(policy, [&s](xml_node c) {
                    if (is(c, ns::auth, "Authentication"))
                        s.auth_profile = attr(c, "Profile");
                    else if (is(c, ns::auth, "Thumbprint"))
                        s.issuer_thumbprints.push_back(trimmed(c));
                });
            }
        }
        if (xml_node r = child(d, ns::wsman, "ConnectionRetry")) {
            s.connection_retry = trimmed(r);
            s.connection_retry_total = number<std::uint32_t>(attr(r, "Total"));
        }
        s.max_time = trimmed(child(d, ns::wsman, "MaxTime"));
        s.max_elements = number<std::uint32_t>(text(child(d, ns::wsman, "MaxElements")));
        s.max_envelope_size = number<std::uint32_t>(text(child(d, ns::wsman, "MaxEnvelopeSize")));
        if (xml_node l = child(d, ns::wsman, "Locale")) s.locale = attr(l, "xml:lang");
        if (xml_node l = child(d, ns::msft, "DataLocale")) s.data_locale = attr(l, "xml:lang");
        s.content_encoding = trimmed(child(d, ns::wsman, "ContentEncoding"));
    }
    if (xml_node f = child(sub, ns::wsman, "Filter"))
        if (xml_node q = first_element(f)) s.query = serialize(q);
    if (xml_node b = child(sub, ns::wsman, "Bookmark")) s.bookmark = bookmark_of(b);
    s.send_bookmarks = static_cast<bool>(child(sub, ns::wsman, "SendBookmarks"));
}

void parse_header(xml_node header, Message& m) {
    for (xml_node h = header.first_child(); h; h = h.next_sibling()) {
        if (h.type() != pugi::node_element) continue;
        const std::string_view nsuri = ns_of(h);
        const std::string_view ln = local_name(h.name());
        bool known = true;
        if (nsuri == ns::addressing) {
            if (ln == "To")
                m.to = trimmed(h);
            else if (ln == "MessageID")
                m.message_id = text(h);
            else if (ln == "RelatesTo")
                m.relates_to = text(h);
            else if (ln == "Action")
                m.action_uri = trimmed(h);
            else if (ln == "ReplyTo")
                m.reply_to = trimmed(child(h, ns::addressing, "Address"));
            else
                known = false;
        } else if (nsuri == ns::wsman) {
            if (ln == "ResourceURI")
                m.resource_uri = trimmed(h);
            else if (ln == "MaxEnvelopeSize")
                m.max_envelope_size = number<std::uint32_t>(text(h));
            else if (ln == "Locale")
                m.locale = attr(h, "xml:lang");
            else if (ln == "OperationTimeout")
                m.operation_timeout = trimmed(h);
            else if (ln == "AckRequested")
                m.ack_requested = true;
            else if (ln == "Bookmark")
                m.bookmark = bookmark_of(h);
            else
                known = false;
        } else if (nsuri == ns::msft) {
            if (ln == "DataLocale")
                m.data_locale = attr(h, "xml:lang");
            else if (ln == "SessionId")
                m.session_id = trimmed(h);
            else if (ln == "OperationID")
                m.operation_id = trimmed(h);
            else if (ln == "SequenceId")
                m.sequence_id = trimmed(h);
            else
                known = false;
        } else if (nsuri == ns::machineid && ln == "MachineID") {
            m.machine_id = trimmed(h);
        } else if (nsuri == ns::eventing && ln == "Identifier") {
            m.identifier = trimmed(h);
        } else {
            known = false;
        }
        if (!known) m.other_headers.push_back({std::string(nsuri), std::string(ln), serialize(h)});
    }
}

// One w:Event: its single CDATA/text part is referenced in place; several parts (a split CDATA)
// or an inline element are assembled once into the storage.
Event event_of(xml_node e, Storage& st, Skeleton& sk) {
    Event ev{{}, attr(e, "Action")};
    xml_node inline_element;
    std::size_t parts = 0;
    std::string_view single;
    const auto value = [&sk](xml_node c) -> std::string_view {
        if (Skeleton::Cut* cut = sk.cut_of(c)) {
            cut->claimed = true;
            return cut->content;
        }
        return c.value();
    };
    for (xml_node c = e.first_child(); c; c = c.next_sibling()) {
        if (c.type() == pugi::node_cdata || c.type() == pugi::node_pcdata) {
            ++parts;
            single = value(c);
        } else if (c.type() == pugi::node_element && !inline_element) {
            inline_element = c;
        }
    }
    if (inline_element) {
        ev.xml = st.assembled.emplace_back(serialize(inline_element));
    } else if (parts == 1) {
        ev.xml = text::trim_xml_space(single);
    } else if (parts > 1) {
        std::string& joined = st.assembled.emplace_back();
        for (xml_node c = e.first_child(); c; c = c.next_sibling())
            if (c.type() == pugi::node_cdata || c.type() == pugi::node_pcdata) joined += value(c);
        ev.xml = text::trim_xml_space(joined);
    }
    return ev;
}

void parse_events(xml_node body, Message& m, Storage& st, Skeleton& sk, bool required) {
    xml_node events = child(body, ns::wsman, "Events");
    if (!events) {
        if (required) throw missing("w:Events", "s:Body");
        return;
    }
    // The 21+ w:Event siblings share their parent's scope: the parent's bindings are looked up
    // once per prefix (not up to the envelope for each event); an event that declares its own
    // namespaces is resolved in full.
    std::string_view last_prefix;
    std::string_view last_ns;
    bool cached = false;
    for (xml_node e = events.first_child(); e; e = e.next_sibling()) {
        if (e.type() != pugi::node_element) continue;
        const std::string_view name = e.name();
        if (local_name(name) != "Event") continue;
        const std::string_view prefix = prefix_of(name);
        std::string_view nsuri;
        if (declares_namespace(e)) {
            nsuri = ns_of(e);
        } else {
            if (!cached || prefix != last_prefix) {
                last_prefix = prefix;
                last_ns = resolve_prefix(events, prefix);
                cached = true;
            }
            nsuri = last_ns;
        }
        if (nsuri == ns::wsman) m.events.push_back(event_of(e, st, sk));
    }
}

void parse_subscription_end(xml_node body, Message& m) {
    xml_node se = child(body, ns::eventing, "SubscriptionEnd");
    if (!se) throw missing("e:SubscriptionEnd", "s:Body");
    SubscriptionEndBody& out = m.subscription_end.emplace();
    if (xml_node mgr = child(se, ns::eventing, "SubscriptionManager")) {
        out.manager_address = trimmed(child(mgr, ns::addressing, "Address"));
        out.manager_identifier = identifier_of(mgr);
    }
    out.status = trimmed(child(se, ns::eventing, "Status"));
    if (xml_node f = child(se, ns::wsmanfault, "WSManFault")) {
        WsmanFault& fault = out.fault.emplace();
        fault.code = attr(f, "Code");
        fault.machine = attr(f, "Machine");
        if (xml_node msg = child(f, ns::wsmanfault, "Message")) {
            std::string joined;
            walk(msg, [&joined](xml_node c) {
                if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) {
                    if (!joined.empty()) joined += ' ';
                    joined += text::trim_xml_space(c.value());
                }
            });
            fault.message = std::string(text::trim_xml_space(joined));
        }
    }
}

void parse_enumerate_response(xml_node body, Message& m) {
    xml_node er = child(body, ns::enumeration, "EnumerateResponse");
    if (!er) throw missing("n:EnumerateResponse", "s:Body");
    EnumerateResponseBody& out = m.enumerate_response.emplace();
    out.enumeration_context = trimmed(child(er, ns::enumeration, "EnumerationContext"));
    out.end_of_sequence = static_cast<bool>(child(er, ns::wsman, "EndOfSequence"));
    xml_node items = child(er, ns::wsman, "Items");
    if (!items) return;
    for (xml_node it = items.first_child(); it; it = it.next_sibling()) {
        if (!is(it, ns::subscription, "Subscription")) continue;
        Subscription& s = out.subscriptions.emplace_back();
        s.version = trimmed(child(it, ns::subscription, "Version"));
        xml_node env = child(it, ns::soap, "Envelope");
        if (!env) throw missing("s:Envelope", "m:Subscription");
        s.envelope = serialize(env);
        parse_subscription(env, s);
    }
}

Message parse_document(std::shared_ptr<Storage> st, std::size_t replaced, bool cut);

Message parse_storage(std::shared_ptr<Storage> st, bool xml_clean = false) {
    const std::size_t replaced = xml_clean ? 0 : text::sanitize_xml_chars(st->text);
    try {
        return parse_document(st, replaced, true);
    } catch (const ParseError&) {
        if (st->skeleton.empty()) throw;
    } catch (const Skeleton::Unclaimed&) {
    }
    st->skeleton.clear();
    st->skeleton.shrink_to_fit();
    st->assembled.clear();
    return parse_document(std::move(st), replaced, false);
}

// Parses st->text (or, with `cut`, its skeleton when it has long CDATA sections).
Message parse_document(std::shared_ptr<Storage> st, std::size_t replaced, bool cut) {
    Message m;
    m.replaced_chars = replaced;
    Skeleton sk;
    std::string* parsed = &st->text;
    if (cut && sk.build(st->text, st->skeleton)) {
        parsed = &st->skeleton;
        sk.base = parsed->data();
    }
    pugi::xml_document doc;
    const pugi::xml_parse_result r =
        doc.load_buffer_inplace(parsed->data(), parsed->size(), kParseOptions, pugi::encoding_utf8);
    if (!r) {
        const auto offset = static_cast<std::size_t>(r.offset < 0 ? 0 : r.offset);
        throw ParseError(ErrorCode::NotXml,
                         "not well-formed XML at offset " + std::to_string(offset) + ": " +
                             r.description(),
                         {}, offset);
    }
    xml_node env = doc.document_element();
    if (!is(env, ns::soap, "Envelope")) {
        throw ParseError(ErrorCode::NotEnvelope,
                         "root element is <" + std::string(env ? env.name() : "") +
                             ">, not a SOAP 1.2 s:Envelope",
                         "s:Envelope");
    }
    xml_node header = child(env, ns::soap, "Header");
    if (!header) throw ParseError(ErrorCode::MissingHeader, "missing s:Header", "s:Header");
    parse_header(header, m);
    if (m.action_uri.empty())
        throw ParseError(ErrorCode::MissingAction, "missing a:Action in s:Header", "a:Action");
    if (m.message_id.empty())
        throw ParseError(ErrorCode::MissingMessageId, "missing a:MessageID in s:Header",
                         "a:MessageID");
    xml_node body = child(env, ns::soap, "Body");
    if (!body) throw ParseError(ErrorCode::MissingBody, "missing s:Body", "s:Body");
    m.action = action_from_uri(m.action_uri);

    switch (m.action) {
    case Action::Enumerate: {
        xml_node e = child(body, ns::enumeration, "Enumerate");
        if (!e) throw missing("n:Enumerate", "s:Body");
        EnumerateBody& out = m.enumerate.emplace();
        out.optimize_enumeration = static_cast<bool>(child(e, ns::wsman, "OptimizeEnumeration"));
        out.max_elements = number<std::uint32_t>(text(child(e, ns::wsman, "MaxElements")));
        break;
    }
    case Action::Events:
        parse_events(body, m, *st, sk, true);
        break;
    case Action::Heartbeat:
        parse_events(body, m, *st, sk, false);
        break;
    case Action::SubscriptionEnd:
        parse_subscription_end(body, m);
        break;
    case Action::EnumerateResponse:
        parse_enumerate_response(body, m);
        break;
    case Action::Subscribe: {
        Subscription& s = m.subscribe.emplace();
        parse_subscription(env, s);
        s.envelope = serialize(env);
        break;
    }
    case Action::Ack:
    case Action::End:
    case Action::Unknown:
        break;
    }
    if (sk.base != nullptr && !sk.all_claimed())
        throw Skeleton::Unclaimed{}; // a long CDATA outside w:Event: parse the whole text
    m.storage = std::move(st);
    return m;
}

} // namespace

Message parse(std::string_view utf8_xml) {
    auto st = std::make_shared<Storage>();
    st->text.assign(utf8_xml);
    return parse_storage(std::move(st));
}

Message parse_owned(std::string&& utf8_xml, bool xml_clean) {
    auto st = std::make_shared<Storage>();
    st->text = std::move(utf8_xml);
    return parse_storage(std::move(st), xml_clean);
}

Message detail::parse_whole(std::string_view utf8_xml) {
    auto st = std::make_shared<Storage>();
    st->text.assign(utf8_xml);
    const std::size_t replaced = text::sanitize_xml_chars(st->text);
    return parse_document(std::move(st), replaced, false);
}

Message parse_body(std::span<const std::uint8_t> body, std::string_view charset) {
    auto st = std::make_shared<Storage>();
    const bool clean = text::decode_body(body, charset, st->text).xml_clean;
    return parse_storage(std::move(st), clean);
}

} // namespace wec::wsman

// extract_http: capture file -> packets -> TCP segments -> HTTP messages.
#include "capture/capture.hpp"

namespace wec::capture {
namespace {

class CallbackSink : public HttpSink {
public:
    explicit CallbackSink(const Callbacks& cb) : cb_(cb) {}
    void on_message(const HttpMessage& m) override {
        if (cb_.on_message) cb_.on_message(m);
    }
    void on_note(const Note& n) override {
        if (n.kind == NoteKind::Gap) {
            if (cb_.on_gap) cb_.on_gap(n);
        } else if (cb_.on_error) {
            cb_.on_error(n);
        }
    }

private:
    const Callbacks& cb_;
};

} // namespace

Stats extract_http(CaptureReader& reader, const Callbacks& callbacks, const Limits& limits) {
    CallbackSink sink(callbacks);
    TcpReassembler tcp(sink, limits);
    Stats link;
    Packet packet;
    TcpSegment segment;
    Ipv4Reassembler defrag;
    bool fragment_reported = false, link_reported = false, cut_reported = false,
         short_reported = false;
    auto warn = [&](std::string text, TimeNs time) {
        Note n;
        n.kind = NoteKind::Warning;
        n.time = time;
        n.text = std::move(text);
        sink.on_note(n);
    };
    // Damage of the file, reported by the reader before the packet that follows it.
    auto take_damage = [&] {
        Note n;
        while (reader.take_damage(n)) {
            if (n.kind == NoteKind::Damage) ++link.damaged;
            sink.on_note(n);
        }
    };
    // Damage of one packet; only the first of each kind is reported, the others are counted.
    auto packet_damage = [&](DamageKind kind, bool& reported, std::string text) {
        if (reported) return;
        reported = true;
        Note n;
        n.kind = NoteKind::Damage;
        n.damage = kind;
        n.time = packet.time;
        n.offset = packet.offset;
        n.record = packet.index;
        n.text = "packet " + std::to_string(packet.index) + " at offset " +
                 std::to_string(packet.offset) + ": " + std::move(text) +
                 " (further packets damaged the same way are only counted)";
        sink.on_note(n);
    };
    while (reader.next(packet)) {
        take_damage();
        ++link.packets;
        switch (decode_packet(packet, segment)) {
        case DecodeStatus::Tcp:
            tcp.add(segment);
            break;
        case DecodeStatus::TcpCut:
            ++link.cut_packets;
            link.cut_bytes += segment.missing;
            packet_damage(DamageKind::CutPacket, cut_reported,
                          "captured " + std::to_string(packet.data.size()) + " of " +
                              std::to_string(packet.original_length) +
                              " bytes (snapshot length): " + std::to_string(segment.missing) +
                              " bytes of TCP payload missing");
            tcp.add(segment);
            break;
        case DecodeStatus::NotTcp:
            ++link.non_tcp;
            break;
        case DecodeStatus::Fragment: {
            ++link.ip_fragments;
            auto ip = ip_packet_of(packet);
            if (!ip.empty() && (ip[0] >> 4) == 4) {
                auto whole = defrag.add(ip, packet.time);
                if (!whole.empty()) {
                    ++link.ip_reassembled;
                    Packet joined = packet;
                    joined.linktype = 228; // LINKTYPE_IPV4
                    joined.data = whole;
                    if (decode_packet(joined, segment) == DecodeStatus::Tcp) tcp.add(segment);
                }
            } else if (!fragment_reported) {
                fragment_reported = true;
                warn(reader.name() + ": packet " + std::to_string(packet.index) +
                         " is an IPv6 fragment; IPv6 fragments are not reassembled and are skipped",
                     packet.time);
            }
            break;
        }
        case DecodeStatus::Truncated:
            ++link.truncated_packets;
            packet_damage(DamageKind::ShortPacket, short_reported,
                          "shorter than its headers (" + std::to_string(packet.data.size()) +
                              " bytes captured of " + std::to_string(packet.original_length) +
                              "): skipped");
            break;
        case DecodeStatus::UnsupportedLink:
            ++link.unsupported_link;
            if (!link_reported) {
                link_reported = true;
                warn(reader.name() + ": unsupported link type " + std::to_string(packet.linktype),
                     packet.time);
            }
            break;
        }
    }
    take_damage();
    if (defrag.pending() > 0) {
        warn(reader.name() + ": " + std::to_string(defrag.pending()) +
                 " IPv4 datagrams were left incomplete (fragments missing)",
             packet.time);
    }
    tcp.finish();
    Stats out = tcp.stats();
    out.packets = link.packets;
    out.capture_bytes = reader.bytes_read();
    out.non_tcp = link.non_tcp;
    out.ip_fragments = link.ip_fragments;
    out.ip_reassembled = link.ip_reassembled;
    out.truncated_packets = link.truncated_packets;
    out.unsupported_link = link.unsupported_link;
    out.damaged = link.damaged;
    out.skipped_bytes = reader.skipped_bytes();
    out.cut_packets = link.cut_packets;
    out.cut_bytes = link.cut_bytes;
    return out;
}

Stats extract_http(const std::string& path, const Callbacks& callbacks, const Limits& limits) {
    CaptureReader reader = CaptureReader::open(path);
    return extract_http(reader, callbacks, limits);
}

} // namespace wec::capture

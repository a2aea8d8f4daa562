// The whole `wec decode` pipeline over arbitrary bytes: input detection, pcap/pcapng/gzip, TCP,
// HTTP, Authorization/WWW-Authenticate tokens (DER, with the sample's real service keytab so that
// mutated AP-REQs reach the ticket decryption), multipart framing, unwrap, SLDC, text, SOAP, events
// and every output format.
#include "decode/decode.hpp"

#include <cstdint>
#include <string>

namespace {

class Sink : public wec::decode::Sink {
public:
    std::string out;
    void on_record(const wec::decode::Record& r) override {
        out.clear();
        wec::decode::format_json(r, out);
        wec::decode::format_text(r, {true, true}, out);
        for (std::size_t i = 0; i < wec::event::kFormatCount; ++i)
            wec::decode::append_events(r, static_cast<wec::decode::EventFormat>(i), out);
        (void)wec::decode::export_name(r);
    }
};

const wec::krb::KeySet& keys() {
    static const wec::krb::KeySet k = [] {
        wec::krb::KeySet s;
        s.add_keytab(WEC_SOURCE_DIR "/samples/captures/wec.keytab");
        return s;
    }();
    return k;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    Sink sink;
    wec::decode::Options options;
    options.limits.max_body_bytes = 1 << 20;
    options.limits.max_connections = 64;
    options.limits.max_out_of_order_bytes = 1 << 16;
    options.max_body_bytes = 1 << 20;
    wec::decode::Decoder decoder(keys(), sink, options);
    try {
        decoder.decode_memory({data, size}, "fuzz");
    } catch (const wec::decode::InputError&) {
    }
    return 0;
}

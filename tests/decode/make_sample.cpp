// Records samples/captures/wef-kerberos.pcap and wec.keytab: one full session of the independent
// Python client (Kerberos, Windows' MIME form) against the real `wec serve`, a throwaway MIT KDC,
// tcpdump on lo. Usage: decode_make_sample <output dir> (needs root for tcpdump).
#include "live_session.hpp"
#include "support/process.hpp"

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
        return 2;
    }
    try {
        wec::testing::TempDir tmp;
        {
            wec::test::LiveSession s(WEC_EXE, tmp.path());
            s.python("kerberos", false);
            s.stop();
        }
        fs::path out = argv[1];
        fs::create_directories(out);
        fs::copy_file(tmp.path() / "capture.pcap", out / "wef-kerberos.pcap",
                      fs::copy_options::overwrite_existing);
        fs::copy_file(tmp.path() / "wec.keytab", out / "wec.keytab",
                      fs::copy_options::overwrite_existing);
        std::printf("wrote %s and %s\n", (out / "wef-kerberos.pcap").c_str(),
                    (out / "wec.keytab").c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "decode_make_sample: %s\n", e.what());
        return 1;
    }
    return 0;
}

#include "commands.hpp"
#include "common/error.hpp"
#include "store/store.hpp"

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
    using namespace wec::tool;
    CLI::App app{
        "wec - Windows Event Forwarding toolkit: collector, capture decoder, source emulator"};
    Action action;
    build_cli(app, action);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? kOk : kUsage;
    }
    if (!action) {
        std::fputs(app.help().c_str(), stderr);
        return kUsage;
    }
    try {
        return action();
    } catch (const wec::store::StoreUsageError& e) {
        std::fprintf(stderr, "wec: error: %s\n", e.what());
        return kUsage;
    } catch (const wec::store::StoreError& e) {
        // The store failed while the command ran (unreachable, I/O, busy): not the input's fault.
        std::fprintf(stderr, "wec: store failed: %s\n", e.what());
        return kRuntime;
    } catch (const wec::Error& e) {
        std::fprintf(stderr, "wec: error: %s\n", e.what());
        return kUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wec: failed: %s\n", e.what());
        return kRuntime;
    }
}

#include "commands.hpp"
#include "exit_code.hpp"

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
    } catch (const std::exception& e) {
        // The store failing while the command ran (unreachable, I/O, busy) is not the input's
        // fault: exit_code_for() maps each kind of error to docs/exit-codes.md.
        std::fprintf(stderr, "wec: %s: %s\n", error_label(e), e.what());
        return exit_code_for(e);
    }
}

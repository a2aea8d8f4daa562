#include "commands.hpp"

namespace wec::tool {

void build_cli(CLI::App& app, Action& action) {
    app.set_version_flag("-V,--version", "wec " WEC_VERSION);
    app.require_subcommand(0, 1);
    app.footer("Run 'wec <command> --help' for a command's options and examples.\n"
               "Exit codes: 0 ok, 1 partly failed, 2 usage or input error, 3 runtime failure.");
    add_serve(app, action);
    add_decode(app, action);
    add_replay(app, action);
    add_sub(app, action);
    add_status(app, action);
    add_db(app, action);
    add_pki(app, action);
    add_sldc(app, action);
    add_completion(app, action);
}

} // namespace wec::tool

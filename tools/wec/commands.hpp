// Subcommand registration for the `wec` binary. Each subcommand lives in its own cmd_*.cpp file,
// parses its options with CLI11 and calls into lib/. Nothing here does protocol work.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace wec::subscription {
struct Subscription;
}

namespace wec::tool {

// Stable exit codes (documented in docs/exit-codes.md; scripts rely on them).
enum ExitCode : int {
    kOk = 0,
    kPartial = 1, // finished, but some input could not be processed (e.g. undecryptable messages)
    kUsage = 2,   // bad command line, unreadable or invalid input, or a subcommand not built yet
    kRuntime = 3, // an operation failed at run time (I/O, network, store)
};

// What a parsed subcommand will run once parsing has succeeded.
using Action = std::function<int()>;

// Each add_* registers one subcommand under `app`; when the subcommand is selected on the command
// line its callback stores what to run in `action`.
void add_serve(CLI::App& app, Action& action);
void add_decode(CLI::App& app, Action& action);
void add_replay(CLI::App& app, Action& action);
void add_sub(CLI::App& app, Action& action);
void add_sldc(CLI::App& app, Action& action);
void add_status(CLI::App& app, Action& action);
void add_db(CLI::App& app, Action& action);
void add_pki(CLI::App& app, Action& action);
void add_completion(CLI::App& app, Action& action);
// `wec sub validate | new | render` (cmd_sub_tools.cpp), under the `sub` command.
void add_sub_tools(CLI::App& sub, Action& action);
// The checks of `wec sub validate`, for apply and import: prints every error and warning on
// standard error ("wec sub COMMAND: FILE: error: query: ..."); false when there are errors.
// With `warnings` the warnings are appended there ("query: line 1, ...") instead of printed.
// With the file's `text`, a query found there as written gets FILE:LINE:COLUMN too.
bool lint_for(const char* command, const std::string& file,
              const subscription::Subscription& subscription,
              std::vector<std::string>* warnings = nullptr, std::string_view text = {});

// Builds the whole command tree (used by main and by `wec completion`).
void build_cli(CLI::App& app, Action& action);

} // namespace wec::tool

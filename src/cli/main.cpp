// The cinch command-line tool: one subcommand per module (src/cli/<name>.cpp).
#include <CLI/CLI.hpp>

#include <cinch/cinch.hpp>

#include <cstdio>
#include <exception>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"cinch: compression for LLM and VLM inference engines"};
  app.set_version_flag("--version", CINCH_VERSION_STRING);
  app.require_subcommand(1);
  cinch::cli::add_info_command(app);
  cinch::cli::add_kv_command(app);
  cinch::cli::add_tokens_command(app);
  cinch::cli::add_prompt_command(app);
  cinch::cli::add_lowrank_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const cinch::error& e) {
    std::fprintf(stderr, "cinch: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cinch: %s\n", e.what());
    return 1;
  }
  return 0;
}

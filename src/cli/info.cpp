#include <cinch/cinch.hpp>

#include <cstdio>

#include "commands.hpp"

namespace cinch::cli {

void add_info_command(CLI::App& app) {
  app.add_subcommand("info", "Version, compiled backends, the CPU target chosen and CUDA devices")->callback([] {
    std::fputs(cinch::describe().c_str(), stdout);
  });
}

}  // namespace cinch::cli

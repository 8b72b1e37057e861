// Subcommands of the cinch tool, one file each.
#pragma once

#include <CLI/CLI.hpp>

namespace cinch::cli {

void add_info_command(CLI::App& app);
void add_kv_command(CLI::App& app);
void add_kv_evict_command(CLI::App& kv);
void add_tokens_command(CLI::App& app);
void add_prompt_command(CLI::App& app);
void add_lowrank_command(CLI::App& app);

}  // namespace cinch::cli

// The cinch command-line tool. `cinch info` reports the build and the machine;
// later modules add their own subcommands.
#include <CLI/CLI.hpp>

#include <cinch/cinch.hpp>

#include <cstdio>
#include <exception>

int main(int argc, char** argv) {
  CLI::App app{"cinch: compression for LLM and VLM inference engines"};
  app.set_version_flag("--version", CINCH_VERSION_STRING);
  app.require_subcommand(1);

  app.add_subcommand("info", "Version, compiled backends, the CPU target chosen and CUDA devices")->callback([] {
    std::fputs(cinch::describe().c_str(), stdout);
  });

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

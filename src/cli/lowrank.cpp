// cinch lowrank: factorize the 2-D tensors of a safetensors file to a keep
// ratio, one tensor at a time, writing <name>.A / <name>.B plus every other
// tensor unchanged, with a progress line and a per-tensor table (rank,
// parameters kept, relative error ||W - A B||_F / ||W||_F).
//
//   cinch lowrank model.safetensors model.lowrank.safetensors --keep 0.5
//   cinch lowrank model.safetensors out.safetensors --method svd-llm --calibration acts/
//     (acts/<tensor name>.npy: f32 [tokens, in_features] inputs of that weight;
//      tensors without one get plain SVD, marked "svd (no file)" in the table)
#include <cinch/cinch.hpp>
#include <cinch/lowrank/compress_file.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "commands.hpp"

namespace cinch::cli {
namespace {

struct lowrank_options {
  std::string input, output, include = R"(\.weight$)", exclude = R"(embed|lm_head|norm)", svd = "auto",
                                                                                    method = "svd", calibration;
  double keep = 0.5;
};

void run_lowrank(const lowrank_options& o) {
  lowrank::file_options options;
  options.keep = lowrank::keep_ratio{o.keep};
  options.include = o.include;
  options.exclude = o.exclude;
  options.svd.method = o.svd == "exact"        ? lowrank::svd_method::exact
                       : o.svd == "randomized" ? lowrank::svd_method::randomized
                                               : lowrank::svd_method::automatic;
  options.method = o.method == "asvd"      ? lowrank::file_method::asvd
                   : o.method == "svd-llm" ? lowrank::file_method::svd_llm
                                           : lowrank::file_method::svd;
  if (options.method != lowrank::file_method::svd && o.calibration.empty())
    throw CLI::ValidationError("--method " + o.method + " needs --calibration DIR");
  options.calibration = o.calibration;
  const auto start = std::chrono::steady_clock::now();
  std::printf("%-40s %12s %6s %12s %10s %-14s %9s\n", "tensor", "shape", "rank", "params kept", "rel. error", "method",
              "seconds");
  const lowrank::file_report report = lowrank::compress_file(o.input, o.output, options, [&](const lowrank::file_progress& p) {
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double eta = elapsed / double(p.index + 1) * double(p.count - p.index - 1);
    if (p.rank > 0) {
      const std::string shape = std::to_string(p.rows) + "x" + std::to_string(p.cols);
      const std::string method = p.method == options.method ? std::string(lowrank::to_string(p.method))
                                                            : std::string(lowrank::to_string(p.method)) + " (no file)";
      std::printf("%-40.40s %12s %6lld %11.1f%% %10.4f %-14s %9.3f\n", std::string(p.name).c_str(), shape.c_str(),
                  static_cast<long long>(p.rank), 100.0 * double(p.rank * (p.rows + p.cols)) / double(p.rows * p.cols),
                  p.relative_error, method.c_str(), p.seconds);
    }
    std::fprintf(stderr, "\r[%zu/%zu] %.1f s elapsed, about %.1f s left ", p.index + 1, p.count, elapsed, eta);
  });
  std::fprintf(stderr, "\n");
  std::printf("%zu tensors factorized, %zu copied; %lld -> %lld parameters (%.1f%%), largest relative error %.4f -> %s\n",
              report.factorized, report.copied, static_cast<long long>(report.dense_parameters),
              static_cast<long long>(report.factor_parameters),
              report.dense_parameters ? 100.0 * double(report.factor_parameters) / double(report.dense_parameters) : 0.0,
              report.max_relative_error, o.output.c_str());
}

}  // namespace

void add_lowrank_command(CLI::App& app) {
  auto options = std::make_shared<lowrank_options>();
  CLI::App* cmd = app.add_subcommand("lowrank", "Factorize the matrices of a safetensors file into low-rank A, B pairs");
  cmd->add_option("input", options->input, "a .safetensors file")->required()->check(CLI::ExistingFile);
  cmd->add_option("output", options->output, "the .safetensors file to write")->required();
  cmd->add_option("--keep", options->keep, "keep ratio: parameters of A and B over those of W, in (0, 1]")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--include", options->include, "regular expression of tensor names to factorize")->capture_default_str();
  cmd->add_option("--exclude", options->exclude, "regular expression of tensor names to copy as they are")
      ->capture_default_str();
  cmd->add_option("--method", options->method,
                  "svd (plain), asvd or svd-llm (activation-aware: need --calibration)")
      ->check(CLI::IsMember({"svd", "asvd", "svd-llm"}))
      ->capture_default_str();
  cmd->add_option("--calibration", options->calibration,
                  "directory of <tensor name>.npy files: f32 [tokens, in_features] inputs of each weight")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--svd", options->svd, "auto, exact (BDCSVD) or randomized")
      ->check(CLI::IsMember({"auto", "exact", "randomized"}))
      ->capture_default_str();
  cmd->callback([options] { run_lowrank(*options); });
}

}  // namespace cinch::cli

// cinch tokens: reduce visual tokens from an .npy of features with one method
// and a budget; write the reduced features, their position ids and the plan.
//
//   cinch tokens features.npy --method divprune --keep 128 --grid 24x24 --out reduced
//   -> reduced.features.npy [K, D], reduced.positions.npy (i32), reduced.kept.npy,
//      reduced.assign.npy and reduced.sizes.npy (i32)
#include <cinch/cinch.hpp>
#include <cinch/tokens/apply.hpp>
#include <cinch/tokens/baselines.hpp>
#include <cinch/tokens/dart.hpp>
#include <cinch/tokens/divprune.hpp>
#include <cinch/tokens/fastv.hpp>
#include <cinch/tokens/tome.hpp>
#include <cinch/tokens/visionzip.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"

namespace cinch::cli {
namespace {

struct tokens_options {
  std::string input, attention, method = "divprune", grid_text, output;
  std::int64_t keep = 0;
};

tokens::grid parse_grid(const std::string& text, std::int64_t n) {
  if (text.empty()) return {};
  const auto x = text.find('x');
  long long h = 0, w = 0;
  if (x == std::string::npos || std::sscanf(text.c_str(), "%lldx%lld", &h, &w) != 2 || h <= 0 || w <= 0)
    detail::fail(errc::invalid_argument, "cinch tokens", "--grid must be HxW, e.g. 24x24, got '", text, "'");
  if (h * w != n)
    detail::fail(errc::shape_mismatch, "cinch tokens", "--grid ", text, " holds ", h * w, " tokens, the features hold ", n);
  return {1, h, w};
}

void save_i32(const std::string& path, std::span<const std::int64_t> values) {
  std::vector<std::int32_t> narrow(values.begin(), values.end());
  io::save_npy(path, tensor_view(narrow.data(), dtype::i32, {std::int64_t(narrow.size())}));
}

void run_tokens(const tokens_options& o) {
  const tensor features = io::load_npy(o.input);
  if (features.type() != dtype::f32 || features.rank() != 2)
    detail::fail(errc::invalid_argument, "cinch tokens", o.input, " must hold f32 features [N, D], got ",
                 to_string(features.type()), " ", features.shape());
  const std::int64_t n = features.size(0);
  tokens::inputs in;
  in.features = features;
  in.shape = parse_grid(o.grid_text, n);
  tensor attention;
  if (!o.attention.empty()) {
    attention = io::load_npy(o.attention);
    (attention.rank() == 2 ? in.text_attention : in.cls_attention) = attention;
  }

  const auto start = std::chrono::steady_clock::now();
  tokens::plan p;
  if (o.method == "divprune") p = tokens::divprune(in, o.keep);
  else if (o.method == "dart") p = tokens::dart(in, o.keep);
  else if (o.method == "visionzip") p = tokens::visionzip(in, o.keep);
  else if (o.method == "tome") {
    if (2 * o.keep < n)
      detail::fail(errc::invalid_argument, "cinch tokens", "tome merges at most half of the tokens in one pass: --keep must be >= ",
                   (n + 1) / 2, ", got ", o.keep);
    p = tokens::tome(in, n - o.keep);  // merges r = N - K pairs
  }
  else if (o.method == "random") p = tokens::random_prune(n, o.keep);
  else if (o.method == "pooling") p = tokens::pool(in.shape, o.keep);
  else p = tokens::fastv(in, o.keep);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  tokens::apply_options options;
  if (!in.shape.empty()) {
    options.positions.layout = tokens::position_layout::grid_2d;
    options.positions.shape = in.shape;
  }
  const tokens::applied out = tokens::apply(p, features, options);
  std::printf("%s: %lld tokens x %lld -> %lld tokens with %s in %.3f ms (%lld merged away, %lld dropped)\n",
              o.input.c_str(), static_cast<long long>(n), static_cast<long long>(features.size(1)),
              static_cast<long long>(p.output_tokens()), o.method.c_str(), seconds * 1e3,
              static_cast<long long>(n - p.output_tokens() - p.dropped()), static_cast<long long>(p.dropped()));
  if (o.output.empty()) return;
  io::save_npy(o.output + ".features.npy", out.hidden);
  io::save_npy(o.output + ".positions.npy", out.positions);
  save_i32(o.output + ".kept.npy", p.kept);
  save_i32(o.output + ".assign.npy", p.assign);
  save_i32(o.output + ".sizes.npy", out.sizes);
  std::printf("wrote %s.{features,positions,kept,assign,sizes}.npy\n", o.output.c_str());
}

}  // namespace

void add_tokens_command(CLI::App& app) {
  auto options = std::make_shared<tokens_options>();
  CLI::App* cmd = app.add_subcommand("tokens", "Prune or merge visual tokens from an .npy of features [N, D]");
  cmd->add_option("input", options->input, "an .npy of f32 features [N, D]")->required()->check(CLI::ExistingFile);
  cmd->add_option("--method", options->method, "divprune, dart, visionzip, tome, fastv, random or pooling")
      ->check(CLI::IsMember({"divprune", "dart", "visionzip", "tome", "fastv", "random", "pooling"}))
      ->capture_default_str();
  cmd->add_option("--keep", options->keep, "tokens to keep (pooling: per frame, a square number)")->required();
  cmd->add_option("--grid", options->grid_text, "token grid HxW (pooling and 2-D position ids need it)");
  cmd->add_option("--attention", options->attention,
                  "an .npy of attention: [CLS] attention [N] (visionzip) or text-query rows [R, N] (fastv)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", options->output, "prefix of the output .npy files");
  cmd->callback([options] { run_tokens(*options); });
}

}  // namespace cinch::cli

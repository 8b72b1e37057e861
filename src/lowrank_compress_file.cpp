// lowrank::compress_file: a safetensors-to-safetensors factorization pass that
// holds one tensor at a time.
#include "cinch/lowrank/compress_file.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <regex>

#include "cinch/core/convert.hpp"
#include "cinch/io/npy.hpp"
#include "cinch/io/safetensors.hpp"
#include "cinch/lowrank/methods.hpp"

namespace cinch::lowrank {
namespace {

constexpr std::string_view fn = "lowrank::compress_file";

std::regex compile(std::string_view what, const std::string& pattern) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    cinch::detail::fail(errc::invalid_argument, fn, what, " must be a valid regular expression, got '", pattern,
                        "': ", e.what());
  }
}

// The rank of a selected tensor, 0 when it stays dense.
std::int64_t rank_of(const io::safetensors_entry& e, const std::regex& include, const std::regex& exclude,
                     bool excluding, keep_ratio keep) {
  const bool floating = e.type == dtype::f32 || e.type == dtype::f16 || e.type == dtype::bf16;
  if (e.shape.size() != 2 || !floating || e.shape[0] < 1 || e.shape[1] < 1) return 0;
  if (!std::regex_search(e.name, include) || (excluding && std::regex_search(e.name, exclude))) return 0;
  const std::int64_t m = e.shape[0], n = e.shape[1];
  if (keep.value * double(m) * double(n) * (1.0 + 1e-12) < double(m + n)) return 0;
  return rank_for(m, n, keep);
}

// f32 data of a tensor of f32, f16 or bf16, and back.
tensor as_type(const tensor_view& x, dtype type) {
  if (x.type() == type) return tensor::adopt(x, nullptr);
  tensor out = tensor::empty(x.shape(), type);
  convert(x, out);
  return out;
}

void check_calibration_dir(const file_options& o) {
  const bool needs = o.method != file_method::svd;
  if (needs && o.calibration.empty())
    cinch::detail::fail(errc::invalid_argument, fn, "method ", to_string(o.method),
                        " needs calibration: a directory of <tensor name>.npy activations, got none");
  if (!needs && !o.calibration.empty())
    cinch::detail::fail(errc::invalid_argument, fn, "calibration is for asvd and svd-llm, got method svd with '",
                        o.calibration, "'");
  std::error_code ec;
  if (needs && !std::filesystem::is_directory(o.calibration, ec))
    cinch::detail::fail(errc::invalid_argument, fn, "calibration must be a directory, got '", o.calibration, "'");
}

// The statistics of tensor e's inputs from <dir>/<name>.npy, or none without that file.
std::optional<calibration> activations_of(const std::string& dir, const io::safetensors_entry& e) {
  const std::string path = (std::filesystem::path(dir) / (e.name + ".npy")).string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  const auto fail = [&](errc code, const auto&... parts) {
    cinch::detail::fail(code, fn, "tensor '", e.name, "', activation file '", path, "': ", parts...);
  };
  const std::int64_t n = e.shape[1];
  tensor x;
  try {
    x = io::load_npy(path);
  } catch (const error& bad) {
    fail(bad.code(), bad.what());
  }
  if (x.type() != dtype::f32) fail(errc::invalid_argument, "must hold f32 inputs, got ", to_string(x.type()));
  if (x.rank() < 2 || x.size(-1) != n || x.numel() == 0)
    fail(errc::shape_mismatch, "must hold inputs [tokens >= 1, ", n, "] of the ", std::span<const std::int64_t>(e.shape),
         " weight, got ", x.shape());
  calibration stats(n);
  try {
    stats.add(x);
  } catch (const error& bad) {
    fail(bad.code(), bad.what());
  }
  return stats;
}

factors compress(const tensor_view& w, std::int64_t rank, const std::optional<calibration>& stats,
                 const file_options& o) {
  if (!stats) return compress_svd(w, rank, o.svd);
  if (o.method == file_method::asvd) return compress_asvd(w, rank, *stats, o.asvd, o.svd);
  return compress_svd_llm(w, rank, *stats, o.whitening, o.svd);
}

}  // namespace

file_report compress_file(const std::string& input, const std::string& output, const file_options& options,
                          const std::function<void(const file_progress&)>& progress) {
  if (!(options.keep.value > 0.0 && options.keep.value <= 1.0))
    cinch::detail::fail(errc::invalid_argument, fn, "keep_ratio must be in (0, 1], got ",
                        detail::ratio_text(options.keep.value));
  const std::regex include = compile("include", options.include), exclude = compile("exclude", options.exclude);
  check_calibration_dir(options);
  std::error_code ec;
  if (input == output || std::filesystem::equivalent(input, output, ec))
    cinch::detail::fail(errc::invalid_argument, fn, "output must differ from input, got '", output, "' for both");

  const io::safetensors_file source = io::safetensors_file::open(input);
  const auto& entries = source.entries();
  std::vector<std::int64_t> ranks;
  std::vector<io::safetensors_writer::spec> specs;
  for (const io::safetensors_entry& e : entries) {
    const std::int64_t r = rank_of(e, include, exclude, !options.exclude.empty(), options.keep);
    ranks.push_back(r);
    if (r == 0) {
      specs.push_back({e.name, e.dtype_name, e.shape});
    } else {
      specs.push_back({e.name + ".lowrank_a", e.dtype_name, {e.shape[0], r}});
      specs.push_back({e.name + ".lowrank_b", e.dtype_name, {r, e.shape[1]}});
    }
  }
  std::map<std::string, std::string> metadata = source.metadata();
  metadata["cinch.lowrank.keep_ratio"] = detail::ratio_text(options.keep.value);
  metadata["cinch.lowrank.method"] = std::string(to_string(options.method));
  io::safetensors_writer writer(output, std::move(specs), metadata);

  file_report report;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const io::safetensors_entry& e = entries[i];
    const auto start = std::chrono::steady_clock::now();
    file_progress p{i, entries.size(), e.name};
    if (ranks[i] == 0) {
      writer.write_bytes(source.bytes(e));
      ++report.copied;
    } else {
      const tensor w = source.load(e.name), w32 = as_type(w, dtype::f32);
      std::optional<calibration> stats;
      if (options.method != file_method::svd) stats = activations_of(options.calibration, e);
      factors f;
      try {
        f = compress(w32, ranks[i], stats, options);
      } catch (const error& x) {
        cinch::detail::fail(x.code(), fn, "tensor '", e.name, "': ", x.what());
      }
      const tensor a = as_type(f.a, w.type()), b = as_type(f.b, w.type());
      writer.write(a);
      writer.write(b);
      p.relative_error = relative_error(w32, as_type(a, dtype::f32), as_type(b, dtype::f32));
      report.max_relative_error = std::max(report.max_relative_error, p.relative_error);
      p.rows = e.shape[0];
      p.cols = e.shape[1];
      p.rank = ranks[i];
      p.method = stats ? options.method : file_method::svd;
      p.calibration_tokens = stats ? stats->tokens() : 0;
      ++report.factorized;
      report.dense_parameters += p.rows * p.cols;
      report.factor_parameters += factor_parameters(p.rows, p.cols, p.rank);
    }
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (progress) progress(p);
  }
  writer.finish();
  return report;
}

}  // namespace cinch::lowrank

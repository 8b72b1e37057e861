// cinch kv: quantize a tensor of keys or values from an .npy file with one KV
// cache format, and report bits per value, relative error and throughput.
//
//   cinch kv keys.npy --format q4_0
//   cinch kv keys.npy --format kivi2 --role keys --group 32 --out keys_dequantized.npy
// and `cinch kv evict` (src/cli/kv_evict.cpp).
#include <cinch/cinch.hpp>
#include <cinch/kv/blocks.hpp>
#include <cinch/kv/fp8.hpp>
#include <cinch/kv/groups.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <string>

#include "commands.hpp"

namespace cinch::cli {
namespace {

struct kv_options {
  std::string input, format = "q8_0", role = "values", output;
  std::int64_t group = 32;
};

// A format's round trip: fills `y` (f32, x's shape) from x through the packed
// codes, and returns the bytes the packed form takes.
using round_trip = std::function<std::int64_t(const tensor_view& x, const tensor_view& y)>;

round_trip block_format(dtype blocks) {
  return [blocks](const tensor_view& x, const tensor_view& y) {
    const tensor q = tensor::empty(x.shape(), blocks);
    kv::quantize_blocks(x, q);
    kv::dequantize_blocks(q, y);
    return q.nbytes();
  };
}

round_trip float_format(dtype narrow) {
  return [narrow](const tensor_view& x, const tensor_view& y) {
    const tensor q = tensor::empty(x.shape(), narrow);
    convert(x, q);
    convert(q, y);
    return q.nbytes();
  };
}

round_trip fp8_format(dtype narrow) {
  return [narrow](const tensor_view& x, const tensor_view& y) {
    const float scale = kv::calibrate_scale(x, narrow == dtype::f8_e4m3 ? kv::e4m3_max : kv::e5m2_max);
    const tensor q = tensor::empty(x.shape(), narrow);
    kv::quantize_scaled(x, scale, q);
    kv::dequantize_scaled(q, scale, y);
    return q.nbytes() + 4;
  };
}

round_trip int8_rows() {
  return [](const tensor_view& x, const tensor_view& y) {
    const tensor q = tensor::empty(x.shape(), dtype::i8);
    const tensor s = tensor::empty(x.shape().first(std::size_t(x.rank() - 1)), dtype::f32);
    quantize_rows(x, q, s);
    dequantize_rows(q, s, y);
    return q.nbytes() + s.nbytes();
  };
}

// KIVI: values per token (groups of G channels), keys per channel (chunks of G tokens).
round_trip kivi_format(dtype codes, bool keys, std::int64_t group) {
  return [=](const tensor_view& x, const tensor_view& y) {
    const std::int64_t d = x.size(-1);
    if (keys) {
      if (x.rank() < 2)
        detail::fail(errc::shape_mismatch, "cinch kv", "keys must be [..., tokens, head_dim], got ", x.shape());
      const std::int64_t tokens = x.size(-2);
      if (tokens % group)
        detail::fail(errc::invalid_argument, "cinch kv", "key tokens (", tokens, ") must be a multiple of --group ", group);
      std::vector<std::int64_t> code_shape(x.shape().begin(), x.shape().end() - 2), scale_shape;
      code_shape.insert(code_shape.end(), {tokens / group, d, group});
      scale_shape.assign(code_shape.begin(), code_shape.end() - 1);
      const tensor q = tensor::empty(code_shape, codes), s = tensor::empty(scale_shape, dtype::f16),
                   m = tensor::empty(scale_shape, dtype::f16);
      kv::quantize_per_channel(x, q, s, m, group);
      kv::dequantize_per_channel(q, s, m, y, group);
      return q.nbytes() + s.nbytes() + m.nbytes();
    }
    std::vector<std::int64_t> scale_shape(x.shape().begin(), x.shape().end());
    scale_shape.back() = d / group;
    const tensor q = tensor::empty(x.shape(), codes), s = tensor::empty(scale_shape, dtype::f16),
                 m = tensor::empty(scale_shape, dtype::f16);
    kv::quantize_per_token(x, q, s, m, group);
    kv::dequantize_per_token(q, s, m, y, group);
    return q.nbytes() + s.nbytes() + m.nbytes();
  };
}

round_trip format_named(const kv_options& o) {
  const bool keys = o.role == "keys";
  const std::map<std::string, round_trip> formats = {
      {"f16", float_format(dtype::f16)},       {"bf16", float_format(dtype::bf16)},
      {"fp8_e4m3", fp8_format(dtype::f8_e4m3)}, {"fp8_e5m2", fp8_format(dtype::f8_e5m2)},
      {"int8", int8_rows()},                   {"q8_0", block_format(dtype::q8_0)},
      {"q4_0", block_format(dtype::q4_0)},     {"q4_1", block_format(dtype::q4_1)},
      {"q5_0", block_format(dtype::q5_0)},     {"q5_1", block_format(dtype::q5_1)},
      {"iq4_nl", block_format(dtype::iq4_nl)}, {"kivi8", kivi_format(dtype::u8, keys, o.group)},
      {"kivi4", kivi_format(dtype::u4x2, keys, o.group)}, {"kivi2", kivi_format(dtype::u2x4, keys, o.group)},
  };
  return formats.at(o.format);
}

void run_kv(const kv_options& o) {
  const tensor loaded = io::load_npy(o.input);
  tensor x = loaded;
  if (loaded.type() != dtype::f32) {  // f16 input: widen once, outside the timing
    x = tensor::empty(loaded.shape(), dtype::f32);
    convert(loaded, x);
  }
  if (x.rank() < 1 || x.numel() == 0)
    detail::fail(errc::invalid_argument, "cinch kv", o.input, " must hold a non-empty tensor, got shape ", x.shape());
  const tensor y = tensor::empty(x.shape(), dtype::f32);
  const round_trip codec = format_named(o);

  // Best of a few runs: the round trip (quantize + dequantize) over the whole tensor.
  double best = 1e30;
  std::int64_t packed = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    packed = codec(x, y);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }

  const auto* a = x.data<const float>();
  const auto* b = y.data<const float>();
  double err = 0, ref = 0, worst = 0;
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double e = double(a[i]) - double(b[i]);
    err += e * e;
    ref += double(a[i]) * double(a[i]);
    worst = std::max(worst, std::fabs(e));
  }
  std::printf("%s: %s, shape", o.input.c_str(), std::string(to_string(loaded.type())).c_str());
  for (std::int64_t e : x.shape()) std::printf(" %lld", static_cast<long long>(e));
  std::printf(", %s as %s%s\n", o.role.c_str(), o.format.c_str(),
              o.format.rfind("kivi", 0) == 0 ? (" (group " + std::to_string(o.group) + ")").c_str() : "");
  std::printf("  bits per value     %.3f\n", 8.0 * double(packed) / double(x.numel()));
  std::printf("  relative RMS error %.3e\n", ref > 0 ? std::sqrt(err / ref) : std::sqrt(err));
  std::printf("  max abs error      %.3e\n", worst);
  std::printf("  round trip         %.2f GB/s of f32 input (quantize + dequantize, %s)\n",
              double(x.nbytes()) / best / 1e9, describe().find("host backend: ref") != std::string::npos ? "ref" : "simd");
  if (!o.output.empty()) io::save_npy(o.output, y);
}

}  // namespace

void add_kv_command(CLI::App& app) {
  auto options = std::make_shared<kv_options>();
  CLI::App* kv = app.add_subcommand("kv", "Quantize keys or values from an .npy file with a KV cache format");
  kv->add_option("input", options->input, "an .npy tensor of f32 or f16, [..., head_dim] (keys: [..., tokens, head_dim])")
      ->check(CLI::ExistingFile);
  kv->add_option("--format", options->format, "f16 bf16 fp8_e4m3 fp8_e5m2 int8 q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl kivi8 kivi4 kivi2")
      ->check(CLI::IsMember({"f16", "bf16", "fp8_e4m3", "fp8_e5m2", "int8", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl",
                             "kivi8", "kivi4", "kivi2"}))
      ->capture_default_str();
  kv->add_option("--role", options->role, "keys (KIVI: per channel over token groups) or values (per token)")
      ->check(CLI::IsMember({"keys", "values"}))
      ->capture_default_str();
  kv->add_option("--group", options->group, "KIVI group size G")->check(CLI::PositiveNumber)->capture_default_str();
  kv->add_option("--out", options->output, "write the dequantized tensor to this .npy file");
  add_kv_evict_command(*kv);
  kv->callback([kv, options] {
    if (!kv->get_subcommands().empty()) return;  // cinch kv evict ran
    if (options->input.empty()) throw CLI::RequiredError("input");
    run_kv(*options);
  });
}

}  // namespace cinch::cli

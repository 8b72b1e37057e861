// cinch kv evict: evict tokens of a KV cache given as .npy keys and values (and
// the observation window's queries for attention-based policies), then report
// what each head kept, the bytes freed, the time taken and how far the last
// window query's attention moved.
//
//   cinch kv evict --keys k.npy --values v.npy --queries q.npy --policy snapkv --keep 0.25
//   cinch kv evict --keys k.npy --values v.npy --heads 4 --policy knorm --tokens 64 --save kept.kvc
#include <cinch/cinch.hpp>
#include <cinch/kv/attention.hpp>
#include <cinch/kv/cache.hpp>
#include <cinch/kv/score.hpp>
#include <cinch/kv/select.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "commands.hpp"

namespace cinch::cli {
namespace {

constexpr std::string_view fn = "cinch kv evict";

struct evict_options {
  std::string keys, values, queries, policy = "snapkv", format = "f32", save;
  double keep = 0.5;
  std::int64_t tokens = 0, heads = 0;
  int window = 32, sinks = 4;
};

// [kv_heads, T, d] f32: as given, or [T, heads * d] split into `heads` heads.
tensor load_heads(const std::string& path, std::int64_t heads, const char* name) {
  tensor x = io::load_npy(path);
  if (x.type() != dtype::f32) {
    tensor wide = tensor::empty(x.shape(), dtype::f32);
    convert(x, wide);
    x = wide;
  }
  if (x.rank() == 3 && heads == 0) return x;
  if (x.rank() == 2) {
    const std::int64_t h = heads == 0 ? 1 : heads;
    if (x.size(1) % h != 0)
      detail::fail(errc::shape_mismatch, fn, name, " [tokens, width] needs width divisible by --heads ", h, ", got ",
                   x.shape());
    tensor out = tensor::empty({h, x.size(0), x.size(1) / h}, dtype::f32);
    convert(x.view().reshape({x.size(0), h, x.size(1) / h}).permute({1, 0, 2}), out);
    return out;
  }
  detail::fail(errc::shape_mismatch, fn, name, " must be [kv_heads, tokens, head_dim], or [tokens, width] with --heads, got ",
               x.shape());
}

kv::format format_named(const std::string& name) {
  static const std::map<std::string, kv::format> formats = {
      {"f32", {kv::scheme::f32}},   {"f16", {kv::scheme::f16}},   {"bf16", {kv::scheme::bf16}},
      {"int8", {kv::scheme::int8}}, {"q8_0", {kv::scheme::q8_0}}, {"q4_0", {kv::scheme::q4_0}},
  };
  return formats.at(name);
}

std::vector<kv::head_scores> score(const evict_options& o, const kv::cache& c, const tensor_view& q) {
  if (o.policy == "streaming") return kv::streaming_llm_scores(c, 0, {o.sinks});
  if (o.policy == "knorm") return kv::knorm_scores(c, 0);
  if (o.policy == "keydiff") return kv::keydiff_scores(c, 0);
  if (o.policy == "lagkv") return kv::lagkv_scores(c, 0, {o.sinks, o.window, true});
  if (q.data() == nullptr) detail::fail(errc::invalid_argument, fn, "--policy ", o.policy, " needs --queries");
  if (o.policy == "h2o") return kv::h2o_scores(c, 0, q);
  if (o.policy == "tova") return kv::tova_scores(c, 0, q);
  if (o.policy == "observed") return kv::observed_attention_scores(c, 0, q);
  kv::snapkv_options snap;
  snap.window = int(std::min<std::int64_t>(o.window, q.size(1)));
  return kv::snapkv_scores(c, 0, q, snap);
}

// Attention output of the window's last query over the cache, [q_heads, d].
std::vector<float> last_query_attention(const kv::cache& c, const tensor_view& q) {
  const std::int64_t heads = q.size(0), w = q.size(1), d = q.size(2);
  tensor last = tensor::empty({heads, d}, dtype::f32);
  convert(q.select(1, w - 1), last);
  std::vector<float> out(std::size_t(heads * d));
  kv::decode_attention(c, 0, last, tensor_view(out.data(), dtype::f32, {heads, d}));
  return out;
}

void run_evict(const evict_options& o) {
  const tensor k = load_heads(o.keys, o.heads, "keys"), v = load_heads(o.values, o.heads, "values");
  const tensor q = o.queries.empty() ? tensor() : load_heads(o.queries, 0, "queries");
  const std::int64_t heads = k.size(0), n = k.size(1), d = k.size(2);
  kv::cache c({1, int(heads), int(d), format_named(o.format), format_named(o.format)});
  c.append(0, k, v);
  const std::int64_t before = c.bytes();
  const bool have_queries = !o.queries.empty();
  const std::vector<float> full = have_queries ? last_query_attention(c, q) : std::vector<float>();

  const auto start = std::chrono::steady_clock::now();
  const std::vector<kv::head_scores> scores = score(o, c, have_queries ? q.view() : tensor_view());
  const kv::budget b = o.tokens > 0 ? kv::budget::tokens(o.tokens) : kv::budget::ratio(o.keep);
  const std::vector<kv::keep_list> keep = kv::select_top_k(scores, b);
  for (std::int64_t h = 0; h < heads; ++h) c.retain(0, int(h), keep[std::size_t(h)]);
  const double ms = 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::printf("%s: %lld heads x %lld tokens x %lld channels in %s, policy %s, keep %s\n", o.keys.c_str(),
              static_cast<long long>(heads), static_cast<long long>(n), static_cast<long long>(d), o.format.c_str(),
              o.policy.c_str(), o.tokens > 0 ? (std::to_string(o.tokens) + " tokens").c_str()
                                              : (std::to_string(int(std::lround(100 * o.keep))) + "%").c_str());
  std::printf("  kept per head     ");
  for (const kv::keep_list& l : keep) std::printf(" %zu", l.size());
  std::printf("\n  bytes held         %lld -> %lld (%.1f%%)\n", static_cast<long long>(before),
              static_cast<long long>(c.bytes()), 100.0 * double(c.bytes()) / double(before));
  std::printf("  score + select + compact  %.3f ms\n", ms);
  if (!full.empty()) {
    const std::vector<float> kept = last_query_attention(c, q);
    double err = 0, ref = 0;
    for (std::size_t i = 0; i < full.size(); ++i) {
      err += std::pow(double(full[i]) - kept[i], 2);
      ref += double(full[i]) * full[i];
    }
    std::printf("  attention change   relative RMS %.3e (last window query, kept vs all tokens)\n",
                std::sqrt(err / std::max(ref, 1e-30)));
  }
  if (!o.save.empty()) {
    std::ofstream out(o.save, std::ios::binary);
    if (!out) detail::fail(errc::invalid_argument, fn, "cannot open --save file ", o.save);
    c.save(out);
    std::printf("  wrote %s (kv::cache stream, %lld tokens)\n", o.save.c_str(),
                static_cast<long long>(c.tokens(0, 0)));
  }
}

}  // namespace

void add_kv_evict_command(CLI::App& kv) {
  auto o = std::make_shared<evict_options>();
  CLI::App* evict = kv.add_subcommand("evict", "Evict tokens from keys and values in .npy files and report the effect");
  evict->add_option("--keys", o->keys, "keys .npy: [kv_heads, tokens, head_dim], or [tokens, width] with --heads")
      ->required()
      ->check(CLI::ExistingFile);
  evict->add_option("--values", o->values, "values .npy, the keys' shape")->required()->check(CLI::ExistingFile);
  evict->add_option("--queries", o->queries, "observation window queries .npy: [q_heads, window, head_dim]")
      ->check(CLI::ExistingFile);
  evict->add_option("--heads", o->heads, "KV heads of [tokens, width] keys and values")->check(CLI::PositiveNumber);
  evict->add_option("--policy", o->policy, "streaming knorm keydiff lagkv (no queries); h2o tova observed snapkv")
      ->check(CLI::IsMember({"streaming", "knorm", "keydiff", "lagkv", "h2o", "tova", "observed", "snapkv"}))
      ->capture_default_str();
  evict->add_option("--keep", o->keep, "keep ratio in (0, 1]")->capture_default_str();
  evict->add_option("--tokens", o->tokens, "keep this many tokens per head instead of a ratio")->check(CLI::PositiveNumber);
  evict->add_option("--window", o->window, "SnapKV window; LagKV lag")->check(CLI::PositiveNumber)->capture_default_str();
  evict->add_option("--sinks", o->sinks, "StreamingLLM and LagKV sinks")->check(CLI::NonNegativeNumber)->capture_default_str();
  evict->add_option("--format", o->format, "cache format: f32 f16 bf16 int8 q8_0 q4_0")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "int8", "q8_0", "q4_0"}))
      ->capture_default_str();
  evict->add_option("--save", o->save, "write the compacted cache to this file (kv::cache stream)");
  evict->callback([o] { run_evict(*o); });
}

}  // namespace cinch::cli

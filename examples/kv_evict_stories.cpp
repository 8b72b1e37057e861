// KV-cache eviction in a real forward pass: the stories260K Llama model reads a
// 256-token prompt into a cinch::kv::cache, the cache is scored, selected and
// compacted once (kv::cache::retain frees the evicted tokens' bytes), and the
// model then continues for 256 tokens on what is left. Each policy and keep
// ratio is scored against the exact cache on the continuation: mean KL of the
// next-token distributions and top-1 agreement. Decode-time rows keep a
// kv::bounded_cache at the same budget from the first token on.
//
//   ./kv_evict_stories [path/to/stories260K.bin]
#include <cinch/kv/bounded.hpp>
#include <cinch/kv/score.hpp>
#include <cinch/kv/select.hpp>

#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "evicting_store.hpp"
#include "model.hpp"

#ifndef CINCH_DATA_DIR
#define CINCH_DATA_DIR "data"
#endif

namespace {

namespace kv = cinch::kv;
using tiny_llama::evicting_store;

constexpr std::size_t context = 256, length = 512;
constexpr int window = 16;  // observation window: the prompt's last 16 queries

// A prefill policy: which tokens each KV head of a layer keeps, at a keep ratio.
using policy = std::function<std::vector<kv::keep_list>(evicting_store&, int layer, double ratio)>;

// Score every head, keep its top budget (sinks and the window protected as the methods do).
template <class Score>
policy per_head(Score score, kv::protection protect = {}) {
  return [=](evicting_store& s, int layer, double ratio) {
    return kv::select_top_k(score(s, layer), kv::budget::ratio(ratio), protect);
  };
}

std::vector<kv::head_scores> snapkv(evicting_store& s, int layer) {
  return kv::snapkv_scores(s.kv(), layer, s.window(layer, window), {window, 5, kv::pooling::avg, {}});
}

struct named_policy {
  const char* name;
  policy keep;
};

std::vector<named_policy> policies(const tiny_llama::config& c) {
  return {
      {"StreamingLLM (4 sinks + recent)", per_head([](evicting_store& s, int l) { return kv::streaming_llm_scores(s.kv(), l); })},
      {"H2O (prompt attention, half recent)",
       [](evicting_store& s, int l, double r) {
         const auto scores = kv::h2o_scores(s.kv(), l, s.window(l, context));
         const auto budget = kv::budget::ratio(r).count(std::int64_t(context));
         return kv::select_top_k(scores, kv::budget::ratio(r), {0, int(budget / 2)});
       }},
      {"SnapKV (window 16, kernel 5)", per_head(snapkv)},
      {"PyramidKV (SnapKV scores, beta 20)",
       [c](evicting_store& s, int l, double r) {
         const auto capacity = kv::budget::ratio(r).count(std::int64_t(context));
         const auto budgets = kv::pyramid_budgets(c.n_layers, std::int64_t(context), capacity, window);
         return kv::select_top_k(snapkv(s, l), kv::budget::tokens(budgets[std::size_t(l)]));
       }},
      {"AdaKV (SnapKV scores, layer budget, floor 0.2)",
       [](evicting_store& s, int l, double r) { return kv::select_global(snapkv(s, l), kv::budget::ratio(r)); }},
      {"ChunkKV (SnapKV scores, chunks of 8)",
       [](evicting_store& s, int l, double r) { return kv::select_chunks(snapkv(s, l), kv::budget::ratio(r), 8); }},
      {"TOVA (last query, all heads)",
       per_head([](evicting_store& s, int l) { return kv::tova_scores(s.kv(), l, s.window(l, 1)); })},
      {"ObservedAttention (whole prompt)",
       per_head([](evicting_store& s, int l) { return kv::observed_attention_scores(s.kv(), l, s.window(l, context)); })},
      {"ExpectedAttention (interleaved RoPE)",
       per_head([](evicting_store& s, int l) {
         kv::expected_attention_options o;
         o.pairing = kv::rope_pairing::interleaved;
         return kv::expected_attention_scores(s.kv(), l, s.pre_rope(l), o);
       })},
      {"KNorm", per_head([](evicting_store& s, int l) { return kv::knorm_scores(s.kv(), l); })},
      {"KeyDiff", per_head([](evicting_store& s, int l) { return kv::keydiff_scores(s.kv(), l); })},
      {"LagKV (4 sinks, lag 32)",
       per_head([](evicting_store& s, int l) { return kv::lagkv_scores(s.kv(), l, {4, 32, true}); })},
  };
}

// Decode-time eviction: a kv::bounded_cache behind the same kv_store interface.
class bounded_store final : public tiny_llama::kv_store {
 public:
  bounded_store(const tiny_llama::config& c, const kv::bounded_options& o)
      : cache_({c.n_layers, c.n_kv_heads, c.head_dim(), kv::format{kv::scheme::f32}, kv::format{kv::scheme::f32}}, o),
        config_(c) {}
  void append(int layer, std::span<const float> k, std::span<const float> v) override {
    cache_.append(layer, tiny_llama::kv_rows(config_, k), tiny_llama::kv_rows(config_, v));
  }
  void attend(int layer, std::span<const float> q, std::span<float> out) override {
    cache_.attend(layer, tiny_llama::query_rows(config_, q), tiny_llama::query_rows(config_, out));
  }
  [[nodiscard]] std::int64_t bytes() const override { return cache_.kv().bytes(); }

 private:
  kv::bounded_cache cache_;
  tiny_llama::config config_;
};

void print_row(const std::string& name, double ratio, const tiny_llama::cache_quality& q, double f32_bytes) {
  std::printf("| %s | %.0f%% | %.3f | %.2e | %.2f%% |\n", name.c_str(), 100 * ratio, q.bytes_per_token / f32_bytes,
              q.mean_kl, 100.0 * q.top1_agreement);
}

}  // namespace

int main(int argc, char** argv) try {
  tiny_llama::model m(argc > 1 ? argv[1] : CINCH_DATA_DIR "/models/stories260K.bin");
  const tiny_llama::config& c = m.cfg();
  std::vector<std::vector<int>> sequences = {tiny_llama::sample_sequence(m, length, 0.0f, 0)};
  for (std::uint64_t seed : {1, 2, 3}) sequences.push_back(tiny_llama::sample_sequence(m, length, 1.0f, seed));
  for (std::uint64_t seed : {4, 5}) sequences.push_back(tiny_llama::sample_sequence(m, length, 0.8f, seed));
  const double f32_bytes = 2.0 * c.n_layers * c.kv_dim() * 4;
  const kv::format f32{kv::scheme::f32};

  std::printf("stories260K: %zu sequences; prompt %zu tokens, compressed once, then %zu compared positions each\n\n",
              sequences.size(), context, length - context);
  std::printf("| policy | kept | bytes vs f32 | mean KL (nats) | top-1 agreement |\n|---|---:|---:|---:|---:|\n");
  const auto prefill = [&](const policy& keep, double ratio, kv::format k, kv::format v) {
    return tiny_llama::compare_after_context(
        m, sequences, context, [&] { return std::make_unique<evicting_store>(c, k, v); },
        [&](evicting_store& s) {
          for (int l = 0; l < c.n_layers; ++l) s.retain(l, keep(s, l, ratio));
        });
  };
  for (const named_policy& p : policies(c))
    for (double ratio : {0.25, 0.5, 0.75}) print_row(p.name, ratio, prefill(p.keep, ratio, f32, f32), f32_bytes);

  // Decode-time eviction at the same budgets (tokens per head), from the first token on.
  for (auto [name, make] :
       {std::pair{"decode-time StreamingLLM", +[](std::int64_t b) { return kv::bounded_options::streaming_llm(b); }},
        std::pair{"decode-time H2O", +[](std::int64_t b) { return kv::bounded_options::heavy_hitters(b); }},
        std::pair{"decode-time TOVA", +[](std::int64_t b) { return kv::bounded_options{kv::decode_policy::tova, b, 0, -1, 0}; }}})
    for (double ratio : {0.25, 0.5, 0.75}) {
      const kv::bounded_options o = make(std::int64_t(ratio * context));
      print_row(name, ratio,
                tiny_llama::compare_after_context(m, sequences, context, [&] { return std::make_unique<bounded_store>(c, o); },
                                                  [](bounded_store&) {}),
                f32_bytes);
    }

  // Eviction and quantization together, at equal memory: fewer tokens in more
  // bits, or more tokens in fewer. (At the memory of 8-bit KIVI keeping every
  // token, 4-bit KIVI keeps every token too: its 0.25 is below 8-bit's 0.375.)
  std::printf("\n| cache | bytes vs f32 | mean KL (nats) | top-1 agreement |\n|---|---:|---:|---:|\n");
  const policy snap = per_head(snapkv);
  const kv::format f16{kv::scheme::f16};
  const auto kivi = [](int bits) { return std::pair{kv::format::kivi(bits, 8, 8), kv::format::kivi(bits, 8, 0)}; };
  const struct {
    const char* name;
    double ratio;
    std::pair<kv::format, kv::format> formats;
  } mixes[] = {
      {"kivi8 G8 R8 / kivi8 G8 R0, every token", 1.0, kivi(8)},
      {"kivi4 G8 R8 / kivi4 G8 R0, every token", 1.0, kivi(4)},
      {"f16, SnapKV 50%", 0.5, {f16, f16}},
      {"kivi8, SnapKV 67%", 2.0 / 3.0, kivi(8)},
      {"f16, SnapKV 25%", 0.25, {f16, f16}},
      {"kivi8, SnapKV 33%", 1.0 / 3.0, kivi(8)},
      {"kivi4, SnapKV 50%", 0.5, kivi(4)},
  };
  const auto show = [&](const char* name, const tiny_llama::cache_quality& q) {
    std::printf("| %s | %.3f | %.2e | %.2f%% |\n", name, q.bytes_per_token / f32_bytes, q.mean_kl, 100.0 * q.top1_agreement);
  };
  for (const auto& mix : mixes) show(mix.name, prefill(snap, mix.ratio, mix.formats.first, mix.formats.second));

  // MiKV: SnapKV's evicted tokens stay, at 2 bits, instead of being dropped.
  const kv::mixed_precision low{kv::format::kivi(2, 8, 8), kv::format::kivi(2, 8, 0)};
  for (double ratio : {0.25, 0.5})
    show(ratio == 0.25 ? "f16, SnapKV 25%, the rest demoted to kivi2 (MiKV)" : "f16, SnapKV 50%, the rest demoted to kivi2 (MiKV)",
         tiny_llama::compare_after_context(
             m, sequences, context, [&] { return std::make_unique<evicting_store>(c, f16, f16, low); },
             [&](evicting_store& s) {
               for (int l = 0; l < c.n_layers; ++l) s.demote(l, snap(s, l, ratio));
             }));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "kv_evict_stories: %s\n", e.what());
  return 1;
}

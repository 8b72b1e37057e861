// A compressed KV cache in a real forward pass: the stories260K Llama model
// (examples/tiny_llama) runs with its keys and values in a cinch::kv::cache and
// its attention computed by cinch::kv::decode_attention on the packed codes.
// Every format is scored against the exact fp32 cache by teacher-forcing the
// model's own samples through both: mean KL(exact || compressed) of the
// next-token distributions, and how often their top-1 token agrees.
//
//   ./kv_cache_stories [path/to/stories260K.bin]
//
// The model's heads have 8 channels, too few for ggml's 32-value blocks: the
// cache rejects those formats (the program shows the error) and KIVI groups
// values over the 8 channels of a head (G = 8).
#include <cinch/kv/attention.hpp>
#include <cinch/kv/cache.hpp>

#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "compressed_store.hpp"
#include "model.hpp"

#ifndef CINCH_DATA_DIR
#define CINCH_DATA_DIR "data"
#endif

namespace {

using cinch::kv::format;
using cinch::kv::scheme;

using tiny_llama::compressed_store;

struct row {
  std::string name;
  format keys, values;
};

format rotated(format f) {
  f.rotate = true;
  return f;
}

format with_scale(scheme s, float scale) {
  format f{s};
  f.fp8_scale = scale;
  return f;
}

}  // namespace

int main(int argc, char** argv) try {
  tiny_llama::model m(argc > 1 ? argv[1] : CINCH_DATA_DIR "/models/stories260K.bin");
  const tiny_llama::config& c = m.cfg();

  // One greedy sequence and five sampled ones (temperature 1.0 and 0.8), 512 tokens each.
  std::vector<std::vector<int>> sequences = {tiny_llama::sample_sequence(m, 512, 0.0f, 0)};
  for (std::uint64_t seed : {1, 2, 3}) sequences.push_back(tiny_llama::sample_sequence(m, 512, 1.0f, seed));
  for (std::uint64_t seed : {4, 5}) sequences.push_back(tiny_llama::sample_sequence(m, 512, 0.8f, seed));
  std::size_t positions = 0;
  for (const auto& s : sequences) positions += s.size();

  try {
    compressed_store rejected(c, format{scheme::q4_0}, format{scheme::q4_0});
  } catch (const cinch::error& e) {
    std::printf("q4_0 on this model: %s\n\n", e.what());
  }

  const std::vector<row> rows = {
      {"f32 / f32", format{scheme::f32}, format{scheme::f32}},
      {"f16 / f16", format{scheme::f16}, format{scheme::f16}},
      {"bf16 / bf16", format{scheme::bf16}, format{scheme::bf16}},
      {"fp8_e4m3 / fp8_e4m3 (scale 1)", with_scale(scheme::fp8_e4m3, 1.0f), with_scale(scheme::fp8_e4m3, 1.0f)},
      {"fp8_e4m3 / fp8_e4m3 (calibrated on token 0)", format{scheme::fp8_e4m3}, format{scheme::fp8_e4m3}},
      {"fp8_e5m2 / fp8_e5m2 (scale 1)", with_scale(scheme::fp8_e5m2, 1.0f), with_scale(scheme::fp8_e5m2, 1.0f)},
      {"int8 / int8", format{scheme::int8}, format{scheme::int8}},
      {"int8 / int8, rotated", rotated(format{scheme::int8}), rotated(format{scheme::int8})},
      {"int8 R128 / int8 R128", format{scheme::int8, 32, 128}, format{scheme::int8, 32, 128}},
      {"kivi8 G32 R32 / kivi8 G8 R0", format::kivi(8, 32, 32), format::kivi(8, 8, 0)},
      {"kivi8 G8 R8 / kivi8 G8 R0", format::kivi(8, 8, 8), format::kivi(8, 8, 0)},
      {"kivi4 G32 R128 / kivi4 G8 R128", format::kivi(4, 32, 128), format::kivi(4, 8, 128)},
      {"kivi4 G32 R32 / kivi4 G8 R32", format::kivi(4, 32, 32), format::kivi(4, 8, 32)},
      {"kivi4 G8 R8 / kivi4 G8 R0", format::kivi(4, 8, 8), format::kivi(4, 8, 0)},
      {"kivi2 G32 R128 / kivi2 G8 R128", format::kivi(2, 32, 128), format::kivi(2, 8, 128)},
      {"kivi2 G32 R32 / kivi2 G8 R32", format::kivi(2, 32, 32), format::kivi(2, 8, 32)},
      {"kivi2 G32 R32 / kivi2 G8 R32, rotated", rotated(format::kivi(2, 32, 32)), rotated(format::kivi(2, 8, 32))},
      {"f16 / int8", format{scheme::f16}, format{scheme::int8}},
      {"f16 / kivi8 G8 R0", format{scheme::f16}, format::kivi(8, 8, 0)},
      {"f16 / kivi4 G8 R0", format{scheme::f16}, format::kivi(4, 8, 0)},
      {"int8 / kivi4 G8 R0", format{scheme::int8}, format::kivi(4, 8, 0)},
  };

  std::printf("stories260K: %d layers, %d query heads, %d KV heads, head_dim %d; %zu sequences, %zu positions\n\n",
              c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim(), sequences.size(), positions);
  std::printf("| keys / values | bytes per token | vs f32 | mean KL (nats) | top-1 agreement |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  for (const row& r : rows) {
    const tiny_llama::cache_quality q = tiny_llama::compare_to_exact(
        m, sequences, [&] { return std::make_unique<compressed_store>(c, r.keys, r.values); });
    std::printf("| %s | %.1f | %.3f | %.2e | %.2f%% |\n", r.name.c_str(), q.bytes_per_token,
                q.bytes_per_token / (2.0 * c.n_layers * c.kv_dim() * 4), q.mean_kl, 100.0 * q.top1_agreement);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "kv_cache_stories: %s\n", e.what());
  return 1;
}

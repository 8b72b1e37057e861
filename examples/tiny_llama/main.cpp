// Runs the stories260K model with an exact fp32 KV cache and prints a sampled
// token sequence and the model's own perplexity on it. With --dump-kv DIR it
// also writes the keys and values of layer 2 as DIR/keys.npy and DIR/values.npy
// ([tokens, kv_heads * head_dim] f32): real cache statistics for `cinch kv`.
// With --safetensors FILE it writes the weights as safetensors (for `cinch lowrank`).
//
//   ./tiny_llama [path/to/stories260K.bin] [--dump-kv DIR] [--safetensors FILE]
#include <cinch/cinch.hpp>
#include <cinch/io/safetensors.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>

#include "evicting_store.hpp"
#include "model.hpp"

#ifndef CINCH_DATA_DIR
#define CINCH_DATA_DIR "data"
#endif

int main(int argc, char** argv) try {
  std::string path = CINCH_DATA_DIR "/models/stories260K.bin", dump_dir, safetensors;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--dump-kv") == 0 && i + 1 < argc) dump_dir = argv[++i];
    else if (std::strcmp(argv[i], "--safetensors") == 0 && i + 1 < argc) safetensors = argv[++i];
    else path = argv[i];
  }
  tiny_llama::model m(path);
  const tiny_llama::config& c = m.cfg();
  std::printf("model: dim %d, %d layers, %d query heads, %d kv heads, head dim %d, vocab %d\n", c.dim, c.n_layers, c.n_heads,
              c.n_kv_heads, c.head_dim(), c.vocab_size);

  const std::vector<int> tokens = tiny_llama::sample_sequence(m, 257, 0.8f, 1);
  std::printf("sampled token ids:");
  for (std::size_t i = 0; i < 24; ++i) std::printf(" %d", tokens[i]);
  std::printf(" ...\n");

  tiny_llama::exact_store cache(c);
  tiny_llama::evicting_store recorded(c, cinch::kv::format{cinch::kv::scheme::f32}, cinch::kv::format{cinch::kv::scheme::f32});
  double nll = 0;
  for (std::size_t pos = 0; pos + 1 < tokens.size(); ++pos) {
    const std::vector<float> p = tiny_llama::softmax(m.forward(tokens[pos], int(pos), cache));
    nll -= std::log(double(p[std::size_t(tokens[pos + 1])]));
    if (!dump_dir.empty()) (void)m.forward(tokens[pos], int(pos), recorded);  // the same run, keeping its queries
  }
  std::printf("perplexity of the model on its own sample: %.3f; exact cache holds %lld bytes\n",
              std::exp(nll / double(tokens.size() - 1)), static_cast<long long>(cache.bytes()));
  if (!safetensors.empty()) {
    const auto weights = m.named_weights();
    cinch::io::save_safetensors(safetensors, weights);
    std::printf("wrote %s: %zu tensors\n", safetensors.c_str(), weights.size());
  }
  if (!dump_dir.empty()) {
    const std::int64_t n = std::int64_t(tokens.size()) - 1, width = c.kv_dim();
    cinch::io::save_npy(dump_dir + "/keys.npy", cinch::tensor_view(cache.keys(2).data(), cinch::dtype::f32, {n, width}));
    cinch::io::save_npy(dump_dir + "/values.npy", cinch::tensor_view(cache.values(2).data(), cinch::dtype::f32, {n, width}));
    cinch::io::save_npy(dump_dir + "/queries.npy", recorded.window(2, 32));
    std::printf("wrote %s/keys.npy and %s/values.npy: layer 2, [%lld, %lld] f32, and its last 32 queries\n",
                dump_dir.c_str(), dump_dir.c_str(), static_cast<long long>(n), static_cast<long long>(width));
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "tiny_llama: %s\n", e.what());
  return 1;
}

// Runs the stories260K model with an exact fp32 KV cache and prints a sampled
// token sequence and the model's own perplexity on it.
//
//   ./tiny_llama [path/to/stories260K.bin]
#include <cmath>
#include <cstdio>
#include <exception>

#include "model.hpp"

#ifndef CINCH_DATA_DIR
#define CINCH_DATA_DIR "data"
#endif

int main(int argc, char** argv) try {
  const std::string path = argc > 1 ? argv[1] : CINCH_DATA_DIR "/models/stories260K.bin";
  tiny_llama::model m(path);
  const tiny_llama::config& c = m.cfg();
  std::printf("model: dim %d, %d layers, %d query heads, %d kv heads, head dim %d, vocab %d\n", c.dim, c.n_layers, c.n_heads,
              c.n_kv_heads, c.head_dim(), c.vocab_size);

  const std::vector<int> tokens = tiny_llama::sample_sequence(m, 128, 0.8f, 1);
  std::printf("sampled token ids:");
  for (std::size_t i = 0; i < 24; ++i) std::printf(" %d", tokens[i]);
  std::printf(" ...\n");

  tiny_llama::exact_store cache(c);
  double nll = 0;
  for (std::size_t pos = 0; pos + 1 < tokens.size(); ++pos) {
    const std::vector<float> p = tiny_llama::softmax(m.forward(tokens[pos], int(pos), cache));
    nll -= std::log(double(p[std::size_t(tokens[pos + 1])]));
  }
  std::printf("perplexity of the model on its own sample: %.3f; exact cache holds %lld bytes\n",
              std::exp(nll / double(tokens.size() - 1)), static_cast<long long>(cache.bytes()));
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "tiny_llama: %s\n", e.what());
  return 1;
}

// A minimal Llama-2 forward pass (RMSNorm, RoPE theta 10000, grouped-query
// attention, SwiGLU) for llama2.c checkpoints such as data/models/stories260K.bin.
//
// The model owns its weights and scratch; attention goes through a kv_store,
// so the same forward pass runs with an exact fp32 cache or a compressed one.
// This is the example an engine author copies: the only cinch-specific part
// is the kv_store implementation.
#pragma once

#include <cinch/core/tensor_view.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace tiny_llama {

struct config {
  int dim = 0;         // residual width
  int hidden_dim = 0;  // SwiGLU width
  int n_layers = 0;
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // key/value heads (grouped-query attention)
  int vocab_size = 0;
  int seq_len = 0;     // longest sequence the checkpoint was trained for
  [[nodiscard]] int head_dim() const { return dim / n_heads; }
  [[nodiscard]] int kv_dim() const { return n_kv_heads * head_dim(); }
};

// One token's keys or values (n_kv_heads rows) and its queries or attention
// outputs (n_heads rows) as the [heads, head_dim] f32 views cinch's kv calls take.
template <class T>
cinch::tensor_view kv_rows(const config& c, std::span<T> x) {
  return cinch::tensor_view(x.data(), cinch::dtype::f32, {std::int64_t(c.n_kv_heads), std::int64_t(c.head_dim())});
}
template <class T>
cinch::tensor_view query_rows(const config& c, std::span<T> x) {
  return cinch::tensor_view(x.data(), cinch::dtype::f32, {std::int64_t(c.n_heads), std::int64_t(c.head_dim())});
}

// Where the keys and values of past tokens live. append() then attend() is
// called once per layer per token, keys already rotated by RoPE.
class kv_store {
 public:
  virtual ~kv_store() = default;
  // k, v: [n_kv_heads, head_dim] of the next token of `layer`.
  virtual void append(int layer, std::span<const float> k, std::span<const float> v) = 0;
  // q: [n_heads, head_dim] -> out: [n_heads, head_dim] = softmax(q K^T / sqrt(head_dim)) V over all stored tokens.
  virtual void attend(int layer, std::span<const float> q, std::span<float> out) = 0;
  // Bytes held for keys and values (payload and scales).
  [[nodiscard]] virtual std::int64_t bytes() const = 0;
};

// Exact attention over fp32 keys and values: the baseline every compressed cache is measured against.
class exact_store final : public kv_store {
 public:
  explicit exact_store(const config& c);
  void append(int layer, std::span<const float> k, std::span<const float> v) override;
  void attend(int layer, std::span<const float> q, std::span<float> out) override;
  [[nodiscard]] std::int64_t bytes() const override;

  // Everything stored for `layer`, [tokens, n_kv_heads * head_dim] (llama.cpp's cache layout).
  [[nodiscard]] std::span<const float> keys(int layer) const { return keys_[std::size_t(layer)]; }
  [[nodiscard]] std::span<const float> values(int layer) const { return values_[std::size_t(layer)]; }

 private:
  config config_;
  std::vector<std::vector<float>> keys_, values_;  // per layer: [tokens, n_kv_heads, head_dim]
};

class model {
 public:
  // Loads a llama2.c legacy checkpoint. Throws std::runtime_error on a missing,
  // truncated or inconsistent file.
  explicit model(const std::string& path);

  [[nodiscard]] const config& cfg() const { return config_; }

  // Every weight matrix and norm as a named read-only view, with the names Llama
  // checkpoints use ("layers.0.attention.wq.weight", ...), e.g. to save as safetensors.
  [[nodiscard]] std::vector<std::pair<std::string, cinch::tensor_view>> named_weights() const;

  // Runs one token at position `pos` (0, 1, 2, ... in order for a given store)
  // and returns the logits over the vocabulary (valid until the next call).
  std::span<const float> forward(int token, int pos, kv_store& cache);

 private:
  struct layer_weights {
    std::span<const float> rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3;
  };
  config config_;
  std::vector<float> weights_;  // everything after the header, as stored
  std::span<const float> embedding_, rms_final_, classifier_;
  std::vector<layer_weights> layers_;
  // Scratch, sized once.
  std::vector<float> x_, xb_, q_, k_, v_, att_, hb_, hb2_, logits_;
};

// Softmax of logits into probabilities (numerically stable).
std::vector<float> softmax(std::span<const float> logits);

// Samples `length` tokens from the model itself, starting at BOS (token 1),
// with temperature sampling from a fixed seed (temperature 0: greedy), using an exact cache.
std::vector<int> sample_sequence(model& m, int length, float temperature, std::uint64_t seed);

// How far a cache moves the model's next-token distributions from the exact
// cache's, teacher-forcing the same sequences through both.
struct cache_quality {
  double mean_kl = 0;          // mean over positions of KL(p_exact || p_cache), in nats
  double top1_agreement = 0;   // fraction of positions whose argmax token is the same
  double bytes_per_token = 0;  // cache bytes / tokens held, all layers, keys and values
};

// `make_cache` returns a fresh kv_store for each sequence.
template <class MakeCache>
cache_quality compare_to_exact(model& m, const std::vector<std::vector<int>>& sequences, MakeCache make_cache);

// Eviction after a prompt: the first `context` positions of each sequence fill
// both caches, then `compress(store)` runs once (e.g. scores and compacts it) and
// only the positions after it are compared. bytes_per_token is the compressed
// store's bytes right after compress, over the context length.
template <class MakeCache, class Compress>
cache_quality compare_after_context(model& m, const std::vector<std::vector<int>>& sequences, std::size_t context,
                                    MakeCache make_cache, Compress compress);

}  // namespace tiny_llama

#include "compare.inl"

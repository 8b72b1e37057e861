// The part an engine writes for eviction: a kv_store whose keys and values live
// in a cinch::kv::cache, which also keeps the queries attention saw, so that
// after the prompt the cache can be scored (cinch/kv/score.hpp), selected
// (cinch/kv/select.hpp) and compacted (kv::cache::retain) per layer and head.
#pragma once

#include <cinch/core/tensor.hpp>
#include <cinch/kv/attention.hpp>
#include <cinch/kv/cache.hpp>
#include <cinch/kv/select.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <span>
#include <vector>

#include "model.hpp"

namespace tiny_llama {

class evicting_store final : public kv_store {
 public:
  evicting_store(const config& c, const cinch::kv::format& keys, const cinch::kv::format& values,
                 std::optional<cinch::kv::mixed_precision> low = std::nullopt)
      : cache_({c.n_layers, c.n_kv_heads, c.head_dim(), keys, values}, low),
        config_(c),
        queries_(std::size_t(c.n_layers)) {
    cache_.reserve(c.seq_len);
  }

  void append(int layer, std::span<const float> k, std::span<const float> v) override {
    cache_.append(layer, kv_rows(config_, k), kv_rows(config_, v));
  }
  void attend(int layer, std::span<const float> q, std::span<float> out) override {
    std::vector<float>& seen = queries_[std::size_t(layer)];
    seen.insert(seen.end(), q.begin(), q.end());
    cinch::kv::decode_attention(cache_, layer, query_rows(config_, q), query_rows(config_, out));
  }
  [[nodiscard]] std::int64_t bytes() const override { return cache_.bytes(); }

  [[nodiscard]] cinch::kv::cache& kv() { return cache_; }
  [[nodiscard]] const config& cfg() const { return config_; }

  // The queries of the last w positions of `layer`, [n_heads, w, head_dim], RoPE'd
  // like the keys: the observation window of SnapKV, H2O and TOVA.
  [[nodiscard]] cinch::tensor window(int layer, std::int64_t w) const {
    const std::vector<float>& seen = queries_[std::size_t(layer)];
    const std::int64_t heads = config_.n_heads, dim = config_.head_dim(), n = std::int64_t(seen.size()) / (heads * dim);
    w = std::min(w, n);
    cinch::tensor out = cinch::tensor::empty({heads, w, dim}, cinch::dtype::f32);
    for (std::int64_t i = 0; i < w; ++i)
      for (std::int64_t h = 0; h < heads; ++h)
        std::copy_n(seen.data() + ((n - w + i) * heads + h) * dim, dim, out.data<float>() + (h * w + i) * dim);
    return out;
  }

  // Every query of `layer` with its RoPE undone, [n_heads, positions, head_dim]:
  // ExpectedAttention's statistics. The model rotates adjacent pairs (interleaved).
  [[nodiscard]] cinch::tensor pre_rope(int layer) const {
    cinch::tensor out = window(layer, std::int64_t(queries_[std::size_t(layer)].size()));
    const std::int64_t heads = out.size(0), n = out.size(1), dim = out.size(2);
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t pos = 0; pos < n; ++pos) {
        float* row = out.data<float>() + (h * n + pos) * dim;
        for (std::int64_t j = 0; j + 1 < dim; j += 2) {
          const float angle = float(pos) / std::pow(10000.0f, float(j) / float(dim));
          const float c = std::cos(angle), s = std::sin(angle), a = row[j], b = row[j + 1];
          row[j] = a * c + b * s;
          row[j + 1] = -a * s + b * c;
        }
      }
    return out;
  }

  // Keeps keep[h] of every KV head h of `layer` (kv::cache::retain).
  void retain(int layer, std::span<const cinch::kv::keep_list> keep) {
    for (int h = 0; h < config_.n_kv_heads; ++h) cache_.retain(layer, h, keep[std::size_t(h)]);
  }
  // MiKV: the others go to the low-precision part instead (kv::cache::demote).
  void demote(int layer, std::span<const cinch::kv::keep_list> keep) {
    for (int h = 0; h < config_.n_kv_heads; ++h) cache_.demote(layer, h, keep[std::size_t(h)]);
  }

 private:
  cinch::kv::cache cache_;
  config config_;
  std::vector<std::vector<float>> queries_;  // per layer: [positions, n_heads, head_dim]
};

}  // namespace tiny_llama

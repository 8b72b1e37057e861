// The part an engine writes: a kv_store whose keys and values live in a
// cinch::kv::cache and whose attention reads the packed codes directly.
#pragma once

#include <cinch/kv/attention.hpp>
#include <cinch/kv/cache.hpp>

#include "model.hpp"

namespace tiny_llama {

class compressed_store final : public kv_store {
 public:
  compressed_store(const config& c, const cinch::kv::format& keys, const cinch::kv::format& values)
      : cache_({c.n_layers, c.n_kv_heads, c.head_dim(), keys, values}), config_(c) {
    cache_.reserve(c.seq_len);  // decode appends never reallocate
  }
  void append(int layer, std::span<const float> k, std::span<const float> v) override {
    const std::int64_t heads = config_.n_kv_heads, dim = config_.head_dim();
    cache_.append(layer, cinch::tensor_view(k.data(), cinch::dtype::f32, {heads, dim}),
                  cinch::tensor_view(v.data(), cinch::dtype::f32, {heads, dim}));
  }
  void attend(int layer, std::span<const float> q, std::span<float> out) override {
    const std::int64_t heads = config_.n_heads, dim = config_.head_dim();
    cinch::kv::decode_attention(cache_, layer, cinch::tensor_view(q.data(), cinch::dtype::f32, {heads, dim}),
                                cinch::tensor_view(out.data(), cinch::dtype::f32, {heads, dim}));
  }
  [[nodiscard]] std::int64_t bytes() const override { return cache_.bytes(); }

 private:
  cinch::kv::cache cache_;
  config config_;
};

}  // namespace tiny_llama

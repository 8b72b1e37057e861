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
    cache_.append(layer, kv_rows(config_, k), kv_rows(config_, v));
  }
  void attend(int layer, std::span<const float> q, std::span<float> out) override {
    cinch::kv::decode_attention(cache_, layer, query_rows(config_, q), query_rows(config_, out));
  }
  [[nodiscard]] std::int64_t bytes() const override { return cache_.bytes(); }

 private:
  cinch::kv::cache cache_;
  config config_;
};

}  // namespace tiny_llama

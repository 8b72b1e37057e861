// An open-addressing hash map from 64-bit keys to small values (linear probing,
// power-of-two capacity, load <= 1/2): the merge table of the BPE tokenizer and
// the n-gram tables, where std::unordered_map's node per entry costs 3x the memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cinch::prompt::detail {

template <class V>
class flat_map {
 public:
  static constexpr std::uint64_t empty_key = ~std::uint64_t{0};  // never a valid key

  explicit flat_map(std::size_t expected = 0) { rehash(capacity_for(expected)); }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  [[nodiscard]] const V* find(std::uint64_t key) const noexcept {
    for (std::size_t i = slot(key);; i = (i + 1) & mask_) {
      if (keys_[i] == key) return &values_[i];
      if (keys_[i] == empty_key) return nullptr;
    }
  }

  // The value of `key`, value-initialised when new.
  V& operator[](std::uint64_t key) {
    if (2 * (size_ + 1) > keys_.size()) rehash(2 * keys_.size());
    std::size_t i = slot(key);
    for (; keys_[i] != empty_key; i = (i + 1) & mask_)
      if (keys_[i] == key) return values_[i];
    keys_[i] = key;
    ++size_;
    return values_[i] = V{};
  }

  // Calls f(key, value) for every entry, in slot order.
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < keys_.size(); ++i)
      if (keys_[i] != empty_key) f(keys_[i], values_[i]);
  }

 private:
  static std::size_t capacity_for(std::size_t n) {
    std::size_t c = 16;
    while (c < 2 * n + 2) c *= 2;
    return c;
  }

  // splitmix64's finaliser: every key bit reaches the low bits the mask keeps.
  [[nodiscard]] std::size_t slot(std::uint64_t k) const noexcept {
    k ^= k >> 30;
    k *= 0xBF58476D1CE4E5B9ull;
    k ^= k >> 27;
    k *= 0x94D049BB133111EBull;
    k ^= k >> 31;
    return std::size_t(k) & mask_;
  }

  void rehash(std::size_t capacity) {
    std::vector<std::uint64_t> keys(capacity, empty_key);
    std::vector<V> values(capacity);
    keys.swap(keys_);
    values.swap(values_);
    mask_ = capacity - 1;
    size_ = 0;
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (keys[i] != empty_key) (*this)[keys[i]] = values[i];
  }

  std::vector<std::uint64_t> keys_;
  std::vector<V> values_;
  std::size_t mask_ = 0, size_ = 0;
};

}  // namespace cinch::prompt::detail

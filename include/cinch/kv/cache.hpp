// kv::cache: a compressed KV cache with real packed storage, ragged per-head
// lengths, a full-precision residual window and original token positions.
//
// Layers x KV heads independent heads; each head holds its own number of
// tokens (append to one head, or to every head of a layer at once), so
// per-head budgets save real memory. Layout of each head: cinch/kv/format.hpp.
//
// Non-finite input stays in the unit it is quantized into, visible: int8 rows,
// KIVI groups and q8_0 blocks get a non-finite scale and read back NaN; ggml
// q4/q5/iq4 blocks ignore a NaN when they pick their scale (as ggml does) and an
// inf makes the block non-finite; f16/bf16 keep the value; fp8 saturates inf and
// keeps NaN in its element (calibration skips non-finite values). Attention over
// a head holding such a token returns NaN for the query heads that read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <span>
#include <vector>

#include "cinch/core/tensor_view.hpp"
#include "cinch/kv/format.hpp"

namespace cinch::io {
class stream_writer;
}

namespace cinch::kv {

struct cache_config {
  int layers = 0;
  int kv_heads = 0;
  int head_dim = 0;
  format keys;
  format values;
  friend constexpr bool operator==(const cache_config&, const cache_config&) = default;
};

// Mixed precision by token saliency (ZipCache, MiKV): every head holds two parts,
// and tokens appended as not salient go to part 1 in these formats (e.g. KIVI-2
// beside KIVI-4, or int8 beside f16). Rotation flags must match the config's.
// kv::choose_bits gives the per-token choice.
struct mixed_precision {
  format keys;
  format values;
  friend constexpr bool operator==(const mixed_precision&, const mixed_precision&) = default;
};

class cache {
 public:
  // Throws errc::invalid_argument for a non-positive size or a bad format
  // parameter, errc::unsupported for a format the head size does not fit
  // (ggml blocks need head_dim % 32 == 0, KIVI values head_dim % group == 0,
  // rotation a power-of-two head_dim).
  explicit cache(const cache_config& config, std::optional<mixed_precision> low = std::nullopt);

  [[nodiscard]] const cache_config& config() const noexcept { return config_; }
  [[nodiscard]] const std::optional<mixed_precision>& low() const noexcept { return low_; }

  // Appends tokens to one head: k, v [tokens, head_dim] f32 (or [head_dim] for one token).
  // positions: one per token; empty = continue after the head's last position (0 for an empty head).
  // salient: one flag per token for a mixed-precision cache (0: part 1, the low formats);
  // empty = all salient.
  void append(int layer, int head, const tensor_view& k, const tensor_view& v,
              std::span<const std::int32_t> positions = {}, std::span<const std::uint8_t> salient = {});
  // Appends to every head of a layer: k, v [kv_heads, head_dim] (one token) or
  // [kv_heads, tokens, head_dim] (a chunk, e.g. prefill); a token-major buffer
  // [tokens, kv_heads, head_dim] is the view .permute({1, 0, 2}). Positions and
  // the salient flags are shared by the heads.
  void append(int layer, const tensor_view& k, const tensor_view& v, std::span<const std::int32_t> positions = {},
              std::span<const std::uint8_t> salient = {});

  // 2 for a mixed-precision cache, else 1. Part 0 holds the salient tokens.
  [[nodiscard]] int parts() const noexcept { return low_ ? 2 : 1; }

  // Tokens of a head, all parts.
  [[nodiscard]] std::int64_t tokens(int layer, int head) const;
  // Original positions of a part's tokens, oldest first.
  [[nodiscard]] std::span<const std::int32_t> positions(int layer, int head, int part = 0) const;

  // Bytes held for keys and values of a head (packed records with their scales,
  // residual f32 tokens), and over every head. Positions are not counted.
  [[nodiscard]] std::int64_t bytes(int layer, int head) const;
  [[nodiscard]] std::int64_t bytes() const;

  // Reserves room for `tokens` tokens in every head (in each part), so appends
  // up to that length do not reallocate.
  void reserve(std::int64_t tokens);

  // Read-only view of one part of a head's storage, valid until the next append to it.
  [[nodiscard]] head_view view(int layer, int head, int part = 0) const;

  // fp8 formats: the scales of one head, every part (x = float(code) * scale); only
  // before its first append (later codes would change meaning). Overrides format::fp8_scale.
  void set_fp8_scales(int layer, int head, float key_scale, float value_scale);

  // The keys and values of one part of a head as attention sees them,
  // dequantized and un-rotated into k, v [view(...).tokens, head_dim] f32.
  void dequantize(int layer, int head, const tensor_view& k, const tensor_view& v, int part = 0) const;

  // Eviction: keeps only the listed tokens of a head, in their order, with their
  // original positions (keys keep the RoPE of where they were, so attention over
  // the kept tokens equals attention over that subset of the uncompressed cache),
  // and frees the others: bytes() drops at once; the buffers keep their capacity
  // for later appends until shrink_to_fit(). keep: strictly ascending indices into
  // the head's tokens (part 0's, then part 1's in a mixed-precision cache), else
  // errc::invalid_argument with nothing changed. Per-token records and residual
  // rows move as they are (bit-exact); KIVI keys form new per-channel groups from
  // the kept tokens, so their packed tokens are dequantized and quantized again
  // (one more rounding, within half a step of the new groups' scales; this path
  // allocates). Keeping every token changes nothing.
  void retain(int layer, int head, std::span<const std::int32_t> keep);
  // MiKV: evict to lower precision instead of dropping. In a mixed-precision
  // cache, keeps the listed tokens of part 0 (strictly ascending indices into its
  // tokens) and moves every other part-0 token into part 1, quantized in part 1's
  // formats from its part-0 value, with its position (part 1 then holds tokens in
  // the order they arrived there; attention does not depend on the order).
  // errc::invalid_argument for a cache with one part or bad indices.
  void demote(int layer, int head, std::span<const std::int32_t> keep);
  // Releases the capacity that eviction left unused in every head.
  void shrink_to_fit();

  // Serialization to a cinch stream (cinch/io/stream.hpp) of kind "KVC1", for
  // offloading a cache and loading it back bit-exactly: a "CONF" section (sizes
  // and formats), then one section per head (each part's packed records, residual
  // window, fp8 scales and positions), each with its CRC-32C. Layout in
  // src/kv/cache_stream.cpp. A failing std::ostream is errc::invalid_argument.
  void save(std::vector<std::byte>& out) const;
  void save(std::ostream& out) const;
  // Every view, position and byte count of the result equals the saved cache's.
  // A truncated, bit-flipped, wrongly versioned or inconsistent stream, or a
  // one-head stream, is errc::corrupt_data.
  [[nodiscard]] static cache load(std::span<const std::byte> bytes);

  // One head alone (e.g. to offload a long head): a "KVC1" stream flagged as
  // holding one head. load_head replaces the contents of head (layer, head) of
  // this cache with it; the configuration saved must equal this cache's
  // (errc::invalid_argument otherwise), a damaged stream is errc::corrupt_data,
  // and on any error the head is left as it was.
  void save_head(std::vector<std::byte>& out, int layer, int head) const;
  void load_head(std::span<const std::byte> bytes, int layer, int head);

 private:
  struct stream {
    format fmt;
    side role = side::keys;
    std::vector<std::byte> packed;  // packed_bytes in use, then zero bytes
    std::int64_t packed_bytes = 0;
    std::vector<float> residual;    // room for the window: 2 * residual rows for sliding windows
    std::int64_t residual_begin = 0;  // first live row of `residual`
    std::int64_t residual_tokens = 0;
    std::int64_t packed_tokens = 0;
    float scale = 0.0f;  // fp8: 0 until set or calibrated
  };
  struct part {
    stream keys, values;
    std::vector<std::int32_t> positions;
  };
  struct head {
    part parts[2];
    std::int32_t next_position = 0;
  };

  struct rows {  // appended tokens of one head: row t at data + t * stride
    const float* data;
    std::int64_t stride;
  };

  [[nodiscard]] head empty_head() const;
  head& at(const char* function, int layer, int head_index);
  const head& at(const char* function, int layer, int head_index) const;
  const part& part_of(const char* function, int layer, int head_index, int part_index) const;
  void check_append(const char* function, std::int64_t tokens, std::span<const std::int32_t> positions,
                    std::span<const std::uint8_t> salient) const;
  void append_rows(head& h, const rows& k, const rows& v, std::int64_t count, std::span<const std::int32_t> positions,
                   std::span<const std::uint8_t> salient);
  void write_heads(io::stream_writer& out, int first_head, int heads) const;
  [[nodiscard]] head read_head(std::span<const std::byte> payload, const char* what) const;
  // stored: the rows are already in the stored (rotated if so) domain.
  void calibrate(stream& s, const float* x, std::int64_t row_stride, std::int64_t count, bool stored) const;
  void push(stream& s, const float* x);
  void push_stored(stream& s, const float* x);
  void retain_stream(stream& s, std::span<const std::int32_t> keep);
  void flush_keys(stream& s);
  static std::byte* grow(stream& s, std::int64_t unit);
  void pack_token(stream& s, const float* x);
  [[nodiscard]] stream_view view_of(const stream& s, std::int64_t tokens) const;

  cache_config config_;
  std::optional<mixed_precision> low_;
  std::vector<head> heads_;  // [layer * kv_heads + head]
};

}  // namespace cinch::kv

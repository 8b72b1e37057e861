// Saliency and mixed-precision bit allocation: ZipCache's normalized attention and
// H2O's accumulated attention on a hand-computed 4 x 4 attention matrix, probe
// queries, leading (head) dimensions, the low-bit split with its tie rule, and bad input.
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/kv/saliency.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "error_matchers.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;

namespace {

// Causal softmax rows for queries at positions 0..3.
const std::vector<float> attention_4x4{
    1.00f, 0.00f, 0.00f, 0.00f,  //
    0.50f, 0.50f, 0.00f, 0.00f,  //
    0.25f, 0.25f, 0.50f, 0.00f,  //
    0.25f, 0.25f, 0.25f, 0.25f,
};

std::vector<std::uint8_t> bits_for(const std::vector<float>& saliency, double low_fraction, int high, int low) {
  std::vector<std::uint8_t> bits(saliency.size());
  const auto n = std::int64_t(saliency.size());
  cinch::kv::choose_bits(tensor_view(saliency.data(), dtype::f32, {n}), low_fraction, high, low,
                         tensor_view(bits.data(), dtype::u8, {n}));
  return bits;
}

}  // namespace

TEST_CASE("normalized attention saliency on a hand-computed 4x4 matrix", "[kv][saliency]") {
  const std::vector<std::int32_t> positions{0, 1, 2, 3};
  std::vector<float> saliency(4);
  cinch::kv::normalized_attention_saliency(tensor_view(attention_4x4.data(), dtype::f32, {4, 4}),
                                           tensor_view(positions.data(), dtype::i32, {4}),
                                           tensor_view(saliency.data(), dtype::f32, {4}));
  // Column sums 2, 1, 0.75, 0.25 over 4, 3, 2, 1 queries that can attend each token.
  CHECK(saliency == std::vector<float>{0.5f, 1.0f / 3.0f, 0.375f, 0.25f});
  // Without positions the queries are the last Q = 4 tokens: the same.
  std::vector<float> implicit(4);
  cinch::kv::normalized_attention_saliency(tensor_view(attention_4x4.data(), dtype::f32, {4, 4}),
                                           tensor_view(implicit.data(), dtype::f32, {4}));
  CHECK(implicit == saliency);

  // H2O accumulates the plain column sums, which favour early tokens: token 2 falls
  // below token 1 there, above it once normalized.
  std::vector<float> scores(4, 0.0f);
  cinch::kv::accumulate_attention(tensor_view(attention_4x4.data(), dtype::f32, {4, 4}),
                                  tensor_view(scores.data(), dtype::f32, {4}));
  CHECK(scores == std::vector<float>{2.0f, 1.0f, 0.75f, 0.25f});
  cinch::kv::accumulate_attention(tensor_view(attention_4x4.data() + 12, dtype::f32, {1, 4}),
                                  tensor_view(scores.data(), dtype::f32, {4}));  // one more decoding step
  CHECK(scores == std::vector<float>{2.25f, 1.25f, 1.0f, 0.5f});

  CHECK(bits_for(saliency, 0.5, 4, 2) == std::vector<std::uint8_t>{4, 2, 4, 2});  // ZipCache: 1/3 and 0.25 go low
  CHECK(bits_for({2.0f, 1.0f, 0.75f, 0.25f}, 0.5, 8, 2) == std::vector<std::uint8_t>{8, 8, 2, 2});  // MiKV on H2O scores
}

TEST_CASE("probe queries: only queries that can see a token count, masked entries are ignored", "[kv][saliency]") {
  // Rows 1 and 3 of the matrix as probes at positions 1 and 3; row 1's masked
  // entries hold garbage that must not be summed.
  const std::vector<float> probes{0.5f, 0.5f, 9.0f, 9.0f, /**/ 0.25f, 0.25f, 0.25f, 0.25f};
  const std::vector<std::int32_t> positions{1, 3};
  std::vector<float> saliency(4);
  cinch::kv::normalized_attention_saliency(tensor_view(probes.data(), dtype::f32, {2, 4}),
                                           tensor_view(positions.data(), dtype::i32, {2}),
                                           tensor_view(saliency.data(), dtype::f32, {4}));
  CHECK(saliency == std::vector<float>{0.375f, 0.375f, 0.25f, 0.25f});
  // A token no query can attend gets 0; a position past the end sees every token.
  const std::vector<std::int32_t> early{0, 7};
  cinch::kv::normalized_attention_saliency(tensor_view(probes.data(), dtype::f32, {2, 4}),
                                           tensor_view(early.data(), dtype::i32, {2}),
                                           tensor_view(saliency.data(), dtype::f32, {4}));
  CHECK(saliency == std::vector<float>{0.375f, 0.25f, 0.25f, 0.25f});
  const std::vector<std::int32_t> none_late{0, 0};
  cinch::kv::normalized_attention_saliency(tensor_view(probes.data(), dtype::f32, {2, 4}),
                                           tensor_view(none_late.data(), dtype::i32, {2}),
                                           tensor_view(saliency.data(), dtype::f32, {4}));
  CHECK(saliency == std::vector<float>{0.375f, 0.0f, 0.0f, 0.0f});
}

TEST_CASE("saliency per head over leading dimensions and strided views", "[kv][saliency]") {
  // attn [heads 2, queries 2, tokens 3]; head 1 is head 0 doubled. Saliency goes into
  // every other row of a [4, 3] buffer.
  const std::vector<float> attn{1, 0, 0, 0.5f, 0.5f, 0, /**/ 2, 0, 0, 1, 1, 0};
  std::vector<float> out(12, -1.0f);
  const tensor_view saliency(out.data(), dtype::f32, {2, 3}, {6, 1});
  cinch::kv::normalized_attention_saliency(tensor_view(attn.data(), dtype::f32, {2, 2, 3}), saliency);
  // Queries at positions 1 and 2 (the last two of three tokens).
  CHECK(std::vector<float>(out.begin(), out.begin() + 3) == std::vector<float>{0.75f, 0.25f, 0.0f});
  CHECK(std::vector<float>(out.begin() + 3, out.begin() + 6) == std::vector<float>{-1, -1, -1});
  CHECK(std::vector<float>(out.begin() + 6, out.begin() + 9) == std::vector<float>{1.5f, 0.5f, 0.0f});
}

TEST_CASE("choose_bits: counts, the tie rule, rows", "[kv][saliency]") {
  // Ties go to the lower index for the high-precision set: of the two 0.25s, token 3 goes low.
  CHECK(bits_for({0.375f, 0.375f, 0.25f, 0.25f}, 0.25, 4, 2) == std::vector<std::uint8_t>{4, 4, 4, 2});
  CHECK(bits_for({0.375f, 0.375f, 0.25f, 0.25f}, 0.75, 4, 2) == std::vector<std::uint8_t>{4, 2, 2, 2});
  CHECK(bits_for({1, 1, 1, 1}, 0.5, 4, 2) == std::vector<std::uint8_t>{4, 4, 2, 2});
  // floor(low_fraction * T) with 0.7 of 10 = 7 (not 6.9999...).
  const std::vector<std::uint8_t> seven = bits_for({9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, 0.7, 16, 4);
  CHECK(seven == std::vector<std::uint8_t>{16, 16, 16, 4, 4, 4, 4, 4, 4, 4});
  CHECK(bits_for({3, 1, 2}, 0.0, 4, 2) == std::vector<std::uint8_t>{4, 4, 4});
  CHECK(bits_for({3, 1, 2}, 1.0, 4, 2) == std::vector<std::uint8_t>{2, 2, 2});
  CHECK(bits_for({3, 1, 2}, 0.5, 4, 2) == std::vector<std::uint8_t>{4, 2, 4});  // floor(1.5) = 1
  CHECK(bits_for({-0.0f, 0.0f, -1.0f}, 1.0 / 3, 4, 2) == std::vector<std::uint8_t>{4, 4, 2});
  // Long rows: exactly floor(0.3 * T) low tokens, the least salient ones.
  std::vector<float> ramp(100000);
  for (std::size_t j = 0; j < ramp.size(); ++j) ramp[j] = float(j);
  const std::vector<std::uint8_t> long_bits = bits_for(ramp, 0.3, 4, 2);
  CHECK(std::count(long_bits.begin(), long_bits.end(), 2) == 30000);
  CHECK(std::all_of(long_bits.begin(), long_bits.begin() + 30000, [](std::uint8_t b) { return b == 2; }));
  // Each row of [..., T] on its own.
  const std::vector<float> rows{1, 2, 3, /**/ 3, 2, 1};
  std::vector<std::uint8_t> bits(6);
  cinch::kv::choose_bits(tensor_view(rows.data(), dtype::f32, {2, 3}), 0.34, 4, 2, tensor_view(bits.data(), dtype::u8, {2, 3}));
  CHECK(bits == std::vector<std::uint8_t>{2, 4, 4, /**/ 4, 4, 2});
}

TEST_CASE("saliency and choose_bits reject bad input", "[kv][saliency][errors]") {
  std::vector<float> attn(16, 0.25f), out(4);
  std::vector<std::int32_t> positions{0, 1, 2, 3};
  std::vector<std::uint8_t> bits(4);
  const tensor_view a(attn.data(), dtype::f32, {4, 4}), o(out.data(), dtype::f32, {4});
  using cinch::kv::normalized_attention_saliency;
  require_error([&] { normalized_attention_saliency(a, tensor_view(positions.data(), dtype::i32, {3}), o); },
                errc::shape_mismatch, {"kv::normalized_attention_saliency", "query_positions", "[4]", "[3]"});
  require_error([&] { normalized_attention_saliency(a, tensor_view(positions.data(), dtype::i8, {4}), o); },
                errc::invalid_argument, {"query_positions", "i32", "got i8"});
  positions[2] = -1;
  require_error([&] { normalized_attention_saliency(a, tensor_view(positions.data(), dtype::i32, {4}), o); },
                errc::invalid_argument, {"query_positions[2]", ">= 0", "got -1"});
  require_error([&] { normalized_attention_saliency(tensor_view(attn.data(), dtype::f32, {16}), o); },
                errc::shape_mismatch, {"attn", "rank >= 2"});
  require_error([&] { normalized_attention_saliency(tensor_view(attn.data(), dtype::f32, {8, 2}), o); },
                errc::shape_mismatch, {"saliency", "[2]", "[4]"});
  require_error([&] { normalized_attention_saliency(tensor_view(attn.data(), dtype::f32, {8, 2}),
                                                    tensor_view(out.data(), dtype::f32, {2})); },
                errc::shape_mismatch, {"queries <= tokens", "[8, 2]"});
  require_error([&] { normalized_attention_saliency(a, tensor_view(attn.data(), dtype::f32, {4})); },
                errc::invalid_argument, {"saliency", "overlap"});
  require_error([&] { cinch::kv::accumulate_attention(tensor_view(attn.data(), dtype::f32, {4, 4}, cinch::cuda_device(0)), o); },
                errc::unsupported, {"kv::accumulate_attention", "attn", "must be on cpu", "cuda:0"});
  require_error([&] { cinch::kv::accumulate_attention(a, tensor_view(out.data(), dtype::f16, {4})); },
                errc::invalid_argument, {"scores", "f32", "got f16"});

  using cinch::kv::choose_bits;
  const tensor_view b(bits.data(), dtype::u8, {4});
  require_error([&] { choose_bits(o, 1.5, 4, 2, b); }, errc::invalid_argument, {"kv::choose_bits", "low_fraction", "[0, 1]", "got 1.5"});
  require_error([&] { choose_bits(o, -0.1, 4, 2, b); }, errc::invalid_argument, {"low_fraction"});
  require_error([&] { choose_bits(o, 0.5, 2, 4, b); }, errc::invalid_argument, {"low_bits <= high_bits", "low_bits 4", "high_bits 2"});
  require_error([&] { choose_bits(o, 0.5, 17, 4, b); }, errc::invalid_argument, {"high_bits 17"});
  require_error([&] { choose_bits(o, 0.5, 4, 0, b); }, errc::invalid_argument, {"low_bits 0"});
  require_error([&] { choose_bits(o, 0.5, 4, 2, tensor_view(bits.data(), dtype::i8, {4})); }, errc::invalid_argument,
                {"bits", "u8", "got i8"});
  require_error([&] { choose_bits(o, 0.5, 4, 2, tensor_view(bits.data(), dtype::u8, {2, 2})); }, errc::shape_mismatch,
                {"bits", "[4]", "[2, 2]"});
  out[1] = NAN;
  require_error([&] { choose_bits(o, 0.5, 4, 2, b); }, errc::invalid_argument, {"NaN", "row 0 token 1"});
}

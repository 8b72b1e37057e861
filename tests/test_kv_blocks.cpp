// ggml block formats: blocks computed by hand from the formulas for every format
// and edge case, round-trip error bounds, identical bytes and float bits on every
// backend and CPU target, and every bad-input error.
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/kv/blocks.hpp>
#include <cinch/ref/ggml.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "../src/kv/block_kernels.hpp"  // the kernel table decode attention uses
#include "cpu_targets.hpp"
#include "error_matchers.hpp"

using cinch::dtype;
using cinch::tensor_view;
using bytes = std::vector<std::uint8_t>;

// Failed byte comparisons print as hex.
namespace Catch {
template <>
struct StringMaker<bytes> {
  static std::string convert(const bytes& b) {
    static const char digits[] = "0123456789ABCDEF";
    std::string out;
    for (std::size_t i = 0; i < b.size() && i < 96; ++i) {
      out += digits[b[i] >> 4];
      out += digits[b[i] & 15];
      out += ' ';
    }
    return b.size() > 96 ? out + "... (" + std::to_string(b.size()) + " bytes)" : out;
  }
};
}  // namespace Catch

namespace {

constexpr dtype formats[] = {dtype::q8_0, dtype::q4_0, dtype::q4_1, dtype::q5_0, dtype::q5_1, dtype::iq4_nl};
const float nan_value = std::numeric_limits<float>::quiet_NaN();  // bits 0x7FC00000
const float inf = std::numeric_limits<float>::infinity();

std::int64_t block_bytes(dtype f) { return cinch::info(f).block_bytes; }

// One row of values through the public operation.
bytes quantize(dtype f, const std::vector<float>& x) {
  const auto n = static_cast<std::int64_t>(x.size());
  bytes out(static_cast<std::size_t>(n / 32 * block_bytes(f)), 0xAA);
  cinch::kv::quantize_blocks(tensor_view(x.data(), dtype::f32, {n}), tensor_view(out.data(), f, {n}));
  return out;
}

std::vector<float> dequantize(dtype f, const bytes& b) {
  const std::int64_t n = std::int64_t(b.size()) / block_bytes(f) * 32;
  std::vector<float> y(static_cast<std::size_t>(n));
  cinch::kv::dequantize_blocks(tensor_view(b.data(), f, {n}), tensor_view(y.data(), dtype::f32, {n}));
  return y;
}

// Header bytes followed by code bytes.
bytes concat(std::initializer_list<int> head, std::vector<std::uint8_t> tail) {
  bytes out;
  for (int b : head) out.push_back(std::uint8_t(b));
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}
std::vector<std::uint8_t> repeat(int byte, int count) { return std::vector<std::uint8_t>(static_cast<std::size_t>(count), std::uint8_t(byte)); }
std::vector<float> with_zeros(std::vector<float> head) {
  head.resize(32, 0.0f);
  return head;
}

float f16_at(const bytes& b, std::size_t offset) { return cinch::ref::f16_to_f32(std::uint16_t(b[offset] | b[offset + 1] << 8)); }

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// Runs check() with the simd backend on every compiled CPU target, then with ref.
template <class Check>
void on_every_backend(Check check) {
  for_each_cpu_target(check);
  cinch::force_backend(cinch::backend_kind::ref);
  check(std::string("ref"));
  cinch::force_backend(std::nullopt);
}

}  // namespace

// ------------------------------------------------------------------ hand-computed blocks

TEST_CASE("q8_0: d = amax/127 and codes round half away from zero", "[kv][blocks]") {
  // amax 127: d = 1 (f16 0x3C00), id = 1, so the codes are roundf(x) themselves.
  const std::vector<float> x = with_zeros({127, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, -126.5f, 0.49999997f, 3.4f, -3.6f});
  on_every_backend([&](const std::string& backend) {
    INFO(backend);
    // 0.5 -> 1, -0.5 -> -1, 2.5 -> 3, -2.5 -> -3, -126.5 -> -127 (half-even would give 0, -0, 2, -2, -126).
    CHECK(quantize(dtype::q8_0, x) ==
          concat({0x00, 0x3C, 0x7F, 0x01, 0xFF, 0x02, 0x03, 0xFD, 0x81, 0x00, 0x03, 0xFC}, repeat(0, 22)));
  });
}

TEST_CASE("q8_0: codes use the f32 scale and values the f16 scale", "[kv][blocks]") {
  // amax 1: d = 1/127 in f32; id = 1/d rounds to exactly 127. Stored d = f16(1/127):
  // 2^-7 * (1 + 8/1024) = 0x2008 = 0.00787353515625.
  const std::vector<float> x = with_zeros({1.0f, 0.5f, -0.25f, -1.0f});
  const bytes b = quantize(dtype::q8_0, x);
  CHECK(b == concat({0x08, 0x20, 0x7F, 0x40, 0xE0, 0x81}, repeat(0, 28)));  // 127, 64 (63.5 up), -32, -127
  const std::vector<float> y = dequantize(dtype::q8_0, b);
  CHECK(y[0] == 127 * 0.00787353515625f);  // 0.99993896..., not 1
  CHECK(y[1] == 0.50390625f);
  CHECK(y[2] == -0.251953125f);
  CHECK(y[3] == -127 * 0.00787353515625f);
}

// q4_0 with M = 8 first (index 0) and -8 second: the first wins, d = 8/-8 = -1, id = -1,
// code = min(15, trunc(-x + 8.5)). -M gives 16.5 -> 15.
const std::vector<float> q4_0_x = {8,  -8, 0, 1, -1, 0.5f, -0.5f, 2.4f, -7.6f, 7.9f,  3.5f, -3.5f, 6, -6, 7.5f, -7.4f,
                                   -0.0f, 4, -4, 5.25f, -5.75f, 1.99f, 0.01f, -0.01f, 2, -2, 3, -3, 7, -7, 0.25f, -0.25f};
// codes 0..15:  0 15 8 7 9 8 9 6 15 0 5 12 2 14 1 15;  16..31: 8 4 12 3 14 6 8 8 6 10 5 11 1 15 8 8
const std::vector<std::uint8_t> q4_0_qs = {0x80, 0x4F, 0xC8, 0x37, 0xE9, 0x68, 0x89, 0x86,
                                           0x6F, 0xA0, 0x55, 0xBC, 0x12, 0xFE, 0x81, 0x8F};

TEST_CASE("q4_0: d = M/-8 is negative for M > 0 and the first index wins ties and -M clamps to 15", "[kv][blocks]") {
  std::vector<float> negated(q4_0_x);
  for (float& v : negated) v = -v;
  on_every_backend([&](const std::string& backend) {
    INFO(backend);
    CHECK(quantize(dtype::q4_0, q4_0_x) == concat({0x00, 0xBC}, q4_0_qs));  // d = -1
    // Negated block: M = -8 (index 0 again), d = +1 and the codes are the same.
    CHECK(quantize(dtype::q4_0, negated) == concat({0x00, 0x3C}, q4_0_qs));
  });
  const std::vector<float> y = dequantize(dtype::q4_0, concat({0x00, 0xBC}, q4_0_qs));
  CHECK(y[0] == 8.0f);   // (0 - 8) * -1: M itself is exact
  CHECK(y[1] == -7.0f);  // (15 - 8) * -1: the clamped -M is off by |d|
  CHECK(y[7] == 2.0f);
}

TEST_CASE("q4_1: d = (max - min)/15 and m = min", "[kv][blocks]") {
  // min -1, max 14: d = 1, m = -1 (f16 0xBC00), code = trunc(x + 1 + 0.5) (dyadic values: exact).
  const std::vector<float> x = {-1, 14,     0,  0.5f, 3.25f, 6.5f,   6.375f, 13.375f, 13.625f, -0.625f, 2,    9.875f, 1.5f, 7, 11.5f, 12.25f,
                                5,  -0.5f, 10.5f, 4.75f, 8.375f, 3, 0.125f, 12.875f, 1,       2.5f,    6,    9.5f,   11,   4, 7.5f,  13};
  // codes 0..15: 0 15 1 2 4 8 7 14 15 0 3 11 3 8 13 13;  16..31: 6 1 12 6 9 4 1 14 2 4 7 11 12 5 9 14
  const bytes expected = concat({0x00, 0x3C, 0x00, 0xBC}, {0x60, 0x1F, 0xC1, 0x62, 0x94, 0x48, 0x17, 0xEE, 0x2F, 0x40,
                                                           0x73, 0xBB, 0xC3, 0x58, 0x9D, 0xED});
  on_every_backend([&](const std::string& backend) {
    INFO(backend);
    CHECK(quantize(dtype::q4_1, x) == expected);
  });
  const std::vector<float> y = dequantize(dtype::q4_1, expected);
  CHECK(y[1] == 14.0f);  // 15 * 1 - 1
  CHECK(y[4] == 3.0f);   // 4 * 1 - 1
}

TEST_CASE("q5_0: d = M/-16 and qh holds bit 4 of each code", "[kv][blocks]") {
  // M = -16 (index 0, tied with +16 at index 1): d = 1, code = min(31, trunc(x + 16.5)).
  const std::vector<float> x = {-16, 16, 0, 15.5f, 15.75f, -0.5f, 3, -3, 0.375f, -15.5f, 7.5f, -7.75f, 12, -12, 1, -1,
                                8,   -8, 4.25f, -4.25f, 14, -14, 0.75f, -0.625f, 10.5f, -10.5f, 2, -2, 5.5f, -5.5f, 6, -6};
  // codes 0..15: 0 31 16 31 31 16 19 13 16 1 24 8 28 4 17 15;  16..31: 24 8 20 12 30 2 17 15 27 6 18 14 22 11 22 10
  const bytes expected = concat({0x00, 0x3C, 0x7E, 0x55, 0x55, 0x55}, {0x80, 0x8F, 0x40, 0xCF, 0xEF, 0x20, 0x13, 0xFD,
                                                                       0xB0, 0x61, 0x28, 0xE8, 0x6C, 0xB4, 0x61, 0xAF});
  on_every_backend([&](const std::string& backend) {
    INFO(backend);
    CHECK(quantize(dtype::q5_0, x) == expected);
  });
  const std::vector<float> y = dequantize(dtype::q5_0, expected);
  CHECK(y[0] == -16.0f);
  CHECK(y[1] == 15.0f);  // the clamped -M
  CHECK(y[6] == 3.0f);
}

TEST_CASE("q5_1: d = (max - min)/31 and m = min with qh", "[kv][blocks]") {
  // min 0.5, max 31.5: d = 1, m = 0.5 (f16 0x3800), code = trunc(x - 0.5 + 0.5) = trunc(x).
  const std::vector<float> x = {0.5f, 31.5f, 16, 15.75f, 1, 2.5f, 30.25f, 8.5f, 17, 23.875f, 4,  12.5f, 31,    19.5f, 0.75f, 27,
                                5.5f, 10,    16.5f, 13.25f, 20, 29.5f, 3, 25.75f, 7, 14,      22.5f, 11, 18.75f, 6.25f, 24, 9};
  // codes 0..15: 0 31 16 15 1 2 30 8 17 23 4 12 31 19 0 27;  16..31: 5 10 16 13 20 29 3 25 7 14 22 11 18 6 24 9
  const bytes expected =
      concat({0x00, 0x3C, 0x00, 0x38, 0x46, 0xB3, 0xB4, 0x54},
             {0x50, 0xAF, 0x00, 0xDF, 0x41, 0xD2, 0x3E, 0x98, 0x71, 0xE7, 0x64, 0xBC, 0x2F, 0x63, 0x80, 0x9B});
  on_every_backend([&](const std::string& backend) {
    INFO(backend);
    CHECK(quantize(dtype::q5_1, x) == expected);
  });
  const std::vector<float> y = dequantize(dtype::q5_1, expected);
  CHECK(y[1] == 31.5f);
  CHECK(y[14] == 0.5f);
}

TEST_CASE("iq4_nl: nearest codebook entry then a weighted least-squares refit", "[kv][blocks]") {
  // M = 127: d0 = 127 / -127 = -1, id = -1. 127 -> T[0] = -127; 60 -> -60, nearer -65 (index 3)
  // than -49; zeros -> -0, nearer 1 (index 8) than -10. Weights x^2 (zeros weigh nothing):
  //   sumqx = 127^2*-127*127 + 60^2*-65*60 = -260144640 (rounded) - 14040000 = -274184640
  //   sumq2 = 127^2*-127*-127 + 60^2*-65*-65 = 260144640 + 15210000 = 275354640 -> 275354624 (f32, ties even)
  //   d = -0.9957510 -> f16 -2039/2048 = 0xBBF7; the codes stay those of d0.
  const bytes expected = concat({0xF7, 0xBB, 0x80, 0x83}, repeat(0x88, 14));
  on_every_backend([&](const std::string& backend) {
    INFO(backend);
    CHECK(quantize(dtype::iq4_nl, with_zeros({127, 60})) == expected);
  });
  const std::vector<float> y = dequantize(dtype::iq4_nl, expected);
  CHECK(y[0] == -127 * -0.99560546875f);
  CHECK(y[1] == -65 * -0.99560546875f);
  CHECK(y[2] == -0.99560546875f);

  // The codebook search: clamped ends, exact midpoints go to the higher index.
  CHECK(cinch::ref::iq4_nl_nearest(-200.0f) == 0);
  CHECK(cinch::ref::iq4_nl_nearest(-115.5f) == 1);  // midpoint of -127 and -104
  CHECK(cinch::ref::iq4_nl_nearest(-115.6f) == 0);
  CHECK(cinch::ref::iq4_nl_nearest(-4.5f) == 8);  // midpoint of -10 and 1
  CHECK(cinch::ref::iq4_nl_nearest(-4.6f) == 7);
  CHECK(cinch::ref::iq4_nl_nearest(7.0f) == 9);  // midpoint of 1 and 13
  CHECK(cinch::ref::iq4_nl_nearest(100.99f) == 14);
  CHECK(cinch::ref::iq4_nl_nearest(101.0f) == 15);
  CHECK(cinch::ref::iq4_nl_nearest(1e9f) == 15);
  CHECK(cinch::ref::iq4_nl_nearest(nan_value) == 15);
}

TEST_CASE("all-zero and constant blocks", "[kv][blocks]") {
  const std::vector<float> zeros(32, 0.0f), negative_zeros(32, -0.0f), threes(32, 3.0f);
  on_every_backend([&](const std::string& backend) {
    INFO(backend);
    for (const auto& z : {zeros, negative_zeros}) {
      CHECK(quantize(dtype::q8_0, z) == concat({0x00, 0x00}, repeat(0, 32)));  // +0 (amax = fabsf)
      CHECK(quantize(dtype::q4_0, z) == concat({0x00, 0x80}, repeat(0x88, 16)));  // d = 0/-8 = -0.0, codes 8
      CHECK(quantize(dtype::q5_0, z) == concat({0x00, 0x80, 0xFF, 0xFF, 0xFF, 0xFF}, repeat(0, 16)));  // codes 16
      CHECK(quantize(dtype::q4_1, z) == concat({0x00, 0x00, 0x00, z[0] == 0 && std::signbit(z[0]) ? 0x80 : 0x00}, repeat(0, 16)));
      CHECK(quantize(dtype::iq4_nl, z) == concat({0x00, 0x00}, repeat(0, 16)));
    }
    // Constant block: d = 0, m = the constant (f16 3.0 = 0x4200), codes 0.
    CHECK(quantize(dtype::q4_1, threes) == concat({0x00, 0x00, 0x00, 0x42}, repeat(0, 16)));
    CHECK(quantize(dtype::q5_1, threes) == concat({0x00, 0x00, 0x00, 0x42}, repeat(0, 20)));
    CHECK(dequantize(dtype::q5_1, quantize(dtype::q5_1, threes)) == threes);
  });
}

TEST_CASE("NaN and inf inputs follow the documented rules", "[kv][blocks]") {
  on_every_backend([&](const std::string& backend) {
    INFO(backend);
    // q4_0: NaN never wins amax, so M = 2, d = -0.25 (0xB400), id = -4; the NaN gets code 0,
    // which reads back as M (what x86 builds of ggml do too). -1 -> 12.5 -> 12.
    const bytes a = quantize(dtype::q4_0, with_zeros({2, nan_value, -1}));
    CHECK(a == concat({0x00, 0xB4, 0x80, 0x80, 0x8C}, repeat(0x88, 13)));
    CHECK(dequantize(dtype::q4_0, a)[1] == 2.0f);

    // q8_0's running max MAX(amax, |x|) is reset by a NaN: amax = 0.5 from the values after it,
    // d = 0.5/127 (f16 0x1C08); 1 * 254 saturates to 127 (ggml's int8 conversion would wrap).
    CHECK(quantize(dtype::q8_0, with_zeros({1, nan_value, 0.5f})) == concat({0x08, 0x1C, 0x7F, 0x00, 0x7F}, repeat(0, 29)));
    // A NaN last leaves amax = NaN: d = NaN (f16 0x7E00), every code 0, every value NaN.
    std::vector<float> last = with_zeros({1});
    last[31] = nan_value;
    const bytes b = quantize(dtype::q8_0, last);
    CHECK(b == concat({0x00, 0x7E}, repeat(0, 32)));
    for (float v : dequantize(dtype::q8_0, b)) CHECK(std::isnan(v));

    // +inf: M = inf, d = -inf (0xFC00), id = -0; inf * -0 = NaN -> code 0, finite x -> -0 + 8.5 -> 8.
    // Reading back: (0 - 8) * -inf = +inf, 0 * -inf = NaN elsewhere.
    const bytes c = quantize(dtype::q4_0, with_zeros({inf, 1}));
    CHECK(c == concat({0x00, 0xFC, 0x80}, repeat(0x88, 15)));
    const std::vector<float> yc = dequantize(dtype::q4_0, c);
    CHECK(yc[0] == inf);
    for (int j = 1; j < 32; ++j) CHECK(std::isnan(yc[std::size_t(j)]));

    // Every format: a block holding -inf or NaN reads back with no finite value but what
    // the rules above allow; the other blocks of the row are untouched.
    for (dtype f : formats) {
      INFO(cinch::to_string(f));
      std::vector<float> row(64, 1.5f);
      row[3] = -inf;
      row[40] = 0.25f;
      const std::vector<float> y = dequantize(f, quantize(f, row));
      for (int j = 0; j < 32; ++j) CHECK(!std::isfinite(y[std::size_t(j)]));
      CHECK(std::isfinite(y[40]));
    }
  });
}

TEST_CASE("scales beyond the f16 range and tiny blocks", "[kv][blocks]") {
  on_every_backend([&](const std::string& backend) {
    INFO(backend);
    // d = 1e7/127 > 65504: stored as +inf (0x7C00); codes from the f32 d: 127 and -4e6*127/1e7 = -50.8 -> -51.
    const bytes a = quantize(dtype::q8_0, with_zeros({1e7f, -4e6f}));
    CHECK(a == concat({0x00, 0x7C, 0x7F, 0xCD}, repeat(0, 30)));
    const std::vector<float> ya = dequantize(dtype::q8_0, a);
    CHECK(ya[0] == inf);
    CHECK(ya[1] == -inf);
    CHECK(std::isnan(ya[2]));  // 0 * inf

    // q4_1 with min = -1e5: m = f16(-1e5) = -inf, every value -inf.
    std::vector<float> far(32, -99000.0f);
    far[0] = -1e5f;
    for (float v : dequantize(dtype::q4_1, quantize(dtype::q4_1, far))) CHECK(v == -inf);

    // amax 1e-38: d = -1.25e-39, 1/d overflows to -inf. Codes: -inf + 8.5 -> 0, +inf -> 15,
    // 0 * -inf = NaN -> 0; d is stored as -0 and the block reads back as zeros.
    const bytes t = quantize(dtype::q4_0, with_zeros({1e-38f, -1e-38f}));
    CHECK(t == concat({0x00, 0x80, 0x00, 0x0F}, repeat(0, 14)));
    for (dtype f : formats) {
      INFO(cinch::to_string(f));
      for (float v : dequantize(f, quantize(f, with_zeros({1e-38f, -3e-39f, 2e-45f})))) CHECK(v == 0.0f);
    }
  });
}

TEST_CASE("dot and axpy on packed blocks", "[kv][blocks]") {
  namespace kd = cinch::kv::detail;
  const bytes q4_0 = concat({0x00, 0xBC}, q4_0_qs);  // d = -1, codes summing to 253
  const std::vector<float> ones(32, 1.0f);
  on_every_backend([&](const std::string& backend) {
    INFO(backend);
    const kd::block_kernels& k = kd::active_block_kernels();
    const int f = kd::block_format_index(dtype::q4_0);
    CHECK(k.dot[f](ones.data(), q4_0.data(), 32) == 3.0f);  // -1 * (253 - 32 * 8)
    std::vector<float> y(32, 0.5f);
    k.axpy[f](2.0f, q4_0.data(), y.data(), 32);
    const std::vector<float> values = dequantize(dtype::q4_0, q4_0);
    for (int j = 0; j < 32; ++j) CHECK(y[std::size_t(j)] == 0.5f + 2.0f * values[std::size_t(j)]);
    // q4_1: d * sum(c) + m * sum(q) = 1 * 234 - 1 * 32 (the hand-computed q4_1 block).
    const bytes q4_1 = quantize(dtype::q4_1, {-1, 14, 0, 0.5f, 3.25f, 6.5f, 6.375f, 13.375f, 13.625f, -0.625f, 2, 9.875f,
                                               1.5f, 7, 11.5f, 12.25f, 5, -0.5f, 10.5f, 4.75f, 8.375f, 3, 0.125f, 12.875f,
                                               1, 2.5f, 6, 9.5f, 11, 4, 7.5f, 13});
    CHECK(k.dot[kd::block_format_index(dtype::q4_1)](ones.data(), q4_1.data(), 32) == 202.0f);
  });
}

// ------------------------------------------------------------------ properties

namespace {

// count blocks of varied scale (2^-20 .. 2^20): values on a grid with exact ties
// for the formats' rounding, +a/-a ties, outliers, zero, constant, tiny and
// non-finite blocks, and minima of ±0. finite_only: no inf or NaN, and scales
// up to 2^4 only, so that every f16 d and m is finite.
std::vector<float> random_blocks(std::int64_t count, unsigned seed, bool finite_only = false) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> grid(-30, 30), kind(0, 15);
  std::vector<float> x(static_cast<std::size_t>(count * 32));
  for (std::int64_t b = 0; b < count; ++b) {
    float* v = x.data() + b * 32;
    const float s = std::ldexp(1.0f, int(b % (finite_only ? 25 : 41)) - 20);
    const int k = kind(rng);
    const int p = int(b % 32), p2 = int((b + 9) % 32);
    for (int j = 0; j < 32; ++j) v[j] = k < 6 ? 0.25f * float(grid(rng)) * s : normal(rng) * s;
    switch (k) {
      case 0: v[p] = 127 * s; break;                        // q8_0: id = 1/s, codes on .5 ties
      case 1: v[p] = 8 * s; break;                          // q4_0: d = -s, x*id + 8.5 on integers
      case 2: v[p] = -16 * s; break;                        // q5_0: d = s
      case 3: v[p] = 7.5f * s, v[p2] = -7.5f * s; break;    // q4_1: d = s; and a +a/-a tie
      case 6: v[p] *= finite_only ? 100.0f : 1000.0f; break;  // an outlier
      case 7: v[p] = 100 * s, v[p2] = -100 * s; break;      // +a and -a: the first one is M
      case 8: std::fill(v, v + 32, 0.0f); break;
      case 9: std::fill(v, v + 32, 0.25f * float(grid(rng)) * s); break;
      case 10:                                              // the minimum is +0 and -0
        for (int j = 0; j < 32; ++j) v[j] = std::fabs(v[j]);
        v[p] = 0.0f, v[p2] = -0.0f;
        break;
      case 11:
        for (int j = 0; j < 32; ++j) v[j] *= 1e-31f;        // below the fast path's range
        break;
      case 12:
        if (!finite_only) v[p] = b % 3 == 0 ? nan_value : (b % 3 == 1 ? inf : -inf);
        break;
      default: break;
    }
  }
  return x;
}

// Expected bytes of a [rows, cols] row-major matrix, by the reference table.
bytes reference_blocks(dtype f, const void* x, bool f16, std::int64_t rows, std::int64_t cols) {
  namespace kd = cinch::kv::detail;
  const kd::block_kernels& k = kd::ref_block_kernels();
  const int i = kd::block_format_index(f);
  bytes out(static_cast<std::size_t>(rows * cols / 32 * block_bytes(f)));
  for (std::int64_t r = 0; r < rows; ++r) {
    const void* row = static_cast<const std::byte*>(x) + r * cols * (f16 ? 2 : 4);
    (f16 ? k.quantize_f16[i] : k.quantize_f32[i])(row, out.data() + r * cols / 32 * block_bytes(f), cols);
  }
  return out;
}

}  // namespace

// Code j of a block, read with the layouts of the format table in cinch/ref/ggml.hpp.
int code_at(dtype f, const std::uint8_t* blk, int j) {
  if (f == dtype::q8_0) return std::int8_t(blk[2 + j]);
  const int qs = f == dtype::q4_1 ? 4 : f == dtype::q5_0 ? 6 : f == dtype::q5_1 ? 8 : 2;
  const int nibble = j < 16 ? blk[qs + j] & 15 : blk[qs + j - 16] >> 4;
  if (f != dtype::q5_0 && f != dtype::q5_1) return nibble;
  const std::uint32_t qh = blk[qs - 4] | blk[qs - 3] << 8 | blk[qs - 2] << 16 | std::uint32_t(blk[qs - 1]) << 24;
  return nibble | int((qh >> j) & 1) << 4;
}

TEST_CASE("dequantized values are within each format's error bound", "[kv][blocks]") {
  // |x - level*d16| <= |x - level*d| + |level| |d - d16|, where the first term is half a
  // step (a whole step for the clamped -M of q4_0/q5_0; for iq4_nl, with d = d0 = M/-127,
  // half the widest codebook gap, 12, or 127 - 113 = 14 at the top end), d being the f32
  // scale of the formula; q4_1/q5_1 add the rounding of m.
  const std::int64_t count = 4100;
  const std::vector<float> x = random_blocks(count, 3, true);
  for (dtype f : formats) {
    INFO(cinch::to_string(f));
    const bytes b = quantize(f, x);
    const std::vector<float> y = dequantize(f, b);
    for (std::int64_t i = 0; i < count; ++i) {
      const float* xb = x.data() + i * 32;
      const std::uint8_t* blk = b.data() + i * block_bytes(f);
      double amax = 0, lo = xb[0], hi = xb[0], m_signed = 0;
      for (int j = 0; j < 32; ++j) {
        if (std::fabs(xb[j]) > amax) amax = std::fabs(xb[j]), m_signed = xb[j];
        lo = std::min<double>(lo, xb[j]);
        hi = std::max<double>(hi, xb[j]);
      }
      const double d16 = f16_at(b, std::size_t(i * block_bytes(f)));
      for (int j = 0; j < 32; ++j) {
        const int c = code_at(f, blk, j);
        double bound = 0;
        if (f == dtype::q8_0) {
          const double d = amax / 127;
          bound = 0.5 * d + std::abs(c) * std::fabs(d - d16);
        } else if (f == dtype::q4_0 || f == dtype::q5_0) {
          const int half = f == dtype::q4_0 ? 8 : 16;
          const double d = m_signed / -half;
          bound = (c == 2 * half - 1 ? 1.0 : 0.5) * std::fabs(d) + std::abs(c - half) * std::fabs(d - d16);
        } else if (f == dtype::q4_1 || f == dtype::q5_1) {
          const int top = f == dtype::q4_1 ? 15 : 31;
          const double d = (hi - lo) / top, m16 = f16_at(b, std::size_t(i * block_bytes(f) + 2));
          bound = 0.5 * d + c * std::fabs(d - d16) + std::fabs(lo - m16);
        } else {
          const double d0 = m_signed / -127;
          bound = 14 * std::fabs(d0) + std::fabs(cinch::ref::iq4_nl_value(c)) * std::fabs(d16 - d0);
        }
        REQUIRE(std::fabs(double(xb[j]) - y[std::size_t(i * 32 + j)]) <= bound + 1e-6 * (amax + std::fabs(lo)));
      }
    }
  }
}

TEST_CASE("more bits give less error and the non-linear codebook beats q4_0", "[kv][blocks]") {
  std::mt19937 rng(17);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(32 * 2000);
  for (float& v : x) v = normal(rng);
  double err[6] = {};
  for (std::size_t i = 0; i < 6; ++i) {
    const std::vector<float> y = dequantize(formats[i], quantize(formats[i], x));
    for (std::size_t j = 0; j < x.size(); ++j) err[i] += (x[j] - y[j]) * double(x[j] - y[j]);
  }
  // q8_0 < q5_1 < q5_0 < q4_1 < q4_0, and iq4_nl < q4_0.
  CHECK(err[0] < err[4]);
  CHECK(err[4] < err[3]);
  CHECK(err[3] < err[2]);
  CHECK(err[2] < err[1]);
  CHECK(err[5] < err[1]);
}

TEST_CASE("bytes and values are identical on every backend and CPU target", "[kv][blocks][agreement]") {
  for (const std::int64_t cols : {32, 96, 160, 544, 1056}) {  // 1, 3, 5, 17 and 33 blocks: partial groups
    const std::int64_t rows = 13;
    const std::vector<float> x = random_blocks(rows * cols / 32, unsigned(cols));
    std::vector<cinch::f16_bits> x16(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) x16[i].bits = cinch::ref::f32_to_f16(x[i]);
    for (dtype f : formats) {
      const bytes expect = reference_blocks(f, x.data(), false, rows, cols);
      const bytes expect16 = reference_blocks(f, x16.data(), true, rows, cols);
      std::vector<float> expect_y(x.size());
      std::vector<cinch::f16_bits> expect_y16(x.size());
      for (std::int64_t i = 0; i < rows * cols / 32; ++i) {
        const std::uint8_t* blk = expect.data() + i * block_bytes(f);
        cinch::kv::detail::ref_block_kernels().dequantize_f32[cinch::kv::detail::block_format_index(f)](blk, expect_y.data() + i * 32, 32);
        cinch::kv::detail::ref_block_kernels().dequantize_f16[cinch::kv::detail::block_format_index(f)](blk, expect_y16.data() + i * 32, 32);
      }
      on_every_backend([&](const std::string& backend) {
        INFO(backend << ", " << cinch::to_string(f) << ", cols " << cols);
        bytes b(expect.size()), b16(expect.size());
        cinch::kv::quantize_blocks(tensor_view(x.data(), dtype::f32, {rows, cols}), tensor_view(b.data(), f, {rows, cols}));
        cinch::kv::quantize_blocks(tensor_view(x16.data(), dtype::f16, {rows, cols}), tensor_view(b16.data(), f, {rows, cols}));
        REQUIRE(b == expect);
        REQUIRE(b16 == expect16);
        std::vector<float> y(x.size());
        std::vector<cinch::f16_bits> y16(x.size());
        cinch::kv::dequantize_blocks(tensor_view(b.data(), f, {rows, cols}), tensor_view(y.data(), dtype::f32, {rows, cols}));
        cinch::kv::dequantize_blocks(tensor_view(b.data(), f, {rows, cols}), tensor_view(y16.data(), dtype::f16, {rows, cols}));
        REQUIRE(std::memcmp(y.data(), expect_y.data(), y.size() * sizeof(float)) == 0);
        REQUIRE(std::memcmp(y16.data(), expect_y16.data(), y16.size() * 2) == 0);
      });
    }
  }
}

TEST_CASE("dot and axpy give the reference's bits on every CPU target", "[kv][blocks][agreement]") {
  namespace kd = cinch::kv::detail;
  const std::int64_t n = 32 * 37;
  const std::vector<float> x = random_blocks(n / 32, 11, true);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> q(static_cast<std::size_t>(n)), y0(static_cast<std::size_t>(n));
  for (float& v : q) v = normal(rng);
  for (float& v : y0) v = normal(rng);
  for (dtype f : formats) {
    const int i = kd::block_format_index(f);
    const bytes b = quantize(f, x);
    const float expect_dot = kd::ref_block_kernels().dot[i](q.data(), b.data(), n);
    std::vector<float> expect_y(y0);
    kd::ref_block_kernels().axpy[i](0.75f, b.data(), expect_y.data(), n);
    // The dot product is the sum of q_j * value_j up to rounding.
    const std::vector<float> values = dequantize(f, b);
    double exact = 0, magnitude = 0;
    for (std::int64_t j = 0; j < n; ++j) exact += double(q[std::size_t(j)]) * values[std::size_t(j)], magnitude += std::fabs(double(q[std::size_t(j)]) * values[std::size_t(j)]);
    CHECK(std::fabs(expect_dot - exact) <= 1e-5 * magnitude);
    for_each_cpu_target([&](const std::string& target) {
      INFO(target << ", " << cinch::to_string(f));
      CHECK(same_bits(kd::simd_block_kernels().dot[i](q.data(), b.data(), n), expect_dot));
      std::vector<float> y(y0);
      kd::simd_block_kernels().axpy[i](0.75f, b.data(), y.data(), n);
      CHECK(std::memcmp(y.data(), expect_y.data(), y.size() * sizeof(float)) == 0);
    });
  }
}

TEST_CASE("quantization follows strided and permuted layouts", "[kv][blocks]") {
  // Keys stored [tokens, heads, dim] quantized per head through a permuted view, into
  // blocks whose rows are padded (row stride dim + 64 values).
  const std::int64_t tokens = 9, heads = 3, dim = 96;
  const std::vector<float> keys = random_blocks(tokens * heads * dim / 32, 21);
  const tensor_view by_head = tensor_view(keys.data(), dtype::f32, {tokens, heads, dim}).permute({1, 0, 2});
  for (dtype f : formats) {
    const std::int64_t row_bytes = (dim + 64) / 32 * block_bytes(f);
    on_every_backend([&](const std::string& backend) {
      INFO(backend << ", " << cinch::to_string(f));
      bytes out(static_cast<std::size_t>(heads * tokens * row_bytes), 0xAA);
      const tensor_view blocks(out.data(), f, {heads, tokens, dim}, {tokens * (dim + 64), dim + 64, 1});
      cinch::kv::quantize_blocks(by_head, blocks);
      std::vector<float> back(keys.size(), -1.0f);
      const tensor_view back_by_head = tensor_view(back.data(), dtype::f32, {tokens, heads, dim}).permute({1, 0, 2});
      cinch::kv::dequantize_blocks(blocks, back_by_head);
      for (std::int64_t h = 0; h < heads; ++h)
        for (std::int64_t t = 0; t < tokens; ++t) {
          const float* row = keys.data() + (t * heads + h) * dim;
          const bytes expect = reference_blocks(f, row, false, 1, dim);
          const std::uint8_t* got = out.data() + (h * tokens + t) * row_bytes;
          REQUIRE(bytes(got, got + expect.size()) == expect);
          REQUIRE(got[expect.size()] == 0xAA);  // the padding is untouched
          std::vector<float> y(static_cast<std::size_t>(dim));
          cinch::kv::detail::ref_block_kernels().dequantize_f32[cinch::kv::detail::block_format_index(f)](expect.data(), y.data(), dim);
          REQUIRE(std::memcmp(back.data() + (t * heads + h) * dim, y.data(), y.size() * sizeof(float)) == 0);
        }
    });
  }
}

TEST_CASE("a long row is split over threads without changing a byte", "[kv][blocks]") {
  const std::int64_t n = 32 * 1251;  // several 16384-value chunks and a partial one
  const std::vector<float> x = random_blocks(n / 32, 8);
  const int previous = cinch::threads();
  for (dtype f : {dtype::q8_0, dtype::q4_0, dtype::q5_1}) {
    const bytes expect = reference_blocks(f, x.data(), false, 1, n);
    for (int threads : {1, 2, 3}) {
      cinch::set_threads(threads);
      INFO(threads << " threads, " << cinch::to_string(f));
      CHECK(quantize(f, x) == expect);
    }
  }
  cinch::set_threads(previous);
}

// ------------------------------------------------------------------ bad input

TEST_CASE("quantize_blocks and dequantize_blocks reject bad input", "[kv][blocks][errors]") {
  using cinch::errc;
  std::vector<float> x(256, 1.0f), y(256);
  bytes b(1024);
  const tensor_view x2(x.data(), dtype::f32, {2, 64});
  const tensor_view b2(b.data(), dtype::q4_0, {2, 64});
  const auto q = [](const tensor_view& in, const tensor_view& out) { cinch::kv::quantize_blocks(in, out); };
  const auto dq = [](const tensor_view& in, const tensor_view& out) { cinch::kv::dequantize_blocks(in, out); };

  require_error([&] { q(tensor_view(b.data(), dtype::i8, {2, 64}), b2); }, errc::invalid_argument,
                {"kv::quantize_blocks", "x must have dtype f32 or f16", "got i8"});
  require_error([&] { q(x2, tensor_view(b.data(), dtype::f16, {2, 64})); }, errc::invalid_argument,
                {"kv::quantize_blocks", "blocks must have a ggml block dtype", "got f16"});
  require_error([&] { q(x2, tensor_view(b.data(), dtype::u4x2, {2, 64})); }, errc::invalid_argument,
                {"ggml block dtype", "got u4x2"});
  require_error([&] { q(tensor_view(x.data(), dtype::f32, {4, 48}), tensor_view(b.data(), dtype::q8_0, {4, 64})); },
                errc::shape_mismatch, {"kv::quantize_blocks", "head dimension", "multiple of 32", "got 48", "[4, 48]"});
  require_error([&] { q(x2, tensor_view(b.data(), dtype::q4_0, {2, 96})); }, errc::shape_mismatch,
                {"blocks must have shape [2, 64]", "got [2, 96]"});
  require_error([&] { q(tensor_view(x.data(), dtype::f32, {}), tensor_view(b.data(), dtype::q4_0, {32})); },
                errc::shape_mismatch, {"x must have at least one dimension", "rank 0"});
  require_error([&] { q(tensor_view(x.data(), dtype::f32, {2, 64}, {128, 2}), b2); }, errc::unsupported,
                {"x must have a dense innermost dimension"});
  require_error([&] { q(x2, b2.as_read_only()); }, errc::invalid_argument, {"blocks must be writable"});
  require_error([&] { q(x2, tensor_view(b.data(), dtype::q4_0, {2, 64}, {0, 1})); }, errc::invalid_argument,
                {"blocks must not alias itself"});
  require_error([&] { q(x2, tensor_view(x.data() + 8, dtype::q4_0, {2, 64})); }, errc::invalid_argument,
                {"blocks must not overlap an input"});
  require_error([&] { q(x2, tensor_view(b.data(), dtype::q4_0, {2, 64}, cinch::cuda_device(0))); },
                errc::invalid_argument, {"kv::quantize_blocks", "blocks must be on cpu", "got cuda:0"});

  require_error([&] { dq(b2, tensor_view(y.data(), dtype::i32, {2, 64})); }, errc::invalid_argument,
                {"kv::dequantize_blocks", "y must have dtype f32 or f16", "got i32"});
  require_error([&] { dq(tensor_view(b.data(), dtype::i4x2, {2, 64}), tensor_view(y.data(), dtype::f32, {2, 64})); },
                errc::invalid_argument, {"kv::dequantize_blocks", "ggml block dtype", "got i4x2"});
  require_error([&] { dq(b2, tensor_view(y.data(), dtype::f32, {2, 40})); }, errc::shape_mismatch,
                {"y's innermost dimension", "multiple of 32", "got 40"});
  require_error([&] { dq(b2, tensor_view(y.data(), dtype::f32, {1, 128})); }, errc::shape_mismatch,
                {"blocks must have shape [1, 128]", "got [2, 64]"});
  require_error([&] { dq(b2, tensor_view(y.data(), dtype::f32, {2, 64}).as_read_only()); }, errc::invalid_argument,
                {"y must be writable"});
  require_error([&] { dq(b2, tensor_view(b.data() + 16, dtype::f32, {2, 64})); }, errc::invalid_argument,
                {"y must not overlap an input"});
  require_error([&] { dq(tensor_view(b.data(), dtype::q8_0, {2, 64}, cinch::cuda_device(0)), tensor_view(y.data(), dtype::f32, {2, 64})); },
                errc::invalid_argument, {"blocks must be on cpu", "got cuda:0"});

  // Both on a GPU that is not there: the backend check names the device.
  if (cinch::cuda_device_count() == 0) {
    const bool built = cinch::compiled_backends().back() == cinch::backend_kind::cuda;
    require_error([&] { q(tensor_view(x.data(), dtype::f32, {2, 64}, cinch::cuda_device(0)), tensor_view(b.data(), dtype::q4_0, {2, 64}, cinch::cuda_device(0))); },
                  built ? errc::invalid_argument : errc::unsupported, {"kv::quantize_blocks", "cuda:0"});
  }
  CHECK(cinch::kv::is_ggml_block(dtype::iq4_nl));
  CHECK_FALSE(cinch::kv::is_ggml_block(dtype::i4x2));
  // Nothing was written by the rejected calls.
  CHECK(std::all_of(y.begin(), y.end(), [](float v) { return v == 0.0f; }));
}

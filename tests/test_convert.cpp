// Float format conversions: the reference against an independent oracle
// (nearest representable value, ties to even, saturation), then every
// backend and Highway target against the reference, bit for bit.
#include <catch2/catch.hpp>

#include <cinch/cinch.hpp>
#include <cinch/ref/convert.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cpu_targets.hpp"

namespace ref = cinch::ref;
using cinch::dtype;
using cinch::tensor_view;

namespace {

struct format {
  const char* name;
  dtype type;
  std::uint32_t (*encode)(float);
  float (*decode)(std::uint32_t);
  std::uint32_t max_code;  // largest finite positive code
  bool saturates;          // fp8: beyond max -> max; f16/bf16: -> inf
};

const format formats[] = {
    {"f16", dtype::f16, [](float x) -> std::uint32_t { return ref::f32_to_f16(x); },
     [](std::uint32_t c) { return ref::f16_to_f32(std::uint16_t(c)); }, 0x7BFF, false},
    {"bf16", dtype::bf16, [](float x) -> std::uint32_t { return ref::f32_to_bf16(x); },
     [](std::uint32_t c) { return ref::bf16_to_f32(std::uint16_t(c)); }, 0x7F7F, false},
    {"f8_e4m3", dtype::f8_e4m3, [](float x) -> std::uint32_t { return ref::f32_to_e4m3(x); },
     [](std::uint32_t c) { return ref::e4m3_to_f32(std::uint8_t(c)); }, 0x7E, true},
    {"f8_e5m2", dtype::f8_e5m2, [](float x) -> std::uint32_t { return ref::f32_to_e5m2(x); },
     [](std::uint32_t c) { return ref::e5m2_to_f32(std::uint8_t(c)); }, 0x7B, true},
};

// Values that sit on every interesting boundary, then random bit patterns and
// random values spread over all exponents. Odd length, to reach the tails.
std::vector<float> probe_values() {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 1.0f + 0x1p-11f, 1.0f + 0x3p-11f, 1.0f + 0x1p-8f,
                          65504.0f, 65519.99f, 65520.0f, -65520.0f, 0x1p-24f, 0x1p-25f, 0x3p-25f, 0x1p-14f,
                          448.0f, 449.0f, 464.0f, 465.0f, -1e30f, 57344.0f, 61439.0f, 61440.0f, 0x1p-9f, 0x1p-10f,
                          0x3p-11f, 0x1p-16f, 0x1p-17f, 1e-40f, -1e-45f, 3.4e38f,
                          std::bit_cast<float>(0x7F800000u), std::bit_cast<float>(0xFF800000u),
                          std::bit_cast<float>(0x7FC00000u), std::bit_cast<float>(0xFFC00001u),
                          std::bit_cast<float>(0x7F800001u), std::bit_cast<float>(0x7FBFFFFFu),
                          std::bit_cast<float>(0x7F7FFFFFu), std::bit_cast<float>(0x3F807FFFu),
                          std::bit_cast<float>(0x3F808000u), std::bit_cast<float>(0x3F818000u)};
  std::mt19937 rng(42);
  std::uniform_int_distribution<std::uint32_t> bits;
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  std::uniform_int_distribution<int> exponent(-30, 17);
  for (int i = 0; i < 150000; ++i) v.push_back(std::bit_cast<float>(bits(rng)));
  for (int i = 0; i < 150001; ++i)
    v.push_back((i % 2 ? -1.0f : 1.0f) * std::ldexp(mantissa(rng), exponent(rng)));
  return v;
}

bool same_bits(float a, float b) { return std::bit_cast<std::uint32_t>(a) == std::bit_cast<std::uint32_t>(b); }

}  // namespace

TEST_CASE("reference conversions hit hand-computed codes", "[convert][ref]") {
  CHECK(ref::f32_to_f16(1.0f) == 0x3C00);
  CHECK(ref::f32_to_f16(65504.0f) == 0x7BFF);
  CHECK(ref::f32_to_f16(65519.0f) == 0x7BFF);
  CHECK(ref::f32_to_f16(65520.0f) == 0x7C00);       // the tie above the max rounds to inf
  CHECK(ref::f32_to_f16(0x1p-24f) == 0x0001);       // smallest subnormal
  CHECK(ref::f32_to_f16(0x1p-25f) == 0x0000);       // tie: to even (zero)
  CHECK(ref::f32_to_f16(0x3p-25f) == 0x0002);       // tie: to even (two)
  CHECK(ref::f32_to_f16(1.0f + 0x1p-11f) == 0x3C00);  // tie: to even
  CHECK(ref::f32_to_f16(1.0f + 0x3p-11f) == 0x3C02);
  CHECK(ref::f32_to_f16(-2.0f) == 0xC000);
  CHECK(ref::f32_to_f16(std::bit_cast<float>(0xFFC00000u)) == 0xFE00);  // NaN keeps its sign, quiet
  CHECK(ref::f32_to_bf16(1.0f) == 0x3F80);
  CHECK(ref::f32_to_bf16(std::bit_cast<float>(0x3F808000u)) == 0x3F80);  // tie to even
  CHECK(ref::f32_to_bf16(std::bit_cast<float>(0x3F818000u)) == 0x3F82);
  CHECK(ref::f32_to_bf16(std::bit_cast<float>(0x7F7FFFFFu)) == 0x7F80);  // overflows to inf
  CHECK(ref::f32_to_e4m3(448.0f) == 0x7E);
  CHECK(ref::f32_to_e4m3(1e9f) == 0x7E);            // saturates
  CHECK(ref::f32_to_e4m3(-INFINITY) == 0xFE);
  CHECK(ref::f32_to_e4m3(NAN) == 0x7F);
  CHECK(ref::f32_to_e4m3(0x1p-9f) == 0x01);         // smallest subnormal
  CHECK(ref::f32_to_e4m3(0x1p-10f) == 0x00);        // tie to even
  CHECK(ref::f32_to_e4m3(1.0f) == 0x38);
  CHECK(ref::f32_to_e5m2(57344.0f) == 0x7B);
  CHECK(ref::f32_to_e5m2(INFINITY) == 0x7B);        // saturates, no inf produced
  CHECK(ref::f32_to_e5m2(1.0f) == 0x3C);
  CHECK(ref::e5m2_to_f32(0x7C) == INFINITY);        // but inf codes still decode
  CHECK(std::isnan(ref::e4m3_to_f32(0xFF)));
  CHECK(ref::e4m3_to_f32(0x7E) == 448.0f);
  CHECK(ref::e4m3_to_f32(0x01) == 0x1p-9f);
}

TEST_CASE("every code decodes and encodes back to itself", "[convert][ref]") {
  for (const format& f : formats) {
    INFO(f.name);
    const std::uint32_t codes = f.type == dtype::f16 || f.type == dtype::bf16 ? 65536 : 256;
    const std::uint32_t sign = codes == 65536 ? 0x8000 : 0x80;
    for (std::uint32_t c = 0; c < codes; ++c) {
      const float x = f.decode(c);
      if (std::isnan(x)) {
        CHECK(std::isnan(f.decode(f.encode(x))));
        CHECK((f.encode(x) & sign) == (c & sign));
      } else if (!std::isinf(x) || !f.saturates) {
        REQUIRE(f.encode(x) == c);
      }
    }
  }
}

TEST_CASE("encoding picks the nearest value, ties to even, and saturates fp8", "[convert][ref]") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  for (const format& f : formats) {
    INFO(f.name);
    const float max_finite = f.decode(f.max_code);
    std::uniform_int_distribution<int> exponent(-28, int(std::log2(max_finite)) + 2);
    for (int i = 0; i < 200000; ++i) {
      const float x = std::ldexp(mantissa(rng), exponent(rng));
      const std::uint32_t c = f.encode(x);
      if (x > max_finite) {
        if (f.saturates) REQUIRE(c == f.max_code);
        if (!f.saturates && c != f.max_code) REQUIRE(std::isinf(f.decode(c)));
        continue;
      }
      const float v = f.decode(c);
      const double err = std::fabs(double(x) - double(v));
      // Neighbours of the chosen code must not be strictly nearer; on a tie the code is even.
      for (const std::uint32_t n : {c - 1, c + 1}) {
        if (c == 0 && n == c - 1) continue;
        if (n > f.max_code) continue;
        const double other = std::fabs(double(x) - double(f.decode(n)));
        INFO("x = " << x << " code " << c << " neighbour " << n);
        REQUIRE(err <= other);
        if (err == other) REQUIRE(c % 2 == 0);
      }
      REQUIRE(f.encode(-x) == (c | (f.max_code < 0x100 ? 0x80u : 0x8000u)));
    }
  }
}

TEST_CASE("SIMD conversions equal the reference on every CPU target", "[convert][agreement]") {
  const std::vector<float> x = probe_values();
  const auto n = static_cast<std::int64_t>(x.size());
  std::vector<std::uint8_t> narrow(x.size() * 2), expect(x.size() * 2);
  std::vector<float> wide(x.size()), wide_expect(x.size());
  for_each_cpu_target([&](const std::string&) {
    for (const format& f : formats) {
      INFO(f.name);
      const int bytes = int(cinch::info(f.type).block_bytes);
      cinch::convert(tensor_view(x.data(), dtype::f32, {n}), tensor_view(narrow.data(), f.type, {n}));
      for (std::int64_t i = 0; i < n; ++i) {
        const std::uint32_t got = bytes == 2 ? reinterpret_cast<std::uint16_t*>(narrow.data())[i] : narrow[i];
        INFO("x = " << x[i] << " bits " << std::bit_cast<std::uint32_t>(x[i]));
        REQUIRE(got == f.encode(x[i]));
      }
      // Decode every code, repeated to an odd length.
      const std::int64_t codes = bytes == 2 ? 65536 : 256;
      const std::int64_t m = codes * 3 + 5;
      std::vector<std::uint8_t> in(std::size_t(m) * bytes);
      for (std::int64_t i = 0; i < m; ++i) {
        if (bytes == 2) reinterpret_cast<std::uint16_t*>(in.data())[i] = std::uint16_t(i % codes);
        else in[std::size_t(i)] = std::uint8_t(i % codes);
      }
      std::vector<float> out(static_cast<std::size_t>(m));
      cinch::convert(tensor_view(in.data(), f.type, {m}), tensor_view(out.data(), dtype::f32, {m}));
      for (std::int64_t i = 0; i < m; ++i) {
        INFO("code " << (i % codes));
        REQUIRE(same_bits(out[std::size_t(i)], f.decode(std::uint32_t(i % codes))));
      }
    }
  });
}

TEST_CASE("convert follows strided outer dimensions, on both host backends", "[convert]") {
  // A [6, 40] window of a [8, 64] f32 buffer into every other row of a [12, 40] f16 buffer.
  std::vector<float> big(8 * 64);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 10.0f);
  for (float& v : big) v = normal(rng);
  const tensor_view src = tensor_view(big.data(), dtype::f32, {8, 64}).slice(0, 1, 7).slice(1, 5, 45);
  for (const auto backend : {cinch::backend_kind::ref, cinch::backend_kind::simd}) {
    cinch::force_backend(backend);
    std::vector<std::uint16_t> out(12 * 40, 0xFFFF);
    const tensor_view dst(out.data(), dtype::f16, {6, 40}, {80, 1});
    cinch::convert(src, dst);
    for (int r = 0; r < 6; ++r)
      for (int c = 0; c < 40; ++c) REQUIRE(out[std::size_t(r * 80 + c)] == ref::f32_to_f16(big[std::size_t((r + 1) * 64 + 5 + c)]));
    for (int c = 0; c < 40; ++c) REQUIRE(out[std::size_t(40 + c)] == 0xFFFF);  // gaps untouched
  }
  cinch::force_backend(std::nullopt);
}

TEST_CASE("f32 to f32 convert is a copy", "[convert]") {
  std::vector<float> a = {1.5f, -2.0f, NAN}, b(3);
  cinch::convert(tensor_view(a.data(), dtype::f32, {3}), tensor_view(b.data(), dtype::f32, {3}));
  CHECK(same_bits(a[0], b[0]));
  CHECK(same_bits(a[2], b[2]));
}

// kv::cache save/load: bit-exact round trips of every format (ragged heads,
// residual windows mid-slide, KIVI chunks, fp8 scales, rotation, mixed
// precision), appends that continue identically after a load, one-head streams,
// and every truncation, bit flip and inconsistent-but-checksummed stream rejected.
#include <catch2/catch.hpp>

#include <cinch/io/bytes.hpp>
#include <cinch/io/stream.hpp>
#include <cinch/kv/cache.hpp>

#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "error_matchers.hpp"
#include "random_data.hpp"

using cinch::dtype;
using cinch::errc;
using cinch::tensor_view;
using namespace cinch::kv;
namespace io = cinch::io;

namespace {

// Appends `tokens` random tokens to every head, a different count per head so
// heads are ragged, with every third token not salient in a mixed cache.
void fill(cache& c, int tokens, unsigned seed) {
  const int d = c.config().head_dim;
  for (int l = 0; l < c.config().layers; ++l)
    for (int h = 0; h < c.config().kv_heads; ++h) {
      const int n = tokens + 7 * h + 3 * l;
      const std::vector<float> k = random_values(std::size_t(n * d), seed + unsigned(l * 31 + h));
      const std::vector<float> v = random_values(k.size(), seed + 1000 + unsigned(l * 31 + h));
      std::vector<std::uint8_t> salient;
      if (c.parts() == 2)
        for (int t = 0; t < n; ++t) salient.push_back(t % 3 != 0);
      c.append(l, h, tensor_view(k.data(), dtype::f32, {n, d}), tensor_view(v.data(), dtype::f32, {n, d}), {},
               salient);
    }
}

void require_same_stream(const stream_view& a, const stream_view& b) {
  REQUIRE(a.fmt == b.fmt);
  REQUIRE(a.tokens == b.tokens);
  REQUIRE(a.packed_tokens == b.packed_tokens);
  REQUIRE(a.unit_bytes == b.unit_bytes);
  REQUIRE(std::memcmp(&a.scale, &b.scale, sizeof(float)) == 0);
  // Empty storage may be a null pointer, which memcmp must not see.
  const std::int64_t units = a.packed_tokens / a.unit_tokens;
  if (units > 0) REQUIRE(std::memcmp(a.packed, b.packed, std::size_t(units * a.unit_bytes)) == 0);
  const std::int64_t residual = (a.tokens - a.packed_tokens) * a.head_dim;
  if (residual > 0) REQUIRE(std::memcmp(a.residual, b.residual, std::size_t(residual) * sizeof(float)) == 0);
}

void require_same(const cache& a, const cache& b) {
  REQUIRE(a.config() == b.config());
  REQUIRE(a.low() == b.low());
  REQUIRE(a.bytes() == b.bytes());
  for (int l = 0; l < a.config().layers; ++l)
    for (int h = 0; h < a.config().kv_heads; ++h)
      for (int p = 0; p < a.parts(); ++p) {
        const head_view x = a.view(l, h, p), y = b.view(l, h, p);
        REQUIRE(x.tokens == y.tokens);
        REQUIRE(std::equal(x.positions, x.positions + x.tokens, y.positions));
        require_same_stream(x.keys, y.keys);
        require_same_stream(x.values, y.values);
      }
}

std::vector<std::byte> saved(const cache& c) {
  std::vector<std::byte> out;
  c.save(out);
  return out;
}

struct named_config {
  const char* name;
  cache_config config;
  std::optional<mixed_precision> low;
};

std::vector<named_config> configs() {
  const auto kivi4 = format::kivi(4, 32, 64), kivi2 = format::kivi(2, 16, 32);
  std::vector<named_config> out;
  for (scheme s : {scheme::f32, scheme::f16, scheme::bf16, scheme::int8, scheme::q8_0, scheme::q4_0, scheme::q4_1,
                   scheme::q5_0, scheme::q5_1, scheme::iq4_nl})
    out.push_back({"per-token", {2, 3, 64, format{s, 32, 16}, format{s}}, std::nullopt});
  out.push_back({"fp8 calibrated", {2, 2, 32, format{scheme::fp8_e4m3}, format{scheme::fp8_e5m2}}, std::nullopt});
  out.push_back({"KIVI", {1, 3, 64, kivi4, kivi2}, std::nullopt});
  out.push_back({"rotated", {1, 2, 32, format{scheme::q8_0, 32, 8, true}, format{scheme::int8, 32, 0, true}},
                 std::nullopt});
  out.push_back({"mixed", {2, 2, 32, kivi4, format{scheme::f16}}, mixed_precision{kivi2, format{scheme::int8}}});
  return out;
}

}  // namespace

TEST_CASE("a saved cache loads back bit-exactly, and appends continue identically", "[kv][cache][stream]") {
  for (const named_config& nc : configs()) {
    INFO(nc.name << " keys " << to_string(nc.config.keys.kind) << " values " << to_string(nc.config.values.kind));
    cache original(nc.config, nc.low);
    fill(original, 45, 7);
    const std::vector<std::byte> bytes = saved(original);
    cache loaded = cache::load(bytes);
    require_same(original, loaded);

    // The stream through std::ostream is the same bytes.
    std::ostringstream os;
    original.save(os);
    const std::string text = os.str();
    REQUIRE(text.size() == bytes.size());
    REQUIRE(std::memcmp(text.data(), bytes.data(), bytes.size()) == 0);

    // Windows, fp8 scales and next positions were restored, not just the bytes:
    // the same appends to both give the same cache.
    fill(original, 40, 99);
    fill(loaded, 40, 99);
    require_same(original, loaded);
  }
}

TEST_CASE("an empty cache round-trips", "[kv][cache][stream]") {
  const cache empty({1, 2, 32, format::kivi(2), format{scheme::q4_0}});
  const cache loaded = cache::load(saved(empty));
  require_same(empty, loaded);
  REQUIRE(loaded.tokens(0, 1) == 0);
}

TEST_CASE("every truncation and every bit flip of a cache stream is corrupt data", "[kv][cache][stream]") {
  cache c({1, 2, 32, format{scheme::q4_0, 32, 2}, format::kivi(2, 8, 8)});
  fill(c, 3, 5);
  const std::vector<std::byte> bytes = saved(c);
  for (std::size_t n = 0; n < bytes.size(); ++n)
    require_error([&] { (void)cache::load(std::span(bytes.data(), n)); }, errc::corrupt_data, {});
  for (std::size_t bit = 0; bit < 8 * bytes.size(); ++bit) {
    std::vector<std::byte> bad = bytes;
    bad[bit / 8] ^= std::byte(1u << (bit % 8));
    require_error([&] { (void)cache::load(bad); }, errc::corrupt_data, {});
  }
}

namespace {

// A stream with valid checksums whose sections say what the test wants.
struct stream_parts {
  std::uint16_t kind_version = 1;
  std::uint16_t flags = 0;
  std::vector<std::byte> conf;
  std::vector<std::vector<std::byte>> heads;
};

std::vector<std::byte> build(const stream_parts& s) {
  std::vector<std::byte> out;
  io::stream_writer w(out, io::tag{"KVC1"}, s.kind_version, s.flags);
  w.add(io::tag{"CONF"}, s.conf);
  for (std::size_t i = 0; i < s.heads.size(); ++i) w.add(io::tag{std::uint32_t(i + 1)}, s.heads[i]);
  w.finish();
  return out;
}

// CONF of a 1-layer cache of `heads` heads, head_dim 32, f32 keys (residual 2) and f32 values.
std::vector<std::byte> conf_of(std::uint32_t heads, std::uint8_t key_scheme = 0, std::uint8_t parts = 1) {
  io::byte_writer w;
  w.write(std::uint32_t(1));
  w.write(heads);
  w.write(std::uint32_t(32));
  w.write(parts);
  for (int side = 0; side < 2; ++side) {
    w.write(side == 0 ? key_scheme : std::uint8_t(0));
    w.write(std::uint8_t(0));
    w.write(std::int32_t(32));
    w.write(std::int32_t(side == 0 ? 2 : 0));
    w.write(0.0f);
  }
  return w.take();
}

// One head of f32 keys (residual 2) and values: `tokens` tokens, the last
// `key_residual` of them in the key window.
std::vector<std::byte> head_of(std::uint64_t tokens, std::uint64_t key_residual) {
  io::byte_writer w;
  w.write(std::int32_t(tokens));
  w.write(tokens);
  for (std::uint64_t t = 0; t < tokens; ++t) w.write(std::int32_t(t));
  for (std::uint64_t residual : {key_residual, std::uint64_t(0)}) {
    w.write(tokens - residual);
    w.write(residual);
    w.write(0.0f);
    for (std::uint64_t i = 0; i < tokens * 32; ++i) w.write(1.0f);
  }
  return w.take();
}

}  // namespace

TEST_CASE("checksummed streams that describe no cache the appends could build are corrupt data",
          "[kv][cache][stream]") {
  // The builder itself makes a loadable stream.
  REQUIRE(cache::load(build({1, 0, conf_of(1), {head_of(3, 2)}})).tokens(0, 0) == 3);

  require_error([] { (void)cache::load(build({2, 0, conf_of(1), {head_of(3, 2)}})); }, errc::corrupt_data,
                {"'KVC1' version 2", "version 1"});
  require_error([] { (void)cache::load(build({1, 4, conf_of(1), {head_of(3, 2)}})); }, errc::corrupt_data,
                {"kv::cache::load", "unknown stream flags 4"});
  require_error([] { (void)cache::load(build({1, 0, conf_of(2), {head_of(3, 2)}})); }, errc::corrupt_data,
                {"1 layers x 2 heads", "1 head sections"});
  require_error([] { (void)cache::load(build({1, 0, conf_of(1000000), {head_of(3, 2)}})); }, errc::corrupt_data,
                {"1000000 heads"});
  require_error([] { (void)cache::load(build({1, 0, conf_of(1, 99), {head_of(3, 2)}})); }, errc::corrupt_data,
                {"CONF describes no valid cache", "99"});
  require_error([] { (void)cache::load(build({1, 0, conf_of(1, 0, 3), {head_of(3, 2)}})); }, errc::corrupt_data,
                {"1 or 2 parts", "got 3"});
  // Three tokens in a window of two: appends never leave that.
  require_error([] { (void)cache::load(build({1, 0, conf_of(1), {head_of(3, 3)}})); }, errc::corrupt_data,
                {"head section 1", "keys", "0 packed and 3 residual", "residual 2"});
  // A head whose token count does not fit its bytes is rejected before anything is allocated.
  std::vector<std::byte> huge = head_of(0, 0);
  std::memset(huge.data() + 4, 0x7f, 8);
  require_error([&] { (void)cache::load(build({1, 0, conf_of(1), {huge}})); }, errc::corrupt_data,
                {"claims", "tokens"});
  std::vector<std::byte> extra = head_of(3, 2);
  extra.push_back(std::byte{0});
  require_error([&] { (void)cache::load(build({1, 0, conf_of(1), {extra}})); }, errc::corrupt_data,
                {"unread bytes"});
}

TEST_CASE("one head saved alone loads into a cache of the same configuration", "[kv][cache][stream]") {
  const cache_config config{2, 3, 32, format::kivi(4, 32, 32), format{scheme::q8_0, 32, 4}};
  cache source(config);
  fill(source, 70, 3);
  std::vector<std::byte> one;
  source.save_head(one, 1, 2);
  REQUIRE(one.size() < saved(source).size() / 3);

  cache target(config);
  target.load_head(one, 0, 1);  // any head of a cache with the same configuration
  REQUIRE(target.tokens(0, 1) == source.tokens(1, 2));
  REQUIRE(target.bytes(0, 1) == source.bytes(1, 2));
  const head_view x = source.view(1, 2), y = target.view(0, 1);
  REQUIRE(std::equal(x.positions, x.positions + x.tokens, y.positions));
  require_same_stream(x.keys, y.keys);
  require_same_stream(x.values, y.values);

  require_error([&] { (void)cache::load(one); }, errc::corrupt_data, {"one head", "load_head"});
  require_error([&] { target.load_head(saved(source), 0, 0); }, errc::corrupt_data, {"kv::cache::load_head", "flags"});
  cache other({2, 3, 32, format::kivi(4, 32, 64), format{scheme::q8_0, 32, 4}});
  require_error([&] { other.load_head(one, 0, 0); }, errc::invalid_argument, {"kv::cache::load_head", "configuration"});
  require_error([&] { target.load_head(one, 2, 0); }, errc::invalid_argument, {"layer", "got 2"});
  require_error([&] { source.save_head(one, 0, 3); }, errc::invalid_argument, {"kv::cache::save_head", "head", "got 3"});

  // A damaged stream leaves the head as it was.
  std::vector<std::byte> bad = one;
  bad[bad.size() / 2] ^= std::byte{4};
  require_error([&] { target.load_head(bad, 0, 1); }, errc::corrupt_data, {});
  REQUIRE(target.tokens(0, 1) == source.tokens(1, 2));
}

TEST_CASE("a failing output stream is an error, not a short file", "[kv][cache][stream]") {
  const cache c({1, 1, 32, format{scheme::f16}, format{scheme::f16}});
  std::ostringstream os;
  os.setstate(std::ios::badbit);
  require_error([&] { c.save(os); }, errc::invalid_argument, {"stream_writer", "failed"});
}

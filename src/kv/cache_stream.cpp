// kv::cache to and from a cinch stream (cinch/io/stream.hpp), kind "KVC1"
// version 1. The container checksums every section; this file checks that what
// the sections say describes a cache the appends could have built.
//
// Sections (all integers little-endian):
//   "CONF"   u32 layers, u32 kv_heads, u32 head_dim, u8 parts (1 or 2), then the
//            formats of keys and values (and of part 1's keys and values when
//            parts = 2), each: u8 scheme, u8 rotate, i32 group, i32 residual,
//            f32 fp8_scale
//   head     tag 1 + layer * kv_heads + head (tag 1 in a one-head stream):
//            i32 next position, then per part: u64 tokens, i32 positions[tokens],
//            then keys and values, each: u64 packed tokens, u64 residual tokens,
//            f32 fp8 scale, the packed units (cinch/kv/format.hpp), the residual
//            window as f32 rows, oldest first
// Stream flags: bit 0 marks a one-head stream (save_head).
#include <cstring>
#include <limits>
#include <string>

#include "cinch/detail/checks.hpp"
#include "cinch/io/bytes.hpp"
#include "cinch/io/stream.hpp"
#include "cinch/kv/cache.hpp"

namespace cinch::kv {
namespace {

constexpr io::tag stream_kind{"KVC1"};
constexpr std::uint16_t stream_version = 1;
constexpr io::tag config_tag{"CONF"};
constexpr std::uint16_t one_head_flag = 1;
// Head tags are small numbers, below any four-letter tag.
constexpr std::int64_t max_stream_heads = std::int64_t{1} << 24;

void check_head_count(std::size_t heads) {
  if (std::int64_t(heads) >= max_stream_heads)
    detail::fail(errc::unsupported, "kv::cache::save", "a stream holds fewer than ", max_stream_heads,
                 " heads, the cache has ", heads);
}

io::tag head_tag(std::int64_t index) { return io::tag{std::uint32_t(index + 1)}; }

void write_format(io::byte_writer& out, const format& f) {
  out.write(std::uint8_t(f.kind));
  out.write(std::uint8_t(f.rotate));
  out.write(std::int32_t(f.group));
  out.write(std::int32_t(f.residual));
  out.write(f.fp8_scale);
}

format read_format(io::byte_reader& in) {
  format f;
  f.kind = scheme(in.read<std::uint8_t>());
  const auto rotate = in.read<std::uint8_t>();
  if (rotate > 1)
    detail::fail(errc::corrupt_data, "kv::cache::load", "rotate flag must be 0 or 1, got ", int(rotate));
  f.rotate = rotate == 1;
  f.group = in.read<std::int32_t>();
  f.residual = in.read<std::int32_t>();
  f.fp8_scale = in.read<float>();
  return f;
}

struct saved_config {
  cache_config config;
  std::optional<mixed_precision> low;
};

saved_config read_config(const io::stream_reader& in) {
  io::byte_reader conf = in.open(config_tag);
  saved_config out;
  out.config.layers = std::int32_t(conf.read<std::uint32_t>());
  out.config.kv_heads = std::int32_t(conf.read<std::uint32_t>());
  out.config.head_dim = std::int32_t(conf.read<std::uint32_t>());
  const auto parts = conf.read<std::uint8_t>();
  if (parts != 1 && parts != 2)
    detail::fail(errc::corrupt_data, "kv::cache::load", "CONF must hold 1 or 2 parts, got ", int(parts));
  out.config.keys = read_format(conf);
  out.config.values = read_format(conf);
  if (parts == 2) out.low = mixed_precision{read_format(conf), read_format(conf)};
  conf.expect_end();
  return out;
}

bool same(const saved_config& a, const cache& c) {
  return a.config == c.config() && a.low == c.low();
}

}  // namespace

void cache::write_heads(io::stream_writer& out, int first_head, int count) const {
  io::byte_writer conf;
  conf.write(std::uint32_t(config_.layers));
  conf.write(std::uint32_t(config_.kv_heads));
  conf.write(std::uint32_t(config_.head_dim));
  conf.write(std::uint8_t(parts()));
  for (const format* f : {&config_.keys, &config_.values}) write_format(conf, *f);
  if (low_)
    for (const format* f : {&low_->keys, &low_->values}) write_format(conf, *f);
  out.add(config_tag, conf.bytes());

  const std::int64_t row = config_.head_dim;
  for (int i = 0; i < count; ++i) {
    const head& h = heads_[std::size_t(first_head + i)];
    io::byte_writer w;
    w.write(h.next_position);
    for (int p = 0; p < parts(); ++p) {
      w.write(std::uint64_t(h.parts[p].positions.size()));
      w.write_array(std::span<const std::int32_t>(h.parts[p].positions));
      for (const stream* s : {&h.parts[p].keys, &h.parts[p].values}) {
        w.write(std::uint64_t(s->packed_tokens));
        w.write(std::uint64_t(s->residual_tokens));
        w.write(s->scale);
        w.write_bytes(std::span(s->packed.data(), std::size_t(s->packed_bytes)));
        w.write_array(std::span<const float>(s->residual.data() + s->residual_begin * row,
                                             std::size_t(s->residual_tokens * row)));
      }
    }
    out.add(count == 1 ? head_tag(0) : head_tag(first_head + i), w.bytes());
  }
  out.finish();
}

void cache::save(std::vector<std::byte>& out) const {
  check_head_count(heads_.size());
  io::stream_writer w(out, stream_kind, stream_version);
  write_heads(w, 0, int(heads_.size()));
}

void cache::save(std::ostream& out) const {
  check_head_count(heads_.size());
  io::stream_writer w(out, stream_kind, stream_version);
  write_heads(w, 0, int(heads_.size()));
}

void cache::save_head(std::vector<std::byte>& out, int layer, int head_index) const {
  at("kv::cache::save_head", layer, head_index);
  io::stream_writer w(out, stream_kind, stream_version, one_head_flag);
  write_heads(w, layer * config_.kv_heads + head_index, 1);
}

// Rebuilds a head from its section, checking every count against the formats
// and the bytes present before anything is allocated.
cache::head cache::read_head(std::span<const std::byte> payload, const char* what) const {
  constexpr std::string_view fn = "kv::cache::load";
  io::byte_reader in(payload, what);
  head h = empty_head();
  h.next_position = in.read<std::int32_t>();
  const std::int64_t d = config_.head_dim;
  for (int p = 0; p < parts(); ++p) {
    part& pt = h.parts[p];
    const auto tokens = in.read<std::uint64_t>();
    if (tokens > in.remaining() / 4)
      detail::fail(errc::corrupt_data, fn, what, " part ", p, " claims ", tokens, " tokens in ", in.remaining(),
                   " bytes");
    pt.positions.resize(std::size_t(tokens));
    in.read_array(std::span<std::int32_t>(pt.positions));
    for (stream* s : {&pt.keys, &pt.values}) {
      const char* role = s->role == side::keys ? " keys" : " values";
      const auto packed = in.read<std::uint64_t>();
      const auto residual = in.read<std::uint64_t>();
      s->scale = in.read<float>();
      const stream_view v = view_of(*s, 0);
      const bool per_channel = v.per_channel();
      // What appends leave: a per-channel window flushes when it reaches `residual`,
      // a sliding one holds at most `residual`; packed per-channel keys are whole chunks.
      const auto window = std::uint64_t(s->fmt.residual);
      if (packed > tokens || residual != tokens - packed || (per_channel ? residual >= window : residual > window) ||
          packed % std::uint64_t(v.unit_tokens) != 0)
        detail::fail(errc::corrupt_data, fn, what, " part ", p, role, ": ", packed, " packed and ", residual,
                     " residual tokens do not make ", tokens, " tokens of format ", to_string(s->fmt.kind),
                     " with residual ", window);
      if (!(s->scale >= 0.0f && s->scale < std::numeric_limits<float>::infinity()))
        detail::fail(errc::corrupt_data, fn, what, " part ", p, role, " scale must be finite and >= 0, got ",
                     std::to_string(s->scale));
      const std::uint64_t units = packed / std::uint64_t(v.unit_tokens);
      if (units > in.remaining() / std::uint64_t(v.unit_bytes))
        detail::fail(errc::corrupt_data, fn, what, " part ", p, role, " claims ", units, " units of ", v.unit_bytes,
                     " bytes in ", in.remaining(), " bytes");
      const std::span<const std::byte> bytes = in.read_bytes(std::size_t(units * std::uint64_t(v.unit_bytes)));
      if (!bytes.empty()) std::memcpy(grow(*s, std::int64_t(bytes.size())), bytes.data(), bytes.size());
      s->packed_tokens = std::int64_t(packed);
      in.read_array(std::span<float>(s->residual.data(), std::size_t(residual) * std::size_t(d)));
      s->residual_tokens = std::int64_t(residual);
    }
  }
  in.expect_end();
  return h;
}

cache cache::load(std::span<const std::byte> bytes) {
  constexpr std::string_view fn = "kv::cache::load";
  const io::stream_reader in(bytes, stream_kind, stream_version);
  if (in.flags() != 0)
    detail::fail(errc::corrupt_data, fn, in.flags() == one_head_flag
                                             ? std::string("the stream holds one head: load it with load_head")
                                             : "unknown stream flags " + std::to_string(in.flags()));
  const saved_config saved = read_config(in);
  const std::int64_t heads = std::int64_t(saved.config.layers) * saved.config.kv_heads;
  // Check the head count against the sections present before sizing a cache by it.
  if (saved.config.layers < 1 || saved.config.kv_heads < 1 || heads + 1 != std::int64_t(in.sections().size()))
    detail::fail(errc::corrupt_data, fn, "CONF describes ", saved.config.layers, " layers x ", saved.config.kv_heads,
                 " heads, the stream holds ", in.sections().size() - 1, " head sections");
  std::optional<cache> out;
  try {
    out.emplace(saved.config, saved.low);
  } catch (const error& e) {
    detail::fail(errc::corrupt_data, fn, "CONF describes no valid cache (", e.what(), ")");
  }
  for (std::int64_t i = 0; i < heads; ++i) {
    const std::string what = "head section " + std::to_string(i + 1);
    out->heads_[std::size_t(i)] = out->read_head(in.payload(head_tag(i)), what.c_str());
  }
  return std::move(*out);
}

void cache::load_head(std::span<const std::byte> bytes, int layer, int head_index) {
  constexpr std::string_view fn = "kv::cache::load_head";
  head& target = at("kv::cache::load_head", layer, head_index);
  const io::stream_reader in(bytes, stream_kind, stream_version);
  if (in.flags() != one_head_flag)
    detail::fail(errc::corrupt_data, fn, "the stream must hold one head (flags 1, from save_head), got flags ",
                 in.flags());
  if (in.sections().size() != 2)
    detail::fail(errc::corrupt_data, fn, "a one-head stream holds CONF and one head section, got ",
                 in.sections().size(), " sections");
  if (!same(read_config(in), *this))
    detail::fail(errc::invalid_argument, fn, "the stream was saved from a cache of another configuration");
  target = read_head(in.payload(head_tag(0)), "head section");
}

}  // namespace cinch::kv

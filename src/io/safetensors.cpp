// safetensors reading and writing. The JSON header is parsed by nlohmann-json
// and then checked entry by entry before any tensor data is looked at.
#include "cinch/io/safetensors.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>

#include "cinch/core/backend.hpp"
#include "cinch/detail/checks.hpp"
#include "io/origin.hpp"

#if __has_include(<sys/mman.h>)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define CINCH_HAVE_MMAP 1
#endif

namespace cinch::io {
namespace {

static_assert(std::endian::native == std::endian::little, "cinch::io safetensors assumes a little-endian host");

constexpr std::uint64_t max_header = 100'000'000;  // the format's own limit
constexpr std::uint64_t max_bytes = std::uint64_t(1) << 62;

struct dtype_entry {
  std::string_view name;
  std::uint64_t bytes;
  std::optional<dtype> type;
};
constexpr dtype_entry dtypes[] = {
    {"F64", 8, std::nullopt},     {"F32", 4, dtype::f32},          {"F16", 2, dtype::f16},
    {"BF16", 2, dtype::bf16},     {"F8_E4M3", 1, dtype::f8_e4m3},  {"F8_E5M2", 1, dtype::f8_e5m2},
    {"I64", 8, std::nullopt},     {"I32", 4, dtype::i32},          {"I16", 2, std::nullopt},
    {"I8", 1, dtype::i8},         {"U64", 8, std::nullopt},        {"U32", 4, std::nullopt},
    {"U16", 2, std::nullopt},     {"U8", 1, dtype::u8},            {"BOOL", 1, std::nullopt},
};

const dtype_entry* find_dtype(std::string_view name) {
  for (const dtype_entry& d : dtypes)
    if (d.name == name) return &d;
  return nullptr;
}

std::uint64_t element_count(const origin& at, const std::string& name, const std::vector<std::int64_t>& shape,
                            std::uint64_t item) {
  std::uint64_t n = 1;
  for (std::int64_t e : shape) {
    if (e != 0 && n > max_bytes / item / std::uint64_t(e))
      at.fail(errc::corrupt_data, "tensor '", name, "': shape ", std::span<const std::int64_t>(shape), " overflows");
    n *= std::uint64_t(e);
  }
  return n;
}

std::uint64_t read_offset(const origin& at, const std::string& name, const nlohmann::json& v) {
  if (!v.is_number_unsigned())
    at.fail(errc::corrupt_data, "tensor '", name, "': data_offsets must be two unsigned integers, got ", v.dump());
  return v.get<std::uint64_t>();
}

safetensors_entry read_entry(const origin& at, const std::string& name, const nlohmann::json& v) {
  if (!v.is_object() || v.size() != 3 || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
    at.fail(errc::corrupt_data, "tensor '", name, "': expected an object with exactly dtype, shape and data_offsets");
  safetensors_entry e;
  e.name = name;
  const nlohmann::json& dt = v["dtype"];
  if (!dt.is_string()) at.fail(errc::corrupt_data, "tensor '", name, "': dtype must be a string, got ", dt.dump());
  e.dtype_name = dt.get<std::string>();
  const dtype_entry* d = find_dtype(e.dtype_name);
  if (!d) at.fail(errc::corrupt_data, "tensor '", name, "': unknown dtype '", e.dtype_name, "'");
  e.type = d->type;
  const nlohmann::json& shape = v["shape"];
  if (!shape.is_array()) at.fail(errc::corrupt_data, "tensor '", name, "': shape must be an array, got ", shape.dump());
  for (const nlohmann::json& x : shape) {
    if (!x.is_number_unsigned() || x.get<std::uint64_t>() >= max_bytes)
      at.fail(errc::corrupt_data, "tensor '", name, "': shape must hold non-negative integers, got ", shape.dump());
    e.shape.push_back(std::int64_t(x.get<std::uint64_t>()));
  }
  const nlohmann::json& offsets = v["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2)
    at.fail(errc::corrupt_data, "tensor '", name, "': data_offsets must be [begin, end], got ", offsets.dump());
  e.begin = read_offset(at, name, offsets[0]);
  e.end = read_offset(at, name, offsets[1]);
  const std::uint64_t needed = element_count(at, name, e.shape, d->bytes) * d->bytes;
  if (e.end < e.begin || e.end - e.begin != needed)
    at.fail(errc::corrupt_data, "tensor '", name, "': data_offsets [", e.begin, ", ", e.end, "] must span ", needed,
            " bytes for shape ", std::span<const std::int64_t>(e.shape), " of ", e.dtype_name);
  return e;
}

}  // namespace

safetensors_file safetensors_file::parse(std::span<const std::byte> bytes, std::string_view source) {
  const origin at{"safetensors_file", source};
  if (bytes.size() < 8)
    at.fail(errc::corrupt_data, "truncated: ", bytes.size(), " bytes, a safetensors file starts with an 8-byte header length");
  std::uint64_t length = 0;
  std::memcpy(&length, bytes.data(), 8);
  if (length > max_header) at.fail(errc::corrupt_data, "header length ", length, " is above the 100 MB limit");
  if (length > bytes.size() - 8)
    at.fail(errc::corrupt_data, "header length ", length, " runs past the end of the file (", bytes.size(), " bytes)");
  const auto* text = reinterpret_cast<const char*>(bytes.data() + 8);

  std::set<std::string> names;
  std::string duplicate;
  const auto on_event = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth == 1 && event == nlohmann::json::parse_event_t::key && !names.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text, text + length, on_event);
  } catch (const nlohmann::json::exception& e) {
    at.fail(errc::corrupt_data, "header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) at.fail(errc::corrupt_data, "header must be a JSON object, got ", header.type_name());
  if (!duplicate.empty()) at.fail(errc::corrupt_data, "header names '", duplicate, "' twice");

  safetensors_file f;
  f.source_ = source;
  f.data_ = bytes.subspan(8 + length);
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) at.fail(errc::corrupt_data, "__metadata__ must be an object, got ", value.type_name());
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) at.fail(errc::corrupt_data, "__metadata__ value of '", k, "' must be a string, got ", v.dump());
        f.metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    f.entries_.push_back(read_entry(at, key, value));
  }
  std::stable_sort(f.entries_.begin(), f.entries_.end(), [](const safetensors_entry& a, const safetensors_entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t covered = 0;
  for (const safetensors_entry& e : f.entries_) {
    if (e.begin != covered)
      at.fail(errc::corrupt_data, "tensors must tile the data buffer: '", e.name, "' begins at byte ", e.begin,
              ", expected ", covered);
    covered = e.end;
  }
  if (covered != f.data_.size())
    at.fail(errc::corrupt_data, "the data buffer holds ", f.data_.size(), " bytes but the tensors cover ", covered);
  return f;
}

safetensors_file safetensors_file::open(const std::string& path) {
  const origin at{"safetensors_file::open", path};
#if CINCH_HAVE_MMAP
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) at.fail(errc::invalid_argument, "cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    at.fail(errc::invalid_argument, "cannot stat: ", std::strerror(errno));
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  void* p = size > 0 ? ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
  ::close(fd);
  if (p != MAP_FAILED) {
    std::shared_ptr<const void> owner(p, [size](const void* q) { ::munmap(const_cast<void*>(q), size); });
    safetensors_file f = parse({static_cast<const std::byte*>(p), size}, path);
    f.owner_ = std::move(owner);
    return f;
  }
#endif
  std::ifstream in(path, std::ios::binary);
  if (!in) at.fail(errc::invalid_argument, "cannot open");
  auto buffer = std::make_shared<std::vector<std::byte>>();
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) at.fail(errc::invalid_argument, "cannot read");
  buffer->resize(chars.size());
  std::memcpy(buffer->data(), chars.data(), chars.size());
  safetensors_file f = parse(*buffer, path);
  f.owner_ = std::move(buffer);
  return f;
}

const safetensors_entry* safetensors_file::find(std::string_view name) const noexcept {
  for (const safetensors_entry& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

std::span<const std::byte> safetensors_file::bytes(const safetensors_entry& e) const noexcept {
  return data_.subspan(e.begin, e.end - e.begin);
}

tensor safetensors_file::load(std::string_view name) const {
  const origin at{"safetensors_file::load", source_};
  const safetensors_entry* e = find(name);
  if (!e) at.fail(errc::invalid_argument, "no tensor named '", name, "' among ", entries_.size());
  if (!e->type) at.fail(errc::unsupported, "tensor '", name, "' has dtype ", e->dtype_name, ", which cinch has no type for");
  if (e->shape.size() > std::size_t(max_rank))
    at.fail(errc::unsupported, "tensor '", name, "' has rank ", e->shape.size(), ", above cinch's maximum of ", max_rank);
  const std::span<const std::byte> data = bytes(*e);
  const std::uint64_t item = find_dtype(e->dtype_name)->bytes;
  if (reinterpret_cast<std::uintptr_t>(data.data()) % item == 0)
    return tensor::adopt(tensor_view(data.data(), *e->type, e->shape), std::const_pointer_cast<void>(owner_));
  tensor copy = tensor::empty(e->shape, *e->type);
  if (!data.empty()) std::memcpy(copy.data(), data.data(), data.size());
  return copy;
}

std::string_view safetensors_dtype(dtype type) {
  for (const dtype_entry& d : dtypes)
    if (d.type == type) return d.name;
  cinch::detail::fail(errc::unsupported, "safetensors_dtype", "dtype ", to_string(type), " has no safetensors name");
}

struct safetensors_writer::impl {
  std::string path;
  std::ofstream out;
  std::vector<spec> tensors;
  std::vector<std::uint64_t> sizes;
  std::size_t next = 0;

  template <class... Parts>
  [[noreturn]] void fail(errc code, const Parts&... parts) const {
    cinch::detail::fail(code, "safetensors_writer", path, ": ", parts...);
  }
  void put(const void* p, std::size_t n) {
    out.write(static_cast<const char*>(p), std::streamsize(n));
    if (!out) fail(errc::invalid_argument, "write failed");
  }
};

safetensors_writer::safetensors_writer(const std::string& path, std::vector<spec> tensors,
                                       const std::map<std::string, std::string>& metadata)
    : impl_(std::make_unique<impl>()) {
  impl& w = *impl_;
  w.path = path;
  w.tensors = std::move(tensors);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  const origin at{"safetensors_writer", path};
  std::uint64_t offset = 0;
  for (const spec& s : w.tensors) {
    if (s.name.empty() || s.name == "__metadata__" || !names.insert(s.name).second)
      w.fail(errc::invalid_argument, "tensor names must be unique, non-empty and not __metadata__, got '", s.name, "'");
    const dtype_entry* d = find_dtype(s.dtype_name);
    if (!d) w.fail(errc::invalid_argument, "tensor '", s.name, "': unknown dtype '", s.dtype_name, "'");
    for (std::int64_t e : s.shape)
      if (e < 0) w.fail(errc::invalid_argument, "tensor '", s.name, "': extents must be >= 0, got ", std::span(s.shape));
    const std::uint64_t size = element_count(at, s.name, s.shape, d->bytes) * d->bytes;
    header[s.name] = {{"dtype", s.dtype_name}, {"shape", s.shape}, {"data_offsets", {offset, offset + size}}};
    w.sizes.push_back(size);
    offset += size;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the data then starts 8-byte aligned
  w.out.open(path, std::ios::binary | std::ios::trunc);
  if (!w.out) w.fail(errc::invalid_argument, "cannot create: ", std::strerror(errno));
  const std::uint64_t length = text.size();
  w.put(&length, 8);
  w.put(text.data(), text.size());
}

safetensors_writer::~safetensors_writer() = default;

void safetensors_writer::write_bytes(std::span<const std::byte> data) {
  impl& w = *impl_;
  if (w.next == w.tensors.size())
    w.fail(errc::invalid_argument, "all ", w.tensors.size(), " declared tensors were written already");
  if (data.size() != w.sizes[w.next])
    w.fail(errc::shape_mismatch, "tensor '", w.tensors[w.next].name, "' needs ", w.sizes[w.next], " bytes, got ",
           data.size());
  w.put(data.data(), data.size());
  ++w.next;
}

void safetensors_writer::write(const tensor_view& data) {
  impl& w = *impl_;
  if (w.next == w.tensors.size())
    w.fail(errc::invalid_argument, "all ", w.tensors.size(), " declared tensors were written already");
  const spec& s = w.tensors[w.next];
  cinch::detail::check_device("safetensors_writer", "data", data, cpu_device);
  if (safetensors_dtype(data.type()) != s.dtype_name)
    w.fail(errc::invalid_argument, "tensor '", s.name, "' was declared ", s.dtype_name, ", got ", to_string(data.type()));
  if (!std::equal(data.shape().begin(), data.shape().end(), s.shape.begin(), s.shape.end()))
    w.fail(errc::shape_mismatch, "tensor '", s.name, "' was declared with shape ", std::span(s.shape), ", got ",
           data.shape());
  if (data.is_contiguous() || data.numel() == 0) {
    write_bytes({static_cast<const std::byte*>(data.data()), std::size_t(data.nbytes())});
    return;
  }
  // Gather element by element, last dimension fastest (safetensors dtypes are all plain).
  const std::size_t item = info(data.type()).block_bytes;
  std::vector<std::byte> dense(std::size_t(data.nbytes()));
  std::int64_t index[max_rank] = {};
  for (std::size_t e = 0; e < dense.size() / item; ++e) {
    std::int64_t offset = 0;
    for (int d = 0; d < data.rank(); ++d) offset += index[d] * data.stride(d);
    std::memcpy(dense.data() + e * item, data.address(offset), item);
    for (int d = data.rank() - 1; d >= 0 && ++index[d] == data.size(d); --d) index[d] = 0;
  }
  write_bytes(dense);
}

void safetensors_writer::finish() {
  impl& w = *impl_;
  if (w.next != w.tensors.size())
    w.fail(errc::invalid_argument, "only ", w.next, " of ", w.tensors.size(), " declared tensors were written");
  w.out.flush();
  if (!w.out) w.fail(errc::invalid_argument, "write failed");
  w.out.close();
}

void save_safetensors(const std::string& path, std::span<const std::pair<std::string, tensor_view>> tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Widest items first: every tensor's data then starts aligned for its dtype.
  std::vector<const std::pair<std::string, tensor_view>*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return info(a->second.type()).block_bytes > info(b->second.type()).block_bytes;
  });
  std::vector<safetensors_writer::spec> specs;
  for (const auto* t : order)
    specs.push_back({t->first, std::string(safetensors_dtype(t->second.type())),
                     {t->second.shape().begin(), t->second.shape().end()}});
  safetensors_writer writer(path, std::move(specs), metadata);
  for (const auto* t : order) writer.write(t->second);
  writer.finish();
}

}  // namespace cinch::io

// Fuzz target for the safetensors parser (io::safetensors_file::parse over bytes
// in memory): any input must either parse into entries that stay inside the
// buffer and load as tensors of their declared size, or throw cinch::error.
// Anything else (a crash, a sanitizer report, another exception, a broken
// invariant) is a bug. Built with libFuzzer under clang (-fsanitize=fuzzer), and
// with replay_main.cpp everywhere else.
#include <cinch/io/safetensors.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

namespace {

// Reads every byte of a span (the sanitizers see each access) into a value the
// optimizer must keep.
std::uint8_t touch(std::span<const std::byte> bytes) {
  std::uint8_t x = 0;
  for (const std::byte b : bytes) x ^= std::to_integer<std::uint8_t>(b);
  return x;
}

void require(bool invariant) {
  if (!invariant) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  volatile std::uint8_t sink = 0;
  try {
    const cinch::io::safetensors_file file = cinch::io::safetensors_file::parse(input, "fuzz");
    for (const auto& [key, value] : file.metadata()) sink = sink ^ std::uint8_t(key.size() + value.size());
    for (const cinch::io::safetensors_entry& e : file.entries()) {
      const std::span<const std::byte> bytes = file.bytes(e);
      require(bytes.size() == e.end - e.begin);
      require(bytes.empty() || (bytes.data() >= input.data() && bytes.data() + bytes.size() <= input.data() + size));
      require(file.find(e.name) == &e);
      sink = sink ^ touch(bytes);
      if (!e.type) continue;
      try {
        const cinch::tensor t = file.load(e.name);
        require(std::uint64_t(t.nbytes()) == bytes.size());
        sink = sink ^ touch({static_cast<const std::byte*>(t.data()), std::size_t(t.nbytes())});
      } catch (const cinch::error&) {  // a rank above 6: listed, not loadable
      }
    }
  } catch (const cinch::error&) {
  }
  return 0;
}

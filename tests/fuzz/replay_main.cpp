// A stand-in for libFuzzer's driver where it is not available (g++ builds):
// runs LLVMFuzzerTestOneInput over every file of the given corpus files and
// directories, then over `--mutations N` inputs derived from them by a seeded
// generator (`--seed S`), so a ctest run is deterministic. Mutations: bit flips,
// interesting bytes and digits, erased, duplicated and spliced ranges, a
// rewritten 8-byte length prefix (the safetensors header length), and edits
// inside the header that keep that length consistent (to reach the JSON checks).
// Each input is a heap buffer of exactly its size, so AddressSanitizer sees a
// read one past its end. Exits 0 when every input returned; a bug aborts.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using bytes = std::vector<std::uint8_t>;

class rng {
 public:
  explicit rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {  // splitmix64
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return n == 0 ? 0 : std::size_t(next() % n); }

 private:
  std::uint64_t state_;
};

void run(const bytes& input) {
  // An exact-size copy: no slack after the last byte for an overread to hide in.
  const std::unique_ptr<std::uint8_t[]> copy(new std::uint8_t[std::max<std::size_t>(input.size(), 1)]);
  std::copy(input.begin(), input.end(), copy.get());
  LLVMFuzzerTestOneInput(copy.get(), input.size());
}

std::uint64_t length_prefix(const bytes& b) {
  std::uint64_t n = 0;
  if (b.size() >= 8) std::memcpy(&n, b.data(), 8);
  return n;
}
void set_length_prefix(bytes& b, std::uint64_t n) {
  if (b.size() >= 8) std::memcpy(b.data(), &n, 8);
}

// One random edit of b; `other` is a second corpus input for splicing.
void mutate(bytes& b, const bytes& other, rng& r) {
  static constexpr std::string_view interesting = "\x00\xff\x7f\x80\"{}[],:-0123456789eE.\\ ";
  static constexpr std::string_view numbers[] = {"0",  "-1", "4294967296", "18446744073709551615", "18446744073709551616",
                                                 "1e300", "9223372036854775807", "-9223372036854775808", "1.5", "null"};
  const std::uint64_t header = length_prefix(b);
  const bool in_header = b.size() > 8 && header > 0 && header <= b.size() - 8;
  switch (r.below(9)) {
    case 0:  // flip a bit
      if (!b.empty()) b[r.below(b.size())] ^= std::uint8_t(1u << r.below(8));
      break;
    case 1:  // an interesting byte
      if (!b.empty()) b[r.below(b.size())] = std::uint8_t(interesting[r.below(interesting.size())]);
      break;
    case 2: {  // erase a range, inside the header keeping its length right
      if (b.size() < 9) break;
      const std::size_t at = 8 + r.below(b.size() - 8), n = 1 + r.below(std::min<std::size_t>(16, b.size() - at));
      b.erase(b.begin() + std::ptrdiff_t(at), b.begin() + std::ptrdiff_t(at + n));
      if (in_header && at < 8 + header && r.below(4) != 0) set_length_prefix(b, header - std::min<std::uint64_t>(n, header));
      break;
    }
    case 3: {  // duplicate a range in place
      if (b.size() < 9) break;
      const std::size_t from = 8 + r.below(b.size() - 8), n = 1 + r.below(std::min<std::size_t>(32, b.size() - from));
      const bytes piece(b.begin() + std::ptrdiff_t(from), b.begin() + std::ptrdiff_t(from + n));
      const std::size_t at = 8 + r.below(b.size() - 7);
      b.insert(b.begin() + std::ptrdiff_t(at), piece.begin(), piece.end());
      if (in_header && at <= 8 + header && r.below(4) != 0) set_length_prefix(b, header + n);
      break;
    }
    case 4: {  // replace a run of digits inside the header with another number
      if (!in_header) break;
      std::size_t at = 8 + r.below(std::size_t(header));
      while (at < 8 + header && !(b[at] >= '0' && b[at] <= '9')) ++at;
      if (at >= 8 + header) break;
      std::size_t end = at;
      while (end < 8 + header && b[end] >= '0' && b[end] <= '9') ++end;
      const std::string_view number = numbers[r.below(std::size(numbers))];
      b.erase(b.begin() + std::ptrdiff_t(at), b.begin() + std::ptrdiff_t(end));
      b.insert(b.begin() + std::ptrdiff_t(at), number.begin(), number.end());
      set_length_prefix(b, header + number.size() - (end - at));
      break;
    }
    case 5:  // truncate
      b.resize(r.below(b.size() + 1));
      break;
    case 6: {  // a new header length: near the old one, or anything
      const std::uint64_t v = r.below(2) ? header + r.below(17) - 8 : r.next() >> r.below(64);
      set_length_prefix(b, v);
      break;
    }
    case 7: {  // splice: a prefix of b and a suffix of the other input
      const std::size_t keep = r.below(b.size() + 1), from = r.below(other.size() + 1);
      b.resize(keep);
      b.insert(b.end(), other.begin() + std::ptrdiff_t(from), other.end());
      break;
    }
    default:  // append bytes (trailing data)
      for (std::size_t n = 1 + r.below(8); n > 0; --n) b.push_back(std::uint8_t(r.next()));
      break;
  }
}

void add_file(const std::filesystem::path& p, std::vector<bytes>& corpus) {
  std::ifstream in(p, std::ios::binary);
  corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t mutations = 0, seed = 1;
  std::vector<bytes> corpus;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--mutations" || arg == "--seed") && i + 1 < argc) {
      (arg == "--mutations" ? mutations : seed) = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::filesystem::is_directory(arg)) {
      std::vector<std::filesystem::path> files;
      for (const auto& e : std::filesystem::directory_iterator(arg))
        if (e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());  // the order, and so the mutations, are reproducible
      for (const auto& f : files) add_file(f, corpus);
    } else if (std::filesystem::is_regular_file(arg)) {
      add_file(arg, corpus);
    } else {
      std::fprintf(stderr, "usage: %s [--mutations N] [--seed S] corpus-file-or-dir...\n(no such file: %s)\n", argv[0],
                   arg.c_str());
      return 2;
    }
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "%s: no corpus inputs\n", argv[0]);
    return 2;
  }
  for (const bytes& input : corpus) run(input);
  rng r(seed);
  for (std::uint64_t i = 0; i < mutations; ++i) {
    bytes b = corpus[r.below(corpus.size())];
    for (std::size_t edits = 1 + r.below(4); edits > 0; --edits) mutate(b, corpus[r.below(corpus.size())], r);
    run(b);
  }
  std::printf("%zu corpus inputs and %llu mutations ran without a crash\n", corpus.size(),
              static_cast<unsigned long long>(mutations));
  return 0;
}

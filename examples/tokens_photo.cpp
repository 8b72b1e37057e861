// tokens_photo: visual-token pruning and merging on a real photograph.
//
// The photo is center-cropped and scaled to 336 x 336 and cut into 14 x 14
// patches: 576 tokens on a 24 x 24 grid, as CLIP-L/336 sees an image in
// LLaVA-1.5. Without a vision tower the inputs are simple stand-ins:
//   features    the patch pixels (588 values, centered on the image mean)
//   keys        a fixed random projection of them to 64 dimensions
//               (Johnson-Lindenstrauss: cosines roughly kept), like head-mean keys
//   saliency    patch contrast (the standard deviation of its pixels), as a
//               softmax: the [CLS] / text attention stand-in
// Each method keeps 64, 128 and 192 tokens. The program writes
//   <out>_regions.jpg          one panel per method and budget: every output token's
//                              region in its own colour over the photo, its
//                              representative patch outlined, pruned patches dark
//   <out>_reconstruction.jpg   the image rebuilt from the kept tokens: a merged token's
//                              patch is the mean of its patches; a pruned patch takes the
//                              nearest kept patch on the grid; the DCT low-pass is inverted
// and prints the reconstruction error (PSNR, dB) per method and budget.
//
//   tokens_photo [photo.jpg] [out prefix]     (default: data/images/nagasaki-boats.jpg)
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cinch/cinch.hpp"
#include "cinch/tokens/apply.hpp"
#include "cinch/tokens/baselines.hpp"
#include "cinch/tokens/dart.hpp"
#include "cinch/tokens/divprune.hpp"
#include "cinch/tokens/fastv.hpp"
#include "cinch/tokens/fourier.hpp"
#include "cinch/tokens/greedy_prune.hpp"
#include "cinch/tokens/prumerge.hpp"
#include "cinch/tokens/scissor.hpp"
#include "cinch/tokens/tome.hpp"
#include "cinch/tokens/visionzip.hpp"

#include <jpeglib.h>  // after <cstdio>: it needs FILE and size_t declared

#ifndef CINCH_DATA_DIR
#define CINCH_DATA_DIR "data"
#endif

namespace {

namespace tokens = cinch::tokens;
using cinch::dtype;
using cinch::tensor_view;

constexpr int side = 336, patch = 14, cells = side / patch, n = cells * cells, dim = patch * patch * 3;

struct image {
  int width = 0, height = 0;
  std::vector<float> rgb;  // row-major, 3 values per pixel in [0, 255]
};

image read_jpeg(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) throw std::runtime_error("cannot open " + path);
  jpeg_decompress_struct info{};
  jpeg_error_mgr errors{};
  info.err = jpeg_std_error(&errors);
  jpeg_create_decompress(&info);
  jpeg_stdio_src(&info, file);
  jpeg_read_header(&info, TRUE);
  info.out_color_space = JCS_RGB;
  jpeg_start_decompress(&info);
  image out{int(info.output_width), int(info.output_height), {}};
  out.rgb.resize(std::size_t(out.width) * std::size_t(out.height) * 3);
  std::vector<unsigned char> line(std::size_t(out.width) * 3);
  while (info.output_scanline < info.output_height) {
    unsigned char* row = line.data();
    const int y = int(info.output_scanline);
    jpeg_read_scanlines(&info, &row, 1);
    for (std::size_t i = 0; i < line.size(); ++i) out.rgb[std::size_t(y) * line.size() + i] = line[i];
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  std::fclose(file);
  return out;
}

void write_jpeg(const std::string& path, const image& im) {
  FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) throw std::runtime_error("cannot write " + path);
  jpeg_compress_struct info{};
  jpeg_error_mgr errors{};
  info.err = jpeg_std_error(&errors);
  jpeg_create_compress(&info);
  jpeg_stdio_dest(&info, file);
  info.image_width = JDIMENSION(im.width);
  info.image_height = JDIMENSION(im.height);
  info.input_components = 3;
  info.in_color_space = JCS_RGB;
  jpeg_set_defaults(&info);
  jpeg_set_quality(&info, 90, TRUE);
  jpeg_start_compress(&info, TRUE);
  std::vector<unsigned char> line(std::size_t(im.width) * 3);
  for (int y = 0; y < im.height; ++y) {
    for (std::size_t i = 0; i < line.size(); ++i)
      line[i] = static_cast<unsigned char>(std::clamp(std::lround(im.rgb[std::size_t(y) * line.size() + i]), 0L, 255L));
    unsigned char* row = line.data();
    jpeg_write_scanlines(&info, &row, 1);
  }
  jpeg_finish_compress(&info);
  jpeg_destroy_compress(&info);
  std::fclose(file);
}

// Center square crop, area-averaged down to side x side.
image square(const image& in) {
  const int s = std::min(in.width, in.height), x0 = (in.width - s) / 2, y0 = (in.height - s) / 2;
  image out{side, side, std::vector<float>(std::size_t(side) * side * 3, 0.0f)};
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x) {
      const int ya = y0 + y * s / side, yb = y0 + (y + 1) * s / side, xa = x0 + x * s / side, xb = x0 + (x + 1) * s / side;
      for (int c = 0; c < 3; ++c) {
        double sum = 0;
        for (int v = ya; v < yb; ++v)
          for (int u = xa; u < xb; ++u) sum += in.rgb[(std::size_t(v) * std::size_t(in.width) + std::size_t(u)) * 3 + std::size_t(c)];
        out.rgb[(std::size_t(y) * side + std::size_t(x)) * 3 + std::size_t(c)] = float(sum / double((yb - ya) * (xb - xa)));
      }
    }
  return out;
}

// Token t's patch as dim values, and back.
std::vector<float> patches(const image& im) {
  std::vector<float> out(std::size_t(n) * dim);
  for (int t = 0; t < n; ++t)
    for (int y = 0; y < patch; ++y)
      for (int x = 0; x < patch; ++x)
        for (int c = 0; c < 3; ++c)
          out[std::size_t(t) * dim + std::size_t((y * patch + x) * 3 + c)] =
              im.rgb[(std::size_t((t / cells) * patch + y) * side + std::size_t((t % cells) * patch + x)) * 3 + std::size_t(c)];
  return out;
}

image from_patches(const std::vector<float>& p) {
  image out{side, side, std::vector<float>(std::size_t(side) * side * 3)};
  for (int t = 0; t < n; ++t)
    for (int y = 0; y < patch; ++y)
      for (int x = 0; x < patch; ++x)
        for (int c = 0; c < 3; ++c)
          out.rgb[(std::size_t((t / cells) * patch + y) * side + std::size_t((t % cells) * patch + x)) * 3 + std::size_t(c)] =
              p[std::size_t(t) * dim + std::size_t((y * patch + x) * 3 + c)];
  return out;
}

double psnr(const image& a, const image& b) {
  double se = 0;
  for (std::size_t i = 0; i < a.rgb.size(); ++i) se += double(a.rgb[i] - b.rgb[i]) * double(a.rgb[i] - b.rgb[i]);
  return 10.0 * std::log10(255.0 * 255.0 / (se / double(a.rgb.size())));
}

std::uint64_t mix(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The stand-in inputs of the header comment.
struct stand_ins {
  std::vector<float> features, keys, saliency;
};

stand_ins inputs_of(const std::vector<float>& pixels) {
  stand_ins s;
  std::vector<double> mean(dim, 0.0);
  for (int t = 0; t < n; ++t)
    for (int c = 0; c < dim; ++c) mean[std::size_t(c)] += pixels[std::size_t(t) * dim + std::size_t(c)] / n;
  s.features.resize(pixels.size());
  for (std::size_t i = 0; i < pixels.size(); ++i) s.features[i] = float(pixels[i] - mean[i % dim]);
  constexpr int dk = 64;
  s.keys.assign(std::size_t(n) * dk, 0.0f);
  for (int c = 0; c < dim; ++c)
    for (int k = 0; k < dk; ++k) {
      const float w = (mix(std::uint64_t(c) * dk + std::uint64_t(k)) & 1) ? 1.0f : -1.0f;  // a fixed +-1 projection
      for (int t = 0; t < n; ++t) s.keys[std::size_t(t) * dk + std::size_t(k)] += w * s.features[std::size_t(t) * dim + std::size_t(c)];
    }
  // Saliency: patch contrast (the standard deviation of its pixels), in steps of 8 grey levels, as a softmax.
  std::vector<double> contrast(n);
  double top = 0;
  for (int t = 0; t < n; ++t) {
    double sum = 0, sq = 0;
    for (int c = 0; c < dim; ++c) {
      const double v = pixels[std::size_t(t) * dim + std::size_t(c)];
      sum += v, sq += v * v;
    }
    contrast[std::size_t(t)] = std::sqrt(std::max(0.0, sq / dim - (sum / dim) * (sum / dim))) / 8.0;
    top = std::max(top, contrast[std::size_t(t)]);
  }
  double total = 0;
  for (double d : contrast) total += std::exp(d - top);
  for (double d : contrast) s.saliency.push_back(float(std::exp(d - top) / total));
  return s;
}

// A method: name, plan for a budget; fourier also replaces the merged features.
struct method {
  std::string name;
  std::function<tokens::plan(std::int64_t)> plan_for;
  bool spectral = false;
};

// ToMe removes at most half the tokens per step: steps of r = min(left - keep, left / 2)
// chained with sizes, as across the layers of a ViT.
tokens::plan tome_to(const stand_ins& s, std::int64_t keep) {
  tokens::plan chain = tokens::identity(n);
  std::vector<float> keys = s.keys;
  std::vector<std::int64_t> sizes(n, 1);
  while (chain.output_tokens() > keep) {
    const std::int64_t left = chain.output_tokens();
    tokens::inputs in;
    in.keys = tensor_view(keys.data(), dtype::f32, {left, 64});
    const tokens::plan step = tokens::tome(in, std::min(left - keep, left / 2));
    tokens::apply_options o;
    o.sizes = sizes;
    const tokens::applied merged = tokens::apply(step, in.keys, o);
    keys.assign(merged.hidden.data<float>(), merged.hidden.data<float>() + merged.hidden.numel());
    sizes = merged.sizes;
    chain = tokens::compose(chain, step);
  }
  return chain;
}

// (out height, out width) for the DCT low-pass of 64, 128 and 192 tokens.
std::pair<std::int64_t, std::int64_t> spectral_shape(std::int64_t keep) {
  return keep == 64 ? std::pair{8, 8} : keep == 128 ? std::pair{8, 16} : std::pair{12, 16};
}

// sqrt(h/N) C_h^T [C_N]_h, as tokens::fourier_features defines it.
std::vector<double> lowpass(std::int64_t h, std::int64_t size) {
  const double pi = 3.14159265358979323846;
  auto c = [&](std::int64_t m, std::int64_t k, std::int64_t i) {
    return (k ? std::sqrt(2.0 / double(m)) : std::sqrt(1.0 / double(m))) * std::cos(pi * (double(i) + 0.5) * double(k) / double(m));
  };
  std::vector<double> l(std::size_t(h * size), 0.0);
  for (std::int64_t a = 0; a < h; ++a)
    for (std::int64_t i = 0; i < size; ++i)
      for (std::int64_t k = 0; k < h; ++k) l[std::size_t(a * size + i)] += std::sqrt(double(h) / double(size)) * c(h, k, a) * c(size, k, i);
  return l;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : std::string(CINCH_DATA_DIR) + "/images/nagasaki-boats.jpg";
  const std::string prefix = argc > 2 ? argv[2] : "tokens_photo";
  const image photo = square(read_jpeg(path));
  const std::vector<float> pixels = patches(photo);
  stand_ins s = inputs_of(pixels);

  tokens::inputs in;
  in.features = tensor_view(s.features.data(), dtype::f32, {n, dim});
  in.keys = tensor_view(s.keys.data(), dtype::f32, {n, 64});
  in.cls_attention = tensor_view(s.saliency.data(), dtype::f32, {n});
  in.shape = {1, cells, cells};
  tokens::inputs text = in;  // FastV ranks by the text's attention: the same saliency as one query row
  text.text_attention = tensor_view(s.saliency.data(), dtype::f32, {1, n});

  const std::vector<method> methods = {
      {"random", [&](std::int64_t k) { return tokens::random_prune(n, k, 1); }},
      {"pool", [&](std::int64_t k) { return tokens::pool(in.shape, k); }},
      {"tome", [&](std::int64_t k) { return tome_to(s, k); }},
      {"fastv", [&](std::int64_t k) { return tokens::fastv(text, k); }},
      {"visionzip", [&](std::int64_t k) { return tokens::visionzip(in, k); }},
      {"prumerge+", [&](std::int64_t k) { return tokens::prumerge(in, {.plus = true, .keep = k}); }},
      {"divprune", [&](std::int64_t k) { return tokens::divprune(in, k); }},
      {"dart", [&](std::int64_t k) { return tokens::dart(in, k, {.image_pivots = 4, .text_pivots = 0}); }},
      {"greedyprune", [&](std::int64_t k) { return tokens::greedy_prune(in, k, {.tau = 0.8f}); }},
      {"scissor", [&](std::int64_t k) { return tokens::scissor(in, {.tau = 0.98f, .keep = k}); }},
      {"fourier", [&](std::int64_t k) { return tokens::fourier_plan(in.shape, spectral_shape(k).first, spectral_shape(k).second); }, true},
  };
  const std::int64_t budgets[] = {64, 128, 192};

  image regions{3 * side, int(methods.size()) * side, std::vector<float>(std::size_t(3 * side) * std::size_t(methods.size() * side) * 3)};
  image rebuilt = regions;
  std::printf("%-12s %10s %10s %10s   (PSNR of the reconstruction, dB; %d tokens of %dx%d patches)\n", "method", "64", "128",
              "192", n, patch, patch);
  for (std::size_t m = 0; m < methods.size(); ++m) {
    std::printf("%-12s", methods[m].name.c_str());
    for (int b = 0; b < 3; ++b) {
      const tokens::plan p = methods[m].plan_for(budgets[b]);
      tokens::validate(p);
      // Reconstruction: every source patch from its output row, as the plain mean of the row's
      // patches (VisionZip's target + mean and PruMerge's attention-weighted sums feed a model
      // well but are not images); pruned patches from the nearest kept one.
      tokens::plan mean_plan = p;
      mean_plan.weights.clear();
      const tokens::applied merged = tokens::apply(mean_plan, tensor_view(pixels.data(), dtype::f32, {n, dim}));
      std::vector<float> out(pixels.size());
      for (int t = 0; t < n; ++t) {
        std::int64_t r = p.assign[std::size_t(t)];
        if (r < 0) {
          std::int64_t best = 1 << 30;
          for (std::int64_t k = 0; k < p.output_tokens(); ++k) {
            const std::int64_t u = p.kept[std::size_t(k)];
            const std::int64_t dy = u / cells - t / cells, dx = u % cells - t % cells, d2 = dy * dy + dx * dx;
            if (d2 < best) best = d2, r = k;
          }
        }
        std::copy_n(merged.hidden.data<float>() + r * dim, dim, out.begin() + std::ptrdiff_t(t) * dim);
      }
      if (methods[m].spectral) {  // the DCT tokens, then their exact low-pass inverse
        const auto [h, w] = spectral_shape(budgets[b]);
        std::vector<float> low(std::size_t(h * w) * dim);
        tokens::fourier_features(tensor_view(pixels.data(), dtype::f32, {n, dim}), in.shape, h, w,
                                 tensor_view(low.data(), dtype::f32, {h * w, dim}));
        const std::vector<double> lh = lowpass(h, cells), lw = lowpass(w, cells);
        const double gain = double(cells * cells) / double(h * w);
        for (int t = 0; t < n; ++t)
          for (int c = 0; c < dim; ++c) {
            double v = 0;
            for (std::int64_t i = 0; i < h; ++i)
              for (std::int64_t j = 0; j < w; ++j)
                v += lh[std::size_t(i * cells + t / cells)] * lw[std::size_t(j * cells + t % cells)] * low[std::size_t(i * w + j) * dim + std::size_t(c)];
            out[std::size_t(t) * dim + std::size_t(c)] = float(gain * v);
          }
      }
      const image r = from_patches(out);
      std::printf(" %10.2f", psnr(photo, r));
      if (p.output_tokens() != budgets[b]) std::printf(" (%lld tokens)", static_cast<long long>(p.output_tokens()));
      // Panels: colour per output row over the photo, representatives outlined, pruned patches dark.
      for (int y = 0; y < side; ++y)
        for (int x = 0; x < side; ++x) {
          const int t = (y / patch) * cells + x / patch;
          const std::int64_t a = p.assign[std::size_t(t)];
          const std::size_t src = (std::size_t(y) * side + std::size_t(x)) * 3;
          const std::size_t dst = ((std::size_t(m) * side + std::size_t(y)) * std::size_t(3 * side) + std::size_t(b * side + x)) * 3;
          const bool edge = y % patch == 0 || x % patch == 0 || y % patch == patch - 1 || x % patch == patch - 1;
          const bool lead = a >= 0 && p.kept[std::size_t(a)] == t;
          for (int c = 0; c < 3; ++c) {
            const float tint = float(mix(std::uint64_t(a) * 3 + std::uint64_t(c)) % 200 + 40);
            float v = photo.rgb[src + std::size_t(c)];
            if (a < 0) v *= 0.2f;
            else if (lead && edge) v = c == 0 ? 255.0f : 0.0f;
            else if (p.sizes[std::size_t(a)] > 1) v = 0.55f * v + 0.45f * tint;
            regions.rgb[dst + std::size_t(c)] = v;
            rebuilt.rgb[dst + std::size_t(c)] = r.rgb[src + std::size_t(c)];
          }
        }
    }
    std::printf("\n");
  }
  write_jpeg(prefix + "_regions.jpg", regions);
  write_jpeg(prefix + "_reconstruction.jpg", rebuilt);
  std::printf("wrote %s_regions.jpg and %s_reconstruction.jpg (rows: methods in the order above; columns: 64, 128, 192)\n",
              prefix.c_str(), prefix.c_str());
  return 0;
}

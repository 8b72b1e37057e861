// Compresses every linear layer of the stories260K model (data/models/stories260K.bin)
// at several keep ratios and measures how far the compressed model's next-token
// distributions move from the original's.
//
// The compressed model runs its own Llama-2 forward pass in which every linear
// layer is a lowrank::apply of its factors (the fused kernel, one token at a time,
// as an engine decodes); attention reuses tiny_llama's exact KV store. The same
// forward pass with dense layers first checks itself against tiny_llama::model and
// collects calibration statistics (the inputs of every linear layer) from
// sequences the model samples itself.
//
// Methods: plain truncated SVD, ASVD (input channels scaled by mean |x|^0.5) and
// SVD-LLM (whitened by the calibration Gram matrices). Rank policies at each keep
// ratio of the linear layers' parameters (keep 1.0: the largest rank that saves
// nothing, half of a square matrix's):
//   uniform  every matrix gets rank_for(m, n, keep)
//   global   allocate_ranks spends the same budget on the largest relative loss:
//            sigma_i^2 / sum sigma^2 of W (SVD) or of W S (SVD-LLM, where it is
//            the exact share of the layer's output error on the calibration data)
// Evaluation: 8 other sampled sequences teacher-forced through the original model
// and the compressed one: top-1 agreement and mean KL(original || compressed).
//
//   ./lowrank_stories [path/to/stories260K.bin]
#include <cinch/lowrank/allocate.hpp>
#include <cinch/lowrank/apply.hpp>
#include <cinch/lowrank/methods.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "model.hpp"

#ifndef CINCH_DATA_DIR
#define CINCH_DATA_DIR "data"
#endif

namespace {

using cinch::tensor_view;
using namespace cinch::lowrank;

// The fp32 arrays of a llama2.c checkpoint, after its 7 int32 of config.
std::vector<float> read_weights(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open " + path);
  const std::size_t bytes = std::size_t(in.tellg()) - 7 * sizeof(std::int32_t);
  std::vector<float> w(bytes / sizeof(float));
  in.seekg(7 * sizeof(std::int32_t));
  in.read(reinterpret_cast<char*>(w.data()), std::streamsize(w.size() * sizeof(float)));
  return w;
}

// A linear layer y = W x: dense, or factors applied by the fused kernel.
struct linear {
  tensor_view dense;  // [out, in], into the checkpoint
  std::optional<factors> low;
  void operator()(std::span<const float> x, std::span<float> y) const {
    const tensor_view xv(x.data(), cinch::dtype::f32, {1, std::int64_t(x.size())});
    const tensor_view yv(y.data(), cinch::dtype::f32, {1, std::int64_t(y.size())});
    if (low)
      apply(*low, xv, yv);
    else
      apply_dense(dense, xv, yv);
  }
};

// The four places a linear layer reads its input in each block.
enum site { attention_in, attention_out, mlp_in, mlp_hidden, sites };
// The seven linear layers of a block and the site each reads.
enum which { wq, wk, wv, wo, w1, w2, w3, linears_per_block };
constexpr site input_of[linears_per_block] = {attention_in, attention_in, attention_in, attention_out,
                                              mlp_in,       mlp_hidden,   mlp_in};

struct block {
  std::span<const float> rms_att, rms_ffn;
  linear w[linears_per_block];
};

// llama2.c's Llama-2 forward pass (as examples/tiny_llama/model.cpp computes it)
// over `linear` layers; optionally records every linear layer's input.
class factorized_llama {
 public:
  factorized_llama(const tiny_llama::config& c, const std::vector<float>& weights) : c_(c) {
    const std::size_t L = std::size_t(c.n_layers), dim = std::size_t(c.dim), kv = std::size_t(c.kv_dim()),
                      hid = std::size_t(c.hidden_dim), vocab = std::size_t(c.vocab_size);
    std::size_t at = 0;
    auto take = [&](std::size_t n) {
      const std::span<const float> s(weights.data() + at, n);
      at += n;
      return s;
    };
    embedding_ = take(vocab * dim);
    const auto rms_att = take(L * dim);
    const std::size_t shapes[linears_per_block][2] = {{dim, dim}, {kv, dim}, {kv, dim}, {dim, dim},
                                                      {hid, dim}, {dim, hid}, {hid, dim}};
    blocks_.resize(L);
    for (const int k : {int(wq), int(wk), int(wv), int(wo), -1, int(w1), int(w2), int(w3)}) {
      if (k < 0) {  // rms_ffn sits between wo and w1
        const auto rms_ffn = take(L * dim);
        for (std::size_t l = 0; l < L; ++l) blocks_[l].rms_ffn = rms_ffn.subspan(l * dim, dim);
        continue;
      }
      const auto [rows, cols] = shapes[k];
      for (std::size_t l = 0; l < L; ++l)
        blocks_[l].w[k].dense = tensor_view(take(rows * cols).data(), cinch::dtype::f32,
                                            {std::int64_t(rows), std::int64_t(cols)});
    }
    for (std::size_t l = 0; l < L; ++l) blocks_[l].rms_att = rms_att.subspan(l * dim, dim);
    rms_final_ = take(dim);
  }

  std::vector<block>& blocks() { return blocks_; }
  // Per block and site: where forward() adds the inputs it sees (nullptr: nowhere).
  void record(std::vector<calibration>* sink) { sink_ = sink; }

  std::vector<float> forward(int token, int pos, tiny_llama::kv_store& cache) {
    const std::size_t dim = std::size_t(c_.dim), hid = std::size_t(c_.hidden_dim);
    std::vector<float> x(embedding_.begin() + std::ptrdiff_t(std::size_t(token) * dim),
                         embedding_.begin() + std::ptrdiff_t(std::size_t(token + 1) * dim));
    std::vector<float> xb(dim), q(dim), k(std::size_t(c_.kv_dim())), v(k.size()), att(dim), out(dim), h1(hid), h3(hid);
    for (std::size_t l = 0; l < blocks_.size(); ++l) {
      const block& b = blocks_[l];
      rmsnorm(xb, x, b.rms_att);
      see(l, attention_in, xb);
      b.w[wq](xb, q);
      b.w[wk](xb, k);
      b.w[wv](xb, v);
      rope(q, pos);
      rope(k, pos);
      cache.append(int(l), k, v);
      cache.attend(int(l), q, att);
      see(l, attention_out, att);
      b.w[wo](att, out);
      for (std::size_t i = 0; i < dim; ++i) x[i] += out[i];
      rmsnorm(xb, x, b.rms_ffn);
      see(l, mlp_in, xb);
      b.w[w1](xb, h1);
      b.w[w3](xb, h3);
      for (std::size_t i = 0; i < hid; ++i) h1[i] = h1[i] / (1.0f + std::exp(-h1[i])) * h3[i];  // SwiGLU
      see(l, mlp_hidden, h1);
      b.w[w2](h1, out);
      for (std::size_t i = 0; i < dim; ++i) x[i] += out[i];
    }
    rmsnorm(x, x, rms_final_);
    std::vector<float> logits(std::size_t(c_.vocab_size));
    apply_dense(tensor_view(embedding_.data(), cinch::dtype::f32, {c_.vocab_size, c_.dim}),
                tensor_view(x.data(), cinch::dtype::f32, {1, c_.dim}),
                tensor_view(logits.data(), cinch::dtype::f32, {1, c_.vocab_size}));
    return logits;
  }

 private:
  static void rmsnorm(std::span<float> out, std::span<const float> x, std::span<const float> weight) {
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const float scale = 1.0f / std::sqrt(float(ss / double(x.size())) + 1e-5f);
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = weight[i] * (scale * x[i]);
  }
  void rope(std::span<float> vec, int pos) const {
    const int hd = c_.head_dim();
    for (std::size_t i = 0; i + 1 < vec.size(); i += 2) {
      const float angle = float(pos) / std::pow(10000.0f, float(int(i % std::size_t(hd))) / float(hd));
      const float cs = std::cos(angle), sn = std::sin(angle), a = vec[i], b = vec[i + 1];
      vec[i] = a * cs - b * sn;
      vec[i + 1] = a * sn + b * cs;
    }
  }
  void see(std::size_t l, site s, std::span<const float> x) {
    if (sink_) (*sink_)[l * sites + s].add(tensor_view(x.data(), cinch::dtype::f32, {1, std::int64_t(x.size())}));
  }

  tiny_llama::config c_;
  std::span<const float> embedding_, rms_final_;
  std::vector<block> blocks_;
  std::vector<calibration>* sink_ = nullptr;
};

struct agreement {
  double top1 = 0, mean_kl = 0;
};

// Teacher-forces each sequence through the original and the factorized model.
agreement compare(tiny_llama::model& original, factorized_llama& model, const std::vector<std::vector<int>>& sequences) {
  agreement a;
  double positions = 0;
  for (const std::vector<int>& seq : sequences) {
    tiny_llama::exact_store c0(original.cfg()), c1(original.cfg());
    for (std::size_t pos = 0; pos < seq.size(); ++pos) {
      const std::vector<float> p = tiny_llama::softmax(original.forward(seq[pos], int(pos), c0));
      const std::vector<float> q = tiny_llama::softmax(model.forward(seq[pos], int(pos), c1));
      for (std::size_t i = 0; i < p.size(); ++i)
        if (p[i] > 0) a.mean_kl += double(p[i]) * (std::log(double(p[i])) - std::log(std::max(double(q[i]), 1e-30)));
      a.top1 += (std::max_element(p.begin(), p.end()) - p.begin()) == (std::max_element(q.begin(), q.end()) - q.begin());
      positions += 1;
    }
  }
  a.top1 /= positions;
  a.mean_kl /= positions;
  return a;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string path = argc > 1 ? argv[1] : CINCH_DATA_DIR "/models/stories260K.bin";
  tiny_llama::model original(path);
  const tiny_llama::config& c = original.cfg();
  const std::vector<float> weights = read_weights(path);
  factorized_llama model(c, weights);

  // 1. The dense forward pass against tiny_llama's, on one sampled sequence.
  const std::vector<int> check = tiny_llama::sample_sequence(original, 32, 1.0f, 99);
  double worst = 0;
  {
    tiny_llama::exact_store c0(c), c1(c);
    for (std::size_t pos = 0; pos < check.size(); ++pos) {
      const std::span<const float> p = original.forward(check[pos], int(pos), c0);
      const std::vector<float> q = model.forward(check[pos], int(pos), c1);
      for (std::size_t i = 0; i < q.size(); ++i) worst = std::max(worst, double(std::abs(p[i] - q[i])));
    }
  }
  std::printf("dense forward vs tiny_llama::model: max |logit difference| %.2e\n", worst);

  // 2. Calibration: the inputs of every linear layer over 16 sampled sequences.
  std::vector<calibration> stats;
  for (int l = 0; l < c.n_layers; ++l)
    for (int s = 0; s < sites; ++s) stats.emplace_back(s == mlp_hidden ? c.hidden_dim : c.dim);
  model.record(&stats);
  for (std::uint64_t seed = 101; seed <= 116; ++seed) {
    tiny_llama::exact_store cache(c);
    const std::vector<int> seq = tiny_llama::sample_sequence(original, 128, 1.0f, seed);
    for (std::size_t pos = 0; pos < seq.size(); ++pos) (void)model.forward(seq[pos], int(pos), cache);
  }
  model.record(nullptr);
  std::printf("calibration: %lld tokens per linear layer\n", static_cast<long long>(stats.front().tokens()));

  std::vector<std::vector<int>> evaluation;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) evaluation.push_back(tiny_llama::sample_sequence(original, 64, 1.0f, seed));

  // 3. Spectra of every matrix, plain and whitened, as the global policy's input.
  struct matrix_ref {
    tensor_view w;
    const calibration* stats;
    layer_spectrum plain, whitened;
  };
  std::vector<matrix_ref> matrices;
  std::int64_t dense = 0;
  auto relative = [](const tensor_view& w, std::vector<double> sigma) {
    double energy = 0;
    for (double s : sigma) energy += s * s;
    return layer_spectrum{w.size(0), w.size(1), std::move(sigma), 1.0 / energy};
  };
  for (std::size_t l = 0; l < model.blocks().size(); ++l)
    for (int k = 0; k < linears_per_block; ++k) {
      const tensor_view w = model.blocks()[l].w[k].dense;
      const calibration& s = stats[l * sites + input_of[k]];
      matrices.push_back({w, &s, relative(w, singular_values(w)), relative(w, whitened_singular_values(w, s))});
      dense += w.numel();
    }
  std::printf("%zu linear layers, %lld parameters\n\n", matrices.size(), static_cast<long long>(dense));

  // 4. Compress at each keep ratio with each method and policy; evaluate with the fused apply.
  enum class method { svd, asvd, svd_llm };
  struct variant {
    method how;
    bool global;
    const char* name;
  };
  const variant variants[] = {{method::svd, false, "SVD      uniform"},
                              {method::svd, true, "SVD      global"},
                              {method::asvd, false, "ASVD     uniform"},
                              {method::svd_llm, false, "SVD-LLM  uniform"},
                              {method::svd_llm, true, "SVD-LLM  global"}};
  std::printf("%-6s %-17s %11s %10s %11s\n", "keep", "method   ranks", "parameters", "top-1", "KL (nats)");
  for (double keep : {1.0, 0.75, 0.5, 0.3}) {
    for (const variant& v : variants) {
      std::vector<layer_spectrum> spectra;
      for (const matrix_ref& m : matrices) spectra.push_back(v.how == method::svd_llm ? m.whitened : m.plain);
      const std::vector<std::int64_t> global = allocate_ranks(spectra, keep_ratio{keep});
      std::int64_t params = 0;
      for (std::size_t i = 0; i < matrices.size(); ++i) {
        const matrix_ref& m = matrices[i];
        const std::int64_t rank = v.global ? global[i] : rank_for(m.w.size(0), m.w.size(1), keep_ratio{keep});
        model.blocks()[i / linears_per_block].w[i % linears_per_block].low =
            v.how == method::svd_llm ? compress_svd_llm(m.w, rank, *m.stats)
            : v.how == method::asvd  ? compress_asvd(m.w, rank, *m.stats)
                                     : compress_svd(m.w, rank);
        params += factor_parameters(m.w.size(0), m.w.size(1), rank);
      }
      const agreement a = compare(original, model, evaluation);
      std::printf("%-6.2f %-17s %11lld %9.1f%% %11.4f\n", keep, v.name, static_cast<long long>(params), 100 * a.top1,
                  a.mean_kl);
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "lowrank_stories: %s\n", e.what());
  return 1;
}

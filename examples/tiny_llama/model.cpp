#include "model.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

namespace tiny_llama {
namespace {

void rmsnorm(std::span<float> out, std::span<const float> x, std::span<const float> weight) {
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const float scale = 1.0f / std::sqrt(float(ss / double(x.size())) + 1e-5f);
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = weight[i] * (scale * x[i]);
}

// out[rows] = W[rows, cols] x[cols]
void matmul(std::span<float> out, std::span<const float> x, std::span<const float> w) {
  const std::size_t cols = x.size();
  for (std::size_t r = 0; r < out.size(); ++r) {
    float sum = 0;
    const float* row = w.data() + r * cols;
    for (std::size_t c = 0; c < cols; ++c) sum += row[c] * x[c];
    out[r] = sum;
  }
}

// llama2.c's RoPE: rotate adjacent pairs (i, i+1) of each head by pos * theta^(-(i mod head_dim) / head_dim).
void rope(std::span<float> vec, int pos, int head_dim) {
  for (std::size_t i = 0; i + 1 < vec.size(); i += 2) {
    const int j = int(i % std::size_t(head_dim));
    const float freq = 1.0f / std::pow(10000.0f, float(j) / float(head_dim));
    const float angle = float(pos) * freq;
    const float c = std::cos(angle), s = std::sin(angle);
    const float a = vec[i], b = vec[i + 1];
    vec[i] = a * c - b * s;
    vec[i + 1] = a * s + b * c;
  }
}

}  // namespace

std::vector<float> softmax(std::span<const float> logits) {
  std::vector<float> p(logits.begin(), logits.end());
  const float mx = *std::max_element(p.begin(), p.end());
  double sum = 0;
  for (float& v : p) sum += v = std::exp(v - mx);
  for (float& v : p) v = float(v / sum);
  return p;
}

exact_store::exact_store(const config& c) : config_(c), keys_(std::size_t(c.n_layers)), values_(std::size_t(c.n_layers)) {}

void exact_store::append(int layer, std::span<const float> k, std::span<const float> v) {
  auto& keys = keys_[std::size_t(layer)];
  auto& values = values_[std::size_t(layer)];
  keys.insert(keys.end(), k.begin(), k.end());
  values.insert(values.end(), v.begin(), v.end());
}

void exact_store::attend(int layer, std::span<const float> q, std::span<float> out) {
  const int hd = config_.head_dim(), kv_dim = config_.kv_dim();
  const int group = config_.n_heads / config_.n_kv_heads;
  const auto& keys = keys_[std::size_t(layer)];
  const auto& values = values_[std::size_t(layer)];
  const std::size_t tokens = keys.size() / std::size_t(kv_dim);
  std::vector<float> scores(tokens);
  for (int h = 0; h < config_.n_heads; ++h) {
    const int kvh = h / group;
    const float* qh = q.data() + h * hd;
    for (std::size_t t = 0; t < tokens; ++t) {
      const float* k = keys.data() + t * std::size_t(kv_dim) + std::size_t(kvh * hd);
      float dot = 0;
      for (int d = 0; d < hd; ++d) dot += qh[d] * k[d];
      scores[t] = dot / std::sqrt(float(hd));
    }
    const std::vector<float> p = softmax(scores);
    float* oh = out.data() + h * hd;
    std::fill(oh, oh + hd, 0.0f);
    for (std::size_t t = 0; t < tokens; ++t) {
      const float* v = values.data() + t * std::size_t(kv_dim) + std::size_t(kvh * hd);
      for (int d = 0; d < hd; ++d) oh[d] += p[t] * v[d];
    }
  }
}

std::int64_t exact_store::bytes() const {
  std::int64_t n = 0;
  for (const auto& k : keys_) n += std::int64_t(k.size() * sizeof(float));
  for (const auto& v : values_) n += std::int64_t(v.size() * sizeof(float));
  return n;
}

model::model(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("tiny_llama: cannot open " + path);
  std::int32_t header[7];
  if (!in.read(reinterpret_cast<char*>(header), sizeof header)) throw std::runtime_error("tiny_llama: truncated header in " + path);
  config_ = {header[0], header[1], header[2], header[3], header[4], std::abs(header[5]), header[6]};
  const bool shared_classifier = header[5] > 0;
  const config& c = config_;
  if (c.dim <= 0 || c.hidden_dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.vocab_size <= 0 ||
      c.seq_len <= 0 || c.dim % c.n_heads || c.n_heads % c.n_kv_heads || c.head_dim() % 2)
    throw std::runtime_error("tiny_llama: inconsistent config in " + path);

  const std::size_t L = std::size_t(c.n_layers), dim = std::size_t(c.dim), kv = std::size_t(c.kv_dim()),
                    hid = std::size_t(c.hidden_dim), vocab = std::size_t(c.vocab_size);
  const std::size_t freq_cis = std::size_t(c.seq_len) * std::size_t(c.head_dim());  // real and imaginary halves
  const std::size_t count = vocab * dim + L * (2 * dim + 2 * dim * dim + 2 * kv * dim + 3 * hid * dim) + dim + freq_cis +
                            (shared_classifier ? 0 : vocab * dim);
  weights_.resize(count);
  if (!in.read(reinterpret_cast<char*>(weights_.data()), std::streamsize(count * sizeof(float))))
    throw std::runtime_error("tiny_llama: " + path + " holds fewer weights than its config needs");

  std::span<const float> rest(weights_);
  auto take = [&rest](std::size_t n) {
    const std::span<const float> s = rest.first(n);
    rest = rest.subspan(n);
    return s;
  };
  embedding_ = take(vocab * dim);
  const auto rms_att = take(L * dim), wq = take(L * dim * dim), wk = take(L * kv * dim), wv = take(L * kv * dim),
             wo = take(L * dim * dim), rms_ffn = take(L * dim), w1 = take(L * hid * dim), w2 = take(L * dim * hid),
             w3 = take(L * hid * dim);
  rms_final_ = take(dim);
  take(freq_cis);  // precomputed RoPE tables: recomputed instead
  classifier_ = shared_classifier ? embedding_ : take(vocab * dim);
  for (std::size_t l = 0; l < L; ++l)
    layers_.push_back({rms_att.subspan(l * dim, dim), wq.subspan(l * dim * dim, dim * dim), wk.subspan(l * kv * dim, kv * dim),
                       wv.subspan(l * kv * dim, kv * dim), wo.subspan(l * dim * dim, dim * dim),
                       rms_ffn.subspan(l * dim, dim), w1.subspan(l * hid * dim, hid * dim),
                       w2.subspan(l * dim * hid, dim * hid), w3.subspan(l * hid * dim, hid * dim)});

  x_.resize(dim);
  xb_.resize(dim);
  q_.resize(dim);
  k_.resize(kv);
  v_.resize(kv);
  att_.resize(dim);
  hb_.resize(hid);
  hb2_.resize(hid);
  logits_.resize(vocab);
}

std::vector<std::pair<std::string, cinch::tensor_view>> model::named_weights() const {
  const std::int64_t dim = config_.dim, kv = config_.kv_dim(), hid = config_.hidden_dim, vocab = config_.vocab_size;
  std::vector<std::pair<std::string, cinch::tensor_view>> out;
  auto add = [&out](std::string name, std::span<const float> w, std::int64_t rows, std::int64_t cols) {
    out.emplace_back(std::move(name), rows ? cinch::tensor_view(w.data(), cinch::dtype::f32, {rows, cols})
                                           : cinch::tensor_view(w.data(), cinch::dtype::f32, {cols}));
  };
  add("tok_embeddings.weight", embedding_, vocab, dim);
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const layer_weights& w = layers_[l];
    const std::string p = "layers." + std::to_string(l) + ".";
    add(p + "attention_norm.weight", w.rms_att, 0, dim);
    add(p + "attention.wq.weight", w.wq, dim, dim);
    add(p + "attention.wk.weight", w.wk, kv, dim);
    add(p + "attention.wv.weight", w.wv, kv, dim);
    add(p + "attention.wo.weight", w.wo, dim, dim);
    add(p + "ffn_norm.weight", w.rms_ffn, 0, dim);
    add(p + "feed_forward.w1.weight", w.w1, hid, dim);
    add(p + "feed_forward.w2.weight", w.w2, dim, hid);
    add(p + "feed_forward.w3.weight", w.w3, hid, dim);
  }
  add("norm.weight", rms_final_, 0, dim);
  return out;
}

std::span<const float> model::forward(int token, int pos, kv_store& cache) {
  const config& c = config_;
  if (token < 0 || token >= c.vocab_size) throw std::runtime_error("tiny_llama: token id out of range");
  const std::size_t dim = std::size_t(c.dim);
  std::copy_n(embedding_.begin() + std::ptrdiff_t(std::size_t(token) * dim), dim, x_.begin());

  for (int l = 0; l < c.n_layers; ++l) {
    const layer_weights& w = layers_[std::size_t(l)];
    rmsnorm(xb_, x_, w.rms_att);
    matmul(q_, xb_, w.wq);
    matmul(k_, xb_, w.wk);
    matmul(v_, xb_, w.wv);
    rope(q_, pos, c.head_dim());
    rope(k_, pos, c.head_dim());
    cache.append(l, k_, v_);
    cache.attend(l, q_, att_);
    matmul(xb_, att_, w.wo);
    for (std::size_t i = 0; i < dim; ++i) x_[i] += xb_[i];

    rmsnorm(xb_, x_, w.rms_ffn);
    matmul(hb_, xb_, w.w1);
    matmul(hb2_, xb_, w.w3);
    for (std::size_t i = 0; i < hb_.size(); ++i) hb_[i] = hb_[i] / (1.0f + std::exp(-hb_[i])) * hb2_[i];  // SwiGLU
    matmul(xb_, hb_, w.w2);
    for (std::size_t i = 0; i < dim; ++i) x_[i] += xb_[i];
  }
  rmsnorm(x_, x_, rms_final_);
  matmul(logits_, x_, classifier_);
  return logits_;
}

std::vector<int> sample_sequence(model& m, int length, float temperature, std::uint64_t seed) {
  exact_store cache(m.cfg());
  std::mt19937_64 rng(seed);
  std::vector<int> tokens{1};  // BOS
  std::vector<float> scaled(std::size_t(m.cfg().vocab_size));
  for (int pos = 0; int(tokens.size()) < length; ++pos) {
    const std::span<const float> logits = m.forward(tokens.back(), pos, cache);
    if (temperature <= 0) {  // greedy
      tokens.push_back(int(std::max_element(logits.begin(), logits.end()) - logits.begin()));
      continue;
    }
    for (std::size_t i = 0; i < scaled.size(); ++i) scaled[i] = logits[i] / temperature;
    const std::vector<float> p = softmax(scaled);
    // Inverse-CDF sampling with our own uniform, so sequences are the same with every standard library.
    const double u = double(rng() >> 11) * 0x1p-53;
    double cdf = 0;
    int next = int(p.size()) - 1;
    for (std::size_t i = 0; i < p.size(); ++i)
      if ((cdf += p[i]) > u) {
        next = int(i);
        break;
      }
    tokens.push_back(next);
  }
  return tokens;
}

}  // namespace tiny_llama

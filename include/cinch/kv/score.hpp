// Token scorers for KV-cache eviction: one score per token of every KV head of a
// layer (cinch::kv::head_scores, higher = keep), for the selectors of
// cinch/kv/select.hpp. Formulas and defaults: the published methods (kvpress
// where the paper leaves a choice); docs/eviction_scorers.md has the details.
//
// Every scorer takes either
//   * a kv::cache layer, read through kv::head_view and never materialized in
//     f32: attention logits come straight from the packed codes (decode
//     attention's kernels, reference or Highway), other reads decode one token
//     at a time. Rotated keys are scored with rotated queries (or rotated-back
//     rows where channels matter: LagKV). Heads may hold different numbers of
//     tokens. A mixed-precision cache is scored while its part 1 is empty (before
//     cache::demote, MiKV); tokens in part 1 are errc::unsupported.
//   * dense f32 tensors keys (and values) [kv_heads, T, head_dim], dense rows.
// and returns one head_scores per KV head, oldest token first.
//
// Window queries: [q_heads, w, head_dim] f32, the last w queries of the context,
// post-RoPE like the keys; q_heads must be a multiple of kv_heads (else
// errc::shape_mismatch) and query heads h*g .. h*g+g-1 share KV head h (g =
// q_heads / kv_heads). Query i of the window sits at token T - w + i of a head of
// T tokens and attends causally to tokens j <= T - w + i; w > T is
// errc::invalid_argument. Attention rows are softmax(scale * q . k) over the
// visible tokens (max subtracted, exp, divided by the sum); only these w x T rows
// are computed, never T x T. Per query head scores are combined per KV head by
// the mean (sum in query-head order, divided by g) or the max.
//
// Protected tokens (sinks, SnapKV's window, LagKV's reference-less tail) score
// +inf so that every selector keeps them. Host memory only. Bad input throws
// cinch::error naming the function and the argument.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "cinch/core/tensor_view.hpp"
#include "cinch/kv/cache.hpp"
#include "cinch/kv/select.hpp"

namespace cinch::kv {

// How the query heads that share a KV head (grouped-query attention) combine.
enum class group_reduce : std::uint8_t { mean, max };

// Scorers computing attention from window queries.
struct attention_options {
  std::optional<float> scale;                // logit scale; default 1 / sqrt(head_dim)
  group_reduce reduce = group_reduce::mean;  // kvpress averages over the group
};

// ---------------------------------------------------------------- StreamingLLM
// Attention sinks plus recency: token t of a head of T tokens scores +inf for
// t < sinks, else -(T - 1 - t) (minus its age, exact below 2^24): a top-k keeps
// the sinks and the k - sinks most recent tokens, and ages compare across heads.
struct streaming_llm_options {
  int sinks = 4;  // start_size of the paper's code
};
[[nodiscard]] std::vector<head_scores> streaming_llm_scores(const cache& c, int layer,
                                                            const streaming_llm_options& options = {});
[[nodiscard]] std::vector<head_scores> streaming_llm_scores(const tensor_view& keys,
                                                            const streaming_llm_options& options = {});

// ---------------------------------------------------------------- H2O
// Prefill: score_j = sum over the window's queries i of A[i, j] (column sums of
// the window attention, every token including the window's own; H2O's recent
// tokens are kept by the selector's protection). Decode: score a step's query as
// a window of one ([q_heads, 1, head_dim]) and add it with h2o_accumulate.
[[nodiscard]] std::vector<head_scores> h2o_scores(const cache& c, int layer, const tensor_view& queries,
                                                  const attention_options& options = {});
[[nodiscard]] std::vector<head_scores> h2o_scores(const tensor_view& keys, const tensor_view& queries,
                                                  const attention_options& options = {});
// total[j] += step[j]; total first grows with zeros to step's length (the tokens
// appended since); step shorter than total is errc::shape_mismatch.
void h2o_accumulate(head_scores& total, std::span<const float> step);

// ---------------------------------------------------------------- ObservedAttention
// Mean attention a token receives from the window queries that can see it:
// score_j = sum_i A[i, j] / min(w, T - j) (kvpress: column sum / (T - j) when the
// window is the whole context).
[[nodiscard]] std::vector<head_scores> observed_attention_scores(const cache& c, int layer, const tensor_view& queries,
                                                                 const attention_options& options = {});
[[nodiscard]] std::vector<head_scores> observed_attention_scores(const tensor_view& keys, const tensor_view& queries,
                                                                 const attention_options& options = {});

// ---------------------------------------------------------------- SnapKV
// The last `window` rows of the queries (w = window): for tokens j < T - w,
// v_j = (1 / w) sum_i A[i, j], pooled along j per query head with `kernel`
// (odd), stride 1, same padding (avg: the kernel's sum / kernel, padding counted
// as zeros, as avg_pool1d; max: over the tokens inside), then combined over the
// group. The window's w tokens score +inf.
enum class pooling : std::uint8_t { avg, max };
struct snapkv_options {
  int window = 64;  // kvpress (the paper's code: 32)
  int kernel = 5;
  pooling pool = pooling::avg;
  attention_options attention;
};
[[nodiscard]] std::vector<head_scores> snapkv_scores(const cache& c, int layer, const tensor_view& queries,
                                                     const snapkv_options& options = {});
[[nodiscard]] std::vector<head_scores> snapkv_scores(const tensor_view& keys, const tensor_view& queries,
                                                     const snapkv_options& options = {});

// ---------------------------------------------------------------- TOVA
// The last query's attention (row w - 1 of the window, which sees every token)
// averaged over ALL query heads: the same scores for every KV head, so every head
// of the layer must hold the same number of tokens (else errc::shape_mismatch).
struct tova_options {
  std::optional<float> scale;  // default 1 / sqrt(head_dim)
};
[[nodiscard]] std::vector<head_scores> tova_scores(const cache& c, int layer, const tensor_view& queries,
                                                   const tova_options& options = {});
[[nodiscard]] std::vector<head_scores> tova_scores(const tensor_view& keys, const tensor_view& queries,
                                                   const tova_options& options = {});

// ---------------------------------------------------------------- KNorm
// score_t = -||k_t||_2: keys of small norm draw attention, so they are kept.
[[nodiscard]] std::vector<head_scores> knorm_scores(const cache& c, int layer);
[[nodiscard]] std::vector<head_scores> knorm_scores(const tensor_view& keys);

// ---------------------------------------------------------------- KeyDiff
// score_t = -cos(k_t, a), a = mean_s k_s / max(||k_s||, 1e-12), cos(x, y) =
// x . y / max(||x|| ||y||, 1e-8): distinctive keys are kept.
[[nodiscard]] std::vector<head_scores> keydiff_scores(const cache& c, int layer);
[[nodiscard]] std::vector<head_scores> keydiff_scores(const tensor_view& keys);

// ---------------------------------------------------------------- LagKV
// Attention-free, from keys and values in their true channels. Tokens after the
// sinks form partitions of `lag`; partition p (tokens sinks + p*lag ..) is
// scored against partition p + 1: per channel lo, hi = min, max over the
// reference, z = (x - lo) / (hi - lo) (0 where hi == lo), s = standard deviation
// of z over the channels (divided by head_dim - 1, as torch.std), softmax of s
// over the partition's tokens; score = (key s + value s) / 2, or with `rank` the
// token's rank within its partition / lag (kvpress; ties rank the lower index
// lower). The sinks, and the last full partition with the tokens after it, score
// +inf. A head shorter than sinks + 2 lag is not scored: sinks +inf, token t
// after them (t - sinks) / (T - sinks) (recency, as kvpress).
struct lagkv_options {
  int sinks = 4;    // kvpress (the paper's code: 16)
  int lag = 128;    // kvpress (the paper's code: 1024)
  bool rank = true;
};
[[nodiscard]] std::vector<head_scores> lagkv_scores(const cache& c, int layer, const lagkv_options& options = {});
[[nodiscard]] std::vector<head_scores> lagkv_scores(const tensor_view& keys, const tensor_view& values,
                                                    const lagkv_options& options = {});

// ---------------------------------------------------------------- Expected Attention
// From pre-RoPE queries [q_heads, n, head_dim] of the context, rows `sinks` .. n-1:
// per query head the mean mu and covariance Sigma (divided by the row count);
// R = mean of the RoPE rotations of positions next_position ..
// next_position + n_future - 1; mu' = R mu, Sigma' = R Sigma R^T. For t >= sinks:
//   e_t = scale * mu' . k_t + scale^2 * k_t^T Sigma' k_t / 2
// (the log of the Gaussian moment-generating function E[exp(scale q . k_t)]),
// a_t = softmax over t >= sinks of e_t, combined over the group, then
// (a_t + epsilon) * ||v_t||_2 with use_vnorm. The sinks score +inf. RoPE pairs
// channel i with i + head_dim/2 (half_split: HF Llama, GPT-NeoX) or 2i with 2i + 1
// (interleaved: GPT-J, Meta's Llama), frequency theta^(-2i / head_dim); head_dim
// must be even.
enum class rope_pairing : std::uint8_t { half_split, interleaved };
struct expected_attention_options {
  int sinks = 4;
  int n_future = 512;
  double rope_theta = 10000.0;
  rope_pairing pairing = rope_pairing::half_split;
  float epsilon = 0.01f;  // the kvpress leaderboard's value (its class default is 0)
  bool use_vnorm = true;
  bool use_covariance = true;
  // First future position; default: the context length (dense: T; cache: one past
  // the largest original position in the layer).
  std::optional<std::int64_t> next_position;
  attention_options attention;
};
[[nodiscard]] std::vector<head_scores> expected_attention_scores(const cache& c, int layer, const tensor_view& queries,
                                                                 const expected_attention_options& options = {});
[[nodiscard]] std::vector<head_scores> expected_attention_scores(const tensor_view& keys, const tensor_view& values,
                                                                 const tensor_view& queries,
                                                                 const expected_attention_options& options = {});

}  // namespace cinch::kv

// bench_prompt: the prompt module's hot paths, each with its baseline in this binary.
//
// Workload: Moby-Dick (data/text/moby_dick.txt, 1.2 MB, 317,756 GPT-2 tokens).
//   BM_prompt_bpe/cached       GPT-2 encoding of the whole text (the piece cache warm),
//   BM_prompt_bpe/cold         the same with a fresh tokenizer each time (cache empty),
//   BM_prompt_bpe_naive        the textbook loop on the first 100 KB: string symbols,
//                              repeatedly merge the lowest-ranked adjacent pair, no cache;
//                              all report MB/s (bytes_per_second); vs_naive = bytes per CPU
//                              second / the naive loop's (measured in this process).
//   BM_prompt_select/tokens:N/words:W
//                              select() given random per-token scores over the first N
//                              tokens: exact budget (30 %), spans and per-token results,
//                              no re-tokenization; W = 0: token units, no structure;
//                              W = 1: word units and structure detection (target: <= 5 ms
//                              at N = 100000).
//   BM_prompt_rank_sort/N      baseline: std::stable_sort of the N scores (the ranking alone).
//   BM_prompt_ngram/N          trigram Kneser-Ney log-probabilities of N tokens (tokens/s).
//   BM_prompt_<method>/N       methods end to end with the n-gram scorer (re-tokenization included).
//
//   bench_prompt --benchmark_min_time=0.2
#include <benchmark/benchmark.h>
#include <time.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "cinch/prompt/bpe.hpp"
#include "cinch/prompt/llmlingua.hpp"
#include "cinch/prompt/llmlingua2.hpp"
#include "cinch/prompt/ngram.hpp"
#include "cinch/prompt/select.hpp"
#include "cinch/prompt/selective_context.hpp"

namespace {

using namespace cinch::prompt;

const std::filesystem::path data_dir = std::filesystem::path(__FILE__).parent_path().parent_path() / "data";

const std::string& moby() {
  static const std::string text = [] {
    std::ifstream in(data_dir / "text" / "moby_dick.txt", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }();
  return text;
}

const bpe_tokenizer& gpt2() {
  static const bpe_tokenizer tok = bpe_tokenizer::load_dir(data_dir / "tokenizers" / "gpt2");
  return tok;
}

const std::vector<token>& moby_tokens() {
  static const std::vector<token> t = gpt2().encode(moby());
  return t;
}

const ngram_model& lm() {
  static const ngram_model m = [] {
    const std::string_view docs[] = {moby()};
    return ngram_model::train(gpt2(), docs, 3);
  }();
  return m;
}

// The first n tokens' text (n <= the corpus).
std::string_view prefix_text(std::size_t n) {
  const auto& t = moby_tokens();
  return std::string_view(moby()).substr(0, n < t.size() ? t[n].begin : moby().size());
}

// ------------------------------------------------------------------ BPE

// The textbook merge loop, for comparison: no cache, string symbols, a full scan
// for the best pair after every merge.
class naive_bpe {
 public:
  explicit naive_bpe(const bpe_tokenizer& tok) : tok_(tok) {
    const auto merges = tok.merges();
    for (std::size_t r = 0; r < merges.size(); ++r) {
      std::string key(tok.token_bytes(merges[r].first));
      key += '\x01';  // not a byte any GPT-2 token ends or starts a pair with here
      key += tok.token_bytes(merges[r].second);
      ranks_.emplace(std::move(key), std::int32_t(r));
    }
  }

  std::size_t encode(std::string_view text) const {
    std::size_t count = 0;
    for (const auto& [b, e] : bpe_tokenizer::pre_tokenize(text)) {
      std::vector<std::string> sym;
      for (std::size_t i = b; i < e; ++i) sym.emplace_back(1, text[i]);
      for (;;) {
        std::int32_t best = -1;
        std::size_t at = 0;
        for (std::size_t i = 0; i + 1 < sym.size(); ++i) {
          const auto it = ranks_.find(sym[i] + '\x01' + sym[i + 1]);
          if (it != ranks_.end() && (best < 0 || it->second < best)) best = it->second, at = i;
        }
        if (best < 0) break;
        const std::string first = sym[at], second = sym[at + 1];
        std::vector<std::string> merged;
        for (std::size_t i = 0; i < sym.size(); ++i) {
          if (i + 1 < sym.size() && sym[i] == first && sym[i + 1] == second) merged.push_back(first + second), ++i;
          else merged.push_back(sym[i]);
        }
        sym.swap(merged);
      }
      for (const std::string& s : sym) count += tok_.id_of(s) >= 0;
    }
    return count;
  }

 private:
  const bpe_tokenizer& tok_;
  std::unordered_map<std::string, std::int32_t> ranks_;
};

// CPU seconds of this thread: ratios between runs in one process, immune to other load.
double thread_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

double naive_rate = 0;  // bytes per CPU second of the naive loop, measured lazily (best of 3)

double measure_naive() {
  if (naive_rate == 0) {
    const naive_bpe naive(gpt2());
    const std::string_view text = std::string_view(moby()).substr(0, 100000);
    for (int i = 0; i < 3; ++i) {
      const double t0 = thread_seconds();
      benchmark::DoNotOptimize(naive.encode(text));
      naive_rate = std::max(naive_rate, double(text.size()) / (thread_seconds() - t0));
    }
  }
  return naive_rate;
}

void BM_prompt_bpe_naive(benchmark::State& state) {
  const naive_bpe naive(gpt2());
  const std::string_view text = std::string_view(moby()).substr(0, 100000);
  for (auto _ : state) benchmark::DoNotOptimize(naive.encode(text));
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(text.size()));
}

// vs_naive = this benchmark's bytes per CPU second / the naive loop's.
void report_vs_naive(benchmark::State& state, double cpu_seconds) {
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(moby().size()));
  state.counters["vs_naive"] = double(state.iterations()) * double(moby().size()) / cpu_seconds / measure_naive();
}

void BM_prompt_bpe_cached(benchmark::State& state) {
  benchmark::DoNotOptimize(gpt2().encode(moby()));  // warm the cache
  double cpu = 0;
  for (auto _ : state) {
    const double t0 = thread_seconds();
    benchmark::DoNotOptimize(gpt2().encode(moby()));
    cpu += thread_seconds() - t0;
  }
  report_vs_naive(state, cpu);
}

void BM_prompt_bpe_cold(benchmark::State& state) {
  double cpu = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const bpe_tokenizer fresh = bpe_tokenizer::load_dir(data_dir / "tokenizers" / "gpt2");
    state.ResumeTiming();
    const double t0 = thread_seconds();
    benchmark::DoNotOptimize(fresh.encode(moby()));
    cpu += thread_seconds() - t0;
  }
  report_vs_naive(state, cpu);
}

// ------------------------------------------------------------------ selection

std::vector<float> random_scores(std::size_t n) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<float> s(n);
  for (float& v : s) v = u(rng);
  return s;
}

// range(1) = 0: token units, no structure; 1: word units, structure detection.
void BM_prompt_select(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const std::string_view text = prefix_text(n);
  const std::span<const token> tokens(moby_tokens().data(), n);
  const std::vector<float> scores = random_scores(n);
  selection_options o;
  o.budget = {0.3, {}};
  if (state.range(1) == 0) {
    o.level = granularity::token;
    o.structure.mode = structure::plain;
  }
  for (auto _ : state) benchmark::DoNotOptimize(select(text, tokens, scores, o));
  state.counters["tokens/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_prompt_rank_sort(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const std::vector<float> scores = random_scores(n);
  std::vector<std::int32_t> order(n);
  for (auto _ : state) {
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::int32_t a, std::int32_t b) { return scores[std::size_t(a)] > scores[std::size_t(b)]; });
    benchmark::DoNotOptimize(order.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
}

// ------------------------------------------------------------------ scorers and methods

void BM_prompt_ngram(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const std::vector<std::int32_t> ids = ids_of(std::span(moby_tokens()).subspan(moby_tokens().size() - n));
  benchmark::DoNotOptimize(lm());
  for (auto _ : state) benchmark::DoNotOptimize(lm().log_probs({}, ids));
  state.counters["tokens/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_prompt_ngram_train(benchmark::State& state) {
  const std::string_view docs[] = {moby()};
  for (auto _ : state) benchmark::DoNotOptimize(ngram_model::train(gpt2(), docs, 3));
  state.counters["tokens/s"] =
      benchmark::Counter(double(moby_tokens().size()), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_prompt_selective_context(benchmark::State& state) {
  const std::string_view text = prefix_text(std::size_t(state.range(0)));
  selective_context_options o;
  o.budget = {0.3, {}};
  benchmark::DoNotOptimize(lm());
  for (auto _ : state) benchmark::DoNotOptimize(selective_context(text, gpt2(), lm(), o));
  state.counters["tokens/s"] = benchmark::Counter(double(state.range(0)), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_prompt_llmlingua(benchmark::State& state) {
  const std::string_view text = prefix_text(std::size_t(state.range(0)));
  llmlingua_options o;
  o.budget = {0.3, {}};
  benchmark::DoNotOptimize(lm());
  for (auto _ : state) benchmark::DoNotOptimize(llmlingua({"", {text}, ""}, gpt2(), lm(), o));
  state.counters["tokens/s"] = benchmark::Counter(double(state.range(0)), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_prompt_llmlingua2(benchmark::State& state) {
  const std::string_view text = prefix_text(std::size_t(state.range(0)));
  llmlingua2_options o;
  o.budget = {0.3, {}};
  const surprisal_keep_scorer keep(lm());
  for (auto _ : state) benchmark::DoNotOptimize(llmlingua2(text, gpt2(), keep, o));
  state.counters["tokens/s"] = benchmark::Counter(double(state.range(0)), benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_prompt_bpe_cached)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prompt_bpe_cold)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prompt_bpe_naive)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prompt_select)->ArgNames({"tokens", "words"})->Args({10000, 0})->Args({100000, 0})->Args({100000, 1})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prompt_rank_sort)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prompt_ngram)->Arg(100000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prompt_ngram_train)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prompt_selective_context)->Arg(20000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prompt_llmlingua)->Arg(20000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_prompt_llmlingua2)->Arg(20000)->Unit(benchmark::kMillisecond);

}  // namespace

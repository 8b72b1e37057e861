// compare_to_exact, compare_after_context: teacher-force each sequence through
// an exact cache and the cache under test, position by position.
#pragma once

#include <algorithm>
#include <cmath>

namespace tiny_llama {

template <class MakeCache, class Compress>
cache_quality compare_after_context(model& m, const std::vector<std::vector<int>>& sequences, std::size_t context,
                                    MakeCache make_cache, Compress compress) {
  cache_quality q;
  double positions = 0, bytes = 0, tokens = 0;
  for (const std::vector<int>& seq : sequences) {
    exact_store exact(m.cfg());
    auto cache = make_cache();
    for (std::size_t pos = 0; pos < seq.size(); ++pos) {
      if (pos == context && context > 0) {
        compress(*cache);
        bytes += double(cache->bytes());
        tokens += double(context);
      }
      const std::vector<float> p = softmax(m.forward(seq[pos], int(pos), exact));
      const std::vector<float> r = softmax(m.forward(seq[pos], int(pos), *cache));
      if (pos < context) continue;
      double kl = 0;
      for (std::size_t i = 0; i < p.size(); ++i)
        if (p[i] > 0) kl += double(p[i]) * (std::log(double(p[i])) - std::log(std::max(double(r[i]), 1e-30)));
      q.mean_kl += kl;
      q.top1_agreement += std::max_element(p.begin(), p.end()) - p.begin() == std::max_element(r.begin(), r.end()) - r.begin();
      positions += 1;
    }
    if (context == 0) {
      bytes += double(cache->bytes());
      tokens += double(seq.size());
    }
  }
  q.mean_kl /= positions;
  q.top1_agreement /= positions;
  q.bytes_per_token = bytes / tokens;
  return q;
}

template <class MakeCache>
cache_quality compare_to_exact(model& m, const std::vector<std::vector<int>>& sequences, MakeCache make_cache) {
  return compare_after_context(m, sequences, 0, make_cache, [](kv_store&) {});
}

}  // namespace tiny_llama

// Helpers shared by the tokens method tests: sizes of a plan, and plans that must
// not depend on the backend.
#pragma once

#include <catch2/catch.hpp>

#include <cinch/core/backend.hpp>
#include <cinch/tokens/plan.hpp>

#include <cstdint>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "cpu_targets.hpp"

using index_list = std::vector<std::int64_t>;

inline std::int64_t total(const index_list& v) { return std::accumulate(v.begin(), v.end(), std::int64_t(0)); }

// The plan on the reference backend; REQUIREs every Highway target to give the same.
template <class Method>
cinch::tokens::plan same_on_every_backend(Method method) {
  cinch::force_backend(cinch::backend_kind::ref);
  const cinch::tokens::plan expected = method();
  cinch::force_backend(cinch::backend_kind::simd);
  for_each_cpu_target([&](const std::string&) {
    const cinch::tokens::plan p = method();
    REQUIRE(p.kept == expected.kept);
    REQUIRE(p.assign == expected.assign);
    REQUIRE(p.weights == expected.weights);
  });
  cinch::force_backend(std::nullopt);
  return expected;
}

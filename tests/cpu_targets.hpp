// Runs a check once per Highway target compiled in and supported by this CPU,
// forcing dispatch to that target (and proving it did).
#pragma once

#include <catch2/catch.hpp>
#include <hwy/targets.h>

#include <cinch/core/backend.hpp>

#include <string>

template <class Check>
void for_each_cpu_target(Check check) {
  for (const std::int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    const std::string name = hwy::TargetName(target);
    INFO("cpu target " << name);
    REQUIRE(cinch::cpu_target() == name);
    check(name);
  }
  hwy::SetSupportedTargetsForTest(0);
}

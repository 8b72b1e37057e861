// Checks that a call throws cinch::error with a given code and a message that
// contains each given fragment (function name, argument, expectation, value).
#pragma once

#include <catch2/catch.hpp>

#include <cinch/core/error.hpp>

#include <initializer_list>
#include <string>

template <class Call>
void require_error(Call&& call, cinch::errc code, std::initializer_list<const char*> fragments) {
  try {
    call();
    FAIL("expected cinch::error(" << cinch::to_string(code) << ")");
  } catch (const cinch::error& e) {
    INFO("message: " << e.what());
    CHECK(e.code() == code);
    for (const char* f : fragments) CHECK(std::string(e.what()).find(f) != std::string::npos);
  }
}

// Quantizes one row through the installed library and checks the codes.
#include <cinch/cinch.hpp>

#include <cstdint>
#include <cstdio>

int main() {
  const float x[4] = {0.5f, 1.5f, 2.5f, -254.0f};  // amax 254: inv = 0.5
  std::int8_t codes[4];
  float scale = 0;
  cinch::quantize_rows(cinch::tensor_view(x, cinch::dtype::f32, {4}), cinch::tensor_view(codes, cinch::dtype::i8, {4}),
                       cinch::tensor_view(&scale, cinch::dtype::f32, {}));
  const std::int8_t expected[4] = {0, 1, 1, -127};  // 0.25, 0.75, 1.25 round to nearest; -127 is exact
  for (int i = 0; i < 4; ++i)
    if (codes[i] != expected[i]) return 1;
  std::printf("consumer: scale %g, codes ok\n", static_cast<double>(scale));
  return scale == 2.0f ? 0 : 1;
}

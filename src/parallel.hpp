// Spreading the host work of the compiled operations over OpenMP threads, only
// when there is enough of it to pay for starting them.
#pragma once

#include <cstdint>

namespace cinch::detail {

// Runs body(task) for task in [0, tasks) over OpenMP threads when `work` (about
// the elements touched) makes threads worth starting.
template <class Body>
void parallel_tasks(std::int64_t tasks, std::int64_t work, Body body) {
  const bool parallel = tasks > 1 && work >= (std::int64_t(1) << 15);
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t t = 0; t < tasks; ++t) body(t);
}

// Runs body(row, begin, end) over [begin, end) column ranges of `chunk` columns
// (the last one shorter) of every row; an empty row still runs once.
template <class Body>
void for_each_chunk(std::int64_t rows, std::int64_t cols, std::int64_t chunk, Body body) {
  const std::int64_t per_row = cols > 0 ? (cols + chunk - 1) / chunk : 1;
  parallel_tasks(rows * per_row, rows * cols, [&](std::int64_t t) {
    const std::int64_t r = t / per_row, begin = (t % per_row) * chunk;
    body(r, begin, begin + chunk < cols ? begin + chunk : cols);
  });
}

}  // namespace cinch::detail

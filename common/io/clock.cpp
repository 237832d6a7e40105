#include "common/io/clock.h"

#include <sys/random.h>
#include <time.h>

#include <stdexcept>

namespace kairos {

static std::int64_t read_clock(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

std::int64_t mono_us() { return read_clock(CLOCK_MONOTONIC); }
std::int64_t wall_us() { return read_clock(CLOCK_REALTIME); }

std::uint64_t random_u64() {
  std::uint64_t v = 0;
  while (v == 0) {
    if (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v))
      throw std::runtime_error("getrandom failed");
  }
  return v;
}

}  // namespace kairos

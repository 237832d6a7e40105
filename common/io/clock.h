#pragma once
#include <cstdint>

namespace kairos {

// Monotonic time in microseconds (CLOCK_MONOTONIC): intervals, timers.
std::int64_t mono_us();
// Wall-clock time in microseconds since the Unix epoch: frame timestamps.
std::int64_t wall_us();
// 64 random bits from the OS (session ids, request ids, jitter seeds).
std::uint64_t random_u64();

}  // namespace kairos

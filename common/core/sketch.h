#pragma once
// A delay distribution in constant memory (docs/DESIGN.md 5.2): enough to
// read a node's p99.9 one-way delay, which a window of 16 clock samples
// cannot. Counts in log-spaced buckets (each 10 % wider than the one
// below, 0.1 ms to about 18 s) that are halved when their total reaches a
// limit, so the sketch follows a path whose conditions change. Pure.
#include <array>
#include <cstdint>

namespace kairos {

class DelaySketch {
 public:
  static constexpr std::size_t kBuckets = 128;
  static constexpr double kFirstUs = 100.0;   // the first bucket's upper edge
  static constexpr double kGrowth = 1.1;      // each bucket's edge over the one below
  static constexpr std::uint32_t kLimit = 4096;  // the total at which every count is halved

  // One delay (us); below the first edge (or negative: a clock estimate off) counts in the first bucket.
  void add(double us);
  // The q-quantile (us): the upper edge of the bucket it falls in, so an
  // over-estimate by at most 10 %; 0 when empty.
  double quantile(double q) const;
  // Samples counted, as halved.
  std::uint32_t count() const { return n_; }

 private:
  std::array<std::uint16_t, kBuckets> c_{};
  std::uint32_t n_ = 0;
};

}  // namespace kairos

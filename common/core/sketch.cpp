#include "common/core/sketch.h"

#include <algorithm>
#include <cmath>

namespace kairos {

namespace {

double edge_us(std::size_t i) { return DelaySketch::kFirstUs * std::pow(DelaySketch::kGrowth, static_cast<double>(i)); }

}  // namespace

void DelaySketch::add(double us) {
  std::size_t i = 0;
  if (us > kFirstUs) {
    const double k = std::ceil(std::log(us / kFirstUs) / std::log(kGrowth) - 1e-9);
    i = k >= static_cast<double>(kBuckets - 1) ? kBuckets - 1 : static_cast<std::size_t>(k);
  }
  ++c_[i];
  if (++n_ < kLimit) return;
  // Halved, a count of 1 stays 1: a rare long delay is not forgotten at the first halving.
  n_ = 0;
  for (auto& c : c_) {
    c = static_cast<std::uint16_t>((c + 1) / 2);
    n_ += c;
  }
}

double DelaySketch::quantile(double q) const {
  if (n_ == 0) return 0;
  // Nearest rank: the smallest value with at least ceil(q n) samples at or below it.
  const double rank = std::max(1.0, std::ceil(q * static_cast<double>(n_)));
  double seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += c_[i];
    if (seen >= rank) return edge_us(i);
  }
  return edge_us(kBuckets - 1);
}

}  // namespace kairos

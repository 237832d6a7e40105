#pragma once
#include <cstdint>

namespace kairos {

// Token bucket for log lines: at most `burst` at once, refilled at `per_s`
// per second. Time comes in as an argument (monotonic us).
class RateLimiter {
 public:
  RateLimiter(double per_s, double burst) : rate_(per_s), burst_(burst), tokens_(burst) {}

  // True when one more event may pass at now_us; counts the suppressed ones.
  bool allow(std::int64_t now_us) {
    if (last_us_ != 0 && now_us > last_us_) {
      tokens_ += rate_ * static_cast<double>(now_us - last_us_) / 1e6;
      if (tokens_ > burst_) tokens_ = burst_;
    }
    last_us_ = now_us;
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return true;
    }
    ++suppressed_;
    return false;
  }
  // Suppressed events since the last call, and resets the count.
  std::uint64_t take_suppressed() {
    auto n = suppressed_;
    suppressed_ = 0;
    return n;
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  std::int64_t last_us_ = 0;
  std::uint64_t suppressed_ = 0;
};

}  // namespace kairos

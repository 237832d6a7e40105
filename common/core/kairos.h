#pragma once
#include <array>
#include <complex>
#include <cstddef>
#include <span>

namespace kairos {

using Phase = std::complex<double>;

inline constexpr std::size_t kMaxScales = 8;

// K time constants log-spaced from base to max seconds (SPEC 3.4), fastest first.
// k == 1 gives {base}. Writes k values into out (k <= kMaxScales).
void log_spaced_taus(double base_s, double max_s, std::size_t k, std::span<double> out);

// One timescale of the KAIROS loop: an exponential phase follower with a
// variance estimate. Irregular sampling is fine: dt is the real interval.
struct KairosScale {
  double tau_s = 1.0;
  Phase z{0.0, 0.0};  // local phase
  double var = 0.0;   // EW variance of s around z
  double c = 1.0;     // local coherence 0..1

  void reset(Phase s);
  void update(Phase s, double dt_s);
};

// The loop for one input: K scales fed by the same samples.
class KairosFilter {
 public:
  KairosFilter() = default;
  explicit KairosFilter(std::span<const double> taus_s);

  // Feeds sample s taken at monotonic time t_s (seconds). The first sample
  // initialises every scale to s with variance 0. A sample whose time does not
  // advance is merged as dt = 0 (no change).
  void update(Phase s, double t_s);

  std::size_t scales() const { return k_; }
  const KairosScale& scale(std::size_t k) const { return scales_[k]; }
  bool has_sample() const { return has_sample_; }

 private:
  std::array<KairosScale, kMaxScales> scales_{};
  std::size_t k_ = 0;
  bool has_sample_ = false;
  double last_t_s_ = 0.0;
};

// Maps a raw reading x into [0, 1] over [lo, hi] (SPEC 3.3).
double normalise(double x, double lo, double hi);

}  // namespace kairos

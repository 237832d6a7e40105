#pragma once
#include <array>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <span>

namespace kairos {

using Phase = std::complex<double>;

inline constexpr std::size_t kMaxScales = 8;

// K time constants log-spaced from base to max seconds (docs/DESIGN.md 3.4), fastest first.
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

// Rhythm detection on one timescale (the KAIROS "collapse", docs/DESIGN.md 3.4): the
// signal is decimated into slots of tau/N, each point the mean of its
// samples; the differences v_n are compared with v_(n-N), one tau earlier.
// T = EMA of v_n conj(v_(n-N)) e^(i omega t_n), P = EMA of |v_n|^2, both over
// 4 tau, and R = max(0, Re T) / P (omega == 0) or |T| / P. R^2 >= I_c
// collapses the scale: the signal repeats with a period dividing tau.
class RhythmDetector {
 public:
  static constexpr std::size_t kSlots = 32;  // N
  static constexpr double kStillness = 1e-6;  // |v|^2 below this is no movement

  struct Params {
    double omega = 0.0;   // rad/s, 0 = plain repetition
    double i_c = 0.5;     // collapse threshold on R^2
    double release = 0.8; // leave below release * i_c
  };

  RhythmDetector() = default;
  RhythmDetector(double tau_s, Params params);

  // Adds a sample taken at t_s. Returns true when the collapsed state changed.
  bool add(Phase s, double t_s);

  double r() const { return r_; }
  bool collapsed() const { return collapsed_; }

 private:
  void close_slot();

  double tau_s_ = 1.0;
  double slot_s_ = 1.0 / kSlots;
  Params params_;
  // the slot being filled
  std::int64_t slot_ = 0;
  Phase sum_{0.0, 0.0};
  std::uint32_t count_ = 0;
  bool started_ = false;
  // the previous point
  Phase prev_p_{0.0, 0.0};
  bool has_prev_ = false;
  // v_n by slot index modulo N, with the slot it belongs to
  std::array<Phase, kSlots> v_{};
  std::array<std::int64_t, kSlots> v_slot_{};
  // EMAs
  Phase t_{0.0, 0.0};
  double p_ = 0.0;
  std::int64_t last_ema_slot_ = 0;
  std::int64_t first_ema_slot_ = 0;
  bool has_ema_ = false;
  bool warm_ = false;
  double r_ = 0.0;
  bool collapsed_ = false;
};

// The loop for one input: K scales fed by the same samples.
class KairosFilter {
 public:
  KairosFilter() = default;
  explicit KairosFilter(std::span<const double> taus_s, RhythmDetector::Params rhythm = {});

  // Feeds sample s taken at monotonic time t_s (seconds). The first sample
  // initialises every scale to s with variance 0. A sample whose time does not
  // advance is merged as dt = 0 (no change). Returns a bit mask of the scales
  // whose collapsed state changed (bit k for scale k).
  std::uint32_t update(Phase s, double t_s);

  std::size_t scales() const { return k_; }
  const KairosScale& scale(std::size_t k) const { return scales_[k]; }
  const RhythmDetector& rhythm(std::size_t k) const { return rhythm_[k]; }
  bool has_sample() const { return has_sample_; }

 private:
  std::array<KairosScale, kMaxScales> scales_{};
  std::array<RhythmDetector, kMaxScales> rhythm_{};
  std::size_t k_ = 0;
  bool has_sample_ = false;
  double last_t_s_ = 0.0;
};

// Maps a raw reading x into [0, 1] over [lo, hi] (docs/DESIGN.md 3.3).
double normalise(double x, double lo, double hi);

}  // namespace kairos

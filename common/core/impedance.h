#pragma once
// Clock sync and the impedance model (docs/DESIGN.md 5.1, 5.2): pure arithmetic over
// ping/pong samples and node reports; time comes in as arguments.
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

namespace kairos {

// One ping/pong: t1 and t4 on the gateway's clock, t2 and t3 on the node's (us).
struct ClockSample {
  std::int64_t t1_us, t2_us, t3_us, t4_us;
  double rtt_us() const { return static_cast<double>((t4_us - t1_us) - (t3_us - t2_us)); }
  double offset_us() const { return static_cast<double>((t2_us - t1_us) + (t3_us - t4_us)) / 2.0; }
  std::int64_t mid_us() const { return (t1_us + t4_us) / 2; }  // its midpoint on the gateway's clock
};

// The NTP clock filter over the last 16 samples: the offset of the sample
// with the smallest round trip, and the jitter of the one-way delay.
// A level shift (the round trips of the last 2 s, and at least the last 3,
// all well above, or all well below, everything before them: a route or
// link that changed) restarts the window from them, so the node is
// recalibrated within a few pings instead of after 16. A congested moment
// shorter than 2 s does not count.
class ClockFilter {
 public:
  static constexpr std::size_t kSamples = 16;
  // Samples after which a node counts as synced (kairosctl, the summaries);
  // until then it is pinged fast, and before the synced ones.
  static constexpr std::size_t kSyncedSamples = 8;
  static constexpr std::size_t kShiftRun = 3;
  static constexpr std::int64_t kShiftSpanUs = 2'000'000;
  // Adds a sample; a negative round trip (clocks stepped mid-ping) is refused.
  bool add(const ClockSample& s);
  // Level shifts seen so far.
  std::uint64_t shifts() const { return shifts_; }
  // How far the tail of a command's one-way trip (gateway to node, with the
  // current offset) reaches over rtt/2: the largest excess in the window, the
  // second largest once there are 8 samples.
  double inbound_tail_us() const;
  std::size_t count() const { return n_; }
  // node clock - gateway clock at the newest sample: the min-rtt sample's
  // offset carried forward along the drift.
  double offset_us() const;
  // The same at gateway wall time t_us (us): where a command's execute_at
  // for T is read from, so a clock that runs fast or slow is followed
  // between pings and up to T.
  double offset_at_us(std::int64_t t_us) const;
  // The node clock's rate against the gateway's (ppm, + = fast): the slope
  // of the offsets of the tight samples (round trip within 2 ms or 5 % of
  // the minimum), once there are 6 of them over 20 s and the slope is
  // precise or stands out of its noise; until then the
  // last fit's (0 before any: a crystal's rate outlives a step). Bounded
  // to +-kMaxDriftPpm (beyond that it is noise, or a step).
  double drift_ppm() const { return drift_ppm_; }
  // Offset steps seen (an NTP correction on the node): once the window holds
  // kStepWindow samples, two good samples in a row off the line the same
  // way, by more than their own uncertainty, three times the good samples'
  // scatter about the line and 2 ms, restart the window from them.
  std::uint64_t steps() const { return steps_; }
  static constexpr double kMaxDriftPpm = 500;
  static constexpr std::size_t kStepWindow = 8;
  static constexpr std::int64_t kDriftSpanUs = 20'000'000;
  double rtt_us() const;      // the minimum round trip
  double one_way_us() const { return rtt_us() / 2; }
  double jitter_us() const;   // standard deviation of rtt/2 over the window

 private:
  const ClockSample& at(std::size_t age) const { return s_[(next_ + kSamples - 1 - age) % kSamples]; }  // 0 = newest
  std::size_t level_shift() const;  // the run's length when the newest samples show a new level, else 0
  void keep_newest(std::size_t run);  // restarts the window from the newest `run` samples
  bool good(const ClockSample& s, double min_rtt) const;   // within 1 ms or 25 % of the floor: steps and scatter
  bool tight(const ClockSample& s, double min_rtt) const;  // within 2 ms or 5 %: the drift's fit
  void fit();                         // the anchor, the drift and the scatter, from the window
  void fit_drift(std::span<const double> dt, std::span<const double> off);  // the tight samples' slope, when it holds
  bool off_the_line(const ClockSample& s) const;

  std::array<ClockSample, kSamples> s_{};
  std::size_t n_ = 0;
  std::size_t next_ = 0;
  std::uint64_t shifts_ = 0;
  std::uint64_t steps_ = 0;
  int off_sign_ = 0;                // the previous good sample was off the line this way (a step begun?)
  std::int64_t anchor_t_us_ = 0;    // the min-rtt sample's midpoint (gateway clock)
  double anchor_offset_us_ = 0;
  double drift_ppm_ = 0;
  double scatter_us_ = 0;           // rms of the good samples' offsets about the line
  bool fitted_ = false;             // drift_ppm_ is from a fit
};

// The offset from the floors of the two one-way paths (docs/DESIGN.md 5.1).
// A frame's raw one-way time, its receipt on one clock minus its sending on
// the other, holds the offset with the sign of its direction: gateway to
// node (pings, scheduled commands) it is delay + offset, node to gateway
// (heartbeats, phase reports, acks) delay - offset. Over many frames each
// direction's minimum lies near its floor, far nearer than the quickest
// round trip of a window (which needs both ways quick at once): on a heavy
// tail, 32 frames each way find floors within a few percent of the tail's
// scale where 16 round trips leave the offset off by a quarter of it. With
// the floors taken as equal, as the round trip takes them:
// offset = (inbound floor - outbound floor) / 2. Each raw time is carried
// to the instant asked for along the drift.
class OneWayFloors {
 public:
  static constexpr std::size_t kSamples = 32;  // per direction
  static constexpr std::size_t kEnough = 8;    // per direction, before offset_at_us answers
  void inbound(std::int64_t t_us, double raw_us) { in_.add(t_us, raw_us); }
  void outbound(std::int64_t t_us, double raw_us) { out_.add(t_us, raw_us); }
  // node clock - gateway clock at t_us (us); false while either direction has too few frames.
  bool offset_at_us(std::int64_t t_us, double drift_ppm, double& offset_us) const;
  void clear() { in_ = Ring(-1), out_ = Ring(+1); }  // a step of the node's clock
  std::size_t inbound_count() const { return in_.n; }
  std::size_t outbound_count() const { return out_.n; }

 private:
  // One direction's last frames. Its floor at t, min_i(raw_i + sign * drift
  // * (t_i - t)), is min_i(key_i) - sign * drift * (t - t0) with key_i =
  // raw_i + sign * drift * (t_i - t0): the minimum key does not depend on
  // t, so it is kept as frames come (the outbound ring takes one per
  // report) and recomputed only when the drift changes or the frame that
  // held it leaves the ring.
  struct Ring {
    explicit Ring(double direction) : sign(direction) {}
    double sign;                        // of the offset in this direction's raw times
    std::array<std::int64_t, kSamples> t{};
    std::array<float, kSamples> raw{};  // us, relative to base
    double base = 0;                    // the first raw time: floats keep us precision near it
    std::int64_t t0 = 0;                // the first frame's time: the keys' origin
    std::size_t n = 0, next = 0;
    mutable double min_key = HUGE_VAL;  // for min_drift, unless stale
    mutable double min_drift = 0;
    mutable bool stale = true;
    void add(std::int64_t t_us, double raw_us);
    double floor_at(std::int64_t t_us, double drift) const;

   private:
    double key(std::size_t i, double drift) const {
      return static_cast<double>(raw[i]) + sign * drift * static_cast<double>(t[i] - t0);
    }
  };
  Ring in_{-1}, out_{+1};
};

// Base processing time per device class A..F (ms), docs/DESIGN.md 5.2.
double class_base_ms(int device_class);

struct ImpedanceInputs {
  int device_class = 5;           // 1..6 = A..F
  double rtt_ms = 0;
  double jitter_ms = 0;
  double processing_ema_ms = -1;  // measured; < 0 while unknown (the class base is used)
  double payload_weight = 0;
  std::uint32_t queue_depth = 0;
  double reliability = 1;         // EW rate of commands acknowledged READY in time
  double calibration_ms = 0;      // learned extra lead: late executions (and, without delay_tail_ms, the inbound tail)
  double delay_tail_ms = -1;      // the one-way delay toward the node at the lead quantile (measured); < 0 unknown
  double output_ms = 0;           // its outputs' own latency (a speaker's audio buffer): a start at T must be known that early
  bool heartbeat_fresh = true;    // last heartbeat < 10 s old
};

struct Impedance {
  double processing_est_ms = 0;
  double buffer_ms = 0;
  double calibration_ms = 0;
  double lead_ms = 0;   // how long before T a command must leave the gateway
  int score = 0;        // min(1000, round(lead))
  double drift = 0;     // jitter / max(1, rtt/2)
  double confidence = 0;
  bool degraded = false;  // score > 800 or above twice the baseline
  bool unstable = false;  // drift > 0.5
};

// docs/DESIGN.md 5.2, with the calibration added to the lead. Once the
// node's delay distribution is known (delay_tail_ms >= 0), the lead covers
// that quantile of it, not rtt/2 plus three standard deviations: a heavy
// tail or a Wi-Fi stall is not normal. baseline_score: the node's own usual
// score (<= 0: none yet).
Impedance impedance(const ImpedanceInputs& in, double baseline_score);

// An exponentially weighted rate of good outcomes (starts at 1).
class EwRate {
 public:
  explicit EwRate(double weight = 0.1) : w_(weight) {}
  void add(bool good) { value_ += w_ * ((good ? 1.0 : 0.0) - value_); }
  double value() const { return value_; }

 private:
  double w_;
  double value_ = 1.0;
};

}  // namespace kairos

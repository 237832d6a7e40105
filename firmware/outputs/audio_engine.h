#pragma once
// The speaker's engine (docs/DESIGN.md 3.5): it keeps the device buffer
// filled to a mark (all periods but one) and renders ahead exactly what the
// buffer lacks, so a frame rendered now sounds `queued` frames later, and
// the latency from a source value to its sound is that mark plus at most
// half a period. A start set for an instant on the node's clock lands on the
// frame that sounds at that instant, not on the loop turn nearest to it.
//
// In a node it renders from a thread of its own every half period, so the
// loop's hiccups (a slow publish, a busy sensor) do not starve the device;
// a test drives it with pump() and a clock of its own.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "firmware/drivers/audio.h"
#include "firmware/outputs/tone.h"

namespace kairos::node {

struct AudioStats {
  double delay_ms = 0;         // queued in the device at the last render: a frame written now sounds this late
  std::uint64_t underruns = 0; // times the device ran dry
  std::uint64_t frames = 0;    // rendered
  // The latest value from set_target that went into frames: when (the
  // turn's time) and when its first frame sounds (node clock, us).
  std::uint64_t applied = 0;
  std::int64_t applied_us = 0;
  double sounds_us = 0;
};

class AudioEngine {
 public:
  using Clock = std::function<std::int64_t()>;  // the node's wall clock (us)
  AudioEngine(std::unique_ptr<AudioSink> sink, const AudioFormat& format, double ramp_ms, Clock clock);
  ~AudioEngine();
  AudioEngine(const AudioEngine&) = delete;
  AudioEngine& operator=(const AudioEngine&) = delete;

  bool open();  // false with the sink's error()
  const std::string& error() const { return sink_->error(); }
  const AudioFormat& format() const { return sink_->format(); }
  // Renders from a thread of its own, every half period, until the engine goes.
  void start_thread();

  // A new tone, from the next frame rendered; ignored while a planned start
  // is due but has not been reached on the clock (it stands until then).
  // hz < 0 keeps the frequency (a fade).
  void set_target(double hz, double gain);
  // A new tone from the frame that sounds at at_us (node clock); at once if
  // that frame is already written.
  void start_at(std::int64_t at_us, double hz, double gain);
  // Silence now: planned starts are dropped, the tone fades out.
  void silence();
  // One turn: tops the device up to its mark. The thread's, or a test's.
  void pump(std::int64_t now_us);
  // Renders the fade to silence into the device (at the end).
  void finish();
  AudioStats stats() const;

 private:
  struct Planned {
    std::int64_t at_us;
    double hz, gain;
  };
  void render_locked(std::int64_t now_us);
  void run();

  std::unique_ptr<AudioSink> sink_;
  AudioFormat format_;
  double ramp_ms_;
  Clock clock_;
  mutable std::mutex mu_;
  ToneGenerator tone_;
  std::optional<std::pair<double, double>> next_;  // set_target's, not yet applied
  std::vector<Planned> planned_;                   // by at_us
  std::int64_t hold_until_us_ = INT64_MIN;          // a planned start stands until then
  std::vector<std::int16_t> buf_;
  AudioStats stats_;
  std::int64_t last_us_ = 0;  // the last turn's time
  bool open_ = false;
  bool stop_ = false;
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace kairos::node

// The speaker's audio path (docs/DESIGN.md 3.5): a buffer of small periods
// kept at its mark, loop hiccups without underruns, underruns counted when a
// stall outlasts the buffer, starts on the frame that sounds at T, and the
// WAV sink that plays like a device.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <chrono>
#include <thread>
#include <vector>

#include "firmware/drivers/audio.h"
#include "firmware/outputs/audio_engine.h"

using namespace kairos::node;

namespace {

// A device on the test's clock: it starts on the first write and then plays
// one frame every 1/rate; when it runs dry it plays silence (an underrun).
// It records the instant each written frame sounded.
class FakePcm : public AudioSink {
 public:
  bool open(const AudioFormat& f) override {
    f_ = f;
    return true;
  }
  const AudioFormat& format() const override { return f_; }
  std::int64_t queued(std::int64_t now_us) override {
    advance(now_us);
    return static_cast<std::int64_t>(pending_.size());
  }
  std::size_t write(std::span<const std::int16_t> frames, std::int64_t now_us) override {
    advance(now_us);
    if (!running_) {
      running_ = true;
      next_us_ = static_cast<double>(now_us);
    }
    const std::size_t room = f_.buffer_frames() - pending_.size();
    const std::size_t n = std::min(room, frames.size());
    pending_.insert(pending_.end(), frames.begin(), frames.begin() + static_cast<long>(n));
    return n;
  }
  std::uint64_t underruns() const override { return underruns_; }
  void close() override {}
  const std::string& error() const override { return error_; }

  std::vector<std::pair<double, std::int16_t>> played;  // when, what

 private:
  void advance(std::int64_t now_us) {
    const double frame_us = 1e6 / f_.rate_hz;
    while (running_ && next_us_ + frame_us <= static_cast<double>(now_us)) {
      if (pending_.empty()) {  // dry: it restarts on the next write
        ++underruns_;
        running_ = false;
        break;
      }
      played.emplace_back(next_us_, pending_.front());
      pending_.erase(pending_.begin());
      next_us_ += frame_us;
    }
  }
  AudioFormat f_;
  std::vector<std::int16_t> pending_;
  bool running_ = false;
  double next_us_ = 0;
  std::uint64_t underruns_ = 0;
  std::string error_;
};

AudioFormat format_5ms() {
  AudioFormat f;
  f.rate_hz = 48000;
  f.period_frames = 240;
  f.periods = 4;
  return f;
}

// An engine over a fake device, pumped by hand on a clock of the test's.
struct Rig {
  FakePcm* pcm;
  std::int64_t now = 1'000'000'000;
  AudioEngine engine;
  explicit Rig(double ramp_ms = 1)
      : pcm(new FakePcm), engine(std::unique_ptr<AudioSink>(pcm), format_5ms(), ramp_ms, [this] { return now; }) {
    EXPECT_TRUE(engine.open());
  }
  // Pumps every `step_us` until `until`, `late_us` later on every `every`-th turn.
  void run(std::int64_t until, std::int64_t step_us, std::int64_t late_us = 0, int every = 0) {
    for (int turn = 1; now < until; ++turn) {
      now += step_us + (every && turn % every == 0 ? late_us : 0);
      engine.pump(now);
    }
  }
};

}  // namespace

TEST(AudioEngine, KeepsTheBufferAtItsMarkSoASoundIsAtMost15MsBehind) {
  Rig r;
  r.engine.set_target(440, 0.5);
  r.run(r.now + 1'000'000, 2'500);
  const auto s = r.engine.stats();
  EXPECT_EQ(s.underruns, 0u);
  // The mark is three of the four 5 ms periods; between turns it drains by half a period at most.
  EXPECT_GE(s.delay_ms, 12.5 - 0.05);
  EXPECT_LE(s.delay_ms, 15.0 + 0.05);
  EXPECT_NEAR(static_cast<double>(s.frames), 48000 + 720, 240);
}

TEST(AudioEngine, SurvivesLoopHiccupsShorterThanTheBufferWithoutAnUnderrun) {
  Rig r;
  r.engine.set_target(440, 0.5);
  // Turns 2.5 ms apart, every seventh one 10 ms late: the 15 ms mark covers it.
  r.run(r.now + 2'000'000, 2'500, 10'000, 7);
  EXPECT_EQ(r.engine.stats().underruns, 0u);
  // Random lateness up to 11 ms on a third of the turns.
  std::mt19937 rng(7);
  for (int turn = 0; turn < 400; ++turn) {
    r.now += 2'500 + (rng() % 3 == 0 ? static_cast<std::int64_t>(rng() % 11'000) : 0);
    r.engine.pump(r.now);
  }
  EXPECT_EQ(r.engine.stats().underruns, 0u);
}

TEST(AudioEngine, AStallLongerThanTheBufferIsCountedAndPlayRecovers) {
  Rig r;
  r.engine.set_target(440, 0.5);
  r.run(r.now + 100'000, 2'500);
  r.now += 40'000;  // the thread stalled 40 ms: the device ran dry
  r.engine.pump(r.now);
  r.run(r.now + 500'000, 2'500);
  EXPECT_EQ(r.engine.stats().underruns, 1u);
  EXPECT_EQ(r.pcm->underruns(), 1u);
}

TEST(AudioEngine, AStartLandsOnTheFrameThatSoundsAtItsInstant) {
  for (std::int64_t offset : {0, 7, 13'337, 20'833}) {  // T anywhere within a frame and a period
    Rig r(0.1);
    r.engine.set_target(1000, 0.0);  // silent until T
    r.run(r.now + 100'000, 2'500);
    const std::int64_t T = r.now + 200'000 + offset;
    r.engine.start_at(T, 1000, 1.0);
    // The loop keeps setting its silent value until T (it must not cut the
    // start), then the command's value, as a node does once it has run it.
    for (; r.now < T + 50'000; r.now += 2'500) {
      r.engine.set_target(1000, r.now < T ? 0.0 : 1.0);
      r.engine.pump(r.now);
    }
    double onset = -1;
    for (const auto& [when, sample] : r.pcm->played)
      if (std::abs(sample) > 0) {
        onset = when;
        break;
      }
    ASSERT_GE(onset, 0) << offset;
    // The frame that sounds at T, within a frame (20.8 us): what is queued
    // counts the frame under way as a whole, as snd_pcm_delay does.
    EXPECT_NEAR(onset, static_cast<double>(T), 1e6 / 48000 + 0.5) << offset;
    // And the tone is there to stay: most frames after it are loud.
    std::size_t loud = 0, after = 0;
    for (const auto& [when, sample] : r.pcm->played)
      if (when > onset + 2'000) {
        ++after;
        loud += std::abs(sample) > 3000;
      }
    EXPECT_GT(loud, after * 3 / 4) << offset;
  }
}

TEST(AudioEngine, SilenceDropsAPlannedStart) {
  Rig r(0.1);
  r.engine.set_target(1000, 0.0);
  r.run(r.now + 50'000, 2'500);
  r.engine.start_at(r.now + 100'000, 1000, 1.0);
  r.run(r.now + 50'000, 2'500);
  r.engine.silence();  // frozen before T
  r.run(r.now + 200'000, 2'500);
  for (const auto& [when, sample] : r.pcm->played) ASSERT_EQ(sample, 0) << when;
}

TEST(WavSink, PlaysLikeADeviceAndWritesSilenceWhereItRanDry) {
  auto path = std::filesystem::temp_directory_path() / ("kairos-paced-" + std::to_string(::getpid()) + ".wav");
  AudioFormat f;
  f.rate_hz = 8000;
  f.period_frames = 40;  // 5 ms
  f.periods = 4;         // 160 frames
  {
    WavSink w(path.string());
    ASSERT_TRUE(w.open(f));
    std::vector<std::int16_t> ones(400, 1);
    const std::int64_t t0 = 5'000'000;
    EXPECT_EQ(w.queued(t0), 0);
    EXPECT_EQ(w.write(ones, t0), 160u);  // no more than the buffer holds
    EXPECT_EQ(w.queued(t0 + 10'000), 80);  // 10 ms played: 80 frames
    EXPECT_EQ(w.write(ones, t0 + 10'000), 80u);
    EXPECT_EQ(w.underruns(), 0u);
    // 60 ms later (240 frames queued were long played): a gap of 240 - ... frames of silence.
    EXPECT_EQ(w.write(std::span(ones).first(10), t0 + 70'000), 10u);
    EXPECT_EQ(w.underruns(), 1u);
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GE(raw.size(), 44u);
  std::vector<std::int16_t> s((raw.size() - 44) / 2);
  std::memcpy(s.data(), raw.data() + 44, s.size() * 2);
  // Frame k sounds at t0 + k / rate: 240 ones, silence up to 70 ms (560 frames), then 10 ones.
  ASSERT_EQ(s.size(), 570u);
  EXPECT_EQ(s[239], 1);
  EXPECT_EQ(s[240], 0);
  EXPECT_EQ(s[559], 0);
  EXPECT_EQ(s[560], 1);
  std::ifstream clock(path.string() + ".clock");
  long long start = 0;
  int rate = 0;
  clock >> start >> rate;
  EXPECT_EQ(start, 5'000'000);
  EXPECT_EQ(rate, 8000);
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + ".clock");
}

TEST(AudioEngine, ItsOwnThreadRendersWhileTheLoopSetsTargets) {
  // The engine's thread on the real clock, into a WAV device, while this
  // thread plays the loop: targets, a planned start, stats, silence.
  auto path = std::filesystem::temp_directory_path() / ("kairos-thread-" + std::to_string(::getpid()) + ".wav");
  {
    AudioEngine engine(std::make_unique<WavSink>(path.string()), format_5ms(), 5, [] {
      return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    });
    ASSERT_TRUE(engine.open());
    engine.start_thread();
    const auto start = std::chrono::steady_clock::now();
    for (int turn = 0; std::chrono::steady_clock::now() - start < std::chrono::milliseconds(300); ++turn) {
      engine.set_target(440 + turn, 0.5);
      if (turn == 5) engine.start_at(std::chrono::duration_cast<std::chrono::microseconds>(
                                         std::chrono::system_clock::now().time_since_epoch()).count() + 50'000, 880, 1.0);
      (void)engine.stats();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    engine.silence();
    const auto s = engine.stats();
    EXPECT_GT(s.frames, 48000u * 250 / 1000);  // it rendered on its own, about in real time
    EXPECT_GT(s.applied, 0u);
    EXPECT_LE(s.delay_ms, 20.0);
    engine.finish();
  }
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + ".clock");
}

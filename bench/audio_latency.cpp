// Sensor to sound on this machine (docs/DESIGN.md 3.5, 8: <= 20 ms, the audio
// buffer included). A 10 ms loop reads a synthetic sensor, runs it through
// the KAIROS filter and sets the speaker's tone; every ~100 ms the value
// jumps. For each jump: sample read -> first frame carrying it written ->
// that frame sounding (the device's queue at the write included). The
// device is a WAV sink that plays in real time out of a buffer of the
// format's size (the same model as a device's snd_pcm_delay), and ALSA's
// `null` device when it opens. Reference in the same run: an 80 ms buffer
// kept full and rendered on the loop's turns, as the speaker did before.
//
// Usage: audio_latency [seconds per configuration, default 10]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/core/kairos.h"
#include "common/io/clock.h"
#include "firmware/drivers/synthetic.h"
#include "firmware/outputs/audio_engine.h"

using namespace kairos;
using namespace kairos::node;

namespace {

struct Setup {
  const char* name;
  bool alsa_null;
  double period_ms;
  std::size_t periods;
  bool own_thread;
};

struct Figures {
  std::vector<double> read_to_written_ms, read_to_sound_ms;
  std::uint64_t underruns = 0;
  std::string error;
};

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

Figures run(const Setup& s, double seconds, const std::string& wav) {
  Figures fig;
  AudioFormat f;
  f.rate_hz = 48000;
  f.period_frames = static_cast<std::size_t>(f.rate_hz * s.period_ms / 1000);
  f.periods = s.periods;
  std::unique_ptr<AudioSink> sink;
  if (s.alsa_null) sink = std::make_unique<AlsaSink>("null");
  else sink = std::make_unique<WavSink>(wav);
  AudioEngine engine(std::move(sink), f, 20, [] { return wall_us(); });
  if (!engine.open()) {
    fig.error = engine.error();
    return fig;
  }
  if (s.own_thread) engine.start_thread();
  SyntheticConfig sc;
  sc.waveform = "sine";
  SyntheticInput in(sc);
  double taus[] = {0.1, 0.46, 2.15, 10.0};
  KairosFilter filter(taus);
  std::mt19937 rng(1);
  const std::int64_t end = mono_us() + static_cast<std::int64_t>(seconds * 1e6);
  auto turn = std::chrono::steady_clock::now();
  double hz = 440;
  for (int k = 0; mono_us() < end; ++k) {
    turn += std::chrono::milliseconds(10);
    std::this_thread::sleep_until(turn);
    // The loop's turn: read, filter, set the tone.
    const std::int64_t read_us = wall_us();
    auto r = in.read(mono_us());
    filter.update({r.reading.x, 0.0}, static_cast<double>(mono_us()) / 1e6);
    const bool jump = k % 10 == 9;
    if (jump) hz = 440 + static_cast<double>(rng() % 440);
    const auto before = engine.stats().applied;
    engine.set_target(hz, 0.5 + 0.1 * filter.scale(0).c);
    if (!s.own_thread) engine.pump(wall_us());
    if (!jump) continue;
    // When the engine took it (its thread's next turn, or now).
    AudioStats st;
    const std::int64_t give_up = mono_us() + 200'000;
    while ((st = engine.stats()).applied == before && mono_us() < give_up) std::this_thread::sleep_for(std::chrono::microseconds(50));
    if (st.applied == before) continue;
    fig.read_to_written_ms.push_back(static_cast<double>(st.applied_us - read_us) / 1000.0);
    fig.read_to_sound_ms.push_back((st.sounds_us - static_cast<double>(read_us)) / 1000.0);
  }
  fig.underruns = engine.stats().underruns;
  return fig;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 10.0;
  const std::string wav = "/tmp/kairos-audio-latency-" + std::to_string(::getpid()) + ".wav";
  const Setup setups[] = {
      {"engine, 4 periods of 5 ms, own thread (WAV device)", false, 5, 4, true},
      {"engine, 4 periods of 5 ms, own thread (ALSA null)", true, 5, 4, true},
      {"before: 80 ms buffer kept full, rendered on the loop's turns (WAV device)", false, 20, 5, false},
  };
  std::printf("| configuration | jumps | read -> written p50 / p99 / max (ms) | read -> sounding p50 / p99 / max (ms) | underruns |\n");
  std::printf("|---|---|---|---|---|\n");
  double reference = 0, ours = 0;
  for (const auto& s : setups) {
    auto f = run(s, seconds, wav);
    if (!f.error.empty()) {
      std::printf("| %s | not available: %s | | | |\n", s.name, f.error.c_str());
      continue;
    }
    std::printf("| %s | %zu | %.2f / %.2f / %.2f | %.2f / %.2f / %.2f | %llu |\n", s.name, f.read_to_sound_ms.size(),
                pct(f.read_to_written_ms, .5), pct(f.read_to_written_ms, .99), pct(f.read_to_written_ms, 1),
                pct(f.read_to_sound_ms, .5), pct(f.read_to_sound_ms, .99), pct(f.read_to_sound_ms, 1),
                static_cast<unsigned long long>(f.underruns));
    if (&s == &setups[0]) ours = pct(f.read_to_sound_ms, .99);
    if (&s == &setups[2]) reference = pct(f.read_to_sound_ms, .99);
  }
  std::remove(wav.c_str());
  std::remove((wav + ".clock").c_str());
  if (ours > 0) std::printf("\np99 read -> sounding: %.2f ms, the reference %.2f ms (ratio %.2f)\n", ours, reference, reference / ours);
}

// Speakers that start together (docs/DESIGN.md 3.5, 5.4): real nodes on one
// machine, each with a speaker on a WAV sink that plays like a device (frame
// k sounds at the start in `<wav>.clock` plus k / rate, on the node's
// clock, which here is the machine's: true time). A scheduled set_output
// starts every tone at T, on the frame that sounds at T, not at the loop turn.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>

#include "common/core/topic.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

struct Recording {
  std::vector<std::int16_t> samples;
  long long start_us = -1;  // when frame 0 sounded
  int rate = 0;
};

Recording read_recording(const std::string& wav) {
  Recording r;
  std::ifstream clock(wav + ".clock");
  if (!(clock >> r.start_us >> r.rate)) return {};
  std::uint32_t rate = 0;
  r.samples = read_wav(wav, rate);
  return r;
}

// When the recording has sounded up to (us, node clock).
double sounded_until(const Recording& r) {
  return r.rate ? static_cast<double>(r.start_us) + static_cast<double>(r.samples.size()) * 1e6 / r.rate : 0;
}

}  // namespace

TEST(Speakers, AScheduledToneStartsOnEveryNodeWithinTwoMsOfT) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway("[clock]\nping_period_s = 0.3\nfast_ping_period_s = 0.1\n");
  constexpr int kNodes = 4;
  auto wav = [&](int i) { return dir.file("spk" + std::to_string(i) + ".wav"); };
  for (int i = 0; i < kNodes; ++i) {
    // A pipe nobody writes: the speaker's source is never fresh, so it is
    // silent until the scheduled value starts it. A 1 ms ramp: the onset is sharp.
    const std::string id = "n" + std::to_string(i);
    mesh.start_node(id, "c1",
                    "kind = \"pipe\"\npath = \"" + dir.file(id + ".fifo") +
                        "\"\n\n[outputs.tone]\nkind = \"speaker\"\nsource = \"local:main\"\nwav = \"" + wav(i) +
                        "\"\nrate_hz = 48000\nramp_ms = 1\n",
                    "heartbeat_period_s = 0.5\n");
  }
  for (int i = 0; i < kNodes; ++i)
    ASSERT_TRUE(eventually([&] {
      auto n = mesh.node_info("n" + std::to_string(i));
      return n && n->online && n->clock_samples >= 4 && n->processing_ms < 50;
    }, 30s)) << mesh.gateway().output();
  auto r = mesh.kairosctl({"--json", "schedule", "set_output", "--output", "tone", "--value", "0.5,0,1", "--hold",
                           "5000", "--in", "1500", "--targets", "all"});
  ASSERT_EQ(r.status, 0) << r.output << mesh.gateway().output();
  const double T = json_number(r.output, "at_us");
  ASSERT_GT(T, 0) << r.output;
  std::vector<double> errors_ms;
  for (int i = 0; i < kNodes; ++i) {
    Recording rec;
    ASSERT_TRUE(eventually([&] {
      rec = read_recording(wav(i));
      return sounded_until(rec) > T + 300'000;
    }, 20s)) << "n" << i << "\n" << mesh.node("n" + std::to_string(i)).output();
    // Silence before, the tone from its first loud frame on (a 1 ms ramp
    // crosses a tenth of full scale within a few frames of its start).
    auto loud = std::find_if(rec.samples.begin(), rec.samples.end(), [](std::int16_t s) { return std::abs(s) > 3276; });
    ASSERT_NE(loud, rec.samples.end()) << "n" << i;
    const double onset = static_cast<double>(rec.start_us) +
                         static_cast<double>(loud - rec.samples.begin()) * 1e6 / rec.rate;
    errors_ms.push_back((onset - T) / 1000.0);
    EXPECT_NEAR(onset, T, 2'000) << "n" << i << " started " << (onset - T) / 1000.0 << " ms from T\n"
                                 << mesh.node("n" + std::to_string(i)).output();
    // And it plays on: loud for the next 100 ms.
    const auto k = static_cast<std::size_t>(loud - rec.samples.begin());
    std::size_t loud_frames = 0;
    for (std::size_t j = k + 480; j < k + 4800 && j < rec.samples.size(); ++j) loud_frames += std::abs(rec.samples[j]) > 3276;
    EXPECT_GT(loud_frames, 3600u) << "n" << i;
  }
  std::cout << "tone starts against T (ms):";
  for (double e : errors_ms) std::cout << " " << e;
  std::cout << "; spread " << (*std::max_element(errors_ms.begin(), errors_ms.end()) -
                               *std::min_element(errors_ms.begin(), errors_ms.end()))
            << " ms\n";
  // Each took the buffer it was given, and reports in its heartbeat what a
  // frame written now waits to sound (the mark, 15 ms, less what drained
  // since the last render: within the 20 ms buffer) and how often its
  // device ran dry (a loaded machine may stall a render: not asserted).
  const std::string hb = node_topic(mesh.name(), "c1", "n0", TopicKind::hb);
  Client watch(broker.uri());
  watch.subscribe(hb);
  ASSERT_TRUE(watch.wait_for([&](const auto&) {
    return !watch.frames(hb, mesh.node_key("n0"), kairos_v1_Envelope_heartbeat_tag).empty();
  }, 10s));
  const auto& h = watch.frames(hb, mesh.node_key("n0"), kairos_v1_Envelope_heartbeat_tag).back()->message.heartbeat;
  EXPECT_GT(h.audio_delay_ms, 0.0f);
  EXPECT_LE(h.audio_delay_ms, 20.0f);
  std::cout << "n0's heartbeat: audio delay " << h.audio_delay_ms << " ms, " << h.audio_underruns << " underruns\n";
  for (int i = 0; i < kNodes; ++i) {
    const auto& out = mesh.node("n" + std::to_string(i)).output();
    EXPECT_NE(out.find("4 periods of 240 frames at 48000 Hz"), std::string::npos) << out;
  }
}

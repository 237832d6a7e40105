#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "firmware/drivers/audio.h"
#include "firmware/outputs/output.h"
#include "firmware/outputs/tone.h"

using namespace kairos::node;

namespace {

// Frequency from rising zero crossings, interpolated between samples.
double measure_hz(const std::vector<std::int16_t>& s, int rate) {
  std::vector<double> crossings;
  for (std::size_t i = 1; i < s.size(); ++i)
    if (s[i - 1] < 0 && s[i] >= 0) crossings.push_back(static_cast<double>(i - 1) + s[i - 1] / double(s[i - 1] - s[i]));
  if (crossings.size() < 2) return 0;
  return static_cast<double>(crossings.size() - 1) * rate / (crossings.back() - crossings.front());
}

}  // namespace

TEST(Tone, PlaysTheTargetFrequency) {
  ToneGenerator t(48000, 20);
  t.set_target(550, 1.0);
  std::vector<std::int16_t> buf(48000);
  t.render(buf);
  std::vector<std::int16_t> tail(buf.begin() + 4800, buf.end());  // after the gain ramp
  EXPECT_NEAR(measure_hz(tail, 48000), 550.0, 0.5);
}

TEST(Tone, ChangesAreClickFree) {
  // Jumping targets never make a step larger than the steepest slope of the
  // loudest, highest tone: the waveform stays continuous.
  ToneGenerator t(48000, 20);
  const double max_step = 32767.0 * 2 * M_PI * 880 / 48000 + 2;
  std::vector<std::int16_t> all;
  for (int block = 0; block < 40; ++block) {
    t.set_target(block % 2 ? 880 : 440, block % 3 ? 1.0 : 0.0);
    std::vector<std::int16_t> buf(480);
    t.render(buf);
    all.insert(all.end(), buf.begin(), buf.end());
  }
  for (std::size_t i = 1; i < all.size(); ++i)
    ASSERT_LE(std::abs(all[i] - all[i - 1]), max_step) << "at sample " << i;
  EXPECT_EQ(all.front(), 0) << "starts from silence";
}

TEST(Tone, GainRampsWithinTheRampTime) {
  ToneGenerator t(48000, 20);
  t.set_target(440, 1.0);
  std::vector<std::int16_t> buf(48);  // 1 ms
  t.render(buf);
  EXPECT_LT(t.gain(), 0.2);
  std::vector<std::int16_t> rest(960);  // to 21 ms
  t.render(rest);
  EXPECT_GT(t.gain(), 0.94);
}

TEST(ChannelMap, LinearWithClamp) {
  ChannelMap m{ChannelMap::From::re, 0, 1, 440, 880};
  EXPECT_DOUBLE_EQ(m.apply({0.5, 0, 0}), 660);
  EXPECT_DOUBLE_EQ(m.apply({-1, 0, 0}), 440);
  EXPECT_DOUBLE_EQ(m.apply({2, 0, 0}), 880);
  ChannelMap c{ChannelMap::From::c, 0.5, 1.0, 0, 10};
  EXPECT_DOUBLE_EQ(c.apply({0, 0, 0.75}), 5);
  auto d = default_channels("speaker");
  EXPECT_DOUBLE_EQ(d.at("frequency").apply({0.25, 0, 0}), 550);  // 440 + re * 440
  EXPECT_DOUBLE_EQ(d.at("volume").apply({0, 0, 0.3}), 0.3);
  auto motor = default_channels("motor");
  EXPECT_DOUBLE_EQ(motor.at("velocity").apply({0.5, 0, 0}), 0.0);  // (re - 0.5) * 2
  EXPECT_DOUBLE_EQ(motor.at("rotation").apply({0, 1, 0}), 1.0);
}

TEST(WavSink, WritesAValidFile) {
  auto path = std::filesystem::temp_directory_path() / ("kairos-wav-" + std::to_string(::getpid()) + ".wav");
  {
    WavSink w(path.string());
    AudioFormat f;
    f.rate_hz = 16000;
    ASSERT_TRUE(w.open(f));
    std::vector<std::int16_t> s{1, -2, 3, -32768, 32767};
    EXPECT_EQ(w.write(s, 0), 5u);
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<unsigned char> b((std::istreambuf_iterator<char>(in)), {});
  ASSERT_EQ(b.size(), 44u + 10u);
  auto u32 = [&](std::size_t o) { return b[o] | b[o + 1] << 8 | b[o + 2] << 16 | static_cast<std::uint32_t>(b[o + 3]) << 24; };
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "RIFF");
  EXPECT_EQ(u32(4), 36u + 10u);
  EXPECT_EQ(u32(24), 16000u);
  EXPECT_EQ(u32(40), 10u);
  EXPECT_EQ(static_cast<std::int16_t>(b[50] | b[51] << 8), -32768);
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + ".clock");
}

TEST(Speaker, FrequencyFollowsARampOfTheSource) {
  // The speaker output rendered into a WAV sink while its source ramps 0 -> 1:
  // in every 100 ms window the tone is at 440 + re * 440 Hz.
  auto path = std::filesystem::temp_directory_path() / ("kairos-ramp-" + std::to_string(::getpid()) + ".wav");
  OutputConfig c;
  c.name = "spk";
  c.kind = "speaker";
  c.wav = path.string();
  c.rate_hz = 48000;
  c.ramp_ms = 5;
  c.audio_thread = false;  // rendered on each update, on the test's clock
  c.channels = default_channels("speaker");
  std::vector<double> expected;
  {
    auto out = make_output(c, nullptr);
    ASSERT_TRUE(out->setup());
    for (int ms = 0; ms <= 4000; ms += 10) {  // a 10 ms loop, as on a node
      double re = std::min(1.0, ms / 4000.0);
      SourceValue v{re, 0, 1.0};
      out->update(static_cast<std::int64_t>(ms) * 1000, &v);
      if (ms % 100 == 50) expected.push_back(440 + re * 440);
    }
  }
  std::ifstream in(path, std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), {});
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + ".clock");
  ASSERT_GT(raw.size(), 44u);
  std::vector<std::int16_t> s((raw.size() - 44) / 2);
  if (!s.empty()) std::memcpy(s.data(), raw.data() + 44, s.size() * 2);
  // Real time, plus the buffer's mark (15 ms) and the closing fade with the silence after it.
  EXPECT_NEAR(static_cast<double>(s.size()), 4.0 * 48000 + 0.025 * 48000, 48000 * 0.025);
  for (std::size_t w = 1; w < 39; ++w) {
    std::vector<std::int16_t> win(s.begin() + static_cast<long>(w * 4800), s.begin() + static_cast<long>((w + 1) * 4800));
    EXPECT_NEAR(measure_hz(win, 48000), expected[w], 6.0) << "window " << w;
  }
}

// gpio, microphone and camera inputs and the LED output, against fakes of
// their hardware seams (a fake GPIO chip's edges, audio frames, video frames,
// PWM channels) and the real drivers' error paths.
#include <gtest/gtest.h>

#include <cmath>
#include <deque>

#include <unistd.h>

#include <filesystem>

#include "firmware/drivers/audio.h"
#include "firmware/drivers/capture.h"
#include "firmware/drivers/gpio_input.h"
#include "firmware/outputs/led.h"
#include "tests/unit/firmware/fakes.h"

using namespace kairos::node;
using namespace kairos::node::test;

namespace {

struct FakeChip : EdgeSource {
  std::deque<Edge> pending;
  bool now = false;
  bool broken = false;
  std::string err = "fake chip gone";
  bool setup() override { return !broken; }
  bool poll(std::vector<Edge>& out) override {
    if (broken) return false;
    out.insert(out.end(), pending.begin(), pending.end());
    pending.clear();
    return true;
  }
  bool level() override { return now; }
  const std::string& error() const override { return err; }
};

}  // namespace

TEST(Debouncer, BounceIsIgnoredAHeldLevelIsTaken) {
  Debouncer d(20'000);
  d.reset(false, 0);
  d.edge({1'000, true});
  d.edge({3'000, false});  // bounce
  d.edge({4'000, true});
  EXPECT_FALSE(d.level(10'000));
  EXPECT_FALSE(d.level(23'999));
  EXPECT_TRUE(d.level(24'000));  // held 20 ms since the last edge
  d.edge({30'000, false});
  d.edge({35'000, true});  // a glitch shorter than the hold
  EXPECT_TRUE(d.level(60'000));
}

TEST(GpioInput, ReadsTheDebouncedLevelFromTheChip) {
  auto chip = std::make_unique<FakeChip>();
  auto* c = chip.get();
  GpioInput in(std::move(chip), 10, "fake");
  ASSERT_TRUE(in.setup());
  EXPECT_DOUBLE_EQ(in.read(0).reading.x, 0.0);
  c->pending = {{1'000, true}, {2'000, false}, {2'500, true}};
  EXPECT_DOUBLE_EQ(in.read(5'000).reading.x, 0.0);
  EXPECT_DOUBLE_EQ(in.read(12'500).reading.x, 1.0);
  c->broken = true;
  auto r = in.read(20'000);
  EXPECT_EQ(r.status, ReadResult::Status::failed);
  EXPECT_EQ(r.error, "fake chip gone");
}

TEST(GpioInput, RealDriverReportsAMissingChip) {
  GpioInputConfig c;
  c.chip_label = "no-such-chip";
  c.line = "GPIO5";
  GpiodEdges edges(c);
  EXPECT_FALSE(edges.setup());
  EXPECT_NE(edges.error().find("no-such-chip"), std::string::npos);
}

namespace {
struct FakeAudio : AudioSource {
  std::vector<std::int16_t> data;
  std::size_t pos = 0;
  std::size_t per_read = 160;
  std::string err = "device gone";
  bool fail = false;
  bool open(int) override { return true; }
  long read(std::span<std::int16_t> out) override {
    if (fail) return -1;
    std::size_t n = std::min({out.size(), per_read, data.size() - pos});
    std::copy_n(data.begin() + static_cast<long>(pos), n, out.begin());
    pos += n;
    return static_cast<long>(n);
  }
  const std::string& error() const override { return err; }
};
}  // namespace

TEST(Microphone, RmsOfWhatArrived) {
  auto src = std::make_unique<FakeAudio>();
  auto* a = src.get();
  for (int i = 0; i < 1600; ++i) a->data.push_back(static_cast<std::int16_t>(16384 * std::sin(2 * M_PI * 440 * i / 16000.0)));
  MicrophoneInput mic(std::move(src), 16000, "fake");
  ASSERT_TRUE(mic.setup());
  auto r = mic.read(0);
  ASSERT_EQ(r.status, ReadResult::Status::sample);
  EXPECT_NEAR(r.reading.x, 0.5 / std::sqrt(2.0), 0.002);  // a sine at half scale
  EXPECT_EQ(mic.read(1).status, ReadResult::Status::none);  // nothing new: no sample, no error
  a->fail = true;
  EXPECT_EQ(mic.read(2).status, ReadResult::Status::failed);
  std::vector<std::int16_t> silence(100, 0);
  EXPECT_DOUBLE_EQ(rms(silence), 0.0);
}

TEST(Microphone, RealDriverReportsAMissingDevice) {
  AlsaCapture cap("hw:CARD=NoSuchCard,DEV=0");
  EXPECT_FALSE(cap.open(16000));
  EXPECT_FALSE(cap.error().empty());
}

namespace {
struct FakeCamera : FrameSource {
  std::vector<std::vector<std::uint8_t>> frames;
  FrameView::Format format = FrameView::Format::yuyv;
  std::string err = "unplugged";
  bool fail = false;
  bool open() override { return true; }
  int next(FrameView& out) override {
    if (fail) return -1;
    if (frames.empty()) return 0;
    current = frames.front();
    frames.erase(frames.begin());
    out = {current.data(), current.size(), 2, 2, format};
    return 1;
  }
  const std::string& error() const override { return err; }
  std::vector<std::uint8_t> current;
};
}  // namespace

TEST(Camera, MeanLumaOfTheNewestFrame) {
  // YUYV: Y0 U Y1 V; the chroma bytes must not count.
  std::vector<std::uint8_t> yuyv{100, 255, 200, 0, 50, 255, 150, 0};
  FrameView f{yuyv.data(), yuyv.size(), 2, 2, FrameView::Format::yuyv};
  EXPECT_DOUBLE_EQ(mean_luma(f), 125.0);
  std::vector<std::uint8_t> grey{0, 255, 255, 0};
  EXPECT_DOUBLE_EQ(mean_luma({grey.data(), grey.size(), 2, 2, FrameView::Format::grey}), 127.5);

  auto src = std::make_unique<FakeCamera>();
  auto* cam = src.get();
  cam->frames = {yuyv};
  CameraInput in(std::move(src), "fake");
  ASSERT_TRUE(in.setup());
  EXPECT_NEAR(in.read(0).reading.x, 125.0 / 255.0, 1e-12);
  EXPECT_EQ(in.read(1).status, ReadResult::Status::none);
  cam->fail = true;
  EXPECT_EQ(in.read(2).status, ReadResult::Status::failed);
}

TEST(Camera, RealDriverReportsAMissingDevice) {
  V4l2Source v("/dev/video-does-not-exist", 160, 120, FrameView::Format::yuyv);
  EXPECT_FALSE(v.open());
  EXPECT_NE(v.error().find("/dev/video-does-not-exist"), std::string::npos);
  FrameView f;
  EXPECT_EQ(v.next(f), -1);
}


TEST(Led, HueAndBrightnessFromTheSource) {
  auto rgb = hue_to_rgb(0, 1);
  EXPECT_EQ(rgb, (std::array<double, 3>{1, 0, 0}));
  rgb = hue_to_rgb(120, 0.5);
  EXPECT_EQ(rgb, (std::array<double, 3>{0, 0.5, 0}));
  rgb = hue_to_rgb(240, 1);
  EXPECT_EQ(rgb, (std::array<double, 3>{0, 0, 1}));
  rgb = hue_to_rgb(60, 1);
  EXPECT_EQ(rgb, (std::array<double, 3>{1, 1, 0}));

  double r = 0, g = 0, b = 0;
  bool r_off = false;
  OutputConfig c;
  c.name = std::string("lamp");
  c.kind = std::string("led");
  c.channels = default_channels(c.kind);
  {
    Led led(c, {std::make_unique<FakePwm>(&r, true, &r_off), std::make_unique<FakePwm>(&g), std::make_unique<FakePwm>(&b)});
    ASSERT_TRUE(led.setup());
    SourceValue v{1.0 / 3.0, 0, 0.8};  // hue 120 (green), brightness 0.8
    led.update(0, &v);
    EXPECT_NEAR(r, 0, 1e-12);
    EXPECT_NEAR(g, 0.8, 1e-12);
    EXPECT_NEAR(b, 0, 1e-12);
    led.update(1, nullptr);  // stale: off
    EXPECT_EQ(g, 0.0);
  }
  EXPECT_TRUE(r_off);  // channels disabled on exit
}

TEST(Microphone, AgainstAWavFile) {
  // A recording made by the speaker's WAV sink, replayed as a microphone.
  auto path = std::filesystem::temp_directory_path() / ("kairos-mic-" + std::to_string(::getpid()) + ".wav");
  {
    WavSink w(path.string());
    AudioFormat f;
    f.rate_hz = 8000;
    f.period_frames = 8000;  // one write of a second
    f.periods = 1;
    ASSERT_TRUE(w.open(f));
    std::vector<std::int16_t> s(8000);
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<std::int16_t>(8192 * std::sin(2 * M_PI * 250 * static_cast<double>(i) / 8000.0));
    ASSERT_EQ(w.write(s, 0), s.size());
  }
  std::int64_t now = 0;
  MicrophoneInput mic(std::make_unique<WavFileCapture>(path.string(), [&] { return now; }), 8000, "wav");
  ASSERT_TRUE(mic.setup());
  EXPECT_EQ(mic.read(now).status, ReadResult::Status::none);  // no time has passed
  now += 100'000;  // 100 ms: 800 frames
  auto r = mic.read(now);
  ASSERT_EQ(r.status, ReadResult::Status::sample);
  EXPECT_NEAR(r.reading.x, 0.25 / std::sqrt(2.0), 0.003);
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + ".clock");
  WavFileCapture missing("/nonexistent.wav", [] { return std::int64_t{0}; });
  EXPECT_FALSE(missing.open(8000));
}

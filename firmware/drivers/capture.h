#pragma once
// microphone and camera inputs (docs/DESIGN.md 3.3). microphone: ALSA capture, the RMS
// amplitude of what arrived since the last sample (0..1 of full scale).
// camera: V4L2 capture (YUYV or GREY), the mean luma of the newest frame
// (0..1). Both never block: no new audio or frame is "nothing new".
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "firmware/drivers/input.h"

namespace kairos::node {

class AudioSource {
 public:
  virtual ~AudioSource() = default;
  virtual bool open(int rate_hz) = 0;
  // Frames available now (mono 16-bit), at most out.size(); -1 on failure.
  virtual long read(std::span<std::int16_t> out) = 0;
  virtual const std::string& error() const = 0;
};

class AlsaCapture : public AudioSource {
 public:
  explicit AlsaCapture(std::string device) : device_(std::move(device)) {}
  ~AlsaCapture() override;
  bool open(int rate_hz) override;
  long read(std::span<std::int16_t> out) override;
  const std::string& error() const override { return error_; }

 private:
  std::string device_;
  void* pcm_ = nullptr;
  std::string error_;
};

// A WAV file (mono 16-bit PCM) played as if it were being captured: at
// each read, the frames of the time that passed since the previous one;
// loops at the end. For tests and for replaying recordings.
class WavFileCapture : public AudioSource {
 public:
  // now_us gives the time (monotonic us); tests pass their own.
  WavFileCapture(std::string path, std::function<std::int64_t()> now_us);
  bool open(int rate_hz) override;
  long read(std::span<std::int16_t> out) override;
  const std::string& error() const override { return error_; }

 private:
  std::string path_;
  std::function<std::int64_t()> now_us_;
  std::vector<std::int16_t> samples_;
  int rate_ = 0;
  std::size_t pos_ = 0;
  std::int64_t last_us_ = -1;
  double owed_ = 0;
  std::string error_;
};

// RMS of 16-bit samples as a fraction of full scale.
double rms(std::span<const std::int16_t> s);

class MicrophoneInput : public Input {
 public:
  MicrophoneInput(std::unique_ptr<AudioSource> source, int rate_hz, std::string describe);
  bool setup() override;
  ReadResult read(std::int64_t now_us) override;
  std::string dump_config() const override { return describe_; }

 private:
  std::unique_ptr<AudioSource> source_;
  int rate_hz_;
  std::string describe_;
  bool open_ = false;
  std::vector<std::int16_t> buf_;
};

struct FrameView {
  enum class Format { yuyv, grey };
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
  std::uint32_t width = 0, height = 0;
  Format format = Format::yuyv;
};

// Mean luma 0..255: Y of every YUYV pixel, or every GREY byte.
double mean_luma(const FrameView& f);

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  virtual bool open() = 0;
  // The newest frame if one arrived since the last call (valid until the next
  // call); 0 = none new, -1 = failure.
  virtual int next(FrameView& out) = 0;
  virtual const std::string& error() const = 0;
};

class V4l2Source : public FrameSource {
 public:
  V4l2Source(std::string device, std::uint32_t width, std::uint32_t height, FrameView::Format format);
  ~V4l2Source() override;
  bool open() override;
  int next(FrameView& out) override;
  const std::string& error() const override { return error_; }

 private:
  void close_all();
  std::string device_;
  std::uint32_t width_, height_;
  FrameView::Format format_;
  int fd_ = -1;
  struct Buffer {
    void* start = nullptr;
    std::size_t length = 0;
  };
  std::vector<Buffer> buffers_;
  int held_ = -1;  // buffer index handed out by next(), queued again on the following call
  std::string error_;
};

class CameraInput : public Input {
 public:
  CameraInput(std::unique_ptr<FrameSource> source, std::string describe);
  bool setup() override;
  ReadResult read(std::int64_t now_us) override;
  std::string dump_config() const override { return describe_; }

 private:
  std::unique_ptr<FrameSource> source_;
  std::string describe_;
  bool open_ = false;
};

}  // namespace kairos::node

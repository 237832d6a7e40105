#pragma once
// Audio playback seam (docs/DESIGN.md 3.5 speaker): ALSA on a board, a WAV file for
// tests and recording. Writes never block; every sink says how many frames
// it holds that have not played yet, which is the latency from a frame
// written to its sound.
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace kairos::node {

// Opens an ALSA PCM for mono 16-bit audio, non-blocking (snd_pcm_t* as
// void*, so that ALSA's header stays out of ours); nullptr with why in error.
void* open_alsa_pcm(const std::string& device, bool capture, int rate_hz, unsigned latency_us, std::string& error);

// What a sink is opened with: the rate, and the device buffer as periods.
struct AudioFormat {
  int rate_hz = 48000;
  std::size_t period_frames = 240;  // 5 ms at 48 kHz
  std::size_t periods = 4;          // the buffer: 20 ms
  std::size_t buffer_frames() const { return period_frames * periods; }
};

class AudioSink {
 public:
  virtual ~AudioSink() = default;
  // Opens the device or file; false on failure (why in error()). A device
  // may round the period and buffer: format() says what it took.
  virtual bool open(const AudioFormat& f) = 0;
  virtual const AudioFormat& format() const = 0;
  // Frames written that have not played yet at now_us (the node's wall
  // clock; a device reads its own): the next frame written plays this many
  // frames from now. 0 when stopped or run dry.
  virtual std::int64_t queued(std::int64_t now_us) = 0;
  // Writes frames at now_us; returns how many were taken (never more than
  // the buffer has room for).
  virtual std::size_t write(std::span<const std::int16_t> frames, std::int64_t now_us) = 0;
  // Times the device ran dry while playing (each one a gap in the sound).
  virtual std::uint64_t underruns() const = 0;
  virtual void close() = 0;
  virtual const std::string& error() const = 0;
};

// A RIFF/WAVE file played as a device would play it: from the first write,
// at the rate, by the node's clock, out of a buffer of the format's size.
// What plays when it runs dry is silence, written into the file, so that
// frame k of the file sounds at start + k / rate, on the node's clock. That
// start is kept beside it in `<path>.clock` ("start_us rate"), the way a
// test finds when each frame sounded. The header's sizes are kept right
// after every write.
class WavSink : public AudioSink {
 public:
  explicit WavSink(std::string path) : path_(std::move(path)) {}
  ~WavSink() override { close(); }
  bool open(const AudioFormat& f) override;
  const AudioFormat& format() const override { return format_; }
  std::int64_t queued(std::int64_t now_us) override;
  std::size_t write(std::span<const std::int16_t> frames, std::int64_t now_us) override;
  std::uint64_t underruns() const override { return underruns_; }
  void close() override;
  const std::string& error() const override { return error_; }

 private:
  void append(std::span<const std::int16_t> frames);
  void patch_sizes();
  std::string path_;
  AudioFormat format_;
  std::FILE* f_ = nullptr;
  std::uint32_t frames_ = 0;      // in the file
  std::int64_t start_us_ = -1;    // when frame 0 sounded; -1 before the first write
  std::uint64_t underruns_ = 0;
  std::string error_;
};

// ALSA playback, non-blocking, with the period and buffer of the format.
class AlsaSink : public AudioSink {
 public:
  explicit AlsaSink(std::string device) : device_(std::move(device)) {}
  ~AlsaSink() override { close(); }
  bool open(const AudioFormat& f) override;
  const AudioFormat& format() const override { return format_; }
  std::int64_t queued(std::int64_t now_us) override;
  std::size_t write(std::span<const std::int16_t> frames, std::int64_t now_us) override;
  std::uint64_t underruns() const override { return underruns_; }
  void close() override;
  const std::string& error() const override { return error_; }

 private:
  bool recover(int err);  // an underrun (counted) or a suspend: ready to write again
  std::string device_;
  AudioFormat format_;
  void* pcm_ = nullptr;  // snd_pcm_t*
  std::uint64_t underruns_ = 0;
  std::string error_;
};

}  // namespace kairos::node

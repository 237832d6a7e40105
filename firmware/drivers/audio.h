#pragma once
// Audio playback seam (docs/DESIGN.md 3.5 speaker): ALSA on a board, a WAV file for
// tests and recording. Writes never block the node's loop.
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace kairos::node {

// Opens an ALSA PCM for mono 16-bit audio, non-blocking (snd_pcm_t* as
// void*, so that ALSA's header stays out of ours); nullptr with why in error.
void* open_alsa_pcm(const std::string& device, bool capture, int rate_hz, unsigned latency_us, std::string& error);

class AudioSink {
 public:
  virtual ~AudioSink() = default;
  // Opens the device or file for mono 16-bit audio at rate_hz; false on failure (why in error()).
  virtual bool open(int rate_hz) = 0;
  // How many frames can be written now without blocking.
  virtual std::size_t writable() = 0;
  // Writes frames; returns how many were taken.
  virtual std::size_t write(std::span<const std::int16_t> frames) = 0;
  virtual void close() = 0;
  virtual const std::string& error() const = 0;
};

// A RIFF/WAVE file; the header's sizes are kept right after every write.
class WavSink : public AudioSink {
 public:
  explicit WavSink(std::string path) : path_(std::move(path)) {}
  ~WavSink() override { close(); }
  bool open(int rate_hz) override;
  std::size_t writable() override { return 1 << 16; }
  std::size_t write(std::span<const std::int16_t> frames) override;
  void close() override;
  const std::string& error() const override { return error_; }

 private:
  void patch_sizes();
  std::string path_;
  std::FILE* f_ = nullptr;
  std::uint32_t frames_ = 0;
  std::string error_;
};

// ALSA playback, non-blocking, with a small buffer (about 4 periods).
class AlsaSink : public AudioSink {
 public:
  AlsaSink(std::string device, int buffer_ms) : device_(std::move(device)), buffer_ms_(buffer_ms) {}
  ~AlsaSink() override { close(); }
  bool open(int rate_hz) override;
  std::size_t writable() override;
  std::size_t write(std::span<const std::int16_t> frames) override;
  void close() override;
  const std::string& error() const override { return error_; }

 private:
  std::string device_;
  int buffer_ms_;
  void* pcm_ = nullptr;  // snd_pcm_t*
  std::string error_;
};

}  // namespace kairos::node

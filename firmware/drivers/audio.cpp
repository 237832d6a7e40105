#include "firmware/drivers/audio.h"

#include <alsa/asoundlib.h>

#include <cstring>

namespace kairos::node {

namespace {
void put_u32(unsigned char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u16(unsigned char* p, std::uint16_t v) {
  p[0] = static_cast<unsigned char>(v);
  p[1] = static_cast<unsigned char>(v >> 8);
}
}  // namespace

bool WavSink::open(int rate_hz) {
  f_ = std::fopen(path_.c_str(), "wb");
  if (!f_) {
    error_ = path_ + ": " + std::strerror(errno);
    return false;
  }
  unsigned char h[44] = {};
  std::memcpy(h, "RIFF", 4);
  std::memcpy(h + 8, "WAVEfmt ", 8);
  put_u32(h + 16, 16);                                   // fmt chunk size
  put_u16(h + 20, 1);                                    // PCM
  put_u16(h + 22, 1);                                    // mono
  put_u32(h + 24, static_cast<std::uint32_t>(rate_hz));  // sample rate
  put_u32(h + 28, static_cast<std::uint32_t>(rate_hz) * 2);
  put_u16(h + 32, 2);   // block align
  put_u16(h + 34, 16);  // bits per sample
  std::memcpy(h + 36, "data", 4);
  std::fwrite(h, 1, sizeof h, f_);
  frames_ = 0;
  patch_sizes();
  return true;
}

std::size_t WavSink::write(std::span<const std::int16_t> frames) {
  if (!f_) return 0;
  unsigned char buf[2 * 512];
  std::size_t done = 0;
  while (done < frames.size()) {
    std::size_t n = std::min<std::size_t>(512, frames.size() - done);
    for (std::size_t i = 0; i < n; ++i) put_u16(buf + 2 * i, static_cast<std::uint16_t>(frames[done + i]));
    std::fwrite(buf, 2, n, f_);
    done += n;
  }
  frames_ += static_cast<std::uint32_t>(frames.size());
  patch_sizes();
  return frames.size();
}

void WavSink::patch_sizes() {
  unsigned char v[4];
  long end = std::ftell(f_);
  put_u32(v, 36 + frames_ * 2);
  std::fseek(f_, 4, SEEK_SET);
  std::fwrite(v, 1, 4, f_);
  put_u32(v, frames_ * 2);
  std::fseek(f_, 40, SEEK_SET);
  std::fwrite(v, 1, 4, f_);
  std::fseek(f_, end, SEEK_SET);
  std::fflush(f_);
}

void WavSink::close() {
  if (f_) std::fclose(f_);
  f_ = nullptr;
}

void* open_alsa_pcm(const std::string& device, bool capture, int rate_hz, unsigned latency_us, std::string& error) {
  snd_pcm_t* pcm = nullptr;
  int rc = snd_pcm_open(&pcm, device.c_str(), capture ? SND_PCM_STREAM_CAPTURE : SND_PCM_STREAM_PLAYBACK, SND_PCM_NONBLOCK);
  if (rc >= 0)
    rc = snd_pcm_set_params(pcm, SND_PCM_FORMAT_S16_LE, SND_PCM_ACCESS_RW_INTERLEAVED, 1, static_cast<unsigned>(rate_hz), 1,
                            latency_us);
  if (rc < 0) {
    error = device + ": " + snd_strerror(rc);
    if (pcm) snd_pcm_close(pcm);
    return nullptr;
  }
  return pcm;
}

bool AlsaSink::open(int rate_hz) {
  pcm_ = open_alsa_pcm(device_, false, rate_hz, static_cast<unsigned>(buffer_ms_) * 1000, error_);
  return pcm_ != nullptr;
}

std::size_t AlsaSink::writable() {
  if (!pcm_) return 0;
  auto* pcm = static_cast<snd_pcm_t*>(pcm_);
  snd_pcm_sframes_t n = snd_pcm_avail_update(pcm);
  if (n < 0) {
    snd_pcm_recover(pcm, static_cast<int>(n), 1);  // underrun: start again
    n = snd_pcm_avail_update(pcm);
  }
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

std::size_t AlsaSink::write(std::span<const std::int16_t> frames) {
  if (!pcm_) return 0;
  auto* pcm = static_cast<snd_pcm_t*>(pcm_);
  snd_pcm_sframes_t n = snd_pcm_writei(pcm, frames.data(), frames.size());
  if (n < 0) {
    n = snd_pcm_recover(pcm, static_cast<int>(n), 1);
    if (n < 0) {
      error_ = snd_strerror(static_cast<int>(n));
      return 0;
    }
    return 0;
  }
  return static_cast<std::size_t>(n);
}

void AlsaSink::close() {
  if (pcm_) {
    auto* pcm = static_cast<snd_pcm_t*>(pcm_);
    snd_pcm_drop(pcm);
    snd_pcm_close(pcm);
  }
  pcm_ = nullptr;
}

}  // namespace kairos::node

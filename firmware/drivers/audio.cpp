#include "firmware/drivers/audio.h"

#include <alsa/asoundlib.h>

#include <algorithm>
#include <cerrno>
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

bool WavSink::open(const AudioFormat& f) {
  format_ = f;
  f_ = std::fopen(path_.c_str(), "wb");
  if (!f_) {
    error_ = path_ + ": " + std::strerror(errno);
    return false;
  }
  const auto rate = static_cast<std::uint32_t>(f.rate_hz);
  unsigned char h[44] = {};
  std::memcpy(h, "RIFF", 4);
  std::memcpy(h + 8, "WAVEfmt ", 8);
  put_u32(h + 16, 16);  // fmt chunk size
  put_u16(h + 20, 1);   // PCM
  put_u16(h + 22, 1);   // mono
  put_u32(h + 24, rate);
  put_u32(h + 28, rate * 2);
  put_u16(h + 32, 2);   // block align
  put_u16(h + 34, 16);  // bits per sample
  std::memcpy(h + 36, "data", 4);
  std::fwrite(h, 1, sizeof h, f_);
  frames_ = 0;
  start_us_ = -1;
  patch_sizes();
  return true;
}

std::int64_t WavSink::queued(std::int64_t now_us) {
  if (!f_ || start_us_ < 0) return 0;
  // Frames that have sounded by now (rounded down: the one under way counts as queued).
  const std::int64_t played = (now_us - start_us_) * format_.rate_hz / 1'000'000;
  return std::max<std::int64_t>(0, frames_ - played);
}

std::size_t WavSink::write(std::span<const std::int16_t> frames, std::int64_t now_us) {
  if (!f_ || frames.empty()) return 0;
  if (start_us_ < 0) {
    start_us_ = now_us;
    if (std::FILE* c = std::fopen((path_ + ".clock").c_str(), "w")) {
      std::fprintf(c, "%lld %d\n", static_cast<long long>(start_us_), format_.rate_hz);
      std::fclose(c);
    }
  } else {
    // Run dry: the device played silence meanwhile (at most a minute of it).
    const std::int64_t played = (now_us - start_us_) * format_.rate_hz / 1'000'000;
    if (played > frames_) {
      ++underruns_;
      static constexpr std::int16_t kZeros[512] = {};
      auto gap = std::min<std::int64_t>(played - frames_, 60LL * format_.rate_hz);
      for (; gap > 0; gap -= 512) append({kZeros, static_cast<std::size_t>(std::min<std::int64_t>(gap, 512))});
    }
  }
  const auto room = static_cast<std::int64_t>(format_.buffer_frames()) - queued(now_us);
  frames = frames.first(static_cast<std::size_t>(std::clamp<std::int64_t>(room, 0, static_cast<std::int64_t>(frames.size()))));
  append(frames);
  patch_sizes();
  return frames.size();
}

void WavSink::append(std::span<const std::int16_t> frames) {
  unsigned char buf[2 * 512];
  std::size_t done = 0;
  while (done < frames.size()) {
    std::size_t n = std::min<std::size_t>(512, frames.size() - done);
    for (std::size_t i = 0; i < n; ++i) put_u16(buf + 2 * i, static_cast<std::uint16_t>(frames[done + i]));
    std::fwrite(buf, 2, n, f_);
    done += n;
  }
  frames_ += static_cast<std::uint32_t>(frames.size());
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

bool AlsaSink::open(const AudioFormat& f) {
  format_ = f;
  snd_pcm_t* pcm = nullptr;
  int rc = snd_pcm_open(&pcm, device_.c_str(), SND_PCM_STREAM_PLAYBACK, SND_PCM_NONBLOCK);
  auto fail = [&](const char* what) {
    error_ = device_ + ": " + what + ": " + snd_strerror(rc);
    if (pcm) snd_pcm_close(pcm);
    return false;
  };
  if (rc < 0) return fail("open");
  // The period and the buffer asked for, not ALSA's default (often 80 ms or more).
  snd_pcm_hw_params_t* hw = nullptr;
  snd_pcm_hw_params_alloca(&hw);
  unsigned rate = static_cast<unsigned>(f.rate_hz);
  snd_pcm_uframes_t period = f.period_frames, buffer = f.buffer_frames();
  int dir = 0;
  if ((rc = snd_pcm_hw_params_any(pcm, hw)) < 0) return fail("hw params");
  if ((rc = snd_pcm_hw_params_set_access(pcm, hw, SND_PCM_ACCESS_RW_INTERLEAVED)) < 0) return fail("access");
  if ((rc = snd_pcm_hw_params_set_format(pcm, hw, SND_PCM_FORMAT_S16_LE)) < 0) return fail("format S16_LE");
  if ((rc = snd_pcm_hw_params_set_channels(pcm, hw, 1)) < 0) return fail("mono");
  if ((rc = snd_pcm_hw_params_set_rate_near(pcm, hw, &rate, &dir)) < 0) return fail("rate");
  if ((rc = snd_pcm_hw_params_set_period_size_near(pcm, hw, &period, &dir)) < 0) return fail("period");
  if ((rc = snd_pcm_hw_params_set_buffer_size_near(pcm, hw, &buffer)) < 0) return fail("buffer");
  if ((rc = snd_pcm_hw_params(pcm, hw)) < 0) return fail("hw params");
  snd_pcm_hw_params_get_period_size(hw, &period, &dir);
  snd_pcm_hw_params_get_buffer_size(hw, &buffer);
  format_.rate_hz = static_cast<int>(rate);
  format_.period_frames = period;
  format_.periods = std::max<std::size_t>(2, buffer / std::max<snd_pcm_uframes_t>(1, period));
  // Start as soon as two periods are in: the first render fills more.
  snd_pcm_sw_params_t* sw = nullptr;
  snd_pcm_sw_params_alloca(&sw);
  if ((rc = snd_pcm_sw_params_current(pcm, sw)) < 0) return fail("sw params");
  snd_pcm_sw_params_set_start_threshold(pcm, sw, std::min<snd_pcm_uframes_t>(buffer, 2 * period));
  snd_pcm_sw_params_set_avail_min(pcm, sw, period);
  if ((rc = snd_pcm_sw_params(pcm, sw)) < 0) return fail("sw params");
  pcm_ = pcm;
  return true;
}

bool AlsaSink::recover(int err) {
  if (err == -EPIPE) ++underruns_;
  int rc = snd_pcm_recover(static_cast<snd_pcm_t*>(pcm_), err, 1);
  if (rc < 0) error_ = snd_strerror(rc);
  return rc >= 0;
}

std::int64_t AlsaSink::queued(std::int64_t) {
  if (!pcm_) return 0;
  auto* pcm = static_cast<snd_pcm_t*>(pcm_);
  if (snd_pcm_state(pcm) != SND_PCM_STATE_RUNNING && snd_pcm_state(pcm) != SND_PCM_STATE_PREPARED) {
    if (snd_pcm_state(pcm) == SND_PCM_STATE_XRUN) recover(-EPIPE);
    return 0;
  }
  snd_pcm_sframes_t d = 0;
  if (int rc = snd_pcm_delay(pcm, &d); rc < 0) {
    recover(rc);
    return 0;
  }
  return std::max<snd_pcm_sframes_t>(0, d);
}

std::size_t AlsaSink::write(std::span<const std::int16_t> frames, std::int64_t) {
  if (!pcm_) return 0;
  auto* pcm = static_cast<snd_pcm_t*>(pcm_);
  for (int attempt = 0; attempt < 2; ++attempt) {
    snd_pcm_sframes_t n = snd_pcm_writei(pcm, frames.data(), frames.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (n == -EAGAIN) return 0;
    if (!recover(static_cast<int>(n))) return 0;
  }
  return 0;
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

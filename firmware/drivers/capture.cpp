#include "firmware/drivers/capture.h"
#include "firmware/drivers/audio.h"

#include <alsa/asoundlib.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace kairos::node {

AlsaCapture::~AlsaCapture() {
  if (pcm_) snd_pcm_close(static_cast<snd_pcm_t*>(pcm_));
}

bool AlsaCapture::open(int rate_hz) {
  pcm_ = open_alsa_pcm(device_, true, rate_hz, 200'000, error_);
  if (pcm_ && snd_pcm_start(static_cast<snd_pcm_t*>(pcm_)) < 0) {
    error_ = device_ + ": cannot start capture";
    snd_pcm_close(static_cast<snd_pcm_t*>(pcm_));
    pcm_ = nullptr;
  }
  return pcm_ != nullptr;
}

long AlsaCapture::read(std::span<std::int16_t> out) {
  auto* pcm = static_cast<snd_pcm_t*>(pcm_);
  if (!pcm) return -1;
  snd_pcm_sframes_t n = snd_pcm_readi(pcm, out.data(), out.size());
  if (n == -EAGAIN) return 0;
  if (n < 0) {
    int rc = snd_pcm_recover(pcm, static_cast<int>(n), 1);  // overrun: go on from now
    if (rc < 0) {
      error_ = snd_strerror(rc);
      return -1;
    }
    snd_pcm_start(pcm);
    return 0;
  }
  return n;
}

WavFileCapture::WavFileCapture(std::string path, std::function<std::int64_t()> now_us)
    : path_(std::move(path)), now_us_(std::move(now_us)) {}

bool WavFileCapture::open(int) {
  std::FILE* f = std::fopen(path_.c_str(), "rb");
  if (!f) {
    error_ = path_ + ": " + std::strerror(errno);
    return false;
  }
  unsigned char h[44];
  bool ok = std::fread(h, 1, sizeof h, f) == sizeof h && std::memcmp(h, "RIFF", 4) == 0 &&
            std::memcmp(h + 8, "WAVE", 4) == 0 && h[20] == 1 && h[22] == 1 && h[34] == 16;
  if (!ok) {
    std::fclose(f);
    error_ = path_ + ": not a mono 16-bit PCM WAV file";
    return false;
  }
  rate_ = h[24] | h[25] << 8 | h[26] << 16 | h[27] << 24;
  unsigned char b[2];
  samples_.clear();
  while (std::fread(b, 1, 2, f) == 2) samples_.push_back(static_cast<std::int16_t>(b[0] | b[1] << 8));
  std::fclose(f);
  if (samples_.empty() || rate_ <= 0) {
    error_ = path_ + ": no audio";
    return false;
  }
  pos_ = 0;
  last_us_ = -1;
  return true;
}

long WavFileCapture::read(std::span<std::int16_t> out) {
  std::int64_t now = now_us_();
  if (last_us_ < 0) last_us_ = now;
  owed_ += static_cast<double>(now - last_us_) * rate_ / 1e6;
  last_us_ = now;
  auto n = std::min(static_cast<std::size_t>(owed_), out.size());
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = samples_[pos_];
    pos_ = (pos_ + 1) % samples_.size();
  }
  owed_ -= static_cast<double>(n);
  return static_cast<long>(n);
}

double rms(std::span<const std::int16_t> s) {
  if (s.empty()) return 0.0;
  double sum = 0;
  for (auto v : s) sum += static_cast<double>(v) * v;
  return std::sqrt(sum / static_cast<double>(s.size())) / 32768.0;
}

MicrophoneInput::MicrophoneInput(std::unique_ptr<AudioSource> source, int rate_hz, std::string describe)
    : source_(std::move(source)), rate_hz_(rate_hz), describe_(std::move(describe)), buf_(static_cast<std::size_t>(rate_hz)) {}

bool MicrophoneInput::setup() {
  if (!open_) open_ = source_->open(rate_hz_);
  return open_;
}

ReadResult MicrophoneInput::read(std::int64_t) {
  // Everything captured since the last sample (up to one second's worth).
  std::size_t have = 0;
  while (have < buf_.size()) {
    long n = source_->read(std::span<std::int16_t>(buf_.data() + have, buf_.size() - have));
    if (n < 0) {
      open_ = false;
      return ReadResult::failure("capture: " + source_->error());
    }
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
  }
  if (have == 0) return ReadResult::nothing();
  return ReadResult::of(rms(std::span<const std::int16_t>(buf_.data(), have)));
}

double mean_luma(const FrameView& f) {
  if (!f.data || f.size == 0) return 0.0;
  std::uint64_t sum = 0;
  std::size_t n = 0;
  if (f.format == FrameView::Format::grey) {
    for (std::size_t i = 0; i < f.size; ++i) sum += f.data[i];
    n = f.size;
  } else {
    for (std::size_t i = 0; i < f.size; i += 2) sum += f.data[i];  // Y0 U Y1 V: Y on even bytes
    n = (f.size + 1) / 2;
  }
  return static_cast<double>(sum) / static_cast<double>(n);
}

V4l2Source::V4l2Source(std::string device, std::uint32_t width, std::uint32_t height, FrameView::Format format)
    : device_(std::move(device)), width_(width), height_(height), format_(format) {}

V4l2Source::~V4l2Source() { close_all(); }

void V4l2Source::close_all() {
  if (fd_ >= 0) {
    int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    ::ioctl(fd_, VIDIOC_STREAMOFF, &type);
  }
  for (auto& b : buffers_)
    if (b.start) ::munmap(b.start, b.length);
  buffers_.clear();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  held_ = -1;
}

bool V4l2Source::open() {
  close_all();
  auto fail = [&](const std::string& what) {
    error_ = device_ + ": " + what + ": " + std::strerror(errno);
    close_all();
    return false;
  };
  fd_ = ::open(device_.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) return fail("open");
  v4l2_format fmt{};
  fmt.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  fmt.fmt.pix.width = width_;
  fmt.fmt.pix.height = height_;
  fmt.fmt.pix.pixelformat = format_ == FrameView::Format::grey ? V4L2_PIX_FMT_GREY : V4L2_PIX_FMT_YUYV;
  fmt.fmt.pix.field = V4L2_FIELD_NONE;
  if (::ioctl(fd_, VIDIOC_S_FMT, &fmt) < 0) return fail("VIDIOC_S_FMT");
  width_ = fmt.fmt.pix.width;
  height_ = fmt.fmt.pix.height;
  v4l2_requestbuffers req{};
  req.count = 2;
  req.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  req.memory = V4L2_MEMORY_MMAP;
  if (::ioctl(fd_, VIDIOC_REQBUFS, &req) < 0 || req.count < 1) return fail("VIDIOC_REQBUFS");
  for (unsigned i = 0; i < req.count; ++i) {
    v4l2_buffer buf{};
    buf.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    buf.memory = V4L2_MEMORY_MMAP;
    buf.index = i;
    if (::ioctl(fd_, VIDIOC_QUERYBUF, &buf) < 0) return fail("VIDIOC_QUERYBUF");
    void* p = ::mmap(nullptr, buf.length, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, buf.m.offset);
    if (p == MAP_FAILED) return fail("mmap");
    buffers_.push_back({p, buf.length});
    if (::ioctl(fd_, VIDIOC_QBUF, &buf) < 0) return fail("VIDIOC_QBUF");
  }
  int type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  if (::ioctl(fd_, VIDIOC_STREAMON, &type) < 0) return fail("VIDIOC_STREAMON");
  return true;
}

int V4l2Source::next(FrameView& out) {
  if (fd_ < 0) return -1;
  if (held_ >= 0) {  // give the previous frame's buffer back to the driver
    v4l2_buffer buf{};
    buf.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
    buf.memory = V4L2_MEMORY_MMAP;
    buf.index = static_cast<unsigned>(held_);
    ::ioctl(fd_, VIDIOC_QBUF, &buf);
    held_ = -1;
  }
  v4l2_buffer buf{};
  buf.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
  buf.memory = V4L2_MEMORY_MMAP;
  if (::ioctl(fd_, VIDIOC_DQBUF, &buf) < 0) {
    if (errno == EAGAIN) return 0;
    error_ = device_ + ": VIDIOC_DQBUF: " + std::strerror(errno);
    return -1;
  }
  held_ = static_cast<int>(buf.index);
  out = {static_cast<const std::uint8_t*>(buffers_[buf.index].start), buf.bytesused, width_, height_, format_};
  return 1;
}

CameraInput::CameraInput(std::unique_ptr<FrameSource> source, std::string describe)
    : source_(std::move(source)), describe_(std::move(describe)) {}

bool CameraInput::setup() {
  if (!open_) open_ = source_->open();
  return open_;
}

ReadResult CameraInput::read(std::int64_t) {
  FrameView f;
  int rc = source_->next(f);
  if (rc < 0) {
    open_ = false;
    return ReadResult::failure(source_->error());
  }
  if (rc == 0) return ReadResult::nothing();
  return ReadResult::of(mean_luma(f) / 255.0);
}

}  // namespace kairos::node

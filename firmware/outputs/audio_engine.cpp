#include "firmware/outputs/audio_engine.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>

namespace kairos::node {

AudioEngine::AudioEngine(std::unique_ptr<AudioSink> sink, const AudioFormat& format, double ramp_ms, Clock clock)
    : sink_(std::move(sink)), format_(format), ramp_ms_(ramp_ms), clock_(std::move(clock)), tone_(format.rate_hz, ramp_ms) {}

AudioEngine::~AudioEngine() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  sink_->close();
}

bool AudioEngine::open() {
  std::lock_guard lock(mu_);
  open_ = sink_->open(format_);
  buf_.assign(sink_->format().buffer_frames(), 0);
  return open_;
}

void AudioEngine::start_thread() {
  if (thread_.joinable() || !open_) return;
  thread_ = std::thread([this] { run(); });
}

void AudioEngine::set_target(double hz, double gain) {
  std::lock_guard lock(mu_);
  next_ = {hz, gain};
}

void AudioEngine::start_at(std::int64_t at_us, double hz, double gain) {
  std::lock_guard lock(mu_);
  auto at = std::upper_bound(planned_.begin(), planned_.end(), at_us,
                             [](std::int64_t t, const Planned& p) { return t < p.at_us; });
  planned_.insert(at, {at_us, hz, gain});
}

void AudioEngine::silence() {
  std::lock_guard lock(mu_);
  planned_.clear();
  hold_until_us_ = INT64_MIN;
  next_.reset();
  tone_.set_target(tone_.frequency(), 0.0);
}

void AudioEngine::pump(std::int64_t now_us) {
  std::lock_guard lock(mu_);
  render_locked(now_us);
}

AudioStats AudioEngine::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void AudioEngine::render_locked(std::int64_t now_us) {
  if (!open_) return;
  last_us_ = now_us;
  const AudioFormat& f = sink_->format();
  const auto mark = static_cast<std::int64_t>(std::max<std::size_t>(1, f.periods - 1) * f.period_frames);
  const std::int64_t queued = sink_->queued(now_us);
  stats_.delay_ms = static_cast<double>(queued) * 1000.0 / f.rate_hz;
  stats_.underruns = sink_->underruns();
  const auto need = static_cast<std::size_t>(std::clamp<std::int64_t>(mark - queued, 0, static_cast<std::int64_t>(buf_.size())));
  if (need == 0) return;
  // The first frame rendered now sounds after what is queued.
  const double first_us = static_cast<double>(now_us) + static_cast<double>(queued) * 1e6 / f.rate_hz;
  // A value of the loop's applies unless a planned start stands.
  if (next_ && now_us >= hold_until_us_) {
    tone_.set_target(next_->first < 0 ? tone_.frequency() : next_->first, next_->second);
    ++stats_.applied;
    stats_.applied_us = now_us;
    stats_.sounds_us = first_us;
  }
  next_.reset();
  std::size_t done = 0;
  while (!planned_.empty()) {
    const Planned p = planned_.front();
    const double k = std::ceil((static_cast<double>(p.at_us) - first_us) * f.rate_hz / 1e6);
    if (k >= static_cast<double>(need)) break;
    const auto at = std::max(done, static_cast<std::size_t>(std::max(0.0, k)));
    tone_.render({buf_.data() + done, at - done});
    done = at;
    tone_.set_target(p.hz, p.gain);
    hold_until_us_ = std::max(hold_until_us_, p.at_us);
    planned_.erase(planned_.begin());
  }
  tone_.render({buf_.data() + done, need - done});
  stats_.frames += sink_->write({buf_.data(), need}, now_us);
  stats_.underruns = sink_->underruns();
}

void AudioEngine::run() {
  // Above the loop when the node may (CAP_SYS_NICE, or an rtprio limit): a
  // render that waits behind other work is an underrun.
  sched_param sp{};
  sp.sched_priority = 10;
  pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
  const auto half = std::chrono::microseconds(
      std::max<std::int64_t>(500, static_cast<std::int64_t>(sink_->format().period_frames) * 500'000 / sink_->format().rate_hz));
  auto next = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  while (!stop_) {
    render_locked(clock_());
    next += half;
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now + half;  // after a stall: on from now, no burst
    wake_.wait_until(lock, next, [&] { return stop_; });
  }
}

void AudioEngine::finish() {
  const bool threaded = thread_.joinable();
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (threaded) thread_.join();
  std::unique_lock lock(mu_);
  if (!open_) return;
  planned_.clear();
  next_.reset();
  tone_.set_target(tone_.frequency(), 0.0);
  // The fade (three time constants: a ramp) and a mark of silence after it
  // go out at the device's pace; without a thread, on the time last pumped.
  const AudioFormat& f = sink_->format();
  const std::int64_t half_us = std::max<std::int64_t>(500, static_cast<std::int64_t>(f.period_frames) * 500'000 / f.rate_hz);
  std::int64_t now = last_us_;
  const std::uint64_t until = stats_.frames + static_cast<std::uint64_t>(f.rate_hz * ramp_ms_ / 1000.0 * 2) + f.buffer_frames();
  for (int turns = 0; stats_.frames < until && turns < 10'000; ++turns) {
    if (threaded) {
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::microseconds(half_us));
      lock.lock();
      now = clock_();
    } else {
      now += half_us;
    }
    render_locked(now);
  }
}

}  // namespace kairos::node

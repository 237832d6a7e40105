#include "firmware/outputs/output.h"

#include <algorithm>
#include <array>
#include <span>
#include <cstdio>
#include <vector>

#include "common/io/log.h"
#include "firmware/drivers/audio.h"
#include "firmware/outputs/led.h"
#include "firmware/outputs/motor.h"
#include "firmware/outputs/tone.h"

namespace kairos::node {

namespace {

// speaker: a continuous tone rendered for exactly the time that passed, so
// the audio written follows the source with at most one loop turn of delay.
class Speaker : public Output {
 public:
  explicit Speaker(const OutputConfig& c) : c_(c), tone_(c.rate_hz, c.ramp_ms) {
    if (c.wav.empty()) sink_ = std::make_unique<AlsaSink>(c.device, 80);
    else sink_ = std::make_unique<WavSink>(c.wav);
  }
  bool setup() override {
    if (open_) return true;
    open_ = sink_->open(c_.rate_hz);
    if (!open_) log::warn("speaker", c_.name + ": " + sink_->error());
    return open_;
  }
  void update(std::int64_t now_us, const SourceValue* v) override {
    if (v) tone_.set_target(c_.channels.at("frequency").apply(*v), c_.channels.at("volume").apply(*v));
    else tone_.set_target(tone_.frequency(), 0.0);  // stale source: fade to silence
    render(now_us);
  }
  void safe_state(std::int64_t now_us) override {
    tone_.set_target(tone_.frequency(), 0.0);
    render(now_us);
  }
  std::string dump_config() const override {
    return "speaker " + (c_.wav.empty() ? "ALSA " + c_.device : "WAV " + c_.wav) + " at " + std::to_string(c_.rate_hz) + " Hz";
  }
  ~Speaker() override {
    // end on silence: render the fade-out ramp
    if (open_ && last_us_ >= 0) {
      tone_.set_target(tone_.frequency(), 0.0);
      std::vector<std::int16_t> tail(static_cast<std::size_t>(c_.rate_hz * c_.ramp_ms / 1000.0 * 2));
      tone_.render(tail);
      sink_->write(tail);
    }
  }

 private:
  void render(std::int64_t now_us) {
    if (!open_) return;
    if (last_us_ < 0) {
      last_us_ = now_us;
      return;
    }
    // frames owed for the time since the last render (fractions carried over)
    owed_ += static_cast<double>(now_us - last_us_) * c_.rate_hz / 1e6;
    last_us_ = now_us;
    auto frames = static_cast<std::size_t>(owed_);
    frames = std::min({frames, sink_->writable(), buf_.size()});
    if (frames == 0) return;
    std::span<std::int16_t> out(buf_.data(), frames);
    tone_.render(out);
    std::size_t written = sink_->write(out);
    owed_ -= static_cast<double>(frames);
    if (written < frames) owed_ = 0;  // the device is behind: do not pile up
    if (owed_ > c_.rate_hz) owed_ = 0;  // a stall (SIGSTOP): start fresh, no burst
  }

  OutputConfig c_;
  ToneGenerator tone_;
  std::unique_ptr<AudioSink> sink_;
  bool open_ = false;
  std::int64_t last_us_ = -1;
  double owed_ = 0.0;
  std::array<std::int16_t, 16384> buf_{};
};

// text: one line per update, at most one per interval.
class Text : public Output {
 public:
  explicit Text(const OutputConfig& c) : c_(c) {}
  ~Text() override {
    if (f_ && f_ != stdout) std::fclose(f_);
  }
  bool setup() override {
    if (f_) return true;
    f_ = c_.file.empty() ? stdout : std::fopen(c_.file.c_str(), "a");
    return f_ != nullptr;
  }
  void update(std::int64_t now_us, const SourceValue* v) override {
    if (!f_ || !v || now_us < next_us_) return;
    next_us_ = now_us + static_cast<std::int64_t>(c_.interval_s * 1e6);
    std::fprintf(f_, "%s re=%.4f im=%.4f c=%.4f\n", c_.name.c_str(), v->re, v->im, v->c);
    std::fflush(f_);
  }
  void safe_state(std::int64_t) override {}
  std::string dump_config() const override { return "text to " + (c_.file.empty() ? std::string("stdout") : c_.file); }

 private:
  OutputConfig c_;
  std::FILE* f_ = nullptr;
  std::int64_t next_us_ = 0;
};

// mqtt: the JSON of docs/DESIGN.md 3.5 on a configured topic, at most once per interval.
class MqttOut : public Output {
 public:
  MqttOut(const OutputConfig& c, Publish publish) : c_(c), publish_(std::move(publish)) {}
  bool setup() override { return true; }
  void update(std::int64_t now_us, const SourceValue* v) override {
    if (!v || now_us < next_us_) return;
    next_us_ = now_us + static_cast<std::int64_t>(c_.interval_s * 1e6);
    char json[160];
    int n = std::snprintf(json, sizeof json, "{\"coherence\":%.6g,\"phase\":{\"real\":%.6g,\"imag\":%.6g}}", v->c, v->re, v->im);
    publish_(c_.topic, Bytes(json, json + n));
  }
  void safe_state(std::int64_t) override {}
  std::string dump_config() const override { return "mqtt to " + c_.topic; }

 private:
  OutputConfig c_;
  Publish publish_;
  std::int64_t next_us_ = 0;
};

}  // namespace

std::unique_ptr<Output> make_output(const OutputConfig& config, Publish publish) {
  if (config.kind == "speaker") return std::make_unique<Speaker>(config);
  if (config.kind == "led") {
    std::array<std::unique_ptr<PwmChannel>, 3> rgb;
    for (std::size_t i = 0; i < 3; ++i) {
      if (config.driver == "sysfs")
        rgb[i] = std::make_unique<SysfsPwm>(config.sysfs_root, config.pwm_chip, config.rgb_channels[i], config.period_ns);
      else
        rgb[i] = std::make_unique<SoftPwm>(
            std::make_unique<GpiodLine>(config.chip_label, config.rgb_lines[i], "kairos-" + config.name), config.pwm_hz);
    }
    return std::make_unique<Led>(config, std::move(rgb));
  }
  if (config.kind == "motor") {
    if (config.driver == "sysfs")
      return std::make_unique<Motor>(
          config, std::make_unique<SysfsPwm>(config.sysfs_root, config.pwm_chip, config.forward_channel, config.period_ns),
          std::make_unique<SysfsPwm>(config.sysfs_root, config.pwm_chip, config.reverse_channel, config.period_ns), nullptr);
    return std::make_unique<Motor>(
        config,
        std::make_unique<SoftPwm>(std::make_unique<GpiodLine>(config.chip_label, config.pwm_line, "kairos-" + config.name),
                                  config.pwm_hz),
        nullptr, std::make_unique<GpiodLine>(config.chip_label, config.direction_line, "kairos-" + config.name));
  }
  if (config.kind == "mqtt") return std::make_unique<MqttOut>(config, std::move(publish));
  return std::make_unique<Text>(config);
}

}  // namespace kairos::node

#include "firmware/outputs/output.h"

#include <algorithm>
#include <array>
#include <span>
#include <cstdio>
#include <vector>

#include "common/io/log.h"
#include "common/io/clock.h"
#include "firmware/drivers/audio.h"
#include "firmware/outputs/audio_engine.h"
#include "firmware/outputs/led.h"
#include "firmware/outputs/motor.h"

namespace kairos::node {

namespace {

// speaker: a continuous tone from the audio engine, which keeps the device
// buffer topped up to its mark from a thread of its own; the loop only sets
// the targets (docs/DESIGN.md 3.5).
class Speaker : public Output {
 public:
  explicit Speaker(const OutputConfig& c)
      : c_(c),
        engine_(c.wav.empty() ? std::unique_ptr<AudioSink>(std::make_unique<AlsaSink>(c.device))
                              : std::make_unique<WavSink>(c.wav),
                audio_format(c), c.ramp_ms, [] { return wall_us(); }) {}
  bool setup() override {
    if (open_) return true;
    open_ = engine_.open();
    if (!open_) {
      log::warn("speaker", c_.name + ": " + engine_.error());
      return false;
    }
    const auto& f = engine_.format();
    log::info("speaker", c_.name + ": " + std::to_string(f.periods) + " periods of " + std::to_string(f.period_frames) +
                             " frames at " + std::to_string(f.rate_hz) + " Hz");
    if (c_.audio_thread) engine_.start_thread();
    return true;
  }
  void update(std::int64_t now_us, const SourceValue* v) override {
    if (v) engine_.set_target(hz(*v), volume(*v));
    else engine_.set_target(-1, 0.0);  // stale source: fade to silence on the same tone
    if (!c_.audio_thread) engine_.pump(now_us);
  }
  void safe_state(std::int64_t now_us) override {
    engine_.silence();
    if (!c_.audio_thread) engine_.pump(now_us);
  }
  bool start_at(std::int64_t at_wall_us, const SourceValue& v) override {
    if (!open_) return false;
    engine_.start_at(at_wall_us, hz(v), volume(v));
    return true;
  }
  std::optional<AudioStats> audio() const override {
    if (!open_) return std::nullopt;
    return engine_.stats();
  }
  std::string dump_config() const override {
    return "speaker " + (c_.wav.empty() ? "ALSA " + c_.device : "WAV " + c_.wav) + " at " + std::to_string(c_.rate_hz) +
           " Hz, " + std::to_string(c_.periods) + " periods of " + std::to_string(c_.period_ms) + " ms";
  }
  ~Speaker() override {
    if (open_) engine_.finish();  // end on silence: the fade-out ramp
  }

 private:
  double hz(const SourceValue& v) const { return c_.channels.at("frequency").apply(v); }
  double volume(const SourceValue& v) const { return c_.channels.at("volume").apply(v); }
  static AudioFormat audio_format(const OutputConfig& c) {
    AudioFormat f;
    f.rate_hz = c.rate_hz;
    f.period_frames = static_cast<std::size_t>(std::max(1.0, c.rate_hz * c.period_ms / 1000.0));
    f.periods = static_cast<std::size_t>(c.periods);
    return f;
  }

  OutputConfig c_;
  AudioEngine engine_;
  bool open_ = false;
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

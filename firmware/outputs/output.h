#pragma once
// Output adapters and their sources (docs/DESIGN.md 3.5). An output follows a source
// (one input's scale, or the mesh) through configurable linear mappings.
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/core/bytes.h"
#include "firmware/outputs/audio_engine.h"
#include "firmware/outputs/channel_map.h"

namespace kairos::node {

struct OutputConfig {
  std::string name;
  std::string kind;           // speaker, text, mqtt
  std::string source;         // local:<input>, local:<input>/<k>, mesh
  std::string input;          // local sources: the input's name
  std::size_t scale = 0;      // local sources: the scale
  bool mesh = false;
  double failsafe_ms = 500;   // no fresh source value for this long: safe state
  std::map<std::string, ChannelMap> channels;
  // speaker
  std::string device = "default";  // ALSA device
  std::string wav;                 // write to this WAV file instead
  int rate_hz = 48000;
  double ramp_ms = 20;
  double period_ms = 5;            // the device's period ...
  int periods = 4;                 // ... and its buffer, in periods: kept filled to all but one
  bool audio_thread = true;        // render from a thread of its own (false: on update, for tests)
  // text
  std::string file;                // empty: stdout
  double interval_s = 0.1;
  // mqtt
  std::string topic;
  // motor
  std::string driver = "gpio";        // gpio (direction line + software PWM) or sysfs (two PWM channels)
  std::string sysfs_root = "/sys";
  std::string pwm_chip = "pwmchip0";
  int forward_channel = 0;
  int reverse_channel = 1;
  int period_ns = 1'000'000;          // sysfs PWM period (1 kHz)
  std::string chip_label;             // gpio: from the board file
  std::string direction_line;         // gpio: line names (board pin names resolved)
  std::string pwm_line;
  int pwm_hz = 100;                   // software PWM frequency
  // led
  std::array<int, 3> rgb_channels{0, 1, 2};  // sysfs PWM channels for red, green, blue
  std::array<std::string, 3> rgb_lines;      // gpio: lines for red, green, blue
};

class Output {
 public:
  virtual ~Output() = default;
  virtual bool setup() = 0;
  // Called every loop turn; value is null when the source has nothing fresh
  // (older than failsafe_ms), which drives the output to its safe state.
  virtual void update(std::int64_t now_us, const SourceValue* value) = 0;
  // Safe state now (quarantine, freeze, exit).
  virtual void safe_state(std::int64_t now_us) = 0;
  virtual std::string dump_config() const = 0;
  // A value that takes effect at at_wall_us (node clock) exactly, ahead of
  // the loop (a scheduled set_output); false when the output cannot.
  virtual bool start_at(std::int64_t /*at_wall_us*/, const SourceValue& /*v*/) { return false; }
  // A speaker's latency and underruns; nullopt for the rest.
  virtual std::optional<AudioStats> audio() const { return std::nullopt; }
};

using Publish = std::function<void(const std::string& topic, const Bytes& payload)>;

// Makes the output for config; publish is used by the mqtt kind.
std::unique_ptr<Output> make_output(const OutputConfig& config, Publish publish);

}  // namespace kairos::node

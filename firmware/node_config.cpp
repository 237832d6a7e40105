#include "firmware/node_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "common/core/board.h"
#include "common/core/config.h"
#include "common/core/kairos.h"
#include "common/core/topic.h"
#include "common/io/files.h"

namespace kairos::node {

namespace {

SyntheticConfig parse_synthetic(Section& s) {
  SyntheticConfig c;
  c.waveform = s.choice("waveform", "sine", {"sine", "square", "triangle", "noise", "constant"});
  c.period_s = s.num("period_s", 1.0, 1e-3, 1e6);
  c.amplitude = s.num("amplitude", 0.5, -1e9, 1e9);
  c.offset = s.num("offset", 0.5, -1e9, 1e9);
  c.phase_deg = s.num("phase_deg", 0.0, -360, 360);
  c.noise = s.num("noise", 0.0, 0, 1e9);
  c.seed = static_cast<std::uint64_t>(s.integer("seed", 1, 0, INT64_MAX));
  return c;
}

}  // namespace

NodeConfig load_node_config(const std::string& path, const std::string& boards_dir_override) {
  return parse_node_config(read_config_file(path), path, boards_dir_override);
}

NodeConfig parse_node_config(const std::string& text, const std::string& path, const std::string& boards_dir_override) {
  NodeConfig n;
  Config cfg(text, path);
  auto root = cfg.root();

  auto node = root.section("node");
  n.id = node.name("id");
  n.cluster = node.name("cluster", "default");
  n.mesh = node.name("mesh", "default");
  std::string board_name = node.str("board", "generic-linux");
  if (!valid_name(board_name)) node.fail("board", "not a board name");
  std::string boards_dir = node.str("boards_dir", KAIROS_BOARDS_DIR);
  if (!boards_dir_override.empty()) boards_dir = boards_dir_override;
  n.key_file = node.str("key_file");
  n.heartbeat_period_s = node.num("heartbeat_period_s", 5.0, 0.05, 3600);
  n.phase_period_s = node.num("phase_period_s", 1.0, 0.01, 3600);
  n.scales = static_cast<std::size_t>(node.integer("scales", 4, 1, kMaxScales));
  n.primary_scale = static_cast<std::size_t>(node.integer("primary_scale", 0, 0, kMaxScales - 1));
  n.collapse_threshold = node.num("collapse_threshold", 0.5, 0.01, 1.0);
  n.backlog_file = node.str("backlog_file", "");
  n.state_file = node.str("state_file", "");
  n.rotated_key_file = node.str("rotated_key_file", "");
  if (n.primary_scale >= n.scales) node.fail("primary_scale", "must be below node.scales");
  n.capabilities = node.strings("capabilities", 16);
  for (const auto& c : n.capabilities)
    if (!valid_name(c) || c.size() > 32) node.fail("capabilities", "'" + c + "' is not a valid capability name");
  n.log_level = node.choice("log_level", "info", {"debug", "info", "warn", "error"});

  // The board first: outputs name its pins.
  std::string board_file = boards_dir + "/" + board_name + ".toml";
  std::string board_text;
  try {
    board_text = read_config_file(board_file);
  } catch (const ConfigError&) {
    if (std::filesystem::exists(board_file)) node.fail("board", "cannot read board file " + board_file);
    std::string known;
    for (const auto& b : board_names(boards_dir)) known += (known.empty() ? "" : ", ") + b;
    node.fail("board", "no board '" + board_name + "' in " + boards_dir +
                           (known.empty() ? " (no board files there)" : " (boards: " + known + ")"));
  }
  std::string board_canonical;
  n.board = parse_board(board_text, board_file, board_name, board_canonical);
  n.board_file = board_file;

  n.broker = read_broker(root.section("broker"), 1000);

  int mesh_marked = -1;
  for (auto& [name, in] : root.sections("inputs")) {
    InputConfig ic;
    ic.name = name;
    if (!valid_name(name) || name.size() > 32) in.fail("kind", "input name '" + name + "' is not valid");
    ic.kind = in.choice("kind", "synthetic",
                        {"synthetic", "temperature", "pressure", "humidity", "pipe", "llm", "gpio", "microphone", "camera"});
    ic.sample_period_s = in.num("sample_period_s", 0.01, 1e-4, 3600);
    ic.lo = in.num("lo", 0.0, -1e12, 1e12);
    ic.hi = in.num("hi", 1.0, -1e12, 1e12);
    if (!(ic.hi > ic.lo)) in.fail("hi", "must be greater than lo");
    ic.mesh = in.boolean("mesh", false);
    ic.omega = in.num("omega", 0.0, -1e6, 1e6);
    if (ic.mesh) {
      if (mesh_marked >= 0) in.fail("mesh", "only one input may be marked mesh = true");
      mesh_marked = static_cast<int>(n.inputs.size());
    }
    if (ic.kind == "synthetic") {
      ic.synthetic = parse_synthetic(in);
    } else if (ic.kind == "gpio") {
      ic.gpio.chip_label = in.str("chip_label", n.board.gpio_chip_label);
      if (ic.gpio.chip_label.empty()) in.fail("chip_label", "this board has no GPIO chip label; name one");
      ic.gpio.line = in.str("line");
      for (const auto& [pin, line] : n.board.pins)
        if (pin == ic.gpio.line) ic.gpio.line = line;
      ic.gpio.bias = in.choice("bias", "as-is", {"as-is", "pull-up", "pull-down", "disable"});
      ic.gpio.active_low = in.boolean("active_low", false);
      ic.gpio.debounce_ms = in.num("debounce_ms", 20, 0, 10'000);
    } else if (ic.kind == "microphone") {
      ic.device = in.str("device", "default");
      ic.rate_hz = static_cast<int>(in.integer("rate_hz", 16000, 8000, 192000));
    } else if (ic.kind == "camera") {
      ic.device = in.str("device", "/dev/video0");
      ic.width = static_cast<std::uint32_t>(in.integer("width", 160, 16, 4096));
      ic.height = static_cast<std::uint32_t>(in.integer("height", 120, 16, 4096));
      ic.grey = in.choice("format", "yuyv", {"yuyv", "grey"}) == "grey";
    } else if (ic.kind == "pipe" || ic.kind == "llm") {
      if (in.has("topic")) {
        ic.pipe.topic = in.str("topic");
        if (ic.pipe.topic.empty() || ic.pipe.topic.find_first_of("+#") != std::string::npos)
          in.fail("topic", "a topic to read lines from (no wildcards)");
        if (ic.pipe.topic.rfind("kairos/", 0) == 0) in.fail("topic", "kairos/ is the mesh's own tree; choose another topic");
        if (in.has("path")) in.fail("path", "give path (a FIFO) or topic (MQTT), not both");
      } else {
        ic.pipe.path = in.str("path");
      }
      ic.pipe.llm = ic.kind == "llm";
      if (ic.pipe.llm) ic.pipe.window = static_cast<std::size_t>(in.integer("window", 32, 2, 4096));
    } else {
      ic.sysfs.kind = ic.kind;
      ic.sysfs.source = in.choice("source", "iio", {"iio", "w1"});
      ic.sysfs.sysfs_root = in.str("sysfs_root", "/sys");
      ic.sysfs.device = in.str("device");
      if (ic.sysfs.device.empty() || ic.sysfs.device.find('/') != std::string::npos || ic.sysfs.device[0] == '.')
        in.fail("device", "expected a device name such as iio:device0 or 28-0000012345ab");
      if (ic.sysfs.source == "w1" && ic.kind != "temperature")
        in.fail("source", "1-Wire (DS18B20) gives temperature only");
      ic.sysfs.channel = ic.sysfs.source == "iio" ? in.str("channel", "") : "";
      if (ic.sysfs.channel.find('/') != std::string::npos) in.fail("channel", "a file name, not a path");
      ic.sysfs.scale = in.num("scale", 0.0, -1e12, 1e12);
    }
    n.inputs.push_back(std::move(ic));
  }
  if (n.inputs.size() > 8) root.fail("inputs", "at most 8 inputs");
  n.broadcast_key_file = node.str("broadcast_key_file", "");
  for (auto& [name, out] : root.sections("outputs")) {
    OutputConfig oc;
    oc.name = name;
    if (!valid_name(name) || name.size() > 32) out.fail("kind", "output name '" + name + "' is not valid");
    oc.kind = out.choice("kind", "text", {"speaker", "motor", "led", "text", "mqtt"});
    oc.source = out.str("source");
    if (oc.source == "mesh") {
      oc.mesh = true;
      if (n.broadcast_key_file.empty()) out.fail("source", "following the mesh needs node.broadcast_key_file");
    } else if (oc.source.rfind("local:", 0) == 0) {
      std::string rest = oc.source.substr(6);
      auto slash = rest.find('/');
      oc.input = rest.substr(0, slash);
      bool found = false;
      for (const auto& ic : n.inputs) found = found || ic.name == oc.input;
      if (!found) out.fail("source", "no input named '" + oc.input + "'");
      oc.scale = n.primary_scale;
      if (slash != std::string::npos) {
        std::string k = rest.substr(slash + 1);
        if (k.size() != 1 || k[0] < '0' || static_cast<std::size_t>(k[0] - '0') >= n.scales)
          out.fail("source", "scale '" + k + "' does not exist (0.." + std::to_string(n.scales - 1) + ")");
        oc.scale = static_cast<std::size_t>(k[0] - '0');
      }
    } else {
      out.fail("source", "expected local:<input>, local:<input>/<scale> or mesh");
    }
    oc.failsafe_ms = out.num("failsafe_ms", 500, 10, 3'600'000);
    oc.channels = default_channels(oc.kind);
    for (auto& [channel, map] : oc.channels) {
      auto from = out.choice(channel + "_from", map.from == ChannelMap::From::re ? "re" : map.from == ChannelMap::From::im ? "im" : "c",
                             {"re", "im", "c"});
      map.from = from == "re" ? ChannelMap::From::re : from == "im" ? ChannelMap::From::im : ChannelMap::From::c;
      auto in_range = out.numbers(channel + "_in", {map.in_lo, map.in_hi}, 2);
      auto out_range = out.numbers(channel + "_out", {map.out_lo, map.out_hi}, 2);
      if (!(in_range[1] > in_range[0])) out.fail(channel + "_in", "needs [low, high] with high > low");
      map.in_lo = in_range[0];
      map.in_hi = in_range[1];
      map.out_lo = out_range[0];
      map.out_hi = out_range[1];
    }
    if (oc.kind == "speaker") {
      oc.device = out.str("device", "default");
      oc.wav = out.str("wav", "");
      oc.rate_hz = static_cast<int>(out.integer("rate_hz", 48000, 8000, 192000));
      oc.ramp_ms = out.num("ramp_ms", 20, 1, 1000);
      oc.period_ms = out.num("period_ms", 5, 1, 100);
      oc.periods = static_cast<int>(out.integer("periods", 4, 2, 32));
    } else if (oc.kind == "led") {
      oc.driver = out.choice("driver", "sysfs", {"gpio", "sysfs"});
      if (oc.driver == "sysfs") {
        oc.sysfs_root = out.str("sysfs_root", "/sys");
        oc.pwm_chip = out.str("pwm_chip", "pwmchip0");
        auto ch = out.numbers("rgb_channels", {0, 1, 2}, 3);
        for (std::size_t i = 0; i < 3; ++i) {
          if (!(ch[i] >= 0 && ch[i] <= 63 && ch[i] == std::floor(ch[i])))
            out.fail("rgb_channels", "each channel is a whole number 0..63");
          oc.rgb_channels[i] = static_cast<int>(ch[i]);
        }
        oc.period_ns = static_cast<int>(out.integer("period_ns", 1'000'000, 1000, 1'000'000'000));
      } else {
        oc.chip_label = out.str("chip_label", n.board.gpio_chip_label);
        if (oc.chip_label.empty()) out.fail("chip_label", "this board has no GPIO chip label; name one, or use driver = \"sysfs\"");
        const char* keys[] = {"red_line", "green_line", "blue_line"};
        const char* defs[] = {"led_r", "led_g", "led_b"};
        for (std::size_t i = 0; i < 3; ++i) {
          std::string v = out.str(keys[i], defs[i]);
          for (const auto& [pin, line] : n.board.pins)
            if (pin == v) v = line;
          oc.rgb_lines[i] = v;
        }
        oc.pwm_hz = static_cast<int>(out.integer("pwm_hz", 200, 1, 2000));
      }
    } else if (oc.kind == "motor") {
      oc.driver = out.choice("driver", "gpio", {"gpio", "sysfs"});
      if (oc.driver == "sysfs") {
        oc.sysfs_root = out.str("sysfs_root", "/sys");
        oc.pwm_chip = out.str("pwm_chip", "pwmchip0");
        oc.forward_channel = static_cast<int>(out.integer("forward_channel", 0, 0, 63));
        oc.reverse_channel = static_cast<int>(out.integer("reverse_channel", 1, 0, 63));
        if (oc.forward_channel == oc.reverse_channel) out.fail("reverse_channel", "must differ from forward_channel");
        oc.period_ns = static_cast<int>(out.integer("period_ns", 1'000'000, 1000, 1'000'000'000));
      } else {
        // Board pin names (e.g. motor_a_dir) or line names (GPIO23); resolved by label, never by number.
        auto resolve = [&](const std::string& key, const std::string& def) {
          std::string v = out.str(key, def);
          for (const auto& [pin, line] : n.board.pins)
            if (pin == v) return line;
          return v;
        };
        oc.chip_label = out.str("chip_label", n.board.gpio_chip_label);
        if (oc.chip_label.empty()) out.fail("chip_label", "this board has no GPIO chip label; name one, or use driver = \"sysfs\"");
        oc.direction_line = resolve("direction_line", "motor_a_dir");
        oc.pwm_line = resolve("pwm_line", "motor_a_pwm");
        oc.pwm_hz = static_cast<int>(out.integer("pwm_hz", 100, 1, 2000));
      }
    } else if (oc.kind == "text") {
      oc.file = out.str("file", "");
      oc.interval_s = out.num("interval_s", 0.1, 0.0, 3600);
    } else if (oc.kind == "mqtt") {
      oc.topic = out.str("topic");
      if (oc.topic.empty() || oc.topic.find_first_of("+#") != std::string::npos)
        out.fail("topic", "a topic to publish to (no wildcards)");
      if (oc.topic.rfind("kairos/", 0) == 0) out.fail("topic", "kairos/ is the mesh's own tree; choose another topic");
      oc.interval_s = out.num("interval_s", 0.1, 0.0, 3600);
    }
    n.outputs.push_back(std::move(oc));
  }
  if (n.outputs.size() > 8) root.fail("outputs", "at most 8 outputs");
  for (auto& [name, job] : root.sections("jobs")) {
    JobConfig jc;
    jc.name = name;
    // "job:<name>" is advertised as a capability of at most 32 characters.
    if (!valid_name(name) || name.size() > 28)
      job.fail("command", "job handler name '" + name + "' is not valid (" + std::string(kNameRule) + ", at most 28)");
    if (std::find(std::begin(kBuiltinJobs), std::end(kBuiltinJobs), name) != std::end(kBuiltinJobs))
      job.fail("command", "'" + name + "' is a built-in job handler; choose another name");
    jc.command = job.strings("command", 32);
    if (jc.command.empty()) job.fail("command", "the handler's argv is needed, e.g. [\"/usr/bin/sha256sum\"]");
    if (jc.command[0].empty() || jc.command[0][0] != '/')
      job.fail("command", "'" + jc.command[0] + "' is not an absolute path (no PATH lookup, no shell)");
    for (const auto& arg : jc.command)
      if (arg.find('\0') != std::string::npos) job.fail("command", "an argument holds a NUL character");
    jc.timeout_ms = static_cast<std::uint32_t>(job.integer("timeout_ms", 10'000, 1, 600'000));
    jc.max_output = static_cast<std::size_t>(job.integer("max_output", 4096, 1, 4096));
    n.jobs.push_back(std::move(jc));
  }
  if (n.jobs.size() > 16) root.fail("jobs", "at most 16 job handlers");
  if (n.inputs.empty()) root.fail("inputs", "at least one [inputs.<name>] table is needed");
  n.mesh_input = mesh_marked >= 0 ? static_cast<std::size_t>(mesh_marked) : 0;
  cfg.finish();

  n.taus_s.resize(n.scales);
  log_spaced_taus(n.board.tau_base_s, n.board.tau_max_s, n.scales, n.taus_s);

  // The board's keys are prefixed so that node and board keys never collide.
  n.canonical = cfg.dump();
  std::size_t start = 0;
  while (start < board_canonical.size()) {
    auto end = board_canonical.find('\n', start);
    n.canonical += "board_file." + board_canonical.substr(start, end - start + 1);
    start = end + 1;
  }
  static constexpr std::string_view kIdentity[] = {"node.id ", "node.key_file ", "node.rotated_key_file ",
                                                   "node.boards_dir ", "broker.username ", "broker.password_file "};
  std::string hashed;
  start = 0;
  while (start < n.canonical.size()) {
    auto end = n.canonical.find('\n', start);
    std::string_view line(n.canonical.data() + start, end - start + 1);
    bool identity = std::any_of(std::begin(kIdentity), std::end(kIdentity),
                                [&](std::string_view k) { return line.substr(0, k.size()) == k; });
    if (!identity) hashed += line;
    start = end + 1;
  }
  n.context_hash = sha256(as_bytes(hashed));
  return n;
}

}  // namespace kairos::node

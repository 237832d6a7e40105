#include "tools/kairosctl/ctl_config.h"

#include "common/core/config.h"

namespace kairos::ctl {

CtlConfig parse_ctl_config(const std::string& text, const std::string& file) {
  CtlConfig c;
  Config cfg(text, file);
  auto root = cfg.root();
  c.broker = read_broker(root.section("broker"), 100);
  auto ctl = root.section("ctl");
  c.mesh = ctl.str("mesh", c.mesh);
  c.key_file = ctl.str("key_file", "");
  c.timeout_ms = static_cast<int>(ctl.integer("timeout_ms", 3000, 100, 600'000));
  cfg.finish();
  return c;
}

}  // namespace kairos::ctl

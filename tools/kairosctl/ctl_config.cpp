#include "tools/kairosctl/ctl_config.h"

#include "common/core/config.h"
#include "common/core/topic.h"

namespace kairos::ctl {

CtlConfig parse_ctl_config(const std::string& text, const std::string& file) {
  CtlConfig c;
  Config cfg(text, file);
  auto root = cfg.root();
  c.broker = read_broker(root.section("broker"), 100);
  auto ctl = root.section("ctl");
  c.mesh = ctl.str("mesh", c.mesh);
  c.key_file = ctl.str("key_file", "");
  c.operator_name = ctl.str("operator", "");
  if (!c.operator_name.empty() && (!valid_name(c.operator_name) || c.operator_name == kSharedOperator))
    ctl.fail("operator", "'" + c.operator_name + "' is not an operator name (" + std::string(kNameRule) +
                             "; 'operator' is the shared key's)");
  c.shared_key_file = ctl.str("shared_key_file", "");
  c.timeout_ms = static_cast<int>(ctl.integer("timeout_ms", 3000, 100, 600'000));
  cfg.finish();
  return c;
}

}  // namespace kairos::ctl

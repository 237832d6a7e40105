#include "tools/kairosctl/rotate.h"

#include <cstdio>

#include "common/core/frame.h"
#include "common/core/json.h"
#include "common/core/topic.h"
#include "tools/kairosctl/args.h"

namespace kairos::ctl {

namespace {
constexpr std::uint32_t kDefaultWithinMs = 15'000;  // the gateway's default
}

std::string parse_rotate_args(const std::vector<std::string>& args, kairos_v1_RotateKeyRequest& req) {
  const std::string use = "usage: kairosctl rotate-key <node> [--within MS]";
  if (args.empty() || args[0].empty() || args[0][0] == '-') return "rotate-key needs a node id; " + use;
  if (!valid_name(args[0])) return "rotate-key: '" + args[0] + "' is not a node id";
  set_string(req.node, args[0]);
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--within" && i + 1 < args.size()) {
      if (!parse_whole(args[++i], 1000, 600'000, req.timeout_ms)) return "rotate-key: --within takes 1000 to 600000 ms";
    } else {
      return "rotate-key: unknown argument '" + args[i] + "'; " + use;
    }
  }
  return "";
}

int rotate_wait_ms(const kairos_v1_RotateKeyRequest& req, int timeout_ms) {
  return static_cast<int>(req.timeout_ms ? req.timeout_ms : kDefaultWithinMs) + timeout_ms;
}

int print_rotate(const kairos_v1_RotateKeyReply& r, bool json) {
  if (json) {
    Json j;
    j.begin_object().key("node").str(r.node).key("rotated").boolean(r.rotated).key("generation").integer(r.generation);
    j.key("confirm_ms").integer(r.confirm_ms).key("resent").boolean(r.resent).key("detail").str(r.detail).end_object();
    std::printf("%s\n", j.text().c_str());
  } else if (r.rotated) {
    std::printf("%s: key rotated to generation %u, confirmed by the node in %u ms%s; "
                "generation %u is refused from now on\n",
                r.node, r.generation, r.confirm_ms,
                r.resent ? " (the key of an earlier, unconfirmed attempt, sent again)" : "",
                r.generation ? r.generation - 1 : 0);
  } else {
    std::printf("%s: key NOT rotated, still generation %u: %s\n", r.node, r.generation, r.detail);
  }
  return r.rotated ? 0 : 1;
}

}  // namespace kairos::ctl

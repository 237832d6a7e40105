// Modes and commands to many nodes (docs/DESIGN.md 5.6, 5.8): what a mode refuses,
// snapshots, broadcast/freeze/thaw, ask.
#include "gateway/gateway.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/core/json.h"
#include "common/core/utf8.h"
#include "common/core/lists.h"

#include "common/io/clock.h"
#include "common/io/log.h"
#include "common/io/process.h"

namespace kairos::gw {

std::uint64_t Gateway::write_snapshot(const std::string& kind, const std::string& scope, const std::string& by) {
  Json j;
  kairos_v1_MeshState ms = kairos_v1_MeshState_init_zero;
  fill_mesh_state(ms);
  j.begin_object().key("kind").str(kind).key("scope").str(scope).key("gateway").str(config_.id).key("operator").str(by);
  j.key("mesh").begin_object().key("z_re").num(ms.z.re).key("z_im").num(ms.z.im).key("coherence").num(ms.coherence);
  j.key("agreement").num(ms.agreement).key("unified").boolean(ms.unified).key("mode").str(to_string(escalation_.mode()));
  j.key("online").integer(ms.nodes_online).key("known").integer(ms.nodes_known).end_object();
  j.key("nodes").begin_array();
  const std::int64_t now = mono_us();
  for (const auto& [id, n] : registry_.nodes()) {
    j.begin_object().key("id").str(id).key("cluster").str(n.cluster).key("online").boolean(n.online);
    j.key("status").str(to_string(n.quarantined ? kairos_v1_NodeStatus_QUARANTINED : n.status));
    j.key("z_re").num(n.z.real()).key("z_im").num(n.z.imag()).key("c").num(n.c);
    j.key("impedance").integer(static_cast<unsigned long long>(n.impedance(now).score));
    j.key("reliability").num(n.reliability.value()).end_object();
  }
  j.end_array().end_object();
  // Written before anything acts on it.
  store_.begin();
  auto id = store_.append_snapshot(kind, scope, j.text(), wall_us(), by);
  store_.commit();
  log::info("mesh", "snapshot " + std::to_string(id) + " (" + kind + ") written: " +
                        std::to_string(registry_.nodes().size()) + " nodes");
  return id;
}

}  // namespace kairos::gw

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

std::string Gateway::mode_refusal(bool mesh_wide, std::size_t targets, bool confirm) const {
  char rate[64];
  std::snprintf(rate, sizeof rate, " (%.0f%% of nodes active)", active_rate_ * 100);
  switch (mode_) {
    case kairos_v1_MeshMode_EMERGENCY:
      if (!confirm)
        return std::string("the mesh is in EMERGENCY") + rate + ": automation is halted; add --confirm to act anyway";
      return "";
    case kairos_v1_MeshMode_DEGRADED_SEVERE:
      if (mesh_wide && !confirm)
        return std::string("the mesh is DEGRADED_SEVERE") + rate + ": a mesh-wide operation needs --confirm";
      [[fallthrough]];
    case kairos_v1_MeshMode_DEGRADED_MODERATE:
      if (targets > 1000)
        return std::string("the mesh is ") + to_string(mode_).data() + rate + ": no scatter beyond 1000 nodes (" +
               std::to_string(targets) + " targets); narrow the targets";
      return "";
    default:
      return "";
  }
}

void Gateway::healthy_only(std::vector<std::string>& ids) const {
  if (mode_ != kairos_v1_MeshMode_DEGRADED_MODERATE && mode_ != kairos_v1_MeshMode_DEGRADED_SEVERE) return;
  std::erase_if(ids, [&](const std::string& id) {
    const NodeEntry* n = registry_.find(id);
    return n && !breakers_.closed(n->cluster);
  });
}

std::uint64_t Gateway::write_snapshot(const std::string& kind, const std::string& scope, const std::string& by) {
  Json j;
  kairos_v1_MeshState ms = kairos_v1_MeshState_init_zero;
  fill_mesh_state(ms);
  j.begin_object().key("kind").str(kind).key("scope").str(scope).key("gateway").str(config_.id).key("operator").str(by);
  j.key("mesh").begin_object().key("z_re").num(ms.z.re).key("z_im").num(ms.z.im).key("coherence").num(ms.coherence);
  j.key("agreement").num(ms.agreement).key("unified").boolean(ms.unified).key("mode").str(to_string(mode_));
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

void Gateway::on_mode_change(kairos_v1_MeshMode before, kairos_v1_MeshMode after, double active) {
  (void)before;
  if (after != kairos_v1_MeshMode_EMERGENCY) {
    emergency_override_ = false;
    return;
  }
  // docs/DESIGN.md 5.6: automation halted, state written to disk, operators alerted.
  write_snapshot("emergency", "all");
  char detail[160];
  std::snprintf(detail, sizeof detail, "only %.0f%% of %zu nodes active: automation halted, snapshot written",
                active * 100, registry_.nodes().size());
  alert({"EMERGENCY", 4, "", detail, wall_us(),
         "restore nodes (kairosctl nodes --state offline); kairosctl freeze holds outputs safe meanwhile", 0, "", ""});
}

void Gateway::command_verb(const Inbound& m, std::uint64_t request_id, Verb verb, const std::string& selector,
                           const kairos_v1_Command& action, bool gather, std::uint32_t window_ms, bool confirm) {
  const char* name = verb == Verb::broadcast ? "broadcast" : verb == Verb::freeze ? "freeze" : "thaw";
  auto refuse = [&](const std::string& why) {
    auto resp = new_response(request_id);
    set_string(resp->error, std::string(name) + ": " + why);
    answer(m, *resp);
  };
  const std::string sel = selector.empty() ? "all" : selector;
  std::string error;
  auto targets = select_targets(sel, error);
  if (!error.empty()) return refuse(error);
  // Freezing is the brake: always allowed. The rest follows the mode.
  if (verb != Verb::freeze) {
    if (auto why = mode_refusal(sel == "all", targets.size(), confirm); !why.empty()) return refuse(why);
    healthy_only(targets);
    if (targets.empty()) return refuse("every target is behind an open breaker (kairosctl breakers)");
  }
  if (window_ms > 600'000) return refuse("window_ms above 600000");
  std::uint64_t snapshot = verb == Verb::freeze ? write_snapshot("freeze", sel, operator_of(m.topic)) : 0;
  if (!gather) {
    // Fire and forget: one command per online target, answered at once.
    auto resp = new_response(request_id);
    resp->ok = true;
    resp->which_reply = kairos_v1_ControlResponse_command_tag;
    auto& c = resp->reply.command;
    set_string(c.verb, name);
    c.targets = static_cast<std::uint32_t>(targets.size());
    for (const auto& id : targets) {
      const NodeEntry* n = registry_.find(id);
      if (!n || !n->online || n->quarantined) continue;
      c.sent += send_command(*n, 30'000, [&](kairos_v1_Command& cmd) {
        cmd.which_action = action.which_action;
        cmd.action = action.action;
      }) != 0;
    }
    c.snapshot_id = snapshot;
    return answer(m, *resp);
  }
  ScheduleSpec spec;
  spec.strategy = Strategy::naive;
  spec.at_us = wall_us();
  spec.window_us = static_cast<std::int64_t>(window_ms ? window_ms : 2000) * 1000;
  // The operator's own commands (a freeze above all) pass the breakers, which stop automated traffic.
  spec.respect_breakers = false;
  PendingSchedule p;
  p.response_topic = m.response_topic;
  p.correlation = m.correlation;
  p.request_id = request_id;
  p.command = action;
  p.verb = verb;
  p.snapshot_id = snapshot;
  auto id = scheduler_.next_id();
  schedules_[id] = std::move(p);
  scheduler_.start(spec, targets, wall_us());
  scheduler_.service(wall_us());
}

void Gateway::command_finished(const PendingSchedule& p, const ScheduleResult& r) {
  auto resp = new_response(p.request_id);
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_command_tag;
  auto& c = resp->reply.command;
  set_string(c.verb, p.verb == Verb::broadcast ? "broadcast" : p.verb == Verb::freeze ? "freeze" : "thaw");
  c.gathered = true;
  c.targets = static_cast<std::uint32_t>(r.targets.size());
  c.sent = static_cast<std::uint32_t>(r.sent);
  c.ready = static_cast<std::uint32_t>(r.ready);
  c.conflicts = static_cast<std::uint32_t>(r.conflicts);
  c.silent = static_cast<std::uint32_t>(r.stragglers);
  c.snapshot_id = p.snapshot_id;
  for (const auto& t : r.targets)
    if (t.state != TargetState::ready && c.not_ready_count < 16) set_string(c.not_ready[c.not_ready_count++], t.id);
  log::info("console", std::string(c.verb) + ": " + std::to_string(c.ready) + " of " + std::to_string(c.targets) +
                           " nodes acknowledged READY");
  answer(p.response_topic, p.correlation, *resp);
}

void Gateway::ask(const Inbound& m, std::uint64_t request_id, const kairos_v1_AskRequest& req) {
  auto refuse = [&](const std::string& why) {
    auto resp = new_response(request_id);
    set_string(resp->error, "ask: " + why);
    answer(m, *resp);
  };
  std::string handler = req.handler[0] ? req.handler : "read";
  if (!valid_name(handler)) return refuse("'" + handler + "' is not a handler name");
  if (req.sample > 1000) return refuse("--sample above 1000");
  if (req.timeout_ms > 600'000) return refuse("timeout above 600000 ms");
  std::string to = req.to;
  if (!valid_job_target(to))
    return refuse("--to '" + to + "': a class (class:A..F), a cluster (cluster:<name>), a node (node:<id>) or a capability");
  if (auto why = mode_refusal(false, req.sample, req.confirm); !why.empty()) return refuse(why);
  if (req.confirm) confirmed_in_emergency();
  JobSpec spec;
  spec.handler = handler;
  spec.to = to;
  spec.payload.assign(req.question, req.question + std::strlen(req.question));
  spec.timeout_ms = req.timeout_ms ? req.timeout_ms : 5000;
  spec.redundancy = req.sample ? static_cast<int>(req.sample) : 5;
  spec.retries = 0;
  spec.poll = true;
  spec.asked_by = operator_of(m.topic);
  const Job& job = jobs_.submit(next_job_id_++, std::move(spec), mono_us(), wall_us());
  ask_waiters_[job.id] = {m.response_topic, m.correlation, request_id};
  service_jobs();
  commit_durable();
}

}  // namespace kairos::gw

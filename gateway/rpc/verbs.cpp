#include "gateway/rpc/verbs.h"

#include <algorithm>
#include <cmath>

#include "common/core/utf8.h"
#include "common/io/clock.h"
#include "common/io/log.h"

namespace kairos::gw {

namespace {

const char* restrictions_of(kairos_v1_MeshMode m) {
  switch (m) {
    case kairos_v1_MeshMode_DEGRADED_MODERATE:
      return "no scatter beyond 1000 nodes; only healthy sectors are targeted";
    case kairos_v1_MeshMode_DEGRADED_SEVERE:
      return "mesh-wide operations need --confirm; no scatter beyond 1000 nodes; healthy sectors only";
    case kairos_v1_MeshMode_EMERGENCY:
      return "automation halted (jobs wait); every operation but freeze needs --confirm";
    default:
      return "";
  }
}

// As many as a NodeList holds (proto/kairos.options: what fits a frame of 16 KB).
constexpr std::uint32_t kMaxPage = sizeof(kairos_v1_NodeList::nodes) / sizeof(kairos_v1_NodeList::nodes[0]);

void fill_conflict(const StoredConflict& c, kairos_v1_ConflictEntry& e) {
  set_string(e.type, c.type);
  e.priority = static_cast<std::uint32_t>(c.priority);
  set_string(e.node, c.node);
  set_string(e.detail, c.detail.substr(0, 256));
  e.at_us = c.at_wall_us;
  set_string(e.suggested, c.suggested.substr(0, 160));
  e.task = c.task;
  set_string(e.task_state, c.task_state);
  set_string(e.resolution, c.resolution.substr(0, 128));
  set_string(e.resolved_by, c.resolved_by);
  e.id = c.id;
}

void fill_node(const NodeEntry& n, kairos_v1_NodeInfo& o, std::int64_t now_us) {
  set_string(o.id, n.id);
  set_string(o.cluster, n.cluster);
  set_string(o.board, n.board);
  o.device_class = n.device_class;
  o.status = n.shown_status();
  o.online = n.online;
  o.has_z = true;
  o.z.re = static_cast<float>(n.z.real());
  o.z.im = static_cast<float>(n.z.imag());
  o.c = static_cast<float>(n.c);
  o.phase_valid = n.phase_valid;
  o.last_seen_ms = n.last_seen_us ? static_cast<std::uint32_t>(std::min<std::int64_t>((now_us - n.last_seen_us) / 1000, UINT32_MAX))
                                  : UINT32_MAX;
  set_string(o.firmware_version, n.firmware);
  o.context_hash.size = static_cast<pb_size_t>(std::min<std::size_t>(n.context_hash.size(), 32));
  std::copy_n(n.context_hash.begin(), o.context_hash.size, o.context_hash.bytes);
  o.session_id = n.session;
  o.historical_phases = n.historical_phases;
  o.events = n.events;
  auto imp = n.impedance(now_us);
  o.clock_samples = static_cast<std::uint32_t>(n.clock.count());
  o.offset_ms = static_cast<float>(n.offset_at_us(wall_us()) / 1000.0);
  o.rtt_ms = static_cast<float>(n.clock.rtt_us() / 1000.0);
  o.jitter_ms = static_cast<float>(n.clock.jitter_us() / 1000.0);
  o.processing_ms = static_cast<float>(imp.processing_est_ms);
  o.impedance = static_cast<std::uint32_t>(imp.score);
  o.drift = static_cast<float>(imp.drift);
  o.reliability = static_cast<float>(n.reliability.value());
  o.confidence = static_cast<float>(imp.confidence);
  o.degraded = imp.degraded;
  o.unstable = imp.unstable;
  o.queue_depth = n.queue_depth;
  o.calibration_ms = static_cast<float>(imp.calibration_ms);
  o.lead_ms = static_cast<std::uint32_t>(std::lround(imp.lead_ms));
  o.clock_shifts = n.clock.shifts();
  o.one_way_samples = n.one_way.count();
  o.one_way_p99_ms = static_cast<float>(n.one_way.quantile(0.99) / 1000.0);
  o.one_way_p999_ms = static_cast<float>(n.one_way.quantile(0.999) / 1000.0);
}

}  // namespace

void fill_status(const StatusParts& p, const kairos_v1_MeshState& mesh, kairos_v1_StatusReply& r, std::int64_t now_us) {
  set_string(r.gateway, p.config.id);
  set_string(r.storage_error, p.outbox.error());
  set_string(r.mesh, p.config.mesh);
  r.nodes_known = static_cast<std::uint32_t>(p.registry.nodes().size());
  r.nodes_online = static_cast<std::uint32_t>(p.registry.online_count());
  r.clusters = static_cast<std::uint32_t>(p.registry.cluster_count());
  r.has_mesh_state = true;
  r.mesh_state = mesh;
  const DropCounters& drops = p.ingest.drops();
  for (int i = 0; i < static_cast<int>(DropReason::count_) && r.drops_count < 16; ++i) {
    auto reason = static_cast<DropReason>(i);
    if (!drops[reason]) continue;
    auto& d = r.drops[r.drops_count++];
    set_string(d.reason, to_string(reason));
    d.count = drops[reason];
  }
  r.frames_accepted = p.ingest.accepted();
  r.uptime_ms = static_cast<std::uint64_t>((now_us - p.started_us) / 1000);
  // The status box (docs/DESIGN.md 5.8).
  const Breakers& breakers = p.escalation.breakers();
  r.sectors_total = static_cast<std::uint32_t>(p.config.sectors.size());
  for (const auto& [sector, members] : p.config.sectors)
    r.sectors_healthy +=
        std::all_of(members.begin(), members.end(), [&](const std::string& c) { return breakers.closed(c); });
  double sum = 0;
  std::size_t counted = 0;
  for (const auto& [id, n] : p.registry.nodes())
    if (n.online && n.clock.count() > 0) {
      sum += n.impedance(now_us).score;
      ++counted;
    }
  r.mean_impedance = counted ? static_cast<float>(sum / static_cast<double>(counted)) : 0.0f;
  set_string(r.last_cascade, p.last_cascade);
  r.active_rate = static_cast<float>(p.escalation.active_rate());
  for (const auto& v : breakers.view(now_us)) r.breakers_open += v.state != BreakerState::closed;
  r.jobs_running = p.jobs.counts().running;
  r.jobs_queued = p.jobs.counts().queued;
  r.alerts = p.escalation.alerts();
  set_string(r.restrictions, restrictions_of(p.escalation.mode()));
  const auto waits = p.registry.sync_waits(now_us);
  r.has_clock_joins = true;
  r.clock_joins.synced = waits.synced;
  r.clock_joins.within_2min = waits.within_goal;
  r.clock_joins.p50_s = static_cast<float>(waits.p50_s);
  r.clock_joins.p95_s = static_cast<float>(waits.p95_s);
  r.clock_joins.max_s = static_cast<float>(waits.max_s);
  r.clock_joins.waiting = waits.waiting;
  r.clock_joins.longest_waiting_s = static_cast<float>(waits.longest_waiting_s);
}

void fill_nodes(const Registry& registry, const kairos_v1_NodesRequest& q, kairos_v1_NodeList& r, std::int64_t now_us) {
  std::uint32_t limit = q.limit ? std::min(q.limit, kMaxPage) : kMaxPage;
  const std::string state = q.state;
  auto matches = [&](const NodeEntry& n) {
    if (q.cluster[0] && n.cluster != q.cluster) return false;
    if (state == "online" && !n.online) return false;
    if (state == "offline" && n.online) return false;
    return true;
  };
  const auto& all = registry.nodes();
  std::uint32_t total = 0;
  if (q.id[0]) {
    const NodeEntry* one = registry.find(q.id);
    total = one && matches(*one) ? 1 : 0;
  } else if (q.cluster[0]) {
    for (const NodeEntry* n : registry.members(q.cluster)) total += matches(*n);
  } else {
    total = static_cast<std::uint32_t>(state == "online"    ? registry.online_count()
                                       : state == "offline" ? all.size() - registry.online_count()
                                                            : all.size());
  }
  r.total = total;
  r.offset = q.after[0] ? 0 : q.offset;
  std::uint32_t skip = r.offset;
  auto it = q.id[0] ? all.find(q.id) : q.after[0] ? all.upper_bound(q.after) : all.begin();
  for (; it != all.end() && r.nodes_count < limit; ++it) {
    const NodeEntry& n = it->second;
    if (q.id[0] && n.id != q.id) break;
    if (!matches(n)) continue;
    if (skip > 0) {
      --skip;
      continue;
    }
    fill_node(n, r.nodes[r.nodes_count++], now_us);
  }
}

void fill_conflicts(Store& store, const kairos_v1_ConflictsRequest& q, kairos_v1_ConflictList& r) {
  constexpr std::uint32_t kMax = pb_arraysize(kairos_v1_ConflictList, entries);
  std::uint32_t limit = q.limit ? std::min(q.limit, kMax) : kMax;
  r.total = store.conflict_count();
  r.open_tasks = store.open_task_count();
  const auto entries = q.since ? store.conflicts_after(q.after_id, static_cast<int>(q.min_priority), limit)
                       : q.queue ? store.open_tasks(limit)
                                 : store.conflicts(limit);
  for (const auto& c : entries) fill_conflict(c, r.entries[r.entries_count++]);
}

void fill_breakers(const Breakers& breakers, kairos_v1_BreakerList& l, std::int64_t now_us) {
  const std::int64_t wall = wall_us();
  auto views = breakers.view(now_us);
  l.total = static_cast<std::uint32_t>(views.size());
  for (const auto& v : views) {
    if (v.state != BreakerState::closed) ++l.open;
    if (l.breakers_count >= 40) continue;
    auto& b = l.breakers[l.breakers_count++];
    set_string(b.scope, v.scope);
    set_string(b.name, v.name);
    set_string(b.state, to_string(v.state));
    b.failures = static_cast<std::uint32_t>(v.failures);
    b.wait_s = static_cast<std::uint32_t>(v.wait_us / 1'000'000);
    b.probe_at_us = v.state == BreakerState::open && v.probe_at_us ? wall + (v.probe_at_us - now_us) : 0;
    b.opened = static_cast<std::uint32_t>(v.opened);
    b.held = v.held;
  }
}

std::string storage_refusal(const Outbox& outbox) {
  return "refused: the gateway cannot write its database (" + outbox.error() +
         "): it takes nothing that must be recorded until it can; see kairosctl status";
}

bool resolve(Outbox& outbox, const kairos_v1_ResolveRequest& q, const std::string& by, kairos_v1_ControlResponse& resp) {
  std::string note = q.note[0] ? std::string("operator: ") + q.note : "operator";
  bool done = false;
  if (!outbox.transaction([&](Store& store) { done = store.resolve_task(q.task, note, wall_us(), by); }, mono_us())) {
    resp.ok = false;
    set_string(resp.error, storage_refusal(outbox));
    return false;
  }
  Store& store = outbox.store();
  if (!done) {
    resp.ok = false;
    set_string(resp.error, "no open resolution task " + std::to_string(q.task) + " (kairosctl conflicts --queue lists them)");
    return false;
  }
  log::info("conflict", "task " + std::to_string(q.task) + " resolved by operator " + by);
  resp.ok = true;
  resp.which_reply = kairos_v1_ControlResponse_conflicts_tag;
  resp.reply.conflicts.total = store.conflict_count();
  resp.reply.conflicts.open_tasks = store.open_task_count();
  return true;
}

void heal(Registry& registry, Outbox& outbox, const SendCommand& send, const kairos_v1_HealRequest& req,
          const std::string& by, kairos_v1_ControlResponse& resp) {
  NodeEntry* n = registry.find(req.node);
  if (!n) {
    set_string(resp.error, "no node '" + std::string(req.node) + "' (kairosctl nodes lists them)");
    return;
  }
  int closed = 0;
  const bool written = outbox.transaction([&](Store& store) {
    if (n->quarantined) store.append_quarantine(n->id, "heal", "operator heal", {}, wall_us(), by);
    closed = store.resolve_node(n->id, {"HASH_MISMATCH", "TEMPORAL_PARADOX"}, "healed by the operator", wall_us(), by);
  }, mono_us());
  if (!written) {
    set_string(resp.error, storage_refusal(outbox));
    return;
  }
  resp.ok = true;
  resp.which_reply = kairos_v1_ControlResponse_heal_tag;
  auto& h = resp.reply.heal;
  set_string(h.node, n->id);
  h.was_quarantined = n->quarantined;
  set_string(h.reason, n->quarantine_reason.substr(0, 128));
  if (closed) log::info("conflict", std::to_string(closed) + " resolution tasks of " + n->id + " closed by heal");
  registry.set_quarantined(*n, false, "");
  h.sent = send(*n, 30'000, [](kairos_v1_Command& cmd) {
    cmd.which_action = kairos_v1_Command_heal_tag;
    cmd.action.heal = true;
  }) != 0;
  log::info("registry", n->id + " healed by operator " + by + (h.was_quarantined ? ": quarantine lifted" : ""));
}

void quarantine(Registry& registry, Outbox& outbox, const kairos_v1_QuarantineRequest& req, const std::string& by,
                kairos_v1_ControlResponse& resp) {
  NodeEntry* n = registry.find(req.node);
  if (!n) return set_string(resp.error, "no node '" + std::string(req.node) + "' (kairosctl nodes lists them)");
  if (n->quarantined)
    return set_string(resp.error, n->id + " is quarantined already (" + log_safe(n->quarantine_reason, 96) + ")");
  const std::string reason = "by operator " + by + (req.reason[0] ? ": " + std::string(req.reason) : std::string());
  if (!outbox.transaction([&](Store& store) { store.append_quarantine(n->id, "quarantine", reason, {}, wall_us(), by); },
                          mono_us()))
    return set_string(resp.error, storage_refusal(outbox));
  registry.set_quarantined(*n, true, reason);
  resp.ok = true;
  log::warn("registry", n->id + " quarantined " + log_safe(reason, 200) + ": routed around until kairosctl heal " + n->id);
}

void hold_breaker(Breakers& breakers, const Registry& registry, Outbox& outbox, const kairos_v1_BreakersRequest& req,
                  const std::string& by, kairos_v1_ControlResponse& resp, std::int64_t now_us) {
  const bool hold = req.hold[0] != 0;
  const std::string cluster = hold ? req.hold : req.release;
  const bool held = breakers.held(cluster);
  if (hold && registry.members(cluster).empty())
    return set_string(resp.error, "no cluster '" + cluster + "' has nodes here (kairosctl nodes lists them)");
  if (!hold && !held) return set_string(resp.error, "cluster " + cluster + "'s breaker is not held");
  if (!outbox.transaction([&](Store& store) { store.set_breaker_hold(cluster, hold, by, wall_us()); }, mono_us()))
    return set_string(resp.error, storage_refusal(outbox));
  breakers.hold(cluster, hold);
  log::warn("breakers", "cluster " + cluster + (hold ? " held OPEN by operator " : " released by operator ") + by);
  resp.ok = true;
  resp.which_reply = kairos_v1_ControlResponse_breakers_tag;
  fill_breakers(breakers, resp.reply.breakers, now_us);
}

void forget(Registry& registry, Outbox& outbox, const kairos_v1_ForgetRequest& req, const std::string& by,
            const std::function<void(const NodeEntry& n)>& leaving, kairos_v1_ControlResponse& resp) {
  const NodeEntry* n = registry.find(req.node);
  if (!n) return set_string(resp.error, "no node '" + std::string(req.node) + "' (kairosctl nodes lists them)");
  if (n->online)
    return set_string(resp.error, n->id + " is online: stop it first (a node that is heard comes back at its next birth)");
  if (n->quarantined)
    return set_string(resp.error, n->id + " is quarantined (" + n->quarantine_reason.substr(0, 96) +
                                      "): heal it first, or leave it on record");
  const std::string id = n->id;
  if (!outbox.transaction([&](Store& store) { store.forget_node(id); }, mono_us()))
    return set_string(resp.error, storage_refusal(outbox));
  leaving(*n);
  registry.forget(id);
  resp.ok = true;
  log::info("registry", id + " forgotten by operator " + by);
}

}  // namespace kairos::gw

#include "gateway/schedule/schedules.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/core/lists.h"
#include "common/io/clock.h"
#include "common/io/log.h"

namespace kairos::gw {

std::vector<std::string> select_targets(const Registry& registry, const std::string& selector, std::string& error) {
  std::vector<std::string> ids;
  auto match = [&](auto pred) {
    for (const auto& [id, n] : registry.nodes())
      if (n.online && pred(n)) ids.push_back(id);
  };
  if (selector == "all") {
    match([](const NodeEntry&) { return true; });
  } else if (selector.rfind("cluster:", 0) == 0) {
    auto c = selector.substr(8);
    match([&](const NodeEntry& n) { return n.cluster == c; });
  } else if (selector.rfind("class:", 0) == 0) {
    auto c = selector.substr(6);
    match([&](const NodeEntry& n) { return class_letter(n.device_class) == c; });
  } else {
    // Named nodes: included even when offline or unknown (they are skipped, and say why).
    for (auto& id : split_list(selector)) {
      if (!valid_name(id)) {
        error = "'" + id + "' is not a node id";
        return {};
      }
      ids.push_back(std::move(id));
    }
  }
  if (ids.empty() && error.empty()) error = "no online node matches '" + selector + "'";
  return ids;
}

Schedules::Schedules(const GatewayConfig& config, Registry& registry, const Escalation& escalation, Ports ports)
    : registry_(registry),
      escalation_(escalation),
      ports_(std::move(ports)),
      scheduler_({[this](const std::string& id) { return target_view(id); },
                  [this](const std::string& id, std::int64_t execute_at_us, std::uint32_t ttl_ms, std::uint64_t sched) {
                    return send(id, execute_at_us, ttl_ms, sched);
                  },
                  [this](const std::string& id, const TargetResult& t, double late_us) { calibrate(id, t, late_us); },
                  [this](const ScheduleResult& r) { finished(r); },
                  [this](const std::string& id, std::int64_t sent_us, std::int64_t received_node_us) {
                    if (NodeEntry* n = registry_.find(id)) n->command_arrived(sent_us, received_node_us);
                  }}),
      lead_quantile_(config.lead_quantile) {
  scheduler_.set_min_send_spacing(1e6 / config.send_rate);
}

std::uint64_t Schedules::send(const std::string& id, std::int64_t execute_at_us, std::uint32_t ttl_ms, std::uint64_t sched) {
  const NodeEntry* n = registry_.find(id);
  auto it = pending_.find(sched);
  if (!n || it == pending_.end()) return 0;
  const auto& tmpl = it->second.command;
  struct Cost {  // measures the send, however it returns
    Scheduler& s;
    std::int64_t t0;
    ~Cost() { s.note_send_cost(static_cast<double>(mono_us() - t0)); }
  } cost{scheduler_, mono_us()};
  return ports_.send(*n, ttl_ms, [&](kairos_v1_Command& cmd) {
    cmd.which_action = tmpl.which_action;
    cmd.action = tmpl.action;
    cmd.mandatory = tmpl.mandatory;
    cmd.execute_at_us = execute_at_us;
    cmd.late_tolerance_ms = tmpl.late_tolerance_ms;
  });
}

std::optional<TargetView> Schedules::target_view(const std::string& id) const {
  const NodeEntry* n = registry_.find(id);
  if (!n) return std::nullopt;
  TargetView v;
  v.cluster = n->cluster;
  v.device_class = n->device_class;
  v.online = n->online;
  v.quarantined = n->quarantined || n->status == kairos_v1_NodeStatus_QUARANTINED;
  v.breaker_open = !escalation_.breakers().closed(n->cluster);
  v.synced = n->clock.count() > 0;
  v.lead_us = n->impedance(mono_us(), lead_quantile_).lead_ms * 1000.0;
  v.jitter_lead_us = n->impedance(mono_us(), 0).lead_ms * 1000.0;
  v.offset_us = n->offset_at_us(wall_us());
  v.drift_ppm = n->clock.drift_ppm();
  v.filter_offset_us = n->clock.offset_us();
  return v;
}

void Schedules::schedule(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_ScheduleRequest& req) {
  auto refuse = [&](const std::string& why) {
    auto resp = new_response(request_id);
    set_string(resp->error, why);
    ports_.answer(to, *resp);
  };
  const std::int64_t now = wall_us();
  const auto& cmd = req.command;
  if (!req.has_command || cmd.which_action == 0) return refuse("schedule: no command");
  if (cmd.which_action == kairos_v1_Command_ping_tag) return refuse("schedule: ping is the gateway's own (clock sync)");
  if (cmd.which_action == kairos_v1_Command_rekey_tag) return refuse("schedule: rekey is sent by kairosctl rotate-key");
  auto strategy = parse_strategy(req.strategy);
  if (!strategy) return refuse(std::string("schedule: unknown strategy '") + req.strategy + "' (parallel, wave, priority_first, naive)");
  ScheduleSpec spec;
  spec.strategy = *strategy;
  const std::string_view lead = req.lead;
  if (lead != "" && lead != "tail" && lead != "jitter") return refuse("schedule: lead is tail or jitter, not '" + std::string(lead) + "'");
  spec.lead_from_tail = lead != "jitter";
  spec.at_us = req.at_us ? req.at_us : now + static_cast<std::int64_t>(req.in_ms) * 1000;
  if (spec.strategy != Strategy::naive && spec.at_us <= now)
    return refuse("schedule: T is " + std::to_string((now - spec.at_us) / 1000) + " ms in the past");
  if (spec.at_us - now > 3'600'000'000LL) return refuse("schedule: T is more than an hour ahead");
  if (req.window_ms > 600'000) return refuse("schedule: window_ms above 600000");
  if (req.window_ms) spec.window_us = static_cast<std::int64_t>(req.window_ms) * 1000;
  if (req.late_tolerance_ms) spec.late_tolerance_ms = req.late_tolerance_ms;
  if (req.hit_ms) spec.hit_us = static_cast<std::int64_t>(req.hit_ms) * 1000;
  for (float q : {req.ready_quorum, req.conflict_max, req.transit_wait})
    if (!(q >= 0 && q <= 1)) return refuse("schedule: quorum thresholds lie in 0..1");
  if (req.ready_quorum > 0) spec.quorum.ready = req.ready_quorum;
  if (req.conflict_max > 0) spec.quorum.conflict = req.conflict_max;
  if (req.transit_wait > 0) spec.quorum.transit = req.transit_wait;
  if (req.max_extensions) spec.max_extensions = static_cast<int>(std::min(req.max_extensions, 10u));
  std::string error;
  auto targets = select_targets(registry_, req.targets, error);
  if (!error.empty()) return refuse("schedule: " + error);
  if (auto why = escalation_.mode_refusal(std::string(req.targets) == "all", targets.size(), req.confirm); !why.empty())
    return refuse("schedule: " + why);
  escalation_.healthy_only(targets);
  if (targets.empty()) return refuse("schedule: every target is behind an open breaker (kairosctl breakers)");

  // Ids are handed out in order: the next one is this schedule's.
  Pending p;
  p.to = to;
  p.request_id = request_id;
  p.command = cmd;
  p.command.late_tolerance_ms = spec.late_tolerance_ms;
  auto id = scheduler_.next_id();
  pending_[id] = std::move(p);
  scheduler_.start(spec, targets, now);
  scheduler_.service(wall_us());  // what is due at once leaves now
}

void Schedules::calibrate(const std::string& id, const TargetResult& t, double late_us) {
  NodeEntry* n = registry_.find(id);
  if (!n) return;
  // docs/DESIGN.md 5.4: each execution error feeds back into the node's impedance. A
  // late execution or a refused late arrival lengthens its lead by what was
  // missing; executions on time let the learned part decay slowly.
  double late_ms = late_us > 0 ? late_us / 1000.0 + 2.0 : t.error_us > 1000 ? t.error_us / 1000.0 + 1.0 : 0;
  if (late_ms > 0) {
    n->feedback_ms = std::min(1000.0, n->feedback_ms + late_ms);
    n->reliability.add(false);
  } else {
    n->feedback_ms *= 0.9;
    n->reliability.add(true);
  }
}

void Schedules::finished(const ScheduleResult& r) {
  auto it = pending_.find(r.id);
  if (it == pending_.end()) return;
  if (ports_.ended) ports_.ended(it->second.verb, r);
  if (it->second.verb != Verb::schedule) {
    const Pending p = std::move(it->second);
    pending_.erase(it);
    return command_finished(p, r);
  }
  auto resp = new_response(it->second.request_id);
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_schedule_tag;
  auto& o = resp->reply.schedule;
  o.schedule_id = r.id;
  set_string(o.strategy, to_string(r.spec.strategy));
  o.at_us = r.waves.empty() ? r.spec.at_us : r.waves[0].at_us;
  set_string(o.verdict, to_string(r.verdict));
  o.targets = static_cast<std::uint32_t>(r.targets.size());
  o.sent = static_cast<std::uint32_t>(r.sent);
  o.skipped = static_cast<std::uint32_t>(r.skipped);
  o.ready = static_cast<std::uint32_t>(r.ready);
  o.conflicts = static_cast<std::uint32_t>(r.conflicts);
  o.stragglers = static_cast<std::uint32_t>(r.stragglers);
  o.not_sent = static_cast<std::uint32_t>(r.not_sent);
  o.hits = static_cast<std::uint32_t>(r.hits);
  o.hit_rate = static_cast<float>(r.hit_rate());
  o.spread_p50_ms = static_cast<float>(r.p50_ms);
  o.spread_p95_ms = static_cast<float>(r.p95_ms);
  o.spread_max_ms = static_cast<float>(r.max_ms);
  o.error_mean_ms = static_cast<float>(r.mean_error_ms);
  o.hit_ms = static_cast<std::uint32_t>(r.spec.hit_us / 1000);
  o.window_ms = static_cast<std::uint32_t>(r.spec.window_us / 1000);
  o.acks_in_ms = r.last_ack_us ? static_cast<std::uint32_t>((r.last_ack_us - r.started_us) / 1000) : 0;
  o.acks_p95_after_t_ms = static_cast<std::int32_t>(std::lround(r.acks_p95_after_t_ms));
  for (const auto& w : r.waves) {
    if (o.waves_count >= 16) break;
    auto& ow = o.waves[o.waves_count++];
    set_string(ow.name, w.name);
    set_string(ow.verdict, to_string(w.verdict));
    ow.threshold = static_cast<float>(w.threshold);
    ow.at_us = w.at_us;
    ow.targets = static_cast<std::uint32_t>(w.members.size());
    for (auto i : w.members) ow.ready += r.targets[i].state == TargetState::ready;
    ow.extensions = static_cast<std::uint32_t>(w.extensions);
  }
  for (const auto& k : r.classes) {
    if (o.classes_count >= 7) break;
    auto& c = o.classes[o.classes_count++];
    set_string(c.device_class, class_letter(static_cast<kairos_v1_DeviceClass>(k.device_class)));
    c.sent = static_cast<std::uint32_t>(k.sent);
    c.observed = static_cast<std::uint32_t>(k.observed);
    c.late = static_cast<std::uint32_t>(k.late);
    c.lead_p50_ms = static_cast<float>(k.lead_p50_ms);
    c.lead_max_ms = static_cast<float>(k.lead_max_ms);
    c.delay_p50_ms = static_cast<float>(k.delay_p50_ms);
    c.delay_p99_ms = static_cast<float>(k.delay_p99_ms);
    c.delay_max_ms = static_cast<float>(k.delay_max_ms);
  }
  // The targets that did not hit, worst first: skips and conflicts, then
  // stragglers, then executions outside +-hit by their error.
  std::vector<const TargetResult*> misses;
  for (const auto& t : r.targets)
    if (t.state != TargetState::ready || std::abs(t.error_us) > static_cast<double>(r.spec.hit_us)) misses.push_back(&t);
  auto rank = [](const TargetResult* t) { return t->state == TargetState::ready ? 1 : 0; };
  std::stable_sort(misses.begin(), misses.end(), [&](const TargetResult* a, const TargetResult* b) {
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    return std::abs(a->error_us) > std::abs(b->error_us);
  });
  o.outcomes_total = static_cast<std::uint32_t>(misses.size());
  for (const auto* t : misses) {
    if (o.outcomes_count >= 24) break;
    auto& x = o.outcomes[o.outcomes_count++];
    set_string(x.node, t->id);
    set_string(x.outcome, t->state == TargetState::ready ? "MISS" : to_string(t->state));
    x.would_need_ms = static_cast<float>(t->would_need_ms);
    x.available_ms = static_cast<float>(t->available_ms);
    x.error_ms = static_cast<float>(t->error_us / 1000.0);
    set_string(x.detail, t->detail.substr(0, 96));
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "schedule %llu (%s): %s, %u of %u within +-%u ms, spread p50 %.2f p95 %.2f max %.2f ms, %u skipped, "
                "%u conflicts, %u stragglers",
                static_cast<unsigned long long>(r.id), to_string(r.spec.strategy), to_string(r.verdict), o.hits,
                o.targets, o.hit_ms, r.p50_ms, r.p95_ms, r.max_ms, o.skipped, o.conflicts, o.stragglers);
  log::info("schedule", line);
  last_cascade_ = std::string(line).substr(0, 128);
  const Pending p = std::move(it->second);
  pending_.erase(it);
  ports_.answer(p.to, *resp);
}

void Schedules::command(const ReplyTo& to, std::uint64_t request_id, Verb verb, const std::string& selector,
                        const kairos_v1_Command& action, bool gather, std::uint32_t window_ms, bool confirm) {
  const char* name = verb == Verb::broadcast ? "broadcast" : verb == Verb::freeze ? "freeze" : "thaw";
  auto refuse = [&](const std::string& why) {
    auto resp = new_response(request_id);
    set_string(resp->error, std::string(name) + ": " + why);
    ports_.answer(to, *resp);
  };
  const std::string sel = selector.empty() ? "all" : selector;
  std::string error;
  auto targets = select_targets(registry_, sel, error);
  if (!error.empty()) return refuse(error);
  // Freezing is the brake: always allowed. The rest follows the mode.
  if (verb != Verb::freeze) {
    if (auto why = escalation_.mode_refusal(sel == "all", targets.size(), confirm); !why.empty()) return refuse(why);
    escalation_.healthy_only(targets);
    if (targets.empty()) return refuse("every target is behind an open breaker (kairosctl breakers)");
  }
  if (window_ms > 600'000) return refuse("window_ms above 600000");
  std::uint64_t snapshot = verb == Verb::freeze ? ports_.snapshot("freeze", sel, to.by) : 0;
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
      c.sent += ports_.send(*n, 30'000, [&](kairos_v1_Command& cmd) {
        cmd.which_action = action.which_action;
        cmd.action = action.action;
      }) != 0;
    }
    c.snapshot_id = snapshot;
    return ports_.answer(to, *resp);
  }
  ScheduleSpec spec;
  spec.strategy = Strategy::naive;
  spec.at_us = wall_us();
  spec.window_us = static_cast<std::int64_t>(window_ms ? window_ms : 2000) * 1000;
  // The operator's own commands (a freeze above all) pass the breakers, which stop automated traffic.
  spec.respect_breakers = false;
  Pending p;
  p.to = to;
  p.request_id = request_id;
  p.command = action;
  p.verb = verb;
  p.snapshot_id = snapshot;
  auto id = scheduler_.next_id();
  pending_[id] = std::move(p);
  scheduler_.start(spec, targets, wall_us());
  scheduler_.service(wall_us());
}

void Schedules::command_finished(const Pending& p, const ScheduleResult& r) {
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
  ports_.answer(p.to, *resp);
}

}  // namespace kairos::gw

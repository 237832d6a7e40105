#include "gateway/schedule/scheduler.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace kairos::gw {

namespace {

bool final_state(TargetState s) {
  return s == TargetState::skipped || s == TargetState::ready || s == TargetState::conflict ||
         s == TargetState::not_sent;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size()))) ;
  return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
}

char class_letter(int c) { return c >= 1 && c <= 6 ? static_cast<char>('A' + c - 1) : '?'; }

std::vector<ClassLead> class_leads(const ScheduleResult& r) {
  std::vector<ClassLead> out;
  for (int c = 0; c <= 6; ++c) {
    ClassLead k;
    k.device_class = c;
    std::vector<double> leads, delays;
    for (const auto& t : r.targets) {
      if (t.device_class != c || t.command_id == 0) continue;
      ++k.sent;
      leads.push_back(t.lead_us / 1000.0);
      if (t.delay_us < 0) continue;
      delays.push_back(t.delay_us / 1000.0);
      k.late += t.arrived_late;
    }
    if (k.sent == 0) continue;
    k.observed = delays.size();
    k.lead_p50_ms = percentile(leads, 0.5);
    k.lead_max_ms = *std::max_element(leads.begin(), leads.end());
    k.delay_p50_ms = percentile(delays, 0.5);
    k.delay_p99_ms = percentile(delays, 0.99);
    k.delay_max_ms = delays.empty() ? 0 : *std::max_element(delays.begin(), delays.end());
    out.push_back(k);
  }
  return out;
}

}  // namespace

std::optional<Strategy> parse_strategy(std::string_view s) {
  if (s == "parallel" || s.empty()) return Strategy::parallel;
  if (s == "wave") return Strategy::wave;
  if (s == "priority_first") return Strategy::priority_first;
  if (s == "naive") return Strategy::naive;
  return std::nullopt;
}

const char* to_string(Strategy s) {
  switch (s) {
    case Strategy::parallel: return "parallel";
    case Strategy::wave: return "wave";
    case Strategy::priority_first: return "priority_first";
    case Strategy::naive: return "naive";
  }
  return "?";
}

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::pending: return "PENDING";
    case Verdict::proceed: return "PROCEED";
    case Verdict::wait: return "WAIT";
    case Verdict::resolve_conflicts: return "RESOLVE_CONFLICTS";
    case Verdict::retry: return "RETRY";
  }
  return "?";
}

const char* to_string(TargetState s) {
  switch (s) {
    case TargetState::waiting: return "WAITING";
    case TargetState::skipped: return "SKIP";
    case TargetState::queued: return "QUEUED";
    case TargetState::sent: return "STRAGGLER";
    case TargetState::transit: return "TRANSIT";
    case TargetState::ready: return "READY";
    case TargetState::conflict: return "CONFLICT";
    case TargetState::not_sent: return "NOT_SENT";
  }
  return "?";
}

Verdict quorum(std::size_t targets, std::size_t ready, std::size_t transit, std::size_t conflict, const Quorum& q) {
  if (targets == 0) return Verdict::retry;
  const double n = static_cast<double>(targets);
  const double r = static_cast<double>(ready) / n, t = static_cast<double>(transit) / n,
               c = static_cast<double>(conflict) / n;
  // A small tolerance so that 19 of 20 meets 95 %.
  constexpr double eps = 1e-9;
  if (r + eps >= q.ready && c <= q.conflict + eps) return Verdict::proceed;
  if (t > q.transit + eps) return Verdict::wait;
  if (c > q.conflict + eps) return Verdict::resolve_conflicts;
  return Verdict::retry;
}

std::vector<WaveResult> make_waves(Strategy s, const std::vector<std::pair<std::string, TargetView>>& targets,
                                   const Quorum& q) {
  std::vector<WaveResult> waves;
  if (targets.empty()) return waves;
  auto all = [&](const char* name) {
    WaveResult w;
    w.name = name;
    w.threshold = q.ready;
    for (std::size_t i = 0; i < targets.size(); ++i) w.members.push_back(i);
    waves.push_back(std::move(w));
  };
  switch (s) {
    case Strategy::parallel: all("all"); break;
    case Strategy::naive: all("naive"); break;
    case Strategy::wave: {
      std::map<std::string, std::vector<std::size_t>> by_cluster;
      for (std::size_t i = 0; i < targets.size(); ++i) by_cluster[targets[i].second.cluster].push_back(i);
      for (auto& [cluster, members] : by_cluster) {
        WaveResult w;
        w.name = "cluster " + cluster;
        w.threshold = q.ready;
        w.members = std::move(members);
        waves.push_back(std::move(w));
      }
      break;
    }
    case Strategy::priority_first: {
      // docs/DESIGN.md 5.4: D, C, B, A, E with thresholds 0.99, 0.98, 0.95, 0.90, 0.85; F last, as E.
      constexpr std::pair<int, double> order[] = {{4, 0.99}, {3, 0.98}, {2, 0.95}, {1, 0.90}, {5, 0.85}, {6, 0.85}};
      for (auto [cls, threshold] : order) {
        WaveResult w;
        w.name = std::string("class ") + class_letter(cls);
        w.threshold = threshold;
        for (std::size_t i = 0; i < targets.size(); ++i)
          if (targets[i].second.device_class == cls) w.members.push_back(i);
        if (!w.members.empty()) waves.push_back(std::move(w));
      }
      // A class outside A..F (never from a valid birth) goes last.
      WaveResult rest;
      rest.name = "class ?";
      rest.threshold = 0.85;
      for (std::size_t i = 0; i < targets.size(); ++i)
        if (targets[i].second.device_class < 1 || targets[i].second.device_class > 6) rest.members.push_back(i);
      if (!rest.members.empty()) waves.push_back(std::move(rest));
      break;
    }
  }
  return waves;
}

std::uint64_t Scheduler::start(ScheduleSpec spec, const std::vector<std::string>& targets, std::int64_t now_us) {
  Running s;
  s.r.id = next_id_++;
  s.r.spec = spec;
  s.r.started_us = now_us;
  std::set<std::string> seen;
  std::vector<std::pair<std::string, TargetView>> known;
  std::vector<std::string> unknown;
  for (const auto& id : targets) {
    if (!seen.insert(id).second) continue;
    if (auto v = hooks_.lookup(id)) known.emplace_back(id, *v);
    else unknown.push_back(id);
  }
  s.r.waves = make_waves(spec.strategy, known, spec.quorum);
  for (const auto& [id, v] : known) {
    TargetResult t;
    t.id = id;
    s.r.targets.push_back(std::move(t));
  }
  for (std::size_t w = 0; w < s.r.waves.size(); ++w)
    for (auto i : s.r.waves[w].members) s.r.targets[i].wave = static_cast<int>(w);
  if (s.r.waves.empty()) {
    WaveResult w;
    w.name = "all";
    w.threshold = spec.quorum.ready;
    s.r.waves.push_back(std::move(w));
  }
  // Unknown nodes count against the first wave's quorum.
  for (const auto& id : unknown) {
    TargetResult t;
    t.id = id;
    s.r.waves[0].members.push_back(s.r.targets.size());
    s.r.targets.push_back(std::move(t));
  }
  auto id = s.r.id;
  auto& running = schedules_.emplace(id, std::move(s)).first->second;
  plan_wave(running, now_us);
  return id;
}

void Scheduler::plan_wave(Running& s, std::int64_t now_us) {
  auto& w = s.r.waves[s.wave];
  const bool naive = s.r.spec.strategy == Strategy::naive;
  std::vector<std::optional<TargetView>> views;
  views.reserve(w.members.size());
  for (auto i : w.members) views.push_back(hooks_.lookup(s.r.targets[i].id));
  if (naive) {
    w.at_us = now_us;
  } else if (s.wave == 0) {
    w.at_us = s.r.spec.at_us;
  } else {
    // A later wave: as soon as its slowest member can make it, plus a little headroom.
    double lead = 0;
    for (const auto& v : views)
      if (v && v->online && v->synced) lead = std::max(lead, v->lead_us);
    w.at_us = (now_us + static_cast<std::int64_t>(lead) + 10'000 + 999) / 1000 * 1000;
  }
  w.gather_until_us = w.at_us + s.r.spec.window_us;
  w.planned = true;
  std::vector<std::size_t> queued;
  for (std::size_t k = 0; k < w.members.size(); ++k) {
    auto& t = s.r.targets[w.members[k]];
    const auto& v = views[k];
    auto skip = [&](std::string why) {
      t.state = TargetState::skipped;
      t.detail = std::move(why);
    };
    if (!v) { skip("unknown node"); continue; }
    t.device_class = v->device_class;
    if (v->quarantined) { skip("quarantined"); continue; }
    if (v->breaker_open && s.r.spec.respect_breakers) { skip("circuit breaker open"); continue; }
    if (!v->online) { skip("offline"); continue; }
    if (naive) {
      t.send_at_us = now_us;
      t.execute_at_us = 0;
    } else {
      if (!v->synced) { skip("no clock sync yet"); continue; }
      const bool tail = s.r.spec.lead_from_tail;
      t.lead_us = tail ? v->lead_us : v->jitter_lead_us;
      t.send_at_us = w.at_us - static_cast<std::int64_t>(std::ceil(t.lead_us));
      // The offset at T, not now: a clock 100 ppm fast gains 1 ms in 10 s.
      const double offset_at_t =
          tail ? v->offset_us + v->drift_ppm * 1e-6 * static_cast<double>(w.at_us - now_us) : v->filter_offset_us;
      t.execute_at_us = w.at_us + static_cast<std::int64_t>(std::llround(offset_at_t));
      if (t.send_at_us < now_us) {
        t.would_need_ms = t.lead_us / 1000.0;
        t.available_ms = static_cast<double>(w.at_us - now_us) / 1000.0;
        char why[96];
        std::snprintf(why, sizeof why, "would need %.1f ms, %.1f ms available", t.would_need_ms, t.available_ms);
        skip(why);
        continue;
      }
    }
    t.state = TargetState::queued;
    queued.push_back(w.members[k]);
  }
  // Sends leave one after another, each taking about send_cost_us_: a burst
  // of thousands due in the same millisecond would make its last ones late.
  // Working back from the latest, each send is released early enough that
  // the ones after it still leave by their own send_at.
  std::stable_sort(queued.begin(), queued.end(), [&](std::size_t a, std::size_t b) {
    return s.r.targets[a].send_at_us < s.r.targets[b].send_at_us;
  });
  std::vector<std::int64_t> release_at(queued.size());
  double next = INFINITY;
  for (std::size_t k = queued.size(); k-- > 0;) {
    next = std::min(static_cast<double>(s.r.targets[queued[k]].send_at_us), next - send_cost_us());
    release_at[k] = std::max(now_us, static_cast<std::int64_t>(std::floor(next)));
  }
  for (std::size_t k = 0; k < queued.size(); ++k) wheel_.add(release_at[k], Send{s.r.id, queued[k]});
}

void Scheduler::release(const Send& send, std::int64_t now_us) {
  auto it = schedules_.find(send.schedule);
  if (it == schedules_.end()) return;
  auto& s = it->second;
  auto& t = s.r.targets[send.target];
  if (t.state != TargetState::queued) return;
  const auto& w = s.r.waves[static_cast<std::size_t>(t.wave)];
  auto ttl_ms = static_cast<std::uint32_t>(std::max<std::int64_t>(1000, (w.gather_until_us - now_us) / 1000));
  t.command_id = hooks_.send(t.id, t.execute_at_us, ttl_ms, s.r.id);
  if (t.command_id == 0) {
    t.state = TargetState::not_sent;
    t.detail = "could not be sent (no key)";
    return;
  }
  t.state = TargetState::sent;
  t.send_at_us = now_us;
  by_command_[t.command_id] = send;
}

bool Scheduler::on_ack(const std::string& id, std::uint64_t command_id, int state, std::int64_t received_node_us,
                       std::int64_t executed_node_us, const std::string& detail, std::int64_t now_us) {
  auto it = by_command_.find(command_id);
  if (it == by_command_.end()) return false;
  auto sit = schedules_.find(it->second.schedule);
  if (sit == schedules_.end()) return false;
  auto& s = sit->second;
  auto& t = s.r.targets[it->second.target];
  if (t.id != id) return false;
  if (final_state(t.state)) return true;  // a redelivered ack
  s.r.last_ack_us = now_us;
  const auto& w = s.r.waves[static_cast<std::size_t>(t.wave)];
  const bool naive = s.r.spec.strategy == Strategy::naive;
  auto view = hooks_.lookup(id);
  const double offset = view ? view->offset_us : 0;
  if (received_node_us != 0 && t.delay_us < 0) {
    t.delay_us = static_cast<double>(received_node_us - t.send_at_us) - offset;
    t.arrived_late = t.execute_at_us != 0 && received_node_us > t.execute_at_us;
    if (hooks_.observed) hooks_.observed(id, t.send_at_us, received_node_us);
  }
  if (state == 0) {
    t.state = TargetState::transit;
    return true;
  }
  t.detail = detail;
  t.final_ack_us = now_us;
  if (state > 0) {
    t.state = TargetState::ready;
    t.executed = executed_node_us != 0;
    t.executed_gw_us = executed_node_us - static_cast<std::int64_t>(std::llround(offset));
    t.error_us = static_cast<double>(t.executed_gw_us - w.at_us);
    if (!naive && t.executed) hooks_.calibrate(id, t, 0);
    return true;
  }
  t.state = TargetState::conflict;
  if (!naive && t.execute_at_us != 0 && received_node_us > t.execute_at_us)
    hooks_.calibrate(id, t, static_cast<double>(received_node_us - t.execute_at_us));
  return true;
}

bool Scheduler::wave_settled(const Running& s) const {
  const auto& w = s.r.waves[s.wave];
  return std::all_of(w.members.begin(), w.members.end(),
                     [&](std::size_t i) { return final_state(s.r.targets[i].state); });
}

void Scheduler::service(std::int64_t now_us) {
  wheel_.advance(now_us, [&](Send& send) { release(send, now_us); });
  std::vector<std::uint64_t> done;
  for (auto& [id, s] : schedules_) {
    const auto& w = s.r.waves[s.wave];
    if (w.planned && (now_us >= w.gather_until_us || wave_settled(s))) end_gather(s, now_us);
    if (s.r.verdict != Verdict::pending) done.push_back(id);
  }
  for (auto id : done) {
    auto it = schedules_.find(id);
    for (const auto& t : it->second.r.targets) by_command_.erase(t.command_id);
    schedules_.erase(it);
  }
}

void Scheduler::end_gather(Running& s, std::int64_t now_us) {
  auto& w = s.r.waves[s.wave];
  std::size_t ready = 0, transit = 0, conflict = 0;
  for (auto i : w.members) {
    auto st = s.r.targets[i].state;
    ready += st == TargetState::ready;
    conflict += st == TargetState::conflict;
    // Held at the node, or sent and not yet answered: still on its way.
    transit += st == TargetState::transit || st == TargetState::sent || st == TargetState::queued;
  }
  Quorum q = s.r.spec.quorum;
  q.ready = w.threshold;
  Verdict v = quorum(w.members.size(), ready, transit, conflict, q);
  if (v == Verdict::wait) {
    if (w.extensions < s.r.spec.max_extensions && now_us >= w.gather_until_us) {
      ++w.extensions;
      w.gather_until_us += s.r.spec.window_us;
      return;
    }
    if (now_us < w.gather_until_us) return;  // settled cannot be WAIT; defensive
    v = quorum(w.members.size(), ready, 0, conflict, q);
  }
  w.verdict = v;
  if (v == Verdict::proceed && s.wave + 1 < s.r.waves.size()) {
    ++s.wave;
    plan_wave(s, now_us);
    return;
  }
  // The cascade ends here: later waves are not sent.
  for (std::size_t k = s.wave + 1; k < s.r.waves.size(); ++k)
    for (auto i : s.r.waves[k].members) {
      s.r.targets[i].state = TargetState::not_sent;
      s.r.targets[i].detail = "cascade stopped: " + w.name + " ended " + to_string(v);
    }
  s.r.verdict = v;
  finish(s, now_us);
}

void Scheduler::finish(Running& s, std::int64_t now_us) {
  auto& r = s.r;
  r.finished_us = now_us;
  if (r.spec.strategy == Strategy::naive) {
    // No T to aim at: the spread is measured around the median execution.
    std::vector<double> times;
    for (const auto& t : r.targets)
      if (t.executed) times.push_back(static_cast<double>(t.executed_gw_us));
    double median = percentile(times, 0.5);
    for (auto& t : r.targets)
      if (t.executed) t.error_us = static_cast<double>(t.executed_gw_us) - median;
  }
  std::vector<double> errors, acks_after_t;
  double sum = 0;
  for (const auto& t : r.targets) {
    if (t.final_ack_us != 0)
      acks_after_t.push_back(static_cast<double>(t.final_ack_us - r.waves[static_cast<std::size_t>(t.wave)].at_us) / 1000.0);
    switch (t.state) {
      case TargetState::skipped: ++r.skipped; break;
      case TargetState::ready: ++r.ready; break;
      case TargetState::conflict: ++r.conflicts; break;
      case TargetState::transit: ++r.transit; ++r.stragglers; break;
      case TargetState::sent: ++r.stragglers; break;
      case TargetState::not_sent: ++r.not_sent; break;
      default: break;
    }
    if (t.command_id) ++r.sent;
    if (!t.executed || t.state != TargetState::ready) continue;
    errors.push_back(std::abs(t.error_us) / 1000.0);
    sum += t.error_us / 1000.0;
    if (std::abs(t.error_us) <= static_cast<double>(r.spec.hit_us)) ++r.hits;
  }
  r.p50_ms = percentile(errors, 0.5);
  r.p95_ms = percentile(errors, 0.95);
  r.acks_p95_after_t_ms = percentile(acks_after_t, 0.95);
  r.max_ms = errors.empty() ? 0 : *std::max_element(errors.begin(), errors.end());
  r.mean_error_ms = errors.empty() ? 0 : sum / static_cast<double>(errors.size());
  r.classes = class_leads(r);
  hooks_.finished(r);
}

std::int64_t Scheduler::next_deadline_us() const {
  std::int64_t d = wheel_.next_due_us();
  for (const auto& [id, s] : schedules_) d = std::min(d, s.r.waves[s.wave].gather_until_us);
  return d;
}

}  // namespace kairos::gw

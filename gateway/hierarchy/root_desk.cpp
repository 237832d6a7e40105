#include "gateway/hierarchy/root_desk.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/core/utf8.h"
#include "common/io/clock.h"
#include "common/io/log.h"
#include "gateway/schedule/scheduler.h"

namespace kairos::gw {

namespace {

constexpr std::uint32_t kMaxPage = 40;
constexpr std::int64_t kAnswerWaitUs = 5'000'000;  // a view's answer from a sector

std::string describe(const std::string& sector, const SectorAnswer& a) {
  if (!a) return sector + ": no answer";
  return sector + ": " + (a->error[0] ? std::string(a->error) : "answered with something else");
}

// A sector's figures for one class into the mesh's: counts add, the
// median lead is weighted by what was sent, the tails take the worst.
void merge_class(kairos_v1_ScheduleReply& r, const kairos_v1_ClassLead& x) {
  kairos_v1_ClassLead* c = nullptr;
  for (pb_size_t i = 0; i < r.classes_count; ++i)
    if (std::string_view(r.classes[i].device_class) == x.device_class) c = &r.classes[i];
  if (!c) {
    if (r.classes_count >= sizeof r.classes / sizeof r.classes[0]) return;
    r.classes[r.classes_count++] = x;
    return;
  }
  const float sent = static_cast<float>(c->sent + x.sent);
  auto weighted = [&](float a, float b) {
    return sent > 0 ? (a * static_cast<float>(c->sent) + b * static_cast<float>(x.sent)) / sent : 0.0f;
  };
  c->lead_p50_ms = weighted(c->lead_p50_ms, x.lead_p50_ms);
  c->delay_p50_ms = weighted(c->delay_p50_ms, x.delay_p50_ms);
  c->lead_max_ms = std::max(c->lead_max_ms, x.lead_max_ms);
  c->delay_p99_ms = std::max(c->delay_p99_ms, x.delay_p99_ms);
  c->delay_max_ms = std::max(c->delay_max_ms, x.delay_max_ms);
  c->sent += x.sent;
  c->observed += x.observed;
  c->late += x.late;
}

}  // namespace

struct Cascade {
  ReplyTo to;
  std::uint64_t request_id = 0;
  kairos_v1_ScheduleRequest q = kairos_v1_ScheduleRequest_init_zero;
  std::int64_t at_us = 0;    // T (wall clock)
  std::int64_t lead_us = 0;  // T - when it was asked: a later wave's T is as far ahead
  bool wave = false;
  std::vector<std::string> order;     // the sectors sent to, in order
  std::size_t next = 0;
  std::vector<std::string> excluded;  // stale, or behind an open breaker
  std::map<std::string, SectorAnswer> answers;
  std::map<std::string, std::int64_t> sector_at;  // each sector's T
};

struct Delegation {
  ReplyTo to;
  std::uint64_t request_id = 0;
  kairos_v1_DelegateRequest q = kairos_v1_DelegateRequest_init_zero;
  std::vector<std::string> tried;
  std::string errors;
};

RootDesk::RootDesk(const GatewayConfig& config, SectorBook& book, Fanout& fanout, Answer answer)
    : config_(config), book_(book), fanout_(fanout), answer_(std::move(answer)) {}

void RootDesk::nodes(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_NodesRequest& q, std::int64_t now_us) {
  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_nodes_tag;
  req.verb.nodes = q;
  req.verb.nodes.offset = 0;  // pages follow the cursor (after): offsets do not add up over sectors
  const std::uint32_t limit = q.limit ? std::min(q.limit, kMaxPage) : kMaxPage;
  req.verb.nodes.limit = limit;
  const auto sectors = book_.reachable(now_us);
  fanout_.ask_all(sectors, req, now_us + kAnswerWaitUs, [this, to, request_id, limit, sectors](const auto& answers) {
    auto resp = new_response(request_id);
    std::vector<const kairos_v1_NodeInfo*> all;
    std::uint32_t total = 0;
    std::string missing;
    for (const auto& [sector, a] : answers) {
      if (!a || !a->ok || a->which_reply != kairos_v1_ControlResponse_nodes_tag) {
        missing += (missing.empty() ? "" : "; ") + describe(sector, a);
        continue;
      }
      total += a->reply.nodes.total;
      for (pb_size_t i = 0; i < a->reply.nodes.nodes_count; ++i) all.push_back(&a->reply.nodes.nodes[i]);
    }
    if (!sectors.empty() && all.empty() && !missing.empty()) {
      set_string(resp->error, "nodes: no sector answered (" + missing + ")");
      return answer_(to, *resp);
    }
    // Each sector's page is in id order: the merged page is the first `limit` of them all.
    std::sort(all.begin(), all.end(), [](auto* a, auto* b) { return std::string_view(a->id) < b->id; });
    resp->ok = true;
    resp->which_reply = kairos_v1_ControlResponse_nodes_tag;
    auto& list = resp->reply.nodes;
    list.total = total;
    for (auto* n : all) {
      if (list.nodes_count >= limit || list.nodes_count >= sizeof list.nodes / sizeof list.nodes[0]) break;
      list.nodes[list.nodes_count++] = *n;
    }
    if (!missing.empty()) log::warn("sectors", "nodes: answered without " + missing);
    answer_(to, *resp);
  });
}

void RootDesk::schedule(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_ScheduleRequest& q,
                        std::int64_t now_us) {
  auto refuse = [&](const std::string& why) {
    auto resp = new_response(request_id);
    set_string(resp->error, "schedule: " + why);
    answer_(to, *resp);
  };
  if (!q.has_command || q.command.which_action == 0) return refuse("no command");
  const std::string strategy = q.strategy[0] ? q.strategy : "parallel";
  if (!parse_strategy(strategy)) return refuse("unknown strategy '" + strategy + "' (parallel, wave, priority_first, naive)");
  auto c = std::make_shared<Cascade>();
  c->to = to;
  c->request_id = request_id;
  c->q = q;
  const std::int64_t now_wall = wall_us();
  c->at_us = q.at_us ? q.at_us : now_wall + static_cast<std::int64_t>(q.in_ms) * 1000;
  if (strategy != "naive" && c->at_us <= now_wall)
    return refuse("T is " + std::to_string((now_wall - c->at_us) / 1000) + " ms in the past");
  c->lead_us = c->at_us - now_wall;
  c->wave = strategy == "wave";
  // The sectors whose nodes the targets can be: a class or cluster from the
  // summaries; all, or node ids (the root keeps no node list), every reachable one.
  const std::string targets = q.targets;
  const bool narrowed = targets.rfind("class:", 0) == 0 || targets.rfind("cluster:", 0) == 0;
  const auto reach = book_.reachable(now_us);
  c->order = narrowed ? book_.capable(targets, {}, now_us) : reach;
  for (const auto& s : book_.names())  // stale, or behind an open breaker: left out, and said so
    if (std::find(reach.begin(), reach.end(), s) == reach.end()) c->excluded.push_back(s);
  if (c->order.empty()) return refuse("no reachable sector holds such targets (kairosctl sectors)");
  std::sort(c->order.begin(), c->order.end());
  log::info("sectors", "cascade to " + std::to_string(c->order.size()) + " sectors for T in " +
                           std::to_string(c->lead_us / 1000) + " ms (" + strategy + ")");
  if (!c->wave) {
    for (const auto& s : c->order) c->sector_at[s] = c->at_us;
    kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
    req.which_verb = kairos_v1_ControlRequest_schedule_tag;
    req.verb.schedule = q;
    req.verb.schedule.at_us = c->at_us;
    req.verb.schedule.in_ms = 0;
    const std::int64_t gather_us =
        static_cast<std::int64_t>(q.window_ms ? q.window_ms : 1000) * 1000 * (2 + std::min<std::uint32_t>(q.max_extensions, 10));
    for (const auto& s : c->order) book_.admit(s, now_us);
    fanout_.ask_all(c->order, req, now_us + c->lead_us + gather_us + 10'000'000, [this, c](const auto& answers) {
      c->answers = answers;
      cascade_done(c);
    });
    return;
  }
  cascade_step(c);
}

// wave: one sector after the other, each at T as far ahead as the first's;
// a sector below quorum stops the cascade (docs/DESIGN.md 5.9).
void RootDesk::cascade_step(std::shared_ptr<Cascade> c) {
  if (c->next >= c->order.size()) return cascade_done(c);
  const std::string sector = c->order[c->next++];
  const std::int64_t now_us = mono_us();
  const std::int64_t at = c->next == 1 ? c->at_us : wall_us() + c->lead_us;
  c->sector_at[sector] = at;
  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_schedule_tag;
  req.verb.schedule = c->q;
  req.verb.schedule.at_us = at;
  req.verb.schedule.in_ms = 0;
  const std::int64_t gather_us = static_cast<std::int64_t>(c->q.window_ms ? c->q.window_ms : 1000) * 1000 *
                                 (2 + std::min<std::uint32_t>(c->q.max_extensions, 10));
  book_.admit(sector, now_us);
  fanout_.ask(sector, req, now_us + (at - wall_us()) + gather_us + 10'000'000,
              [this, c](const std::string& s, SectorAnswer a) {
                c->answers[s] = a;
                const bool proceed = a && a->ok && a->which_reply == kairos_v1_ControlResponse_schedule_tag &&
                                     std::string_view(a->reply.schedule.verdict) == "PROCEED";
                if (!proceed) c->next = c->order.size() + 1;  // the wave stops here
                cascade_step(c);
              });
}

void RootDesk::cascade_done(const std::shared_ptr<Cascade>& c) {
  auto resp = new_response(c->request_id);
  auto& r = resp->reply.schedule;
  r.schedule_id = c->request_id;
  set_string(r.strategy, c->q.strategy[0] ? c->q.strategy : "parallel");
  r.at_us = c->at_us;
  r.hit_ms = c->q.hit_ms ? c->q.hit_ms : 10;
  r.window_ms = c->q.window_ms ? c->q.window_ms : 1000;
  double p50_weighted = 0, error_weighted = 0;
  std::uint32_t answered = 0;
  std::string errors;
  const std::int64_t now_us = mono_us();
  auto wave = [&](const std::string& sector, const std::string& verdict, std::uint32_t targets, std::uint32_t ready) {
    if (r.waves_count >= sizeof r.waves / sizeof r.waves[0]) return;
    auto& w = r.waves[r.waves_count++];
    set_string(w.name, "sector " + sector);
    set_string(w.verdict, verdict);
    w.targets = targets;
    w.ready = ready;
    auto at = c->sector_at.find(sector);
    w.at_us = at == c->sector_at.end() ? 0 : at->second;
    w.threshold = c->q.ready_quorum > 0 ? c->q.ready_quorum : 0.95f;
  };
  for (const auto& s : c->order) {
    auto it = c->answers.find(s);
    if (it == c->answers.end()) {
      wave(s, "NOT_SENT", 0, 0);  // a wave stopped before it
      continue;
    }
    const SectorAnswer& a = it->second;
    if (!a || !a->ok || a->which_reply != kairos_v1_ControlResponse_schedule_tag) {
      book_.failure(s, now_us);
      wave(s, a ? "ERROR" : "NO_ANSWER", book_.known(s), 0);
      errors += (errors.empty() ? "" : "; ") + describe(s, a);
      continue;
    }
    book_.success(s, now_us);
    const auto& x = a->reply.schedule;
    ++answered;
    r.targets += x.targets;
    r.sent += x.sent;
    r.skipped += x.skipped;
    r.ready += x.ready;
    r.conflicts += x.conflicts;
    r.stragglers += x.stragglers;
    r.not_sent += x.not_sent;
    r.hits += x.hits;
    r.spread_p95_ms = std::max(r.spread_p95_ms, x.spread_p95_ms);
    r.spread_max_ms = std::max(r.spread_max_ms, x.spread_max_ms);
    p50_weighted += static_cast<double>(x.spread_p50_ms) * x.ready;
    error_weighted += static_cast<double>(x.error_mean_ms) * x.ready;
    r.acks_in_ms = std::max(r.acks_in_ms, x.acks_in_ms);
    r.acks_p95_after_t_ms = std::max(r.acks_p95_after_t_ms, x.acks_p95_after_t_ms);  // the slowest sector's
    r.outcomes_total += x.outcomes_total;
    for (pb_size_t i = 0; i < x.outcomes_count && r.outcomes_count < sizeof r.outcomes / sizeof r.outcomes[0]; ++i)
      r.outcomes[r.outcomes_count++] = x.outcomes[i];
    for (pb_size_t i = 0; i < x.classes_count; ++i) merge_class(r, x.classes[i]);
    wave(s, x.verdict, x.targets, x.ready);
  }
  for (const auto& s : c->excluded) wave(s, "EXCLUDED", book_.known(s), 0);
  if (answered == 0) {
    set_string(resp->error, "schedule: no sector ran it (" + (errors.empty() ? std::string("none reachable") : errors) + ")");
    last_cascade_ = "no sector ran it";
    return answer_(c->to, *resp);
  }
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_schedule_tag;
  if (r.ready) {
    r.spread_p50_ms = static_cast<float>(p50_weighted / r.ready);
    r.error_mean_ms = static_cast<float>(error_weighted / r.ready);
  }
  r.hit_rate = r.targets ? static_cast<float>(r.hits) / static_cast<float>(r.targets) : 0.0f;
  // The quorum rule over the sectors' counts: a sector that did not answer counts with its nodes, none ready.
  std::uint32_t targets = r.targets;
  for (const auto& s : c->order)
    if (auto it = c->answers.find(s); it != c->answers.end() && (!it->second || !it->second->ok)) targets += book_.known(s);
  Quorum quorum_rule;
  if (c->q.ready_quorum > 0) quorum_rule.ready = c->q.ready_quorum;
  if (c->q.conflict_max > 0) quorum_rule.conflict = c->q.conflict_max;
  if (c->q.transit_wait > 0) quorum_rule.transit = c->q.transit_wait;
  set_string(r.verdict, to_string(quorum(targets, r.ready, r.stragglers, r.conflicts, quorum_rule)));
  char line[160];
  std::snprintf(line, sizeof line, "%s over %u sectors: %u/%u ready, %.1f%% within +-%u ms, p95 %.1f ms", r.verdict,
                answered, r.ready, targets, 100.0 * r.hit_rate, r.hit_ms, static_cast<double>(r.spread_p95_ms));
  last_cascade_ = line;
  log::info("sectors", std::string("cascade: ") + line);
  answer_(c->to, *resp);
}

void RootDesk::delegate(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_DelegateRequest& q,
                        std::int64_t) {
  auto d = std::make_shared<Delegation>();
  d->to = to;
  d->request_id = request_id;
  d->q = q;
  delegate_to(d);
}

// The best capable sector not tried yet; the next one when it fails.
void RootDesk::delegate_to(std::shared_ptr<Delegation> d) {
  const std::int64_t now_us = mono_us();
  std::vector<std::string> needs;
  for (pb_size_t i = 0; i < d->q.needs_count; ++i) needs.emplace_back(d->q.needs[i]);
  std::string sector;
  for (const auto& s : book_.capable(d->q.to, needs, now_us))
    if (std::find(d->tried.begin(), d->tried.end(), s) == d->tried.end() && book_.admit(s, now_us)) {
      sector = s;
      break;
    }
  if (sector.empty()) {
    auto resp = new_response(d->request_id);
    set_string(resp->error, d->tried.empty()
                                ? std::string("delegate: no reachable sector has a capable node (kairosctl sectors)")
                                : "delegate: every capable sector failed it (" + d->errors + ")");
    return answer_(d->to, *resp);
  }
  d->tried.push_back(sector);
  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_delegate_tag;
  req.verb.delegate = d->q;
  // Accepted at once; with wait, when every attempt may have run.
  const std::int64_t attempt_us = static_cast<std::int64_t>(d->q.timeout_ms ? d->q.timeout_ms : 10'000) * 1000;
  const std::int64_t wait_us = d->q.wait ? attempt_us * (2 + (d->q.has_retries ? d->q.retries : 3)) : 0;
  fanout_.ask(sector, req, now_us + wait_us + 10'000'000, [this, d](const std::string& s, SectorAnswer a) {
    const std::int64_t now = mono_us();
    if (!a) {
      // It may have been taken: asking another sector could run it twice. Said so, not retried.
      book_.failure(s, now);
      auto resp = new_response(d->request_id);
      set_string(resp->error, "delegate: sector " + s + " did not answer in time; the job may be running there (the "
                              "root lists it once the sector has caught it up: kairosctl jobs)");
      return answer_(d->to, *resp);
    }
    const bool failed = !a->ok || a->which_reply != kairos_v1_ControlResponse_job_tag ||
                        std::string_view(a->reply.job.error) == "no_capable_node";
    if (failed) {
      book_.failure(s, now);
      d->errors += (d->errors.empty() ? "" : "; ") +
                   (a && a->which_reply == kairos_v1_ControlResponse_job_tag ? s + ": no capable node" : describe(s, a));
      log::warn("sectors", "delegate " + std::string(d->q.handler) + ": " + s + " failed it; trying the next sector");
      return delegate_to(d);
    }
    book_.success(s, now);
    auto resp = std::make_unique<kairos_v1_ControlResponse>(*a);
    resp->request_id = d->request_id;
    set_string(resp->reply.job.sector, s);
    answer_(d->to, *resp);
  });
}

}  // namespace kairos::gw

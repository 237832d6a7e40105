// Jobs wired into the gateway (docs/DESIGN.md 5.5): candidates, dispatch, outcomes,
// and the delegate, jobs and breakers verbs.
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

namespace {

bool has_capability(const std::string& list, const std::string& cap) {
  std::size_t start = 0;
  while (start <= list.size()) {
    auto end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    if (list.compare(start, end - start, cap) == 0) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

std::vector<JobCandidate> Gateway::job_candidates(const JobSpec& spec, bool any) const {
  std::vector<JobCandidate> out;
  const std::int64_t now = mono_us();
  const std::string handler = "job:" + spec.handler;
  for (const auto& [id, n] : registry_.nodes()) {
    if (!n.online || n.quarantined || n.status == kairos_v1_NodeStatus_QUARANTINED) continue;
    // A frozen node is capable but takes no work until thawed: the job waits for it.
    if (!any && n.status == kairos_v1_NodeStatus_FROZEN) continue;
    if (!has_capability(n.capabilities, handler)) continue;
    if (!std::all_of(spec.needs.begin(), spec.needs.end(), [&](const std::string& c) { return has_capability(n.capabilities, c); }))
      continue;
    if (spec.to.rfind("class:", 0) == 0) {
      if (class_letter(n.device_class) != spec.to.substr(6)) continue;
    } else if (spec.to.rfind("cluster:", 0) == 0) {
      if (n.cluster != spec.to.substr(8)) continue;
    } else if (spec.to.rfind("node:", 0) == 0) {
      if (id != spec.to.substr(5)) continue;
    } else if (!spec.to.empty() && !has_capability(n.capabilities, spec.to)) {
      continue;
    }
    if (!any && !breakers_.would_admit(n.cluster, now)) continue;
    out.push_back({id, static_cast<double>(n.impedance(now).score), n.reliability.value()});
  }
  return out;
}

bool Gateway::send_job(const std::string& node, const Job& job, std::uint32_t attempt) {
  const NodeEntry* n = registry_.find(node);
  if (!n || !link_->connected() || !breakers_.admit(n->cluster, mono_us())) return false;
  auto id = send_command(*n, job.spec.timeout_ms + 30'000, [&](kairos_v1_Command& cmd) {
    cmd.which_action = kairos_v1_Command_job_tag;
    auto& j = cmd.action.job;
    j.job_id = job.id;
    j.attempt = attempt;
    set_string(j.handler, job.spec.handler);
    j.payload.size = static_cast<pb_size_t>(std::min<std::size_t>(job.spec.payload.size(), sizeof j.payload.bytes));
    std::copy_n(job.spec.payload.begin(), j.payload.size, j.payload.bytes);
    j.timeout_ms = job.spec.timeout_ms;
  });
  if (!id) return false;
  job_commands_[id] = {job.id, attempt, node, mono_us()};
  return true;
}

void Gateway::job_outcome(const std::string& node, bool good, const std::string& why) {
  NodeEntry* n = registry_.find(node);
  if (!n) return;
  // Reputation (docs/DESIGN.md 5.5): the node's reliability follows its job outcomes.
  n->reliability.add(good);
  if (good)
    breakers_.success(n->cluster, mono_us());
  else
    breakers_.failure(n->cluster, mono_us());
  (void)why;
}

void Gateway::fill_job(const Job& job, kairos_v1_JobInfo& o, bool with_output) const {
  o = kairos_v1_JobInfo_init_zero;
  o.job_id = job.id;
  set_string(o.handler, job.spec.handler);
  set_string(o.state, to_string(job.state));
  set_string(o.error, job.error.substr(0, 256));
  if (with_output) {
    o.output.size = static_cast<pb_size_t>(std::min<std::size_t>(job.output.size(), sizeof o.output.bytes));
    std::copy_n(job.output.begin(), o.output.size, o.output.bytes);
  }
  o.redundancy = static_cast<std::uint32_t>(job.spec.redundancy);
  o.attempts = job.next_attempt - 1;
  o.retries = static_cast<std::uint32_t>(job.retries_used);
  for (const auto& w : job.winners)
    if (o.winners_count < 8) set_string(o.winners[o.winners_count++], w);
  for (const auto& d : job.dissent)
    if (o.dissent_count < 8) set_string(o.dissent[o.dissent_count++], d);
  o.created_us = job.created_wall_us;
  o.finished_us = job.finished_wall_us;
  o.exit_code = job.exit_code;
  o.status = job.status;
  set_string(o.asked_by, job.spec.asked_by);
}

void Gateway::confirmed_in_emergency() {
  if (mode_ == kairos_v1_MeshMode_EMERGENCY && !emergency_override_) {
    // The operator confirmed work in an EMERGENCY: jobs run again, on the operator's word, until the mode changes.
    emergency_override_ = true;
    log::warn("jobs", "EMERGENCY: job dispatch resumed by an operator's confirmed request");
  }
}

void Gateway::delegate(const Inbound& m, std::uint64_t request_id, const kairos_v1_DelegateRequest& req) {
  auto resp = new_response(request_id);
  auto refuse = [&](const std::string& why) {
    set_string(resp->error, "delegate: " + why);
    answer(m, *resp);
  };
  if (!valid_name(req.handler)) return refuse("'" + std::string(req.handler) + "' is not a handler name");
  if (req.timeout_ms > 3'600'000) return refuse("timeout_ms above 3600000");
  if (req.redundancy > 8) return refuse("redundancy above 8");
  if (req.retries > 100) return refuse("retries above 100");
  std::string to = req.to;
  if (!valid_job_target(to))
    return refuse("--to '" + to + "': a class (class:A..F), a cluster (cluster:<name>), a node (node:<id>) or a capability");
  if (auto why = mode_refusal(false, 1, req.confirm); !why.empty()) return refuse(why);
  confirmed_in_emergency();
  JobSpec spec;
  spec.handler = req.handler;
  for (pb_size_t i = 0; i < req.needs_count; ++i) spec.needs.emplace_back(req.needs[i]);
  spec.to = to;
  spec.payload.assign(req.payload.bytes, req.payload.bytes + req.payload.size);
  spec.timeout_ms = req.timeout_ms ? req.timeout_ms : config_.job_timeout_ms;
  spec.redundancy = req.redundancy ? static_cast<int>(req.redundancy) : 1;
  spec.retries = req.has_retries ? static_cast<int>(req.retries) : config_.job_retries;
  spec.asked_by = operator_of(m.topic);
  const Job& job = jobs_.submit(next_job_id_++, std::move(spec), mono_us(), wall_us());
  // Dispatch at once: no_capable_node is known now (once the registry has settled after a start).
  service_jobs();
  const Job* now = jobs_.find(job.id);
  if (req.wait && now && !now->final()) {
    job_waiters_.insert({now->id, {m.response_topic, m.correlation, request_id}});
    commit_durable();
    return;
  }
  // Accepted: the answer leaves only once the job is in the database.
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_job_tag;
  if (now) fill_job(*now, resp->reply.job, true);
  defer(m.response_topic, m.correlation, std::move(resp));
  commit_durable();
}

void Gateway::service_jobs() {
  // After a start the registry fills from retained births and the first
  // heartbeats: until then "no capable node" would be a guess.
  if (!settled(mono_us()) || !link_->connected()) return;
  if (mode_ == kairos_v1_MeshMode_EMERGENCY && !emergency_override_) return;  // automation halted
  jobs_.service(mono_us(), wall_us());
}

void Gateway::job_finished(const Job& job) {
  log::info("jobs", "job " + std::to_string(job.id) + " (" + job.spec.handler + ") " + to_string(job.state) +
                        (job.error.empty() ? "" : ": " + job.error) + " after " + std::to_string(job.next_attempt - 1) +
                        " copies");
  if (auto b = ball_jobs_.find(job.id); b != ball_jobs_.end()) {
    const BallJob bj = b->second;
    ball_jobs_.erase(b);
    ball_answer(bj, job);
  }
  if (auto ask = ask_waiters_.find(job.id); ask != ask_waiters_.end()) {
    auto resp = new_response(ask->second.request_id);
    resp->ok = true;
    resp->which_reply = kairos_v1_ControlResponse_ask_tag;
    auto& a = resp->reply.ask;
    std::map<std::string, std::vector<std::string>> groups;  // answer bytes -> nodes
    for (const auto& c : job.copies) {
      ++a.asked;
      if (c.answered) {
        ++a.answered;
        groups[std::string(c.output.begin(), c.output.end())].push_back(c.node);
      } else if (a.silent_count < 16) {
        set_string(a.silent[a.silent_count++], c.node);
      }
    }
    std::vector<std::pair<std::string, std::vector<std::string>>> sorted(groups.begin(), groups.end());
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& x, const auto& y) { return x.second.size() > y.second.size(); });
    for (const auto& [value, nodes] : sorted) {
      if (a.groups_count >= 16) break;
      auto& g = a.groups[a.groups_count++];
      g.value.size = static_cast<pb_size_t>(std::min<std::size_t>(value.size(), sizeof g.value.bytes));
      std::copy_n(value.begin(), g.value.size, g.value.bytes);
      g.count = static_cast<std::uint32_t>(nodes.size());
      for (const auto& n : nodes)
        if (g.nodes_count < 8) set_string(g.nodes[g.nodes_count++], n);
    }
    if (job.error == "no_capable_node") {
      resp->ok = false;
      set_string(resp->error, "ask: no online node offers job:" + job.spec.handler);
    }
    defer(ask->second.topic, ask->second.correlation, std::move(resp));
    ask_waiters_.erase(ask);
  }
  auto [lo, hi] = job_waiters_.equal_range(job.id);
  for (auto it = lo; it != hi; ++it) {
    auto resp = new_response(it->second.request_id);
    resp->ok = true;
    resp->which_reply = kairos_v1_ControlResponse_job_tag;
    fill_job(job, resp->reply.job, true);
    defer(it->second.topic, it->second.correlation, std::move(resp));
  }
  job_waiters_.erase(lo, hi);
}

void Gateway::jobs_verb(const Inbound& m, std::uint64_t request_id, const kairos_v1_JobsRequest& req) {
  auto resp = new_response(request_id);
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_jobs_tag;
  auto& l = resp->reply.jobs;
  const auto& c = jobs_.counts();
  l.queued = c.queued;
  l.running = c.running;
  l.done = c.done;
  l.failed = c.failed;
  l.retries = c.retries;
  l.contradictions = c.contradictions;
  if (req.job_id) {
    const Job* j = jobs_.find(req.job_id);
    std::optional<Job> stored;
    if (!j && (stored = store_.load_job(req.job_id))) j = &*stored;
    if (!j) {
      resp->ok = false;
      set_string(resp->error, "no job " + std::to_string(req.job_id) + " (kairosctl jobs lists the newest)");
      return answer(m, *resp);
    }
    l.has_job = true;
    fill_job(*j, l.job, true);
    return answer(m, *resp);
  }
  std::uint32_t limit = req.limit ? std::min(req.limit, 20u) : 20u;
  const auto& all = jobs_.jobs();
  for (auto it = all.rbegin(); it != all.rend() && l.recent_count < limit; ++it) {
    const Job& j = it->second;
    auto& o = l.recent[l.recent_count++];
    o.job_id = j.id;
    set_string(o.handler, j.spec.handler);
    set_string(o.state, to_string(j.state));
    set_string(o.error, j.error.substr(0, 64));
    o.attempts = j.next_attempt - 1;
    o.retries = static_cast<std::uint32_t>(j.retries_used);
    set_string(o.asked_by, j.spec.asked_by);
  }
  answer(m, *resp);
}

void Gateway::breakers_verb(const Inbound& m, std::uint64_t request_id) {
  auto resp = new_response(request_id);
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_breakers_tag;
  auto& l = resp->reply.breakers;
  const std::int64_t now = mono_us();
  const std::int64_t wall = wall_us();
  auto views = breakers_.view(now);
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
    b.probe_at_us = v.state == BreakerState::open && v.probe_at_us ? wall + (v.probe_at_us - now) : 0;
    b.opened = static_cast<std::uint32_t>(v.opened);
  }
  answer(m, *resp);
}

}  // namespace kairos::gw

#include "gateway/jobs/desk.h"

#include <algorithm>
#include <cstring>

#include "common/core/lists.h"
#include "common/io/clock.h"
#include "common/io/log.h"

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


JobDesk::JobDesk(const GatewayConfig& config, Registry& registry, Escalation& escalation, Outbox& outbox, Ports ports)
    : config_(config),
      registry_(registry),
      escalation_(escalation),
      outbox_(outbox),
      ports_(std::move(ports)),
      book_({[this](const JobSpec& spec, bool any) { return candidates(spec, any); },
             [this](const std::string& node, const Job& job, std::uint32_t attempt) { return send(node, job, attempt); },
             [this](const Job& job, const JobEvent& e) { log_.changed(job, e, wall_us()); },
             [this](const std::string& node, bool good, const std::string&) { outcome(node, good); },
             [this](const Job& job, const std::vector<std::string>& dissent, const std::string& detail) {
               // docs/DESIGN.md 5.6: priority 3 when it touches more than 100 nodes.
               int priority = dissent.size() > 100 ? 3 : 2;
               for (const auto& n : dissent) {
                 escalation_.conflict("DATA_CONTRADICTION", priority, n,
                                      "job " + std::to_string(job.id) + " (" + job.spec.handler + "): " + detail, wall_us());
                 for (const auto& c : job.copies)
                   if (c.node == n && c.answered)
                     escalation_.keep_data(n, "job " + std::to_string(job.id) + ": outvoted result", c.output);
               }
             },
             [this](const std::string& node, const Job& job, const std::string& detail) {
               escalation_.conflict("CAPABILITY_MISMATCH", 1, node,
                                    "advertised job:" + job.spec.handler + " but refused job " + std::to_string(job.id) +
                                        ": " + detail,
                                    wall_us());
             },
             [this](const Job& job) { finished(job); }},
            JobLimits{static_cast<std::int64_t>(config.job_backoff_s * 1e6),
                      static_cast<std::int64_t>(config.job_backoff_max_s * 1e6),
                      static_cast<std::int64_t>(config.job_grace_s * 1e6), config.job_per_node}),
      store_(outbox.store()) {
  outbox_.add(log_);
}

void JobDesk::restore() {
  next_id_ = store_.max_id() + 1;
  std::size_t resumed = 0;
  for (auto& job : store_.load(true)) {
    book_.restore(std::move(job), mono_us());
    ++resumed;
  }
  if (resumed) log::info("jobs", "resuming " + std::to_string(resumed) + " unfinished jobs");
}

const Job& JobDesk::submit(JobSpec spec) { return book_.submit(next_id_++, std::move(spec), mono_us(), wall_us()); }

void JobDesk::service() {
  // After a start the registry fills from retained births and the first
  // heartbeats: until then "no capable node" would be a guess.
  if (!ports_.ready() || escalation_.automation_halted()) return;
  book_.service(mono_us(), wall_us());
}

bool JobDesk::on_ack(const std::string& id, const kairos_v1_Ack& ack) {
  auto jc = commands_.find(ack.command_id);
  if (jc == commands_.end()) return false;
  if (jc->second.node == id) {
    if (ack.state < 0) book_.on_refused(id, jc->second.job, jc->second.attempt, ack.detail, mono_us(), wall_us());
    commands_.erase(jc);
  }
  return true;
}

void JobDesk::on_result(const std::string& id, const Envelope& env, ByteView frame) {
  const auto& r = env.message.result;
  const NodeEntry* n = registry_.find(id);
  const JobCopy* copy = book_.copy(r.job_id, id, r.attempt);
  if (n && copy && n->clock.count() > 0) {
    // An effect stamped before its cause: the result says it left the node
    // before the job reached it, beyond what the clock estimate allows.
    const double stamped_gw = static_cast<double>(env.sent_at_us) - n->clock.offset_us();
    const double slack_us = n->clock.rtt_us() / 2 + 4 * n->clock.jitter_us() + 5'000;
    if (stamped_gw < static_cast<double>(copy->sent_wall_us) - slack_us) {
      escalation_.conflict("TEMPORAL_PARADOX", 4, id,
                           "job " + std::to_string(r.job_id) + ": result stamped " +
                               std::to_string(static_cast<long long>(
                                   (static_cast<double>(copy->sent_wall_us) - stamped_gw) / 1000)) +
                               " ms before the job was sent",
                           wall_us());
      escalation_.keep_data(id, "job " + std::to_string(r.job_id) + ": result before its cause", frame);
      return;
    }
  }
  on_result(id, r);
}

void JobDesk::on_result(const std::string& id, const kairos_v1_JobResult& r) {
  book_.on_result(id, r, mono_us(), wall_us());
}

void JobDesk::tidy() {
  book_.trim(config_.jobs_in_memory);
  // Copies whose command was never answered (the node went away).
  const std::int64_t now = mono_us();
  std::erase_if(commands_, [&](const auto& kv) { return now - kv.second.sent_us > 600'000'000; });
}

void JobDesk::defer(const ReplyTo& to, std::unique_ptr<kairos_v1_ControlResponse> resp) {
  outbox_.after(answer_later(ports_.answer, to, std::move(resp)));
}

std::vector<JobCandidate> JobDesk::candidates(const JobSpec& spec, bool any) const {
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
    if (!any && !escalation_.breakers().would_admit(n.cluster, now)) continue;
    out.push_back({id, static_cast<double>(n.impedance(now).score), n.reliability.value()});
  }
  return out;
}

bool JobDesk::send(const std::string& node, const Job& job, std::uint32_t attempt) {
  const NodeEntry* n = registry_.find(node);
  if (!n || !ports_.ready() || !escalation_.breakers().admit(n->cluster, mono_us())) return false;
  auto id = ports_.send(*n, job.spec.timeout_ms + 30'000, [&](kairos_v1_Command& cmd) {
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
  commands_[id] = {job.id, attempt, node, mono_us()};
  return true;
}

void JobDesk::outcome(const std::string& node, bool good) {
  NodeEntry* n = registry_.find(node);
  if (!n) return;
  // Reputation (docs/DESIGN.md 5.5): the node's reliability follows its job outcomes.
  n->reliability.add(good);
  if (good)
    escalation_.breakers().success(n->cluster, mono_us());
  else
    escalation_.breakers().failure(n->cluster, mono_us());
}

void fill_job(const Job& job, kairos_v1_JobInfo& o, bool with_output) {
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

void JobDesk::delegate(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_DelegateRequest& req) {
  auto resp = new_response(request_id);
  auto refuse = [&](const std::string& why) {
    set_string(resp->error, "delegate: " + why);
    ports_.answer(to, *resp);
  };
  if (!valid_name(req.handler)) return refuse("'" + std::string(req.handler) + "' is not a handler name");
  if (req.timeout_ms > 3'600'000) return refuse("timeout_ms above 3600000");
  if (req.redundancy > 8) return refuse("redundancy above 8");
  if (req.retries > 100) return refuse("retries above 100");
  std::string target = req.to;
  if (!valid_job_target(target))
    return refuse("--to '" + target + "': a class (class:A..F), a cluster (cluster:<name>), a node (node:<id>) or a capability");
  if (auto why = escalation_.mode_refusal(false, 1, req.confirm); !why.empty()) return refuse(why);
  escalation_.confirmed_in_emergency();
  JobSpec spec;
  spec.handler = req.handler;
  for (pb_size_t i = 0; i < req.needs_count; ++i) spec.needs.emplace_back(req.needs[i]);
  spec.to = target;
  spec.payload.assign(req.payload.bytes, req.payload.bytes + req.payload.size);
  spec.timeout_ms = req.timeout_ms ? req.timeout_ms : config_.job_timeout_ms;
  spec.redundancy = req.redundancy ? static_cast<int>(req.redundancy) : 1;
  spec.retries = req.has_retries ? static_cast<int>(req.retries) : config_.job_retries;
  spec.asked_by = to.by;
  const Job& job = book_.submit(next_id_++, std::move(spec), mono_us(), wall_us());
  // Dispatch at once: no_capable_node is known now (once the registry has settled after a start).
  service();
  const Job* now = book_.find(job.id);
  if (req.wait && now && !now->final()) {
    waiters_.insert({now->id, {to, request_id}});
    outbox_.commit(mono_us());
    return;
  }
  // Accepted: the answer leaves only once the job is in the database.
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_job_tag;
  if (now) fill_job(*now, resp->reply.job, true);
  defer(to, std::move(resp));
  outbox_.commit(mono_us());
}

void JobDesk::finished(const Job& job) {
  log::info("jobs", "job " + std::to_string(job.id) + " (" + job.spec.handler + ") " + to_string(job.state) +
                        (job.error.empty() ? "" : ": " + job.error) + " after " + std::to_string(job.next_attempt - 1) +
                        " copies");
  if (auto ask = asks_.find(job.id); ask != asks_.end()) {
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
    defer(ask->second.to, std::move(resp));
    asks_.erase(ask);
  }
  auto [lo, hi] = waiters_.equal_range(job.id);
  for (auto it = lo; it != hi; ++it) {
    auto resp = new_response(it->second.request_id);
    resp->ok = true;
    resp->which_reply = kairos_v1_ControlResponse_job_tag;
    fill_job(job, resp->reply.job, true);
    defer(it->second.to, std::move(resp));
  }
  waiters_.erase(lo, hi);
  if (ports_.finished) ports_.finished(job);
}

void JobDesk::jobs(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_JobsRequest& req) {
  auto resp = new_response(request_id);
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_jobs_tag;
  auto& l = resp->reply.jobs;
  const auto& c = book_.counts();
  l.queued = c.queued;
  l.running = c.running;
  l.done = c.done;
  l.failed = c.failed;
  l.retries = c.retries;
  l.contradictions = c.contradictions;
  if (req.job_id) {
    const Job* j = book_.find(req.job_id);
    std::optional<Job> stored;
    if (!j && (stored = store_.load_one(req.job_id))) j = &*stored;
    if (!j) {
      resp->ok = false;
      set_string(resp->error, "no job " + std::to_string(req.job_id) + " (kairosctl jobs lists the newest)");
      return ports_.answer(to, *resp);
    }
    l.has_job = true;
    fill_job(*j, l.job, true);
    return ports_.answer(to, *resp);
  }
  std::uint32_t limit = req.limit ? std::min(req.limit, 20u) : 20u;
  auto summary = [&](const Job& j) {
    auto& o = l.recent[l.recent_count++];
    o.job_id = j.id;
    set_string(o.handler, j.spec.handler);
    set_string(o.state, to_string(j.state));
    set_string(o.error, j.error.substr(0, 64));
    o.attempts = j.next_attempt - 1;
    o.retries = static_cast<std::uint32_t>(j.retries_used);
    set_string(o.asked_by, j.spec.asked_by);
    o.finished_us = j.finished_wall_us;
  };
  if (req.finished) {  // a root catching up: from the database, oldest first
    for (const auto& j : store_.finished_since(req.finished_since_us, limit)) summary(j);
    return ports_.answer(to, *resp);
  }
  const auto& all = book_.jobs();
  for (auto it = all.rbegin(); it != all.rend() && l.recent_count < limit; ++it) summary(it->second);
  ports_.answer(to, *resp);
}

void JobDesk::ask(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_AskRequest& req) {
  auto refuse = [&](const std::string& why) {
    auto resp = new_response(request_id);
    set_string(resp->error, "ask: " + why);
    ports_.answer(to, *resp);
  };
  std::string handler = req.handler[0] ? req.handler : "read";
  if (!valid_name(handler)) return refuse("'" + handler + "' is not a handler name");
  if (req.sample > 1000) return refuse("--sample above 1000");
  if (req.timeout_ms > 600'000) return refuse("timeout above 600000 ms");
  std::string target = req.to;
  if (!valid_job_target(target))
    return refuse("--to '" + target + "': a class (class:A..F), a cluster (cluster:<name>), a node (node:<id>) or a capability");
  if (auto why = escalation_.mode_refusal(false, req.sample, req.confirm); !why.empty()) return refuse(why);
  if (req.confirm) escalation_.confirmed_in_emergency();
  JobSpec spec;
  spec.handler = handler;
  spec.to = target;
  spec.payload.assign(req.question, req.question + std::strlen(req.question));
  spec.timeout_ms = req.timeout_ms ? req.timeout_ms : 5000;
  spec.redundancy = req.sample ? static_cast<int>(req.sample) : 5;
  spec.retries = 0;
  spec.poll = true;
  spec.asked_by = to.by;
  const Job& job = book_.submit(next_id_++, std::move(spec), mono_us(), wall_us());
  asks_[job.id] = {to, request_id};
  service();
  outbox_.commit(mono_us());
}

}  // namespace kairos::gw

#include "gateway/jobs/jobs.h"

#include <algorithm>

namespace kairos::gw {

namespace {

// Is there a capable node that has not had a copy of this run of the job?
bool untried_left(const std::vector<JobCandidate>& capable, const Job& job) {
  return std::any_of(capable.begin(), capable.end(), [&](const JobCandidate& c) {
    return std::none_of(job.copies.begin(), job.copies.end(), [&](const JobCopy& x) { return x.node == c.id; });
  });
}

}  // namespace

const char* to_string(JobState s) {
  switch (s) {
    case JobState::queued: return "QUEUED";
    case JobState::running: return "RUNNING";
    case JobState::done: return "DONE";
    case JobState::failed: return "FAILED";
  }
  return "?";
}

std::optional<JobState> parse_job_state(std::string_view s) {
  for (auto st : {JobState::queued, JobState::running, JobState::done, JobState::failed})
    if (s == to_string(st)) return st;
  return std::nullopt;
}

Digest result_hash(kairos_v1_JobStatus status, int exit_code, ByteView output) {
  Bytes b;
  b.reserve(output.size() + 8);
  auto put32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  put32(static_cast<std::uint32_t>(status));
  put32(static_cast<std::uint32_t>(exit_code));
  b.insert(b.end(), output.begin(), output.end());
  return sha256(b);
}

JobBook::JobBook(JobHooks hooks, JobLimits limits)
    : hooks_(std::move(hooks)),
      backoff_us_(limits.backoff_us),
      backoff_max_us_(limits.backoff_max_us),
      grace_us_(limits.grace_us),
      max_per_node_(limits.per_node) {}

void JobBook::event(const Job& job, std::string kind, const std::string& node, std::uint32_t attempt,
                    std::string detail) {
  if (hooks_.changed) hooks_.changed(job, {job.id, std::move(kind), node, attempt, std::move(detail)});
}

void JobBook::set_state(Job& job, JobState s) {
  auto count = [&](JobState st) -> std::uint64_t& {
    switch (st) {
      case JobState::queued: return counts_.queued;
      case JobState::running: return counts_.running;
      case JobState::done: return counts_.done;
      case JobState::failed: return counts_.failed;
    }
    return counts_.queued;
  };
  --count(job.state);
  job.state = s;
  ++count(s);
}

const Job& JobBook::submit(std::uint64_t id, JobSpec spec, std::int64_t now_us, std::int64_t now_wall_us) {
  Job job;
  job.id = id;
  job.spec = std::move(spec);
  job.spec.redundancy = std::max(1, job.spec.redundancy);
  job.created_wall_us = now_wall_us;
  job.open_slots = job.spec.redundancy;
  job.not_before_us = now_us;
  auto& j = jobs_[id] = std::move(job);
  ++counts_.queued;
  active_.push_back(id);
  event(j, "created");
  return j;
}

void JobBook::restore(Job job, std::int64_t now_us) {
  if (job.final()) {
    ++(job.state == JobState::done ? counts_.done : counts_.failed);
    jobs_[job.id] = std::move(job);
    return;
  }
  job.copies.clear();
  job.state = JobState::queued;
  job.open_slots = std::max(1, job.spec.redundancy);
  job.not_before_us = now_us;
  job.winners.clear();
  job.dissent.clear();
  ++counts_.queued;
  auto id = job.id;
  jobs_[id] = std::move(job);
  active_.push_back(id);
  event(jobs_[id], "resumed", "", 0, "gateway restarted; attempts from " + std::to_string(jobs_[id].next_attempt));
}

template <class J>
auto JobBook::copy_of(J& job, const std::string& node, std::uint32_t attempt) -> decltype(&job.copies[0]) {
  for (auto& c : job.copies)
    if (c.attempt == attempt && c.node == node) return &c;
  return nullptr;
}

void JobBook::on_result(const std::string& node, const kairos_v1_JobResult& r, std::int64_t now_us,
                        std::int64_t now_wall_us) {
  auto it = jobs_.find(r.job_id);
  JobCopy* copy = it == jobs_.end() ? nullptr : copy_of(it->second, node, r.attempt);
  if (!copy) {
    ++counts_.stray_results;  // an attempt of an earlier run, or not ours
    return;
  }
  Job& job = it->second;
  if (copy->answered || (copy->failed && r.status != kairos_v1_JobStatus_JOB_OK && r.status != kairos_v1_JobStatus_JOB_ERROR))
    return;  // a QoS 1 duplicate, or nothing new
  if (r.status == kairos_v1_JobStatus_JOB_REFUSED || r.status == kairos_v1_JobStatus_JOB_TIMEOUT) {
    std::string why = r.status == kairos_v1_JobStatus_JOB_TIMEOUT ? "handler timed out" : std::string(r.error);
    if (r.status == kairos_v1_JobStatus_JOB_REFUSED && std::string_view(r.error).rfind("no handler", 0) == 0 &&
        hooks_.incapable)
      hooks_.incapable(node, job, r.error);
    if (!copy->failed)
      copy_failed(job, *copy, r.status == kairos_v1_JobStatus_JOB_TIMEOUT ? "timeout" : "refused", why, now_us,
                  now_wall_us);
    return;
  }
  if (r.status != kairos_v1_JobStatus_JOB_OK && r.status != kairos_v1_JobStatus_JOB_ERROR) {
    ++counts_.stray_results;
    return;
  }
  const bool was_failed = copy->failed;
  if (!was_failed) release(node);
  copy->answered = true;
  copy->failed = false;
  copy->status = r.status;
  copy->output.assign(r.output.bytes, r.output.bytes + r.output.size);
  copy->error = r.error;
  copy->exit_code = r.exit_code;
  copy->hash = result_hash(r.status, r.exit_code, copy->output);
  if (job.final()) {
    // After the vote: compared with the winner, counted, never a second completion.
    ++counts_.late_results;
    // A job that ended without a result (timeout) has nothing to compare with.
    bool agrees = job.winners.empty() || copy->hash == result_hash(job.status, job.exit_code, job.output);
    event(job, "late", node, r.attempt, agrees ? "agrees with the result" : "differs from the result");
    if (!agrees) {
      job.dissent.push_back(node);
      ++counts_.contradictions;
      if (hooks_.outcome) hooks_.outcome(node, false, "outvoted");
      if (hooks_.contradiction) hooks_.contradiction(job, {node}, "a late result differs from the majority");
    }
    return;
  }
  if (was_failed) {
    // It answered after its slot had gone to another node: its vote still counts.
    event(job, "result", node, r.attempt, "late, after a retry");
  } else {
    event(job, "result", node, r.attempt, r.status == kairos_v1_JobStatus_JOB_OK ? "ok" : "error");
  }
  vote(job, now_wall_us);
}

void JobBook::on_refused(const std::string& node, std::uint64_t id, std::uint32_t attempt, const std::string& why,
                         std::int64_t now_us, std::int64_t now_wall_us) {
  auto it = jobs_.find(id);
  if (it == jobs_.end() || it->second.final()) return;
  JobCopy* copy = copy_of(it->second, node, attempt);
  if (!copy || copy->answered || copy->failed) return;
  // The node sends this ack before its REFUSED result, which then finds the
  // copy failed: the mismatch is reported here or it would never be.
  if (why.rfind("no handler", 0) == 0 && hooks_.incapable) hooks_.incapable(node, it->second, why);
  copy_failed(it->second, *copy, "refused", why, now_us, now_wall_us);
}

void JobBook::release(const std::string& node) {
  auto it = in_flight_.find(node);
  if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
}

int JobBook::in_flight(const std::string& node) const {
  auto it = in_flight_.find(node);
  return it == in_flight_.end() ? 0 : it->second;
}

void JobBook::copy_failed(Job& job, JobCopy& copy, const std::string& kind, const std::string& why, std::int64_t now_us,
                          std::int64_t now_wall_us) {
  copy.failed = true;
  release(copy.node);
  if (hooks_.outcome) hooks_.outcome(copy.node, false, kind);
  event(job, kind, copy.node, copy.attempt, why);
  if (job.final()) return;
  if (job.retries_used < job.spec.retries) {
    ++job.retries_used;
    ++counts_.retries;
    ++job.open_slots;
    // Backoff doubles with every retry of the job.
    std::int64_t wait = backoff_us_ << std::min(job.retries_used - 1, 20);
    job.not_before_us = now_us + std::min(wait, backoff_max_us_);
    event(job, "retry", "", 0, "retry " + std::to_string(job.retries_used) + " of " + std::to_string(job.spec.retries));
    return;
  }
  // No retries left: the job ends once nothing it waits for can still decide it.
  bool waiting = job.awaited() > 0;
  if (!waiting) vote(job, now_wall_us);
}

void JobBook::vote(Job& job, std::int64_t now_wall_us) {
  if (job.spec.poll) {
    // Every answer counts; the poll ends when nothing is out any more.
    bool waiting = job.awaited() > 0;
    if (waiting || job.open_slots > 0) return;
    for (const auto& c : job.copies)
      if (c.answered) {
        job.winners.push_back(c.node);
        if (hooks_.outcome) hooks_.outcome(c.node, true, "answer");
      }
    return finish(job, job.winners.empty() ? JobState::failed : JobState::done,
                  job.winners.empty() ? "no node answered" : "", now_wall_us);
  }
  const int r = job.spec.redundancy;
  const int need = r / 2 + 1;
  std::map<Digest, std::vector<const JobCopy*>> groups;
  int answered = 0;
  for (const auto& c : job.copies)
    if (c.answered) {
      groups[c.hash].push_back(&c);
      ++answered;
    }
  const std::vector<const JobCopy*>* best = nullptr;
  for (const auto& [h, g] : groups)
    if (!best || g.size() > best->size()) best = &g;
  if (best && static_cast<int>(best->size()) >= need) {
    const JobCopy& w = *best->front();
    job.status = w.status;
    job.output = w.output;
    job.exit_code = w.exit_code;
    for (const auto* c : *best) job.winners.push_back(c->node);
    for (const auto& c : job.copies)
      if (c.answered && c.hash != w.hash) job.dissent.push_back(c.node);
    for (const auto& n : job.winners)
      if (hooks_.outcome) hooks_.outcome(n, true, "result");
    if (!job.dissent.empty()) {
      ++counts_.contradictions;
      for (const auto& n : job.dissent)
        if (hooks_.outcome) hooks_.outcome(n, false, "outvoted");
      if (hooks_.contradiction)
        hooks_.contradiction(job, job.dissent,
                             std::to_string(job.dissent.size()) + " of " + std::to_string(answered) +
                                 " results differ from the majority");
    }
    if (w.status == kairos_v1_JobStatus_JOB_OK)
      finish(job, JobState::done, "", now_wall_us);
    else
      finish(job, JobState::failed, "handler failed (exit " + std::to_string(w.exit_code) + ")" +
                                        (w.error.empty() ? "" : ": " + w.error), now_wall_us);
    return;
  }
  const int waiting = job.awaited();
  // Can a majority still form from what is out and what may still be sent?
  const int largest = best ? static_cast<int>(best->size()) : 0;
  if (largest + waiting + job.open_slots >= need) return;
  if (answered >= 2 && groups.size() > 1 && job.retries_used < job.spec.retries &&
      untried_left(hooks_.candidates(job.spec, true), job)) {
    // Every copy answered and they disagree: one more node breaks the tie
    // (if one is left: otherwise every tick would spend a retry on nothing).
    ++job.retries_used;
    ++counts_.retries;
    ++job.open_slots;
    event(job, "retry", "", 0, "results disagree: one more copy");
    return;
  }
  if (groups.size() > 1) {
    std::vector<std::string> all;
    for (const auto& c : job.copies)
      if (c.answered) all.push_back(c.node);
    job.dissent = all;
    ++counts_.contradictions;
    if (hooks_.contradiction) hooks_.contradiction(job, all, "no majority among " + std::to_string(answered) + " results");
    return finish(job, JobState::failed, "no_majority", now_wall_us);
  }
  if (answered)
    return finish(job, JobState::failed,
                  "too_few_answers: " + std::to_string(answered) + " of " + std::to_string(r) + " copies answered, " +
                      std::to_string(need) + " must agree",
                  now_wall_us);
  finish(job, JobState::failed, "timeout: no node answered", now_wall_us);
}

void JobBook::finish(Job& job, JobState state, const std::string& error, std::int64_t now_wall_us) {
  set_state(job, state);
  for (auto& c : job.copies)
    if (c.awaited()) {
      c.failed = true;  // no longer waited for; a late result is still compared
      release(c.node);
    }
  job.error = error;
  job.open_slots = 0;
  job.finished_wall_us = now_wall_us;
  event(job, state == JobState::done ? "done" : "failed", "", 0, error);
  if (hooks_.finished) hooks_.finished(job);
}

void JobBook::dispatch(Job& job, std::int64_t now_us, std::int64_t now_wall_us) {
  if (job.open_slots <= 0 || now_us < job.not_before_us) return;
  auto cands = hooks_.candidates(job.spec, false);
  // A node holds at most one copy of a job.
  std::erase_if(cands, [&](const JobCandidate& c) {
    return std::any_of(job.copies.begin(), job.copies.end(), [&](const JobCopy& x) { return x.node == c.id; });
  });
  if (cands.empty()) {
    if (job.copies.empty() && hooks_.candidates(job.spec, true).empty()) {
      // Nothing in the mesh can run it: fail at once, never wait forever.
      job.open_slots = 0;
      return finish(job, JobState::failed, "no_capable_node", now_wall_us);
    }
    bool others_tried = !job.copies.empty() && !untried_left(hooks_.candidates(job.spec, true), job);
    if (others_tried) {
      // Every capable node has had its copy: what is out decides.
      job.open_slots = 0;
      bool waiting = job.awaited() > 0;
      if (!waiting) vote(job, now_wall_us);
      return;
    }
    job.not_before_us = now_us + backoff_us_;  // capable nodes exist but none may take it now
    return;
  }
  // A node at its limit of copies in flight waits for one to end.
  std::erase_if(cands, [&](const JobCandidate& c) { return in_flight(c.id) >= max_per_node_; });
  if (cands.empty()) {
    job.not_before_us = now_us + backoff_us_;
    return;
  }
  if (job.spec.poll) {
    // A sample, not the best: every candidate equally likely.
    std::shuffle(cands.begin(), cands.end(), rng_);
  } else {
    // The open slots, and a few more for copies that cannot leave.
    sort_candidates(cands, static_cast<std::size_t>(job.open_slots) + 8);
  }
  for (const auto& c : cands) {
    if (job.open_slots <= 0) break;
    const std::uint32_t attempt = job.next_attempt++;
    JobCopy copy;
    copy.node = c.id;
    copy.attempt = attempt;
    copy.deadline_us = now_us + static_cast<std::int64_t>(job.spec.timeout_ms) * 1000 + grace_us_;
    copy.sent_wall_us = now_wall_us;
    job.copies.push_back(copy);
    --job.open_slots;
    if (job.state == JobState::queued) set_state(job, JobState::running);
    event(job, "sent", c.id, attempt);
    ++in_flight_[c.id];
    if (!hooks_.send(c.id, job, attempt)) {
      release(c.id);
      JobCopy& back = job.copies.back();
      back.failed = true;
      ++job.open_slots;
      event(job, "refused", c.id, attempt, "could not be sent");
    }
  }
}

void JobBook::sort_candidates(std::vector<JobCandidate>& cands, std::size_t first) const {
  // Lowest impedance first, counting the copies a node already runs (k in
  // flight rank it as k+1 times its impedance); ties: the more reliable.
  // Only the first `first` places are ordered: a job needs a few nodes, not
  // a ranking of the whole mesh.
  struct Key {
    double load;
    double reliability;
    const JobCandidate* c;
  };
  std::vector<Key> keys;
  keys.reserve(cands.size());
  for (const auto& c : cands) keys.push_back({std::max(1.0, c.impedance) * (1 + in_flight(c.id)), c.reliability, &c});
  auto before = [](const Key& a, const Key& b) {
    if (a.load != b.load) return a.load < b.load;
    if (a.reliability != b.reliability) return a.reliability > b.reliability;
    return a.c->id < b.c->id;
  };
  first = std::min(first, keys.size());
  std::partial_sort(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(first), keys.end(), before);
  std::vector<JobCandidate> out;
  out.reserve(first);
  for (std::size_t i = 0; i < first; ++i) out.push_back(std::move(*const_cast<JobCandidate*>(keys[i].c)));
  cands = std::move(out);
}

void JobBook::service(std::int64_t now_us, std::int64_t now_wall_us) {
  for (std::size_t i = 0; i < active_.size(); ++i) {
    auto it = jobs_.find(active_[i]);
    if (it == jobs_.end()) continue;
    Job& job = it->second;
    for (std::size_t k = 0; k < job.copies.size() && !job.final(); ++k) {
      auto& c = job.copies[k];
      if (c.awaited() && now_us >= c.deadline_us)
        copy_failed(job, c, "timeout", "no result within " + std::to_string(job.spec.timeout_ms) + " ms", now_us,
                    now_wall_us);
    }
    if (!job.final()) dispatch(job, now_us, now_wall_us);
  }
  std::erase_if(active_, [&](std::uint64_t id) {
    auto it = jobs_.find(id);
    return it == jobs_.end() || it->second.final();
  });
}

std::int64_t JobBook::next_deadline_us() const {
  std::int64_t next = INT64_MAX;
  for (auto id : active_) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    const Job& job = it->second;
    if (job.open_slots > 0) next = std::min(next, job.not_before_us);
    for (const auto& c : job.copies)
      if (c.awaited()) next = std::min(next, c.deadline_us);
  }
  return next;
}

const JobCopy* JobBook::copy(std::uint64_t id, const std::string& node, std::uint32_t attempt) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : copy_of(it->second, node, attempt);
}

const Job* JobBook::find(std::uint64_t id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

void JobBook::trim(std::size_t keep) {
  const std::uint64_t finished = counts_.done + counts_.failed;
  if (jobs_.size() <= keep + active_.size() || finished <= keep) return;
  for (auto it = jobs_.begin(); it != jobs_.end() && jobs_.size() > keep + active_.size();)
    it = it->second.final() ? jobs_.erase(it) : std::next(it);
}

}  // namespace kairos::gw

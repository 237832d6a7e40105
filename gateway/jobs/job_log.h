#pragma once
// What happened to jobs since the last commit (docs/DESIGN.md 5.5): each
// changed job's row as it is then, and its events (append-only), written
// by the outbox before any answer about them leaves.
#include <set>
#include <utility>
#include <vector>

#include "gateway/jobs/job_store.h"
#include "gateway/jobs/jobs.h"
#include "gateway/store/outbox.h"

namespace kairos::gw {

class JobLog : public Writer {
 public:
  JobLog(const JobBook& jobs, JobStore& store) : jobs_(jobs), store_(store) {}
  void changed(const Job& job, const JobEvent& e, std::int64_t at_wall_us) {
    dirty_.insert(job.id);
    events_.emplace_back(e, at_wall_us);
  }
  bool pending() const override { return !dirty_.empty() || !events_.empty(); }
  void write(Store&) override {  // the job store writes on the same connection, in the same transaction
    for (auto id : dirty_)
      if (const Job* j = jobs_.find(id)) store_.save(*j);
    for (const auto& [e, at] : events_) store_.append_event(e, at);
  }
  void written() override {
    dirty_.clear();
    events_.clear();
  }

 private:
  const JobBook& jobs_;
  JobStore& store_;
  std::set<std::uint64_t> dirty_;
  std::vector<std::pair<JobEvent, std::int64_t>> events_;
};

}  // namespace kairos::gw

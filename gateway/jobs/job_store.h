#pragma once
// Jobs in the gateway's SQLite file (docs/DESIGN.md 5.5, 5.7): the row as it is
// now, its append-only events, and what a restart resumes. The tables are
// the store's schema; what a job is, is the job book's.
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "gateway/jobs/jobs.h"
#include "gateway/store/store.h"

struct sqlite3;

namespace kairos::gw {

class JobStore {
 public:
  explicit JobStore(Store& store);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  void save(const Job& job);
  void append_event(const JobEvent& e, std::int64_t at_wall_us);
  std::vector<Job> load(bool unfinished_only);
  std::optional<Job> load_one(std::uint64_t id);
  std::uint64_t max_id();
  // Finished jobs, finished at or after since (wall), oldest first (a root catching up).
  std::vector<Job> finished_since(std::int64_t since_wall_us, std::size_t limit);
  // When the newest finished job finished (0: none).
  std::int64_t newest_finished_us();

 private:
  sqlite3* db_;
  std::unique_ptr<Stmt> save_;
  std::unique_ptr<Stmt> append_event_;
};

}  // namespace kairos::gw

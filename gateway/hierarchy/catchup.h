#pragma once
// A root catching up with its sectors (docs/DESIGN.md 5.9). Each sector's
// summary carries its newest conflict of priority 3 or more and when its
// newest job finished; a root behind on either pulls what it lacks (one
// request per sector and kind at a time, a page after what it holds) into
// tables of its own SQLite file, keyed by sector and the sector's id, so
// that an entry pulled twice (a restart, a bridge cut, a redelivery) is kept
// once. The root's `conflicts` and `jobs` list from them.
#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "gateway/hierarchy/fanout.h"
#include "gateway/hierarchy/sectors.h"
#include "gateway/store/outbox.h"

namespace kairos::gw {

class CatchUp {
 public:
  CatchUp(Outbox& outbox, SectorBook& book, Fanout& fanout);
  void service(std::int64_t now_us);
  void fill_conflicts(const kairos_v1_ConflictsRequest& q, kairos_v1_ConflictList& r);
  void fill_jobs(const kairos_v1_JobsRequest& q, kairos_v1_JobList& r);

 private:
  void pull_conflicts(const std::string& sector, std::uint64_t after, std::int64_t now_us);
  void pull_jobs(const std::string& sector, std::int64_t since, std::int64_t now_us);

  Outbox& outbox_;
  SectorBook& book_;
  Fanout& fanout_;
  std::set<std::string> pulling_conflicts_, pulling_jobs_;
  // What the root holds of each sector: its newest conflict id, its newest
  // finish; read from the tables once, then kept as pages are written.
  struct Held {
    std::uint64_t conflict = 0;
    std::int64_t finished_us = 0;
  };
  std::map<std::string, Held> held_;
};

}  // namespace kairos::gw

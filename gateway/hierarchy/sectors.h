#pragma once
// The root gateway's view of its sectors (docs/DESIGN.md 5.9): each
// sector's last summary and its clusters', checked under the sector's key
// and against replays; a sector not heard for stale_periods summary
// periods is stale and its breaker opens; the global mesh figures are
// computed exactly from the live sectors' partial sums.
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "common/core/crypto.h"
#include "common/core/frame.h"
#include "common/core/meshsync.h"
#include "common/core/topic.h"
#include "common/io/mqtt.h"
#include "gateway/escalation/breakers.h"
#include "gateway/gateway_config.h"

namespace kairos::gw {

// The figures of docs/DESIGN.md 5.3 from partial sums, each brought to the
// instant at_wall_us by its common decay factor.
MeshFigures figures_from_sums(const std::vector<kairos_v1_PhaseSums>& sums, std::int64_t at_wall_us);

class SectorBook {
 public:
  struct Ports {
    std::function<void(DropReason reason, const std::string& topic, const std::string& detail, std::int64_t now_us)> drop;
    // A sector went stale (true) or was heard again (false).
    std::function<void(const std::string& sector, bool stale)> changed;
  };
  // Reads every sector's key (throws std::runtime_error naming the file when one is unusable).
  SectorBook(const GatewayConfig& config, BreakerSettings breakers, Ports ports);

  // A message on a _sector/<name>/summary or _sector/<name>/cluster/<cluster> topic.
  void on_message(const Topic& t, const Inbound& m, std::int64_t now_us);
  // Staleness and the breakers.
  void service(std::int64_t now_us);

  struct Totals {
    std::uint32_t known = 0, online = 0, clusters = 0;
    std::uint32_t sectors = 0, live = 0, stale = 0, breakers_open = 0;
    std::uint64_t jobs_queued = 0, jobs_running = 0;
    double mean_impedance = 0;  // over the live sectors' online nodes with clock samples
  };
  Totals totals() const;
  // A root's status: the mesh's counts from its sectors (known, online, clusters, sectors, impedance, jobs, breakers).
  void fill_status(kairos_v1_StatusReply& r) const;
  // Over the live sectors, as of now.
  MeshFigures figures() const;
  // More sectors not CLOSED than breakers.global_sectors.
  bool mesh_open() const;
  // A page of sectors after q.after (names in order).
  void fill(const kairos_v1_SectorsRequest& q, kairos_v1_SectorList& r, std::int64_t now_us) const;
  const Key* key(const std::string& sector) const;
  std::size_t size() const { return sectors_.size(); }
  // Sectors live again after going stale, and their time silent in all (us).
  std::uint64_t recoveries() const { return recoveries_; }
  std::int64_t recovery_total_us() const { return recovery_total_us_; }

  // Routing (docs/DESIGN.md 5.9). The sectors work may go to now: live,
  // and their breaker at the root lets it through (a probe or a HALF_OPEN
  // slot is counted when admit is true).
  std::vector<std::string> reachable(std::int64_t now_us, bool admit = false);
  // Those of them that hold nodes a job or schedule can target: `to` as
  // delegate and schedule take it (class:X, cluster:C, a capability, all
  // or empty), every one of needs; the best first (most capable nodes
  // online, then lowest mean impedance). Not admitted yet.
  std::vector<std::string> capable(const std::string& to, const std::vector<std::string>& needs,
                                   std::int64_t now_us) const;
  bool admit(const std::string& sector, std::int64_t now_us);
  // What work sent to a sector came to (its breaker counts failures over
  // breakers.sector_failures, and an answer half-opens an OPEN one).
  void failure(const std::string& sector, std::int64_t now_us);
  void success(const std::string& sector, std::int64_t now_us);
  // The known nodes of a sector not reachable now (for what a cascade leaves out).
  std::uint32_t known(const std::string& sector) const;
  // Its last summary; null while never heard.
  const kairos_v1_SectorSummary* summary(const std::string& sector) const;
  const std::vector<std::string>& names() const { return names_; }
  void fill_breakers(kairos_v1_BreakerList& r, std::int64_t now_us) const;

 private:
  struct Sector {
    Key key{};
    bool heard = false;
    bool stale = false;
    std::int64_t last_us = 0;  // monotonic: when its summary was taken (receipt, or earlier by its stamp); the
                               // root's first look while never heard
    kairos_v1_SectorSummary summary = kairos_v1_SectorSummary_init_zero;
    std::map<std::string, kairos_v1_GroupSummary> clusters;
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> high_water;  // topic -> (session, seq)
    Breaker breaker;
    std::int64_t silent_since_us = 0;  // monotonic: its last summary before it went stale (0: never heard)
  };
  std::int64_t stale_after_us(const Sector& s) const;

  const GatewayConfig& config_;
  BreakerSettings breaker_settings_;
  Ports ports_;
  std::map<std::string, Sector> sectors_;
  std::uint64_t recoveries_ = 0;
  std::int64_t recovery_total_us_ = 0;
  std::vector<std::string> names_;
};

}  // namespace kairos::gw

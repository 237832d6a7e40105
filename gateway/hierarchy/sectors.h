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
  // Over the live sectors, as of now.
  MeshFigures figures() const;
  // More sectors not CLOSED than breakers.global_sectors.
  bool mesh_open() const;
  // A page of sectors after q.after (names in order).
  void fill(const kairos_v1_SectorsRequest& q, kairos_v1_SectorList& r, std::int64_t now_us) const;
  const Key* key(const std::string& sector) const;
  std::size_t size() const { return sectors_.size(); }

 private:
  struct Sector {
    Key key{};
    bool heard = false;
    bool stale = false;
    std::int64_t last_us = 0;  // monotonic: when its summary was taken (receipt, or earlier by its stamp)
    kairos_v1_SectorSummary summary = kairos_v1_SectorSummary_init_zero;
    std::map<std::string, kairos_v1_GroupSummary> clusters;
    std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> high_water;  // topic -> (session, seq)
    Breaker breaker;
  };
  std::int64_t stale_after_us(const Sector& s) const;

  const GatewayConfig& config_;
  BreakerSettings breaker_settings_;
  Ports ports_;
  std::map<std::string, Sector> sectors_;
};

}  // namespace kairos::gw

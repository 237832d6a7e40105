#include "tools/kairosctl/sectors.h"

#include <cstdio>
#include <string>

#include "common/core/json.h"
#include "common/core/frame.h"

namespace kairos::ctl {

namespace {

void group_json(Json& j, const kairos_v1_GroupSummary& g) {
  j.begin_object().key("known").integer(g.known).key("online").integer(g.online);
  j.key("impedance_mean").num(g.impedance_mean).key("impedance_p95").num(g.impedance_p95);
  j.key("slowest").str(g.slowest).key("slowest_score").integer(g.slowest_score);
  j.key("fastest").str(g.fastest).key("fastest_score").integer(g.fastest_score);
  j.key("clock_synced").integer(g.clock_synced).key("clock_rtt_p95_ms").num(g.clock_rtt_p95_ms);
  j.key("breaker").str(g.breaker).key("in_sync").integer(g.sums.contributors).end_object();
}

}  // namespace

int print_sectors(const std::vector<kairos_v1_SectorInfo>& sectors, std::uint32_t stale, bool json) {
  if (json) {
    Json j;
    j.begin_object().key("total").integer(sectors.size()).key("stale").integer(stale).key("sectors").begin_array();
    for (const auto& s : sectors) {
      j.begin_object().key("name").str(s.name).key("state").str(s.state).key("breaker").str(s.breaker);
      j.key("age_ms").integer(s.age_ms);
      if (s.has_summary) {
        const auto& m = s.summary;
        j.key("gateway").str(m.gateway).key("mode").str(to_string(m.mode).data()).key("clusters").integer(m.clusters);
        j.key("jobs_queued").integer(m.jobs_queued).key("jobs_running").integer(m.jobs_running);
        j.key("breakers_open").integer(m.breakers_open).key("last_cascade").str(m.last_cascade);
        j.key("conflicts_open").begin_array();
        for (pb_size_t i = 0; i < m.conflicts_open_count; ++i) j.integer(m.conflicts_open[i]);
        j.end_array().key("total");
        group_json(j, m.total);
      }
      j.end_object();
    }
    j.end_array().end_object();
    std::printf("%s\n", j.text().c_str());
    return 0;
  }
  std::printf("%-16s %-8s %-10s %-13s %-18s %-9s %-12s %s\n", "SECTOR", "STATE", "BREAKER", "ONLINE", "MODE",
              "IMPEDANCE", "CLOCK", "HEARD");
  for (const auto& s : sectors) {
    if (!s.has_summary) {
      std::printf("%-16s %-8s %-10s %-13s %-18s %-9s %-12s %s\n", s.name, s.state, s.breaker, "-", "-", "-", "-",
                  "never");
      continue;
    }
    const auto& g = s.summary.total;
    const std::string online = std::to_string(g.online) + "/" + std::to_string(g.known);
    const std::string imp = std::to_string(static_cast<int>(g.impedance_mean)) + "/" +
                            std::to_string(static_cast<int>(g.impedance_p95));
    const std::string clock = std::to_string(g.clock_synced) + " synced";
    std::printf("%-16s %-8s %-10s %-13s %-18s %-9s %-12s %.1f s ago\n", s.name, s.state, s.breaker, online.c_str(),
                to_string(s.summary.mode).data(), imp.c_str(), clock.c_str(), s.age_ms / 1000.0);
  }
  std::printf("%zu sectors, %u stale (impedance: mean/p95 score; a stale sector has sent no summary for 3 periods)\n",
              sectors.size(), stale);
  return 0;
}

}  // namespace kairos::ctl

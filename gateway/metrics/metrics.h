#pragma once
// The gateway's Prometheus metrics (docs/METRICS.md), rendered in the text
// exposition format by prometheus-cpp when scraped. Rendered on the loop,
// from the modules' own counters and one walk of the nodes per scrape (the
// impedance and clock offset distributions): a scrape costs what it reads,
// and nothing is kept up to date between scrapes but the KPI book.
#include <cstdint>
#include <memory>
#include <string>

#include "gateway/ball/plays.h"
#include "gateway/metrics/kpi.h"
#include "gateway/rpc/verbs.h"
#include "gateway/store/store.h"

namespace prometheus {
class Registry;
}

namespace kairos::gw {

// What a scrape reads, beside the status's parts.
struct MetricsParts {
  const StatusParts& status;
  const kairos_v1_MeshState& mesh;
  Store& store;
  std::size_t ball_plays;
  const KpiFigures& kpi;
};

class Metrics {
 public:
  Metrics();
  ~Metrics();
  // The exposition text of everything, as of now (monotonic us).
  std::string render(const MetricsParts& p, std::int64_t now_us);

 private:
  struct Families;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> f_;
};

// The process's CPU time (user + system, seconds) and resident memory (bytes), from /proc/self.
double process_cpu_seconds();
double process_resident_bytes();

}  // namespace kairos::gw

#pragma once
// The gateway's Prometheus metrics (docs/METRICS.md), rendered in the text
// exposition format by prometheus-cpp when scraped. Rendered on the loop,
// from the modules' own counters and one walk of the nodes per scrape (the
// impedance and clock offset distributions): a scrape costs what it reads,
// and nothing is kept up to date between scrapes but the KPI book.
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "gateway/ball/plays.h"
#include "gateway/http/loop_calls.h"
#include "gateway/http/server.h"
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

// The last page, served again to scrapes within fresh_us of its rendering:
// a flood of requests costs the loop one render per fresh_us, not one per
// request, and concurrent scrapes wait for one render instead of queueing several.
class PageCache {
 public:
  explicit PageCache(std::int64_t fresh_us) : fresh_us_(fresh_us) {}
  // From any thread (now_us monotonic): the fresh page, else render()'s, kept when it gave one.
  std::optional<std::string> get(std::int64_t now_us, const std::function<std::optional<std::string>()>& render) {
    std::lock_guard lock(mu_);
    if (page_ && now_us - at_us_ < fresh_us_) return page_;
    if (auto fresh = render()) {
      page_ = std::move(fresh);
      at_us_ = now_us;
      return page_;
    }
    return std::nullopt;
  }

 private:
  std::mutex mu_;
  std::optional<std::string> page_;
  std::int64_t at_us_ = 0;
  const std::int64_t fresh_us_;
};

// The process's CPU time (user + system, seconds) and resident memory (bytes), from /proc/self.
double process_cpu_seconds();
double process_resident_bytes();

// The /metrics route of [metrics] listen: the page asked of the loop
// (calls), which renders it, at most once per the cache's period.
HttpServer::Route metrics_route(PageCache& cache, LoopCalls& calls, std::function<std::string()> render);

}  // namespace kairos::gw

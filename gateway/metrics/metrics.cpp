#include "gateway/metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "common/core/frame.h"
#include "common/io/clock.h"
#include "common/io/log.h"

namespace kairos::gw {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

struct Metrics::Families {
  explicit Families(prometheus::Registry& r)
      : accepted(prometheus::BuildCounter()
                     .Name("kairos_frames_accepted_total")
                     .Help("Node frames verified and applied")
                     .Register(r)),
        dropped(prometheus::BuildCounter()
                    .Name("kairos_frames_dropped_total")
                    .Help("Frames dropped, by reason (docs/PROTOCOL.md, Validation and drop reasons)")
                    .Register(r)),
        nodes(prometheus::BuildGauge().Name("kairos_nodes").Help("Known nodes by state (OFFLINE: not online)").Register(r)),
        classes(prometheus::BuildGauge().Name("kairos_nodes_by_class").Help("Known nodes by device class").Register(r)),
        impedance(prometheus::BuildHistogram()
                      .Name("kairos_node_impedance_score")
                      .Help("Impedance scores of the online nodes with clock samples, as of the scrape (not cumulative)")
                      .Register(r)),
        offset(prometheus::BuildHistogram()
                   .Name("kairos_node_clock_offset_seconds")
                   .Help("Clock offsets (node - gateway) of the online nodes with clock samples, as of the scrape "
                         "(not cumulative)")
                   .Register(r)),
        schedule_targets(prometheus::BuildCounter()
                             .Name("kairos_schedule_targets_total")
                             .Help("Targets of the schedules that ended")
                             .Register(r)),
        schedule_hits(prometheus::BuildCounter()
                          .Name("kairos_schedule_hits_total")
                          .Help("Scheduled targets that executed within the hit window of T")
                          .Register(r)),
        schedule_hit_rate(prometheus::BuildGauge()
                              .Name("kairos_schedule_last_hit_ratio")
                              .Help("The last schedule's hits over its targets")
                              .Register(r)),
        schedule_spread(prometheus::BuildGauge()
                            .Name("kairos_schedule_last_spread_seconds")
                            .Help("The last schedule's execution spread around T: p50, p95 and max (stat)")
                            .Register(r)),
        jobs(prometheus::BuildGauge().Name("kairos_jobs").Help("Jobs queued and running now").Register(r)),
        jobs_finished(prometheus::BuildCounter()
                          .Name("kairos_jobs_finished_total")
                          .Help("Jobs finished since the gateway started, by status")
                          .Register(r)),
        breakers(prometheus::BuildGauge().Name("kairos_breakers").Help("Circuit breakers by scope and state").Register(r)),
        mode(prometheus::BuildGauge().Name("kairos_mesh_mode").Help("1 for the mesh's current mode, 0 for the others").Register(r)),
        mesh(prometheus::BuildGauge().Name("kairos_mesh").Help("Global phase (re, im), coherence, agreement and the unified flag (figure)").Register(r)),
        online(prometheus::BuildGauge().Name("kairos_mesh_nodes_online").Help("Nodes online now").Register(r)),
        conflicts(prometheus::BuildCounter()
                      .Name("kairos_conflicts_total")
                      .Help("Entries of the conflict log, by type and priority")
                      .Register(r)),
        plays(prometheus::BuildGauge().Name("kairos_ball_plays").Help("Ball plays the gateway holds").Register(r)),
        cpu(prometheus::BuildCounter().Name("process_cpu_seconds_total").Help("CPU time of the gateway process, user and system").Register(r)),
        rss(prometheus::BuildGauge().Name("process_resident_memory_bytes").Help("Resident memory of the gateway process").Register(r)),
        kpi(prometheus::BuildGauge().Name("kairos_kpi").Help("The seven KPIs of the mesh (docs/METRICS.md), by name").Register(r)),
        operations(prometheus::BuildCounter()
                       .Name("kairos_operations_total")
                       .Help("Coordination operations that ended (schedules, broadcasts, freezes, thaws, jobs), by outcome")
                       .Register(r)) {}

  Family<Counter>& accepted;
  Family<Counter>& dropped;
  Family<Gauge>& nodes;
  Family<Gauge>& classes;
  Family<Histogram>& impedance;
  Family<Histogram>& offset;
  Family<Counter>& schedule_targets;
  Family<Counter>& schedule_hits;
  Family<Gauge>& schedule_hit_rate;
  Family<Gauge>& schedule_spread;
  Family<Gauge>& jobs;
  Family<Counter>& jobs_finished;
  Family<Gauge>& breakers;
  Family<Gauge>& mode;
  Family<Gauge>& mesh;
  Family<Gauge>& online;
  Family<Counter>& conflicts;
  Family<Gauge>& plays;
  Family<Counter>& cpu;
  Family<Gauge>& rss;
  Family<Gauge>& kpi;
  Family<Counter>& operations;
  Histogram* impedance_now = nullptr;
  Histogram* offset_now = nullptr;
};

namespace {

// A counter brought up to a total kept elsewhere (counters only rise).
void total(Family<Counter>& family, const prometheus::Labels& labels, double value) {
  auto& c = family.Add(labels);
  if (value > c.Value()) c.Increment(value - c.Value());
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()), f_(std::make_unique<Families>(*registry_)) {}

Metrics::~Metrics() = default;

std::string Metrics::render(const MetricsParts& p, std::int64_t now_us) {
  Families& f = *f_;
  const StatusParts& s = p.status;
  total(f.accepted, {}, static_cast<double>(s.ingest.accepted()));
  const DropCounters& drops = s.ingest.drops();
  for (int i = 0; i < static_cast<int>(DropReason::count_); ++i) {
    auto reason = static_cast<DropReason>(i);
    total(f.dropped, {{"reason", std::string(to_string(reason))}}, static_cast<double>(drops[reason]));
  }

  // One walk of the nodes: states, classes, and the two distributions as of now.
  std::uint64_t by_status[7] = {}, by_class[7] = {};
  if (f.impedance_now) f.impedance.Remove(f.impedance_now);
  if (f.offset_now) f.offset.Remove(f.offset_now);
  f.impedance_now = &f.impedance.Add({}, Histogram::BucketBoundaries{5, 10, 20, 50, 100, 200, 500, 800, 1000});
  f.offset_now = &f.offset.Add(
      {}, Histogram::BucketBoundaries{-10, -1, -0.1, -0.01, -0.001, 0.001, 0.01, 0.1, 1, 10});
  for (const auto& [id, n] : s.registry.nodes()) {
    const int st = n.online ? static_cast<int>(n.status) : static_cast<int>(kairos_v1_NodeStatus_OFFLINE);
    if (st >= 0 && st < 7) ++by_status[st];
    const int cl = static_cast<int>(n.device_class);
    if (cl >= 0 && cl < 7) ++by_class[cl];
    if (n.online && n.clock.count() > 0) {
      f.impedance_now->Observe(n.impedance(now_us).score);
      f.offset_now->Observe(n.clock.offset_us() / 1e6);
    }
  }
  for (int st = 1; st < 7; ++st)
    f.nodes.Add({{"state", std::string(kairos::to_string(static_cast<kairos_v1_NodeStatus>(st)))}})
        .Set(static_cast<double>(by_status[st]));
  for (int cl = 1; cl < 7; ++cl)
    f.classes.Add({{"class", std::string(class_letter(static_cast<kairos_v1_DeviceClass>(cl)))}})
        .Set(static_cast<double>(by_class[cl]));
  f.online.Add({}).Set(static_cast<double>(s.registry.online_count()));

  const KpiFigures& k = p.kpi;
  total(f.schedule_targets, {}, static_cast<double>(k.scheduled_targets));
  total(f.schedule_hits, {}, static_cast<double>(k.scheduled_hits));
  f.schedule_hit_rate.Add({}).Set(k.last_hit_rate);
  f.schedule_spread.Add({{"stat", "p50"}}).Set(k.last_spread_p50_s);
  f.schedule_spread.Add({{"stat", "p95"}}).Set(k.last_spread_p95_s);
  f.schedule_spread.Add({{"stat", "max"}}).Set(k.last_spread_max_s);

  const JobCounts& jobs = s.jobs.counts();
  f.jobs.Add({{"status", "queued"}}).Set(static_cast<double>(jobs.queued));
  f.jobs.Add({{"status", "running"}}).Set(static_cast<double>(jobs.running));
  total(f.jobs_finished, {{"status", "done"}}, static_cast<double>(jobs.done));
  total(f.jobs_finished, {{"status", "failed"}}, static_cast<double>(jobs.failed));

  std::map<std::pair<std::string, std::string>, int> breakers;
  for (const char* scope : {"cluster", "sector", "global"})
    for (const char* state : {"CLOSED", "OPEN", "HALF_OPEN"}) breakers[{scope, state}] = 0;
  for (const auto& v : s.escalation.breakers().view(now_us)) ++breakers[{v.scope, to_string(v.state)}];
  for (const auto& [key, count] : breakers)
    f.breakers.Add({{"scope", key.first}, {"state", key.second}}).Set(count);

  for (int m = kairos_v1_MeshMode_FULL; m <= kairos_v1_MeshMode_EMERGENCY; ++m)
    f.mode.Add({{"mode", std::string(kairos::to_string(static_cast<kairos_v1_MeshMode>(m)))}})
        .Set(m == static_cast<int>(p.mesh.mode) ? 1 : 0);
  f.mesh.Add({{"figure", "phase_re"}}).Set(p.mesh.z.re);
  f.mesh.Add({{"figure", "phase_im"}}).Set(p.mesh.z.im);
  f.mesh.Add({{"figure", "coherence"}}).Set(p.mesh.coherence);
  f.mesh.Add({{"figure", "agreement"}}).Set(p.mesh.agreement);
  f.mesh.Add({{"figure", "unified"}}).Set(p.mesh.unified ? 1 : 0);

  for (const auto& c : p.store.conflict_counts())
    total(f.conflicts, {{"type", c.type}, {"priority", std::to_string(c.priority)}}, static_cast<double>(c.count));
  f.plays.Add({}).Set(static_cast<double>(p.ball_plays));
  total(f.cpu, {}, process_cpu_seconds());
  f.rss.Add({}).Set(process_resident_bytes());

  f.kpi.Add({{"kpi", "coordination_success_ratio"}}).Set(k.coordination_success);
  f.kpi.Add({{"kpi", "arrival_hit_ratio"}}).Set(k.hit_rate);
  f.kpi.Add({{"kpi", "prediction_accuracy_ratio"}}).Set(k.prediction_accuracy);
  f.kpi.Add({{"kpi", "conflicts_per_1000_operations"}}).Set(k.conflicts_per_1000);
  f.kpi.Add({{"kpi", "mesh_availability_ratio"}}).Set(k.availability);
  f.kpi.Add({{"kpi", "cascade_p95_seconds"}}).Set(k.cascade_p95_s);
  f.kpi.Add({{"kpi", "recovery_mean_seconds"}}).Set(k.recovery_mean_s);
  total(f.operations, {{"outcome", "quorum"}}, static_cast<double>(k.operations_ok));
  total(f.operations, {{"outcome", "short"}}, static_cast<double>(k.operations - k.operations_ok));

  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

double process_cpu_seconds() {
  std::ifstream in("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string skip;
  unsigned long long utime = 0, stime = 0;
  // Fields 3..13 precede utime (14) and stime (15).
  for (int i = 3; i <= 13; ++i) fields >> skip;
  fields >> utime >> stime;
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double process_resident_bytes() {
  std::ifstream in("/proc/self/statm");
  unsigned long long size = 0, resident = 0;
  in >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

HttpServer::Route metrics_route(PageCache& cache, LoopCalls& calls, std::function<std::string()> render) {
  return {[&cache, &calls, render](const HttpRequest&) {
    // A scrape waits for the loop's next turn, at most 5 s (a loop that long busy is news in itself).
    auto text = cache.get(mono_us(), [&] { return calls.call(render, std::chrono::seconds(5)); });
    if (!text) return HttpResponse{503, "text/plain; charset=utf-8", "the gateway's loop did not answer in 5 s\n", {}};
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", std::move(*text), {}};
  }};
}

}  // namespace kairos::gw

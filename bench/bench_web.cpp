// The live page's snapshot (gateway/web/snapshot): what the loop spends
// rendering it for N nodes, beside the bare walk of the registry reading
// the same fields (the reference). The loop renders it at most every 250 ms
// while a page is open (40 us per node beyond 6,250 nodes): its share of a
// core is this time over that period.
#include <benchmark/benchmark.h>

#include <cmath>

#include "gateway/web/snapshot.h"

using namespace kairos;
using namespace kairos::gw;

namespace {

Registry& mesh_of(std::size_t n) {
  static std::map<std::size_t, Registry> meshes;
  auto [it, fresh] = meshes.try_emplace(n);
  if (!fresh) return it->second;
  kairos_v1_NodeBirth b = kairos_v1_NodeBirth_init_zero;
  b.heartbeat_period_ms = 5000;
  for (std::size_t i = 0; i < n; ++i) {
    b.device_class = static_cast<kairos_v1_DeviceClass>(1 + i % 5);
    auto& node = it->second.on_birth("node-" + std::to_string(i), "c" + std::to_string(i % 40), 1, b, 0, 5'000'000);
    kairos_v1_PhaseReport p = kairos_v1_PhaseReport_init_zero;
    p.valid = true;
    p.has_node_z = true;
    p.node_z.re = static_cast<float>(std::cos(static_cast<double>(i)));
    p.node_z.im = static_cast<float>(std::sin(static_cast<double>(i)));
    p.node_c = 0.9f;
    it->second.on_phase(node, p, 1'000'000);
  }
  return it->second;
}

void BM_WebSnapshot(benchmark::State& state) {
  Registry& r = mesh_of(static_cast<std::size_t>(state.range(0)));
  const std::string mesh = "bench", gw = "gw1";
  const MeshFigures figures;
  const std::optional<ScheduleResult> none;
  std::deque<FigurePoint> history;
  for (int i = 0; i < 300; ++i) history.push_back({1'700'000'000'000'000LL + i * 1'000'000LL, 0.9, 0.8});
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto text = web_snapshot({mesh, gw, r, figures, true, kairos_v1_MeshMode_FULL, {}, {}, none, none, {}, history,
                              true, 2'000'000, 1'700'000'000'000'000LL});
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["us_per_node"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(state.range(0)),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_WebSnapshot)->Arg(1000)->Arg(30000)->Unit(benchmark::kMillisecond);

// The reference: the same fields read from every node, nothing written.
void BM_RegistryWalk(benchmark::State& state) {
  Registry& r = mesh_of(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    double sum = 0;
    for (const auto& [id, n] : r.nodes())
      sum += std::arg(n.z) + n.impedance(2'000'000).score + n.clock.offset_us() + n.reliability.value() +
             static_cast<double>(id.size() + n.cluster.size());
    benchmark::DoNotOptimize(sum);
  }
}
BENCHMARK(BM_RegistryWalk)->Arg(1000)->Arg(30000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

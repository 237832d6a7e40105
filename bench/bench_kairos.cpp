// KAIROS update cost (docs/DESIGN.md 3.4 / 8: <= 200 ns per sample per scale).
// Reference in the same run: a plain exponential moving average per scale,
// the cheapest thing a node could do with a sample.
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "common/core/kairos.h"

using namespace kairos;

static void BM_KairosUpdate(benchmark::State& state) {
  const auto k = static_cast<std::size_t>(state.range(0));
  std::vector<double> taus(k);
  log_spaced_taus(0.25, 2.0, k, taus);
  KairosFilter f(taus);
  double t = 0;
  std::uint32_t x = 1;
  for (auto _ : state) {
    x = x * 1664525u + 1013904223u;
    double s = 0.5 + 0.4 * std::sin(t * 6.283185307179586) + (x >> 8) * 1e-9;
    benchmark::DoNotOptimize(f.update({s, 0.0}, t));
    t += 0.01;
  }
  state.counters["ns_per_scale"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(k),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_KairosUpdate)->Arg(1)->Arg(4)->Arg(8);

static void BM_PlainEmaReference(benchmark::State& state) {
  const auto k = static_cast<std::size_t>(state.range(0));
  std::vector<double> z(k, 0.0), tau(k);
  log_spaced_taus(0.25, 2.0, k, tau);
  double t = 0;
  for (auto _ : state) {
    double s = 0.5 + 0.4 * std::sin(t * 6.283185307179586);
    for (std::size_t i = 0; i < k; ++i) z[i] += (1.0 - std::exp(-0.01 / tau[i])) * (s - z[i]);
    benchmark::DoNotOptimize(z.data());
    t += 0.01;
  }
  state.counters["ns_per_scale"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * static_cast<double>(k),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_PlainEmaReference)->Arg(1)->Arg(4)->Arg(8);

BENCHMARK_MAIN();

// Job routing at the gateway (docs/DESIGN.md 5.5): what JobBook costs per job, from
// submit through dispatch and result, over N candidate nodes. Reference in
// the same run: a naive router that sends each job to a random candidate
// (no ranking, no load accounting). docs/BENCHMARKS.md.
#include <benchmark/benchmark.h>

#include <random>

#include "gateway/jobs/jobs.h"

using namespace kairos;
using namespace kairos::gw;

namespace {

std::vector<JobCandidate> make_candidates(int n) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> imp(5, 500), rel(0.5, 1.0);
  std::vector<JobCandidate> c;
  for (int i = 0; i < n; ++i) c.push_back({"node-" + std::to_string(i), imp(rng), rel(rng)});
  return c;
}

void BM_JobBook(benchmark::State& state) {
  const auto cands = make_candidates(static_cast<int>(state.range(0)));
  std::string last_node;
  std::uint32_t last_attempt = 0;
  JobHooks hooks;
  hooks.candidates = [&](const JobSpec&, bool) { return cands; };
  hooks.send = [&](const std::string& node, const Job&, std::uint32_t attempt) {
    last_node = node;
    last_attempt = attempt;
    return true;
  };
  JobBook book(hooks);
  std::uint64_t id = 0;
  std::int64_t now = 1'000'000;
  kairos_v1_JobResult r = kairos_v1_JobResult_init_zero;
  r.status = kairos_v1_JobStatus_JOB_OK;
  r.output.size = 8;
  for (auto _ : state) {
    JobSpec spec;
    spec.handler = "hash";
    book.submit(++id, std::move(spec), now, now);
    book.service(now, now);
    r.job_id = id;
    r.attempt = last_attempt;
    book.on_result(last_node, r, now, now);
    if (id % 10'000 == 0) book.trim(1000);
    now += 10;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JobBook)->Arg(10)->Arg(100)->Arg(1000);

// The reference: pick a random candidate from the same list and "send".
void BM_RandomRouter(benchmark::State& state) {
  const auto cands = make_candidates(static_cast<int>(state.range(0)));
  std::mt19937_64 rng(7);
  std::size_t sent = 0;
  for (auto _ : state) {
    auto copy = cands;  // the gateway builds the candidate list per dispatch either way
    const auto& pick = copy[rng() % copy.size()];
    sent += pick.id.size();
    benchmark::DoNotOptimize(sent);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RandomRouter)->Arg(10)->Arg(100)->Arg(1000);

}  // namespace

BENCHMARK_MAIN();

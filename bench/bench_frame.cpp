// What the gateway does with every frame before it looks at it
// (docs/DESIGN.md 4): open() checks the MAC, decodes the envelope and
// validates it (ranges, names, every string UTF-8). The reference is the
// MAC alone, the crypto any receiver must do; validate() alone shows what
// the checks add. docs/BENCHMARKS.md.
#include <benchmark/benchmark.h>

#include "common/core/frame.h"

using namespace kairos;

namespace {

const std::string kTopic = "kairos/v1/farm/c1/n1/birth";

Key bench_key() {
  Key k{};
  k.bytes.fill(7);
  return k;
}

// A birth: the frame with the most strings (board, firmware, 16 capabilities).
Bytes birth_frame() {
  auto env = make_envelope("n1", 1'700'000'000'000'000, 1, 1'700'000'000'000'000);
  env->which_message = kairos_v1_Envelope_birth_tag;
  auto& b = env->message.birth;
  set_string(b.cluster, "c1");
  set_string(b.board, "pi-zero-w");
  set_string(b.firmware_version, "0.1.0");
  b.capabilities_count = 16;
  for (int i = 0; i < 16; ++i) set_string(b.capabilities[i], "job:handler-" + std::to_string(i));
  b.device_class = kairos_v1_DeviceClass_CLASS_A;
  b.heartbeat_period_ms = 5000;
  return seal(kTopic, *env, bench_key());
}

// A phase report with two inputs of three scales: the most frequent frame.
const std::string kPhaseTopic = "kairos/v1/farm/c1/n1/phase";
Bytes phase_frame() {
  auto env = make_envelope("n1", 1'700'000'000'000'000, 2, 1'700'000'000'000'000);
  env->which_message = kairos_v1_Envelope_phase_tag;
  auto& p = env->message.phase;
  p.inputs_count = 2;
  for (int i = 0; i < 2; ++i) {
    set_string(p.inputs[i].input, i ? "mic" : "temperature");
    p.inputs[i].scales_count = 3;
    for (int k = 0; k < 3; ++k) p.inputs[i].scales[k].c = 0.5f;
  }
  p.has_node_z = true;
  p.node_z.re = 1;
  p.valid = true;
  return seal(kPhaseTopic, *env, bench_key());
}

void open_loop(benchmark::State& state, const std::string& topic, const Bytes& frame) {
  const auto key = bench_key();
  for (auto _ : state) {
    auto o = open(topic, frame, key);
    benchmark::DoNotOptimize(o.env);
  }
}

void BM_OpenPhase(benchmark::State& state) { open_loop(state, kPhaseTopic, phase_frame()); }
BENCHMARK(BM_OpenPhase);

void BM_ValidatePhase(benchmark::State& state) {
  const auto o = open(kPhaseTopic, phase_frame(), bench_key());
  for (auto _ : state) benchmark::DoNotOptimize(validate(*o.env));
}
BENCHMARK(BM_ValidatePhase);

void BM_OpenBirth(benchmark::State& state) { open_loop(state, kTopic, birth_frame()); }
BENCHMARK(BM_OpenBirth);

void BM_MacOnlyReference(benchmark::State& state) {
  const auto frame = birth_frame();
  const auto key = bench_key();
  const std::string topic = kTopic + '\0';
  for (auto _ : state) {
    auto d = hmac_sha256(key, {ByteView(reinterpret_cast<const std::uint8_t*>(topic.data()), topic.size()), frame});
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_MacOnlyReference);

void BM_ValidateBirth(benchmark::State& state) {
  const auto o = open(kTopic, birth_frame(), bench_key());
  for (auto _ : state) benchmark::DoNotOptimize(validate(*o.env));
}
BENCHMARK(BM_ValidateBirth);

}  // namespace

BENCHMARK_MAIN();

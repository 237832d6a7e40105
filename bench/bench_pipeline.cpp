// Sensor to speaker on one node (docs/DESIGN.md 3.5 / 8: <= 20 ms): the work of one
// loop turn from the sample being read to its audio being written, with a
// 10 ms loop at 48 kHz (480 frames). The sink is a WAV file on /dev/null, so
// the figure is the node's own latency; an ALSA device adds its buffer.
#include <benchmark/benchmark.h>

#include <vector>

#include "common/core/kairos.h"
#include "firmware/drivers/synthetic.h"
#include "firmware/outputs/output.h"

using namespace kairos;
using namespace kairos::node;

static void BM_SensorToSpeaker(benchmark::State& state) {
  SyntheticConfig sc;
  sc.waveform = "sine";
  SyntheticInput in(sc);
  double taus[] = {0.1, 0.46, 2.15, 10.0};
  KairosFilter f(taus);
  OutputConfig oc;
  oc.name = "tone";
  oc.kind = "speaker";
  oc.wav = "/dev/null";
  oc.rate_hz = 48000;
  oc.channels = default_channels("speaker");
  oc.audio_thread = false;  // the render happens in update(): its cost is in the figure
  auto speaker = make_output(oc, nullptr);
  speaker->setup();
  std::int64_t now = 0;
  speaker->update(now, nullptr);
  for (auto _ : state) {
    now += 10'000;  // one 10 ms loop turn
    auto r = in.read(now);
    f.update({r.reading.x, 0.0}, static_cast<double>(now) / 1e6);
    SourceValue v{f.scale(0).z.real(), f.scale(0).z.imag(), f.scale(0).c};
    speaker->update(now, &v);
  }
}
BENCHMARK(BM_SensorToSpeaker)->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();

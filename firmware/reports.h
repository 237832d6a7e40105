#pragma once
// Report contents shared by kairos-node and kairos-sim (SPEC 4).
#include "common/core/frame.h"
#include "common/core/kairos.h"

namespace kairos::node {

// One input's phase report: z, c and R per scale (none before the first sample).
void fill_scales(kairos_v1_InputPhase& ip, const KairosFilter& filter);

}  // namespace kairos::node

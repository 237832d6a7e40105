#pragma once
// kairosctl sectors: a root gateway's sectors as it last heard them (docs/DESIGN.md 5.9).
#include <cstdint>
#include <vector>

#include "kairos.pb.h"

namespace kairos::ctl {

int print_sectors(const std::vector<kairos_v1_SectorInfo>& sectors, std::uint32_t stale, bool json);

}  // namespace kairos::ctl

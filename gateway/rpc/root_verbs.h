#pragma once
// A root gateway's rows of the verb table (docs/DESIGN.md 5.9): nodes,
// schedule and delegate go to its sectors; conflicts and jobs list what it
// has caught up; breakers are its sector breakers and the mesh breaker.
#include "gateway/hierarchy/catchup.h"
#include "gateway/hierarchy/root_desk.h"
#include "gateway/hierarchy/sectors.h"
#include "gateway/rpc/control.h"

namespace kairos::gw {

void root_rows(Control& control, RootDesk& desk, CatchUp& catchup, SectorBook& sectors);

}  // namespace kairos::gw

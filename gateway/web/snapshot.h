#pragma once
// The live page's picture of the mesh (docs/WEB.md): one JSON document the
// loop renders at most every few hundred milliseconds while a page is
// open, and the WebSocket hands to every page. Pure: everything it shows
// comes in as arguments.
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "common/core/meshsync.h"
#include "gateway/ball/plays.h"
#include "gateway/escalation/breakers.h"
#include "gateway/registry/registry.h"
#include "gateway/schedule/scheduler.h"
#include "gateway/store/store.h"

namespace kairos::gw {

// The mesh's coherence and agreement at one instant (the page's plot).
struct FigurePoint {
  std::int64_t wall_us = 0;
  double c = 0, a = 0;
};

struct WebView {
  const std::string& mesh;
  const std::string& gateway;
  const Registry& registry;
  const MeshFigures& figures;
  bool unified;
  kairos_v1_MeshMode mode;
  std::vector<BreakerView> breakers;
  std::vector<StoredConflict> conflicts;  // newest first
  // The last schedule sent with compensation, and the last sent naive (either may be absent).
  const std::optional<ScheduleResult>& compensated;
  const std::optional<ScheduleResult>& naive;
  std::vector<Plays::View> plays;
  const std::deque<FigurePoint>& history;  // oldest first
  bool signed_in_possible;  // the page may offer sign-in (operator keys exist)
  std::int64_t now_us;      // monotonic
  std::int64_t wall_us;
};

// At most this many targets' errors per schedule, and lineage entries per play.
constexpr std::size_t kWebMaxErrors = 30'000;
constexpr std::size_t kWebMaxLineage = 12;

std::string web_snapshot(const WebView& v);

}  // namespace kairos::gw

#pragma once
// The conversational console (docs/CONSOLE.md): plain-English questions and
// orders mapped to kairosctl's verbs by a fixed grammar (no language
// model): "what's happening in sector 7?" is `nodes --cluster 7`, "route
// around pi-3" is `quarantine pi-3`, "freeze the east sector at 14:00" is
// `schedule freeze --at ... --targets cluster:east`. Pure: the clock and the
// time zone come in as arguments.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kairos::ctl {

struct AskPlan {
  std::vector<std::string> run;          // the verb and its arguments, as typed after kairosctl
  bool writes = false;                   // it changes the mesh: confirmed first
  std::string explain;                   // what was understood
  std::vector<std::string> suggestions;  // not understood: the closest verbs, as examples
  bool understood() const { return !run.empty(); }
};

// now_s: the time now (epoch seconds); utc_offset_s: the local time zone's
// offset from UTC, for times of day ("at 14:00" is the next 14:00 there).
AskPlan plan_intent(std::string_view text, std::int64_t now_s, std::int64_t utc_offset_s);

// The plan as one line of shell ("kairosctl freeze cluster:east"), quoted where needed.
std::string shell_line(const std::vector<std::string>& run);

}  // namespace kairos::ctl

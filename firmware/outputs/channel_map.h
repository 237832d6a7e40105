#pragma once
// How an output follows its source (docs/DESIGN.md 3.5): pure mappings, parsed
// with the node's config (kairos_node_config) and applied by the outputs.
#include <map>
#include <string>

namespace kairos::node {

// What a source says now: phase (re, im) and coherence.
struct SourceValue {
  double re = 0.0;
  double im = 0.0;
  double c = 0.0;
};

// One output channel from one field of the source: clamp((x - in_lo) /
// (in_hi - in_lo)) mapped onto [out_lo, out_hi].
struct ChannelMap {
  enum class From { re, im, c };
  From from = From::re;
  double in_lo = 0.0, in_hi = 1.0;
  double out_lo = 0.0, out_hi = 1.0;
  double apply(const SourceValue& v) const;
};

// The default channel maps of each kind (docs/DESIGN.md 3.5).
std::map<std::string, ChannelMap> default_channels(const std::string& kind);

}  // namespace kairos::node

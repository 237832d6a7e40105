#include "common/core/meshsync.h"

#include <algorithm>
#include <cmath>

namespace kairos {

double sync_weight(double class_weight, double age_s, double stale_after_s) {
  if (class_weight <= 0 || stale_after_s <= 0) return 0.0;
  return class_weight * std::exp(-std::max(0.0, age_s) / stale_after_s);
}

MeshFigures mesh_figures(std::span<const NodePhase> nodes) {
  MeshFigures f;
  double total = 0.0;
  std::complex<double> zsum{0.0, 0.0};
  double csum = 0.0;
  for (const auto& n : nodes) {
    if (!(n.weight > 0)) continue;
    total += n.weight;
    zsum += n.weight * n.z;
    csum += n.weight * n.c;
    ++f.contributors;
  }
  if (total <= 0) return f;
  f.z = zsum / total;
  f.coherence = csum / total;
  double spread = 0.0;
  for (const auto& n : nodes) {
    if (!(n.weight > 0)) continue;
    spread += n.weight * std::norm(n.z - f.z);
  }
  f.agreement = std::clamp(1.0 - 2.0 * std::sqrt(spread / total), 0.0, 1.0);
  return f;
}

bool Hysteresis::update(double value) {
  bool next = on_ ? value >= leave_ : value >= enter_;
  bool changed = next != on_;
  on_ = next;
  return changed;
}

}  // namespace kairos

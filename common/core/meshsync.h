#pragma once
#include <complex>
#include <cstddef>
#include <span>

namespace kairos {

// One node's contribution to the mesh sync of docs/DESIGN.md 5.3.
struct NodePhase {
  std::complex<double> z;
  double c = 0.0;
  double weight = 0.0;
};

struct MeshFigures {
  std::complex<double> z{0.0, 0.0};  // global phase Z
  double coherence = 0.0;            // C
  double agreement = 0.0;            // A
  std::size_t contributors = 0;      // nodes with weight > 0
};

// w_i = class_weight * exp(-age_i / stale_after): older phases count less.
double sync_weight(double class_weight, double age_s, double stale_after_s);

// Z, C and A over the given nodes; all zero when no weight.
MeshFigures mesh_figures(std::span<const NodePhase> nodes);

// A flag that turns on at >= enter and off below leave (enter >= leave).
class Hysteresis {
 public:
  Hysteresis(double enter, double leave) : enter_(enter), leave_(leave) {}
  // Returns true when the flag changed.
  bool update(double value);
  bool on() const { return on_; }

 private:
  double enter_;
  double leave_;
  bool on_ = false;
};

}  // namespace kairos

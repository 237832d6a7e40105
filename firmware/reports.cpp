#include "firmware/reports.h"

namespace kairos::node {

void fill_scales(kairos_v1_InputPhase& ip, const KairosFilter& filter) {
  if (!filter.has_sample()) return;
  for (std::size_t k = 0; k < filter.scales() && ip.scales_count < 8; ++k) {
    const auto& s = filter.scale(k);
    auto& sp = ip.scales[ip.scales_count++];
    sp.has_z = true;
    sp.z.re = static_cast<float>(s.z.real());
    sp.z.im = static_cast<float>(s.z.imag());
    sp.c = static_cast<float>(s.c);
    sp.r = static_cast<float>(filter.rhythm(k).r());
  }
}

}  // namespace kairos::node

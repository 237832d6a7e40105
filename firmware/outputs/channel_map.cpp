#include "firmware/outputs/channel_map.h"

#include <algorithm>

namespace kairos::node {

double ChannelMap::apply(const SourceValue& v) const {
  double x = from == From::re ? v.re : from == From::im ? v.im : v.c;
  double u = in_hi > in_lo ? std::clamp((x - in_lo) / (in_hi - in_lo), 0.0, 1.0) : 0.0;
  return out_lo + u * (out_hi - out_lo);
}

std::map<std::string, ChannelMap> default_channels(const std::string& kind) {
  using F = ChannelMap::From;
  if (kind == "speaker") return {{"frequency", {F::re, 0, 1, 440, 880}}, {"volume", {F::c, 0, 1, 0, 1}}};
  if (kind == "motor") return {{"velocity", {F::re, 0, 1, -1, 1}}, {"rotation", {F::im, 0, 1, -1, 1}}};
  if (kind == "led") return {{"hue", {F::re, 0, 1, 0, 360}}, {"brightness", {F::c, 0, 1, 0, 1}}};
  return {};
}

}  // namespace kairos::node

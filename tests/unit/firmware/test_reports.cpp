// The node's phase report (docs/PROTOCOL.md): each input's scales and, once
// it has one, its latest sample.
#include <gtest/gtest.h>

#include "firmware/reports.h"

namespace kairos::node {
namespace {

TEST(Birth, NamesTheNodesInputsAndOutputs) {
  BirthInfo info;
  info.cluster = "kitchen";
  info.inputs = {{"temp", "synthetic", 100'000}};
  info.outputs = {{"fan", "text", 0}, {"speaker", "speaker", 0}};
  auto env = birth_envelope(info);
  const auto& b = env->message.birth;
  ASSERT_EQ(b.inputs_count, 1u);
  ASSERT_EQ(b.outputs_count, 2u);
  EXPECT_STREQ(b.outputs[0].name, "fan");
  EXPECT_STREQ(b.outputs[1].kind, "speaker");
  // More than the frame holds: cut, not overrun.
  info.outputs.assign(12, {"o", "text", 0});
  EXPECT_EQ(birth_envelope(info)->message.birth.outputs_count, 8u);
}

TEST(PhaseReport, AnInputCarriesItsLatestSampleOnceItHasOne) {
  const double taus[] = {1.0, 10.0};
  KairosFilter filter(taus);
  double value = 0;
  std::int64_t at_us = -1;
  const InputFilter inputs[] = {{"temp", filter, &value, &at_us}};
  auto before = phase_envelope(inputs, 0, 0);
  ASSERT_EQ(before->message.phase.inputs_count, 1u);
  EXPECT_FALSE(before->message.phase.inputs[0].has_value);

  filter.update({0.5, 0.2}, 1.0);
  value = 21.75;
  at_us = 1'000'000;
  auto after = phase_envelope(inputs, 0, 0);
  const auto& in = after->message.phase.inputs[0];
  EXPECT_STREQ(in.input, "temp");
  ASSERT_TRUE(in.has_value);
  EXPECT_DOUBLE_EQ(in.value, 21.75);
  EXPECT_EQ(in.scales_count, 2u);
  // An input whose value is not reported (a simulator) has none.
  const InputFilter bare[] = {{"main", filter}};
  EXPECT_FALSE(phase_envelope(bare, 0, 0)->message.phase.inputs[0].has_value);
}

}  // namespace
}  // namespace kairos::node

// What the bridges show of a node (gateway/bridges/node_facts): its inputs
// and outputs from its birth, each input's latest reading from its reports.
#include <gtest/gtest.h>

#include <limits>
#include <optional>

#include "common/core/frame.h"
#include "gateway/bridges/node_facts.h"

using namespace kairos;
using namespace kairos::gw;

namespace {

kairos_v1_NodeBirth birth(std::initializer_list<const char*> inputs, std::initializer_list<const char*> outputs,
                          std::uint32_t primary = 1) {
  kairos_v1_NodeBirth b = kairos_v1_NodeBirth_init_zero;
  for (const char* in : inputs) set_string(b.inputs[b.inputs_count++].name, in);
  for (const char* out : outputs) set_string(b.outputs[b.outputs_count++].name, out);
  set_string(b.board, "rpi4");
  set_string(b.firmware_version, "0.1.0");
  b.primary_scale = primary;
  return b;
}

kairos_v1_PhaseReport report(const char* input, float re, float im, float c, std::optional<double> value) {
  kairos_v1_PhaseReport p = kairos_v1_PhaseReport_init_zero;
  auto& in = p.inputs[p.inputs_count++];
  set_string(in.input, input);
  in.scales_count = 2;
  in.scales[0].z.re = 1;  // the fast scale: not the one shown
  in.scales[0].c = 0.1f;
  in.scales[1].z.re = re;
  in.scales[1].z.im = im;
  in.scales[1].c = c;
  in.has_value = value.has_value();
  in.value = value.value_or(0);
  return p;
}

}  // namespace

TEST(NodeFacts, ABirthDescribesAndAReportReadsOnThePrimaryScale) {
  NodeFactsBook book;
  bool changed = false;
  const std::uint32_t h = book.on_birth("n1", "c1", birth({"temp", "mic"}, {"fan"}), changed);
  EXPECT_TRUE(changed);
  EXPECT_NE(h, 0u);
  EXPECT_EQ(book.on_birth("n1", "c1", birth({"temp", "mic"}, {"fan"}), changed), h);  // the same record
  EXPECT_FALSE(changed);                                                               // and nothing new
  const NodeFacts* f = book.find("n1");
  ASSERT_EQ(f, book.at(h));
  EXPECT_EQ(f->outputs, std::vector<std::string>{"fan"});
  ASSERT_EQ(f->readings.size(), 2u);
  EXPECT_FALSE(f->readings[0].value);

  book.on_phase(h, report("temp", 0.0f, -0.5f, 0.8f, 21.5));
  const auto& r = book.at(h)->readings[0];
  EXPECT_DOUBLE_EQ(*r.value, 21.5);
  EXPECT_NEAR(*r.phase_deg, 270.0, 1e-4);  // atan2(-0.5, 0) in [0, 360)
  EXPECT_NEAR(*r.coherence, 0.8, 1e-6);
  EXPECT_FALSE(book.at(h)->readings[1].phase_deg);  // mic: not reported yet

  // A report the node's backlog replayed: read, not kept.
  auto late = book.readings_of(h, report("temp", 1.0f, 0.0f, 0.5f, 3.0));
  ASSERT_EQ(late.size(), 1u);
  EXPECT_DOUBLE_EQ(*late[0].value, 3.0);
  EXPECT_DOUBLE_EQ(*book.at(h)->readings[0].value, 21.5);

  // A new birth without mic, with a lamp: described again; temp's reading stays.
  book.on_birth("n1", "c1", birth({"temp"}, {"fan", "lamp"}), changed);
  EXPECT_TRUE(changed);
  ASSERT_EQ(book.at(h)->readings.size(), 1u);
  EXPECT_DOUBLE_EQ(*book.at(h)->readings[0].value, 21.5);

  // A report without a record, and a non-finite sample: nothing kept.
  book.on_phase(0, report("temp", 1, 0, 1, 1.0));
  book.on_phase(h, report("temp", 1, 0, 1, std::numeric_limits<double>::infinity()));
  EXPECT_FALSE(book.at(h)->readings[0].value);
  book.forget("n1");
  EXPECT_EQ(book.find("n1"), nullptr);
  EXPECT_EQ(book.at(h), nullptr);
  EXPECT_NE(book.on_birth("n1", "c1", birth({"temp"}, {}), changed), h);  // back: a handle of its own
}

TEST(NodeFacts, AQueueServesTheLongestWaitingFirstOnceEachAndSkipsTheForgotten) {
  NodeFactsBook book;
  bool changed = false;
  std::vector<std::uint32_t> h;
  for (const char* id : {"a", "b", "c"}) h.push_back(book.on_birth(id, "c1", birth({"x"}, {}), changed));
  HandleQueue q(1), other(2);
  q.add(*book.at(h[1]), h[1]);
  q.add(*book.at(h[0]), h[0]);
  q.add(*book.at(h[1]), h[1]);  // already queued: once
  q.add(*book.at(h[2]), h[2]);
  other.add(*book.at(h[0]), h[0]);  // another queue's bit: independent
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.pop(book)->id, "b");
  q.add(*book.at(h[1]), h[1]);  // back at the end
  book.forget("a");
  EXPECT_EQ(q.pop(book)->id, "c");  // a was forgotten: skipped
  EXPECT_EQ(q.pop(book)->id, "b");
  EXPECT_EQ(q.pop(book), nullptr);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_EQ(other.pop(book), nullptr);  // a's turn there is gone too
  q.add(*book.at(h[2]), h[2]);
  q.clear(book);
  EXPECT_EQ(book.at(h[2])->queued, 0);
  q.add(*book.at(h[2]), h[2]);  // queued again after a clear
  EXPECT_EQ(q.pop(book)->id, "c");
}

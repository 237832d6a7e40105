// kairos-node behaviour seen from outside, through a real broker.
#include <gtest/gtest.h>

#include <set>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

TEST(Node, RhythmCollapsesAreReportedAsEvents) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  // Scales 0.25, 0.5, 1 and 2 s, as in SPEC 3.4's examples.
  dir.write("boards/lab.toml", "[board]\narch = \"native\"\ndevice_class = \"E\"\ntau_base_s = 0.25\ntau_max_s = 2.0\n");
  mesh.set_boards_dir(dir.file("boards"));
  Client c(broker.uri());
  auto topic = node_topic(mesh.name(), "c1", "n1", TopicKind::event);
  c.subscribe(topic);
  mesh.start_node("n1", "c1", "waveform = \"sine\"\nperiod_s = 1.0\namplitude = 0.4\n", "board = \"lab\"");
  Key key = mesh.node_key("n1");
  std::set<std::string> collapsed;
  auto decode = [&] {
    collapsed.clear();
    for (const auto& m : c.seen()) {
      if (m.topic != topic) continue;
      auto opened = open(m.topic, m.payload, key);
      if (!opened || opened.env->which_message != kairos_v1_Envelope_event_tag) continue;
      const auto& e = opened.env->message.event;
      if (e.kind == kairos_v1_EventKind_COLLAPSE) collapsed.insert(e.source);
      if (e.kind == kairos_v1_EventKind_RELEASE) collapsed.erase(e.source);
    }
    return collapsed;
  };
  ASSERT_TRUE(c.wait_for([&](const auto&) { return decode().size() >= 2; }, 30s)) << mesh.node("n1").output();
  EXPECT_EQ(decode(), (std::set<std::string>{"main/2", "main/3"}));
}

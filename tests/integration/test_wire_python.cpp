// The wire format is readable by an independent implementation: Python's
// protobuf and hmac modules decode and verify a frame captured from a real node.
#include <gtest/gtest.h>

#include "common/core/topic.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

TEST(WireFormat, PythonDecodesACapturedBirth) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_node("n1", "c7", "waveform = \"sine\"\n", "capabilities = [\"audio\", \"read\"]");
  Client c(broker.uri());
  auto topic = node_topic(mesh.name(), "c7", "n1", TopicKind::birth);
  c.subscribe(topic);
  ASSERT_TRUE(c.wait_for_topic(topic)) << mesh.node("n1").output();
  Bytes payload = c.last_on(topic)->payload;
  dir.write("birth.bin", std::string(payload.begin(), payload.end()));

  auto key = to_hex(mesh.node_key("n1").bytes);
  auto r = run_command({"/usr/bin/python3", std::string(KAIROS_SOURCE_DIR) + "/tests/integration/decode_frame.py",
                        KAIROS_PY_PROTO_DIR, dir.file("birth.bin"), key, topic},
                       dir.path());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"sender\": \"n1\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"cluster\": \"c7\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"capabilities\": [\"audio\", \"read\", \"job:read\", \"job:actuate\"]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"board\": \"generic-linux\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"device_class\": \"CLASS_E\""), std::string::npos) << r.output;

  // The same bytes under another topic fail the independent MAC check.
  auto wrong = run_command({"/usr/bin/python3", std::string(KAIROS_SOURCE_DIR) + "/tests/integration/decode_frame.py",
                            KAIROS_PY_PROTO_DIR, dir.file("birth.bin"), key, topic + "x"},
                           dir.path());
  EXPECT_EQ(wrong.status, 1) << wrong.output;
}

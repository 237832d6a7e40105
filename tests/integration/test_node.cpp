// kairos-node behaviour seen from outside, through a real broker.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
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
  // Scales 0.25, 0.5, 1 and 2 s, as in docs/DESIGN.md 3.4's examples.
  dir.write("boards/lab.toml", "[board]\narch = [\"native\"]\ndevice_class = \"E\"\ntau_base_s = 0.25\ntau_max_s = 2.0\n");
  mesh.set_boards_dir(dir.file("boards"));
  Client c(broker.uri());
  auto topic = node_topic(mesh.name(), "c1", "n1", TopicKind::event);
  c.subscribe(topic);
  mesh.start_node("n1", "c1", "waveform = \"sine\"\nperiod_s = 1.0\namplitude = 0.4\n", "board = \"lab\"");
  Key key = mesh.node_key("n1");
  std::set<std::string> collapsed;
  auto decode = [&] {
    collapsed.clear();
    for (const auto& env : c.frames(topic, key, kairos_v1_Envelope_event_tag)) {
      const auto& e = env->message.event;
      if (e.kind == kairos_v1_EventKind_COLLAPSE) collapsed.insert(e.source);
      if (e.kind == kairos_v1_EventKind_RELEASE) collapsed.erase(e.source);
    }
    return collapsed;
  };
  ASSERT_TRUE(c.wait_for([&](const auto&) { return decode().size() >= 2; }, 30s)) << mesh.node("n1").output();
  EXPECT_EQ(decode(), (std::set<std::string>{"main/2", "main/3"}));
}

TEST(Node, FailingSensorIsCat2AndRecovers) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  const std::string file = "sys/bus/iio/devices/iio:device0/in_temp_input";
  dir.write(file, "21500\n");
  mesh.start_node("n1", "c1",
                  "kind = \"temperature\"\ndevice = \"iio:device0\"\nsysfs_root = \"" + dir.file("sys") +
                      "\"\nlo = 0\nhi = 40\nsample_period_s = 0.05\n",
                  "heartbeat_period_s = 0.3");
  auto status = [&] {
    auto n = mesh.node_info("n1");
    return n ? n->status : kairos_v1_NodeStatus_STATUS_UNSPECIFIED;
  };
  ASSERT_TRUE(eventually([&] { return status() == kairos_v1_NodeStatus_COMPLIANT; })) << mesh.node("n1").output();
  auto n = mesh.node_info("n1");
  ASSERT_TRUE(eventually([&] {
    n = mesh.node_info("n1");
    return n && n->phase_valid;
  }));
  EXPECT_NEAR(n->z.re, 21.5 / 40, 1e-3);

  std::filesystem::remove(dir.file(file));  // the sensor goes away
  EXPECT_TRUE(eventually([&] { return status() == kairos_v1_NodeStatus_VARIANCE_WARNING; }, 10s))
      << mesh.node("n1").output();
  EXPECT_TRUE(mesh.node("n1").running()) << "a failing sensor never stops the node";
  dir.write(file, "30000\n");  // and comes back: snapback with backoff
  EXPECT_TRUE(eventually([&] { return status() == kairos_v1_NodeStatus_COMPLIANT; }, 15s)) << mesh.node("n1").output();
  EXPECT_TRUE(eventually([&] {
    auto x = mesh.node_info("n1");
    return x && x->z.re > 0.6;  // the new value flows again
  }, 10s));
  EXPECT_NE(mesh.node("n1").output().find("cannot read"), std::string::npos);
}

namespace {

double rising_crossings_hz(const std::vector<std::int16_t>& s, std::size_t from, std::size_t to, std::uint32_t rate) {
  std::vector<double> c;
  for (std::size_t i = from + 1; i < to; ++i)
    if (s[i - 1] < 0 && s[i] >= 0) c.push_back(static_cast<double>(i - 1) + s[i - 1] / double(s[i - 1] - s[i]));
  return c.size() < 2 ? 0 : static_cast<double>(c.size() - 1) * rate / (c.back() - c.front());
}

}  // namespace

TEST(Node, SensorToSpeakerWritesTheToneToAWavFile) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  // A steady 0.25 on the input: 440 + 0.25 * 440 = 550 Hz at full coherence.
  auto config = mesh.node_config("n1", "c1", "waveform = \"constant\"\noffset = 0.25\n") +
                "\n[outputs.tone]\nkind = \"speaker\"\nsource = \"local:main\"\nwav = \"" + dir.file("out.wav") +
                "\"\nrate_hz = 16000\n\n[outputs.log]\nkind = \"text\"\nsource = \"local:main/3\"\nfile = \"" +
                dir.file("out.txt") + "\"\ninterval_s = 0.5\n";
  dir.write("n1.toml", config);
  Process node({bin("kairos-node"), "--config", dir.file("n1.toml")}, dir.file("n1.log"));
  std::uint32_t rate = 0;
  ASSERT_TRUE(eventually([&] { return read_wav(dir.file("out.wav"), rate).size() >= 2 * 16000; }, 20s))
      << read_text(dir.file("n1.log"));
  node.signal(SIGTERM);
  ASSERT_EQ(node.wait(10s).value_or(-1), 0) << read_text(dir.file("n1.log"));
  auto s = read_wav(dir.file("out.wav"), rate);
  ASSERT_EQ(rate, 16000u);
  EXPECT_NEAR(rising_crossings_hz(s, 8000, s.size() - 2000, rate), 550.0, 2.0);
  // After SIGTERM the tone fades out: the file ends in silence.
  for (std::size_t i = s.size() - 20; i < s.size(); ++i) EXPECT_LT(std::abs(s[i]), 800) << i;
  auto text = read_text(dir.file("out.txt"));
  EXPECT_NE(text.find("log re=0.2500 im=0.0000 c=1.0000"), std::string::npos) << text;
}

TEST(Node, MotorStopsWhenItsSourceGoesStaleAndOnSigterm) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  const std::string pwm = dir.file("sys/class/pwm/pwmchip0");
  std::filesystem::create_directories(pwm + "/pwm0");  // the kernel's exported channels, faked
  std::filesystem::create_directories(pwm + "/pwm1");
  auto duty = [&](int ch) {
    auto t = read_text(pwm + "/pwm" + std::to_string(ch) + "/duty_cycle");
    return t.empty() ? -1L : std::stol(t);
  };
  const std::string fifo = dir.file("drive.fifo");
  auto config = mesh.node_config("n1", "c1", "kind = \"pipe\"\npath = \"" + fifo + "\"\nsample_period_s = 0.02\n") +
                "\n[outputs.wheel]\nkind = \"motor\"\nsource = \"local:main\"\ndriver = \"sysfs\"\nsysfs_root = \"" +
                dir.file("sys") + "\"\nfailsafe_ms = 300\n";
  dir.write("n1.toml", config);
  Process node({bin("kairos-node"), "--config", dir.file("n1.toml")}, dir.file("n1.log"));
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(fifo); })) << read_text(dir.file("n1.log"));
  int w = -1;
  ASSERT_TRUE(eventually([&] { return (w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK)) >= 0; }));
  // A source that keeps saying 0.9: forward at 80 % ((0.9 - 0.5) * 2).
  auto feed_until = [&](const std::function<bool()>& done) {
    return eventually([&] {
      (void)!::write(w, "0.9\n", 4);
      return done();
    }, 10s);
  };
  ASSERT_TRUE(feed_until([&] { return duty(0) == 800'000 && duty(1) == 0; })) << read_text(dir.file("n1.log"));
  EXPECT_TRUE(eventually([&] { return read_text(pwm + "/pwm0/enable") == "1\n"; }));
  // The writer falls silent: within failsafe_ms the motor stops.
  EXPECT_TRUE(eventually([&] { return duty(0) == 0; }, 5s));
  EXPECT_NE(read_text(dir.file("n1.log")).find("failsafe stop"), std::string::npos);
  // It runs again with a fresh value, and stops for good on SIGTERM.
  ASSERT_TRUE(feed_until([&] { return duty(0) == 800'000; }));
  node.signal(SIGTERM);
  ASSERT_EQ(node.wait(10s).value_or(-1), 0);
  EXPECT_EQ(duty(0), 0);
  EXPECT_EQ(read_text(pwm + "/pwm0/enable"), "0\n");
  ::close(w);
}

TEST(Node, AnOutputFollowsTheMesh) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  // Two nodes at 0.2 and 0.6 make a mesh at 0.4; a third follows the mesh.
  mesh.start_node("a", "c1", "waveform = \"constant\"\noffset = 0.2\n", "phase_period_s = 0.1");
  mesh.start_node("b", "c1", "waveform = \"constant\"\noffset = 0.6\n", "phase_period_s = 0.1");
  auto config = mesh.node_config("f", "c1", "waveform = \"constant\"\noffset = 0.9\n",
                                 "broadcast_key_file = \"" + mesh.keys_dir() + "/broadcast.key\"\nphase_period_s = 0.1") +
                "\n[outputs.follow]\nkind = \"text\"\nsource = \"mesh\"\nfile = \"" + dir.file("mesh.txt") +
                "\"\ninterval_s = 0.1\nfailsafe_ms = 3000\n";
  dir.write("f.toml", config);
  Process follower({bin("kairos-node"), "--config", dir.file("f.toml")}, dir.file("f.log"));
  // Z of a, b and f (0.9) is 0.567: the text output carries the gateway's Z.
  EXPECT_TRUE(eventually([&] {
    auto text = read_text(dir.file("mesh.txt"));
    auto p = text.rfind("follow re=");
    if (p == std::string::npos) return false;
    double re = std::stod(text.substr(p + 10, 6));
    auto s = mesh.status();
    return s && s->mesh_state.nodes_in_sync == 3 && std::abs(re - s->mesh_state.z.re) < 0.02;
  }, 20s)) << read_text(dir.file("mesh.txt")) << read_text(dir.file("f.log"));
}

TEST(Node, LlmTokensArriveOverMqtt) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  const std::string topic = "lab/" + mesh.name() + "/tokens";
  mesh.start_node("n1", "c1", "kind = \"llm\"\ntopic = \"" + topic + "\"\nsample_period_s = 0.02\n", "phase_period_s = 0.1");
  Client c(broker.uri());
  // b = 1 - confidence: the node's phase has im = 0.25 once the tokens flow
  EXPECT_TRUE(eventually([&] {
    c.publish(topic, Bytes{'t', 'o', 'k', ' ', '0', '.', '7', '5'}, 0);
    auto n = mesh.node_info("n1");
    return n && n->phase_valid && std::abs(n->z.im - 0.25) < 0.01;
  }, 15s)) << mesh.node("n1").output();
}

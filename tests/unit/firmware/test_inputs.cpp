// Input adapters against a fake sysfs tree and a real FIFO.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "firmware/drivers/pipe.h"
#include "firmware/drivers/sysfs_sensor.h"
#include "tests/unit/scratch.h"

using namespace kairos::node;
using kairos::test::ScratchDir;
namespace fs = std::filesystem;

namespace {

class FakeTree : public ::testing::Test {
 protected:
  void put(const std::string& rel, const std::string& text) { scratch_.write(rel, text); }
  ScratchDir scratch_{"sysfs"};
  const fs::path& root_ = scratch_.path();

  SysfsConfig iio(const std::string& kind) {
    SysfsConfig c;
    c.kind = kind;
    c.sysfs_root = root_.string();
    c.device = "iio:device0";
    return c;
  }
};

bool is_sample(const ReadResult& r, double x) {
  return r.status == ReadResult::Status::sample && std::abs(r.reading.x - x) < 1e-9;
}

// A DS18B20 scratchpad with its CRC, as the kernel prints it.
std::string w1_text(int milli, bool kernel_ok = true, bool corrupt = false) {
  std::uint8_t b[9] = {0x72, 0x01, 0x4b, 0x46, 0x7f, 0xff, 0x0e, 0x10, 0};
  b[8] = dallas_crc8(b, 8);
  if (corrupt) b[3] ^= 0x01;
  char line[64];
  std::string hex;
  for (auto v : b) {
    std::snprintf(line, sizeof line, "%02x ", v);
    hex += line;
  }
  std::snprintf(line, sizeof line, ": crc=%02x %s\n", b[8], kernel_ok ? "YES" : "NO");
  return hex + line + hex + "t=" + std::to_string(milli) + "\n";
}

}  // namespace

TEST_F(FakeTree, IioChannelsWithTheirUnits) {
  put("bus/iio/devices/iio:device0/in_temp_input", "23125\n");
  put("bus/iio/devices/iio:device0/in_pressure_input", "101.325\n");
  put("bus/iio/devices/iio:device0/in_humidityrelative_input", "45500\n");
  SysfsSensorInput t(iio("temperature")), p(iio("pressure")), h(iio("humidity"));
  ASSERT_TRUE(t.setup());
  EXPECT_TRUE(is_sample(t.read(0), 23.125));
  EXPECT_TRUE(is_sample(p.read(0), 101.325));
  EXPECT_TRUE(is_sample(h.read(0), 45.5));
  auto custom = iio("temperature");
  custom.channel = "in_temp_object_input";
  custom.scale = 0.01;
  put("bus/iio/devices/iio:device0/in_temp_object_input", "2500");
  EXPECT_TRUE(is_sample(SysfsSensorInput(custom).read(0), 25.0));
}

TEST_F(FakeTree, IioFailuresAreAbsentNotStale) {
  put("bus/iio/devices/iio:device0/in_temp_input", "21000\n");
  SysfsSensorInput t(iio("temperature"));
  EXPECT_TRUE(is_sample(t.read(0), 21.0));
  put("bus/iio/devices/iio:device0/in_temp_input", "garbage\n");
  EXPECT_EQ(t.read(1).status, ReadResult::Status::failed);
  fs::remove(root_ / "bus/iio/devices/iio:device0/in_temp_input");
  auto r = t.read(2);
  EXPECT_EQ(r.status, ReadResult::Status::failed);
  EXPECT_NE(r.error.find("cannot read"), std::string::npos);
  EXPECT_FALSE(t.setup());
}

TEST(W1, Crc8KnownAnswer) {
  // Maxim application note 27: the ROM 02 1C B8 01 00 00 00 has CRC A2.
  const std::uint8_t rom[] = {0x02, 0x1C, 0xB8, 0x01, 0x00, 0x00, 0x00};
  EXPECT_EQ(dallas_crc8(rom, sizeof rom), 0xA2);
}

TEST_F(FakeTree, Ds18b20WithCrc) {
  SysfsConfig c;
  c.kind = "temperature";
  c.source = "w1";
  c.sysfs_root = root_.string();
  c.device = "28-0000012345ab";
  SysfsSensorInput in(c);
  put("bus/w1/devices/28-0000012345ab/w1_slave", w1_text(23125));
  EXPECT_TRUE(is_sample(in.read(0), 23.125));
  put("bus/w1/devices/28-0000012345ab/w1_slave", w1_text(-1500));
  EXPECT_TRUE(is_sample(in.read(0), -1.5));
  put("bus/w1/devices/28-0000012345ab/w1_slave", w1_text(23125, true, true));
  EXPECT_NE(in.read(0).error.find("CRC mismatch"), std::string::npos);
  put("bus/w1/devices/28-0000012345ab/w1_slave", w1_text(23125, false));
  EXPECT_NE(in.read(0).error.find("CRC check failed"), std::string::npos);
  put("bus/w1/devices/28-0000012345ab/w1_slave", w1_text(85000));
  EXPECT_EQ(in.read(0).status, ReadResult::Status::failed);
  put("bus/w1/devices/28-0000012345ab/w1_slave", "72 01");
  EXPECT_EQ(in.read(0).status, ReadResult::Status::failed);
}

TEST(LineBuffer, KeepsPartialLinesAndDropsOverlongOnes) {
  LineBuffer b(8);
  std::vector<std::string> out;
  b.feed("0.5\n0.", 6, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], "0.5");
  b.feed("7\n", 2, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1], "0.7");
  b.feed("123456789012\n1\n", 15, out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2], "1");
  EXPECT_EQ(b.overlong(), 1u);
}

class Fifo : public ::testing::Test {
 protected:
  ScratchDir scratch_{"fifo"};
  std::string path_ = scratch_.file("in.fifo");
  void write_all(int fd, const std::string& s) { ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size())); }
};

TEST_F(Fifo, NeverBlocksAndSurvivesWritersComingAndGoing) {
  PipeInput in(PipeConfig{path_, "", false, 32});
  ASSERT_TRUE(in.setup());  // creates the FIFO
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  // No writer at all: nothing new, no error, no blocking (O_NONBLOCK).
  EXPECT_EQ(in.read(0).status, ReadResult::Status::none);

  int w = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK);
  ASSERT_GE(w, 0);
  write_all(w, "0.5\n0.7\n0.2");
  auto r = in.read(1);
  EXPECT_TRUE(is_sample(r, 0.7)) << "the newest complete line";
  EXPECT_EQ(in.coalesced(), 1u);
  EXPECT_EQ(in.read(2).status, ReadResult::Status::none) << "0.2 is not complete yet";
  write_all(w, "5\n");
  EXPECT_TRUE(is_sample(in.read(3), 0.25));
  ::close(w);  // the writer goes away ...
  EXPECT_EQ(in.read(4).status, ReadResult::Status::none);
  w = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK);  // ... and comes back
  ASSERT_GE(w, 0);
  write_all(w, "0.9 0.75\nnonsense\n");
  r = in.read(5);
  EXPECT_TRUE(is_sample(r, 0.9)) << "a bad newest line falls back to the last good one";
  EXPECT_DOUBLE_EQ(r.reading.b, 0.25);
  EXPECT_EQ(in.malformed(), 1u);
  ::close(w);
}

TEST_F(Fifo, RefusesAPathThatIsNotAFifo) {
  std::ofstream(path_) << "plain file";
  PipeInput in(PipeConfig{path_, "", false, 32});
  EXPECT_FALSE(in.setup());
  EXPECT_EQ(in.read(0).status, ReadResult::Status::failed);
}

TEST_F(Fifo, LlmTokensMapToTheirPositionAndConfidence) {
  PipeInput in(PipeConfig{path_, "", true, 5});
  ASSERT_TRUE(in.setup());
  int w = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK);
  ASSERT_GE(w, 0);
  double a_the = -1;
  for (const char* line : {"the 0.9\n", "cat 0.8\n", "the 0.5\n"}) {
    write_all(w, line);
    auto r = in.read(0);
    ASSERT_EQ(r.status, ReadResult::Status::sample) << line;
    if (std::string(line).rfind("the", 0) == 0) {
      if (a_the < 0) a_the = r.reading.x;
      EXPECT_DOUBLE_EQ(r.reading.x, a_the) << "a repeated token keeps its position";
    } else {
      EXPECT_DOUBLE_EQ(r.reading.x, 0.25);  // second distinct token of a window of 5
    }
    EXPECT_NEAR(r.reading.b, 1.0 - std::stod(std::string(line).substr(4)), 1e-12);
  }
  write_all(w, "token 1.5\n");
  EXPECT_EQ(in.read(0).status, ReadResult::Status::none);
  EXPECT_EQ(in.malformed(), 1u);
  ::close(w);
}

TEST(TopicLines, LlmTokensFromMqttMessages) {
  PipeInput in(PipeConfig{"", "lab/llm/tokens", true, 4});
  ASSERT_TRUE(in.setup());
  EXPECT_TRUE(in.from_topic());
  EXPECT_EQ(in.read(0).status, ReadResult::Status::none);
  in.feed("hello 0.9");  // one message, one line, no newline needed
  auto r = in.read(1);
  ASSERT_EQ(r.status, ReadResult::Status::sample);
  EXPECT_DOUBLE_EQ(r.reading.x, 0.0);
  EXPECT_NEAR(r.reading.b, 0.1, 1e-12);
  in.feed("world 0.5\nhello 0.7\n");  // two lines in one message: the newest wins
  r = in.read(2);
  EXPECT_DOUBLE_EQ(r.reading.x, 0.0);
  EXPECT_NEAR(r.reading.b, 0.3, 1e-12);
  EXPECT_EQ(in.coalesced(), 1u);
}

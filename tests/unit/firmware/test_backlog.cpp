#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "firmware/backlog.h"

using namespace kairos;
using namespace kairos::node;
namespace fs = std::filesystem;

namespace {
QueuedFrame frame(TopicKind kind, std::uint8_t tag) { return {kind, "t/" + std::to_string(tag), Bytes{tag}}; }
std::vector<int> tags(Backlog& b) {
  std::vector<int> out;
  while (!b.empty()) {
    out.push_back(b.front().envelope[0]);
    b.pop();
  }
  return out;
}
}  // namespace

TEST(Backlog, KeepsOrder) {
  Backlog b(10, "");
  for (std::uint8_t i = 1; i <= 5; ++i) b.push(frame(i % 2 ? TopicKind::phase : TopicKind::event, i));
  EXPECT_EQ(tags(b), (std::vector<int>{1, 2, 3, 4, 5}));
}

TEST(Backlog, ThinsPhaseReportsBeforeAnythingElse) {
  Backlog b(4, "");
  b.push(frame(TopicKind::phase, 1));
  b.push(frame(TopicKind::event, 2));
  b.push(frame(TopicKind::phase, 3));
  b.push(frame(TopicKind::phase, 4));
  b.push(frame(TopicKind::ack, 5));  // full: the oldest phase report with a newer one after it goes
  EXPECT_EQ(b.phase_dropped(), 1u);
  b.push(frame(TopicKind::event, 6));  // again
  EXPECT_EQ(b.phase_dropped(), 2u);
  EXPECT_EQ(b.important_dropped(), 0u);
  EXPECT_EQ(tags(b), (std::vector<int>{2, 4, 5, 6}));
}

TEST(Backlog, FullOfImportantFramesDropsTheOldestAndCountsIt) {
  Backlog b(2, "");
  b.push(frame(TopicKind::event, 1));
  b.push(frame(TopicKind::event, 2));
  b.push(frame(TopicKind::phase, 3));  // no room for a phase report
  b.push(frame(TopicKind::event, 4));
  EXPECT_EQ(b.phase_dropped(), 1u);
  EXPECT_EQ(b.important_dropped(), 1u);
  EXPECT_EQ(tags(b), (std::vector<int>{2, 4}));
}

TEST(Backlog, ImportantFramesSurviveARestartThroughTheFile) {
  auto file = (fs::temp_directory_path() / ("kairos-backlog-" + std::to_string(::getpid()))).string();
  fs::remove(file);
  {
    Backlog b(10, file);
    b.push(frame(TopicKind::event, 1));
    b.push(frame(TopicKind::phase, 2));  // RAM only
    b.push(frame(TopicKind::ack, 3));
  }
  {
    Backlog b(10, file);
    b.load();
    ASSERT_EQ(b.size(), 2u);
    EXPECT_EQ(b.front().topic, "t/1");
    EXPECT_EQ(b.front().kind, TopicKind::event);
    b.pop();
    b.pop();  // all sent: the file starts afresh
  }
  EXPECT_EQ(fs::file_size(file), 0u);
  {
    // a torn tail (power cut mid-write) ends the file, the rest is kept
    Backlog b(10, file);
    b.push(frame(TopicKind::event, 7));
    std::ofstream(file, std::ios::app | std::ios::binary) << '\x05' << "\x09\x00";
    Backlog again(10, file);
    again.load();
    EXPECT_EQ(tags(again), (std::vector<int>{7}));
  }
  fs::remove(file);
}

// Store and forward (docs/DESIGN.md 3.8): the broker goes away while a node keeps
// running; when it is back, every event raised meanwhile reaches the gateway
// exactly once and in order, and the phase reports not delivered are all
// accounted for by the node's drop counter.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <filesystem>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {
std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}
}  // namespace

TEST(StoreAndForward, BrokerOutageLosesNothingAndCountsWhatItThins) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway("[liveness]\nheartbeat_period_s = 0.3\n");
  const std::string file = "sys/bus/iio/devices/iio:device0/in_temp_input";
  dir.write(file, "21500\n");
  mesh.start_node("n1", "c1",
                  "kind = \"temperature\"\ndevice = \"iio:device0\"\nsysfs_root = \"" + dir.file("sys") +
                      "\"\nlo = 0\nhi = 40\nsample_period_s = 0.05\n",
                  "heartbeat_period_s = 0.3\nphase_period_s = 0.1\nbacklog_file = \"" + dir.file("n1.backlog") + "\"",
                  "backlog = 30");
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.node_info("n1");
    return n && n->online && n->phase_valid;
  })) << mesh.node("n1").output();
  auto log = [&] { return mesh.node("n1").output(); };

  broker.kill();
  ASSERT_TRUE(eventually([&] { return log().find("broker: ") != std::string::npos; }, 10s));
  // Three failures and three recoveries of the sensor while nobody listens.
  for (std::size_t i = 1; i <= 3; ++i) {
    std::filesystem::remove(dir.file(file));
    ASSERT_TRUE(eventually([&] { return count(log(), "failing: ") == i; }, 10s)) << log();
    dir.write(file, std::to_string(20000 + i) + "\n");
    ASSERT_TRUE(eventually([&] { return count(log(), "reading again") == i; }, 10s)) << log();
  }
  // Offline long enough for the phase reports (10 a second) to outgrow the
  // backlog of 30 frames and be thinned.
  ASSERT_TRUE(eventually([&] { return log().find("backlog full") != std::string::npos; }, 20s)) << log();
  broker.start();

  // Every event arrives, once.
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.node_info("n1");
    return n && n->events >= 6;
  }, 30s)) << mesh.gateway().output() << log();
  Client c(broker.uri());
  auto hb = node_topic(mesh.name(), "c1", "n1", TopicKind::hb);
  c.subscribe(hb);
  mesh.node("n1").signal(SIGTERM);
  ASSERT_EQ(mesh.node("n1").wait(10s).value_or(-1), 0);
  ASSERT_TRUE(c.wait_for_topic(hb));
  // The final heartbeat's counters.
  std::optional<kairos_v1_Counters> counters;
  auto beats = c.frames(hb, mesh.node_key("n1"), kairos_v1_Envelope_heartbeat_tag);
  if (!beats.empty()) counters = beats.back()->message.heartbeat.counters;
  ASSERT_TRUE(counters);
  auto info = mesh.node_info("n1");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->events, 6u);
  EXPECT_GT(counters->phase_queued, 0u);
  EXPECT_EQ(info->historical_phases + counters->phase_dropped, counters->phase_queued)
      << "queued " << counters->phase_queued << ", dropped " << counters->phase_dropped << ", received late "
      << info->historical_phases;
  EXPECT_EQ(counters->events_dropped, 0u);

  // In the gateway's event log: six rows, in order, marked historical.
  mesh.gateway().signal(SIGTERM);
  ASSERT_EQ(mesh.gateway().wait(10s).value_or(-1), 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(dir.file("gateway.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT detail, historical FROM events WHERE node='n1' ORDER BY seq", -1, &st, nullptr),
            SQLITE_OK);
  std::vector<std::string> details;
  while (sqlite3_step(st) == SQLITE_ROW) {
    details.push_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
    EXPECT_EQ(sqlite3_column_int(st, 1), 1) << "raised while offline";
  }
  sqlite3_finalize(st);
  // the log is append-only
  EXPECT_NE(sqlite3_exec(db, "DELETE FROM events", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  ASSERT_EQ(details.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    if (i % 2 == 0) EXPECT_NE(details[i].find("cannot read"), std::string::npos) << i << ": " << details[i];
    else EXPECT_EQ(details[i], "reading again") << i;
  }
}

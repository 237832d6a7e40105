#include <gtest/gtest.h>

#include "common/core/broker.h"
#include "common/core/ratelimit.h"

using namespace kairos;

TEST(RateLimiter, BurstThenRate) {
  RateLimiter r(2.0, 3.0);  // 2 per second, bursts of 3
  EXPECT_TRUE(r.allow(1'000'000));
  EXPECT_TRUE(r.allow(1'000'000));
  EXPECT_TRUE(r.allow(1'000'000));
  EXPECT_FALSE(r.allow(1'000'000));
  EXPECT_FALSE(r.allow(1'100'000));
  EXPECT_EQ(r.take_suppressed(), 2u);
  EXPECT_EQ(r.take_suppressed(), 0u);
  EXPECT_TRUE(r.allow(1'600'000));  // half a second refills one
  EXPECT_FALSE(r.allow(1'600'000));
  EXPECT_TRUE(r.allow(100'000'000));
}

TEST(BrokerConfig, DefaultsAndValidation) {
  Config ok("[broker]\nuri = \"ssl://h:8883\"\nca_file = \"/etc/kairos/tls/ca.crt\"\n", "b.toml");
  auto b = read_broker(ok.root().section("broker"), 77);
  EXPECT_EQ(b.uri, "ssl://h:8883");
  EXPECT_EQ(b.backlog, 77u);
  EXPECT_EQ(b.keepalive_s, 10);
  ok.finish();
  Config bad("[broker]\nuri = \"http://h\"\n", "b.toml");
  try {
    read_broker(bad.root().section("broker"), 10);
    FAIL() << "http:// accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key, "broker.uri");
    EXPECT_EQ(e.line, 2u);
  }
}

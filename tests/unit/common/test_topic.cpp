#include <gtest/gtest.h>

#include "common/core/lists.h"
#include "common/core/topic.h"

using namespace kairos;

struct TopicCase {
  const char* topic;
  bool ok;
  TopicKind kind;
  const char* cluster;
  const char* name;
};

class TopicParse : public ::testing::TestWithParam<TopicCase> {};

TEST_P(TopicParse, Table) {
  const auto& c = GetParam();
  auto t = parse_topic(c.topic);
  ASSERT_EQ(t.has_value(), c.ok) << c.topic;
  if (!c.ok) return;
  EXPECT_EQ(t->mesh, "demo");
  EXPECT_EQ(t->kind, c.kind);
  EXPECT_EQ(t->cluster, c.cluster);
  EXPECT_EQ(t->name, c.name);
}

INSTANTIATE_TEST_SUITE_P(
    Topics, TopicParse,
    ::testing::Values(
        TopicCase{"kairos/v1/demo/c1/n1/birth", true, TopicKind::birth, "c1", "n1"},
        TopicCase{"kairos/v1/demo/c1/n1/state", true, TopicKind::state, "c1", "n1"},
        TopicCase{"kairos/v1/demo/c1/n-1_x/hb", true, TopicKind::hb, "c1", "n-1_x"},
        TopicCase{"kairos/v1/demo/c1/n1/phase", true, TopicKind::phase, "c1", "n1"},
        TopicCase{"kairos/v1/demo/c1/n1/event", true, TopicKind::event, "c1", "n1"},
        TopicCase{"kairos/v1/demo/c1/n1/ack", true, TopicKind::ack, "c1", "n1"},
        TopicCase{"kairos/v1/demo/c1/n1/result", true, TopicKind::result, "c1", "n1"},
        TopicCase{"kairos/v1/demo/c1/n1/cmd", true, TopicKind::cmd, "c1", "n1"},
        TopicCase{"kairos/v1/demo/_mesh/state", true, TopicKind::mesh_state, "", ""},
        TopicCase{"kairos/v1/demo/_gw/gw1/state", true, TopicKind::gw_state, "", "gw1"},
        TopicCase{"kairos/v1/demo/_gw/gw1/summary", false, TopicKind::gw_state, "", ""},
        TopicCase{"kairos/v1/demo/_sector/north/summary", true, TopicKind::sector_summary, "", "north"},
        TopicCase{"kairos/v1/demo/_sector/north/cluster/c1", true, TopicKind::cluster_summary, "c1", "north"},
        TopicCase{"kairos/v1/demo/_sector/north/req", true, TopicKind::sector_req, "", "north"},
        TopicCase{"kairos/v1/demo/_sector/north/resp", true, TopicKind::sector_resp, "", "north"},
        TopicCase{"kairos/v1/demo/_sector/_x/summary", false, TopicKind::sector_summary, "", ""},
        TopicCase{"kairos/v1/demo/_sector/north/other", false, TopicKind::sector_summary, "", ""},
        TopicCase{"kairos/v1/demo/_ctl/req", true, TopicKind::ctl_req, "", ""},
        TopicCase{"kairos/v1/demo/_ctl/req/ana", true, TopicKind::ctl_req, "", "ana"},
        TopicCase{"kairos/v1/demo/_ctl/resp/ctl-1", true, TopicKind::ctl_resp, "", "ctl-1"},
        TopicCase{"kairos/v1/demo/_alert", true, TopicKind::alert, "", ""},
        TopicCase{"kairos/v1/demo/_ball/design/head", true, TopicKind::ball_head, "", ""},
        TopicCase{"kairos/v1/demo/_ball/design/to/Ana", true, TopicKind::ball_to, "", "Ana"},
        // refused
        TopicCase{"kairos/v1/demo/_ball/design/tail", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/_ball/_x/head", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/_ball/design/to/A+na", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/_ball/design/to", false, {}, "", ""},
        TopicCase{"kairos/v2/demo/c1/n1/hb", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/c1/n1/bogus", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/c1/n1/hb/extra", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/c1/n1", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/_x/n1/hb", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/c1/n+1/hb", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/c1//hb", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/_gw/gw1/other", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/_ctl/resp/", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/_ctl/req/", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/_ctl/req/_ana", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/_ctl/req/ana/x", false, {}, "", ""},
        TopicCase{"kairos/v1/demo/_ctl/req/a+na", false, {}, "", ""},
        TopicCase{"kairos/v1/", false, {}, "", ""},
        TopicCase{"", false, {}, "", ""}));

TEST(Topic, BuildersRoundTrip) {
  EXPECT_EQ(node_topic("demo", "c1", "n1", TopicKind::hb), "kairos/v1/demo/c1/n1/hb");
  EXPECT_EQ(mesh_state_topic("demo"), "kairos/v1/demo/_mesh/state");
  EXPECT_EQ(gw_topic("demo", "gw1", TopicKind::gw_state), "kairos/v1/demo/_gw/gw1/state");
  EXPECT_EQ(ctl_req_topic("demo"), "kairos/v1/demo/_ctl/req");
  EXPECT_EQ(ctl_req_topic("demo", "ana"), "kairos/v1/demo/_ctl/req/ana");
  EXPECT_EQ(parse_topic(ctl_req_topic("demo", "ana"))->name, "ana");
  EXPECT_EQ(ctl_resp_topic("demo", "c"), "kairos/v1/demo/_ctl/resp/c");
  EXPECT_EQ(alert_topic("demo"), "kairos/v1/demo/_alert");
  EXPECT_EQ(ball_head_topic("demo", "s"), "kairos/v1/demo/_ball/s/head");
  EXPECT_EQ(ball_to_topic("demo", "s", "Ana"), "kairos/v1/demo/_ball/s/to/Ana");
  EXPECT_EQ(parse_topic(ball_to_topic("demo", "s", "Ana"))->session, "s");
  EXPECT_EQ(node_filter("demo", TopicKind::birth), "kairos/v1/demo/+/+/birth");
  for (auto kind : {TopicKind::birth, TopicKind::state, TopicKind::hb, TopicKind::phase,
                    TopicKind::event, TopicKind::ack, TopicKind::result, TopicKind::cmd}) {
    auto t = parse_topic(node_topic("demo", "c", "n", kind));
    ASSERT_TRUE(t);
    EXPECT_EQ(t->kind, kind);
  }
}

TEST(Topic, JobTargets) {
  for (const char* ok : {"", "class:A", "cluster:east1", "node:n-1", "gpio"})
    EXPECT_TRUE(valid_job_target(ok)) << ok;
  for (const char* bad : {"class:G", "class:", "cluster:", "node:", "node:a/b", "cluster:_x", "a b"})
    EXPECT_FALSE(valid_job_target(bad)) << bad;
  EXPECT_TRUE(valid_job_target("node:" + std::string(64, 'n')));
  EXPECT_FALSE(valid_job_target("node:" + std::string(65, 'n')));
}

TEST(Topic, Names) {
  EXPECT_TRUE(valid_name("node-01_a"));
  EXPECT_FALSE(valid_name(""));
  EXPECT_FALSE(valid_name("_mesh"));
  EXPECT_FALSE(valid_name("a/b"));
  EXPECT_FALSE(valid_name("a#"));
  EXPECT_FALSE(valid_name(std::string(65, 'a')));
  EXPECT_TRUE(valid_name(std::string(64, 'a')));
}

TEST(Lists, SplitDropsEmptyPartsAndJoinRestoresTheList) {
  EXPECT_EQ(split_list("Ana,Ben,,n1,"), (std::vector<std::string>{"Ana", "Ben", "n1"}));
  EXPECT_TRUE(split_list("").empty());
  EXPECT_TRUE(split_list(",,").empty());
  EXPECT_EQ(split_list("a b", ' '), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(join_list({"Ana", "Ben", "n1"}), "Ana,Ben,n1");
  EXPECT_EQ(join_list({}), "");
  EXPECT_EQ(split_list(join_list({"x", "y"})), (std::vector<std::string>{"x", "y"}));
}

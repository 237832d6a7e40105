// Sectors and a root on real processes (docs/DESIGN.md 5.9): three sector
// brokers bridged to a root broker with the bridge configuration that
// `kairosctl provision --sector` writes, a sector gateway and kairos-sim in
// each sector, a root gateway over them; and, to check the global figures
// against, a standalone gateway on a fifth broker that every sector broker
// also bridges its node reports to (an observer of the same nodes).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>

#include "common/io/clock.h"
#include "tests/integration/harness.h"

namespace kairos::test {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kSectors{"north", "south", "east"};
constexpr int kNodesPerSector = 20;

// The whole topology, built in the constructor.
class Hierarchy {
 public:
  Hierarchy() {
    // The root's folder provisions each sector: keys, the root broker's user, the bridge.
    const std::string prov = root_dir_.file("prov");
    for (const auto& s : kSectors) {
      auto r = run_command({bin("kairosctl"), "--mesh", mesh_, "--broker", "tcp://127.0.0.1:" + std::to_string(root_port_),
                            "provision", "--sector", s, "--out", prov},
                           root_dir_.path());
      if (r.status != 0) throw std::runtime_error("provision --sector " + s + ": " + r.output);
    }
    root_broker_ = std::make_unique<Broker>(root_dir_, root_port_);
    observer_broker_ = std::make_unique<Broker>(observer_dir_);
    root_ = std::make_unique<Mesh>(root_dir_, *root_broker_, mesh_);
    copy(prov + "/gateway/etc/kairos/keys/sectors", root_->keys_dir() + "/sectors");
    for (std::size_t k = 0; k < kSectors.size(); ++k) {
      const auto& s = kSectors[k];
      auto& dir = *sector_dirs_.emplace_back(std::make_unique<TempDir>());
      // Node reports to the observer (out only, never back), beside the provisioned bridge to the root.
      std::string observe = "\nconnection observer-" + s + "\naddress 127.0.0.1:" +
                            std::to_string(observer_broker_->port()) + "\nrestart_timeout 1 2\n";
      for (const char* kind : {"birth", "state", "hb", "phase"})
        observe += "topic kairos/v1/" + mesh_ + "/+/+/" + kind + " out 0\n";
      brokers_.push_back(std::make_unique<Broker>(
          dir, 0, true, "\n" + read_text(prov + "/sectors/" + s + "/mosquitto/kairos-bridge.conf") + observe));
      auto& mesh = *sectors_.emplace_back(std::make_unique<Mesh>(dir, *brokers_.back(), mesh_));
      copy(prov + "/sectors/" + s + "/etc/kairos/keys/sectors", mesh.keys_dir() + "/sectors");
      mesh.start_gateway(sector_config(s));
      // Classes A-C (5, 20, 50 ms one way), 5 % jitter, clocks up to 2 s off.
      ledgers_.push_back(dir.file("ledger"));
      sims_.push_back(std::make_unique<Process>(
          mesh.sim_argv({"--nodes", std::to_string(kNodesPerSector), "--prefix", s, "--clusters", "2",
                         "--cluster-prefix", s + "-c", "--seed", std::to_string(11 + k), "--hb-period-s", "5",
                         "--classes", "A,B,C", "--jitter", "0.05", "--offset-max-ms", "2000", "--ledger",
                         ledgers_.back()}),
          dir.file("sim.log")));
    }
    root_->start_gateway("[hierarchy]\nrole = \"root\"\nsectors = [\"north\", \"south\", \"east\"]\n"
                         "summary_period_s = 0.5\n");
  }

  static std::string sector_config(const std::string& sector) {
    return "[hierarchy]\nrole = \"sector\"\nsector = \"" + sector + "\"\nsummary_period_s = 0.5\n"
           "[clock]\nping_period_s = 1\nfast_ping_period_s = 0.25\n";
  }
  static void copy(const std::string& from, const std::string& to) {
    fs::create_directories(to);
    fs::copy(from, to, fs::copy_options::overwrite_existing | fs::copy_options::recursive);
  }
  // The standalone gateway over every sector's nodes, on the observer broker.
  Mesh& start_observer() {
    observer_ = std::make_unique<Mesh>(observer_dir_, *observer_broker_, mesh_);
    for (auto& s : sectors_) copy(s->keys_dir() + "/nodes", observer_->keys_dir() + "/nodes");
    observer_->start_gateway();
    return *observer_;
  }
  int total_nodes() const { return kNodesPerSector * static_cast<int>(kSectors.size()); }
  // Until the root sees every sector live and every node online.
  bool whole() {
    return eventually([&] {
      auto s = root_->status();
      return s && s->nodes_online == static_cast<std::uint32_t>(total_nodes()) && s->sectors_stale == 0;
    }, std::chrono::seconds(60));
  }

  const std::string mesh_ = "h" + std::to_string(random_u64() % 100'000'000);
  TempDir root_dir_, observer_dir_;
  int root_port_ = free_port();
  std::unique_ptr<Broker> root_broker_, observer_broker_;
  std::unique_ptr<Mesh> root_, observer_;
  std::vector<std::unique_ptr<TempDir>> sector_dirs_;
  std::vector<std::unique_ptr<Broker>> brokers_;
  std::vector<std::unique_ptr<Mesh>> sectors_;
  std::vector<std::unique_ptr<Process>> sims_;
  std::vector<std::string> ledgers_;
};

TEST(Sectors, TheRootSeesEverySectorAndTheGlobalFiguresOfOneGatewayOverTheSameNodes) {
  Hierarchy h;
  auto& root = *h.root_;
  ASSERT_TRUE(h.whole()) << root.gateway().output();
  auto s = *root.status();
  EXPECT_STREQ(s.role, "root");
  EXPECT_EQ(s.sectors_total, 3u);
  EXPECT_EQ(s.clusters, 6u);

  auto r = root.kairosctl({"--json", "sectors"});
  ASSERT_EQ(r.status, 0) << r.output;
  for (const auto& name : kSectors) {
    const auto at = r.output.find("\"name\":\"" + name + "\"");
    ASSERT_NE(at, std::string::npos) << r.output;
    EXPECT_EQ(r.output.compare(r.output.find("\"state\":", at), 14, "\"state\":\"live\""), 0) << r.output;
  }
  // A sector gateway answers its own console as before, and says which sector it runs.
  auto sector = h.sectors_[0]->status();
  ASSERT_TRUE(sector);
  EXPECT_STREQ(sector->role, "sector");
  EXPECT_STREQ(sector->sector, "north");
  EXPECT_EQ(sector->nodes_online, static_cast<std::uint32_t>(kNodesPerSector));
  // The sector's console cannot list sectors: it says to ask the root.
  r = h.sectors_[0]->kairosctl({"sectors"});
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("ask its root"), std::string::npos) << r.output;

  // The same nodes under one gateway: with the simulators paused, both see
  // the same phases, and the root's Z, C and A from the sectors' sums equal it.
  auto& observer = h.start_observer();
  ASSERT_TRUE(eventually([&] {
    auto o = observer.status();
    return o && o->mesh_state.nodes_in_sync == static_cast<std::uint32_t>(h.total_nodes());
  }, std::chrono::seconds(60))) << observer.gateway().output();
  for (auto& sim : h.sims_) sim->signal(SIGSTOP);
  // Every sector summarises after the pause (its summary sequence moves on twice).
  auto seqs = [&] {
    std::vector<std::uint64_t> out;
    kairos_v1_ControlRequest q = kairos_v1_ControlRequest_init_zero;
    q.which_verb = kairos_v1_ControlRequest_sectors_tag;
    if (auto resp = root.ctl(q))
      for (pb_size_t i = 0; i < resp->reply.sectors.sectors_count; ++i)
        out.push_back(resp->reply.sectors.sectors[i].summary.summary_seq);
    return out;
  };
  const auto before = seqs();
  ASSERT_EQ(before.size(), 3u);
  ASSERT_TRUE(eventually([&] {
    auto now = seqs();
    for (std::size_t i = 0; i < now.size(); ++i)
      if (now[i] < before[i] + 2) return false;
    return now.size() == 3;
  }));
  auto a = root.status(), b = observer.status();
  for (auto& sim : h.sims_) sim->signal(SIGCONT);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->mesh_state.nodes_in_sync, b->mesh_state.nodes_in_sync);
  EXPECT_NEAR(a->mesh_state.z.re, b->mesh_state.z.re, 1e-4);
  EXPECT_NEAR(a->mesh_state.z.im, b->mesh_state.z.im, 1e-4);
  EXPECT_NEAR(a->mesh_state.coherence, b->mesh_state.coherence, 1e-4);
  EXPECT_NEAR(a->mesh_state.agreement, b->mesh_state.agreement, 1e-4);
  EXPECT_GT(a->mesh_state.coherence, 0.0f);
}

TEST(Sectors, ASilentSectorGoesStaleAtTheRootAndRejoinsWhenItsGatewayIsBack) {
  Hierarchy h;
  auto& root = *h.root_;
  ASSERT_TRUE(h.whole()) << root.gateway().output();
  h.sectors_[1]->gateway().signal(SIGKILL);
  // Stale within 3 summary periods (and the time to see it): its nodes no longer count online.
  ASSERT_TRUE(eventually([&] {
    auto s = root.status();
    return s && s->sectors_stale == 1 && s->nodes_online == static_cast<std::uint32_t>(2 * kNodesPerSector);
  }, std::chrono::seconds(10)));
  auto r = root.kairosctl({"sectors"});
  ASSERT_EQ(r.status, 0) << r.output;
  const auto line = r.output.substr(r.output.find("south"));
  EXPECT_EQ(line.find("stale"), line.find_first_not_of(' ', 5)) << r.output;
  EXPECT_NE(line.find("OPEN"), std::string::npos) << r.output;
  EXPECT_NE(root.gateway().output().find("south is stale"), std::string::npos);
  // Routed around: jobs go to the other sectors, a cascade leaves it out and
  // counts its nodes as targets not ready.
  for (int i = 0; i < 3; ++i) {
    r = root.kairosctl({"--json", "delegate", "echo", "--payload", "around", "--wait"});
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("\"state\":\"DONE\""), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("\"sector\":\"south\""), std::string::npos) << r.output;
  }
  r = root.kairosctl({"--json", "schedule", "thaw", "--in", "1500", "--window", "1500"});
  ASSERT_TRUE(r.status == 0 || r.status == 3) << r.output;
  EXPECT_NE(r.output.find("\"name\":\"sector south\",\"verdict\":\"EXCLUDED\""), std::string::npos) << r.output;
  EXPECT_EQ(json_number(r.output, "targets"), 2 * kNodesPerSector) << r.output;
  // Its gateway back: live again at the root, with its nodes.
  h.sectors_[1]->start_gateway(Hierarchy::sector_config("south"));
  ASSERT_TRUE(h.whole());
  EXPECT_NE(root.gateway().output().find("south is live again"), std::string::npos);
}

TEST(Sectors, TheRootPagesNodesCascadesAScheduleThatLandsAcrossSectorsAndSendsAJobToOne) {
  Hierarchy h;
  auto& root = *h.root_;
  ASSERT_TRUE(h.whole()) << root.gateway().output();
  // Nodes of every sector, paged by the cursor 7 at a time, in id order, each once.
  std::vector<std::string> ids;
  kairos_v1_ControlRequest q = kairos_v1_ControlRequest_init_zero;
  q.which_verb = kairos_v1_ControlRequest_nodes_tag;
  q.verb.nodes.limit = 7;
  std::uint32_t total = 0;
  do {
    if (!ids.empty()) set_string(q.verb.nodes.after, ids.back());
    auto r = root.ctl(q);
    ASSERT_TRUE(r && r->ok);
    total = r->reply.nodes.total;
    ASSERT_LE(r->reply.nodes.nodes_count, 7u);
    if (r->reply.nodes.nodes_count == 0) break;
    for (pb_size_t i = 0; i < r->reply.nodes.nodes_count; ++i) ids.emplace_back(r->reply.nodes.nodes[i].id);
  } while (ids.size() < total);
  EXPECT_EQ(total, static_cast<std::uint32_t>(h.total_nodes()));
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(h.total_nodes()));
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end());

  // Every node's clock settled, as the root sees it through its sectors.
  ASSERT_TRUE(eventually([&] {
    auto list = root.nodes();
    return list.size() == static_cast<std::size_t>(h.total_nodes()) &&
           std::all_of(list.begin(), list.end(), [](const kairos_v1_NodeInfo& n) {
             return n.online && n.clock_samples >= 8 && n.processing_ms < 50;
           });
  }, std::chrono::seconds(120)));
  std::vector<std::size_t> from;
  for (const auto& l : h.ledgers_) from.push_back(line_count(l));
  auto r = root.kairosctl({"--json", "schedule", "thaw", "--in", "2500", "--window", "2000"});
  ASSERT_TRUE(r.status == 0 || r.status == 3) << r.output;
  const auto T = static_cast<std::int64_t>(json_number(r.output, "at_us"));
  std::vector<double> err;
  for (std::size_t k = 0; k < h.ledgers_.size(); ++k)
    for (const auto& e : ledger_execs(h.ledgers_[k], from[k]))
      err.push_back(std::abs(static_cast<double>(e.true_exec_us - T)) / 1000.0);
  for (const auto& s : kSectors) EXPECT_NE(r.output.find("\"sector " + s + "\""), std::string::npos) << r.output;
  EXPECT_EQ(json_number(r.output, "targets"), h.total_nodes()) << r.output;
#ifdef KAIROS_SANITIZED
  if (err.empty()) GTEST_SKIP() << "no target ran in time under the sanitizer: " << r.output.substr(0, 200);
#endif
  const auto within = std::count_if(err.begin(), err.end(), [](double e) { return e <= 10.0; });
  EXPECT_GE(static_cast<double>(within), 0.95 * h.total_nodes()) << r.output;
  EXPECT_EQ(r.status, 0) << r.output;  // PROCEED over the sectors
  auto s = root.status();
  ASSERT_TRUE(s);
  EXPECT_NE(std::string(s->last_cascade).find("over 3 sectors"), std::string::npos) << s->last_cascade;

  // A job goes to one sector, which runs it on its nodes.
  r = root.kairosctl({"--json", "delegate", "echo", "--payload", "across", "--wait"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"state\":\"DONE\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"output\":\"across\""), std::string::npos) << r.output;
  const auto sector_at = r.output.find("\"sector\":\"");
  ASSERT_NE(sector_at, std::string::npos) << r.output;
  EXPECT_NE(std::find_if(kSectors.begin(), kSectors.end(),
                         [&](const std::string& n) { return r.output.compare(sector_at + 10, n.size() + 1, n + "\"") == 0; }),
            kSectors.end()) << r.output;
}

// A HASH_MISMATCH (priority 4) at a sector: a node's heartbeat under a wrong key.
void bad_mac(Mesh& sector, const Broker& broker, const std::string& node, const std::string& cluster) {
  Key key = sector.node_key(node);
  key.bytes[3] ^= 0x40;
  auto topic = node_topic(sector.name(), cluster, node, TopicKind::hb);
  auto env = make_envelope(node, 7, 1, 0);
  env->which_message = kairos_v1_Envelope_heartbeat_tag;
  Client c(broker.uri());
  c.publish(topic, seal(topic, *env, key), 0);
}

// How many lines of the root's --json list name this.
std::size_t mentions(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(Sectors, SectorsWorkOnWithoutTheirRootAndItCatchesUpOnceWithJobsAndConflictsAfterARestartAndABridgeCut) {
  Hierarchy h;
  auto& root = *h.root_;
  ASSERT_TRUE(h.whole()) << root.gateway().output();
  auto& north = *h.sectors_[0];
  // The root gone: the sector schedules and runs jobs for its own console.
  root.gateway().signal(SIGKILL);
  ASSERT_TRUE(root.gateway().wait(std::chrono::seconds(5)));
  auto r = north.kairosctl({"--json", "schedule", "thaw", "--in", "1500", "--window", "1500"});
  EXPECT_TRUE(r.status == 0 || r.status == 3) << r.output;
  EXPECT_EQ(json_number(r.output, "targets"), kNodesPerSector) << r.output;
  r = north.kairosctl({"--json", "delegate", "echo", "--payload", "while-away", "--wait"});
  ASSERT_EQ(r.status, 0) << r.output;
  const auto job = static_cast<std::uint64_t>(json_number(r.output, "job"));
  bad_mac(north, *h.brokers_[0], "north-00001", "north-c1");
  ASSERT_TRUE(eventually([&] { return north.drops("bad_mac") >= 1; })) << north.gateway().output();

  // Back: every sector's state at once (retained summaries), then what it missed.
  root.start_gateway("[hierarchy]\nrole = \"root\"\nsectors = [\"north\", \"south\", \"east\"]\n"
                     "summary_period_s = 0.5\n");
  ASSERT_TRUE(h.whole()) << root.gateway().output();
  ASSERT_TRUE(eventually([&] {
    auto j = root.kairosctl({"--json", "jobs"});
    return j.status == 0 && j.output.find("\"job\":" + std::to_string(job) + ",") != std::string::npos;
  })) << root.gateway().output();
  ASSERT_TRUE(eventually([&] {
    auto c = root.kairosctl({"--json", "conflicts"});
    return c.status == 0 && c.output.find("\"type\":\"HASH_MISMATCH\"") != std::string::npos;
  })) << root.gateway().output();
  r = root.kairosctl({"conflicts"});
  EXPECT_NE(r.output.find("north/north-00001"), std::string::npos) << r.output;

  // The bridges cut (the root's broker down) while the sector works on: once
  // they are back, the root has the new job and conflict, each once.
  h.root_broker_->kill();
  r = north.kairosctl({"--json", "delegate", "echo", "--payload", "bridge-down", "--wait"});
  ASSERT_EQ(r.status, 0) << r.output;
  const auto job2 = static_cast<std::uint64_t>(json_number(r.output, "job"));
  bad_mac(north, *h.brokers_[0], "north-00002", "north-c2");
  ASSERT_TRUE(eventually([&] { return north.drops("bad_mac") >= 2; }));
  h.root_broker_->start();
  ASSERT_TRUE(eventually([&] {
    auto j = root.kairosctl({"--json", "jobs"});
    auto c = root.kairosctl({"--json", "conflicts"});
    return j.output.find("\"job\":" + std::to_string(job2) + ",") != std::string::npos &&
           mentions(c.output, "\"type\":\"HASH_MISMATCH\"") == 2;
  }, std::chrono::seconds(60))) << root.gateway().output();
  auto j = root.kairosctl({"--json", "jobs"});
  EXPECT_EQ(mentions(j.output, "\"job\":" + std::to_string(job2) + ","), 1u) << j.output;
  EXPECT_EQ(mentions(j.output, "\"job\":" + std::to_string(job) + ","), 1u) << j.output;
  // At the sector, each job finished once (its database refuses a second completion).
  auto rows = query_db(h.sector_dirs_[0]->file("gateway.db"),
                       "SELECT job_id, COUNT(*) FROM job_events WHERE kind = 'done' GROUP BY job_id ORDER BY job_id");
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) EXPECT_EQ(row[1], "1") << "job " << row[0];
}

}  // namespace
}  // namespace kairos::test

// Key rotation (docs/PROTOCOL.md, Key rotation) against a real Mosquitto, a
// real gateway and a real node: under traffic without a frame lost, the old
// key refused after, across node and gateway restarts, and the rotations
// that do not complete.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "common/core/frame.h"
#include "common/core/keywrap.h"
#include "common/core/topic.h"
#include "common/io/clock.h"
#include "common/io/rotated_key.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

constexpr TopicKind kReports[] = {TopicKind::birth, TopicKind::state, TopicKind::hb,    TopicKind::phase,
                                  TopicKind::event, TopicKind::ack,   TopicKind::result};

// A field of kairosctl's --json output ("name":value), as text.
std::string json_field(const std::string& out, const std::string& name) {
  auto at = out.find("\"" + name + "\":");
  if (at == std::string::npos) return "";
  at += name.size() + 3;
  auto end = out.find_first_of(",}", at);
  return out.substr(at, end - at);
}

long count_of(const std::string& text, const std::string& what) {
  long n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// One frame of n1's reports as a spy on the broker saw it.
struct Report {
  TopicKind kind;
  std::uint64_t session = 0, seq = 0;
  int key = -1;  // index of the key that verifies it; -1: none
};

std::uint64_t all_drops(const kairos_v1_StatusReply& s) {
  std::uint64_t n = 0;
  for (pb_size_t i = 0; i < s.drops_count; ++i) n += s.drops[i].count;
  return n;
}

struct Rotation {
  TempDir dir;
  Broker broker{dir};
  Mesh mesh{dir, broker};
  Client spy{broker.uri()};
  const std::string node_extra = "heartbeat_period_s = 0.5\nphase_period_s = 0.1";

  Rotation() { spy.subscribe(kTopicRoot.data() + mesh.name() + "/c1/n1/+"); }
  std::string topic(TopicKind kind) const { return node_topic(mesh.name(), "c1", "n1", kind); }
  std::string gateway_keys(const std::string& suffix) const { return dir.file("rotated-keys/nodes/n1.key" + suffix); }

  std::optional<kairos_v1_NodeInfo> online_n1() {
    auto n = mesh.node_info("n1");
    return n && n->online ? n : std::nullopt;
  }
  // Starts (or restarts) n1 and waits until the gateway has its new session online.
  std::uint64_t start_n1(const std::string& extra = "") {
    auto before = online_n1();
    mesh.start_node("n1", "c1", "waveform = \"sine\"\n", node_extra + "\n" + extra);
    std::uint64_t now = 0;
    EXPECT_TRUE(eventually([&] {
      auto n = online_n1();
      return n && (now = n->session_id) != (before ? before->session_id : 0);
    })) << mesh.gateway().output() << mesh.node("n1").output();
    return now;
  }
  // Every report of n1 the spy has seen, verified against keys.
  std::vector<Report> reports(const std::vector<Key>& keys) const {
    std::vector<Report> out;
    for (const auto& m : spy.seen()) {
      auto t = parse_topic(m.topic);
      if (!t || t->kind == TopicKind::cmd) continue;
      Report r{t->kind};
      for (std::size_t i = 0; i < keys.size() && r.key < 0; ++i) {
        auto opened = open(m.topic, m.payload, keys[i]);
        if (!opened) continue;
        r.key = static_cast<int>(i);
        r.session = opened.env->session_id;
        r.seq = opened.env->seq;
      }
      out.push_back(r);
    }
    return out;
  }
  // A heartbeat of n1's session signed with key, as whoever holds it would forge one.
  Bytes forged_heartbeat(const Key& key, std::uint64_t session, std::uint64_t seq) const {
    auto env = make_envelope("n1", session, seq, wall_us());
    env->which_message = kairos_v1_Envelope_heartbeat_tag;
    env->message.heartbeat.status = kairos_v1_NodeStatus_COMPLIANT;
    return seal(topic(TopicKind::hb), *env, key);
  }
  // The highest seq of n1's reports seen that verify under key (0: none yet).
  std::uint64_t highest_seq(const Key& key) const {
    std::uint64_t hi = 0;
    for (const auto& f : reports({key}))
      if (f.key == 0) hi = std::max(hi, f.seq);
    return hi;
  }
  std::uint64_t count_in_node_log(const std::string& what) { return count_of(mesh.node("n1").output(), what); }
  RunResult broadcast(const std::string& text) { return mesh.kairosctl({"broadcast", text, "--ack"}); }
};

RotatedKey read_rotated(const std::string& path) {
  auto k = load_rotated_key(path);
  if (!k) throw std::runtime_error(path + ": no rotated key");
  return *k;
}

}  // namespace

// The node reports its phase every 0.1 s and a heartbeat every 0.5 s while
// its key rotates. Between two pauses of the node, every report the spy on
// the broker sees verifies under the old or the new key, their sequence
// numbers run without a gap, every old-key frame comes before every new-key
// one, and the gateway accepts exactly as many frames (plus the two
// control requests) with no drop. After the confirmation a heartbeat
// signed with the old key is refused (bad_mac, a RETIRED_KEY conflict, no
// quarantine), and so is a command; the node keeps working, and after a
// restart it starts with the new key.
TEST(Rotation, UnderTrafficNoFrameIsLostAndTheOldKeyIsRefusedAfter) {
  Rotation r;
  r.mesh.start_gateway();
  const std::uint64_t session = r.start_n1();
  const Key old_key = r.mesh.node_key("n1");
  // Let the gateway's clock sync settle (pings signed with the old key).
  std::this_thread::sleep_for(1s);

  // Frames in flight arrive while the node is paused; then the window opens.
  auto drain = [&] { r.spy.wait_for([](const auto&) { return false; }, 400ms); };
  r.mesh.node("n1").signal(SIGSTOP);
  drain();
  r.spy.clear();
  auto before = r.mesh.status();
  ASSERT_TRUE(before);
  r.mesh.node("n1").signal(SIGCONT);
  std::this_thread::sleep_for(1500ms);

  const auto t0 = std::chrono::steady_clock::now();
  auto rot = r.mesh.kairosctl({"rotate-key", "n1", "--json"});
  const auto took_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(rot.status, 0) << rot.output << r.mesh.gateway().output() << r.mesh.node("n1").output();
  EXPECT_EQ(json_field(rot.output, "rotated"), "true") << rot.output;
  EXPECT_EQ(json_field(rot.output, "generation"), "1") << rot.output;
  EXPECT_EQ(json_field(rot.output, "resent"), "false") << rot.output;
  std::this_thread::sleep_for(2s);
  r.mesh.node("n1").signal(SIGSTOP);
  drain();
  auto after = r.mesh.status();
  r.mesh.node("n1").signal(SIGCONT);
  ASSERT_TRUE(after);

  // Both ends keep generation 1, of the same provisioned key.
  const RotatedKey node_new = read_rotated(r.dir.file("n1.key"));
  const RotatedKey gw_new = read_rotated(r.gateway_keys(""));
  const RotatedKey gw_old = read_rotated(r.gateway_keys(".old"));
  EXPECT_EQ(node_new.generation, 1u);
  EXPECT_EQ(node_new.key.bytes, gw_new.key.bytes);
  EXPECT_EQ(node_new.base, fingerprint(old_key));
  EXPECT_EQ(gw_old.key.bytes, old_key.bytes);
  EXPECT_EQ(gw_old.until_session, session);
  EXPECT_FALSE(load_rotated_key(r.gateway_keys(".next"))) << "nothing pending after the confirmation";
  EXPECT_NE(node_new.key.bytes, old_key.bytes);

  auto seen = r.reports({old_key, node_new.key});
  std::uint64_t lo = UINT64_MAX, hi = 0, old_n = 0, new_n = 0, last_old = 0, first_new = UINT64_MAX;
  std::set<std::uint64_t> seqs;
  for (const auto& f : seen) {
    ASSERT_GE(f.key, 0) << "a report under neither key";
    ASSERT_EQ(f.session, session);
    EXPECT_TRUE(seqs.insert(f.seq).second) << "seq " << f.seq << " twice";
    lo = std::min(lo, f.seq);
    hi = std::max(hi, f.seq);
    if (f.key == 0) {
      ++old_n;
      last_old = std::max(last_old, f.seq);
    } else {
      ++new_n;
      first_new = std::min(first_new, f.seq);
    }
  }
  ASSERT_GT(old_n, 5u);
  ASSERT_GT(new_n, 5u);
  EXPECT_EQ(hi - lo + 1, seen.size()) << "a gap in the node's sequence numbers";
  EXPECT_LT(last_old, first_new) << "the node signs with one key, then the other";
  // Accepted by the gateway: every report the spy saw, plus the rotate-key
  // request and the status request that reads the count; nothing dropped.
  EXPECT_EQ(after->frames_accepted - before->frames_accepted, seen.size() + 2);
  EXPECT_EQ(all_drops(*after), all_drops(*before)) << r.mesh.gateway().output();
  std::printf("rotation under traffic: %zu reports in the window (%llu under the old key, %llu under the new, seq %llu..%llu), "
              "%llu accepted by the gateway; rotate-key answered in %lld ms, confirmed in %s ms\n",
              seen.size(), static_cast<unsigned long long>(old_n), static_cast<unsigned long long>(new_n),
              static_cast<unsigned long long>(lo), static_cast<unsigned long long>(hi),
              static_cast<unsigned long long>(after->frames_accepted - before->frames_accepted - 2),
              static_cast<long long>(took_ms), json_field(rot.output, "confirm_ms").c_str());

  // The node keeps working under the new key: commands are signed with it.
  auto b = r.broadcast("after the rotation");
  EXPECT_NE(b.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << b.output << r.mesh.node("n1").output();

  // Whoever kept the old key forges a heartbeat with the next sequence numbers.
  const auto bad_mac = r.mesh.drops("bad_mac");
  r.spy.clear();
  ASSERT_TRUE(r.spy.wait_for([&](const auto&) { return r.highest_seq(node_new.key) > 0; }));
  const std::uint64_t next_seq = r.highest_seq(node_new.key) + 3;
  Client attacker(r.broker.uri());
  attacker.publish(r.topic(TopicKind::hb), r.forged_heartbeat(old_key, session, next_seq), 0);
  ASSERT_TRUE(eventually([&] { return r.mesh.drops("bad_mac") == bad_mac + 1; })) << r.mesh.gateway().output();
  auto conflicts = query_db(r.dir.file("gateway.db"), "SELECT type, priority FROM conflicts WHERE node = 'n1'");
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0][0], "RETIRED_KEY");
  EXPECT_EQ(conflicts[0][1], "4");
  auto n = r.online_n1();
  ASSERT_TRUE(n) << "still online";
  EXPECT_NE(n->status, kairos_v1_NodeStatus_QUARANTINED) << "an old key is not a way to quarantine a node";
  EXPECT_EQ(count_of(r.mesh.gateway().output(), "QUARANTINED"), 0) << r.mesh.gateway().output();

  // And a command signed with the old key: refused by the node (the gateway
  // has signed with the new one since), with no CAT-1 breach either.
  Signer forger("gw1", static_cast<std::uint64_t>(wall_us()) + 1'000'000'000);
  auto cmd = make_envelope("", 0, 0, 0);
  cmd->which_message = kairos_v1_Envelope_command_tag;
  cmd->message.command.command_id = 4242;
  cmd->message.command.to_session = session;
  cmd->message.command.which_action = kairos_v1_Command_freeze_tag;
  cmd->message.command.action.freeze = true;
  attacker.publish(r.topic(TopicKind::cmd), forger.seal(r.topic(TopicKind::cmd), *cmd, old_key, wall_us()));
  ASSERT_TRUE(eventually([&] { return r.count_in_node_log("rotated away from") >= 1; })) << r.mesh.node("n1").output();
  EXPECT_EQ(r.count_in_node_log("CAT-1"), 0) << r.mesh.node("n1").output();
  EXPECT_EQ(r.count_in_node_log("frozen by"), 0) << r.mesh.node("n1").output();
  b = r.broadcast("still obeyed");
  EXPECT_NE(b.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << b.output << r.mesh.node("n1").output();

  // A restart: the node starts with generation 1, from its state directory.
  const auto restarted = r.start_n1();
  EXPECT_NE(restarted, session);
  EXPECT_GE(r.count_in_node_log("key generation 1 from"), 1) << r.mesh.node("n1").output();
  b = r.broadcast("after a restart");
  EXPECT_NE(b.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << b.output << r.mesh.node("n1").output();
  EXPECT_EQ(r.mesh.drops("bad_mac"), bad_mac + 1) << r.mesh.gateway().output();

  // A second rotation goes from generation 1 to 2.
  rot = r.mesh.kairosctl({"rotate-key", "n1"});
  ASSERT_EQ(rot.status, 0) << rot.output;
  EXPECT_NE(rot.output.find("n1: key rotated to generation 2"), std::string::npos) << rot.output;
  EXPECT_EQ(read_rotated(r.dir.file("n1.key")).generation, 2u);
  EXPECT_EQ(read_rotated(r.gateway_keys(".old")).generation, 1u);
}

// The gateway is killed after it has kept the new key and sent it, before
// the node (paused) answers. The node takes the key while no gateway runs;
// the restarted gateway finds the key pending and completes the rotation
// with the node's first frame signed with it (its retained birth).
TEST(Rotation, AGatewayRestartMidRotationLosesNothing) {
  Rotation r;
  r.mesh.start_gateway();
  const std::uint64_t session = r.start_n1();
  const Key old_key = r.mesh.node_key("n1");

  r.mesh.node("n1").signal(SIGSTOP);
  Process ctl(r.mesh.kairosctl_argv({"rotate-key", "n1", "--within", "3000"}), r.dir.file("rotate.log"));
  ASSERT_TRUE(eventually([&] { return load_rotated_key(r.gateway_keys(".next")).has_value(); }))
      << r.mesh.gateway().output();
  std::this_thread::sleep_for(300ms);  // the rekey command is on its way to the broker
  r.mesh.gateway().signal(SIGKILL);
  r.mesh.gateway().wait(5s);
  r.mesh.node("n1").signal(SIGCONT);
  ASSERT_TRUE(eventually([&] { return r.count_in_node_log("key rotated from generation 0 to 1") == 1; }))
      << r.mesh.node("n1").output();
  r.mesh.start_gateway();
  ASSERT_TRUE(eventually([&] {
    auto k = load_rotated_key(r.gateway_keys(""));
    return k && k->generation == 1;
  }))
      << r.mesh.gateway().output();
  EXPECT_FALSE(load_rotated_key(r.gateway_keys(".next")));
  EXPECT_NE(r.mesh.gateway().output().find("key generation 1 confirmed"), std::string::npos) << r.mesh.gateway().output();
  auto n = r.online_n1();
  ASSERT_TRUE(n) << r.mesh.gateway().output();
  EXPECT_EQ(n->session_id, session);
  EXPECT_NE(n->status, kairos_v1_NodeStatus_QUARANTINED);
  EXPECT_EQ(r.mesh.drops("bad_mac"), 0u) << r.mesh.gateway().output();
  auto b = r.broadcast("after the gateway's restart");
  EXPECT_NE(b.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << b.output << r.mesh.node("n1").output();

  // The old key is refused now.
  r.spy.clear();
  const Key new_key = read_rotated(r.dir.file("n1.key")).key;
  ASSERT_TRUE(r.spy.wait_for([&](const auto&) { return r.highest_seq(new_key) > 0; }));
  Client attacker(r.broker.uri());
  attacker.publish(r.topic(TopicKind::hb), r.forged_heartbeat(old_key, session, r.highest_seq(new_key) + 3), 0);
  ASSERT_TRUE(eventually([&] { return r.mesh.drops("bad_mac") == 1; })) << r.mesh.gateway().output();
  n = r.online_n1();
  ASSERT_TRUE(n);
  EXPECT_NE(n->status, kairos_v1_NodeStatus_QUARANTINED);
  // Nobody answered the console: it said so and failed.
  auto st = ctl.wait(30s);
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, 1) << ctl.output();
  EXPECT_NE(ctl.output().find("no answer"), std::string::npos) << ctl.output();
}

// A node that cannot keep a new key refuses it; a node that does not answer
// in time leaves the rotation abandoned. Either way the old key stays in
// use, and running rotate-key again is safe: the key still pending is sent
// again, and this time the node takes it. kairos-sim's nodes refuse.
TEST(Rotation, RefusedOrUnconfirmedRotationsKeepTheOldKeyAndCanBeRunAgain) {
  Rotation r;
  r.mesh.start_gateway();
  // Nowhere to keep a rotated key: /proc refuses the directory.
  const std::uint64_t session = r.start_n1("rotated_key_file = \"/proc/kairos-nowhere/n1.key\"");
  auto rot = r.mesh.kairosctl({"rotate-key", "n1"});
  EXPECT_EQ(rot.status, 1) << rot.output;
  EXPECT_NE(rot.output.find("key NOT rotated, still generation 0: the node refused the new key: cannot keep the new key"),
            std::string::npos)
      << rot.output;
  auto b = r.broadcast("after a refused rotation");
  EXPECT_NE(b.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << b.output << r.mesh.node("n1").output();

  // Its own state directory then; paused past the rotation's time limit,
  // once the gateway knows its clock (so that the command expires).
  r.mesh.node("n1").signal(SIGTERM);
  r.mesh.node("n1").wait(10s);
  r.start_n1();
  ASSERT_TRUE(eventually([&] {
    auto n = r.online_n1();
    return n && n->clock_samples > 0;
  }));
  r.mesh.node("n1").signal(SIGSTOP);
  rot = r.mesh.kairosctl({"rotate-key", "n1", "--within", "1500", "--json"});
  EXPECT_EQ(rot.status, 1) << rot.output;
  EXPECT_EQ(json_field(rot.output, "rotated"), "false") << rot.output;
  EXPECT_NE(rot.output.find("no confirmation within 1500 ms"), std::string::npos) << rot.output;
  EXPECT_EQ(json_field(rot.output, "resent"), "true") << "the key the node refused is still pending\n" << rot.output;
  const RotatedKey pending = read_rotated(r.gateway_keys(".next"));
  r.mesh.node("n1").signal(SIGCONT);
  // The late rekey command has expired at the node: refused under the old key, which stays.
  const Key old_key = r.mesh.node_key("n1");
  ASSERT_TRUE(r.spy.wait_for([&](const auto&) {
    for (const auto& a : r.spy.frames(r.topic(TopicKind::ack), old_key, kairos_v1_Envelope_ack_tag))
      if (a->message.ack.state == -1 && std::string(a->message.ack.detail).find("expired") != std::string::npos)
        return true;
    return false;
  }, 15s)) << r.mesh.node("n1").output();
  EXPECT_FALSE(load_rotated_key(r.dir.file("n1.key")));
  b = r.broadcast("after an abandoned rotation");
  EXPECT_NE(b.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << b.output << r.mesh.node("n1").output();

  // Once more: the same pending key goes again, and is taken.
  rot = r.mesh.kairosctl({"rotate-key", "n1", "--json"});
  ASSERT_EQ(rot.status, 0) << rot.output << r.mesh.gateway().output();
  EXPECT_EQ(json_field(rot.output, "resent"), "true") << rot.output;
  EXPECT_EQ(json_field(rot.output, "generation"), "1") << rot.output;
  EXPECT_EQ(read_rotated(r.dir.file("n1.key")).key.bytes, pending.key.bytes);
  EXPECT_EQ(r.mesh.drops("bad_mac"), 0u) << r.mesh.gateway().output();

  // Usage errors (exit 2) and refusals before anything is sent (exit 1).
  EXPECT_EQ(r.mesh.kairosctl({"rotate-key"}).status, 2);
  EXPECT_EQ(r.mesh.kairosctl({"rotate-key", "n1", "--within", "10"}).status, 2);
  rot = r.mesh.kairosctl({"rotate-key", "nobody"});
  EXPECT_EQ(rot.status, 1);
  EXPECT_NE(rot.output.find("rotate-key: no node 'nobody'"), std::string::npos) << rot.output;
  (void)session;

  // kairos-sim's nodes share the node's command intake, but keep no key of their own: they refuse.
  Process sim(r.mesh.sim_argv({"--nodes", "1", "--prefix", "s", "--clusters", "1", "--hb-period-s", "1"}),
              r.dir.file("sim.log"));
  ASSERT_TRUE(eventually([&] {
    auto n = r.mesh.node_info("s-00001");
    return n && n->online;
  }, 30s)) << sim.output();
  rot = r.mesh.kairosctl({"rotate-key", "s-00001"});
  EXPECT_EQ(rot.status, 1) << rot.output;
  EXPECT_NE(rot.output.find("the node refused the new key: not supported by the simulator"), std::string::npos)
      << rot.output;
}

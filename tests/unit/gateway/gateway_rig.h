#pragma once
// The gateway's modules below its verb table (store, outbox, registry,
// escalation, node keys, ingest, control), wired as gateway.h wires them
// but without a link, for the unit tests of ingest and the control RPC
// (test_ingest.cpp, test_control.cpp, test_rotations_verbs.cpp): a real
// SQLite file and key files in a scratch directory, what the ports carry
// recorded, and restart() to build the modules anew over the same files.
// Nodes and consoles sign their frames as the real ones do.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/core/frame.h"
#include "common/io/clock.h"
#include "common/io/files.h"
#include "gateway/escalation/escalation.h"
#include "gateway/ingest/ingest.h"
#include "gateway/link/keyring.h"
#include "gateway/link/rotation.h"
#include "gateway/registry/registry.h"
#include "gateway/rpc/control.h"
#include "gateway/store/outbox.h"
#include "gateway/store/store.h"
#include "tests/unit/gateway/births.h"
#include "tests/unit/keys.h"
#include "tests/unit/scratch.h"

namespace kairos::test {

inline constexpr const char* kMesh = "m";
inline constexpr std::int64_t kHour = 3'600'000'000;  // us

// A node as the tests play it: frames on its own topics, signed with key,
// numbered within its session as a node numbers them.
struct FakeNode {
  FakeNode(std::string node_id, const Key& node_key, std::uint64_t node_session = 100, std::string node_cluster = "c1")
      : id(std::move(node_id)), cluster(std::move(node_cluster)), key(node_key), session(node_session) {}

  // A frame of this kind with the next seq (or at_seq, the counter left
  // alone); fill sets its message, and may change the header.
  Inbound frame(TopicKind kind, const std::function<void(Envelope&)>& fill, std::uint64_t at_seq = 0) {
    auto env = make_envelope(id, session, at_seq ? at_seq : ++seq, wall_us());
    fill(*env);
    Inbound m;
    m.topic = node_topic(kMesh, cluster, id, kind);
    m.payload = seal(m.topic, *env, key);
    m.received_mono_us = mono_us();
    return m;
  }
  Inbound birth() {
    return frame(TopicKind::birth, [this](Envelope& e) {
      e.which_message = kairos_v1_Envelope_birth_tag;
      e.message.birth = test::birth(cluster);
    });
  }
  Inbound heartbeat(std::uint64_t at_seq = 0) {
    return frame(TopicKind::hb, [](Envelope& e) {
      e.which_message = kairos_v1_Envelope_heartbeat_tag;
      e.message.heartbeat.status = kairos_v1_NodeStatus_COMPLIANT;
    }, at_seq);
  }
  // The session a node starts after a restart: a higher id, seq from 1.
  void restart(std::uint64_t new_session) {
    session = new_session;
    seq = 0;
  }

  std::string id;
  std::string cluster;
  Key key;
  std::uint64_t session;
  std::uint64_t seq = 0;  // the last one used
};

// A kairosctl as the tests play it: requests of operator op (on the legacy
// _ctl/req when op is "operator"), signed with key, from client.
struct FakeConsole {
  FakeConsole(std::string op_name, const Key& op_key, std::string client_id = "ctl-1")
      : op(std::move(op_name)), key(op_key), client(std::move(client_id)) {}

  // A request stamped sent_at_us (wall clock); fill sets its verb.
  Inbound request(const std::function<void(kairos_v1_ControlRequest&)>& fill, std::int64_t sent_at_us) {
    auto env = make_envelope(client, session, ++seq, sent_at_us);
    env->which_message = kairos_v1_Envelope_ctl_request_tag;
    env->message.ctl_request.request_id = ++request_id;
    fill(env->message.ctl_request);
    Inbound m;
    m.topic = op == kSharedOperator ? ctl_req_topic(kMesh) : ctl_req_topic(kMesh, op);
    m.payload = seal(m.topic, *env, key);
    m.response_topic = ctl_resp_topic(kMesh, client);
    m.correlation = {0xc0, static_cast<std::uint8_t>(seq)};
    m.received_mono_us = mono_us();
    return m;
  }
  // Stamped now.
  Inbound request(const std::function<void(kairos_v1_ControlRequest&)>& fill) { return request(fill, wall_us()); }

  std::string op;
  Key key;
  std::string client;
  std::uint64_t session = 7;
  std::uint64_t seq = 0;
  std::uint64_t request_id = 0;
};

// A module whose writes fail until told otherwise: the database as a full
// disk or a read-only file system leaves it (as in test_escalation.cpp).
struct FailingWriter : gw::Writer {
  bool fail = true;
  bool waiting = true;
  bool pending() const override { return waiting; }
  void write(gw::Store&) override {
    if (fail) throw std::runtime_error("disk I/O error");
  }
  void written() override { waiting = false; }
};

class Rig {
 public:
  struct Answered {
    gw::ReplyTo to;
    kairos_v1_ControlResponse resp;
  };
  struct Acked {
    std::string id;
    kairos_v1_Ack ack;
    std::int64_t t4;  // wall clock, us
  };
  struct Resulted {
    std::string id;
    kairos_v1_JobResult result;
    Bytes frame;
  };

  explicit Rig(const std::string& tag) : dir(tag) {
    config.id = "gw";
    config.mesh = kMesh;
    config.keys_dir = dir.file("keys");
    config.database = dir.file("gateway.db");
    config.rotated_keys_dir = dir.file("rotated");
    std::filesystem::create_directories(dir.file("keys/nodes"));
    std::filesystem::create_directories(dir.file("keys/operators"));
    start();
  }

  // Key files as kairosctl provision writes them (mode 0600).
  void node_key(const std::string& id, const Key& k) {
    write_file_atomic(config.keys_dir + "/nodes/" + id + ".key", to_hex(k.bytes) + "\n", 0600);
  }
  void operator_key(const std::string& name, const Key& k) {
    write_file_atomic(config.keys_dir + "/operators/" + name + ".key", to_hex(k.bytes) + "\n", 0600);
  }

  // The gateway started anew over the same files: what it knows comes from
  // the database and the key files (the registry starts empty).
  void restart() {
    parts_.reset();
    start();
  }

  // A message on a node's topic, as the gateway's loop hands it to ingest.
  void feed(const Inbound& m, std::int64_t now_us) {
    auto t = parse_topic(m.topic);
    ASSERT_TRUE(t) << m.topic;
    parts_->ingest.node_frame(*t, m, now_us);
  }
  std::uint64_t drops(DropReason r) const { return parts_->ingest.drops()[r]; }

  // The database stops being writable at a commit whose next try is an
  // hour ahead: paused for the whole test, however slow the machine.
  void break_storage(FailingWriter& w) {
    outbox().add(w);
    outbox().commit(mono_us() + kHour);
  }
  // Writable again, tried once the pause is over.
  void mend_storage(FailingWriter& w) {
    w.fail = false;
    outbox().commit(mono_us() + kHour + 6'000'000);
  }

  gw::Store& store() { return parts_->store; }
  gw::Outbox& outbox() { return parts_->outbox; }
  gw::Registry& registry() { return parts_->registry; }
  gw::Escalation& escalation() { return parts_->escalation; }
  gw::KeyBook& keys() { return parts_->keys; }
  gw::Ingest& ingest() { return parts_->ingest; }
  gw::Control& control() { return parts_->control; }

  ScratchDir dir;
  gw::GatewayConfig config;
  const Key shared = key_of(0x0e);  // the gateway's operator.key
  // What the ports carried, across restarts.
  std::vector<Acked> acks;
  std::vector<Resulted> results;
  std::vector<std::string> rotated;
  std::function<void(const std::string&)> on_rotated;  // then, when set
  std::vector<Answered> answers;
  int prepared = 0;
  std::vector<std::string> published;  // topics, after their commit
  std::vector<std::string> storage_failures;

 private:
  struct Parts {
    explicit Parts(Rig& r)
        : store(r.config.database),
          outbox(store, r.config.database, [&r](const std::string& why) { r.storage_failures.push_back(why); }),
          escalation(r.config, registry, outbox,
                     {[](const std::string&, Envelope&) { return Bytes{0xa1}; },
                      [](const std::string&, const std::string&, const std::string&) { return std::uint64_t{1}; }}),
          ring(r.config.keys_dir),
          keys(ring, r.config.rotated_keys_dir),
          ingest(r.config, keys, registry, escalation, outbox,
                 {[&r](const std::string& id, const kairos_v1_Ack& ack, std::int64_t t4) {
                    r.acks.push_back({id, ack, t4});
                  },
                  [&r](const std::string& id, const Envelope& env, ByteView frame) {
                    r.results.push_back({id, env.message.result, Bytes(frame.begin(), frame.end())});
                  },
                  [&r](const std::string& id) {
                    r.rotated.push_back(id);
                    if (r.on_rotated) r.on_rotated(id);
                  },
                  {}}),  // no bridges
          control(r.config, r.shared, outbox, ingest, escalation,
                  {[&r](const gw::ReplyTo& to, kairos_v1_ControlResponse& resp) { r.answers.push_back({to, resp}); },
                   [&r](std::int64_t) { ++r.prepared; }}) {
      outbox.set_publish([&r](const std::string& topic, const Bytes&, bool) { r.published.push_back(topic); });
      control.restore();
    }
    gw::Store store;
    gw::Outbox outbox;
    gw::Registry registry;
    gw::Escalation escalation;
    gw::KeyRing ring;
    gw::KeyBook keys;
    gw::Ingest ingest;
    gw::Control control;
  };
  void start() { parts_ = std::make_unique<Parts>(*this); }
  std::unique_ptr<Parts> parts_;
};

}  // namespace kairos::test

#include "gateway/link/rotation.h"

#include "common/core/topic.h"
#include "common/io/keygen.h"
#include "common/io/log.h"
#include "common/io/rotated_key.h"

namespace kairos::gw {

namespace {

// The gap between a Will's seq and the counter when it was sealed
// (docs/PROTOCOL.md, The Will), as kairos-node sets it.
constexpr std::uint64_t kWillSeqGap = 1ULL << 40;

}  // namespace

bool NodeKeys::before_switch(std::uint64_t session, std::uint64_t seq, bool will) const {
  if (!retired || retired->until_session == 0 || session != retired->until_session) return false;
  if (will) return seq >= kWillSeqGap && seq - kWillSeqGap < retired->until_seq;
  return seq < retired->until_seq;
}

void NodeKeys::promote(std::uint64_t session, std::uint64_t seq) {
  if (!pending) return;
  retired = current;
  retired->until_session = session;
  retired->until_seq = seq;
  current = *pending;
  current.until_session = current.until_seq = 0;
  pending.reset();
}

KeyBook::KeyBook(KeyRing& ring, std::string dir, std::int64_t retry_us)
    : ring_(ring), dir_(std::move(dir)), retry_us_(retry_us) {}

NodeKeys* KeyBook::find(const std::string& id, std::int64_t now_us) {
  if (auto it = nodes_.find(id); it != nodes_.end()) return &it->second;
  if (auto it = failed_.find(id); it != failed_.end() && now_us - it->second < retry_us_) return nullptr;
  const Key* provisioned = ring_.node_key(id, now_us);
  if (!provisioned) return nullptr;
  NodeKeys k;
  try {
    std::string why;
    k.current = choose_key(*provisioned, load_rotated_key(path(id, ".key")), why);
    if (!why.empty()) log::warn("keys", path(id, ".key") + " not used: " + why);
    else if (k.current.generation > 0)
      log::info("keys",
                id + ": key generation " + std::to_string(k.current.generation) + " (" + path(id, ".key") + ")");
    if (auto next = load_rotated_key(path(id, ".key.next"))) {
      if (next->base == k.current.base && next->generation == k.current.generation + 1) {
        k.pending = next;
        log::info("keys", id + ": key generation " + std::to_string(next->generation) +
                              " is pending from a rotation not yet confirmed; the node's first frame signed with it "
                              "completes the rotation");
      } else {
        // What is left of a rotation completed (or of another provisioned key).
        remove_rotated_key(path(id, ".key.next"));
      }
    }
    if (auto old = load_rotated_key(path(id, ".key.old")))
      if (old->base == k.current.base && old->generation + 1 == k.current.generation) k.retired = old;
  } catch (const std::exception& e) {
    if (!failed_.count(id))
      log::error("keys", std::string(e.what()) + ": frames of " + id + " are dropped until it is fixed");
    if (failed_.size() > 10'000) failed_.clear();
    failed_[id] = now_us;
    return nullptr;
  }
  failed_.erase(id);
  return &nodes_.emplace(id, std::move(k)).first->second;
}

const Key* KeyBook::signing_key(const std::string& id, std::int64_t now_us) {
  NodeKeys* k = find(id, now_us);
  return k ? &k->current.key : nullptr;
}

KeyBook::Opened KeyBook::open(const std::string& id, NodeKeys*& known, TopicKind kind, std::string_view topic,
                              ByteView payload, std::int64_t now_us) {
  Opened o;
  if (!known) known = find(id, now_us);
  NodeKeys* k = known;
  if (!k) return o;
  o.known = true;
  o.generation = k->current.generation;
  o.frame = kairos::open(topic, payload, k->current.key);
  if (o.frame || *o.frame.drop != DropReason::bad_mac) return o;
  if (k->pending) {
    auto p = kairos::open(topic, payload, k->pending->key);
    if (p || *p.drop != DropReason::bad_mac) {
      o.frame = std::move(p);
      o.use = KeyUse::pending;
      o.generation = k->pending->generation;
      if (o.frame) {
        // Only the node can sign with it: it has taken the key.
        k->promote(o.frame.env->session_id, o.frame.env->seq);
        o.promoted = true;
        save_promotion(id, *k);
      }
      return o;
    }
  }
  if (k->retired) {
    auto r = kairos::open(topic, payload, k->retired->key);
    if (r) {
      o.generation = k->retired->generation;
      const bool will = kind == TopicKind::state && r.env->which_message == kairos_v1_Envelope_state_tag &&
                        !r.env->message.state.online;
      if (k->before_switch(r.env->session_id, r.env->seq, will)) {
        o.frame = std::move(r);
        o.use = KeyUse::retired;
        return o;
      }
      o.retired_refused = true;
      o.frame.detail = "signed with the retired key (generation " + std::to_string(k->retired->generation) +
                       ") after the node switched to generation " + std::to_string(k->current.generation);
    }
  }
  return o;
}

KeyBook::Begun KeyBook::begin(const std::string& id, std::int64_t now_us) {
  Begun b;
  NodeKeys* k = find(id, now_us);
  if (!k) {
    b.error = "no usable key for " + id;
    return b;
  }
  b.generation = k->current.generation + 1;
  if (k->pending && k->pending->generation == b.generation) {
    // Never confirmed: the node may hold it after all, so the same key goes again.
    b.resent = true;
  } else {
    RotatedKey next{b.generation, k->current.base, generate_key(), 0, 0};
    try {
      save_rotated_key(path(id, ".key.next"), next);
    } catch (const std::exception& e) {
      b.error = e.what();
      return b;
    }
    k->pending = next;
  }
  b.wrapped = wrap_key(rekey_kek(k->current.key, id, b.generation), k->pending->key);
  return b;
}

void KeyBook::save_promotion(const std::string& id, const NodeKeys& k) {
  // In this order a crash at any point leaves files that read back right:
  // the retired key, then the new current one, then no pending one.
  try {
    if (k.retired) save_rotated_key(path(id, ".key.old"), *k.retired);
    save_rotated_key(path(id, ".key"), k.current);
    remove_rotated_key(path(id, ".key.next"));
  } catch (const std::exception& e) {
    // The node has switched: its new key stays in use here. The files still
    // say pending, so after a restart its next frame completes it again.
    log::error("keys", id + ": key generation " + std::to_string(k.current.generation) +
                           " is in use but could not be written: " + e.what());
  }
}

}  // namespace kairos::gw

#pragma once
// What the bridges to other systems (Home Assistant, Sparkplug B) show of
// each node, beyond the registry: its inputs and outputs as its birth names
// them, and each input's latest sample, phase and coherence from its phase
// reports. Fed by ingest as frames are applied; pure logic.
//
// A node's record is reached from its registry entry by a handle
// (NodeEntry::bridge_slot), so that a frame costs no lookup by name, and
// the bridges' queues hold handles, so that marking a node costs no
// allocation (docs/DESIGN.md 5.10).
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "kairos.pb.h"

namespace kairos::gw {

// The phase of z in degrees, in [0, 360): what the bridges show (NaN for a non-finite z).
double phase_degrees(double re, double im);

struct InputReading {
  std::string name;
  std::optional<double> value;      // the latest sample, in the input's own unit
  std::optional<double> phase_deg;  // the primary scale's phase, degrees in [0, 360)
  std::optional<double> coherence;  // its coherence, 0..1
};

struct NodeFacts {
  std::string id;  // empty: a record forgotten
  std::string cluster;
  std::string board;
  std::string firmware;
  std::vector<std::string> inputs;   // as the birth lists them
  std::vector<std::string> outputs;
  std::uint32_t primary_scale = 0;   // the scale whose phase an input shows
  std::vector<InputReading> readings;  // one per input, in the birth's order
  std::uint8_t queued = 0;           // a bit per bridge queue holding it (HandleQueue)
};

class NodeFactsBook {
 public:
  // A birth: the node's record (made on its first), its inputs and outputs
  // (readings of inputs it still has are kept). Returns its handle (never
  // 0); changed: what the bridges describe of it (inputs, outputs, board,
  // firmware, cluster) is new.
  std::uint32_t on_birth(const std::string& id, const std::string& cluster, const kairos_v1_NodeBirth& b, bool& changed);
  // A live phase report of the node with that handle: each named input's latest reading.
  void on_phase(std::uint32_t handle, const kairos_v1_PhaseReport& p);
  // The readings a phase report carries, without keeping them (a report the node's backlog replayed).
  std::vector<InputReading> readings_of(std::uint32_t handle, const kairos_v1_PhaseReport& p) const;
  // The record goes (kairosctl forget); its handle is not given again.
  void forget(const std::string& id);
  NodeFacts* at(std::uint32_t handle) {
    return handle == 0 || handle > records_.size() || records_[handle - 1].id.empty() ? nullptr : &records_[handle - 1];
  }
  const NodeFacts* find(const std::string& id) const;
  std::uint32_t handle(const std::string& id) const;
  // Every record, in the order they were made.
  template <class F>
  void each(F&& f) const {
    for (std::size_t i = 0; i < records_.size(); ++i)
      if (!records_[i].id.empty()) f(static_cast<std::uint32_t>(i + 1), records_[i]);
  }
  std::size_t size() const { return index_.size(); }

 private:
  std::vector<NodeFacts> records_;
  std::unordered_map<std::string, std::uint32_t> index_;
};

// The nodes a bridge has news of, first come first served, each at most
// once: what a bridge sends in one turn is bounded by its message budget,
// and a node that waited longest goes first (no node starves behind busier
// ones). A queue owns one bit of NodeFacts::queued; adding a node already
// queued costs a bit test.
class HandleQueue {
 public:
  explicit HandleQueue(std::uint8_t bit) : bit_(bit) {}
  void add(NodeFacts& f, std::uint32_t handle) {
    if (f.queued & bit_) return;
    f.queued |= bit_;
    order_.push_back(handle);
    ++size_;
  }
  // The node that waited longest, taken off the queue (a forgotten one skipped); nullptr when none.
  NodeFacts* pop(NodeFactsBook& book) {
    while (!order_.empty()) {
      const std::uint32_t h = order_.front();
      order_.pop_front();
      NodeFacts* f = book.at(h);
      if (!f || !(f->queued & bit_)) continue;
      f->queued &= static_cast<std::uint8_t>(~bit_);
      --size_;
      return f;
    }
    size_ = 0;
    return nullptr;
  }
  // Empties the queue; book clears the bits it set.
  void clear(NodeFactsBook& book) {
    for (std::uint32_t h : order_)
      if (NodeFacts* f = book.at(h)) f->queued &= static_cast<std::uint8_t>(~bit_);
    order_.clear();
    size_ = 0;
  }
  std::size_t size() const { return size_; }

 private:
  std::uint8_t bit_;
  std::deque<std::uint32_t> order_;
  std::size_t size_ = 0;
};

}  // namespace kairos::gw

#pragma once
// Per-node deadlines without a walk of the registry (docs/DESIGN.md 5.1): a
// min-heap holding, for each node, its earliest pending deadline. A node
// keeps in one of its own fields (slot) the time of that entry; an entry
// whose time no longer matches the slot was superseded by an earlier one
// and is skipped when it surfaces. The cost is O(log n) per deadline set or
// reached, whatever the number of nodes.
#include <cstdint>
#include <queue>
#include <vector>

namespace kairos::gw {

template <class Node>
class NodeDeadlines {
 public:
  explicit NodeDeadlines(std::int64_t Node::*slot) : slot_(slot) {}

  // Node n is due no later than at_us (0 is never a deadline).
  void at(Node& n, std::int64_t at_us) {
    if (n.*slot_ != 0 && n.*slot_ <= at_us) return;  // an earlier one stands
    n.*slot_ = at_us;
    heap_.push({at_us, &n});
  }
  // The next node due at or before now_us (its deadline cleared), or nullptr.
  Node* due(std::int64_t now_us) {
    while (!heap_.empty() && heap_.top().at_us <= now_us) {
      Entry e = heap_.top();
      heap_.pop();
      if (e.node->*slot_ != e.at_us) continue;  // superseded
      e.node->*slot_ = 0;
      return e.node;
    }
    return nullptr;
  }
  // Node n leaves: every entry of it goes (a rebuild of the heap, for the
  // rare removal of a node; its memory may be freed afterwards).
  void drop(const Node* n) {
    std::vector<Entry> kept;
    kept.reserve(heap_.size());
    while (!heap_.empty()) {
      if (heap_.top().node != n) kept.push_back(heap_.top());
      heap_.pop();
    }
    heap_ = decltype(heap_)(std::greater<Entry>(), std::move(kept));
  }
  // The earliest deadline queued (superseded ones included: never later than the true one).
  std::int64_t next() const { return heap_.empty() ? INT64_MAX : heap_.top().at_us; }
  std::size_t size() const { return heap_.size(); }

 private:
  struct Entry {
    std::int64_t at_us;
    Node* node;
    bool operator>(const Entry& o) const { return at_us > o.at_us; }
  };
  std::int64_t Node::*slot_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
};

}  // namespace kairos::gw

#pragma once
// Store and forward (docs/DESIGN.md 3.8): what a node could not send while the broker
// was unreachable, kept in order and bounded. Events, acks and results are
// kept before phase reports; when space runs short the phase reports are
// thinned first (every other one, oldest first), and whatever is dropped is
// counted. Frames are kept unsealed and signed when they are sent, so a
// backlog saved to a file survives a restart into a new session. Only the
// important class goes to the file (phase reports are cheap to lose).
#include <cstdint>
#include <deque>
#include <string>

#include "common/core/bytes.h"
#include "common/core/topic.h"

namespace kairos::node {

struct QueuedFrame {
  TopicKind kind = TopicKind::event;
  std::string topic;
  Bytes envelope;  // an encoded Envelope: message and sent_at, header filled when sent
  bool important() const { return kind != TopicKind::phase; }
};

class Backlog {
 public:
  // capacity in frames; file empty = RAM only.
  Backlog(std::size_t capacity, std::string file);

  void push(QueuedFrame f);
  bool empty() const { return q_.empty(); }
  const QueuedFrame& front() const { return q_.front(); }
  void pop();
  std::size_t size() const { return q_.size(); }

  // Frames from a previous run's file (call once at start).
  void load();

  std::uint64_t phase_dropped() const { return phase_dropped_; }
  std::uint64_t important_dropped() const { return important_dropped_; }
  std::uint64_t file_errors() const { return file_errors_; }

 private:
  bool thin_phase();  // drops one phase report; false if none
  void append_to_file(const QueuedFrame& f);
  void rewrite_file();

  std::size_t capacity_;
  std::string file_;
  std::deque<QueuedFrame> q_;
  std::size_t important_in_file_ = 0;  // important frames the file holds (written, not yet truncated)
  std::size_t important_popped_ = 0;
  std::uint64_t phase_dropped_ = 0;
  std::uint64_t important_dropped_ = 0;
  std::uint64_t file_errors_ = 0;
};

}  // namespace kairos::node

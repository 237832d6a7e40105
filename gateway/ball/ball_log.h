#pragma once
// Ball plays begun and entries appended since the last commit (docs/DESIGN.md
// 6), written by the outbox before the entry is delivered or its head
// published.
#include <string>
#include <utility>
#include <vector>

#include "common/core/ball.h"
#include "common/io/clock.h"
#include "gateway/store/outbox.h"

namespace kairos::gw {

class BallLog : public Writer {
 public:
  void play(const std::string& session, const std::string& ball_id) { plays_.emplace_back(session, ball_id); }
  // The entry as stored, by the operator whose request it was ("" for a node's answer).
  void entry(const std::string& ball_id, const ball::Entry& e, const std::string& by) {
    entries_.emplace_back(ball_id, e);
    entries_.back().second.asked_by = by;
  }
  bool pending() const override { return !plays_.empty() || !entries_.empty(); }
  void write(Store& store) override {
    for (const auto& [session, ball_id] : plays_) store.append_ball_play(session, ball_id, wall_us());
    for (const auto& [ball_id, e] : entries_) store.append_ball_entry(ball_id, e);
  }
  void written() override {
    plays_.clear();
    entries_.clear();
  }

 private:
  std::vector<std::pair<std::string, std::string>> plays_;  // (session, ball id)
  std::vector<std::pair<std::string, ball::Entry>> entries_;
};

}  // namespace kairos::gw

#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/core/frame.h"

namespace kairos {

// Sliding window over sequence numbers of one (sender, session): accepts
// each seq once, tolerating reordering of up to kWidth frames (QoS 1
// redelivery), like the IPsec anti-replay window.
class ReplayWindow {
 public:
  static constexpr std::uint64_t kWidth = 64;

  ReplayWindow() = default;
  // Restores a persisted high-water mark: everything at or below it is seen.
  explicit ReplayWindow(std::uint64_t high_water) : hwm_(high_water), seen_(~0ULL) {}

  // True (and marks seq seen) when seq was not seen and is inside the window.
  bool accept(std::uint64_t seq);
  std::uint64_t high_water() const { return hwm_; }

 private:
  std::uint64_t hwm_ = 0;
  std::uint64_t seen_ = 0;  // bit i: hwm_ - i was seen
};

// Replay and session check per sender (docs/DESIGN.md 4). Session ids are
// ordered: a sender only ever raises its own (a persisted boot counter), so
// a birth opens a session only if it is newer than the current one, and a
// frame of any older session is refused however old it is.
class SessionGuard {
 public:
  struct Verdict {
    std::optional<DropReason> drop;
    bool new_session = false;  // this frame started a session
  };

  // A sender's state. The guard never removes one, so a caller may keep
  // the pointer check() gives it and skip the lookup next time.
  struct Sender {
    std::uint64_t session = 0;
    ReplayWindow window;
    std::uint64_t last_will_seq = 0;
  };

  // may_start: the frame may open a new session (a birth).
  Verdict check(std::string_view sender, std::uint64_t session, std::uint64_t seq, bool may_start) {
    Sender* known = nullptr;
    return check(sender, known, session, seq, may_start);
  }
  // The same with the sender's state at hand: known is looked up (or made by
  // a birth) when null, and set.
  Verdict check(std::string_view sender, Sender*& known, std::uint64_t session, std::uint64_t seq, bool may_start);

  // A Will (state offline) of the current session: sealed at connect with a
  // seq above the live counter, published later by the broker. Checked apart
  // from the live window, so it neither blocks later frames nor passes twice.
  Verdict check_will(std::string_view sender, std::uint64_t session, std::uint64_t seq);

  // Restores persisted state (a start); the newest session of a sender wins.
  void restore(std::string_view sender, std::uint64_t session, std::uint64_t high_water);

  std::optional<std::uint64_t> current_session(std::string_view sender) const;
  std::uint64_t high_water(std::string_view sender) const;
  std::size_t size() const { return senders_.size(); }

 private:
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Sender, NameHash, std::equal_to<>> senders_;
};

}  // namespace kairos

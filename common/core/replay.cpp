#include "common/core/replay.h"

namespace kairos {

bool ReplayWindow::accept(std::uint64_t seq) {
  if (seq > hwm_) {
    std::uint64_t shift = seq - hwm_;
    seen_ = shift >= kWidth ? 0 : seen_ << shift;
    seen_ |= 1;
    hwm_ = seq;
    return true;
  }
  std::uint64_t age = hwm_ - seq;
  if (age >= kWidth) return false;
  std::uint64_t bit = 1ULL << age;
  if (seen_ & bit) return false;
  seen_ |= bit;
  return true;
}

SessionGuard::Verdict SessionGuard::check(std::string_view sender, Sender*& known, std::uint64_t session,
                                          std::uint64_t seq, bool may_start) {
  if (!known) {
    auto it = senders_.find(sender);
    if (it == senders_.end()) {
      if (!may_start) return {DropReason::unknown_session, false};
      Sender s;
      s.session = session;
      s.window.accept(seq);
      known = &senders_.emplace(std::string(sender), std::move(s)).first->second;
      return {std::nullopt, true};
    }
    known = &it->second;
  }
  Sender& s = *known;
  if (session == s.session) {
    if (!s.window.accept(seq)) return {DropReason::replay, false};
    return {};
  }
  if (session < s.session) return {DropReason::stale_session, false};
  if (!may_start) return {DropReason::unknown_session, false};
  s.session = session;
  s.window = ReplayWindow();
  s.window.accept(seq);
  s.last_will_seq = 0;
  return {std::nullopt, true};
}

SessionGuard::Verdict SessionGuard::check_will(std::string_view sender, std::uint64_t session,
                                               std::uint64_t seq) {
  auto it = senders_.find(sender);
  if (it == senders_.end()) return {DropReason::unknown_session, false};
  Sender& s = it->second;
  if (session != s.session)
    return {session < s.session ? DropReason::stale_session : DropReason::unknown_session, false};
  if (seq <= s.last_will_seq) return {DropReason::replay, false};
  if (seq <= s.window.high_water()) {
    // below the live counter: an ordinary frame (clean shutdown) must be new
    if (!s.window.accept(seq)) return {DropReason::replay, false};
  }
  s.last_will_seq = seq;
  return {};
}

void SessionGuard::restore(std::string_view sender, std::uint64_t session, std::uint64_t high_water) {
  auto it = senders_.find(sender);
  if (it == senders_.end()) it = senders_.emplace(std::string(sender), Sender{}).first;
  Sender& s = it->second;
  if (session < s.session) return;
  s.session = session;
  s.window = ReplayWindow(high_water);
  s.last_will_seq = 0;
}

std::optional<std::uint64_t> SessionGuard::current_session(std::string_view sender) const {
  auto it = senders_.find(sender);
  if (it == senders_.end()) return std::nullopt;
  return it->second.session;
}

std::uint64_t SessionGuard::high_water(std::string_view sender) const {
  auto it = senders_.find(sender);
  return it == senders_.end() ? 0 : it->second.window.high_water();
}

}  // namespace kairos

#include "gateway/store/outbox.h"

#include <algorithm>

#include "common/io/log.h"

namespace kairos::gw {

bool Outbox::transaction(const std::function<void(Store&)>& fn, std::int64_t now_us) {
  try {
    store_.begin();
    fn(store_);
    store_.commit();
  } catch (const std::exception& e) {
    store_.rollback();
    failed(e.what(), now_us);
    return false;
  }
  if (!error_.empty()) recovered();
  return true;
}

void Outbox::commit(std::int64_t now_us) {
  if (std::any_of(writers_.begin(), writers_.end(), [](const Writer* w) { return w->pending(); })) {
    // What waits for durability (answers, alerts) waits while nothing can be written.
    if (paused(now_us)) return;
    if (!transaction([&](Store& s) { for (auto* w : writers_) if (w->pending()) w->write(s); }, now_us)) return;
    for (auto* w : writers_) w->written();
  }
  auto after = std::move(after_);
  after_.clear();
  for (auto& send : after) send();
  if (!publish_) return;  // still starting: published once the link exists
  auto publications = std::move(publications_);
  publications_.clear();
  for (const auto& p : publications) publish_(p.topic, p.frame, p.retained);
  for (auto& f : committed_) f();
}

void Outbox::failed(const std::string& why, std::int64_t now_us) {
  retry_us_ = now_us + 5'000'000;
  if (!error_.empty()) return;
  error_ = why.substr(0, 160);
  failed_(why);
}

void Outbox::recovered() {
  log::info("gateway", database_ + " is writable again (was: " + error_ + ")");
  error_.clear();
}

}  // namespace kairos::gw

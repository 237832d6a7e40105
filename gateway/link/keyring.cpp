#include "gateway/link/keyring.h"

#include "common/core/topic.h"
#include "common/io/files.h"
#include "common/io/log.h"

namespace kairos::gw {

namespace {
constexpr std::size_t kMaxMissing = 10'000;
}

KeyRing::KeyRing(std::string dir, std::int64_t retry_us) : dir_(std::move(dir)), retry_us_(retry_us) {}

void KeyRing::load_shared() {
  broadcast_ = load_key_file(dir_ + "/broadcast.key");
  operator_ = load_key_file(dir_ + "/operator.key");
}

const Key* KeyRing::node_key(const std::string& id, std::int64_t now_us) {
  if (auto it = nodes_.find(id); it != nodes_.end()) return &it->second;
  if (!valid_name(id)) return nullptr;
  if (auto it = missing_.find(id); it != missing_.end() && now_us - it->second < retry_us_) return nullptr;
  try {
    auto [it, _] = nodes_.emplace(id, load_key_file(dir_ + "/nodes/" + id + ".key"));
    missing_.erase(id);
    return &it->second;
  } catch (const std::exception& e) {
    if (missing_.size() >= kMaxMissing) missing_.clear();
    if (!missing_.count(id)) missing_log_.write(log::Level::warn, "keys", e.what(), now_us);
    missing_[id] = now_us;
    return nullptr;
  }
}

}  // namespace kairos::gw

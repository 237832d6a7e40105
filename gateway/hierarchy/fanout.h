#pragma once
// A root's requests to its sectors (docs/DESIGN.md 5.9): each signed with
// the sector's key on _sector/<sector>/req; its answer is checked under the
// same key on _sector/<sector>/resp and matched by request id. An answer
// that has not come by its deadline is reported as none.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/mqtt.h"
#include "gateway/gateway_config.h"
#include "gateway/hierarchy/sectors.h"

namespace kairos::gw {

using SectorAnswer = std::shared_ptr<const kairos_v1_ControlResponse>;  // null: no answer by the deadline

class Fanout {
 public:
  using Done = std::function<void(const std::string& sector, SectorAnswer answer)>;
  using AllDone = std::function<void(const std::map<std::string, SectorAnswer>& answers)>;
  struct Ports {
    // Signs env with key and publishes it (QoS 1) on topic.
    std::function<void(const std::string& topic, Envelope& env, const Key& key)> publish;
    std::function<void(DropReason reason, const std::string& topic, const std::string& detail, std::int64_t now_us)> drop;
  };
  Fanout(const GatewayConfig& config, const SectorBook& book, Ports ports);

  // Sends req (its request id set here) to sector; done once, with the answer or null by deadline_us (monotonic).
  void ask(const std::string& sector, kairos_v1_ControlRequest req, std::int64_t deadline_us, Done done);
  // The same request to each of sectors; all once every one has answered or timed out.
  void ask_all(const std::vector<std::string>& sectors, const kairos_v1_ControlRequest& req, std::int64_t deadline_us,
               AllDone all);
  // A message on _sector/<sector>/resp.
  void on_message(const Topic& t, const Inbound& m, std::int64_t now_us);
  // Reports the requests whose deadline has passed.
  void service(std::int64_t now_us);
  std::size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    std::string sector;
    std::int64_t deadline_us;
    Done done;
  };
  const GatewayConfig& config_;
  const SectorBook& book_;
  Ports ports_;
  std::map<std::uint64_t, Pending> pending_;  // by request id
};

}  // namespace kairos::gw

#pragma once
#include <memory>
#include <string>

#include "common/core/crypto.h"
#include "common/io/mqtt.h"
#include "kairos.pb.h"

namespace kairos {

// The operator's side of the control RPC (docs/DESIGN.md 4, 5.8): MQTT v5 request /
// response with correlation data. A named operator's requests go to
// _ctl/req/<operator> signed with its own key, and the answers come signed
// with the same key; without a name, _ctl/req and the shared operator key.
class CtlClient {
 public:
  CtlClient(MqttOptions options, std::string mesh, Key operator_key, std::string operator_name = "");

  // Waits until connected; false (with why) after timeout_ms, or at once
  // when the broker refuses the credentials.
  bool connect(int timeout_ms, std::string& why);
  // The code of the last failed connect attempt (see connect_code), 0 if none failed.
  int connect_code() const { return connect_code_; }
  // Sends req and waits for the matching, verified response.
  std::unique_ptr<kairos_v1_ControlResponse> call(kairos_v1_ControlRequest& req, int timeout_ms, std::string& why);
  const std::string& client_id() const { return client_id_; }

 private:
  std::string mesh_;
  Key key_;
  std::string operator_;  // "" for the shared key's legacy topic
  std::string client_id_;
  std::uint64_t session_;
  std::uint64_t seq_ = 1;
  int connect_code_ = 0;
  std::unique_ptr<MqttLink> link_;
};

}  // namespace kairos

#pragma once
// Where the answer to a control request goes (docs/PROTOCOL.md, Control RPC):
// the caller's response topic and correlation data, and the operator who asked.
#include <functional>
#include <memory>
#include <string>

#include "common/core/bytes.h"
#include "kairos.pb.h"

namespace kairos::gw {

struct ReplyTo {
  std::string topic;
  Bytes correlation;
  std::string by;  // the operator
};

// An empty answer to request_id (ok false until a verb fills it).
inline std::unique_ptr<kairos_v1_ControlResponse> new_response(std::uint64_t request_id) {
  auto resp = std::make_unique<kairos_v1_ControlResponse>();
  *resp = kairos_v1_ControlResponse_init_zero;
  resp->request_id = request_id;
  return resp;
}

// Signs and sends an answer (with the key the request was checked with).
using Answer = std::function<void(const ReplyTo& to, kairos_v1_ControlResponse& resp)>;

struct NodeEntry;
// Signs a command for node n (its key, its session), fill() setting the
// action, and sends it with the TTL: the command's id, 0 when it could not
// be sent (no key). The port every module that commands nodes takes.
using SendCommand =
    std::function<std::uint64_t(const NodeEntry& n, std::uint32_t ttl_ms, const std::function<void(kairos_v1_Command&)>& fill)>;

// The answer as a task for later (after the next commit), holding the response until then.
inline std::function<void()> answer_later(const Answer& answer, const ReplyTo& to,
                                          std::unique_ptr<kairos_v1_ControlResponse> resp) {
  return [answer, to, r = std::shared_ptr<kairos_v1_ControlResponse>(std::move(resp))] { answer(to, *r); };
}

}  // namespace kairos::gw

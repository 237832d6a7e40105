#include "common/io/ctl_client.h"

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/clock.h"

namespace kairos {

CtlClient::CtlClient(MqttOptions options, std::string mesh, Key operator_key, std::string operator_name)
    : mesh_(std::move(mesh)), key_(operator_key), operator_(std::move(operator_name)), session_(random_u64()) {
  char id[24];
  std::snprintf(id, sizeof id, "ctl-%012llx", static_cast<unsigned long long>(random_u64() & 0xffffffffffffULL));
  client_id_ = id;
  options.client_id = mesh_ + "-" + client_id_;
  link_ = std::make_unique<MqttLink>(std::move(options));
  link_->add_subscription(ctl_resp_topic(mesh_, client_id_), 1);
}

bool CtlClient::connect(int timeout_ms, std::string& why) {
  std::int64_t deadline = mono_us() + std::int64_t{timeout_ms} * 1000;
  link_->wait(0);  // take in connection events that arrived meanwhile
  while (!link_->connected()) {
    std::int64_t now = mono_us();
    if (now >= deadline) {
      why = why.empty() ? "cannot reach the broker" : "cannot connect to the broker (" + why + ")";
      return false;
    }
    link_->service(now);
    for (auto& ev : link_->wait(std::min(deadline, now + 50'000))) {
      if (ev.type != LinkEvent::Type::connect_failed) continue;
      why = ev.detail;
      connect_code_ = ev.code;
      if (connect_is_final(ev.code)) return false;  // refused credentials do not change by trying again
    }
  }
  return true;
}

std::unique_ptr<kairos_v1_ControlResponse> CtlClient::call(kairos_v1_ControlRequest& req, int timeout_ms,
                                                           std::string& why) {
  req.request_id = random_u64();
  auto env = make_envelope(client_id_, session_, seq_++, wall_us());
  env->which_message = kairos_v1_Envelope_ctl_request_tag;
  env->message.ctl_request = req;
  auto topic = ctl_req_topic(mesh_, operator_);
  PublishProps props;
  props.response_topic = ctl_resp_topic(mesh_, client_id_);
  props.correlation.resize(8);
  for (int i = 0; i < 8; ++i) props.correlation[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(req.request_id >> (8 * i));
  // Sent now, or kept in the backlog and sent after a reconnect.
  link_->publish(topic, seal(topic, *env, key_), 1, false, props);
  std::int64_t deadline = mono_us() + std::int64_t{timeout_ms} * 1000;
  while (mono_us() < deadline) {
    link_->service(mono_us());
    for (auto& ev : link_->wait(std::min(deadline, mono_us() + 50'000))) {
      if (ev.type == LinkEvent::Type::connected) link_->drain_backlog();
      if (ev.type != LinkEvent::Type::message || ev.msg.correlation != props.correlation) continue;
      auto opened = open(ev.msg.topic, ev.msg.payload, key_);
      if (!opened) {
        why = "response refused: " + std::string(to_string(*opened.drop)) + " (" + opened.detail + ")";
        continue;
      }
      if (opened.env->which_message != kairos_v1_Envelope_ctl_response_tag ||
          opened.env->message.ctl_response.request_id != req.request_id)
        continue;
      auto out = std::make_unique<kairos_v1_ControlResponse>(opened.env->message.ctl_response);
      return out;
    }
  }
  if (why.empty()) why = "no answer from the gateway";
  return nullptr;
}

}  // namespace kairos

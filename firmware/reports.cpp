#include "firmware/reports.h"

namespace kairos::node {

EnvelopePtr state_envelope(bool online, std::uint64_t session) {
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_state_tag;
  env->message.state.online = online;
  env->message.state.session_id = session;
  return env;
}

Bytes sealed_state(std::string_view topic, std::string_view sender, std::uint64_t session, std::uint64_t seq,
                   std::int64_t sent_at_us, bool online, const Key& key) {
  auto env = state_envelope(online, session);
  set_string(env->sender, sender);
  env->session_id = session;
  env->seq = seq;
  env->sent_at_us = sent_at_us;
  return seal(topic, *env, key);
}

void fill_scales(kairos_v1_InputPhase& ip, const KairosFilter& filter) {
  if (!filter.has_sample()) return;
  for (std::size_t k = 0; k < filter.scales() && ip.scales_count < 8; ++k) {
    const auto& s = filter.scale(k);
    auto& sp = ip.scales[ip.scales_count++];
    sp.has_z = true;
    sp.z.re = static_cast<float>(s.z.real());
    sp.z.im = static_cast<float>(s.z.imag());
    sp.c = static_cast<float>(s.c);
    sp.r = static_cast<float>(filter.rhythm(k).r());
  }
}

}  // namespace kairos::node

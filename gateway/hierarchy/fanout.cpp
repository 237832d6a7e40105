#include "gateway/hierarchy/fanout.h"

#include "common/io/clock.h"

namespace kairos::gw {

Fanout::Fanout(const GatewayConfig& config, const SectorBook& book, Ports ports)
    : config_(config), book_(book), ports_(std::move(ports)) {}

void Fanout::ask(const std::string& sector, kairos_v1_ControlRequest req, std::int64_t deadline_us, Done done) {
  const Key* key = book_.key(sector);
  if (!key) return done(sector, nullptr);
  req.request_id = random_u64() | 1;
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_ctl_request_tag;
  env->message.ctl_request = req;
  pending_[req.request_id] = {sector, deadline_us, std::move(done)};
  ports_.publish(sector_topic(config_.mesh, sector, TopicKind::sector_req), *env, *key);
}

void Fanout::ask_all(const std::vector<std::string>& sectors, const kairos_v1_ControlRequest& req,
                     std::int64_t deadline_us, AllDone all) {
  if (sectors.empty()) return all({});
  struct Gather {
    std::size_t waiting;
    std::map<std::string, SectorAnswer> answers;
    AllDone all;
  };
  auto g = std::make_shared<Gather>(Gather{sectors.size(), {}, std::move(all)});
  for (const auto& s : sectors)
    ask(s, req, deadline_us, [g](const std::string& sector, SectorAnswer answer) {
      g->answers[sector] = std::move(answer);
      if (--g->waiting == 0) g->all(g->answers);
    });
}

void Fanout::on_message(const Topic& t, const Inbound& m, std::int64_t now_us) {
  const Key* key = book_.key(t.name);
  if (!key)
    return ports_.drop(DropReason::unknown_sender, m.topic, "sector " + t.name + " is not in hierarchy.sectors", now_us);
  auto opened = open(m.topic, m.payload, *key);
  if (!opened) return ports_.drop(*opened.drop, m.topic, opened.detail, now_us);
  if (!kind_matches(TopicKind::sector_resp, *opened.env))
    return ports_.drop(DropReason::kind_mismatch, m.topic, "not an answer", now_us);
  const auto& resp = opened.env->message.ctl_response;
  auto it = pending_.find(resp.request_id);
  // Answered already, timed out, or never asked (a replay): nothing waits for it.
  if (it == pending_.end() || it->second.sector != t.name)
    return ports_.drop(DropReason::replay, m.topic, "no request " + std::to_string(resp.request_id) + " waiting", now_us);
  Pending p = std::move(it->second);
  pending_.erase(it);
  p.done(p.sector, std::make_shared<const kairos_v1_ControlResponse>(resp));
}

void Fanout::service(std::int64_t now_us) {
  std::vector<Pending> late;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now_us < it->second.deadline_us) {
      ++it;
      continue;
    }
    late.push_back(std::move(it->second));
    it = pending_.erase(it);
  }
  for (auto& p : late) p.done(p.sector, nullptr);
}

}  // namespace kairos::gw

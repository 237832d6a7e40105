#include "gateway/hierarchy/summary.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "common/core/utf8.h"
#include "common/io/clock.h"

namespace kairos::gw {

namespace {

template <typename T>
T p95(std::vector<T> v) {
  if (v.empty()) return T{};
  auto k = static_cast<std::size_t>(std::ceil(0.95 * static_cast<double>(v.size()))) - 1;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// The worse of two breaker states: OPEN over HALF_OPEN over CLOSED.
BreakerState worse(BreakerState a, BreakerState b) {
  auto rank = [](BreakerState s) { return s == BreakerState::open ? 2 : s == BreakerState::half_open ? 1 : 0; };
  return rank(a) >= rank(b) ? a : b;
}

}  // namespace

GroupTally::GroupTally(const RegistrySettings& settings, std::int64_t now_us, std::int64_t at_wall_us)
    : settings_(settings), now_us_(now_us), at_wall_us_(at_wall_us) {
  sums_.at_us = at_wall_us;
  sums_.stale_after_s = settings.stale_after_s;
}

void GroupTally::add(const NodeEntry& n) {
  ++known_;
  const auto cls = static_cast<std::size_t>(std::clamp<int>(n.device_class, 0, 6));
  ++by_class_[cls];
  if (!n.online) {
    ++by_status_[kairos_v1_NodeStatus_OFFLINE];
    return;
  }
  ++online_;
  for (std::size_t at = 0; at < n.capabilities.size();) {
    auto comma = n.capabilities.find(',', at);
    if (comma == std::string::npos) comma = n.capabilities.size();
    if (comma > at) capabilities_.insert(n.capabilities.substr(at, comma - at));
    at = comma + 1;
  }
  const auto status = n.quarantined ? kairos_v1_NodeStatus_QUARANTINED : n.status;
  ++by_status_[std::clamp<int>(status, 0, 6)];
  if (n.clock.count() > 0) {
    const int score = n.impedance(now_us_).score;
    scores_.push_back(score);
    rtts_ms_.push_back(n.clock.rtt_us() / 1000.0);
    if (score > slowest_score_) slowest_score_ = score, slowest_ = n.id;
    if (score < fastest_score_) fastest_score_ = score, fastest_ = n.id;
  }
  if (n.clock.count() >= ClockFilter::kSyncedSamples) ++synced_;
  // The node's share of the mesh sync, as the registry weighs it (docs/DESIGN.md 5.3).
  if (!n.phase_valid || n.quarantined || n.status == kairos_v1_NodeStatus_QUARANTINED) return;
  const auto k = static_cast<std::size_t>(std::clamp<int>(n.device_class, 1, 6) - 1);
  const double w = sync_weight(settings_.class_weight[k], static_cast<double>(now_us_ - n.phase_us) / 1e6,
                               settings_.stale_after_s);
  if (!(w > 0)) return;
  sums_.w += w;
  sums_.z_re += w * n.z.real();
  sums_.z_im += w * n.z.imag();
  sums_.c += w * n.c;
  sums_.zz += w * std::norm(n.z);
  ++sums_.contributors;
}

void GroupTally::add(const GroupTally& o) {
  known_ += o.known_;
  online_ += o.online_;
  synced_ += o.synced_;
  for (int i = 0; i < 7; ++i) by_status_[i] += o.by_status_[i], by_class_[i] += o.by_class_[i];
  scores_.insert(scores_.end(), o.scores_.begin(), o.scores_.end());
  rtts_ms_.insert(rtts_ms_.end(), o.rtts_ms_.begin(), o.rtts_ms_.end());
  capabilities_.insert(o.capabilities_.begin(), o.capabilities_.end());
  if (o.slowest_score_ > slowest_score_) slowest_score_ = o.slowest_score_, slowest_ = o.slowest_;
  if (o.fastest_score_ < fastest_score_) fastest_score_ = o.fastest_score_, fastest_ = o.fastest_;
  sums_.w += o.sums_.w;
  sums_.z_re += o.sums_.z_re;
  sums_.z_im += o.sums_.z_im;
  sums_.c += o.sums_.c;
  sums_.zz += o.sums_.zz;
  sums_.contributors += o.sums_.contributors;
}

void GroupTally::fill(kairos_v1_GroupSummary& g, const std::string& name, const std::string& breaker) const {
  set_string(g.name, name);
  g.known = known_;
  g.online = online_;
  g.by_status_count = 7;
  g.by_class_count = 7;
  for (int i = 0; i < 7; ++i) g.by_status[i] = by_status_[i], g.by_class[i] = by_class_[i];
  if (!scores_.empty()) {
    double sum = 0;
    for (int s : scores_) sum += s;
    g.impedance_mean = static_cast<float>(sum / static_cast<double>(scores_.size()));
    g.impedance_p95 = static_cast<float>(p95(scores_));
    g.clock_rtt_p95_ms = static_cast<float>(p95(rtts_ms_));
    set_string(g.slowest, slowest_);
    g.slowest_score = static_cast<std::uint32_t>(std::max(0, slowest_score_));
    set_string(g.fastest, fastest_);
    g.fastest_score = static_cast<std::uint32_t>(std::max(0, fastest_score_));
  }
  g.clock_synced = synced_;
  for (const auto& c : capabilities_) {
    if (g.capabilities_count >= sizeof g.capabilities / sizeof g.capabilities[0]) break;
    set_string(g.capabilities[g.capabilities_count++], c);
  }
  g.has_sums = true;
  g.sums = sums_;
  set_string(g.breaker, breaker);
}

SectorReporter::SectorReporter(const GatewayConfig& config, const RegistrySettings& settings, const Registry& registry,
                               const Breakers& breakers, Ports ports)
    : config_(config), settings_(settings), registry_(registry), breakers_(breakers), ports_(std::move(ports)) {}

std::string SectorReporter::fingerprint(std::int64_t now_us) const {
  std::size_t open = 0;
  for (const auto& v : breakers_.view(now_us)) open += v.state != BreakerState::closed;
  const auto facts = ports_.facts();
  return std::to_string(registry_.online_count()) + "/" + std::to_string(registry_.nodes().size()) + "/" +
         std::to_string(facts.mode) + "/" + std::to_string(open);
}

void SectorReporter::service(std::int64_t now_us, bool connected) {
  if (!connected) return;
  if (now_us < next_us_ && now_us < next_look_us_) return;
  const bool due = now_us >= next_us_;
  next_look_us_ = now_us + 1'000'000;
  auto print = fingerprint(now_us);
  if (!due && print == last_fingerprint_) return;
  last_fingerprint_ = std::move(print);
  publish(now_us);
  next_us_ = now_us + static_cast<std::int64_t>(config_.summary_period_s * 1e6);
}

void SectorReporter::publish(std::int64_t now_us) {
  const std::int64_t at = wall_us();
  std::map<std::string, BreakerState> cluster_breaker;
  BreakerState sector_breaker = BreakerState::closed;
  std::uint32_t open = 0;
  for (const auto& v : breakers_.view(now_us)) {
    if (v.scope == "cluster") cluster_breaker[v.name] = v.state;
    sector_breaker = worse(sector_breaker, v.state);
    open += v.state != BreakerState::closed;
  }
  GroupTally total(settings_, now_us, at);
  std::uint32_t clusters = 0;
  for (const auto& [cluster, members] : registry_.clusters()) {
    if (members.empty()) continue;
    ++clusters;
    GroupTally tally(settings_, now_us, at);
    for (const NodeEntry* n : members) tally.add(*n);
    total.add(tally);
    auto env = make_envelope("", 0, 0, 0);
    env->which_message = kairos_v1_Envelope_cluster_summary_tag;
    auto& cs = env->message.cluster_summary;
    set_string(cs.sector, config_.sector);
    cs.has_cluster = true;
    auto b = cluster_breaker.find(cluster);
    tally.fill(cs.cluster, cluster, to_string(b == cluster_breaker.end() ? BreakerState::closed : b->second));
    ports_.publish(sector_topic(config_.mesh, config_.sector, TopicKind::cluster_summary, cluster), *env);
  }
  const SectorFacts facts = ports_.facts();
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_sector_summary_tag;
  auto& s = env->message.sector_summary;
  set_string(s.sector, config_.sector);
  set_string(s.gateway, config_.id);
  s.period_ms = static_cast<std::uint32_t>(config_.summary_period_s * 1000);
  s.has_total = true;
  total.fill(s.total, config_.sector, to_string(sector_breaker));
  s.mode = facts.mode;
  s.conflicts_open_count = 5;
  for (int i = 0; i < 5; ++i) s.conflicts_open[i] = facts.conflicts_open[i];
  s.jobs_queued = facts.jobs_queued;
  s.jobs_running = facts.jobs_running;
  s.clusters = clusters;
  s.breakers_open = open;
  set_string(s.last_cascade, facts.last_cascade);
  s.summary_seq = ++seq_;
  s.uptime_ms = facts.uptime_ms;
  s.conflict_high = facts.conflict_high;
  s.job_finished_us = facts.job_finished_us;
  ports_.publish(sector_topic(config_.mesh, config_.sector, TopicKind::sector_summary), *env);
}

}  // namespace kairos::gw

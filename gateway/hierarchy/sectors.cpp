#include "gateway/hierarchy/sectors.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "common/core/utf8.h"
#include "common/io/clock.h"
#include "common/io/files.h"

namespace kairos::gw {

MeshFigures figures_from_sums(const std::vector<kairos_v1_PhaseSums>& sums, std::int64_t at_wall_us) {
  double w = 0, c = 0, zz = 0;
  std::complex<double> z{0, 0};
  MeshFigures f;
  for (const auto& s : sums) {
    if (!(s.w > 0) || !(s.stale_after_s > 0)) continue;
    // Every weight in s decays by this same factor from s.at_us to at_wall_us.
    const double k = std::exp(-static_cast<double>(at_wall_us - s.at_us) / 1e6 / s.stale_after_s);
    w += k * s.w;
    z += k * std::complex<double>(s.z_re, s.z_im);
    c += k * s.c;
    zz += k * s.zz;
    f.contributors += s.contributors;
  }
  if (!(w > 0)) return MeshFigures{};
  f.z = z / w;
  f.coherence = c / w;
  // sum a_i |z_i - Z|^2 = sum a_i |z_i|^2 - |Z|^2 sum a_i (as Registry::figures)
  const double spread = std::max(0.0, zz - std::norm(f.z) * w);
  f.agreement = std::clamp(1.0 - 2.0 * std::sqrt(spread / w), 0.0, 1.0);
  return f;
}

SectorBook::SectorBook(const GatewayConfig& config, BreakerSettings breakers, Ports ports)
    : config_(config), breaker_settings_(breakers), ports_(std::move(ports)) {
  for (const auto& name : config.root_sectors) {
    const std::string path = config.sector_key_path(name);
    names_.push_back(name);
    try {
      sectors_[name].key = load_key_file(path);
    } catch (const std::exception& e) {
      throw std::runtime_error("sector " + name + ": " + e.what() + " (kairosctl provision --sector " + name +
                               " writes it)");
    }
  }
}

std::int64_t SectorBook::stale_after_us(const Sector& s) const {
  const double period_s = s.heard && s.summary.period_ms ? s.summary.period_ms / 1000.0 : config_.summary_period_s;
  return static_cast<std::int64_t>(config_.stale_periods * period_s * 1e6);
}

const Key* SectorBook::key(const std::string& sector) const {
  auto it = sectors_.find(sector);
  return it == sectors_.end() ? nullptr : &it->second.key;
}

void SectorBook::on_message(const Topic& t, const Inbound& m, std::int64_t now_us) {
  auto it = sectors_.find(t.name);
  if (it == sectors_.end())
    return ports_.drop(DropReason::unknown_sender, m.topic, "sector " + t.name + " is not in hierarchy.sectors", now_us);
  Sector& s = it->second;
  if (m.payload.empty()) return;  // a cleared retained summary (a cluster gone)
  auto opened = open(m.topic, m.payload, s.key);
  if (!opened) return ports_.drop(*opened.drop, m.topic, opened.detail, now_us);
  const Envelope& env = *opened.env;
  if (!kind_matches(t.kind, env)) return ports_.drop(DropReason::kind_mismatch, m.topic, "not a summary", now_us);
  const bool whole = t.kind == TopicKind::sector_summary;
  const char* sector = whole ? env.message.sector_summary.sector : env.message.cluster_summary.sector;
  if (t.name != sector) return ports_.drop(DropReason::sender_mismatch, m.topic, "summary of another sector", now_us);
  if (!whole && t.cluster != env.message.cluster_summary.cluster.name)
    return ports_.drop(DropReason::sender_mismatch, m.topic, "summary of another cluster", now_us);
  if (whole && std::string_view(env.sender) != env.message.sector_summary.gateway)
    return ports_.drop(DropReason::sender_mismatch, m.topic, "sent by another gateway", now_us);
  // Replays: per topic, a newer session of the sector gateway or a higher seq in its session.
  auto& [session, seq] = s.high_water[m.topic];
  if (env.session_id < session) return ports_.drop(DropReason::stale_session, m.topic, "an older session", now_us);
  if (env.session_id == session && env.seq <= seq)
    return ports_.drop(DropReason::replay, m.topic, "seq " + std::to_string(env.seq) + " already seen", now_us);
  session = env.session_id;
  seq = env.seq;
  if (!whole) {
    s.clusters[t.cluster] = env.message.cluster_summary.cluster;
    return;
  }
  s.summary = env.message.sector_summary;
  // As old as its stamp says (a retained summary of a sector long gone is no news).
  const std::int64_t age_us = std::max<std::int64_t>(0, wall_us() - s.summary.total.sums.at_us);
  s.last_us = now_us - std::min(age_us, now_us);
  s.heard = true;
  service(now_us);
}

void SectorBook::service(std::int64_t now_us) {
  for (auto& [name, s] : sectors_) {
    if (!s.heard && s.last_us == 0) s.last_us = now_us;  // one never heard has as long as a silent one from now
    const bool stale = now_us - s.last_us > stale_after_us(s);
    if (stale && !s.stale) {
      s.stale = true;
      s.silent_since_us = s.heard ? s.last_us : 0;
      // Silence is a failure: the breaker opens at once (docs/DESIGN.md 5.9).
      s.breaker.failure(now_us, 0, breaker_settings_);
      if (ports_.changed) ports_.changed(name, true);
    } else if (!stale && s.stale) {
      s.stale = false;
      // Back: down from its last summary before the silence (the KPI's recovery time).
      if (s.silent_since_us) {
        ++recoveries_;
        recovery_total_us_ += std::max<std::int64_t>(0, now_us - s.silent_since_us);
      }
      if (ports_.changed) ports_.changed(name, false);
    }
    // A live sector probes its open breaker: its summaries are the probe's success.
    if (!s.stale && s.breaker.state() == BreakerState::open && s.breaker.admit(now_us, breaker_settings_))
      s.breaker.success(now_us);
    s.breaker.service(now_us, breaker_settings_);
  }
}

SectorBook::Totals SectorBook::totals() const {
  Totals t;
  double impedance = 0;
  std::uint64_t weighed = 0;
  for (const auto& [name, s] : sectors_) {
    ++t.sectors;
    t.breakers_open += s.breaker.state() != BreakerState::closed;
    t.stale += s.stale;
    if (!s.heard) continue;
    // A stale sector's nodes are known, not online: the mode counts them so.
    t.known += s.summary.total.known;
    t.clusters += s.summary.clusters;
    if (s.stale) continue;
    ++t.live;
    t.online += s.summary.total.online;
    t.jobs_queued += s.summary.jobs_queued;
    t.jobs_running += s.summary.jobs_running;
    // Each sector's mean weighed by its online nodes.
    const auto& g = s.summary.total;
    impedance += static_cast<double>(g.impedance_mean) * g.online;
    weighed += g.online;
  }
  t.mean_impedance = weighed ? impedance / static_cast<double>(weighed) : 0;
  return t;
}

void SectorBook::fill_status(kairos_v1_StatusReply& r) const {
  const auto t = totals();
  r.nodes_known = t.known;
  r.nodes_online = t.online;
  r.clusters = t.clusters;
  r.sectors_total = t.sectors;
  r.sectors_healthy = t.sectors - t.breakers_open;
  r.sectors_stale = t.stale;
  r.mean_impedance = static_cast<float>(t.mean_impedance);
  r.jobs_queued += t.jobs_queued;
  r.jobs_running += t.jobs_running;
  r.breakers_open += t.breakers_open;
}

MeshFigures SectorBook::figures() const {
  std::vector<kairos_v1_PhaseSums> sums;
  for (const auto& [name, s] : sectors_)
    if (s.heard && !s.stale && s.summary.total.has_sums) sums.push_back(s.summary.total.sums);
  return figures_from_sums(sums, wall_us());
}

bool SectorBook::mesh_open() const {
  std::size_t open = 0;
  for (const auto& [name, s] : sectors_) open += s.breaker.state() != BreakerState::closed;
  return static_cast<int>(open) > breaker_settings_.global_sectors;
}

void SectorBook::fill(const kairos_v1_SectorsRequest& q, kairos_v1_SectorList& r, std::int64_t now_us) const {
  r.total = static_cast<std::uint32_t>(sectors_.size());
  const std::string after = q.after;
  for (const auto& [name, s] : sectors_) {
    r.stale += s.stale;
    if (!after.empty() && name <= after) continue;
    if (r.sectors_count >= sizeof r.sectors / sizeof r.sectors[0]) continue;
    auto& o = r.sectors[r.sectors_count++];
    set_string(o.name, name);
    set_string(o.state, s.stale ? "stale" : !s.heard ? "unknown" : "live");
    set_string(o.breaker, to_string(s.breaker.state()));
    if (!s.heard) continue;
    o.age_ms = static_cast<std::uint32_t>(std::min<std::int64_t>((now_us - s.last_us) / 1000, UINT32_MAX));
    o.has_summary = true;
    o.summary = s.summary;
  }
}

}  // namespace kairos::gw

namespace kairos::gw {

std::vector<std::string> SectorBook::reachable(std::int64_t now_us, bool admit) {
  std::vector<std::string> out;
  for (auto& [name, s] : sectors_) {
    if (!s.heard || s.stale) continue;
    if (admit ? s.breaker.admit(now_us, breaker_settings_) : s.breaker.would_admit(now_us, breaker_settings_))
      out.push_back(name);
  }
  return out;
}

std::vector<std::string> SectorBook::capable(const std::string& to, const std::vector<std::string>& needs,
                                             std::int64_t now_us) const {
  struct Candidate {
    std::string name;
    std::uint32_t nodes;
    float impedance;
  };
  std::vector<Candidate> found;
  auto has = [](const kairos_v1_GroupSummary& g, const std::string& cap) {
    for (pb_size_t i = 0; i < g.capabilities_count; ++i)
      if (cap == g.capabilities[i]) return true;
    return false;
  };
  for (const auto& [name, s] : sectors_) {
    if (!s.heard || s.stale || !s.breaker.would_admit(now_us, breaker_settings_)) continue;
    const auto& g = s.summary.total;
    std::uint32_t nodes = g.online;
    if (to.rfind("class:", 0) == 0 && to.size() == 7) {
      const int cls = to[6] - 'A' + 1;
      nodes = cls >= 1 && cls <= 6 && static_cast<pb_size_t>(cls) < g.by_class_count ? g.by_class[cls] : 0;
    } else if (to.rfind("cluster:", 0) == 0) {
      auto c = s.clusters.find(to.substr(8));
      nodes = c == s.clusters.end() ? 0 : c->second.online;
    } else if (!to.empty() && to != "all" && to.rfind("node:", 0) != 0 && !has(g, to)) {
      nodes = 0;
    }
    for (const auto& need : needs)
      if (!has(g, need)) nodes = 0;
    if (nodes > 0) found.push_back({name, nodes, g.impedance_mean});
  }
  std::sort(found.begin(), found.end(), [](const Candidate& a, const Candidate& b) {
    if (a.nodes != b.nodes) return a.nodes > b.nodes;
    if (a.impedance != b.impedance) return a.impedance < b.impedance;
    return a.name < b.name;
  });
  std::vector<std::string> out;
  for (auto& c : found) out.push_back(std::move(c.name));
  return out;
}

bool SectorBook::admit(const std::string& sector, std::int64_t now_us) {
  auto it = sectors_.find(sector);
  return it != sectors_.end() && !it->second.stale && it->second.breaker.admit(now_us, breaker_settings_);
}

void SectorBook::failure(const std::string& sector, std::int64_t now_us) {
  if (auto it = sectors_.find(sector); it != sectors_.end())
    it->second.breaker.failure(now_us, breaker_settings_.sector_failures, breaker_settings_);
}

void SectorBook::success(const std::string& sector, std::int64_t now_us) {
  if (auto it = sectors_.find(sector); it != sectors_.end()) it->second.breaker.success(now_us);
}

std::uint32_t SectorBook::known(const std::string& sector) const {
  auto it = sectors_.find(sector);
  return it == sectors_.end() || !it->second.heard ? 0 : it->second.summary.total.known;
}

const kairos_v1_SectorSummary* SectorBook::summary(const std::string& sector) const {
  auto it = sectors_.find(sector);
  return it == sectors_.end() || !it->second.heard ? nullptr : &it->second.summary;
}

void SectorBook::fill_breakers(kairos_v1_BreakerList& r, std::int64_t now_us) const {
  auto add = [&](const std::string& scope, const std::string& name, const Breaker& b) {
    ++r.total;
    r.open += b.state() != BreakerState::closed;
    if (r.breakers_count >= sizeof r.breakers / sizeof r.breakers[0]) return;
    auto& o = r.breakers[r.breakers_count++];
    set_string(o.scope, scope);
    set_string(o.name, name);
    set_string(o.state, to_string(b.state()));
    o.failures = static_cast<std::uint32_t>(b.failures(now_us, breaker_settings_));
    o.wait_s = static_cast<std::uint32_t>(b.wait_us() / 1'000'000);
    if (b.state() == BreakerState::open) o.probe_at_us = wall_us() + (b.probe_at_us() - now_us);
    o.opened = static_cast<std::uint32_t>(b.opened());
  };
  // Not CLOSED first, as the gateway lists its own.
  for (int pass = 0; pass < 2; ++pass)
    for (const auto& [name, s] : sectors_)
      if ((s.breaker.state() != BreakerState::closed) == (pass == 0)) add("sector", name, s.breaker);
  kairos_v1_BreakerInfo mesh = kairos_v1_BreakerInfo_init_zero;
  set_string(mesh.scope, "global");
  set_string(mesh.name, "mesh");
  set_string(mesh.state, mesh_open() ? "OPEN" : "CLOSED");
  ++r.total;
  r.open += mesh_open();
  if (r.breakers_count < sizeof r.breakers / sizeof r.breakers[0]) r.breakers[r.breakers_count++] = mesh;
}

}  // namespace kairos::gw

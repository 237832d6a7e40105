#include "common/core/topic.h"

#include <array>
#include <vector>

namespace kairos {

namespace {

struct KindName {
  TopicKind kind;
  std::string_view name;
};

constexpr std::array<KindName, 8> kNodeKinds{{
    {TopicKind::birth, "birth"},
    {TopicKind::state, "state"},
    {TopicKind::hb, "hb"},
    {TopicKind::phase, "phase"},
    {TopicKind::event, "event"},
    {TopicKind::ack, "ack"},
    {TopicKind::result, "result"},
    {TopicKind::cmd, "cmd"},
}};

// The levels of a topic, without allocating: no topic of ours has more
// than 6; one with more than kMaxLevels is nothing we know (size() 0).
struct Levels {
  static constexpr std::size_t kMaxLevels = 8;
  std::array<std::string_view, kMaxLevels> v;
  std::size_t n = 0;
  std::size_t size() const { return n; }
  std::string_view operator[](std::size_t i) const { return v[i]; }
};

Levels split(std::string_view s) {
  Levels parts;
  std::size_t start = 0;
  while (true) {
    if (parts.n == Levels::kMaxLevels) return Levels{};
    auto slash = s.find('/', start);
    parts.v[parts.n++] = s.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return parts;
}

std::string join(std::initializer_list<std::string_view> parts) {
  std::string out(kTopicRoot);
  bool first = true;
  for (auto p : parts) {
    if (!first) out.push_back('/');
    out.append(p);
    first = false;
  }
  return out;
}

}  // namespace

std::string_view to_string(TopicKind kind) {
  for (const auto& k : kNodeKinds)
    if (k.kind == kind) return k.name;
  switch (kind) {
    case TopicKind::mesh_state: return "mesh_state";
    case TopicKind::gw_state: return "gw_state";
    case TopicKind::sector_summary: return "sector_summary";
    case TopicKind::cluster_summary: return "cluster_summary";
    case TopicKind::sector_req: return "sector_req";
    case TopicKind::sector_resp: return "sector_resp";
    case TopicKind::ctl_req: return "ctl_req";
    case TopicKind::ctl_resp: return "ctl_resp";
    case TopicKind::alert: return "alert";
    case TopicKind::ball_head: return "ball_head";
    case TopicKind::ball_to: return "ball_to";
    default: return "?";
  }
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || name.front() == '_') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<Topic> parse_topic(std::string_view topic) {
  if (topic.substr(0, kTopicRoot.size()) != kTopicRoot) return std::nullopt;
  auto parts = split(topic.substr(kTopicRoot.size()));
  if (parts.size() < 2 || !valid_name(parts[0])) return std::nullopt;
  Topic t;
  t.mesh = parts[0];
  const auto& p = parts;
  if (p.size() == 3 && p[1] == "_mesh" && p[2] == "state") {
    t.kind = TopicKind::mesh_state;
    return t;
  }
  if (p.size() == 2 && p[1] == "_alert") {
    t.kind = TopicKind::alert;
    return t;
  }
  if (p.size() == 3 && p[1] == "_ctl" && p[2] == "req") {
    t.kind = TopicKind::ctl_req;
    return t;
  }
  if (p.size() == 4 && p[1] == "_ctl" && p[2] == "req" && valid_name(p[3])) {
    t.kind = TopicKind::ctl_req;
    t.name = p[3];
    return t;
  }
  if (p.size() == 4 && p[1] == "_ctl" && p[2] == "resp" && valid_name(p[3])) {
    t.kind = TopicKind::ctl_resp;
    t.name = p[3];
    return t;
  }
  if (p.size() == 4 && p[1] == "_ball" && valid_name(p[2]) && p[3] == "head") {
    t.kind = TopicKind::ball_head;
    t.session = p[2];
    return t;
  }
  if (p.size() == 5 && p[1] == "_ball" && valid_name(p[2]) && p[3] == "to" && valid_name(p[4])) {
    t.kind = TopicKind::ball_to;
    t.session = p[2];
    t.name = p[4];
    return t;
  }
  if (p.size() == 4 && p[1] == "_gw" && valid_name(p[2]) && p[3] == "state") {
    t.kind = TopicKind::gw_state;
    t.name = p[2];
    return t;
  }
  if (p.size() == 4 && p[1] == "_sector" && valid_name(p[2])) {
    if (p[3] == "summary") t.kind = TopicKind::sector_summary;
    else if (p[3] == "req") t.kind = TopicKind::sector_req;
    else if (p[3] == "resp") t.kind = TopicKind::sector_resp;
    else return std::nullopt;
    t.name = p[2];
    return t;
  }
  if (p.size() == 5 && p[1] == "_sector" && valid_name(p[2]) && p[3] == "cluster" && valid_name(p[4])) {
    t.kind = TopicKind::cluster_summary;
    t.name = p[2];
    t.cluster = p[4];
    return t;
  }
  if (p.size() == 4 && valid_name(p[1]) && valid_name(p[2])) {
    for (const auto& k : kNodeKinds) {
      if (k.name == p[3]) {
        t.kind = k.kind;
        t.cluster = p[1];
        t.name = p[2];
        return t;
      }
    }
  }
  return std::nullopt;
}

std::string node_topic(std::string_view mesh, std::string_view cluster, std::string_view node,
                       TopicKind kind) {
  return join({mesh, cluster, node, to_string(kind)});
}

std::string mesh_state_topic(std::string_view mesh) { return join({mesh, "_mesh", "state"}); }

std::string gw_topic(std::string_view mesh, std::string_view gateway, TopicKind) {
  return join({mesh, "_gw", gateway, "state"});
}

std::string sector_topic(std::string_view mesh, std::string_view sector, TopicKind kind, std::string_view cluster) {
  switch (kind) {
    case TopicKind::cluster_summary: return join({mesh, "_sector", sector, "cluster", cluster});
    case TopicKind::sector_req: return join({mesh, "_sector", sector, "req"});
    case TopicKind::sector_resp: return join({mesh, "_sector", sector, "resp"});
    default: return join({mesh, "_sector", sector, "summary"});
  }
}

std::string ctl_req_topic(std::string_view mesh, std::string_view operator_name) {
  return operator_name.empty() ? join({mesh, "_ctl", "req"}) : join({mesh, "_ctl", "req", operator_name});
}

std::string ctl_resp_topic(std::string_view mesh, std::string_view client) {
  return join({mesh, "_ctl", "resp", client});
}

std::string alert_topic(std::string_view mesh) { return join({mesh, "_alert"}); }

std::string ball_head_topic(std::string_view mesh, std::string_view session) {
  return join({mesh, "_ball", session, "head"});
}

std::string ball_to_topic(std::string_view mesh, std::string_view session, std::string_view peer) {
  return join({mesh, "_ball", session, "to", peer});
}

std::string node_filter(std::string_view mesh, TopicKind kind) {
  return join({mesh, "+", "+", to_string(kind)});
}

bool valid_job_target(std::string_view to) {
  if (to.empty()) return true;
  if (to.substr(0, 5) == "node:") return valid_name(to.substr(5));
  if (to.size() > 64) return false;
  if (to.substr(0, 6) == "class:") return to.size() == 7 && to[6] >= 'A' && to[6] <= 'F';
  if (to.substr(0, 8) == "cluster:") return valid_name(to.substr(8));
  return valid_name(to);
}

}  // namespace kairos

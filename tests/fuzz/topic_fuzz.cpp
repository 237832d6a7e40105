// libFuzzer target for the topic parser (docs/PROTOCOL.md; the topic table in
// the README): any bytes as an MQTT topic, a name and a job target.
// Invariants: no crash, no sanitizer report; a parsed topic has the fields
// of its kind, each a valid name, and formats back to the same string; a
// name valid_name() accepts follows the rule (1-64 of A-Z a-z 0-9 _ -, not
// starting with _), and every topic formatted from it parses back to it; a
// subscription filter never parses; a job target valid_job_target() accepts
// is one of its documented forms.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/core/topic.h"

using namespace kairos;

namespace {

void require(bool ok, const char* what, std::string_view input) {
  if (ok) return;
  std::fprintf(stderr, "INVARIANT BROKEN: %s (input \"%.*s\")\n", what, static_cast<int>(input.size()), input.data());
  std::abort();
}

// The name rule as docs/PROTOCOL.md and topic.h state it, written apart from valid_name().
bool rule_name(std::string_view s) {
  if (s.empty() || s.size() > 64 || s[0] == '_') return false;
  const std::string_view allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
  return s.find_first_not_of(allowed) == std::string_view::npos;
}

// The topic a parsed topic is formatted to by the functions that publish it.
std::string format(const Topic& t) {
  switch (t.kind) {
    case TopicKind::mesh_state: return mesh_state_topic(t.mesh);
    case TopicKind::gw_state: return gw_topic(t.mesh, t.name, t.kind);
    case TopicKind::sector_summary:
    case TopicKind::cluster_summary:
    case TopicKind::sector_req:
    case TopicKind::sector_resp: return sector_topic(t.mesh, t.name, t.kind, t.cluster);
    case TopicKind::ctl_req: return t.name.empty() ? ctl_req_topic(t.mesh) : ctl_req_topic(t.mesh) + "/" + t.name;
    case TopicKind::ctl_resp: return ctl_resp_topic(t.mesh, t.name);
    case TopicKind::alert: return alert_topic(t.mesh);
    case TopicKind::ball_head: return ball_head_topic(t.mesh, t.session);
    case TopicKind::ball_to: return ball_to_topic(t.mesh, t.session, t.name);
    default: return node_topic(t.mesh, t.cluster, t.name, t.kind);
  }
}

void check_parsed(std::string_view s, const Topic& t) {
  require(s.substr(0, kTopicRoot.size()) == kTopicRoot, "parsed topic outside kairos/v1/", s);
  require(rule_name(t.mesh), "mesh name", s);
  const bool node = t.kind <= TopicKind::cmd;
  const bool sector = t.kind >= TopicKind::sector_summary && t.kind <= TopicKind::sector_resp;
  const bool named = node || sector || t.kind == TopicKind::gw_state || t.kind == TopicKind::ctl_resp ||
                     t.kind == TopicKind::ball_to;
  const bool ball = t.kind == TopicKind::ball_head || t.kind == TopicKind::ball_to;
  require(node || t.kind == TopicKind::cluster_summary ? rule_name(t.cluster) : t.cluster.empty(), "cluster of a topic", s);
  if (t.kind == TopicKind::ctl_req)  // _ctl/req, or an operator's _ctl/req/<operator>
    require(t.name.empty() || rule_name(t.name), "name of a topic", s);
  else
    require(named ? rule_name(t.name) : t.name.empty(), "name of a topic", s);
  require(ball ? rule_name(t.session) : t.session.empty(), "session of a topic", s);
  require(to_string(t.kind) != "?", "topic kind", s);
  require(format(t) == s, "parsed topic does not format back to itself", s);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view s(reinterpret_cast<const char*>(data), size);
  if (auto t = parse_topic(s)) check_parsed(s, *t);

  const bool name = valid_name(s);
  require(name == rule_name(s), "valid_name() differs from the name rule", s);
  if (name) {
    // Formatted with this name in every place, each topic parses back to it.
    for (int k = 0; k <= static_cast<int>(TopicKind::ball_to); ++k) {
      Topic t;
      t.mesh = s;
      t.kind = static_cast<TopicKind>(k);
      const bool sector = t.kind >= TopicKind::sector_summary && t.kind <= TopicKind::sector_resp;
      if (t.kind <= TopicKind::cmd || t.kind == TopicKind::cluster_summary) t.cluster = s;
      if (t.kind <= TopicKind::cmd || sector || t.kind == TopicKind::gw_state || t.kind == TopicKind::ctl_resp ||
          t.kind == TopicKind::ball_to)
        t.name = s;
      if (t.kind == TopicKind::ball_head || t.kind == TopicKind::ball_to) t.session = s;
      const auto topic = format(t);
      auto back = parse_topic(topic);
      require(back && back->kind == t.kind && back->mesh == t.mesh && back->cluster == t.cluster &&
                  back->name == t.name && back->session == t.session,
              "a formatted topic does not parse back", topic);
      require(!parse_topic(node_filter(s, t.kind)), "a subscription filter parses as a topic", s);
    }
  }

  if (valid_job_target(s)) {
    auto after = [&](std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; };
    const bool form = s.empty() || (after("class:") && s.size() == 7 && s[6] >= 'A' && s[6] <= 'F') ||
                      (after("cluster:") && rule_name(s.substr(8))) || (after("node:") && rule_name(s.substr(5))) ||
                      rule_name(s);
    require(form, "valid_job_target() accepts what is no job target", s);
  }
  return 0;
}

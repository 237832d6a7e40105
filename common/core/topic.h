#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace kairos {

// What a topic under kairos/v1/<mesh>/ carries (docs/DESIGN.md 4).
enum class TopicKind {
  birth, state, hb, phase, event, ack, result, cmd,  // <cluster>/<node>/<kind>
  mesh_state,                                          // _mesh/state
  gw_state,                                            // _gw/<gateway>/state
  sector_summary, cluster_summary,                     // _sector/<sector>/summary, _sector/<sector>/cluster/<cluster>
  sector_req, sector_resp,                             // _sector/<sector>/req, _sector/<sector>/resp
  ctl_req, ctl_resp,                                   // _ctl/req[/<operator>], _ctl/resp/<client>
  alert,                                               // _alert
  ball_head, ball_to,                                  // _ball/<session>/head, _ball/<session>/to/<peer>
};

std::string_view to_string(TopicKind kind);

struct Topic {
  std::string mesh;
  TopicKind kind = TopicKind::hb;
  std::string cluster;  // node topics and cluster summaries only
  std::string name;     // node id, gateway id, operator (ctl_req), control client id, Ball peer or sector; empty otherwise
  std::string session;  // Ball topics only
};

// Names of meshes, clusters, nodes, gateways and clients: 1..64 characters
// from [A-Za-z0-9_-], not starting with '_' (reserved for _mesh, _gw, ...).
bool valid_name(std::string_view name);
// A job's target (delegate, ask --to): empty, class:<A..F>, cluster:<name>, node:<id> or a capability name.
bool valid_job_target(std::string_view to);
inline constexpr std::string_view kNameRule = "1-64 of A-Z a-z 0-9 _ -, not starting with _";

inline constexpr std::string_view kTopicRoot = "kairos/v1/";

// Parses a full topic; nullopt when it is not one of docs/DESIGN.md 4's.
std::optional<Topic> parse_topic(std::string_view topic);

std::string node_topic(std::string_view mesh, std::string_view cluster, std::string_view node,
                       TopicKind kind);
std::string mesh_state_topic(std::string_view mesh);
std::string gw_topic(std::string_view mesh, std::string_view gateway, TopicKind kind);
// An operator's requests: _ctl/req/<operator>, signed with its own key;
// without a name the legacy _ctl/req of the shared operator key.
std::string ctl_req_topic(std::string_view mesh, std::string_view operator_name = "");
// Who the requests on the legacy _ctl/req are taken from: the holders of the
// shared operator key (docs/PROTOCOL.md, Operators).
inline constexpr std::string_view kSharedOperator = "operator";
std::string ctl_resp_topic(std::string_view mesh, std::string_view client);
std::string alert_topic(std::string_view mesh);
// A sector gateway's topics toward the root (docs/DESIGN.md 5.9): kind is
// sector_summary, sector_req or sector_resp; cluster_summary with a cluster.
std::string sector_topic(std::string_view mesh, std::string_view sector, TopicKind kind, std::string_view cluster = "");
std::string ball_head_topic(std::string_view mesh, std::string_view session);
std::string ball_to_topic(std::string_view mesh, std::string_view session, std::string_view peer);
// Subscription filter for one kind from every node of the mesh.
std::string node_filter(std::string_view mesh, TopicKind kind);

}  // namespace kairos

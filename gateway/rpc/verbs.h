#pragma once
// The control RPC's own verbs (docs/PROTOCOL.md, Control RPC): the views
// (status, nodes, conflicts, breakers) and the operator's hand on what
// escalation raised (heal, resolve). Each fills a response; the gateway's
// verb table answers it.
#include <cstdint>
#include <functional>
#include <string>

#include "gateway/escalation/escalation.h"
#include "gateway/gateway_config.h"
#include "gateway/ingest/ingest.h"
#include "gateway/jobs/jobs.h"
#include "gateway/link/reply.h"
#include "gateway/registry/registry.h"
#include "gateway/store/outbox.h"
#include "kairos.pb.h"

namespace kairos::gw {

// What the status verb reports, as the gateway's modules hold it.
struct StatusParts {
  const GatewayConfig& config;
  const Registry& registry;
  const Escalation& escalation;
  const Ingest& ingest;
  const Outbox& outbox;
  const JobBook& jobs;
  const std::string& last_cascade;
  std::int64_t started_us;  // monotonic
};
void fill_status(const StatusParts& p, const kairos_v1_MeshState& mesh, kairos_v1_StatusReply& r, std::int64_t now_us);

// A page of nodes: from the node after q.after (a cursor) or q.offset, at
// most 40; the page costs its own nodes, and the total comes from counts
// kept up to date.
void fill_nodes(const Registry& registry, const kairos_v1_NodesRequest& q, kairos_v1_NodeList& r, std::int64_t now_us);

// The newest conflicts, or the open resolution tasks (q.queue), at most 16.
void fill_conflicts(Store& store, const kairos_v1_ConflictsRequest& q, kairos_v1_ConflictList& r);

// Every breaker's state (at most 40 listed); now_us monotonic.
void fill_breakers(const Breakers& breakers, kairos_v1_BreakerList& r, std::int64_t now_us);

// What the verbs that write answer while the database cannot be written.
std::string storage_refusal(const Outbox& outbox);

// Closes an open resolution task as the operator by; false (and the
// response says why) when there is none by that number or the database
// cannot be written.
bool resolve(Outbox& outbox, const kairos_v1_ResolveRequest& q, const std::string& by, kairos_v1_ControlResponse& resp);

// Lifts a node's quarantine, closes its HASH_MISMATCH and TEMPORAL_PARADOX
// tasks (on disk first) and sends it the heal command. Nothing changes
// when the database cannot be written.
void heal(Registry& registry, Outbox& outbox, const SendCommand& send, const kairos_v1_HealRequest& req,
          const std::string& by, kairos_v1_ControlResponse& resp);

// An operator's quarantine of a node (routing around it): on disk first,
// then the registry; jobs, schedules and the Ball pass it by until heal.
void quarantine(Registry& registry, Outbox& outbox, const kairos_v1_QuarantineRequest& req, const std::string& by,
                kairos_v1_ControlResponse& resp);

// breakers hold|release <cluster>: on disk first, then the breaker; the
// list answered as the plain breakers verb answers it.
void hold_breaker(Breakers& breakers, const Registry& registry, Outbox& outbox, const kairos_v1_BreakersRequest& req,
                  const std::string& by, kairos_v1_ControlResponse& resp, std::int64_t now_us);

// Removes an offline, unquarantined node: its row goes from the database
// first, then leaving(n) (what the other modules keep of it, its retained
// topics), then the registry's entry. Refused, changing nothing, for an
// unknown, online or quarantined node, or when the database cannot be written.
void forget(Registry& registry, Outbox& outbox, const kairos_v1_ForgetRequest& req, const std::string& by,
            const std::function<void(const NodeEntry& n)>& leaving, kairos_v1_ControlResponse& resp);

}  // namespace kairos::gw

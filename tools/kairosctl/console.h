#pragma once
// kairosctl broadcast, freeze, thaw, ask, mode, and the printers of status,
// nodes, watch, conflicts, resolve and heal (docs/DESIGN.md 5.8).
#include <cstdint>
#include <string>
#include <vector>

#include "kairos.pb.h"

namespace kairos::ctl {

// Each fills its request from the words after the verb; "" or the error (exit 2).
std::string parse_broadcast_args(const std::vector<std::string>& args, kairos_v1_BroadcastRequest& req);
std::string parse_freeze_args(const std::vector<std::string>& args, bool thaw, kairos_v1_FreezeRequest& req);
std::string parse_ask_args(const std::vector<std::string>& args, kairos_v1_AskRequest& req);
// How long to wait for the reply to a command that gathers acks for window_ms.
int gather_wait_ms(std::uint32_t window_ms, int timeout_ms);
// Exit status: 0 when every target acknowledged READY (or nothing was gathered), 3 otherwise.
int print_command(const kairos_v1_CommandReply& r, bool json);
// Exit status: 0 when some node answered, 3 otherwise.
int print_ask(const kairos_v1_AskReply& r, bool json);
int print_mode(const kairos_v1_StatusReply& r, bool json);
// The MESH-30K status box (or its JSON); exit status 0.
int print_status(const kairos_v1_StatusReply& r, bool json);
// The seven KPIs (docs/METRICS.md); exit status 0.
int print_kpis(const kairos_v1_Kpis& k, bool json);
// kairosctl nodes (a table) or node <id> (one node whole; one: nodes holds exactly it).
int print_nodes(const std::vector<kairos_v1_NodeInfo>& nodes, bool one, bool json);
// One line of mesh state, for watch.
void print_watch_line(const kairos_v1_StatusReply& r, bool json);
// The conflict log's newest entries, or the open tasks when req asked for the queue; exit status 0.
int print_conflicts(const kairos_v1_ConflictsRequest& req, const kairos_v1_ConflictList& l, bool json);
// resolve: the task closed and how many stay open; exit status 0.
int print_resolved(std::uint64_t task, const kairos_v1_ConflictList& l, bool json);
// Exit status: 0 when the heal was sent to the node, 1 when not (no key for it).
int print_heal(const kairos_v1_HealReply& h, bool json);

}  // namespace kairos::ctl

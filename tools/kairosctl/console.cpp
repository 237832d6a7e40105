#include "tools/kairosctl/console.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "common/core/frame.h"
#include "common/core/json.h"
#include "common/core/topic.h"
#include "tools/kairosctl/args.h"
#include "tools/kairosctl/schedule.h"

namespace kairos::ctl {

namespace {

// A scope or target list: all, cluster:<c>, class:<X> or node ids.
bool valid_selector(const std::string& s) {
  if (s == "all") return true;
  if (s.rfind("cluster:", 0) == 0) return valid_name(s.substr(8));
  if (s.rfind("class:", 0) == 0) return s.size() == 7 && s[6] >= 'A' && s[6] <= 'F';
  std::size_t start = 0;
  while (start <= s.size()) {
    auto end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (!valid_name(s.substr(start, end - start))) return false;
    start = end + 1;
  }
  return !s.empty() && s.size() <= 1024;
}

}  // namespace

std::string parse_broadcast_args(const std::vector<std::string>& args, kairos_v1_BroadcastRequest& req) {
  const char* use = "usage: kairosctl broadcast <text> [--ack] [--window MS] [--targets all|cluster:C|class:X|id,...] [--confirm]";
  bool have_text = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--ack") {
      req.ack = true;
    } else if (a == "--confirm") {
      req.confirm = true;
    } else if (a == "--window") {
      if (i + 1 >= args.size() || !parse_whole(args[++i], 1, 600'000, req.window_ms)) return "broadcast: --window takes 1 to 600000 ms";
    } else if (a == "--targets") {
      if (i + 1 >= args.size() || !valid_selector(args[i + 1])) return "broadcast: --targets takes all, cluster:C, class:X or node ids";
      set_string(req.targets, args[++i]);
    } else if (!a.empty() && a[0] == '-') {
      return "broadcast: unknown option '" + a + "'; " + use;
    } else if (!have_text) {
      if (a.size() > 256) return "broadcast: the text is longer than 256 characters";
      set_string(req.text, a);
      have_text = true;
    } else {
      return "broadcast: one text only (quote it); " + std::string(use);
    }
  }
  if (!have_text) return std::string("broadcast needs a text; ") + use;
  return "";
}

std::string parse_freeze_args(const std::vector<std::string>& args, bool thaw, kairos_v1_FreezeRequest& req) {
  const std::string verb = thaw ? "thaw" : "freeze";
  req.thaw = thaw;
  bool have_scope = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--confirm") {
      req.confirm = true;
    } else if (a == "--window") {
      if (i + 1 >= args.size() || !parse_whole(args[++i], 1, 600'000, req.window_ms)) return verb + ": --window takes 1 to 600000 ms";
    } else if (!have_scope && !a.empty() && a[0] != '-') {
      if (!valid_selector(a)) return verb + ": '" + a + "' is not a scope (all, cluster:C, class:X or node ids)";
      set_string(req.scope, a);
      have_scope = true;
    } else {
      return verb + ": unknown argument '" + a + "' (kairosctl " + verb + " [scope] [--window MS] [--confirm])";
    }
  }
  return "";
}

std::string parse_ask_args(const std::vector<std::string>& args, kairos_v1_AskRequest& req) {
  const char* use = "usage: kairosctl ask <question> [--sample N] [--handler H] [--to class:X|cluster:C|node:ID|CAP] [--timeout MS] [--confirm]";
  bool have_q = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--confirm") {
      req.confirm = true;
    } else if (a == "--sample") {
      if (i + 1 >= args.size() || !parse_whole(args[++i], 1, 1000, req.sample)) return "ask: --sample takes 1 to 1000";
    } else if (a == "--handler") {
      if (i + 1 >= args.size() || !valid_name(args[i + 1]) || args[i + 1].size() > 32) return "ask: --handler takes a handler name";
      set_string(req.handler, args[++i]);
    } else if (a == "--to") {
      const std::string v = i + 1 < args.size() ? args[i + 1] : "";
      if (!valid_job_target(v) || v.empty()) return "ask: --to takes class:X, cluster:C or a capability";
      set_string(req.to, args[++i]);
    } else if (a == "--timeout") {
      if (i + 1 >= args.size() || !parse_whole(args[++i], 1, 600'000, req.timeout_ms)) return "ask: --timeout takes 1 to 600000 ms";
    } else if (!a.empty() && a[0] == '-') {
      return "ask: unknown option '" + a + "'; " + use;
    } else if (!have_q) {
      if (a.size() > 2047) return "ask: the question is longer than 2047 bytes";
      set_string(req.question, a);
      have_q = true;
    } else {
      return "ask: one question only (quote it); " + std::string(use);
    }
  }
  if (!have_q) return std::string("ask needs a question; ") + use;
  return "";
}

int gather_wait_ms(std::uint32_t window_ms, int timeout_ms) {
  return static_cast<int>(std::min<long>(600'000, static_cast<long>(window_ms ? window_ms : 2000) + timeout_ms));
}

int print_command(const kairos_v1_CommandReply& r, bool json) {
  const bool all_ready = !r.gathered || r.ready == r.targets;
  if (json) {
    Json j;
    j.begin_object().key("verb").str(r.verb).key("targets").integer(r.targets).key("sent").integer(r.sent);
    j.key("gathered").boolean(r.gathered).key("ready").integer(r.ready).key("conflicts").integer(r.conflicts);
    j.key("silent").integer(r.silent).key("snapshot").integer(r.snapshot_id).key("not_ready").begin_array();
    for (pb_size_t i = 0; i < r.not_ready_count; ++i) j.str(r.not_ready[i]);
    j.end_array().end_object();
    std::printf("%s\n", j.text().c_str());
    return all_ready ? 0 : 3;
  }
  if (r.snapshot_id) std::printf("snapshot %llu written (registry and mesh state)\n", static_cast<unsigned long long>(r.snapshot_id));
  if (r.gathered)
    std::printf("%s: %u of %u nodes acknowledged READY (%u sent, %u conflicts, %u silent)\n", r.verb, r.ready, r.targets,
                r.sent, r.conflicts, r.silent);
  else
    std::printf("%s: sent to %u of %u nodes (no acks gathered; --ack waits for them)\n", r.verb, r.sent, r.targets);
  if (r.not_ready_count) {
    std::printf("not READY:");
    for (pb_size_t i = 0; i < r.not_ready_count; ++i) std::printf(" %s", r.not_ready[i]);
    std::printf("%s\n", r.targets - r.ready > r.not_ready_count ? " ..." : "");
  }
  return all_ready ? 0 : 3;
}

int print_ask(const kairos_v1_AskReply& r, bool json) {
  if (json) {
    Json j;
    j.begin_object().key("asked").integer(r.asked).key("answered").integer(r.answered).key("groups").begin_array();
    for (pb_size_t i = 0; i < r.groups_count; ++i) {
      const auto& g = r.groups[i];
      j.begin_object().key("value").str(printable_or_hex(g.value.bytes, g.value.size, false)).key("count").integer(g.count);
      j.key("nodes").begin_array();
      for (pb_size_t k = 0; k < g.nodes_count; ++k) j.str(g.nodes[k]);
      j.end_array().end_object();
    }
    j.end_array().key("silent").begin_array();
    for (pb_size_t i = 0; i < r.silent_count; ++i) j.str(r.silent[i]);
    j.end_array().end_object();
    std::printf("%s\n", j.text().c_str());
    return r.answered ? 0 : 3;
  }
  std::printf("%u asked, %u answered\n", r.asked, r.answered);
  for (pb_size_t i = 0; i < r.groups_count; ++i) {
    const auto& g = r.groups[i];
    std::printf("%5u x  %s   (", g.count, printable_or_hex(g.value.bytes, g.value.size, false).c_str());
    for (pb_size_t k = 0; k < g.nodes_count; ++k) std::printf("%s%s", k ? " " : "", g.nodes[k]);
    std::printf("%s)\n", g.count > g.nodes_count ? " ..." : "");
  }
  if (r.silent_count) {
    std::printf("silent:");
    for (pb_size_t i = 0; i < r.silent_count; ++i) std::printf(" %s", r.silent[i]);
    std::printf("\n");
  }
  return r.answered ? 0 : 3;
}

int print_mode(const kairos_v1_StatusReply& r, bool json) {
  const char* mode = to_string(r.mesh_state.mode).data();
  if (json) {
    Json j;
    j.begin_object().key("mode").str(mode).key("active_rate").num(r.active_rate);
    j.key("nodes_online").integer(r.nodes_online).key("nodes_known").integer(r.nodes_known);
    j.key("restrictions").str(r.restrictions).end_object();
    std::printf("%s\n", j.text().c_str());
    return 0;
  }
  std::printf("mode %s: %u of %u nodes active (%.0f%%)\n", mode, r.nodes_online, r.nodes_known,
              static_cast<double>(r.active_rate) * 100);
  std::printf("  restrictions: %s\n", r.restrictions[0] ? r.restrictions : "none");
  std::printf("  thresholds: FULL >= 95%%, DEGRADED_LIGHT >= 80%%, DEGRADED_MODERATE >= 60%%, DEGRADED_SEVERE >= 30%%, "
              "EMERGENCY below\n");
  return 0;
}

namespace {

const char* mode_name(kairos_v1_MeshMode m) { return to_string(m).data(); }

void mesh_json(Json& j, const kairos_v1_MeshState& s) {
  j.begin_object();
  j.key("phase").begin_object().key("real").num(s.z.re).key("imag").num(s.z.im).end_object();
  j.key("coherence").num(s.coherence).key("agreement").num(s.agreement).key("unified").boolean(s.unified);
  j.key("mode").str(mode_name(s.mode)).key("nodes_in_sync").integer(s.nodes_in_sync);
  j.end_object();
}

void kpi_json(Json& j, const kairos_v1_Kpis& k) {
  j.begin_object();
  j.key("coordination_success").num(k.coordination_success).key("operations").integer(k.operations);
  j.key("operations_quorum").integer(k.operations_quorum);
  j.key("arrival_hit_rate").num(k.arrival_hit_rate).key("scheduled_targets").integer(k.scheduled_targets);
  j.key("prediction_accuracy").num(k.prediction_accuracy).key("scheduled_executed").integer(k.scheduled_executed);
  j.key("conflicts_per_1000").num(k.conflicts_per_1000).key("conflicts").integer(k.conflicts);
  j.key("availability").num(k.availability);
  j.key("cascade_p95_s").num(k.cascade_p95_s).key("cascades").integer(k.cascades);
  j.key("recovery_mean_s").num(k.recovery_mean_s).key("recoveries").integer(k.recoveries);
  j.end_object();
}

}  // namespace

int print_kpis(const kairos_v1_Kpis& k, bool json) {
  if (json) {
    Json j;
    kpi_json(j, k);
    std::printf("%s\n", j.text().c_str());
    return 0;
  }
  auto pct = [](double v) { return 100.0 * v; };
  std::printf("coordination success   %6.1f %%  (%llu of %llu operations reached quorum)\n", pct(k.coordination_success),
              static_cast<unsigned long long>(k.operations_quorum), static_cast<unsigned long long>(k.operations));
  std::printf("arrival-time hit rate  %6.1f %%  (within +-10 ms of T; %llu scheduled targets)\n", pct(k.arrival_hit_rate),
              static_cast<unsigned long long>(k.scheduled_targets));
  std::printf("prediction accuracy    %6.1f %%  (within 50 ms of T; %llu executions)\n", pct(k.prediction_accuracy),
              static_cast<unsigned long long>(k.scheduled_executed));
  std::printf("conflict rate          %6.1f     per 1,000 operations (%llu in the conflict log)\n", k.conflicts_per_1000,
              static_cast<unsigned long long>(k.conflicts));
  std::printf("mesh availability      %6.2f %%  (node-time online)\n", pct(k.availability));
  std::printf("cascade p95            %6.2f s   (last %llu schedules, at most 100)\n", k.cascade_p95_s,
              static_cast<unsigned long long>(k.cascades < 100 ? k.cascades : 100));
  std::printf("mean recovery time     %6.1f s   (%llu recovered)\n", k.recovery_mean_s,
              static_cast<unsigned long long>(k.recoveries));
  return 0;
}

int print_status(const kairos_v1_StatusReply& r, bool json) {
  const auto& s = r.mesh_state;
  if (json) {
    Json j;
    j.begin_object().key("gateway").str(r.gateway).key("mesh").str(r.mesh);
    j.key("nodes_known").integer(r.nodes_known).key("nodes_online").integer(r.nodes_online);
    j.key("clusters").integer(r.clusters);
    j.key("mesh_state");
    mesh_json(j, s);
    j.key("frames_accepted").integer(r.frames_accepted);
    j.key("drops").begin_object();
    for (pb_size_t i = 0; i < r.drops_count; ++i) j.key(r.drops[i].reason).integer(r.drops[i].count);
    j.end_object();
    j.key("sectors_total").integer(r.sectors_total).key("sectors_healthy").integer(r.sectors_healthy);
    j.key("mean_impedance").num(r.mean_impedance).key("conflicts_last_hour").integer(r.conflicts_last_hour);
    j.key("last_cascade").str(r.last_cascade).key("active_rate").num(r.active_rate);
    j.key("breakers_open").integer(r.breakers_open).key("jobs_running").integer(r.jobs_running);
    j.key("jobs_queued").integer(r.jobs_queued).key("alerts").integer(r.alerts).key("restrictions").str(r.restrictions);
    j.key("storage_error").str(r.storage_error);
    j.key("role").str(r.role[0] ? r.role : "standalone").key("sector").str(r.sector);
    j.key("sectors_stale").integer(r.sectors_stale);
    j.key("kpi");
    kpi_json(j, r.kpi);
    const auto& cj = r.clock_joins;
    j.key("clock_joins").begin_object().key("synced").integer(cj.synced).key("within_2min").integer(cj.within_2min);
    j.key("p50_s").num(cj.p50_s).key("p95_s").num(cj.p95_s).key("max_s").num(cj.max_s);
    j.key("waiting").integer(cj.waiting).key("longest_waiting_s").num(cj.longest_waiting_s).end_object();
    j.key("uptime_s").num(static_cast<double>(r.uptime_ms) / 1000.0).end_object();
    std::printf("%s\n", j.text().c_str());
    return 0;
  }
  std::uint64_t dropped = 0;
  for (pb_size_t i = 0; i < r.drops_count; ++i) dropped += r.drops[i].count;
  const std::string role = std::string(r.role) == "sector" ? std::string(" (sector ") + r.sector + ")"
                           : std::string(r.role) == "root" ? std::string(" (root)")
                                                           : std::string();
  std::printf("+-- mesh %s -- gateway %s%s ------------------------------\n", r.mesh, r.gateway, role.c_str());
  if (r.storage_error[0])
    std::printf("| STORAGE FAILED    %s: nothing that must be recorded is accepted\n", r.storage_error);
  std::printf("| agents active     %u / %u  (%u cluster%s)\n", r.nodes_online, r.nodes_known, r.clusters,
              r.clusters == 1 ? "" : "s");
  if (r.sectors_total && std::string(r.role) == "root")
    std::printf("| sectors healthy   %u / %u  (%u stale: kairosctl sectors)\n", r.sectors_healthy, r.sectors_total,
                r.sectors_stale);
  else if (r.sectors_total)
    std::printf("| sectors healthy   %u / %u\n", r.sectors_healthy, r.sectors_total);
  else
    std::printf("| sectors healthy   - (no sectors configured)\n");
  std::printf("| mean impedance    %.0f\n", static_cast<double>(r.mean_impedance));
  std::printf("| conflicts (1 h)   %u\n", r.conflicts_last_hour);
  std::printf("| mode              %s (%.0f%% active)%s%s\n", mode_name(s.mode), static_cast<double>(r.active_rate) * 100,
              r.restrictions[0] ? ": " : "", r.restrictions);
  std::printf("| last cascade      %s\n", r.last_cascade[0] ? r.last_cascade : "none yet");
  std::printf("| breakers open     %u\n", r.breakers_open);
  std::printf("| jobs              %llu running, %llu queued; %llu alerts raised\n",
              static_cast<unsigned long long>(r.jobs_running), static_cast<unsigned long long>(r.jobs_queued),
              static_cast<unsigned long long>(r.alerts));
  std::printf("| global phase      %.3f %+.3fi   (%u node%s in sync)\n", static_cast<double>(s.z.re),
              static_cast<double>(s.z.im), s.nodes_in_sync, s.nodes_in_sync == 1 ? "" : "s");
  std::printf("| coherence         %.3f\n", static_cast<double>(s.coherence));
  std::printf("| agreement         %.3f\n", static_cast<double>(s.agreement));
  std::printf("| unified           %s\n", s.unified ? "yes" : "no");
  const auto& cj = r.clock_joins;
  if (cj.synced || cj.waiting)
    std::printf("| clock sync        %llu joined nodes synced (8 samples) in p50 %.0f / p95 %.0f / max %.0f s, %llu within 2 min;"
                " %llu waiting (longest %.0f s)\n",
                static_cast<unsigned long long>(cj.synced), static_cast<double>(cj.p50_s), static_cast<double>(cj.p95_s),
                static_cast<double>(cj.max_s), static_cast<unsigned long long>(cj.within_2min),
                static_cast<unsigned long long>(cj.waiting), static_cast<double>(cj.longest_waiting_s));
  std::printf("| frames            %llu accepted, %llu dropped\n", static_cast<unsigned long long>(r.frames_accepted),
              static_cast<unsigned long long>(dropped));
  for (pb_size_t i = 0; i < r.drops_count; ++i)
    std::printf("|   %-16s %llu\n", r.drops[i].reason, static_cast<unsigned long long>(r.drops[i].count));
  std::printf("| uptime            %.1f s\n", static_cast<double>(r.uptime_ms) / 1000.0);
  std::printf("+------------------------------------------------------------\n");
  return 0;
}

void print_watch_line(const kairos_v1_StatusReply& r, bool json) {
  const auto& s = r.mesh_state;
  if (json) {
    Json j;
    j.begin_object().key("uptime_s").num(static_cast<double>(r.uptime_ms) / 1000.0);
    j.key("nodes_online").integer(r.nodes_online).key("nodes_known").integer(r.nodes_known).key("mesh_state");
    mesh_json(j, s);
    j.end_object();
    std::printf("%s\n", j.text().c_str());
    return;
  }
  std::printf("t=%7.1fs  online %u/%u  Z=%.3f%+.3fi  C=%.3f  A=%.3f  unified=%-3s  mode=%s\n",
              static_cast<double>(r.uptime_ms) / 1000.0, r.nodes_online, r.nodes_known, static_cast<double>(s.z.re),
              static_cast<double>(s.z.im), static_cast<double>(s.coherence), static_cast<double>(s.agreement),
              s.unified ? "yes" : "no", mode_name(s.mode));
}

int print_nodes(const std::vector<kairos_v1_NodeInfo>& nodes, bool one, bool json) {
  auto class_name = [](kairos_v1_DeviceClass c) { return class_letter(c).data(); };
  auto status_name = [](kairos_v1_NodeStatus s) { return to_string(s).data(); };
  if (json) {
    Json j;
    j.begin_array();
    for (const auto& n : nodes) {
      j.begin_object().key("id").str(n.id).key("cluster").str(n.cluster).key("board").str(n.board);
      j.key("class").str(class_name(n.device_class)).key("status").str(status_name(n.status));
      j.key("online").boolean(n.online);
      j.key("phase").begin_object().key("real").num(n.z.re).key("imag").num(n.z.im).end_object();
      j.key("coherence").num(n.c).key("phase_valid").boolean(n.phase_valid);
      j.key("last_seen_ms").integer(n.last_seen_ms).key("firmware").str(n.firmware_version);
      j.key("context_hash").str(to_hex(ByteView(n.context_hash.bytes, n.context_hash.size)));
      j.key("events").integer(n.events).key("historical_phases").integer(n.historical_phases);
      j.key("clock").begin_object().key("samples").integer(n.clock_samples).key("offset_ms").num(n.offset_ms);
      j.key("rtt_ms").num(n.rtt_ms).key("jitter_ms").num(n.jitter_ms).end_object();
      j.key("impedance").begin_object().key("score").integer(n.impedance).key("processing_ms").num(n.processing_ms);
      j.key("queue_depth").integer(n.queue_depth).key("drift").num(n.drift).key("reliability").num(n.reliability);
      j.key("confidence").num(n.confidence).key("degraded").boolean(n.degraded).key("unstable").boolean(n.unstable);
      j.key("lead_ms").integer(n.lead_ms).key("calibration_ms").num(n.calibration_ms).key("clock_shifts").integer(n.clock_shifts);
      j.key("one_way_p99_ms").num(n.one_way_p99_ms).key("one_way_p999_ms").num(n.one_way_p999_ms);
      j.key("one_way_samples").integer(n.one_way_samples);
      j.end_object();
      j.end_object();
    }
    j.end_array();
    std::printf("%s\n", j.text().c_str());
    return 0;
  }
  if (one) {
    const auto& n = nodes[0];
    std::printf("node %s  (cluster %s, board %s, class %s, firmware %s)\n", n.id, n.cluster, n.board,
                class_name(n.device_class), n.firmware_version);
    std::printf("  status        %s%s\n", status_name(n.status), n.online ? "" : " (offline)");
    if (n.phase_valid)
      std::printf("  phase         %.3f %+.3fi, coherence %.3f\n", static_cast<double>(n.z.re), static_cast<double>(n.z.im),
                  static_cast<double>(n.c));
    std::printf("  clock         offset %+.2f ms, rtt %.2f ms, jitter %.2f ms (%u samples)\n",
                static_cast<double>(n.offset_ms), static_cast<double>(n.rtt_ms), static_cast<double>(n.jitter_ms),
                n.clock_samples);
    std::printf("  impedance     %u (processing %.1f ms, queue %u, drift %.2f)%s%s\n", n.impedance,
                static_cast<double>(n.processing_ms), n.queue_depth, static_cast<double>(n.drift),
                n.degraded ? " DEGRADED" : "", n.unstable ? " UNSTABLE" : "");
    std::printf("  lead          %u ms (calibration %.1f ms, %llu latency shifts)\n", n.lead_ms,
                static_cast<double>(n.calibration_ms), static_cast<unsigned long long>(n.clock_shifts));
    if (n.one_way_samples)
      std::printf("  one way       p99 %.1f ms, p99.9 %.1f ms (its last %u frames, node to gateway)\n",
                  static_cast<double>(n.one_way_p99_ms), static_cast<double>(n.one_way_p999_ms), n.one_way_samples);
    std::printf("  reliability   %.2f, confidence %.2f\n", static_cast<double>(n.reliability),
                static_cast<double>(n.confidence));
    std::printf("  events        %llu logged, %llu late phase reports\n", static_cast<unsigned long long>(n.events),
                static_cast<unsigned long long>(n.historical_phases));
    return 0;
  }
  std::printf("%-20s %-12s %-14s %-5s %-17s %-16s %-6s %-5s %s\n", "NODE", "CLUSTER", "BOARD", "CLASS", "STATUS",
              "PHASE", "COH", "IMP", "SEEN");
  for (const auto& n : nodes) {
    char phase[32] = "-";
    char coh[16] = "-";
    if (n.phase_valid) {
      std::snprintf(phase, sizeof phase, "%.3f %+.3fi", static_cast<double>(n.z.re), static_cast<double>(n.z.im));
      std::snprintf(coh, sizeof coh, "%.3f", static_cast<double>(n.c));
    }
    char seen[24] = "never";
    if (n.last_seen_ms != UINT32_MAX) std::snprintf(seen, sizeof seen, "%.1f s ago", n.last_seen_ms / 1000.0);
    char imp[12] = "-";
    if (n.clock_samples) std::snprintf(imp, sizeof imp, "%u", n.impedance);
    std::printf("%-20s %-12s %-14s %-5s %-17s %-16s %-6s %-5s %s\n", n.id, n.cluster, n.board, class_name(n.device_class),
                status_name(n.status), phase, coh, imp, seen);
  }
  std::printf("%zu node%s\n", nodes.size(), nodes.size() == 1 ? "" : "s");
  return 0;
}

int print_conflicts(const kairos_v1_ConflictsRequest& req, const kairos_v1_ConflictList& l, bool json) {
  if (json) {
    Json j;
    j.begin_object().key("total").integer(l.total).key("entries").begin_array();
    for (pb_size_t i = 0; i < l.entries_count; ++i) {
      const auto& e = l.entries[i];
      j.begin_object().key("at").str(format_time_us(e.at_us)).key("type").str(e.type);
      j.key("priority").integer(e.priority).key("node").str(e.node).key("detail").str(e.detail);
      j.key("suggested").str(e.suggested).key("task").integer(e.task).key("task_state").str(e.task_state);
      j.key("resolution").str(e.resolution).key("resolved_by").str(e.resolved_by);
      if (e.sector[0]) j.key("sector").str(e.sector).key("id").integer(e.id);
      j.end_object();
    }
    j.end_array().key("open_tasks").integer(l.open_tasks).end_object();
    std::printf("%s\n", j.text().c_str());
    return 0;
  }
  std::printf("%-24s %-20s %-3s %-20s %s\n", "AT", "TYPE", "P", "NODE", "DETAIL");
  for (pb_size_t i = 0; i < l.entries_count; ++i) {
    const auto& e = l.entries[i];
    // A root's list names the sector before the node.
    const std::string node = e.sector[0] ? std::string(e.sector) + "/" + e.node : std::string(e.node);
    std::printf("%-24s %-20s %-3u %-20s %s\n", format_time_us(e.at_us).c_str(), e.type, e.priority, node.c_str(),
                e.detail);
    if (e.task)
      std::printf("%24s task %llu %s: %s%s%s\n", "", static_cast<unsigned long long>(e.task), e.task_state,
                  e.resolution[0] ? e.resolution : e.suggested, e.resolved_by[0] ? " (by operator " : "",
                  e.resolved_by[0] ? (std::string(e.resolved_by) + ")").c_str() : "");
  }
  std::printf("%u shown, %llu in the log, %llu resolution tasks open%s\n", static_cast<unsigned>(l.entries_count),
              static_cast<unsigned long long>(l.total), static_cast<unsigned long long>(l.open_tasks),
              req.queue ? " (highest priority first)" : "");
  return 0;
}

int print_resolved(std::uint64_t task, const kairos_v1_ConflictList& l, bool json) {
  if (json) {
    Json j;
    j.begin_object().key("task").integer(task).key("resolved").boolean(true);
    j.key("open_tasks").integer(l.open_tasks).end_object();
    std::printf("%s\n", j.text().c_str());
    return 0;
  }
  std::printf("task %llu resolved; %llu still open\n", static_cast<unsigned long long>(task),
              static_cast<unsigned long long>(l.open_tasks));
  return 0;
}

int print_heal(const kairos_v1_HealReply& h, bool json) {
  if (json) {
    Json j;
    j.begin_object().key("node").str(h.node).key("was_quarantined").boolean(h.was_quarantined);
    j.key("reason").str(h.reason).key("heal_sent").boolean(h.sent).end_object();
    std::printf("%s\n", j.text().c_str());
  } else {
    std::printf("%s: %s; heal %s\n", h.node,
                h.was_quarantined ? ("quarantine lifted (it was: " + std::string(h.reason) + ")").c_str()
                                  : "was not quarantined at the gateway",
                h.sent ? "sent to the node" : "NOT sent (no key for the node)");
  }
  return h.sent ? 0 : 1;
}

}  // namespace kairos::ctl

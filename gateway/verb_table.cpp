// The control RPC's verb table (docs/PROTOCOL.md): one row per verb, to the
// module that answers it.
#include "gateway/gateway.h"

#include "common/io/clock.h"

namespace kairos::gw {

void Gateway::verbs() {
  using R = Control::Request;
  auto at_once = [this](pb_size_t verb, pb_size_t reads, Control::Fill fill) {
    control_.at_once(verb, reads, std::move(fill));
  };
  at_once(kairos_v1_ControlRequest_status_tag, kairos_v1_ControlResponse_status_tag, [this](const R& r, auto& resp) {
    kairos_v1_MeshState mesh = kairos_v1_MeshState_init_zero;
    fill_mesh_state(mesh);
    fill_status({config_, registry_, escalation_, ingest_, outbox_, jobs_.book(), schedules_.last_cascade(), start_us_},
                mesh, resp.reply.status, r.now_us);
    resp.reply.status.conflicts_last_hour = store_.conflicts_since(wall_us() - 3'600'000'000LL);
    set_string(resp.reply.status.role, to_string(config_.role));
    set_string(resp.reply.status.sector, config_.sector);
    if (sectors_) {
      sectors_->fill_status(resp.reply.status);
      set_string(resp.reply.status.last_cascade, root_desk_->last_cascade());
    }
    resp.reply.status.has_kpi = true;
    fill_kpis(kpi_figures(), resp.reply.status.kpi);
  });
  at_once(kairos_v1_ControlRequest_kpi_tag, kairos_v1_ControlResponse_kpi_tag,
          [this](const R&, auto& resp) { fill_kpis(kpi_figures(), resp.reply.kpi); });
  at_once(kairos_v1_ControlRequest_sectors_tag, kairos_v1_ControlResponse_sectors_tag, [this](const R& r, auto& resp) {
    if (sectors_) return sectors_->fill(r.req.verb.sectors, resp.reply.sectors, r.now_us);
    resp.ok = false;
    set_string(resp.error, std::string("sectors: this gateway is ") +
                               (config_.role == GatewayConfig::Role::sector ? "sector " + config_.sector + "'s; ask its root"
                                                                             : "standalone; there are no sectors") +
                               " (docs/DESIGN.md 5.9)");
  });
  at_once(kairos_v1_ControlRequest_nodes_tag, kairos_v1_ControlResponse_nodes_tag,
      [this](const R& r, auto& resp) { fill_nodes(registry_, r.req.verb.nodes, resp.reply.nodes, r.now_us); });
  at_once(kairos_v1_ControlRequest_conflicts_tag, kairos_v1_ControlResponse_conflicts_tag,
      [this](const R& r, auto& resp) { fill_conflicts(store_, r.req.verb.conflicts, resp.reply.conflicts); });
  // A read (answered while the database cannot be written), unless it holds or releases one.
  at_once(kairos_v1_ControlRequest_breakers_tag, kairos_v1_ControlResponse_breakers_tag, [this](const R& r, auto& resp) {
    const auto& b = r.req.verb.breakers;
    if (!b.hold[0] && !b.release[0]) return fill_breakers(escalation_.breakers(), resp.reply.breakers, mono_us());
    resp.ok = false;
    resp.which_reply = 0;
    hold_breaker(escalation_.breakers(), registry_, outbox_, b, r.to.by, resp, mono_us());
  });
  at_once(kairos_v1_ControlRequest_quarantine_tag, 0,
      [this](const R& r, auto& resp) { quarantine(registry_, outbox_, r.req.verb.quarantine, r.to.by, resp); });
  // They write (through the outbox), then answer.
  at_once(kairos_v1_ControlRequest_resolve_tag, 0,
      [this](const R& r, auto& resp) { resolve(outbox_, r.req.verb.resolve, r.to.by, resp); });
  at_once(kairos_v1_ControlRequest_heal_tag, 0,
      [this](const R& r, auto& resp) { heal(registry_, outbox_, send_, r.req.verb.heal, r.to.by, resp); });
  at_once(kairos_v1_ControlRequest_forget_tag, 0, [this](const R& r, auto& resp) {
    forget(registry_, outbox_, r.req.verb.forget, r.to.by, [this](const NodeEntry& n) { forgetting(n); }, resp);
  });
  // Answered when they end: a schedule's outcome, a rotation's confirmation, a job's result.
  control_.on(kairos_v1_ControlRequest_schedule_tag,
              [this](const R& r) { schedules_.schedule(r.to, r.req.request_id, r.req.verb.schedule); });
  control_.on(kairos_v1_ControlRequest_rotate_key_tag,
              [this](const R& r) { rotations_.verb(r.to, r.req.request_id, r.req.verb.rotate_key); });
  control_.on(kairos_v1_ControlRequest_delegate_tag,
              [this](const R& r) { jobs_.delegate(r.to, r.req.request_id, r.req.verb.delegate); });
  control_.on(kairos_v1_ControlRequest_jobs_tag,
              [this](const R& r) { jobs_.jobs(r.to, r.req.request_id, r.req.verb.jobs); }, true);
  control_.on(kairos_v1_ControlRequest_ask_tag,
              [this](const R& r) { jobs_.ask(r.to, r.req.request_id, r.req.verb.ask); });
  control_.on(kairos_v1_ControlRequest_ball_tag,
              [this](const R& r) { plays_.verb(r.to, r.req.request_id, r.req.verb.ball); });
  control_.on(kairos_v1_ControlRequest_broadcast_tag, [this](const R& r) {
    const auto& b = r.req.verb.broadcast;
    kairos_v1_Command action = kairos_v1_Command_init_zero;
    action.which_action = kairos_v1_Command_notice_tag;
    set_string(action.action.notice, b.text);
    schedules_.command(r.to, r.req.request_id, Schedules::Verb::broadcast, b.targets, action, b.ack, b.window_ms,
                       b.confirm);
  });
  control_.on(kairos_v1_ControlRequest_freeze_tag, [this](const R& r) {
    const auto& f = r.req.verb.freeze;
    kairos_v1_Command action = kairos_v1_Command_init_zero;
    action.which_action = f.thaw ? kairos_v1_Command_thaw_tag : kairos_v1_Command_freeze_tag;
    if (f.thaw) action.action.thaw = true;
    else action.action.freeze = true;
    schedules_.command(r.to, r.req.request_id, f.thaw ? Schedules::Verb::thaw : Schedules::Verb::freeze, f.scope,
                       action, true, f.window_ms, f.confirm);
  });
}

}  // namespace kairos::gw

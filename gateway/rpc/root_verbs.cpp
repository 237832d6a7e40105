#include "gateway/rpc/root_verbs.h"

namespace kairos::gw {

void root_rows(Control& control, RootDesk& desk, CatchUp& catchup, SectorBook& sectors) {
  using R = Control::Request;
  control.on(kairos_v1_ControlRequest_nodes_tag,
             [&desk](const R& r) { desk.nodes(r.to, r.req.request_id, r.req.verb.nodes, r.now_us); }, true);
  control.on(kairos_v1_ControlRequest_schedule_tag,
             [&desk](const R& r) { desk.schedule(r.to, r.req.request_id, r.req.verb.schedule, r.now_us); });
  control.on(kairos_v1_ControlRequest_delegate_tag,
             [&desk](const R& r) { desk.delegate(r.to, r.req.request_id, r.req.verb.delegate, r.now_us); });
  control.at_once(kairos_v1_ControlRequest_conflicts_tag, kairos_v1_ControlResponse_conflicts_tag,
                  [&catchup](const R& r, auto& resp) { catchup.fill_conflicts(r.req.verb.conflicts, resp.reply.conflicts); });
  control.at_once(kairos_v1_ControlRequest_jobs_tag, kairos_v1_ControlResponse_jobs_tag, [&catchup](const R& r, auto& resp) {
    if (!r.req.verb.jobs.job_id) return catchup.fill_jobs(r.req.verb.jobs, resp.reply.jobs);
    resp.ok = false;
    resp.which_reply = 0;
    set_string(resp.error, "jobs: job ids are each sector's own: ask the sector's gateway (kairosctl --broker "
                           "<the sector's broker> jobs ID); the root lists the jobs it has caught, with their sector");
  });
  control.at_once(kairos_v1_ControlRequest_breakers_tag, kairos_v1_ControlResponse_breakers_tag,
                  [&sectors](const R& r, auto& resp) {
                    if (r.req.verb.breakers.hold[0] || r.req.verb.breakers.release[0]) {
                      resp.ok = false;
                      resp.which_reply = 0;
                      return set_string(resp.error, "breakers hold and release are a sector gateway's: ask the "
                                                    "sector whose cluster it is");
                    }
                    sectors.fill_breakers(resp.reply.breakers, r.now_us);
                  });
}

}  // namespace kairos::gw

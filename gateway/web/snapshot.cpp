#include "gateway/web/snapshot.h"

#include <algorithm>
#include <cmath>

#include "common/core/frame.h"
#include "common/core/json.h"

namespace kairos::gw {

namespace {

// Milliseconds since the epoch as an integer (a double printed to 6 digits would lose them).
unsigned long long epoch_ms(std::int64_t wall_us) { return static_cast<unsigned long long>(std::max<std::int64_t>(0, wall_us / 1000)); }

void schedule_json(Json& j, const char* name, const std::optional<ScheduleResult>& r) {
  j.key(name);
  if (!r) {
    j.null();
    return;
  }
  j.begin_object();
  j.key("id").integer(r->id);
  j.key("strategy").str(to_string(r->spec.strategy));
  j.key("at_ms").integer(epoch_ms(r->spec.at_us));
  j.key("targets").integer(r->targets.size());
  j.key("hits").integer(r->hits);
  j.key("hit_ms").num(static_cast<double>(r->spec.hit_us) / 1000.0);
  j.key("p50_ms").num(r->p50_ms);
  j.key("p95_ms").num(r->p95_ms);
  j.key("skipped").integer(r->skipped);
  // Each executed target's error against T (naive: against the median), ms.
  j.key("errors_ms").begin_array();
  std::size_t n = 0;
  for (const auto& t : r->targets) {
    if (!t.executed) continue;
    if (++n > kWebMaxErrors) break;
    j.num(std::round(t.error_us / 10.0) / 100.0);
  }
  j.end_array();
  j.end_object();
}

}  // namespace

std::string web_snapshot(const WebView& v) {
  Json j;
  j.begin_object();
  j.key("t").integer(epoch_ms(v.wall_us));
  j.key("mesh").str(v.mesh);
  j.key("gateway").str(v.gateway);
  j.key("z").begin_array().num(v.figures.z.real()).num(v.figures.z.imag()).end_array();
  j.key("c").num(v.figures.coherence);
  j.key("a").num(v.figures.agreement);
  j.key("unified").boolean(v.unified);
  j.key("mode").str(to_string(v.mode));
  j.key("online").integer(v.registry.online_count());
  j.key("known").integer(v.registry.nodes().size());
  j.key("in_sync").integer(v.figures.contributors);
  j.key("sign_in").boolean(v.signed_in_possible);
  j.key("history").begin_array();
  for (const auto& p : v.history)
    j.begin_array().integer(epoch_ms(p.wall_us)).num(std::round(p.c * 1e4) / 1e4).num(std::round(p.a * 1e4) / 1e4).end_array();
  j.end_array();
  // One array per node, in the order node_fields names (a page of 30,000 nodes stays small).
  j.key("node_fields").begin_array();
  for (const char* f : {"id", "cluster", "class", "state", "phase", "impedance", "offset_ms", "reliability", "clock_samples"})
    j.str(f);
  j.end_array();
  j.key("nodes").begin_array();
  for (const auto& [id, n] : v.registry.nodes()) {
    j.begin_array();
    j.str(id).str(n.cluster);
    const int cls = static_cast<int>(n.device_class);
    j.str(cls >= 1 && cls <= 6 ? std::string(1, static_cast<char>('A' + cls - 1)) : "?");
    j.str(to_string(n.shown_status()));
    if (n.phase_valid && std::abs(n.z) > 0) j.num(std::round(std::arg(n.z) * 1000.0) / 1000.0);
    else j.null();
    j.integer(static_cast<unsigned long long>(n.impedance(v.now_us).score));
    if (n.clock.count() > 0) j.num(std::round(n.clock.offset_us() / 10.0) / 100.0);
    else j.null();
    j.num(std::round(n.reliability.value() * 1000.0) / 1000.0);
    j.integer(n.clock.count());
    j.end_array();
  }
  j.end_array();
  j.key("conflicts").begin_array();
  for (const auto& c : v.conflicts) {
    j.begin_object();
    j.key("id").integer(c.id);
    j.key("at_ms").integer(epoch_ms(c.at_wall_us));
    j.key("type").str(c.type);
    j.key("priority").integer(static_cast<unsigned long long>(c.priority));
    j.key("node").str(c.node);
    j.key("detail").str(c.detail);
    j.key("task").integer(c.task);
    j.key("task_state").str(c.task_state);
    j.end_object();
  }
  j.end_array();
  j.key("breakers").begin_array();
  for (const auto& b : v.breakers) {
    j.begin_object();
    j.key("scope").str(b.scope);
    j.key("name").str(b.name);
    j.key("state").str(to_string(b.state));
    j.key("failures").integer(static_cast<unsigned long long>(b.failures));
    j.key("opened").integer(static_cast<unsigned long long>(b.opened));
    j.end_object();
  }
  j.end_array();
  j.key("schedule").begin_object();
  schedule_json(j, "compensated", v.compensated);
  schedule_json(j, "naive", v.naive);
  j.end_object();
  j.key("plays").begin_array();
  for (const auto& p : v.plays) {
    j.begin_object();
    j.key("session").str(p.session);
    j.key("ball").str(p.ball_id);
    j.key("holder").str(p.holder);
    j.key("closed").boolean(p.closed);
    j.key("broken").str(p.broken);
    j.key("peers").begin_array();
    for (const auto& peer : p.peers) j.str(peer);
    j.end_array();
    j.key("entries").integer(p.lineage ? p.lineage->size() : 0);
    // The newest entries of its lineage, oldest first, each with its chain hash's first bytes.
    j.key("lineage").begin_array();
    if (p.lineage) {
      const auto& l = *p.lineage;
      for (std::size_t i = l.size() > kWebMaxLineage ? l.size() - kWebMaxLineage : 0; i < l.size(); ++i) {
        j.begin_object();
        j.key("seq").integer(l[i].seq);
        j.key("kind").str(l[i].kind);
        j.key("author").str(l[i].author);
        j.key("at_ms").integer(epoch_ms(l[i].at_us));
        j.key("hash").str(to_hex(ByteView(l[i].hash.data(), 4)));
        j.key("text").str(l[i].text.size() > 160 ? l[i].text.substr(0, 160) + "…" : l[i].text);
        j.end_object();
      }
    }
    j.end_array();
    j.end_object();
  }
  j.end_array();
  j.end_object();
  return j.text();
}

}  // namespace kairos::gw

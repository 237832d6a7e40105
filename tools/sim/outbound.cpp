// kairos-sim: frames leaving through each node's delay line, paced onto the
// shared MQTT connections; the summary at the end.
#include "tools/sim/sim.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "common/io/clock.h"
#include "common/io/log.h"
#include "firmware/intake.h"
#include "firmware/reports.h"

namespace kairos::sim {


void Simulator::send(std::uint32_t i, TopicKind kind, Envelope& env, int qos, bool retain, std::int64_t at_mono) {
  auto& n = nodes_[i];
  Frame f(topic(n, kind), {}, kind, qos, retain);
  f.payload = n.signer.seal(f.topic, env, n.key, node_now(n, at_mono));
  queue_out(i, std::move(f), at_mono);
}

void Simulator::queue_out(std::uint32_t i, Frame f, std::int64_t at_mono) {
  auto& n = nodes_[i];
  // Periodic reports leave in batches: every frame handed to the MQTT
  // client wakes its send thread, and a wake per frame costs more than the
  // rest of the simulator together. Timing-critical frames (acks, states)
  // keep their exact instant.
  const bool batched = f.kind == TopicKind::hb || f.kind == TopicKind::phase;
  f.due = n.out.pass(at_mono, n.base_ms, opt_.delay, batched ? kBatchUs : 0);
  push(f.due, Ev::publish, i, store(std::move(f)));
}

void Simulator::publish_now(std::uint32_t i, std::uint32_t slot) {
  auto& n = nodes_[i];
  Frame f = take(slot);
  // A simulator that cannot keep up sheds reports, as a congested network
  // drops QoS 0 frames, instead of queueing without bound.
  if (f.qos == 0 && mono_us() - f.due > kShedAfterUs) return shed();
  if (f.draft) {
    const auto& d = *f.draft;
    kairos_v1_Command cmd = kairos_v1_Command_init_zero;
    cmd.command_id = d.command_id;
    auto env = node::make_ack(cmd, d.state, d.detail, d.received_us, d.executed_us);
    f.payload = n.signer.seal_reserved(f.topic, *env, n.key, d.seq, d.sent_at_us);
    f.draft.reset();
  }
  // The MAC is the frame's last field: its last byte is a MAC byte.
  if (n.badmac && !f.payload.empty()) f.payload.back() ^= 0x5A;
  outq_[n.link].emplace_back(i, std::move(f));
  if (held_.empty() || held_.top().due - mono_us() >= kQuietUs) flush(n.link);
}

bool Simulator::flush(std::uint32_t k) {
  auto& q = outq_[k];
  auto& link = *links_[k];
  auto& pace = pace_[k];
  // Whatever this turn hands over goes out together.
  struct Handed {
    SimLink& link;
    ~Handed() { link.handed(); }
  } handed{link};
  while (!q.empty()) {
    const std::int64_t now = mono_us();
    if (q.front().second.qos == 0 && now - q.front().second.due > kShedAfterUs) {
      shed();
      q.pop_front();
      continue;
    }
    if (now - pace.window_start >= 1000) pace = {now, 0};
    if (now - pace_all_.window_start >= 1000) pace_all_ = {now, 0};
    const bool acked = q.front().second.qos != 0;
    // Frames handed to the MQTT client a millisecond: as many as its threads keep up with (sim_link.cpp).
    if (pace_all_.frames >= link.frames_per_ms() || (acked && pace.frames >= link.acked_per_link_ms())) return false;
    ++pace_all_.frames;
    if (acked) ++pace.frames;
    const bool up = link.connected();
    // QoS 1 frames the client refused wait in the link's backlog: they go first.
    if (up && link.backlog_size()) {
      link.drain_backlog();
      if (link.backlog_size()) return false;
    }
    auto& [i, f] = q.front();
    const auto failures = link.counters().publish_failures;
    const bool ok = link.publish(f.topic, f.payload, f.qos, f.retain);
    // Paho holds at most maxBufferedMessages unsent commands, even while
    // connected: a burst of thousands of nodes fills that. The frame waits
    // for the next turn of the loop (a QoS 1 frame in the link's backlog).
    if (!ok && up && link.counters().publish_failures > failures) {
      ++stats_.deferred;
      if (f.qos == 0) return false;
    }
    auto& n = nodes_[i];
    if (up) {
      if (f.qos) stats_.late_out.add(now - f.due);  // reports leave in batches anyway
      ++n.sent;
      ++stats_.sent[static_cast<std::size_t>(f.kind)];
      if (f.kind == TopicKind::birth && !n.announced) {
        n.announced = true;
        ++announced_;
        note_announced();
      }
    } else if (f.qos == 0) {
      ++stats_.not_sent;  // a QoS 1 frame waits in the link's backlog for the reconnect
    }
    q.pop_front();
  }
  return true;
}

bool Simulator::congested(std::uint32_t k, std::int64_t now) const {
  return !outq_[k].empty() && now - outq_[k].front().second.due > kShedAfterUs / 2;
}

void Simulator::shed() {
  if (stats_.shed++ == 0)
    log::warn("sim", "falling behind: reports more than " + std::to_string(kShedAfterUs / 1000) +
                         " ms late are dropped (fewer nodes, longer report periods or more CPU help)");
}

void Simulator::note_announced() {
  if (all_announced_ || announced_ + gone_unannounced_ < nodes_.size()) return;
  all_announced_ = true;
  std::printf("kairos-sim: all %zu nodes announced\n", nodes_.size());
  std::fflush(stdout);
}

void Simulator::print_summary(double seconds) const {
  std::uint64_t sent = 0, failures = 0, offline = stats_.not_sent, reconnects = 0, inbound_dropped = 0;
  for (auto v : stats_.sent) sent += v;
  for (const auto& l : links_) {
    failures += l->counters().publish_failures;
    offline += l->counters().backlog_dropped;  // its offline_dropped are frames flush() offered again
    reconnects += l->counters().reconnects;
    inbound_dropped += l->counters().inbound_dropped;
  }
  auto kind = [&](TopicKind k) { return static_cast<unsigned long long>(stats_.sent[static_cast<std::size_t>(k)]); };
  std::printf("kairos-sim: summary after %.1f s, %zu nodes (%llu crashed), seed %llu\n", seconds, nodes_.size(),
              static_cast<unsigned long long>(stats_.crashed), static_cast<unsigned long long>(seed_));
  std::printf("  frames sent      %llu: birth %llu, state %llu (offline %llu), hb %llu, phase %llu, ack %llu\n",
              static_cast<unsigned long long>(sent), kind(TopicKind::birth), kind(TopicKind::state),
              static_cast<unsigned long long>(stats_.offline_states), kind(TopicKind::hb), kind(TopicKind::phase),
              kind(TopicKind::ack));
  std::printf("  not sent         %llu (connection down), %llu (reports shed: the simulator fell behind)\n",
              static_cast<unsigned long long>(offline), static_cast<unsigned long long>(stats_.shed));
  std::printf("  connections      reconnects %llu, frames held back for a full client buffer %llu (%llu retries)\n",
              static_cast<unsigned long long>(reconnects), static_cast<unsigned long long>(stats_.deferred),
              static_cast<unsigned long long>(failures));
  std::string drops;
  for (std::size_t r = 0; r < static_cast<std::size_t>(DropReason::count_); ++r) {
    auto v = stats_.drops.by_reason[r];
    if (v) drops += ", " + std::string(to_string(static_cast<DropReason>(r))) + " " + std::to_string(v);
  }
  std::printf(
      "  frames received  %llu, dropped %llu%s, to crashed nodes %llu, on no node's topic %llu, over the inbound limit "
      "%llu\n",
      static_cast<unsigned long long>(stats_.received), static_cast<unsigned long long>(stats_.drops.total()),
      drops.c_str(), static_cast<unsigned long long>(stats_.to_crashed),
      static_cast<unsigned long long>(stats_.unrouted), static_cast<unsigned long long>(inbound_dropped));
  std::printf("  acks             READY %llu, TRANSIT %llu, CONFLICT %llu (pings answered %llu)\n",
              static_cast<unsigned long long>(stats_.acks[2]), static_cast<unsigned long long>(stats_.acks[1]),
              static_cast<unsigned long long>(stats_.acks[0]), static_cast<unsigned long long>(stats_.pings));
  double mean = stats_.executed_held ? stats_.held_error_sum_us / static_cast<double>(stats_.executed_held) : 0.0;
  std::printf(
      "  executions       %llu at once, %llu held until execute_at (|true - target| mean %.1f us, max %lld us)\n",
      static_cast<unsigned long long>(stats_.executed_now), static_cast<unsigned long long>(stats_.executed_held), mean,
      static_cast<long long>(stats_.held_error_max_us));
  std::printf("  jobs             %llu results, %llu refused\n", static_cast<unsigned long long>(stats_.jobs),
              static_cast<unsigned long long>(stats_.jobs_refused));
  std::printf(
      "  loop lateness    commands in: max %.1f ms, %llu over 1 ms; QoS 1 frames out: max %.1f ms, %llu over 1 ms\n",
      static_cast<double>(stats_.late_in.max_us) / 1000.0, static_cast<unsigned long long>(stats_.late_in.over_1ms),
      static_cast<double>(stats_.late_out.max_us) / 1000.0, static_cast<unsigned long long>(stats_.late_out.over_1ms));
  std::fflush(stdout);
}

}  // namespace kairos::sim
